"""Hostile and broken data files: property-based tests of every data loader, and regressions.

The one property: whatever the bytes, a loader either returns a correct result (a Dataset that
keeps its contract, an array of the promised shape) or raises steepest's own typed error
(a SteepestError) whose message names the file. Any other exception fails the test. A header
that claims a gigantic array is refused before memory is allocated: checked with tracemalloc
and, for what tracemalloc cannot see (Pillow's C allocations), in a subprocess whose address
space is limited to 1 GiB.

This is the short version that CI runs; ``fuzz/run.py`` is the long campaign (see fuzz/README.md).
The regression tests at the end hold the smallest input of each crash the campaign found.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from steepest.data import (
    image_to_mnist,
    load_csv,
    load_file,
    load_idx_pair,
    load_image_folder,
    load_mnist,
    load_npz,
    read_idx,
    read_idx_header,
    write_idx,
)
from steepest.errors import DataError, SteepestError

ROOT = Path(__file__).resolve().parents[1]


def _fuzz_module(name):
    """A module of the fuzz campaign (fuzz/ is not a package: load it by path)."""
    spec = importlib.util.spec_from_file_location("steepest_fuzz_" + name.replace("/", "_"),
                                                  ROOT / "fuzz" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


check_dataset = _fuzz_module("targets/common").check_dataset
mutate = _fuzz_module("mutate")

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def outcome(load, *paths):
    """Run ``load()``; return ("load", result) or ("typed", error). Anything else propagates."""
    try:
        return "load", load()
    except SteepestError as e:
        text = str(e)
        assert any(str(p) in text or p.name in text for p in paths), f"message names no file: {text}"
        return "typed", e


@st.composite
def mutations(draw):
    """A list of (mutator index, seed): format-blind edits, replayable."""
    return draw(st.lists(st.tuples(st.integers(0, len(mutate.MUTATORS) - 1), st.integers(0, 2**32)),
                         min_size=1, max_size=4))


def apply(data: bytes, edits) -> bytes:
    import random

    for k, seed in edits:
        data = mutate.MUTATORS[k](random.Random(seed), data)
    return data


# ---------------------------------------------------------------- IDX

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def idx_header(code, dims):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@FAST
@given(a=hnp.arrays(st.sampled_from(IDX_DTYPES), hnp.array_shapes(min_dims=1, max_dims=4, max_side=5)),
       compress=st.booleans())
def test_idx_round_trip(scratch, a, compress):
    p = write_idx(scratch / "rt.idx", a, gzip=compress)
    b = read_idx(p)
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)  # NaN == NaN here


@FAST
@given(data=st.binary(max_size=300), compress=st.booleans())
def test_idx_any_bytes(scratch, data, compress):
    p = scratch / "any.idx"
    p.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    kind, result = outcome(lambda: read_idx(p), p)
    if kind == "load":
        assert 1 <= result.ndim <= 8 and result.dtype.isnative


@FAST
@given(shape=st.sampled_from([(4, 28, 28), (4,), (3, 5), (2, 2, 2, 2)]), edits=mutations(),
       compress=st.booleans(), how=st.sampled_from(["read", "header", "pair"]))
def test_idx_mutated_files(scratch, shape, edits, compress, how):
    rng = np.random.default_rng(0)
    valid = idx_header(0x08, shape) + rng.integers(0, 10, shape, dtype=np.uint8).tobytes()
    data = apply(valid, edits)
    p = scratch / "m.idx"
    p.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    if how == "read":
        outcome(lambda: read_idx(p), p)
    elif how == "header":
        outcome(lambda: read_idx_header(p), p)
    else:
        labels = write_idx(scratch / "labels.idx", np.arange(4, dtype=np.uint8))
        kind, d = outcome(lambda: load_idx_pair(p, labels), p, labels)
        if kind == "load":
            check_dataset(d)


@settings(FAST, max_examples=60)
@given(dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=8),
       code=st.sampled_from([0x08, 0x0D, 0x0E]), compress=st.booleans())
def test_idx_gigantic_claims_cost_nothing(scratch, dims, code, compress):
    n_bytes = int(np.prod(dims, dtype=object)) * {0x08: 1, 0x0D: 4, 0x0E: 8}[code]
    assume(n_bytes > 2**31)  # over the default limit, in a file of a few dozen bytes
    p = scratch / "huge.idx"
    data = idx_header(code, dims) + bytes(16)
    p.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="limit"):
            read_idx(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


# ---------------------------------------------------------------- npz

ANY_DTYPE = st.one_of(hnp.scalar_dtypes(), hnp.byte_string_dtypes(max_len=4),
                      hnp.unicode_string_dtypes(max_len=4), st.just(np.dtype("f2")),
                      st.just(np.dtype(">f8")), st.just(np.dtype([("a", "<f4"), ("b", "<i2")])))


@FAST
@given(X=hnp.arrays(ANY_DTYPE, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)),
       y=hnp.arrays(ANY_DTYPE, hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4)),
       compressed=st.booleans())
def test_npz_any_arrays(scratch, X, y, compressed):
    p = scratch / "arrays.npz"
    (np.savez_compressed if compressed else np.savez)(p, X=X, y=y)
    kind, d = outcome(lambda: load_npz(p), p)
    if kind == "load":
        check_dataset(d)
        if X.ndim == 2 and X.dtype.kind == "f":
            np.testing.assert_array_equal(d.X_train, X.astype(np.float32))


def _npy(header: str, payload: bytes = b"", version=(1, 0)) -> bytes:
    h = header.encode("latin1")
    size = struct.pack("<H", len(h)) if version == (1, 0) else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes(version) + size + h + payload


def _zip(members, compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


Y_NPY = _npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", struct.pack("<2q", 0, 1))


@settings(FAST, max_examples=200)
@given(shape=st.lists(st.integers(-2, 2**63), min_size=0, max_size=4).map(tuple),
       descr=st.sampled_from(["<f8", ">f8", "|u1", "<c16", "|O", "<U3", "|V0", "<M8[s]", "|b1"]),
       fortran=st.booleans(), payload=st.binary(max_size=64))
def test_npz_header_claims_are_checked_before_allocating(scratch, shape, descr, fortran, payload):
    p = scratch / "claims.npz"
    header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    p.write_bytes(_zip([("X.npy", _npy(header, payload)), ("y.npy", Y_NPY)]))
    tracemalloc.start()
    try:
        kind, d = outcome(lambda: load_npz(p), p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # whatever the shape claims, the file holds at most 64 bytes of data
    if kind == "load":
        check_dataset(d)


@FAST
@given(edits=mutations(), compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED,
                                                       zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]),
       via_file=st.booleans())
def test_npz_mutated_archives(scratch, edits, compression, via_file):
    buf = io.BytesIO()
    np.savez(buf, X=np.arange(6.0).reshape(3, 2), y=np.array([0, 1, 1]))
    members = [(i.filename, zipfile.ZipFile(buf).read(i)) for i in zipfile.ZipFile(buf).infolist()]
    p = scratch / "mut.npz"
    p.write_bytes(apply(_zip(members, compression), edits))
    kind, d = outcome(lambda: (load_file if via_file else load_npz)(p), p)
    if kind == "load":
        check_dataset(d)


class _Exploit:
    """Unpickling this creates the file ``target``: proof that something unpickled."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("where", ["X", "y", "X_test"])
