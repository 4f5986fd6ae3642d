"""Evaluation: one way to measure a model on a dataset, accuracy and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Metrics:
    """What :func:`evaluate` measured: ``loss`` (mean cross-entropy plus the L2 term), ``accuracy``,
    ``correct`` rows out of ``n``; ``predicted (n,)``, the class of each row, when asked for."""

    loss: float
    accuracy: float
    correct: int
    n: int
    predicted: np.ndarray | None = field(default=None, compare=False, repr=False)


def evaluate(net, theta, X, y, chunk=8192, predictions=False) -> Metrics:
    """Loss and accuracy of ``net`` at ``theta`` on ``X (n, n_0)``, ``y (n,)`` — the one way steepest
    measures a model on a dataset: the training loop, ``steepest evaluate``, compare's summaries and
    learning-rate tuning, and the landscape's lines and planes all call it.

    One forward pass, ``chunk`` rows at a time (memory ``chunk × width``, whatever ``n``); the loss is
    the same number as ``net.loss``. ``predictions``: also keep each row's predicted class
    (:attr:`Metrics.predicted`), for a confusion matrix.
    """
    from .errors import DataError
    from .losses import l2_penalty, softmax_cross_entropy

    net.check_data(X, y)
    if X.shape[0] == 0:
        raise DataError("cannot evaluate on an empty dataset; give a dataset with at least one row")
    Z = net.logits(theta, X, chunk)
    predicted = Z.argmax(axis=1)
    correct = int(np.count_nonzero(predicted == y))
    loss, _ = softmax_cross_entropy(Z, y, grad=False, smoothing=getattr(net, "label_smoothing", 0.0))
    loss = float(loss + l2_penalty([W for W, _ in net.unpack(theta)], net.l2))
    return Metrics(loss, correct / len(y), correct, len(y), predicted if predictions else None)


def accuracy(y_true, y_pred) -> float:
    """Fraction of ``y_pred (n,)`` equal to ``y_true (n,)``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def confusion_matrix(y_true, y_pred, n_classes=None) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class i predicted as j, shape (k, k)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    k = n_classes or int(max(y_true.max(initial=-1), y_pred.max(initial=-1)) + 1)
    C = np.zeros((k, k), dtype=np.int64)
    np.add.at(C, (y_true, y_pred), 1)
    return C


def precision_recall(C: np.ndarray):
    """Per-class precision ``C_ii / Σ_i C_ij`` and recall ``C_ii / Σ_j C_ij`` (NaN where undefined)."""
    C = np.asarray(C, dtype=np.float64)
    tp = np.diag(C)
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / C.sum(axis=0), tp / C.sum(axis=1)
