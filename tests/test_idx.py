import gzip
import struct

import numpy as np
import pytest

from mnist_softmax.errors import DataFormatError
from mnist_softmax.idx import read_idx, write_idx


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_and_payload_hash(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x.idx"
    write_idx(path, array, compress=compress)
    result = read_idx(path, ndim=3, dtype="u1")
    np.testing.assert_array_equal(result.array, array)
    import hashlib

    raw = struct.pack(">HBB3I", 0, 8, 3, 2, 3, 4) + array.tobytes()
    assert result.sha256 == hashlib.sha256(raw).hexdigest()


def test_big_endian_types_are_decoded(tmp_path):
    array = np.array([[1.5, -2.0], [3.25, 1e6]], dtype=np.float32)
    write_idx(tmp_path / "f", array)
    out = read_idx(tmp_path / "f").array
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def _write(path, data: bytes, compress=False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_bad_magic(tmp_path, compress):
    path = _write(tmp_path / "bad", b"\x01\x02\x08\x01" + b"\0" * 8, compress)
    with pytest.raises(DataFormatError, match=r"bad: not an IDX file: magic bytes are 01020801"):
        read_idx(path)


def test_not_idx_at_all(tmp_path):
    path = _write(tmp_path / "page.html", b"<html>404 Not Found</html>")
    with pytest.raises(DataFormatError, match="not an IDX file"):
        read_idx(path)


def test_empty_file(tmp_path):
    path = _write(tmp_path / "empty", b"")
    with pytest.raises(DataFormatError, match=r"empty: truncated header: expected 4 bytes, found 0"):
        read_idx(path)


def test_wrong_dimensions_and_type(tmp_path):
    write_idx(tmp_path / "labels", np.zeros(5, np.uint8))
    with pytest.raises(DataFormatError, match="expected an IDX file of 3 dimensions, found 1"):
        read_idx(tmp_path / "labels", ndim=3)
    write_idx(tmp_path / "ints", np.zeros(5, np.int32))
    with pytest.raises(DataFormatError, match="expected IDX type uint8, found"):
        read_idx(tmp_path / "ints", dtype="u1")


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_data(tmp_path, compress):
    header = struct.pack(">HBB3I", 0, 8, 3, 10, 28, 28)
    path = _write(tmp_path / "short", header + b"\0" * 1000, compress)
    pattern = ("need 7,856 bytes, the file has 1,016" if not compress
               else "truncated data: expected 7,840 bytes, found 1,000")
    with pytest.raises(DataFormatError, match=pattern):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    full = gzip.compress(struct.pack(">HBB1I", 0, 8, 1, 5000) + bytes(range(256)) * 20)
    path = _write(tmp_path / "cut.gz", full[: len(full) // 2])
    with pytest.raises(DataFormatError, match="cut.gz: (corrupt or truncated gzip stream|truncated data)"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    full = bytearray(gzip.compress(struct.pack(">HBB1I", 0, 8, 1, 100) + b"\x07" * 100))
    full[15] ^= 0xFF
    path = _write(tmp_path / "bad.gz", bytes(full))
    with pytest.raises(DataFormatError, match="corrupt or truncated gzip stream"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    data = struct.pack(">HBB1I", 0, 8, 1, 3) + b"\1\2\3" + b"extra"
    with pytest.raises(DataFormatError, match="need 11 bytes, the file has 16"):
        read_idx(_write(tmp_path / "raw", data))
    with pytest.raises(DataFormatError, match="trailing bytes"):
        read_idx(_write(tmp_path / "z.gz", data, compress=True))


def test_absurd_dimensions_rejected_before_allocating(tmp_path):
    # 4 billion x 4 billion x ... would be exabytes: refused from the header alone.
    header = struct.pack(">HBB3I", 0, 8, 3, 0xFFFFFFFF, 0xFFFFFFFF, 28)
    with pytest.raises(DataFormatError, match="more than the 2,147,483,648 allowed"):
        read_idx(_write(tmp_path / "huge.gz", header + b"\0" * 10, compress=True))


def test_zero_dimension(tmp_path):
    with pytest.raises(DataFormatError, match="hold no data"):
        read_idx(_write(tmp_path / "zero", struct.pack(">HBB3I", 0, 8, 3, 0, 28, 28)))


def test_unreadable_path(tmp_path):
    with pytest.raises(DataFormatError, match="cannot read"):
        read_idx(tmp_path / "missing")
