"""Atomic file writes: a temporary file beside the target, renamed over it only when complete.

Temporaries are named `.NAME.XXXXXXXX.PID.part` (PID: the writing process), so the next writer of the same
folder can tell the leftovers of a killed process from those of a live one and remove them (`clean_stale`).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# errno values of a write that failed because of the disk or folder (full, read-only, not ours)
_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
STALE_SECONDS = 24 * 3600  # a temporary this old is abandoned even if its PID is alive again (PIDs are reused)
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}(?:\.(?P<pid>\d{1,10}))?\.part$")


_CLEANED: set[str] = set()  # folders whose stale temporaries this process has removed


def temp_suffix() -> str:
    """The end of a temporary's name: this process's PID, so that `clean_stale` knows whether its writer lives."""
    return f".{os.getpid()}.part"


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":  # elsewhere os.kill would not merely ask
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:  # it exists but belongs to someone else, say
        return True
    return True


def clean_stale(folder: str | Path, name: str | None = None) -> list[Path]:
    """Remove the temporaries (files, or run folders) that dead writers left in `folder`; return what went.

    A temporary is stale when the process named in it no longer exists, or when it is older than STALE_SECONDS
    (also the rule for temporaries of older versions, which carry no PID). `name` limits this to the temporaries
    of one target. Errors are ignored: cleaning is a courtesy, never a reason to fail.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if not match or (name is not None and match["name"] != name):
            continue
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS
            if old or (match["pid"] is not None and not _alive(int(match["pid"]))):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


@contextmanager
def atomic_write(path: str | Path) -> Iterator:
    """Yield a binary file that becomes `path` when the block ends without error, and vanishes otherwise.

    The temporary file is hidden (.NAME.XXXXXXXX.PID.part) in the same folder, so the rename is atomic and a reader
    never sees half a file; an exception in the block (a failed check, say) leaves `path` as it was. An existing
    `path` that is not a regular file (a device, a FIFO, a folder) is never replaced.
    """
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        mode = None
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):  # never replace /dev/null, a FIFO...
        raise OSError(errno.EEXIST, "exists and is not a regular file", str(path))
    folder = os.path.abspath(path.parent)
    if folder not in _CLEANED:  # once per folder and process: writing many files stays linear
        _CLEANED.add(folder)
        clean_stale(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=temp_suffix(), dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; these are ordinary files
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in _DISK_ERRORS and exc.filename in (None, tmp):
            raise OSError(exc.errno, exc.strerror, str(path)) from None  # name the file the user asked for
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)


def make_dir_public(path: Path) -> None:
    """Give a directory made by mkdtemp (private) the permissions of an ordinary new directory."""
    path.chmod(0o777 & ~_umask())
