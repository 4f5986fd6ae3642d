"""One training session of ``steepest train``: the data it uses, the loop with its listeners, the end.

A new run and a resumed one differ only in how they get here (see :mod:`steepest.commands.train`);
from :func:`fit` on they are the same code, so a resumed run writes the same files as any other.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
from dataclasses import dataclass

import numpy as np

from steepest.errors import ConfigError, ModelFileError
from steepest.events import Listener


@dataclass
class Data:
    """The arrays of a run: training (after the validation split), validation, test."""

    ds: object              # the steepest.data.Dataset they came from
    X: np.ndarray
    y: np.ndarray
    val: tuple | None
    test: tuple | None

    @property
    def evals(self) -> dict:
        return {"test": self.test} if self.test is not None else {}

    def columns(self) -> list[str]:
        from steepest.records import evaluation_columns

        return evaluation_columns([name for name, pair in (("val", self.val), ("test", self.test)) if pair])


def split(ds, cfg: dict, recorded: bool = False) -> Data:
    """Hold out ``val_split`` of the training data, chosen by a permutation seeded with ``seed``
    (``recorded``: the split of a run being resumed, taken as it was made)."""
    X, y, val = ds.X_train, ds.y_train, None
    f = cfg.get("val_split")
    if f:
        from steepest.batches import holdout

        ti, vi = holdout(len(y), f, cfg["seed"], ds.n_classes, "--val-split", recorded=recorded)
        val, X, y = (X[vi], y[vi]), X[ti], y[ti]
    test = (ds.X_test, ds.y_test) if ds.X_test is not None else None
    return Data(ds, X, y, val, test)


def check_batch(cfg: dict, n: int) -> None:
    B = cfg["batch_size"]
    if B != "full" and B > n:
        raise ConfigError(f"batch size {B} is larger than the {n} training samples; "
                          f"use --batch-size {n} or less, or --batch-size full")


def model_metadata(cfg, net, data: Data, opt, schedule, metrics, threads, fingerprint) -> dict:
    from steepest.data import is_user_file

    ds = data.ds
    file = {"file": cfg["dataset"], "labels": cfg["labels"]} if is_user_file(cfg["dataset"], cfg["labels"]) else {}
    return {
        "threads": threads or {"policy": "fixed" if cfg["threads"] else "library", "threads": cfg["threads"]},
        "kernels": kernels_record(cfg.get("kernels", "auto")),
        "preprocessing": {"input_scale": ds.input_scale,
                          "image_shape": list(ds.image_shape) if ds.image_shape else None},
        "dataset": {"name": ds.name, "source": ds.source, **file, "n_classes": net.sizes[-1],
                    "fingerprint": fingerprint, "class_names": ds.class_names,
                    "n_train": len(data.y),
                    "n_val": len(data.val[1]) if data.val else 0,
                    "n_test": len(data.test[1]) if data.test else 0},
        "training": {**cfg, "optimizer_config": opt.config(),
                     "schedule_config": schedule.config() if hasattr(schedule, "config") else None},
        "metrics": metrics,
        "seed": cfg["seed"],
    }


class Saver:
    """Writes the run's checkpoint and model; a write the disk refuses becomes a :class:`RunWriteError`
    that says which checkpoint is intact and how to go on. ``step`` is that of the checkpoint on disk."""

    def __init__(self, rundir, net, cfg, step=None, data=None):
        self.rundir, self.net, self.cfg, self.step, self.data = rundir, net, cfg, step, data

    @contextlib.contextmanager
    def failing(self, step, kept=None):
        from steepest.commands._rundir import RunWriteError

        try:
            yield
        except (ModelFileError, OSError) as e:
            what = str(e) if isinstance(e, ModelFileError) else \
                f"cannot write {e.filename or self.rundir.path}: {e.strerror or e}"
            if kept is None and self.step is None:
                kept = "no checkpoint was written yet; fix that and start the run again"
            elif kept is None:
                kept = (f"the checkpoint of step {self.step} is intact: fix that, then continue with "
                        f"`steepest train --resume {shlex.quote(str(self.rundir.path))}`")
            raise RunWriteError(f"{what}; training stopped at step {step} and {kept}") from None

    def checkpoint(self, st) -> None:
        from steepest.io import save_checkpoint

        with self.failing(st.step):
            save_checkpoint(self.rundir.checkpoint, self.net, st, self.cfg, self.data)
        self.step = st.step

    def model(self, theta, metadata, step) -> None:
        from steepest.io import save_model

        with self.failing(step, kept=f"its final checkpoint is saved: fix that, then `steepest train --resume "
                                     f"{self.rundir.path}` writes the model"):
            save_model(self.rundir.model, self.net, theta, metadata)


def fit(cfg, net, theta, data: Data, rundir, out, state=None, comm=None) -> int:
    """Train, checkpointing as :func:`_loop` says; save the model; report. Returns the exit code.

    A ``state`` that has already stopped (its model was not saved: the process ended in
    between) is not trained further; its model is saved. Ctrl-C, and SIGTERM (kill, timeout,
    schedulers) unless an MPI launcher's, stop training after the current step, resumable; one that
    arrives once training has ended lets the model be saved (the run is finished) and says so.
    """
    from steepest.commands._progress import Interrupt

    interrupt = Interrupt() if comm is None else Interrupt(signals=(signal.SIGINT,))
    with interrupt:
        code = _fit(cfg, net, theta, data, rundir, out, state, comm, interrupt)
    if interrupt.requested and code != interrupt.status and (comm is None or comm.Get_rank() == 0):
        out.note(f"note: {'Ctrl-C' if interrupt.status == 130 else 'SIGTERM'} arrived after training had "
                 f"ended; the model was saved, the run is finished")
    return code


def _fit(cfg, net, theta, data: Data, rundir, out, state, comm, interrupt) -> int:
    from steepest.commands._trainconfig import make_schedule, optimizer_kwargs
    from steepest.optim import make_optimizer
    from steepest.loop import TrainResult, steps_per_epoch
    from steepest.events import Stop

    opt = make_optimizer(cfg["optimizer"], **optimizer_kwargs(cfg))
    spe = steps_per_epoch(len(data.y), cfg["batch_size"])
    schedule = make_schedule(cfg, spe)
    if state is not None and set(state.opt_state) != set(opt.init(state.theta)):
        raise ConfigError(f"{rundir.checkpoint}: its optimizer state ({', '.join(state.opt_state)}) does "
                          f"not belong to --optimizer {cfg['optimizer']}; the run directory is inconsistent")
    saver = Saver(rundir, net, cfg, None if state is None else state.step, {"fingerprint": data.ds.fingerprint()})
    policy = None  # the measured thread count's listener, when training runs with one
    if state is not None and state.stop_reason not in (None, "interrupted"):
        if comm is not None and comm.Get_rank() != 0:
            return 0
        stop = Stop(state.stop_reason, state.stop_message, state.stop_hint)
        result = TrainResult(state.theta, state.history, stop.reason, stop.sentence(), state, stop)
    else:
        policy = measured_threads(cfg, out, comm)
        result = _loop(cfg, net, theta, data, saver, out, state, opt, schedule, spe, comm, policy, interrupt)
        st = result.state
        if comm is not None and comm.Get_rank() != 0:  # rank 0 alone saves and reports
            return {"interrupted": interrupt.status, "diverged": 1}.get(result.stop_reason, 0)
        if result.stop_reason == "interrupted":
            how = "interrupted" if interrupt.status == 130 else \
                f"stopped by {signal.Signals(interrupt.status - 128).name}"
            out.note(f"{how} at step {st.step} (epoch {st.epoch + 1 if st.batch else st.epoch}); "
                     f"checkpoint saved to {rundir.checkpoint}")
            out.note(f"to continue: steepest train --resume {shlex.quote(str(rundir.path))}")
            if out.json:
                out.emit({"event": "end", "stop_reason": "interrupted", "stop_message": result.stop_message,
                          "epochs": st.epoch, "steps": st.step, "seconds": st.seconds, "model": None,
                          "checkpoint": str(rundir.checkpoint), "run_dir": str(rundir.path)})
            return interrupt.status
    from steepest.commands._common import blas_threads

    chosen = cfg["threads"] or (policy.current if policy is not None else None)
    with blas_threads(chosen):  # also so that the model file records the thread count used
        metrics = final_metrics(net, result, data)
        saver.model(result.theta, model_metadata(cfg, net, data, opt, schedule, metrics,
                                                 policy.record() if policy is not None else None,
                                                 saver.data["fingerprint"]),
                    result.state.step)
    report_end(out, result, metrics, data, rundir, cfg)
    return 1 if result.stop_reason == "diverged" else 0


class MetricsWriter(Listener):
    """Appends each evaluation record to metrics.csv and metrics.jsonl — just after the checkpoint that
    holds it is written (:meth:`flush`), so that a metrics row always implies its checkpoint."""

    def __init__(self, saver):
        self.saver, self.pending = saver, []

    def on_evaluation(self, run, rec):
        self.pending.append(rec)

    def flush(self, step):
        with self.saver.failing(step):
            for rec in self.pending:
                self.saver.rundir.append_metrics(rec)
        self.pending.clear()


def kernels_record(kernels) -> dict:
    """What the model file says of the step's element-wise code: asked for, and used (numba's version)."""
    from steepest.fused import resolve

    k = resolve(kernels)
    return {"asked": kernels, **(k.info() if k is not None else {"kernels": "numpy"})}


def measured_threads(cfg, out, comm=None):
    """The listener that chooses the BLAS thread count, when ``--threads`` was not given (else None).

    Not under MPI: there the ranks share the machine's cores, and each one's timing would measure
    the others' choices as much as its own."""
    if cfg["threads"] is not None or comm is not None:
        return None
    from steepest.threads import MeasuredThreads

    emit = (lambda rec: out.emit({"event": "threads", **rec})) if out.json else None
    return MeasuredThreads(on_choice=emit)


