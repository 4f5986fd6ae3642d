"""What the lab's API does besides steering: predict a drawing, compute the loss surface, save the run.

These run in the server's request threads on a copy of θ, with the engine's ``reader`` network (its
own buffers), so they never disturb the training thread.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from steepest.errors import ConfigError, DataError
from steepest.lab import probe
from steepest.records import evaluation_columns
from steepest.registry import OPTIMIZER_OPTIONS

MAX_IMAGE_SIDE = 1024


def _current(engine, racer=0):
    with engine.lock:
        r = engine.racers[racer]
        theta = (r.state.theta if r.state is not None else engine.theta0).copy()
        return engine.reader, theta, engine.data, r


def _pixels(payload, net, data):
    """The network input (1, d) in the dataset's raw units from ``pixels`` or ``image``.

    ``pixels``: d numbers in the raw units the training data is stored in (0…255 for MNIST, 0…16 for
    digits, any finite value for 2-D data). ``image``: a 2-D array of grey levels 0…255 (white ink on
    black or black on white, any size), made to look like a training image exactly as
    ``steepest predict`` does (:func:`steepest.data.image_to_mnist`), then put in raw units.
    """
    from steepest.data.userdata import image_to_mnist

    d, ds = net.sizes[0], data.ds
    if "image" in payload:
        if not ds.image_shape or ds.image_shape[0] != ds.image_shape[1]:
            raise ConfigError(f"{ds.name} is not square images; send 'pixels' ({d} numbers) instead of 'image'")
        try:
            a = np.asarray(payload["image"], dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("image must be a 2-D array of numbers 0…255") from None
        if a.ndim != 2 or max(a.shape) > MAX_IMAGE_SIDE:
            raise DataError(f"image must be a 2-D array at most {MAX_IMAGE_SIDE} on a side, got shape {a.shape}")
        grey = image_to_mnist(a, size=ds.image_shape[0]).astype(np.float64)
        return grey / 255.0 / ds.input_scale
    try:
        x = np.asarray(payload.get("pixels"), dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"pixels must be a list of {d} numbers") from None
    if x.shape != (d,):
        raise DataError(f"pixels must be a list of {d} numbers for this network, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"pixels: value at index {int(np.argmax(~np.isfinite(x)))} is not finite")
    if ds.image_shape:
        top = 1.0 / ds.input_scale
        bad = (x < 0) | (x > top + 1e-9)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"pixels: value {x[i]:g} at index {i} is outside 0…{top:g}, the range of {ds.name}'s pixels")
    return x


def predict(engine, payload) -> dict:
    """Class probabilities of one input, and −∂L/∂x for the class ``target`` (default: the predicted one)."""
    if not isinstance(payload, dict):
        raise DataError("predict takes a JSON object with 'pixels' or 'image'")
    net, theta, data, _ = _current(engine)
    x = _pixels(payload, net, data)
    with engine.read_lock:
        p = net.predict_proba(theta, x[None, :].astype(net.dtype))[0].astype(np.float64)
    k = int(p.argmax())
    target = payload.get("target", k)
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < net.sizes[-1]:
        raise DataError(f"target must be a class 0…{net.sizes[-1] - 1}, got {target!r}")
    g = probe.input_gradient(net, theta, x, target)
    scale = float(np.abs(g).max()) or 1.0
    return {"class": k, "probabilities": [round(float(v), 5) for v in p], "target": target,
            "input": np.round(x * data.ds.input_scale, 4).tolist(),
            "toward_target": np.round(-g / scale, 4).tolist(), "gradient_scale": scale}


def surface(engine, n=21) -> dict:
    """The loss on the plane of the paths, over a box that holds every racer's path with a margin."""
    if isinstance(n, bool) or not isinstance(n, int) or not 5 <= n <= 61:
        raise ConfigError(f"the surface grid side n must be an integer 5…61, got {n!r}")
    with engine.lock:
        plane, net, data = engine.plane, engine.reader, engine.data
        ab = np.array([p["ab"] for r in engine.racers for p in r.points] or [[0.0, 0.0]])
    lo, hi = ab.min(axis=0), ab.max(axis=0)
    half = np.maximum((hi - lo) * 0.6, 0.05 * max(1.0, float(np.abs(ab).max())))
    mid = (lo + hi) / 2
    with engine.read_lock:
        out = plane.surface(net, data.Xs, data.ys, mid - half, mid + half, n)
    out["note"] = f"loss on {len(data.ys)} training samples"
    return out


