"""Format-blind byte mutations, in the manner of AFL and libFuzzer.

Every function takes a ``random.Random`` and returns new bytes; none keeps state, so an input
is reproduced exactly from the seed its generator was given.
"""

from __future__ import annotations

import random
import struct

# Values that make parsers take unusual branches: sign bits, powers of two, off-by-ones.
INTERESTING_8 = [0, 1, 0x7F, 0x80, 0xFF, 0x10, 0x20, 0x40]
INTERESTING_32 = [0, 1, 2, 3, 7, 8, 255, 256, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
                  0xFFFFFFFE, 0xFFFFFFFF, 1 << 20, 1 << 24, 1 << 28, 28, 60000, 784]


def bit_flip(r: random.Random, data: bytes) -> bytes:
    if not data:
        return bytes([r.randrange(256)])
    b = bytearray(data)
    for _ in range(r.choice((1, 1, 2, 4, 8))):
        i = r.randrange(len(b))
        b[i] ^= 1 << r.randrange(8)
    return bytes(b)


def byte_set(r: random.Random, data: bytes) -> bytes:
    if not data:
        return bytes([r.choice(INTERESTING_8)])
    b = bytearray(data)
    for _ in range(r.choice((1, 1, 2, 3))):
        b[r.randrange(len(b))] = r.choice(INTERESTING_8) if r.random() < 0.5 else r.randrange(256)
    return bytes(b)


def word_set(r: random.Random, data: bytes) -> bytes:
    """Overwrite 2 or 4 bytes with an interesting integer, either byte order."""
    if len(data) < 4:
        return data + struct.pack(">I", r.choice(INTERESTING_32))
    fmt = r.choice((">I", "<I", ">H", "<H"))
    v = r.choice(INTERESTING_32) & (0xFFFF if "H" in fmt else 0xFFFFFFFF)
    i = r.randrange(len(data) - struct.calcsize(fmt) + 1)
    return data[:i] + struct.pack(fmt, v) + data[i + struct.calcsize(fmt):]


def arith(r: random.Random, data: bytes) -> bytes:
    """Add a small number to one byte (wrapping): lengths and counts off by a little."""
    if not data:
        return data
    b = bytearray(data)
    i = r.randrange(len(b))
    b[i] = (b[i] + r.choice((-3, -2, -1, 1, 2, 3, 16, -16))) % 256
    return bytes(b)


def truncate(r: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    cut = r.choice((r.randrange(len(data) + 1), len(data) - 1, len(data) // 2,
                    r.randrange(min(len(data), 64) + 1)))
    return data[:max(cut, 0)]


def erase(r: random.Random, data: bytes) -> bytes:
    if len(data) < 2:
        return data
    i = r.randrange(len(data))
    n = r.randint(1, min(64, len(data) - i))
    return data[:i] + data[i + n:]


def insert(r: random.Random, data: bytes) -> bytes:
    i = r.randrange(len(data) + 1)
    kind = r.random()
    if kind < 0.4:
        blob = bytes(r.randrange(256) for _ in range(r.randint(1, 32)))
    elif kind < 0.7:
        blob = bytes([r.choice(INTERESTING_8)]) * r.randint(1, 256)
    elif data:
        j = r.randrange(len(data))
        blob = data[j:j + r.randint(1, 128)]  # a copy of a piece of itself
    else:
        blob = b"\x00"
    return data[:i] + blob + data[i:]


def append(r: random.Random, data: bytes) -> bytes:
    return data + bytes(r.randrange(256) for _ in range(r.choice((1, 4, 8, 100))))


def splice(r: random.Random, data: bytes, other: bytes) -> bytes:
    """The start of one input joined to the end of another."""
    if not data or not other:
        return data or other
    return data[:r.randrange(len(data) + 1)] + other[r.randrange(len(other) + 1):]


def random_bytes(r: random.Random, _data: bytes = b"") -> bytes:
    return bytes(r.randrange(256) for _ in range(r.choice((0, 1, 4, 16, 100, 1000))))


MUTATORS = [bit_flip, byte_set, word_set, arith, truncate, erase, insert, append]


def havoc(r: random.Random, data: bytes, others=(), rounds: int | None = None) -> bytes:
    """Apply 1 to 6 random mutations in a row (AFL's 'havoc' stage)."""
    for _ in range(rounds or r.choice((1, 1, 1, 2, 2, 3, 4, 6))):
        if others and r.random() < 0.05:
            data = splice(r, data, r.choice(others))
        else:
            data = r.choice(MUTATORS)(r, data)
    return data
