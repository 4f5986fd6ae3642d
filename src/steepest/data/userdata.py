"""Users' own data: .npz, CSV, an IDX pair, a folder of images (read by :mod:`steepest.data.images`).

Everything that enters here is checked once, at this boundary: X is (n, d) or image-like
(n, h, w), y is (n,) integer labels >= 0 (or strings, mapped to 0..k-1 in sorted order with
the names kept as ``class_names``), n >= 1, every value finite. Failures are DataError or
ShapeError with a message that says where the problem is (file, row, column).
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from pathlib import Path

import numpy as np

from steepest._files import is_regular, no_such, open_regular
from steepest.data.datasets import Dataset
from steepest.data.idx import DEFAULT_MAX_BYTES, read_idx, read_idx_header
from steepest.data.npz import read_npz, working_bytes
from steepest.errors import ConfigError, DataError, ShapeError
from steepest.data.images import IMAGE_EXTENSIONS, image_to_mnist, load_image_folder  # noqa: F401 (re-exported)

__all__ = [
    "IMAGE_EXTENSIONS",
    "image_to_mnist",
    "load_csv",
    "load_file",
    "load_idx_pair",
    "load_image_folder",
    "load_npz",
    "make_dataset",
]

# ---------------------------------------------------------------- validation

def _features(X, where: str, col_names=None, row=lambda i: f"row {i}"):
    """Check X and return (X2d, image_shape). X: (n, d) or (n, h, w)."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataError(f"{where}: features must be numbers, found dtype {X.dtype}")
    if X.ndim == 3:
        image_shape = tuple(int(s) for s in X.shape[1:])
        X = X.reshape(X.shape[0], X.shape[1] * X.shape[2])  # not -1: ambiguous when n == 0
    elif X.ndim == 2:
        image_shape = None
    else:
        raise ShapeError(
            f"{where}: X must be (n, d) features or (n, h, w) images, found shape {X.shape}"
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{where}: no data (X has shape {X.shape})")
    if X.dtype != np.uint8:
        integers = X.dtype.kind in "biu"  # every integer is finite in float32 (up to 2**64 < 3.4e38)
        with np.errstate(over="ignore"):
            X = X.astype(np.float32)
        if not integers and not np.isfinite(X).all():
            bad = ~np.isfinite(X)
            r, c = (int(i) for i in np.argwhere(bad)[0])
            col = col_names[c] if col_names is not None else c
            raise DataError(
                f"{where}: value at {row(r)}, column {col} is not finite "
                f"(NaN, inf, or too large for float32); clean the data first"
            )
    return X, image_shape


MAX_CLASSES = 100_000  # an output layer wider than this is a mistake in the labels, not a task


def _labels(y, n: int, where: str, class_names=None, row=lambda i: f"row {i}"):
    """Check y; return (y int64, n_classes, class_names). Strings become 0..k-1, sorted."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ShapeError(f"{where}: labels y must be one value per sample (n,), found shape {y.shape}")
    if len(y) != n:
        raise ShapeError(f"{where}: {n} samples in X but {len(y)} labels in y; they must match")
    if y.dtype.kind in "US":
        if class_names is None:
            names, codes = np.unique(y, return_inverse=True)
            names = [str(s) for s in names]
            return codes.astype(np.int64).ravel(), len(names), names
        index = {c: i for i, c in enumerate(class_names)}  # test labels: use the training names
        unknown = [i for i, s in enumerate(y.tolist()) if s not in index]
        if unknown:
            raise DataError(f"{where}: label {str(y[unknown[0]])!r} at {row(unknown[0])} is not a training class")
        return np.array([index[s] for s in y.tolist()], dtype=np.int64), len(class_names), class_names
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{where}: label {y[i].item()} at {row(i)} is not an integer")
    elif y.dtype.kind not in "iu":
        raise DataError(f"{where}: labels must be integers or strings, found dtype {y.dtype}")
    # Check the range before casting: 1e300 or a uint64 of 2**63 would wrap to a negative int64.
    too_big = y > MAX_CLASSES - 1
    if too_big.any():
        i = int(np.argmax(too_big))
        raise ShapeError(f"{where}: label {y[i].item()} at {row(i)} is too large; labels must be class "
                         f"numbers 0..k-1 with k at most {MAX_CLASSES}")
    y = y.astype(np.int64)
    if (y < 0).any():
        i = int(np.argmax(y < 0))
        raise ShapeError(
            f"{where}: label {y[i]} at {row(i)} is negative; labels must be 0..k-1"
        )
    return y, int(y.max()) + 1, class_names


def make_dataset(name, X, y, X_test=None, y_test=None, *, source, where=None,
                 input_scale=None, class_names=None) -> Dataset:
    """Validate arrays and wrap them in a :class:`Dataset`.

    X: (n, d) or (n, h, w); y: (n,) integers >= 0 or strings. uint8 X keeps its dtype with
    input_scale 1/255; anything else becomes float32 with input_scale 1.0.
    """
    where = where or source
    X, image_shape = _features(X, where)
    y, k, class_names = _labels(y, len(X), where, class_names=class_names)
    if (X_test is None) != (y_test is None):
        raise DataError(f"{where}: give both X_test and y_test, or neither")
    if X_test is not None:
        X_test, _ = _features(X_test, f"{where} (test)")
        if X_test.shape[1] != X.shape[1]:
            raise ShapeError(
                f"{where}: test data has {X_test.shape[1]} features, training data {X.shape[1]}"
            )
        if X_test.dtype != X.dtype:  # uint8 pixels beside float features: scales would differ
            raise DataError(
                f"{where}: X is {X.dtype} but X_test is {X_test.dtype}; store both the same way"
            )
        y_test, k_test, _ = _labels(y_test, len(X_test), f"{where} (test)", class_names=class_names)
        k = max(k, k_test)
    if input_scale is None:
        input_scale = 1.0 / 255.0 if X.dtype == np.uint8 else 1.0
    return Dataset(name=name, X_train=X, y_train=y, X_test=X_test, y_test=y_test,
                   input_scale=input_scale, image_shape=image_shape, n_classes=k,
                   source=source, class_names=class_names)


# ---------------------------------------------------------------- file formats

def load_npz(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Dataset:
    """A .npz with arrays ``X`` (n, d) or (n, h, w) and ``y`` (n,); optional ``X_test``, ``y_test``.

    Read by :func:`steepest.data.npz.read_npz`: no pickles, and headers claiming more than
    ``max_bytes`` in total are refused before anything is allocated.
    """
    path = Path(path)
    arrays, names = read_npz(path, ("X", "y", "X_test", "y_test"), max_bytes=max_bytes)
    missing = [k for k in ("X", "y") if k not in arrays]
    if missing:
        raise DataError(
            f"{path}: needs arrays named X and y; missing {', '.join(missing)} "
            f"(found: {', '.join(names) or 'none'})"
        )
    return make_dataset(path.stem, arrays["X"], arrays["y"], arrays.get("X_test"),
                        arrays.get("y_test"), source=str(path))


# A number as a CSV cell holds one: digits with an optional sign, point and exponent, or nan/inf.
# Stricter than float(), which also takes "1_0" (as 10), Arabic-Indic digits and surrounding spaces.
# The point, when there is one, is what splits the digits: "[0-9]+\.?[0-9]*" could split a run of digits
# anywhere, and took minutes (quadratic backtracking) to refuse a 140,000-digit cell ending in a letter.
_NUMBER = re.compile(r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)", re.I)


def _is_number(s: str) -> bool:
    return _NUMBER.fullmatch(s.strip()) is not None


def _csv_rows(path: Path, delimiter: str):
    """Yield (line number, cells) for each non-blank row. A cell may be as long as a file steepest reads:
    np.loadtxt reads any length, and the csv module's own limit (128 KB) made rows past it go unchecked.
    The limit is the csv module's, for the whole process: it is only ever raised, to the same value by
    every thread, never set back (another thread may be reading)."""
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    with io.TextIOWrapper(open_regular(path, DataError, "a CSV file"), newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        for row in reader:
            if any(c.strip() for c in row):
                yield reader.line_num, row


_CSV_FIELD_LIMIT = 2**31 - 1  # the largest the csv module takes on every platform (a C long)


def _check_regular(path: Path, what: str) -> None:
    """A DataError unless ``path`` is a regular file: missing, or what it is instead (never opened)."""
    if not path.exists():
        raise DataError(no_such(path))
    if not is_regular(path):
        open_regular(path, DataError, what).close()  # raises, saying what the path is


def _check_odd_cells(path, delimiter, skip_line, names, feat_idx) -> None:
    """After np.loadtxt has read the file: a DataError for a feature cell it took for a number though
    :data:`_NUMBER` does not ('1_000', another script's digits). Only the data lines holding '_' or a
    non-ASCII character are parsed again, so a header such as ``pixel_0`` or a label column of names
    costs nothing."""
    with open(path, encoding="utf-8-sig", errors="replace", newline=None) as f:
        for line, text in enumerate(f, 1):
            if line <= skip_line or ("_" not in text and text.isascii()):
                continue
            cells = next(csv.reader([text.rstrip("\n")], delimiter=delimiter), [])
            for j in feat_idx:
                if j < len(cells) and not _is_number(cells[j]):
                    raise DataError(f"{path}: line {line}, column {names[j]!r}: {cells[j]!r} is not a number")


def _check_widths(path, delimiter, skip_line, width) -> None:
    """Every data row has ``width`` cells: a row with more is refused, not silently cut."""
    try:
        for line, r in _csv_rows(path, delimiter):
            if line > skip_line and len(r) != width:
                raise DataError(f"{path}: line {line} has {len(r)} columns, expected {width} (as in the first "
                                "row); fix that row")
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read as CSV text ({e}); save it as UTF-8 CSV") from None


def _csv_scan(path, delimiter, skip_line, names, feat_idx, label_idx):
    """Slow, exact parse: report the first bad row or cell by line and column."""
    rows, raw = [], []
    for line, r in _csv_rows(path, delimiter):
        if line <= skip_line:
            continue
        if len(r) != len(names):
            raise DataError(f"{path}: line {line} has {len(r)} columns, expected {len(names)}; fix that row")
        values = []
        for j in feat_idx:
            try:
                if not _is_number(r[j]):
                    raise ValueError(r[j])
                values.append(float(r[j]))
            except ValueError:
                raise DataError(
                    f"{path}: line {line}, column {names[j]!r}: {r[j]!r} is not a number"
                ) from None
        rows.append(np.array(values))
        raw.append(r[label_idx])
    return np.stack(rows), np.array(raw, dtype=str)


def load_csv(path, label_column: str | int | None = None, header: bool | None = None,
             delimiter: str = ",") -> Dataset:
    """A CSV file: one row per sample, a label column and numeric feature columns.

    label_column: a header name or a 0-based index; default the column named "label" if the
    header has one, else the first column. header: whether row 1 holds column names; by default
    guessed (row 1 is a header when it has a non-number where row 2 has a number).
    Labels may be integers >= 0 or names (mapped to 0..k-1 in sorted order).
    """
    path = Path(path)
    _check_regular(path, "a CSV file")
    try:
        head = []
        for item in _csv_rows(path, delimiter):
            head.append(item)
            if len(head) == 2:
                break
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read as CSV text ({e})") from None
    if not head:
        raise DataError(f"{path}: empty file, no rows of data")
    first = head[0][1]
    second = head[1][1] if len(head) > 1 else None
    if header is None:
        header = any(
            not _is_number(a) and (second is None or (i < len(second) and _is_number(second[i])))
            for i, a in enumerate(first)
        )
    names = [c.strip() for c in first] if header else [str(i) for i in range(len(first))]
    width = len(names)
    if width < 2:
        raise DataError(f"{path}: needs a label column and at least one feature column")
    if header and second is None:
        raise DataError(f"{path}: no rows of data after the header")
    if label_column is None:
        label_idx = names.index("label") if header and "label" in names else 0
    elif isinstance(label_column, str):
        if not header or label_column not in names:
            raise ConfigError(f"{path}: no column named {label_column!r} (columns: {', '.join(names)})")
        label_idx = names.index(label_column)
    else:
        label_idx = int(label_column)
        if not -width <= label_idx < width:
            raise ConfigError(f"{path}: label column {label_column} out of range, file has {width} columns")
        label_idx %= width
    feat_idx = [j for j in range(width) if j != label_idx]
    skip_line = head[0][0] if header else head[0][0] - 1  # physical lines before the data
    opts = dict(delimiter=delimiter, skiprows=skip_line, comments=None, encoding="utf-8-sig")
    try:  # fast path in C; on any complaint, re-parse slowly to say exactly where
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Input line N contained no data"
            X = np.loadtxt(path, usecols=feat_idx, dtype=np.float64, ndmin=2, **opts)
            raw = np.loadtxt(path, usecols=[label_idx], dtype=str, ndmin=1, **opts)
        _check_widths(path, delimiter, skip_line, len(names))  # usecols ignores extra columns
        _check_odd_cells(path, delimiter, skip_line, names, feat_idx)  # np.loadtxt reads '1_000' as 1000
    except ValueError:
        try:
            X, raw = _csv_scan(path, delimiter, skip_line, names, feat_idx, label_idx)
        except (OSError, UnicodeDecodeError, csv.Error) as e:  # past the rows read above
            raise DataError(f"{path}: cannot read as CSV text ({e})") from None

    def row(i):  # the file line of data row i; only needed for an error message
        try:
            lines = [n for n, _ in _csv_rows(path, delimiter) if n > skip_line]
            return f"line {lines[i]}"
        except (csv.Error, IndexError):  # np.loadtxt read a file the csv module cannot
            return f"data row {i + 1}"

    raw = [s.strip() for s in raw.tolist()]
    if all(_is_number(s) for s in raw):
        y = np.array([float(s) for s in raw])
    else:
        empty = [i for i, s in enumerate(raw) if not s]
        if empty:
            raise DataError(f"{path}: {row(empty[0])}: empty label")
        y = np.array(raw)
    X, image_shape = _features(X, str(path), col_names=[names[j] for j in feat_idx], row=row)
    y, k, class_names = _labels(y, len(X), str(path), row=row)
    return Dataset(name=path.stem, X_train=X, y_train=y, X_test=None, y_test=None, input_scale=1.0,
                   image_shape=image_shape, n_classes=k, source=str(path), class_names=class_names)


def load_idx_pair(images, labels) -> Dataset:
    """An IDX images file (n, h, w) or (n, d) with its IDX labels file (n,)."""
    images, labels = Path(images), Path(labels)
    (x_dtype, x_shape), (_, y_shape) = read_idx_header(images), read_idx_header(labels)
    if x_shape[0] != y_shape[0]:  # before a byte of data is decompressed
        raise ShapeError(f"{images} holds {x_shape[0]} samples but {labels} holds {y_shape[0]} labels; "
                         "give the labels file that belongs to these images")
    cost = working_bytes(x_shape, x_dtype)
    if cost > DEFAULT_MAX_BYTES:
        raise DataError(f"{images}: its header claims {'x'.join(map(str, x_shape))} values of {x_dtype}, "
                        f"{cost:,} bytes once loaded, more than the limit of {DEFAULT_MAX_BYTES:,}; "
                        "the file is corrupt, or give a smaller dataset")
    X, y = read_idx(images), read_idx(labels)
    return make_dataset(images.name.split(".")[0], X, y, source=str(images),
                        where=f"{images} + {labels.name}")


def load_file(path, labels=None, **options) -> Dataset:
    """Load user data by what ``path`` is.

    - a directory: one sub-folder of images per class (:func:`load_image_folder`);
    - ``.npz``: arrays X, y (:func:`load_npz`);
    - ``.csv`` / ``.tsv`` / ``.txt``: label column + features (:func:`load_csv`);
    - any other file together with ``labels=``: an IDX pair (:func:`load_idx_pair`).
    """
    from steepest.data.datasets import KNOWN_DATASETS

    path = Path(path)
    suffix = path.suffix.lower()
    if labels is not None:  # only an IDX images file keeps its labels apart
        kind = "a folder of class folders" if path.is_dir() else \
            {".npz": "an .npz file", ".csv": "a CSV file", ".tsv": "a TSV file", ".txt": "a text file"}.get(suffix)
        if kind is None and str(path) in KNOWN_DATASETS and not path.exists():
            kind = "a named dataset"
        if kind:
            raise DataError(f"{path} is {kind}, which carries its own labels; a labels file (--labels) goes only "
                            "with an IDX images file: remove it")
        return load_idx_pair(path, labels)
    if path.is_dir():
        return load_image_folder(path, **options)
    if not path.exists():
        raise DataError(no_such(path, "file or directory"))
    if not is_regular(path):
        open_regular(path, DataError, "a data file or a folder of class folders").close()  # says what it is
    if suffix == ".npz":
        return load_npz(path)
    if suffix in (".csv", ".txt"):
        return load_csv(path, **options)
    if suffix == ".tsv":
        return load_csv(path, delimiter="\t", **options)
    raise DataError(
        f"{path}: unknown kind of data file; use .npz (arrays X, y), .csv (label + features), "
        "an IDX images file with its labels file, or a folder with one sub-folder per class"
    )
