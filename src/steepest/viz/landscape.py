"""The loss surface L(θ) seen through lines and planes of parameter space.

θ has tens of thousands of coordinates; we look at it along one or two directions at a time:

* **line** — ``θ(α) = (1 − α)·θ₀ + α·θ₁``: α = 0 is θ₀, α = 1 is θ₁ exactly (this form, rather
  than ``θ₀ + α(θ₁ − θ₀)``, is exact at both ends in floating point), α outside [0, 1] goes beyond.
* **random plane** — ``θ(a, b) = θ* + a·d₁ + b·d₂`` with Gaussian directions *filter-normalised*
  (Li et al., "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018): our W is
  ``(n_in, n_out)``, so one neuron's incoming weights are a **column** of W; each column of a
  direction's W is rescaled to the norm of the same column of θ*'s W. Direction biases are set to
  zero (Li et al.'s choice for biases). Then a = 1 is a step as large as the weights themselves,
  neuron by neuron, and ReLU nets' scale invariance does not distort the picture.
* **trajectory plane** — the first two principal components of optimizer paths. The snapshots of
  all paths are stacked and centred on ``center`` (default: the last θ of the first path, θ*);
  the components are the top right-singular vectors of that matrix (no extra mean removal, as in
  Li et al.), so θ* sits at (0, 0) and every point's coordinates are ``(θ − center)·V``.
* **step probe** — ``L(θ − α∇L(θ))`` for a range of α against the first-order line
  ``L(θ) − α‖∇L‖²``: where they part, the step overshoots.

All losses are evaluated on a sample of the training set (``n_samples``), reported in ``note``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from steepest.errors import ConfigError
from steepest.loop import train
from steepest.metrics import evaluate
from steepest.viz.common import sample_rows

#: Paths drawn on the trajectory plane by default.
TRAJECTORY_RUNS = ("gd:lr=0.5", "sgd:batch=64,lr=0.1", "momentum:batch=full,lr=0.1")


def interpolate(theta0, theta1, alpha):
    """``(1 − α)·θ₀ + α·θ₁`` computed in float64, returned in θ₀'s dtype; exact at α = 0 and α = 1."""
    t = (1.0 - alpha) * theta0.astype(np.float64) + alpha * theta1.astype(np.float64)
    return t.astype(theta0.dtype)


@dataclass
class Line1D:
    """Losses along θ(α), arrays of shape (k,); ``test_*`` are None without test data."""

    alphas: np.ndarray
    train_loss: np.ndarray
    train_acc: np.ndarray
    test_loss: np.ndarray | None
    test_acc: np.ndarray | None
    note: str


def _loss_acc(net, theta, X, y):
    """(loss, accuracy) by :func:`~steepest.metrics.evaluate`; far from θ* the loss may be inf, not a warning."""
    with np.errstate(over="ignore", invalid="ignore"):
        m = evaluate(net, theta, X, y)
    return m.loss, m.accuracy


def line_1d(net, theta0, theta1, X, y, X_test=None, y_test=None, alphas=None, n_samples=2000,
            seed=0) -> Line1D:
    """The loss on the line from θ₀ (α = 0) to θ₁ (α = 1); default α ∈ [−0.5, 1.5] in 41 points."""
    # rounded so that the grid holds exactly 0.0 and 1.0 (linspace alone gives 5.6e-17 for 0)
    alphas = np.round(np.linspace(-0.5, 1.5, 41), 12) if alphas is None else np.asarray(alphas, dtype=float)
    Xs, ys, note = sample_rows(X, y, n_samples, seed)
    tr = np.array([_loss_acc(net, interpolate(theta0, theta1, a), Xs, ys) for a in alphas])
    te = None
    if X_test is not None:
        Xt, yt, _ = sample_rows(X_test, y_test, n_samples, seed)
        te = np.array([_loss_acc(net, interpolate(theta0, theta1, a), Xt, yt) for a in alphas])
    return Line1D(alphas, tr[:, 0], tr[:, 1], None if te is None else te[:, 0],
                  None if te is None else te[:, 1], note)