def test_npz_never_unpickles(tmp_path, where):
    marker = tmp_path / "PWNED"
    arrays = {"X": np.ones((2, 2)), "y": np.array([0, 1]), "X_test": np.ones((1, 2)), "y_test": np.array([0])}
    arrays[where] = np.array([_Exploit(str(marker))], dtype=object)
    p = tmp_path / "evil.npz"
    np.savez(p, **arrays)  # np.savez pickles object arrays
    with pytest.raises(DataError, match="pickled"):
        load_npz(p)
    assert not marker.exists()
    p.write_bytes(pickle.dumps(_Exploit(str(marker))))  # a bare pickle named .npz
    with pytest.raises(DataError):
        load_npz(p)
    assert not marker.exists()


# ---------------------------------------------------------------- CSV

NUMBERS = st.one_of(st.integers(-10**6, 10**6).map(str),
                    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr))
ODD_CELLS = st.sampled_from(["", " ", "nan", "inf", "-inf", "1e999", "x", "1,5", '"a,b"', '"', "\x00",
                             "é", "١", "0x10", "1_0", "9" * 30, "\t", '"line\nbreak"'])


@settings(FAST, max_examples=200)
@given(rows=st.lists(st.lists(st.one_of(NUMBERS, ODD_CELLS), min_size=1, max_size=5), min_size=0, max_size=8),
       header=st.booleans(), delimiter=st.sampled_from([",", "\t", ";"]), newline=st.sampled_from(["\n", "\r\n"]))
