"""Every kind of bad input, through the real command: one line on stderr, exit 2, no traceback,
and nothing on disk created, changed or lost."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from steepest.data.idx import write_idx
from clirun import steepest




def snapshot(*dirs):
    """{path: sha256} of every file and directory under ``dirs``."""
    out = {}
    for d in dirs:
        for p in sorted(Path(d).rglob("*")):
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small model trained on digits (64 inputs, 10 classes), in its run directory."""
    run = tmp_path_factory.mktemp("errors") / "run"
    r = steepest("train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--out", run, "--quiet")
    assert r.returncode == 0, r.stderr
    return run


def npz(path, X, y, **more):
    np.savez(path, X=X, y=y, **more)
    return path


def digits_like(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 17, (n, 64)).astype(np.uint8), rng.integers(0, 10, n)


# Each case: (tmp_path, model run dir) → (arguments, words the message must contain).
def unknown_dataset(t, m):
    return ["train", "--dataset", "nosuch", "--out", t / "o"], "unknown dataset 'nosuch'"


def unknown_option(t, m):
    return ["train", "--dataset", "digits", "--colour", "blue"], "unrecognized arguments: --colour"


def unknown_optimizer(t, m):
    return ["train", "--dataset", "digits", "--optimizer", "lbfgs"], "--optimizer must be one of"


def unknown_command(t, m):
    return ["fly"], "invalid choice: 'fly'"


def malformed_idx(t, m):
    (t / "images.idx").write_bytes(b"\x12\x34\x56\x78" + b"\0" * 100)
    write_idx(t / "labels.idx", np.zeros(3, np.uint8))
    return ["train", "--dataset", t / "images.idx", "--labels", t / "labels.idx"], "images.idx"


def truncated_idx(t, m):
    write_idx(t / "images.idx", np.zeros((10, 8, 8), np.uint8))
    write_idx(t / "labels.idx", np.zeros(10, np.uint8))
    data = (t / "images.idx").read_bytes()
    (t / "images.idx").write_bytes(data[:-50])
    return ["train", "--dataset", t / "images.idx", "--labels", t / "labels.idx"], "images.idx"


def truncated_mnist_gz(t, m):
    from conftest import write_tiny_mnist

    d = write_tiny_mnist(t / "data" / "mnist")
    f = d / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-20])
    return (["train", "--dataset", "mnist", "--data-dir", t / "data", "--no-download"],
            "train-images-idx3-ubyte.gz")


def truncated_npz(t, m):
    p = npz(t / "d.npz", *digits_like())
    p.write_bytes(p.read_bytes()[:300])
    return ["train", "--dataset", p], "d.npz"


def malformed_csv(t, m):
    (t / "d.csv").write_text("label,a,b\n0,1.0,2.0\n1,3.0,oops\n")
    return ["train", "--dataset", t / "d.csv"], "oops"


