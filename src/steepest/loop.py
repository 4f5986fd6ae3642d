"""The training loop, in parts: batches → step → listeners.

:class:`~steepest.batches.Batches` says which rows each step sees; a :class:`~steepest.step.Step` takes
θ one step down (gradient → transforms → guard → optimizer update); :class:`Loop` runs steps and tells
the :class:`~steepest.events.Listener` s — the history, the stopping rules, checkpoints, progress — what
happened. :func:`train` builds those parts from its arguments; it is the documented entry point.

Vanilla and stochastic gradient descent are the same loop with different batches (see
:mod:`steepest.batches`). Compute is counted two ways so GD and SGD can be compared fairly: ``samples``
are the rows that went into optimizer steps; ``grad_evals`` also counts the rows of the
full-training-set gradients computed for monitoring and for the ‖∇L‖ < ε rule. ``seconds`` is wall time
spent in steps only; evaluation is timed apart.

**Evaluations** — a record of the training loss (on the whole training set when ``monitor``), the
validation and extra sets — happen at every epoch's end, or every ``eval_every`` steps when given (and
then once more at the end). Full-batch descent makes one step per epoch, so a long run of it is best
evaluated every k steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .batches import Batches, steps_per_epoch
from .errors import ConfigError, DataError
from .events import Listeners, Stop
from .listeners import EvaluationCallback, Recorder, StepCallback
from .metrics import evaluate
from .network import MLP
from .optim import Optimizer, make_optimizer
from .records import STEP_COLUMNS, Evaluation
from .schedules import as_schedule
from .regularise import training_parts
from .fused import resolve as resolve_kernels
from .step import Guard, Step, chain, clip_by_global_norm
from .stopping import Divergence, GradNorm, MaxEpochs, MaxSteps, Patience, TimeBudget

__all__ = ["train", "Loop", "TrainState", "TrainResult", "History", "steps_per_epoch", "STEP_KEYS"]

STEP_KEYS = STEP_COLUMNS


@dataclass
class History:
    """What happened, step by step and evaluation by evaluation.

    ``steps`` holds one list per :data:`~steepest.records.STEP_COLUMNS` entry, one value per optimizer
    update: ``loss`` and ``acc`` of the batch, ``grad_norm`` (‖g‖ of the batch gradient — the full
    gradient in full-batch descent), ``lr``, and the running totals ``samples``, ``grad_evals`` and
    ``seconds`` after the step. ``epochs`` holds one dict per evaluation (per epoch, by default) with
    keys ``epoch, step, train_loss, train_acc, grad_norm, layer_grad_norms, val_loss, val_acc,
    <name>_loss, <name>_acc`` for each extra evaluation set, ``lr, samples, grad_evals, seconds``
    (training time since the last evaluation) ``, total_seconds`` and ``train_metrics`` (``"full"``:
    measured on the whole training set; ``"running"``: averaged over the batches since the last
    evaluation, when monitoring is off).
    """

    steps: dict = field(default_factory=lambda: {k: [] for k in STEP_COLUMNS})
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
    epoch_loss: float = 0.0   # running sums over the batches since the last evaluation
    epoch_correct: int = 0
    epoch_rows: int = 0
    full_grad_norm: float | None = None
    memory: dict = field(default_factory=dict)   # the listeners' own memory, by key (JSON values)
    arrays: dict = field(default_factory=dict)   # … and their arrays, "key.name" → ndarray
    history: History = field(default_factory=History)
    stop_reason: str | None = None
    stop_message: str = ""
    stop_hint: str = ""
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def last_epoch(self) -> dict:
        return self.history.epochs[-1] if self.history.epochs else {}

    @property
    def best_theta(self):
        """θ of the best validation loss so far (kept by the patience rule), or None."""
        return self.arrays.get("patience.best_theta")

    def elapsed(self) -> float:
        """Wall seconds of the run so far, earlier runs of a resumed training included."""
        return self.wall + time.perf_counter() - self._t0


@dataclass
class TrainResult:
    """``theta`` (the trained θ), ``history``, and why it stopped: ``stop`` (reason, message, hint),
    ``stop_reason`` and ``stop_message`` (the message and its hint, as one text)."""

    theta: np.ndarray
    history: History
    stop_reason: str
    stop_message: str
    state: TrainState
    stop: Stop | None = None


def check_inputs(net: MLP, X, y, name="training"):
    """Raise :class:`DataError` unless ``X``, ``y`` are NumPy arrays this network can train on."""
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


class Loop:
    """Runs :class:`Step` s over :class:`Batches` and dispatches the events to ``listeners``.

    ``monitor``: evaluations measure loss, accuracy and ∇L on the whole training set (else the running
    means since the last evaluation); ``evals``: name → (X, y) sets evaluated too (``"val"`` first).
    """

    def __init__(self, net, state, batches, step, guard, listeners, *, evals=None, monitor=True,
                 eval_every=None, chunk=8192, reduce=None):
        self.net, self.state, self.batches, self.step = net, state, batches, step
        self.theta = state.theta
        self.listeners = Listeners(listeners)
        self.evals, self.monitor, self.eval_every, self.chunk = dict(evals or {}), monitor, eval_every, chunk
        self.guard = guard        # restores the last finite θ on a divergence
        self.eta = float("nan")   # the learning rate of the current step
        self.reduce = reduce      # (loss, correct, rows) of this process → of all (g summed in place), or None

    def full_gradient(self):
        """Loss, accuracy, ‖∇L‖ and the layers' gradient norms on the whole training set (counted in
        grad_evals). In full-batch descent it is the next step's gradient, which reuses it."""
        st, g = self.state, self.step.g
        X, y = self.batches.whole()
        if self.batches.full:  # the same call as a full-batch step, so the next step can reuse it
            t = time.perf_counter()
            loss, _, correct = self.net.loss_grad_correct(self.theta, X, y, grad=g, same_input=True,
                                                          kernels=self.step.kernels)
        else:
            loss, _, correct = self.net.loss_grad_correct(self.theta, X, y, grad=g, chunk=self.chunk,
                                                          kernels=self.step.kernels)
        rows = len(y)
        if self.reduce is not None:  # data-parallel: the gradient of the whole set, over all processes
            loss, correct, rows = self.reduce(loss, correct, rows)
        if self.batches.full:  # with the time it took, which counts as the step's
            self.step.cached = (loss, correct, rows, time.perf_counter() - t)
        st.grad_evals += rows
        g64 = g.astype(np.float64)
        return loss, correct / rows, float(np.sqrt(np.dot(g64, g64))), self.net.layer_norms(g)

    def record(self) -> dict:
        """The :class:`~steepest.records.Evaluation` of the current θ, as the dict the history, the
        checkpoint and the metrics files keep; resets the running sums."""
        st = self.state
        if self.monitor:
            loss, acc, gnorm, layers = self.full_gradient()
            st.full_grad_norm, layers, how = gnorm, [float(v) for v in layers], "full"
        else:
            loss, acc = st.epoch_loss / st.epoch_rows, st.epoch_correct / st.epoch_rows
            gnorm, layers, how = None, None, "running"
        sets = {name: evaluate(self.net, self.theta, Xe, ye, self.chunk) for name, (Xe, ye) in self.evals.items()}
        rec = Evaluation(st.epoch, st.step, loss, acc, gnorm, st.history.steps["lr"][-1], st.samples, st.grad_evals,
                         st.epoch_seconds, st.seconds, sets, layers, how)
        st.epoch_seconds = st.epoch_loss = 0.0
        st.epoch_correct = st.epoch_rows = 0
        return rec.as_dict()

    def evaluation(self, stop):
        """Record, and tell every listener (a stop already decided stands)."""
        found = self.listeners.evaluation(self, self.record())
        return stop or found

    @np.errstate(over="ignore", invalid="ignore")  # divergence is detected and reported, not warned about
    def run(self) -> Stop:
        st, batches, k = self.state, self.batches, self.eval_every
        self.listeners.restore(st.memory, st.arrays)
        self.listeners.train_begin(self)
        stop = None
        while stop is None:
            t0 = time.perf_counter()
            batch = batches.batch(st.epoch, st.batch)
            rec = self.step(self, batch, t0)
            if isinstance(rec, Stop):
                stop = rec
                break
            stop = self.listeners.step_end(self, rec)
            if batch.last:  # the epoch's record, even when a step rule has just stopped the run
                st.epoch += 1
                st.batch = 0
                if k is None or st.step % k == 0:
                    stop = self.evaluation(stop)
                stop = stop or self.listeners.epoch_end(self)
            elif k is not None and st.step % k == 0:
                stop = self.evaluation(stop)
        if k is not None and stop.reason not in ("diverged", "interrupted") and st.step and st.last_epoch.get("step") != st.step:
            self.evaluation(stop)  # the final θ is always measured
        st.memory, st.arrays = self.listeners.memory()
        st.stop_reason, st.stop_message, st.stop_hint = stop.reason, stop.message, stop.hint
        self.listeners.train_end(self, stop)
        return stop


