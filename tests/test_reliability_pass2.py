"""Regression tests for the examples of the second adversarial pass (issue 10), through the real command.

The classes are swept by tests/test_cli_sweep.py and the fuzz targets meta, bombs, reports and
special; these pin the reported examples themselves, each with one clear line and exit status 2.
"""

import json
import signal
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from clirun import steepest
from steepest.errors import DataError, ModelFileError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and FIFOs")


def one_line(r):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith("steepest: error: ") and "; " in lines[0], r.stderr
    assert "Traceback" not in r.stderr and "Warning" not in r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    np.savez(d / "tiny.npz", X=X, y=(X[:, 0] > 0).astype(int))
    r = steepest("train", "--dataset", d / "tiny.npz", "--hidden", "3", "--epochs", "1", "--batch-size", "8",
                 "--out", d / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    return d


def _rewrite_model(src, dst, edit_meta=None, edit_theta=None):
    """A copy of the model file ``src`` with its metadata dict or θ bytes changed."""
    raw = src.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = bytearray(raw[8 + n:])
    if edit_meta:
        edit_meta(header["__metadata__"])
    if edit_theta:
        edit_theta(data)
    body = json.dumps(header).encode()
    dst.write_bytes(struct.pack("<Q", len(body)) + body + bytes(data))
    return dst


@pytest.mark.parametrize("edit", [
    lambda m: m.update(format_version="²"),
    lambda m: m.update(format_version="9" * 5000),
    lambda m: m.update(training=json.dumps({"lr": "abc"})),
    lambda m: m.update(training=json.dumps({"seed": -1})),
    lambda m: m.update(training="[" * 2000 + "]" * 2000),
], ids=["version-superscript", "version-5000-digits", "lr-abc", "seed-minus-1", "deep-nesting"])
def test_odd_metadata_is_one_line(model, tmp_path, edit):
    bad = _rewrite_model(model / "run" / "model.safetensors", tmp_path / "m.safetensors", edit_meta=edit)
    r = steepest("landscape", bad, "--dataset", model / "tiny.npz", "--parts", "line", "--out", tmp_path / "o")
    assert "not a steepest model file" in one_line(r) or "corrupt" in r.stderr
    assert not (tmp_path / "o").exists()


def test_a_model_with_nan_theta_is_refused(model, tmp_path):
    def nan_first(data):
        data[:4] = np.float32(np.nan).tobytes()
    bad = _rewrite_model(model / "run" / "model.safetensors", tmp_path / "m.safetensors", edit_theta=nan_first)
    np.save(tmp_path / "row.npy", np.zeros(4, np.float32))
    line = one_line(steepest("predict", bad, tmp_path / "row.npy"))
    assert "not finite" in line and "train it again" in line
    with pytest.raises(ModelFileError, match="not finite"):
        from steepest.io import load_model
        load_model(bad)


def test_csv_row_with_extra_columns_and_label_1_0(tmp_path):
    from steepest.data import load_file

    (tmp_path / "extra.csv").write_text("label,a,b\n0,1,2\n1,3,4,5\n")
    with pytest.raises(DataError, match="line 3 has 4 columns, expected 3"):
        load_file(tmp_path / "extra.csv")
    (tmp_path / "under.csv").write_text("label,a\n1_0,1\n0,2\n")
    d = load_file(tmp_path / "under.csv")  # "1_0" is a name, not the number 10
    assert d.class_names == ["0", "1_0"]


def test_bytes_after_an_npz_member_are_refused(tmp_path):
    from steepest.data import load_file

    X, y = np.zeros((3, 2), np.float32), np.arange(3)
    np.savez(tmp_path / "ok.npz", X=X, y=y)
    with zipfile.ZipFile(tmp_path / "ok.npz") as z, zipfile.ZipFile(tmp_path / "bad.npz", "w") as out:
        for info in z.infolist():
            out.writestr(info.filename, z.read(info) + (b"\0" * 7 if info.filename == "X.npy" else b""))
    with pytest.raises(DataError, match="bytes after"):
        load_file(tmp_path / "bad.npz")


def test_an_npy_claiming_5_tb_is_a_corrupt_file(model, tmp_path):
    h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1250000000000,), }"
    h += " " * (117 - len(h)) + "\n"
    (tmp_path / "huge.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + bytes(64))
    assert "corrupt" in one_line(steepest("predict", model / "run", tmp_path / "huge.npy"))


def test_a_run_killed_before_its_first_checkpoint_starts_again(model, tmp_path):
    """config.toml and empty metrics, no checkpoint: the same command runs, and so does --resume."""
    run = tmp_path / "run"
    args = ["train", "--dataset", model / "tiny.npz", "--hidden", "3", "--epochs", "1", "--batch-size", "8",
            "--out", run, "--quiet"]
    run.mkdir()
    (run / "config.toml").write_text("# killed before its first checkpoint\n")
    (run / "metrics.csv").write_text("epoch\n")
    (run / "metrics.jsonl").write_text("")
    r = steepest(*args)
    assert r.returncode == 0 and "starting it again" in r.stdout + r.stderr, r.stderr
    reference = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").unlink()
    (run / "checkpoints" / "checkpoint.safetensors").unlink()
    r = steepest("train", "--resume", run, "--quiet")
    assert r.returncode == 0, r.stderr
    from steepest.io import load_model
    assert load_model(run / "model.safetensors")[1].tobytes() == load_model_bytes(reference, tmp_path)


def load_model_bytes(raw, tmp_path):
    from steepest.io import load_model

    (tmp_path / "ref.safetensors").write_bytes(raw)
    return load_model(tmp_path / "ref.safetensors")[1].tobytes()


def ctrl_c_at(delay):
    """Send SIGINT to `steepest gradcheck` after `delay` s; assert what the user sees is one line (or nothing)."""
    # SIGINT at its default, as from a terminal, even when the tests run in the background (the shell then
    # ignores SIGINT, the child inherits that, and Ctrl-C rightly does nothing: every run 'finished')
    proc = subprocess.Popen([sys.executable, "-m", "steepest", "gradcheck"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        return "finished"
    frames = [line for line in err.splitlines() if line.strip().startswith("File ")]
    if "Traceback" in err and not any("steepest" in f for f in frames):
        return "starting"  # the interpreter was still starting (runpy, site): no line of steepest had run yet
    assert "Traceback" not in err, err
    if proc.returncode == -signal.SIGINT:  # died before Python installed its handler: no output at all
        assert err == "", f"killed by SIGINT after printing {err!r}"
        return "starting"
    assert proc.returncode == 130 and err.strip() == "steepest: interrupted", (proc.returncode, err)
    return "interrupted"


def test_ctrl_c_as_main_begins_is_one_line():
    """A Ctrl-C delivered as the command's own code begins — where a fresh clone's CI once landed one, while
    main imported steepest.errors — is the one line and 130, not a traceback. The interrupt is raised at that
    exact moment by a trace function, so the moment is the same on every machine."""
    code = ("import sys, steepest.cli as cli\n"
            "assert 'steepest.errors' not in sys.modules\n"
            "def at(frame, event, arg):\n"
            "    if event == 'call' and frame.f_code.co_filename.endswith('errors.py'):\n"
            "        sys.settrace(None)\n"
            "        raise KeyboardInterrupt\n"
            "sys.settrace(at)\n"
            "sys.exit(cli.main(['gradcheck']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr.strip()) == (130, "steepest: interrupted"), r.stderr


@pytest.mark.parametrize("delay", [0.005, 0.02, 0.05, 0.1, 0.2])
def test_ctrl_c_during_start_up_is_one_line(tmp_path, delay):
    if ctrl_c_at(delay) == "finished":
        pytest.skip(f"the command finished within {delay} s, before the signal")


def test_ctrl_c_at_many_moments_of_start_up_is_one_line():
    # A Ctrl-C that lands while NumPy's compiled modules initialise used to come out as an ImportError
    # (exit 1) or as a death by SIGINT after the line was printed: a few runs in a hundred, so sweep —
    # over the command's own duration on this machine (a fast one finishes gradcheck in 0.16 s), from
    # 40 ms (the interpreter itself starting) to just before it would finish.
    took = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "steepest", "gradcheck"], capture_output=True, check=True)
        took.append(time.perf_counter() - t)
    end = max(0.05, 0.85 * sorted(took)[1])
    seen = [ctrl_c_at(0.04 + (end - 0.04) * i / 23) for i in range(24)]
    assert seen.count("interrupted") >= 12, (sorted(took)[1], seen)


def _checkpoint_edited(run, edit):
    """Rewrite ``run``'s checkpoint with its tensors passed through ``edit`` (metadata kept)."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    ck = run / "checkpoints" / "checkpoint.safetensors"
    with safe_open(str(ck), "np") as f:
        meta = f.metadata()
    tensors = load_file(str(ck))
    save_file(edit(tensors), str(ck), metadata=meta)


@pytest.mark.parametrize("edit, words", [
    (lambda t: {k: v for k, v in t.items() if k != "history.acc"}, "lacks the step-history tensors history.acc"),
    (lambda t: {k: v for k, v in t.items() if not k.startswith("history.")}, "history.loss, history.acc"),
    (lambda t: {**t, "history.foo": t["history.loss"]}, "unknown ones history.foo"),
    (lambda t: t, None),  # the control: the same rewrite, nothing changed, resumes
], ids=["no-history.acc", "no-history-at-all", "unknown-history.foo", "unchanged"])
def test_a_checkpoint_without_its_step_history_is_refused_on_resume(model, tmp_path, edit, words):
    """Exactly the step-record columns, or one line and exit 2 — before the metrics files are touched."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(model / "run", run)
    (run / "model.safetensors").unlink()  # a finished run without its model: --resume reads the checkpoint
    _checkpoint_edited(run, edit)
    before = {f: (run / f).read_bytes() for f in ("metrics.csv", "metrics.jsonl")}
    r = steepest("train", "--resume", run, "--quiet")
    if words is None:
        assert r.returncode == 0 and (run / "model.safetensors").is_file(), r.stderr
        return
    line = one_line(r)
    assert words in line and "start the run again" in line
    assert {f: (run / f).read_bytes() for f in before} == before
    assert not (run / "model.safetensors").exists()
