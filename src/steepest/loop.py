"""The training loop: batches → loss_and_grad → optimizer step → history → stopping rules.

Vanilla and stochastic gradient descent are the same loop:

* **full-batch gradient descent** (``batch_size=None`` or ``"full"``): one step per epoch on all
  n samples, θ ← θ − η ∇L(θ). The data are used in their given order, so this is exactly
  mini-batch SGD with ``batch_size = n``.
* **mini-batch SGD** (``batch_size=B``): each epoch visits the samples in a fresh order,
  a permutation drawn from ``default_rng([seed, epoch])``, in ⌈n/B⌉ steps; the last batch
  is shorter when B does not divide n and its loss is the mean over its own rows.

Drawing each epoch's order from ``(seed, epoch)`` — not from a generator advanced step by step —
means a run can be resumed from any step of any epoch and end with the same θ, bit for bit.

Compute is counted two ways so GD and SGD can be compared fairly: ``samples`` are the rows
that went into optimizer steps; ``grad_evals`` also counts the rows of the full-training-set
gradients computed for monitoring and for the ‖∇L‖ < ε rule. ``seconds`` is wall time spent in
steps only; evaluation is timed apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError, DataError
from .network import MLP
from .optim import Optimizer, make_optimizer
from .schedules import as_schedule
from .stopping import GradNorm, MaxEpochs, MaxSteps, Patience, TimeBudget


STEP_KEYS = ("loss", "acc", "grad_norm", "lr", "samples", "grad_evals", "seconds")


@dataclass
class History:
    """What happened, step by step and epoch by epoch.

    ``steps`` holds one entry per optimizer update: ``loss`` and ``acc`` of the batch,
    ``grad_norm`` (‖g‖ of the batch gradient — the full gradient in full-batch descent), ``lr``,
    and the running totals ``samples``, ``grad_evals`` and ``seconds`` after the step. ``epochs`` holds one dict per epoch with keys
    ``epoch, step, train_loss, train_acc, grad_norm, layer_grad_norms, val_loss, val_acc,
    <name>_loss, <name>_acc`` for each extra evaluation set, ``lr, samples, grad_evals,
    seconds`` (this epoch's training time) ``, total_seconds`` and ``train_metrics``
    (``"full"``: measured on the whole training set at the epoch's end; ``"running"``: averaged
    over the epoch's batches, when monitoring is off).
    """

    steps: dict = field(default_factory=lambda: {k: [] for k in STEP_KEYS})
    epochs: list = field(default_factory=list)


@dataclass
class TrainState:
    """Everything needed to continue a run exactly where it stopped (see :func:`train`'s ``state``)."""

    theta: np.ndarray
    opt_state: dict
    epoch: int = 0            # completed epochs
    step: int = 0             # optimizer updates made
    batch: int = 0            # index of the next batch within the current epoch
    samples: int = 0
    grad_evals: int = 0
    seconds: float = 0.0      # time in optimizer steps, all runs together
    wall: float = 0.0         # wall time of earlier runs (resumes), evaluation included
    epoch_seconds: float = 0.0
    epoch_loss: float = 0.0   # running sums over the current epoch's batches
    epoch_correct: int = 0
    epoch_rows: int = 0
    best_loss: float | None = None
    best_epoch: int = 0
    best_theta: np.ndarray | None = None
    full_grad_norm: float | None = None
    history: History = field(default_factory=History)
    stop_reason: str | None = None
    stop_message: str = ""
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def last_epoch(self) -> dict:
        return self.history.epochs[-1] if self.history.epochs else {}

    def elapsed(self) -> float:
        """Wall seconds of the run so far, earlier runs of a resumed training included."""
        return self.wall + time.perf_counter() - self._t0


@dataclass
class TrainResult:
    """``theta`` (the trained θ), ``history``, and why it stopped (``stop_reason``, ``stop_message``)."""

    theta: np.ndarray
    history: History
    stop_reason: str
    stop_message: str
    state: TrainState


def steps_per_epoch(n: int, batch_size) -> int:
    """⌈n / B⌉, or 1 for full-batch descent."""
    return 1 if batch_size in (None, "full") or batch_size >= n else -(-n // int(batch_size))


def _check_inputs(net: MLP, X, y, name="training"):
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise DataError(f"{name} data must be NumPy arrays")
    if X.shape[0] == 0:
        raise DataError(f"the {name} data is empty")
    net.check_data(X, y)
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{name} labels must be integers, got dtype {y.dtype}")
    if np.issubdtype(X.dtype, np.floating):
        bad = ~np.isfinite(X)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DataError(f"{name} data contains {X[r, c]} at row {r}, column {c}: "
                            "remove or impute non-finite values first")
    elif not np.issubdtype(X.dtype, np.integer):
        raise DataError(f"{name} data must be numeric, got dtype {X.dtype}")


def _what_diverged(net: MLP, loss, g) -> str:
    """Say what went non-finite, naming a layer.

    The first layer in backprop order (output first) whose gradient has a non-finite entry; else
    the layer with the largest gradient, whose square overflowed the dtype (‖g‖² > 3.4e38 in
    float32 while every entry is still finite).
    """
    names = net.layer_names()
    for layer, name in reversed(list(zip(net.layers, names))):
        if not np.isfinite(g[layer.span]).all():
            return f"{'the loss and ' if not np.isfinite(loss) else ''}the gradient of {name} became non-finite"
    norms = net.layer_norms(g)  # in float64: finite where g·g in float32 was not
    where = f"the gradient of {names[int(np.argmax(norms))]} (norm {norms.max():.3g})"
    if not np.isfinite(loss):
        return f"the loss became non-finite; the largest gradient was {where}"
    return f"{where} grew beyond what {g.dtype} can square"


@np.errstate(over="ignore", invalid="ignore")  # divergence is detected and reported, not warned about
def train(net: MLP, theta, X, y, *, optimizer="sgd", lr=0.1, batch_size=32, epochs=None,
          max_steps=None, eps=None, grad_norm_every=None, time_budget=None, patience=None,
          min_delta=0.0, val=None, evals=None, seed=0, monitor=True, clip_norm=None,
          chunk=8192, callback=None, state=None) -> TrainResult:
    """Train ``net`` from ``theta`` by (stochastic) gradient descent.

    Parameters
    ----------
    net : MLP
    theta : ndarray, shape (n_params,)
        Starting point; not modified (training works on a copy).
    X : ndarray, shape (n, n_0);  y : ndarray of int, shape (n,)
    optimizer : str or Optimizer
        A name for :func:`steepest.optim.make_optimizer` or an optimizer object.
    lr : float or callable
        Learning rate η, or a schedule ``step → η`` (see :mod:`steepest.schedules`).
    batch_size : int, "full" or None
        Mini-batch size B; ``"full"``/``None`` is vanilla (full-batch) gradient descent.
    epochs, max_steps, time_budget : optional
        Bounds on the run; when none is given, ``epochs=10``.
    eps : float, optional
        Stop when ‖∇L(θ)‖₂ < ε over the whole training set (checked at every full-batch step,
        at each epoch end for SGD, and every ``grad_norm_every`` steps if given).
    patience, min_delta : optional
        Early stopping on the validation loss, restoring the best θ.
    val : (X_val, y_val), optional
        Validation set (recorded as ``val_loss``, ``val_acc``).
    evals : dict name → (X, y), optional
        More sets to evaluate after each epoch (e.g. ``{"test": (X_test, y_test)}``).
    seed : int
        Seeds the per-epoch shuffles.
    monitor : bool
        Compute loss, accuracy and gradient norm on the full training set after each epoch.
        Off, train metrics are running averages over the epoch's batches (faster).
    clip_norm : float, optional
        Rescale each step's gradient to at most this global norm.
    chunk : int
        Rows per chunk when evaluating whole datasets.
    callback : callable, optional
        ``callback(event, state)`` with event ``"step"`` or ``"epoch"``; returning a true
        value stops training with reason ``"interrupted"`` after that step.
    state : TrainState, optional
        Continue a run (from :attr:`TrainResult.state` or a checkpoint) instead of starting anew.

    Returns
    -------
    TrainResult
    """
    _check_inputs(net, X, y)
    n = X.shape[0]
    if val is not None:
        _check_inputs(net, *val, name="validation")
    evals = dict(evals or {})
    for name, (Xe, ye) in evals.items():
        _check_inputs(net, Xe, ye, name=name)
    full = batch_size in (None, "full")
    if not full:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError(f"batch size must be a positive integer or 'full', got {batch_size!r}")
        if batch_size > n:
            raise ConfigError(f"batch size {batch_size} is larger than the {n} training samples; "
                              f"use at most {n}, or 'full' for full-batch descent")
        full = batch_size == n
    B = n if full else int(batch_size)
    opt = make_optimizer(optimizer) if isinstance(optimizer, str) else optimizer
    if not isinstance(opt, Optimizer):
        raise ConfigError(f"optimizer must be a name or an Optimizer, got {optimizer!r}")
    schedule = as_schedule(lr)
    if epochs is None and max_steps is None and time_budget is None:
        epochs = 10
    epoch_rules = [MaxEpochs(epochs)] if epochs is not None else []
    step_rules = ([MaxSteps(max_steps)] if max_steps is not None else []) + \
                 ([TimeBudget(time_budget)] if time_budget is not None else [])
    gn_rule = GradNorm(eps, grad_norm_every) if eps is not None else None
    if patience is not None:
        if val is None:
            raise ConfigError("patience needs validation data: pass val=(X_val, y_val)")
        epoch_rules.append(Patience(patience, min_delta))
    if clip_norm is not None and (not np.isfinite(clip_norm) or clip_norm <= 0):
        raise ConfigError(f"clip_norm must be a positive number, got {clip_norm!r}")
    monitor = monitor or gn_rule is not None

    if state is None:
        net.check_theta(theta)
        state = TrainState(theta=theta.copy(), opt_state=opt.init(theta))
    else:
        net.check_theta(state.theta)
        state._t0 = time.perf_counter()  # wall time of earlier runs is already in state.wall
        state.stop_reason, state.stop_message = None, ""
    theta, hist = state.theta, state.history
    g = np.empty_like(theta)
    prev = np.empty_like(theta)      # the last θ known finite, for divergence
    nb = steps_per_epoch(n, B)
    cached = None                    # full-batch: (loss, correct) already in g for the current θ
    # SGD gathers each batch's rows into one reused buffer: cheaper than a shuffled copy of the
    # whole dataset per epoch (no 47 MB write for MNIST) and the batch stays in cache.
    Xbuf = None if full else np.empty((B,) + X.shape[1:], dtype=X.dtype)
    ybuf = None if full else np.empty(B, dtype=y.dtype)

    def full_gradient():
        """Loss, accuracy and ∇L on the whole training set (counted in grad_evals)."""
        nonlocal cached
        if full:  # same call as a full-batch step, so the next step can reuse it
            loss, _, correct = net.loss_grad_correct(theta, X, y, grad=g, same_input=True)
            cached = (loss, correct)
        else:
            loss, _, correct = net.loss_grad_correct(theta, X, y, grad=g, chunk=chunk)
        state.grad_evals += n
        g64 = g.astype(np.float64)
        return loss, correct / n, float(np.sqrt(np.dot(g64, g64))), net.layer_norms(g)

    def stop(reason, message=""):
        state.stop_reason, state.stop_message = reason, message
        return reason

    while state.stop_reason is None:
        # ---------------------------------------------------------------- one epoch
        perm = None if full else np.random.default_rng([seed, state.epoch]).permutation(n)
        while state.batch < nb:
            t = time.perf_counter()
            if full:
                Xb, yb = X, y
            else:
                rows = perm[state.batch * B:(state.batch + 1) * B]
                Xb, yb = Xbuf[:len(rows)], ybuf[:len(rows)]
                np.take(X, rows, axis=0, out=Xb)
                np.take(y, rows, out=yb)
            eta = float(schedule(state.step))
            if cached is not None:
                (loss, correct), cached = cached, None
            else:
                # full batch: X is the same unchanged array every step, so it is converted once
                loss, _, correct = net.loss_grad_correct(theta, Xb, yb, grad=g, same_input=full)
                state.grad_evals += len(yb)
            gg = float(np.dot(g, g))
            if not (np.isfinite(loss) and np.isfinite(gg)):
                if state.step > 0:
                    theta[:] = prev
                stop("diverged", f"training diverged at step {state.step}: {_what_diverged(net, loss, g)} "
                                 f"(learning rate {eta:g}); θ of the last finite step is kept. "
                                 "Try a smaller learning rate or gradient clipping.")
                break
            gnorm = float(np.sqrt(gg))
            if full:
                state.full_grad_norm = gnorm
                if gn_rule is not None and gn_rule.check(gnorm):
                    stop(gn_rule.reason, f"‖∇L‖ = {gnorm:.3g} < ε = {gn_rule.eps:g} at step {state.step}")
                    break
            if clip_norm is not None and gnorm > clip_norm:
                g *= g.dtype.type(clip_norm / gnorm)
            prev[:] = theta
            opt.update(theta, g, state.opt_state, eta)
            state.step += 1
            state.batch += 1
            state.samples += len(yb)
            state.epoch_loss += loss * len(yb)
            state.epoch_correct += correct
            state.epoch_rows += len(yb)
            dt = time.perf_counter() - t
            state.seconds += dt
            state.epoch_seconds += dt
            for key, value in zip(STEP_KEYS, (loss, correct / len(yb), gnorm, eta, state.samples,
                                              state.grad_evals, state.seconds)):
                hist.steps[key].append(value)
            if callback is not None and callback("step", state):
                stop("interrupted", f"stopped by request at step {state.step}")
                break
            for rule in step_rules:
                if rule.on_step(state):
                    stop(rule.reason, f"{rule.reason.replace('_', ' ')} reached at step {state.step}")
                    break
            if state.stop_reason:
                break
            if (gn_rule is not None and gn_rule.every and not full and state.step % gn_rule.every == 0):
                _, _, state.full_grad_norm, _ = full_gradient()
                if gn_rule.check(state.full_grad_norm):
                    stop(gn_rule.reason, f"‖∇L‖ = {state.full_grad_norm:.3g} < ε at step {state.step}")
                    break
        if state.batch < nb:  # stopped within the epoch
            break
        # ---------------------------------------------------------------- end of epoch
        state.epoch += 1
        state.batch = 0
        rec = {"epoch": state.epoch, "step": state.step, "lr": hist.steps["lr"][-1],
               "samples": state.samples, "seconds": state.epoch_seconds}
        if monitor:
            rec["train_loss"], rec["train_acc"], gnorm, layers = full_gradient()
            state.full_grad_norm = gnorm
            rec["grad_norm"], rec["layer_grad_norms"] = gnorm, [float(v) for v in layers]
            rec["train_metrics"] = "full"
        else:
            rec["train_loss"] = state.epoch_loss / state.epoch_rows
            rec["train_acc"] = state.epoch_correct / state.epoch_rows
            rec["grad_norm"], rec["layer_grad_norms"], rec["train_metrics"] = None, None, "running"
        for name, data in ([("val", val)] if val is not None else []) + list(evals.items()):
            Xe_, ye_ = data
            Z = net.logits(theta, Xe_, chunk)
            rec[f"{name}_acc"] = float(np.mean(Z.argmax(axis=1) == ye_))
            rec[f"{name}_loss"] = net.loss(theta, Xe_, ye_, chunk)
        rec["grad_evals"] = state.grad_evals
        rec["total_seconds"] = state.seconds
        hist.epochs.append(rec)
        state.epoch_seconds = state.epoch_loss = 0.0
        state.epoch_correct = state.epoch_rows = 0
        if not np.isfinite(rec["train_loss"]):
            stop("diverged", f"training diverged in epoch {state.epoch}: the training loss is non-finite. "
                             "Try a smaller learning rate or gradient clipping.")
            break
        if gn_rule is not None and gn_rule.check(state.full_grad_norm):
            stop(gn_rule.reason, f"‖∇L‖ = {state.full_grad_norm:.3g} < ε = {gn_rule.eps:g} after epoch {state.epoch}")
        for rule in epoch_rules + step_rules:
            if state.stop_reason is None and rule.on_epoch(state):
                stop(rule.reason, {"max_epochs": f"reached {state.epoch} epochs",
                                   "patience": f"validation loss did not improve for {state.epoch - state.best_epoch} "
                                               f"epochs; restored θ of epoch {state.best_epoch}"}
                     .get(rule.reason, f"{rule.reason.replace('_', ' ')} reached after epoch {state.epoch}"))
        if state.stop_reason == "patience":
            theta[:] = state.best_theta
        if callback is not None and callback("epoch", state) and state.stop_reason is None:
            stop("interrupted", f"stopped by request after epoch {state.epoch}")
    state.wall = state.elapsed()
    state._t0 = time.perf_counter()
    return TrainResult(theta, hist, state.stop_reason, state.stop_message, state)
