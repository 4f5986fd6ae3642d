"""One step of descent: gradient → transforms → checks (the divergence guard first) → optimizer update.

A *transform* is a small function on the flat gradient, applied in order before the update, like
optax's ``chain``: it receives the step's :class:`Gradient` and changes ``g`` in place (and ``norm``/``gg``
if it changes the norm). :func:`clip_by_global_norm` is one; an allreduce over processes is another.
A *check* runs after the transforms and before the update and may end the run with a
:class:`~steepest.events.Stop`: the :class:`Guard` (divergence), and ‖∇L‖ < ε in full-batch descent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .events import Stop
from .records import StepRecord

DIVERGED_HINT = "try a smaller learning rate or gradient clipping"


@dataclass(slots=True)
class Gradient:
    """The step's gradient ``g (p,)`` of the batch loss ``loss`` at θ; ``correct`` of ``rows`` rows right;
    ``gg`` = g·g in g's dtype and ``norm`` = √gg, as computed before any transform changed g."""

    g: np.ndarray
    loss: float
    correct: int
    rows: int
    gg: float
    norm: float
    cached: bool = False   # reused from an evaluation's full gradient: complete already (summed over processes)


def clip_by_global_norm(max_norm: float):
    """The transform g ← g · c/‖g‖ when ‖g‖ > c (the direction kept, its length capped at c)."""
    c = float(max_norm) if not isinstance(max_norm, bool) else float("nan")
    if not np.isfinite(c) or c <= 0:
        raise ConfigError(f"clip_norm must be a positive number, got {max_norm!r}")

    def clip(grad: Gradient) -> None:
        if c < grad.norm < np.inf:  # a non-finite gradient is left for the guard to name
            grad.g *= grad.g.dtype.type(c / grad.norm)
    return clip


def chain(*transforms):
    """One transform that applies ``transforms`` in order."""
    def chained(grad: Gradient) -> None:
        for t in transforms:
            t(grad)
    return chained


class Guard:
    """Divergence: a non-finite loss or gradient stops the run, θ restored to the last finite one.

    It keeps a copy of θ before every update (``prev``), filled with the starting θ at once, so that a
    divergence at the very first step — of a new or of a resumed run — restores a θ that was finite.
    ``deferred``: the :class:`Step` makes that copy in the same pass as its update (its ``save``), so
    the guard only checks.
    """

    def __init__(self, net, theta: np.ndarray, deferred: bool = False):
        self.net, self.prev, self.deferred = net, theta.copy(), deferred

    def before_update(self, run, grad: Gradient) -> Stop | None:
        if np.isfinite(grad.loss) and np.isfinite(grad.gg):
            if not self.deferred:
                self.prev[:] = run.theta
            return None
        return self.diverged(run, f"at step {run.state.step}: {self.what(grad)} "
                                  f"(learning rate {run.eta:g})")

    def diverged(self, run, where: str) -> Stop:
        """Restore the last finite θ and say so."""
        run.theta[:] = self.prev
        return Stop("diverged", f"training diverged {where}; θ of the last finite step is kept", DIVERGED_HINT)

    def what(self, grad: Gradient) -> str:
        """Say what went non-finite, naming a layer.

        The first layer in backprop order (output first) whose gradient has a non-finite entry; else the
        layer with the largest gradient, whose square overflowed the dtype (‖g‖² > 3.4e38 in float32
        while every entry is still finite).
        """
        net, g, loss = self.net, grad.g, grad.loss
        names = net.layer_names()
        for layer, name in reversed(list(zip(net.layers, names))):
            if not np.isfinite(g[layer.span]).all():
                return f"{'the loss and ' if not np.isfinite(loss) else ''}the gradient of {name} became non-finite"
        norms = net.layer_norms(g)  # in float64: finite where g·g in float32 was not
        where = f"the gradient of {names[int(np.argmax(norms))]} (norm {norms.max():.3g})"
        if not np.isfinite(loss):
            return f"the loss became non-finite; the largest gradient was {where}"
        return f"{where} grew beyond what {g.dtype} can square"


