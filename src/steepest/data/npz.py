"""Read arrays from an .npz file without trusting it.

An .npz is a zip archive of .npy members. ``np.load`` allocates whatever shape a member's
header claims *before* it reads the member's data, so a 200-byte file can ask for terabytes,
and it lets zip errors (``zipfile.BadZipFile``, encrypted or unknown compression) escape as
they are. This reader parses each header itself, refuses claims above ``max_bytes`` in total,
reads the data as it arrives (memory follows the bytes that really exist, not the claim),
never unpickles, and turns every problem into a :class:`DataError` naming the file.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as _npy

from steepest._files import no_such
from steepest.data.idx import DEFAULT_MAX_BYTES
from steepest.errors import DataError

__all__ = ["read_npz", "read_npy", "working_bytes"]

_CHUNK = 1 << 24
# Zip methods read. Not LZMA: its header states a dictionary size that the decompressor
# allocates up front, up to 4 GiB for a file of a few hundred bytes.
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2)
_NPY_MAGIC = b"\x93NUMPY"
# .npy format versions whose header numpy can parse through a public function.
_HEADER_READERS = {(1, 0): _npy.read_array_header_1_0, (2, 0): _npy.read_array_header_2_0}


def working_bytes(shape, dtype) -> int:
    """Bytes an array of ``shape`` and ``dtype`` takes once loaded as training data.

    uint8 stays uint8 (1 byte per value); every other dtype becomes float32 (4 bytes), and
    the wider ones are held at their own size while they are converted: max(itemsize, 4).
    This, not the size in the file, is what the budget is checked against: 2 GiB of int8 or
    bool would otherwise become 8 GiB of float32.
    """
    dtype = np.dtype(dtype)
    per = 1 if dtype == np.uint8 else max(dtype.itemsize, 4)
    return math.prod(shape) * per


def read_npy(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read a ``.npy`` file the way :func:`read_npz` reads a member: header checked first, no pickle.

    A header claiming more than ``max_bytes`` (in memory, :func:`working_bytes`) is a corrupt file,
    refused before anything is allocated; so is a payload shorter or longer than the claim.
    """
    from steepest._files import open_regular

    path = Path(path)
    try:
        with open_regular(path, DataError, "a .npy array file") as f:
            return _read_member(f, path, None, max_bytes)
    except FileNotFoundError:
        raise DataError(no_such(path)) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e}); check the path and its permissions") from None


def _read_member(f, path: Path, key: str, budget: int) -> np.ndarray:
    """Read one .npy member from the open stream ``f``; it may claim at most ``budget`` bytes."""
    what = "its array" if key is None else f"array {key!r}"
    try:
        version = _npy.read_magic(f)
    except ValueError as e:
        raise DataError(f"{path}: {what} is not a .npy array ({e})") from None
    if version not in _HEADER_READERS:
        raise DataError(
            f"{path}: {what} is in .npy format version {version[0]}.{version[1]}; "
            "steepest reads versions 1.0 and 2.0, which np.savez writes for numeric arrays"
        )
    try:
        shape, fortran, dtype = _HEADER_READERS[version](f)
        shape = tuple(int(d) for d in shape)  # numpy's check lets True through as a length
    except (ValueError, TypeError, SyntaxError, tokenize.TokenError, RecursionError,
            MemoryError) as e:  # numpy parses the header text with ast and tokenize
        raise DataError(
            f"{path}: {what} has a malformed .npy header ({type(e).__name__}: {e})"
        ) from None
    if dtype.hasobject:
        raise DataError(
            f"{path}: {what} holds Python objects (dtype {dtype}); steepest reads .npz "
            "files only without pickled objects: save numeric arrays, e.g. X.astype(np.float32)"
        )
    if (dtype.itemsize == 0 or any(d < 0 for d in shape)
            or math.prod(d for d in shape if d) * dtype.itemsize > np.iinfo(np.intp).max):
        raise DataError(f"{path}: {what} has an impossible shape {shape} or dtype {dtype}")
    n_bytes = math.prod(shape) * dtype.itemsize  # Python ints: cannot overflow
    cost = working_bytes(shape, dtype)
    if cost > budget:
        raise DataError(
            f"{path}: {what} claims shape {shape} of {dtype} ({n_bytes} bytes, {cost} in memory "
            f"once converted), more than the {budget} bytes left of the limit of {DEFAULT_MAX_BYTES} "
            "bytes; the file is corrupt (or too large to load), give a smaller one"
        )
    buf = bytearray()  # grows as data arrives: a lying header costs at most one chunk
    while len(buf) < n_bytes:
        chunk = f.read(min(_CHUNK, n_bytes - len(buf)))
        if not chunk:
            raise DataError(
                f"{path}: {what} is truncated: its header claims {n_bytes} bytes of "
                f"data, the member holds {len(buf)}"
            )
        buf += chunk
    if f.read(1):  # the member must end where its header says; reading on also checks its CRC
        raise DataError(
            f"{path}: {what} has bytes after the {n_bytes} bytes of data its header describes; "
            "the file is corrupt, save it again with np.savez"
        )
    a = np.frombuffer(buf, dtype=dtype, count=math.prod(shape))
    return a.reshape(shape, order="F" if fortran else "C")


def read_npz(path, keys, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[dict, list[str]]:
    """Read the arrays named ``keys`` (those present) from the .npz at ``path``.

    Returns
    -------
    arrays : dict name -> np.ndarray
        Only names in ``keys`` that the file holds.
    names : list of str
        Every array name in the file, for messages about missing ones.

    Raises
    ------
    DataError
        Not a zip archive, a corrupt, encrypted or truncated member, a malformed .npy header,
        pickled objects, or claimed sizes over ``max_bytes`` in total.
    """
    from steepest._files import open_regular

    path = Path(path)
    try:
        with open_regular(path, DataError, "an .npz file") as raw:
            if raw.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
                raise DataError(
                    f"{path}: is a single .npy array, not an .npz archive; save X and y "
                    "together with np.savez(path, X=X, y=y)"
                )
            raw.seek(0)
            return _read_members(raw, path, keys, max_bytes)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(no_such(path)) from None
    except zipfile.BadZipFile as e:
        raise DataError(f"{path}: not a readable .npz (zip) archive ({e}); save it with np.savez") from None
    except (OSError, EOFError, ValueError, zlib.error, NotImplementedError,
            RuntimeError) as e:  # RuntimeError: an encrypted member
        raise DataError(f"{path}: corrupt .npz archive ({type(e).__name__}: {e}); save it again "
                        "with np.savez") from None


def _read_members(raw, path: Path, keys, max_bytes: int) -> tuple[dict, list[str]]:
    """The arrays named ``keys`` from the open archive ``raw``; the budget is shared by all of them."""
    with zipfile.ZipFile(raw) as zf:
        members = {i.filename[: -len(".npy")]: i for i in zf.infolist() if i.filename.endswith(".npy")}
        arrays, budget = {}, max_bytes
        for key in keys:
            if key in members:
                if members[key].compress_type not in _METHODS:
                    raise DataError(
                        f"{path}: array {key!r} is compressed with zip method "
                        f"{members[key].compress_type}; steepest reads stored, deflate and "
                        "bzip2 members (np.savez and np.savez_compressed write the first two)"
                    )
                with zf.open(members[key]) as f:
                    arrays[key] = _read_member(f, path, key, budget)
                budget -= working_bytes(arrays[key].shape, arrays[key].dtype)
        return arrays, sorted(members)
