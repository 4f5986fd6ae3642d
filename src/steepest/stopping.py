"""Stopping rules: when does gradient descent end?

Each rule is a :class:`~steepest.events.Listener` that returns a :class:`~steepest.events.Stop` when it
fires; training stops at the first one, and the result records its reason, message and hint.

========================  =====================================================================
rule                      stops when
========================  =====================================================================
:class:`GradNorm`         ‖∇L(θ)‖₂ < ε, with ∇L over the **whole training set** (the classic
                          criterion). Full-batch descent gets that gradient free at every step;
                          for mini-batch SGD it is computed at each evaluation (or every k
                          steps), and those extra gradient evaluations are counted in the history.
:class:`MaxEpochs`        epoch ≥ n
:class:`MaxSteps`         step ≥ n (optimizer updates)
:class:`TimeBudget`       wall seconds of the run ≥ s
:class:`Patience`         validation loss has not improved by ``min_delta`` for ``patience``
                          evaluations (epochs, by default); θ is then restored to the best one seen
:class:`Divergence`       the training loss at an evaluation is non-finite, or has stayed above
                          ``factor`` × max(L(θ₀), ln k) for ``evaluations`` evaluations in a row
                          (k classes; ln k is the loss of a uniform guess): θ of the last good
                          evaluation is kept
guard (:mod:`.step`)      a step's loss or gradient non-finite: stop at once, keep the last finite θ
========================  =====================================================================
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError
from .events import Listener, Stop
from .step import DIVERGED_HINT, Gradient


def _positive(name, value, integer=False):
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if isinstance(value, bool) or not np.isfinite(number) or number <= 0 or (integer and int(number) != number):
        kind = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    return int(value) if integer else number


class MaxEpochs(Listener):
    """Stop after ``n`` epochs."""

    reason = "max_epochs"

    def __init__(self, n):
        self.n = _positive("epochs", n, integer=True)

    def _check(self, run):
        return Stop(self.reason, f"reached {run.state.epoch} epochs") if run.state.epoch >= self.n else None

    def on_evaluation(self, run, rec):  # an evaluation at an epoch's end: epochs rank before patience
        return self._check(run) if run.state.batch == 0 else None

    def on_epoch_end(self, run):
        return self._check(run)


class MaxSteps(Listener):
    """Stop after ``n`` optimizer updates."""

    reason = "max_steps"

    def __init__(self, n):
        self.n = _positive("max_steps", n, integer=True)

    def on_step_end(self, run, rec):
        return Stop(self.reason, f"max steps reached at step {rec.step}") if rec.step >= self.n else None


class TimeBudget(Listener):
    """Stop once the run has used ``seconds`` of wall time (checked after every step)."""

    reason = "time_budget"

    def __init__(self, seconds):
        self.seconds = _positive("time budget", seconds)

    def on_step_end(self, run, rec):
        st = run.state
        return Stop(self.reason, f"time budget reached at step {st.step}") if st.elapsed() >= self.seconds else None

    def on_epoch_end(self, run):
        st = run.state
        return Stop(self.reason, f"time budget reached after epoch {st.epoch}") \
            if st.elapsed() >= self.seconds else None


class GradNorm(Listener):
    """Stop when ‖∇L(θ)‖₂ < ε for the full-training-set gradient.

    Checked before every full-batch update (the step's gradient is the full one), at every evaluation
    that measured the full gradient, and every ``every`` steps of mini-batch descent if given.
    """

    reason = "grad_norm"

    def __init__(self, eps, every=None):
        self.eps = _positive("eps", eps)
        self.every = None if every is None else _positive("grad_norm_every", every, integer=True)

    def check(self, norm):
        return self.reason if norm is not None and norm < self.eps else None

    def _stop(self, norm, where):
        return Stop(self.reason, f"‖∇L‖ = {norm:.3g} < ε = {self.eps:g} {where}")

    def before_update(self, run, grad):  # full-batch descent only
        run.state.full_grad_norm = grad.norm
        return self._stop(grad.norm, f"at step {run.state.step}") if self.check(grad.norm) else None

    def on_step_end(self, run, rec):
        st = run.state
        if self.every is None or run.batches.full or st.step % self.every:
            return None
        st.full_grad_norm = run.full_gradient()[2]
        return self._stop(st.full_grad_norm, f"at step {st.step}") if self.check(st.full_grad_norm) else None

    def on_evaluation(self, run, rec):
        norm = rec.get("grad_norm")
        return self._stop(norm, f"after epoch {run.state.epoch}") if self.check(norm) else None


class _KeepsTheta(Listener):
    """A rule that remembers one θ and restores it if its own stop ends the run."""

    def __init__(self):
        self.theta, self.fired = None, None

    def on_train_end(self, run, stop):
        if stop is self.fired and self.theta is not None:
            run.theta[:] = self.theta


class Patience(_KeepsTheta):
    """Stop when the validation loss has not improved by ``min_delta`` for ``patience`` evaluations
    (epochs, unless the run evaluates every k steps).

    The best θ is remembered (one copy of θ) and restored when this rule stops the run.
    """

    reason = "patience"
    key = "patience"

    def __init__(self, patience, min_delta=0.0):
        super().__init__()
        self.patience = _positive("patience", patience, integer=True)
        if not np.isfinite(min_delta) or min_delta < 0:
            raise ConfigError(f"min_delta must be ≥ 0, got {min_delta!r}")
        self.min_delta = float(min_delta)
        self.best_loss, self.best_epoch, self.best_step, self.waited = None, 0, 0, 0

    def on_evaluation(self, run, rec):
        loss = rec.get("val_loss")
        if loss is None:
            raise ConfigError("patience needs validation data: pass a validation set or a validation split")
        st = run.state
        if self.best_loss is None or loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.best_step, self.waited = loss, st.epoch, st.step, 0
            if self.theta is None:
                self.theta = run.theta.copy()
            else:
                self.theta[:] = run.theta
            return None
        self.waited += 1
        if self.waited < self.patience:
            return None
        at_epochs = run.eval_every is None
        what = f"{self.waited} epochs; restored θ of epoch {self.best_epoch}" if at_epochs else \
            f"{self.waited} evaluations; restored θ of step {self.best_step}"
        self.fired = Stop(self.reason, f"validation loss did not improve for {what}")
        return self.fired

    def state_dict(self):
        values = {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "best_step": self.best_step,
                  "waited": self.waited}
        return values, ({} if self.theta is None else {"best_theta": self.theta})

    def load_state_dict(self, values, arrays):
        self.best_loss = values.get("best_loss")
        self.best_epoch, self.best_step = int(values.get("best_epoch", 0)), int(values.get("best_step", 0))
        self.waited = int(values.get("waited", 0))
        self.theta = arrays["best_theta"].copy() if "best_theta" in arrays else None


class Divergence(_KeepsTheta):
    """A run whose training loss is non-finite at an evaluation, or stays far above where it started.

    The reference is L_ref = max(L(θ₀), ln k), with L(θ₀) the loss of the run's first batch at θ₀ and
    ln k the cross-entropy of a uniform guess over k classes. A training loss above ``factor`` · L_ref
    at ``evaluations`` evaluations in a row is a finite blow-up: the run stops as diverged and keeps the
    θ of the last evaluation below that line (θ₀ if there was none). Every recipe in the README and the
    tests stays far below it; a learning rate too large for the problem does not.
    """

    reason = "diverged"
    key = "divergence"

    def __init__(self, n_classes, factor=4.0, evaluations=3):
        super().__init__()
        self.ln_k, self.factor, self.evaluations = math.log(n_classes), float(factor), int(evaluations)
        self.reference, self.above = None, 0

    def on_train_begin(self, run):
        if self.theta is None:
            self.theta = run.theta.copy()

    def on_evaluation(self, run, rec):
        loss, st = rec["train_loss"], run.state
        if self.reference is None:  # the first step's loss, at θ₀ (the history spans resumes)
            first = st.history.steps["loss"][0] if st.history.steps["loss"] else float("nan")
            self.reference = max(float(first), self.ln_k) if np.isfinite(first) else self.ln_k
        if not np.isfinite(loss):  # the last update went too far: say where, from the gradient just measured
            what = "the training loss became non-finite"
            if rec.get("train_metrics") == "full":
                g = run.step.g
                what = run.guard.what(Gradient(g, loss, 0, 0, float(np.dot(g, g)), float("nan")))
            return run.guard.diverged(run, f"after step {st.step}: {what} (learning rate {run.eta:g})")
        line = self.factor * self.reference
        if loss <= line:
            self.above = 0
            self.theta[:] = run.theta
            return None
        self.above += 1
        if self.above < self.evaluations:
            return None
        self.fired = Stop(self.reason, f"training diverged at step {st.step}: the training loss has been above "
                                       f"{line:.3g} ({self.factor:g} × max(L(θ₀), ln {round(math.exp(self.ln_k))})) "
                                       f"for {self.above} evaluations in a row, now {loss:.3g} (learning rate "
                                       f"{run.eta:g}); θ of the last evaluation below it is kept", DIVERGED_HINT)
        return self.fired

    def state_dict(self):
        return {"reference": self.reference, "above": self.above}, {"theta": self.theta}

    def load_state_dict(self, values, arrays):
        self.reference, self.above = values.get("reference"), int(values.get("above", 0))
        if "theta" in arrays:
            self.theta = arrays["theta"].copy()
