"""How "randomise every weight and bias" is done.

Each scheme fills one layer's ``W (n_in, n_out)`` from a seeded :class:`numpy.random.Generator`:

=============  ==============================================================
``normal``     W ~ N(0, σ²) with σ = ``scale`` (default 0.01)
``uniform``    W ~ U(−s, s) with s = ``scale`` (default 0.05)
``glorot``     W ~ U(−r, r), r = √(6 / (n_in + n_out))   (Glorot & Bengio 2010)
``he``         W ~ N(0, 2 / n_in)                         (He et al. 2015, for ReLU)
=============  ==============================================================

Biases are zero by default (``bias="zero"``); ``bias="random"`` draws them from N(0, 0.01²)
so that *everything* is random, as in the classic description of training.

The draws are made in float64 and rounded to the network's dtype, so the same seed gives the
same θ (up to rounding) in float32 and float64.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError

from .registry import BIASES, INITS as SCHEMES  # noqa: F401  (the names, listed once)


def init_layer(rng: np.random.Generator, n_in: int, n_out: int, scheme: str = "he",
               scale: float | None = None) -> np.ndarray:
    """Draw one weight matrix, shape ``(n_in, n_out)``, float64."""
    if scheme == "normal":
        return rng.normal(0.0, 0.01 if scale is None else scale, size=(n_in, n_out))
    if scheme == "uniform":
        s = 0.05 if scale is None else scale
        return rng.uniform(-s, s, size=(n_in, n_out))
    if scheme == "glorot":
        r = np.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-r, r, size=(n_in, n_out))
    if scheme == "he":
        return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))
    raise ConfigError(f"unknown init scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")


def default_scheme(activation: str) -> str:
    """He for the piecewise-linear activations (ReLU family, maxout), Glorot for the saturating ones."""
    return "he" if activation in ("relu", "leaky_relu", "maxout") else "glorot"
