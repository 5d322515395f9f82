"""The cache folder: where it is, and whether it is ours (SPEC §4).

The outbound log's folder (:mod:`oauthcli.outlog.place`) is found and trusted by the
same rules (:func:`user_folder`, :func:`check_folder` with its :class:`Place`).

The token cache (:mod:`oauthcli.tokens.cache`), the parse cache
(:mod:`oauthcli.registry.parsecache`) and the issuer metadata
(:mod:`oauthcli.tokens.discovery`) live in it, the last two each in a :class:`Subfolder`. It is trusted only if it is owned
by this user and not writable by group or others; its mode is set only when
oauthcli creates it.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

from oauthcli.errors import RegistryError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class Place:
    """One of oauthcli's own folders, as its errors name it: the token cache folder, the
    outbound log's folder (:mod:`oauthcli.outlog.place`)."""

    def __init__(self, what: str, variable: str, holds: str) -> None:
        self.what = what  # "the token cache folder"
        self.variable = variable  # the variable that moves it
        self.holds = holds  # what could be planted or swapped in a loose one


CACHE = Place("the token cache folder", "OAUTHCLI_CACHE_DIR", "tokens")


def cache_dir() -> Path:
    """``$OAUTHCLI_CACHE_DIR``, else the platform's user cache folder for oauthcli."""
    return user_folder(CACHE, "XDG_CACHE_HOME", ".cache", "user_cache_dir")


def user_folder(
    place: Place, xdg: str, under_home: str, platformdirs_name: str, sub: str = ""
) -> Path:
    """``$<place.variable>``, else the platform's user folder ``platformdirs_name`` for
    oauthcli (on Linux ``$<xdg>`` or ``~/<under_home>``, plus ``oauthcli``) plus ``sub``."""
    configured = os.environ.get(place.variable)
    try:
        if configured:
            return Path(configured).expanduser()
        if sys.platform.startswith("linux"):
            # What platformdirs answers on Linux, without importing it on every run.
            base = os.environ.get(xdg, "")
            home = Path(base) if os.path.isabs(base) else Path.home() / under_home
            return home / "oauthcli" / sub
    except RuntimeError as exc:  # '~nobody/x', or no $HOME and no passwd entry
        where = f"{place.variable}={configured!r}" if configured else place.what
        raise RegistryError(
            f"{where} cannot be found ({exc}); set {place.variable} to a folder of your own"
        ) from None
    import platformdirs

    return Path(getattr(platformdirs, platformdirs_name)("oauthcli", appauthor=False)) / sub


