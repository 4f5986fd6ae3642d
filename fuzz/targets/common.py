"""What every target shares: the generated case, and what a correct load must look like."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Case:
    """One generated input: the bytes of a file, and how to hand it to the library.

    how : which loader (or loader variant) to call; targets define their own names.
    suffix : the file name's extension, which some loaders dispatch on.
    options : keyword arguments for the loader.
    """

    data: bytes
    how: str = "main"
    suffix: str = ""
    options: dict = field(default_factory=dict)


class Invalid(AssertionError):
    """A load that returned, but returned something a correct load cannot."""


def expect(cond, what: str):
    if not cond:
        raise Invalid(what)


def check_dataset(d, image_shape=None):
    """The contract of :class:`steepest.data.Dataset`, as the loaders promise it."""
    from steepest.data import Dataset

    expect(isinstance(d, Dataset), f"returned {type(d).__name__}, not a Dataset")
    X, y = d.X_train, d.y_train
    expect(isinstance(X, np.ndarray) and X.ndim == 2, f"X_train is not 2-D: {getattr(X, 'shape', X)}")
    n, dim = X.shape
    expect(n >= 1 and dim >= 1, f"empty X_train {X.shape}")
    expect(X.dtype in (np.uint8, np.float32), f"X_train dtype {X.dtype}")
    expect(X.dtype == np.uint8 or bool(np.isfinite(X).all()), "non-finite value in X_train")
    expect(isinstance(d.n_classes, int) and d.n_classes >= 1, f"n_classes {d.n_classes!r}")
    for Xs, ys, part in ((X, y, "train"), (d.X_test, d.y_test, "test")):
        if Xs is None:
            expect(ys is None, f"y_{part} without X_{part}")
            continue
        expect(Xs.ndim == 2 and Xs.shape[1] == dim and Xs.dtype == X.dtype,
               f"X_{part} {Xs.shape} {Xs.dtype} does not match X_train {X.shape} {X.dtype}")
        expect(Xs.dtype == np.uint8 or bool(np.isfinite(Xs).all()), f"non-finite in X_{part}")
        expect(isinstance(ys, np.ndarray) and ys.dtype == np.int64 and ys.shape == (len(Xs),),
               f"y_{part} {getattr(ys, 'dtype', None)} {getattr(ys, 'shape', None)} for {len(Xs)} rows")
        expect(len(ys) == 0 or (ys.min() >= 0 and ys.max() < d.n_classes),
               f"labels of {part} outside 0..{d.n_classes - 1}")
    expect(math.isfinite(d.input_scale) and d.input_scale > 0, f"input_scale {d.input_scale}")
    if d.image_shape is not None:
        expect(math.prod(d.image_shape) == dim, f"image_shape {d.image_shape} for {dim} features")
    if image_shape is not None:
        expect(d.image_shape == image_shape, f"image_shape {d.image_shape}, expected {image_shape}")
    if d.class_names is not None:
        expect(len(d.class_names) == d.n_classes,
               f"{len(d.class_names)} class names for {d.n_classes} classes")


def names_a_file(message: str, paths) -> bool:
    """Whether an error message says which file it is about (by path or by name)."""
    return any(str(p) in message or p.name in message for p in paths)
