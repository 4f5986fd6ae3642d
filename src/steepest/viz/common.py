"""Helpers shared by the analyses and their plots: evaluation samples, figures, files.

Plots are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, never through
``pyplot``: no global state, no GUI backend, safe to call from a test or a thread. matplotlib is
imported inside the functions that draw, so ``import steepest.viz`` stays cheap.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from steepest.errors import ConfigError
from steepest.io import atomic_write

#: File formats every plot is written in.
FORMATS = ("png", "svg")


def sample_rows(X, y, n_samples=2000, seed=0):
    """A fixed random subset of at most ``n_samples`` rows, in their original order.

    Landscapes evaluate L(θ) hundreds of times; a sample keeps that CPU-sized. ``None`` (or a
    number ≥ n) means all rows.

    Returns
    -------
    X_s : ndarray, shape (m, d);  y_s : ndarray, shape (m,)
    note : str
        How the sample relates to the whole, for plot titles: ``"on 2000 of 60000 training samples"``.
    """
    n = X.shape[0]
    if n_samples is not None and (int(n_samples) != n_samples or n_samples < 1):
        raise ConfigError(f"n_samples must be a positive integer or None, got {n_samples!r}")
    if n_samples is None or n_samples >= n:
        return X, y, f"on all {n} training samples"
    idx = np.sort(np.random.default_rng(seed).choice(n, size=int(n_samples), replace=False))
    return X[idx], y[idx], f"on {int(n_samples)} of {n} training samples"


def new_figure(width=6.4, height=4.2, **kwargs):
    """A matplotlib Figure with an Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, out_dir, stem, formats=FORMATS) -> list[Path]:
    """Write ``fig`` as ``out_dir/stem.png`` and ``out_dir/stem.svg``; return the paths.

    SVGs carry no date, so the same numbers give the same file. Each file is drawn into memory
    and written by :func:`steepest.io.atomic_write`: a full disk leaves the old file or none,
    never a truncated one.
    """
    import io

    out = Path(out_dir)
    make_dir(out)
    paths = []
    for fmt in formats:
        p = out / f"{stem}.{fmt}"
        meta = {"Date": None} if fmt == "svg" else {"Software": None} if fmt == "png" else None
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight", metadata=meta)
        atomic_write(p, buf.getvalue())
        paths.append(p)
    return paths


def make_dir(path) -> None:
    """``mkdir -p``; a failure is a :class:`~steepest.errors.ModelFileError` that names the directory."""
    from steepest.errors import ModelFileError

    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelFileError(f"cannot create the directory {path}: {e.strerror or e}; "
                             "check the disk space and permissions, or choose another --out") from None


def to_jsonable(obj):
    """Arrays → lists, NumPy scalars → Python numbers, NaN/inf → None (JSON has neither)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path, obj) -> Path:
    """``obj`` as indented JSON, written atomically (:func:`steepest.io.atomic_write`)."""
    path = Path(path)
    make_dir(path.parent)
    return atomic_write(path, json.dumps(to_jsonable(obj), indent=1, ensure_ascii=False) + "\n")


def write_csv(path, rows: list[dict]) -> Path:
    """One row per dict; the columns are the union of the keys, in first-seen order."""
    import io

    path = Path(path)
    make_dir(path.parent)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in rows:
        w.writerow({k: to_jsonable(r.get(k)) for k in cols})
    return atomic_write(path, buf.getvalue())


def label_colors(labels):
    """A stable colour per label from matplotlib's default cycle."""
    cycle = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
             "#7f7f7f", "#bcbd22", "#17becf"]
    return {lab: cycle[i % len(cycle)] for i, lab in enumerate(labels)}
