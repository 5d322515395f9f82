"""What ``oauthcli doctor`` asks the network: a name's addresses, a TLS handshake, a ``Date``.

Each probe is bounded by the timeout it is given (the profile's or the message's
``timeout``), sends no credential and returns a plain record; none raises for what a
server does. The TLS handshake is made with :mod:`ssl` against the trust store requests
would use for the same settings (``tls.ca_bundle``, else ``REQUESTS_CA_BUNDLE`` /
``CURL_CA_BUNDLE``, else certifi's bundle), so what it says is what a call meets.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from oauthcli.request.resolved import ResolvedTLS

#: Bytes of a probed answer read before the connection is closed (only its headers matter).
_BODY_LIMIT = 64 * 1024


# -- DNS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    addresses: tuple[str, ...] = ()
    error: str | None = None


def resolve(host: str, port: int, timeout: float) -> Resolved:
    """The addresses of ``host``, or why there are none; the resolver is given ``timeout``
    seconds (getaddrinfo itself cannot be interrupted: it is left to finish in a thread)."""
    done: dict[str, Any] = {}

    def ask() -> None:
        try:
            done["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            done["error"] = exc

    worker = threading.Thread(target=ask, name="oauthcli-doctor-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return Resolved(error=f"no answer from the resolver within {timeout:g} s")
    error = done.get("error")
    if error is not None:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        return Resolved(error=str(reason))
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in done["infos"]))
    return Resolved(addresses=addresses)


# -- TLS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    subject: str
    issuer: str
    names: tuple[str, ...]  # the subjectAltName DNS names and addresses
    not_after: float  # epoch seconds


@dataclass(frozen=True)
class Handshake:
    """One TLS probe: ``verified`` with the request's trust, else ``error`` (and
    ``verify_code``, OpenSSL's X509_V_ERR_* number, when the certificate was refused);
    the server's certificate as read from a second, unverified handshake when needed."""

    trust: str  # what was trusted, in words
    verified: bool = False
    error: str | None = None
    verify_code: int | None = None
    connected: bool = False  # a TCP connection was made (the failure is TLS, not reaching it)
    version: str | None = None
    certificate: Certificate | None = None


def trust_store(tls: ResolvedTLS) -> str | None:
    """The CA file or folder requests verifies against for ``tls`` (None: verification off)."""
    if not tls.verify:
        return None
    if tls.ca_bundle:
        return tls.ca_bundle
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if os.environ.get(name):
            return os.environ[name]
    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    return str(DEFAULT_CA_BUNDLE_PATH)


def _context(tls: ResolvedTLS, verify: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        store = trust_store(tls)
        assert store is not None
        if os.path.isdir(store):
            context.load_verify_locations(capath=store)
        else:
            context.load_verify_locations(cafile=store)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.client_cert:
        context.load_cert_chain(tls.client_cert, tls.client_key)
    return context


def handshake(host: str, port: int, tls: ResolvedTLS, timeout: float) -> Handshake:
    """A TLS handshake with ``host:port`` as a request with ``tls`` would make it."""
    store = trust_store(tls)
    trust = (
        "verification off (tls.verify: false)"
        if store is None
        else (f"tls.ca_bundle {store}" if tls.ca_bundle else f"the default CA bundle {store}")
    )
    try:
        context = _context(tls, verify=store is not None)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return Handshake(trust, error=f"cannot load the TLS settings: {_reason(exc)}")
    first = _shake(context, host, port, timeout)
    if isinstance(first, _Failed):
        if first.code is None:
            return Handshake(trust, error=first.reason, connected=first.connected)
        # Refused by verification: look again without it, to say what the server showed.
        second = _shake(_context(tls, verify=False), host, port, timeout)
        cert = second.certificate if isinstance(second, _Done) else None
        version = second.version if isinstance(second, _Done) else None
        return Handshake(
            trust,
            error=first.reason,
            verify_code=first.code,
            connected=True,
            version=version,
            certificate=cert,
        )
    return Handshake(
        trust,
        verified=store is not None,
        connected=True,
        version=first.version,
        certificate=first.certificate,
    )


@dataclass(frozen=True)
class _Done:
    version: str | None
    certificate: Certificate | None


@dataclass(frozen=True)
class _Failed:
    reason: str
    code: int | None = None
    connected: bool = False


def _shake(context: ssl.SSLContext, host: str, port: int, timeout: float) -> _Done | _Failed:
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return _Failed(_connect_reason(exc, timeout))
    try:
        with context.wrap_socket(raw, server_hostname=host.strip("[]")) as sock:
            der = sock.getpeercert(binary_form=True)
            return _Done(sock.version(), _certificate(der) if der else None)
    except ssl.SSLCertVerificationError as exc:
        return _Failed(_reason(exc), exc.verify_code, connected=True)
    except (OSError, ssl.SSLError) as exc:
        if isinstance(exc, TimeoutError | socket.timeout):
            return _Failed(f"no TLS handshake within {timeout:g} s", connected=True)
        return _Failed(f"TLS handshake failed: {_reason(exc)}", connected=True)
    finally:
        raw.close()


def _connect_reason(exc: OSError, timeout: float) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"connection timed out after {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"the name does not resolve ({exc.strerror or exc})"
    return f"cannot connect: {exc.strerror or exc}"


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "verify_message", None) or getattr(exc, "reason", None)
    text = str(message or exc or type(exc).__name__)
    return text.split(" (_ssl.c:")[0]


