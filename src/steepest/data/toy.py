"""Toy 2-D datasets — ``moons``, ``circles``, ``spirals``, ``xor`` — made from a seed, no files.

Each has two features (x₁, x₂), roughly in [−1.5, 1.5]², and two classes, 600 training and 200
test points, with Gaussian noise of standard deviation ``noise`` added to every coordinate. The
points depend only on ``seed``: the same seed gives the same arrays on every machine.

* moons: two interleaved half circles, class 0 on (cos t, sin t), class 1 on (1 − cos t, ½ − sin t),
  t ∈ [0, π], centred and scaled by ¾ (as scikit-learn's ``make_moons``);
* circles: class 0 on the circle of radius 1, class 1 on the circle of radius ½;
* spirals: two arms r = t, angle θ = 2πt·1.75 + kπ for class k, t ∈ [0.1, 1], scaled by 1.4;
* xor: uniform in [−1, 1]², class = [x₁·x₂ < 0] (the quadrants of opposite sign).

>>> ds = load_toy("moons")
>>> ds.X_train.shape, ds.n_classes, ds.image_shape
((600, 2), 2, None)
"""

from __future__ import annotations

import numpy as np

from steepest.errors import ConfigError

TOY_DATASETS = ("moons", "circles", "spirals", "xor")
N_TRAIN, N_TEST = 600, 200
NOISE = {"moons": 0.1, "circles": 0.08, "spirals": 0.04, "xor": 0.05}


def _points(name: str, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noise-free points (n, 2) and labels (n,) of the toy ``name`` (half of each class)."""
    y = np.arange(n) % 2
    if name == "xor":
        X = rng.uniform(-1.0, 1.0, size=(n, 2))
        return X, (X[:, 0] * X[:, 1] < 0).astype(np.int64)
    t = rng.uniform(0.0, 1.0, size=n)
    if name == "moons":
        a = np.pi * t
        X = np.where(y[:, None] == 0, np.c_[np.cos(a), np.sin(a)], np.c_[1 - np.cos(a), 0.5 - np.sin(a)])
        return (X - [0.5, 0.25]) * 0.75, y
    if name == "circles":
        a = 2 * np.pi * t
        r = np.where(y == 0, 1.0, 0.5)
        return np.c_[r * np.cos(a), r * np.sin(a)], y
    if name == "spirals":
        r = 0.1 + 0.9 * t
        a = 2 * np.pi * r * 1.75 + np.pi * y
        return 1.4 * np.c_[r * np.cos(a), r * np.sin(a)], y
    raise ConfigError(f"unknown toy dataset {name!r}; known: {', '.join(TOY_DATASETS)}")


def load_toy(name: str, seed: int = 0, noise: float | None = None):
    """The toy dataset ``name`` as a :class:`steepest.data.Dataset` (float32 X, int64 y).

    Training and test points are drawn from one generator ``default_rng([seed, k])`` (k the index
    of the name in :data:`TOY_DATASETS`), then shuffled, so classes are interleaved.
    """
    from steepest.data.datasets import Dataset

    if name not in TOY_DATASETS:
        raise ConfigError(f"unknown toy dataset {name!r}; known: {', '.join(TOY_DATASETS)}")
    rng = np.random.default_rng([seed, TOY_DATASETS.index(name)])
    X, y = _points(name, N_TRAIN + N_TEST, rng)
    sd = NOISE[name] if noise is None else float(noise)
    X = X + rng.normal(0.0, sd, size=X.shape)
    perm = rng.permutation(len(y))
    X, y = X[perm].astype(np.float32), y[perm].astype(np.int64)
    return Dataset(
        name=name, X_train=X[:N_TRAIN], y_train=y[:N_TRAIN], X_test=X[N_TRAIN:], y_test=y[N_TRAIN:],
        input_scale=1.0, image_shape=None, n_classes=2,
        source=f"generated (steepest.data.toy, seed {seed}, noise {sd:g})", class_names=None,
    )
