"""The `steepest` command, run for real in subprocesses on the bundled 8×8 digits."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from steepest.commands import COMMANDS
from steepest.io import load_model
from clirun import steepest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

EPOCH_KEYS = {"event", "epoch", "train_loss", "train_acc", "val_acc", "test_acc", "grad_norm", "lr", "samples",
              "seconds"}




def json_lines(text, events=None):
    """Every stdout line as JSON; ``events``: keep those events only (default: all but the thread-count
    choices, which tests/test_threads.py checks — how many there are depends on the machine's load)."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [l for l in lines if (l.get("event") in events if events else l.get("event") != "threads")]


TRAIN = ["train", "--dataset", "digits", "--hidden", "32", "16", "--activation", "relu", "--init", "he",
         "--optimizer", "momentum", "--lr", "0.05", "--momentum", "0.9", "--batch-size", "64", "--epochs", "3",
         "--seed", "0", "--json"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    r = steepest(*TRAIN, "--out", run)
    assert r.returncode == 0, r.stderr
    return run, r


def test_train_writes_the_run_directory(digits_run):
    run, _ = digits_run
    for f in ("config.toml", "metrics.csv", "metrics.jsonl", "model.safetensors", "checkpoints/checkpoint.safetensors"):
        assert (run / f).is_file(), f
    assert not [p for p in run.rglob(".*")], "no temporary files left behind"
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"train_loss", "train_acc", "test_acc", "grad_norm", "lr", "samples", "seconds"} <= set(rows[0])
    recs = json_lines((run / "metrics.jsonl").read_text())
    assert [r["epoch"] for r in recs] == [1, 2, 3]
    assert float(rows[-1]["test_acc"]) == recs[-1]["test_acc"]
    cfg = tomllib.loads((run / "config.toml").read_text())
    assert cfg["dataset"] == "digits" and cfg["hidden"] == [32, 16] and cfg["batch_size"] == 64
    assert cfg["optimizer"] == "momentum" and cfg["momentum"] == 0.9 and cfg["epochs"] == 3


def test_json_lines_have_the_promised_keys(digits_run):
    _, r = digits_run
    lines = json_lines(r.stdout)  # every stdout line is JSON
    epochs, end = lines[:-1], lines[-1]
    for t in json_lines(r.stdout, events=("threads",)):
        assert set(t) == {"event", "step", "threads", "ms_per_step"} and t["threads"] >= 1
    assert [set(e) for e in epochs] == [EPOCH_KEYS] * 3
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and all(e["event"] == "epoch" for e in epochs)
    assert epochs[-1]["samples"] == 3 * 1437 and epochs[0]["val_acc"] is None
    assert all(0 < e["seconds"] < 60 and 0 <= e["test_acc"] <= 1 for e in epochs)
    assert end["event"] == "end" and end["stop_reason"] == "max_epochs" and end["epochs"] == 3
    assert {"stop_message", "test_acc", "test_loss", "steps", "seconds", "model"} <= set(end)
    assert end["steps"] == 3 * 23 and end["test_acc"] == epochs[-1]["test_acc"]
    assert end["test_acc"] > 0.8  # it learned something
    assert Path(end["model"]).is_file()
    assert "test accuracy" in r.stderr  # words go to stderr with --json


def test_model_file_describes_the_run(digits_run):
    run, r = digits_run
    net, theta, meta = load_model(run / "model.safetensors")
    assert net.sizes == (64, 32, 16, 10) and net.activations == ("relu", "relu")
    assert meta["dataset"]["name"] == "digits" and meta["dataset"]["class_names"] == [str(i) for i in range(10)]
    assert meta["preprocessing"] == {"input_scale": 1 / 16, "image_shape": [8, 8]}
    assert meta["training"]["lr"] == 0.05 and meta["seed"] == 0
    assert meta["metrics"]["test_acc"] == json_lines(r.stdout)[-1]["test_acc"]
    assert meta["environment"]["steepest"] and meta["environment"]["numpy"]


def test_evaluate_reproduces_the_test_accuracy(digits_run):
    run, r = digits_run
    final = json_lines(r.stdout)[-1]["test_acc"]
    e = steepest("evaluate", run / "model.safetensors", "--dataset", "digits", "--json")
    assert e.returncode == 0, e.stderr
    res = json.loads(e.stdout)
    assert res["accuracy"] == final and res["n"] == 360
    assert np.array(res["confusion_matrix"]).sum() == 360 and len(res["precision"]) == 10
    text = steepest("evaluate", run)  # a run directory stands for its model; dataset from the model
    assert text.returncode == 0, text.stderr
    assert f"accuracy {100 * final:.2f}%" in text.stdout
    assert "precision" in text.stdout and "confusion matrix" in text.stdout


def test_predict_npy_matches_the_network(digits_run, tmp_path):
    from steepest.data import load_digits

    run, _ = digits_run
    ds = load_digits()
    np.save(tmp_path / "row.npy", ds.X_test[5])
    np.save(tmp_path / "rows.npy", ds.X_test[:4])
    net, theta, _ = load_model(run / "model.safetensors")
    expected = net.predict(theta, ds.X_test[:6])
    p = steepest("predict", run / "model.safetensors", tmp_path / "row.npy", tmp_path / "rows.npy", "--json")
    assert p.returncode == 0, p.stderr
    out = json_lines(p.stdout)
    assert [o["class"] for o in out] == [expected[5], *expected[:4]]
    assert all(abs(sum(o["probabilities"]) - 1) < 1e-5 for o in out)
    text = steepest("predict", run / "model.safetensors", tmp_path / "row.npy")
    assert text.returncode == 0 and text.stdout.startswith(f"{tmp_path / 'row.npy'}: {expected[5]}")


def test_predict_an_image(digits_run, tmp_path):
    """A digit drawn large, dark on light, goes through the MNIST-style conversion at 8×8."""
    from PIL import Image

    from steepest.data import image_to_mnist, load_digits

    run, _ = digits_run
    ds = load_digits()
    big = Image.fromarray((255 - ds.X_test[0].reshape(8, 8) * 15).astype(np.uint8)).resize((80, 80))
    big.save(tmp_path / "digit.png")
    net, theta, _ = load_model(run / "model.safetensors")
    x = image_to_mnist(tmp_path / "digit.png", size=8).astype(np.float64) / 255 * 16
    expected = int(net.predict(theta, x[None, :].astype(np.float32))[0])
    p = steepest("predict", run, tmp_path / "digit.png", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["class"] == expected


def test_config_file_with_command_line_override(tmp_path):
    (tmp_path / "run.toml").write_text('dataset = "digits"\nhidden = [16]\nepochs = 2\nlr = 0.5\n'
                                       'batch-size = 100\noptimizer = "sgd"\n')
    r = steepest("train", "--config", tmp_path / "run.toml", "--lr", "0.1", "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    cfg = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert cfg["lr"] == 0.1 and cfg["epochs"] == 2 and cfg["hidden"] == [16] and cfg["batch_size"] == 100
    assert cfg["optimizer"] == "sgd"
    net, _, meta = load_model(tmp_path / "run" / "model.safetensors")
    assert net.sizes == (64, 16, 10) and meta["metrics"]["steps"] == 2 * 15
    assert "test accuracy" in r.stdout and len(r.stdout.splitlines()) == 1  # --quiet: the result only
    # The written config.toml is itself a valid --config.
    again = steepest("train", "--config", tmp_path / "run" / "config.toml", "--out", tmp_path / "again", "--json")
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[-1]["test_acc"] == meta["metrics"]["test_acc"]  # same seed, same result


def test_config_file_giving_one_option_twice_is_refused(tmp_path):
    """batch_size and batch-size are one option: a file with both does not silently keep the last."""
    (tmp_path / "two.toml").write_text('dataset = "digits"\nbatch_size = 16\nbatch-size = 64\n')
    r = steepest("train", "--config", tmp_path / "two.toml", "--out", tmp_path / "run")
    assert r.returncode == 2 and "option batch_size is given twice" in r.stderr
    assert not (tmp_path / "run").exists()


def test_a_second_config_or_recipe_is_refused_not_dropped(tmp_path):
    """--config a.toml --config b.toml used to train with b's options alone; one source of each kind."""
    (tmp_path / "a.toml").write_text('dataset = "digits"\nlr = 0.5\n')
    (tmp_path / "b.toml").write_text('dataset = "digits"\nlr = 0.05\n')
    for argv in (["--config", tmp_path / "a.toml", "--config", tmp_path / "b.toml"],
                 ["--recipe", "mnist-record", "--recipe", "mnist-dropout", "--dataset", "digits"]):
        r = steepest("train", *argv, "--epochs", "1", "--out", tmp_path / "run")
        flag = str(argv[0])
        assert r.returncode == 2 and f"argument {flag}: given twice" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("line,shown", [('lr = [0.1]', "--lr must be a number, got a list [0.1]"),
                                        ('dtype = ["float32"]', 'got a list ["float32"]'),
                                        ('hidden = [[8]]', "--hidden must be an integer, got a list [8]"),
                                        ('epochs = {a = 1}', 'got a table {"a": 1}')])
def test_a_list_where_one_value_goes_is_shown_as_a_list(tmp_path, line, shown):
    """A TOML list for a one-value option was printed without its brackets: "--lr must be a number, got 0.1"."""
    (tmp_path / "c.toml").write_text(f'dataset = "digits"\n{line}\n')
    r = steepest("train", "--config", tmp_path / "c.toml", "--out", tmp_path / "run")
    assert r.returncode == 2 and shown in r.stderr, r.stderr


@pytest.mark.parametrize("flag,value", [("--epochs", "\u0663"), ("--epochs", "1_0"), ("--seed", "\uff15"),
                                        ("--lr", "1_0e-2"), ("--lr", "0.\u0665"), ("--eval-every", "\u0665%")])
def test_numbers_are_written_in_ascii_digits_as_the_other_commands_read_them(tmp_path, flag, value):
    """int() and float() also read other scripts' digits and 1_0: train trained 3 epochs for --epochs ٣ where
    every other command's integer options refuse it."""
    r = steepest("train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", flag, value, "--out", tmp_path / "run")
    assert r.returncode == 2 and f"{flag} must be" in r.stderr and not (tmp_path / "run").exists(), r.stderr
    from steepest.commands._limits import LR, SEED
    import argparse

    for parse, text in ((LR, "1_0e-2"), (LR, "0.\u0665"), (SEED, "\uff15")):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
    # a whole number in scientific notation stays a whole number: --max-steps 1e1 is 10 steps
    r = steepest("train", "--dataset", "digits", "--hidden", "8", "--max-steps", "1e1", "--out", tmp_path / "ok", "--json")
    assert r.returncode == 0 and json_lines(r.stdout)[-1]["steps"] == 10, r.stderr


def test_a_schedule_over_the_whole_run_needs_its_length(tmp_path):
    """--time-budget alone leaves the number of steps open: cosine and onecycle said "needs total_steps=..."."""
    for extra in (["--schedule", "cosine"], ["--schedule", "onecycle"]):
        r = steepest("train", "--dataset", "digits", "--hidden", "8", "--time-budget", "1", *extra,
                     "--out", tmp_path / "run")
        assert r.returncode == 2 and "give --epochs or --max-steps as well" in r.stderr, r.stderr
        assert "total_steps" not in r.stderr
    r = steepest("train", "--dataset", "digits", "--hidden", "8", "--time-budget", "30", "--max-steps", "3",
                 "--schedule", "cosine", "--out", tmp_path / "run", "--json")
    assert r.returncode == 0 and json_lines(r.stdout)[-1]["steps"] == 3, r.stderr


def test_labels_with_data_that_carries_its_own_is_refused_by_name(tmp_path):
    """--labels goes with an IDX images file only: with digits it said "digits: no such file", with an .npz it
    blamed the .npz for not being IDX."""
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 3)), y=np.arange(4) % 2)
    (tmp_path / "labels").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x00")
    for dataset, kind in (("digits", "a named dataset"), (tmp_path / "d.npz", "an .npz file"),
                          (tmp_path, "a folder of class folders")):
        r = steepest("train", "--dataset", dataset, "--labels", tmp_path / "labels", "--epochs", "1",
                     "--out", tmp_path / "run")
        assert r.returncode == 2 and f"is {kind}, which carries its own labels" in r.stderr, r.stderr
        assert not (tmp_path / "run").exists()


