"""What the user sees: the terminal (console), a response's rendering, explanations, list/show views.

See docs/architecture.md for what each module holds and what it may import.
"""
