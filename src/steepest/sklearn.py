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


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A multilayer perceptron trained by steepest's gradient descent, as a scikit-learn classifier.

    Parameters (those of ``steepest train``; ``steepest train --help`` says more about each)
    ----------
    hidden : tuple of int, default (128, 64)
        Hidden layer widths; inputs and classes come from the data.
    activation : str or tuple of str, default "relu"
        One of ``relu, leaky_relu, sigmoid, tanh``, for all hidden layers or one per layer.
    init : {"normal", "uniform", "glorot", "he"}, default "he";  bias : {"zero", "random"}
    dtype : {"float32", "float64"}, default "float32"
        Precision of θ and of all computations (and of ``predict_proba``).
    input_scale : float, default 1.0
        Inputs are multiplied by this before the first layer (1/255 for raw pixels, 1/16 for
        digits): what ``steepest train`` takes from the dataset.
    l2 : float, default 0.0
        The loss term ``(λ/2) Σ‖W‖²``.
    dropout : list of float, optional
        Inverted dropout rates of the input and each hidden layer (training only; ``--dropout``).
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
    seed : int, default 0
        Seeds the initial θ, the shuffles and the validation split.
    threads : int, optional
        BLAS threads while fitting and predicting.
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
    coefs_, intercepts_ : lists of views ``W_l (n_{l-1}, n_l)`` and ``b_l (n_l,)`` into ``theta_``
    loss_curve_ : list of float — the training loss of each epoch (mean over its batches)
    validation_scores_ : list of float — validation accuracy per epoch (with ``val_split``)
    history_ : steepest.History — everything recorded, step by step and epoch by epoch
    n_iter_ : int — epochs run;  t_ : int — training samples seen;  stop_reason_ : str
    """

    def __init__(self, hidden=(128, 64), activation="relu", init="he", bias="zero", dtype="float32",
                 input_scale=1.0, l2=0.0, dropout=None, max_norm=None, label_smoothing=None, standardize=None,
                 optimizer="momentum", lr=0.05, momentum=None, beta1=None, beta2=None, weight_decay=None,
                 clip_norm=None, schedule="constant", step_size=None, gamma=None, warmup_steps=None,
                 lr_min=None, pct_start=None, batch_size=128, epochs=5, max_steps=None, time_budget=None,
                 eps=None, patience=None, val_split=None, seed=0, threads=None, eval_every=None, kernels="auto"):
        self.hidden = hidden
        self.activation = activation
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
        """The choices against :mod:`steepest.registry`; numbers are checked where they are used."""
        for name, choices in (("init", INITS), ("bias", BIASES), ("optimizer", OPTIMIZERS),
                              ("schedule", SCHEDULES), ("dtype", ("float32", "float64")), ("kernels", KERNELS)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        acts = [self.activation] if isinstance(self.activation, str) else list(self.activation)
        if not acts or any(a not in ACTIVATIONS for a in acts):
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)} (or one per hidden layer), "
                              f"got {self.activation!r}")
        hidden = (self.hidden,) if isinstance(self.hidden, (int, np.integer)) else tuple(self.hidden)
        if not all(isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h >= 1 for h in hidden):
            raise ConfigError(f"hidden must be positive layer widths, got {self.hidden!r}")
        if self.batch_size != "full" and (isinstance(self.batch_size, bool) or
                                          not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1):
            raise ConfigError(f"batch_size must be a positive integer or 'full', got {self.batch_size!r}")
        if self.patience is not None and self.val_split is None:
            raise ConfigError("patience needs a validation set; set val_split, e.g. val_split=0.1")
        if self.val_split is not None and not 0 < self.val_split < 1:
            raise ConfigError(f"val_split must be a fraction between 0 and 1, got {self.val_split!r}")
        for names, accepts, what in ((OPTIMIZER_PARAMS, OPTIMIZER_OPTIONS[self.optimizer], f"optimizer {self.optimizer}"),
                                     (SCHEDULE_PARAMS, sum(SCHEDULE_OPTIONS[self.schedule], ()), f"schedule {self.schedule}")):
            for name in names:
                if getattr(self, name) is not None and name not in accepts:
                    raise ConfigError(f"{name} does not apply to {what}; leave it None or choose one that uses it")
        return [int(h) for h in hidden], acts[0] if len(acts) == 1 else acts

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
        n = len(y)
        n_val = max(1, round(n * self.val_split))
        if n_val >= n:
            raise ConfigError(f"val_split {self.val_split} leaves no training data out of {n} samples")
        perm = np.random.default_rng([self.seed, 1]).permutation(n)
        vi, ti = np.sort(perm[:n_val]), np.sort(perm[n_val:])
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
        X, y = self._validate(X, y, reset=True)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        self._start(X)
        return self._run(X, self._encode(y), epochs=self.epochs, max_steps=self.max_steps,
                         time_budget=self.time_budget, split=True)

    def partial_fit(self, X, y, classes=None):
        """One epoch on ``X, y``, continuing θ and the optimizer's state; ``classes`` on the first call."""
        first = not hasattr(self, "classes_")
        X, y = self._validate(X, y, reset=first)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ConfigError("the first partial_fit needs classes=: every label the data can have")
            self.classes_ = np.unique(np.asarray(classes))
            self._start(X)
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ConfigError(f"classes={list(classes)!r} differs from the first partial_fit's "
                              f"{self.classes_.tolist()}")
        return self._run(X, self._encode(y), epochs=(self._state.epoch if self._state else 0) + 1, max_steps=None, time_budget=None,
                         split=False)

    def _start(self, X):
        from .network import MLP

        hidden, activation = self._check_params()
        if len(self.classes_) < 2:
            raise DataError(f"the classifier needs at least 2 classes to learn, got 1 class "
                            f"({self.classes_.tolist()})")
        reg = {"dropout": self.dropout, "max_norm": self.max_norm, "label_smoothing": self.label_smoothing or 0.0}
        if self.standardize:  # the statistics of the rows fit trains on, the validation split held out
            from .network import standardisation

            rows = self._split(X, np.zeros(len(X)))[0]
            reg["input_mean"], reg["input_std"] = standardisation(rows, self.input_scale)
        self.net_ = MLP([X.shape[1], *hidden, len(self.classes_)], activation=activation, dtype=self.dtype,
                        input_scale=self.input_scale, l2=self.l2, **reg)
        self.theta_ = self.net_.init(self.seed, scheme=self.init, bias=self.bias)
        self._state = None

    def _run(self, X, y, epochs, max_steps, time_budget, split):
        from .loop import train
        from .records import default_eval_every

        X, y, val = self._split(X, y) if split else (X, y, None)
        opt, schedule, B, every = self._pieces(len(y))
        with self._threads():
            result = train(self.net_, self.theta_, X, y, optimizer=opt, lr=schedule, batch_size=B,
                           epochs=epochs, max_steps=max_steps, time_budget=time_budget, eps=self.eps,
                           patience=self.patience if split else None, val=val, seed=self.seed,
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
        with self._threads():
            return self.net_.logits(self.theta_, X)

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
        from .io import save_model

        check_is_fitted(self)
        meta = {"sklearn": {"classes": _encode_classes(self.classes_), "classes_dtype": self.classes_.dtype.kind,
                            "params": self.get_params(),
                            "feature_names_in": getattr(self, "feature_names_in_", None),
                            "loss_curve": self.loss_curve_, "n_iter": self.n_iter_, "t": self.t_,
                            "stop_reason": self.stop_reason_},
                "dataset": {"name": None, "n_classes": len(self.classes_),
                            "class_names": [str(c) for c in self.classes_.tolist()]},
                "seed": self.seed}
        return save_model(path, self.net_, self.theta_, meta)

    def to_onnx(self, dtype=None):
        """The fitted network as an ONNX model (:func:`steepest.onnx.to_onnx`); ``class`` holds labels."""
        from .onnx import to_onnx as export

        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        return export(self.net_, self.theta_, labels=self.classes_, dtype=dtype,
                      metadata={"feature_names": None if names is None else names.tolist()})


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
                   "max_norm": net.max_norm, "label_smoothing": net.label_smoothing or None, "l2": net.l2}
        if acts:  # (no hidden layer: no activation to take)
            params["activation"] = acts[0] if len(set(acts)) == 1 else acts
    est = MLPClassifier(**{**params, "input_scale": net.input_scale, "dtype": str(net.dtype)})
    classes = sk.get("classes", list(range(net.sizes[-1])))
    if not isinstance(classes, list) or len(classes) != net.sizes[-1]:
        raise ModelFileError(f"{path}: its classes do not match the network's {net.sizes[-1]} outputs; "
                             "the file is corrupt")
    est.classes_ = np.array(classes, dtype=object if sk.get("classes_dtype") == "O" else None)
    est.n_features_in_ = net.sizes[0]
    if sk.get("feature_names_in") is not None:
        est.feature_names_in_ = np.array(sk["feature_names_in"], dtype=object)
    est.net_, est.theta_, est._state = net, theta, None
    est.loss_curve_ = sk.get("loss_curve") or []
    est.n_iter_ = sk.get("n_iter", (meta.get("metrics") or {}).get("epochs", 0))
    est.t_ = sk.get("t", (meta.get("metrics") or {}).get("samples", 0))
    est.stop_reason_ = sk.get("stop_reason", (meta.get("metrics") or {}).get("stop_reason"))
    return est


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