def test_full_batch_gradient_descent_and_float64(tmp_path):
    r = steepest("train", "--dataset", "digits", "--hidden", "16", "--optimizer", "gd", "--batch-size", "full",
                 "--lr", "0.5", "--epochs", "4", "--dtype", "float64", "--out", tmp_path / "gd", "--json")
    assert r.returncode == 0, r.stderr
    end = json_lines(r.stdout)[-1]
    assert end["steps"] == 4 and end["epochs"] == 4  # one step per epoch
    net, theta, _ = load_model(tmp_path / "gd" / "model.safetensors")
    assert theta.dtype == np.float64 and net.dtype == np.float64


def test_validation_split_patience_and_schedule(tmp_path):
    r = steepest("train", "--dataset", "digits", "--hidden", "16", "--val-split", "0.2", "--patience", "50",
                 "--schedule", "cosine", "--warmup-steps", "5", "--epochs", "3", "--batch-size", "50",
                 "--out", tmp_path / "v", "--json")
    assert r.returncode == 0, r.stderr
    lines = json_lines(r.stdout)
    assert all(e["val_acc"] is not None for e in lines[:-1])
    assert lines[-1]["val_acc"] is not None and lines[-1]["val_acc"] > 0.5
    lrs = [e["lr"] for e in lines[:-1]]
    assert lrs[0] > lrs[1] > lrs[2]  # cosine decay over 3 × 23 steps
    _, _, meta = load_model(tmp_path / "v" / "model.safetensors")
    assert meta["dataset"]["n_train"] + meta["dataset"]["n_val"] == 1437 and meta["dataset"]["n_val"] == 287


