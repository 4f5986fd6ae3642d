"""One list of every name a user can choose, written once, importable without NumPy.

The command line builds its ``--help`` and checks its values from these tables, and the modules
that implement each name (:mod:`steepest.activations`, :mod:`steepest.init`, :mod:`steepest.optim`,
:mod:`steepest.schedules`) import their lists from here, so the two cannot drift apart. A test
checks every entry against its implementation. Nothing here imports NumPy: ``steepest --help``
stays fast.
"""

from __future__ import annotations

#: hidden-layer activations (:mod:`steepest.activations`): the element-wise ones, then maxout, which takes the
#: maximum of ``pieces`` linear units (its layer's W has ``pieces`` columns per unit)
ELEMENTWISE = ("relu", "leaky_relu", "sigmoid", "tanh")
ACTIVATIONS = (*ELEMENTWISE, "maxout")
#: weight initialisation schemes (:mod:`steepest.init`)
INITS = ("normal", "uniform", "glorot", "he")
#: initial biases (:mod:`steepest.init`)
BIASES = ("zero", "random")
#: update rules (:func:`steepest.optim.make_optimizer`) → the keyword options each accepts
OPTIMIZER_OPTIONS = {
    "gd": (),
    "sgd": ("momentum", "dampening", "nesterov", "weight_decay"),
    "momentum": ("momentum", "dampening", "weight_decay"),
    "nesterov": ("momentum", "weight_decay"),
    "adam": ("beta1", "beta2", "eps", "weight_decay"),
    "rmsprop": ("alpha", "eps", "momentum", "centered", "weight_decay"),
}
OPTIMIZERS = tuple(OPTIMIZER_OPTIONS)
#: learning-rate schedules (:func:`steepest.schedules.make_schedule`) → (required, optional) options
SCHEDULE_OPTIONS = {
    "constant": ((), ()),
    "step": (("step_size",), ("gamma",)),
    "exponential": (("gamma",), ()),
    "cosine": (("total_steps",), ("lr_min", "warmup_steps", "start_factor")),
    "warmup": (("warmup_steps",), ("start_factor",)),
    "onecycle": (("total_steps",), ("pct_start", "div_factor", "final_div_factor")),
}
SCHEDULES = tuple(SCHEDULE_OPTIONS)
#: how a step's element-wise work is computed (:func:`steepest.fused.resolve`): NumPy (the reference),
#: the compiled numba kernels, or numba where it imports
KERNELS = ("auto", "numba", "numpy")
