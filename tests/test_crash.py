"""SIGKILL during `steepest train`, at random moments and inside checkpoint writes, then `--resume`:
the newest checkpoint always loads and the run ends on the θ of an uninterrupted one, bit for bit.

The CI-sized version of ``reliability/kill_harness.py`` (which makes 300 kills and writes
reliability/RESULTS.md); the checks after each kill are that script's :func:`inspect`.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _harness():
    path = Path(__file__).resolve().parents[1] / "reliability" / "kill_harness.py"
    spec = importlib.util.spec_from_file_location("steepest_kill_harness", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


harness = _harness()


def test_ten_kills_lose_nothing(tmp_path):
    log = []
    tally = harness.campaign(tmp_path, kills=10, seed=1, configs=("momentum-f32",), per_round=10, log=log.append)
    assert tally.failures == [], "\n".join(log)
    assert tally.kills >= 10 and tally.survived == tally.kills
    assert tally.rounds and all(ok for _, _, ok in tally.rounds)
    assert tally.resumes >= 5  # most kills came after a checkpoint: continued, not started over
    assert tally.during_checkpoint_write >= 1, "no kill landed inside a checkpoint write: " + str(tally)
    assert tally.checks == tally.kills


# ---------------------------------------------------------------- the checks can fail

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run of the harness's configuration (epochs cut to 1), and its checkpoint's state."""
    import subprocess

    from steepest.io import load_checkpoint

    d = tmp_path_factory.mktemp("finished")
    data = harness.write_data(d / "syn.npz", n=400)
    run = d / "run"
    cmd = [sys.executable, "-m", "steepest", *harness.command(data, "momentum-f32", run, "--epochs", "1")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return run, load_checkpoint(run / harness.CHECKPOINT)[1]


def _copy(run, tmp_path):
    import shutil

    return Path(shutil.copytree(run, tmp_path / "run"))


def _check(run, last_step=-1):
    found = []
    tally = harness.Tally()
    state = harness.inspect(run, last_step, tally, found.append)
    return state, found, tally


def test_inspect_passes_an_intact_run_directory(finished, tmp_path):
    run, state = finished
    got, found, _ = _check(_copy(run, tmp_path), last_step=state.step)
    assert found == [] and got.step == state.step


def test_inspect_catches_a_damaged_checkpoint(finished, tmp_path):
    run = _copy(finished[0], tmp_path)
    ckpt = run / harness.CHECKPOINT
    ckpt.write_bytes(ckpt.read_bytes()[:-100])  # what a write in place, cut by a kill, would leave
    _, found, _ = _check(run)
    assert any("does not load" in f for f in found)


def test_inspect_catches_a_checkpoint_that_went_back(finished, tmp_path):
    run, state = finished
    _, found, _ = _check(_copy(run, tmp_path), last_step=state.step + 1)
    assert any("went back" in f for f in found)


def test_inspect_catches_a_stray_file_and_a_model_ahead_of_its_checkpoint(finished, tmp_path):
    from steepest.io import load_model, save_model

    run = _copy(finished[0], tmp_path)
    (run / "checkpoints" / "checkpoint.safetensors.bak").write_bytes(b"x")
    net, theta, meta = load_model(run / "model.safetensors")
    save_model(run / "model.safetensors", net, theta + np.float32(1), meta)
    _, found, _ = _check(run)
    assert any("unexpected file" in f for f in found)
    assert any("not the finished checkpoint" in f for f in found)


def test_inspect_counts_temporary_checkpoints_and_refuses_truncated_ones(finished, tmp_path):
    run = _copy(finished[0], tmp_path)
    ckpt = run / harness.CHECKPOINT
    (ckpt.parent / ".checkpoint.safetensors.ab_cd123.tmp").write_bytes(ckpt.read_bytes()[:5000])
    (ckpt.parent / ".checkpoint.safetensors.xy_zz999.tmp").write_bytes(ckpt.read_bytes())
    (run / ".metrics.csv.qwerty12.tmp").write_text("epoch")
    _, found, tally = _check(run)
    assert found == []
    assert tally.during_checkpoint_write == 2 and tally.temporaries_refused == 1 and tally.temporaries_complete == 1
    assert tally.during_other_write == {"metrics.csv": 1}


@pytest.mark.parametrize("point", ["write", "fsync", "rename"])
def test_killpoint_kills_inside_the_first_checkpoint_write(tmp_path, point):
    """reliability/killpoint.py cuts the write where it says: half the bytes, all of them before
    fsync, or all of them before the rename. The checkpoint itself is never there half-written."""
    from steepest.errors import ModelFileError
    from steepest.io import load_checkpoint

    data = harness.write_data(tmp_path / "syn.npz", n=400)
    run = tmp_path / "run"
    proc = harness.launch(harness.command(data, "momentum-f32", run), ("checkpoint.safetensors", point, 1))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -9, err
    assert not (run / harness.CHECKPOINT).exists()  # the first one: nothing in place yet
    (temp,) = harness.temporaries(run)
    assert temp.name.startswith(".checkpoint.safetensors.") and temp.name.endswith(".tmp")
    if point == "write":
        with pytest.raises(ModelFileError, match="truncated|not a safetensors"):
            load_checkpoint(temp)
    else:
        assert load_checkpoint(temp)[1].step == harness.EVERY
    r = harness.launch(["train", "--resume", str(run)])  # nothing to resume: it starts again from config.toml
    assert r.wait(timeout=300) == 0, r.stderr.read()
    assert (run / "model.safetensors").is_file() and not harness.temporaries(run)