def filter_normalized_direction(net, theta, seed=0):
    """A Gaussian direction, each W column scaled to the norm of θ's column; biases zero. Shape (p,)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    d = np.zeros(net.n_params, dtype=np.float64)
    for layer in net.layers:
        D = rng.standard_normal(layer.shape)
        W = theta[layer.w].reshape(layer.shape).astype(np.float64)
        D *= np.linalg.norm(W, axis=0) / np.maximum(np.linalg.norm(D, axis=0), 1e-300)
        d[layer.w] = D.ravel()
    return d.astype(theta.dtype)


@dataclass
class Plane:
    """``loss[i, j] = L(center + alphas[j]·d1 + betas[i]·d2)``; shape (len(betas), len(alphas))."""

    alphas: np.ndarray
    betas: np.ndarray
    loss: np.ndarray
    center: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    note: str

    def theta(self, a, b):
        t = self.center.astype(np.float64) + a * self.d1.astype(np.float64) + b * self.d2.astype(np.float64)
        return t.astype(self.center.dtype)


def plane_2d(net, center, d1, d2, X, y, alphas, betas, note="") -> Plane:
    """The loss on the grid ``alphas × betas`` of the plane through ``center`` spanned by d1, d2."""
    plane = Plane(np.asarray(alphas, float), np.asarray(betas, float), None, center, d1, d2, note)
    with np.errstate(over="ignore", invalid="ignore"):
        plane.loss = np.array([[evaluate(net, plane.theta(a, b), X, y).loss for a in plane.alphas]
                               for b in plane.betas])
    return plane


def random_plane(net, theta, X, y, span=1.0, resolution=25, n_samples=2000, seed=0) -> Plane:
    """The loss around θ on a plane of two filter-normalised random directions, a, b ∈ [−span, span]."""
    if resolution < 3:
        raise ConfigError(f"resolution must be at least 3, got {resolution}")
    rng = np.random.default_rng(seed)
    d1, d2 = filter_normalized_direction(net, theta, rng), filter_normalized_direction(net, theta, rng)
    Xs, ys, note = sample_rows(X, y, n_samples, seed)
    grid = np.round(np.linspace(-span, span, resolution), 12)  # an odd resolution holds θ* itself at 0
    return plane_2d(net, theta, d1, d2, Xs, ys, grid, grid, note)


def train_paths(net, theta0, X, y, runs=TRAJECTORY_RUNS, steps=200, max_points=150, seed=0) -> dict:
    """Train each run (spec or string, see :class:`~steepest.viz.compare.RunSpec`) for ``steps``
    optimizer steps from θ₀ and keep θ every ⌈steps/max_points⌉ steps. Returns label → (T, p)."""
    from steepest.viz.compare import parse_runs

    every = max(1, math.ceil(steps / max_points))
    paths = {}
    for spec in parse_runs(runs):
        snaps = [theta0.copy()]

        def keep(event, state, snaps=snaps):
            if event == "step" and state.step % every == 0:
                snaps.append(state.theta.copy())
            return False

        res = train(net, theta0, X, y, optimizer=spec.make_optimizer(), lr=spec.lr,
                    batch_size=spec.batch_size, max_steps=steps, monitor=False, seed=seed, callback=keep)
        if res.state.step % every:
            snaps.append(res.theta.copy())
        paths[spec.label] = np.stack(snaps)
    return paths


@dataclass
class PCAPlane:
    """Two orthonormal directions ``components (2, p)`` through ``center (p,)``; ``coords`` label → (T, 2)."""

    center: np.ndarray
    components: np.ndarray
    explained: np.ndarray     # share of Σ‖θ_t − center‖² along each component, shape (2,)
    coords: dict

    def project(self, thetas):
        """Coordinates ``(θ − center)·Vᵀ`` of ``thetas (T, p)`` or ``(p,)``."""
        return (np.asarray(thetas, np.float64) - self.center) @ self.components.T

    def reconstruct(self, coords):
        """``center + coords·V``: the point of the plane with these coordinates, float64."""
        return self.center + np.asarray(coords, np.float64) @ self.components


def pca_plane(paths: dict, center=None) -> PCAPlane:
    """PCA of all snapshots of ``paths`` (label → (T, p)) about ``center``.

    ``center`` defaults to the last θ of the first path (θ*), which then has coordinates (0, 0).
    """
    if not paths:
        raise ConfigError("pca_plane needs at least one path")
    c = np.asarray(next(iter(paths.values()))[-1] if center is None else center, np.float64)
    M = np.concatenate([np.asarray(p, np.float64) for p in paths.values()]) - c
    if M.shape[0] < 2:
        raise ConfigError("pca_plane needs at least two snapshots")
    # thin SVD through the small Gram matrix M Mᵀ (T × T): cheap when p ≫ T
    w, U = np.linalg.eigh(M @ M.T)
    order = np.argsort(w)[::-1][:2]
    s = np.sqrt(np.maximum(w[order], 0.0))
    V = (U[:, order].T @ M) / np.maximum(s, 1e-300)[:, None]
    V /= np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-300)
    plane = PCAPlane(c, V, w[order] / max(w.sum(), 1e-300), {})
    plane.coords = {k: plane.project(p) for k, p in paths.items()}
    return plane


def trajectory_landscape(net, paths, X, y, center=None, resolution=25, margin=0.25, n_samples=2000,
                         seed=0):
    """PCA plane of ``paths`` and the loss on a grid covering every path (plus ``margin``)."""
    pca = pca_plane(paths, center)
    pts = np.concatenate(list(pca.coords.values()))
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = margin * np.maximum(hi - lo, 1e-6)
    Xs, ys, note = sample_rows(X, y, n_samples, seed)
    dtype = next(iter(paths.values())).dtype
    c, V = pca.center.astype(dtype), pca.components.astype(dtype)
    plane = plane_2d(net, c, V[0], V[1], Xs, ys, np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                     np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution), note)
    return pca, plane


@dataclass
class StepProbe:
    """``loss[k] = L(θ − alphas[k]·∇L)``, ``first_order = loss0 − alphas·‖∇L‖²``, ``lr`` the step in use."""

    alphas: np.ndarray
    loss: np.ndarray
    first_order: np.ndarray
    loss0: float
    grad_norm: float
    lr: float
    note: str

    @property
    def _best(self) -> int | None:
        pos = np.flatnonzero(self.alphas > 0)
        finite = pos[np.isfinite(self.loss[pos])]
        return int(finite[np.argmin(self.loss[finite])]) if finite.size else None

    @property
    def at_edge(self) -> bool:
        """The lowest loss probed is at the smallest or largest α > 0: the minimum along −∇L is not bracketed."""
        pos = np.flatnonzero(self.alphas > 0)
        return self._best is None or self._best in (pos[0], pos[-1])

    @property
    def best_alpha(self) -> float | None:
        """The α > 0 of the lowest loss probed, when it lies inside the grid; ``None`` at an edge
        (the true minimum along −∇L may be anywhere beyond it, so no α is suggested)."""
        return None if self.at_edge else float(self.alphas[self._best])

    @property
    def loss_at_lr(self) -> float:
        return float(self.loss[np.flatnonzero(self.alphas == self.lr)[0]])

    @property
    def verdict(self) -> str:
        """Whether a step of the learning rate in use overshoots, in one sentence, from the probed losses."""
        pos = self.alphas[self.alphas > 0]
        at, lr = self.loss_at_lr, f"lr {self.lr:g}"
        if not np.isfinite(at) or at > self.loss0:
            return f"{lr} overshoots: one step raises the loss from {self.loss0:.4g} to {at:.4g}"
        if self.best_alpha is None:
            if self._best is not None and self.alphas[self._best] == pos[-1]:
                return (f"{lr} undershoots: the loss still falls at the largest α probed ({pos[-1]:.3g}); "
                        "the minimum along −∇L lies beyond the grid")
            return f"{lr} lowers the loss to {at:.4g}; the minimum along −∇L lies below the smallest α probed"
        if self.lr > self.best_alpha:
            return (f"{lr} steps past the minimum along −∇L (at α ≈ {self.best_alpha:.3g}) but still lowers "
                    f"the loss, to {at:.4g}")
        return f"{lr} does not overshoot: the minimum along −∇L is further, at α ≈ {self.best_alpha:.3g}"


def step_probe(net, theta, X, y, lr, alphas=None, n_samples=2000, seed=0) -> StepProbe:
    """Loss along −∇L from θ; default α = 0 and 41 points from lr/30 to 30·lr, log-spaced (lr among them)."""
    Xs, ys, note = sample_rows(X, y, n_samples, seed)
    alphas = np.append(0.0, np.geomspace(lr / 30, 30 * lr, 41)) if alphas is None else np.asarray(alphas, float)
    alphas = np.unique(np.append(alphas, float(lr)))  # lr itself is always probed
    loss0, g = net.loss_and_grad(theta, Xs, ys)
    g64, t64 = g.astype(np.float64), theta.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        loss = np.array([evaluate(net, (t64 - a * g64).astype(theta.dtype), Xs, ys).loss for a in alphas])
    gg = float(g64 @ g64)
    return StepProbe(alphas, loss, loss0 - alphas * gg, float(loss0), math.sqrt(gg), float(lr), note)
