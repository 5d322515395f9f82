"""What an HTTP header value may hold: the one rule for headers oauthcli sends.

requests and http.client send header values as Latin-1 and refuse line breaks and
leading white space, failing deep inside the send; this rule is checked where a
value is read instead, so the error names the file and key (and never the value).
Kept free of imports so resolving a request does not load requests.
"""

from __future__ import annotations

import re

#: What may go in an HTTP header value (as requests and http.client send it): visible
#: Latin-1, spaces and tabs; no line break, control character or anything beyond Latin-1.
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\xa0-\xff]*")


def header_value_problem(value: str, *, word: bool = False) -> str | None:
    """Why ``value`` cannot be sent as a header value, in words that do not show it.

    ``word``: the value is one word of a header (an issued access token, a token type),
    so a tab or white space at either end is a problem too.
    """
    if (
        _HEADER_VALUE.fullmatch(value)
        and not value[:1].isspace()
        and not (word and ("\t" in value or value[-1:].isspace()))
    ):
        return None
    if "\r" in value or "\n" in value:
        return "contains a line break"
    if any(ord(c) > 0xFF for c in value):
        return "contains a character outside Latin-1, which an HTTP header cannot carry"
    if value[:1].isspace() or value[-1:].isspace():
        return "begins or ends with white space"
    if word and "\t" in value:
        return "contains a tab"
    return "contains a control character"
