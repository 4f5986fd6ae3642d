"""How much of a long full-batch run is descent, and how much is bookkeeping.

    python benchmarks/loop_overhead.py [--steps 1000] [--repeats 3] [--base-src DIR/src]

Runs the real command ``steepest train --dataset digits --hidden 256 128 --optimizer gd --batch-size full``
with default options for ``--steps`` epochs (= steps) and for 1 step, each ``--repeats`` times,
alternating, and reports medians of: the process's wall time, the seconds spent in optimizer steps
(recorded by the run itself, ``metrics.seconds`` in the model file), and

    share in steps = (steps_N − steps_1) / (wall_N − wall_1),

the part of the wall time added by the N − 1 extra steps (start-up, data loading and the final save
cancel out) that went into the steps themselves. With ``--base-src`` the same is measured for another
source tree in the same run (e.g. the code before the loop was split into parts).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["train", "--dataset", "digits", "--hidden", "256", "128", "--optimizer", "gd", "--batch-size", "full",
        "--lr", "0.5", "--seed", "0", "--quiet"]


def run_once(src: Path, steps: int, out: Path) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "steepest", *ARGS, "--epochs", str(steps), "--out", str(out)],
                   env=env, check=True, capture_output=True, timeout=1800)
    wall = time.perf_counter() - t
    from steepest.io import load_model

    meta = load_model(out / "model.safetensors")[2]
    return wall, float(meta["metrics"]["seconds"])


def measure(src: Path, steps: int, repeats: int, tmp: Path, tag: str) -> dict:
    rows = {1: [], steps: []}
    for r in range(repeats):
        for n in (steps, 1):
            rows[n].append(run_once(src, n, tmp / f"{tag}-{n}-{r}"))
    med = {n: (statistics.median(w for w, _ in v), statistics.median(s for _, s in v)) for n, v in rows.items()}
    (w1, s1), (wn, sn) = med[1], med[steps]
    return {"wall_1": w1, "wall_n": wn, "steps_n": sn, "share": (sn - s1) / (wn - w1)}


def dispatch_cost(repeats: int) -> dict:
    """What one no-op step listener costs per step, against a step itself.

    The dispatch is timed directly (``Listeners.step_end`` with 0 and with 50 no-op listeners, 20,000
    calls, best of ``repeats``), since its cost is far below the noise of a step; the step is a
    784-256-128-10 network at batch 128 on synthetic data (median of ``repeats`` one-epoch runs).
    """
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from steepest import MLP, train
    from steepest.events import Listener, Listeners

    class Nop(Listener):
        def on_step_end(self, run, rec):
            return None

    def per_call(k, calls=20_000):
        ls = Listeners([Nop() for _ in range(k)])
        t = time.perf_counter()
        for _ in range(calls):
            ls.step_end(None, None)
        return (time.perf_counter() - t) / calls

    best = {k: min(per_call(k) for _ in range(repeats)) for k in (0, 50)}
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, size=(128 * 100, 784), dtype=np.uint8), rng.integers(0, 10, 128 * 100)
    net = MLP([784, 256, 128, 10], input_scale=1 / 255)
    steps = [train(net, net.init(0), X, y, optimizer="momentum", lr=0.01, batch_size=128, epochs=1, monitor=False)
             for _ in range(repeats)]
    step = statistics.median(r.state.seconds / r.state.step for r in steps)
    return {"step": step, "per_listener": (best[50] - best[0]) / 50}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--base-src", type=Path, help="also measure this source tree (its src/ directory)")
    a = p.parse_args(argv)
    d = dispatch_cost(a.repeats)
    print(f"one step (784-256-128-10, batch 128): {1e3 * d['step']:.2f} ms; one no-op step listener adds "
          f"{1e6 * d['per_listener']:.2f} µs ({100 * d['per_listener'] / d['step']:.3f}% of a step)")
    trees = [("this tree", ROOT / "src")] + ([("base", a.base_src.resolve())] if a.base_src else [])
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'tree':10} {'wall, 1 step':>13} {'wall, ' + str(a.steps) + ' steps':>16} {'in steps':>9} "
              f"{'share of added wall time in steps':>34}")
        for tag, src in trees:
            m = measure(src, a.steps, a.repeats, Path(tmp), tag.replace(" ", "_"))
            print(f"{tag:10} {m['wall_1']:12.2f}s {m['wall_n']:15.2f}s {m['steps_n']:8.2f}s {100 * m['share']:33.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