def test_default_run_directory(tmp_path):
    r = steepest("train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("digits-") and (run / "model.safetensors").is_file()
    assert f"runs/{run.name}/model.safetensors" in r.stdout


def test_user_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4, size=(3, 5))
    y = rng.integers(0, 3, 300)
    X = centres[y] + rng.normal(size=(300, 5))
    np.savez(tmp_path / "blobs.npz", X=X[:240], y=y[:240], X_test=X[240:], y_test=y[240:])
    r = steepest("train", "--dataset", tmp_path / "blobs.npz", "--hidden", "8", "--epochs", "5",
                 "--batch-size", "16", "--out", tmp_path / "b", "--json")
    assert r.returncode == 0, r.stderr
    assert json_lines(r.stdout)[-1]["test_acc"] > 0.9
    e = steepest("evaluate", tmp_path / "b", "--dataset", tmp_path / "blobs.npz", "--json")
    assert json.loads(e.stdout)["accuracy"] == json_lines(r.stdout)[-1]["test_acc"]


def test_fallback_to_digits_says_so(tmp_path):
    if Path("/usr/share/datasets/mnist").exists():
        pytest.skip("MNIST is installed system-wide here, so there is nothing to fall back from")
    env = {"STEEPEST_DATA": None, "STEEPEST_CACHE": tmp_path / "cache", "STEEPEST_MIRRORS": "http://127.0.0.1:9/"}
    r = steepest("train", "--dataset", "mnist", "--fallback", "digits", "--hidden", "8", "--epochs", "1",
                 "--out", tmp_path / "fb", env=env)
    assert r.returncode == 0, r.stderr
    assert "mnist was not found" in r.stdout and "training on digits instead" in r.stdout
    assert "(digits, 360 images)" in r.stdout
    _, _, meta = load_model(tmp_path / "fb" / "model.safetensors")
    assert meta["dataset"]["name"] == "digits"


