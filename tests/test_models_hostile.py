"""Hostile model files: a real trained model with one metadata entry (or θ) changed, through the real
command. Each is refused at load as a corrupt file, in one line naming the file and what is wrong — never a
NaN accuracy, a raw escape sequence on the terminal, or a prediction changed by a string read as a number.
Also: evaluate's note on a file's value range says what the model does with it, and only when it matters."""

import json
import struct

import numpy as np
import pytest

from clirun import steepest
from steepest.errors import ConfigError
from steepest.network import MLP


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Models trained on digits (64 inputs, 10 classes, input scale 1/16): plain and --standardize."""
    d = tmp_path_factory.mktemp("hostile")
    for name, more in (("plain", []), ("std", ["--standardize"])):
        r = steepest("train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--out", d / name,
                     "--quiet", *more)
        assert r.returncode == 0, r.stderr
    return d


def rewrite(src, dst, section=None, edit=None, theta_factor=None):
    """A copy of model file ``src`` with ``edit`` applied to its metadata ``section`` (a dict) or θ scaled."""
    raw = src.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    if section:
        meta = header["__metadata__"]
        value = json.loads(meta[section])
        edit(value)
        meta[section] = json.dumps(value)
    if theta_factor:
        data = (np.frombuffer(data, np.float32) * np.float32(theta_factor)).tobytes()
    body = json.dumps(header).encode()
    dst.write_bytes(struct.pack("<Q", len(body)) + body + data)
    return dst


def refused(r, *words):
    """Exit 2, one line on stderr naming what is wrong, nothing on stdout."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("steepest: error: "), r.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert r.stdout == ""
    return lines[0]


# ---------------------------------------------------------------- standardisation

STANDARDISATION = {  # finite in float64, unusable in the model's float32; or not a flat list of numbers
    "std-1e-300": ("input_std", [1e-300] * 64, "input_std[0] is 1e-300"),
    "std-1e-40": ("input_std", [1e-40] * 64, "input_std[0] is 1e-40"),
    "std-1e300": ("input_std", [1e300] * 64, "input_std[0] is 1e+300"),
    "mean-1e300": ("input_mean", [1e300] * 64, "input_mean[0] is 1e+300"),
    "mean-strings": ("input_mean", ["0.5"] * 64, "input_mean must be a flat list of 64 real numbers"),
    "mean-booleans": ("input_mean", [True] * 64, "input_mean must be a flat list of 64 real numbers"),
    "mean-8x8": ("input_mean", [[0.1] * 8] * 8, "input_mean must be a flat list of 64 real numbers"),
    "mean-63": ("input_mean", [0.1] * 63, "input_mean must be a flat list of 64 real numbers"),
}


@pytest.mark.parametrize("case", STANDARDISATION, ids=list(STANDARDISATION))
def test_standardisation_unusable_in_the_models_dtype_is_a_corrupt_file(runs, tmp_path, case):
    key, value, words = STANDARDISATION[case]
    bad = rewrite(runs / "std" / "model.safetensors", tmp_path / "m.safetensors", "architecture",
                  lambda a: a.update({key: value}))
    refused(steepest("evaluate", bad), str(bad), words, "the file is corrupt")


def test_mean_over_std_beyond_float32_is_a_corrupt_file(runs, tmp_path):
    """μ = 1e30 and σ = 1e-10 are each fine in float32, but μ/σ = 1e40 is inf there."""
    bad = rewrite(runs / "std" / "model.safetensors", tmp_path / "m.safetensors", "architecture",
                  lambda a: a.update(input_mean=[1e30] * 64, input_std=[1e-10] * 64))
    refused(steepest("evaluate", bad), "input_mean[0]/input_std[0] is 1e+40", "corrupt")


def test_every_command_refuses_a_tiny_std(runs, tmp_path):
    """evaluate said `accuracy 8.06% loss nan` and exit 0; predict blamed the inputs; export wrote a file."""
    bad = rewrite(runs / "std" / "model.safetensors", tmp_path / "m.safetensors", "architecture",
                  lambda a: a.update(input_std=[1e-300] * 64))
    np.save(tmp_path / "row.npy", np.full(64, 8.0, np.float32))
    for args in (("evaluate", bad), ("evaluate", bad, "--json"), ("predict", bad, tmp_path / "row.npy"),
                 ("export", bad, "--out", tmp_path / "m.onnx")):
        line = refused(steepest(*args), str(bad), "input_std[0] is 1e-300", "corrupt")
        assert "give inputs" not in line  # the model is to blame, not the user's inputs
    assert not (tmp_path / "m.onnx").exists()


