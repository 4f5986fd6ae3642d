"""Model files: θ with the network's architecture and the run's record, checked when read."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .._text import first_unprintable
from ..errors import ConfigError, ModelFileError
from ..network import MLP
from .environment import blas_kernel, cpu_model, environment
from .tensors import MODEL_FORMAT, _encode, _not_ours, _save, _short, read_safetensors


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
    _check_model_meta(path, meta, net)
    return net, theta, meta


def _corrupt(path, what) -> ModelFileError:
    e = ModelFileError(f"{path}: {what}; the file is corrupt, train the model again")
    e.damaged = True
    return e


def _check_model_meta(path, meta, net: MLP) -> None:
    """The entries the command line relies on have the types it expects (if present) and fit ``net``."""
    for key in ("preprocessing", "dataset", "training", "metrics"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise _corrupt(path, f"metadata {key!r} is not a JSON object")
    d, k = net.sizes[0], net.sizes[-1]
    shape = (meta.get("preprocessing") or {}).get("image_shape")
    if shape is not None and not (isinstance(shape, list) and len(shape) == 2
                                  and all(type(s) is int and s > 0 for s in shape) and shape[0] * shape[1] == d):
        raise _corrupt(path, f"image_shape {_short(shape)} is not [height, width] of the model's {d} inputs")
    dataset = meta.get("dataset") or {}
    n_classes = dataset.get("n_classes")
    if n_classes is not None and (type(n_classes) is not int or n_classes != k):
        raise _corrupt(path, f"the dataset has n_classes {_short(n_classes)} but the network has {k} outputs")
    _check_class_names(path, dataset.get("class_names"), k)
    for key in ("name", "file", "labels", "fingerprint"):
        value = dataset.get(key)
        if value is not None and not isinstance(value, str):
            raise _corrupt(path, f"the dataset {'name' if key == 'name' else key} {_short(value)} is not a string")
    _check_training_meta(path, meta.get("training") or {}, meta.get("seed"))


def _check_class_names(path, names, k: int) -> None:
    """``class_names``, which ``predict`` and ``evaluate`` print: k strings, one per output, printable as they are."""
    if names is None:
        return
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise _corrupt(path, "class_names is not a list of strings")
    if len(names) != k:
        raise _corrupt(path, f"it has {len(names)} class names for the network's {k} outputs")
    for i, name in enumerate(names):
        bad = first_unprintable(name)
        if bad is not None:
            raise _corrupt(path, f"class name {i} {_short(name)} holds U+{ord(bad):04X}, which a terminal would act on")


def _check_training_meta(path, training: dict, seed) -> None:
    """``training.lr`` a finite number > 0, the seeds integers in 0 … 2**63 − 1, init and bias known names."""
    from ..registry import BIASES, INITS

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
