"""IDX reader/writer: round trips for every type, and every kind of broken file refused."""

import gzip
import struct
import time
import tracemalloc

import numpy as np
import pytest

from steepest.data.idx import TYPE_CODES, read_idx, read_idx_header, write_idx
from steepest.errors import DataError, DataNotFoundError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def header(code, dims):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def put(path, data, compress=False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (1, 2, 1, 2, 1, 2, 1, 2)])
def test_round_trip_every_type(tmp_path, dtype, compress, shape):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        a = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    else:
        a = (rng.standard_normal(shape) * 1e3).astype(dtype)
    p = write_idx(tmp_path / "a.idx", a, gzip=compress)
    b = read_idx(p)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    assert b.shape == shape
    np.testing.assert_array_equal(a, b)
    assert read_idx_header(p) == (np.dtype(dtype), shape)


def test_file_layout_is_big_endian_idx(tmp_path):
    p = write_idx(tmp_path / "a.idx", np.array([[1, 2, 3]], dtype=np.int16))
    assert p.read_bytes() == header(0x0B, (1, 3)) + b"\x00\x01\x00\x02\x00\x03"


def test_gzip_is_detected_by_magic_not_name(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz_named_plain = write_idx(tmp_path / "plain.gz", a, gzip=False)
    plain_named_gz = write_idx(tmp_path / "compressed.idx", a, gzip=True)
    assert plain_named_gz.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(gz_named_plain), a)
    np.testing.assert_array_equal(read_idx(plain_named_gz), a)


def test_gzip_output_is_reproducible(tmp_path):
    a = np.arange(100, dtype=np.float32)
    assert (write_idx(tmp_path / "1", a, gzip=True).read_bytes()
            == write_idx(tmp_path / "2", a, gzip=True).read_bytes())


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", "magic number 01 00 08 01"),
        (b"\x00\x00\x0a\x01\x00\x00\x00\x01\x07", "unknown IDX type code 0x0A"),
        (b"\x00\x00\x08\x00", "0 dimensions; expected 1 to 8"),
        (header(0x08, (1,) * 9) + b"\x07", "9 dimensions; expected 1 to 8"),
        (b"\x00\x00", "only 2 bytes"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x01", "truncated header"),
        (header(0x08, (2, 5)) + bytes(7), "truncated: expected 10 bytes of data, found 7"),
        (header(0x0E, (3,)) + bytes(23), "truncated: expected 24 bytes of data, found 23"),
        (header(0x08, (2, 5)) + bytes(13), "trailing"),
        (header(0x0C, (2,)) + bytes(9), "trailing"),
    ],
    ids=["magic", "type", "ndim0", "ndim9", "short", "dims", "trunc", "trunc-f8",
         "trailing", "trailing-i4"],
)
def test_malformed_files_are_refused(tmp_path, data, message, compress):
    p = put(tmp_path / "bad.idx", data, compress)
    with pytest.raises(DataError) as e:
        read_idx(p)
    assert message in str(e.value)
    assert str(p) in str(e.value)


def test_raw_trailing_bytes_are_counted(tmp_path):
    p = put(tmp_path / "t.idx", header(0x08, (4,)) + bytes(4) + b"junk!")
    with pytest.raises(DataError, match="5 unexpected trailing bytes"):
        read_idx(p)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_gigantic_header_fails_fast_without_allocating(tmp_path, compress):
    # 10**15 bytes claimed in a file of about 20 bytes.
    p = put(tmp_path / "huge.idx", header(0x08, (100000, 100000, 100000)) + bytes(4), compress)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(DataError, match="more than the limit") as e:
            read_idx(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 0.5
    assert peak < 1 << 20
    assert "100000x100000x100000" in str(e.value)


def test_max_bytes_is_configurable(tmp_path):
    p = write_idx(tmp_path / "a.idx", np.zeros(100, dtype=np.float64), gzip=True)
    assert read_idx(p, max_bytes=800).shape == (100,)
    with pytest.raises(DataError, match="800 bytes.*limit of 799"):
        read_idx(p, max_bytes=799)


def test_plausible_header_on_tiny_gzip_is_truncated_not_a_crash(tmp_path):
    p = put(tmp_path / "liar.gz", header(0x08, (60000, 28, 28)) + bytes(100), compress=True)
    with pytest.raises(DataError, match="truncated: expected 47040000 bytes of data, found 100"):
        read_idx(p)


@pytest.fixture
def good_gz(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    return write_idx(tmp_path / "good.gz", a, gzip=True)


def test_truncated_gzip_stream(good_gz):
    data = good_gz.read_bytes()
    good_gz.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(good_gz)


def test_gzip_missing_its_trailer(good_gz):
    data = good_gz.read_bytes()
    good_gz.write_bytes(data[:-8])  # all compressed data present, CRC and size gone
    with pytest.raises(DataError, match="gzip"):
        read_idx(good_gz)


def test_gzip_with_bad_crc(good_gz):
    data = bytearray(good_gz.read_bytes())
    data[-8] ^= 0xFF  # first byte of the CRC-32 in the trailer
    good_gz.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(good_gz)


def test_gzip_with_garbled_deflate_data(good_gz):
    data = bytearray(good_gz.read_bytes())
    for i in range(20, len(data) - 20, 97):
        data[i] ^= 0x5A
    good_gz.write_bytes(bytes(data))
    with pytest.raises(DataError) as e:
        read_idx(good_gz)
    assert str(good_gz) in str(e.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataNotFoundError, match="no such file"):
        read_idx(tmp_path / "nope.gz")
    with pytest.raises(DataError, match="is a directory"):
        read_idx(tmp_path)


@pytest.mark.parametrize("a", [np.zeros(3, dtype=np.int64), np.zeros(3, dtype=bool),
                               np.float32(1.0), np.zeros((1,) * 9, dtype=np.uint8)],
                         ids=["int64", "bool", "0-d", "9-d"])
def test_write_refuses_what_idx_cannot_hold(tmp_path, a):
    with pytest.raises(DataError, match="cannot write"):
        write_idx(tmp_path / "x.idx", a)


def test_type_code_table_matches_the_format():
    assert {c: d.str for c, d in TYPE_CODES.items()} == {
        0x08: "|u1", 0x09: "|i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
