"""steepest vs PyTorch vs scikit-learn on the CPU, side by side, with the BLAS floor under them.

    python benchmarks/run.py                      # the full run; writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick              # ~20 s: batch 128 only, 10,000 rows, 2 repeats
    python benchmarks/run.py --repeats 7 --threads 1 --out /tmp/R.md

All libraries run in this one process, alternating (the order rotates every repeat), with the same
thread count, float32 and the data already in memory; the report gives medians, spreads and the
ratios steepest/PyTorch and steepest/scikit-learn of the medians. Workloads (workloads.py, memory.py):

  a  one MNIST epoch, 784-256-128-10 ReLU, SGD momentum 0.9, batch 32, 128, 512
  b  one full-batch gradient-descent step over all training samples
  c  training time to 98.0% MNIST test accuracy (one-cycle Nesterov recipe, same in PyTorch)
  d  peak RSS of a fresh training process (a, batch 128) per library; ``import steepest`` time
  e  the thread count: workload a at batch 128, steepest only, at the count ``steepest train``
     measures by default and at each fixed count it chooses from — on the machine as it is, and
     with ``--load K`` again while K other CPU-bound processes run (a laptop or a shared server)
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_VERBOSE")
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "RESULTS.md")

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, help="timed repeats per library (default 5; 2 with --quick)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="threads for every library (default: the CPUs this process may use)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: batch 128 only, first 10,000 rows, 2 repeats, workloads a,b,d")
    p.add_argument("--batches", help="comma-separated batch sizes for workload a (default 32,128,512)")
    p.add_argument("--workloads", help="which of a,b,c,d,e to run (default all; a,b,d with --quick)")
    p.add_argument("--load", type=int, default=0, metavar="K",
                   help="workload e also runs while K competing CPU-bound processes do (default 0: only as "
                        "the machine is)")
    p.add_argument("--libs", default="steepest,PyTorch,scikit-learn",
                   help="libraries to compare (steepest always runs)")
    p.add_argument("--data", help="mnist (default), mnist:N (first N rows) or synthetic:N (random, no files)")
    p.add_argument("--data-dir", help="directory holding mnist/ (default: $STEEPEST_DATA, the cache, a download)")
    p.add_argument("--out", default=DEFAULT_OUT, help="markdown report (default benchmarks/RESULTS.md); '-' for none")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each workload and each repeat, wait up to this long for other processes "
                        "to use < 0.15 CPUs (for shared machines)")
    p.add_argument("--no-rss", action="store_true", help="in workload d, only time the import")
    p.add_argument("--unset-openblas-env", action="store_true",
                   help=f"re-run this process without {' and '.join(OPENBLAS_VARS)} (to see their effect)")
    a = p.parse_args(argv)
    a.argv = list(sys.argv[1:] if argv is None else argv)
    a.repeats = a.repeats or (2 if a.quick else 5)
    a.batches = [int(b) for b in (a.batches or ("128" if a.quick else "32,128,512")).split(",")]
    a.workloads = set((a.workloads or ("a,b,d" if a.quick else "a,b,c,d,e")).replace(" ", "").split(","))
    a.data = a.data or ("mnist:10000" if a.quick else "mnist")
    a.libs = [x.strip() for x in a.libs.split(",") if x.strip()]
    return a


def _reexec_without_openblas_env(args):
    """Replace this process by the same command with the OpenBLAS tuning variables removed."""
    present = [v for v in OPENBLAS_VARS if v in os.environ]
    if not present or os.environ.get("STEEPEST_BENCH_UNSET"):
        return
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    env["STEEPEST_BENCH_UNSET"] = ",".join(f"{v}={os.environ[v]}" for v in present)
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *args.argv], env)


# ----------------------------------------------------------------------------------------- statistics

def summary(times):
    import numpy as np
    t = np.asarray(times, dtype=float)
    return {"median": float(np.median(t)), "min": float(t.min()), "max": float(t.max()),
            "q1": float(np.percentile(t, 25)), "q3": float(np.percentile(t, 75)), "n": int(t.size),
            "times": [float(x) for x in t]}


def alternate(runners, repeats, log=print, before_repeat=None):
    """Time ``runner.run()`` for each runner ``repeats`` times, rotating the order every repeat.

    Each runner first runs once untimed (its "cold" run: first-touch allocations, thread start-up,
    caches); ``before_repeat()``, if given, runs before each repeat (to wait for a quiet machine).
    Returns ``{name: summary + {"cold": seconds, "history_seconds": summary or None}}``.
    """
    out = {r.name: {"times": [], "extra": []} for r in runners}
    for r in runners:
        out[r.name]["cold"] = r.run()
    for i in range(repeats):
        if before_repeat is not None:
            before_repeat()
        k = i % len(runners)
        for r in runners[k:] + runners[:k]:
            out[r.name]["times"].append(r.run())
            if getattr(r, "history_seconds", None) is not None:
                out[r.name]["extra"].append(r.history_seconds)
        log(f"    repeat {i + 1}/{repeats}: " +
            ", ".join(f"{name} {v['times'][-1]:.3f}s" for name, v in out.items()))
    return {name: {**summary(v["times"]), "cold": v["cold"],
                   "history_seconds": summary(v["extra"]) if v["extra"] else None}
            for name, v in out.items()}


class Contention:
    """How much CPU *other* processes used while a workload ran (from /proc/stat minus our own times).

    On a shared 2-core machine a second busy process delays one of our BLAS threads by a scheduler
    slice and every multi-threaded GEMM waits for it; this number says how much of that there was.
    """

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read():
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            busy = (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
            steal = v[7] / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            busy = steal = float("nan")
        return time.perf_counter(), own, busy, steal

    def stop(self):
        """``{"others": mean CPUs used by other processes, "steal": mean CPUs stolen by the host}``."""
        w0, o0, b0, s0 = self.start
        w1, o1, b1, s1 = self._read()
        wall = max(w1 - w0, 1e-9)
        return {"others": max(0.0, (b1 - b0) - (o1 - o0)) / wall, "steal": (s1 - s0) / wall}


def wait_quiet(limit, log, window=3.0, threshold=0.15, quiet_log=True):
    """Sleep in ``window``-second looks until other processes use < ``threshold`` CPUs, at most ``limit`` s."""
    if limit <= 0:
        return None
    t0 = time.perf_counter()
    while True:
        watch = Contention()
        time.sleep(window)
        busy = watch.stop()["others"]
        waited = time.perf_counter() - t0
        if busy < threshold or waited >= limit:
            if quiet_log or waited > 2 * window:
                log(f"    machine: others use {busy:.2f} CPUs after waiting {waited:.0f} s")
            return busy


# ----------------------------------------------------------------------------------------- machine

def machine_info(threads):
    import numpy as np
    info = {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
            "threads": threads, "cpu": platform.processor() or "?", "cores": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)), "flags": "", "env": {}, "blas": []}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu"] = fields.get("model name", info["cpu"])
        info["cpu_family"] = f"family {fields.get('cpu family', '?')} model {fields.get('model', '?')}"
        info["mhz"] = fields.get("cpu MHz")
        flags = fields.get("flags", "").split()
        info["flags"] = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags)
        info["hypervisor"] = "hypervisor" in flags
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem_gb"] = int(f.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    for v in OPENBLAS_VARS + THREAD_VARS:
        if v in os.environ:
            info["env"][v] = os.environ[v]
    info["unset_by_flag"] = os.environ.get("STEEPEST_BENCH_UNSET", "")
    try:
        from threadpoolctl import threadpool_info
        for p in threadpool_info():
            info["blas"].append({k: p.get(k) for k in ("user_api", "internal_api", "prefix", "version",
                                                       "architecture", "threading_layer", "num_threads")}
                                | {"file": os.path.join(*p.get("filepath", "?").split(os.sep)[-2:])})
    except ImportError:
        info["blas"].append({"note": "threadpoolctl not installed"})
    for mod in ("torch", "sklearn", "steepest"):
        if mod in sys.modules:
            info[mod] = getattr(sys.modules[mod], "__version__", "?")
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        try:
            info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        except AttributeError:
            pass
        info["torch_threads"] = torch.get_num_threads()
        info["torch_mkl"] = bool(torch.backends.mkl.is_available())
        info["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    info["loadavg_start"] = os.getloadavg()
    return info


# ----------------------------------------------------------------------------------------- workloads

def _libs_available(args, log):
    libs = {"steepest"}
    for name, mod in (("PyTorch", "torch"), ("scikit-learn", "sklearn.neural_network")):
        if name not in args.libs:
            continue
        try:
            __import__(mod)
            libs.add(name)
        except ImportError:
            log(f"  {name} is not installed: skipped (pip install -e '.[bench]')")
    return libs


NUMPY_PATH = "steepest, NumPy path"   # the reference code, without the compiled kernels


def workload_a(W, data, X01, args, libs, log):
    res = {}
    for B in args.batches:
        log(f"  (a) one epoch, batch {B}")
        runners = [W.GemmFloor(data.n, B), W.Steepest(data, B)]
        if B == 128:  # the fused kernels' effect, in the same run: steepest's NumPy reference path
            runners.append(W.Steepest(data, B, kernels="numpy", name=NUMPY_PATH))
        if "PyTorch" in libs:
            runners.append(W.Torch(data, B, X01=X01))
        if "scikit-learn" in libs:
            runners.append(W.Sklearn(data, B, X01=X01))
        r = alternate(runners, args.repeats, log, args.before_repeat)
        r["GEMM floor"]["gflops"] = runners[0].flops / 1e9
        res[B] = r
    return res


def workload_b(W, data, X01, args, libs, log):
    log(f"  (b) one full-batch step over {data.n} samples")
    runners = [W.GemmFloor(data.n, "full"), W.Steepest(data, "full"), W.Steepest(data, "full", kernels="numpy",
                                                                            name=NUMPY_PATH)]
    if "PyTorch" in libs:
        runners.append(W.Torch(data, "full", X01=X01))
    if "scikit-learn" in libs:
        runners.append(W.Sklearn(data, "full", X01=X01))
    r = alternate(runners, args.repeats, log, args.before_repeat)
    r["GEMM floor"]["gflops"] = runners[0].flops / 1e9
    del runners
    return r


def workload_c(W, data, X01, args, libs, log):
    import numpy as np
    recipe = W.Recipe(hidden=(256, 128), batch=128, max_lr=0.15, epochs=4, nesterov=True)
    order = ["steepest"] + (["PyTorch"] if "PyTorch" in libs else [])
    runs = {lib: [] for lib in order}
    reps = max(1, min(args.repeats, 3))
    Xt01 = W.as_float01(data.X_test)
    log(f"  (c) time to {recipe.target:.1%}: {recipe.describe()}")
    for i in range(reps):
        for lib in order[i % len(order):] + order[:i % len(order)]:
            if args.before_repeat is not None:
                args.before_repeat()
            o = W.time_to_accuracy(lib, data, recipe, X01=X01, Xt01=Xt01)
            runs[lib].append(o)
            log(f"    {lib}: test acc per epoch {[round(a, 4) for a in o['acc']]}, "
                f"98% after {o['epochs']} epochs, {o['seconds'] if o['seconds'] is None else round(o['seconds'], 2)}s")
    out = {"recipe": recipe.describe(), "recipe_batch": recipe.batch, "recipe_hidden": tuple(recipe.hidden),
           "target": recipe.target, "repeats": reps, "libs": {}}
    for lib, os_ in runs.items():
        hit = [o["seconds"] for o in os_ if o["seconds"] is not None]
        out["libs"][lib] = {
            "seconds": summary(hit) if hit else None, "hits": len(hit), "runs": len(os_),
            "epochs": sorted({o["epochs"] for o in os_}, key=lambda e: (e is None, e)),
            "final_acc": float(np.median([o["acc"][-1] for o in os_])),
            "total": summary([sum(o["times"]) for o in os_]),
            "acc": [o["acc"] for o in os_],
        }
    return out


def competing(k):
    """K CPU-bound processes (pure Python loops) that run until killed: the busy machine of workload e."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def workload_e(W, data, args, log, batch=128):
    counts = sorted({1, max(1, args.threads // 2), args.threads})
    out = {"batch": batch, "counts": counts, "loads": {}}
    for load in ([0, args.load] if args.load else [0]):
        log(f"  (e) one epoch, batch {batch}: measured thread count vs fixed {counts}, "
            f"{load} competing process{'es' * (load != 1)}")
        hogs = competing(load)
        try:
            runners = [W.Steepest(data, batch, measured=True, name="measured")]
            runners += [W.Steepest(data, batch, threads=n, name=f"{n} thread{'s' * (n > 1)}") for n in counts]
            r = alternate(runners, args.repeats, log)  # no waiting for quiet: the load is the point
            r["measured"]["policy"] = runners[0].policy.record()
        finally:
            for h in hogs:
                h.kill()
                h.wait()
        out["loads"][load] = r
    return out


def workload_d(W, args, libs, log):
    import memory as M
    out = {"rss": {}, "import": {}}
    reps = 3 if args.quick else 7
    if not args.no_rss:
        log("  (d) peak RSS of one training epoch (batch 128) in a fresh process per library")
        for lib in ["steepest"] + [x for x in ("PyTorch", "scikit-learn") if x in libs]:
            rows = [M.peak_rss(lib, 128, args.data, args.threads, args.data_dir) for _ in range(1 if args.quick else 2)]
            best = min(rows, key=lambda r: r["peak_kb"])   # peak RSS is nearly deterministic; keep the lower
            out["rss"][lib] = best
            log(f"    {lib}: peak {best['peak_kb'] / 1024:.0f} MiB "
                f"(after import {best['after_import_kb'] / 1024:.0f}, after data {best['after_data_kb'] / 1024:.0f})")
    log(f"  (d) import time, median of {reps} fresh interpreters")
    for mod in ["steepest"] + [m for m, lib in (("torch", "PyTorch"), ("sklearn.neural_network", "scikit-learn"))
                               if lib in libs]:
        out["import"][mod] = M.import_time(mod, reps)
        log(f"    import {mod}: {out['import'][mod]['seconds'] * 1e3:.0f} ms")
    try:
        import numba  # noqa: F401
        out["compile"] = M.compile_time(2 if args.quick else 3)
        log(f"  (d) numba kernels: first two steps {out['compile']['cold']:.2f} s with an empty cache, "
            f"{out['compile']['warm']:.2f} s with the cache: compile {out['compile']['compile']:.2f} s")
    except ImportError:
        log("  (d) numba not installed: steepest runs its NumPy reference path")
    return out


# ----------------------------------------------------------------------------------------- main

def main(argv=None, log=print):
    args = parse_args(argv)
    if args.unset_openblas_env:
        _reexec_without_openblas_env(args)
    sys.path.insert(0, HERE)
    import workloads as W

    t_start = time.perf_counter()
    libs = _libs_available(args, log)
    limiter = W.set_threads(args.threads)  # noqa: F841  (keeps the limits for the whole run)
    import steepest  # noqa: F401
    info = machine_info(args.threads)
    log(f"steepest benchmark: {info['cpu']}, {args.threads} threads, repeats {args.repeats}, "
        f"workloads {','.join(sorted(args.workloads))}")
    blas = sorted((b for b in info["blas"] if b.get("user_api") == "blas"),
                  key=lambda b: "numpy" not in b.get("file", ""))  # NumPy's own BLAS first
    if blas:
        log(f"  numpy BLAS: {blas[0].get('prefix')} {blas[0].get('version')} kernel {blas[0].get('architecture')}; "
            f"env {info['env'] or 'clean'}")
    args.before_repeat = None
    if args.wait_quiet > 0:
        def _before():
            wait_quiet(args.wait_quiet, log, window=1.0, quiet_log=False)
        args.before_repeat = _before
    results = {}
    data = W.load_data(args.data, args.data_dir)
    results["data_source"] = f"{data.source}: train {data.X.shape} {data.X.dtype}, test {data.X_test.shape}"
    X01 = W.as_float01(data.X) if libs - {"steepest"} else None
    shapes = [(128, 784, 256), (784, 128, 256), (128, 256, 128), (1024, 1024, 1024), (2048, 2048, 2048)]
    wait_quiet(args.wait_quiet, log)
    results["sgemm"] = W.sgemm_rate(shapes[:3] if args.quick else shapes)
    log("  SGEMM GFLOP/s: " + ", ".join(f"{'x'.join(map(str, r['shape']))} {r['gflops']:.0f}"
                                       for r in results["sgemm"]))
    results["contention"] = {}
    for key, fn, fargs in (("a", workload_a, (W, data, X01, args, libs, log)),
                           ("b", workload_b, (W, data, X01, args, libs, log)),
                           ("c", workload_c, (W, data, X01, args, libs, log)),
                           ("d", workload_d, (W, args, libs, log)),
                           ("e", workload_e, (W, data, args, log))):
        if key in args.workloads:
            wait_quiet(args.wait_quiet, log)
            watch = Contention()
            results[key] = fn(*fargs)
            results["contention"][key] = c = watch.stop()
            log(f"    other processes used {c['others']:.2f} CPUs on average during ({key})")
    from report import render
    text = render(results, info, args, time.perf_counter() - t_start)
    log("")
    log(text)
    if args.out and args.out != "-":
        with open(args.out, "w") as f:
            f.write(text)
        log(f"written to {args.out}")
    results["report"] = text
    results["info"] = info
    return results


if __name__ == "__main__":
    main()
