"""Named datasets — ``mnist``, ``fashion-mnist``, ``digits``, the toy 2-D sets — and where to find them.

Search order for mnist and fashion-mnist (the first directory holding all four IDX files wins):

1. ``data_dir`` — either ``data_dir/<name>/`` or ``data_dir`` itself;
2. ``$STEEPEST_DATA/<name>/``;
3. the cache, ``<cache>/<name>/`` (see :func:`steepest.data.fetch.default_cache_dir`);
4. system locations, ``/usr/share/datasets/<name>/`` (Debian's ``dataset-fashion-mnist``);
5. a download into the cache, if ``download`` is true.

``digits`` is scikit-learn's bundled 8x8 digits and needs no download. ``moons``, ``circles``,
``spirals`` and ``xor`` are generated from a seed (:mod:`steepest.data.toy`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from steepest.data import fetch as _fetch
from steepest.data.idx import read_idx, read_idx_header
from steepest.data.toy import TOY_DATASETS, load_toy
from steepest.errors import ConfigError, DataError, DataNotFoundError

__all__ = [
    "Dataset",
    "KNOWN_DATASETS",
    "SYSTEM_DIRS",
    "describe_datasets",
    "find_dataset",
    "load_dataset",
    "load_digits",
    "load_mnist",
]

KNOWN_DATASETS = ("mnist", "fashion-mnist", "digits") + TOY_DATASETS

#: System-wide directories searched after the cache; ``<dir>/<name>/`` must hold the files.
SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)

CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
    "digits": [str(d) for d in range(10)],
}


@dataclass
class Dataset:
    """Arrays ready for training, plus what a user needs to know about them.

    Attributes
    ----------
    X_train : (n, d) uint8 for image datasets, float32 otherwise; images are flattened.
    y_train : (n,) int64 labels in ``0 .. n_classes-1``.
    X_test, y_test : same layout, or None when the source has no test split.
    input_scale : multiply X by this to get the network input (1/255 for MNIST, 1/16 for digits).
    image_shape : (h, w) of one image, or None for non-image data.
    source : where the data was found or fetched from, shown to the user.
    class_names : one name per class, or None when the labels are their own names.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    input_scale: float
    image_shape: tuple | None
    n_classes: int
    source: str
    class_names: list[str] | None = None

    def __post_init__(self):
        from steepest._text import first_unprintable

        for name in self.class_names or ():  # printed by train, predict and the lab as they are
            bad = first_unprintable(str(name))
            if bad is not None:
                raise DataError(f"{self.source or self.name}: the class name {str(name)!r} holds U+{ord(bad):04X}, "
                                "which a terminal would act on; rename the class")

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def fingerprint(self) -> str:
        """A digest of the samples themselves (each array's dtype, shape and bytes, and the input
        scale): equal for the same data wherever it was read from, different when any value differs.
        A run records it so that ``--resume`` can tell the data it started with from another file.
        """
        import hashlib

        h = hashlib.sha256()
        for a in (self.X_train, self.y_train, self.X_test, self.y_test):
            if a is None:
                h.update(b"-")
                continue
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.data)
        h.update(repr(float(self.input_scale)).encode())
        return h.hexdigest()[:32]


#: endings that make a --dataset value the user's own file rather than a dataset's name
DATA_SUFFIXES = (".npz", ".csv", ".tsv", ".txt")


def looks_like_path(name: str) -> bool:
    return os.sep in name or name.lower().endswith(DATA_SUFFIXES) or Path(name).exists()


def is_user_file(name: str, labels=None) -> bool:
    """Whether ``--dataset name`` (with ``--labels``) names the user's own data rather than a named dataset."""
    return labels is not None or (name not in KNOWN_DATASETS and looks_like_path(name))


def trained_data(meta: dict) -> tuple:
    """``(dataset, labels)`` a model or checkpoint was trained on, as ``--dataset``/``--labels`` take them: the
    file it records (a user's file is recorded by its absolute path), else the dataset name.

    The name alone is not enough: a file ``moons.npz`` is recorded as ``moons``, which is also a
    built-in dataset; models from before the path was recorded still have their ``training.dataset``.
    """
    # a checkpoint keeps the run's options under "config"
    record, training = meta.get("dataset") or {}, meta.get("training") or meta.get("config") or {}
    if record.get("file"):
        return record["file"], record.get("labels")
    given, labels = training.get("dataset"), training.get("labels")
    if isinstance(given, str) and given and is_user_file(given, labels):
        return given, labels if isinstance(labels, str) else None
    return record.get("name") or (given if isinstance(given, str) and given else None), None


