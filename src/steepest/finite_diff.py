"""Check backpropagation against central finite differences.

For each checked coordinate i of θ (in float64):

    g_num[i] = (L(θ + h e_i) − L(θ − h e_i)) / 2h

and the relative error of a block (one layer's W, one layer's b, or everything) is

    ‖g_backprop − g_num‖ / max(‖g_backprop‖ + ‖g_num‖, tiny)

which is ~1e-9 or smaller when backprop is right and O(1) when it is wrong. Central differences
have error O(h²); h = 1e-6 balances that against float64 rounding of L (≈1e-16 / h).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .network import MLP


@dataclass
class GradCheckResult:
    """Relative errors per block (``"layer1.W"``, ``"layer1.b"``, …) and overall."""

    errors: dict = field(default_factory=dict)
    overall: float = 0.0
    n_checked: int = 0
    threshold: float = 1e-6

    @property
    def ok(self) -> bool:
        return self.overall < self.threshold and all(e < self.threshold for e in self.errors.values())

    def __str__(self):
        lines = [f"{name:>12}  {err:.3e}" for name, err in self.errors.items()]
        lines.append(f"{'overall':>12}  {self.overall:.3e}  ({'ok' if self.ok else 'FAILED'}, "
                     f"threshold {self.threshold:g}, {self.n_checked} coordinates)")
        return "\n".join(lines)


def _rel(a, b) -> float:
    denom = max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)
    return float(np.linalg.norm(a - b) / denom)


def gradcheck(net: MLP, theta, X, y, h=1e-6, max_per_block=None, seed=0, threshold=1e-6,
              masks=None) -> GradCheckResult:
    """Compare ``net.loss_and_grad`` with central finite differences, in float64.

    Parameters
    ----------
    net : MLP
        Any precision; the check runs on a float64 copy of the network and of θ.
    theta : ndarray, shape (n_params,)
    X : ndarray, shape (n, n_0);  y : ndarray of int, shape (n,)
    h : float
        Finite-difference step.
    max_per_block : int, optional
        Check at most this many randomly chosen coordinates in each W and b (all by default:
        fine for small networks; pass e.g. 50 for a 784-input network).
    seed : int
        Chooses the sampled coordinates.
    masks : list, optional
        Fixed dropout masks, one ``(n, n_l)`` array or None per layer (e.g.
        ``Dropout(net, seed).masks(0, n)``): both sides are then the loss of the masked network,
        ``L(θ; M)``. Label smoothing, max-norm-free θ and L2 are checked as the network has them.

    Returns
    -------
    GradCheckResult
        ``.errors`` per block, ``.overall``, ``.ok`` (all below ``threshold``).
    """
    net64 = net.astype("float64")
    theta = np.asarray(theta, dtype=np.float64).copy()
    X = np.asarray(X, dtype=np.float64)
    if masks is not None:
        masks = [None if m is None else np.asarray(m, dtype=np.float64) for m in masks]
        _, g, _ = net64.loss_grad_correct(theta, X, y, masks=masks)
        work = np.empty_like(theta)

        def loss(t, X, y):
            return net64.loss_grad_correct(t, X, y, grad=work, masks=masks)[0]
    else:
        _, g = net64.loss_and_grad(theta, X, y)
        loss = net64.loss
    rng = np.random.default_rng(seed)
    result = GradCheckResult(threshold=threshold)
    all_a, all_n = [], []
    for layer, name in zip(net64.layers, net64.layer_names()):
        for part, sl in (("W", layer.w), ("b", layer.b)):
            idx = np.arange(sl.start, sl.stop)
            if max_per_block is not None and idx.size > max_per_block:
                idx = np.sort(rng.choice(idx, size=max_per_block, replace=False))
            num = np.empty(idx.size)
            for k, i in enumerate(idx):
                old = theta[i]
                theta[i] = old + h
                lp = loss(theta, X, y)
                theta[i] = old - h
                lm = loss(theta, X, y)
                theta[i] = old
                num[k] = (lp - lm) / (2 * h)
            result.errors[f"{name}.{part}"] = _rel(g[idx], num)
            all_a.append(g[idx])
            all_n.append(num)
            result.n_checked += idx.size
    result.overall = _rel(np.concatenate(all_a), np.concatenate(all_n))
    return result