def save_run(engine, name=None) -> Path:
    """Write the first racer as a run directory (model, config.toml, metrics, checkpoint) under runs/.

    ``steepest evaluate DIR`` and ``steepest report DIR`` read it like a directory of ``steepest train``.
    """
    from steepest.commands._rundir import RunDir

    net, _, data, r = _current(engine)
    state = engine.snapshot(0)                   # θ, optimizer memory and counters of one moment
    theta = (state.theta if state is not None else engine.theta0).copy()
    if name is None:
        name = f"lab-{data.ds.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"the run's name must be a plain directory name (no '/', not starting with '.'), got {name!r}")
    rundir = RunDir(Path(engine.runs_root) / name)
    rundir.check_new(force=False)
    rundir.create()
    try:
        _write_run(engine, rundir, net, data, r, state, theta)
    except BaseException:
        rundir.remove_if_unused()  # a write the disk refused leaves no empty run directory behind
        raise
    engine.saved_step = state.step if state is not None else 0
    return rundir.path


def _write_run(engine, rundir, net, data, r, state, theta) -> None:
    """config.toml, the metrics files, the model and the checkpoint of :func:`save_run`."""
    from steepest.commands._trainconfig import BY_NAME, OPTIONS, to_toml
    from steepest.io import save_checkpoint, save_model
    from steepest.metrics import evaluate

    with engine.lock:
        cfg = {o.name: o.default for o in OPTIONS}
        cfg.update({k: v for k, v in engine.cfg.items() if k in BY_NAME}, **r.spec)
        cfg.update(dataset=data.ds.name, epochs=None, max_steps=max(1, state.step if state else 1))
        points = list(r.points)
    if "momentum" not in OPTIMIZER_OPTIONS[cfg["optimizer"]]:
        cfg["momentum"] = None
    rundir.write_config(to_toml(cfg))
    records = [{"epoch": p["samples"] / len(data.y), "step": p["step"], "train_loss": p["loss"],
                "test_acc": p.get("test_acc"), "grad_norm": p.get("grad_norm"), "lr": p["lr"],
                "samples": p["samples"], "seconds": p["seconds"]} for p in points]
    # the columns of `steepest train`'s metrics files that the lab's sampled points have, in their order
    rundir.start_metrics([c for c in evaluation_columns(["test"]) if not records or c in records[0]], records)
    metrics = {"train_loss": evaluate(net, theta, data.X, data.y).loss}
    if data.ds.X_test is not None:
        m = evaluate(net, theta, data.ds.X_test, data.ds.y_test)
        metrics.update(test_loss=m.loss, test_acc=m.accuracy)
    meta = {"preprocessing": {"input_scale": data.ds.input_scale,
                              "image_shape": list(data.ds.image_shape) if data.ds.image_shape else None},
            "dataset": {"name": data.ds.name, "source": data.ds.source, "n_classes": net.sizes[-1],
                        "class_names": data.ds.class_names, "n_train": len(data.y), "n_val": 0,
                        "n_test": 0 if data.ds.y_test is None else len(data.ds.y_test)},
            "training": {**cfg, "from": "steepest lab"}, "metrics": metrics,
            "stop_reason": "saved from the lab", "seed": cfg["seed"]}
    save_model(rundir.model, net, theta, meta)
    if state is not None:
        save_checkpoint(rundir.checkpoint, net, state, cfg)
