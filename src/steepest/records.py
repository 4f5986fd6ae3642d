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


# An evaluation record (one per epoch by default, or every k steps) is a dict, saved as JSON in the
# checkpoint. Its columns, in the order of the metrics files:
HEAD_COLUMNS = ("epoch", "step", "train_loss", "train_acc")
TAIL_COLUMNS = ("grad_norm", "lr", "samples", "grad_evals", "seconds", "total_seconds")
# Also in each record: ``layer_grad_norms`` (a list, or None) and ``train_metrics`` ("full": measured
# on the whole training set at θ; "running": the mean over the batches since the last evaluation).

# Friendly names, for tables and the report.
LABELS = {
    "epoch": "epoch", "step": "step", "train_loss": "training loss", "train_acc": "training accuracy",
    "val_loss": "validation loss", "val_acc": "validation accuracy", "test_loss": "test loss",
    "test_acc": "test accuracy", "grad_norm": "‖∇L‖ (full)", "lr": "learning rate",
    "samples": "samples seen", "grad_evals": "gradient evaluations (rows)",
    "seconds": "seconds in steps (since the last record)", "total_seconds": "seconds in steps (total)",
    "wall_seconds": "wall seconds", "stop_reason": "stopped because", "epochs": "epochs", "steps": "steps",
}


def evaluation_columns(sets=()) -> list[str]:
    """The columns of an evaluation record for the extra evaluation ``sets`` (e.g. ``["val", "test"]``)."""
    return [*HEAD_COLUMNS, *(f"{s}_{m}" for s in sets for m in ("loss", "acc")), *TAIL_COLUMNS]


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