def _loop(cfg, net, theta, data: Data, saver, out, state, opt, schedule, spe, comm, policy, interrupt):
    """``train()`` with the terminal's listeners: Ctrl-C, checkpoints, metrics files, progress."""
    from steepest.commands._common import blas_threads
    from steepest.commands._progress import JsonLines, Progress
    from steepest.commands._trainconfig import eval_every
    from steepest.listeners import Checkpointer
    from steepest.loop import train

    metrics = MetricsWriter(saver)

    def save(st):
        saver.checkpoint(st)
        metrics.flush(st.step)

    k = eval_every(cfg, spe)
    show = JsonLines(out) if out.json else Progress(out, cfg["epochs"], spe, *((state.epoch, state.batch) if state
                                                                           else (0, 0)), at_steps=k is not None)
    listeners = [policy] * (policy is not None) + [interrupt, metrics, show,
                 Checkpointer(save, cfg.get("checkpoint_every"), cfg.get("checkpoint_seconds", 5.0), at_begin=False)]
    if comm is not None:  # data-parallel: Ctrl-C is agreed by every rank; rank 0 alone writes and shows
        from steepest import parallel
        from steepest.parallel import Agreed

        parallel.resume_hint = (f"continue with `mpiexec -n K steepest train --resume {saver.rundir.path}` "
                                "(any K), from the last checkpoint, which is intact (or from the start if none "
                                "was written yet)")
        listeners = [Agreed(interrupt)] + (listeners[1:] if comm.Get_rank() == 0 else [])
    kept = policy.blas.kept() if policy is not None else contextlib.nullcontext()
    try:
        with blas_threads(cfg["threads"]), kept:  # checkpoints record the training's thread count
            return train(net, theta, data.X, data.y, optimizer=opt, lr=schedule,
                         batch_size=None if cfg["batch_size"] == "full" else cfg["batch_size"],
                         epochs=cfg["epochs"], max_steps=cfg["max_steps"], eps=cfg["eps"],
                         time_budget=cfg["time_budget"], patience=cfg["patience"], val=data.val,
                         evals=data.evals, seed=cfg["seed"], clip_norm=cfg["clip_norm"], eval_every=k,
                         listeners=listeners, state=state, comm=comm, kernels=cfg.get("kernels", "auto"))
    finally:
        if isinstance(show, Progress) and (comm is None or comm.Get_rank() == 0):
            show.close()


