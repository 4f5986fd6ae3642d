"""Local minima and momentum on a function small enough to see whole.

    f(x) = x⁴ − 3x² + x,     f'(x) = 4x³ − 6x + 1

has a shallow local minimum at x ≈ 1.131 (f ≈ −1.07), a maximum at x ≈ 0.170 and the global
minimum at x ≈ −1.301 (f ≈ −3.51). From x₀ = 2 plain gradient descent (lr 0.01) slides into
the shallow basin and stops there: the gradient is zero, so is the step. Heavy-ball momentum
(μ = 0.9, same lr) builds up speed on the way down, rolls over the hump and settles in the deep
basin. Both runs use :class:`steepest.optim.SGD` on a one-element θ, the same code that trains
the networks.
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
