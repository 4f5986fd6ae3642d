"""`steepest explain` follows the recipe a model file records — whoever wrote it — or says it cannot."""

import json

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the estimator needs scikit-learn (pip install 'steepest[sklearn]')")

from clirun import steepest  # noqa: E402
from steepest.sklearn import MLPClassifier  # noqa: E402

#: a recipe far from explain's old stand-in (sgd, η 0.1, full batch, seed 0): each part would show
RECIPE = {"hidden": (16,), "lr": 0.05, "batch_size": 32, "optimizer": "momentum", "momentum": 0.8,
          "dropout": [0.1, 0.2], "schedule": "cosine", "epochs": 3, "seed": 7, "init": "glorot", "threads": 1}


@pytest.fixture(scope="module")
def fitted(digits):
    return MLPClassifier(**RECIPE, input_scale=digits.input_scale).fit(digits.X_train, digits.y_train)


def explain(model, out, *more):
    r = steepest("explain", model, "--dataset", "digits", "--batch", "32", "--units", "2", "--threads", "1",
                 "--out", out, *more)
    assert r.returncode == 0, r.stderr
    return r.stdout + r.stderr, json.loads((out / "explain.json").read_text())


def test_a_model_saved_by_the_estimator_is_explained_with_its_own_recipe(fitted, tmp_path):
    """The step is one of the estimator's lr, and the maps over training re-train with its optimizer,
    batches, dropout, schedule, init and seed: the last epoch is the saved θ, bit for bit."""
    model = fitted.save(tmp_path / "x.safetensors")
    said, numbers = explain(model, tmp_path / "ex", "--epochs-at", "2", "3")
    assert "one step of η = 0.05:" in said and numbers["notes"] == []
    assert numbers["over_training"]["labels"] == ["θ₀ (initial)", "after epoch 2", "after epoch 3", "trained θ"]
    assert numbers["over_training"]["retrained_matches_model"] is True
    assert "its last epoch is the model's θ, bit for bit" in said


def test_a_file_with_the_estimators_parameters_alone_is_explained_with_them(fitted, tmp_path):
    """Files that MLPClassifier.save wrote before it wrote a ``training`` section hold the recipe in
    ``sklearn.params``: explain reads it there (θ₀ from its init and seed, the re-training from the rest)."""
    from steepest.io import load_model, save_model

    net, theta, meta = load_model(fitted.save(tmp_path / "new.safetensors"))
    del meta["training"], meta["sklearn"]["trained_by"]
    old = save_model(tmp_path / "old.safetensors", net, theta, meta)
    said, numbers = explain(old, tmp_path / "ex", "--epochs-at", "3")
    assert "one step of η = 0.05:" in said and numbers["notes"] == []
    assert numbers["over_training"]["retrained_matches_model"] is True


def test_training_that_cannot_be_repeated_is_said_not_replaced(digits, tmp_path):
    """A model trained by partial_fit calls: explain says in one line that it cannot re-train it and draws
    θ₀ and the trained θ only. A file with no recipe at all: the η it uses is said, and so is what is not
    drawn — no other recipe stands in for the missing one."""
    from steepest.io import load_model, save_model

    est = MLPClassifier(**RECIPE, input_scale=digits.input_scale)
    for _ in range(2):
        est.partial_fit(digits.X_train, digits.y_train, classes=np.arange(10))
    said, numbers = explain(est.save(tmp_path / "pf.safetensors"), tmp_path / "pf", "--epochs-at", "1")
    assert "one step of η = 0.05:" in said
    assert numbers["over_training"]["labels"] == ["θ₀ (initial)", "trained θ"]
    assert [n.split(":")[0] for n in numbers["notes"]] == ["--epochs-at is not drawn"]
    assert "partial_fit" in numbers["notes"][0] and numbers["notes"][0] in said

    net, theta, _ = load_model(tmp_path / "pf.safetensors")
    bare = save_model(tmp_path / "bare.safetensors", net, theta, {})
    said, numbers = explain(bare, tmp_path / "bare", "--epochs-at", "1")
    assert "one step of η = 0.1:" in said and numbers["over_training"]["labels"] == []
    assert len(numbers["notes"]) == 2 and all(n in said for n in numbers["notes"])
    assert "records no training recipe" in numbers["notes"][0] and "η = 0.1" in numbers["notes"][1]


def test_landscape_reads_the_estimators_parameters_alone_too(fitted, tmp_path):
    """landscape's θ₀ (init and seed) and its step probe's η come from the same record as explain's: a file
    with the estimator's parameters alone draws the same line and probe as the one with a training section
    (the old file was drawn from the activation's default init and η = 0.1)."""
    from steepest.io import load_model, save_model

    new = fitted.save(tmp_path / "new.safetensors")
    net, theta, meta = load_model(new)
    del meta["training"], meta["sklearn"]["trained_by"]
    old = save_model(tmp_path / "old.safetensors", net, theta, meta)
    drawn = []
    for model, out in ((new, tmp_path / "l-new"), (old, tmp_path / "l-old")):
        r = steepest("landscape", model, "--dataset", "digits", "--parts", "line", "probe", "--n-samples", "64",
                     "--resolution", "5", "--threads", "1", "--out", out, "--quiet")
        assert r.returncode == 0, r.stderr
        numbers = json.loads((out / "landscape.json").read_text())
        numbers.pop("model")
        drawn.append(numbers)
    assert drawn[0]["theta0_seed"] == RECIPE["seed"]
    assert drawn[0] == drawn[1]
