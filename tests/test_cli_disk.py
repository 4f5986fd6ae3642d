"""A disk that fails in the middle of `steepest train`, through the real command.

Four ways: the disk fills up (a small tmpfs), the file-size limit drops (RLIMIT_FSIZE, set on the
running process), the checkpoints directory turns read-only, the run directory turns read-only
(the model cannot be written at the end). Each time: exit status 2 and one line that names the
file, the reason, the checkpoint that is intact and the command that continues; that checkpoint
loads; no temporary file is left; nothing was written over. Once the disk is fixed, ``--resume``
ends on the θ of a run that never had trouble, bit for bit.

Root ignores permission bits, so "read-only" is ``chattr +i`` for root and ``chmod`` otherwise.
"""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from steepest.io import load_checkpoint, load_model
from clirun import steepest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file systems and signals")

# 500 steps of a 32-256-256-5 network per epoch: each epoch takes long enough (~0.1 s) to break
# the disk between two checkpoints.
EPOCHS = 5
ARGS = ["--hidden", "256", "256", "--batch-size", "4", "--lr", "0.01", "--optimizer", "momentum",
        "--epochs", str(EPOCHS), "--seed", "1", "--threads", "1", "--checkpoint-every", "500"]  # one an epoch




def write_data(path, n=2000, d=32, k=5, seed=0):
    """A synthetic classification problem (linear teacher), with a test split."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, k))
    X, X_test = rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(n // 5, d)).astype(np.float32)
    np.savez(path, X=X, y=(X @ W).argmax(1), X_test=X_test, y_test=(X_test @ W).argmax(1))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_data(tmp_path_factory.mktemp("disk") / "syn.npz")


@pytest.fixture(scope="module")
def whole(data, tmp_path_factory):
    """θ bytes of the run that had no trouble."""
    run = tmp_path_factory.mktemp("whole") / "run"
    r = steepest("train", "--dataset", data, *ARGS, "--out", run, "--quiet")
    assert r.returncode == 0, r.stderr
    return load_model(run / "model.safetensors")[1].tobytes()


def epochs_written(run):
    try:
        return len((run / "metrics.jsonl").read_text().splitlines())
    except FileNotFoundError:
        return 0


def start(data, run, **kw):
    """Start training into ``run``; return the process once its first epoch is on disk."""
    proc = subprocess.Popen([sys.executable, "-m", "steepest", "train", "--dataset", str(data), *ARGS,
                             "--out", str(run), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)
    deadline = time.monotonic() + 120
    while epochs_written(run) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "training ended before the disk could fail: " + proc.communicate()[1]
    return proc


def temporaries(run):
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.name.endswith(".tmp"))


def check_failure(proc, run, reason, model_write=False):
    """The run stopped cleanly: exit 2, one line, the checkpoint it names is intact, no litter."""
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, (proc.returncode, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("steepest: error: cannot write "), err
    assert reason in lines[0], lines[0]
    assert f"`steepest train --resume {run}`" in lines[0]
    _, state, _ = load_checkpoint(run / "checkpoints" / "checkpoint.safetensors")
    if model_write:
        assert "model.safetensors" in lines[0] and "final checkpoint is saved" in lines[0]
        assert state.stop_reason == "max_epochs" and state.epoch == EPOCHS
    else:
        kept = int(re.search(r"the checkpoint of step (\d+) is intact", lines[0]).group(1))
        assert "checkpoint.safetensors" in lines[0]
        assert state.step == kept and state.stop_reason is None and 1 <= state.epoch < EPOCHS
        assert epochs_written(run) == state.epoch  # every metrics row has its checkpoint
    assert not (run / "model.safetensors").exists()
    assert temporaries(run) == []


def check_resume(run, whole):
    r = steepest("train", "--resume", run, "--quiet")
    assert r.returncode == 0, r.stderr
    assert load_model(run / "model.safetensors")[1].tobytes() == whole
    assert temporaries(run) == []


# ---------------------------------------------------------------- making a directory read-only

def immutable(path, on=True):
    """Make ``path`` a directory nobody can add to, remove from or rename in (root included)."""
    if os.geteuid() == 0:
        r = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"root cannot make a read-only directory here (chattr: {r.stderr.strip()})")
    else:
        path.chmod(0o555 if on else 0o755)


@pytest.mark.parametrize("where", ["checkpoints", "run"])
def test_directory_turns_read_only_during_the_run(data, whole, tmp_path, where):
    run = tmp_path / "run"
    proc = start(data, run)
    target = run / "checkpoints" if where == "checkpoints" else run
    immutable(target)
    try:
        check_failure(proc, run, "Operation not permitted" if os.geteuid() == 0 else "Permission denied",
                      model_write=where == "run")
    finally:
        immutable(target, on=False)
    check_resume(run, whole)


# ---------------------------------------------------------------- a full disk

@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs (needs root and mount permission), unmounted afterwards."""
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up: {r.stderr.strip() or r.returncode}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=True)