def matches_record(ds, meta: dict) -> bool:
    """Whether ``ds`` holds the samples a model (``dataset.fingerprint``) or checkpoint (``data.fingerprint``)
    records it was trained on; True when it records none (files from before the digest)."""
    want = (meta.get("dataset") or meta.get("data") or {}).get("fingerprint")
    return not want or ds.fingerprint() == want


def _check_name(name: str) -> str:
    if name not in KNOWN_DATASETS:
        raise ConfigError(
            f"unknown dataset {name!r}; known datasets: {', '.join(KNOWN_DATASETS)} "
            "(for your own data, give a .npz/.csv file, an IDX pair or an image folder)"
        )
    return name


# ---------------------------------------------------------------- MNIST-format directories

def _file_in(directory: Path, gz_name: str) -> Path | None:
    """The file for ``gz_name`` in ``directory``: gzip or uncompressed, '-idx' or '.idx' naming."""
    stem = gz_name[: -len(".gz")]
    dotted = stem.replace("-idx", ".idx")  # LeCun's uncompressed files: train-images.idx3-ubyte
    for candidate in (gz_name, stem, dotted + ".gz", dotted):
        p = directory / candidate
        if p.is_file():
            return p
    return None


def _has_files(directory: Path) -> bool:
    return directory.is_dir() and all(_file_in(directory, f) for f in _fetch.FILES)


def load_mnist(directory, kind: str = "mnist") -> Dataset:
    """Load MNIST or Fashion-MNIST from the four IDX files in ``directory``.

    Returns X_train (60000, 784) uint8, y_train (60000,) int64, X_test (10000, 784),
    y_test (10000,), input_scale 1/255, image_shape (28, 28).
    """
    if kind not in ("mnist", "fashion-mnist"):
        raise ConfigError(f"kind must be 'mnist' or 'fashion-mnist', not {kind!r}")
    directory = Path(directory)
    paths = [_file_in(directory, f) for f in _fetch.FILES]
    missing = [f for f, p in zip(_fetch.FILES, paths) if p is None]
    if missing:
        raise DataNotFoundError(
            f"{directory}: missing {', '.join(missing)} (gzip or uncompressed) for {kind}"
        )
    _check_headers(kind, paths)  # headers first: nothing is decompressed for files that do not belong together
    _check_not_the_other(kind, paths)
    arrays = [read_idx(p) for p in paths]
    X_tr, y_tr = _check_split(kind, paths[0], paths[1], arrays[0], arrays[1])
    X_te, y_te = _check_split(kind, paths[2], paths[3], arrays[2], arrays[3])
    return Dataset(
        name=kind, X_train=X_tr, y_train=y_tr, X_test=X_te, y_test=y_te,
        input_scale=1.0 / 255.0, image_shape=(28, 28), n_classes=10,
        source=str(directory), class_names=list(CLASS_NAMES[kind]),
    )


def _check_not_the_other(kind, paths) -> None:
    """A DataError when a file is one of the other dataset's known files (MNIST and Fashion-MNIST have the
    same names and shapes, and a directory of one passed for the other). Only the labels files are hashed
    (29 KB and 5 KB): each dataset's differ from the other's."""
    import hashlib

    other = "fashion-mnist" if kind == "mnist" else "mnist"
    for i in (1, 3):
        digest = hashlib.sha256(paths[i].read_bytes()).hexdigest()
        if digest in _fetch.SHA256[other][_fetch.FILES[i]]:
            raise DataError(f"{paths[i]} is {other}'s {_fetch.FILES[i]}, not {kind}'s; give the directory of "
                            f"{kind}'s files")


def _check_headers(kind, paths) -> None:
    """:func:`_check_split_headers` of the training pair and of the test pair of the four ``paths``."""
    for img, lab in ((paths[0], paths[1]), (paths[2], paths[3])):
        _check_split_headers(kind, img, lab)


