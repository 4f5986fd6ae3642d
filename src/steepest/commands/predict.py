"""``steepest predict MODEL FILE…``: the class of each image or array row, with probabilities.

Images (PNG, JPEG, PGM, …) are made to look like the training images as MNIST was made — grey,
white ink on black, cropped, scaled and centred by mass — at the model's image size
(:func:`steepest.data.image_to_mnist`), then put in the units of the model's inputs. A ``.npy``
file holds raw inputs as the training data stored them: ``(d,)``, ``(n, d)``, ``(h, w)`` or
``(n, h, w)``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from steepest.commands._common import Output, add_json_flag, overflow_error, trained_top

HELP = "predict the class of images or .npy arrays"
EPILOG = """\
examples:
  steepest predict runs/mnist/model.safetensors digit.png
  steepest predict runs/mnist/model.safetensors a.png b.jpg rows.npy --json
"""


def add_parser(subparsers):
    from steepest.commands._limits import Count
    p = subparsers.add_parser("predict", help=HELP, description=HELP + ".", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a model file written by `steepest train` (or its run directory)")
    p.add_argument("files", metavar="FILE", nargs="+", help="images (PNG, JPEG, PGM, …) or .npy arrays")
    p.add_argument("--top", type=Count(1, 10**6), default=3, metavar="K", help="show the K most likely classes (default 3)")
    add_json_flag(p)
    return p


def _inputs(path: Path, net, meta):
    """``(labels, X)`` for one file: one label per row of X (n, d), in the model's input units."""
    import numpy as np

    from steepest.data.userdata import IMAGE_EXTENSIONS, image_to_mnist
    from steepest.errors import DataError, ShapeError

    d = net.sizes[0]
    shape = (meta.get("preprocessing") or {}).get("image_shape")
    if path.suffix.lower() == ".npy":
        from steepest.data.npz import read_npy

        a = read_npy(path)  # header checked before anything is allocated; never unpickles
        if a.dtype.kind not in "biuf":
            raise DataError(f"{path}: the array must hold numbers, found dtype {a.dtype}; save it as "
                            "np.save(path, X.astype(np.float32))")
        given = a
        if shape and a.shape[-2:] == tuple(shape) and a.ndim in (2, 3):
            a = a.reshape(-1, d)  # images (h, w) or (n, h, w)
        elif a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != d or a.shape[0] == 0:
            raise ShapeError(f"{path}: array of shape {a.shape} does not fit the model, which takes {d} "
                             f"inputs; give (d,) or (n, d) with d = {d}")
        with np.errstate(over="ignore"):  # 1e39 is finite in float64, inf in the network's float32
            cast = a.astype(net.dtype)
        if a.dtype.kind == "f" and not np.isfinite(cast).all():  # where, in the array as the user gave it
            at = tuple(int(i) for i in np.argwhere(~np.isfinite(cast.reshape(given.shape)))[0])
            what = "is not finite" if not np.isfinite(given[at]) else \
                f"is too large for {net.dtype}, the model's precision"
            raise DataError(f"{path}: value at index {at[0] if len(at) == 1 else at} {what} ({given[at]}); "
                            "clean the array first")
        labels = [str(path)] if a.shape[0] == 1 else [f"{path}[{i}]" for i in range(a.shape[0])]
        return labels, a
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DataError(f"{path}: unknown kind of file; give an image ({', '.join(IMAGE_EXTENSIONS)}) or a .npy array")
    if not shape or shape[0] != shape[1] or shape[0] * shape[1] != d:
        raise ShapeError(f"{path}: this model takes {d} features, not square images; give a .npy array")
    pixels = image_to_mnist(path, size=shape[0]).astype(np.float64)  # 0..255, white ink on black
    # The model multiplies its input by input_scale to get 0..1 (1/255 for MNIST, 1/16 for digits).
    raw = pixels / 255.0 / net.input_scale
    return [str(path)], raw[None, :].astype(net.dtype)


def _probabilities(net, theta, path, labels, X, top=None):
    """The class probabilities of each row; inputs far outside anything trained on (1e30 where the
    pixels were 0–255) overflow the logits, and NaN is no answer: refused, naming the row."""
    import numpy as np

    with np.errstate(all="ignore"):
        P = net.predict_proba(theta, X).astype(np.float64)
    bad = ~np.isfinite(P).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise overflow_error(net, theta, path, labels[i], X[i], top)
    return P


def run(args) -> int:
    import numpy as np

    from steepest.commands._common import class_label, model_path
    from steepest.errors import ConfigError
    from steepest.io import load_model

    if args.top < 1:
        raise ConfigError(f"--top must be at least 1, got {args.top}")
    out = Output(args.json)
    path = model_path(args.model)
    net, theta, meta = load_model(path)
    names = (meta.get("dataset") or {}).get("class_names")
    batches = [_inputs(Path(f), net, meta) for f in args.files]  # all checked before any output
    probabilities = [_probabilities(net, theta, path, labels, X, trained_top(net, meta)) for labels, X in batches]
    for (labels, _), P in zip(batches, probabilities):
        for label, p in zip(labels, P):
            k = int(p.argmax())
            name = names[k] if names and k < len(names) else str(k)
            if args.json:
                out.emit({"file": label, "class": k, "name": name, "probability": float(p[k]),
                          "probabilities": [float(v) for v in p]})
                continue
            top = np.argsort(-p, kind="stable")[: args.top]
            others = "  ".join(f"{class_label(int(j), names)}: {p[j]:.3f}" for j in top)
            print(f"{label}: {class_label(k, names)}  (p = {p[k]:.3f})   top {len(top)}: {others}")
    return 0
