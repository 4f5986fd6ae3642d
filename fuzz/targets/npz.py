""".npz archives: load_npz / load_file on mutated zips, .npy headers, dtypes and pickles.

A pickled payload here, if anything ever unpickled it, would create the file PWNED in the
working directory; the driver checks for it after every input.
"""

from __future__ import annotations

import io
import pickle
import random
import struct
import zipfile
from pathlib import Path

import numpy as np

import mutate
from targets.common import Case, check_dataset

NAME = "npz"
MARKER = "PWNED"


class _Exploit:
    def __reduce__(self):
        return (open, (MARKER, "w"))


def _npy(a, **kw) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, **kw)
    return buf.getvalue()


def zip_of(members, compression=zipfile.ZIP_STORED, **kw) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression, **kw) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def _arrays(rng) -> list[dict]:
    f = rng.standard_normal
    return [
        dict(X=f((6, 3)), y=np.arange(6) % 3),
        dict(X=rng.integers(0, 256, (4, 5, 5), dtype=np.uint8), y=np.array([0, 1, 1, 0], np.uint8)),
        dict(X=f((5, 2)).astype(np.float32), y=np.array(["cat", "dog", "cat", "emu", "dog"])),
        dict(X=f((6, 4)), y=np.arange(6) % 2, X_test=f((3, 4)), y_test=np.array([1, 0, 1])),
        dict(X=np.asfortranarray(rng.integers(-9, 9, (4, 3)).astype(np.int16)),
             y=np.array([0.0, 1.0, 2.0, 1.0])),
        dict(X=rng.random((3, 2)) > 0.5, y=np.array([True, False, True])),
        dict(X=f((4, 2)).astype(">f2"), y=np.arange(4).astype(">i4"), notes=np.arange(3)),
        dict(X=f((1, 1)), y=np.zeros(1, np.int64)),
    ]


def seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for arrays in _arrays(rng):
        members = [(k + ".npy", _npy(v)) for k, v in arrays.items()]
        out.append(zip_of(members))
        out.append(zip_of(members, zipfile.ZIP_DEFLATED))
    out.append(zip_of([("X.npy", _npy(np.array([_Exploit()], dtype=object), allow_pickle=True)),
                       ("y.npy", _npy(np.zeros(1, np.int64)))]))
    return out


# ---------------------------------------------------------------- .npy headers

SHAPES = ["()", "(0,)", "(-1,)", "(1099511627776,)", "(2147483648, 2147483648)", "(4, 0, 5)",
          "(0, 28, 28)", "(1, 1, 1, 1)", "(3,)", "(2, 2)", "(1.5,)", "'abc'", "((1,),)", "[3]",
          "(9223372036854775807, 2)", "(65536, 65536)", "(100000, 1000)", "(True, 2)"]
DESCRS = ["'<f8'", "'>f8'", "'|u1'", "'<i8'", "'|b1'", "'<f2'", "'<c16'", "'|O'", "'<U3'",
          "'|S4'", "'|V8'", "'<M8[s]'", "'<m8[D]'", "[('a', '<f4'), ('b', '<i4')]",
          "[('a', '|O')]", "'|V0'", "'<U0'", "'xyz'", "123", "''", "'<f16'", "'<u8'",
          "[('', '<f8')]", "'<f4', 'x'", "None", "{'names': ['a'], 'formats': ['<f8']}"]


def _split_npy(data: bytes):
    """(version, header text, payload) of a version 1.0 .npy, or None."""
    if data[:6] != b"\x93NUMPY" or len(data) < 10:
        return None
    n = struct.unpack("<H", data[8:10])[0]
    return data[6:8], data[10:10 + n].decode("latin1"), data[10 + n:]


def _npy_from(version: bytes, header: str, payload: bytes, r: random.Random) -> bytes:
    h = header.encode("latin1", "replace")
    if version[0] == 1 and r.random() < 0.9:
        return b"\x93NUMPY" + version + struct.pack("<H", len(h) & 0xFFFF) + h + payload
    return b"\x93NUMPY" + version + struct.pack("<I", len(h)) + h + payload


