"""The cache folder: where it is, and whether it is ours (SPEC §4).

The token cache (:mod:`oauthcli.tokens.cache`) and the parse cache
(:mod:`oauthcli.registry.parsecache`) both live in it. It is trusted only if it is owned
by this user and not writable by group or others; its mode is set only when
oauthcli creates it.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from oauthcli.errors import RegistryError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def cache_dir() -> Path:
    """``$OAUTHCLI_CACHE_DIR``, else the platform's user cache folder for oauthcli."""
    configured = os.environ.get("OAUTHCLI_CACHE_DIR")
    try:
        if configured:
            return Path(configured).expanduser()
        if sys.platform.startswith("linux"):
            # What platformdirs answers on Linux, without importing it on every run.
            xdg = os.environ.get("XDG_CACHE_HOME", "")
            base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
            return base / "oauthcli"
    except RuntimeError as exc:  # '~nobody/x', or no $HOME and no passwd entry
        where = f"OAUTHCLI_CACHE_DIR={configured!r}" if configured else "the token cache folder"
        raise RegistryError(
            f"{where} cannot be found ({exc}); set OAUTHCLI_CACHE_DIR to a folder of your own"
        ) from None
    import platformdirs

    return Path(platformdirs.user_cache_dir("oauthcli", appauthor=False))


def check_folder(folder: Path) -> bool:
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
        raise _untrusted(folder, f"cannot be examined ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(st.st_mode):
        return False
    if not hasattr(os, "getuid"):
        return True  # Windows: no owner or mode bits to go by; the profile folder's ACLs apply
    uid = os.getuid()
    if stat.S_ISLNK(link.st_mode) and link.st_uid not in (uid, 0):
        raise _untrusted(folder, f"is a symbolic link owned by uid {link.st_uid}, not by you")
    if st.st_uid != uid:
        raise _untrusted(folder, f"belongs to uid {st.st_uid}, not to you (uid {uid})")
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
            folder,
            f"is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o}), so tokens in it "
            f"could be planted or swapped; {hint}",
        )
    return True


def _untrusted(folder: Path, why: str) -> RegistryError:
    return RegistryError(
        f"the token cache folder {folder} {why}; oauthcli uses only a folder of your own: "
        "set OAUTHCLI_CACHE_DIR to one"
    )


def ensure_dir() -> Path:
    """The cache folder, created 0700 if it is missing; raises RegistryError if not ours.

    The mode of a folder that already exists is never changed: one that is too loose
    is refused, not repaired behind its owner's back.
    """
    folder = cache_dir()
    if check_folder(folder):
        return folder
    try:
        os.makedirs(folder.parent, exist_ok=True)
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass  # another process made it meanwhile: it is checked below like any other
    else:
        _tighten_created(folder)
    if not check_folder(folder):
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
