"""How flat is a minimum? The loss increase at a fixed filter-normalised distance, measured.

For K seeded Gaussian directions d_k, each filter-normalised to θ*'s weights (see
:func:`~steepest.viz.landscape.filter_normalized_direction`: every unit's incoming weights scaled to
the norm of θ*'s, biases not moved), and distances r:

    ΔL_k(r) = ½ [L(θ* + r·d_k) + L(θ* − r·d_k)] − L(θ*)

Taking both sides cancels the first-order term — θ* is never exactly a stationary point of the
sampled loss, and a network trained with dropout is not at a minimum of the loss without it — so
``ΔL_k(r) = ½ r² d_kᵀ H d_k + O(r⁴)``: the curvature along d_k, in units of the weights' own size.
On a quadratic it is exactly ``½ r² dᵀAd`` wherever θ* is. ``ΔL(0) = 0`` exactly (the same θ is
evaluated), and the first two directions are those of
:func:`~steepest.viz.landscape.random_plane` for the same seed, so the plane drawn is spanned by two
of the K directions measured.

What it is not: K random directions see the typical curvature, not the sharpest one (the Hessian's
top eigenvalue); filter normalisation removes each unit's weight scale, not every
reparametrisation that changes sharpness (Dinh et al., "Sharp Minima Can Generalize For Deep
Nets", ICML 2017); and a flatter minimum by this measure says nothing by itself about test accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steepest.errors import ConfigError
from steepest.metrics import evaluate
from steepest.viz.common import sample_rows
from steepest.viz.landscape import filter_normalized_direction

#: Distances r at which ΔL(r) is measured by default (filter-normalised units; r = 1 moves every
#: unit's incoming weights by as much as their own norm).
RADII = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
#: The distance whose ΔL is the headline figure.
RADIUS = 0.5
#: Directions averaged over by default.
DIRECTIONS = 8


@dataclass
class Flatness:
    """Losses on both sides of θ* along K directions at m distances.

    ``plus[k, i] = L(θ* + radii[i]·d_k)``, ``minus[k, i] = L(θ* − radii[i]·d_k)``, shape (K, m);
    ``loss0 = L(θ*)``; ``note`` says which sample the losses were evaluated on.
    """

    radii: np.ndarray
    plus: np.ndarray
    minus: np.ndarray
    loss0: float
    seed: int
    note: str

    @property
    def increase(self) -> np.ndarray:
        """``ΔL_k(r) = ½ (plus + minus) − L(θ*)``, shape (K, m); inf where a side diverged."""
        with np.errstate(over="ignore", invalid="ignore"):
            return 0.5 * (self.plus + self.minus) - self.loss0

    @property
    def mean(self) -> np.ndarray:
        """ΔL(r) averaged over the K directions, shape (m,)."""
        return self.increase.mean(axis=0)

    def at(self, r: float) -> tuple[float, float, float]:
        """``(mean, min, max)`` over the directions of ΔL at distance ``r`` (one of ``radii``)."""
        hit = np.flatnonzero(np.isclose(self.radii, r, rtol=0, atol=1e-12))
        if not hit.size:
            measured = ", ".join(f"{v:g}" for v in self.radii)
            raise ConfigError(f"ΔL was not measured at r = {r:g}; ask for one of the distances measured: {measured}")
        col = self.increase[:, hit[0]]
        return float(col.mean()), float(col.min()), float(col.max())


def loss_increase(loss, theta, directions, radii):
    """The core, for any loss function: ``(plus (K, m), minus (K, m), loss0)``.

    ``loss(θ) → float``; ``theta (p,)``; ``directions (K, p)``; ``radii (m,)``. Each point
    ``θ ± r·d`` is formed in float64 and cast back to θ's dtype, so r = 0 evaluates θ itself.
    """
    theta = np.asarray(theta)
    t64, D = theta.astype(np.float64), np.asarray(directions, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.float64)
    if D.ndim != 2 or D.shape[1] != theta.size:
        raise ConfigError(f"directions must have shape (K, {theta.size}), got {D.shape}")
    loss0 = float(loss(theta))
    plus, minus = np.empty((len(D), radii.size)), np.empty((len(D), radii.size))
    for k, d in enumerate(D):
        for i, r in enumerate(radii):
            plus[k, i] = loss((t64 + r * d).astype(theta.dtype))
            minus[k, i] = loss((t64 - r * d).astype(theta.dtype))
    return plus, minus, loss0


def directions(net, theta, n_directions=DIRECTIONS, seed=0) -> np.ndarray:
    """K filter-normalised directions from one generator seeded by ``seed``, shape (K, p).

    Drawn in the order :func:`~steepest.viz.landscape.random_plane` draws its two, so its plane
    for the same seed is spanned by the first two. Two networks of the same shape get the same
    Gaussian draws, each scaled to its own weights.
    """
    if n_directions < 1:
        raise ConfigError(f"the number of directions must be at least 1, got {n_directions}")
    rng = np.random.default_rng(seed)
    return np.stack([filter_normalized_direction(net, theta, rng) for _ in range(n_directions)])


def flatness(net, theta, X, y, radii=RADII, n_directions=DIRECTIONS, n_samples=2000, seed=0) -> Flatness:
    """ΔL(r) of ``net`` at ``theta (p,)`` on a seeded sample of ``X (n, d)``, ``y (n,)``.

    The loss is :func:`~steepest.metrics.evaluate`'s (mean cross-entropy plus the model's L2 term).
    ``seed`` chooses the sample and the directions.
    """
    radii = np.asarray(radii, dtype=np.float64)
    if radii.ndim != 1 or not radii.size or (radii < 0).any() or not np.isfinite(radii).all():
        raise ConfigError(f"radii must be finite distances ≥ 0, got {radii!r}")
    Xs, ys, note = sample_rows(X, y, n_samples, seed)

    def loss(t):
        with np.errstate(over="ignore", invalid="ignore"):  # far out the loss may be inf: that is a result
            return evaluate(net, t, Xs, ys).loss

    plus, minus, loss0 = loss_increase(loss, theta, directions(net, theta, n_directions, seed), radii)
    return Flatness(radii, plus, minus, loss0, int(seed), note)