def mutate_npy(r: random.Random, data: bytes) -> bytes:
    parts = _split_npy(data)
    if parts is None:
        return mutate.havoc(r, data)
    version, header, payload = parts
    what = r.random()
    if what < 0.3:
        header = f"{{'descr': {r.choice(DESCRS)}, 'fortran_order': {r.choice(['False', 'True'])}, " \
                 f"'shape': {r.choice(SHAPES)}, }}"
    elif what < 0.4:
        header = r.choice(["{}", "[1, 2]", "{'descr': '<f8'}", "{'descr': '<f8', 'fortran_order': 0, "
                           "'shape': (1,), 'x': 1}", "(" * 300 + ")" * 300, "{" + "x" * 20000 + "}",
                           "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)", "\x00" * 20,
                           "{'descr': '<f8', 'fortran_order': 'yes', 'shape': (1,)}"])
    elif what < 0.55:
        version = bytes(r.choice([(1, 0), (2, 0), (3, 0), (0, 0), (9, 9), (255, 255)]))
    elif what < 0.7:
        payload = payload[:r.randrange(len(payload) + 1)] if r.random() < 0.6 \
            else payload + mutate.random_bytes(r)
    else:
        return mutate.havoc(r, data)
    return _npy_from(version, header, payload, r)


# ---------------------------------------------------------------- zips

def _members(data: bytes):
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return [(i.filename, z.read(i)) for i in z.infolist()]
    except Exception:  # noqa: BLE001 - the input was already broken
        return None


NAMES = ["X.npy", "y.npy", "X_test.npy", "y_test.npy", "X", "X.npy/", "dir/X.npy", "../X.npy",
         "Ω.npy", "x.npy", "X.NPY", ""]


def _zip_fields(r: random.Random, data: bytes) -> bytes:
    """Change one field of a local header, central directory entry or end record."""
    sigs = [(b"PK\x03\x04", [(6, 2), (8, 2), (14, 4), (18, 4), (22, 4), (26, 2), (28, 2)]),
            (b"PK\x01\x02", [(8, 2), (10, 2), (16, 4), (20, 4), (24, 4), (28, 2), (30, 2), (42, 4)]),
            (b"PK\x05\x06", [(8, 2), (10, 2), (12, 4), (16, 4), (20, 2)])]
    sig, fields = r.choice(sigs)
    spots = [i for i in range(len(data)) if data.startswith(sig, i)]
    if not spots:
        return mutate.havoc(r, data)
    at = r.choice(spots)
    off, size = r.choice(fields)
    value = r.choice(mutate.INTERESTING_32 + [1, 8, 9, 12, 14, 99, 0x800]) & ((1 << (8 * size)) - 1)
    b = bytearray(data)
    b[at + off:at + off + size] = value.to_bytes(size, "little")[:len(b[at + off:at + off + size])]
    return bytes(b)


def mutate_bytes(r: random.Random, data: bytes, pool) -> bytes:
    what = r.random()
    members = _members(data) if what < 0.55 else None
    if members:
        k = r.randrange(len(members))
        name, body = members[k]
        how = r.random()
        if how < 0.6:
            members[k] = (name, mutate_npy(r, body))
        elif how < 0.7:
            members[k] = (r.choice(NAMES), body)
        elif how < 0.8:
            members.append((r.choice(NAMES), r.choice(members)[1]))
        elif how < 0.85:
            del members[k]
        else:
            members[k] = (name, _npy(np.array([_Exploit()], dtype=object), allow_pickle=True))
        comp = r.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                         zipfile.ZIP_LZMA])
        try:
            out = zip_of(members, comp)
        except Exception:  # noqa: BLE001 - e.g. a name zipfile will not write
            out = data
        return mutate.havoc(r, out, rounds=1) if r.random() < 0.15 else out
    if what < 0.75:
        return _zip_fields(r, data)
    if what < 0.97:
        return mutate.havoc(r, data, pool)
    return r.choice([_npy(np.zeros(3)), pickle.dumps(_Exploit()), mutate.random_bytes(r), b""])


def generate(r: random.Random, pool) -> Case:
    data = mutate_bytes(r, r.choice(pool), pool)
    if r.random() < 0.005:  # a deflate bomb within the size limit: must load, or be refused
        data = zip_of([("X.npy", _npy(np.zeros((r.choice([1000, 5000]), 1000), np.uint8))),
                       ("y.npy", _npy(np.zeros(5000, np.uint8)))], zipfile.ZIP_DEFLATED)
    return Case(data, how=r.choice(["load_npz", "load_file"]), suffix=".npz")


def prepare(case: Case, work: Path):
    from steepest.data import load_file, load_npz

    p = work / "input.npz"
    p.write_bytes(case.data)
    fn = load_npz if case.how == "load_npz" else load_file
    return (lambda: fn(p)), [p]


def check(result, case: Case):
    check_dataset(result)
