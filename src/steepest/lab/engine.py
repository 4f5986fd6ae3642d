"""The lab's training: one background thread that drives :func:`steepest.train` for each racer.

There is no second training loop here. Each racer is a normal ``train(..., state=..., listeners=...)``
run, resumed tick after tick from its :class:`~steepest.loop.TrainState`; everything the lab adds —
pause, one step, stop, the equal budget per tick of a race, and the sampled points and pictures the
page shows — lives in :class:`LabListener`, a listener on the loop's events (:mod:`steepest.events`).

A race: racers share θ₀ and the data; on every tick each racer gets the same budget — steps, samples
or seconds of optimizer time — and runs until it has spent it (an overdraft is carried to the next
tick, so a full-batch racer under a sample budget steps once every few ticks, as it should).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from steepest.errors import ConfigError
from steepest.events import Listener, Stop
from steepest.lab import config as C
from steepest.lab import probe
from steepest.metrics import evaluate
from steepest.registry import OPTIMIZER_OPTIONS

POINT_EVERY = 0.25    # seconds of wall time between two sampled points of a racer
EXTRAS_EVERY = 0.75   # seconds between two pictures (anatomy, boundary, mistakes) of the first racer
TRAIN_SAMPLE, TEST_SAMPLE = 256, 500
FOREVER = 10**12      # max_steps: the lab's runs end when the page says so


#: the reason a ``train()`` call of the lab ends when its tick is over (paused, one step, budget spent):
#: the run goes on at the next tick
YIELDED = "yielded"


@dataclass
class Data:
    """A dataset as the lab uses it: training arrays and fixed samples for the pictures."""

    ds: object
    X: np.ndarray
    y: np.ndarray
    Xs: np.ndarray          # TRAIN_SAMPLE training rows: per-layer gradient norms, anatomy, surface
    ys: np.ndarray
    Xt: np.ndarray | None   # up to TEST_SAMPLE test rows: test accuracy, mistakes
    yt: np.ndarray | None
    lo: list | None = None  # bounds of 2-D data, for the decision boundary
    hi: list | None = None

    @classmethod
    def of(cls, ds):
        rng = np.random.default_rng(0)
        n = len(ds.y_train)
        s = np.sort(rng.choice(n, size=min(n, TRAIN_SAMPLE), replace=False))
        Xt = yt = None
        if ds.X_test is not None:
            t = np.sort(rng.choice(len(ds.y_test), size=min(len(ds.y_test), TEST_SAMPLE), replace=False))
            Xt, yt = ds.X_test[t], ds.y_test[t]
        d = cls(ds, ds.X_train, ds.y_train, ds.X_train[s], ds.y_train[s], Xt, yt)
        if ds.n_features == 2:
            X = ds.X_train.astype(np.float64)
            pad = 0.1 * (X.max(axis=0) - X.min(axis=0))
            d.lo, d.hi = (X.min(axis=0) - pad).tolist(), (X.max(axis=0) + pad).tolist()
        return d

    def info(self) -> dict:
        ds = self.ds
        out = {"name": ds.name, "n_train": int(len(self.y)), "n_test": 0 if ds.y_test is None else len(ds.y_test),
               "n_features": ds.n_features, "n_classes": ds.n_classes, "class_names": ds.class_names,
               "image_shape": list(ds.image_shape) if ds.image_shape else None, "input_scale": ds.input_scale,
               "source": ds.source}
        if self.lo is not None:
            out.update(lo=self.lo, hi=self.hi, points=np.round(self.X[:400].astype(float), 3).tolist(),
                       labels=self.y[:400].tolist())
        return out


@dataclass
class Racer:
    """One optimizer in the run: its settings, its TrainState, and the points sampled from it."""

    index: int
    spec: dict                      # optimizer, lr, momentum, batch_size
    state: object = None            # TrainState, after the first tick
    points: list = field(default_factory=list)
    credit: float = 0.0             # budget left in this tick
    seen: int = 0                   # entries of state.history.steps already read into points
    done: str | None = None         # why it stopped for good (diverged, ‖∇L‖ < ε)
    opt: object = None              # the Optimizer, rebuilt when the spec changes
    new_batch: bool = False         # the batch size changed: start the next epoch position afresh
    last_full: float | None = None  # the full-set ‖∇L‖ the last point saw (LabListener.full_norm)

    @property
    def label(self) -> str:
        s = self.spec
        mu = f" μ={s['momentum']:g}" if "momentum" in OPTIMIZER_OPTIONS[s["optimizer"]] else ""
        return f"{s['optimizer']} lr={s['lr']:g}{mu} B={s['batch_size']}"


class LabListener(Listener):
    """Everything the lab does while one racer trains; after each update the loop's ``on_step_end``
    calls :meth:`on_step`, after each evaluation ``on_evaluation`` calls :meth:`on_epoch`.

    * pause: blocks inside ``on_step`` (on the engine's ``go`` event) until start, step, reset or quit;
    * one step / budget: returns True — end this ``train()`` call — when the tick's budget is spent;
    * stop: returns True when the engine's generation changed (reset, new race) or it is quitting;
    * watch: every POINT_EVERY seconds appends a point (mean batch loss and ‖∇L‖ since the last point,
      test accuracy on a sample, the position on the loss-surface plane) and, for the first racer when
      a page is watching, every EXTRAS_EVERY seconds the pictures. The step history the loop keeps is
      trimmed as it is read, so an hour of training does not fill memory.
    """

    def __init__(self, engine, racer, generation, plane, probe_net, data):
        self.engine, self.racer, self.generation = engine, racer, generation
        self.plane, self.probe, self.data = plane, probe_net, data   # of this generation
        self.next_point = 0.0
        self.next_extras = 0.0
        self.last = (0, 0, 0.0)  # step, samples, seconds at the previous on_step

    def start_call(self, state) -> None:
        """Called before each ``train()`` call: the budget is counted from here."""
        self.last = (state.step, state.samples, state.seconds)

    def on_step_end(self, run, rec):
        return Stop(YIELDED, "the lab's tick is over") if self.on_step(run.state) else None

    def on_evaluation(self, run, rec):
        return Stop(YIELDED, "the lab's tick is over") if self.on_epoch(run.state) else None

    def on_step(self, state) -> bool:
        eng, r = self.engine, self.racer
        step, samples, seconds = self.last
        kind = eng.budget
        r.credit -= {"steps": state.step - step, "samples": state.samples - samples,
                     "seconds": state.seconds - seconds}[kind]
        self.last = (state.step, state.samples, state.seconds)
        now = time.perf_counter()
        if now >= self.next_point or eng.stepping or eng.urgent:
            eng.urgent = False                  # a setting changed: show its first step at once
            self.record(state, now)
        if not (eng.running or eng.stepping or self.stale()):
            self.record(state, now, force_extras=True)   # show exactly where it paused
        eng.serve_snapshot(r, state)
        eng.listener_seconds += time.perf_counter() - now
        while not (eng.running or eng.stepping or self.stale()):
            eng.go.wait(0.05)                   # paused: wait here, inside the callback
            eng.serve_snapshot(r, state)
        return self.stale() or eng.stepping or r.credit <= 0

    def on_epoch(self, state) -> bool:
        del state.history.epochs[:-1]           # the lab keeps its own sampled record
        return self.stale()

    def stale(self) -> bool:
        return self.engine.generation != self.generation or self.engine.quitting

    def record(self, state, now, force_extras=False) -> None:
        """Append a point for this racer (and the pictures, when due) and tell the pages.

        Without a step since the last point, only the pictures are refreshed (``force_extras``).
        """
        eng, r = self.engine, self.racer
        if self.stale():
            return
        steps = state.history.steps
        new_loss, new_gn = steps["loss"][r.seen:], steps["grad_norm"][r.seen:]
        moved = bool(new_loss) or not r.points or r.points[-1]["step"] != state.step or \
            state.full_grad_norm not in (None, r.last_full)    # the ε rule measured it after this step's point
        if not (moved or force_extras):
            return
        point = None
        if moved:
            point = {"step": state.step, "samples": state.samples, "seconds": round(state.seconds, 4),
                     "wall": round(now - eng.t0, 3), "lr": r.spec["lr"],
                     "loss": float(np.mean(new_loss)) if new_loss else (r.points[-1]["loss"] if r.points else None),
                     "grad_norm": float(np.mean(new_gn)) if new_gn else None,
                     "full_grad_norm": self.full_norm(state, new_gn), "ab": self.plane.coords(state.theta)}
            for key in steps:                    # keep the last entry: the loop reads it at epoch ends
                del steps[key][:-1]
            r.seen = 1 if steps["loss"] else 0
            if self.data.Xt is not None:
                point["test_acc"] = probe_accuracy(self.probe, state.theta, self.data.Xt, self.data.yt)
        extras = None
        if r.index == 0 and eng.clients > 0 and (now >= self.next_extras or force_extras):
            extras, layers = pictures(self.probe, self.data, state.theta)
            if point is not None:
                point["layers"] = layers
            self.next_extras = now + EXTRAS_EVERY
        with eng.lock:
            if self.stale():
                return
            if point is not None:
                r.points.append(point)
            if extras is not None:
                eng.extras, eng.extras_version = extras, eng.extras_version + 1
            eng.version += 1
        self.next_point = now + POINT_EVERY

    def full_norm(self, state, new_gn) -> float | None:
        """‖∇L‖ on the whole training set — what the ε rule tests — when a new one is known since the last
        point: a full-batch step's own gradient, or the loop's measurement of the full gradient (the ε
        rule's, once an epoch for mini-batches); else None, so a stale value is not drawn twice."""
        r, known = self.racer, state.full_grad_norm
        fresh = known is not None and known != r.last_full
        r.last_full = known
        if r.spec["batch_size"] == "full" and new_gn:
            return float(new_gn[-1])
        return float(known) if fresh else None


def probe_accuracy(net, theta, X, y) -> float:
    """Accuracy on the fixed test sample, by :func:`~steepest.metrics.evaluate` (the one way to measure a model)."""
    return evaluate(net, theta, X, y).accuracy


def pictures(net, d: Data, theta) -> tuple[dict, list]:
    """The first racer's pictures and per-layer ‖∇L‖ on the training sample (training thread)."""
    _, g = net.loss_and_grad(theta, d.Xs, d.ys)
    out = {}
    if d.ds.image_shape:
        out["anatomy"] = {"maps": probe.first_layer_maps(net, g), "dead": probe.dead_units(net, theta, d.Xs),
                          "shape": list(d.ds.image_shape), "pieces": net.layers[0].pieces}
        if d.Xt is not None:
            out["mistakes"] = probe.mistakes(net, theta, d.Xt, d.yt)
    if d.lo is not None:
        out["boundary"] = probe.boundary(net, theta, d.lo, d.hi)
    return out, [float(v) for v in net.layer_norms(g)]


class Engine:
    """The run the page steers: data, network, θ₀, the racers and the thread that trains them.

    Methods called by the server (any thread) change settings under ``lock``; a change that needs a
    new θ₀ builds new objects and bumps ``generation``, so the training thread drops the old ones at
    its next step instead of being interrupted halfway.
    """

    def __init__(self, cfg: dict | None = None, datasets=C.BUNDLED, load=None, runs_root="runs"):
        from steepest.commands._common import load_data

        self.lock = threading.RLock()
        self.go = threading.Event()
        self.datasets, self.load = tuple(datasets), load or (lambda name: load_data(name, download=True))
        self.runs_root = runs_root
        self.cache = {}
        self.running = self.stepping = self.quitting = False
        self.generation = self.version = self.extras_version = self.clients = 0
        self.extras, self.budget, self.message = {}, "seconds", ""
        self.saved_step = None
        self.listener_seconds = 0.0   # wall time spent in LabListener.on_step: what watching costs
        self.urgent = False                     # record the next step without waiting for POINT_EVERY
        self.training, self.snap_request = None, None   # the racer inside train(); a pending snapshot
        self.t0 = self.t_start = time.perf_counter()
        self.cfg = C.check_config(cfg or {}, C.DEFAULTS, self.datasets)
        self._build(self.cfg, [dict((k, self.cfg[k]) for k in ("optimizer", "lr", "momentum", "batch_size"))])
        self.thread = threading.Thread(target=self._loop, name="steepest-lab-train", daemon=True)
        self.thread.start()

    # ------------------------------------------------------------ building a run
    def _dataset(self, name):
        if name not in self.cache:
            self.cache[name] = Data.of(self.load(name))
        return self.cache[name]

    def _build(self, cfg, specs, budget=None) -> None:
        """New data, network, θ₀, plane and racers for ``cfg``; swapped in at once (under the lock)."""
        from steepest.network import MLP

        data = self._dataset(cfg["dataset"])
        sizes = [data.ds.n_features, *cfg["hidden"], data.ds.n_classes]
        C.check_size(sizes, cfg["activation"])
        for s in specs:
            C.check_batch_fits(s, len(data.y))
        net = MLP(sizes, activation=cfg["activation"], input_scale=data.ds.input_scale)
        theta0 = net.init(seed=cfg["seed"], scheme=cfg["init"])
        with self.lock:
            self.running = False
            self.cfg, self.data, self.net, self.theta0 = cfg, data, net, theta0
            self.probe = MLP(**net.config())    # the training thread's own buffers for the pictures
            self.reader = MLP(**net.config())   # the request threads' (predict, surface), under read_lock
            self.read_lock = threading.Lock()
            self.plane = probe.Plane(net, theta0, seed=cfg["seed"])
            self.racers = [Racer(i, dict(s)) for i, s in enumerate(specs)]
            self.budget = budget or ("seconds" if len(specs) == 1 else self.budget)
            self.generation += 1
            self.version += 1
            self.extras, self.extras_version, self.message = {}, self.extras_version + 1, ""
            self.t0 = time.perf_counter()
            self.go.set()                      # wake a listener paused in the old run, so it ends

    # ------------------------------------------------------------ the training thread
    def _loop(self) -> None:
        while True:
            self.go.wait()
            with self.lock:
                if self.quitting:
                    return
                if not (self.running or self.stepping):
                    self.go.clear()
                    continue
                racers, gen, stepping = list(self.racers), self.generation, self.stepping
                budget = 1e-9 if stepping else C.BUDGETS[self.budget] * (10 if len(racers) == 1 else 1)
            for r in racers:
                if r.done is None and gen == self.generation:
                    r.credit = budget if stepping else r.credit + budget
                    if r.credit > 0:
                        self._advance(r, gen)
            with self.lock:
                if gen == self.generation:
                    if stepping:
                        self.stepping = False
                    if all(r.done for r in racers):
                        self.running = False
                        self.message = "; ".join(f"{r.label}: {r.done}" for r in racers)
                    if not (self.running or self.stepping or self.quitting):
                        self.go.clear()

    def _advance(self, r: Racer, gen: int) -> None:
        """One ``train()`` call for racer ``r``, until its budget for this tick is spent."""
        from steepest.loop import TrainState
        from steepest.optim import make_optimizer

        with self.lock:
            spec, cfg, net, data = dict(r.spec), self.cfg, self.net, self.data
            listener = LabListener(self, r, gen, self.plane, self.probe, data)
            if r.opt is None:
                kw = {"momentum": spec["momentum"]} if "momentum" in OPTIMIZER_OPTIONS[spec["optimizer"]] else {}
                r.opt = make_optimizer(spec["optimizer"], **kw)
            if r.state is None:
                r.state = TrainState(theta=self.theta0.copy(), opt_state=r.opt.init(self.theta0))
            elif set(r.state.opt_state) != set(r.opt.init(r.state.theta[:0])):
                r.state.opt_state = r.opt.init(r.state.theta)   # another update rule: a fresh memory
            if r.new_batch:
                r.state.batch, r.new_batch = 0, False
        listener.start_call(r.state)
        with self.lock:
            self.training = r
        try:
            result = self._train(r, listener, net, data, spec, cfg)
        finally:
            with self.lock:
                self.training = None
        if result.stop_reason != YIELDED and gen == self.generation:
            r.done = result.stop_message or result.stop_reason
            listener.record(result.state, time.perf_counter(), force_extras=True)

    @staticmethod
    def _train(r, listener, net, data, spec, cfg):
        from steepest.loop import steps_per_epoch, train

        # The ε rule needs the full-set gradient: a full-batch step has it; mini-batches measure it once
        # an epoch, as `steepest train --eps` does (the lab's evaluations do not: monitor=False)
        every = steps_per_epoch(len(data.y), spec["batch_size"]) if cfg["eps"] is not None else None
        return train(net, r.state.theta, data.X, data.y, optimizer=r.opt, lr=lambda step: r.spec["lr"],
                     batch_size=spec["batch_size"], epochs=None, max_steps=FOREVER, eps=cfg["eps"],
                     grad_norm_every=every, seed=cfg["seed"], monitor=False, listeners=[listener], state=r.state)

    def snapshot(self, index=0, timeout=5.0):
        """A consistent copy of racer ``index``'s TrainState (None before its first step).

        Inside ``train()`` the state changes mid-step, so the copy is taken by the training thread
        itself, between two steps (:meth:`serve_snapshot`); outside it, here.
        """
        import copy

        with self.lock:
            r = self.racers[index]
            if self.training is not r:             # not inside train(): its state is quiet
                return copy.deepcopy(r.state)
            req = self.snap_request = {"racer": r, "done": threading.Event(), "state": None}
        if not req["done"].wait(timeout):
            with self.lock:
                self.snap_request = None
                if self.training is not r:          # the call ended meanwhile: the state is quiet now
                    return copy.deepcopy(r.state)
            raise ConfigError("the training did not reach the end of a step in time to be copied; try again")
        return req["state"]

    def serve_snapshot(self, racer, state) -> None:
        """Called by the training thread between steps: answer a pending :meth:`snapshot` request."""
        req = self.snap_request
        if req is not None and req["racer"] is racer:
            import copy

            req["state"] = copy.deepcopy(state)
            self.snap_request = None
            req["done"].set()

    # ------------------------------------------------------------ controls (any thread)
    def start(self):
        with self.lock:
            self.running = True
            self.go.set()

    def pause(self):
        with self.lock:
            self.running = False
            self.go.clear()

    def step(self):
        with self.lock:
            self.stepping = True
            self.go.set()

    def reset(self):
        """A new θ₀ for the same settings and racers (all of them start from it); paused.

        θ₀ is drawn from the next seed (it becomes the run's seed, so the page shows it and setting the
        seed back gives that θ₀ again).
        """
        self._build({**self.cfg, "seed": (self.cfg["seed"] + 1) % 2**32}, [r.spec for r in self.racers])

    def configure(self, update) -> dict:
        """Apply settings: structural ones reset the run, the others act on the running training."""
        cfg = C.check_config(update, self.cfg, self.datasets)
        if any(cfg[k] != self.cfg[k] for k in C.STRUCTURAL):
            specs = [{**r.spec, **{k: cfg[k] for k in r.spec}} if r.index == 0 else r.spec for r in self.racers]
            self._build(cfg, specs)
            return {"reset": True}
        spec = {k: cfg[k] for k in ("optimizer", "lr", "momentum", "batch_size")}
        C.check_batch_fits(spec, len(self.data.y))
        with self.lock:
            r = self.racers[0]
            if spec["optimizer"] != r.spec["optimizer"] or spec["momentum"] != r.spec["momentum"]:
                r.opt = None
            r.new_batch = r.new_batch or spec["batch_size"] != r.spec["batch_size"]
            r.spec.update(spec)
            self.cfg = cfg
            if cfg["eps"] is not None:
                r.done = None
            self.urgent = True
            self.version += 1
        return {"reset": False}

    def race(self, specs, budget="steps") -> None:
        """Racers from the same θ₀ (the one of the current seed), each with an equal budget per tick."""
        if not isinstance(specs, list) or not 1 <= len(specs) <= C.MAX_RACERS:
            raise ConfigError(f"racers must be a list of 1 to {C.MAX_RACERS} optimizers, got {C.short(specs)}")
        budget = C.check_budget(budget)
        specs = [C.check_racer(s, self.cfg) for s in specs]
        self._build(self.cfg, specs, budget)

    def quit(self):
        with self.lock:
            self.quitting = True
            self.go.set()
        self.thread.join(timeout=10)

    # ------------------------------------------------------------ what the pages see
    def status(self) -> dict:
        with self.lock:
            r0 = self.racers[0]
            last = r0.points[-1] if r0.points else {}
            return {"running": self.running, "generation": self.generation, "config": dict(self.cfg),
                    "budget": self.budget, "datasets": list(self.datasets), "step": last.get("step", 0), "loss": last.get("loss"),
                    "test_acc": last.get("test_acc"), "message": self.message, "clients": self.clients,
                    "listener_seconds": round(self.listener_seconds, 4), "uptime": round(time.perf_counter() - self.t_start, 3),
                    "racers": [{"index": r.index, "label": r.label, "spec": r.spec, "done": r.done,
                                "points": len(r.points)} for r in self.racers]}

    def extras_json(self) -> str:
        """The latest pictures as JSON text, serialised once per version however many pages watch."""
        with self.lock:
            if getattr(self, "_extras_cache", (None,))[0] != self.extras_version:
                from steepest.lab.server import _dumps

                self._extras_cache = (self.extras_version, _dumps(self.extras))
            return self._extras_cache[1]

    def since(self, cursor: dict) -> tuple[dict | None, dict]:
        """What a page has not seen yet, given its ``cursor``; ``(None, cursor)`` when nothing changed.

        The cursor holds the generation, the version, the number of points sent per racer and the
        pictures' version; points are sent once each, pictures only as the latest (coalesced).
        """
        with self.lock:
            if cursor.get("version") == self.version:
                return None, cursor
            fresh = cursor.get("generation") != self.generation
            sent = [] if fresh else cursor.get("sent", [])
            msg = {"status": self.status(), "fresh": fresh, "racers": []}
            if fresh:
                msg["info"] = {**self.data.info(), "sizes": list(self.net.sizes), "n_params": self.net.n_params,
                               "plane": "θ₀ + a·d₁ + b·d₂, d₁ and d₂ Gaussian directions filter-normalised "
                                        "to θ₀'s weights (Li et al. 2018); paths at least-squares coordinates"}
            for r in self.racers:
                k = sent[r.index] if r.index < len(sent) else 0
                msg["racers"].append({"index": r.index, "label": r.label, "from": k, "points": r.points[k:],
                                      "done": r.done})
            if fresh or cursor.get("extras") != self.extras_version:
                msg["extras"] = self.extras_json()
            return msg, {"generation": self.generation, "version": self.version,
                         "sent": [len(r.points) for r in self.racers], "extras": self.extras_version}
