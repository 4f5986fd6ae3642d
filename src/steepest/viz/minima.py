"""Local minima and momentum on a function small enough to see whole.

    f(x) = x⁴ − 3x² + x,     f'(x) = 4x³ − 6x + 1

has a shallow local minimum at x ≈ 1.131 (f ≈ −1.07), a maximum at x ≈ 0.170 and the global
minimum at x ≈ −1.301 (f ≈ −3.51). From x₀ = 2 plain gradient descent (lr 0.01) slides into
the shallow basin and stops there: the gradient is zero, so is the step. Heavy-ball momentum
(μ = 0.9, same lr) builds up speed on the way down, rolls over the hump and settles in the deep
basin. Both runs use :class:`steepest.optim.SGD` on a one-element θ, the same code that trains
the networks.

That one start is not the general picture: from x₀ between about 0.3 and 1.8 momentum also stops
in the shallow minimum, and from x₀ < 0.17 plain GD finds the deep one. :func:`basin_map` runs
every (x₀, μ) of a grid at once (each coordinate of one θ vector is its own run — the update is
elementwise) and says which minimum each ends in. Momentum's dependable advantage is elsewhere:
on an ill-conditioned ravine

    r(u, v) = ½ (u² + κ v²),     ∇r = (u, κ v)

the step size must stay below 2/κ for the steep direction v, so plain GD crawls along the shallow
u at the rate (1 − η) per step, while heavy-ball momentum μ contracts u like √μ per step once
(1 + μ − η)² < 4μ. :func:`ravine` runs both from the same start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steepest.optim import make_optimizer


def double_well(x):
    """f(x) = x⁴ − 3x² + x (elementwise)."""
    x = np.asarray(x, dtype=np.float64)
    return x**4 - 3 * x**2 + x


def double_well_grad(x):
    """f'(x) = 4x³ − 6x + 1."""
    x = np.asarray(x, dtype=np.float64)
    return 4 * x**3 - 6 * x + 1


def critical_points():
    """(x_deep, x_hump, x_shallow): the global minimum, the maximum and the local minimum."""
    r = np.sort(np.roots([4.0, 0.0, -6.0, 1.0]).real)
    return float(r[0]), float(r[1]), float(r[2])


def basin(x) -> str:
    """``"deep"`` left of the hump, ``"shallow"`` right of it."""
    return "deep" if float(x) < critical_points()[1] else "shallow"


@dataclass
class ToyRun:
    """A path ``xs (T,)`` with ``fs = f(xs)``, and the basin it ended in."""

    label: str
    xs: np.ndarray
    fs: np.ndarray

    @property
    def basin(self) -> str:
        return basin(self.xs[-1])


def descend(optimizer, x0=2.0, lr=0.01, steps=300, label=None) -> ToyRun:
    """Run an optimizer (name or object from :mod:`steepest.optim`) on f from ``x0``."""
    opt = make_optimizer(optimizer) if isinstance(optimizer, str) else optimizer
    theta = np.array([x0], dtype=np.float64)
    state = opt.init(theta)
    xs = [x0]
    for _ in range(steps):
        opt.update(theta, double_well_grad(theta), state, lr)
        xs.append(float(theta[0]))
    xs = np.array(xs)
    return ToyRun(label or opt.name, xs, double_well(xs))


def momentum_vs_gd(x0=2.0, lr=0.01, momentum=0.9, steps=300) -> dict:
    """Plain GD and heavy-ball momentum from the same start: label → :class:`ToyRun`."""
    return {"GD": descend("gd", x0, lr, steps, "GD"),
            f"momentum μ={momentum:g}": descend(make_optimizer("momentum", momentum=momentum), x0, lr, steps,
                                                f"momentum μ={momentum:g}")}


#: Codes of :func:`basin_map`: ``BASINS[code]``.
BASINS = ("deep", "shallow", "unsettled")


def basin_map(x0s, momenta, lr=0.01, steps=500, tol=1e-2) -> np.ndarray:
    """Which minimum of f each start ends in: codes (0 deep, 1 shallow, 2 unsettled), shape (len(momenta), len(x0s)).

    Row i is heavy-ball momentum ``momenta[i]`` (μ = 0 is plain GD) from every ``x0s[j]`` at once,
    ``steps`` steps of ``lr``. A run is *unsettled* when after the last step |f'(x)| > ``tol`` or x is
    not finite (it diverged or is still rolling).
    """
    x0s = np.asarray(x0s, dtype=np.float64)
    out = np.empty((len(momenta), x0s.size), dtype=np.int8)
    hump = critical_points()[1]
    for i, mu in enumerate(momenta):
        opt = make_optimizer("momentum", momentum=float(mu)) if mu > 0 else make_optimizer("gd")
        theta = x0s.copy()
        state = opt.init(theta)
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(steps):
                opt.update(theta, double_well_grad(theta), state, lr)
            settled = np.isfinite(theta) & (np.abs(double_well_grad(theta)) <= tol)
        out[i] = np.where(~settled, 2, np.where(theta < hump, 0, 1))
    return out


def ravine_grad(p, kappa):
    """∇r(u, v) = (u, κ v) for r(u, v) = ½ (u² + κ v²); ``p`` shape (2,)."""
    return np.array([p[0], kappa * p[1]], dtype=np.float64)


def ravine_loss(p, kappa):
    """r(u, v) = ½ (u² + κ v²), elementwise over the last axis of ``p`` (..., 2)."""
    p = np.asarray(p, dtype=np.float64)
    return 0.5 * (p[..., 0] ** 2 + kappa * p[..., 1] ** 2)


def ravine(kappa=100.0, lr=0.018, momentum=0.8, start=(-10.0, 1.0), steps=150) -> dict:
    """GD and heavy-ball momentum on the ravine r from ``start``: label → :class:`ToyRun` with
    ``xs (T+1, 2)`` the path and ``fs`` the loss. ``lr`` must be below 2/κ for GD to converge."""
    runs = {}
    for label, opt in (("GD", make_optimizer("gd")),
                       (f"momentum μ={momentum:g}", make_optimizer("momentum", momentum=momentum))):
        theta = np.array(start, dtype=np.float64)
        state = opt.init(theta)
        path = [theta.copy()]
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(steps):
                opt.update(theta, ravine_grad(theta, kappa), state, lr)
                path.append(theta.copy())
        xs = np.array(path)
        runs[label] = ToyRun(label, xs, ravine_loss(xs, kappa))
    return runs
