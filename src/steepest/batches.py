"""Which rows each step sees: full batch, or mini-batches on a seeded reshuffle every epoch.

* **full-batch gradient descent** (``batch_size`` None, ``"full"`` or n): one step per epoch on all n
  samples in their given order — θ ← θ − η ∇L(θ) with the exact gradient.
* **mini-batch SGD** (``batch_size=B < n``): each epoch visits the samples in a fresh order, the
  permutation ``default_rng([seed, epoch]).permutation(n)``, in ⌈n/B⌉ steps; the last batch is shorter
  when B does not divide n, and its loss is the mean over its own rows.

Drawing each epoch's order from ``(seed, epoch)`` — not from a generator advanced step by step — is
what lets a run resume at any step of any epoch and end on the same θ, bit for bit: the position is
just ``(epoch, batch index)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError


def steps_per_epoch(n: int, batch_size) -> int:
    """⌈n / B⌉, or 1 for full-batch descent."""
    return 1 if batch_size in (None, "full") or batch_size >= n else -(-n // int(batch_size))


@dataclass(slots=True)
class Batch:
    """``X (rows, n_0)`` and ``y (rows,)`` of one step; ``rows`` the indices into the training set (None for
    the full batch); ``same_input``: X is the very same unchanged array as at the previous step.
    Under data parallelism a process holds rows ``offset … offset + len(y)`` of a step of ``total`` rows
    (None: all of them), so that what is drawn per row — dropout's masks — is the single process's."""

    epoch: int
    index: int
    X: np.ndarray
    y: np.ndarray
    rows: np.ndarray | None
    last: bool
    same_input: bool = False
    offset: int = 0
    total: int | None = None


class Batches:
    """The batches of a run over ``X (n, n_0)``, ``y (n,)``.

    ``batch(epoch, index)`` gathers the rows into two buffers reused by every step (cheaper than a
    shuffled copy of the whole dataset per epoch, and the batch stays in cache); the batch is only
    valid until the next call.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, batch_size=None, seed=0):
        n = X.shape[0]
        full = batch_size in (None, "full")
        if not full:
            if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
                raise ConfigError(f"batch size must be a positive integer or 'full', got {batch_size!r}")
            if batch_size > n:
                raise ConfigError(f"batch size {batch_size} is larger than the {n} training samples; "
                                  f"use at most {n}, or 'full' for full-batch descent")
            full = batch_size == n
        self.X, self.y, self.n, self.seed, self.full = X, y, n, seed, full
        self.size = n if full else int(batch_size)
        self.per_epoch = steps_per_epoch(n, self.size)
        self._perm_epoch, self._perm = None, None
        if not full:
            self._Xbuf = np.empty((self.size,) + X.shape[1:], dtype=X.dtype)
            self._ybuf = np.empty(self.size, dtype=y.dtype)

    def whole(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the whole training set this process computes gradients on: all of them (a process
        of a data-parallel run has its shard, :class:`steepest.parallel.ShardedBatches`)."""
        return self.X, self.y

    def order(self, epoch: int) -> np.ndarray:
        """The order in which epoch ``epoch`` (0-based) visits the rows."""
        if self._perm_epoch != epoch:
            self._perm, self._perm_epoch = np.random.default_rng([self.seed, epoch]).permutation(self.n), epoch
        return self._perm

    def batch(self, epoch: int, index: int) -> Batch:
        """Batch ``index`` (0-based) of epoch ``epoch``."""
        last = index == self.per_epoch - 1
        if self.full:
            return Batch(epoch, index, self.X, self.y, None, last, same_input=True)
        rows = self.order(epoch)[index * self.size:(index + 1) * self.size]
        Xb, yb = self._Xbuf[:len(rows)], self._ybuf[:len(rows)]
        np.take(self.X, rows, axis=0, out=Xb)
        np.take(self.y, rows, out=yb)
        return Batch(epoch, index, Xb, yb, rows, last)


def holdout(n: int, fraction: float, seed: int, n_classes: int, name: str = "val_split", recorded: bool = False):
    """``(train_rows, val_rows)``, both sorted: ``max(1, round(n·fraction))`` of ``n`` rows held out for
    validation, chosen by the permutation ``default_rng([seed, 1]).permutation(n)``.

    A split that leaves nothing to train on, or holds out fewer rows than there are classes (so that it
    cannot even contain each class once, and its accuracy moves in steps of 1/rows), is a
    :class:`ConfigError` naming ``name`` — the option as the caller's user wrote it. ``recorded``: the split
    of a run made before that rule (re-derived to resume or re-train it) is taken as it was.
    """
    n_val = max(1, round(n * fraction))
    if n_val >= n:
        raise ConfigError(f"{name} {fraction:g} leaves no training data out of {n:,} samples; use a smaller fraction")
    if n_val < n_classes and not recorded:
        if n <= n_classes:
            raise ConfigError(f"{name}: {n:,} samples are too few to hold out one per class ({n_classes}) "
                              "and still train; train without a validation split")
        least = _round_up(n_classes / n)
        raise ConfigError(f"{name} {fraction:g} holds out {n_val} of {n:,} samples, fewer than the {n_classes} "
                          f"classes; use at least {name} {least:g}")
    perm = np.random.default_rng([seed, 1]).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _round_up(x: float) -> float:
    """``x`` rounded up to two significant digits (0.006959 → 0.007)."""
    import math

    scale = 10.0 ** (math.floor(math.log10(x)) - 1)
    return math.ceil(x / scale - 1e-9) * scale
