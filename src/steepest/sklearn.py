"""steepest as a scikit-learn classifier: :class:`MLPClassifier`, and files without pickle.

The estimator's parameters are the options of ``steepest train`` (same names with underscores,
same defaults, the same names to choose from, :mod:`steepest.registry`), so a run moves between
the command line and Python unchanged: fitted on the same data with the same parameters, it
reaches the same θ as ``steepest train``, bit for bit. It validates its input with
scikit-learn's own utilities, passes scikit-learn's estimator checks
(``sklearn.utils.estimator_checks``), and works in ``Pipeline``, ``GridSearchCV``,
``cross_val_score`` and ``clone``.

>>> from sklearn.datasets import load_iris
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> X, y = load_iris(return_X_y=True)
>>> clf = make_pipeline(StandardScaler(), MLPClassifier(hidden=(16,), epochs=50, batch_size=16)).fit(X, y)
>>> clf.score(X, y) > 0.9
True

Files: :meth:`MLPClassifier.save` writes a steepest model file (safetensors tensors, JSON
metadata; :mod:`steepest.io`) and :func:`load` reads it back — no pickle, nothing executed on
load. ``load`` also reads model files written by ``steepest train``. The estimator can still be
pickled, as scikit-learn expects of estimators (``joblib``, ``GridSearchCV`` with ``n_jobs``);
a pickle runs code when loaded, so share :meth:`~MLPClassifier.save` files instead.
"""

from __future__ import annotations

import contextlib
import inspect
import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .errors import ConfigError, DataError, ModelFileError
from .registry import ACTIVATIONS, BIASES, INITS, KERNELS, OPTIMIZER_OPTIONS, OPTIMIZERS, SCHEDULE_OPTIONS, SCHEDULES

__all__ = ["MLPClassifier", "load", "to_onnx"]

#: estimator parameter → optimizer keyword it feeds (passed only when not None), as ``steepest train``
OPTIMIZER_PARAMS = ("momentum", "beta1", "beta2", "weight_decay")
#: estimator parameter → schedule keyword it feeds (passed only when not None)
SCHEDULE_PARAMS = ("step_size", "gamma", "warmup_steps", "lr_min", "pct_start")

#: each parameter → (kind, largest value): the kinds and bounds of the ``steepest train`` option of the same
#: name, so that a value the command line refuses is refused here too (tests/test_sklearn.py holds the two
#: tables equal); ``input_scale``, which ``steepest train`` takes from the dataset, is a number > 0.
PARAM_KINDS = {
    "hidden": ("hidden", None), "activation": ("activation", None), "pieces": ("pieces", 64), "init": ("choice", None),
    "bias": ("choice", None), "dtype": ("choice", None), "input_scale": ("positive", None), "l2": ("nonneg", 1e6),
    "dropout": ("rates", None), "max_norm": ("positive", 1e6), "label_smoothing": ("smoothing", None),
    "standardize": ("flag", None), "optimizer": ("choice", None), "lr": ("positive", 1e6),
    "momentum": ("decay", None), "beta1": ("decay", None), "beta2": ("decay", None),
    "weight_decay": ("nonneg", 1e3), "clip_norm": ("positive", None), "schedule": ("choice", None),
    "step_size": ("posint", 10**12), "gamma": ("positive", 1.0), "warmup_steps": ("nonnegsteps", 10**12),
    "lr_min": ("nonneg", 1e6), "pct_start": ("fraction", None), "batch_size": ("batch", 2**31),
    "epochs": ("posint", 10**6), "max_steps": ("posint", 10**12), "time_budget": ("positive", 3.2e7),
    "eps": ("positive", None), "patience": ("posint", 10**6), "val_split": ("fraction", None),
    "seed": ("seed", None), "threads": ("posint", 1024), "eval_every": ("possteps", 10**12),
    "kernels": ("choice", None),
}
#: the names a "choice" parameter takes
CHOICES = {"init": INITS, "bias": BIASES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES,
           "dtype": ("float32", "float64"), "kernels": KERNELS}
