"""Fused element-wise passes of a training step, compiled with numba: the ``"numba"`` kernels.

Between its matrix products a step does element-wise work that NumPy runs as many single passes over
memory: the input's conversion, bias + activation, softmax − onehot and the output bias gradient,
the activation's derivative and each hidden bias gradient, the optimizer's several passes over θ.
Each is one loop here, compiled once by numba: same equations, fewer passes. The matrix products
stay NumPy's (BLAS).

The NumPy code in :mod:`steepest.network` and :mod:`steepest.optim` is the reference; these kernels
are tested against it: the same θ bit for bit where the operations are the same in the same order
(input scaling, bias + ReLU / leaky ReLU, their derivatives, every optimizer update), the same up to
float rounding where the order differs (the softmax's sums, bias gradients summed row by row in
float64 instead of by a GEMV, numba's ``tanh`` and ``exp`` against NumPy's).

:func:`resolve` chooses: ``"numpy"`` (the reference), ``"numba"`` (these; an error if numba cannot be
imported), ``"auto"`` (these when numba imports, else NumPy). numba is imported only then, so
``import steepest`` stays fast, and compiled code is cached beside this file or, where that is not
writable, in numba's per-user cache directory (``NUMBA_CACHE_DIR`` chooses another);
:attr:`Kernels.cached` says whether caching works.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError
from .optim import SGD, Adam, RMSprop
from .registry import KERNELS

_FUSED_OPTIMIZERS = (SGD, Adam, RMSprop)

#: activation name → the code the compiled loops branch on
_ACT = {"relu": 0, "leaky_relu": 1, "sigmoid": 2, "tanh": 3}
_LEAKY = 0.01


# The kernels below are plain Python functions over arrays and scalars in the arrays' dtype; numba compiles
# them on first use (:func:`_compile`), each for the dtypes it meets.

def _scale_into(X, s, out):
    # out = X · s: an 8-bit or float32 value times a float32 scale is exact in float64, so the one
    # rounding to out's dtype gives NumPy's float32 product bit for bit.
    n, d = X.shape
    for i in range(n):
        for j in range(d):
            out[i, j] = X[i, j] * s


def _bias_act(Z, b, act, half, one, leak):
    # Z ← f(Z + b), row by row; the constants come in Z's dtype so nothing is promoted.
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            z = Z[i, j] + b[j]
            if act == 0:      # relu: z·[z > 0] (NaN stays NaN, negatives become −0.0, as NumPy)
                if not z > 0:
                    z = z * (one - one)
            elif act == 1:    # leaky relu: max(z, 0.01 z), NaN propagating
                t = z * leak
                if not z > t:
                    z = t
            elif act == 2:    # sigmoid = (1 + tanh(z/2)) / 2, exact and warning-free
                z = (math.tanh(z * half) + one) * half
            else:
                z = math.tanh(z)
            Z[i, j] = z


def _act_back_bias(D, A, act, db, one, leak):
    # D ← D ⊙ f'(Z) with f' written through A = f(Z); db ← Σ_rows D (summed in float64).
    n, m = D.shape
    acc = np.zeros(m, np.float64)
    for i in range(n):
        for j in range(m):
            a = A[i, j]
            d = D[i, j]
            if act == 0:
                d = d * (one if a > 0 else one - one)
            elif act == 1:
                d = d * (one if a > 0 else leak)
            elif act == 2:
                d = d * (a * (one - a))
            else:
                d = d * (one - a * a)
            D[i, j] = d
            acc[j] += d
    for j in range(m):
        db[j] = acc[j]


def _maxout(Z, b, A, win):
    # A[i, j] = max_p (Z + b)[i, j·k + p], win[i, j] = the winning p: the first maximum, or the first NaN
    # (NumPy's argmax); Z + b is rounded to Z's dtype first, as the reference's Z += b.
    n, m = A.shape
    k = Z.shape[1] // m
    for i in range(n):
        for j in range(m):
            c = j * k
            best = Z[i, c] + b[c]
            arg = 0
            if best == best:
                for p in range(1, k):
                    z = Z[i, c + p] + b[c + p]
                    if z != z:
                        best = z
                        arg = p
                        break
                    if z > best:
                        best = z
                        arg = p
            A[i, j] = best
            win[i, j] = arg


def _maxout_back(D, win, DZ, db):
    # DZ[i, j·k + p] = D[i, j] for the winning p, else 0; db ← Σ_rows DZ (summed in float64).
    n, m = D.shape
    k = DZ.shape[1] // m
    acc = np.zeros(m * k, np.float64)
    for i in range(n):
        for j in range(m):
            c = j * k
            for p in range(k):
                DZ[i, c + p] = 0
            c += win[i, j]
            DZ[i, c] = D[i, j]
            acc[c] += D[i, j]
    for c in range(m * k):
        db[c] = acc[c]


def _softmax_xent(Z, y, smoothing, hit, spread, db, tmp):
    # Z (logits) ← (softmax(Z) − q)/n with q the (smoothed) one-hot targets; db ← Σ_rows of it;
    # returns (mean loss, correct predictions). Each row's exponents are shifted by its maximum;
    # ``hit`` = (1−ε)/n and ``spread`` = ε/(k n) come in Z's dtype, ``tmp`` is one value of it.
    n, k = Z.shape
    acc = np.zeros(k, np.float64)
    loss = 0.0
    correct = 0
    for i in range(n):
        yi = y[i]
        m = Z[i, 0]
        arg = 0
        for j in range(1, k):
            if Z[i, j] > m:
                m = Z[i, j]
                arg = j
        if arg == yi:
            correct += 1
        s = 0.0
        zsum = 0.0
        ztrue = 0.0
        for j in range(k):
            z = Z[i, j] - m
            zsum += z
            if j == yi:
                ztrue = z
            e = np.exp(z)
            Z[i, j] = e
            s += e
        loss += math.log(s) - ((1.0 - smoothing) * ztrue + smoothing / k * zsum)
        tmp[0] = 1.0 / (n * s)   # rounded to Z's dtype, as the reference does
        r = tmp[0]
        for j in range(k):
            d = Z[i, j] * r
            if smoothing > 0:
                d = d - spread
            if j == yi:
                d = d - hit
            Z[i, j] = d
            acc[j] += d
    for j in range(k):
        db[j] = acc[j]
    return loss / n, correct


def _sgd(theta, g, b, lr, mu, damp, first, nesterov, save):
    # torch.optim.SGD's equations (see steepest.optim.SGD), one pass; g is left as it was and θ before the
    # update goes to ``save``. Each case is its own loop with no branch inside, so that it vectorises.
    n = theta.shape[0]
    if mu == 0:
        for i in range(n):
            t = theta[i]
            save[i] = t
            theta[i] = t - g[i] * lr
    elif first:  # b ← g
        for i in range(n):
            t = theta[i]
            gi = g[i]
            save[i] = t
            b[i] = gi
            theta[i] = t - ((gi + gi * mu) * lr if nesterov else gi * lr)
    elif nesterov:  # b ← μb + g; step (g + μb)·lr
        for i in range(n):
            t = theta[i]
            gi = g[i]
            bi = b[i] * mu + gi
            save[i] = t
            b[i] = bi
            theta[i] = t - (gi + bi * mu) * lr
    else:  # b ← μb + (1 − τ)g; step b·lr
        for i in range(n):
            t = theta[i]
            bi = b[i] * mu + g[i] * damp
            save[i] = t
            b[i] = bi
            theta[i] = t - bi * lr


def _adam(theta, g, m, v, lr_t, b1, c1, b2, c2, root, eps, save):
    # m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; θ ← θ − lr_t · m / (√v / root + ε)
    for i in range(theta.shape[0]):
        gi = g[i]
        t = theta[i]
        vi = v[i] * b2 + (gi * gi) * c2
        mi = m[i] * b1 + gi * c1
        save[i] = t
        v[i] = vi
        m[i] = mi
        theta[i] = t - (mi / (np.sqrt(vi) / root + eps)) * lr_t


def _rmsprop(theta, g, v, gavg, b, lr, a, ca, eps, mu, centered, save):
    # v ← αv + (1−α)g²; d = √(v − ḡ²) with ḡ ← αḡ + (1−α)g (centered) or √v; q = g/(d + ε);
    # with momentum b ← μb + q, step b·lr. (Not centred, ḡ stays 0: v − 0·0 is v exactly.)
    for i in range(theta.shape[0]):
        gi = g[i]
        vi = v[i] * a + (gi * gi) * ca
        v[i] = vi
        ai = a - a  # 0 in the arrays' dtype (not vi − vi, which is NaN for an infinite v)
        if centered:
            ai = gavg[i] * a + gi * ca
            gavg[i] = ai
        q = gi / (np.sqrt(vi - ai * ai) + eps)
        t = theta[i]
        save[i] = t
        if mu > 0:
            q = b[i] * mu + q
            b[i] = q
        theta[i] = t - q * lr


def _max_norm(W, c2, c):
    # W[:, j] ← W[:, j] · c/‖W[:, j]‖ where ‖W[:, j]‖² > c² (squares summed in float64, row by row)
    n, m = W.shape
    sq = np.zeros(m, np.float64)
    for i in range(n):
        for j in range(m):
            w = W[i, j]
            sq[j] += w * w
    f = np.ones(m, W.dtype)  # the factors, rounded to W's dtype as the reference rounds them
    over = False
    for j in range(m):
        if sq[j] > c2:
            over = True
            f[j] = c / np.sqrt(sq[j])
    if over:
        for i in range(n):
            for j in range(m):
                W[i, j] = W[i, j] * f[j]


def _dropout_mask(R, p, scale, out):
    # out = [R ≥ p] · 1/(1−p): inverted dropout's mask from uniform draws R (NaN-free by construction)
    n, m = R.shape
    for i in range(n):
        for j in range(m):
            out[i, j] = scale if R[i, j] >= p else scale - scale


_KERNELS = ("scale_into", "bias_act", "act_back_bias", "maxout", "maxout_back", "softmax_xent", "sgd", "adam", "rmsprop", "max_norm",
            "dropout_mask")


def _compile():
    """The kernels compiled with numba (imported here, not with the package), and whether the compiled
    code is cached on disk."""
    import numba

    compiled, cached = {}, True
    for name in _KERNELS:
        fn = globals()["_" + name]
        try:
            compiled[name] = numba.njit(cache=True, nogil=True)(fn)
        except RuntimeError:  # no writable cache location: compile every time this process starts
            cached = False
            compiled[name] = numba.njit(nogil=True)(fn)
    return compiled, cached


class Kernels:
    """The compiled passes, called with arguments in the arrays' dtype (see :func:`resolve`)."""

    name = "numba"

    def __init__(self):
        import numba

        self.version = numba.__version__
        self.k, self.cached = _compile()
        self._scratch = np.empty(0)  # θ before the update, when the caller keeps no copy

    def info(self) -> dict:
        """What a model file records of the kernels that trained it."""
        return {"kernels": self.name, "numba": self.version, "cache": self.cached}

    # --- the network's passes -----------------------------------------------------------------
    def scale_into(self, X, scale, out) -> None:
        self.k["scale_into"](X, out.dtype.type(scale), out)

    def bias_act(self, Z, b, activation) -> None:
        t = Z.dtype.type
        self.k["bias_act"](Z, b, _ACT[activation], t(0.5), t(1), t(_LEAKY))

    def act_back_bias(self, D, A, activation, db) -> None:
        t = D.dtype.type
        self.k["act_back_bias"](D, A, _ACT[activation], db, t(1), t(_LEAKY))

    def maxout(self, Z, b, A, win) -> None:
        """``A ← max over each unit's pieces of Z + b``, the winners into ``win`` (Z itself is left as it is)."""
        self.k["maxout"](Z, b, A, win)

    def maxout_back(self, D, win, DZ, db) -> None:
        """``DZ ← D`` at each unit's winning piece, 0 elsewhere; ``db ← Σ_rows DZ``."""
        self.k["maxout_back"](D, win, DZ, db)

    def softmax_xent(self, Z, y, smoothing, db):
        n, k = Z.shape
        t = Z.dtype.type
        loss, correct = self.k["softmax_xent"](Z, y, float(smoothing), t((1.0 - smoothing) / n),
                                               t(smoothing / (k * n)), db, np.empty(1, Z.dtype))
        return float(loss), int(correct)

    # --- regularisation ----------------------------------------------------------------------------
    def max_norm(self, W, c) -> None:
        """Max-norm on the columns of ``W (n_in, n_out)`` in place (see :func:`steepest.regularise.max_norm`)."""
        self.k["max_norm"](W, float(c) * float(c), float(c))

    def dropout_mask(self, R, p, out) -> None:
        """``out ← [R ≥ p] / (1 − p)`` from uniform draws ``R`` in out's dtype."""
        self.k["dropout_mask"](R, R.dtype.type(p), out.dtype.type(1.0 / (1.0 - p)), out)

    # --- optimizers -------------------------------------------------------------------------------
    def update(self, opt, theta, grad, state, lr, save=None) -> bool:
        """θ ← the update of ``opt`` in one pass, θ as it was copied to ``save`` (if given) in the same pass;
        False where there is no fused form (a subclass or another optimizer, a θ that is not one contiguous
        vector, a learning rate the reference refuses), and the caller runs ``opt.update``. Weight decay
        is added to ``grad`` first (g ← g + wd·θ), by the reference's own code."""
        kind = type(opt)
        if kind not in _FUSED_OPTIMIZERS or not theta.flags.c_contiguous:
            return False
        lr = opt._begin(theta, grad, lr)  # checks lr (raising as the reference does) and adds weight decay
        t = theta.dtype.type
        empty = theta[:0]
        if save is None:
            save = self._scratch if self._scratch.shape == theta.shape and self._scratch.dtype == theta.dtype \
                else np.empty_like(theta)
            self._scratch = save
        if kind is SGD:
            mu = opt.momentum
            self.k["sgd"](theta, grad, state["b"] if mu else empty, t(lr), t(mu), t(1.0 - opt.dampening),
                          bool(state["step"][0] == 0), bool(opt.nesterov), save)
            state["step"] += 1
        elif kind is Adam:
            state["step"] += 1
            n = int(state["step"][0])
            self.k["adam"](theta, grad, state["m"], state["v"], t(lr / (1.0 - opt.beta1 ** n)), t(opt.beta1),
                           t(1.0 - opt.beta1), t(opt.beta2), t(1.0 - opt.beta2), t(math.sqrt(1.0 - opt.beta2 ** n)),
                           t(opt.eps), save)
        else:
            self.k["rmsprop"](theta, grad, state["v"], state.get("g_avg", empty), state.get("b", empty), t(lr),
                              t(opt.alpha), t(1.0 - opt.alpha), t(opt.eps), t(opt.momentum), bool(opt.centered),
                              save)
            state["step"] += 1
        return True


_cache: dict = {}


def resolve(kernels="auto"):
    """``"numpy"`` → None (the reference NumPy path); ``"numba"`` → :class:`Kernels` (ConfigError without
    numba); ``"auto"`` → :class:`Kernels` where numba imports, else None; a :class:`Kernels` → itself."""
    if kernels is None or isinstance(kernels, Kernels):
        return kernels
    if kernels not in KERNELS:
        raise ConfigError(f"unknown kernels {kernels!r}; choose one of {', '.join(KERNELS)}")
    if kernels == "numpy":
        return None
    if "k" not in _cache:
        try:
            _cache["k"] = Kernels()
        except ImportError as e:
            _cache["k"] = None
            _cache["why"] = str(e)
    if _cache["k"] is None and kernels == "numba":
        raise ConfigError(f"the numba kernels need numba, which cannot be imported here ({_cache['why']}); "
                          "install it (pip install numba) or use kernels 'numpy'")
    return _cache["k"]
