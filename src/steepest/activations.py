"""Hidden-layer activations: value and derivative.

Each activation is written so that the backward pass needs only the layer's *output*
``A = f(Z)``, never ``Z`` itself: ``f'(Z)`` is expressed through ``A``. The forward pass can
then overwrite ``Z`` with ``A`` in place, and the network keeps one buffer per layer.

====================  ===========================  ============================
name                  f(z)                         f'(z) written with a = f(z)
====================  ===========================  ============================
``sigmoid``           1 / (1 + e^-z)               a (1 - a)
``tanh``              tanh z                       1 - a²
``relu``              max(0, z)                    1 if a > 0 else 0
``leaky_relu``        z if z > 0 else 0.01 z       1 if a > 0 else 0.01
====================  ===========================  ============================

For ReLU the derivative at exactly z = 0 is taken as 0 (a subgradient), as in most libraries.

**Maxout** (Goodfellow et al. 2013) is not element-wise: a maxout layer of ``m`` units with ``k`` pieces
computes ``k·m`` pre-activations, its columns grouped unit by unit (unit j owns columns ``j·k … j·k + k − 1``),
and keeps the largest of each group::

    a_j = max_p z_{j·k+p}          ∂a_j/∂z_{j·k+p} = 1 for the piece p* that attains the max, else 0

so backprop sends each unit's δ to its winning piece and zero to the others (:func:`maxout_forward` records
the winners, :func:`maxout_backward` routes δ). A tie goes to the first piece, and a NaN piece wins (NaN
propagates), as :func:`numpy.argmax` decides.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .registry import ACTIVATIONS, ELEMENTWISE  # noqa: F401  (the names, listed once)

LEAKY_SLOPE = 0.01


def forward(name: str, Z: np.ndarray) -> np.ndarray:
    """Apply activation ``name`` to ``Z`` in place and return it (now holding ``A``).

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    Z : ndarray, shape (batch, n)
        Pre-activations; overwritten.
    """
    if name == "relu":
        # z·[z > 0]: a third faster than np.maximum (which must propagate NaN specially); NaN
        # still propagates (NaN·0 = NaN) so divergence is seen, and negatives become −0.0.
        np.multiply(Z, Z > 0, out=Z)
    elif name == "leaky_relu":
        # max(z, 0.01 z) is z for z > 0 and 0.01 z otherwise.
        np.maximum(Z, Z * Z.dtype.type(LEAKY_SLOPE), out=Z)
    elif name == "sigmoid":
        # 1/(1+e^-z) overflows e^-z for z << 0 (harmlessly, to inf → 0) but warns; the
        # tanh form is exact and warning-free: sigmoid(z) = (1 + tanh(z/2)) / 2.
        Z *= 0.5
        np.tanh(Z, out=Z)
        Z += 1
        Z *= 0.5
    elif name == "tanh":
        np.tanh(Z, out=Z)
    else:
        _not_elementwise(name)
    return Z


def backward(name: str, A: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Multiply ``delta`` in place by ``f'(Z)``, computed from the layer output ``A = f(Z)``.

    This is the element-wise factor of the backprop equation
    ``δ_l = (δ_{l+1} W_{l+1}ᵀ) ⊙ f'(Z_l)``.

    Parameters
    ----------
    A : ndarray, shape (batch, n)
        Output of the activation in the forward pass.
    delta : ndarray, shape (batch, n)
        ``∂L/∂A``; overwritten with ``∂L/∂Z``.
    """
    if name == "relu":
        np.multiply(delta, A > 0, out=delta)
    elif name == "leaky_relu":
        delta *= np.where(A > 0, A.dtype.type(1), A.dtype.type(LEAKY_SLOPE))
    elif name == "sigmoid":
        delta *= A * (1 - A)
    elif name == "tanh":
        delta *= 1 - A * A
    else:
        _not_elementwise(name)
    return delta


def _not_elementwise(name):
    if name == "maxout":
        raise ConfigError("maxout is not element-wise: use maxout_forward and maxout_backward")
    raise ConfigError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")


def maxout_forward(Z: np.ndarray, pieces: int, out: np.ndarray, winner: np.ndarray) -> np.ndarray:
    """``out[:, j] = max_p Z[:, j·k + p]`` for ``k = pieces``; ``winner[:, j]`` gets the winning p.

    Parameters
    ----------
    Z : ndarray, shape (batch, k·m)
        Pre-activations, each unit's k pieces side by side.
    out : ndarray, shape (batch, m)
    winner : ndarray of intp, shape (batch, m)
    """
    n, m = out.shape
    if Z.shape != (n, m * pieces) or winner.shape != (n, m):
        raise ConfigError(f"maxout of {pieces} pieces maps (n, {m * pieces}) to (n, {m}), got {Z.shape} → {out.shape}")
    groups = Z.reshape(n, m, pieces)
    np.argmax(groups, axis=2, out=winner)
    out[...] = np.take_along_axis(groups, winner[..., None], axis=2)[..., 0]
    return out


def maxout_backward(delta: np.ndarray, winner: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``∂L/∂Z`` from ``∂L/∂A``: each unit's δ goes to its winning piece, 0 to the others.

    ``delta`` (batch, m), ``winner`` (batch, m) from :func:`maxout_forward`, ``out`` (batch, k·m).
    """
    n, m = delta.shape
    out.fill(0)
    np.put_along_axis(out.reshape(n, m, out.shape[1] // m), winner[..., None], delta[..., None], axis=2)
    return out


def apply(name: str, Z: np.ndarray) -> np.ndarray:
    """Return ``f(Z)`` without touching ``Z`` (convenience for tests and plots)."""
    return forward(name, np.array(Z, copy=True))


def derivative(name: str, Z: np.ndarray) -> np.ndarray:
    """Return ``f'(Z)`` (convenience for tests and plots)."""
    A = apply(name, Z)
    return backward(name, A, np.ones_like(A))