def test_disk_fills_up_during_the_run(data, whole, small_disk):
    run = small_disk / "run"
    proc = start(data, run)
    filler = small_disk / "filler"
    with open(filler, "wb") as f:  # all but one page of what is left
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        f.write(b"\0" * max(0, free - 4096))
    check_failure(proc, run, "No space left on device")
    filler.unlink()
    check_resume(run, whole)


@pytest.mark.skipif(not hasattr(__import__("resource"), "prlimit"), reason="needs resource.prlimit (Linux)")
def test_file_size_limit_drops_during_the_run(data, whole, tmp_path):
    """RLIMIT_FSIZE: writing past it fails with EFBIG (SIGXFSZ ignored, as a daemon would)."""
    import resource

    run = tmp_path / "run"
    proc = start(data, run, preexec_fn=lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN))
    size = (run / "checkpoints" / "checkpoint.safetensors").stat().st_size  # the next one is larger
    resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (size, size))
    check_failure(proc, run, "File too large")
    check_resume(run, whole)


def test_leftover_temporary_files_are_never_read_and_resume_removes_them(data, whole, tmp_path):
    """What a write killed half-way leaves: ``.NAME.*.tmp`` beside the real file. They do not look
    like a checkpoint to anyone, and the next --resume clears them away."""
    run = tmp_path / "run"
    proc = start(data, run)
    proc.kill()
    proc.communicate()
    ckpt = run / "checkpoints" / "checkpoint.safetensors"
    already = len(temporaries(run))  # the kill itself may have cut a write short
    junk = [ckpt.parent / ".checkpoint.safetensors.abcd1234.tmp", run / ".model.safetensors.x_y_z987.tmp",
            run / ".metrics.csv.k9k9k9k9.tmp"]
    junk[0].write_bytes(ckpt.read_bytes()[:1000])  # a checkpoint cut short
    for j in junk[1:]:
        j.write_text("half")
    mine = run / "notes.tmp"  # not a temporary of steepest's: left alone
    mine.write_text("keep")
    r = steepest("train", "--resume", run)
    assert r.returncode == 0, r.stderr
    assert f"removed {3 + already} temporary files" in r.stdout
    assert temporaries(run) == ["notes.tmp"] and mine.read_text() == "keep"
    assert load_model(run / "model.safetensors")[1].tobytes() == whole


def test_run_files_are_readable_like_any_other_file(data, tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the files end up with the umask's mode."""
    run = tmp_path / "run"
    old = os.umask(0o022)
    try:
        r = steepest("train", "--dataset", data, "--hidden", "4", "--epochs", "1", "--out", run, "--quiet")
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    for name in ("model.safetensors", "config.toml", "metrics.csv", "checkpoints/checkpoint.safetensors"):
        assert (run / name).stat().st_mode & 0o777 == 0o644, name
