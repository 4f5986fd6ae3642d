"""The run directory of ``steepest train``::

    RUN_DIR/
      config.toml                          the resolved configuration (resume reads the checkpoint's copy)
      metrics.csv, metrics.jsonl           one row per epoch
      model.safetensors                    the trained model, written at the end
      checkpoints/checkpoint.safetensors   the latest checkpoint: each epoch's end (and every
                                           --checkpoint-every steps), and on Ctrl-C

Nothing already on disk is overwritten by accident: a directory that holds a run is refused unless
``--resume`` (continue it) or ``--force`` (start over in it), and writability is checked before
any data is loaded. A directory with no checkpoint and no model (a run killed before its first
checkpoint) is started again by the same command, or by ``--resume``. One process at a time trains
in a directory: ``steepest train`` holds an advisory lock on it (``flock``, released when the process
ends, however it ends) and a second one is refused. Every file but the metrics is replaced atomically, so a killed process leaves
the previous version whole, plus at worst a temporary ``.NAME.*.tmp`` that the next ``--resume``
or ``--force`` removes. A write that fails (full disk, read-only directory) stops the run with a
:class:`RunWriteError` that says which checkpoint is intact.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shlex
import tempfile
import time
from pathlib import Path

from steepest.errors import ConfigError, SteepestError
from steepest.io import atomic_write, temp_files

MODEL = "model.safetensors"
CONFIG = "config.toml"
METRICS_CSV = "metrics.csv"
METRICS_JSONL = "metrics.jsonl"
CHECKPOINT = Path("checkpoints") / "checkpoint.safetensors"
RUN_FILES = (MODEL, CONFIG, METRICS_CSV, METRICS_JSONL, str(CHECKPOINT))


class RunWriteError(SteepestError):
    """A file of the run directory could not be written (full disk, read-only directory, ...)."""


class RunBusyError(SteepestError):
    """Another process holds the run directory's lock (it is training in it)."""


# Locks held by this process: real path of the run directory → the open descriptor that holds it.
_HELD: dict[str, int] = {}


