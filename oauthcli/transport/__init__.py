"""Sending a resolved request: the token on it, redirects, retries, and requests' machinery under it.

See docs/architecture.md for what each module holds and what it may import.
"""