def test_gradcheck_passes_and_fails_by_threshold():
    ok = steepest("gradcheck", "--hidden", "16", "8", "--activation", "tanh")
    assert ok.returncode == 0, ok.stderr
    for block in ("layer1.W", "layer1.b", "layer2.W", "layer2.b", "layer3.W", "layer3.b"):
        assert block in ok.stdout
    res = steepest("gradcheck", "--hidden", "5", "--activation", "sigmoid", "--json")
    data = json.loads(res.stdout)
    assert res.returncode == 0 and data["ok"] and set(data["errors"]) == {"layer1.W", "layer1.b", "layer2.W", "layer2.b"}
    assert max(data["errors"].values()) < 1e-6
    strict = steepest("gradcheck", "--hidden", "5", "--threshold", "1e-30")
    assert strict.returncode == 1 and "FAILED" in strict.stdout


def test_datasets_lists_where_each_is(tmp_path):
    r = steepest("datasets", env={"STEEPEST_DATA": None, "STEEPEST_CACHE": tmp_path / "cache"})
    assert r.returncode == 0, r.stderr
    for name in ("mnist", "fashion-mnist", "digits"):
        assert name in r.stdout
    assert "would be downloaded from http" in r.stdout
    rows = json_lines(steepest("datasets", "--json", env={"STEEPEST_CACHE": tmp_path / "cache"}).stdout)
    assert [row["name"] for row in rows] == ["mnist", "fashion-mnist", "digits", "moons", "circles", "spirals", "xor"]