class Step:
    """θ ← update(θ, transforms(∇L_batch(θ))), with the counters of ``run.state`` advanced.

    ``cached``: the full-batch gradient at the current θ, already in ``g`` — set by an evaluation that
    computed it, so that the next full-batch step does not compute it again (not with dropout, whose
    gradient is that of the masked network); the time it took is counted in the step's ``seconds``, so
    full-batch steps are not timed as free.

    ``dropout``: a :class:`~steepest.regularise.Dropout` giving each step its masks, keyed by the step
    counter; ``constraints``: callables ``c(theta)`` projecting θ in place after each update (max-norm).
    ``kernels``: :class:`steepest.fused.Kernels` for the step's element-wise passes and its update, or
    None for NumPy's reference code. ``save``: an array that receives θ as it was before each update (the
    guard's last finite θ, copied in the update's own pass where the kernels can).
    """

    def __init__(self, net, theta, optimizer, schedule, transform=None, checks=(), dropout=None, constraints=(),
                 kernels=None, save=None):
        self.net, self.opt, self.schedule, self.transform = net, optimizer, schedule, transform
        self.g = np.empty_like(theta)
        self.checks = list(checks)
        self.cached = None
        self.reused_seconds = 0.0
        self.dropout, self.constraints = dropout, list(constraints)
        self.kernels, self.save = kernels, save

    def gradient(self, run, batch) -> Gradient:
        """The batch's gradient in ``g``; its rows are counted in ``grad_evals`` after the transforms (which
        may sum it over processes) unless it is ``cached`` (counted by the evaluation that computed it)."""
        self.reused_seconds = 0.0
        cached, self.cached = self.cached, None
        reused = cached is not None and self.dropout is None  # with dropout: the masked network's gradient
        if reused:  # (loss, correct, rows, seconds it took): the step's work, done by the evaluation before
            loss, correct, rows, self.reused_seconds = cached
        else:
            masks = None if self.dropout is None else self.dropout.masks(run.state.step, len(batch.y),
                                                                          batch.offset, batch.total)
            loss, _, correct = self.net.loss_grad_correct(run.theta, batch.X, batch.y, grad=self.g,
                                                          same_input=batch.same_input, masks=masks,
                                                          kernels=self.kernels)
            rows = len(batch.y)
        gg = float(np.dot(self.g, self.g))
        return Gradient(self.g, loss, correct, rows, gg, float(np.sqrt(gg)), reused)

    def __call__(self, run, batch, t0: float) -> StepRecord | Stop:
        st = run.state
        run.eta = eta = float(self.schedule(st.step))
        grad = self.gradient(run, batch)
        if self.transform is not None:
            self.transform(grad)
        if not grad.cached:
            st.grad_evals += grad.rows
        for check in self.checks:
            stop = check(run, grad)
            if stop is not None:
                return stop
        if self.kernels is None or not self.kernels.update(self.opt, run.theta, grad.g, st.opt_state, eta, self.save):
            if self.save is not None:
                self.save[:] = run.theta
            self.opt.update(run.theta, grad.g, st.opt_state, eta)
        for constrain in self.constraints:
            constrain(run.theta)
        st.step += 1
        st.batch += 1
        st.samples += grad.rows
        st.epoch_loss += grad.loss * grad.rows
        st.epoch_correct += grad.correct
        st.epoch_rows += grad.rows
        dt = time.perf_counter() - t0 + self.reused_seconds
        st.seconds += dt
        st.epoch_seconds += dt
        return StepRecord(st.step, batch.epoch, batch.index, grad.rows, grad.correct, grad.loss,
                          grad.correct / grad.rows, grad.norm, eta, st.samples, st.grad_evals, st.seconds)