def test_csv_ragged_and_odd_tables(scratch, rows, header, delimiter, newline):
    lines = ([delimiter.join(["label"] + [f"f{j}" for j in range(4)])] if header else [])
    lines += [delimiter.join(r) for r in rows]
    p = scratch / "odd.csv"
    p.write_text(newline.join(lines) + newline, encoding="utf-8", newline="")
    kind, d = outcome(lambda: load_csv(p, delimiter=delimiter), p)
    if kind == "load":
        check_dataset(d)


@FAST
@given(X=hnp.arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 6)),
                    elements=st.floats(-2.0**100, 2.0**100, width=32)),
       labels=st.data(), header=st.booleans())
def test_csv_well_formed_tables_load_exactly(scratch, X, labels, header):
    y = np.array(labels.draw(st.lists(st.integers(0, 9), min_size=len(X), max_size=len(X))))
    lines = ([",".join(["label"] + [f"x{j}" for j in range(X.shape[1])])] if header else [])
    lines += [",".join([str(label)] + [repr(float(v)) for v in row]) for label, row in zip(y, X)]
    p = scratch / "good.csv"
    p.write_text("\n".join(lines) + "\n")
    d = load_file(p)
    check_dataset(d)
    np.testing.assert_array_equal(d.X_train, X)
    np.testing.assert_array_equal(d.y_train, y)


@FAST
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".tsv", ".txt"]))
def test_csv_any_bytes(scratch, data, suffix):
    p = scratch / ("bytes" + suffix)
    p.write_bytes(data)
    kind, d = outcome(lambda: load_file(p), p)
    if kind == "load":
        check_dataset(d)


# ---------------------------------------------------------------- images

IMAGE_DTYPES = st.sampled_from([np.uint8, np.int16, np.float32, np.float64, np.bool_])


@settings(FAST, max_examples=200)
@given(a=hnp.arrays(IMAGE_DTYPES, st.one_of(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40),
                                            st.tuples(st.integers(1, 20), st.integers(1, 20), st.sampled_from([3, 4])),
                                            hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3))))
def test_image_arrays(a):
    try:
        out = image_to_mnist(a)
    except SteepestError:
        return
    assert out.shape == (784,) and out.dtype == np.uint8


def _picture(fmt, mode, size=(28, 20)):
    a = np.full(size[::-1], 255, np.uint8)
    a[4:16, 8:12] = 0
    buf = io.BytesIO()
    Image.fromarray(a).convert(mode).save(buf, format=fmt)
    return buf.getvalue()


PICTURES = [_picture("PNG", "L"), _picture("PNG", "RGBA"), _picture("PNG", "P"), _picture("JPEG", "RGB"),
            _picture("GIF", "L"), _picture("BMP", "RGB"), _picture("TIFF", "L"), _picture("PPM", "RGB"),
            _picture("WEBP", "RGB")]


@pytest.mark.filterwarnings("ignore:.*:UserWarning:PIL")  # Pillow's notes on corrupt TIFF tags
@settings(FAST, max_examples=300)
@given(k=st.integers(0, len(PICTURES) - 1), edits=mutations(),
       suffix=st.sampled_from([".png", ".jpg", ".gif", ".bmp", ".tif", ".pgm"]))
def test_image_files_mutated(scratch, k, edits, suffix):
    p = scratch / ("pic" + suffix)
    p.write_bytes(apply(PICTURES[k], edits))
    kind, out = outcome(lambda: image_to_mnist(p), p)
    if kind == "load":
        assert out.shape == (784,) and out.dtype == np.uint8


def _png(w, h, color=0, idat=None, depth=8):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    idat = zlib.compress(bytes(1 + w * channels) * 2) if idat is None else idat
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@settings(FAST, max_examples=30)
@given(w=st.integers(1, 2**31 - 1), h=st.integers(1, 2**31 - 1), color=st.sampled_from([0, 2, 4, 6]))
def test_image_claims_past_the_pixel_limit_are_refused_unread(scratch, w, h, color):
    assume(w * h > Image.MAX_IMAGE_PIXELS)
    p = scratch / "bomb.png"
    p.write_bytes(_png(min(w, 2**20), h, color, idat=zlib.compress(bytes(64))))
    assume(min(w, 2**20) * h > Image.MAX_IMAGE_PIXELS)
    with pytest.raises(DataError, match="too large"):
        image_to_mnist(p)


