"""``steepest evaluate MODEL``: accuracy, loss, per-class precision and recall, confusion matrix."""

from __future__ import annotations

import argparse

from steepest.commands._common import Output, add_json_flag

HELP = "measure a trained model on a dataset's test split"
EPILOG = """\
examples:
  steepest evaluate runs/mnist/model.safetensors --dataset mnist
  steepest evaluate runs/mnist                      # a run directory means its model.safetensors
  steepest evaluate model.safetensors --dataset mine.npz --split train --json
"""


def add_parser(subparsers):
    from steepest.commands import _limits as L
    from steepest.commands._limits import THREADS
    p = subparsers.add_parser("evaluate", help=HELP, description=HELP + ".", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a model file written by `steepest train` (or its run directory)")
    p.add_argument("--dataset", metavar="NAME|PATH", help="dataset name or data file (default: the one the "
                   "model was trained on)")
    p.add_argument("--labels", metavar="FILE", help="IDX labels file when --dataset is an IDX images file")
    p.add_argument("--data-dir", type=L.existing_dir, metavar="DIR", help="look for named datasets here first")
    p.add_argument("--no-download", dest="download", action="store_false", help="do not download datasets")
    p.add_argument("--split", choices=("test", "train"), default="test", help="which split (default: test)")
    p.add_argument("--threads", type=THREADS, metavar="N", help="BLAS threads")
    add_json_flag(p)
    return p


def run(args) -> int:
    import math

    import numpy as np

    from steepest.commands._common import (blas_threads, check_against_model, describe_net,
                                           load_model_and_dataset, split_name)
    from steepest.errors import ConfigError
    from steepest.metrics import confusion_matrix, evaluate, precision_recall

    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be a positive integer, got {args.threads}")
    out = Output(args.json)
    path, net, theta, meta, trained, ds = load_model_and_dataset(args)
    X, y = split_name(ds, args.split)
    from steepest.data import KNOWN_DATASETS

    what = f"{ds.name if ds.name in KNOWN_DATASETS else ds.source} ({args.split} split)"
    check_against_model(net, X, y, what=what, trained_on=trained if trained != ds.name else None)
    note = _scale_note(net, meta, ds, X, what)
    if note:
        out.note(note)
    with blas_threads(args.threads), np.errstate(all="ignore"):  # overflow is refused below, not warned of
        m = evaluate(net, theta, X, y, predictions=True)
    if not math.isfinite(m.loss):
        _refuse_overflow(net, theta, path, X, what, meta)
    loss, acc, pred = m.loss, m.accuracy, m.predicted
    C = confusion_matrix(y, pred, n_classes=net.sizes[-1])
    precision, recall = precision_recall(C)
    names = (meta.get("dataset") or {}).get("class_names") or ds.class_names
    if args.json:
        out.emit({"model": str(path), "dataset": ds.name, "split": args.split, "n": int(len(y)),
                  "accuracy": acc, "loss": loss, "precision": precision.tolist(), "recall": recall.tolist(),
                  "support": C.sum(axis=1).tolist(), "confusion_matrix": C.tolist(), "class_names": names})
        return 0
    print(f"model {path}: {describe_net(net)}" + (f", trained on {trained}" if trained else ""))
    print(f"data  {what}: {len(y):,} samples, from {ds.source}")
    print(f"accuracy {100 * acc:.2f}%  loss {loss:.4f}  ({m.correct:,} of {m.n:,} correct)\n")
    print(_class_table(precision, recall, C, names))
    print("\nconfusion matrix (rows: true class, columns: predicted class)")
    print(_confusion_text(C))
    return 0


def _scale_note(net, meta, ds, X, what):
    """A note when the values of ``X`` are not on the scale the model was trained on, else None.

    The model multiplies every input by its own input scale s, whatever the file. A model trained on images
    (0 … 1/s) is compared with the file's values: data on that range are right, data already scaled to
    0 … 1, or on another scale, are not. For other models the training range is unknown, and the scale the
    data come with (1/16 for digits) is compared with the model's.
    """
    from steepest.commands._common import trained_top

    top = trained_top(net, meta)
    if top is None:
        if abs(ds.input_scale - net.input_scale) <= 1e-12 * net.input_scale:
            return None
        return (f"note: {what} is stored at scale {ds.input_scale:g} but the model multiplies its inputs by "
                f"{net.input_scale:g}; results may be meaningless")
    if X.size == 0:
        return None
    lo, hi = float(X.min()), float(X.max())
    if lo >= -0.01 * top and 0.1 * top <= hi <= 1.01 * top:  # the training data's range, or nearly
        return None
    return (f"note: {what} holds values {lo:g} … {hi:g}, but the model multiplies its inputs by "
            f"{net.input_scale:g} and was trained on values 0 … {top:g}; results may be meaningless unless "
            f"the data are put on that scale")


def _refuse_overflow(net, theta, path, X, what, meta):
    """Raise the error for a non-finite loss: the first row whose outputs overflow, or the model itself."""
    import numpy as np

    from steepest.commands._common import overflow_error, trained_top

    with np.errstate(all="ignore"):
        bad = ~np.isfinite(net.logits(theta, X)).all(axis=1)
    i = int(np.argmax(bad))
    raise overflow_error(net, theta, path, f"{what}, row {i}", X[i], trained_top(net, meta))


def _pct(x) -> str:
    return "     —" if x != x else f"{100 * x:6.2f}%"  # NaN when a class is never predicted / absent


def _class_table(precision, recall, C, names) -> str:
    from steepest.commands._common import class_label

    labels = [class_label(i, names) for i in range(len(C))]
    w = max(5, *(len(s) for s in labels))
    lines = [f"{'class':>{w}}  precision  recall   support"]
    for i, lab in enumerate(labels):
        lines.append(f"{lab:>{w}}    {_pct(precision[i])}  {_pct(recall[i])}  {int(C[i].sum()):>8,}")
    return "\n".join(lines)


def _confusion_text(C) -> str:
    w = max(4, len(f"{C.max():,}") + 1)
    lines = [" " * 6 + "".join(f"{j:>{w}}" for j in range(len(C)))]
    for i, row in enumerate(C):
        lines.append(f"{i:>4}  " + "".join(f"{v:>{w}}" for v in row))
    return "\n".join(lines)
