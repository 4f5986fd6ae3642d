"""Ctrl-C during `steepest train`, then `--resume`: the same θ as an uninterrupted run, bit for bit."""

import json
import signal
import struct
import subprocess
import sys
import time

import pytest

from steepest.io import load_checkpoint, load_model
from clirun import steepest as _steepest


def steepest(*args):
    return _steepest(*args, timeout=600)

# Small batches and wide layers make each epoch take a noticeable fraction of a second on digits,
# so there is time to interrupt in the middle. One BLAS thread: tiny matrices go faster that way.
EPOCHS = 20
ARGS = ["train", "--dataset", "digits", "--hidden", "256", "256", "--batch-size", "4", "--lr", "0.01",
        "--optimizer", "momentum", "--epochs", str(EPOCHS), "--seed", "3", "--threads", "1",
        # a checkpoint at each epoch's end (360 steps) and none by the clock, so a kill finds an epoch's
        "--checkpoint-every", "360", "--checkpoint-seconds", "100000"]




def epochs_written(run):
    try:
        return len((run / "metrics.jsonl").read_text().splitlines())
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The uninterrupted run."""
    run = tmp_path_factory.mktemp("resume") / "whole"
    r = steepest(*ARGS, "--out", run, "--quiet")
    assert r.returncode == 0, r.stderr
    return run


def start(run):
    """Start training into ``run``; return the process once two epochs are on disk."""
    # As from a terminal: SIGINT at its default, even when these tests run in the background
    # (where the shell ignores SIGINT, the child inherits that, and Ctrl-C rightly does nothing).
    proc = subprocess.Popen([sys.executable, "-m", "steepest", *ARGS, "--out", str(run), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while epochs_written(run) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "training ended before it could be interrupted: " + proc.communicate()[1]
    return proc


@pytest.mark.skipif(sys.platform == "win32", reason="signals to a child process are POSIX")
@pytest.mark.parametrize("sig, status, said", [(signal.SIGINT, 130, "interrupted at step"),
                                               (signal.SIGTERM, 143, "stopped by SIGTERM at step")])
def test_ctrl_c_or_sigterm_then_resume_gives_the_uninterrupted_theta(tmp_path, whole, sig, status, said):
    run = tmp_path / "interrupted"
    proc = start(run)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == status, err
    assert "Traceback" not in err and said in err
    assert f"steepest train --resume {run}" in err and "checkpoint saved to" in err
    end = json.loads(out.splitlines()[-1])
    assert end["event"] == "end" and end["stop_reason"] == "interrupted" and end["model"] is None
    assert not (run / "model.safetensors").exists()
    _, state, _ = load_checkpoint(run / "checkpoints" / "checkpoint.safetensors")
    assert state.stop_reason == "interrupted" and 2 <= state.epoch < EPOCHS
    stopped_at = state.step

    resumed = steepest("train", "--resume", run, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    lines = [json.loads(x) for x in resumed.stdout.splitlines()]
    assert lines[0]["epoch"] == state.epoch + 1 and lines[-1]["stop_reason"] == "max_epochs"

    _, theta_resumed, meta_resumed = load_model(run / "model.safetensors")
    _, theta_whole, meta_whole = load_model(whole / "model.safetensors")
    assert theta_resumed.tobytes() == theta_whole.tobytes()
    assert meta_resumed["metrics"]["test_acc"] == meta_whole["metrics"]["test_acc"]
    assert meta_resumed["metrics"]["steps"] == meta_whole["metrics"]["steps"] > stopped_at

    # The metrics files hold each epoch once, in order, as if the run had never stopped.
    for name in ("metrics.jsonl", "metrics.csv"):
        a = (run / name).read_text().splitlines()
        b = (whole / name).read_text().splitlines()
        assert len(a) == len(b) == EPOCHS + (name == "metrics.csv")  # + the header
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, EPOCHS + 1))
    losses = [json.loads(x)["train_loss"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert losses == [json.loads(x)["train_loss"] for x in (whole / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_resume_after_a_hard_kill_continues_from_the_last_checkpoint(tmp_path, whole):
    """SIGKILL (no handler, no goodbye) leaves the checkpoint of the last finished epoch; resuming
    from it also ends on the uninterrupted θ."""
    run = tmp_path / "killed"
    proc = start(run)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    _, state, _ = load_checkpoint(run / "checkpoints" / "checkpoint.safetensors")
    assert state.stop_reason is None and state.batch == 0 and state.epoch >= 2
    resumed = steepest("train", "--resume", run, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert load_model(run / "model.safetensors")[1].tobytes() == load_model(whole / "model.safetensors")[1].tobytes()
    assert (run / "metrics.csv").read_text().count("\n") == (whole / "metrics.csv").read_text().count("\n")


def test_resume_saves_the_model_of_a_run_that_stopped_before_writing_it(tmp_path):
    """The process may end after the final checkpoint but before model.safetensors: --resume writes it."""
    run = tmp_path / "run"
    first = steepest("train", "--dataset", "digits", "--hidden", "16", "--epochs", "2", "--out", run, "--json")
    assert first.returncode == 0, first.stderr
    expected = load_model(run / "model.safetensors")[1].tobytes()
    (run / "model.safetensors").unlink()
    again = steepest("train", "--resume", run, "--json")
    assert again.returncode == 0, again.stderr
    assert "has no model; saving it" in again.stderr
    assert load_model(run / "model.safetensors")[1].tobytes() == expected
    end = json.loads(again.stdout.splitlines()[-1])
    assert end["test_acc"] == json.loads(first.stdout.splitlines()[-1])["test_acc"] and end["epochs"] == 2
    assert len((run / "metrics.csv").read_text().splitlines()) == 3  # header + 2 epochs, not repeated


def test_resume_of_a_damaged_checkpoint_or_a_model_file_says_what_to_do(tmp_path):
    """A checkpoint cut short was met with the advice for a model file given by hand ("give a file written by
    steepest train"); --resume RUN/model.safetensors said "no such run directory" of a file that exists."""
    run = tmp_path / "run"
    r = steepest("train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--out", run, "--quiet")
    assert r.returncode == 0, r.stderr
    r = steepest("train", "--resume", run / "model.safetensors")
    assert r.returncode == 2 and f"is a file; --resume takes the run directory" in r.stderr, r.stderr
    assert f"--resume {run}" in r.stderr
    ck = run / "checkpoints" / "checkpoint.safetensors"
    raw = ck.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header["__metadata__"]["format_version"] = "99"  # a newer steepest's: upgrade, not start again
    body = json.dumps(header).encode()
    ck.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + n:])
    r = steepest("train", "--resume", run)
    assert r.returncode == 2 and "upgrade steepest to read it" in r.stderr and "--force" not in r.stderr, r.stderr
    ck.write_bytes(raw[:100])
    r = steepest("train", "--resume", run)
    assert r.returncode == 2 and "the run cannot continue from this checkpoint" in r.stderr, r.stderr
    assert f"--out {run} --force" in r.stderr and "give a file written by" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_resume_when_the_recorded_data_dir_is_gone(tmp_path):
    """--data-dir is checked when typed; a run's recorded one may have been wiped (scratch space) with the data
    found elsewhere, and the run still resumes, as it did before the check."""
    data = tmp_path / "scratch"
    data.mkdir()
    run = tmp_path / "run"
    r = steepest("train", "--dataset", "digits", "--data-dir", data, "--hidden", "8", "--epochs", "2", "--out", run,
                 "--quiet")
    assert r.returncode == 0, r.stderr
    (run / "model.safetensors").unlink()  # as if stopped before writing it
    data.rmdir()
    r = steepest("train", "--resume", run, "--quiet")
    assert r.returncode == 0 and (run / "model.safetensors").is_file(), r.stderr
    r = steepest("train", "--resume", run, "--data-dir", tmp_path / "elsewhere")
    assert r.returncode == 2 and "no such directory" in r.stderr, r.stderr
