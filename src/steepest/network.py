"""The multilayer perceptron: layer sizes, the flat parameter vector θ, forward and backward.

Glossary (used throughout steepest)
-----------------------------------
theta (p,)          all parameters in one flat contiguous vector
grad  (p,)          ∇L(θ), same layout as theta
X (n, n_0)          a batch of inputs, batch first;  y (n,) integer labels
W[l] (n_l, n_{l+1}) weights of layer l, a view into theta;  b[l] (n_{l+1},) its bias
Z[l]                pre-activations  A[l-1] @ W[l] + b[l];   A[l] = f(Z[l]) activations, A[0] = X
delta[l]            ∂L/∂Z[l]

Layout of θ: for each layer in order, W (row-major, ``n_in·n_out`` entries) then b (``n_out``).
Each layer therefore occupies one contiguous range of θ, so per-layer norms are slices.

Backprop, as the four equations (Nielsen, ch. 2), for softmax + cross-entropy on the output:

    δ_L     = (softmax(Z_L) − onehot(y)) / n
    δ_l     = (δ_{l+1} W_{l+1}ᵀ) ⊙ f'(Z_l)
    ∂L/∂W_l = A_{l−1}ᵀ δ_l
    ∂L/∂b_l = Σ_batch δ_l

An optional L2 term ``(λ/2) Σ ‖W_l‖²`` adds ``λ W_l`` to each weight gradient (biases are not decayed).

Regularisation that only acts while training (see :mod:`steepest.regularise`): ``dropout`` rates, one for
the input and one per hidden layer, used by the training step, which passes each batch its masks ``M_l``
(entries 0 or 1/(1−p_l): *inverted* dropout, so evaluation uses the network as it is); with masks

    Ã_l = A_l ⊙ M_l   feeds layer l+1,        δ_l = (δ_{l+1} W_{l+1}ᵀ) ⊙ M_l ⊙ f'(Z_l),     ∂L/∂W_{l+1} = Ã_lᵀ δ_{l+1}

``max_norm`` c: after each update every hidden unit's incoming weight vector is kept at ‖W_l[:, j]‖ ≤ c;
``label_smoothing`` ε: the cross-entropy is taken against (1−ε)·onehot(y) + ε/k (:mod:`steepest.losses`).
``input_mean`` μ, ``input_std`` σ (n_0,): a standardisation of the scaled input, A_0 = (X·s − μ) ⊙ 1/σ.

A **maxout** hidden layer (Goodfellow et al. 2013) of n_l units with k ``pieces`` has k·n_l columns in W_l and
b_l, each unit's k pieces side by side, and keeps the largest: ``A_l[:, j] = max_p Z_l[:, j·k + p]``. Its
derivative is 1 for the winning piece and 0 for the others, so the second equation becomes
``δ_l[:, j·k + p] = (δ_{l+1} W_{l+1}ᵀ)[:, j] if p wins unit j, else 0`` (:mod:`steepest.activations`).
Max-norm then bounds each piece's incoming weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import activations as _act
from ._text import short
from .errors import ConfigError, ShapeError
from .init import BIASES, default_scheme, init_layer
from .losses import l2_penalty, softmax_cross_entropy

_TRAINING_ONLY = ("dropout", "max_norm", "label_smoothing")


@dataclass(frozen=True)
class Layer:
    """Where layer ``index`` lives in θ: ``theta[w]`` reshaped to ``shape`` is W, ``theta[b]`` is b."""

    index: int
    n_in: int
    n_out: int      # columns of W: the layer's units times its pieces
    w: slice
    b: slice
    pieces: int = 1  # a maxout layer's pieces per unit; 1 for the element-wise activations and the output

    @property
    def units(self) -> int:
        """The layer's output width (its activations' columns)."""
        return self.n_out // self.pieces

    @property
    def shape(self):
        return (self.n_in, self.n_out)

    @property
    def span(self) -> slice:
        """The contiguous range of θ holding both W and b of this layer."""
        return slice(self.w.start, self.b.stop)


class MLP:
    """A fully connected network with softmax output, its parameters in one flat vector.

    Parameters
    ----------
    sizes : sequence of int
        ``(n_0, n_1, …, n_L)``: inputs, hidden widths, classes. ``(784, 128, 64, 10)`` is the
        canonical two-hidden-layer digit classifier.
    activation : str or sequence of str
        Hidden activation(s): ``relu``, ``leaky_relu``, ``sigmoid``, ``tanh``, ``maxout``; one name for all
        hidden layers or one per hidden layer. The output is always softmax.
    pieces : int, optional
        Linear pieces per maxout unit, k ≥ 2 (default 2); only with a ``maxout`` layer.
    dtype : {"float32", "float64"}
        Precision of θ and of all computations.
    input_scale : float
        Inputs are multiplied by this before the first layer (1/255 for pixels stored as
        uint8), so data can stay compact in memory and be converted one batch at a time.
    l2 : float
        Weight-decay coefficient λ of the loss term ``(λ/2) Σ‖W‖²``.
    dropout : sequence of float, optional
        Drop rates ``p`` for the input and each hidden layer (``len(sizes) − 1`` values, each in [0, 1)),
        applied by :func:`steepest.train` only; ``None``: no dropout.
    max_norm : float, optional
        Bound c on each hidden unit's incoming weight norm, enforced by :func:`steepest.train` after each update.
    label_smoothing : float
        ε in [0, 1): the loss is the cross-entropy against (1−ε)·onehot + ε/k.
    input_mean, input_std : sequence of float, optional
        Standardisation of the scaled input (μ, σ per feature of ``X·input_scale``, σ > 0):
        ``A_0 = (X·input_scale − μ) ⊙ 1/σ`` (:func:`standardisation` computes them).

    Examples
    --------
    >>> net = MLP([4, 5, 3], activation="tanh", dtype="float64")
    >>> theta = net.init(seed=0)
    >>> X, y = np.ones((2, 4)), np.array([0, 2])
    >>> loss, grad = net.loss_and_grad(theta, X, y)
    >>> grad.shape == theta.shape == (net.n_params,)
    True
    """

    def __init__(self, sizes, activation="relu", dtype="float32", input_scale=1.0, l2=0.0, dropout=None,
                 max_norm=None, label_smoothing=0.0, input_mean=None, input_std=None, pieces=None):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ConfigError(f"layer sizes must be at least two positive integers (inputs … classes), got {sizes}")
        if sizes[-1] < 2:
            raise ConfigError(f"the output layer needs at least 2 classes, got {sizes[-1]}")
        n_hidden = len(sizes) - 2
        acts = [activation] * n_hidden if isinstance(activation, str) else list(activation)
        if len(acts) != n_hidden:
            raise ConfigError(f"{len(acts)} activations given for {n_hidden} hidden layers")
        for a in acts:
            if a not in _act.ACTIVATIONS:
                raise ConfigError(f"unknown activation {a!r}; choose one of {', '.join(_act.ACTIVATIONS)}")
        if str(np.dtype(dtype)) not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {dtype!r}")
        if not np.isfinite(input_scale) or input_scale <= 0:
            raise ConfigError(f"input_scale must be a positive number, got {input_scale!r}")
        if not np.isfinite(l2) or l2 < 0:
            raise ConfigError(f"l2 must be ≥ 0, got {l2!r}")
        self.sizes = tuple(sizes)
        self.activations = tuple(acts)
        self.pieces = _pieces(pieces, acts)
        self.dtype = np.dtype(dtype)
        self.input_scale = float(input_scale)
        self.l2 = float(l2)
        self._regularisation(dropout, max_norm, label_smoothing)
        self._standardisation(input_mean, input_std)
        layers, pos = [], 0
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            k = self.pieces if i < n_hidden and acts[i] == "maxout" else 1
            n_out *= k
            w = slice(pos, pos + n_in * n_out)
            b = slice(w.stop, w.stop + n_out)
            layers.append(Layer(i, n_in, n_out, w, b, k))
            pos = b.stop
        self.layers = tuple(layers)
        self.n_params = pos
        self._work = {}  # batch size → preallocated activation/delta buffers

    def _regularisation(self, dropout, max_norm, label_smoothing):
        n = len(self.sizes) - 1
        if dropout is not None:
            dropout = [float(p) for p in dropout]
            if len(dropout) != n or not all(0 <= p < 1 for p in dropout):
                raise ConfigError(f"dropout needs {n} rates in [0, 1) (the input and each hidden layer), "
                                  f"got {dropout}")
            dropout = None if not any(dropout) else tuple(dropout)
        if max_norm is not None and not (np.isfinite(max_norm) and max_norm > 0):
            raise ConfigError(f"max_norm must be a positive number, got {max_norm!r}")
        if not (np.isfinite(label_smoothing) and 0 <= label_smoothing < 1):
            raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.dropout = dropout
        self.max_norm = None if max_norm is None else float(max_norm)
        self.label_smoothing = float(label_smoothing)

    def _standardisation(self, mean, std):
        """μ and σ checked where they are used: in the network's dtype. σ = 1e-300 is > 0 in float64 but
        1/σ is inf in float32, and so is μ = 1e300, or μ/σ beyond the dtype's largest number: every output
        would be NaN. So tiny ≤ σ ≤ max, |μ| ≤ max and |μ|/σ ≤ max, with tiny the dtype's smallest normal."""
        self.input_mean = self.input_std = None
        if mean is None and std is None:
            return
        d = self.sizes[0]
        mean = np.zeros(d) if mean is None else _features("input_mean", mean, d)
        std = np.ones(d) if std is None else _features("input_std", std, d)
        fi = np.finfo(self.dtype)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ratio = mean / std
            checks = (("input_mean[{j}]", mean, np.abs(mean) <= fi.max,
                       f"beyond {self.dtype}'s range (|μ| ≤ {fi.max:.3g})"),
                      ("input_std[{j}]", std, (std >= fi.tiny) & (std <= fi.max),
                       f"outside what {self.dtype} can divide by (σ from {fi.tiny:.3g} to {fi.max:.3g})"),
                      ("input_mean[{j}]/input_std[{j}]", ratio, np.abs(ratio) <= fi.max,
                       f"beyond {self.dtype}'s range (|μ/σ| ≤ {fi.max:.3g})"))
        for name, v, ok, why in checks:
            if not ok.all():
                j = int(np.argmin(ok))
                raise ConfigError(f"{name.format(j=j)} is {v[j]:.6g}, {why}")
        self.input_mean, self.input_std = mean, std
        self._shift = mean.astype(self.dtype)                         # μ, subtracted from X·s
        self._inv = (1.0 / std).astype(self.dtype)                     # then ⊙ 1/σ

    # ----------------------------------------------------------------- description
    @property
    def activation(self) -> str:
        """The hidden activation when all hidden layers share one (else a comma-separated list)."""
        return self.activations[0] if len(set(self.activations)) == 1 else ",".join(self.activations)

    @property
    def architecture(self) -> str:
        """Sizes and activation, as the reports print them: ``784-240-240-10 maxout (5 pieces)``."""
        pieces = f" ({self.pieces} pieces)" if self.pieces else ""
        return f"{'-'.join(map(str, self.sizes))} {self.activation}{pieces}"

    def config(self) -> dict:
        """Plain-value description, enough to rebuild the network: ``MLP(**net.config())``."""
        cfg = {"sizes": list(self.sizes), "activation": list(self.activations),
               "dtype": str(self.dtype), "input_scale": self.input_scale, "l2": self.l2}
        extra = {"pieces": self.pieces, "dropout": list(self.dropout) if self.dropout else None, "max_norm": self.max_norm,
                 "label_smoothing": self.label_smoothing or None,
                 "input_mean": None if self.input_mean is None else self.input_mean.tolist(),
                 "input_std": None if self.input_std is None else self.input_std.tolist()}
        return {**cfg, **{k: v for k, v in extra.items() if v is not None}}  # unchanged when unused

    def astype(self, dtype) -> "MLP":
        """The same architecture in another precision."""
        return MLP(**{**self.config(), "dtype": dtype})

    def __getstate__(self):
        """Pickled without the work buffers: they are scratch, and a copy may come back read-only."""
        return {**self.__dict__, "_work": {}}

    def __repr__(self):
        pieces = f", pieces={self.pieces}" if self.pieces else ""
        return (f"MLP({'-'.join(map(str, self.sizes))}, activation={self.activation!r}{pieces}, "
                f"dtype={str(self.dtype)!r}, params={self.n_params})")

    # ----------------------------------------------------------------- parameters
    def init(self, seed=0, scheme=None, bias="zero", scale=None) -> np.ndarray:
        """Randomise every weight (and, with ``bias="random"``, every bias); return θ.

        Parameters
        ----------
        seed : int or numpy.random.Generator
        scheme : {"normal", "uniform", "glorot", "he"}, optional
            Default: He for ReLU-family activations, Glorot otherwise (see :mod:`steepest.init`).
        bias : {"zero", "random"}
        scale : float, optional
            σ of ``normal`` or half-width of ``uniform``.

        Returns
        -------
        theta : ndarray, shape (n_params,)
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        if bias not in BIASES:
            raise ConfigError(f"bias must be one of {', '.join(BIASES)}, got {bias!r}")
        theta = np.zeros(self.n_params, dtype=self.dtype)
        for layer in self.layers:
            s = scheme or default_scheme(self.activations[min(layer.index, len(self.activations) - 1)]
                                         if self.activations else "relu")
            theta[layer.w] = init_layer(rng, layer.n_in, layer.n_out, s, scale).ravel()
            if bias == "random":
                theta[layer.b] = rng.normal(0.0, 0.01, size=layer.n_out)
        return theta

    def unpack(self, theta: np.ndarray):
        """Views ``[(W_0, b_0), (W_1, b_1), …]`` into ``theta`` (or into a gradient of the same layout).

        Writing into a view writes into θ: this is how backprop fills the flat gradient.
        """
        return [(theta[l.w].reshape(l.shape), theta[l.b]) for l in self.layers]

    def layer_names(self):
        """``["layer1", "layer2", …]``, numbered from the first weight matrix."""
        return [f"layer{l.index + 1}" for l in self.layers]

    def layer_norms(self, grad: np.ndarray) -> np.ndarray:
        """Euclidean norm of each layer's slice of ``grad`` (W and b together), shape (L,)."""
        g = grad.astype(np.float64, copy=False)
        return np.array([np.sqrt(np.dot(g[l.span], g[l.span])) for l in self.layers])

    def check_theta(self, theta: np.ndarray) -> None:
        """Raise :class:`ShapeError` unless θ is a 1-D array of this network's size and dtype."""
        if not isinstance(theta, np.ndarray) or theta.shape != (self.n_params,):
            shape = getattr(theta, "shape", type(theta).__name__)
            raise ShapeError(f"theta must have shape ({self.n_params},) for {self!r}, got {shape}")
        if theta.dtype != self.dtype:
            raise ShapeError(f"theta is {theta.dtype} but the network computes in {self.dtype}; "
                             f"convert with theta.astype({str(self.dtype)!r}) or use net.astype()")

    def check_data(self, X: np.ndarray, y: np.ndarray | None = None) -> None:
        """Raise :class:`ShapeError` unless X is (n, n_0) and y is (n,) labels in 0 … n_L − 1."""
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ShapeError(f"X must have shape (n, {self.sizes[0]}) for this network, got {X.shape}")
        if y is None:
            return
        if y.shape != (X.shape[0],):
            raise ShapeError(f"y must have shape ({X.shape[0]},) to match X, got {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= self.sizes[-1]):
            bad = y[(y < 0) | (y >= self.sizes[-1])][0]
            raise ShapeError(f"label {bad} is out of range: this network has {self.sizes[-1]} classes "
                             f"(labels 0…{self.sizes[-1] - 1})")

    # ----------------------------------------------------------------- computation
    def _buffers(self, n: int):
        """Activation buffers ``A[0..L]`` (A[0] holds the scaled input) and deltas for batch size n."""
        work = self._work.get(n)
        if work is None:
            if len(self._work) >= 4:  # a training run uses ≤ 3 sizes: batch, last batch, evaluation
                self._work.pop(next(iter(self._work)))
            A = [np.empty((n, s), dtype=self.dtype) for s in self.sizes]
            D = [np.empty((n, s), dtype=self.dtype) for s in self.sizes[1:-1]]
            ones = np.ones(n, dtype=self.dtype)
            # maxout layers: their pre-activations Z, ∂L/∂Z, and each unit's winning piece
            mx = [l for l in self.layers if l.pieces > 1]
            Z = {l.index: np.empty((n, l.n_out), dtype=self.dtype) for l in mx}
            DZ = {l.index: np.empty((n, l.n_out), dtype=self.dtype) for l in mx}
            win = {l.index: np.empty((n, l.units), dtype=np.intp) for l in mx}
            # "src": the array whose scaled copy A[0] holds, when the caller promised it stays unchanged
            work = self._work[n] = {"A": A, "D": D, "ones": ones, "src": None, "Z": Z, "DZ": DZ, "win": win}
        return work

    def _forward(self, params, X, work, same_input=False, masks=None, kernels=None):
        """Fill ``A[0..L]``; ``A[L]`` holds the logits. ``X`` is raw input, scaled into ``A[0]``.

        ``same_input=True`` promises that ``X`` has not changed since it was last scaled into this
        buffer (full-batch training: the whole dataset every step); the conversion is then skipped.
        ``masks``: one dropout mask (or None) per layer, multiplying that layer's input; the masked
        inputs go to ``work["in"]``, which backprop reads. ``kernels``: :class:`steepest.fused.Kernels`
        for the element-wise passes (None: NumPy, the reference).
        """
        A = work["A"]
        if not (same_input and work["src"] is X):
            if X.dtype == self.dtype and self.input_scale == 1.0:
                A[0] = X
            elif kernels is not None and (X.dtype.kind in "ui" or X.dtype in (np.float32, np.float64)):
                kernels.scale_into(X, self.input_scale, A[0])
            else:
                np.multiply(X, self.dtype.type(self.input_scale), out=A[0], casting="unsafe")
            if self.input_mean is not None:
                A[0] -= self._shift   # (X·s − μ) ⊙ 1/σ
                A[0] *= self._inv
        work["src"] = X if same_input else None
        ins = work["in"] = list(A[:-1])
        for l, (W, b) in enumerate(params):
            if masks is not None and masks[l] is not None:
                ins[l] = np.multiply(A[l], masks[l], out=self._masked(work, l))   # Ã_l = A_l ⊙ M_l
            if l in work["Z"]:   # maxout: Z = Ã W + b, then the max of each unit's pieces
                Z = np.matmul(ins[l], W, out=work["Z"][l])
                if kernels is not None:
                    kernels.maxout(Z, b, A[l + 1], work["win"][l])
                else:
                    Z += b
                    _act.maxout_forward(Z, self.pieces, A[l + 1], work["win"][l])
                continue
            np.matmul(ins[l], W, out=A[l + 1])
            if kernels is not None and l < len(params) - 1:
                kernels.bias_act(A[l + 1], b, self.activations[l])   # f(Z + b) in one pass
                continue
            A[l + 1] += b
            if l < len(params) - 1:
                _act.forward(self.activations[l], A[l + 1])
        return A[-1]

    @staticmethod
    def _masked(work, l):
        M = work.setdefault("M", {})
        if l not in M:
            M[l] = np.empty_like(work["A"][l])
        return M[l]

    def _loss_and_grad(self, theta, X, y, grad, scale=None, same_input=False, masks=None, kernels=None):
        """Loss, ∂L/∂θ written into ``grad``, and the number of correct predictions.

        ``scale`` replaces the ``1/n`` of the mean (used to accumulate a gradient over chunks);
        ``masks`` are dropout masks (see :meth:`_forward` and the module docstring); ``kernels`` fuse the
        element-wise passes (each bias gradient is then summed in the pass that makes its δ).
        """
        n = X.shape[0]
        work = self._buffers(n)
        A, D, ones = work["A"], work["D"], work["ones"]
        params = self.unpack(theta)
        grads = self.unpack(grad)
        logits = self._forward(params, X, work, same_input, masks, kernels)
        ins = work["in"]
        fused = kernels is not None and scale is None
        if fused:  # softmax − q, its loss, the correct count and ∂L/∂b_L in one pass
            loss, correct = kernels.softmax_xent(logits, y, self.label_smoothing, grads[-1][1])
            delta = logits
        else:
            correct = int(np.count_nonzero(logits.argmax(axis=1) == y))
            loss, delta = softmax_cross_entropy(logits, y, smoothing=self.label_smoothing)  # (softmax − q)/n
            if scale is not None:
                delta *= self.dtype.type(scale * n)
        for l in range(len(params) - 1, -1, -1):
            dW, db = grads[l]
            np.matmul(ins[l].T, delta, out=dW)   # ∂L/∂W_l = A_{l−1}ᵀ δ_l (Ã: masked, with dropout)
            if not fused:
                np.matmul(ones, delta, out=db)   # ∂L/∂b_l = Σ_batch δ_l  (1ᵀδ: a GEMV beats np.sum here)
            if l > 0:
                W = params[l][0]
                prev = D[l - 1]
                np.matmul(delta, W.T, out=prev)                    # δ_{l+1} W_{l+1}ᵀ …
                if masks is not None and masks[l] is not None:
                    prev *= masks[l]                               # … ⊙ M_l …
                if l - 1 in work["DZ"]:                            # maxout: δ to each unit's winning piece
                    DZ, win = work["DZ"][l - 1], work["win"][l - 1]
                    if fused:
                        kernels.maxout_back(prev, win, DZ, grads[l - 1][1])
                    else:
                        _act.maxout_backward(prev, win, DZ)
                    delta = DZ
                elif fused:                                          # … ⊙ f'(Z_l), and Σ_batch δ_l
                    kernels.act_back_bias(prev, A[l], self.activations[l - 1], grads[l - 1][1])
                    delta = prev
                else:
                    delta = _act.backward(self.activations[l - 1], A[l], prev)  # … ⊙ f'(Z_l)
        return loss, correct

    def _add_l2(self, theta, grad):
        if not self.l2:
            return 0.0
        params = self.unpack(theta)
        for (W, _), (dW, _) in zip(params, self.unpack(grad)):
            dW += self.dtype.type(self.l2) * W
        return l2_penalty([W for W, _ in params], self.l2)

    def loss_and_grad(self, theta, X, y, grad=None, chunk=None):
        """The centre of the library: ``L(θ)`` on a batch and its gradient ``∇L(θ)``.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
        X : ndarray, shape (n, n_0)
            Inputs (any real dtype; multiplied by ``input_scale``).
        y : ndarray of int, shape (n,)
        grad : ndarray, shape (n_params,), optional
            Buffer to write the gradient into (avoids an allocation per step).
        chunk : int, optional
            Process at most this many rows at a time (bounds memory on a whole dataset); the
            result equals the unchunked one up to float rounding.

        Returns
        -------
        loss : float
            Mean softmax cross-entropy plus ``(λ/2) Σ‖W‖²``.
        grad : ndarray, shape (n_params,)
        """
        loss, grad, _ = self.loss_grad_correct(theta, X, y, grad, chunk)
        return loss, grad

    def loss_grad_correct(self, theta, X, y, grad=None, chunk=None, same_input=False, masks=None, kernels=None):
        """:meth:`loss_and_grad` that also returns how many rows were classified correctly.

        ``same_input=True`` (unchunked only) lets repeated calls on the very same, unchanged ``X``
        skip converting it again — what full-batch descent does every step. ``masks`` (unchunked
        only): a dropout mask ``(n, n_l)`` or None for each layer's input, l = 0 … L−1 (training only;
        see :class:`steepest.regularise.Dropout`). ``kernels``: the compiled element-wise passes
        (:func:`steepest.fused.resolve`; None, the default, is NumPy's reference path).
        """
        self.check_theta(theta)
        self.check_data(X, y)
        if X.shape[0] == 0:
            raise ShapeError("cannot compute a loss on an empty batch")
        if grad is None:
            grad = np.empty_like(theta)
        n = X.shape[0]
        if chunk is None or n <= chunk:
            loss, correct = self._loss_and_grad(theta, X, y, grad, same_input=same_input, masks=masks,
                                                kernels=kernels)
        else:
            if masks is not None:
                raise ConfigError("dropout masks cannot be combined with chunk; compute the batch whole")
            part = np.empty_like(grad)
            grad[:] = 0
            loss, correct = 0.0, 0
            for s in range(0, n, chunk):
                Xc, yc = X[s:s + chunk], y[s:s + chunk]
                lc, cc = self._loss_and_grad(theta, Xc, yc, part, scale=1.0 / n, kernels=kernels)
                grad += part
                loss += lc * len(yc) / n
                correct += cc
        loss += self._add_l2(theta, grad)
        return loss, grad, correct

    def first_input(self, X) -> np.ndarray:
        """What the first layer sees of raw inputs ``X``, in float64: ``X·s``, standardised to
        ``(X·s − μ)/σ`` when the network carries input_mean μ and input_std σ."""
        A = np.asarray(X, dtype=np.float64) * self.input_scale
        return A if self.input_mean is None else (A - self.input_mean) / self.input_std

    def logits(self, theta, X, chunk=8192) -> np.ndarray:
        """Output-layer pre-activations ``Z_L``, shape (n, n_L), computed ``chunk`` rows at a time."""
        self.check_theta(theta)
        self.check_data(X)
        out = np.empty((X.shape[0], self.sizes[-1]), dtype=self.dtype)
        params = self.unpack(theta)
        for s in range(0, X.shape[0], chunk):
            Xc = X[s:s + chunk]
            out[s:s + chunk] = self._forward(params, Xc, self._buffers(Xc.shape[0]))
        return out

    def predict_proba(self, theta, X, chunk=8192) -> np.ndarray:
        """Softmax probabilities, shape (n, n_L)."""
        from .losses import softmax
        return softmax(self.logits(theta, X, chunk))

    def predict(self, theta, X, chunk=8192) -> np.ndarray:
        """Predicted class of each row, shape (n,)."""
        return self.logits(theta, X, chunk).argmax(axis=1)

    def loss(self, theta, X, y, chunk=8192) -> float:
        """Mean softmax cross-entropy (plus the L2 term) without computing a gradient."""
        self.check_data(X, y)
        Z = self.logits(theta, X, chunk)
        loss, _ = softmax_cross_entropy(Z, y, grad=False, smoothing=self.label_smoothing)
        return loss + l2_penalty([W for W, _ in self.unpack(theta)], self.l2)


def _features(name, value, d) -> np.ndarray:
    """One number per input feature as float64 (d,): a 1-D real array or a flat list of d real numbers.

    Strings, booleans and nested lists are refused, not converted: ``"0.5"``, ``True`` and an 8×8 list
    would otherwise become numbers and change every prediction.
    """
    real = (int, float, np.integer, np.floating)
    if isinstance(value, np.ndarray):
        ok = value.ndim == 1 and value.dtype.kind in "iuf"
    else:
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, real) and not isinstance(v, (bool, np.bool_)) for v in value)
    if not ok or len(value) != d:
        got = f"a {value.dtype} array of shape {value.shape}" if isinstance(value, np.ndarray) else short(value, 40)
        raise ConfigError(f"{name} must be a flat list of {d} real numbers, one per input, got {got}")
    return np.array(value, dtype=np.float64)


