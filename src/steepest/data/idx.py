"""Read and write IDX files, the format MNIST and Fashion-MNIST are distributed in.

An IDX file is a 4-byte magic number, then one big-endian uint32 per dimension, then the data
in C order, big-endian::

    00 00 <type code> <ndim>   dim_0 (u4) ... dim_{ndim-1} (u4)   data ...

Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
Files may be gzip-compressed; compression is recognised by its magic bytes (1f 8b), not by
the file name.

The reader trusts nothing: every header field is checked, the size the header claims is
compared with ``max_bytes`` *before* anything is allocated or decompressed, and the payload
must have exactly the claimed length. Every problem is a :class:`DataError` naming the file.
"""

from __future__ import annotations

import gzip as _gzip
import io
import math
import os
import zlib
from pathlib import Path

import numpy as np

from steepest._files import no_such, open_regular
from steepest.errors import DataError, DataNotFoundError

__all__ = ["read_idx", "read_idx_header", "write_idx", "DEFAULT_MAX_BYTES", "TYPE_CODES"]

#: IDX type code -> NumPy dtype as stored in the file (big-endian for multi-byte types).
TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Largest payload the reader accepts unless told otherwise (2 GiB).
DEFAULT_MAX_BYTES = 2**31

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 24  # bytes read per call, so a lying header costs at most one chunk of work


def _open(path: Path) -> tuple[io.BufferedIOBase, bool]:
    """Open ``path`` for reading, transparently decompressing gzip; return (stream, is_gzip).

    Only a regular file is opened (:func:`steepest._files.open_regular`): a FIFO or a device
    would block or never end.
    """
    try:
        raw = open_regular(path, DataError, "an IDX file (raw or .gz)")
    except FileNotFoundError:
        raise DataNotFoundError(no_such(path)) from None
    except OSError as e:
        raise DataError(f"{path}: cannot open: {e.strerror or e}; check the path and its permissions") from None
    is_gzip = raw.read(2) == _GZIP_MAGIC
    raw.seek(0)
    if is_gzip:
        stream = _gzip.GzipFile(fileobj=raw, mode="rb")
        stream.myfileobj = raw  # GzipFile closes its `myfileobj` (the file it opened) on close
        return stream, True
    return raw, False


