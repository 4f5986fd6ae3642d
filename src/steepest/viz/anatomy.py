"""The gradient's anatomy: which weights the next step moves, which way, by how much, and what it buys.

For a model θ and a batch (X, y), gradient descent's next step is ``Δθ = −η·∇L(θ)``:

* the **sign** of ``−∂L/∂w`` says whether the step raises or lowers weight w, its **magnitude**
  how far; for the first layer, column j of ``−∂L/∂W₁`` is one value per input pixel of hidden
  unit j and can be shown as an image;
* to first order the loss changes by ``∇L·Δθ = −η‖∇L‖²``; :func:`gradient_anatomy` sets this
  prediction beside the change measured after taking the step, ``L(θ − η∇L) − L(θ)``. They agree
  while η is small against the curvature (the second-order term is ``½η²·∇Lᵀ H ∇L``).

Both are computed in float64 (on a float64 copy of the network) so that the measured change of
a tiny step is not lost to float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from steepest.errors import ConfigError


@dataclass
class Anatomy:
    """∇L at one θ on one batch, broken down by layer, with the next GD step's effect.

    ``grad (p,)`` float64 in θ's layout; ``layer_norms (L,)``; ``top`` the k largest moves, each a
    dict with ``layer, kind ("W" or "b"), row, col, index, theta, grad, step``.
    """

    net: object
    theta: np.ndarray
    grad: np.ndarray
    loss: float
    lr: float
    n_rows: int
    layer_norms: np.ndarray
    top: list
    predicted_change: float    # −η‖∇L‖²
    measured_change: float     # L(θ − η∇L) − L(θ)

    def weight_grad(self, layer=0) -> np.ndarray:
        """∂L/∂W of a layer, shape (n_in, n_out)."""
        lay = self.net.layers[layer]
        return self.grad[lay.w].reshape(lay.shape)

    def bias_grad(self, layer=0) -> np.ndarray:
        """∂L/∂b of a layer, shape (n_out,)."""
        return self.grad[self.net.layers[layer].b]

    @property
    def relative_error(self) -> float:
        """|measured − predicted| / |predicted|: how far first order is from the truth at this η."""
        return abs(self.measured_change - self.predicted_change) / max(abs(self.predicted_change), 1e-300)

    def summary(self) -> dict:
        return {"loss": self.loss, "lr": self.lr, "rows": self.n_rows,
                "grad_norm": float(np.linalg.norm(self.grad)),
                "layer_grad_norms": dict(zip(self.net.layer_names(), map(float, self.layer_norms))),
                "predicted_change": self.predicted_change, "measured_change": self.measured_change,
                "relative_error": self.relative_error, "top": self.top}


def locate(net, index: int) -> dict:
    """Where flat index ``index`` of θ lives: ``{"layer", "kind", "row", "col"}`` (col None for biases)."""
    for lay, name in zip(net.layers, net.layer_names()):
        if lay.w.start <= index < lay.w.stop:
            r, c = divmod(index - lay.w.start, lay.n_out)  # W is row-major (n_in, n_out)
            return {"layer": name, "kind": "W", "row": int(r), "col": int(c)}
        if lay.b.start <= index < lay.b.stop:
            return {"layer": name, "kind": "b", "row": int(index - lay.b.start), "col": None}
    raise ConfigError(f"index {index} is outside θ (size {net.n_params})")


def first_order(net, theta, X, y, lr):
    """``(loss, grad, predicted, measured)`` for one GD step of size ``lr``, all in float64."""
    net64 = net.astype("float64")
    t = np.asarray(theta, np.float64)
    X = np.asarray(X, np.float64)
    loss, g = net64.loss_and_grad(t, X, y)
    with np.errstate(over="ignore", invalid="ignore"):
        after = net64.loss(t - lr * g, X, y)
    return float(loss), g, -lr * float(g @ g), float(after - loss)


def gradient_anatomy(net, theta, X, y, lr=0.1, k=10) -> Anatomy:
    """Break ∇L(θ) on the batch ``X (n, d), y (n,)`` down by layer and weight; see the module docstring.

    Parameters
    ----------
    lr : float
        η of the step whose effect is predicted and measured.
    k : int
        How many of the largest moves |η·∂L/∂θᵢ| to list.
    """
    if not lr > 0:
        raise ConfigError(f"lr must be positive, got {lr!r}")
    loss, g, predicted, measured = first_order(net, theta, X, y, lr)
    top = []
    for i in np.argsort(-np.abs(g), kind="stable")[:k]:
        top.append({**locate(net, int(i)), "index": int(i), "theta": float(theta[i]), "grad": float(g[i]),
                    "step": float(-lr * g[i])})
    return Anatomy(net, theta, g, loss, float(lr), int(X.shape[0]), net.layer_norms(g), top, predicted, measured)


def first_order_sweep(net, theta, X, y, lrs=None) -> dict:
    """Predicted (−η‖∇L‖²) and measured loss change for a range of η: arrays ``lr, predicted, measured``."""
    lrs = np.geomspace(1e-4, 10.0, 21) if lrs is None else np.asarray(lrs, float)
    rows = [first_order(net, theta, X, y, lr)[2:] for lr in lrs]
    return {"lr": lrs, "predicted": np.array([r[0] for r in rows]), "measured": np.array([r[1] for r in rows])}