def final_metrics(net, result, data: Data) -> dict:
    from steepest.metrics import evaluate

    st, last = result.state, result.history.epochs[-1] if result.history.epochs else {}
    m = {"stop_reason": result.stop_reason, "stop_message": result.stop_message,
         "epochs": st.epoch, "steps": st.step, "samples": st.samples, "grad_evals": st.grad_evals,
         "seconds": st.seconds, "wall_seconds": st.wall,
         "train_loss": last.get("train_loss"), "train_acc": last.get("train_acc"),
         "val_acc": last.get("val_acc"), "test_acc": None, "test_loss": None}
    # Measured on the final θ (after a patience restore or a stop within an epoch, not the last record's);
    # the training set too when no evaluation was of the final θ (a stop before the first, a divergence).
    train = (("train", (data.X, data.y)),) if last.get("step") != st.step or result.stop_reason == "diverged" else ()
    for name, pair in (("test", data.test), ("val", data.val)) + train:
        if pair is not None:
            e = evaluate(net, result.theta, *pair)
            m[f"{name}_acc"], m[f"{name}_loss"] = e.accuracy, e.loss
    return m


def divergence_hint(cfg) -> str:
    """What to change on the command line after a divergence."""
    clip = (f"a smaller --clip-norm than {cfg['clip_norm']:g}" if cfg.get("clip_norm") is not None
            else "gradient clipping, e.g. --clip-norm 1")
    return f"rerun with a smaller --lr (e.g. --lr {cfg['lr'] / 10:g}) or with {clip}"


