"""Data-parallel training over MPI with a real ``mpiexec -n 2`` on this machine (loopback).

Skipped, with the reason, where mpi4py or an ``mpiexec`` is not installed (``pip install 'steepest[mpi]'``).
"""

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="needs mpi4py and an MPI: pip install 'steepest[mpi]'")
pytest.importorskip("sklearn", reason="the MPI tests train on scikit-learn's digits")
MPIEXEC = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
if MPIEXEC is None:
    pytest.skip("no mpiexec found (pip install mpich puts one next to python)", allow_module_level=True)

HERE = Path(__file__).parent
CLI = ["--dataset", "digits", "--hidden", "32", "--threads", "1", "--seed", "0"]


def mpiexec(k, *args, flags=(), timeout=240, **kw):
    return subprocess.run([MPIEXEC, *flags, "-n", str(k), sys.executable, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, **kw)


def steepest(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "steepest", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_two_ranks_end_on_the_theta_of_one_process(tmp_path):
    """Full-batch GD and SGD (uneven shares) in float64 to 1e-12 after 50 steps, with dropout too, in float32
    to its rounding;
    the ‖∇L‖ < ε rule (full-batch GD, and SGD measuring the full gradient every 5 steps) stops the 2 ranks at
    the step, for the reason and on the θ of one process."""
    two = mpiexec(2, HERE / "mpi_worker.py", "same", tmp_path / "two.npz")
    assert two.returncode == 0, two.stderr
    one = subprocess.run([sys.executable, HERE / "mpi_worker.py", "same", tmp_path / "one.npz"], capture_output=True,
                         text=True, timeout=240)
    assert one.returncode == 0, one.stderr
    a, b = np.load(tmp_path / "two.npz"), np.load(tmp_path / "one.npz")
    for name in ("gd64", "sgd64", "gd_eps64", "sgd_eps64", "sgd_drop64", "sgd_drop64_numba", "gd_drop64"):
        assert rel(a[name], b[name]) <= 1e-12, name  # dropout: each rank drew the masks of its own rows 0…n_r−1
    for name in ("gd32", "sgd32"):
        assert a[name].dtype == b[name].dtype == np.float32
        assert rel(a[name], b[name]) <= 50 * np.finfo(np.float32).eps, name  # 50 steps of float32 rounding
        # and these are float32 runs: the float64 run of the same steps is far off float64's 1e-12 agreement
        assert rel(b[name], b[name.replace("32", "64")]) > 1e-9, name
    # every rank counted the global rows: the same counters as one process, on both ranks
    counters = [(tmp_path / f"{name}.npz.rank{r}").read_text() for name, r in (("two", 0), ("two", 1), ("one", 0))]
    assert counters[0] == counters[1] == counters[2]
    ends = ast.literal_eval(counters[0])  # name → (step, stop reason, samples, grad_evals)
    for name in ("gd_eps64", "sgd_eps64"):
        assert ends[name][1] == "grad_norm" and ends[name][0] < 50, ends[name]  # ε, not the step limit


def test_theta_check_and_agreed_time_budget(tmp_path):
    bad = mpiexec(2, HERE / "mpi_worker.py", "diverge", tmp_path / "diverge")
    assert bad.returncode == 2
    assert "θ is no longer the same on the 2 processes after epoch 1" in bad.stderr
    # a time budget reached on rank 1 alone: both stop, at the same step, no hang
    budget = mpiexec(2, HERE / "mpi_worker.py", "budget", tmp_path / "budget", timeout=120)
    assert budget.returncode == 0, budget.stderr
    steps = {(tmp_path / f"budget.rank{r}").read_text() for r in (0, 1)}
    assert len(steps) == 1 and "time_budget" in steps.pop()
    # rank 0 did not run out of time: it says whose clock stopped the run, not that something failed
    said = (tmp_path / "budget.message0").read_text()
    assert "the time budget ran out on another process of the run first" in said, said


def test_cli_rank_zero_writes_and_matches_one_process(tmp_path):
    args = ["train", *CLI, "--optimizer", "gd", "--batch-size", "full", "--lr", "0.5", "--epochs", "20",
            "--dtype", "float64", "--json"]
    two = mpiexec(2, "-m", "steepest", *args, "--out", tmp_path / "two")
    assert two.returncode == 0, two.stderr
    one = steepest(*args, "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    lines2, lines1 = two.stdout.splitlines(), one.stdout.splitlines()
    assert len(lines2) == len(lines1)  # rank 1 printed nothing
    end2, end1 = json.loads(lines2[-1]), json.loads(lines1[-1])
    assert end2["event"] == "end" and end2["steps"] == end1["steps"] == 20
    assert end2["samples"] == end1["samples"] and end2["grad_evals"] == end1["grad_evals"]
    assert abs(end2["train_loss"] - end1["train_loss"]) <= 1e-12 * end1["train_loss"]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    from steepest.io import load_model

    assert rel(load_model(tmp_path / "two" / "model.safetensors")[1],
               load_model(tmp_path / "one" / "model.safetensors")[1]) <= 1e-12


def test_bad_launches_exit_2_with_rank_zero_saying_why(tmp_path):
    many = mpiexec(3, "-m", "steepest", "train", *CLI, "--batch-size", "2", "--epochs", "1", "--out",
                   tmp_path / "many")
    assert many.returncode == 2
    assert many.stderr.count("steepest: error: 3 processes for batches of 2 rows") == 1, many.stderr
    assert not (tmp_path / "many").exists()
    cmd = [sys.executable, "-m", "steepest", "train", *CLI, "--epochs", "1", "--out", str(tmp_path / "unalike")]
    unalike = subprocess.run([MPIEXEC, "-n", "1", *cmd, "--lr", "0.1", ":", "-n", "1", *cmd, "--lr", "0.2"],
                             capture_output=True, text=True, timeout=240)
    assert unalike.returncode == 2
    assert unalike.stderr.count("steepest: error: the 2 processes were not started alike") == 1, unalike.stderr
    assert not (tmp_path / "unalike").exists()


def test_ranks_given_different_data_exit_2_with_rank_zero_saying_why(tmp_path):
    """MPMD launches whose two ranks read different data — another dataset (digits and moons), then two
    files of the same name and shape that differ in one value — end, every rank, with status 2 and one
    line, from rank 0 (``-prepend-rank`` marks each line with its rank); no run directory is left."""
    base = np.random.default_rng(0).normal(size=(200, 5))
    for where, bump in (("A", 0.0), ("B", 1e-3)):  # rank 0 reads A/data.npz, rank 1 B/data.npz
        (tmp_path / where).mkdir()
        X = base.copy()
        X[123, 3] += bump
        np.savez(tmp_path / where / "data.npz", X=X, y=(base[:, 0] > 0).astype(np.int64))
    opts = ["--hidden", "8", "--threads", "1", "--seed", "0", "--epochs", "1"]
    for k, (d0, d1) in enumerate((("digits", "moons"), ("A/data.npz", "B/data.npz"))):
        out = tmp_path / f"run{k}"
        cmd = [sys.executable, "-m", "steepest", "train", *opts, "--out", str(out), "--dataset"]
        res = subprocess.run([MPIEXEC, "-prepend-rank", "-n", "1", *cmd, d0, ":", "-n", "1", *cmd, d1],
                             capture_output=True, text=True, timeout=240, cwd=tmp_path)
        assert res.returncode == 2, (d0, d1, res.returncode, res.stderr)
        said = [line for line in res.stderr.splitlines() if "steepest: error:" in line]
        assert len(said) == 1 and said[0].startswith("[0] steepest: error: the 2 processes were not started "
                                                     "alike: rank(s) 1 have another configuration, starting θ, data"), res.stderr
        assert not out.exists()


#: long enough that the kill lands mid-run on a fast, quiet machine too (the compiled step runs a digits
#: epoch of 45 steps in a few milliseconds): the run must still be going when its first checkpoint is seen
EPOCHS = 400


def _kill_rank_1(proc, out: Path, marker: str):
    """Once the run has a checkpoint, SIGKILL its rank 1 (found by its launcher's PMI_RANK)."""
    ckpt = out / "checkpoints" / "checkpoint.safetensors"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert ckpt.exists(), "the run wrote no checkpoint"
    assert proc.poll() is None, "the run ended before rank 1 could be killed: make it longer"
    time.sleep(0.2)
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in cmdline and b"PMI_RANK=1" in environ:
            os.kill(pid, signal.SIGKILL)
            return time.monotonic()
    raise AssertionError("rank 1 not found")


def test_a_killed_rank_stops_all_and_the_run_resumes_with_any_k(tmp_path):
    """mpiexec (MPICH) kills the other ranks at once and says which one died; the checkpoint is intact and
    the run finishes from it with 1 process or with 2, on the θ of a run never killed."""
    out = tmp_path / "run"
    args = ["train", *CLI, "--batch-size", "32", "--lr", "0.05", "--optimizer", "momentum", "--epochs", str(EPOCHS),
            "--dtype", "float64", "--checkpoint-every", "25", "--quiet"]
    proc = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable, "-m", "steepest", *args, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = _kill_rank_1(proc, out, str(out))
    stdout, _ = proc.communicate(timeout=60)
    assert time.monotonic() - killed < 30
    assert proc.returncode != 0 and "Killed (signal 9)" in stdout
    from steepest.io import load_checkpoint, load_model

    _, state, _ = load_checkpoint(out / "checkpoints" / "checkpoint.safetensors")  # intact
    assert 0 < state.step < EPOCHS * 45
    shutil.copytree(out, tmp_path / "again")
    reference = steepest(*args, "--out", tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr
    want = load_model(tmp_path / "reference" / "model.safetensors")[1]
    for k, where in ((1, out), (2, tmp_path / "again")):
        res = mpiexec(k, "-m", "steepest", "train", "--resume", where) if k > 1 else steepest("train", "--resume", where)
        assert res.returncode == 0, res.stderr
        assert rel(load_model(where / "model.safetensors")[1], want) <= 1e-12


def test_a_survivor_that_is_not_killed_says_so_and_exits(tmp_path):
    """A rank leaves without a word (os._exit at step 20) under ``mpiexec -disable-auto-cleanup``, which
    then leaves the others running: the survivor stuck in the allreduce writes one line and exits with
    status 3 instead of hanging. (Hydra then no longer forwards the survivors' stderr reliably, so each
    rank's goes to a file.)"""
    worker = f"{sys.executable} {HERE / 'mpi_worker.py'} fault {tmp_path / 'fault'}"
    t0 = time.monotonic()
    run = subprocess.run([MPIEXEC, "-disable-auto-cleanup", "-n", "2", "sh", "-c",
                          f"exec {worker} 2>{tmp_path}/rank$PMI_RANK.err"], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and time.monotonic() - t0 < 90
    line = (tmp_path / "rank0.err").read_text().splitlines()
    assert len(line) == 1 and line[0].startswith("steepest: error: rank 0 of 2: ") and "stops too" in line[0]


def test_a_sigkilled_rank_without_auto_cleanup_leaves_the_survivor_one_line(tmp_path):
    """SIGKILL rank 1 of a real `steepest train` under ``mpiexec -disable-auto-cleanup``: rank 0 ends
    within 30 s, non-zero, with steepest's one line naming the launcher's signal or the dead rank, and the
    resume command — also when hydra's proxy SIGKILLs it before sending SIGUSR1 (it does so for a rank a
    signal ended; then rank 0's helper writes the line); the checkpoint is intact and `--resume` with 1
    process finishes the run."""
    out = tmp_path / "run"
    train = (f"exec {sys.executable} -m steepest train {' '.join(CLI)} --batch-size 32 --epochs {EPOCHS} "
             f"--checkpoint-every 25 --quiet --out {out} 2>{tmp_path}/rank$PMI_RANK.err")
    proc = subprocess.Popen([MPIEXEC, "-disable-auto-cleanup", "-n", "2", "sh", "-c", train],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = _kill_rank_1(proc, out, str(out))
    said = proc.communicate(timeout=90)
    assert proc.returncode != 0 and time.monotonic() - killed < 30
    lines = (tmp_path / "rank0.err").read_text().splitlines()
    assert len(lines) == 1, (proc.returncode, lines, said)
    assert lines[0].startswith("steepest: error: rank 0 of 2: "), lines
    # MPICH's launcher tells the survivor by SIGUSR1 — which may land on any thread, OpenBLAS's too — or
    # SIGKILLs it first (then its helper names the dead peer): a third to half of the runs lost the line before.
    assert "the launcher sent SIGUSR1" in lines[0] or "(rank 1) has ended" in lines[0], lines
    assert f"--resume {out}" in lines[0]
    from steepest.io import load_checkpoint

    _, state, _ = load_checkpoint(out / "checkpoints" / "checkpoint.safetensors")
    assert 0 < state.step < EPOCHS * 45
    res = steepest("train", "--resume", out)
    assert res.returncode == 0, res.stderr
    assert (out / "model.safetensors").exists()


def test_config_says_the_thread_count_is_not_measured_under_mpi(tmp_path):
    """config.toml said 'the count is measured while training' of an MPI run, where it is not."""
    r = mpiexec(2, "-m", "steepest", "train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--quiet",
                "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    head = (tmp_path / "run" / "config.toml").read_text().split("\n[", 1)[0]
    assert "in each of the 2 processes (not measured under MPI; --threads sets it)" in head, head
    assert "measured while training" not in head
