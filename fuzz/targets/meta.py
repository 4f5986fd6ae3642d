"""Model files whose metadata holds JSON values of every type and depth: load_model, then what the
commands read from it (θ₀ re-drawn from training.seed/init/bias, training.lr, class names,
image_shape, metrics), and predictions on one row.

A correct load is a model whose θ is finite and whose every consumed value has the type the
commands expect; anything else must be a ModelFileError (or another SteepestError).
"""

from __future__ import annotations

import copy
import json
import math
import random
import struct
from pathlib import Path

import numpy as np

import mutate
from targets import jsonvalues
from targets.common import Case, expect

NAME = "meta"

BASE = {
    "architecture": {"sizes": [4, 3, 2], "activation": "tanh", "dtype": "float32", "input_scale": 1.0, "l2": 0.0},
    "preprocessing": {"input_scale": 1.0, "image_shape": [2, 2]},
    "dataset": {"name": "tiny", "source": "tiny.npz", "n_classes": 2, "class_names": ["a", "b"]},
    "training": {"lr": 0.1, "seed": 0, "init": "glorot", "bias": "zero"},
    "metrics": {"test_acc": 0.5, "stop_reason": "max_epochs"},
    "seed": 0,
}
PATHS = [("format_version",), ("architecture",), ("architecture", "sizes"), ("architecture", "activation"),
         ("architecture", "dtype"), ("architecture", "input_scale"), ("architecture", "l2"), ("preprocessing",),
         ("preprocessing", "image_shape"), ("preprocessing", "input_scale"), ("dataset",), ("dataset", "name"),
         ("dataset", "class_names"), ("training",), ("training", "lr"), ("training", "seed"),
         ("training", "init"), ("training", "bias"), ("metrics",), ("metrics", "test_acc"), ("seed",),
         ("environment",)]
N_PARAMS = 4 * 3 + 3 + 3 * 2 + 2


def safetensors(meta: dict, theta: np.ndarray, shape=None) -> bytes:
    """A safetensors file by hand: the metadata values are JSON text, but format/format_version plain."""
    strings = {k: v if k in ("format", "format_version") and isinstance(v, str) else
               (v if isinstance(v, str) and k == "_raw" else json.dumps(v)) for k, v in meta.items()}
    raw = strings.pop("_raw", None)
    header = {"__metadata__": strings, "theta": {"dtype": "F32", "shape": shape or [theta.size],
                                                 "data_offsets": [0, theta.nbytes]}}
    text = json.dumps(header)
    if raw is not None:  # a metadata value that is not JSON at all (or nested too deep)
        text = text.replace('"__metadata__": {', '"__metadata__": {"training": ' + json.dumps(raw) + ", ", 1)
    body = text.encode()
    return struct.pack("<Q", len(body)) + body + theta.astype("<f4").tobytes()


def _case(r: random.Random) -> bytes:
    meta = copy.deepcopy(BASE)
    meta["format"], meta["format_version"] = "steepest.model", "1"
    theta = np.random.default_rng(r.randrange(2**32)).normal(size=N_PARAMS).astype(np.float32)
    for _ in range(r.choice([1, 1, 1, 2, 3])):
        path = r.choice(PATHS)
        v = jsonvalues.value(r, depth=r.choice([0, 1, 2, 4]))
        if path == ("format_version",):
            v = r.choice(["1", "0", "2", "²", "١", "9" * 5000, "", " 1", "1.0", "-1"]) if r.random() < 0.7 else v
        where = meta
        for key in path[:-1]:
            where = where.setdefault(key, {}) if isinstance(where.get(key), dict) else where
        if isinstance(where, dict):
            where[path[-1]] = v
    k = r.random()
    if k < 0.05:
        meta["_raw"] = jsonvalues.text(r)
    if k > 0.93:
        theta[r.randrange(theta.size)] = r.choice([np.nan, np.inf, -np.inf])
    shape = None
    if 0.9 < k <= 0.93:
        shape = r.choice([[0, 2**47, 2**47, 2**47], [N_PARAMS, 0], [2**63], [-1], [N_PARAMS, 1]])
    return safetensors(meta, theta, shape)


def seeds() -> list[bytes]:
    r = random.Random(0)
    return [_case(r) for _ in range(20)]


def mutate_bytes(r: random.Random, data: bytes, pool) -> bytes:
    return _case(r) if r.random() < 0.85 else mutate.havoc(r, data, pool)


def generate(r: random.Random, pool) -> Case:
    return Case(mutate_bytes(r, r.choice(pool), pool), how="model", suffix=".safetensors")


def _consume(path):
    """load_model, then what landscape, explain, predict, evaluate and report read from the model."""
    from steepest.commands._common import class_label
    from steepest.commands._viewargs import initial_theta
    from steepest.io import load_model
    from steepest.viz.report import _fmt

    net, theta, meta = load_model(path)
    training = meta.get("training") or {}
    lr = float(training.get("lr") or 0.1)
    theta0, _ = initial_theta(net, meta) if (training.get("seed", meta.get("seed")) is not None) else (theta, 0)
    names = (meta.get("dataset") or {}).get("class_names")
    labels = [class_label(i, names) for i in range(net.sizes[-1])]
    shape = (meta.get("preprocessing") or {}).get("image_shape")
    text = [_fmt(v) for v in (meta.get("metrics") or {}).values()]
    p = net.predict_proba(theta, np.zeros((1, net.sizes[0]), net.dtype))
    return theta, theta0, lr, labels, shape, text, p


def prepare(case: Case, work: Path):
    p = work / "model.safetensors"
    p.write_bytes(case.data)
    return (lambda: _consume(p)), [p]


def check(result, case: Case):
    theta, theta0, lr, labels, shape, text, p = result
    expect(np.isfinite(theta).all(), "a model with non-finite θ was accepted")
    expect(np.isfinite(theta0).all(), "θ₀ is not finite")
    expect(math.isfinite(lr) and lr > 0, f"training lr {lr!r}")
    expect(all(isinstance(s, str) for s in labels + text), "a label or metric is not text")
    expect(shape is None or (len(shape) == 2 and all(type(s) is int and s > 0 for s in shape)), f"image_shape {shape!r}")
    expect(np.isfinite(p).all(), "non-finite prediction")