def malformed_image(t, m):
    (t / "digit.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    return ["predict", m, t / "digit.png"], "digit.png: not a readable image"


def shape_mismatch_evaluate(t, m):
    p = npz(t / "five.npz", np.ones((10, 5)), np.arange(10) % 2)
    return ["evaluate", m, "--dataset", p, "--split", "train"], "takes 64 inputs"


def shape_mismatch_predict(t, m):
    np.save(t / "x.npy", np.ones(5))
    return ["predict", m, t / "x.npy"], "does not fit the model"


def labels_out_of_range(t, m):
    X, y = digits_like()
    y[3] = 12
    p = npz(t / "d.npz", X, y)
    return ["evaluate", m, "--dataset", p, "--split", "train"], "label 12"


def negative_labels(t, m):
    X, y = digits_like()
    y[2] = -1
    return ["train", "--dataset", npz(t / "d.npz", X, y)], "negative"


# Non-finite values: refused at the boundary, naming the position of the first one.
def nan_in_data(t, m):
    X = np.ones((20, 4))
    X[7, 2] = np.nan
    X[9, 0] = np.inf  # later: not the one reported
    return ["train", "--dataset", npz(t / "d.npz", X, np.arange(20) % 2)], "row 7, column 2 is not finite"


def inf_in_test_split_npz(t, m):
    X_test = np.ones((5, 4))
    X_test[3, 1] = -np.inf
    p = npz(t / "d.npz", np.ones((20, 4)), np.arange(20) % 2, X_test=X_test, y_test=np.arange(5) % 2)
    return ["train", "--dataset", p], "d.npz (test): value at row 3, column 1 is not finite"


def too_large_for_float32_npz(t, m):
    X = np.ones((20, 4))
    X[0, 3] = 1e300  # finite in float64, inf once cast to the float32 steepest computes in
    return ["train", "--dataset", npz(t / "d.npz", X, np.arange(20) % 2)], "row 0, column 3 is not finite"


def nan_label_npz(t, m):
    y = (np.arange(20) % 2).astype(float)
    y[4] = np.nan
    return ["train", "--dataset", npz(t / "d.npz", np.ones((20, 4)), y)], "label nan at row 4"


def inf_in_csv(t, m):
    (t / "d.csv").write_text("label,a,b\n0,1.0,2.0\n1,inf,0.5\n0,NaN,1\n")
    return ["train", "--dataset", t / "d.csv"], "line 3, column a is not finite"


def nan_in_csv_without_header(t, m):
    (t / "d.csv").write_text("0,1.0,2.0\n1,0.5,0.5\n0,0.1,nan\n")
    return ["train", "--dataset", t / "d.csv"], "line 3, column 2 is not finite"


def nan_label_csv(t, m):
    (t / "d.csv").write_text("label,a,b\n0,1.0,2.0\nnan,0.5,0.5\n")
    return ["train", "--dataset", t / "d.csv"], "label nan at line 3"


def nan_in_float_idx(t, m):
    images = np.ones((10, 4, 4), np.float32)
    images[6, 1, 3] = np.nan
    write_idx(t / "images.idx", images)
    write_idx(t / "labels.idx", (np.arange(10) % 2).astype(np.uint8))
    return ["train", "--dataset", t / "images.idx", "--labels", t / "labels.idx"], "row 6, column 7 is not finite"


def nan_in_evaluate_npz(t, m):
    X, y = digits_like()
    X = X.astype(np.float32)
    X[11, 60] = np.nan
    return ["evaluate", m, "--dataset", npz(t / "d.npz", X, y), "--split", "train"], "row 11, column 60 is not finite"


def nan_in_predict_npy(t, m):
    x = np.ones(64)
    x[0] = np.nan
    np.save(t / "x.npy", x)
    return ["predict", m, t / "x.npy"], "x.npy: value at index 0 is not finite (nan)"


def inf_in_predict_npy_rows(t, m):
    x = np.ones((3, 64))
    x[1, 5] = np.inf
    np.save(t / "x.npy", x)
    return ["predict", m, t / "x.npy"], "x.npy: value at index (1, 5) is not finite (inf)"


def negative_lr(t, m):
    return ["train", "--dataset", "digits", "--lr", "-0.1", "--out", t / "o"], "learning rate must be > 0"


def zero_lr(t, m):
    return ["train", "--dataset", "digits", "--lr", "0", "--out", t / "o"], "learning rate must be > 0"


def batch_larger_than_data(t, m):
    return ["train", "--dataset", "digits", "--batch-size", "5000", "--out", t / "o"], "larger than the 1437"


def empty_npz(t, m):
    return ["train", "--dataset", npz(t / "d.npz", np.zeros((0, 4)), np.zeros(0, int))], "no data"


def empty_csv(t, m):
    (t / "d.csv").write_text("")
    return ["train", "--dataset", t / "d.csv"], "empty"


def out_is_a_file(t, m):
    (t / "taken").write_text("mine")
    return ["train", "--dataset", "digits", "--out", t / "taken"], "is a file"


def out_under_a_file(t, m):
    (t / "taken").write_text("mine")
    return ["train", "--dataset", "digits", "--out", t / "taken" / "run"], "is a file"


def out_holds_a_model(t, m):
    return ["train", "--dataset", "digits", "--out", m], "already holds a trained model"


def not_a_model_random(t, m):
    (t / "m.safetensors").write_bytes(os.urandom(1000))
    return ["evaluate", t / "m.safetensors", "--dataset", "digits"], "not a steepest model file"


def not_a_model_empty(t, m):
    (t / "m.safetensors").write_bytes(b"")
    return ["predict", t / "m.safetensors", "x.npy"], "not a steepest model file"


def not_a_model_foreign_safetensors(t, m):
    save_file({"weight": np.zeros((3, 3), np.float32)}, str(t / "m.safetensors"))
    return ["evaluate", t / "m.safetensors", "--dataset", "digits"], "no steepest format marker"


def model_missing(t, m):
    return ["evaluate", t / "nope.safetensors", "--dataset", "digits"], "no such file"


def data_not_available_offline(t, m):
    return ["train", "--dataset", "fashion-mnist", "--no-download"], "--data-dir DIR"


def resume_finished_run(t, m):
    return ["train", "--resume", m], "already finished"


def resume_with_changed_option(t, m):
    return ["train", "--resume", m, "--lr", "0.2"], "--lr cannot be combined with --resume"


def resume_not_a_run(t, m):
    (t / "empty").mkdir()
    return ["train", "--resume", t / "empty"], "no checkpoint"


def toml_unknown_key(t, m):
    (t / "run.toml").write_text("learning_rate = 0.1\n")
    return ["train", "--config", t / "run.toml"], "unknown option 'learning_rate'"


def toml_malformed(t, m):
    (t / "run.toml").write_text("lr = = 0.1\n")
    return ["train", "--config", t / "run.toml"], "not valid TOML"


def toml_bad_value(t, m):
    (t / "run.toml").write_text('epochs = "many"\n')
    return ["train", "--config", t / "run.toml"], "--epochs must be"


def patience_without_validation(t, m):
    return ["train", "--dataset", "digits", "--patience", "3"], "--val-split"


def option_for_another_optimizer(t, m):
    return ["train", "--dataset", "digits", "--optimizer", "adam", "--momentum", "0.9"], "--momentum does not apply"


def momentum_that_never_forgets(t, m):
    # μ = 1 sums every past gradient with weight 1 and μ > 1 grows them: both trained and saved a model
    return ["train", "--dataset", "digits", "--momentum", "1", "--out", t / "o"], "--momentum must be a number in [0, 1)"


def validation_split_smaller_than_the_classes(t, m):
    # 1 of 1,437 digits images held out: "val 0.00%" after each epoch, and --patience driven by one image
    return (["train", "--dataset", "digits", "--val-split", "0.001", "--out", t / "o"],
            "--val-split 0.001 holds out 1 of 1,437 samples, fewer than the 10 classes")


def cosine_that_rises(t, m):
    return (["train", "--dataset", "digits", "--schedule", "cosine", "--lr-min", "1", "--out", t / "o"],
            "--lr-min 1 is above --lr 0.05")


def cosine_after_the_run(t, m):
    # digits: 1,437 training images in batches of 128 make 12 steps an epoch; the library's words said
    # "warmup_steps must be < total_steps"
    return (["train", "--dataset", "digits", "--schedule", "cosine", "--warmup-steps", "12", "--epochs", "1",
             "--out", t / "o"], "--warmup-steps 12 is not shorter than the run's 12 steps")


def bad_architecture(t, m):
    return ["train", "--dataset", "digits", "--hidden", "0"], "--hidden must be"


CASES = [unknown_dataset, unknown_option, unknown_optimizer, unknown_command, malformed_idx, truncated_idx,
         truncated_mnist_gz, truncated_npz, malformed_csv, malformed_image, shape_mismatch_evaluate,
         shape_mismatch_predict, labels_out_of_range, negative_labels, nan_in_data, inf_in_test_split_npz,
         too_large_for_float32_npz, nan_label_npz, inf_in_csv, nan_in_csv_without_header, nan_label_csv,
         nan_in_float_idx, nan_in_evaluate_npz, nan_in_predict_npy, inf_in_predict_npy_rows, negative_lr, zero_lr,
         batch_larger_than_data, empty_npz, empty_csv, out_is_a_file,
         out_under_a_file, out_holds_a_model, not_a_model_random, not_a_model_empty,
         not_a_model_foreign_safetensors, model_missing, data_not_available_offline, resume_finished_run,
         resume_with_changed_option, resume_not_a_run, toml_unknown_key, toml_malformed, toml_bad_value,
         patience_without_validation, option_for_another_optimizer, momentum_that_never_forgets, validation_split_smaller_than_the_classes,
         cosine_that_rises,
         cosine_after_the_run, bad_architecture]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_is_one_line_exit_2_and_harmless(case, tmp_path, model):
    work = tmp_path / "work"
    work.mkdir()
    args, words = case(work, model)
    before = snapshot(work, model.parent)
    env = {"STEEPEST_DATA": None, "STEEPEST_CACHE": tmp_path / "cache", "STEEPEST_MIRRORS": "http://127.0.0.1:9/"}
    r = steepest(*args, cwd=work, env=env)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("steepest: error: ") and words in lines[0], lines[0]
    assert snapshot(work, model.parent) == before, "a failed command changed files on disk"
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.gz"))


@pytest.mark.parametrize("where", ["inside", "itself"])
def test_read_only_output_directory_is_refused_before_training(readonly_dir, where):
    out = readonly_dir / "run" if where == "inside" else readonly_dir
    r = steepest("train", "--dataset", "digits", "--out", out, "--force")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1 and "cannot write to" in r.stderr and "--out" in r.stderr
    assert "epoch" not in r.stdout  # refused before any training
    assert sorted(os.listdir(readonly_dir)) == ["keep.txt"]
    assert (readonly_dir / "keep.txt").read_text() == "precious"


def test_refused_run_directory_is_left_exactly_as_it_was(model):
    files = snapshot(model)
    mtimes = {p: os.stat(p).st_mtime_ns for p in files}
    r = steepest("train", "--dataset", "digits", "--hidden", "4", "--epochs", "1", "--out", model)
    assert r.returncode == 2 and "--force" in r.stderr
    assert snapshot(model) == files and {p: os.stat(p).st_mtime_ns for p in files} == mtimes


def test_force_replaces_a_run(tmp_path):
    run = tmp_path / "run"
    assert steepest("train", "--dataset", "digits", "--hidden", "4", "--epochs", "2", "--out", run,
                    "--quiet").returncode == 0
    r = steepest("train", "--dataset", "digits", "--hidden", "6", "--epochs", "1", "--out", run, "--force",
                 "--quiet")
    assert r.returncode == 0, r.stderr
    assert len((run / "metrics.csv").read_text().splitlines()) == 2  # header + the new run's one epoch


def test_failure_after_the_checks_leaves_no_half_made_run_directory(tmp_path):
    """Data with one class passes the option checks but cannot make a network: nothing is left behind."""
    p = npz(tmp_path / "one.npz", np.ones((10, 3)), np.zeros(10, int))
    r = steepest("train", "--dataset", p, "--out", tmp_path / "new" / "run")
    assert r.returncode == 2 and "2 classes" in r.stderr and len(r.stderr.splitlines()) == 1
    assert not (tmp_path / "new").exists()