def _certificate(der: bytes) -> Certificate | None:
    """The certificate's names and expiry (cryptography parses it: only doctor imports it)."""
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
        names: list[str] = []
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            pass
        else:
            names += [str(n) for n in san.get_values_for_type(x509.DNSName)]
            names += [str(a) for a in san.get_values_for_type(x509.IPAddress)]
        return Certificate(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            names=tuple(names),
            not_after=cert.not_valid_after_utc.timestamp(),
        )
    except ValueError:  # a certificate cryptography cannot read (the handshake took it)
        return None


# -- the server's clock --------------------------------------------------------------------


@dataclass(frozen=True)
class Dated:
    """An answer's ``Date`` against this machine's clock: ``skew`` is server minus local
    (seconds, positive when the server is ahead), ``uncertainty`` its bound (half the round
    trip plus the header's one-second resolution)."""

    url: str
    status: int | None = None
    date: str | None = None  # the header as sent
    skew: float | None = None
    uncertainty: float = 0.0
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def dated(url: str, tls: ResolvedTLS, timeout: float) -> Dated:
    """GET ``url`` without credentials (redirects not followed), for its ``Date`` header;
    the whole answer is bounded by ``timeout``."""
    import warnings

    import requests

    from oauthcli.transport.adapter import Deadline, PooledAdapter, watching
    from oauthcli.transport.http import DEFAULT_HEADERS, describe_failure, innermost

    session = requests.Session()
    session.auth = _no_credentials  # else requests would send a ~/.netrc entry
    session.headers["User-Agent"] = DEFAULT_HEADERS["User-Agent"]
    session.mount("https://", PooledAdapter())
    session.mount("http://", PooledAdapter())
    deadline = Deadline(timeout)
    started = time.time()
    try:
        with watching(deadline), warnings.catch_warnings():
            # verify: false is the profile's choice, already warned about by the TLS check
            warnings.simplefilter("ignore")
            resp = session.get(
                url,
                stream=True,
                allow_redirects=False,
                timeout=timeout,
                verify=tls.requests_verify,
                cert=tls.requests_cert,
            )
            try:
                read = 0
                for chunk in resp.iter_content(16 * 1024):
                    read += len(chunk)
                    if read > _BODY_LIMIT:
                        break
            finally:
                resp.close()
    except requests.RequestException as exc:
        if deadline.expired:
            return Dated(url, error=f"no complete answer within {timeout:g} s")
        if isinstance(exc, requests.exceptions.SSLError):
            return Dated(url, error=f"TLS error: {innermost(exc)}")
        from urllib.parse import urlsplit

        return Dated(url, error=describe_failure(exc, timeout, urlsplit(url).hostname))
    except OSError as exc:  # an unreadable ca_bundle or client certificate
        return Dated(url, error=str(exc))
    finally:
        deadline.finish()
        session.close()
    ended = time.time()
    headers = {k.lower(): v for k, v in resp.headers.items()}
    raw = resp.headers.get("Date")
    if raw is None:
        return Dated(url, resp.status_code, headers=headers)
    try:
        when = parsedate_to_datetime(raw)
        if when.tzinfo is None:
            raise ValueError("no time zone")
        server = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return Dated(url, resp.status_code, date=raw, headers=headers)
    # Date has whole seconds: the server's time was in [server, server + 1).
    middle = (started + ended) / 2
    return Dated(
        url,
        resp.status_code,
        date=raw,
        skew=server + 0.5 - middle,
        uncertainty=(ended - started) / 2 + 0.5,
        headers=headers,
    )


def _no_credentials(request: Any) -> Any:
    """An auth that adds nothing: requests then reads no ``~/.netrc`` (SPEC §3)."""
    return request