def _checked(optimizer, eval_every):
    """The optimizer object, and ``eval_every`` as an int (or None); a :class:`ConfigError` if either is wrong."""
    opt = make_optimizer(optimizer) if isinstance(optimizer, str) else optimizer
    if not isinstance(opt, Optimizer):
        raise ConfigError(f"optimizer must be a name or an Optimizer, got {optimizer!r}")
    if eval_every is not None and (isinstance(eval_every, bool) or not isinstance(eval_every, (int, np.integer))
                                   or eval_every < 1):
        raise ConfigError(f"eval_every must be a positive integer, got {eval_every!r}")
    return opt, None if eval_every is None else int(eval_every)


def _rules(net, *, epochs, max_steps, time_budget, eps, grad_norm_every, patience, min_delta, val):
    if epochs is None and max_steps is None and time_budget is None:
        epochs = 10
    rules = [Divergence(net.sizes[-1])]
    gn = GradNorm(eps, grad_norm_every) if eps is not None else None
    rules += [gn] if gn is not None else []
    rules += [MaxEpochs(epochs)] if epochs is not None else []
    if patience is not None:
        if val is None:
            raise ConfigError("patience needs validation data: pass val=(X_val, y_val)")
        rules.append(Patience(patience, min_delta))
    rules += [MaxSteps(max_steps)] if max_steps is not None else []
    rules += [TimeBudget(time_budget)] if time_budget is not None else []
    return rules, gn


