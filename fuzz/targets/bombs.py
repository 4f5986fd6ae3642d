"""Compression bombs and size claims of every dtype, against a stated budget.

Each input is an IDX file (gzip) or an .npz (deflate or bzip2 member) of one of every dtype
the formats hold (IDX: u1 i1 >i2 >i4 >f4 >f8; npz: those, little- and big-endian, plus bool,
u2 u4 u8 i8 f2), whose header claims a size at a chosen ratio of the budget (¼, just under,
just over, 4×, 2**40 elements) and whose payload really decompresses to that claim (zeros,
a few kB compressed), to a part of it, or to more. The loaders are called with ``max_bytes``
= BUDGET (16 MiB): the claim must be checked against it — counted in memory after conversion
(int8 becomes float32) — before anything is decompressed, and a load that returns must hold at
most BUDGET bytes. The campaign's --mem-mb limit turns any bomb that got through into a
MemoryError, which counts as a crash.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from targets.common import Case, expect

NAME = "bombs"
BUDGET = 16 * 2**20
IDX_CODES = {"u1": 0x08, "i1": 0x09, ">i2": 0x0B, ">i4": 0x0C, ">f4": 0x0D, ">f8": 0x0E}
NPZ_DTYPES = ["u1", "i1", "|b1", "<i2", ">i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", ">f4", "<f8", ">f8"]
RATIOS = [0.25, 0.99, 1.01, 4.0, None]  # None: 2**40 elements


def _claim(r: random.Random, itemsize: int, cost: int) -> int:
    """Number of elements whose in-memory cost is the chosen ratio of the budget."""
    ratio = r.choice(RATIOS)
    return 2**40 if ratio is None else max(1, int(BUDGET * ratio) // cost)


def _zeros_stream(n: int, compress) -> bytes:
    """``n`` zero bytes, compressed a megabyte at a time (never all in memory)."""
    out, left, chunk = [], n, bytes(2**20)
    while left > 0:
        out.append(compress(chunk[: min(left, len(chunk))]))
        left -= len(chunk)
    return b"".join(out)


def _payload_size(r, n_bytes: int) -> int:
    k = r.random()
    if k < 0.6:
        return n_bytes                                  # a real bomb: all of the claim
    if k < 0.85:
        return r.randrange(0, max(1, n_bytes))           # cut short
    return n_bytes + r.choice([1, 7, 4096])             # longer than the claim


def _idx(r: random.Random) -> bytes:
    dt = r.choice(list(IDX_CODES))
    item = np.dtype(dt).itemsize
    n = _claim(r, item, 1 if dt == "u1" else max(item, 4))
    shape = (n,) if n < 2**32 else (2**20, 2**20)
    head = bytes([0, 0, IDX_CODES[dt], len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    size = min(_payload_size(r, n * item), 2 * BUDGET + 4096)
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip container
    body = comp.compress(head) + _zeros_stream(size, comp.compress) + comp.flush()
    return body


def _npy_header(dt: str, shape) -> bytes:
    h = f"{{'descr': '{dt}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    h += " " * (63 - (len(h) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode()


def _npz(r: random.Random) -> bytes:
    dt = r.choice(NPZ_DTYPES)
    item = np.dtype(dt).itemsize
    n = _claim(r, item, 1 if dt == "u1" else max(item, 4))
    rows = max(1, n // 4)
    head = _npy_header(dt, (rows, 4) if n < 2**40 else (2**20, 2**20))
    size = min(_payload_size(r, rows * 4 * item), 2 * BUDGET + 4096)
    method = r.choice([zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        with z.open("X.npy", "w", force_zip64=True) as f:
            f.write(head)
            left = size
            while left > 0:
                f.write(bytes(min(left, 2**20)))
                left -= 2**20
        z.writestr("y.npy", _npy_header("<i8", (rows,)) + bytes(8 * min(rows, 64)))
    return buf.getvalue()


def seeds() -> list[bytes]:
    return [b""]


def mutate_bytes(r: random.Random, data: bytes, pool) -> bytes:
    return _idx(r) if r.random() < 0.5 else _npz(r)


def generate(r: random.Random, pool) -> Case:
    if r.random() < 0.5:
        return Case(_idx(r), how="idx", suffix=".gz")
    return Case(_npz(r), how="npz", suffix=".npz")


def prepare(case: Case, work: Path):
    from steepest.data.idx import read_idx
    from steepest.data.npz import read_npz

    p = work / f"bomb{case.suffix}"
    p.write_bytes(case.data)
    if case.how == "idx":
        return (lambda: read_idx(p, max_bytes=BUDGET)), [p]
    return (lambda: read_npz(p, ("X", "y"), max_bytes=BUDGET)[0]), [p]


def check(result, case: Case):
    from steepest.data.npz import working_bytes

    arrays = [result] if isinstance(result, np.ndarray) else list(result.values())
    if case.how == "npz":
        total = sum(working_bytes(a.shape, a.dtype) for a in arrays)
        expect(total <= BUDGET, f"loaded {total} bytes (in memory) past the budget of {BUDGET}")
    else:
        expect(result.nbytes <= BUDGET, f"loaded {result.nbytes} bytes past the budget of {BUDGET}")
