"""From a message and a profile to one resolved request: substitution, resolution, --each rows, validate.

See docs/architecture.md for what each module holds and what it may import.
"""
