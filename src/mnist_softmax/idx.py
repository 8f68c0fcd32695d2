"""The IDX file format of MNIST and its relatives, read strictly.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of dimensions), one big-endian uint32 per
dimension, then the values in C order, big-endian. Files may be gzip-compressed (detected by content, not name).
Everything is checked before the data array is allocated, and the SHA-256 of the decompressed payload is computed
in the same pass, so verifying a file costs no extra read.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataFormatError

# type code -> big-endian dtype, as in the format's definition
TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_BYTES = 1 << 31  # 2 GiB: far above any MNIST-like file, far below what would exhaust memory
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class IdxFile:
    """A decoded IDX file: its array and the SHA-256 of its decompressed payload."""

    array: np.ndarray
    sha256: str


def _open(path: Path):
    with open(path, "rb") as f:
        compressed = f.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read_exactly(stream, buffer: memoryview, path: Path, what: str) -> None:
    filled = 0
    while filled < len(buffer):
        n = stream.readinto(buffer[filled : filled + _CHUNK])
        if not n:
            raise DataFormatError(
                f"{path}: truncated {what}: expected {len(buffer):,} bytes, found {filled:,}"
            )
        filled += n


def _read_growing(stream, nbytes: int, path: Path) -> bytearray:
    """Read `nbytes` from a stream whose length is unknown, growing the buffer only as data arrives, so that a
    tiny file whose header promises gigabytes costs what it holds, not what it promises."""
    data = bytearray()
    while len(data) < nbytes:
        chunk = stream.read(min(_CHUNK, nbytes - len(data)))
        if not chunk:
            raise DataFormatError(f"{path}: truncated data: expected {nbytes:,} bytes, found {len(data):,}")
        data += chunk
    return data


def read_idx(path: str | Path, *, ndim: int | None = None, dtype: str | None = None) -> IdxFile:
    """Read an IDX file (raw or gzip), checking magic, type, dimensions and length.

    `ndim` and `dtype` (e.g. "u1"), when given, are required of the file. Raises DataFormatError naming the file,
    what was expected and what was found.
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with _open(path) as stream:
            magic = bytearray(4)
            _read_exactly(stream, memoryview(magic), path, "header")
            zero, code, dims = struct.unpack(">HBB", magic)
            if zero != 0 or code not in TYPE_CODES or not 1 <= dims <= 4:
                raise DataFormatError(
                    f"{path}: not an IDX file: magic bytes are {bytes(magic).hex()}, expected 0000 then a type "
                    f"code (08, 09, 0b, 0c, 0d or 0e) and 1 to 4 dimensions"
                )
            item = TYPE_CODES[code]
            if ndim is not None and dims != ndim:
                raise DataFormatError(f"{path}: expected an IDX file of {ndim} dimensions, found {dims}")
            if dtype is not None and item != np.dtype(">" + dtype):
                raise DataFormatError(f"{path}: expected IDX type {np.dtype(dtype).name}, found {item.name}")
            raw_shape = bytearray(4 * dims)
            _read_exactly(stream, memoryview(raw_shape), path, "header")
            shape = struct.unpack(f">{dims}I", raw_shape)
            if 0 in shape:
                raise DataFormatError(f"{path}: dimensions {shape} hold no data")
            nbytes = math.prod(shape) * item.itemsize  # Python integers: no overflow, however large the header
            if nbytes > MAX_BYTES:
                raise DataFormatError(
                    f"{path}: dimensions {shape} promise {nbytes:,} bytes, more than the {MAX_BYTES:,} allowed"
                )
            if not isinstance(stream, gzip.GzipFile):
                size = path.stat().st_size
                if size != 4 + 4 * dims + nbytes:
                    raise DataFormatError(
                        f"{path}: dimensions {shape} need {4 + 4 * dims + nbytes:,} bytes, the file has {size:,}"
                    )
            if isinstance(stream, gzip.GzipFile):
                data = _read_growing(stream, nbytes, path)  # the header may lie: take only what really inflates
            else:
                data = bytearray(nbytes)  # the file's size was checked against the header above
                _read_exactly(stream, memoryview(data), path, "data")
            if stream.read(1):
                raise DataFormatError(f"{path}: trailing bytes after the {nbytes:,} bytes of data {shape} promise")
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataFormatError(f"{path}: corrupt or truncated gzip stream ({exc})") from None
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    digest.update(magic)
    digest.update(raw_shape)
    digest.update(data)
    array = np.frombuffer(data, dtype=item).reshape(shape)
    if item.itemsize > 1:
        array = array.astype(item.newbyteorder("="))
    return IdxFile(array=array, sha256=digest.hexdigest())


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool = False) -> None:
    """Write `array` as an IDX file (used by tests and to export data); uint8 unless another type is given."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in TYPE_CODES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DataFormatError(f"IDX cannot hold {array.dtype}; allowed: uint8, int8, int16, int32, float32, float64")
    payload = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += np.ascontiguousarray(array, dtype=TYPE_CODES[code]).tobytes()
    Path(path).write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
