"""What the loop records: one typed record per step, one per evaluation, each with its columns listed once.

The history, the metrics files (CSV and JSON lines), the progress display, ``--json`` and the report all
take their column names from here, so a new column is added in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

# One value per optimizer update, in :attr:`steepest.loop.History.steps` (and the checkpoint's tensors).
STEP_COLUMNS = ("loss", "acc", "grad_norm", "lr", "samples", "grad_evals", "seconds")


@dataclass(slots=True)
class StepRecord:
    """One optimizer update: the batch's ``loss`` and accuracy ``acc`` at θ before the update, ``grad_norm``
    ‖g‖ of the batch gradient (the full gradient in full-batch descent, before any clipping), the
    learning rate ``lr`` used, and the running totals after it (``samples`` in steps, ``grad_evals``
    including monitoring, ``seconds`` in steps). ``step`` counts updates made; ``epoch`` and ``batch``
    say where the batch came from; ``rows`` its size; ``correct`` its correctly classified rows."""

    step: int
    epoch: int
    batch: int
    rows: int
    correct: int
    loss: float
    acc: float
    grad_norm: float
    lr: float
    samples: int
    grad_evals: int
    seconds: float

    def values(self) -> tuple:
        """The :data:`STEP_COLUMNS` values, in that order."""
        return (self.loss, self.acc, self.grad_norm, self.lr, self.samples, self.grad_evals, self.seconds)


# An evaluation record (one per epoch by default, or every k steps). Its columns, in the order of the
# metrics files: HEAD_COLUMNS, then ``<set>_loss, <set>_acc`` for each evaluated set (``val``, ``test``, …),
# then TAIL_COLUMNS. The record also carries EXTRA_FIELDS, kept in metrics.jsonl and the checkpoint but
# not in metrics.csv.
HEAD_COLUMNS = ("epoch", "step", "train_loss", "train_acc")
SET_COLUMNS = ("loss", "acc")
TAIL_COLUMNS = ("grad_norm", "lr", "samples", "grad_evals", "seconds", "total_seconds")
EXTRA_FIELDS = ("layer_grad_norms", "train_metrics")


@dataclass(slots=True)
class Evaluation:
    """One evaluation of θ during training. ``train_loss``, ``train_acc`` and ``grad_norm`` ‖∇L‖ with its
    per-layer parts ``layer_grad_norms`` are measured on the whole training set (``train_metrics`` is
    ``"full"``), or are the running means over the batches since the last evaluation (``"running"``,
    ``grad_norm`` None) when monitoring is off; ``sets`` maps each extra set (``"val"``, ``"test"``) to
    what :func:`~steepest.metrics.evaluate` measured on it (``.loss``, ``.accuracy``). ``lr`` is the last
    step's learning rate; ``samples``, ``grad_evals``, ``total_seconds`` (seconds in steps) the running
    totals; ``seconds`` the seconds in steps since the last evaluation.

    The history, the checkpoint and the metrics files keep it as :meth:`as_dict` — plain JSON.
    """

    epoch: int
    step: int
    train_loss: float
    train_acc: float
    grad_norm: float | None
    lr: float
    samples: int
    grad_evals: int
    seconds: float
    total_seconds: float
    sets: dict
    layer_grad_norms: list | None
    train_metrics: str

    def as_dict(self) -> dict:
        """``{column: value}`` in the order of :func:`evaluation_columns`, then :data:`EXTRA_FIELDS`."""
        rec = {c: getattr(self, c) for c in HEAD_COLUMNS}
        for name, m in self.sets.items():
            rec[f"{name}_loss"], rec[f"{name}_acc"] = m.loss, m.accuracy
        rec.update((c, getattr(self, c)) for c in TAIL_COLUMNS + EXTRA_FIELDS)
        return rec


# Column → label, for tables and the report: every evaluation column (``<set>_…`` for the sets the command
# line evaluates) and the final metrics a model file keeps.
LABELS = {
    "epoch": "epoch", "step": "step", "train_loss": "train loss", "train_acc": "train accuracy",
    "val_loss": "validation loss", "val_acc": "validation accuracy", "test_loss": "test loss",
    "test_acc": "test accuracy", "grad_norm": "‖∇L‖", "lr": "learning rate",
    "samples": "samples processed", "grad_evals": "gradient evaluations",
    "seconds": "training seconds", "total_seconds": "seconds so far",
    "wall_seconds": "wall seconds", "stop_reason": "stopped by", "epochs": "epochs", "steps": "steps",
}


def evaluation_columns(sets=()) -> list[str]:
    """The columns of an evaluation record for the extra evaluation ``sets`` (e.g. ``["val", "test"]``)."""
    return [*HEAD_COLUMNS, *(f"{s}_{m}" for s in sets for m in SET_COLUMNS), *TAIL_COLUMNS]


def evaluated_sets(records) -> list[str]:
    """The extra sets evaluated in ``records`` (dicts, as read back from metrics.jsonl): the names of their
    ``<set>_loss`` and ``<set>_acc`` keys, in order of appearance."""
    found = {}
    for rec in records:
        for key in rec:
            name, _, m = key.rpartition("_")
            if name and name != "train" and m in SET_COLUMNS:
                found[name] = None
    return list(found)


#: full-batch descent makes one step per epoch: by default it is evaluated every this many steps
FULL_BATCH_EVAL_EVERY = 10


def default_eval_every(batch_size, eval_every=None):
    """Steps between evaluations: ``eval_every`` if given, else None (each epoch's end) — or
    :data:`FULL_BATCH_EVAL_EVERY` for full-batch descent (``batch_size`` None or ``"full"``)."""
    if eval_every is not None:
        return eval_every
    return FULL_BATCH_EVAL_EVERY if batch_size in (None, "full") else None


# The keys of each ``--json`` evaluation line (scripts and benchmarks rely on them), in order.
JSON_COLUMNS = ("epoch", "train_loss", "train_acc", "val_acc", "test_acc", "grad_norm", "lr", "samples",
                "seconds")
