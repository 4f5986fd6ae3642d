"""Model and checkpoint files: safetensors tensors plus JSON metadata. Never pickle.

A **model file** holds one tensor, ``theta (p,)``, and string metadata (safetensors
``__metadata__``; every value but the two format keys is JSON):

=================  ==========================================================================
key                value
=================  ==========================================================================
format             ``"steepest.model"`` (checkpoints: ``"steepest.checkpoint"``)
format_version     ``"1"``
architecture       ``net.config()``: sizes, activation list, dtype, input_scale, l2
preprocessing      input_scale, image_shape (how raw inputs become the network's input)
dataset            name, source, n_classes, class_names
training           the resolved training configuration
metrics            final metrics (test accuracy, loss, epochs, stop reason, …)
seed               the run's seed
environment        what the arithmetic depended on: steepest, NumPy and Python versions, NumPy's
                   SIMD extensions, the BLAS library (``blas``: internal_api, version,
                   architecture/core type, threading layer, threads, from threadpoolctl), the
                   kernel in one phrase (``blas_kernel``: ``"openblas 0.3.31 Haswell"``; model
                   files only), the CPU's model name (``cpu``; model files only), the
                   thread count (``blas_threads``) and the variables ``OPENBLAS_CORETYPE``,
                   ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` if set
=================  ==========================================================================

What is promised: the same seed, dtype (``architecture``), thread count, NumPy build and BLAS
kernel (``environment.blas_kernel``) give the same θ, bit for bit — in one process, in two, and
across a ``--resume``. The same NumPy wheel picks different BLAS kernels on different CPUs (an
Intel and an AMD core may get different ones), and a different kernel, library or thread count
may change the last bits — and, after many steps, the second decimal of an accuracy.

A **checkpoint** holds everything in :class:`steepest.loop.TrainState` needed to continue a
run bit for bit: tensors ``theta``, ``opt.<name>`` (optimizer state), ``mem.<rule>.<name>`` (the
stopping rules' arrays, e.g. the patience rule's best θ), ``history.<column>`` (float64), and metadata
``state`` (the scalar fields, and ``memory``, the rules' own values), ``history_epochs`` (the evaluation
records), ``config`` (the run's configuration) and ``architecture``.

Files are written atomically (:func:`atomic_write`) and checked before they are trusted
(:func:`read_safetensors`): the header is parsed by hand first, so a file claiming a gigantic
tensor is rejected before anything is allocated. A write killed half-way leaves a temporary
``.NAME.XXXXXXXX.tmp`` beside ``NAME`` (:func:`temp_files` finds them), never a damaged ``NAME``.
"""

from .atomic import atomic_write, temp_files
from .checkpoints import load_checkpoint, save_checkpoint
from .environment import blas_kernel, cpu_model, environment, machine
from .models import load_model, save_model
from .tensors import CHECKPOINT_FORMAT, FORMAT_VERSION, MODEL_FORMAT, read_safetensors

__all__ = [
    "FORMAT_VERSION", "MODEL_FORMAT", "CHECKPOINT_FORMAT",
    "atomic_write", "temp_files", "read_safetensors", "environment", "blas_kernel", "cpu_model", "machine",
    "save_model", "load_model", "save_checkpoint", "load_checkpoint",
]
