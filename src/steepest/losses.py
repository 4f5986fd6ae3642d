"""Softmax cross-entropy, its gradient, and the L2 term.

For logits ``Z (batch, k)`` and integer labels ``y (batch,)`` the loss is the cross-entropy of
the softmax, summed over classes and averaged over the batch:

    L = (1/n) Σ_i [ log Σ_j exp Z_ij  −  Z_{i,y_i} ]

computed with the log-sum-exp shift ``m_i = max_j Z_ij`` so that no exponent is positive:
no overflow, no NaN, even for logits of ±1e4.

The matched pair softmax output + cross-entropy loss has the famously simple gradient

    ∂L/∂Z = (softmax(Z) − onehot(y)) / n

which is why the network never needs the softmax's own Jacobian.

**Label smoothing** ε replaces the one-hot target by ``q_i = (1−ε)·onehot(y_i) + ε/k``:

    L = (1/n) Σ_i [ log Σ_j exp Z_ij  −  Σ_j q_ij Z_ij ],        ∂L/∂Z = (softmax(Z) − q) / n

(Σ_j q_ij = 1, so the shift m_i cancels as before).
"""

from __future__ import annotations

import numpy as np


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``Z (batch, k)``, stable for any finite logits. Returns a new array."""
    P = Z - Z.max(axis=1, keepdims=True)
    np.exp(P, out=P)
    P /= P.sum(axis=1, keepdims=True)
    return P


def softmax_cross_entropy(Z: np.ndarray, y: np.ndarray, grad: bool = True, smoothing: float = 0.0):
    """Mean softmax cross-entropy and its gradient with respect to the logits, in place.

    Parameters
    ----------
    Z : ndarray, shape (batch, k)
        Logits. **Overwritten** with ``∂L/∂Z = (softmax(Z) − onehot(y)) / batch`` when
        ``grad`` is true, or with the softmax probabilities when it is false.
    y : ndarray of int, shape (batch,)
        Class labels in ``0 … k−1``.
    smoothing : float
        Label smoothing ε in [0, 1) (see the module docstring); 0 is the plain cross-entropy.

    Returns
    -------
    loss : float
        ``(1/n) Σ_i (logsumexp(Z_i) − Z_{i,y_i})``.
    Z : ndarray, shape (batch, k)
        The same buffer, now the gradient (or the probabilities).

    Examples
    --------
    >>> Z = np.array([[1e4, 0.0, -1e4]])
    >>> float(softmax_cross_entropy(Z.copy(), np.array([0]))[0])
    0.0
    """
    n = Z.shape[0]
    rows = np.arange(n)
    Z -= Z.max(axis=1, keepdims=True)              # shift: every exponent ≤ 0
    z_true = Z[rows, y]                             # Z_{i,y_i} − m_i, taken before exp overwrites it
    if smoothing:
        k = Z.shape[1]
        z_sum = Z.sum(dtype=np.float64)             # Σ_ij (Z_ij − m_i)
        z_q = (1.0 - smoothing) * z_true.sum(dtype=np.float64) + smoothing / k * z_sum   # Σ_ij q_ij (Z_ij − m_i)
    else:
        z_q = z_true.sum(dtype=np.float64)
    np.exp(Z, out=Z)
    s = Z.sum(axis=1, dtype=np.float64)             # in [1, k]: log is safe
    loss = float(np.log(s).sum() - z_q) / n
    if grad:
        Z *= (1.0 / (n * s)).astype(Z.dtype)[:, None]  # softmax / n …
        if smoothing:
            Z -= Z.dtype.type(smoothing / (k * n))      # … − ε/(k n) …
            Z[rows, y] -= Z.dtype.type((1.0 - smoothing) / n)   # … − (1−ε) onehot / n
        else:
            Z[rows, y] -= Z.dtype.type(1.0 / n)          # … − onehot / n, in one pass over Z
    else:
        Z *= (1.0 / s).astype(Z.dtype)[:, None]
    return loss, Z


def l2_penalty(weights, l2: float) -> float:
    """The weight-decay term ``(λ/2) Σ_l ‖W_l‖²`` (biases are not decayed); its gradient is ``λ W_l``."""
    if not l2:
        return 0.0
    return 0.5 * l2 * float(sum(np.dot(W.ravel(), W.ravel()) for W in weights))