def test_datasets_finds_real_data(real_data_dir):
    rows = json_lines(steepest("datasets", "--json", env={"STEEPEST_DATA": real_data_dir}).stdout)
    mnist = rows[0]
    assert mnist["found"] and mnist["n_train"] == 60000 and mnist["n_test"] == 10000
    assert mnist["path"] == str(real_data_dir / "mnist")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    r = steepest(command, "--help")
    assert r.returncode == 0 and "example" in r.stdout and f"steepest {command}" in r.stdout


def test_top_level_help_and_version():
    r = steepest("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in ("train", "evaluate", "predict", "gradcheck", "datasets"))
    v = steepest("--version")
    assert v.returncode == 0 and v.stdout.startswith("steepest ")


def test_importing_the_cli_stays_light():
    code = ("import sys, steepest.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('tqdm', 'safetensors', 'pooch', 'PIL', 'sklearn') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_a_fallback_or_data_dir_that_cannot_be_used_is_refused_up_front(tmp_path):
    """--fallback nosuch and --data-dir /missing were accepted whenever --dataset was found: the first would
    fail only on the day the dataset went missing, the second was passed over without a word."""
    for argv, said in ((["train", "--dataset", "digits", "--fallback", "nosuch"], "--fallback 'nosuch' is neither"),
                       (["train", "--dataset", "digits", "--data-dir", tmp_path / "missing"], "no such directory"),
                       (["datasets", "--data-dir", tmp_path / "missing"], "no such directory")):
        r = steepest(*argv, "--out", tmp_path / "run") if argv[0] == "train" else steepest(*argv)
        assert r.returncode == 2 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "run").exists()
    ok = steepest("train", "--dataset", "digits", "--fallback", "moons", "--data-dir", tmp_path, "--hidden", "8",
                  "--epochs", "1", "--out", tmp_path / "run", "--quiet")
    assert ok.returncode == 0, ok.stderr


def test_a_relative_data_path_that_is_missing_says_where_it_was_looked_for(tmp_path):
    """dataset = "mine.npz" in sub/run.toml, beside the file: read from the current directory (as on the
    command line), which the error now names — it said only "mine.npz: no such file or directory"."""
    (tmp_path / "sub").mkdir()
    np.savez(tmp_path / "sub" / "mine.npz", X=np.zeros((4, 3)), y=np.arange(4) % 2)
    (tmp_path / "sub" / "run.toml").write_text('dataset = "mine.npz"\n')
    r = steepest("train", "--config", "sub/run.toml", "--epochs", "1", "--out", "run", cwd=tmp_path)
    assert r.returncode == 2 and f"mine.npz: no such file or directory (looked for in {tmp_path})" in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()
