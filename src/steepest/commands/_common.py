"""What the commands share: where output goes, loading data by name or path, BLAS threads, the error for
outputs that overflow."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from steepest.errors import ConfigError, DataError


class Output:
    """Where a command writes. With ``--json`` stdout carries JSON lines only, so words go to stderr."""

    def __init__(self, json_mode: bool = False, quiet: bool = False):
        self.json = json_mode
        self.quiet = quiet
        self.human = sys.stderr if json_mode else sys.stdout
        self.bars = not quiet and sys.stderr.isatty()

    def say(self, text: str = "") -> None:
        """Progress talk: silenced by --quiet."""
        if not self.quiet:
            self.note(text)

    def note(self, text: str = "") -> None:
        """Results and things the user must know (fallbacks): shown even with --quiet."""
        if self.bars and "tqdm" in sys.modules:
            from tqdm import tqdm
            tqdm.write(text, file=self.human)
        else:
            print(text, file=self.human, flush=True)

    def emit(self, obj: dict) -> None:
        """One JSON object on one line of stdout (NaN and inf as null)."""
        from steepest.commands._rundir import clean

        print(json.dumps(clean(obj), ensure_ascii=False), flush=True)


class Silent(Output):
    """The output of the other processes of a data-parallel run: rank 0 alone speaks."""

    def __init__(self):
        super().__init__(False, True)
        self.bars = False

    def note(self, text: str = "") -> None:
        pass

    def emit(self, obj: dict) -> None:
        pass


def add_json_flag(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")


def load_data(name: str, data_dir=None, labels=None, download=True, progress=False):
    """A :class:`steepest.data.Dataset` from a dataset name or a path to the user's data."""
    from steepest.data import KNOWN_DATASETS, is_user_file, load_dataset, load_file

    if is_user_file(name, labels):
        return load_file(name, labels=labels)
    if name not in KNOWN_DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(KNOWN_DATASETS)}, "
                          "or give the path of your data (.npz, .csv, IDX file with --labels, image folder)")
    from steepest.errors import DataNotFoundError

    try:
        return load_dataset(name, data_dir=data_dir, download=download, progress=progress)
    except DataNotFoundError as e:
        if e.dataset is None:
            raise
        raise DataNotFoundError(missing_data_advice(e), dataset=e.dataset, reason=e.reason, cache=e.cache) from None


def missing_data_advice(e) -> str:
    """The library's DataNotFoundError in the command line's terms: options, not function arguments."""
    from steepest.data.fetch import FILES

    name = e.dataset
    return (f"{e.reason}\n"
            f"Supply the four {name} IDX files ({', '.join(FILES)}) with --data-dir DIR (DIR holding them or a "
            f"{name}/ sub-directory of them), with STEEPEST_DATA=DIR (DIR/{name}/ holding them), or by copying them "
            f"into {e.cache}/; or use --dataset digits (bundled, no download), or --fallback digits to use it "
            f"only when {name} is missing.")


def load_data_or_fallback(name, fallback, out, **load):
    """:func:`load_data`, or the ``fallback`` dataset (saying so on ``out``) when ``name`` cannot be found."""
    from steepest.errors import DataNotFoundError

    try:
        return load_data(name, **load)
    except DataNotFoundError:
        if not fallback or fallback == name:
            raise
        out.note(f"note: {name} was not found locally nor downloaded; using {fallback} instead "
                 f"(--fallback {fallback}). `steepest datasets` shows where {name} is looked for.")
        return load_data(fallback, **{**load, "labels": None})


