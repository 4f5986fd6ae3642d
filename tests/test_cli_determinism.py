"""What is promised: the same seed, thread count, dtype and NumPy/BLAS build give the same θ, bit
for bit. The same `steepest train` in two processes, and the run metadata that records all four."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from steepest.io import load_checkpoint, load_model
from clirun import steepest




@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 20)).astype(np.float32)
    y = (X @ rng.normal(size=(20, 4))).argmax(1)
    path = tmp_path_factory.mktemp("determinism") / "syn.npz"
    np.savez(path, X=X, y=y)
    return path


def train(data, run, *more, env=None):
    r = steepest("train", "--dataset", data, "--hidden", "64", "32", "--optimizer", "adam", "--lr", "0.003",
                 "--batch-size", "16", "--epochs", "3", "--val-split", "0.2", "--out", run, "--quiet", *more, env=env)
    assert r.returncode == 0, r.stderr
    return load_model(run / "model.safetensors")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_command_in_two_processes_gives_the_same_theta_bytes(data, tmp_path, dtype):
    args = ["--seed", "7", "--threads", "1", "--dtype", dtype]
    _, a, meta_a = train(data, tmp_path / "a", *args)
    _, b, meta_b = train(data, tmp_path / "b", *args)
    assert a.dtype == np.dtype(dtype) and a.size > 3000
    assert a.tobytes() == b.tobytes()
    assert meta_a["metrics"]["train_loss"] == meta_b["metrics"]["train_loss"]
    _, c, _ = train(data, tmp_path / "c", "--seed", "8", "--threads", "1", "--dtype", dtype)
    assert c.tobytes() != a.tobytes()  # the comparison can fail: another seed, another θ


def blas_of_a_fresh_numpy():
    """threadpoolctl's view of the BLAS a process that imports NumPy alone loads (this process may
    hold more: SciPy's, PyTorch's)."""
    code = ("import json, numpy, threadpoolctl; print(json.dumps([p for p in threadpoolctl.threadpool_info() "
            "if p['user_api'] == 'blas']))")
    return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_the_run_records_seed_threads_dtype_and_the_numpy_blas_build(data, tmp_path):
    run = tmp_path / "run"
    _, _, meta = train(data, run, "--seed", "11", "--threads", "1", "--dtype", "float64")
    env = meta["environment"]
    assert meta["seed"] == 11 and meta["training"]["seed"] == 11
    assert meta["architecture"]["dtype"] == "float64"
    assert env["numpy"] == np.__version__ and env["python"] and env["steepest"]
    # The thread count training ran with (--threads 1), not the library's default.
    assert env["blas_threads"] == 1
    blas = blas_of_a_fresh_numpy()
    assert [b["internal_api"] for b in env["blas"]] == [p["internal_api"] for p in blas] != []
    assert [b["version"] for b in env["blas"]] == [p["version"] for p in blas]
    assert [b.get("architecture") for b in env["blas"]] == [p.get("architecture") for p in blas]
    assert env["variables"] == {k: os.environ[k] for k in env["variables"]}
    # The checkpoint records it as well, and config.toml says it in words.
    assert load_checkpoint(run / "checkpoints" / "checkpoint.safetensors")[2]["seed"] == 11
    text = (run / "config.toml").read_text()
    assert "seed = 11" in text and 'dtype = "float64"' in text
    assert f"NumPy {np.__version__}" in text and f"{blas[0]['internal_api']} {blas[0]['version']}" in text
    assert ", 1 thread" in text.split("# BLAS:")[1].splitlines()[0]


def test_blas_variables_and_the_default_thread_count_are_recorded(data, tmp_path):
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if "OPENBLAS_CORETYPE" in os.environ:  # which kernels OpenBLAS runs: recorded when set
        env["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]
    _, _, meta = train(data, tmp_path / "run", env=env)  # no --threads: the variables decide
    assert {k: meta["environment"]["variables"].get(k) for k in env} == env
    assert meta["environment"]["blas_threads"] == 1
    text = (tmp_path / "run" / "config.toml").read_text()
    assert all(f"{k}={v}" in text for k, v in env.items())


def test_config_toml_with_its_provenance_comments_runs_again_to_the_same_theta(data, tmp_path):
    _, a, _ = train(data, tmp_path / "a", "--seed", "5", "--threads", "1")
    r = steepest("train", "--config", tmp_path / "a" / "config.toml", "--out", tmp_path / "b", "--quiet")
    assert r.returncode == 0, r.stderr
    assert load_model(tmp_path / "b" / "model.safetensors")[1].tobytes() == a.tobytes()
