"""The registry: finding profile and message files, reading their YAML, and the models they declare.

See docs/architecture.md for what each module holds and what it may import.
"""
