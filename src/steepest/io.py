"""Model and checkpoint files: safetensors tensors plus JSON metadata. Never pickle.

A **model file** holds one tensor, ``theta (p,)``, and string metadata (safetensors
``__metadata__``; every value but the two format keys is JSON):

=================  ==========================================================================
key                value
=================  ==========================================================================
format             ``"steepest.model"`` (checkpoints: ``"steepest.checkpoint"``)
format_version     ``"1"``
architecture       ``net.config()``: sizes, activation list, dtype, input_scale, l2
preprocessing      input_scale, image_shape (how raw inputs become the network's input)
dataset            name, source, n_classes, class_names
training           the resolved training configuration
metrics            final metrics (test accuracy, loss, epochs, stop reason, …)
seed               the run's seed
environment        what the arithmetic depended on: steepest, NumPy and Python versions, NumPy's
                   SIMD extensions, the BLAS library (``blas``: internal_api, version,
                   architecture/core type, threading layer, threads, from threadpoolctl), the
                   kernel in one phrase (``blas_kernel``: ``"openblas 0.3.31 Haswell"``; model
                   files only), the CPU's model name (``cpu``; model files only), the
                   thread count (``blas_threads``) and the variables ``OPENBLAS_CORETYPE``,
                   ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` if set
=================  ==========================================================================

What is promised: the same seed, dtype (``architecture``), thread count, NumPy build and BLAS
kernel (``environment.blas_kernel``) give the same θ, bit for bit — in one process, in two, and
across a ``--resume``. The same NumPy wheel picks different BLAS kernels on different CPUs (an
Intel and an AMD core may get different ones), and a different kernel, library or thread count
may change the last bits — and, after many steps, the second decimal of an accuracy.

A **checkpoint** holds everything in :class:`steepest.loop.TrainState` needed to continue a
run bit for bit: tensors ``theta``, ``opt.<name>`` (optimizer state), ``mem.<rule>.<name>`` (the
stopping rules' arrays, e.g. the patience rule's best θ), ``history.<column>`` (float64), and metadata
``state`` (the scalar fields, and ``memory``, the rules' own values), ``history_epochs`` (the evaluation
records), ``config`` (the run's configuration) and ``architecture``.

Files are written atomically (:func:`atomic_write`) and checked before they are trusted
(:func:`read_safetensors`): the header is parsed by hand first, so a file claiming a gigantic
tensor is rejected before anything is allocated. A write killed half-way leaves a temporary
``.NAME.XXXXXXXX.tmp`` beside ``NAME`` (:func:`temp_files` finds them), never a damaged ``NAME``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import stat
import tempfile
from functools import lru_cache
from glob import escape as glob_escape
from pathlib import Path

import numpy as np

from ._files import open_regular
from .errors import ConfigError, ModelFileError
from .network import MLP

__all__ = [
    "FORMAT_VERSION", "MODEL_FORMAT", "CHECKPOINT_FORMAT",
    "atomic_write", "temp_files", "read_safetensors", "environment", "blas_kernel", "cpu_model", "machine",
    "save_model", "load_model", "save_checkpoint", "load_checkpoint",
]

MODEL_FORMAT = "steepest.model"
CHECKPOINT_FORMAT = "steepest.checkpoint"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 64 * 2**20  # a steepest header is a few kB; a huge claim means a corrupt file

# safetensors dtype codes → bytes per element (all of the format's dtypes, to check offsets)
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
             "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
_ALLOWED = {"F32", "F64", "I64"}  # what steepest writes; anything else is not ours
_PLAIN_KEYS = ("format", "format_version")
_STATE_ARRAYS = ("theta", "opt_state", "arrays", "history", "_t0")


# ---------------------------------------------------------------- atomic writes

def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def temp_files(path) -> list[Path]:
    """Temporary files of :func:`atomic_write` for ``path`` that a killed process left behind."""
    path = Path(path)
    try:
        return sorted(path.parent.glob(glob_escape(_temp_prefix(path)) + "*.tmp"))
    except OSError:
        return []


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give: 0o666 less the umask (mkstemp gives 0o600)."""
    mask = os.umask(0o022)  # reading the umask means setting it; put back at once
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the whole new one.

    The bytes go to a temporary file in the same directory, are flushed and fsync'ed, then
    ``os.replace`` renames it over ``path`` (atomic on one file system) and the directory is
    fsync'ed so the rename survives a crash. On any failure the temporary file is removed and
    the previous ``path``, if any, is untouched.

    Raises
    ------
    ModelFileError
        The directory does not exist or is not writable, or ``path`` exists and is not a regular
        file (a directory, a FIFO, a device: renaming over it would replace it); the message says which.
    """
    path = Path(path)
    if isinstance(data, str):  # a lone surrogate (from "\ud800" in some JSON input) has no UTF-8: "?"
        data = data.encode("utf-8", "replace")
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):  # never rename over a directory, FIFO or device
        from ._files import kind_of

        raise ModelFileError(f"cannot write {path}: it is {kind_of(mode)}, not a regular file; "
                             "give the path of a file")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    except OSError as e:
        raise ModelFileError(f"cannot write {path}: {e.strerror or e}; choose a writable directory") from None
    try:
        with os.fdopen(fd, "wb") as f:
            try:  # readable like any file the user writes, not private to them as mkstemp makes it
                os.fchmod(f.fileno(), _file_mode())
            except (AttributeError, OSError):  # no fchmod (Windows), or a file system without modes
                pass
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise ModelFileError(f"cannot write {path}: {e.strerror or e}; "
                                 "check the disk space and permissions of that directory") from None
        raise
    _fsync_dir(path.parent)
    return path


# ---------------------------------------------------------------- reading, checked

def _not_ours(path, why) -> ModelFileError:
    return ModelFileError(f"{path} is not a steepest model file: {why}; "
                          "give a file written by `steepest train` (RUN_DIR/model.safetensors)")


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


def _short(value, n: int = 60) -> str:
    """``repr(value)``, cut to ``n`` characters: a message quotes a corrupt value, never 5,000 digits of it."""
    text = repr(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def _check_architecture(path, arch: dict) -> None:
    """Types and ranges of the architecture's fields, before MLP sees them.

    ``dtype`` a name float32/float64; ``activation`` a name or a list of names; ``input_scale`` a
    number in (1e-30, 1e6] and ``l2`` in [0, 1e6], so that neither overflows in float32 (an input
    scale of 1e308 is inf there, and 0·inf a NaN prediction).
    """
    acts = arch.get("activation", "relu")
    if arch.get("dtype", "float32") not in ("float32", "float64") or not (
            isinstance(acts, str) or (isinstance(acts, list) and all(isinstance(a, str) for a in acts))):
        raise _corrupt(path, f"its architecture has dtype {_short(arch.get('dtype'))} and activation {_short(acts)}")
    for key, lo, hi in (("input_scale", 1e-30, 1e6), ("l2", 0.0, 1e6)):
        v = arch.get(key, 1.0 if key == "input_scale" else 0.0)
        if type(v) not in (int, float) or not (lo < v <= hi if key == "input_scale" else lo <= v <= hi):
            raise _corrupt(path, f"its architecture has {key} {_short(v)}, outside {lo:g} … {hi:g}")


def _net_from(path, tensors, meta) -> tuple[MLP, np.ndarray]:
    arch = meta.get("architecture")
    if not isinstance(arch, dict):
        raise _not_ours(path, "it has no architecture")
    sizes = arch.get("sizes")
    if not isinstance(sizes, list) or not all(type(n) is int for n in sizes):
        raise ModelFileError(f"{path}: its architecture has layer sizes {_short(sizes)}, not a list of integers; "
                             "the file is corrupt")
    _check_architecture(path, arch)
    try:
        net = MLP(**arch)
    except (ConfigError, TypeError, ValueError, OverflowError, SyntaxError) as e:
        raise ModelFileError(f"{path}: its architecture cannot be rebuilt ({e}); the file is corrupt") from None
    theta = tensors.get("theta")
    if theta is None:
        raise _not_ours(path, "it has no tensor 'theta'")
    if theta.shape != (net.n_params,) or theta.dtype != net.dtype:
        raise ModelFileError(f"{path}: theta is {theta.dtype} {theta.shape} but the architecture "
                             f"{net!r} needs {net.dtype} ({net.n_params},); the file is corrupt")
    bad = ~np.isfinite(theta)
    if bad.any():
        i = int(np.argmax(bad))
        raise ModelFileError(f"{path}: θ[{i}] is {theta[i]} ({int(bad.sum()):,} of {theta.size:,} parameters are "
                             "not finite); this model cannot predict anything, train it again (a lower --lr or "
                             "--clip-norm keeps training finite)")
    return net, np.array(theta, copy=True)  # writable and owned, not a view of the file bytes


# ---------------------------------------------------------------- writing

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


#: environment variables that change which BLAS kernels run, or on how many threads
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                  "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "BLIS_NUM_THREADS")
_BLAS_KEYS = ("internal_api", "version", "architecture", "threading_layer", "num_threads")


def blas_libraries() -> list[dict]:
    """The BLAS libraries loaded in this process, as threadpoolctl sees them now (``[]`` without it).

    Each: ``internal_api`` (openblas, mkl, blis), ``version``, ``architecture`` (the core type
    whose kernels run, e.g. Haswell), ``threading_layer`` and ``num_threads`` (current limit).
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{k: p[k] for k in _BLAS_KEYS if p.get(k) is not None}
            for p in threadpool_info() if p.get("user_api") == "blas"]