def _pieces(pieces, acts):
    """The pieces of a maxout unit: ``pieces`` checked (default 2), or None when no layer is maxout."""
    shown = short(pieces, 40)
    if "maxout" not in acts:
        if pieces is not None:
            why = "this network has no hidden layer" if not acts else "no hidden layer is maxout (activation='maxout')"
            raise ConfigError(f"pieces={shown} is for maxout layers, and {why}")
        return None
    if pieces is None:
        return 2
    if isinstance(pieces, bool) or not isinstance(pieces, (int, np.integer)) or not 2 <= pieces <= 64:
        raise ConfigError(f"pieces must be a whole number from 2 to 64 (linear pieces per maxout unit), got {shown}")
    return int(pieces)


def standardisation(X: np.ndarray, input_scale: float = 1.0, chunk: int = 8192):
    """Per-feature mean μ and spread σ of the scaled inputs ``x = X·input_scale``, ``X (n, n_0)``, for
    ``MLP(input_mean=μ, input_std=σ)``.

    ``μ_j = (1/n) Σ_i x_ij`` and ``σ_j = max(√((1/n) Σ_i (x_ij − μ_j)²), σ̄/10)`` with σ̄ the mean σ over
    features: a feature (nearly) constant in training — MNIST's border pixels — is divided by σ̄/10
    rather than by ~0, so an unusual value at test time stays bounded. Computed in float64, chunked.
    """
    n = X.shape[0]
    s1 = np.zeros(X.shape[1])
    for i in range(0, n, chunk):
        s1 += X[i:i + chunk].sum(axis=0, dtype=np.float64) * input_scale
    mean = s1 / n
    s2 = np.zeros(X.shape[1])
    for i in range(0, n, chunk):
        d = X[i:i + chunk].astype(np.float64) * input_scale - mean
        s2 += np.einsum("ij,ij->j", d, d)
    std = np.sqrt(s2 / n)
    floor = std.mean() / 10 if std.mean() > 0 else 1.0
    return mean, np.maximum(std, floor)
