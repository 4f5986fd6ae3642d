"""Optimizers side by side from the same θ₀, and how noisy a mini-batch gradient is.

:func:`compare_optimizers` trains one copy of θ₀ per :class:`RunSpec` on the same data under the
same budget — epochs, samples processed, or seconds — and records for each run its
:class:`~steepest.loop.History`, a *trace* of the loss and gradient norm on a fixed evaluation
sample (a few dozen points along the run, so GD's 3 steps and SGD's 300 are on one axis), and a
summary row. :func:`gradient_noise` measures, at one θ, how well mini-batch gradients ``g_B``
point along the full gradient ``g``:

    cos_B = ⟨g_B, g⟩ / (‖g_B‖ ‖g‖),     var_B = E ‖g_B − g‖²

For batches drawn without replacement from n rows, ``var_B = (1/B − 1/n) · n/(n−1) · σ²`` with σ²
the per-example gradient variance: the noise falls like 1/B and vanishes at B = n.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from steepest.errors import ConfigError
from steepest.optim import make_optimizer
from steepest.loop import History, train
from steepest.metrics import evaluate
from steepest.viz.common import sample_rows, write_csv, write_json

#: Learning rates used when a run spec gives none (tuned on digits; fine on MNIST).
DEFAULT_LR = {"gd": 0.5, "sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adam": 0.005, "rmsprop": 0.002}
#: The default comparison: vanilla GD, SGD at two batch sizes, momentum, Nesterov, Adam.
DEFAULT_RUNS = ("gd", "sgd:batch=16,lr=0.05", "sgd:batch=128", "momentum:batch=128",
                "nesterov:batch=128", "adam:batch=128")
#: The default budget, in passes over the data: every run sees the same samples (equal gradient
#: evaluations per row), and full-batch GD, which takes one step per pass, still takes this many steps.
DEFAULT_EPOCHS = 20
#: Fewer steps than this and a run's curve is a few dots: the command says so.
FEW_STEPS = 10
#: ``--tune``: each run's learning rate times these factors is tried on a validation split.
TUNE_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass
class RunSpec:
    """One optimizer configuration: ``optimizer`` name, ``lr``, ``batch_size`` ("full" or B), options."""

    optimizer: str
    lr: float
    batch_size: int | str = "full"
    options: dict = field(default_factory=dict)
    label: str | None = None
    dropout: tuple | None = None     # rates of the input and each hidden layer (training only)
    max_norm: float | None = None

    def __post_init__(self):
        make_optimizer(self.optimizer, **self.options)  # validates name and options now
        if self.label is None:  # "GD", "SGD B=16", "momentum B=128", "adam full batch"
            b = "full batch" if self.batch_size == "full" else f"B={self.batch_size}"
            name = "SGD" if self.optimizer == "sgd" else self.optimizer
            self.label = "GD" if self.optimizer == "gd" else f"{name} {b}"
            self.label += " dropout" if self.dropout else ""
            self.label += f" max-norm {self.max_norm:g}" if self.max_norm else ""

    def network(self, net):
        """``net`` with this run's dropout and max-norm (the same architecture and θ layout)."""
        if not self.dropout and not self.max_norm:
            return net
        from steepest.network import MLP

        return MLP(**{**net.config(), "dropout": self.dropout, "max_norm": self.max_norm})

    @classmethod
    def parse(cls, text: str) -> "RunSpec":
        """``"name[:key=value,...]"``, keys ``lr``, ``batch`` (int or ``full``), ``label``, ``dropout`` (rates
        of the input and each hidden layer joined by ``/``, e.g. ``0.2/0.5/0.5``), ``max_norm`` and the
        optimizer's own options, e.g. ``"sgd:batch=16,lr=0.05"``, ``"momentum:batch=128,momentum=0.8"``."""
        name, _, rest = text.strip().partition(":")
        kw = {}
        for item in filter(None, (s.strip() for s in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                raise ConfigError(f"run spec {text!r}: expected key=value, got {item!r}")
            kw[key.strip()] = value.strip()
        try:
            lr = float(kw.pop("lr", DEFAULT_LR.get(name, 0.1)))
            batch = kw.pop("batch", "full" if name == "gd" else "128")
            batch = "full" if batch == "full" else int(batch)
            label = kw.pop("label", None)
            dropout = tuple(float(p) for p in kw.pop("dropout").split("/")) if "dropout" in kw else None
            max_norm = float(kw.pop("max_norm")) if "max_norm" in kw else None
            opts = {k: (v.lower() == "true" if v.lower() in ("true", "false") else float(v)) for k, v in kw.items()}
            if not 0 < lr <= 1e6 or (batch != "full" and not 1 <= batch <= 2**31):
                raise ConfigError("lr must be a finite number in (0, 1e6] and batch an integer in 1 … 2**31 or full")
            return cls(name, lr, batch, opts, label, dropout, max_norm)
        except (ValueError, ConfigError) as e:  # ConfigError is a ValueError too
            raise ConfigError(f"run spec {text!r}: {e}; write NAME[:key=value,...], "
                              "e.g. sgd:batch=16,lr=0.05") from None

    def make_optimizer(self):
        return make_optimizer(self.optimizer, **self.options)

    @property
    def momentum(self) -> float | None:
        """The momentum μ this run uses (the optimizer's default when not given); None if it has none."""
        mu = getattr(self.make_optimizer(), "momentum", None)
        return float(mu) if mu else None

    @property
    def legend(self) -> str:
        """The label with everything that decides the run: ``"SGD B=16 (lr 0.05, batch 16)"``."""
        parts = [f"lr {self.lr:g}", f"batch {self.batch_size}"]
        if self.momentum is not None:
            parts.append(f"μ {self.momentum:g}")
        return f"{self.label} ({', '.join(parts)})"

    def config(self) -> dict:
        extra = {k: v for k, v in (("dropout", list(self.dropout) if self.dropout else None),
                                   ("max_norm", self.max_norm)) if v is not None}
        return {"label": self.label, "optimizer": self.optimizer, "lr": self.lr,
                "batch_size": self.batch_size, "momentum": self.momentum, **self.options, **extra}


def parse_runs(specs) -> list[RunSpec]:
    """RunSpecs from specs or strings (see :meth:`RunSpec.parse`); ``None`` gives :data:`DEFAULT_RUNS`."""
    runs = [s if isinstance(s, RunSpec) else RunSpec.parse(s) for s in (specs or DEFAULT_RUNS)]
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two runs share a label: {labels}; give one a label=... option")
    return runs


@dataclass
class RunResult:
    """One run: its spec, history, final θ, trace on the evaluation sample, summary row, θ path."""

    spec: RunSpec
    history: History
    theta: np.ndarray
    trace: dict            # arrays: step, samples, seconds, epoch, loss, grad_norm
    summary: dict
    path: np.ndarray | None = None   # (T, p) θ snapshots when record_every was given


@dataclass
class Comparison:
    runs: list
    budget: dict           # {"epochs": 3} | {"samples": 20000} | {"seconds": 5.0}
    n_train: int
    eval_note: str         # "on all 1437 training samples"
    eps: float | None
    machine: str = ""      # where the seconds were measured (steepest.io.machine())
    threads: dict | None = None  # the BLAS thread count's record, when a listener measured it

    def table(self) -> list[dict]:
        return [r.summary for r in self.runs]


def _trace_point(trace, net, state, Xe, ye, buf, n, t0):
    """Append loss and ‖∇L‖ on the evaluation sample at the state's θ to ``trace``; ``wall`` is the
    run's wall clock since ``t0`` (every gradient and monitoring pass included, this trace's own
    evaluations too), ``seconds`` the loop's step time."""
    wall = time.perf_counter() - t0
    with np.errstate(over="ignore", invalid="ignore"):
        loss, g = net.loss_and_grad(state.theta, Xe, ye, grad=buf)
        gnorm = float(np.linalg.norm(g.astype(np.float64)))
    for k, v in (("step", state.step), ("samples", state.samples), ("seconds", state.seconds), ("wall", wall),
                 ("epoch", state.samples / n), ("loss", loss), ("grad_norm", gnorm)):
        trace[k].append(v)


def _budget(n, batch, epochs=None, samples=None, seconds=None) -> dict:
    """Keyword arguments for :func:`train` realising the budget for a batch size."""
    if epochs is not None:
        return {"epochs": int(epochs)}
    if samples is not None:
        # the fewest steps feeding at least `samples` rows; each epoch's last batch may be short
        B = n if batch == "full" else int(batch)
        full, rest = divmod(int(samples), n)
        return {"max_steps": max(1, full * math.ceil(n / B) + math.ceil(rest / B))}
    return {"time_budget": float(seconds)}


def compare_optimizers(net, theta0, X, y, runs=None, *, epochs=None, samples=None, seconds=None,
                       X_test=None, y_test=None, eps=None, seed=0, n_samples=2000, trace_points=40,
                       record_every=None, progress=None, tune=False, tune_factors=TUNE_FACTORS,
                       val_fraction=0.1, listeners=()) -> Comparison:
    """Train every run from the same ``theta0`` on ``(X, y)`` with an equal budget.

    Parameters
    ----------
    net : MLP;  theta0 : ndarray, shape (p,);  X : (n, d);  y : (n,)
    runs : sequence of RunSpec or str, optional
        Default :data:`DEFAULT_RUNS`.
    epochs, samples, seconds : exactly one, optional
        The budget: passes over the data, rows fed to optimizer steps (steps = ⌈samples/B⌉), or
        wall seconds (train's time budget, monitoring included). Default ``epochs=DEFAULT_EPOCHS``,
        so that full-batch GD takes that many steps while every run processes the same samples.
    X_test, y_test : optional
        Evaluated after every epoch and at the end (never used to choose anything).
    eps : float, optional
        The ‖∇L‖ < ε stopping rule, passed to every run (and drawn on the gradient-norm plot).
    n_samples : int or None
        Size of the evaluation sample for the trace (``None``: all training rows).
    trace_points : int
        About how many trace points per run (for a seconds budget: 10 per epoch).
    record_every : int, optional
        Keep θ every this many steps in :attr:`RunResult.path` (for trajectory plots).
    progress : callable, optional
        ``progress(label)`` is called before each run.
    tune : bool
        Before each run, choose its learning rate from ``lr × tune_factors`` by the loss on a seeded
        validation split of ``val_fraction`` of the training rows, each candidate trained under the
        same budget on the rest (see :func:`tune_lr`); the chosen run then trains on all rows.
    listeners : sequence of Listener
        Given to every run's :func:`~steepest.loop.train` (e.g. the measured BLAS thread count).
    """
    if sum(b is not None for b in (epochs, samples, seconds)) > 1:
        raise ConfigError("give one budget: epochs, samples or seconds")
    if epochs is None and samples is None and seconds is None:
        epochs = DEFAULT_EPOCHS
    n = X.shape[0]
    budget = {"epochs": epochs} if epochs is not None else {"samples": samples} if samples is not None \
        else {"seconds": seconds}
    total = (epochs * n if epochs is not None else samples) if seconds is None else None
    every = max(1, total // trace_points) if total else max(1, n // 10)
    specs = parse_runs(runs)
    for spec in specs:  # every run checked before the first one trains
        if spec.batch_size != "full" and spec.batch_size > n:
            raise ConfigError(f"run {spec.label!r}: batch size {spec.batch_size} is larger than the {n} training "
                              "samples; use a smaller batch or batch=full")
    Xe, ye, note = sample_rows(X, y, n_samples, seed)
    evals = {"test": (X_test, y_test)} if X_test is not None else None
    loss0, g0 = net.loss_and_grad(theta0, Xe, ye)
    start = (float(loss0), float(np.linalg.norm(g0.astype(np.float64))))
    results = []
    for spec in specs:
        tuned = None
        if tune:
            if progress is not None:
                progress(f"tuning {spec.label} ({len(tune_factors)} learning rates) …")
            tuned = tune_lr(net, theta0, X, y, spec, budget, tune_factors, val_fraction, seed, listeners)
            spec = replace(spec, lr=tuned["lr"])
        if progress is not None:
            progress(spec.legend)
        run = _run_one(net, theta0, X, y, spec, budget, evals, eps, seed, (Xe, ye), start, every, record_every,
                       listeners)
        if tuned is not None:
            run.summary["tuned"] = tuned
        results.append(run)
    from steepest.io import machine

    return Comparison(results, budget, n, note, eps, machine())


def _run_one(net, theta0, X, y, spec, budget, evals, eps, seed, sample, start, every, record_every,
             listeners=()) -> RunResult:
    """One run of :func:`compare_optimizers`: train with the tracing callback, then the summary row."""
    n = X.shape[0]
    Xe, ye = sample
    trace = {"step": [0], "samples": [0], "seconds": [0.0], "wall": [0.0], "epoch": [0.0], "loss": [start[0]],
             "grad_norm": [start[1]]}
    path = [theta0.copy()] if record_every else None
    buf = np.empty_like(theta0)
    next_at = [every]

    def callback(event, state):
        if event != "step":
            return False
        if path is not None and state.step % record_every == 0:
            path.append(state.theta.copy())
        if state.samples >= next_at[0]:
            next_at[0] = (state.samples // every + 1) * every
            _trace_point(trace, net, state, Xe, ye, buf, n, t0)
        return False

    t0 = time.perf_counter()
    res = train(spec.network(net), theta0, X, y, optimizer=spec.make_optimizer(), lr=spec.lr, batch_size=spec.batch_size,
                eps=eps, evals=evals, seed=seed, callback=callback, listeners=list(listeners),
                **_budget(n, spec.batch_size, **_kw(budget)))
    wall = time.perf_counter() - t0
    st = res.state
    if trace["samples"][-1] != st.samples:  # the run's end, wherever it fell
        _trace_point(trace, net, st, Xe, ye, buf, n, t0)
        trace["wall"][-1] = wall  # the run ended when train returned, not when this point was measured
    if path is not None and st.step % record_every != 0:
        path.append(res.theta.copy())
    _, g_full = net.loss_and_grad(res.theta, X, y, chunk=8192)
    X_test, y_test = (evals or {}).get("test", (None, None))
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged run's loss is inf or NaN, not a warning
        on_train = evaluate(net, res.theta, X, y)
        on_test = evaluate(net, res.theta, X_test, y_test) if X_test is not None else None
    summary = {**spec.config(), "train_loss": on_train.loss, "train_acc": on_train.accuracy,
               "grad_norm": float(np.linalg.norm(g_full.astype(np.float64))),
               "test_loss": on_test.loss if on_test else None, "test_acc": on_test.accuracy if on_test else None,
               "steps": st.step, "epochs": st.samples / n, "samples": st.samples,
               "grad_evals": st.grad_evals, "seconds": st.seconds, "wall_seconds": wall,
               "stop_reason": res.stop_reason}
    return RunResult(spec, res.history, res.theta, {k: np.asarray(v) for k, v in trace.items()}, summary,
                     np.stack(path) if path is not None else None)


def _kw(budget: dict) -> dict:
    """``{"epochs": 3}`` → the keyword arguments of :func:`_budget` (the other two None)."""
    return {"epochs": budget.get("epochs"), "samples": budget.get("samples"), "seconds": budget.get("seconds")}


def tune_lr(net, theta0, X, y, spec, budget, factors=TUNE_FACTORS, val_fraction=0.1, seed=0, listeners=()) -> dict:
    """The learning rate among ``spec.lr × factors`` whose run ends with the lowest validation loss.

    The rows are split once by a permutation seeded with ``seed``: ``val_fraction`` of them for
    validation, the rest to train each candidate under ``budget`` from ``theta0``. The test set is
    never looked at. A candidate that diverges scores +inf. Returns ``{"lr", "grid", "val_loss",
    "at_edge", "n_val"}``; ``at_edge`` says the best was the smallest or largest tried, so a better
    one may lie outside the grid.
    """
    n = X.shape[0]
    n_val = max(1, int(round(val_fraction * n)))
    if not 0 < val_fraction < 1 or n - n_val < 1:
        raise ConfigError(f"val_fraction must leave rows on both sides of the split, got {val_fraction}")
    perm = np.random.default_rng([seed, 7]).permutation(n)
    fit, val = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    Xf, yf, Xv, yv = X[fit], y[fit], X[val], y[val]
    batch = spec.batch_size if spec.batch_size == "full" else min(int(spec.batch_size), len(fit))
    grid = sorted({float(spec.lr * f) for f in factors})
    scores = []
    for lr in grid:
        res = train(spec.network(net), theta0, Xf, yf, optimizer=spec.make_optimizer(), lr=lr, batch_size=batch, seed=seed,
                    monitor=False, listeners=list(listeners), **_budget(len(fit), batch, **_kw(budget)))
        with np.errstate(over="ignore", invalid="ignore"):
            loss = evaluate(net, res.theta, Xv, yv).loss if res.stop_reason != "diverged" else math.inf
        scores.append(float(loss) if np.isfinite(loss) else math.inf)
    best = int(np.argmin(scores))
    return {"lr": grid[best], "grid": grid, "val_loss": scores, "at_edge": best in (0, len(grid) - 1),
            "n_val": n_val}


@dataclass
class GradientNoise:
    """Mini-batch gradients against the full gradient at one θ, per batch size (arrays of shape (k,))."""

    batch_sizes: np.ndarray
    cos_mean: np.ndarray       # mean cosine similarity ⟨g_B, g⟩ / ‖g_B‖‖g‖
    cos_std: np.ndarray
    variance: np.ndarray       # mean ‖g_B − g‖²
    batch_norm: np.ndarray     # mean ‖g_B‖
    full_norm: float           # ‖g‖
    n: int                     # rows the full gradient is over
    n_batches: int

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def gradient_noise(net, theta, X, y, batch_sizes=(1, 4, 16, 64, 256), n_batches=32, seed=0) -> GradientNoise:
    """Cosine and variance of ``n_batches`` random mini-batch gradients at ``theta`` per batch size.

    ``g`` is the gradient over all of ``(X, y)`` (pass a sample for big data); each batch is drawn
    without replacement from those rows, so ``B = n`` gives ``g_B = g`` up to float rounding:
    cosine 1 and variance 0.
    """
    n = X.shape[0]
    sizes = np.array(sorted({int(b) for b in batch_sizes}))
    if sizes[0] < 1 or sizes[-1] > n:
        raise ConfigError(f"batch sizes must lie in 1..{n} (the rows given), got {list(sizes)}")
    _, g = net.loss_and_grad(theta, X, y, chunk=8192)
    g = g.astype(np.float64)
    gn = float(np.linalg.norm(g))
    rng = np.random.default_rng(seed)
    buf = np.empty_like(theta)
    cos_m, cos_s, var, bn = [], [], [], []
    for B in sizes:
        cs, vs, ns = [], [], []
        for _ in range(n_batches):
            idx = rng.choice(n, size=B, replace=False)
            _, gb = net.loss_and_grad(theta, X[idx], y[idx], grad=buf)
            gb = gb.astype(np.float64)
            nb = float(np.linalg.norm(gb))
            cs.append(float(gb @ g) / max(nb * gn, 1e-300))
            vs.append(float(np.sum((gb - g) ** 2)))
            ns.append(nb)
        cos_m.append(np.mean(cs)); cos_s.append(np.std(cs)); var.append(np.mean(vs)); bn.append(np.mean(ns))
    return GradientNoise(sizes, np.array(cos_m), np.array(cos_s), np.array(var), np.array(bn), gn, n, n_batches)


def write_comparison(comp: Comparison, out_dir, noise=None) -> list:
    """``summary.csv``, ``summary.json`` (table, budget, every run's trace, epochs and step losses) and,
    given ``noise`` (label → GradientNoise), ``gradient_noise.json``."""
    files = [write_csv(f"{out_dir}/summary.csv", comp.table())]
    runs = [{"spec": r.spec.config(), "summary": r.summary, "trace": r.trace, "epochs": r.history.epochs,
             "step_loss": r.history.steps["loss"], "step_lr": r.history.steps["lr"]} for r in comp.runs]
    files.append(write_json(f"{out_dir}/summary.json", {"budget": comp.budget, "n_train": comp.n_train,
                                                         "eval": comp.eval_note, "eps": comp.eps,
                                                         "machine": comp.machine, "threads": comp.threads,
                                                         "table": comp.table(), "runs": runs}))
    if noise:
        files.append(write_json(f"{out_dir}/gradient_noise.json", {k: v.as_dict() for k, v in noise.items()}))
    return files
