"""Regularisation that acts while training only: dropout masks and the max-norm constraint.

Both are parts of the training :class:`~steepest.step.Step`, built by :func:`steepest.train` from the
network's ``dropout`` and ``max_norm`` (see :class:`~steepest.network.MLP`); evaluation never sees them.

**Inverted dropout.** Layer l's input ``A_l`` (l = 0 the input, l ≥ 1 the hidden layers) is multiplied by a
mask ``M_l`` whose entries are, independently, ``1/(1−p_l)`` with probability ``1−p_l`` and 0 otherwise, so
``E[A_l ⊙ M_l] = A_l``: the trained network is used as it is at evaluation, nothing rescaled.
The masks of step t are drawn from a generator keyed by ``(seed, t, l)`` — not from one generator advanced
step by step — so a run resumed at any step draws the very same masks: the same θ, bit for bit.

**Max-norm** (Srivastava et al. 2014, §5.1): after each update, every hidden unit j of every hidden layer l
has its incoming weight vector ``w = W_l[:, j]`` projected onto the ball of radius c,

    w ← w · min(1, c / ‖w‖₂)

(the output layer and the biases are left free).
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError

#: the first word of every dropout key: keeps its streams apart from the batches' (seed, epoch) shuffles
_DROPOUT_STREAM = 0xD509


class Dropout:
    """The masks of each training step: ``masks(step, n)`` → one ``(n, n_l)`` array (or None) per layer."""

    def __init__(self, net, seed=0, kernels=None):
        if not net.dropout:
            raise ConfigError("this network has no dropout rates; build it with MLP(..., dropout=[…])")
        self.rates, self.widths, self.dtype = net.dropout, net.sizes[:-1], net.dtype
        self.seed = int(seed)
        self.kernels = kernels   # steepest.fused.Kernels: the masks made in one pass, into reused buffers
        self._buffers = {}

    def masks(self, step: int, n: int, offset: int = 0, total: int | None = None) -> list:
        """Masks for the ``n`` rows of step ``step``: entries 0 or 1/(1−p), drawn from key (seed, step, l).
        Of a step of ``total`` rows shared out among processes, rows ``offset … offset + n``: the generator
        skips the draws of the rows before (PCG64 advances two float32 draws per 64-bit output), so every
        process count trains the same network and each draws only its own share.
        With kernels the arrays are reused by the next call: a step's masks live until the next step's."""
        total = n if total is None else int(total)
        if not 0 <= offset <= offset + n <= total:
            raise ValueError(f"rows {offset} … {offset + n} are not within a step of {total} rows")
        out = []
        for l, (p, width) in enumerate(zip(self.rates, self.widths)):
            if not p:
                out.append(None)
                continue
            rng = np.random.default_rng([_DROPOUT_STREAM, self.seed, int(step), l])
            skip = offset * width
            if skip:
                rng.bit_generator.advance(skip // 2)
                if skip % 2:  # the low half of the next output is the last draw skipped; the high half is ours
                    rng.random(1, dtype=np.float32)
            if self.kernels is not None:
                R, M = self._buffer(l, n, width)
                rng.random(dtype=np.float32, out=R)   # the same draws as rng.random((n, width), float32)
                self.kernels.dropout_mask(R, p, M)
                out.append(M)
                continue
            keep = rng.random((n, width), dtype=np.float32) >= np.float32(p)
            out.append(np.multiply(keep, self.dtype.type(1.0 / (1.0 - p)), dtype=self.dtype))
        return out

    def _buffer(self, l, n, width):
        R, M = self._buffers.get(l, (None, None))
        if R is None or R.shape[0] != n:
            R, M = self._buffers[l] = np.empty((n, width), np.float32), np.empty((n, width), self.dtype)
        return R, M


def max_norm(net, c: float, kernels=None):
    """The constraint ``W_l[:, j] ← W_l[:, j] · min(1, c/‖W_l[:, j]‖)`` on each hidden layer, as a
    callable ``constraint(theta)`` applied in place after each update (in one compiled pass per layer
    with ``kernels``, :mod:`steepest.fused`)."""
    c = float(c) if not isinstance(c, bool) else float("nan")
    if not np.isfinite(c) or c <= 0:
        raise ConfigError(f"max_norm must be a positive number, got {c!r}")
    hidden = net.layers[:-1]

    def constrain(theta: np.ndarray) -> None:
        for layer in hidden:
            W = theta[layer.w].reshape(layer.shape)
            if kernels is not None:
                kernels.max_norm(W, c)
                continue
            sq = np.einsum("ij,ij->j", W, W, dtype=np.float64)   # ‖W[:, j]‖² per hidden unit
            over = sq > c * c
            if over.any():
                W[:, over] *= (c / np.sqrt(sq[over])).astype(W.dtype)
    return constrain


def training_parts(net, seed=0, constraints=(), kernels=None):
    """``(dropout, constraints)`` for a :class:`~steepest.step.Step` from the network's settings."""
    dropout = Dropout(net, seed, kernels) if net.dropout else None
    extra = [max_norm(net, net.max_norm, kernels)] if net.max_norm is not None else []
    return dropout, extra + list(constraints)
