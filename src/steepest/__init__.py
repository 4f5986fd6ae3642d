"""steepest: neural networks trained by gradient descent from first principles.

The network is a function L(θ) of one flat parameter vector θ; training walks down it:
θ ← θ − η ∇L(θ), with ∇L from backpropagation written by hand in NumPy.

>>> import numpy as np, steepest
>>> net = steepest.MLP([4, 8, 3], activation="tanh")
>>> X, y = np.random.default_rng(0).normal(size=(30, 4)).astype("float32"), np.arange(30) % 3
>>> result = steepest.train(net, net.init(seed=0), X, y, optimizer="momentum", lr=0.1,
...                        batch_size=10, epochs=3)
>>> result.stop_reason
'max_epochs'

Glossary: ``theta (p,)`` parameters, ``grad (p,)`` ∇L(θ), ``X (n, d)`` inputs (batch first),
``y (n,)`` integer labels, ``W[l] (n_in, n_out)`` and ``b[l] (n_out,)`` views into θ, ``Z``
pre-activations, ``A`` activations, ``delta`` ∂L/∂Z, ``lr`` the learning rate η.
"""

__version__ = "0.1.0"

# Names are imported on first use (PEP 562), so that ``import steepest.registry`` and the command
# line's ``--help`` do not pay for NumPy.
_EXPORTS = {
    "MLP": "network", "train": "loop", "TrainResult": "loop", "TrainState": "loop", "History": "loop",
    "gradcheck": "finite_diff", "evaluate": "metrics", "Metrics": "metrics", "accuracy": "metrics", "confusion_matrix": "metrics",
    "SGD": "optim", "Adam": "optim", "RMSprop": "optim", "make_optimizer": "optim",
    "SteepestError": "errors", "ConfigError": "errors", "DataError": "errors",
    "DataNotFoundError": "errors", "ModelFileError": "errors", "ShapeError": "errors",
}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