def test_image_folder_with_one_broken_file(tmp_path):
    for name, data in [("a/good.png", PICTURES[0]), ("b/bad.png", PICTURES[0][:40])]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError, match="bad.png"):
        load_image_folder(tmp_path)


# ---------------------------------------------------------------- TOML configs

def test_toml_config_any_bytes(scratch):
    resolve = pytest.importorskip("steepest.commands._trainconfig").resolve
    from types import SimpleNamespace

    @FAST
    @given(data=st.one_of(st.binary(max_size=200),
                          st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
                          st.just(b"hidden = " + b"[" * 2000)))
    def check(data):
        p = scratch / "run.toml"
        p.write_bytes(data)
        try:
            assert isinstance(resolve(SimpleNamespace(config=str(p))), dict)
        except SteepestError:
            pass

    check()


# ---------------------------------------------------------------- resource limits

LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB of address space in all
import numpy as np
from steepest.errors import SteepestError
from steepest.data import {loader}
try:
    {loader}(sys.argv[1])
    print("load")
except SteepestError as e:
    print("typed:", e)
"""


def run_limited(loader, path):
    """Call ``loader(path)`` in a fresh process limited to 1 GiB of address space."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(LIMITED.format(loader=loader)), str(path)],
                       capture_output=True, text=True, timeout=120, env=env)  # BLAS threads reserve memory
    assert r.returncode == 0, r.stderr[-2000:]  # a MemoryError would end the process with a traceback
    return r.stdout.strip()


def _npz_claiming(n_bytes: int) -> bytes:
    """An .npz whose X header, and the zip entry's size, claim ``n_bytes``; it holds 16 bytes."""
    x = _npy(f"{{'descr': '|u1', 'fortran_order': False, 'shape': ({n_bytes},), }}", bytes(16))
    data = bytearray(_zip([("X.npy", x), ("y.npy", Y_NPY)]))
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size fields
        i = data.find(sig)
        data[i + at:i + at + 4] = struct.pack("<I", n_bytes)
    return bytes(data)


