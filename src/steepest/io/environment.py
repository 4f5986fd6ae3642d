"""The environment probe: NumPy, BLAS library and kernel, CPU, threads — what a bit-identical θ depends on."""

from __future__ import annotations

import os
import platform
from functools import lru_cache

import numpy as np


#: environment variables that change which BLAS kernels run, or on how many threads
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                  "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "BLIS_NUM_THREADS")
_BLAS_KEYS = ("internal_api", "version", "architecture", "threading_layer", "num_threads")


def blas_libraries() -> list[dict]:
    """The BLAS libraries NumPy's products run on, as threadpoolctl sees them now (``[]`` without it): the
    ones shipped with NumPy itself when it has its own (``numpy.libs``), else every BLAS loaded.

    Each: ``internal_api`` (openblas, mkl, blis), ``version``, ``architecture`` (the core type
    whose kernels run, e.g. Haswell), ``threading_layer`` and ``num_threads`` (current limit).
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    found = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    # NumPy's own BLAS first: another package (SciPy, imported for the digits data) may bring its own copy
    home = os.path.dirname(os.path.dirname(np.__file__))
    mine = [p for p in found if str(p.get("filepath", "")).startswith(os.path.join(home, "numpy"))]
    return [{k: p[k] for k in _BLAS_KEYS if p.get(k) is not None} for p in (mine or found)]


def blas_kernel(blas: list[dict] | None = None) -> str | None:
    """The BLAS kernel NumPy's matrix products run on, in one phrase: ``"openblas 0.3.31 Haswell"``.

    The bit-identical-θ promise holds per kernel: the same library, version and ``architecture``
    (the core type whose kernels it chose, threadpoolctl's word) — two CPUs of different vendors
    may pick different kernels under the same NumPy wheel and round differently. ``None`` without
    threadpoolctl or a BLAS it can see; several libraries are joined with ``" + "``.
    """
    blas = blas_libraries() if blas is None else blas
    names = [" ".join(str(b[k]) for k in ("internal_api", "version", "architecture") if b.get(k)) for b in blas]
    return " + ".join(n for n in names if n) or None


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`), or ``"unknown CPU"``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """Where timings and last bits were measured, in one line: ``"AMD EPYC, openblas 0.3.31 Haswell, 2 threads"``."""
    blas = blas_libraries()
    threads = max((b["num_threads"] for b in blas if "num_threads" in b), default=None)
    return ", ".join(x for x in (cpu_model(), blas_kernel(blas), f"{threads} threads" if threads else None) if x)


@lru_cache(maxsize=1)
def _numpy_simd() -> list[str] | None:
    """NumPy's SIMD dispatch targets found on this CPU: which loops of exp, log, sums run here."""
    try:
        simd = np.show_config(mode="dicts").get("SIMD Extensions", {})
        return list(simd.get("baseline", [])) + list(simd.get("found", []))
    except (TypeError, AttributeError):  # NumPy < 1.26 has no mode="dicts"; its version says enough
        return None


def environment() -> dict:
    """What produced a file, for reproducing it bit for bit: versions, the BLAS build and threads."""
    from .. import __version__

    blas = blas_libraries()  # a model file adds ``blas_kernel`` (see save_model); checkpoints do not need it
    threads = [b["num_threads"] for b in blas if "num_threads" in b]
    return {"steepest": __version__, "numpy": np.__version__, "python": platform.python_version(),
            "platform": platform.platform(terse=True), "machine": platform.machine(),
            "numpy_simd": _numpy_simd(), "blas": blas, "blas_threads": max(threads) if threads else None,
            "variables": {k: os.environ[k] for k in BLAS_VARIABLES if k in os.environ}}
