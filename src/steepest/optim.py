"""Update rules on flat parameter vectors: gradient descent, momentum, Nesterov, Adam, RMSprop.

Protocol
--------
An optimizer is a small object holding hyper-parameters only; the training state lives in a dict::

    opt.name                             # "gd", "sgd", "momentum", "nesterov", "adam" or "rmsprop"
    state = opt.init(theta)              # dict[str, np.ndarray]
    opt.update(theta, grad, state, lr)   # one step, in place on theta and state; returns None
    opt.config()                         # {"name": ..., **hyper-parameters}: make_optimizer(**config) rebuilds opt

- ``theta: (p,)`` is the flat, contiguous parameter vector (float32 or float64); ``grad: (p,)`` likewise.
- ``state`` holds numpy arrays only, so a safetensors file can store it: buffers of theta's shape and
  dtype, and ``state["step"]``, an ``int64`` array of shape ``(1,)`` counting the updates done.
- **``grad`` is scratch**: ``update`` overwrites it. Copy it first if you need it after the step.
- ``update`` allocates no array of theta's size: it works in place (``out=``) in the state buffers, in
  ``grad`` and, for weight decay, Nesterov, Adam and RMSprop, in one work vector the optimizer object
  caches (made by ``init``; not state, never saved). So one optimizer object serves one ``theta`` at a time.
- ``theta``'s dtype is kept: hyper-parameters and ``lr`` are used as Python floats, which NumPy does
  not let promote a float32 array (NEP 50).

Examples
--------
>>> import numpy as np
>>> c = np.array([1.0, -2.0]); theta = np.zeros(2)     # L(θ) = ½‖θ − c‖², ∇L = θ − c
>>> opt = make_optimizer("momentum"); state = opt.init(theta)
>>> for _ in range(200):
...     opt.update(theta, theta - c, state, lr=0.1)
>>> bool(np.allclose(theta, c))
True
"""

from __future__ import annotations

import math

import numpy as np

from steepest.errors import ConfigError

from steepest.registry import OPTIMIZER_OPTIONS, OPTIMIZERS  # noqa: F401  (the names, listed once)


