"""DPoP (RFC 9449): the key a profile's tokens are bound to, its proofs, the servers' nonces.

**The key.** One EC P-256 key per token identity (the cache entry's key,
:func:`oauthcli.tokens.cache.entry_key`), so the profile's token and the key it is bound
to live and go together: ``<entry key>.dpop`` in the cache folder, a private JWK, written
as the cache writes (a temporary file made with ``O_EXCL`` and mode 0600, fsynced, then
*linked* into place, so two processes making it at once end with one key and a reader
never sees half of one). It is read without following a link, and refused (exit 3, naming
the file) when it is not a regular file, belongs to someone else, or has any group or
other bit set: a key others could read may be known to them. Worker processes of
``send --each`` read the same file, so their proofs carry the key their shared token is
bound to. When the cache folder cannot be written the call proceeds with a key of its
own (:attr:`DPoPKey.note` says so): its token is not cached either. The private key is
never printed; only its public JWK thumbprint (RFC 7638, the token's ``cnf.jkt``) is.

**A proof** (:meth:`DPoPKey.proof`) is a fresh ES256 JWS, header ``typ: dpop+jwt``,
``alg``, ``jwk`` (public), claims ``htm``, ``htu`` (:func:`htu`), ``iat``, a random
``jti``, ``ath`` toward an API and the server's ``nonce`` when it gave one; one for every
request on the wire (each retry and redirect hop too). joserfc signs ~14,000 a second
on one core, far below what a request costs.

**Nonces** (:data:`NONCES`) are kept per origin for the life of the process (every
Sender in it, the token endpoint's requests and the API's): the ``DPoP-Nonce`` header of
any response replaces the one held. They are also left in the cache folder
(``<SHA-256 of the origin>.nonce``), so the other worker processes of a batch start with
the nonce the first one was given instead of each being challenged.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from oauthcli.errors import RegistryError
from oauthcli.masking import describe, thumbprint
from oauthcli.secret import remember

if TYPE_CHECKING:
    from oauthcli.request.resolved import ResolvedProfile
    from oauthcli.tokens.model import Token

__all__ = ["NONCES", "DPoPKey", "binding", "describe", "htu", "key_for", "thumbprint", "token_hash"]

ALG = "ES256"
#: Bytes beyond which a file is not a key oauthcli wrote (a P-256 JWK is ~200).
MAX_KEY_FILE = 4096
#: A nonce longer than this, or not of RFC 9449's NQCHAR, is not taken from a server.
MAX_NONCE = 512
_NONCE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # NQCHAR: no space, '"' or '\'
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

#: Seconds since the epoch, for ``iat`` (tests replace it).
clock: Callable[[], float] = time.time


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def token_hash(access_token: str) -> str:
    """RFC 9449 §4.2: base64url of the SHA-256 of the access token."""
    return _b64(hashlib.sha256(access_token.encode("ascii", "surrogateescape")).digest())


def htu(url: str) -> str:
    """The ``htu`` of a request to ``url``: scheme, host and path without query and fragment,
    normalised as RFC 9449 §4.3 compares them (RFC 3986 §6.2.2, §6.2.3): scheme and host in
    lower case, the default port dropped, an empty path as ``/``, percent-encodings in upper
    case and unreserved characters decoded; no user information."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"

    def pct(match: re.Match[str]) -> str:
        char = chr(int(match.group(0)[1:], 16))
        return char if char in _UNRESERVED else match.group(0).upper()

    return urlunsplit((scheme, host, _PCT.sub(pct, parts.path) or "/", "", ""))


