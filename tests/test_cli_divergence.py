"""A learning rate that blows training up, through the real command: it stops at the step it
happens, saves the last finite θ, says so with the flags to change, and exits 1; ``--clip-norm``
keeps the same run finite."""

import re

import numpy as np
import pytest

from steepest.io import load_checkpoint, load_model
from clirun import steepest

# Plain SGD at η = 1000 on this problem blows up within a few steps (at step 3 with OpenBLAS on x86-64).
BLOWUP = ["--hidden", "32", "16", "--optimizer", "sgd", "--lr", "1000", "--batch-size", "128", "--epochs", "3",
          "--seed", "0"]




@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 32)).astype(np.float32)
    W = rng.normal(size=(32, 5))
    X_test = rng.normal(size=(300, 32)).astype(np.float32)
    path = tmp_path_factory.mktemp("divergence") / "syn.npz"
    np.savez(path, X=X, y=(X @ W).argmax(1), X_test=X_test, y_test=(X_test @ W).argmax(1))
    return path


@pytest.fixture(scope="module")
def diverged(data, tmp_path_factory):
    """(run directory, completed process, the diverged line) of the run that blows up, with --quiet."""
    run = tmp_path_factory.mktemp("diverged") / "run"
    r = steepest("train", "--dataset", data, *BLOWUP, "--out", run, "--quiet")
    lines = [x for x in r.stdout.splitlines() if x.startswith("stopped: diverged")]
    return run, r, lines[0] if lines else ""


def test_divergence_exits_1_and_says_where_and_what_to_change(diverged):
    run, r, line = diverged
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr == ""
    assert line, "--quiet must not hide why the run failed: " + r.stdout
    step = int(re.search(r"diverged at step (\d+)", line).group(1))
    assert 1 <= step < 15  # the first epoch: detected at once, not at the epoch's end
    assert "(learning rate 1000)" in line
    assert "smaller --lr (e.g. --lr 100)" in line and "--clip-norm" in line


def test_divergence_names_the_layer(diverged):
    _, _, line = diverged
    assert re.search(r"gradient of layer[123]\b", line), line


def test_divergence_saves_the_last_finite_theta(data, diverged, tmp_path):
    """The model is θ after the last step whose loss and gradient were finite: the θ that
    `--max-steps` (that many steps) gives, bit for bit."""
    run, _, line = diverged
    step = int(re.search(r"diverged at step (\d+)", line).group(1))
    net, theta, meta = load_model(run / "model.safetensors")
    assert np.isfinite(theta).all()
    assert meta["metrics"]["stop_reason"] == "diverged" and meta["metrics"]["steps"] == step
    assert f"step {step}" in meta["metrics"]["stop_message"]
    r = steepest("train", "--dataset", data, *BLOWUP, "--max-steps", step - 1, "--out", tmp_path / "short",
                 "--quiet")
    assert r.returncode == 0, r.stderr
    assert load_model(tmp_path / "short" / "model.safetensors")[1].tobytes() == theta.tobytes()

    _, state, _ = load_checkpoint(run / "checkpoints" / "checkpoint.safetensors")
    assert state.stop_reason == "diverged" and state.theta.tobytes() == theta.tobytes()
    again = steepest("train", "--resume", run)  # a diverged run is finished, not resumable
    assert again.returncode == 2 and "already finished (diverged" in again.stderr


def test_json_end_event_reports_the_divergence(data, tmp_path):
    import json

    r = steepest("train", "--dataset", data, *BLOWUP, "--out", tmp_path / "run", "--json")
    assert r.returncode == 1
    end = json.loads(r.stdout.splitlines()[-1])
    assert end["event"] == "end" and end["stop_reason"] == "diverged" and "diverged at step" in end["stop_message"]
    assert "stopped: diverged" in r.stderr and "--clip-norm" in r.stderr  # words on stderr with --json


def test_clip_norm_keeps_the_same_run_finite(data, tmp_path):
    r = steepest("train", "--dataset", data, *BLOWUP, "--clip-norm", "0.001", "--out", tmp_path / "run", "--json")
    assert r.returncode == 0, r.stderr
    end = r.stdout.splitlines()[-1]
    assert '"stop_reason": "max_epochs"' in end
    _, theta, meta = load_model(tmp_path / "run" / "model.safetensors")
    assert np.isfinite(theta).all() and meta["training"]["clip_norm"] == 0.001
    assert meta["metrics"]["test_acc"] > 0.5  # it learned (5 classes: chance is 0.2)


def test_divergence_hint_after_clipping_asks_for_a_smaller_clip(data, tmp_path):
    r = steepest("train", "--dataset", data, *BLOWUP, "--clip-norm", "1e30",
                 "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 1
    assert "a smaller --clip-norm than 1e+30" in r.stdout