def test_standardisation_is_checked_in_the_networks_own_dtype():
    """σ = 1e-300 is a normal float64 (smallest 2.2e-308) but not a float32 (smallest 1.2e-38)."""
    assert MLP([4, 3, 2], dtype="float64", input_std=[1e-300] * 4).input_std[0] == 1e-300
    with pytest.raises(ConfigError, match=r"input_std\[0\] is 1e-300, outside what float32 can divide by"):
        MLP([4, 3, 2], dtype="float32", input_std=[1e-300] * 4)


@pytest.mark.parametrize("mean", [np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.1, 0.2, 0.3, 0.4], np.float32),
                                  [0, 1, 2, 3], (0.5, np.float64(0.5), np.float32(0.5), np.int64(1))],
                         ids=["float64-array", "float32-array", "ints", "numpy-scalars"])
def test_python_users_give_standardisation_as_arrays_or_lists(mean):
    net = MLP([4, 3, 2], input_mean=mean, input_std=np.full(4, 0.5))
    np.testing.assert_allclose(net.input_mean, np.asarray(mean, np.float64))
    assert net.config()["input_mean"] == np.asarray(mean, np.float64).tolist()


@pytest.mark.parametrize("mean", [["0.5"] * 4, [True] * 4, np.ones(4, bool), np.zeros((2, 2)), [[0.0, 0.0]] * 2,
                                  0.5, "0.50"], ids=["strings", "booleans", "bool-array", "2d-array", "nested",
                                                     "scalar", "string"])
def test_standardisation_that_is_not_a_flat_list_of_numbers_is_refused(mean):
    with pytest.raises(ConfigError, match="input_mean must be a flat list of 4 real numbers"):
        MLP([4, 3, 2], input_mean=mean)


# ---------------------------------------------------------------- dataset metadata

DATASET = {
    "2-names": (lambda d: d.update(class_names=["a", "b"]), "2 class names for the network's 10 outputs"),
    "20-names": (lambda d: d.update(class_names=[str(i) for i in range(20)]),
                 "20 class names for the network's 10 outputs"),
    "escape": (lambda d: d["class_names"].__setitem__(3, "\x1b[31mRED"), "class name 3"),
    "bidi": (lambda d: d["class_names"].__setitem__(0, "\u202eevil"), "U+202E"),
    "newline": (lambda d: d["class_names"].__setitem__(9, "nine\nsteepest: fake line"), "U+000A"),
    "n_classes-3": (lambda d: d.update(n_classes=3), "n_classes 3 but the network has 10 outputs"),
    "n_classes-str": (lambda d: d.update(n_classes="10"), "n_classes '10' but the network has 10 outputs"),
}


@pytest.mark.parametrize("case", DATASET, ids=list(DATASET))
def test_dataset_metadata_that_does_not_fit_the_network_is_a_corrupt_file(runs, tmp_path, case):
    edit, words = DATASET[case]
    bad = rewrite(runs / "plain" / "model.safetensors", tmp_path / "m.safetensors", "dataset", edit)
    np.save(tmp_path / "row.npy", np.full(64, 8.0, np.float32))
    r = steepest("predict", bad, tmp_path / "row.npy")
    refused(r, str(bad), words, "the file is corrupt")
    assert not any(c in r.stderr for c in "\x1b\u202e"), r.stderr  # quoted, never printed raw


def test_image_shape_must_cover_the_models_inputs(runs, tmp_path):
    bad = rewrite(runs / "plain" / "model.safetensors", tmp_path / "m.safetensors", "preprocessing",
                  lambda p: p.update(image_shape=[7, 7]))
    np.save(tmp_path / "img.npy", np.zeros((7, 7), np.float32))
    refused(steepest("predict", bad, tmp_path / "img.npy"), "image_shape [7, 7]", "64 inputs", "corrupt")


def test_the_clean_model_still_predicts_with_its_class_names(runs, tmp_path):
    np.save(tmp_path / "row.npy", np.full(64, 8.0, np.float32))
    r = steepest("predict", runs / "plain", tmp_path / "row.npy", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] in [str(i) for i in range(10)]


