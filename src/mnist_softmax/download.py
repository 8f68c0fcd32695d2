"""Downloading dataset files: each mirror in turn, verified before anything enters the cache.

A file is streamed to a hidden temporary file beside its destination, decoded and hashed, and renamed into place
only if its payload has the expected SHA-256. Any failure (HTTP error, timeout, truncation, corrupt gzip, wrong
checksum) removes the temporary file and moves on to the next mirror, so the cache never holds half a file.
"""

from __future__ import annotations

import errno
import http.client
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .datasets import ArchiveSpec, FileSpec
from .errors import ChecksumError, DataError, DownloadError, OutputError
from .files import atomic_write, clean_stale, temp_suffix
from .idx import IdxFile, read_idx

Progress = Callable[[int, "int | None"], None]  # (bytes so far, total bytes or None)
TIMEOUT = 30.0  # seconds without a byte before a mirror counts as stalled
MIN_RATE = 10_000.0  # bytes per second a transfer must average (after GRACE seconds): MNIST's largest file in 17 min
GRACE = 30.0  # seconds before the average rate is judged (connection set-up, TCP slow start)
MAX_DOWNLOAD = 1 << 28  # bytes: far above any dataset file (the largest is 30 MB), far below a full disk


def _user_agent() -> str:
    from . import __version__

    return f"mnist-softmax/{__version__} (+https://pypi.org/project/mnist-softmax/)"


class TooSlow(TimeoutError):
    """A mirror that keeps sending, but too little to finish in reasonable time."""


def _stream(url: str, out, timeout: float, progress: Progress | None, min_rate: float = MIN_RATE,
            grace: float = GRACE) -> None:
    """Copy `url` into `out`. Fails when no byte comes for `timeout` seconds, when after `grace` seconds fewer than
    `min_rate` bytes per second have arrived on average (a mirror dripping a byte now and then), when more than
    MAX_DOWNLOAD bytes come, and when the connection closes before Content-Length bytes."""
    request = urllib.request.Request(url, headers={"User-Agent": _user_agent()})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > MAX_DOWNLOAD:
            raise DataError(f"the server announces {total:,} bytes, more than the {MAX_DOWNLOAD:,} any dataset "
                            f"file has")
        done = 0
        while chunk := response.read1(1 << 16):  # whatever has arrived: a slow sender cannot hold us in one read
            try:
                out.write(chunk)
            except OSError as exc:
                raise _LocalWriteError(exc) from None
            done += len(chunk)
            if done > MAX_DOWNLOAD:
                raise DataError(f"the server sent more than the {MAX_DOWNLOAD:,} bytes any dataset file has")
            if progress:
                progress(done, total)
            elapsed = time.monotonic() - started
            if elapsed > grace and done < min_rate * elapsed:
                raise TooSlow(f"too slow: {done:,} bytes in {elapsed:.0f} s (under {min_rate / 1000:g} kB/s)")
        if total is not None and done != total:
            raise http.client.IncompleteRead(b"", total - done)


class _LocalWriteError(Exception):
    """Writing the download to our own disk failed (full, read-only...): no mirror can help with that."""

    def __init__(self, error: OSError):
        super().__init__(error)
        self.error = error


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    if isinstance(exc, TooSlow):
        return str(exc)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):
        return "connection closed before the whole file arrived"
    return str(exc) or type(exc).__name__


def _prepare(dest_dir: Path) -> None:
    """Create the download folder and remove the temporaries that killed downloads left in it."""
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _output_error(exc, dest_dir) from None
    clean_stale(dest_dir)


# errno values that mean our own disk or folder is the problem (full, read-only, not ours), not the mirror
_LOCAL_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM}


def _output_error(exc: OSError, folder: Path) -> OutputError:
    return OutputError(f"cannot write the download into {exc.filename or folder}: {exc.strerror or exc}")