def blas_kernel(blas: list[dict] | None = None) -> str | None:
    """The BLAS kernel NumPy's matrix products run on, in one phrase: ``"openblas 0.3.31 Haswell"``.

    The bit-identical-θ promise holds per kernel: the same library, version and ``architecture``
    (the core type whose kernels it chose, threadpoolctl's word) — two CPUs of different vendors
    may pick different kernels under the same NumPy wheel and round differently. ``None`` without
    threadpoolctl or a BLAS it can see; several libraries are joined with ``" + "``.
    """
    blas = blas_libraries() if blas is None else blas
    names = [" ".join(str(b[k]) for k in ("internal_api", "version", "architecture") if b.get(k)) for b in blas]
    return " + ".join(n for n in names if n) or None


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`), or ``"unknown CPU"``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """Where timings and last bits were measured, in one line: ``"AMD EPYC, openblas 0.3.31 Haswell, 2 threads"``."""
    blas = blas_libraries()
    threads = max((b["num_threads"] for b in blas if "num_threads" in b), default=None)
    return ", ".join(x for x in (cpu_model(), blas_kernel(blas), f"{threads} threads" if threads else None) if x)


@lru_cache(maxsize=1)
def _numpy_simd() -> list[str] | None:
    """NumPy's SIMD dispatch targets found on this CPU: which loops of exp, log, sums run here."""
    try:
        simd = np.show_config(mode="dicts").get("SIMD Extensions", {})
        return list(simd.get("baseline", [])) + list(simd.get("found", []))
    except (TypeError, AttributeError):  # NumPy < 1.26 has no mode="dicts"; its version says enough
        return None


def environment() -> dict:
    """What produced a file, for reproducing it bit for bit: versions, the BLAS build and threads."""
    from . import __version__

    blas = blas_libraries()  # a model file adds ``blas_kernel`` (see save_model); checkpoints do not need it
    threads = [b["num_threads"] for b in blas if "num_threads" in b]
    return {"steepest": __version__, "numpy": np.__version__, "python": platform.python_version(),
            "platform": platform.platform(terse=True), "machine": platform.machine(),
            "numpy_simd": _numpy_simd(), "blas": blas, "blas_threads": max(threads) if threads else None,
            "variables": {k: os.environ[k] for k in BLAS_VARIABLES if k in os.environ}}


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


def save_model(path, net: MLP, theta: np.ndarray, metadata: dict | None = None) -> Path:
    """Write ``theta`` and its description to a model file (atomically).

    Parameters
    ----------
    path : path of the ``.safetensors`` file
    net : MLP
    theta : ndarray, shape (n_params,), of ``net.dtype``
    metadata : dict, optional
        Extra JSON-able entries, typically ``preprocessing``, ``dataset``, ``training``,
        ``metrics``, ``seed``. ``format``, ``architecture`` and ``environment`` are filled in.
    """
    net.check_theta(theta)
    env = environment()
    env["blas_kernel"] = blas_kernel(env["blas"])  # what the bit-identical promise is made per
    env["cpu"] = cpu_model()
    meta = {"preprocessing": {"input_scale": net.input_scale, "image_shape": None}, **(metadata or {}),
            "architecture": net.config(), "environment": env}
    return _save(path, {"theta": theta}, _encode(MODEL_FORMAT, meta))


def load_model(path) -> tuple[MLP, np.ndarray, dict]:
    """Read a model file (or a checkpoint): ``(net, theta, metadata)``.

    Raises
    ------
    ModelFileError
        See :func:`read_safetensors`; also a ``theta`` that does not fit the architecture.
    """
    tensors, meta = read_safetensors(path)
    net, theta = _net_from(path, tensors, meta)
    _check_model_meta(path, meta)
    return net, theta, meta


def _corrupt(path, what) -> ModelFileError:
    return ModelFileError(f"{path}: {what}; the file is corrupt, train the model again")


def _check_model_meta(path, meta) -> None:
    """The entries the command line relies on have the types it expects (if present)."""
    for key in ("preprocessing", "dataset", "training", "metrics"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise _corrupt(path, f"metadata {key!r} is not a JSON object")
    shape = (meta.get("preprocessing") or {}).get("image_shape")
    if shape is not None and not (isinstance(shape, list) and len(shape) == 2
                                  and all(type(s) is int and s > 0 for s in shape)):
        raise _corrupt(path, f"image_shape {shape!r} is not [height, width]")
    names = (meta.get("dataset") or {}).get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise _corrupt(path, "class_names is not a list of strings")
    name = (meta.get("dataset") or {}).get("name")
    if name is not None and not isinstance(name, str):
        raise _corrupt(path, "the dataset name is not a string")
    _check_training_meta(path, meta.get("training") or {}, meta.get("seed"))


def _check_training_meta(path, training: dict, seed) -> None:
    """``training.lr`` a finite number > 0, the seeds integers in 0 … 2**63 − 1, init and bias known names."""
    from .registry import BIASES, INITS

    lr = training.get("lr")
    if lr is not None and (type(lr) not in (int, float) or not math.isfinite(lr) or lr <= 0):
        raise _corrupt(path, f"training.lr {_short(lr)} is not a positive finite number")
    for key, value in (("training.seed", training.get("seed")), ("seed", seed)):
        if value is not None and (type(value) is not int or not 0 <= value < 2**63):
            raise _corrupt(path, f"{key} {_short(value)} is not an integer in 0 … 2**63 − 1")
    for key, names in (("init", INITS), ("bias", BIASES)):
        value = training.get(key)
        if value is not None and value not in names:
            raise _corrupt(path, f"training.{key} {_short(value)} is not one of {', '.join(names)}")


_SCALAR_TYPES = {"int": (int,), "float": (int, float), "str": (str,)}


def _check_state(path, scalars: dict, tensors: dict, theta: np.ndarray) -> None:
    """Types and shapes of a checkpoint's training state, checked against TrainState's annotations."""
    from .loop import TrainState

    for f in dataclasses.fields(TrainState):
        if f.name not in scalars:
            continue
        ann = (f.type.__name__ if isinstance(f.type, type) else str(f.type)).replace(" ", "")
        base, optional = ann.removesuffix("|None"), ann.endswith("|None")
        v = scalars[f.name]
        types = _SCALAR_TYPES.get(base)
        if types is None or (v is None and optional):
            continue
        if isinstance(v, bool) or not isinstance(v, types) or (base == "int" and v < 0):
            raise _corrupt(path, f"training-state field {f.name!r} has the invalid value {v!r}")
    for key, value in tensors.items():
        if key == "opt.step":
            ok = value.shape == (1,) and value.dtype == np.int64 and value[0] >= 0
        elif key.startswith("opt.") or key.startswith("mem.") or key == "best_theta":
            ok = value.shape == theta.shape and value.dtype == theta.dtype
        elif key.startswith("history."):
            ok = value.shape == (scalars.get("step", 0),)
        else:
            ok = key == "theta"
        if not ok:
            raise _corrupt(path, f"tensor {key!r} ({value.dtype} {value.shape}) does not fit the training state")


def _check_memory(path, memory) -> None:
    """The listeners' memory: a JSON object of JSON objects whose values are numbers, strings or null."""
    if not isinstance(memory, dict) or not all(isinstance(v, dict) for v in memory.values()):
        raise _corrupt(path, "the stopping rules' memory is not a JSON object of objects")
    for key, values in memory.items():
        for name, v in values.items():
            if not (v is None or isinstance(v, (str, int, float))) or (isinstance(v, float) and not np.isfinite(v)):
                raise _corrupt(path, f"the memory {key}.{name} has the invalid value {v!r}")


def save_checkpoint(path, net: MLP, state, config: dict) -> Path:
    """Write a :class:`~steepest.loop.TrainState` and the run's ``config`` (atomically)."""
    net.check_theta(state.theta)
    tensors = {"theta": state.theta}
    for key, value in state.opt_state.items():
        tensors[f"opt.{key}"] = np.asarray(value)
    for key, value in state.arrays.items():
        tensors[f"mem.{key}"] = value
    for key, values in state.history.steps.items():
        tensors[f"history.{key}"] = np.asarray(values, dtype=np.float64).reshape(-1)
    scalars = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
               if f.name not in _STATE_ARRAYS}
    meta = {"architecture": net.config(), "state": scalars, "history_epochs": state.history.epochs,
            "config": config, "environment": environment()}
    return _save(path, tensors, _encode(CHECKPOINT_FORMAT, meta))


def load_checkpoint(path):
    """Read a checkpoint: ``(net, state, config)``, ready for ``train(..., state=state)``."""
    from .loop import History, TrainState

    tensors, meta = read_safetensors(path, formats=(CHECKPOINT_FORMAT,))
    net, theta = _net_from(path, tensors, meta)
    scalars, epochs = meta.get("state"), meta.get("history_epochs")
    if not isinstance(scalars, dict) or not isinstance(epochs, list):
        raise _not_ours(path, "it lacks the training state")
    known = {f.name for f in dataclasses.fields(TrainState)} - set(_STATE_ARRAYS)
    scalars = dict(scalars)
    legacy = {k: scalars.pop(k) for k in ("best_loss", "best_epoch") if k in scalars}  # written by 0.1
    unknown = set(scalars) - known
    if unknown:
        raise ModelFileError(f"{path}: unknown training-state fields {sorted(unknown)}; "
                             "it was written by another version of steepest")
    _check_state(path, scalars, tensors, theta)
    if not all(isinstance(e, dict) for e in epochs):
        raise _corrupt(path, "the per-epoch history is not a list of records")
    opt_state = {k[4:]: v.copy() for k, v in tensors.items() if k.startswith("opt.")}
    steps = {k[8:]: v.tolist() for k, v in tensors.items() if k.startswith("history.")}
    arrays = {k[4:]: v.copy() for k, v in tensors.items() if k.startswith("mem.")}
    if legacy or "best_theta" in tensors:  # 0.1 kept the patience rule's memory in the state itself
        scalars.setdefault("memory", {})["patience"] = {"best_loss": legacy.get("best_loss"),
                                                       "best_epoch": legacy.get("best_epoch", 0)}
        if "best_theta" in tensors:
            arrays["patience.best_theta"] = tensors["best_theta"].copy()
    _check_memory(path, scalars.get("memory", {}))
    state = TrainState(theta=theta, opt_state=opt_state, arrays=arrays,
                       history=History(steps=steps or History().steps, epochs=epochs), **scalars)
    config = meta.get("config", {})
    if not isinstance(config, dict):
        raise _corrupt(path, "its configuration is not a JSON object")
    return net, state, config
