"""Stopping rules: when does gradient descent end?

A rule looks at the training state after every step (:meth:`Rule.on_step`) and after every epoch
(:meth:`Rule.on_epoch`) and returns ``None`` to go on or a short reason string to stop. Rules
combine by "any": training stops at the first rule that fires, and the result records its reason.

========================  =====================================================================
rule                      stops when
========================  =====================================================================
:class:`GradNorm`         ‖∇L(θ)‖₂ < ε, with ∇L over the **whole training set** (the classic
                          criterion). Full-batch descent gets that gradient free at every step;
                          for mini-batch SGD it is computed at the end of each epoch (or every k
                          steps), and those extra gradient evaluations are counted in the history.
:class:`MaxEpochs`        epoch ≥ n
:class:`MaxSteps`         step ≥ n (optimizer updates)
:class:`TimeBudget`       wall seconds of the run ≥ s
:class:`Patience`         validation loss has not improved by ``min_delta`` for ``patience``
                          epochs; θ is then restored to the best one seen
divergence (built in)     loss or gradient non-finite: stop at once, keep the last finite θ
========================  =====================================================================
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError


class Rule:
    """Base class: both hooks go on (return ``None``) unless overridden."""

    reason = "rule"

    def on_step(self, state):
        return None

    def on_epoch(self, state):
        return None


def _positive(name, value, integer=False):
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if isinstance(value, bool) or not np.isfinite(number) or number <= 0 or (integer and int(number) != number):
        kind = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    return int(value) if integer else number


class MaxEpochs(Rule):
    """Stop after ``n`` epochs."""

    reason = "max_epochs"

    def __init__(self, n):
        self.n = _positive("epochs", n, integer=True)

    def on_epoch(self, state):
        return self.reason if state.epoch >= self.n else None


class MaxSteps(Rule):
    """Stop after ``n`` optimizer updates."""

    reason = "max_steps"

    def __init__(self, n):
        self.n = _positive("max_steps", n, integer=True)

    def on_step(self, state):
        return self.reason if state.step >= self.n else None


class TimeBudget(Rule):
    """Stop once the run has used ``seconds`` of wall time (checked after every step)."""

    reason = "time_budget"

    def __init__(self, seconds):
        self.seconds = _positive("time budget", seconds)

    def on_step(self, state):
        return self.reason if state.elapsed() >= self.seconds else None

    on_epoch = on_step


class GradNorm(Rule):
    """Stop when ‖∇L(θ)‖₂ < ε for the full-training-set gradient.

    The training loop supplies ``state.full_grad_norm`` whenever it has computed the full
    gradient (every full-batch step; for SGD at each epoch end or every ``every`` steps).
    """

    reason = "grad_norm"

    def __init__(self, eps, every=None):
        self.eps = _positive("eps", eps)
        self.every = None if every is None else _positive("grad_norm_every", every, integer=True)

    def check(self, norm):
        return self.reason if norm is not None and norm < self.eps else None


class Patience(Rule):
    """Stop when the validation loss has not improved by ``min_delta`` for ``patience`` epochs.

    The best θ is remembered (one copy of θ) and restored when this rule stops the run.
    """

    reason = "patience"

    def __init__(self, patience, min_delta=0.0):
        self.patience = _positive("patience", patience, integer=True)
        if not np.isfinite(min_delta) or min_delta < 0:
            raise ConfigError(f"min_delta must be ≥ 0, got {min_delta!r}")
        self.min_delta = float(min_delta)

    def on_epoch(self, state):
        loss = state.last_epoch.get("val_loss")
        if loss is None:
            raise ConfigError("patience needs validation data: pass a validation set or a validation split")
        if state.best_loss is None or loss < state.best_loss - self.min_delta:
            state.best_loss = loss
            state.best_epoch = state.epoch
            state.best_theta = state.theta.copy()
            return None
        return self.reason if state.epoch - state.best_epoch >= self.patience else None
