"""Data-parallel throughput over MPI on this machine, and a model of it past this machine.

    STEEPEST_DATA=../shared/data python benchmarks/mpi_scaling.py [--steps 20] [--full-steps 3] [--repeats 5]

Measures, on MNIST (60,000 × 784, float32) with the 784-256-128-10 network (235,146 parameters):
samples per second of ``steepest.train`` with 1 rank × 1 BLAS thread, 1 rank × 2 threads and 2 ranks ×
1 thread (``mpiexec -n 2``), for full-batch descent and batch 1024; and the time of one in-place
``Allreduce`` of the 235,146-float gradient buffer between 2 local ranks. Then prints the modelled
speed-up for K = 2…64 ranks on 1, 10 and 100 Gb/s links:

    t_step(K) = t_compute / K + t_allreduce(K),
    t_allreduce(K) = 2 (K−1)/K · bytes / bandwidth + 2 (K−1) · α        (ring allreduce, α per message)
    speed-up(K) = t_compute / t_step(K)

with t_compute the measured 1 rank × 1 thread time of a step. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = [784, 256, 128, 10]
ALPHA = 20e-6   # seconds per message of a ring step over Ethernet (TCP), an assumed figure


def _data():
    import numpy as np

    from steepest.data import load_dataset

    ds = load_dataset("mnist", download=False)
    return (ds.X_train.reshape(len(ds.y_train), -1) / np.float32(255)).astype(np.float32), ds.y_train


def worker(batch: str, steps: int, threads: int) -> None:
    """One process of a measurement: train ``steps`` steps; rank 0 prints samples/s (after the first step)."""
    from threadpoolctl import threadpool_limits

    import steepest
    from steepest.parallel import world

    comm = world()
    X, y = _data()
    net = steepest.MLP(SIZES, activation="relu", dtype="float32")
    with threadpool_limits(limits=threads, user_api="blas"):
        r = steepest.train(net, net.init(0, scheme="he"), X, y, optimizer="sgd", lr=0.05,
                           batch_size=None if batch == "full" else int(batch), max_steps=steps, monitor=False,
                           eval_every=10 ** 6, comm=comm)
    s = r.history.steps
    if comm is None or comm.Get_rank() == 0:
        rate = (s["samples"][-1] - s["samples"][0]) / (s["seconds"][-1] - s["seconds"][0])
        print(json.dumps({"samples_per_s": rate, "step_s": (s["seconds"][-1] - s["seconds"][0]) / (steps - 1)}))


def allreduce(reps: int) -> None:
    """Median seconds of one in-place Allreduce of 235,146 float32 between the ranks (rank 0 prints)."""
    import numpy as np
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    buf = np.ones(sum(a * b + b for a, b in zip(SIZES, SIZES[1:])), dtype=np.float32)
    times = []
    for _ in range(reps):
        comm.Barrier()
        t = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        times.append(time.perf_counter() - t)
    if comm.Get_rank() == 0:
        print(json.dumps({"allreduce_s": float(np.median(times)), "floats": buf.size, "bytes": buf.nbytes}))


def _run(ranks: int, *args) -> dict:
    exe = [sys.executable, __file__, *map(str, args)]
    if ranks > 1:
        mpiexec = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        exe = [mpiexec, "-n", str(ranks), *exe]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run(exe, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def model_table(t_compute: float, nbytes: int) -> str:
    rows = ["| ranks K | 1 Gb/s | 10 Gb/s | 100 Gb/s |", "|---:|---:|---:|---:|"]
    for k in (2, 4, 8, 16, 32, 64):
        cells = []
        for gbps in (1, 10, 100):
            t_ar = 2 * (k - 1) / k * nbytes / (gbps * 1e9 / 8) + 2 * (k - 1) * ALPHA
            cells.append(f"{t_compute / (t_compute / k + t_ar):.1f}×")
        rows.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="steps of batch 1024 per measurement")
    p.add_argument("--full-steps", type=int, default=3, help="steps of full-batch descent per measurement")
    p.add_argument("--repeats", type=int, default=5,
                   help="rounds of the three configurations, alternating; medians are reported (default 5)")
    a = p.parse_args()
    import numpy  # noqa: F401  (so that threadpoolctl sees its BLAS)
    from threadpoolctl import threadpool_info

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").exists() else "unknown CPU"
    blas = ", ".join(f"{i['internal_api']} {i.get('version')} {i.get('architecture')}" for i in threadpool_info())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {cpu}, {os.cpu_count()} cores, load average {load:.1f} at the start; BLAS {blas}\n")
    results = {}
    print("| batch | 1 rank × 1 thread | 1 rank × 2 threads | 2 ranks × 1 thread | 2 ranks vs 1×1 | vs 1×2 |")
    print("|---|---:|---:|---:|---:|---:|")
    for batch, steps in (("full", a.full_steps), ("1024", a.steps)):
        rounds = []  # one1, one2, two1 in turn, a.repeats times: a busy spell hits all three alike
        for _ in range(a.repeats):
            rounds.append([_run(1, "--worker", batch, steps, 1), _run(1, "--worker", batch, steps, 2),
                           _run(2, "--worker", batch, steps, 1)])
        med = statistics.median
        r = [med(x[i]["samples_per_s"] for x in rounds) for i in range(3)]
        vs11 = med(x[2]["samples_per_s"] / x[0]["samples_per_s"] for x in rounds)
        vs12 = med(x[2]["samples_per_s"] / x[1]["samples_per_s"] for x in rounds)
        results[batch] = {"step_s": med(x[0]["step_s"] for x in rounds)}
        print(f"| {batch} | {r[0]:,.0f} | {r[1]:,.0f} | {r[2]:,.0f} | {vs11:.2f}× | {vs12:.2f}× |")
    print(f"\n(samples per second and ratios: medians over {a.repeats} alternating rounds; the ratios are "
          "medians of each round's own ratio)")
    ar = _run(2, "--allreduce", 200)
    print(f"\nAllreduce of {ar['floats']:,} float32 ({ar['bytes'] / 1e6:.2f} MB) between 2 local ranks: "
          f"{1e3 * ar['allreduce_s']:.3f} ms (median of 200)\n")
    for batch in ("1024", "full"):
        t = results[batch]["step_s"]
        print(f"Modelled speed-up, batch {batch} (t_compute = {1e3 * t:.1f} ms per step at 1 thread, "
              f"α = {1e6 * ALPHA:.0f} µs):\n")
        print(model_table(t, ar["bytes"]) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--allreduce":
        allreduce(int(sys.argv[2]))
    else:
        main()
