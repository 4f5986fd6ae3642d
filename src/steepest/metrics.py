"""Evaluation: accuracy and the confusion matrix."""

from __future__ import annotations

import numpy as np


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