def lock_dir(path) -> None:
    """Take the advisory lock of the run directory ``path`` for this process (``flock``, exclusive).

    The lock is on the directory itself, not on a lock file: nothing is written, nothing is left
    behind, and the kernel drops it when the process ends, however it ends (SIGKILL included).
    Taking it twice in one process is a no-op. Another process holding it raises
    :class:`RunBusyError`. Where there is no ``flock`` (Windows) the directory is not locked.
    """
    try:
        import fcntl
    except ImportError:
        return
    key = os.path.realpath(path)
    if key in _HELD:
        return
    fd = os.open(key, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunBusyError(f"{path} is in use: another `steepest train` is running in it; wait for it to end "
                           "(or stop it), or choose another --out") from None
    except OSError:  # a file system without flock: run unlocked rather than not at all
        os.close(fd)
        return
    _HELD[key] = fd


def release_lock(path) -> None:
    """Drop this process's lock of the run directory ``path``, if it holds one (a long-lived process
    — the lab — that writes one run directory after another keeps no descriptor per directory)."""
    fd = _HELD.pop(os.path.realpath(path), None)
    if fd is not None:
        os.close(fd)


def release_locks() -> None:
    """Drop every run-directory lock this process holds (at the end of a command run in-process)."""
    while _HELD:
        os.close(_HELD.popitem()[1])


def clean(value):
    """JSON-ready: NaN and ±inf become None (JSON has no such numbers), tuples lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item"):  # NumPy scalar
        return clean(value.item())
    return value


def default_out(dataset: str, root="runs") -> Path:
    """``runs/<dataset>-<YYYYmmdd-HHMMSS>``, with a suffix if that exists already."""
    stem = Path(dataset).stem if os.sep in dataset or "." in dataset else dataset
    base = Path(root) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, k = base, 2
    while path.exists():
        path, k = Path(f"{base}-{k}"), k + 1
    return path


def check_writable(path) -> None:
    """Raise ConfigError unless ``path`` is, or can be created as, a writable directory. Creates nothing."""
    path = Path(path)
    probe = path
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"--out {path} is a file, not a directory; choose another --out")
    else:
        probe = path.absolute().parent
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir():
            raise ConfigError(f"cannot create {path}: {probe} is a file, not a directory; choose another --out")
    try:
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".steepest-probe-"))
    except OSError as e:
        raise ConfigError(f"cannot write to {probe} ({e.strerror or e}); "
                          "choose a writable directory with --out") from None


class RunDir:
    """Paths of a run directory and the writes into it."""

    def __init__(self, path):
        self.path = Path(path)
        self.created: list[Path] = []   # directories this run made, for cleanup if it fails at once
        self.columns: list[str] = []
        self.restart = False            # a run killed before its first checkpoint, started again

    model = property(lambda self: self.path / MODEL)
    config = property(lambda self: self.path / CONFIG)
    csv = property(lambda self: self.path / METRICS_CSV)
    jsonl = property(lambda self: self.path / METRICS_JSONL)
    checkpoint = property(lambda self: self.path / CHECKPOINT)

    def existing(self) -> list[str]:
        return [f for f in RUN_FILES if (self.path / f).exists()]

    def check_new(self, force: bool) -> None:
        """Before a new run: refuse a directory holding a run (unless ``force``) and check writability.

        A directory with neither a checkpoint nor a model (a run killed before its first
        checkpoint: config.toml and metrics only) holds nothing that could be lost or continued,
        so the same command starts it again: :attr:`restart` is set and :meth:`create` replaces
        those files. A directory another process is training in is refused (:func:`lock_dir`).
        """
        self.restart = False
        if self.path.is_dir():
            lock_dir(self.path)
        found = self.existing()
        if found and not force:
            self._refuse_occupied(found)
            self.restart = True
        check_writable(self.path)

    def _refuse_occupied(self, found) -> None:
        """Raise if the files ``found`` hold a model or a checkpoint (something to keep or continue)."""
        if self.model.exists():
            what = f"already holds a trained model ({MODEL})"
            todo = "choose another --out, or add --force to replace that run"
        elif self.checkpoint.exists():
            what = "holds an unfinished run (a checkpoint)"
            todo = (f"continue it with `steepest train --resume {shlex.quote(str(self.path))}`, choose another "
                    "--out, or add --force")
        else:
            return
        raise ConfigError(f"{self.path} {what}; {todo}")

    def create(self, force: bool = False) -> None:
        """Make the directory, take its lock, and (``force``, or a :attr:`restart`) remove the old run's files."""
        checkpoints = (self.path / CHECKPOINT).parent.absolute()
        p = checkpoints
        while not p.exists():
            self.created.append(p)
            p = p.parent
        try:
            checkpoints.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create {self.path} ({e.strerror or e}); choose another --out") from None
        lock_dir(self.path)
        if not force:  # checked again under the lock: another run may have finished here meanwhile
            self._refuse_occupied(self.existing())
        if force or getattr(self, "restart", False):  # start over: the old files go now, never mixed with new ones
            for f in RUN_FILES:
                try:
                    (self.path / f).unlink()
                except FileNotFoundError:
                    pass

    def stale_temps(self) -> list[Path]:
        """Temporary files of writes that were killed half-way (never mistaken for the run's files)."""
        return [t for f in RUN_FILES for t in temp_files(self.path / f)]

    def remove_stale_temps(self) -> int:
        """Remove :meth:`stale_temps`; return how many there were."""
        stale = self.stale_temps()
        for t in stale:
            try:
                t.unlink()
            except FileNotFoundError:
                pass
        return len(stale)

    def remove_if_unused(self) -> None:
        """Undo :meth:`create` when the run failed before its first epoch: remove what it wrote."""
        if self.checkpoint.exists() or self.model.exists():
            return
        for f in (CONFIG, METRICS_CSV, METRICS_JSONL):
            try:
                (self.path / f).unlink()
            except OSError:
                pass
        for d in self.created:  # deepest first
            try:
                d.rmdir()
            except OSError:
                pass

    def write_config(self, text: str) -> None:
        atomic_write(self.config, text)

    # ------------------------------------------------------------ metrics
    def start_metrics(self, columns: list[str], records: list[dict]) -> None:
        """(Re)write both metrics files from ``records``: a new run has none, a resumed one its history."""
        self.columns = columns
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for rec in records:
            writer.writerow(self._csv_row(rec))
        atomic_write(self.csv, buf.getvalue())
        atomic_write(self.jsonl, "".join(json.dumps(clean(r)) + "\n" for r in records))

    def _csv_row(self, rec: dict) -> list:
        row = []
        for c in self.columns:
            v = rec.get(c)
            row.append("" if v is None else repr(float(v)) if isinstance(v, float) else v)
        return row

    def append_metrics(self, rec: dict) -> None:
        with open(self.csv, "a", newline="") as f:
            csv.writer(f, lineterminator="\n").writerow(self._csv_row(rec))
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(clean(rec)) + "\n")