# ---------------------------------------------------------------- outputs that overflow

def test_a_model_whose_own_parameters_overflow_is_blamed_not_the_data(runs, tmp_path):
    """θ·1e30 is finite, but the logits of any input overflow float32: no accuracy, no `loss nan`."""
    bad = rewrite(runs / "plain" / "model.safetensors", tmp_path / "m.safetensors", theta_factor=1e30)
    np.save(tmp_path / "row.npy", np.full(64, 8.0, np.float32))
    for args in (("evaluate", bad), ("evaluate", bad, "--json"), ("predict", bad, tmp_path / "row.npy")):
        refused(steepest(*args), str(bad), "outputs overflow float32 even for inputs on the scale it was trained on",
                "train the model again")


def test_evaluate_refuses_data_whose_outputs_overflow_naming_the_row(tmp_path):
    """As predict does: 3e38 is a finite float32, but the logits of that row are not."""
    r = steepest("train", "--dataset", "moons", "--hidden", "8", "--epochs", "1", "--out", tmp_path / "run",
                 "--quiet")
    assert r.returncode == 0, r.stderr
    X = np.full((6, 2), 0.5, np.float32)
    X[3] = [3e38, -3e38]
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(6) % 2)
    refused(steepest("evaluate", tmp_path / "run", "--dataset", tmp_path / "d.npz", "--split", "train"),
            "d.npz (train split), row 3: the model's outputs overflow float32", "largest magnitude 3e+38",
            "give inputs on the scale of the data it was trained on")


# ---------------------------------------------------------------- evaluate's note on the data's scale

def test_scale_note_only_for_data_off_the_trained_range(runs, tmp_path):
    """The model multiplies any file's inputs by its scale 1/16: digits as stored (0 … 16) are right and
    give exactly the accuracy of the model's own data; ×16 or already ÷16 are not, and the note says so."""
    from steepest.data import load_dataset

    ds = load_dataset("digits")
    same = steepest("evaluate", runs / "plain", "--split", "train", "--json")
    assert same.returncode == 0, same.stderr
    results = {}
    for name, factor in (("as-stored", 1), ("times16", 16), ("scaled", 1 / 16)):
        np.savez(tmp_path / f"{name}.npz", X=ds.X_train.astype(np.float32) * factor, y=ds.y_train)
        r = steepest("evaluate", runs / "plain", "--dataset", tmp_path / f"{name}.npz", "--split", "train")
        assert r.returncode == 0, r.stderr
        results[name] = r.stdout
    assert "note:" not in results["as-stored"] and "holds values" not in results["as-stored"]
    assert f"accuracy {100 * json.loads(same.stdout)['accuracy']:.2f}%" in results["as-stored"]
    assert "holds values 0 … 256, but the model multiplies its inputs by 0.0625 and was trained on values 0 … 16" \
        in results["times16"]
    assert "holds values 0 … 1, but" in results["scaled"] and "0 … 16" in results["scaled"]


def test_scale_note_for_a_model_of_features_compares_the_scales(tmp_path):
    """A model trained on features at scale 1 (digits ÷ 16 as floats) records no range; measured on digits as
    stored (0 … 16, scale 1/16) it is told so, as before — and not for its own kind of data."""
    from steepest.data import load_dataset

    ds = load_dataset("digits")
    np.savez(tmp_path / "d01.npz", X=(ds.X_train / 16).astype(np.float32), y=ds.y_train)
    r = steepest("train", "--dataset", tmp_path / "d01.npz", "--hidden", "8", "--epochs", "1", "--out", tmp_path / "r",
                 "--quiet")
    assert r.returncode == 0, r.stderr
    off = steepest("evaluate", tmp_path / "r", "--dataset", "digits")
    assert off.returncode == 0 and "is stored at scale 0.0625 but the model multiplies its inputs by 1" in off.stdout + off.stderr
    own = steepest("evaluate", tmp_path / "r", "--dataset", tmp_path / "d01.npz", "--split", "train")
    assert own.returncode == 0 and "note:" not in own.stdout + own.stderr, own.stdout


