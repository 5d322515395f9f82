"""The command line (typer): the commands, their flags, and the one error boundary.

See docs/architecture.md for what each module holds and what it may import.
"""
