"""The numbers behind the lab's pictures, each computed on a fixed sample so it stays cheap.

All functions take the network and a θ and return plain lists ready for JSON; none modifies θ.
"""

from __future__ import annotations

import numpy as np

from steepest import activations as _act
from steepest.losses import softmax
from steepest.metrics import evaluate

GRID = 48  # decision-boundary grid side for 2-D data


def input_gradient(net, theta, x, k: int) -> np.ndarray:
    """``∂L/∂x`` of the loss ``L = −log p_k(x)`` for one input ``x (d,)`` in the network's raw units.

    Backprop down to the input: ``δ_L = p − e_k``, ``δ_{l−1} = (δ_l W_lᵀ) ⊙ f'(Z_{l−1})`` and
    ``∂L/∂x = δ_0 ⊙ s/σ`` with δ_0 = δ_1 W_1ᵀ, s the input scale and, for a standardised network, σ its
    inputs' spread (the first layer sees ``(x·s − μ)/σ``; σ = 1 otherwise). Computed in float64.
    """
    params = [(W.astype(np.float64), b.astype(np.float64)) for W, b in net.unpack(theta)]
    a = [net.first_input(np.asarray(x)[None, :])]
    winners = {}  # maxout layers: the winning piece of each unit
    for l, (W, b) in enumerate(params):
        z = a[-1] @ W + b
        if l < len(params) - 1 and net.activations[l] == "maxout":
            winners[l] = np.empty((1, net.sizes[l + 1]), dtype=np.intp)
            z = _act.maxout_forward(z, net.pieces, np.empty((1, net.sizes[l + 1])), winners[l])
        a.append(_act.forward(net.activations[l], z) if l < len(params) - 1 and l not in winners else z)
    delta = softmax(a[-1])
    delta[0, k] -= 1.0
    for l in range(len(params) - 1, -1, -1):
        delta = delta @ params[l][0].T
        if l - 1 in winners:
            delta = _act.maxout_backward(delta, winners[l - 1], np.empty((1, params[l - 1][0].shape[1])))
        elif l > 0:
            delta = _act.backward(net.activations[l - 1], a[l], delta)
    return delta[0] * net.input_scale / (1.0 if net.input_std is None else net.input_std)


def boundary(net, theta, lo, hi, n=GRID) -> dict:
    """``p₁`` (the probability of class 1) on an n×n grid over [lo₀, hi₀]×[lo₁, hi₁], as 0…255."""
    xs, ys = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    G = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(net.dtype)
    P = net.predict_proba(theta, G)
    p = P[:, 1] if P.shape[1] == 2 else P.argmax(axis=1) / (P.shape[1] - 1)
    return {"n": n, "lo": [float(v) for v in lo], "hi": [float(v) for v in hi],
            "p": np.round(p * 255).astype(int).tolist()}


def first_layer_maps(net, grad, units: int = 16) -> list:
    """−∂L/∂W of the first ``units`` columns of W₁ (units; pieces, side by side, for maxout), one input-sized
    map each, scaled to −127…127."""
    W = grad[net.layers[0].w].reshape(net.layers[0].shape)[:, :units].T.astype(np.float64)
    m = -W
    scale = np.abs(m).max(axis=1, keepdims=True)
    m = np.where(scale > 0, m / np.maximum(scale, 1e-300), 0.0)
    return np.round(m * 127).astype(int).tolist()


def dead_units(net, theta, X, units: int = 16) -> list:
    """Which of the first ``units`` first-layer ReLU units are zero on every row of X (all False for another
    activation: no unit of it is ever exactly silent)."""
    from steepest.viz.anatomy import dead_units as silent

    dead = silent(net, theta, X)
    return [False] * min(units, net.sizes[1]) if dead is None else [bool(v) for v in dead[:units]]


def mistakes(net, theta, X, y, limit: int = 12) -> list:
    """Up to ``limit`` misclassified rows of X: index, label, prediction, top probabilities, pixels."""
    P = net.predict_proba(theta, X)
    pred = P.argmax(axis=1)
    out = []
    for i in np.flatnonzero(pred != y)[:limit]:
        top = np.argsort(-P[i])[:3]
        out.append({"index": int(i), "label": int(y[i]), "pred": int(pred[i]),
                    "top": [[int(k), round(float(P[i, k]), 3)] for k in top],
                    "pixels": np.round(X[i].astype(np.float64) * net.input_scale * 255).astype(int).tolist()})
    return out


class Plane:
    """The plane θ(a, b) = θ₀ + a·d₁ + b·d₂ through θ₀, spanned by two filter-normalised directions.

    (Li et al. 2018: each column of a Gaussian direction's W is rescaled to the norm of θ₀'s column;
    biases zero.) A θ off the plane is shown at its least-squares coordinates:
    ``(a, b) = G⁻¹ [d₁·(θ−θ₀), d₂·(θ−θ₀)]`` with the Gram matrix ``G = [[d₁·d₁, d₁·d₂], [d₂·d₁, d₂·d₂]]``.
    """

    def __init__(self, net, theta0, seed=0):
        from steepest.viz.landscape import filter_normalized_direction

        rng = np.random.default_rng([seed, 7])
        self.theta0 = theta0.astype(np.float64)
        self.D = np.stack([filter_normalized_direction(net, theta0, rng) for _ in range(2)]).astype(np.float64)
        self.Ginv = np.linalg.pinv(self.D @ self.D.T)

    def coords(self, theta) -> list:
        a, b = self.Ginv @ (self.D @ (theta.astype(np.float64) - self.theta0))
        return [float(a), float(b)]

    def surface(self, net, X, y, lo, hi, n=25) -> dict:
        """``L(θ(a, b))`` on an n×n grid of a ∈ [lo₀, hi₀], b ∈ [lo₁, hi₁], on the sample (X, y), each
        by :func:`~steepest.metrics.evaluate`; a point where the loss overflows is None (null in JSON)."""
        alphas, betas = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
        loss = np.empty((n, n))
        for i, b in enumerate(betas):
            for j, a in enumerate(alphas):
                t = (self.theta0 + a * self.D[0] + b * self.D[1]).astype(net.dtype)
                with np.errstate(over="ignore", invalid="ignore"):
                    loss[i, j] = evaluate(net, t, X, y).loss
        loss = np.where(np.isfinite(loss), loss, np.nan)
        return {"alphas": alphas.tolist(), "betas": betas.tolist(),
                "loss": [[None if np.isnan(v) else float(v) for v in row] for row in loss]}
