"""The run directory of ``steepest train``::

    RUN_DIR/
      config.toml                          the resolved configuration (resume reads the checkpoint's copy)
      metrics.csv, metrics.jsonl           one row per epoch
      model.safetensors                    the trained model, written at the end
      checkpoints/checkpoint.safetensors   the latest checkpoint: each epoch's end (and every
                                           --checkpoint-every steps), and on Ctrl-C

Nothing already on disk is overwritten by accident: a directory that holds a run is refused unless
``--resume`` (continue it) or ``--force`` (start over in it), and writability is checked before
any data is loaded. Every file but the metrics is replaced atomically, so a killed process leaves
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

    model = property(lambda self: self.path / MODEL)
    config = property(lambda self: self.path / CONFIG)
    csv = property(lambda self: self.path / METRICS_CSV)
    jsonl = property(lambda self: self.path / METRICS_JSONL)
    checkpoint = property(lambda self: self.path / CHECKPOINT)

    def existing(self) -> list[str]:
        return [f for f in RUN_FILES if (self.path / f).exists()]

    def check_new(self, force: bool) -> None:
        """Before a new run: refuse a directory holding a run (unless ``force``) and check writability."""
        found = self.existing()
        if found and not force:
            if self.model.exists():
                what = f"already holds a trained model ({MODEL})"
                todo = "choose another --out, or add --force to replace that run"
            elif self.checkpoint.exists():
                what = "holds an unfinished run (a checkpoint)"
                todo = f"continue it with `steepest train --resume {self.path}`, choose another --out, or add --force"
            else:
                what = f"holds files of a run ({', '.join(found)})"
                todo = "choose another --out, or add --force to replace them"
            raise ConfigError(f"{self.path} {what}; {todo}")
        check_writable(self.path)

    def create(self, force: bool = False) -> None:
        checkpoints = (self.path / CHECKPOINT).parent.absolute()
        p = checkpoints
        while not p.exists():
            self.created.append(p)
            p = p.parent
        try:
            checkpoints.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create {self.path} ({e.strerror or e}); choose another --out") from None
        if force:  # start over: the old run's files go now, so they cannot be mixed with the new ones
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
