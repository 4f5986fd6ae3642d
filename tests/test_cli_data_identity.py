"""A run is tied to its data, not to a name or a relative path.

A user's file is recorded by its absolute path and a digest of its samples: ``evaluate`` without
``--dataset`` reads that file (never a built-in dataset that happens to share its stem), and
``--resume`` refuses other data under the same path, and accepts a moved copy given with ``--dataset``,
ending on the uninterrupted θ bit for bit.
"""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from steepest.data import load_dataset
from steepest.io import load_checkpoint, load_model
from clirun import steepest

EPOCHS = 12
# digits as the user's .npz; small batches and wide layers, so that there is time to stop it mid-run
ARGS = ["--hidden", "256", "256", "--batch-size", "4", "--lr", "0.01", "--optimizer", "momentum",
        "--epochs", str(EPOCHS), "--seed", "3", "--threads", "1", "--checkpoint-every", "360",
        "--checkpoint-seconds", "100000"]


def save_digits(path, flip=False):
    d = load_dataset("digits")
    y = (9 - d.y_train) if flip else d.y_train
    np.savez(path, X=d.X_train, y=y, X_test=d.X_test, y_test=d.y_test)


def one_error_line(r, words):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("steepest: error: ") and words in lines[0], r.stderr


def stop_after_two_epochs(cwd, run):
    proc = subprocess.Popen([sys.executable, "-m", "steepest", "train", "--dataset", "data.npz", *ARGS,
                             "--out", str(run), "--quiet"], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while (not (run / "metrics.csv").exists() or (run / "metrics.csv").read_text().count("\n") < 3) \
            and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "training ended before it could be stopped: " + proc.communicate()[1]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, (out, err)
    return load_checkpoint(run / "checkpoints" / "checkpoint.safetensors")[1]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM to a child process is POSIX")
def test_resume_refuses_other_data_at_the_path_and_takes_a_moved_copy(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    save_digits(a / "data.npz")
    whole = steepest("train", "--dataset", "data.npz", *ARGS, "--out", tmp_path / "whole", "--quiet", cwd=a,
                     timeout=900)
    assert whole.returncode == 0, whole.stderr
    run = tmp_path / "run"
    state = stop_after_two_epochs(a, run)
    assert 2 <= state.epoch < EPOCHS
    assert f'dataset = "{a / "data.npz"}"' in (run / "config.toml").read_text()  # absolute, as resolved

    (a / "data.npz").rename(b / "copy.npz")
    save_digits(a / "data.npz", flip=True)  # other labels under the run's path: same shapes, other data
    checkpoint = (run / "checkpoints" / "checkpoint.safetensors").read_bytes()
    one_error_line(steepest("train", "--resume", run, cwd=b), "is not the data this run started with")
    one_error_line(steepest("train", "--resume", run, "--dataset", a / "data.npz", cwd=b),
                   "the copy given with --dataset is not the data this run started with")
    assert (run / "checkpoints" / "checkpoint.safetensors").read_bytes() == checkpoint
    assert not (run / "model.safetensors").exists()

    resumed = steepest("train", "--resume", run, "--dataset", "copy.npz", "--json", cwd=b, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    theta = load_model(run / "model.safetensors")[1]
    assert theta.tobytes() == load_model(tmp_path / "whole" / "model.safetensors")[1].tobytes()
    assert f'dataset = "{b / "copy.npz"}"' in (run / "config.toml").read_text()
    # evaluate, from anywhere and without --dataset, reads the copy the run finished on
    test_acc = json.loads(resumed.stdout.splitlines()[-1])["test_acc"]
    evaluated = steepest("evaluate", run / "model.safetensors", "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == test_acc


def test_evaluate_reads_the_users_file_not_the_builtin_dataset_of_the_same_name(tmp_path):
    """``moons.npz`` is recorded as dataset "moons", also a built-in dataset: evaluating without --dataset
    (from another directory too) must measure the file — here its labels are flipped, so the built-in
    moons would score about 100% − the file's accuracy."""
    d = load_dataset("moons")
    np.savez(tmp_path / "moons.npz", X=d.X_train, y=1 - d.y_train, X_test=d.X_test, y_test=1 - d.y_test)
    trained = steepest("train", "--dataset", "moons.npz", "--hidden", "16", "--epochs", "30", "--out", "run",
                       "--json", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    test_acc = json.loads(trained.stdout.splitlines()[-1])["test_acc"]
    assert test_acc > 0.9
    (tmp_path / "elsewhere").mkdir()
    for cwd in (tmp_path, tmp_path / "elsewhere"):
        r = steepest("evaluate", tmp_path / "run", "--json", cwd=cwd)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["accuracy"] == test_acc
    (tmp_path / "moons.npz").unlink()
    one_error_line(steepest("evaluate", tmp_path / "run", cwd=tmp_path), "which is not there any more")
    assert steepest("evaluate", tmp_path / "run", "--dataset", "moons", cwd=tmp_path).returncode == 0


def test_training_accuracy_is_of_the_final_theta_when_nothing_evaluated_it(tmp_path):
    """A run stopped before its first evaluation (or diverged) reports the accuracy of the θ it saved,
    never 0.00% for want of a record; data with no test split says how to hold some out."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    np.savetxt(tmp_path / "data.csv", np.c_[X, y], delimiter=",", header="a,b,c,d,label", comments="")
    for name, data, extra in (("once", "data.csv", ["--max-steps", "1"]),):
        r = steepest("train", "--dataset", data, "--hidden", "4", "--batch-size", "8", *extra, "--out", name,
                     "--json", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        end = json.loads(r.stdout.splitlines()[-1])
        e = steepest("evaluate", name, "--split", "train", "--json", cwd=tmp_path)
        assert e.returncode == 0, e.stderr
        assert end["train_acc"] == json.loads(e.stdout)["accuracy"] > 0
        assert f"training accuracy {100 * end['train_acc']:.2f}%" in r.stderr
        assert "--val-split" in r.stderr and ".npz" not in r.stderr


def test_resume_says_when_config_toml_was_edited(tmp_path):
    """--resume continues as the checkpoint says; a hand-edited config.toml is named, not silently ignored."""
    run = tmp_path / "run"
    first = steepest("train", "--dataset", "digits", "--hidden", "8", "--epochs", "2", "--out", run, "--quiet")
    assert first.returncode == 0, first.stderr
    (run / "model.safetensors").unlink()  # as if the process ended between its last checkpoint and the model
    config = (run / "config.toml").read_text()
    (run / "config.toml").write_text(config.replace("lr = 0.05", "lr = 0.5").replace("epochs = 2", "epochs = 9"))
    r = steepest("train", "--resume", run)
    assert r.returncode == 0, r.stderr
    assert "config.toml differs from the run's configuration in epochs, lr;" in r.stdout
    assert "steepest train --config" in r.stdout
    (run / "model.safetensors").unlink()
    (run / "config.toml").write_text(config)
    r = steepest("train", "--resume", run, "--threads", "1")  # an option of this command is not an edit
    assert r.returncode == 0 and "differs" not in r.stdout, r.stdout
    (run / "model.safetensors").unlink()
    (run / "config.toml").write_text(config.replace("\nlr = 0.05\n", "\n"))  # a line removed is an edit too
    r = steepest("train", "--resume", run)
    assert r.returncode == 0 and "differs from the run's configuration in lr;" in r.stdout, r.stdout
    (run / "model.safetensors").unlink()
    (run / "config.toml").unlink()  # gone: written again, as the run was configured
    r = steepest("train", "--resume", run, "--threads", "1")
    assert r.returncode == 0 and "was missing; written again" in r.stdout, r.stdout
    options = lambda text: [x for x in text.splitlines() if not x.startswith("#")]  # noqa: E731
    assert options((run / "config.toml").read_text()) == options(config)


def test_predict_refuses_inputs_its_precision_cannot_hold(tmp_path):
    """1e39 is finite in float64 but inf in a float32 model; 3e38 is finite but overflows the logits: each is
    one line and exit 2, never a NaN probability."""
    r = steepest("train", "--dataset", "moons", "--hidden", "8", "--epochs", "1", "--out", tmp_path / "run",
                 "--quiet")
    assert r.returncode == 0, r.stderr
    np.save(tmp_path / "big.npy", np.array([[0.5, 1e39]]))
    one_error_line(steepest("predict", tmp_path / "run", tmp_path / "big.npy"),
                   "value at index (0, 1) is too large for float32")
    np.save(tmp_path / "huge.npy", np.array([[0.5, 0.5], [3e38, -3e38]], dtype=np.float32))
    one_error_line(steepest("predict", tmp_path / "run", tmp_path / "huge.npy"),
                   "huge.npy[1]: the model's outputs overflow float32")
    np.save(tmp_path / "fine.npy", np.array([[0.5, 0.5]]))
    assert steepest("predict", tmp_path / "run", tmp_path / "fine.npy").returncode == 0


def test_report_draws_the_misclassified_images_of_the_users_file(tmp_path):
    """``digits.npz`` (images, labels permuted) is recorded as dataset "digits": the report's gallery counts
    the file's misclassified test images, not those of scikit-learn's digits."""
    d = load_dataset("digits")
    flip = lambda y: (y + 3) % 10  # noqa: E731
    np.savez(tmp_path / "digits.npz", X=d.X_train.reshape(-1, 8, 8), y=flip(d.y_train),
             X_test=d.X_test.reshape(-1, 8, 8), y_test=flip(d.y_test))
    trained = steepest("train", "--dataset", "digits.npz", "--hidden", "32", "--epochs", "20", "--out", "run",
                       "--json", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    test_acc = json.loads(trained.stdout.splitlines()[-1])["test_acc"]
    r = steepest("report", tmp_path / "run", "--out", tmp_path / "report.html", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    wrong = round((1 - test_acc) * 360)
    assert f"{wrong:,} of 360 test images are misclassified" in (tmp_path / "report.html").read_text()


def test_views_refuse_a_recorded_file_whose_samples_changed(tmp_path):
    """evaluate, explain and landscape without --dataset read the file the model records only if it still
    holds the samples it was trained on; with --dataset the user chooses, and is not second-guessed."""
    d = load_dataset("moons")
    np.savez(tmp_path / "m.npz", X=d.X_train, y=d.y_train, X_test=d.X_test, y_test=d.y_test)
    assert steepest("train", "--dataset", "m.npz", "--hidden", "8", "--epochs", "3", "--out", "run", "--quiet",
                    cwd=tmp_path).returncode == 0
    np.savez(tmp_path / "m.npz", X=d.X_train, y=d.y_train, X_test=d.X_test, y_test=1 - d.y_test)
    for command, *more in (("evaluate",), ("explain", "--out", tmp_path / "ex"),
                           ("landscape", "--parts", "line", "--out", tmp_path / "ls")):
        one_error_line(steepest(command, tmp_path / "run", *more, cwd=tmp_path), "no longer holds the samples")
        assert not (tmp_path / "ex").exists() and not (tmp_path / "ls").exists()
    assert steepest("evaluate", tmp_path / "run", "--dataset", tmp_path / "m.npz", cwd=tmp_path).returncode == 0


def sigterm_at(cwd, delay, run):
    """SIGTERM to a short `steepest train` after ``delay`` s: what the user sees and what is left must be
    one of three outcomes, each with a next step that works."""
    proc = subprocess.Popen([sys.executable, "-m", "steepest", "train", "--dataset", "digits", "--hidden", "32",
                             "--epochs", "3", "--batch-size", "32", "--threads", "1", "--seed", "3", "--eval-every",
                             "1", "--quiet", "--out", str(run)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    if proc.returncode == 0:  # finished first (or the signal came as the interpreter tore down)
        assert (run / "model.safetensors").exists()
        return "finished"
    if proc.returncode == -signal.SIGTERM:  # the interpreter had not yet run a line of steepest
        assert out == err == "" and not run.exists(), (out, err)
        return "starting"
    assert proc.returncode == 143, (proc.returncode, out, err)
    if "to continue: steepest train --resume" in out:  # stopped after a step: resumable
        resumed = steepest("train", "--resume", run, "--quiet", cwd=cwd)
        assert resumed.returncode == 0, resumed.stderr
        return "resumed"
    # before training: one line, and nothing half-made that --resume would then refuse
    assert err.strip() == "steepest: terminated (SIGTERM)" and not (run / "checkpoints").exists(), (out, err)
    return "terminated"


def test_sigterm_at_any_moment_of_a_run_ends_in_a_state_with_a_next_step(tmp_path):
    took = time.perf_counter()
    assert steepest("train", "--dataset", "digits", "--hidden", "32", "--epochs", "3", "--batch-size", "32",
                    "--threads", "1", "--seed", "3", "--eval-every", "1", "--quiet", "--out", tmp_path / "whole",
                    cwd=tmp_path).returncode == 0
    took = time.perf_counter() - took
    seen = [sigterm_at(tmp_path, took * i / 12, tmp_path / f"r{i}") for i in range(1, 13)]
    assert "resumed" in seen or "terminated" in seen, seen


def test_resume_says_how_to_give_data_that_moved(tmp_path):
    save_digits(tmp_path / "data.npz")
    run = tmp_path / "run"
    assert steepest("train", "--dataset", "data.npz", "--hidden", "8", "--epochs", "1", "--out", run, "--quiet",
                    cwd=tmp_path).returncode == 0
    (run / "model.safetensors").unlink()
    (tmp_path / "data.npz").rename(tmp_path / "moved.npz")
    one_error_line(steepest("train", "--resume", run, cwd=tmp_path),
                   f"this run's data, is not there any more; if it moved, give it with steepest train --resume {run} "
                   "--dataset NEW_PATH")
    one_error_line(steepest("train", "--resume", run, "--labels", "moved.npz", cwd=tmp_path),
                   "--labels goes with a pair of IDX files")
    assert steepest("train", "--resume", run, "--dataset", "moved.npz", "--quiet", cwd=tmp_path).returncode == 0


def test_a_run_without_a_model_is_pointed_to_resume_and_its_checkpoint_reads_its_data(tmp_path):
    run = tmp_path / "run"
    r = steepest("train", "--dataset", "digits", "--hidden", "8", "--epochs", "2", "--out", run, "--json")
    assert r.returncode == 0, r.stderr
    test_acc = json.loads(r.stdout.splitlines()[-1])["test_acc"]
    (run / "model.safetensors").unlink()
    one_error_line(steepest("evaluate", run), f"continue it with `steepest train --resume {run}`")
    e = steepest("evaluate", run / "checkpoints" / "checkpoint.safetensors", "--json")  # its data, from its config
    assert e.returncode == 0, e.stderr
    assert json.loads(e.stdout)["accuracy"] == test_acc