def fetch_file(
    spec: FileSpec,
    mirrors: Sequence[str],
    dest_dir: Path,
    *,
    timeout: float = TIMEOUT,
    progress: Callable[[str], Progress | None] | None = None,
    min_rate: float = MIN_RATE,
    grace: float = GRACE,
) -> tuple[Path, IdxFile]:
    """Download `spec` from the first mirror that serves a valid copy into `dest_dir`/NAME.gz.

    `progress(url)` may return a callback for that transfer. Returns the final path and the decoded file. Raises
    DownloadError listing each mirror's failure when none succeeds.
    """
    _prepare(dest_dir)
    target = dest_dir / f"{spec.name}.gz"
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + f"/{spec.name}.gz"
        try:
            with atomic_write(target) as out:
                _stream(url, out, timeout, progress(url) if progress else None, min_rate, grace)
                out.flush()
                decoded = read_idx(out.name)
                if spec.digest == "file":
                    from .data import file_sha256

                    actual, what = file_sha256(Path(out.name)), "file"
                else:
                    actual, what = decoded.sha256, "payload"
                if actual != spec.sha256:
                    raise DataError(f"checksum mismatch: {what} SHA-256 {actual}, expected {spec.sha256}")
            return target, decoded
        except _LocalWriteError as exc:
            raise _output_error(exc.error, dest_dir) from None
        except (OSError, http.client.HTTPException, DataError, ValueError) as exc:
            if isinstance(exc, OSError) and exc.errno in _LOCAL_ERRORS:
                raise _output_error(exc, dest_dir) from None
            failures.append(f"{url}: {_describe(exc)}")
    tried = "; ".join(failures) if failures else "no mirrors configured"
    raise DownloadError(f"could not download {spec.name}: {tried}")


class _Capped:
    """A file wrapper that refuses to grow past `limit` bytes: a mirror serving more than was published stops."""

    def __init__(self, out, limit: int):
        self.out, self.limit, self.written = out, limit, 0

    def write(self, chunk: bytes) -> int:
        self.written += len(chunk)
        if self.written > self.limit:
            raise DataError(f"the server sent more than the published {self.limit:,} bytes")
        return self.out.write(chunk)


def check_archive(path: Path, archive: ArchiveSpec) -> None:
    """Raise ChecksumError unless `path` has the archive's published size and SHA-256."""
    from .data import file_sha256

    size = path.stat().st_size
    if size != archive.size:
        raise ChecksumError(f"{path}: {size:,} bytes, but {archive.name} is published with {archive.size:,}")
    actual = file_sha256(path)
    if actual != archive.sha256:
        raise ChecksumError(f"{path}: checksum mismatch: file SHA-256 {actual}, expected {archive.sha256}")


@contextmanager
def fetch_archive(
    archive: ArchiveSpec,
    mirrors: Sequence[str],
    dest_dir: Path,
    *,
    timeout: float = TIMEOUT,
    progress: Callable[[str], Progress | None] | None = None,
) -> Iterator[Path]:
    """Download a dataset's archive from the first mirror that serves a valid copy; yield its verified path.

    The archive streams to a hidden temporary file in `dest_dir` (never into memory, never past its published
    size), is checked against its published size and SHA-256, and is removed when the block ends: only the members
    extracted from it are kept.
    """
    _prepare(dest_dir)
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + f"/{archive.name}"
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=temp_suffix(), dir=dest_dir)
        except OSError as exc:
            raise _output_error(exc, dest_dir) from None
        path = Path(tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                _stream(url, _Capped(out, archive.size), timeout, progress(url) if progress else None)
            check_archive(path, archive)
        except _LocalWriteError as exc:
            path.unlink(missing_ok=True)
            raise _output_error(exc.error, dest_dir) from None
        except PermissionError as exc:
            path.unlink(missing_ok=True)
            raise _output_error(exc, dest_dir) from None
        except (OSError, http.client.HTTPException, DataError, ValueError) as exc:
            path.unlink(missing_ok=True)
            failures.append(f"{url}: {_describe(exc).removeprefix(f'{path}: ')}")
            continue
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)
        return
    tried = "; ".join(failures) if failures else "no mirrors configured"
    raise DownloadError(f"could not download {archive.name}: {tried}")