def _check_split_headers(kind, img_path, lab_path) -> None:
    """What :func:`_check_split` checks of the arrays, checked on the two headers alone."""
    (img_dtype, img_shape), (lab_dtype, lab_shape) = read_idx_header(img_path), read_idx_header(lab_path)
    if img_dtype != np.uint8 or len(img_shape) != 3 or img_shape[1:] != (28, 28):
        raise DataError(f"{img_path}: expected {kind} images as uint8 (n, 28, 28), found {img_dtype} "
                        f"{img_shape}; download the dataset again (`steepest datasets` shows where it is)")
    if lab_dtype != np.uint8 or len(lab_shape) != 1:
        raise DataError(f"{lab_path}: expected uint8 labels (n,), found {lab_dtype} {lab_shape}; "
                        "download the dataset again")
    if img_shape[0] != lab_shape[0]:
        raise DataError(f"{img_path} has {img_shape[0]} images but {lab_path} has {lab_shape[0]} labels; "
                        "the files do not belong together, download the dataset again")
    if img_shape[0] == 0:
        raise DataError(f"{img_path} holds no images; download the dataset again (`steepest datasets` shows "
                        "where it is)")


def _check_split(kind, img_path, lab_path, images, labels):
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(
            f"{img_path}: expected {kind} images as uint8 (n, 28, 28), "
            f"found {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{lab_path}: expected uint8 labels (n,), found {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels; "
            "the files do not belong together"
        )
    if labels.size and labels.max() >= 10:
        i = int(np.argmax(labels >= 10))
        raise DataError(f"{lab_path}: label {labels[i]} at index {i}; {kind} labels are 0..9")
    return images.reshape(len(images), -1), labels.astype(np.int64)


# ---------------------------------------------------------------- digits

def _sklearn_digits():
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise DataNotFoundError(
            "the digits dataset comes with scikit-learn, which is not installed; "
            "install it with `pip install scikit-learn` (or `pip install steepest[digits]`)"
        ) from None
    return sk_load_digits()