def _read_exactly(stream, n: int) -> bytes:
    """Read up to n bytes, looping over short reads; fewer only at end of stream."""
    parts, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _parse_header(stream, path: Path, max_bytes: int) -> tuple[np.dtype, tuple[int, ...], int]:
    """Read and check the header; return (dtype, shape, payload size in bytes)."""
    magic = _read_exactly(stream, 4)
    if len(magic) < 4:
        raise DataError(f"{path}: not an IDX file: only {len(magic)} bytes, the header needs 4")
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(
            f"{path}: not an IDX file: magic number {magic.hex(' ')} does not start with 00 00"
        )
    code, ndim = magic[2], magic[3]
    if code not in TYPE_CODES:
        known = ", ".join(f"0x{c:02X}" for c in TYPE_CODES)
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    if not 1 <= ndim <= 8:
        raise DataError(f"{path}: IDX header has {ndim} dimensions; expected 1 to 8")
    raw_dims = _read_exactly(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(
            f"{path}: truncated header: {ndim} dimensions need {4 * ndim} bytes, "
            f"found {len(raw_dims)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    dtype = TYPE_CODES[code]
    n_bytes = math.prod(shape) * dtype.itemsize  # Python ints: cannot overflow
    if n_bytes > max_bytes:
        raise DataError(
            f"{path}: header claims a {'x'.join(map(str, shape))} array of {dtype.name} "
            f"({n_bytes} bytes), more than the limit of {max_bytes} bytes; the file is corrupt, "
            "or raise max_bytes if it really is that large"
        )
    if math.prod(d for d in shape if d) * dtype.itemsize > np.iinfo(np.intp).max:
        # An empty array (some dimension 0) whose other dimensions NumPy cannot index.
        raise DataError(f"{path}: header claims an impossible shape {'x'.join(map(str, shape))}")
    return dtype, shape, n_bytes


def _gzip_error(path: Path, e: BaseException) -> DataError:
    return DataError(f"{path}: corrupt or truncated gzip stream ({e}); download the file again")


def read_idx_header(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[np.dtype, tuple]:
    """Read only the header of an IDX file; return (dtype, shape) without reading the data."""
    path = Path(path)
    stream, _ = _open(path)
    with stream:
        try:
            dtype, shape, _ = _parse_header(stream, path, max_bytes)
        except (OSError, EOFError, zlib.error) as e:
            raise _gzip_error(path, e) from None
    return dtype.newbyteorder("="), shape


def read_idx(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read an IDX file (raw or gzip) into an array of its stored shape.

    Parameters
    ----------
    path : str or Path
    max_bytes : int
        Refuse files whose header claims more than this many bytes of data. The check happens
        before any allocation, so a corrupt header cannot exhaust memory.

    Returns
    -------
    np.ndarray
        Shape as in the header, native byte order (uint8, int8, int16, int32, float32 or float64).

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    DataError
        Wrong magic, unknown type code, 0 or more than 8 dimensions, a header over ``max_bytes``,
        a payload shorter or longer than the header claims, or a corrupt gzip stream.
    """
    path = Path(path)
    stream, is_gzip = _open(path)
    with stream:
        try:
            dtype, shape, n_bytes = _parse_header(stream, path, max_bytes)
            if not is_gzip:
                # Raw file: the size on disk tells us everything before we read the data.
                found = os.fstat(stream.fileno()).st_size - stream.tell()
                if found < n_bytes:
                    raise DataError(
                        f"{path}: truncated: expected {n_bytes} bytes of data, found {found}"
                    )
                if found > n_bytes:
                    raise DataError(
                        f"{path}: {found - n_bytes} unexpected trailing bytes after the "
                        f"{n_bytes} bytes of data the header describes"
                    )
            if is_gzip:
                # Nothing has confirmed the header's claim yet: memory follows the bytes that
                # really arrive, so a tiny stream claiming 2 GB costs what it holds.
                data = bytearray()
                while len(data) < n_bytes:
                    chunk = stream.read(min(_CHUNK, n_bytes - len(data)))
                    if not chunk:
                        break
                    data += chunk
                buf, got = np.frombuffer(data, dtype=np.uint8), len(data)
            else:
                # The file size has confirmed the claim; np.empty only reserves address
                # space, and pages are touched as data arrives.
                buf = np.empty(n_bytes, dtype=np.uint8)
                view, got = memoryview(buf), 0
                while got < n_bytes:
                    k = stream.readinto(view[got : got + min(_CHUNK, n_bytes - got)])
                    if not k:
                        break
                    got += k
            if got < n_bytes:
                raise DataError(f"{path}: truncated: expected {n_bytes} bytes of data, found {got}")
            # One more byte: it must not exist. For gzip this also reaches the end of the
            # stream, which is where the CRC is checked.
            if stream.read(1):
                raise DataError(
                    f"{path}: unexpected trailing data after the {n_bytes} bytes of data "
                    "the header describes"
                )
        except (OSError, EOFError, zlib.error) as e:
            raise _gzip_error(path, e) from None
    return buf.view(dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


_CODE_FOR_DTYPE = {dt.newbyteorder("=").str: code for code, dt in TYPE_CODES.items()}


def write_idx(path, array, gzip: bool = False) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed if ``gzip``); return the path.

    The dtype must be one IDX can store: uint8, int8, int16, int32, float32 or float64;
    the array must have 1 to 8 dimensions, each below 2**32.
    """
    path = Path(path)
    a = np.asarray(array)
    code = _CODE_FOR_DTYPE.get(a.dtype.newbyteorder("=").str)
    if code is None:
        raise DataError(
            f"cannot write {path}: IDX stores uint8, int8, int16, int32, float32 or float64, "
            f"not {a.dtype}; convert first, e.g. array.astype(np.uint8)"
        )
    if not 1 <= a.ndim <= 8:
        raise DataError(f"cannot write {path}: IDX holds 1 to 8 dimensions, array has {a.ndim}")
    if any(d >= 2**32 for d in a.shape):
        raise DataError(f"cannot write {path}: dimension over 2**32 in shape {a.shape}")
    header = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(a, dtype=TYPE_CODES[code]).tobytes()
    if gzip:
        # No file name and mtime=0 in the gzip header: output is byte-for-byte reproducible.
        with open(path, "wb") as raw, _gzip.GzipFile(
            filename="", fileobj=raw, mode="wb", mtime=0
        ) as f:
            f.write(header)
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(header)
            f.write(payload)
    return path
