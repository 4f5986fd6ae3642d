"""The safetensors file format as steepest writes and reads it: tensors, and JSON metadata checked by hand
before anything is allocated."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from .._files import open_regular
from .._text import short as _short
from ..errors import ModelFileError
from .atomic import atomic_write


MODEL_FORMAT = "steepest.model"
CHECKPOINT_FORMAT = "steepest.checkpoint"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 64 * 2**20  # a steepest header is a few kB; a huge claim means a corrupt file

# safetensors dtype codes → bytes per element (all of the format's dtypes, to check offsets)
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
             "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
_ALLOWED = {"F32", "F64", "I64"}  # what steepest writes; anything else is not ours
_PLAIN_KEYS = ("format", "format_version")


def _not_ours(path, why) -> ModelFileError:
    e = ModelFileError(f"{path} is not a steepest model file: {why}; "
                       "give a file written by `steepest train` (RUN_DIR/model.safetensors)")
    e.damaged = True
    return e


def _check_header(path, header, data_len):
    """Check every tensor entry of a parsed safetensors header against the file's real size."""
    if not isinstance(header, dict):
        raise _not_ours(path, "its header is not a JSON object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _not_ours(path, "its metadata is not a map of strings")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise _not_ours(path, f"tensor {name!r} has a malformed entry")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _ITEMSIZE:
            raise _not_ours(path, f"tensor {name!r} has unknown dtype {dtype!r}")
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(isinstance(s, int) and 0 <= s < 2**48 for s in shape)):
            raise _not_ours(path, f"tensor {name!r} has an invalid shape {_short(shape)}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets) or not 0 <= offsets[0] <= offsets[1]):
            raise _not_ours(path, f"tensor {name!r} has invalid data offsets {offsets!r}")
        if math.prod(s for s in shape if s) >= 2**48:  # NumPy cannot index it, even with a 0 beside it
            raise _not_ours(path, f"tensor {name!r} has an impossible shape {shape!r}")
        nbytes = math.prod(shape) * _ITEMSIZE[dtype]
        if offsets[1] > data_len or offsets[1] - offsets[0] != nbytes:
            raise _not_ours(path, f"tensor {name!r} claims {nbytes} bytes at {offsets} "
                                  f"but the file holds {data_len} bytes of data (truncated or corrupt)")
    return meta


def read_safetensors(path, formats=(MODEL_FORMAT, CHECKPOINT_FORMAT)):
    """Read a steepest safetensors file after checking it is one.

    Returns ``(tensors, metadata)``: a dict name → ndarray and the decoded metadata dict
    (``format``, ``format_version`` as written, everything else JSON-decoded).

    Raises
    ------
    ModelFileError
        Missing file, not safetensors, not written by steepest (or not of one of ``formats``),
        from a newer steepest, or with tensor claims that do not fit the file.
    """
    path = Path(path)
    if path.is_dir():
        hint = path / "model.safetensors"
        more = f"; did you mean {hint}?" if hint.is_file() else "; give the model file itself"
        raise ModelFileError(f"{path} is a directory, not a model file{more}")
    try:
        with open_regular(path, ModelFileError, "a model file written by `steepest train`") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) < 8:
                raise _not_ours(path, f"only {size} bytes, too short for a safetensors file")
            n = int.from_bytes(head, "little")
            if n > min(size - 8, MAX_HEADER_BYTES):
                raise _not_ours(path, f"it is not a safetensors file (its first 8 bytes give a header of {n} bytes, "
                                      f"the file has {size})")
            header_bytes = f.read(n)
            header = json.loads(header_bytes.decode("utf-8"))
            meta = _check_header(path, header, size - 8 - n)
            fmt = meta.get("format")
            if fmt not in formats:
                what = "it has no steepest format marker" if fmt is None else f"its format is {fmt!r}"
                if fmt in (MODEL_FORMAT, CHECKPOINT_FORMAT):
                    what += f", expected {' or '.join(formats)}"
                raise _not_ours(path, what)
            for name, entry in header.items():
                if name != "__metadata__" and entry["dtype"] not in _ALLOWED:
                    raise _not_ours(path, f"tensor {name!r} has dtype {entry['dtype']}, "
                                          "steepest writes only F32, F64 and I64")
            data = head + header_bytes + f.read()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file; give the path of a model written by "
                             "`steepest train` (RUN_DIR/model.safetensors)") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _not_ours(path, "its header is not valid JSON (not a safetensors file)") from None
    except RecursionError:
        raise _not_ours(path, "its header is nested too deeply to be a steepest header") from None
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e.strerror or e}; check the path and its permissions") from None
    version = meta.get("format_version", "")
    if not (version.isascii() and version.isdigit() and len(version) <= 6):
        raise _not_ours(path, f"format version {_short(version)} is not a number")
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(f"{path} was written by a newer steepest (format {version}, this one reads "
                             f"up to {FORMAT_VERSION}); upgrade steepest to read it")
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        tensors = load(data)
    except SafetensorError as e:
        raise _not_ours(path, f"safetensors cannot read it ({e})") from None
    decoded = {}
    for key, value in meta.items():
        if key in _PLAIN_KEYS:
            decoded[key] = value
            continue
        try:
            decoded[key] = json.loads(value)
        except json.JSONDecodeError:
            raise _not_ours(path, f"metadata {key!r} is not valid JSON") from None
        except RecursionError:
            raise _not_ours(path, f"metadata {key!r} is nested too deeply") from None
    return tensors, decoded




def _plain(value):
    """NumPy scalars and arrays → Python values, recursively, so they can go into JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def _encode(fmt: str, meta: dict) -> dict:
    out = {"format": fmt, "format_version": str(FORMAT_VERSION)}
    for key, value in meta.items():
        if key in _PLAIN_KEYS:
            continue
        out[key] = json.dumps(_plain(value), ensure_ascii=False)
    return out


def _save(path, tensors: dict, metadata: dict) -> Path:
    from safetensors.numpy import save

    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    return atomic_write(path, save(tensors, metadata=metadata))
