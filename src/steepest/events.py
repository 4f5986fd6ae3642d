"""The loop's events and the listeners that watch them.

Everything that watches or ends a run — the history, every stopping rule, checkpoints, metrics files,
progress, ``--json`` lines, Ctrl-C, the lab — is a :class:`Listener`. The loop calls, in order:

===========================  =============================================================
``on_train_begin(run)``      once, before the first step (also when a run is resumed)
``on_step_end(run, rec)``    after every optimizer update, with its :class:`~steepest.records.StepRecord`
``on_evaluation(run, rec)``  after every evaluation (each epoch's end by default, or every k steps),
                             with the evaluation record (a dict; see :mod:`steepest.records`)
``on_epoch_end(run)``        after the last batch of every epoch
``on_train_end(run, stop)``  once, with the :class:`Stop` that ended the run
===========================  =============================================================

``run`` is the :class:`~steepest.loop.Loop`: ``run.state`` (θ, counters, history), ``run.net``,
``run.theta``. A hook may return a :class:`Stop`; the first one ends the run: the listeners after it
do not see that event — except an evaluation, which every listener sees, so that it is recorded
everywhere — and every listener sees ``on_train_end``, in reverse order. :func:`~steepest.loop.train`
orders them: the history, the callback's steps, the listeners it was given, the stopping rules, the
callback's evaluations — watchers see a step before a rule can end the run on it. A listener with a ``key`` keeps its own
memory and saves it with the checkpoint (:meth:`Listener.state_dict` / :meth:`Listener.load_state_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stop:
    """Why a run ended: a ``reason`` (``"max_epochs"``, ``"grad_norm"``, ``"diverged"``, …), a sentence
    ``message`` saying what happened, and a ``hint`` saying what to do about it (may be empty)."""

    reason: str
    message: str
    hint: str = ""

    def sentence(self) -> str:
        """``message``, and the hint as a second sentence."""
        return f"{self.message}. {self.hint[0].upper()}{self.hint[1:]}." if self.hint else self.message


class Listener:
    """Base class: every hook does nothing. Override the ones you need."""

    key: str | None = None   # the name of this listener's memory in a checkpoint (None: it has none)

    def on_train_begin(self, run) -> None:
        pass

    def on_step_end(self, run, rec) -> Stop | None:
        return None

    def on_evaluation(self, run, rec: dict) -> Stop | None:
        return None

    def on_epoch_end(self, run) -> Stop | None:
        return None

    def on_train_end(self, run, stop: Stop) -> None:
        pass

    def state_dict(self) -> tuple[dict, dict] | None:
        """``(values, arrays)``: JSON-able values and named NumPy arrays to checkpoint, or None."""
        return None

    def load_state_dict(self, values: dict, arrays: dict) -> None:
        pass


_HOOKS = ("on_train_begin", "on_step_end", "on_evaluation", "on_epoch_end", "on_train_end")


class Listeners:
    """An ordered list of listeners. Each hook is dispatched only to the listeners that override it, so
    a step costs one bound-method call per listener that watches steps."""

    def __init__(self, listeners=()):
        self.all = list(listeners)
        for hook in _HOOKS:
            base = getattr(Listener, hook)
            setattr(self, f"_{hook}", [getattr(l, hook) for l in self.all
                                       if getattr(type(l), hook, base) is not base])

    def train_begin(self, run) -> None:
        for f in self._on_train_begin:
            f(run)

    def step_end(self, run, rec) -> Stop | None:
        for f in self._on_step_end:
            stop = f(run, rec)
            if stop is not None:
                return stop
        return None

    def evaluation(self, run, rec) -> Stop | None:
        """Every listener sees every evaluation record (the history, the files); the first stop wins."""
        first = None
        for f in self._on_evaluation:
            stop = f(run, rec)
            first = first or stop
        return first

    def epoch_end(self, run) -> Stop | None:
        for f in self._on_epoch_end:
            stop = f(run)
            if stop is not None:
                return stop
        return None

    def train_end(self, run, stop) -> None:
        """In reverse order, as a stack unwinds: the rules (which may restore θ) finish before the
        listeners given to :func:`~steepest.loop.train` (which may save it) see the end."""
        for f in reversed(self._on_train_end):
            f(run, stop)

    def memory(self) -> tuple[dict, dict]:
        """Every keyed listener's memory: ``({key: values}, {"key.name": array})``."""
        values, arrays = {}, {}
        for l in self.all:
            saved = l.state_dict() if l.key else None
            if saved is not None:
                values[l.key] = saved[0]
                arrays.update({f"{l.key}.{name}": a for name, a in saved[1].items()})
        return values, arrays

    def restore(self, values: dict, arrays: dict) -> None:
        for l in self.all:
            if l.key and l.key in values:
                prefix = f"{l.key}."
                l.load_state_dict(values[l.key], {k[len(prefix):]: a for k, a in arrays.items()
                                                  if k.startswith(prefix)})