class DPoPKey:
    """A P-256 private key and its public JWK; makes proofs. Its repr holds no key."""

    __slots__ = ("_header", "_key", "jkt", "note", "path")

    def __init__(self, key: Any, path: Path | None, note: str | None = None) -> None:
        self._key = key  # a joserfc ECKey
        public = {
            k: v for k, v in key.as_dict(private=False).items() if k in ("crv", "kty", "x", "y")
        }
        self._header = {"typ": "dpop+jwt", "alg": ALG, "jwk": public}
        self.jkt = thumbprint(public)
        self.path = path
        #: Why this key is the process's own and not the cache folder's (None: it is kept there).
        self.note = note

    def __repr__(self) -> str:
        return f"<DPoPKey jkt={self.jkt}>"

    def proof(
        self,
        method: str,
        url: str,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
        ath: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """A fresh proof for ``method`` ``url`` and its claims; ``ath`` replaces the access
        token's hash (a dry run's placeholder)."""
        from joserfc import jws

        claims: dict[str, Any] = {
            "htm": method,
            "htu": htu(url),
            "iat": int(clock()),
            "jti": secrets.token_urlsafe(16),
        }
        if ath is not None:
            claims["ath"] = ath
        elif access_token is not None:
            claims["ath"] = token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        payload = json.dumps(claims, separators=(",", ":"))
        return jws.serialize_compact(self._header, payload, self._key, algorithms=[ALG]), claims


# -- the key file ----------------------------------------------------------------------------

_loaded: dict[str, DPoPKey] = {}
_loading = threading.Lock()


def key_for(profile: ResolvedProfile) -> DPoPKey:
    """The DPoP key of ``profile``'s token identity: read once per process, made if missing.

    Raises RegistryError (exit 3) for a key file that cannot be trusted or read.
    """
    from oauthcli.tokens.cache import entry_key

    name = entry_key(profile)
    key = _loaded.get(name)
    if key is None:
        with _loading:
            key = _loaded.get(name)
            if key is None:
                key = _loaded[name] = _load_or_make(profile, name)
    return key


def forget_keys() -> None:
    """Forget the keys read in this process (tests; a new process reads the files anew)."""
    with _loading:
        _loaded.clear()


def _problem(profile: ResolvedProfile, path: Path, why: str) -> RegistryError:
    return RegistryError(f"profile '{profile.name}' (dpop: true): the DPoP key file {path} {why}")


def _load_or_make(profile: ResolvedProfile, name: str) -> DPoPKey:
    from oauthcli.cachedir import ensure_dir

    try:
        folder = ensure_dir()  # RegistryError when the folder is not ours
    except OSError as exc:
        return _own_key(f"the cache folder cannot be created ({exc.strerror or exc})")
    path = folder / f"{name}.dpop"
    for _ in range(2):
        key = _read(profile, path)
        if key is not None:
            return key
        try:
            made = _make(path)
        except OSError as exc:
            return _own_key(f"the DPoP key cannot be written to {path} ({exc.strerror or exc})")
        if made is not None:
            return made
        # Another process linked its key first: read that one.
    raise _problem(profile, path, "keeps changing while it is read")


def _own_key(why: str) -> DPoPKey:
    from joserfc.jwk import ECKey

    return DPoPKey(
        ECKey.generate_key("P-256"),
        None,
        f"{why}: this call uses a DPoP key of its own, and its token is not kept",
    )


def _read(profile: ResolvedProfile, path: Path) -> DPoPKey | None:
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP or stat.S_ISLNK(_lstat_mode(path)):
            raise _problem(
                profile, path, "is a symbolic link; oauthcli follows none in the cache folder"
            ) from None
        raise _problem(profile, path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _problem(profile, path, "is not a regular file")
        if hasattr(os, "getuid"):
            if st.st_uid != os.getuid():
                raise _problem(
                    profile,
                    path,
                    f"belongs to uid {st.st_uid}, not to you (uid {os.getuid()}); "
                    "a key someone else wrote is never used",
                )
            if st.st_mode & 0o077:
                raise _problem(
                    profile,
                    path,
                    f"has mode {stat.S_IMODE(st.st_mode):04o}: others may have read the private "
                    "key; remove the file (a new key is made on the next call, and tokens bound "
                    "to the old one are renewed)",
                )
        raw = os.read(fd, MAX_KEY_FILE + 1)
    except OSError as exc:
        raise _problem(profile, path, f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    return DPoPKey(_parse(profile, path, raw), path)


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0


def _parse(profile: ResolvedProfile, path: Path, raw: bytes) -> Any:
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey

    bad = _problem(profile, path, "is not a DPoP key oauthcli wrote; remove it to make a new one")
    if len(raw) > MAX_KEY_FILE:
        raise bad
    try:
        jwk = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise bad from None
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise bad
    if not isinstance(jwk.get("d"), str):
        raise bad
    remember(jwk["d"])
    try:
        return ECKey.import_key(jwk)
    except (JoseError, ValueError, TypeError):
        raise bad from None


def _make(path: Path) -> DPoPKey | None:
    """Write a new key at ``path`` unless one is there already (then None)."""
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256")
    private = key.as_dict(private=True)
    remember(private["d"])
    data = json.dumps({k: private[k] for k in ("kty", "crv", "x", "y", "d")}).encode()
    tmp = path.parent / f".{path.name.split('.')[0]}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path, follow_symlinks=False)  # never replaces: the first key wins
        except FileExistsError:
            return None
    finally:
        tmp.unlink(missing_ok=True)
    return DPoPKey(key, path)


# -- nonces ----------------------------------------------------------------------------------


def _origin(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def usable_nonce(value: str) -> bool:
    """A ``DPoP-Nonce`` value a proof may carry (RFC 9449 §8.1: NQCHAR, and not huge)."""
    value = value.strip()
    return len(value) <= MAX_NONCE and _NONCE.fullmatch(value) is not None


class Nonces:
    """The last ``DPoP-Nonce`` each origin gave; safe to share between threads."""

    def __init__(self) -> None:
        self._nonces: dict[str, str | None] = {}  # origin -> nonce (None: none known)
        self._lock = threading.Lock()

    def get(self, url: str) -> str | None:
        """The nonce to put in a proof for a request to ``url``."""
        origin = _origin(url)
        try:
            return self._nonces[origin]
        except KeyError:
            pass
        nonce = _read_nonce(origin)
        with self._lock:
            return self._nonces.setdefault(origin, nonce)

    def answered(self, url: str, headers: Mapping[str, str]) -> bool:
        """Take the ``DPoP-Nonce`` of a response from ``url``; whether it gave a usable one."""
        nonce = headers.get("DPoP-Nonce")
        if nonce is None or not usable_nonce(nonce):
            return False
        nonce = nonce.strip()
        origin = _origin(url)
        with self._lock:
            if self._nonces.get(origin) == nonce:
                return True
            self._nonces[origin] = nonce
        _write_nonce(origin, nonce)
        return True

    def clear(self) -> None:
        with self._lock:
            self._nonces.clear()


#: The nonces of this process (its Senders' and its token requests').
NONCES = Nonces()


def _nonce_path(origin: str) -> Path | None:
    from oauthcli.cachedir import cache_dir, check_folder

    try:
        folder = cache_dir()
        if not check_folder(folder):
            return None
    except (RegistryError, OSError):
        return None  # the token code says what is wrong with the folder
    return folder / f"{hashlib.sha256(origin.encode()).hexdigest()}.nonce"


def _read_nonce(origin: str) -> str | None:
    path = _nonce_path(origin)
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (
            hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022)
        ):
            return None
        text = os.read(fd, MAX_NONCE + 1).decode("ascii", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    return text if len(text) <= MAX_NONCE and _NONCE.fullmatch(text) else None


def _write_nonce(origin: str, nonce: str) -> None:
    """Leave the nonce for this user's other processes; a failure only costs them a challenge."""
    path = _nonce_path(origin)
    if path is None:
        return
    tmp = path.parent / f".{path.stem}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(nonce.encode("ascii"))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


# -- what a token is bound to ----------------------------------------------------------------


def is_dpop(token: Token) -> bool:
    """The token was issued as DPoP-bound (``token_type: DPoP``)."""
    return token.token_type.lower() == "dpop"


def binding(token: Token, key: DPoPKey | None) -> str:
    """One line saying what ``token`` is bound to (``cnf.jkt``) and whether it is ``key``."""
    from oauthcli.tokens.jwtinfo import decode

    decoded = decode(token.access_token.reveal())
    cnf = decoded[1].get("cnf") if decoded is not None else None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str) else None
    kind = f"token_type {token.token_type}"
    if jkt is None:
        if decoded is None:
            where = "an opaque token, so cnf.jkt cannot be read here"
        else:
            where = "no cnf.jkt in the JWT"
        if key is not None and not is_dpop(token):
            return f"none ({kind}, {where}): the server ignored DPoP; sent as Bearer"
        return f"DPoP ({kind}, {where})" if is_dpop(token) else f"none ({kind}, {where})"
    if key is None:
        return f"DPoP key cnf.jkt={jkt} (this profile does not use dpop)"
    if jkt == key.jkt:
        return f"DPoP, cnf.jkt={jkt}: this profile's key"
    return (
        f"DPoP, cnf.jkt={jkt}: NOT this profile's key ({key.jkt}); the API will refuse it, "
        "run get-token --force"
    )