def split_name(ds, split: str):
    """``(X, y)`` of a dataset's ``"train"`` or ``"test"`` split."""
    if split == "train":
        return ds.X_train, ds.y_train
    if ds.X_test is None:
        raise DataError(f"{ds.source} has no test split; use --split train, or give X_test and y_test "
                        "in the .npz file")
    return ds.X_test, ds.y_test


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Limit the BLAS library to ``n`` threads inside the block (threadpoolctl)."""
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ConfigError("--threads needs the threadpoolctl package; install it with "
                          "`pip install threadpoolctl`, or set OMP_NUM_THREADS before starting") from None
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def model_path(path) -> Path:
    """Accept a run directory for its model file."""
    path = Path(path)
    if path.is_dir() and (path / "model.safetensors").is_file():
        return path / "model.safetensors"
    if path.is_dir() and (path / "checkpoints" / "checkpoint.safetensors").is_file():  # a run that has not ended
        import shlex

        raise ConfigError(f"{path} is a run that has no model yet (it stopped before its end, or is still "
                          f"training); continue it with `steepest train --resume {shlex.quote(str(path))}`, or "
                          "give its checkpoint, checkpoints/checkpoint.safetensors, to look at it as it is")
    return path


def load_model_and_dataset(args):
    """``(path, net, theta, meta, trained, ds)`` for a MODEL argument and the data options.

    The dataset is ``--dataset`` or, without it, the one the model records it was trained on.
    """
    from steepest.data import is_user_file, matches_record, trained_data
    from steepest.io import load_model

    path = model_path(args.model)
    net, theta, meta = load_model(path)
    trained = (meta.get("dataset") or {}).get("name")
    name, labels = (args.dataset, args.labels) if args.dataset else trained_data(meta)
    if not name:
        raise ConfigError(f"{path} does not record its dataset; give one with --dataset")
    if not args.dataset and is_user_file(name, labels) and not Path(name).exists():
        raise ConfigError(f"{path} was trained on {name}, which is not there any more; give its data with --dataset")
    ds = load_data(name, data_dir=args.data_dir, labels=labels, download=args.download)
    if not args.dataset and not matches_record(ds, meta):  # the default must be the data it was trained on
        raise ConfigError(f"{name} no longer holds the samples {path} was trained on (they differ from the digest "
                          "the model records); give the data to measure it on with --dataset")
    return path, net, theta, meta, trained, ds


def regularisation(net) -> list[str]:
    """What the network was trained with beyond plain cross-entropy: ``["dropout 0.2/0.5/0.5", "max-norm 3"]``."""
    extra = [f"dropout {'/'.join(f'{p:g}' for p in net.dropout)}" if getattr(net, "dropout", None) else "",
             f"max-norm {net.max_norm:g}" if getattr(net, "max_norm", None) else "",
             f"label smoothing {net.label_smoothing:g}" if getattr(net, "label_smoothing", 0) else "",
             "standardised inputs" if getattr(net, "input_mean", None) is not None else ""]
    return [e for e in extra if e]


def describe_net(net) -> str:
    extra = "".join(f", {e}" for e in regularisation(net))
    return f"{net.architecture}, {net.n_params:,} parameters, {net.dtype}{extra}"


def class_label(i: int, class_names) -> str:
    """``"7"``, or ``"9 (Ankle boot)"`` when the class has a name other than its number."""
    if class_names and i < len(class_names) and class_names[i] != str(i):
        return f"{i} ({class_names[i]})"
    return str(i)


def check_against_model(net, X, y=None, what="the data", trained_on=None):
    """Raise a ShapeError a user can act on when ``X``/``y`` do not fit ``net``."""
    from steepest.errors import ShapeError

    d, k = net.sizes[0], net.sizes[-1]
    hint = f"; use the data the model was trained on ({trained_on})" if trained_on else ""
    if X.ndim != 2 or X.shape[1] != d:
        got = X.shape[1] if X.ndim == 2 else X.shape
        raise ShapeError(f"the model takes {d} inputs per sample but {what} has {got}{hint}")
    if y is not None and y.size and (y.min() < 0 or y.max() >= k):
        bad = int(y.max() if y.max() >= k else y.min())
        raise ShapeError(f"{what} has label {bad} but the model has {k} classes (labels 0…{k - 1}){hint}")


def trained_top(net, meta):
    """The largest raw input value of the images the model was trained on, ``1/input_scale``, when known.

    steepest stores images as 0 … 255 (MNIST, image folders, uint8 files) or 0 … 16 (digits), with the
    input scale that makes them 0 … 1. Other data (features, or an estimator given its own input_scale)
    may have any range, signed too: None.
    """
    image = ((meta or {}).get("preprocessing") or {}).get("image_shape") is not None
    return 1.0 / net.input_scale if image and net.input_scale != 1.0 else None


def overflow_error(net, theta, path, where, x, top=None):
    """The error for outputs that overflow ``net.dtype`` on the raw input row ``x (n_0,)`` at ``where``.

    The model is to blame (a ModelFileError) when its outputs overflow even where its first layer sees 0
    or ±1 in every feature — what its training data looked like there, scaled to 0 … 1 or standardised:
    its own parameters are too large. Otherwise the inputs are (a DataError), too far from that scale.
    """
    import numpy as np

    from steepest.errors import DataError, ModelFileError

    unit = np.array([[0.0], [1.0], [-1.0]]) * np.ones(net.sizes[0])   # A_0, what the first layer sees
    if net.input_mean is not None:
        unit = unit * net.input_std + net.input_mean                  # X·s, from A_0 = (X·s − μ)/σ
    with np.errstate(all="ignore"):
        Z = net.logits(theta, (unit / net.input_scale).astype(net.dtype))
    if not np.isfinite(Z).all():
        return ModelFileError(f"{path}: the model's outputs overflow {net.dtype} even for inputs on the scale it "
                              "was trained on, so its parameters are unusable; train the model again")
    expected = f", where it was trained on 0 … {top:g}" if top is not None else ""
    return DataError(f"{where}: the model's outputs overflow {net.dtype} for these inputs (largest magnitude "
                     f"{np.abs(x.astype(np.float64)).max():.3g}{expected}); give inputs on the scale of the data "
                     "it was trained on")
