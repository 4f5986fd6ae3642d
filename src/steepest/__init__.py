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

from .errors import ConfigError, DataError, DataNotFoundError, ModelFileError, ShapeError, SteepestError
from .gradcheck import gradcheck
from .metrics import accuracy, confusion_matrix
from .network import MLP
from .optim import SGD, Adam, RMSprop, make_optimizer
from .train import History, TrainResult, TrainState, train

__all__ = [
    "MLP", "train", "TrainResult", "TrainState", "History", "gradcheck", "accuracy", "confusion_matrix",
    "SGD", "Adam", "RMSprop", "make_optimizer",
    "SteepestError", "ConfigError", "DataError", "DataNotFoundError", "ModelFileError", "ShapeError",
]
