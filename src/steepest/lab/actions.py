"""What the lab's API does besides steering: predict a drawing, compute the loss surface, save the run.

These run in the server's request threads on a copy of θ, with the engine's ``reader`` network (its
own buffers), so they never disturb the training thread.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

import numpy as np

from steepest.errors import ConfigError, DataError
from steepest.lab import probe
from steepest.lab.config import short
from steepest.records import evaluation_columns
from steepest.registry import OPTIMIZER_OPTIONS

MAX_IMAGE_SIDE = 1024
#: bytes of a run's name in UTF-8: one path component on Linux, macOS and Windows file systems
MAX_NAME_BYTES = 255


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
        except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past float64's range
            raise DataError("image must be a 2-D array of numbers 0…255") from None
        if a.ndim != 2 or max(a.shape) > MAX_IMAGE_SIDE:
            raise DataError(f"image must be a 2-D array at most {MAX_IMAGE_SIDE} on a side, got shape {a.shape}")
        grey = image_to_mnist(a, size=ds.image_shape[0]).astype(np.float64)
        return grey / 255.0 / ds.input_scale
    try:
        x = np.asarray(payload.get("pixels"), dtype=np.float64)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past float64's range
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
    unknown = sorted(set(payload) - {"pixels", "image", "target"})
    if unknown:
        raise DataError(f"unknown field(s) {', '.join(map(short, unknown))}; predict takes pixels or image, "
                        "and target")
    net, theta, data, _ = _current(engine)
    x = _pixels(payload, net, data)
    with engine.read_lock:
        p = net.predict_proba(theta, x[None, :].astype(net.dtype))[0].astype(np.float64)
    k = int(p.argmax())
    target = payload.get("target", k)
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < net.sizes[-1]:
        raise DataError(f"target must be a class 0…{net.sizes[-1] - 1}, got {short(target)}")
    g = probe.input_gradient(net, theta, x, target)
    scale = float(np.abs(g).max()) or 1.0
    return {"class": k, "probabilities": [round(float(v), 5) for v in p], "target": target,
            "input": np.round(x * data.ds.input_scale, 4).tolist(),
            "toward_target": np.round(-g / scale, 4).tolist(), "gradient_scale": scale}


def surface(engine, n=21) -> dict:
    """The loss on the plane of the paths, over a box that holds every racer's path with a margin."""
    if isinstance(n, bool) or not isinstance(n, int) or not 5 <= n <= 61:
        raise ConfigError(f"the surface grid side n must be an integer 5…61, got {short(n)}")
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
    ``name`` (checked by :func:`check_run_name`) must be new under the runs directory; without one, the
    run is named after the dataset and the time. Raises ConfigError for a bad or taken name, and
    RunWriteError when the disk refuses (the server's trouble, not the request's).
    """
    from steepest.commands._rundir import RunDir, release_lock

    name = None if name is None else check_run_name(name)  # before anything waits on the training
    net, _, data, r = _current(engine)
    state = engine.snapshot(0)                   # θ, optimizer memory and counters of one moment
    theta = (state.theta if state is not None else engine.theta0).copy()
    rundir = RunDir(_new_dir(engine.runs_root, name, data.ds.name))
    try:
        rundir.create()
        _write_run(engine, rundir, net, data, r, state, theta)
    except BaseException as e:
        rundir.remove_if_unused()  # a write the disk refused leaves no empty run directory behind:
        try:                       # nor the one _new_dir made (rmdir: only if nothing is left in it)
            rundir.path.rmdir()
        except OSError:
            pass
        if isinstance(e, OSError):
            raise _write_error(rundir.path, e) from None
        raise
    finally:
        release_lock(rundir.path)  # written: the lab keeps no descriptor per saved run
    engine.saved_step = state.step if state is not None else 0
    return rundir.path


def check_run_name(name) -> str:
    """``name`` if it can be one directory's name on any common file system, else ConfigError.

    Printable (no newline, tab or other control character), without '/' or '\\', not starting with '.'
    (nor ``..``: no way out of the runs directory), no space at either end (a name that looks like
    another), and at most :data:`MAX_NAME_BYTES` bytes in UTF-8 — the limit of one path component
    on Linux, macOS and Windows file systems.
    """
    what = "the run's name must be printable, without '/' or '\\', not start with '.' nor begin or end with a space"
    if not isinstance(name, str) or not name:
        raise ConfigError(f"the run's name must be a non-empty string, got {short(name)}; type a name such as my-run")
    if not name.isprintable() or "/" in name or "\\" in name or name.startswith(".") or name != name.strip():
        raise ConfigError(f"{what}, got {short(name)}; type a name such as my-run")
    size = len(name.encode("utf-8"))  # cannot fail now: a lone surrogate ("\\ud800") is not printable
    if size > MAX_NAME_BYTES:
        raise ConfigError(f"the run's name is {size:,} bytes long in UTF-8; file systems take at most "
                          f"{MAX_NAME_BYTES}: type a shorter name")
    return name


def _new_dir(root, name, dataset) -> Path:
    """Make the new, empty directory ``root/name`` (``root`` too if needed) and return its path; ``name``
    has passed :func:`check_run_name`.

    Made here with one ``mkdir`` rather than checked then made, so two saves of one name cannot both
    pass. Without a ``name``: ``lab-DATASET-TIME``, with ``-2``, ``-3``… when saved twice in a second.
    """
    root = Path(root)
    chosen = name is not None
    base = name if chosen else f"lab-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # mkdir's word for "it exists and is not a directory"
        raise _write_error(root, NotADirectoryError(errno.ENOTDIR, "not a directory")) from None
    except OSError as e:
        raise _write_error(root, e) from None
    for k in range(1, 100):
        path = root / (base if k == 1 else f"{base}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            if chosen:
                raise ConfigError(f"a run named {base!r} already exists in {root}; type another name") from None
        except OSError as e:
            raise _write_error(path, e) from None
    raise ConfigError(f"runs named {base}-2 … {base}-99 exist already in {root}; type a name")


def _write_error(path, e: OSError):
    from steepest.commands._rundir import RunWriteError

    return RunWriteError(f"cannot save the run in {path} ({e.strerror or e}); check that the disk has space "
                         "and that the lab's --runs-dir is a writable directory")


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
