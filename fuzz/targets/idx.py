"""IDX files: read_idx, read_idx_header, load_idx_pair and load_mnist on mutated headers and data."""

from __future__ import annotations

import gzip
import random
import struct
import zlib
from pathlib import Path

import numpy as np

import mutate
from targets.common import Case, check_dataset, expect

NAME = "idx"
CODES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(code: int, shape, payload: bytes) -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def _valid(code, shape, rng) -> bytes:
    dt = np.dtype(CODES[code])
    if dt.kind == "f":
        a = rng.standard_normal(shape) * 100
        if a.size:
            a.flat[0] = np.nan if rng.random() < 0.3 else a.flat[0]
    else:
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, shape, endpoint=True)
    return idx_bytes(code, shape, np.asarray(a, dtype=dt).tobytes())


def images(n=4, rng=None) -> bytes:
    rng = rng or np.random.default_rng(1)
    return idx_bytes(0x08, (n, 28, 28), rng.integers(0, 256, (n, 28, 28), dtype=np.uint8).tobytes())


def labels(n=4, rng=None) -> bytes:
    rng = rng or np.random.default_rng(2)
    return idx_bytes(0x08, (n,), rng.integers(0, 10, n, dtype=np.uint8).tobytes())


def seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    out = [images(), labels(), images(1), labels(1), idx_bytes(0x08, (3, 2, 2), bytes(12))]
    for code in CODES:
        for shape in [(5,), (3, 4), (2, 3, 4), (0,), (1, 2, 1, 2, 1, 2, 1, 1)]:
            out.append(_valid(code, shape, rng))
    return out


def _header_change(r: random.Random, raw: bytes) -> bytes:
    b = bytearray(raw)
    if len(b) < 4:
        return bytes(b) + bytes(4 - len(b))
    what = r.random()
    if what < 0.15:
        b[r.randrange(2)] = r.choice((1, 0xFF, 0x08))
    elif what < 0.35:
        b[2] = r.choice(list(CODES) + [0, 0x0A, 0x0F, 0xFF, r.randrange(256)])
    elif what < 0.55:
        b[3] = r.choice((0, 1, 2, 3, 4, 8, 9, 0xFF, (b[3] + 1) % 256, (b[3] - 1) % 256))
    else:
        ndim = max(1, min(b[3], (len(b) - 4) // 4))
        i = 4 + 4 * r.randrange(ndim)
        old = struct.unpack(">I", bytes(b[i:i + 4]).ljust(4, b"\0"))[0]
        new = r.choice(mutate.INTERESTING_32 + [old + 1, max(old - 1, 0), old * 2, 0])
        b[i:i + 4] = struct.pack(">I", new & 0xFFFFFFFF)
    return bytes(b)


def _gzip_variant(r: random.Random, raw: bytes) -> bytes:
    gz = gzip.compress(raw, compresslevel=r.choice((0, 1, 6, 9)), mtime=0)
    what = r.random()
    if what < 0.4:
        return gz
    if what < 0.55:  # CRC or ISIZE in the trailer
        b = bytearray(gz)
        b[-r.randint(1, 8)] ^= 1 << r.randrange(8)
        return bytes(b)
    if what < 0.65:  # two members: gzip allows it
        cut = r.randrange(len(raw) + 1)
        return gzip.compress(raw[:cut], mtime=0) + gzip.compress(raw[cut:], mtime=0)
    if what < 0.75:
        return gz + mutate.random_bytes(r)
    if what < 0.82:  # a zlib stream, not gzip, behind a gzip magic
        return b"\x1f\x8b" + zlib.compress(raw)
    return mutate.havoc(r, gz)


def mutate_bytes(r: random.Random, data: bytes, pool) -> bytes:
    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except Exception:  # noqa: BLE001 - a broken gzip is still a fine thing to mutate
        raw = data
    what = r.random()
    if what < 0.45:
        raw = _header_change(r, raw)
        if r.random() < 0.3:
            raw = _header_change(r, raw)
    elif what < 0.6:
        raw = raw[:-r.randint(1, 9)] if raw and r.random() < 0.5 else raw + bytes(r.randint(1, 9))
    elif what < 0.97:
        raw = mutate.havoc(r, raw, pool)
    else:
        raw = mutate.random_bytes(r)
    return _gzip_variant(r, raw) if r.random() < 0.4 else raw


def generate(r: random.Random, pool) -> Case:
    data = mutate_bytes(r, r.choice(pool), pool)
    how = r.choices(["read", "header", "pair_images", "pair_labels", "mnist"],
                    [60, 10, 10, 10, 10])[0]
    return Case(data, how=how, options={"slot": r.randrange(4)})


def prepare(case: Case, work: Path):
    from steepest.data import load_idx_pair, load_mnist, read_idx, read_idx_header

    p = work / "input.idx"
    p.write_bytes(case.data)
    if case.how == "read":
        return (lambda: read_idx(p)), [p]
    if case.how == "header":
        return (lambda: read_idx_header(p)), [p]
    if case.how in ("pair_images", "pair_labels"):
        other = work / ("labels.idx" if case.how == "pair_images" else "images.idx")
        other.write_bytes(labels() if case.how == "pair_images" else images())
        pair = (p, other) if case.how == "pair_images" else (other, p)
        return (lambda: load_idx_pair(*pair)), [p, other]
    d = work / "mnist"
    d.mkdir(exist_ok=True)
    for f in d.iterdir():
        f.unlink()
    valid = (images, labels, images, labels)
    for k, name in enumerate(MNIST_FILES):
        (d / name).write_bytes(case.data if k == case.options["slot"] else valid[k]())
    return (lambda: load_mnist(d)), [d / MNIST_FILES[case.options["slot"]], d]


def check(result, case: Case):
    if case.how == "read":
        expect(isinstance(result, np.ndarray) and result.dtype.isnative
               and result.dtype.str.lstrip("<>|=") in {"u1", "i1", "i2", "i4", "f4", "f8"}
               and 1 <= result.ndim <= 8, f"read_idx returned {type(result)} {getattr(result, 'dtype', '')}")
    elif case.how == "header":
        dtype, shape = result
        expect(isinstance(shape, tuple) and 1 <= len(shape) <= 8, f"header shape {shape!r}")
    elif case.how == "mnist":
        check_dataset(result, image_shape=(28, 28))
        expect(result.n_classes == 10 and result.X_train.dtype == np.uint8, "mnist contract")
    else:
        check_dataset(result)
