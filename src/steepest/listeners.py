"""Listeners of the core: the history, a plain callback, and checkpoints on a cadence of steps and seconds."""

from __future__ import annotations

import time

from .events import Listener, Stop
from .records import STEP_COLUMNS


class Recorder(Listener):
    """The :class:`History`: one value per column per step, one record per evaluation."""

    def on_step_end(self, run, rec):
        for values, v in zip(self.lists, rec.values()):
            values.append(v)

    def on_train_begin(self, run):
        steps = run.state.history.steps
        self.lists = [steps[k] for k in STEP_COLUMNS]

    def on_evaluation(self, run, rec):
        run.state.history.epochs.append(rec)


class StepCallback(Listener):
    """``callback("step", state)`` after every step; a true value stops the run with reason
    ``"interrupted"``."""

    def __init__(self, fn):
        self.fn = fn

    def on_step_end(self, run, rec):
        if self.fn("step", run.state):
            return Stop("interrupted", f"stopped by request at step {rec.step}")
        return None


class EvaluationCallback(StepCallback):
    """``callback("epoch", state)`` after every evaluation (each epoch's end, by default)."""

    on_step_end = Listener.on_step_end

    def on_evaluation(self, run, rec):
        if self.fn("epoch", run.state):
            return Stop("interrupted", f"stopped by request after epoch {run.state.epoch}")
        return None


class Checkpointer(Listener):
    """Calls ``save(state)`` — after the listeners' memory is put into the state — at the start of a new
    run, every ``every_steps`` steps, at most every ``every_seconds`` seconds of wall time (checked after
    each step), and at the end whatever ended the run.

    A checkpoint is written only between steps whose position can be resumed: within an epoch, or
    after the epoch's end is complete (never between an epoch's last step and its evaluation).
    """

    def __init__(self, save, every_steps=None, every_seconds=None, at_begin=True):
        self.save, self.every_steps, self.every_seconds, self.at_begin = save, every_steps, every_seconds, at_begin
        self.last_step, self.last_time = None, 0.0

    def _write(self, run):
        st = run.state
        st.memory, st.arrays = run.listeners.memory()
        self.save(st)
        self.last_step, self.last_time = st.step, time.monotonic()

    def _due(self, run) -> bool:
        st = run.state
        if self.last_step is None or st.step == self.last_step:
            return self.last_step is None
        return bool((self.every_steps and st.step - self.last_step >= self.every_steps) or
                    (self.every_seconds is not None and time.monotonic() - self.last_time >= self.every_seconds))

    def on_train_begin(self, run):
        self.last_time = time.monotonic()
        if self.at_begin:
            self._write(run)
        else:
            self.last_step = run.state.step

    def on_step_end(self, run, rec):
        if run.state.batch < run.batches.per_epoch and self._due(run):
            self._write(run)

    def on_epoch_end(self, run):
        if self._due(run):
            self._write(run)

    def on_train_end(self, run, stop):
        self._write(run)
