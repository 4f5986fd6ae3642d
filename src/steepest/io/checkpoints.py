"""Checkpoints: everything in :class:`steepest.loop.TrainState` needed to continue a run bit for bit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from ..network import MLP
from ..records import STEP_COLUMNS
from .environment import environment
from .models import _corrupt, _net_from
from .tensors import CHECKPOINT_FORMAT, _encode, _not_ours, _save, read_safetensors

_STATE_ARRAYS = ("theta", "opt_state", "arrays", "history", "_t0")


_SCALAR_TYPES = {"int": (int,), "float": (int, float), "str": (str,)}


def _check_state(path, scalars: dict, tensors: dict, theta: np.ndarray) -> None:
    """Types and shapes of a checkpoint's training state, checked against TrainState's annotations."""
    from ..loop import TrainState

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


def _check_history(path, steps: dict) -> None:
    """The step history holds exactly one tensor per :data:`~steepest.records.STEP_COLUMNS` entry (every
    checkpoint since 0.1 wrote them all): one missing would break the resumed run, one unknown would be
    dropped without a word."""
    missing = [k for k in STEP_COLUMNS if k not in steps]
    unknown = sorted(set(steps) - set(STEP_COLUMNS))
    if missing or unknown:
        what = "; ".join(([f"lacks the step-history tensors {', '.join('history.' + k for k in missing)}"]
                          if missing else [])
                         + ([f"has unknown ones {', '.join('history.' + k for k in unknown)}"] if unknown else []))
        raise ModelFileError(f"{path}: the checkpoint {what.replace('; ', ' and ')}, so the run cannot continue "
                             "from it; start the run again (the same command with --out NEW_DIR, or --force)")


def save_checkpoint(path, net: MLP, state, config: dict, data: dict | None = None) -> Path:
    """Write a :class:`~steepest.loop.TrainState` and the run's ``config`` (atomically); ``data``, what
    the run was trained on (``{"fingerprint": …}``), lets a resume check it is given the same data."""
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
    if data is not None:
        meta["data"] = data
    return _save(path, tensors, _encode(CHECKPOINT_FORMAT, meta))


def load_checkpoint(path, data: bool = False):
    """Read a checkpoint: ``(net, state, config)``, ready for ``train(..., state=state)``; with ``data``,
    also the record of the data it was trained on (``{"fingerprint": …}``, None when not written)."""
    from ..loop import History, TrainState

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
    _check_history(path, steps)
    arrays = {k[4:]: v.copy() for k, v in tensors.items() if k.startswith("mem.")}
    if legacy or "best_theta" in tensors:  # 0.1 kept the patience rule's memory in the state itself
        scalars.setdefault("memory", {})["patience"] = {"best_loss": legacy.get("best_loss"),
                                                       "best_epoch": legacy.get("best_epoch", 0)}
        if "best_theta" in tensors:
            arrays["patience.best_theta"] = tensors["best_theta"].copy()
    _check_memory(path, scalars.get("memory", {}))
    state = TrainState(theta=theta, opt_state=opt_state, arrays=arrays,
                       history=History(steps={k: steps[k] for k in STEP_COLUMNS}, epochs=epochs), **scalars)
    config = meta.get("config", {})
    if not isinstance(config, dict):
        raise _corrupt(path, "its configuration is not a JSON object")
    if not data:
        return net, state, config
    record = meta.get("data")
    if record is not None and not (isinstance(record, dict) and isinstance(record.get("fingerprint"), str)):
        raise _corrupt(path, "its data record is not an object with a fingerprint")
    return net, state, config, record