def report_end(out, result, m, data: Data, rundir, cfg=None) -> None:
    if result.stop_reason == "diverged":  # a failure: said even with --quiet, with what to change
        stop = result.stop
        if cfg is not None and stop is not None:  # the library's advice, said in flags
            message = f"{stop.message}. {divergence_hint(cfg)[0].upper()}{divergence_hint(cfg)[1:]}."
        else:
            message = result.stop_message
        out.note(f"stopped: diverged — {message}")
    else:
        out.say(f"stopped: {result.stop_reason} — {result.stop_message}")
    ds = data.ds
    if m["test_acc"] is not None:
        what = "images" if ds.image_shape else "samples"
        head = f"test accuracy {100 * m['test_acc']:.2f}% ({ds.name}, {len(data.test[1])} {what})"
    elif m["val_acc"] is not None:
        head = (f"training accuracy {100 * m['train_acc']:.2f}%, validation accuracy {100 * m['val_acc']:.2f}% "
                f"({ds.name} has no test split)")
    else:  # each kind of file says how it takes a test split; every one can hold some data out
        npz = "put X_test and y_test in the .npz, or " if str(ds.source).lower().endswith(".npz") else ""
        head = (f"training accuracy {100 * m['train_acc']:.2f}% ({ds.name} has no test split: {npz}hold out "
                "part of the training data with --val-split 0.1 to measure on samples it did not train on)")
    out.note(f"{head} — model saved to {rundir.model}")
    if out.json:
        out.emit({"event": "end", **{k: m[k] for k in ("stop_reason", "stop_message", "test_acc", "test_loss")},
                  "epochs": m["epochs"], "steps": m["steps"], "seconds": m["seconds"], "model": str(rundir.model),
                  **{k: m[k] for k in ("train_loss", "train_acc", "val_acc", "samples", "grad_evals",
                                       "wall_seconds")},
                  "dataset": ds.name, "run_dir": str(rundir.path), "checkpoint": str(rundir.checkpoint)})
