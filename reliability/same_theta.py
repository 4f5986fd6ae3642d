"""Same θ, bit for bit, before and after a change: run every training configuration in two source trees.

    python reliability/same_theta.py --base 46fb5e1          # a commit (checked out in a temporary worktree)
    python reliability/same_theta.py --base-src ../old/src   # or a source tree

Each configuration — GD, SGD, momentum, Nesterov, Adam, RMSprop, each schedule, clipping, patience,
ε, a resume after an interruption, and the command line's own runs (a new run and one killed with
SIGKILL and resumed) — is trained in a fresh subprocess whose ``PYTHONPATH`` points at one tree; the
script prints the SHA-256 of the final θ bytes of both and exits 1 if any differ. Same machine, same
BLAS kernel and thread count for both (one BLAS thread here), so only the code differs.

Two choices that change float rounding are pinned wherever a tree has them: the element-wise kernels
(``train(..., kernels="numpy")``, ``--kernels numpy``: the reference NumPy code; the compiled ones
round differently) and the BLAS thread count (``--threads 1``: without it the command line measures a
count and may choose another). A tree without an option (the base commit has no kernels) runs its only
code; what was pinned on each side is printed first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name → keyword arguments of steepest.train on the digits data (8×8 images, 10 classes)
CONFIGS = {
    "gd full batch": dict(optimizer="gd", lr=0.5, batch_size=None, epochs=60),
    "gd full batch, eps": dict(optimizer="gd", lr=0.5, batch_size=None, epochs=3000, eps=0.05),
    "sgd": dict(optimizer="sgd", lr=0.05, batch_size=32, epochs=3),
    "sgd B=n (full path)": dict(optimizer="sgd", lr=0.5, batch_size="n", epochs=20),
    "momentum": dict(optimizer="momentum", lr=0.05, batch_size=64, epochs=3),
    "nesterov": dict(optimizer="nesterov", lr=0.05, batch_size=64, epochs=3),
    "adam": dict(optimizer="adam", lr=0.003, batch_size=50, epochs=3),
    "rmsprop": dict(optimizer="rmsprop", lr=0.001, batch_size=50, epochs=3),
    "schedule step": dict(optimizer="momentum", lr=("step", 0.1, {"step_size": 20, "gamma": 0.5}), epochs=3),
    "schedule exponential": dict(optimizer="momentum", lr=("exponential", 0.1, {"gamma": 0.99}), epochs=3),
    "schedule cosine": dict(optimizer="momentum", lr=("cosine", 0.1, {"total_steps": 69, "warmup_steps": 10}),
                            epochs=3),
    "schedule warmup": dict(optimizer="adam", lr=("warmup", 0.003, {"warmup_steps": 30}), epochs=3),
    "schedule onecycle": dict(optimizer="sgd", lr=("onecycle", 0.2, {"total_steps": 69}), epochs=3),
    "clipping": dict(optimizer="momentum", lr=0.5, batch_size=32, epochs=3, clip_norm=0.5),
    "clipping, full batch": dict(optimizer="gd", lr=2.0, batch_size=None, epochs=50, clip_norm=0.3),
    "patience": dict(optimizer="momentum", lr=0.3, batch_size=32, epochs=40, patience=2, val=True),
    "sgd eps every 5 steps": dict(optimizer="momentum", lr=0.05, batch_size=32, epochs=30, eps=0.3,
                                  grad_norm_every=5),
    "weight decay + l2": dict(optimizer="sgd", lr=0.05, batch_size=32, epochs=3, l2=1e-3),
    "max steps": dict(optimizer="adam", lr=0.003, batch_size=50, max_steps=37),
    "resume after interruption": dict(optimizer="adam", lr=0.003, batch_size=32, epochs=4, val=True,
                                      patience=10, interrupt_at=50),
}

WORKER = r'''
import hashlib, json, sys
import numpy as np
import steepest
from steepest.data import load_dataset
from steepest.io import load_checkpoint, save_checkpoint
from steepest.schedules import make_schedule

name, kw, tmp = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
import inspect
if "kernels" in inspect.signature(steepest.train).parameters:
    kw["kernels"] = "numpy"  # the reference code: the compiled kernels round differently
ds = load_dataset("digits")
l2 = kw.pop("l2", 0.0)
net = steepest.MLP([64, 32, 16, 10], activation="relu", input_scale=ds.input_scale, l2=l2)
theta0 = net.init(7, scheme="he", bias="zero")
X, y = ds.X_train, ds.y_train
if kw.pop("val", False):
    kw["val"] = (X[:300], y[:300]); X, y = X[300:], y[300:]
if kw.get("batch_size") == "n":
    kw["batch_size"] = len(y)
kw.setdefault("batch_size", 32)
if isinstance(kw.get("lr"), list):
    sname, base, extra = kw["lr"]; kw["lr"] = make_schedule(sname, base, **extra)
stop_at = kw.pop("interrupt_at", None)
if stop_at is None:
    res = steepest.train(net, theta0, X, y, seed=3, **kw)
else:
    part = steepest.train(net, theta0, X, y, seed=3, callback=lambda e, s: e == "step" and s.step == stop_at, **kw)
    path = save_checkpoint(tmp + "/c.safetensors", net, part.state, {})
    net2, state, _ = load_checkpoint(path)
    res = steepest.train(net2, None, X, y, seed=3, state=state, **kw)
print(json.dumps({"sha": hashlib.sha256(res.theta.tobytes()).hexdigest(), "steps": res.state.step,
                  "stop": res.stop_reason, "kernels": kw.get("kernels")}))
'''

CLI = ["train", "--dataset", "digits", "--hidden", "64", "32", "--batch-size", "16", "--optimizer", "momentum",
       "--lr", "0.02", "--epochs", "12", "--seed", "2", "--quiet", "--val-split", "0.1", "--patience", "20"]
CLI_GD = ["train", "--dataset", "digits", "--hidden", "32", "--optimizer", "gd", "--batch-size", "full",
          "--lr", "0.5", "--epochs", "300", "--seed", "0", "--quiet"]


def env_for(src: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    return env


def cli_pins(src) -> list[str]:
    """``--kernels numpy`` and ``--threads 1`` for ``steepest train`` of the tree ``src``, each where it exists."""
    out = subprocess.run([sys.executable, "-m", "steepest", "train", "--help"], env=env_for(src),
                         capture_output=True, text=True, timeout=300)
    if out.returncode:
        raise SystemExit(f"steepest train --help failed in {src}:\n{out.stderr}")
    return [*(["--kernels", "numpy"] if "--kernels" in out.stdout else []),
            *(["--threads", "1"] if "--threads" in out.stdout else [])]


def library_pins(src) -> str:
    """What ``train()`` of the tree ``src`` is given beyond the configuration: ``kernels="numpy"`` if it has them."""
    out = subprocess.run([sys.executable, "-c", "import inspect, steepest; "
                          "print('kernels' in inspect.signature(steepest.train).parameters)"],
                         env=env_for(src), capture_output=True, text=True, timeout=300)
    return 'kernels="numpy"' if out.stdout.strip() == "True" else "nothing (no kernels option)"


def tree_name(src: Path) -> str:
    """The commit of the tree ``src`` is in, and whether its files differ from that commit."""
    git = ["git", "-C", str(src)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--short", "--", "."], capture_output=True, text=True).stdout.split("\n")
    dirty = [line for line in dirty if line.strip()]
    return f"{head or '?'}" + (f" with {len(dirty)} changed or new file(s) not committed" if dirty else "")


def run_config(src, name, kw, tmp) -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, name, json.dumps(kw), tmp], env=env_for(src),
                         capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise SystemExit(f"{name} failed in {src}:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def model_sha(run: Path) -> str:
    from safetensors.numpy import load_file

    return hashlib.sha256(load_file(run / "model.safetensors")["theta"].tobytes()).hexdigest()


def run_cli(src, args, run: Path, kill_after=None, pins=()) -> dict:
    cmd = [sys.executable, "-m", "steepest", *args, *pins, "--out", str(run)]
    env = env_for(src)
    if kill_after is None:
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=900)
    else:  # SIGKILL once a checkpoint from training (not the first, at step 0) is on disk, then resume
        proc = subprocess.Popen(cmd + ["--checkpoint-every", str(kill_after)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = run / "metrics.jsonl"
        while proc.poll() is None and not (rows.exists() and rows.read_text().count("\n") >= 2):
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        i = pins.index("--threads") if "--threads" in pins else len(pins)  # --kernels is kept in the run's config
        threads = list(pins[i:i + 2])
        subprocess.run([sys.executable, "-m", "steepest", "train", "--resume", str(run), "--quiet", *threads],
                       env=env, check=True, capture_output=True, timeout=900)
    return {"sha": model_sha(run), "steps": None, "stop": None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", help="a commit of this repository to compare with (default 46fb5e1)", default="46fb5e1")
    p.add_argument("--base-src", type=Path, help="a source tree (its src/ directory) instead of --base")
    p.add_argument("--only", nargs="*", help="only these configurations (names as printed)")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if a.base_src is None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tmp / "base"), a.base],
                           check=True, capture_output=True)
            base = tmp / "base" / "src"
        else:
            base = a.base_src
        try:
            return compare(base, ROOT / "src", tmp, a.only)
        finally:
            if a.base_src is None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "base")],
                               capture_output=True)


def compare(base, this, tmp, only) -> int:
    cases = [(n, ("lib", kw)) for n, kw in CONFIGS.items()]
    cases += [("cli momentum, val split, patience", ("cli", CLI, None)),
              ("cli gd full batch 300 epochs", ("cli", CLI_GD, None)),
              ("cli SIGKILL + --resume (this tree) vs uninterrupted (base)", ("cli", CLI, 200))]
    bad = 0
    pins = {side: cli_pins(src) for side, src in (("base", base), ("this", this))}
    for side, src in (("base", base), ("this", this)):
        print(f"{side}: {src} ({tree_name(src)}); train() given {library_pins(src)}; "
              f"steepest train given {' '.join(pins[side]) or 'nothing more'}")
    print(f"{'configuration':58}  {'base θ sha256':16}  {'this θ sha256':16}  same")
    for i, (name, case) in enumerate(cases):
        if only and name not in only:
            continue
        if case[0] == "lib":
            r0 = run_config(base, name, dict(case[1]), str(tmp))
            r1 = run_config(this, name, dict(case[1]), str(tmp))
        else:
            r0 = run_cli(base, case[1], tmp / f"b{i}", pins=pins["base"])
            r1 = run_cli(this, case[1], tmp / f"t{i}", kill_after=case[2], pins=pins["this"])
        same = r0["sha"] == r1["sha"]
        bad += not same
        extra = f"  ({r1['steps']} steps, {r1['stop']})" if r1["steps"] is not None else ""
        print(f"{name:58}  {r0['sha'][:16]}  {r1['sha'][:16]}  {'yes' if same else 'NO'}{extra}", flush=True)
    print("all the same" if not bad else f"{bad} configuration(s) differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
