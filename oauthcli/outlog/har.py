"""The outbound log as a HAR 1.2 archive (``oauthcli log --har FILE``), for browser tools.

HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/): one entry per HTTP exchange,
a call's token requests as their own entries before the call's. A record holds what its
level logged, no more: headers from ``elevated``, bodies from ``all``; what it lacks is
left empty as HAR allows (``headers: []``, sizes ``-1``, no ``postData``). Timings: the
log keeps one elapsed time per exchange, so ``wait`` is all of it, ``send`` and
``receive`` 0 (the three sum to ``time``). A body the log kept in base64 is
``content.encoding: "base64"``; a request body HAR 1.2 has no encoding for, so such a
``postData.text`` is base64 with ``_encoding: "base64"``. What HAR has no field for goes
in ``_oauthcli`` (custom fields start with ``_``): the call's kind, message, profile,
decisions, attempts, exit code and error. Every value comes from the record as the
writer masked it; nothing is decoded but a URL's query string.

The archive is written entry by entry (:func:`write`), never built whole, and saved
atomically, 0600, since it holds headers (:func:`save`); into a pipe or a device
(``/dev/stdout``, ``>(gzip > x)``) it is written as it goes.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from oauthcli import __version__
from oauthcli.errors import RegistryError
from oauthcli.outlog.reader import Record, parse_time

HAR_VERSION = "1.2"
#: Members of a record that go into an entry's ``_oauthcli``, as the record has them.
_CALL_FACTS = (
    "kind",
    "message",
    "profile",
    "environment",
    "level",
    "attempts",
    "exit_code",
    "error",
    "pid",
)


def entries(record: Record) -> list[dict[str, Any]]:
    """The HAR entries of one record: its token requests, then the call itself.

    A ``token`` record (``get-token``) or a ``revoke`` one is its token requests only (the
    record's own URL and status are its last one's): none when the token came from the
    cache. A call with no URL has no entry, nor one that was never sent: no answer, and
    an exit code that says why (3, a registry error; 6, no token).
    """
    data = record.data
    decisions = [d for d in _list(data.get("decisions")) if isinstance(d, dict)]
    found = []
    start = record.time
    for exchange in _list(data.get("token_requests")):
        if not isinstance(exchange, dict) or not _text(exchange.get("url")):
            continue
        started = parse_time(exchange.get("time")) or start
        facts: dict[str, Any] = {
            "kind": "token_request",
            "for": data.get("kind"),
            "message": data.get("message"),
            "profile": data.get("profile"),
        }
        if "grant" in exchange:
            facts["grant"] = exchange["grant"]
        facts["decisions"] = decisions
        entry = _entry(exchange, started, facts)
        found.append(entry)
        start = _after(started, entry["time"])
    if _sent(data):
        facts = {key: data[key] for key in _CALL_FACTS if key in data}
        facts["decisions"] = decisions
        found.append(_entry(data, max(start, record.time), facts))
    return found


class Writer(Protocol):
    def write(self, text: str, /) -> int: ...


#: A call's exit codes that say it never reached the API (a registry error, no token).
_NOT_SENT = (3, 6)


def _sent(data: dict[str, Any]) -> bool:
    """Whether the record's own exchange is one to show beside its token requests."""
    if data.get("kind") in ("token", "revoke") or not _text(data.get("url")):
        return False
    return data.get("status") is not None or data.get("exit_code") not in _NOT_SENT


def _after(started: datetime, ms: float) -> datetime:
    try:
        return started + timedelta(milliseconds=ms)
    except OverflowError:  # a time near year 9999, or an elapsed time beyond reason
        return started


def write(records: Iterable[Record], out: Writer) -> int:
    """Write the archive of ``records`` to ``out``, one entry at a time; how many entries."""
    head = {"version": HAR_VERSION, "creator": {"name": "oauthcli", "version": __version__}}
    out.write('{"log": ' + _dumps(head)[:-1] + ', "entries": [')
    count = 0
    for record in records:
        for entry in entries(record):
            out.write(("\n" if count == 0 else ",\n") + _dumps(entry))
            count += 1
    out.write("\n]}}\n")
    return count