def _digits_file() -> Path:
    """scikit-learn's bundled digits file, located without importing scikit-learn (slow)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is None or not path.is_file():
        _sklearn_digits()  # raises the helpful error if scikit-learn is missing
        raise DataNotFoundError("scikit-learn is installed but its digits data file is missing")
    return path


def load_digits(test_size: int = 360, seed: int = 0) -> Dataset:
    """scikit-learn's 1797 8x8 digits as uint8 0..16, split 1437 / 360 by a seeded permutation.

    input_scale is 1/16; image_shape (8, 8). The split depends only on ``seed``.
    """
    bunch = _sklearn_digits()
    X = np.asarray(bunch.data).astype(np.uint8)  # values are integers 0..16
    y = np.asarray(bunch.target).astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    test, train = np.sort(perm[:test_size]), np.sort(perm[test_size:])
    return Dataset(
        name="digits", X_train=X[train], y_train=y[train], X_test=X[test], y_test=y[test],
        input_scale=1.0 / 16.0, image_shape=(8, 8), n_classes=10,
        source="scikit-learn (sklearn.datasets.load_digits, bundled)",
        class_names=list(CLASS_NAMES["digits"]),
    )


# ---------------------------------------------------------------- finding

def _candidates(name: str, data_dir, cache_dir) -> list[tuple[str, Path]]:
    """(label, directory) pairs in search order."""
    out = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        out += [("--data-dir", d / name), ("--data-dir", d)]
    env = os.environ.get("STEEPEST_DATA")
    if env:
        out.append(("$STEEPEST_DATA", Path(env).expanduser() / name))
    out.append(("cache", _fetch.default_cache_dir(cache_dir) / name))
    out += [("system", Path(s) / name) for s in SYSTEM_DIRS]
    return out


def _locate(name: str, data_dir, cache_dir) -> Path | None:
    for label, d in _candidates(name, data_dir, cache_dir):
        if _has_files(d):
            return d
        if label not in ("cache", "system") and d.is_dir():  # a place the user named, half filled:
            have = {f: _file_in(d, f) for f in _fetch.FILES}  # not passed over for another copy
            if any(have.values()):  # (a DataError, not "not found": --fallback must not take its place)
                missing = [f for f, p in have.items() if p is None]
                raise DataError(f"{d} holds {', '.join(p.name for p in have.values() if p)} but not "
                                f"{', '.join(missing)}; add the missing {name} files there, or name another "
                                "directory")
    return None


def find_dataset(name: str, data_dir=None, cache_dir=None, download: bool = True,
                 mirrors=None, progress: bool = False) -> Path:
    """Return the directory holding dataset ``name`` (for digits: scikit-learn's data file).

    Looks in the order given in the module docstring and downloads into the cache as a last
    resort when ``download`` is true.

    Raises
    ------
    ConfigError
        Unknown name.
    DataError
        A directory given (``data_dir``, ``$STEEPEST_DATA``) holds some of the four files but not all.
    DataNotFoundError
        Not found anywhere and not downloadable (the message says how to supply it).
    """
    _check_name(name)
    if name == "digits":
        return _digits_file()
    if name in TOY_DATASETS:
        raise DataNotFoundError(f"{name} is generated from a seed, not read from files; load it with load_dataset")
    found = _locate(name, data_dir, cache_dir)
    if found is not None:
        return found
    cache = _fetch.default_cache_dir(cache_dir)
    if not download:
        searched = ", ".join(str(d) for _, d in _candidates(name, data_dir, cache_dir))
        reason = f"{name} not found (looked in {searched}) and downloading is turned off."
        raise _fetch.not_found(name, cache, reason)
    return _fetch.fetch(name, cache, mirrors=mirrors, progress=progress)


def load_dataset(name: str, data_dir=None, download: bool = True, cache_dir=None,
                 mirrors=None, progress: bool = False) -> Dataset:
    """Find (or fetch) and load a named dataset: ``mnist``, ``fashion-mnist``, ``digits`` or a toy one."""
    _check_name(name)
    if name == "digits":
        return load_digits()
    if name in TOY_DATASETS:
        return load_toy(name)
    where = find_dataset(name, data_dir, cache_dir, download, mirrors=mirrors, progress=progress)
    try:
        return load_mnist(where, kind=name)
    except DataError as damaged:
        cache = _fetch.default_cache_dir(cache_dir)
        if not download or where != cache / name:
            raise  # the user's own files: theirs to mend, the message says which file is damaged
        # steepest's own copy is damaged (truncated by a full disk, edited): the files that fail their
        # SHA-256 are downloaded again, and read once more
        try:
            _fetch.fetch(name, cache, mirrors=mirrors, progress=progress)
        except DataNotFoundError as again:
            raise DataError(f"{str(damaged).rstrip('.')}; downloading it again failed: {again.reason}") from None
        return load_mnist(where, kind=name)


def describe_datasets(data_dir=None, cache_dir=None) -> list[dict]:
    """One dict per known dataset, for a ``steepest datasets`` listing. Reads headers only.

    Keys: name, found (bool), path (where found, or None), fetch_from (first mirror, or None),
    cache (where a download would go), image_shape, n_classes, n_train, n_test (None when not
    found), bytes (on-disk size when found); error (why files found cannot be read) and incomplete (why a
    directory the user named, holding some of the files, cannot be used) when there is one.
    """
    rows = []
    for name in KNOWN_DATASETS:
        row = {"name": name, "found": False, "path": None, "image_shape": None, "n_classes": 10,
               "n_train": None, "n_test": None, "bytes": None, "fetch_from": None, "cache": None}
        if name == "digits":
            row["image_shape"] = (8, 8)
            try:
                row["path"] = str(find_dataset("digits"))
                row.update(found=True, n_train=1437, n_test=360)
            except DataNotFoundError:
                row.update(found=False, path=None)
            rows.append(row)
            continue
        if name in TOY_DATASETS:
            row.update(found=True, path="(generated)", n_classes=2, n_train=600, n_test=200)
            rows.append(row)
            continue
        row["image_shape"] = (28, 28)
        row["cache"] = str(_fetch.default_cache_dir(cache_dir) / name)
        row["fetch_from"] = _fetch.without_password(_fetch.mirrors_for(name)[0])  # no password on screen
        try:
            found = _locate(name, data_dir, cache_dir)
        except DataError as e:  # a directory the user named holds only some of the files
            found, row["incomplete"] = None, str(e)
        row.update(found=found is not None, path=str(found) if found else None)
        if found is not None:
            paths = [_file_in(found, f) for f in _fetch.FILES]
            try:  # the checks load_mnist makes before decompressing anything: "found" can be loaded
                _check_headers(name, paths)
                row["n_train"] = read_idx_header(paths[0])[1][0]
                row["n_test"] = read_idx_header(paths[2])[1][0]
            except DataError as e:
                row["error"] = str(e)
            row["bytes"] = sum(p.stat().st_size for p in paths)
        rows.append(row)
    return rows
