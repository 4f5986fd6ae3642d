"""Workload (d): peak memory of a training process and the import time of a module, each measured in
fresh interpreters.

``python benchmarks/memory.py --lib steepest --batch 128 --data mnist`` is the child program: it imports
one library, loads the data, trains one epoch and prints its memory at each stage as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from workloads import Sklearn, Steepest, Torch, load_data, set_threads


def _status_kb(field: str) -> int:
    """A ``kB`` field of /proc/self/status (``VmRSS`` now, ``VmHWM`` the peak); 0 where unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_child(lib, batch, data_spec, threads, data_dir=None) -> dict:
    """Body of the child process: import, load, train one epoch; report memory at each stage (KiB).

    The peak is ``VmHWM`` from /proc/self/status, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over
    ``exec`` from the forked parent, so a child of a big benchmark process would report the parent's
    size. ``peak_kb`` covers the whole process (imports, data loading, training); ``train_peak_kb``
    the training epoch alone (peak reset after the data are loaded).
    """
    out = {"lib": lib}
    if lib == "PyTorch":
        import torch  # noqa: F401
    elif lib == "scikit-learn":
        import sklearn.neural_network  # noqa: F401
    else:
        import steepest  # noqa: F401
    limiter = set_threads(threads)  # noqa: F841
    out["after_import_kb"] = _status_kb("VmRSS")
    data = load_data(data_spec, data_dir)
    runner = {"steepest": Steepest, "PyTorch": Torch, "scikit-learn": Sklearn}[lib](data, batch)
    out["after_data_kb"] = _status_kb("VmRSS")   # data in the library's form, model built
    out["load_peak_kb"] = _status_kb("VmHWM")
    reset = _reset_peak()
    out["seconds"] = runner.run()
    out["train_peak_kb"] = _status_kb("VmHWM") if reset else None
    out["peak_kb"] = max(out["load_peak_kb"], _status_kb("VmHWM"))
    out["ru_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return out


def peak_rss(lib, batch, data_spec, threads, data_dir=None) -> dict:
    """Run :func:`rss_child` in a fresh interpreter; return its report (KiB; see rss_child)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--lib", lib, "--batch", str(batch),
           "--data", data_spec, "--threads", str(threads)]
    if data_dir:
        cmd += ["--data-dir", str(data_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child for {lib} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def import_time(module="steepest", repeats=7) -> dict:
    """Wall time of ``python -c "import <module>"`` minus ``python -c "pass"``: medians of fresh processes."""

    def once(code):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t

    base, full = [], []
    for _ in range(repeats):  # alternate so drift in machine load hits both equally
        base.append(once("pass"))
        full.append(once(f"import {module}"))
    diffs = sorted(f - b for f, b in zip(full, base))
    return {"module": module, "seconds": float(np.median(full) - np.median(base)),
            "min": float(diffs[0]), "max": float(diffs[-1]), "python_startup": float(np.median(base))}


_FIRST_STEP = """
import time, numpy as np
t = time.perf_counter()
from steepest import MLP, train
from steepest.fused import resolve
k = resolve("numba")
net = MLP([784, 256, 128, 10], input_scale=1 / 255)
X = np.random.default_rng(0).integers(0, 256, (256, 784), dtype=np.uint8); y = np.arange(256) % 10
train(net, net.init(0), X, y, optimizer="momentum", lr=0.05, batch_size=128, max_steps=2, monitor=False, kernels=k)
print(time.perf_counter() - t)
"""


def compile_time(repeats=3) -> dict:
    """Seconds from a fresh interpreter to the end of two training steps with the numba kernels: with an
    empty cache (``NUMBA_CACHE_DIR`` a new directory: every kernel compiled) and with the cache it left
    (the kernels loaded from disk), medians of fresh processes. The difference is the compile time."""
    import tempfile

    def once(cache_dir):
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        out = subprocess.run([sys.executable, "-c", _FIRST_STEP], check=True, capture_output=True, text=True, env=env)
        return float(out.stdout.split()[-1])

    cold, warm = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            cold.append(once(d))
            warm.append(once(d))
    return {"cold": float(np.median(cold)), "warm": float(np.median(warm)),
            "compile": float(np.median(cold) - np.median(warm))}


def _main(argv=None):
    p = argparse.ArgumentParser(description="memory child process of benchmarks/run.py")
    p.add_argument("--lib", required=True)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--data", default="mnist")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    a = p.parse_args(argv)
    print(json.dumps(rss_child(a.lib, a.batch, a.data, a.threads, a.data_dir)))


if __name__ == "__main__":
    _main()
