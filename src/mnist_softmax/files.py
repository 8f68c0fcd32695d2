"""Atomic file writes: a temporary file beside the target, renamed over it only when complete."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | Path) -> Iterator:
    """Yield a binary file that becomes `path` when the block ends without error, and vanishes otherwise.

    The temporary file is hidden (.NAME.*.part) in the same folder, so the rename is atomic and a reader never
    sees half a file; an exception in the block (a failed check, say) leaves `path` as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; these are ordinary files
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def make_dir_public(path: Path) -> None:
    """Give a directory made by mkdtemp (private) the permissions of an ordinary new directory."""
    path.chmod(0o777 & ~_umask())