def check_folder(folder: Path, place: Place = CACHE) -> bool:
    """Whether ``folder`` exists as a folder; raises RegistryError when it is not ours.

    A link at the folder's own path is followed (``~/.cache`` is often one), but only
    one that this user or root owns, and what it leads to must be ours.
    """
    try:
        st = os.stat(folder)
        link = os.lstat(folder)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise _untrusted(place, folder, f"cannot be examined ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(st.st_mode):
        return False
    if not hasattr(os, "getuid"):
        return True  # Windows: no owner or mode bits to go by; the profile folder's ACLs apply
    uid = os.getuid()
    if stat.S_ISLNK(link.st_mode) and link.st_uid not in (uid, 0):
        raise _untrusted(
            place, folder, f"is a symbolic link owned by uid {link.st_uid}, not by you"
        )
    if st.st_uid != uid:
        raise _untrusted(place, folder, f"belongs to uid {st.st_uid}, not to you (uid {uid})")
    loose = st.st_mode & 0o022
    if loose:
        who = " and ".join(w for w, bit in (("group", 0o020), ("others", 0o002)) if loose & bit)
        # A sticky folder (/tmp) is shared by design: never advise taking its mode away.
        hint = (
            "it is a shared folder"
            if st.st_mode & stat.S_ISVTX
            else f"run 'chmod go-w {folder}' if it is yours alone"
        )
        raise _untrusted(
            place,
            folder,
            f"is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o}), so {place.holds} in it "
            f"could be planted or swapped; {hint}",
        )
    return True


def _untrusted(place: Place, folder: Path, why: str) -> RegistryError:
    return RegistryError(
        f"{place.what} {folder} {why}; oauthcli uses only a folder of your own: "
        f"set {place.variable} to one"
    )


def ensure_dir() -> Path:
    """The cache folder, created 0700 if it is missing; raises RegistryError if not ours.

    The mode of a folder that already exists is never changed: one that is too loose
    is refused, not repaired behind its owner's back.
    """
    return ensure_folder(cache_dir())


def ensure_folder(folder: Path, place: Place = CACHE) -> Path:
    """``folder``, created 0700 if it is missing; raises RegistryError if not ours."""
    if check_folder(folder, place):
        return folder
    try:
        os.makedirs(folder.parent, exist_ok=True)
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass  # another process made it meanwhile: it is checked below like any other
    else:
        _tighten_created(folder)
    if not check_folder(folder, place):
        raise NotADirectoryError(f"{folder} is not a folder")
    return folder


def _tighten_created(folder: Path) -> None:
    """Make a folder oauthcli just created exactly 0700 (a umask may have taken bits away).

    Through a handle opened without following links: the path is not trusted to still
    be the folder that was made.
    """
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW
    try:
        fd = os.open(folder, flags)
    except OSError:
        return  # checked next, like any folder that is not ours
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


_FOLDER_FLAGS = (
    os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
)


class Subfolder:
    """A folder of the cache folder that holds files only oauthcli writes (``parsed/``,
    ``issuers/``), each one a cache entry: a problem is a miss, never an error.

    The folder is opened with ``O_NOFOLLOW`` and every entry through that handle, so a
    link planted in its place is never followed, written through or deleted through;
    it and the cache folder must be ours (owned by this user, not writable by group or
    others), and so must each entry read. Entries are written atomically (a temporary
    file renamed over the entry), mode 0600. ``ours`` matches the names of entries:
    the only files :meth:`clear` removes.
    """

    def __init__(self, name: str, entry: str) -> None:
        self.name = name
        # entries, and their temporary files (".NAME.PID.RANDOM.tmp")
        self._ours = re.compile(rf"{entry}|\.{entry}\.\d+\.[0-9a-f]{{8}}\.tmp")

    def read(self, entry: str, limit: int | None = None) -> bytes | None:
        """The entry's bytes, if it is ours (and not over ``limit`` bytes), else None."""
        folder = self._open(create=False)
        if folder is None:
            return None
        try:
            fd = os.open(
                entry, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0), dir_fd=folder
            )
        except OSError:
            os.close(folder)
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o022 or not _mine(st):
                return None
            chunks = []
            size = 0
            while chunk := os.read(fd, 1 << 16):
                size += len(chunk)
                if limit is not None and size > limit:
                    return None
                chunks.append(chunk)
            return b"".join(chunks)
        except OSError:
            return None
        finally:
            os.close(fd)
            os.close(folder)

    def write(self, entry: str, data: bytes) -> None:
        """Keep ``data`` as the entry; silently skipped when the folder is not usable."""
        folder = self._open(create=True)
        if folder is None:
            return
        tmp = f".{entry}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
            fd = os.open(tmp, flags, 0o600, dir_fd=folder)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, entry, src_dir_fd=folder, dst_dir_fd=folder)
        except OSError:
            try:
                os.unlink(tmp, dir_fd=folder)
            except OSError:
                pass
        finally:
            os.close(folder)

    def clear(self) -> None:
        """Remove every entry (``oauthcli token clear``), then the folder if it is empty.

        Only files named as entries are, through the handle of the folder itself: a link
        in its place, or anything else put in it, is left alone.
        """
        folder = self._open(create=False)
        if folder is None:
            return
        try:
            for name in os.listdir(folder):
                if self._ours.fullmatch(name):
                    try:
                        os.unlink(name, dir_fd=folder)
                    except OSError:
                        pass  # another process's entry being written or swept
        finally:
            os.close(folder)
        try:
            os.rmdir(cache_dir() / self.name)  # rmdir never follows a link
        except (OSError, RuntimeError):
            pass  # not empty: a run wrote an entry meanwhile, or something not ours is in it

    def _open(self, *, create: bool) -> int | None:
        """A handle of the folder if it and the cache folder are ours, else None."""
        try:
            top = cache_dir()
            if not check_folder(top):
                if not create:
                    return None
                ensure_dir()
        except (RegistryError, OSError, RuntimeError):  # not ours, unusable, no home folder
            return None
        where = top / self.name
        try:
            fd = os.open(where, _FOLDER_FLAGS)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.mkdir(where, 0o700)
                fd = os.open(where, _FOLDER_FLAGS)
            except OSError:
                return None
        except OSError:  # a link (ELOOP), not a folder, not readable
            return None
        st = os.fstat(fd)
        if not _mine(st) or not stat.S_ISDIR(st.st_mode) or st.st_mode & 0o022:
            os.close(fd)
            return None
        return fd


def _mine(st: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()