def _batches(comm, net, X, y, batch_size, seed):
    """``(None, Batches)`` for one process; ``(DataParallel, ShardedBatches)`` over the ranks of ``comm``."""
    if comm is None:
        return None, Batches(X, y, batch_size, seed)
    from .parallel import DataParallel

    dp = DataParallel(comm, net)
    return dp, dp.batches(X, y, batch_size, seed)


def _fingerprint(net, state, X, y, opt, lr, *settings):
    from .parallel import fingerprint

    schedule = lr.config() if hasattr(lr, "config") else lr
    return fingerprint(net, state, X, y, {"optimizer": opt.config(), "lr": schedule, "settings": settings})


def _step(net, state, opt, lr, transforms, checks, seed, constraints, kernels):
    """The divergence guard and the step: gradient → transforms → guard, ``checks`` → update (+ projections).
    With compiled ``kernels`` the update copies the guard's last finite θ in its own pass."""
    guard = Guard(net, state.theta, deferred=kernels is not None)
    dropout, projections = training_parts(net, seed, constraints, kernels)
    step = Step(net, state.theta, opt, as_schedule(lr), chain(*transforms) if transforms else None,
                [guard.before_update, *checks], dropout, projections, kernels,
                guard.prev if kernels is not None else None)
    return guard, step