@pytest.mark.parametrize("label", ["no\u202eevil", "red\x1b[31m", "two\nlines"])
def test_labels_a_terminal_would_act_on_are_refused_before_training(tmp_path, label):
    """A user's string label with a character a terminal acts on trained a model that no command could load
    (its class names are refused there): the data is refused instead, naming the class — from an .npz and
    from an image folder's sub-folder name."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.random((20, 4)), y=np.array([label, "plain"] * 10))
    r = steepest("train", "--dataset", tmp_path / "d.npz", "--epochs", "1", "--out", tmp_path / "run")
    assert r.returncode == 2 and "which a terminal would act on" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "\x1b" not in r.stderr and "\u202e" not in r.stderr
    assert not (tmp_path / "run").exists()
    from PIL import Image

    for name in (label, "plain"):
        (tmp_path / "img" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray((rng.random((6, 6)) * 255).astype(np.uint8)).save(tmp_path / "img" / name / f"{i}.png")
    r = steepest("train", "--dataset", tmp_path / "img", "--epochs", "1", "--out", tmp_path / "run")
    assert r.returncode == 2 and "which a terminal would act on" in r.stderr, r.stderr


def test_format_characters_of_ordinary_text_are_kept_in_class_names(tmp_path):
    """The zero-width non-joiner (Persian words), the zero-width joiner (emoji sequences) and the soft hyphen
    are format characters of ordinary text: a folder or label named with them trains, and its model loads."""
    from PIL import Image

    rng = np.random.default_rng(0)
    names = ["\u06af\u0631\u0628\u0647\u200c\u0647\u0627", "\U0001f468\u200d\U0001f469", "co\u00adop"]
    for name in names:
        (tmp_path / "img" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray((rng.random((6, 6)) * 255).astype(np.uint8)).save(tmp_path / "img" / name / f"{i}.png")
    r = steepest("train", "--dataset", tmp_path / "img", "--hidden", "4", "--epochs", "1", "--batch-size", "4",
                 "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    p = steepest("predict", tmp_path / "run", tmp_path / "img" / names[1] / "0.png")
    assert p.returncode == 0 and any(n in p.stdout for n in names), p.stderr


def test_the_estimator_saves_a_label_with_control_characters_as_a_printable_name(tmp_path):
    """MLPClassifier's classes may be any strings; the saved file's class names (printed by predict) are
    escaped, the classes themselves come back as they were."""
    from steepest.sklearn import MLPClassifier, load

    rng = np.random.default_rng(0)
    X, y = rng.random((30, 4)), np.array(["a\x1b[31m", "b"] * 15)
    est = MLPClassifier(hidden=(4,), epochs=1, seed=0).fit(X, y)
    est.save(tmp_path / "m.safetensors")
    back = load(tmp_path / "m.safetensors")
    assert list(back.classes_) == ["a\x1b[31m", "b"] and (back.predict(X) == est.predict(X)).all()
    from steepest.io import load_model

    assert load_model(tmp_path / "m.safetensors")[2]["dataset"]["class_names"] == ["a\\x1b[31m", "b"]


@pytest.mark.parametrize("edit", [
    lambda sk: sk["params"].update(pieces=4),           # 3 pieces in the network
    lambda sk: sk["params"].update(hidden=[8, 8]),      # 8, 6
    lambda sk: sk["params"].update(activation="relu"),  # maxout
], ids=["pieces", "hidden", "activation"])
def test_an_estimator_file_whose_parameters_do_not_describe_its_network_is_corrupt(tmp_path, edit):
    """load() gave get_params() of another network (pieces=4 for a 3-piece maxout) without a word, and a
    refit would have trained that other network."""
    from steepest.errors import ModelFileError
    from steepest.sklearn import MLPClassifier, load

    rng = np.random.default_rng(0)
    X, y = rng.random((40, 5)), np.arange(40) % 3
    MLPClassifier(hidden=(8, 6), activation="maxout", pieces=3, epochs=1, seed=0).fit(X, y).save(tmp_path / "m.safetensors")
    assert load(tmp_path / "m.safetensors").get_params()["pieces"] == 3
    rewrite(tmp_path / "m.safetensors", tmp_path / "bad.safetensors", "sklearn", edit)
    with pytest.raises(ModelFileError, match=r"do not describe its network \(5-8-6-3 maxout \(3 pieces\)\); the file is corrupt"):
        load(tmp_path / "bad.safetensors")
