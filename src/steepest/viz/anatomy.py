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

import math
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
    dead: np.ndarray | None = None   # (n_1,) bool: first-hidden-layer ReLU units silent on the whole batch
    loss_share: tuple | None = None  # (k, share): the k highest-loss rows carry this share of Σ loss

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
                "relative_error": self.relative_error, "top": self.top,
                "dead_units": None if self.dead is None else np.flatnonzero(self.dead).tolist(),
                "top_loss_rows": None if self.loss_share is None else
                {"rows": self.loss_share[0], "share_of_loss": self.loss_share[1]}}


def locate(net, index: int) -> dict:
    """Where flat index ``index`` of θ lives: ``{"layer", "kind", "row", "col"}`` (col None for biases)."""
    for lay, name in zip(net.layers, net.layer_names()):
        if lay.w.start <= index < lay.w.stop:
            r, c = divmod(index - lay.w.start, lay.n_out)  # W is row-major (n_in, n_out)
            return {"layer": name, "kind": "W", "row": int(r), "col": int(c)}
        if lay.b.start <= index < lay.b.stop:
            return {"layer": name, "kind": "b", "row": int(index - lay.b.start), "col": None}
    raise ConfigError(f"index {index} is outside θ (size {net.n_params})")


def describe(net, where: dict, image_shape=None) -> str:
    """A weight of :func:`locate` in words: ``"hidden unit 34 → class 2"``, ``"pixel (12, 5) → hidden unit 3"``.

    Units are numbered from 0 within their layer; with more than one hidden layer each hidden unit
    says its layer (``"hidden unit 7 (layer 2)"``).
    """
    names = net.layer_names()
    l, n_hidden = names.index(where["layer"]), len(names) - 1

    def unit(k, i, column=False):  # unit i of layer k: 0 the input, n_hidden + 1 the output; a column of
        if k == 0:                 # a maxout layer's W or b is one piece of unit i // pieces
            if image_shape and int(np.prod(image_shape)) == net.sizes[0]:
                return f"pixel ({i // image_shape[1]}, {i % image_shape[1]})"
            return f"input {i}"
        if k == n_hidden + 1:
            return f"class {i}"
        pieces = net.layers[k - 1].pieces if column else 1
        j, p = divmod(i, pieces)
        return f"hidden unit {j}" + (f" (layer {k})" if n_hidden > 1 else "") + (f", piece {p}" if pieces > 1 else "")

    if where["kind"] == "b":
        return f"bias of {unit(l + 1, where['row'], column=True)}"
    return f"{unit(l, where['row'])} → {unit(l + 1, where['col'], column=True)}"


def dead_units(net, theta, X) -> np.ndarray | None:
    """First-hidden-layer ReLU units whose pre-activation ``Z₁ = x·W₁ + b₁`` is ≤ 0 on every row of ``X`` (x:
    the input as the first layer sees it, scaled and, for a standardised network, standardised):
    they pass nothing on and their input weights get no gradient (``∂L/∂W₁[:, j] = 0``). Shape (n_1,)
    bool; ``None`` when the first hidden activation is not ReLU (no unit is ever exactly silent)."""
    if len(net.layers) < 2 or net.activations[0] != "relu":
        return None
    (W, b), = net.unpack(np.asarray(theta, np.float64))[:1]
    Z = net.first_input(X) @ W + b
    return np.all(Z <= 0, axis=0)


def loss_share(net, theta, X, y, fraction=0.05) -> tuple[int, float]:
    """``(k, s)``: the ``k = ⌈fraction·n⌉`` rows of highest loss ℓᵢ = log Σⱼ e^{Zᵢⱼ} − Z_{i,yᵢ} carry the
    share ``s = Σ_top ℓᵢ / Σ ℓᵢ`` of the batch's loss — and, with the largest softmax − onehot errors,
    most of its gradient."""
    Z = net.astype("float64").logits(np.asarray(theta, np.float64), np.asarray(X, np.float64))
    m = Z.max(axis=1, keepdims=True)
    li = (np.log(np.exp(Z - m).sum(axis=1)) + m[:, 0]) - Z[np.arange(len(y)), y]
    k = max(1, math.ceil(fraction * len(y)))
    return k, float(np.sort(li)[::-1][:k].sum() / max(li.sum(), 1e-300))


def first_order(net, theta, X, y, lr):
    """``(loss, grad, predicted, measured)`` for one GD step of size ``lr``, all in float64."""
    net64 = net.astype("float64")
    t = np.asarray(theta, np.float64)
    X = np.asarray(X, np.float64)
    loss, g = net64.loss_and_grad(t, X, y)
    with np.errstate(over="ignore", invalid="ignore"):
        after = net64.loss(t - lr * g, X, y)
    return float(loss), g, -lr * float(g @ g), float(after - loss)


def gradient_anatomy(net, theta, X, y, lr=0.1, k=10, image_shape=None) -> Anatomy:
    """Break ∇L(θ) on the batch ``X (n, d), y (n,)`` down by layer and weight; see the module docstring.

    Parameters
    ----------
    lr : float
        η of the step whose effect is predicted and measured.
    k : int
        How many of the largest moves |η·∂L/∂θᵢ| to list; each says in words which weight it is
        (:func:`describe`, with ``image_shape`` naming input pixels).
    """
    if not lr > 0:
        raise ConfigError(f"lr must be positive, got {lr!r}")
    loss, g, predicted, measured = first_order(net, theta, X, y, lr)
    top = []
    for i in np.argsort(-np.abs(g), kind="stable")[:k]:
        where = locate(net, int(i))
        top.append({**where, "name": describe(net, where, image_shape), "index": int(i), "theta": float(theta[i]),
                    "grad": float(g[i]), "step": float(-lr * g[i])})
    return Anatomy(net, theta, g, loss, float(lr), int(X.shape[0]), net.layer_norms(g), top, predicted, measured,
                   dead_units(net, theta, X), loss_share(net, theta, X, y))


def first_order_sweep(net, theta, X, y, lrs=None) -> dict:
    """Predicted (−η‖∇L‖²) and measured loss change for a range of η: arrays ``lr, predicted, measured``."""
    lrs = np.geomspace(1e-4, 10.0, 21) if lrs is None else np.asarray(lrs, float)
    rows = [first_order(net, theta, X, y, lr)[2:] for lr in lrs]
    return {"lr": lrs, "predicted": np.array([r[0] for r in rows]), "measured": np.array([r[1] for r in rows])}
