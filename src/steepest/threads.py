"""The BLAS thread count, chosen by measuring steps while training runs.

With two BLAS threads on two cores, one other busy process makes every small matrix product wait for
a descheduled thread, and the same run can take many times longer than with one thread; on a quiet
machine the extra threads help the large products. No fixed count is right on both, so
:class:`MeasuredThreads`, a listener, times the run's own steps at each candidate count (1, half and
all of the threads the library starts with), alternating one step at a time, and keeps the fastest
(the median step). It measures again after 2 seconds, then after twice as long each time the choice
holds (at most 64 s), and after 2 s again when it changed: a first measurement that a passing
disturbance misled is soon corrected, and a load that comes or goes mid-run is followed within a
minute, for a few percent of the steps run at a slower count while measuring.

Every choice is recorded (:meth:`MeasuredThreads.record`): the step, the count and the median
milliseconds per step at each candidate. A thread count can change a float32 product's last bits
(OpenBLAS splits the work differently), so the measured default gives the same θ bit for bit only
while the same counts are chosen; a fixed count (``--threads N``) is what reproduces a run exactly.

This module needs threadpoolctl (a dependency of steepest) and nothing from the command line.
"""

from __future__ import annotations

import contextlib
import statistics
import time

from steepest.events import Listener


class Blas:
    """The BLAS libraries NumPy loaded, through threadpoolctl: read and set their thread count.

    Setting goes straight to each library's own call, so it costs microseconds and can be done
    between two steps.
    """

    def __init__(self):
        from threadpoolctl import ThreadpoolController

        self.libs = ThreadpoolController().select(user_api="blas").lib_controllers

    def get(self) -> int:
        return max((lib.num_threads for lib in self.libs), default=1)

    def set(self, n: int) -> None:
        for lib in self.libs:
            lib.set_num_threads(n)

    @contextlib.contextmanager
    def kept(self):
        """Put back the count found on entry when the block ends."""
        before = [lib.num_threads for lib in self.libs]
        try:
            yield self
        finally:
            for lib, n in zip(self.libs, before):
                lib.set_num_threads(n)


class MeasuredThreads(Listener):
    """Chooses the BLAS thread count from the run's own step times; see the module's docstring.

    Parameters
    ----------
    blas : Blas, optional
        What to read and set (default: NumPy's BLAS). Tests give their own.
    recheck : float
        Seconds of training after a choice before measuring again; doubled (up to ``max_recheck``)
        each time a measurement keeps the choice, back to ``recheck`` when it changes it.
    min_samples, max_samples : int
        Steps timed per candidate in one measurement: at least ``min_samples`` and, while the
        measurement has lasted less than ``min_seconds``, up to ``max_samples``.
    margin : float
        A candidate replaces the current count only when its median step is this fraction faster
        (so that noise on a quiet machine does not make the count flap).
    on_choice : callable, optional
        Called with each choice's record (a dict, as in :meth:`record`).
    """

    def __init__(self, blas=None, *, recheck=2.0, max_recheck=64.0, min_samples=5, max_samples=40,
                 min_seconds=0.1, margin=0.05, on_choice=None, clock=time.perf_counter):
        self.blas = Blas() if blas is None else blas
        self.recheck, self.max_recheck = recheck, max_recheck
        self.min_samples, self.max_samples, self.min_seconds = min_samples, max_samples, min_seconds
        self.margin, self.on_choice, self.clock = margin, on_choice, clock
        top = self.blas.get()  # the library's count when this policy was made: the most it will try
        self.candidates = sorted({1, max(1, top // 2), top})
        self.choices: list[dict] = []
        self.current = top
        self._trial = None        # {count: [seconds, ...]} while measuring, else None
        self._order: list[int] = []
        self._last = None         # clock() when the interval being timed began
        self._skip = True         # the interval now running is not a plain step (evaluation, first step)
        self._due = 0.0
        self._wait = recheck
        self.measurements = 0

    # --- listener hooks ------------------------------------------------------------------------
    def on_train_begin(self, run) -> None:
        # A policy may watch several runs in turn (``steepest compare``, the benchmark's epochs): the
        # first begins with a measurement, the others go on with the count chosen until one is due.
        self._last = None
        if len(self.candidates) < 2:
            return
        if self._trial is not None or self.measurements == 0 or self.clock() >= self._due:
            self._begin_trial()
        else:
            self.blas.set(self.current)

    def on_evaluation(self, run, rec):
        self._skip = True  # the interval that holds an evaluation is not a step's time
        return None

    def on_step_end(self, run, rec):
        if len(self.candidates) < 2:
            return None
        now = self.clock()
        if self._trial is not None:
            if self._last is not None and not self._skip:
                self._trial[self._running].append(now - self._last)
            if self._enough(now):
                self._choose(run)
            else:
                self._next_candidate()
        elif now >= self._due:
            self._begin_trial()
        self._skip = False
        self._last = self.clock()
        return None

    # --- measuring -------------------------------------------------------------------------------
    def _begin_trial(self) -> None:
        self._trial = {n: [] for n in self.candidates}
        self._started = self.clock()
        self._order = list(self.candidates)
        self._cursor = -1
        self._skip = self._last is None  # the run's first step (caches, buffers) is not timed
        self._next_candidate()

    def _next_candidate(self) -> None:
        self._cursor = (self._cursor + 1) % len(self._order)
        self._running = self._order[self._cursor]
        self.blas.set(self._running)

    def _enough(self, now) -> bool:
        counts = [len(v) for v in self._trial.values()]
        if min(counts) < self.min_samples:
            return False
        # At least min_seconds (several of the scheduler's time slices, so that a competing process is seen
        # running against every candidate), unless every candidate has max_samples steps already.
        return now - self._started >= self.min_seconds or min(counts) >= self.max_samples

    def _choose(self, run) -> None:
        medians = {n: statistics.median(v) for n, v in self._trial.items()}
        self.measurements += 1
        best = min(medians, key=medians.get)
        keep = self.current in medians and medians[best] > (1 - self.margin) * medians[self.current]
        chosen = self.current if keep else best
        changed = chosen != self.current or not self.choices
        self._wait = self.recheck if chosen != self.current else min(2 * self._wait, self.max_recheck)
        self.current, self._trial = chosen, None
        self.blas.set(chosen)
        self._due = self.clock() + self._wait
        if changed:
            rec = {"step": int(run.state.step), "threads": chosen,
                   "ms_per_step": {str(n): round(1000 * m, 4) for n, m in sorted(medians.items())}}
            self.choices.append(rec)
            if self.on_choice is not None:
                self.on_choice(rec)

    def record(self) -> dict:
        """What the run's metadata keeps: the policy, its candidates and every change of count."""
        return {"policy": "measured", "candidates": list(self.candidates), "threads": self.current,
                "measurements": self.measurements, "choices": list(self.choices)}