def _tiff_claiming(height: int) -> bytes:
    """A float TIFF 5 pixels wide whose ImageLength says ``height``; one strip of 4 rows is there."""
    buf = io.BytesIO()
    Image.new("F", (5, 4)).save(buf, format="TIFF")
    b = bytearray(buf.getvalue())
    ifd = struct.unpack("<I", b[4:8])[0]
    for k in range(struct.unpack("<H", b[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * k
        if struct.unpack("<H", b[entry:entry + 2])[0] == 257:  # ImageLength
            b[entry + 2:entry + 12] = struct.pack("<HII", 4, 1, height)  # LONG, 1 value
    return bytes(b)


def _lzma_npz(dict_size: int) -> bytes:
    """An .npz whose X member is LZMA-compressed with a header stating ``dict_size``."""
    data = bytearray(_zip([("X.npy", b"\x93NUMPY" + bytes(100)), ("y.npy", Y_NPY)], zipfile.ZIP_LZMA))
    at = 30 + len("X.npy") + 5  # local header, name, LZMA version and properties size, lc/lp/pb
    data[at:at + 4] = struct.pack("<I", dict_size)
    return bytes(data)


GIGANTIC = {  # file name: (loader, content)
    "idx-gz-1.5GB.idx": ("read_idx", gzip.compress(idx_header(0x08, (1500, 1000, 1000)) + bytes(100))),
    "idx-raw-1PB.idx": ("read_idx", idx_header(0x08, (100000, 100000, 100000)) + bytes(4)),
    "npz-8TB.npz": ("load_npz", _zip([("X.npy", _npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }", bytes(64))), ("y.npy", Y_NPY)])),
    "npz-1.5GB.npz": ("load_npz", _npz_claiming(1_500_000_000)),
    "npz-lzma-4GB-dictionary.npz": ("load_npz", _lzma_npz(0xFFFFFFFF)),
    "png-10G-pixels.png": ("image_to_mnist", _png(100000, 100000, 6)),
    "png-144M-pixels.png": ("image_to_mnist", _png(12000, 12000, 0)),
    "png-88M-rgba-pixels.png": ("image_to_mnist", _png(9400, 9400, 6)),
    "png-60x1048576-la.png": ("image_to_mnist", _png(60, 1048576, 4)),
    # the IDAT chunk's length field says 0xF00000xx bytes (CRC left as it was)
    "tiff-84M-float-pixels.tif": ("image_to_mnist", _tiff_claiming(16777224)),
    "png-4GB-idat-length.png": ("image_to_mnist", _png(28, 28, 0)[:33] + b"\xf0" + _png(28, 28, 0)[34:]),
}


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux")
@pytest.mark.parametrize("name", GIGANTIC)
def test_gigantic_claims_under_1_gib_of_address_space(tmp_path, name):
    loader, content = GIGANTIC[name]
    p = tmp_path / name
    p.write_bytes(content)
    result = run_limited(loader, p)
    assert result.startswith("typed:"), result
    assert name in result


# ---------------------------------------------------------------- regressions: what fuzz/run.py found
# Each input is the smallest form of a crash the campaign found in the loaders as first written.

def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _npz_with(members):
    return _zip(members)


GOOD_NPZ = _zip([("X.npy", _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }", bytes(16))),
                 ("y.npy", Y_NPY)])


def _flip(data: bytes, at: int, mask: int = 0xFF) -> bytes:
    b = bytearray(data)
    b[at] ^= mask
    return bytes(b)


def _zip_field(data: bytes, sig: bytes, offset: int, value: int, size: int = 2) -> bytes:
    b = bytearray(data)
    i = -1
    while (i := b.find(sig, i + 1)) >= 0:
        b[i + offset:i + offset + size] = value.to_bytes(size, "little")
    return bytes(b)


NPZ_REGRESSIONS = {
    # was TypeError: 'numpy.ndarray' object does not support the context manager protocol
    "npy-named-npz": (_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", bytes(8)),
                      "single .npy array"),
    # was zipfile.BadZipFile
    "not-a-zip": (b"PK\x03\x04 this is no zip", "not a readable .npz"),
    "bad-crc": (_flip(GOOD_NPZ, GOOD_NPZ.find(b"\x93NUMPY") + 130, 0x01), "Bad CRC-32"),  # in X's data
    # was RuntimeError: ... is encrypted, password required for extraction
    "encrypted": (_zip_field(_zip_field(GOOD_NPZ, b"PK\x03\x04", 6, 1), b"PK\x01\x02", 8, 1), "encrypted"),
    # was NotImplementedError: That compression method is not supported
    "method-99": (_zip_field(_zip_field(GOOD_NPZ, b"PK\x03\x04", 8, 99), b"PK\x01\x02", 10, 99),
                  "zip method 99"),
    # was zlib.error: Error -3 while decompressing data
    "bad-deflate": (_flip(_zip([("X.npy", b"\x93NUMPY" + bytes(200)), ("y.npy", Y_NPY)], zipfile.ZIP_DEFLATED),
                          40), "npz"),
    # was MemoryError: Unable to allocate 8.00 TiB
    "8-TiB-claim": (_zip([("X.npy", _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }")),
                          ("y.npy", Y_NPY)]), "more than"),
    # was tokenize.TokenError: ('EOF in multi-line statement', (2, 0))
    "header-unclosed": (_zip([("X.npy", _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,\n")),
                              ("y.npy", Y_NPY)]), "malformed .npy header"),
    # was RecursionError / MemoryError from ast.literal_eval on the header
    "header-deep": (_zip([("X.npy", _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (" + "-" * 5000 + "1,)}")),
                          ("y.npy", Y_NPY)]), "malformed .npy header"),
    "header-plus": (_zip([("X.npy", _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (" + "+" * 9000 + "1,)}")),
                          ("y.npy", Y_NPY)]), "malformed .npy header"),
    # was TypeError: an integer is required (reshape to a shape holding True)
    "shape-true": (_zip([("X.npy", _npy("{'descr': '|u1', 'fortran_order': False, 'shape': (True, 2), }", b"\x01\x02")),
                         ("y.npy", _npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", bytes(8)))]),
                   None),
    # was TypeError from reshape: an empty array whose other dimension NumPy cannot index
    "shape-2**63": (_zip([("X.npy", _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807, 0), }")),
                          ("y.npy", Y_NPY)]), "impossible shape"),
    # was ValueError: cannot reshape array of size 0 into shape (0,newaxis)
    "empty-images": (_zip([("X.npy", _npy("{'descr': '|u1', 'fortran_order': False, 'shape': (0, 28, 28), }")),
                           ("y.npy", _npy("{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }"))]), "no data"),
    # was NotImplementedError: zip file version 14.8 (the "version needed to extract" field)
    "zip-version": (_zip_field(GOOD_NPZ, b"PK\x01\x02", 6, 0x0E94), "npz"),
}


@pytest.mark.parametrize("name", NPZ_REGRESSIONS)
def test_regression_npz(tmp_path, name):
    data, message = NPZ_REGRESSIONS[name]
    p = _write(tmp_path, name + ".npz", data)
    if message is None:  # it must merely not crash
        outcome(lambda: load_npz(p), p)
        return
    with pytest.raises(DataError, match=message) as e:
        load_npz(p)
    assert str(p) in str(e.value)


def test_regression_idx_empty_array_with_unindexable_dimensions(tmp_path):
    # was ValueError: array is too big; `arr.size * arr.dtype.itemsize` is larger than the maximum
    p = _write(tmp_path, "x.idx", idx_header(0x08, (0, 2**32 - 1, 2**32 - 1, 2**32 - 1)))
    with pytest.raises(DataError, match="impossible shape"):
        read_idx(p)


def test_regression_idx_pair_of_empty_images(tmp_path):
    # was ValueError: cannot reshape array of size 0 into shape (0,newaxis)
    images = _write(tmp_path, "i.idx", idx_header(0x08, (0, 28, 28)))
    labels = _write(tmp_path, "l.idx", idx_header(0x08, (0,)))
    with pytest.raises(DataError, match="no data"):
        load_idx_pair(images, labels)


def test_mnist_directory_with_a_lying_gzip(tmp_path, tiny_mnist):
    # the gzip path used to reserve the claimed size up front; the 1 GiB test above shows the cost
    d = tiny_mnist(tmp_path / "m")
    (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header(0x08, (60000, 28, 28)) + bytes(10)))
    with pytest.raises(DataError, match="truncated|do not belong together"):
        load_mnist(d)


def test_regression_csv_field_over_the_csv_module_limit(tmp_path):
    # was _csv.Error: field larger than field limit (131072), from the slow re-parse; then 300 s of regular
    # expression backtracking to refuse the cell (a time limit catches the class: any long refused cell)
    import time

    p = _write(tmp_path, "big.csv", b"label,a\n0,1\n1,2\n0," + b"9" * 140000 + b"x\n")
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="big.csv"):
        load_csv(p)
    assert time.perf_counter() - t0 < 10


def test_regression_csv_field_over_the_limit_while_naming_a_row(tmp_path):
    # was _csv.Error raised while finding the line number for a message about a bad label; the csv module
    # now reads cells of any length, so the line is named
    p = _write(tmp_path, "big.csv", b"label,a\n-inf,1\n1,0." + b"0" * 140000 + b"\n")
    with pytest.raises(DataError, match="label -inf at line 2 is not an integer"):
        load_csv(p)


def test_regression_csv_bad_utf8_past_the_first_buffer(tmp_path):
    # was UnicodeDecodeError: the first two rows decode, a byte 8 KB later does not
    p = _write(tmp_path, "late.csv", b"label,a\n" + b"1,2\n" * 3000 + b"1,\xed\xa0\x80\n")
    with pytest.raises(DataError, match="cannot read as CSV text"):
        load_csv(p)


def test_regression_csv_quote_that_the_fast_parser_ignores(tmp_path):
    # was IndexError: np.loadtxt sees 3 data rows; the csv module, reading for the message's line
    # number, sees a quoted field running to the end of the file
    p = _write(tmp_path, "q.csv", b'label,a\n0,1\n",1\n0,inf\n')
    with pytest.raises(DataError, match="data row 3, column a is not finite|line 4 has 1 columns"):
        load_csv(p)


@pytest.mark.parametrize("a", [np.full((5, 5), np.nan), np.array([[np.inf, 0], [0, 0]]),
                               np.array([[None, 1]], dtype=object), np.zeros((3, 3), dtype=complex)],
                         ids=["nan", "inf", "object", "complex"])
def test_regression_image_arrays_that_are_not_pictures(a):
    # NaN was ValueError: zero-size array to reduction operation minimum which has no identity;
    # object was TypeError from astype; complex used to be cut to its real part without a word
    with pytest.raises(DataError, match="image array"):
        image_to_mnist(a)


def test_regression_png_icc_chunk_after_the_pixels(tmp_path):
    # was IndexError from Pillow's PNG reader (chunk_iCCP) during load()
    good = _png(28, 28, 0)
    iccp = struct.pack(">I", 0) + b"iCCP" + struct.pack(">I", zlib.crc32(b"iCCP"))
    p = _write(tmp_path, "iccp.png", good[:-12] + iccp + good[-12:])
    with pytest.raises(DataError, match="iccp.png: not a readable image"):
        image_to_mnist(p)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_regression_tiff_strip_offset_that_is_a_fraction(tmp_path):
    # was TypeError: 'IFDRational' object cannot be interpreted as an integer, from Pillow's load()
    buf = io.BytesIO()
    Image.new("F", (1, 1)).save(buf, format="TIFF")
    b = bytearray(buf.getvalue())
    ifd = struct.unpack("<I", b[4:8])[0]
    for k in range(struct.unpack("<H", b[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * k
        if struct.unpack("<H", b[entry:entry + 2])[0] == 273:  # StripOffsets: RATIONAL 8/9, at the end
            b[entry + 2:entry + 12] = struct.pack("<HII", 5, 1, len(b))
    p = _write(tmp_path, "r.tif", bytes(b) + struct.pack("<II", 8, 9))
    with pytest.raises(DataError, match="r.tif: not a readable image"):
        image_to_mnist(p)


def test_regression_png_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    # Pillow only warns between 1x and 2x MAX_IMAGE_PIXELS, then decoded (1.2 GB for this file)
    p = _write(tmp_path, "wide.png", _png(12000, 12000, 0))
    with pytest.raises(DataError, match="too large to read safely"):
        image_to_mnist(p)


def test_regression_formats_steepest_does_not_read(tmp_path):
    # Pillow picks a decoder by content: EPS named .png would have started Ghostscript
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="EPS")
    p = _write(tmp_path, "digit.png", buf.getvalue())
    with pytest.raises(DataError, match="format steepest reads"):
        image_to_mnist(p)


def test_big_pictures_are_shrunk_without_changing_the_digit(tmp_path):
    # the shrinking that keeps tiny bombs cheap leaves a real (large) picture's digit as it was
    a = np.full((3000, 2400), 255, np.uint8)
    a[600:2400, 1000:1400] = 0
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    Image.fromarray(a).save(big)
    Image.fromarray(a[::2, ::2]).save(small)
    diff = np.abs(image_to_mnist(big).astype(int) - image_to_mnist(small).astype(int))
    assert diff.max() <= 2


CORPUS_RUN = """
import json, resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from steepest.errors import SteepestError
from steepest.data import image_to_mnist, load_file, load_npz, read_idx
loaders = {"idx": read_idx, "npz": load_npz, "csv": load_file, "image": image_to_mnist}
out = {}
for path in sorted(Path(sys.argv[1]).glob("*/*")):
    try:
        loaders[path.parent.name](path)
        out[path.name] = "load"
    except SteepestError:
        out[path.name] = "typed"
    except BaseException as e:
        out[path.name] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux")
def test_crash_corpus_under_1_gib_of_address_space():
    """Every input that crashed a loader in the campaigns (fuzz/corpus/) now loads or is refused."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", CORPUS_RUN, str(ROOT / "fuzz" / "corpus")],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    outcomes = json.loads(r.stdout)
    assert len(outcomes) >= 40
    assert {name: o for name, o in outcomes.items() if o not in ("load", "typed")} == {}


# ---------------------------------------------------------------- the campaign script itself

def test_fuzz_campaign_smoke(tmp_path):
    """A few hundred inputs of every target through fuzz/run.py: no crash, and the report is written."""
    r = subprocess.run([sys.executable, str(ROOT / "fuzz" / "run.py"), "--target", "all", "--count", "360",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = json.loads((tmp_path / "RESULTS.json").read_text())["runs"]["mutate"]
    assert doc["totals"]["crashes"] == 0
    assert doc["totals"]["inputs"] >= 240
    assert "crashes" in (tmp_path / "RESULTS.md").read_text()