#: hidden layers: at most this many, each at most this wide (``steepest train``'s limits)
MAX_LAYERS, MAX_WIDTH = 64, 65_536
#: parameters that may be None although their default is not: epochs (the run then ends by max_steps,
#: time_budget, or train's own 10 epochs) and seed (fresh randomness at each fit)
NULLABLE = ("epochs", "seed")
#: a value to suggest for a parameter whose default is None
EXAMPLES = {"pieces": 2, "max_norm": 3.0, "label_smoothing": 0.1, "standardize": True, "momentum": 0.9, "beta1": 0.9,
            "beta2": 0.999, "weight_decay": 1e-4, "clip_norm": 1.0, "step_size": 1000, "gamma": 0.5,
            "warmup_steps": "1%", "lr_min": 0.0, "pct_start": 0.3, "max_steps": 1000, "time_budget": 60.0,
            "eps": 1e-3, "patience": 5, "val_split": 0.1, "threads": 1, "eval_every": "5%"}


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A multilayer perceptron trained by steepest's gradient descent, as a scikit-learn classifier.

    Parameters (those of ``steepest train``; ``steepest train --help`` says more about each)
    ----------
    hidden : tuple of int, default (128, 64)
        Hidden layer widths; inputs and classes come from the data.
    activation : str or tuple of str, default "relu"
        One of ``relu, leaky_relu, sigmoid, tanh, maxout``, for all hidden layers or one per layer.
    pieces : int, optional
        Linear pieces per maxout unit, 2 … 64 (default 2); only with a ``maxout`` layer (``--pieces``).
    init : {"normal", "uniform", "glorot", "he"}, default "he";  bias : {"zero", "random"}
    dtype : {"float32", "float64"}, default "float32"
        Precision of θ and of all computations (and of ``predict_proba``).
    input_scale : float, default 1.0
        Inputs are multiplied by this before the first layer (1/255 for raw pixels, 1/16 for
        digits): what ``steepest train`` takes from the dataset.
    l2 : float, default 0.0
        The loss term ``(λ/2) Σ‖W‖²``.
    dropout : list of float, optional
        Inverted dropout rates in [0, 1): one for the input and one per hidden layer, as
        ``--dropout 0.2 0.5 0.5`` (training only). A single number is refused, as ``steepest train`` does.
    max_norm : float, optional
        Each hidden unit's incoming weights kept at norm ≤ c after each update (``--max-norm``).
    label_smoothing : float, optional
        ε of the cross-entropy against (1−ε)·onehot + ε/k (``--label-smoothing``).
    standardize : bool, optional
        Standardise each feature with the mean and σ of the training split (``--standardize``).
    optimizer : {"gd", "sgd", "momentum", "nesterov", "adam", "rmsprop"}, default "momentum"
    lr : float, default 0.05
        Learning rate η (the peak for ``onecycle``).
    momentum, beta1, beta2, weight_decay : float, optional
        Optimizer options (each only where the optimizer accepts it; None: its default).
    clip_norm : float, optional
        Rescale each step's gradient to at most this norm.
    schedule : {"constant", "step", "exponential", "cosine", "warmup", "onecycle"}, default "constant"
    step_size, gamma, warmup_steps, lr_min, pct_start : optional
        Schedule options; ``total_steps`` is ``epochs × ⌈n / batch_size⌉`` (or ``max_steps`` if fewer);
        ``warmup_steps`` may be a share of it, e.g. ``"1%"``.
    batch_size : int or "full", default 128
        Mini-batch size B, clipped to the number of samples; ``"full"`` is full-batch descent.
    epochs : int, default 5;  max_steps, time_budget : optional
        Bounds on the run (``epochs`` applies alone when it is not None).
    eps : float, optional
        Stop when ‖∇L(θ)‖ over the training set is below ε.
    patience : int, optional;  val_split : float, optional
        Early stopping on the loss of a held-out fraction ``val_split`` of the training data
        (chosen as ``steepest train --val-split`` chooses it), keeping the best θ.
    seed : int or None, default 0
        Seeds the initial θ, the shuffles and the validation split (an integer in 0 … 2**63 − 1). None,
        as scikit-learn's ``random_state=None``: each fit draws a fresh seed, kept as ``seed_`` (and in
        :meth:`save`'s file), so that the run can be repeated with ``seed=est.seed_``. A NumPy
        ``Generator`` or ``RandomState`` is not taken: give ``int(rng.integers(2**63))``.
    threads : int, optional
        BLAS threads while fitting and predicting (1 … 1024).
    kernels : {"auto", "numba", "numpy"}, default "auto"
        How each step's element-wise work runs (:mod:`steepest.fused`), as ``steepest train --kernels``.
    eval_every : int or str, optional
        Evaluate every this many steps, or every share of the run such as ``"5%"`` (default: each epoch's
        end; every 10 steps for full batch), as ``steepest train --eval-every``; patience counts evaluations.

    Attributes
    ----------
    classes_ : ndarray (k,) — the labels, any type ``numpy.unique`` sorts (strings too)
    n_features_in_ : int;  feature_names_in_ : ndarray of str (only when X had column names)
    net_ : steepest.MLP;  theta_ : ndarray (p,) — the network and its parameter vector θ
    coefs_, intercepts_ : lists of views ``W_l (n_{l-1}, n_l)`` and ``b_l (n_l,)`` into ``theta_`` (a maxout
        layer: ``pieces·n_l`` columns, each unit's pieces side by side)
    loss_curve_ : list of float — the training loss of each epoch (mean over its batches)
    validation_scores_ : list of float — validation accuracy per epoch (with ``val_split``)
    history_ : steepest.History — everything recorded, step by step and epoch by epoch
    n_iter_ : int — epochs run;  t_ : int — training samples seen;  stop_reason_ : str
    seed_ : int — the seed the fit used: ``seed``, or the one drawn when ``seed`` is None

    Every parameter is checked when fitting, against the values ``steepest train`` takes for the option of
    the same name (:data:`PARAM_KINDS`): a wrong type or value is a :class:`~steepest.errors.ConfigError`
    that names the parameter and what it takes. Inputs are checked as scikit-learn checks them (finite,
    numeric), and also against the network's precision: a value that ``dtype`` cannot hold once multiplied
    by ``input_scale``, or a row whose outputs overflow, is a :class:`~steepest.errors.DataError`.
    """

    def __init__(self, hidden=(128, 64), activation="relu", pieces=None, init="he", bias="zero", dtype="float32",
                 input_scale=1.0, l2=0.0, dropout=None, max_norm=None, label_smoothing=None, standardize=None,
                 optimizer="momentum", lr=0.05, momentum=None, beta1=None, beta2=None, weight_decay=None,
                 clip_norm=None, schedule="constant", step_size=None, gamma=None, warmup_steps=None,
                 lr_min=None, pct_start=None, batch_size=128, epochs=5, max_steps=None, time_budget=None,
                 eps=None, patience=None, val_split=None, seed=0, threads=None, eval_every=None, kernels="auto"):
        self.hidden = hidden
        self.activation = activation
        self.pieces = pieces
        self.init = init
        self.bias = bias
        self.dtype = dtype
        self.input_scale = input_scale
        self.l2 = l2
        self.dropout = dropout
        self.max_norm = max_norm
        self.label_smoothing = label_smoothing
        self.standardize = standardize
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.beta1 = beta1
        self.beta2 = beta2
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.eval_every = eval_every
        self.schedule = schedule
        self.step_size = step_size
        self.gamma = gamma
        self.warmup_steps = warmup_steps
        self.lr_min = lr_min
        self.pct_start = pct_start
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_steps = max_steps
        self.time_budget = time_budget
        self.eps = eps
        self.patience = patience
        self.val_split = val_split
        self.seed = seed
        self.threads = threads
        self.kernels = kernels

    # ----------------------------------------------------------------- checks and pieces
    def _check_params(self):
        """Each parameter against its kind (:data:`PARAM_KINDS`, those of ``steepest train``), then the ones
        that go together; returns the hidden widths and the activation(s) as :class:`~steepest.network.MLP`
        takes them."""
        defaults = {k: p.default for k, p in inspect.signature(MLPClassifier.__init__).parameters.items()}
        _check_param("hidden", self.hidden, defaults["hidden"], defaults["hidden"])
        hidden = [int(h) for h in ([self.hidden] if _whole(self.hidden) else self.hidden)]
        for name in PARAM_KINDS:
            example = [0.2] + [0.5] * len(hidden) if name == "dropout" else \
                EXAMPLES[name] if defaults[name] is None else defaults[name]
            _check_param(name, getattr(self, name), defaults[name], example)
        acts = [self.activation] if isinstance(self.activation, str) else list(self.activation)
        if len(acts) > 1 and len(acts) != len(hidden):
            raise ConfigError(f"activation lists {len(acts)} names for {len(hidden)} hidden layers; give one name, "
                              "or one per hidden layer")
        if self.pieces is not None and not hidden:
            raise ConfigError(f"pieces={self.pieces!r} is for maxout layers, and hidden=() gives none; leave pieces None")
        if self.pieces is not None and "maxout" not in acts:
            raise ConfigError(f"pieces={self.pieces!r} is for maxout layers; set activation='maxout' or leave pieces None")
        if self.dropout is not None and len(self.dropout) != len(hidden) + 1:
            raise ConfigError(f"dropout lists {len(self.dropout)} rate(s) for the input and {len(hidden)} hidden "
                              f"layer(s); give {len(hidden) + 1}, e.g. dropout={[0.2] + [0.5] * len(hidden)}")
        missing = [n for n in SCHEDULE_PARAMS if n in SCHEDULE_OPTIONS[self.schedule][0] and getattr(self, n) is None]
        if missing:
            raise ConfigError(f"schedule {self.schedule} needs {' and '.join(missing)}; give e.g. "
                              + ", ".join(f"{n}={EXAMPLES[n]!r}" for n in missing))
        if self.patience is not None and self.val_split is None:
            raise ConfigError("patience needs a validation set; set val_split, e.g. val_split=0.1")
        for names, accepts, what in ((OPTIMIZER_PARAMS, OPTIMIZER_OPTIONS[self.optimizer], f"optimizer {self.optimizer}"),
                                     (SCHEDULE_PARAMS, sum(SCHEDULE_OPTIONS[self.schedule], ()), f"schedule {self.schedule}")):
            for name in names:
                if getattr(self, name) is not None and name not in accepts:
                    raise ConfigError(f"{name} does not apply to {what}; leave it None or choose one that uses it")
        return hidden, acts[0] if len(acts) == 1 else acts

    def _threads(self):
        if self.threads is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=int(self.threads), user_api="blas")

    def _validate(self, X, y="no_validation", reset=True):
        """scikit-learn's validation: dense, 2-D, finite, numeric; feature names and counts kept."""
        out = validate_data(self, X, y, reset=reset, dtype="numeric")
        X, y = (out, None) if isinstance(y, str) and y == "no_validation" else out
        if X.dtype.kind not in "iuf":  # bool, …: the network takes numbers
            X = X.astype(self.dtype)
        net = getattr(self, "net_", None) if not reset else None  # fitted: the network's own precision
        _check_magnitude(X, net.dtype if net else np.dtype(self.dtype), net.input_scale if net else self.input_scale)
        return X if y is None else (X, y)

    def _encode(self, y):
        """Labels → indices into ``classes_``; a label never seen is an error that names it."""
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        bad = self.classes_[idx] != y
        if np.any(bad):
            raise DataError(f"label {y[np.argmax(bad)]!r} is not one of the classes {self.classes_.tolist()}; "
                            "pass every label in classes= on the first partial_fit")
        return idx.astype(np.int64)

    def _split(self, X, y):
        """``(X, y, val)``: hold out ``val_split`` as ``steepest train --val-split`` does (seeded)."""
        if not self.val_split:
            return X, y, None
        from .batches import holdout

        ti, vi = holdout(len(y), self.val_split, self.seed_, len(self.classes_), "val_split")
        return X[ti], y[ti], (X[vi], y[vi])

    def _pieces(self, n):
        """Optimizer, learning-rate schedule and batch size for ``n`` training rows."""
        from .loop import steps_per_epoch
        from .optim import make_optimizer
        from .schedules import make_schedule, run_length, share_steps

        B = None if self.batch_size == "full" else min(int(self.batch_size), n)
        opt = make_optimizer(self.optimizer, **{k: getattr(self, k) for k in OPTIMIZER_PARAMS
                                                if getattr(self, k) is not None})
        total = run_length(self.epochs, self.max_steps, steps_per_epoch(n, B))
        kw = {k: getattr(self, k) for k in SCHEDULE_PARAMS if getattr(self, k) is not None}
        if "warmup_steps" in kw:  # a number of steps, or a share of the run such as "1%" (as a recipe gives it)
            kw["warmup_steps"] = share_steps(kw["warmup_steps"], total, "warmup_steps",
                                             within=self.schedule == "cosine")
        schedule = make_schedule(self.schedule, self.lr, total_steps=total, **kw)
        return opt, schedule, B, share_steps(self.eval_every, total, "eval_every", least=1)

    # ----------------------------------------------------------------- fitting
    def fit(self, X, y):
        """Train from a fresh θ on ``X (n, d)``, ``y (n,)``; returns self."""
        shape = self._check_params()
        X, y = self._validate(X, y, reset=True)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        self._start(X, *shape)
        self._trained_by = "fit"
        return self._run(X, self._encode(y), epochs=self.epochs, max_steps=self.max_steps,
                         time_budget=self.time_budget, split=True)

    def partial_fit(self, X, y, classes=None):
        """One epoch on ``X, y``, continuing θ and the optimizer's state; ``classes`` on the first call."""
        first = not hasattr(self, "classes_")
        shape = self._check_params() if first else None
        X, y = self._validate(X, y, reset=first)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ConfigError("the first partial_fit needs classes=: every label the data can have")
            self.classes_ = np.unique(np.asarray(classes))
            self._start(X, *shape)
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ConfigError(f"classes={list(classes)!r} differs from the first partial_fit's "
                              f"{self.classes_.tolist()}")
        self._trained_by = "partial_fit"  # a run that save() records but `steepest explain` cannot repeat
        return self._run(X, self._encode(y), epochs=(self._state.epoch if self._state else 0) + 1, max_steps=None,
                         time_budget=None, split=False)

    def _start(self, X, hidden, activation):
        from .network import MLP

        # seed None: scikit-learn's random_state=None, fresh randomness; the seed drawn is kept, so that
        # save() records it and the run can be repeated
        self.seed_ = int(np.random.default_rng().integers(2**63)) if self.seed is None else int(self.seed)
        if len(self.classes_) < 2:
            raise DataError(f"the classifier needs at least 2 classes to learn, got 1 class "
                            f"({self.classes_.tolist()})")
        reg = {"dropout": self.dropout, "max_norm": self.max_norm, "label_smoothing": self.label_smoothing or 0.0}
        if self.standardize:  # the statistics of the rows fit trains on, the validation split held out
            from .network import standardisation

            rows = self._split(X, np.zeros(len(X)))[0]
            reg["input_mean"], reg["input_std"] = standardisation(rows, self.input_scale)
        self.net_ = MLP([X.shape[1], *hidden, len(self.classes_)], activation=activation, pieces=self.pieces,
                        dtype=self.dtype,
                        input_scale=self.input_scale, l2=self.l2, **reg)
        self.theta_ = self.net_.init(self.seed_, scheme=self.init, bias=self.bias)
        self._state = None

    def _run(self, X, y, epochs, max_steps, time_budget, split):
        from .loop import train
        from .records import default_eval_every

        X, y, val = self._split(X, y) if split else (X, y, None)
        opt, schedule, B, every = self._pieces(len(y))
        with self._threads():
            result = train(self.net_, self.theta_, X, y, optimizer=opt, lr=schedule, batch_size=B,
                           epochs=epochs, max_steps=max_steps, time_budget=time_budget, eps=self.eps,
                           patience=self.patience if split else None, val=val, seed=self.seed_,
                           clip_norm=self.clip_norm, monitor=False, state=self._state,
                           eval_every=default_eval_every(B, every), kernels=self.kernels)
        self._state = result.state
        self.theta_ = result.theta
        self.history_ = result.history
        self.stop_reason_ = result.stop_reason
        self.n_iter_ = result.state.epoch
        self.t_ = result.state.samples
        self.loss_curve_ = [e["train_loss"] for e in result.history.epochs]
        if val is not None:
            self.validation_scores_ = [e["val_acc"] for e in result.history.epochs]
        if result.stop_reason == "diverged":
            import warnings

            warnings.warn(result.stop_message, RuntimeWarning, stacklevel=3)
        return self

    # ----------------------------------------------------------------- predicting
    def _logits(self, X):
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        # overflow inside the network (inputs that fit its precision, products that do not) is refused
        # below with the row it comes from, rather than warned about by NumPy and returned as NaN
        with self._threads(), np.errstate(over="ignore", invalid="ignore"):
            Z = self.net_.logits(self.theta_, X)
        _check_finite_logits(Z, X, self.net_, self.theta_)
        return Z

    def predict_proba(self, X):
        """``softmax(z_L)`` per row, shape (n, k), columns in the order of ``classes_``."""
        from .losses import softmax

        return softmax(self._logits(X))

    def predict_log_proba(self, X):
        """``log softmax(z_L) = z_L − log Σ_j exp z_Lj``, computed from the logits (no log of 0)."""
        Z = self._logits(X)
        Z -= Z.max(axis=1, keepdims=True)
        Z -= np.log(np.exp(Z).sum(axis=1, keepdims=True))
        return Z

    def predict(self, X):
        """The label of the largest logit of each row, from ``classes_``."""
        index = self._logits(X).argmax(axis=1)
        return self.classes_[index]

    @property
    def coefs_(self):
        check_is_fitted(self)
        return [W for W, _ in self.net_.unpack(self.theta_)]

    @property
    def intercepts_(self):
        check_is_fitted(self)
        return [b for _, b in self.net_.unpack(self.theta_)]

    def __sklearn_is_fitted__(self):
        return hasattr(self, "theta_")

    # ----------------------------------------------------------------- files and export
    def save(self, path):
        """Write the fitted estimator to a steepest model file (safetensors + JSON; no pickle)."""
        from ._text import printable
        from .io import save_model

        check_is_fitted(self)
        meta = {"sklearn": {"classes": _encode_classes(self.classes_), "classes_dtype": self.classes_.dtype.kind,
                            "params": self.get_params(),
                            "feature_names_in": getattr(self, "feature_names_in_", None),
                            "loss_curve": self.loss_curve_, "n_iter": self.n_iter_, "t": self.t_,
                            "stop_reason": self.stop_reason_,
                            "trained_by": getattr(self, "_trained_by", None)},
                # the recipe in the form `steepest train` writes it, which explain and landscape read
                "training": {**self.get_params(), "seed": self.seed_},
                "dataset": {"name": None, "n_classes": len(self.classes_),
                            # names to print: a label's control characters written as escapes
                            "class_names": [printable(str(c)) for c in self.classes_.tolist()]},
                "seed": self.seed_}
        return save_model(path, self.net_, self.theta_, meta)

    def to_onnx(self, dtype=None):
        """The fitted network as an ONNX model (:func:`steepest.onnx.to_onnx`); ``class`` holds labels."""
        from .onnx import to_onnx as export

        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        return export(self.net_, self.theta_, labels=self.classes_, dtype=dtype,
                      metadata={"feature_names": None if names is None else names.tolist()})


# ----------------------------------------------------------------- checking one parameter
def _whole(v) -> bool:
    """An integer; a bool is one to Python, but never a count or a seed here."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _real(v) -> bool:
    """A finite real number (not a bool, not a string of digits)."""
    return _whole(v) or (isinstance(v, (float, np.floating)) and math.isfinite(v))


def _listed(v) -> bool:
    """What a parameter that takes several values may be given as."""
    return isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim == 1)


def _steps(v, least, hi) -> bool:
    """A number of steps in ``least … hi``, or a share of the run ``"P%"`` (0 < P ≤ 100; below 100 for a
    warm-up, which must leave some of the run)."""
    from .schedules import share_percent

    if not isinstance(v, str):
        return _whole(v) and least <= v <= hi
    try:
        p = share_percent(v)
    except ConfigError:
        return False
    return p is not None and (least > 0 or p < 100)


#: kind → (does value v, at most hi, belong to it; what the kind takes, for the message)
_KINDS = {
    "positive": (lambda v, hi: _real(v) and 0 < v <= hi, "a number > 0"),
    "nonneg": (lambda v, hi: _real(v) and 0 <= v <= hi, "a number >= 0"),
    "fraction": (lambda v, hi: _real(v) and 0 < v < 1, "a fraction between 0 and 1 (exclusive)"),
    "smoothing": (lambda v, hi: _real(v) and 0 <= v < 1, "a number in [0, 1)"),
    "decay": (lambda v, hi: _real(v) and 0 <= v < 1, "a number in [0, 1)"),
    "posint": (lambda v, hi: _whole(v) and 1 <= v <= hi, "an integer >= 1"),
    "pieces": (lambda v, hi: _whole(v) and 2 <= v <= hi, "a whole number of linear pieces from 2"),
    "seed": (lambda v, hi: _whole(v) and 0 <= v < 2**63,
             "an integer in 0 … 2**63 − 1, or None (fresh randomness at each fit)"),
    "batch": (lambda v, hi: (isinstance(v, str) and v == "full") or (_whole(v) and 1 <= v <= hi),
              "a positive integer or 'full'"),
    "flag": (lambda v, hi: isinstance(v, (bool, np.bool_)), "True or False (None: False)"),
    "possteps": (lambda v, hi: _steps(v, 1, hi), 'a number of steps >= 1, or a share of the run such as "5%"'),
    "nonnegsteps": (lambda v, hi: _steps(v, 0, hi),
                    'a number of steps >= 0, or a share of the run below 100% such as "1%"'),
    "hidden": (lambda v, hi: _widths(v), f"positive layer widths: an integer or a list of them, at most "
               f"{MAX_LAYERS} layers of at most {MAX_WIDTH:,} units"),
    "activation": (lambda v, hi: _names(v), f"one of {', '.join(ACTIVATIONS)} (or a list, one per hidden layer)"),
    "rates": (lambda v, hi: _listed(v) and all(_real(p) and 0 <= p < 1 for p in v),
              "a list of rates in [0, 1), one for the input and one per hidden layer "
              "(as steepest train --dropout 0.2 0.5 0.5)"),
}


def _widths(v) -> bool:
    """Hidden layer widths: one integer, or a list of at most MAX_LAYERS (none: no hidden layer)."""
    widths = [v] if _whole(v) else list(v) if _listed(v) else None
    return widths is not None and len(widths) <= MAX_LAYERS and all(_whole(h) and 1 <= h <= MAX_WIDTH
                                                                    for h in widths)


def _names(v) -> bool:
    """Activation names: one for all hidden layers, or a non-empty list."""
    names = [v] if isinstance(v, str) else list(v) if _listed(v) else []
    return len(names) > 0 and all(isinstance(a, str) and a in ACTIVATIONS for a in names)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _check_param(name, value, default, example):
    """Raise a :class:`ConfigError` that names parameter ``name`` and what it takes, unless ``value`` is of
    its kind (:data:`PARAM_KINDS`); ``example`` is a value to suggest instead."""
    if value is None and (default is None or name in NULLABLE):
        return
    kind, hi = PARAM_KINDS[name]
    if kind == "choice":
        if not (isinstance(value, str) and value in CHOICES[name]):
            raise ConfigError(f"{name} must be one of {', '.join(CHOICES[name])}, got {_show(value)}; "
                              f"give e.g. {name}={default!r}")
        return
    test, want = _KINDS[kind]
    if not test(value, math.inf if hi is None else hi):
        bound = "" if hi is None or kind == "hidden" else f" (at most {hi:,})" if isinstance(hi, int) \
            else f" (at most {hi:g})"
        advice = "from a numpy Generator rng, seed=int(rng.integers(2**63)); " if kind == "seed" else ""
        raise ConfigError(f"{name} must be {want}{bound}, got {_show(value)}; {advice}give e.g. {name}={example!r}")


def _check_magnitude(X, dtype, input_scale):
    """Refuse finite inputs that the network's precision cannot hold: ``X · input_scale`` beyond the largest
    float of ``dtype`` becomes ±inf in the first layer, then NaN, with only NumPy's warnings to say so."""
    if X.dtype.kind != "f" or X.size == 0:
        return
    limit = float(np.finfo(dtype).max)
    if max(float(X.max()), -float(X.min())) * input_scale > limit:
        r, c = np.unravel_index(np.argmax(np.abs(X)), X.shape)  # a copy of X, on the error path only
        raise DataError(f"X holds {X[r, c]:g} (row {r}, column {c}): too large for the network's {np.dtype(dtype)} "
                        f"precision (X × input_scale must stay within ±{limit:.3g}); scale the inputs down, "
                        "e.g. with a StandardScaler, or use dtype='float64'")


def _check_finite_logits(Z, X, net, theta):
    """Refuse logits that overflowed to ±inf or NaN inside the network, naming the first row."""
    bad = ~np.isfinite(Z).all(axis=1)
    if not bad.any():
        return
    if not np.isfinite(theta).all():
        raise DataError("the fitted θ holds non-finite values, so every output is NaN; fit again, e.g. with a "
                        "smaller lr")
    r = int(np.argmax(bad))
    raise DataError(f"row {r} of X (largest |x| {float(np.abs(X[r]).max()):g}) overflows the network's "
                    f"{net.dtype} precision: its outputs are not finite numbers; scale the inputs down, e.g. with "
                    "a StandardScaler, or use dtype='float64'")


def _encode_classes(classes):
    values = classes.tolist()
    if not all(isinstance(v, (bool, int, float, str)) for v in values):
        raise ConfigError(f"classes of type {type(values[0]).__name__} cannot be stored in a model file; "
                          "use integer, float, boolean or string labels")
    return values


def load(path) -> MLPClassifier:
    """A fitted :class:`MLPClassifier` from a model file (:meth:`MLPClassifier.save` or ``steepest train``).

    A file written by ``steepest train`` gives ``classes_`` 0 … k − 1 and the training options it
    records as parameters.
    """
    from .io import load_model

    net, theta, meta = load_model(path)
    sk = meta.get("sklearn") or {}
    names = set(MLPClassifier().get_params())
    # the options it was trained with: a model file's "training", a checkpoint's "config"
    params = sk.get("params") or meta.get("training") or meta.get("config") or {}
    params = {k: v for k, v in params.items() if k in names}
    for key in ("hidden", "activation"):
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    if not sk.get("params"):  # a file of steepest train: the network's own shape and training-time parts,
        acts = tuple(net.activations)  # whatever its metadata says, so that a refit builds this network
        params |= {"hidden": tuple(net.sizes[1:-1]), "dropout": list(net.dropout) if net.dropout else None,
                   "max_norm": net.max_norm, "label_smoothing": net.label_smoothing or None, "l2": net.l2,
                   "pieces": net.pieces}
        if acts:  # (no hidden layer: no activation to take)
            params["activation"] = acts[0] if len(set(acts)) == 1 else acts
    est = MLPClassifier(**{**params, "input_scale": net.input_scale, "dtype": str(net.dtype)})
    if sk.get("params"):  # the estimator's own file: its parameters must describe the network it holds
        _check_layout(path, est, net)
    classes = sk.get("classes", list(range(net.sizes[-1])))
    if not isinstance(classes, list) or len(classes) != net.sizes[-1]:
        raise ModelFileError(f"{path}: its classes do not match the network's {net.sizes[-1]} outputs; "
                             "the file is corrupt")
    est.classes_ = np.array(classes, dtype=object if sk.get("classes_dtype") == "O" else None)
    est.n_features_in_ = net.sizes[0]
    if sk.get("feature_names_in") is not None:
        est.feature_names_in_ = np.array(sk["feature_names_in"], dtype=object)
    est.net_, est.theta_, est._state = net, theta, None
    est.seed_ = meta["seed"] if meta.get("seed") is not None else params.get("seed") or 0
    est._trained_by = sk.get("trained_by")
    est.loss_curve_ = sk.get("loss_curve") or []
    est.n_iter_ = sk.get("n_iter", (meta.get("metrics") or {}).get("epochs", 0))
    est.t_ = sk.get("t", (meta.get("metrics") or {}).get("samples", 0))
    est.stop_reason_ = sk.get("stop_reason", (meta.get("metrics") or {}).get("stop_reason"))
    return est


def _check_layout(path, est, net) -> None:
    """A ModelFileError unless ``est``'s hidden, activation and pieces build ``net``'s layers (MLP's own rules
    fill in the defaults): get_params() would describe another network, and a refit would train it."""
    from .network import MLP

    try:
        hidden = [est.hidden] if _whole(est.hidden) else list(est.hidden)
        activation = est.activation if isinstance(est.activation, str) else list(est.activation)
        layout = MLP([net.sizes[0], *hidden, net.sizes[-1]], activation=activation, pieces=est.pieces)
        same = (layout.sizes, tuple(layout.activations), layout.pieces) == \
            (net.sizes, tuple(net.activations), net.pieces)
    except (ConfigError, TypeError, ValueError):  # (parameters that build no network at all)
        same = False
    if not same:
        raise ModelFileError(f"{path}: its estimator parameters (hidden={est.hidden!r}, activation={est.activation!r}, "
                             f"pieces={est.pieces!r}) do not describe its network ({net.architecture}); the file "
                             "is corrupt")


def to_onnx(self, dtype=None):
        """The fitted network as an ONNX model (:func:`steepest.onnx.to_onnx`); ``class`` holds labels."""
        from .onnx import to_onnx as export

        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        return export(self.net_, self.theta_, labels=self.classes_, dtype=dtype,
                      metadata={"feature_names": None if names is None else names.tolist()})


# ----------------------------------------------------------------- checking one parameter
def _whole(v) -> bool:
    """An integer; a bool is one to Python, but never a count or a seed here."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _real(v) -> bool:
    """A finite real number (not a bool, not a string of digits)."""
    return _whole(v) or (isinstance(v, (float, np.floating)) and math.isfinite(v))


def _listed(v) -> bool:
    """What a parameter that takes several values may be given as."""
    return isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim == 1)


def _steps(v, least, hi) -> bool:
    """A number of steps in ``least … hi``, or a share of the run ``"P%"`` (0 < P ≤ 100; below 100 for a
    warm-up, which must leave some of the run)."""
    from .schedules import share_percent

    if not isinstance(v, str):
        return _whole(v) and least <= v <= hi
    try:
        p = share_percent(v)
    except ConfigError:
        return False
    return p is not None and (least > 0 or p < 100)


#: kind → (does value v, at most hi, belong to it; what the kind takes, for the message)
_KINDS = {
    "positive": (lambda v, hi: _real(v) and 0 < v <= hi, "a number > 0"),
    "nonneg": (lambda v, hi: _real(v) and 0 <= v <= hi, "a number >= 0"),
    "fraction": (lambda v, hi: _real(v) and 0 < v < 1, "a fraction between 0 and 1 (exclusive)"),
    "smoothing": (lambda v, hi: _real(v) and 0 <= v < 1, "a number in [0, 1)"),
    "decay": (lambda v, hi: _real(v) and 0 <= v < 1, "a number in [0, 1)"),
    "posint": (lambda v, hi: _whole(v) and 1 <= v <= hi, "an integer >= 1"),
    "pieces": (lambda v, hi: _whole(v) and 2 <= v <= hi, "a whole number of linear pieces from 2"),
    "seed": (lambda v, hi: _whole(v) and 0 <= v < 2**63,
             "an integer in 0 … 2**63 − 1, or None (fresh randomness at each fit)"),
    "batch": (lambda v, hi: (isinstance(v, str) and v == "full") or (_whole(v) and 1 <= v <= hi),
              "a positive integer or 'full'"),
    "flag": (lambda v, hi: isinstance(v, (bool, np.bool_)), "True or False (None: False)"),
    "possteps": (lambda v, hi: _steps(v, 1, hi), 'a number of steps >= 1, or a share of the run such as "5%"'),
    "nonnegsteps": (lambda v, hi: _steps(v, 0, hi),
                    'a number of steps >= 0, or a share of the run below 100% such as "1%"'),
    "hidden": (lambda v, hi: _widths(v), f"positive layer widths: an integer or a list of them, at most "
               f"{MAX_LAYERS} layers of at most {MAX_WIDTH:,} units"),
    "activation": (lambda v, hi: _names(v), f"one of {', '.join(ACTIVATIONS)} (or a list, one per hidden layer)"),
    "rates": (lambda v, hi: _listed(v) and all(_real(p) and 0 <= p < 1 for p in v),
              "a list of rates in [0, 1), one for the input and one per hidden layer "
              "(as steepest train --dropout 0.2 0.5 0.5)"),
}


def _widths(v) -> bool:
    """Hidden layer widths: one integer, or a list of at most MAX_LAYERS (none: no hidden layer)."""
    widths = [v] if _whole(v) else list(v) if _listed(v) else None
    return widths is not None and len(widths) <= MAX_LAYERS and all(_whole(h) and 1 <= h <= MAX_WIDTH
                                                                    for h in widths)


def _names(v) -> bool:
    """Activation names: one for all hidden layers, or a non-empty list."""
    names = [v] if isinstance(v, str) else list(v) if _listed(v) else []
    return len(names) > 0 and all(isinstance(a, str) and a in ACTIVATIONS for a in names)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _check_param(name, value, default, example):
    """Raise a :class:`ConfigError` that names parameter ``name`` and what it takes, unless ``value`` is of
    its kind (:data:`PARAM_KINDS`); ``example`` is a value to suggest instead."""
    if value is None and (default is None or name in NULLABLE):
        return
    kind, hi = PARAM_KINDS[name]
    if kind == "choice":
        if not (isinstance(value, str) and value in CHOICES[name]):
            raise ConfigError(f"{name} must be one of {', '.join(CHOICES[name])}, got {_show(value)}; "
                              f"give e.g. {name}={default!r}")
        return
    test, want = _KINDS[kind]
    if not test(value, math.inf if hi is None else hi):
        bound = "" if hi is None or kind == "hidden" else f" (at most {hi:,})" if isinstance(hi, int) \
            else f" (at most {hi:g})"
        advice = "from a numpy Generator rng, seed=int(rng.integers(2**63)); " if kind == "seed" else ""
        raise ConfigError(f"{name} must be {want}{bound}, got {_show(value)}; {advice}give e.g. {name}={example!r}")


def _check_magnitude(X, dtype, input_scale):
    """Refuse finite inputs that the network's precision cannot hold: ``X · input_scale`` beyond the largest
    float of ``dtype`` becomes ±inf in the first layer, then NaN, with only NumPy's warnings to say so."""
    if X.dtype.kind != "f" or X.size == 0:
        return
    limit = float(np.finfo(dtype).max)
    if max(float(X.max()), -float(X.min())) * input_scale > limit:
        r, c = np.unravel_index(np.argmax(np.abs(X)), X.shape)  # a copy of X, on the error path only
        raise DataError(f"X holds {X[r, c]:g} (row {r}, column {c}): too large for the network's {np.dtype(dtype)} "
                        f"precision (X × input_scale must stay within ±{limit:.3g}); scale the inputs down, "
                        "e.g. with a StandardScaler, or use dtype='float64'")


def _check_finite_logits(Z, X, net, theta):
    """Refuse logits that overflowed to ±inf or NaN inside the network, naming the first row."""
    bad = ~np.isfinite(Z).all(axis=1)
    if not bad.any():
        return
    if not np.isfinite(theta).all():
        raise DataError("the fitted θ holds non-finite values, so every output is NaN; fit again, e.g. with a "
                        "smaller lr")
    r = int(np.argmax(bad))
    raise DataError(f"row {r} of X (largest |x| {float(np.abs(X[r]).max()):g}) overflows the network's "
                    f"{net.dtype} precision: its outputs are not finite numbers; scale the inputs down, e.g. with "
                    "a StandardScaler, or use dtype='float64'")


def _encode_classes(classes):
    values = classes.tolist()
    if not all(isinstance(v, (bool, int, float, str)) for v in values):
        raise ConfigError(f"classes of type {type(values[0]).__name__} cannot be stored in a model file; "
                          "use integer, float, boolean or string labels")
    return values


def load(path) -> MLPClassifier:
    """A fitted :class:`MLPClassifier` from a model file (:meth:`MLPClassifier.save` or ``steepest train``).

    A file written by ``steepest train`` gives ``classes_`` 0 … k − 1 and the training options it
    records as parameters.
    """
    from .io import load_model

    net, theta, meta = load_model(path)
    sk = meta.get("sklearn") or {}
    names = set(MLPClassifier().get_params())
    # the options it was trained with: a model file's "training", a checkpoint's "config"
    params = sk.get("params") or meta.get("training") or meta.get("config") or {}
    params = {k: v for k, v in params.items() if k in names}
    for key in ("hidden", "activation"):
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    if not sk.get("params"):  # a file of steepest train: the network's own shape and training-time parts,
        acts = tuple(net.activations)  # whatever its metadata says, so that a refit builds this network
        params |= {"hidden": tuple(net.sizes[1:-1]), "dropout": list(net.dropout) if net.dropout else None,
                   "max_norm": net.max_norm, "label_smoothing": net.label_smoothing or None, "l2": net.l2,
                   "pieces": net.pieces}
        if acts:  # (no hidden layer: no activation to take)
            params["activation"] = acts[0] if len(set(acts)) == 1 else acts
    est = MLPClassifier(**{**params, "input_scale": net.input_scale, "dtype": str(net.dtype)})
    if sk.get("params"):  # the estimator's own file: its parameters must describe the network it holds
        _check_layout(path, est, net)
    classes = sk.get("classes", list(range(net.sizes[-1])))
    if not isinstance(classes, list) or len(classes) != net.sizes[-1]:
        raise ModelFileError(f"{path}: its classes do not match the network's {net.sizes[-1]} outputs; "
                             "the file is corrupt")
    est.classes_ = np.array(classes, dtype=object if sk.get("classes_dtype") == "O" else None)
    est.n_features_in_ = net.sizes[0]
    if sk.get("feature_names_in") is not None:
        est.feature_names_in_ = np.array(sk["feature_names_in"], dtype=object)
    est.net_, est.theta_, est._state = net, theta, None
    est.seed_ = meta["seed"] if meta.get("seed") is not None else params.get("seed") or 0
    est._trained_by = sk.get("trained_by")
    est.loss_curve_ = sk.get("loss_curve") or []
    est.n_iter_ = sk.get("n_iter", (meta.get("metrics") or {}).get("epochs", 0))
    est.t_ = sk.get("t", (meta.get("metrics") or {}).get("samples", 0))
    est.stop_reason_ = sk.get("stop_reason", (meta.get("metrics") or {}).get("stop_reason"))
    return est


def _check_shape_params(path, params, net) -> None:
    """A ModelFileError unless ``hidden``, ``activation`` and ``pieces`` in ``params`` build ``net``'s layers:
    get_params() would describe another network, and a refit would train it."""
    hidden, act = params.get("hidden"), params.get("activation", "relu")
    hidden = (hidden,) if isinstance(hidden, int) else hidden
    acts = (act,) * len(hidden or ()) if isinstance(act, str) else act
    pieces = (params.get("pieces") or 2) if acts and "maxout" in acts else None
    if (hidden, acts, pieces) != (tuple(net.sizes[1:-1]), tuple(net.activations), net.pieces):
        raise ModelFileError(f"{path}: its estimator parameters (hidden={hidden!r}, activation={act!r}, "
                             f"pieces={params.get('pieces')!r}) do not describe its network "
                             f"({net.architecture}); the file is corrupt")


def to_onnx(estimator, dtype=None):
    """An ONNX model of a fitted :class:`MLPClassifier`, or of a ``Pipeline`` of a ``StandardScaler``
    (optional) and one: the scaler's ``(x − mean_) / scale_`` is folded into the first layer."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from .onnx import to_onnx as export

    steps = [s for _, s in estimator.steps if s not in (None, "passthrough")] \
        if isinstance(estimator, Pipeline) else [estimator]
    scaler = steps[0] if len(steps) == 2 and isinstance(steps[0], StandardScaler) else None
    clf = steps[-1]
    if not isinstance(clf, MLPClassifier) or len(steps) > 1 + (scaler is not None):
        raise ConfigError("to_onnx exports a steepest MLPClassifier, alone or after one StandardScaler in a "
                          f"Pipeline; got {' → '.join(type(s).__name__ for s in steps)}")
    check_is_fitted(clf)
    mean = getattr(scaler, "mean_", None) if scaler is not None else None
    std = getattr(scaler, "scale_", None) if scaler is not None else None
    return export(clf.net_, clf.theta_, labels=clf.classes_, mean=mean, std=std, dtype=dtype)