def train(net: MLP, theta, X, y, *, optimizer="sgd", lr=0.1, batch_size=32, epochs=None,
          max_steps=None, eps=None, grad_norm_every=None, time_budget=None, patience=None,
          min_delta=0.0, val=None, evals=None, seed=0, monitor=True, clip_norm=None, eval_every=None,
          chunk=8192, callback=None, listeners=(), transforms=(), constraints=(), state=None,
          comm=None, kernels="auto") -> TrainResult:
    """Train ``net`` from ``theta`` by (stochastic) gradient descent.

    ``theta (p,)`` is the starting point (not modified); ``X (n, n_0)``, ``y (n,)`` int the training data.
    ``optimizer``: a name for :func:`steepest.optim.make_optimizer` or an :class:`Optimizer`. ``lr``: the
    learning rate η, or a schedule ``step → η`` (:mod:`steepest.schedules`). ``batch_size``: B, or
    ``"full"``/``None`` for vanilla (full-batch) gradient descent (:mod:`steepest.batches`).
    ``epochs``, ``max_steps``, ``time_budget``: bounds on the run (none given: ``epochs=10``). ``eps``:
    stop when ‖∇L(θ)‖₂ < ε on the whole training set (every full-batch step, at each evaluation, and
    every ``grad_norm_every`` steps if given). ``patience``, ``min_delta``: early stopping on the
    validation loss, restoring the best θ. ``val``: ``(X_val, y_val)``; ``evals``: name → (X, y), more
    sets evaluated. ``seed`` seeds the per-epoch shuffles. ``monitor``: evaluations measure the full
    training set (off: running means, faster). ``clip_norm``: rescale each step's gradient to at most
    this global norm; ``transforms``: more gradient transforms after it (:mod:`steepest.step`).
    The network's ``dropout`` and ``max_norm`` act here (:mod:`steepest.regularise`; masks keyed by
    ``(seed, step)``); ``constraints``: more projections ``c(theta)`` applied after each update.
    ``eval_every``: evaluate every k steps instead of at each epoch's end. ``chunk``: rows per chunk
    when evaluating whole datasets. ``callback(event, state)``: event ``"step"`` or ``"epoch"`` (each
    evaluation); a true value stops with reason ``"interrupted"``. ``listeners``: more
    :class:`~steepest.events.Listener` s. ``state``: continue a run (:attr:`TrainResult.state`, or a
    checkpoint) instead of starting anew. A run also stops as ``"diverged"`` when its loss becomes
    non-finite or blows up (:class:`~steepest.stopping.Divergence`). ``comm``: an MPI communicator
    (``MPI.COMM_WORLD``): train data-parallel over its processes, to the same θ (:mod:`steepest.parallel`).
    ``kernels``: ``"auto"`` (compiled element-wise passes where numba imports), ``"numba"`` or ``"numpy"``
    (the reference; :mod:`steepest.fused`).
    """
    check_inputs(net, X, y)
    sets = {"val": val} if val is not None else {}
    sets.update(evals or {})
    for name, (Xe, ye) in sets.items():
        check_inputs(net, Xe, ye, name="validation" if name == "val" else name)
    dp, batches = _batches(comm, net, X, y, batch_size, seed)
    opt, eval_every = _checked(optimizer, eval_every)
    rules, gn = _rules(net, epochs=epochs, max_steps=max_steps, time_budget=time_budget, eps=eps,
                       grad_norm_every=grad_norm_every, patience=patience, min_delta=min_delta, val=val)
    ts = ([dp] if dp else []) + ([clip_by_global_norm(clip_norm)] if clip_norm is not None else []) + list(transforms)
    if state is None:
        net.check_theta(theta)
        state = TrainState(theta=theta.copy(), opt_state=opt.init(theta))
    else:
        net.check_theta(state.theta)
        state._t0 = time.perf_counter()  # wall time of earlier runs is already in state.wall
    guard, step = _step(net, state, opt, lr, ts, [gn.before_update] if gn is not None and batches.full else [],
                        seed, constraints, resolve_kernels(kernels))
    calls = (StepCallback(callback), EvaluationCallback(callback)) if callback is not None else (None, None)
    everyone = [l for l in (Recorder(), calls[0], *listeners, *rules, calls[1]) if l is not None]
    if dp is not None:
        everyone = dp.parts(everyone, calls, rules, step, _fingerprint(net, state, X, y, opt, lr, batch_size, seed,
                            epochs, max_steps, eps, patience, monitor, clip_norm, eval_every))
    loop = Loop(net, state, batches, step, guard, everyone, evals=sets, monitor=monitor or gn is not None,
                eval_every=eval_every, chunk=chunk, reduce=dp and dp.reduce)
    stop = loop.run()
    state.wall = state.elapsed()
    state._t0 = time.perf_counter()
    return TrainResult(state.theta, state.history, stop.reason, stop.sentence(), state, stop)
