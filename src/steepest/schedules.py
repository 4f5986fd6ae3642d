"""Learning-rate schedules: the learning rate as a function of the step.

Protocol
--------
A schedule is any callable ``s(step: int) -> float``, where ``step`` counts the optimizer updates
already done, from 0: update number ``t`` (0-based) uses ``lr = s(t)``. A plain number is accepted
wherever a schedule is expected (:func:`as_schedule`). The schedules here are small classes with a
readable ``repr`` and a ``config()`` dict such that ``make_schedule(**s.config())`` rebuilds ``s``.

Examples
--------
>>> s = make_schedule("cosine", 0.1, total_steps=100, warmup_steps=10)
>>> s(0), s(10), round(s(55), 6), s(100)
(0.0, 0.1, 0.05, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from steepest.errors import ConfigError

from steepest.registry import SCHEDULE_OPTIONS, SCHEDULES  # noqa: F401  (the names, listed once)


def _number(name, value, low=0.0, high=math.inf, positive=False):
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if isinstance(value, bool) or not (math.isfinite(x) and low <= x <= high and (x > 0 or not positive)):
        allowed = ("> " if positive else ">= ") + f"{low:g}" + (f" and <= {high:g}" if high < math.inf else "")
        raise ConfigError(f"{name} must be a finite number {allowed}, got {value!r}")
    return x


def _int(name, value, low):
    try:
        ok = not isinstance(value, bool) and float(value).is_integer() and value >= low
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


class Schedule:
    """Base class: subclasses set ``_fields`` (constructor arguments, for ``repr``) and define
    ``__call__(step) -> float`` and ``config() -> dict``."""

    _fields: tuple[str, ...] = ()

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        first, *rest = self._fields  # the first argument positional: warmup's is named schedule_or_lr
        args = [repr(getattr(self, first))] + [f"{k}={getattr(self, k)!r}" for k in rest]
        return f"{type(self).__name__}({', '.join(args)})"


class constant(Schedule):
    """``lr_t = lr``."""

    _fields = ("lr",)

    def __init__(self, lr):
        self.lr = _number("lr", lr)

    def __call__(self, step):
        return self.lr

    def config(self):
        return {"name": "constant", "lr": self.lr}


class step_decay(Schedule):
    """``lr_t = lr · γ^⌊t / step_size⌋`` (torch.optim.lr_scheduler.StepLR)."""

    _fields = ("lr", "step_size", "gamma")

    def __init__(self, lr, step_size, gamma=0.1):
        self.lr = _number("lr", lr)
        self.step_size = _int("step_size", step_size, 1)
        self.gamma = _number("gamma", gamma, positive=True)

    def __call__(self, step):
        return self.lr * self.gamma ** (step // self.step_size)

    def config(self):
        return {"name": "step", "lr": self.lr, "step_size": self.step_size, "gamma": self.gamma}


class exponential(Schedule):
    """``lr_t = lr · γ^t`` (torch.optim.lr_scheduler.ExponentialLR)."""

    _fields = ("lr", "gamma")

    def __init__(self, lr, gamma):
        self.lr = _number("lr", lr)
        self.gamma = _number("gamma", gamma, positive=True)

    def __call__(self, step):
        return self.lr * self.gamma**step

    def config(self):
        return {"name": "exponential", "lr": self.lr, "gamma": self.gamma}


class cosine(Schedule):
    """Cosine annealing from ``lr`` to ``lr_min`` over ``T = total_steps`` updates, then flat::

        lr_t = lr_min + (lr − lr_min)·(1 + cos(π·t/T))/2    for t < T
        lr_t = lr_min                                      for t >= T

    For ``t <= T`` this is torch.optim.lr_scheduler.CosineAnnealingLR with ``T_max = T`` (which, unlike
    this one, rises again after ``T``). Loshchilov & Hutter, "SGDR", ICLR 2017.
    """

    _fields = ("lr", "total_steps", "lr_min")

    def __init__(self, lr, total_steps, lr_min=0.0):
        self.lr = _number("lr", lr)
        self.total_steps = _int("total_steps", total_steps, 1)
        self.lr_min = _number("lr_min", lr_min)
        if self.lr_min > self.lr:  # the curve would rise: an annealing that heats up is a mistake, not a schedule
            raise ConfigError(f"lr_min must be <= lr (the cosine falls from lr to lr_min), got lr_min={lr_min!r}, "
                              f"lr={lr!r}")

    def __call__(self, step):
        if step >= self.total_steps:
            return self.lr_min
        return self.lr_min + (self.lr - self.lr_min) * (1 + math.cos(math.pi * step / self.total_steps)) / 2

    def config(self):
        return {"name": "cosine", "lr": self.lr, "total_steps": self.total_steps, "lr_min": self.lr_min}


class warmup(Schedule):
    """Linear warm-up of ``W = warmup_steps`` updates, then the wrapped schedule ``s``, shifted by W::

        lr_t = s(0)·(f + (1 − f)·t/W)    for t < W      (f = start_factor)
        lr_t = s(t − W)                  for t >= W

    ``schedule_or_lr`` is a schedule, a number (warm up to a constant) or a schedule's config dict.
    With ``f = 0`` the first update has ``lr = 0``.
    """

    _fields = ("schedule", "warmup_steps", "start_factor")

    def __init__(self, schedule_or_lr, warmup_steps, start_factor=0.0):
        self.schedule = as_schedule(schedule_or_lr)
        self.warmup_steps = _int("warmup_steps", warmup_steps, 0)
        self.start_factor = _number("start_factor", start_factor, high=1.0)

    def __call__(self, step):
        if step >= self.warmup_steps:
            return self.schedule(step - self.warmup_steps)
        f = self.start_factor
        return self.schedule(0) * (f + (1 - f) * step / self.warmup_steps)

    def config(self):
        inner = self.schedule
        extra = {"warmup_steps": self.warmup_steps, "start_factor": self.start_factor}
        if isinstance(inner, cosine):  # make_schedule("cosine", ..., warmup_steps=W) counts W in total_steps
            return {**inner.config(), "total_steps": inner.total_steps + self.warmup_steps, **extra}
        lr = inner.lr if isinstance(inner, constant) else inner.config() if isinstance(inner, Schedule) else inner
        return {"name": "warmup", "lr": lr, **extra}


class one_cycle(Schedule):
    """The 1cycle policy of torch.optim.lr_scheduler.OneCycleLR (cosine annealing, ``three_phase=False``).

    With ``T = total_steps``, ``lr₀ = max_lr/div_factor``, ``lr_end = lr₀/final_div_factor``,
    ``e = pct_start·T − 1`` and ``c(a, b, p) = b + (a − b)/2·(1 + cos(π·p))``::

        lr_t = c(lr₀, max_lr, t/e)                       for t <= e
        lr_t = c(max_lr, lr_end, (t − e)/(T − 1 − e))    for e < t < T − 1
        lr_t = lr_end                                    for t >= T − 1   (torch raises after T)

    L. Smith, N. Topin, "Super-Convergence", 2018.
    """

    _fields = ("max_lr", "total_steps", "pct_start", "div_factor", "final_div_factor")

    def __init__(self, max_lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
        self.max_lr = _number("max_lr", max_lr)
        self.total_steps = _int("total_steps", total_steps, 1)
        self.pct_start = _number("pct_start", pct_start, high=1.0)
        self.div_factor = _number("div_factor", div_factor, positive=True)
        self.final_div_factor = _number("final_div_factor", final_div_factor, positive=True)

    @staticmethod
    def _anneal(start, end, pct):
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def __call__(self, step):
        lr0 = self.max_lr / self.div_factor
        lr_end = lr0 / self.final_div_factor
        e1, e2 = float(self.pct_start * self.total_steps) - 1, self.total_steps - 1
        if step <= e1:
            return self._anneal(lr0, self.max_lr, step / e1 if e1 > 0 else 1.0)
        if step >= e2:
            return lr_end
        return self._anneal(self.max_lr, lr_end, (step - e1) / (e2 - e1))

    def config(self):
        names = ("total_steps", "pct_start", "div_factor", "final_div_factor")
        return {"name": "onecycle", "lr": self.max_lr, **{k: getattr(self, k) for k in names}}


def as_schedule(lr_or_schedule):
    """Return a schedule: a number becomes :class:`constant`, a config dict goes through
    :func:`make_schedule`, a callable is returned as it is."""
    if isinstance(lr_or_schedule, Mapping):
        return make_schedule(**lr_or_schedule)
    if callable(lr_or_schedule):
        return lr_or_schedule
    return constant(lr_or_schedule)


# name → (required options, optional options with their defaults)
_SPECS = {
    "constant": ((), {}),
    "step": (("step_size",), {"gamma": 0.1}),
    "exponential": (("gamma",), {}),
    "cosine": (("total_steps",), {"lr_min": 0.0, "warmup_steps": 0, "start_factor": 0.0}),
    "warmup": (("warmup_steps",), {"start_factor": 0.0}),
    "onecycle": (("total_steps",), {"pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4}),
}


def make_schedule(name: str, lr, total_steps: int | None = None, **kwargs) -> Schedule:
    """Build a schedule by name.

    Parameters
    ----------
    name : str
        ``"constant"``; ``"step"`` (needs ``step_size``; ``gamma``); ``"exponential"`` (needs ``gamma``);
        ``"cosine"`` (needs ``total_steps``; ``lr_min``, and ``warmup_steps``, ``start_factor`` for a
        linear warm-up counted inside ``total_steps``); ``"warmup"`` (needs ``warmup_steps``;
        ``start_factor``; then constant ``lr``); ``"onecycle"`` (needs ``total_steps``; ``pct_start``,
        ``div_factor``, ``final_div_factor``; ``lr`` is the peak).
    lr : float
        The base (or peak) learning rate. For ``"warmup"`` also a schedule or its config dict.
    total_steps : int, optional
        Number of updates in the run; ignored by schedules that do not need it.

    Raises
    ------
    ConfigError
        Unknown name, unknown or missing option, or an invalid value.
    """
    if name not in _SPECS:
        raise ConfigError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    required, optional = _SPECS[name]
    if "total_steps" in required:
        kwargs["total_steps"] = total_steps
    unknown = sorted(set(kwargs) - set(required) - set(optional))
    if unknown:
        valid = ", ".join(required + tuple(optional)) or "none"
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for schedule {name!r}; valid options: {valid}")
    missing = [k for k in required if kwargs.get(k) is None]
    if missing:
        raise ConfigError(f"schedule {name!r} needs {', '.join(f'{k}=...' for k in missing)}")
    kw = {**optional, **kwargs}
    if name == "constant":
        return constant(lr)
    if name == "step":
        return step_decay(lr, kw["step_size"], kw["gamma"])
    if name == "exponential":
        return exponential(lr, kw["gamma"])
    if name == "warmup":
        return warmup(lr, kw["warmup_steps"], kw["start_factor"])
    if name == "onecycle":
        return one_cycle(lr, kw["total_steps"], kw["pct_start"], kw["div_factor"], kw["final_div_factor"])
    total, w = _int("total_steps", kw["total_steps"], 1), _int("warmup_steps", kw["warmup_steps"], 0)
    if w == 0:
        return cosine(lr, total, kw["lr_min"])
    if w >= total:
        raise ConfigError(f"warmup_steps must be < total_steps, got warmup_steps={w}, total_steps={total}")
    return warmup(cosine(lr, total - w, kw["lr_min"]), w, kw["start_factor"])


def run_length(epochs, max_steps, steps_per_epoch: int):
    """A run's optimizer updates: ``epochs × steps_per_epoch``, or ``max_steps`` if fewer (None: neither)."""
    totals = [t for t in (None if epochs is None else epochs * steps_per_epoch, max_steps) if t is not None]
    return min(totals) if totals else None