def save(records: Iterable[Record], path: Path) -> int:
    """Write the archive to ``path`` atomically (a temporary file beside it, mode 0600,
    renamed over it); how many entries. RegistryError naming the path if it cannot be."""
    folder = path.parent
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise _unwritable(path, "it is a folder")
    if st is not None and not stat.S_ISREG(st.st_mode):
        return _into(records, path)  # /dev/stdout, a FIFO, >(gzip): written as it is
    tmp = folder / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
    except OSError as exc:
        raise _unwritable(path, exc.strerror or str(exc)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            count = write(records, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _unwritable(path, exc.strerror or str(exc)) from None
        raise
    return count


def _into(records: Iterable[Record], path: Path) -> int:
    """Write the archive into what ``path`` already is: a pipe or a device."""
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            return write(records, out)
    except OSError as exc:
        raise _unwritable(path, exc.strerror or str(exc)) from None


def _unwritable(path: Path, why: str) -> RegistryError:
    return RegistryError(f"cannot write the HAR file {path}: {why}")


def _dumps(value: Any) -> str:
    # ASCII: a lone surrogate a record may hold stays an escape, and the file stays UTF-8.
    return json.dumps(value, ensure_ascii=True, separators=(", ", ": "))


# -- one exchange -------------------------------------------------------------


def _entry(x: dict[str, Any], started: datetime, facts: dict[str, Any]) -> dict[str, Any]:
    elapsed = _number(x.get("elapsed_ms"))
    status = x.get("status")
    status = (
        status if isinstance(status, int) and not isinstance(status, bool) and status > 0 else 0
    )
    url = _without_fragment(_text(x.get("url")))
    sent = _headers(x.get("request_headers"))
    got = _headers(x.get("response_headers"))
    request: dict[str, Any] = {
        "method": _text(x.get("method")) or "GET",
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": sent,
        "queryString": _query(url),
        "headersSize": -1,
        "bodySize": -1,
    }
    body = x.get("request_body")
    if isinstance(body, str):
        encoded = x.get("request_body_encoding") == "base64"
        post: dict[str, Any] = {"mimeType": _header(sent, "content-type"), "text": body}
        if encoded:
            post["_encoding"] = "base64"
        request["postData"] = post
        if x.get("request_body_truncated") is not True:
            request["bodySize"] = _size(body, encoded)
    elif "request_body" in x:  # logged at level all, and there was none
        request["bodySize"] = 0
    response: dict[str, Any] = {
        "status": status,
        "statusText": _text(x.get("reason")),
        "httpVersion": "HTTP/1.1" if status else "",
        "cookies": [],
        "headers": got,
        "content": _content(x, got),
        "redirectURL": _header(got, "location") if 300 <= status < 400 else "",
        "headersSize": -1,
        "bodySize": _count(x.get("response_body_size"), -1),
    }
    entry: dict[str, Any] = {
        "startedDateTime": _iso(started),
        "time": elapsed,
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"send": 0, "wait": elapsed, "receive": 0},
    }
    error = x.get("error")
    if isinstance(error, str) and error:
        entry["comment"] = error
    entry["_oauthcli"] = facts
    return entry


def _content(x: dict[str, Any], headers: list[dict[str, str]]) -> dict[str, Any]:
    body = x.get("response_body")
    encoded = x.get("response_body_encoding") == "base64"
    size = _count(x.get("response_body_size"), -1)
    if size < 0 and isinstance(body, str) and x.get("response_body_truncated") is not True:
        size = _size(body, encoded)
    content: dict[str, Any] = {
        "size": max(size, 0),
        "mimeType": _header(headers, "content-type")
        or ("application/octet-stream" if encoded else ""),
    }
    if isinstance(body, str):
        content["text"] = body
        if encoded:
            content["encoding"] = "base64"
    return content


def _size(body: str, encoded: bool) -> int:
    if encoded:
        import base64
        import binascii

        try:
            return len(base64.b64decode(body, validate=True))
        except (binascii.Error, ValueError):
            return -1
    return len(body.encode("utf-8", "surrogatepass"))


def _headers(value: Any) -> list[dict[str, str]]:
    """``[[name, value], ...]`` as HAR's ``[{"name", "value"}]``; anything else is dropped."""
    pairs = []
    for item in _list(value):
        if (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], str)
        ):
            pairs.append({"name": item[0], "value": item[1]})
    return pairs


def _header(headers: list[dict[str, str]], name: str) -> str:
    for header in headers:
        if header["name"].lower() == name:
            return header["value"]
    return ""


def _query(url: str) -> list[dict[str, str]]:
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    return [{"name": k, "value": v} for k, v in parse_qsl(query, keep_blank_values=True)]


def _without_fragment(url: str) -> str:
    return url.split("#", 1)[0]  # HAR's url has no fragment (none is ever sent)


def _iso(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _number(value: Any) -> float:
    """A duration in ms: a finite number >= 0, rounded to the microsecond; else 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if not math.isfinite(value) or value < 0:
        return 0
    return round(float(value), 3)


def _count(value: Any, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