def _number(name, value, low=0.0, below=None):
    """``float(value)`` after checking it is finite, ``>= low`` (unless None) and ``< below`` (if given)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and (low is None or x >= low) and (below is None or x < below)):
        allowed = "a finite number" + (f" >= {low:g}" if low is not None else "")
        allowed += f" and < {below:g}" if below is not None else ""
        raise ConfigError(f"{name} must be {allowed}, got {value!r}")
    return x


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _ema(avg, x, decay):
    """``avg ← decay·avg + (1 − decay)·x`` in place; ``x`` is overwritten."""
    np.multiply(avg, decay, out=avg)
    np.multiply(x, 1.0 - decay, out=x)
    np.add(avg, x, out=avg)


class Optimizer:
    """Base class stating the protocol of the module docstring; subclasses define ``update``."""

    name = "optimizer"
    weight_decay = 0.0
    _buffers: tuple[str, ...] = ()  # names of the state vectors of theta's shape
    _uses_work = True  # whether update needs the cached work vector

    def init(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """A fresh state for ``theta: (p,)``: zero buffers and ``"step" = [0]``."""
        self._work = np.empty_like(theta) if self._uses_work else None
        return {"step": np.zeros(1, np.int64), **{k: np.zeros_like(theta) for k in self._buffers}}

    def update(self, theta: np.ndarray, grad: np.ndarray, state: dict, lr: float) -> None:
        """One step with learning rate ``lr``, in place on ``theta: (p,)`` and ``state``; overwrites ``grad: (p,)``."""
        raise NotImplementedError

    def config(self) -> dict:
        """Hyper-parameters as plain Python values; ``make_optimizer(**opt.config())`` rebuilds ``opt``."""
        return {"name": self.name, **{k: getattr(self, k) for k in OPTIMIZER_OPTIONS[self.name]}}

    def __repr__(self) -> str:
        return "make_optimizer(" + ", ".join(f"{k}={v!r}" for k, v in self.config().items()) + ")"

    def _work_like(self, theta):
        # one scratch vector reused by every call; made again only if theta changes shape or dtype
        work = getattr(self, "_work", None)
        if work is None or work.shape != theta.shape or work.dtype != theta.dtype:
            work = self._work = np.empty_like(theta)
        return work

    def _begin(self, theta, grad, lr) -> float:
        """Check ``lr`` and apply ``g ← g + wd·θ``; return ``lr`` as a Python float."""
        lr = float(lr)  # a np.float64 lr would promote float32 arithmetic (NEP 50); a Python float does not
        if not lr >= 0.0:
            raise ConfigError(f"learning rate must be >= 0, got {lr!r}")
        if self.weight_decay != 0.0:
            work = self._work_like(theta)
            np.multiply(theta, self.weight_decay, out=work)
            np.add(grad, work, out=grad)
        return lr


class SGD(Optimizer):
    r"""Gradient descent with optional momentum, Nesterov momentum and L2 weight decay (torch.optim.SGD).

    With ``g = ∇L(θ)``, momentum ``μ``, dampening ``τ`` and weight decay ``wd``, one step is::

        g ← g + wd·θ
        b ← g                        on the first step (μ ≠ 0)
        b ← μ·b + (1 − τ)·g          afterwards
        g ← g + μ·b   if nesterov,   else   g ← b
        θ ← θ − lr·g

    With ``μ = 0`` this is plain gradient descent, ``θ ← θ − lr·∇L(θ)``, bit for bit.

    This is PyTorch's form. The textbook heavy ball (Polyak 1964; Sutskever et al. 2013) keeps a
    velocity ``v ← μ·v − lr·g; θ ← θ + v``, which folds the learning rate into ``v``. The two give the
    same iterates while ``lr`` is constant (``v = −lr·b``) but differ when a schedule changes ``lr``:
    here the new rate scales the whole buffer at once; there it applies only to new gradients.

    Parameters
    ----------
    momentum : float, default 0.0
        ``0 <= μ < 1``. The buffer weighs the gradient of k steps ago by ``μᵏ``, a sum that never forgets
        at ``μ = 1`` and grows without bound above it (``torch.optim.SGD`` accepts such values).
    dampening : float, default 0.0
        ``τ``, the share of each new gradient left out of the buffer.
    nesterov : bool, default False
        Nesterov's look-ahead form; needs ``momentum > 0`` and ``dampening == 0``.
    weight_decay : float, default 0.0
        ``wd >= 0``; the gradient of an L2 penalty ``½·wd·‖θ‖²``.

    Notes
    -----
    State: ``"step"``, and ``"b": (p,)`` if ``μ ≠ 0``.
    References: PyTorch, ``torch.optim.SGD``; I. Sutskever, J. Martens, G. Dahl, G. Hinton,
    "On the importance of initialization and momentum in deep learning", ICML 2013.
    """

    name = "sgd"

    def __init__(self, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        self.momentum = _number("momentum", momentum, below=1.0)  # μ ≥ 1: the velocity never forgets
        self.dampening = _number("dampening", dampening, low=None)
        self.nesterov = _flag("nesterov", nesterov)
        self.weight_decay = _number("weight_decay", weight_decay)
        if self.nesterov and (self.momentum <= 0.0 or self.dampening != 0.0):
            raise ConfigError(f"Nesterov momentum needs momentum > 0 and dampening == 0, "
                              f"got momentum={momentum!r}, dampening={dampening!r}")
        self._buffers = ("b",) if self.momentum != 0.0 else ()
        self._uses_work = self.weight_decay != 0.0 or self.nesterov

    def update(self, theta, grad, state, lr):
        lr, mu = self._begin(theta, grad, lr), self.momentum
        if mu == 0.0:
            np.multiply(grad, lr, out=grad)
        else:
            b = state["b"]
            if state["step"][0] == 0:
                np.copyto(b, grad)
            else:
                np.multiply(b, mu, out=b)
                if self.dampening != 0.0:  # then not Nesterov, so grad is free to scale
                    np.multiply(grad, 1.0 - self.dampening, out=grad)
                np.add(b, grad, out=b)
            if self.nesterov:
                np.multiply(b, mu, out=self._work_like(theta))
                np.add(grad, self._work, out=grad)
                np.multiply(grad, lr, out=grad)
            else:
                np.multiply(b, lr, out=grad)
        np.subtract(theta, grad, out=theta)
        state["step"] += 1


class Adam(Optimizer):
    r"""Adam with L2 weight decay added to the gradient (torch.optim.Adam, ``amsgrad=False``).

    With ``g = ∇L(θ)`` and ``t`` the step number counted from 1::

        g ← g + wd·θ
        m ← β₁·m + (1 − β₁)·g
        v ← β₂·v + (1 − β₂)·g²
        θ ← θ − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

    Parameters
    ----------
    beta1, beta2 : float, default 0.9, 0.999
        Decay of the first and second moment averages, each in ``[0, 1)``.
    eps : float, default 1e-8
        ``ε >= 0``, keeps the denominator away from zero.
    weight_decay : float, default 0.0
        ``wd >= 0``; L2 on the loss, not AdamW's decoupled decay.

    Notes
    -----
    State: ``"step"``, ``"m": (p,)``, ``"v": (p,)``.
    Reference: D. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """

    name = "adam"
    _buffers = ("m", "v")

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.beta1 = _number("beta1", beta1, below=1.0)
        self.beta2 = _number("beta2", beta2, below=1.0)
        self.eps = _number("eps", eps)
        self.weight_decay = _number("weight_decay", weight_decay)

    def update(self, theta, grad, state, lr):
        lr = self._begin(theta, grad, lr)
        m, v, work = state["m"], state["v"], self._work_like(theta)
        state["step"] += 1
        t = int(state["step"][0])
        np.multiply(grad, grad, out=work)
        _ema(v, work, self.beta2)
        _ema(m, grad, self.beta1)
        np.sqrt(v, out=work)
        np.divide(work, math.sqrt(1.0 - self.beta2**t), out=work)
        np.add(work, self.eps, out=work)
        np.divide(m, work, out=grad)
        np.multiply(grad, lr / (1.0 - self.beta1**t), out=grad)
        np.subtract(theta, grad, out=theta)


class RMSprop(Optimizer):
    r"""RMSprop, optionally centred and with momentum (torch.optim.RMSprop).

    With ``g = ∇L(θ)``::

        g ← g + wd·θ
        v ← α·v + (1 − α)·g²
        ḡ ← α·ḡ + (1 − α)·g                      (centered only)
        d ← √(v − ḡ²) + ε   if centered,   else   d ← √v + ε
        b ← μ·b + g/d;   θ ← θ − lr·b              if μ > 0
        θ ← θ − lr·g/d                             otherwise

    Parameters
    ----------
    alpha : float, default 0.99
        ``0 <= α < 1``, decay of the squared-gradient average (at ``α = 1`` it would stay at zero).
    eps : float, default 1e-8
        ``ε >= 0``.
    momentum : float, default 0.0
        ``0 <= μ < 1``, as for :class:`SGD`.
    centered : bool, default False
        Divide by an estimate of the gradient's standard deviation rather than its root mean square.
    weight_decay : float, default 0.0
        ``wd >= 0``, L2 added to the gradient.

    Notes
    -----
    State: ``"step"``, ``"v": (p,)``, and ``"g_avg": (p,)`` if centered, ``"b": (p,)`` if ``μ > 0``.
    References: T. Tieleman, G. Hinton, "Neural Networks for Machine Learning", lecture 6.5 (2012);
    A. Graves, "Generating Sequences With Recurrent Neural Networks", 2013 (the centred form).
    """

    name = "rmsprop"

    def __init__(self, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0):
        self.alpha = _number("alpha", alpha, below=1.0)  # α = 1 would leave v at 0 and divide g by ε
        self.eps = _number("eps", eps)
        self.momentum = _number("momentum", momentum, below=1.0)
        self.centered = _flag("centered", centered)
        self.weight_decay = _number("weight_decay", weight_decay)
        self._buffers = ("v",) + ("g_avg",) * self.centered + ("b",) * (self.momentum > 0.0)

    def update(self, theta, grad, state, lr):
        lr = self._begin(theta, grad, lr)
        a, v, d = self.alpha, state["v"], self._work_like(theta)
        np.multiply(grad, grad, out=d)
        _ema(v, d, a)
        if self.centered:
            g_avg = state["g_avg"]
            np.copyto(d, grad)
            _ema(g_avg, d, a)
            np.multiply(g_avg, g_avg, out=d)
            np.subtract(v, d, out=d)
            np.sqrt(d, out=d)
        else:
            np.sqrt(v, out=d)
        np.add(d, self.eps, out=d)
        np.divide(grad, d, out=grad)
        if self.momentum > 0.0:
            b = state["b"]
            np.multiply(b, self.momentum, out=b)
            np.add(b, grad, out=b)
            np.multiply(b, lr, out=grad)
        else:
            np.multiply(grad, lr, out=grad)
        np.subtract(theta, grad, out=theta)
        state["step"] += 1


# name → (class, defaults); the keyword arguments each accepts are in steepest.registry.
_SPECS = {
    "gd": (SGD, {}),
    "sgd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}),
    "adam": (Adam, {}),
    "rmsprop": (RMSprop, {}),
}


def make_optimizer(name: str, **kwargs) -> Optimizer:
    """Build an optimizer by name: ``make_optimizer(**opt.config())`` rebuilds ``opt``.

    Parameters
    ----------
    name : str
        ``"gd"`` (``θ ← θ − lr·∇L``, no options), ``"sgd"`` (the options of :class:`SGD`),
        ``"momentum"`` (heavy ball, ``momentum=0.9`` by default), ``"nesterov"`` (``momentum=0.9`` by
        default), ``"adam"`` (:class:`Adam`) or ``"rmsprop"`` (:class:`RMSprop`).
    **kwargs
        Hyper-parameters of that optimizer. Unknown names, unknown options and invalid values raise
        :class:`~steepest.errors.ConfigError`.
    """
    if name not in _SPECS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    (cls, defaults), allowed = _SPECS[name], OPTIMIZER_OPTIONS[name]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for optimizer {name!r}; valid options: {valid}")
    opt = cls(**{**defaults, **kwargs})
    opt.name = name
    return opt