def share_percent(value, name: str = "steps"):
    """P from a share of the run written ``"P%"`` (0 < P ≤ 100); None for a value not written with ``%``."""
    if not isinstance(value, str) or not value.strip().endswith("%"):
        return None
    text = value.strip()[:-1]
    try:  # float() would also read "1_0" and other scripts' digits
        p = float(text) if text.isascii() and "_" not in text else math.nan
    except ValueError:
        p = math.nan
    if not (math.isfinite(p) and 0 < p <= 100):
        raise ConfigError(f"{name} must be a number of steps or a share of the run such as 1%, got {value!r}")
    return p


def share_steps(value, total_steps, name: str = "steps", least: int = 0, within: bool = False):
    """A count of steps given as a share of the run, ``"P%"`` with 0 < P ≤ 100, as the whole number
    ``round(P/100 · total_steps)`` (at least ``least``); any other value is returned as it is.
    ``within``: the count must leave some of the run after it (a warm-up), else a :class:`ConfigError`
    that names the share as given.

    >>> share_steps("1%", 84400), share_steps(30, 84400)
    (844, 30)
    """
    p = share_percent(value, name)
    if p is None:
        return value
    if total_steps is None:
        raise ConfigError(f"{name} {value} is a share of the run's steps: give the run a length (epochs or max steps)")
    n = max(least, round(p / 100 * total_steps))
    if within and n >= total_steps:
        raise ConfigError(f"{name} {value} of a {total_steps}-step run rounds to {n} step{'s' * (n != 1)}, the "
                          "whole run; give a smaller share or a number of steps")
    return n
