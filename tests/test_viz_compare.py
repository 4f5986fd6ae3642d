"""steepest.viz.compare: equal budgets from one θ₀, traces, gradient noise, files."""

import json
import math

import numpy as np
import pytest

import steepest
from steepest.errors import ConfigError
from steepest.viz import plots_compare
from steepest.viz.compare import RunSpec, compare_optimizers, gradient_noise, parse_runs, write_comparison

RUNS = ("gd", "sgd:batch=16,lr=0.05", "momentum:batch=128")


@pytest.fixture(scope="module")
def setup(digits):
    net = steepest.MLP([64, 16, 10], activation="relu", input_scale=digits.input_scale)
    return net, net.init(seed=0)


@pytest.fixture(scope="module")
def comparison(digits, setup):
    net, theta0 = setup
    return compare_optimizers(net, theta0, digits.X_train, digits.y_train, RUNS, epochs=2,
                              X_test=digits.X_test, y_test=digits.y_test, eps=1e-3)


def test_equal_epochs_budget(comparison, digits):
    n = len(digits.y_train)
    by = {r.spec.label: r.summary for r in comparison.runs}
    assert [r.spec.label for r in comparison.runs] == ["GD", "SGD B=16", "momentum B=128"]
    assert all(s["samples"] == 2 * n and s["stop_reason"] == "max_epochs" for s in by.values())
    assert by["GD"]["steps"] == 2
    assert by["SGD B=16"]["steps"] == 2 * math.ceil(n / 16)
    assert by["momentum B=128"]["steps"] == 2 * math.ceil(n / 128)


def test_all_runs_start_from_the_same_theta0(comparison, setup, digits):
    net, theta0 = setup
    loss0 = net.loss(theta0, digits.X_train, digits.y_train)
    for r in comparison.runs:
        assert r.trace["samples"][0] == 0
        assert r.trace["loss"][0] == pytest.approx(loss0, rel=1e-6)
        assert r.trace["samples"][-1] == r.summary["samples"]  # the trace reaches the run's end
        assert np.all(np.diff(r.trace["samples"]) > 0)
        # the wall clock counts every gradient; the loop's step seconds leave out full batch's cached ones
        assert np.all(np.diff(r.trace["wall"]) > 0) and r.trace["wall"][-1] <= r.summary["wall_seconds"]
        assert r.summary["wall_seconds"] >= r.summary["seconds"]


def test_gd_run_is_plain_training(comparison, setup, digits):
    """The tracing callback must not change what training does: bit for bit the same θ."""
    net, theta0 = setup
    ref = steepest.train(net, theta0, digits.X_train, digits.y_train, optimizer="gd", lr=0.5,
                         batch_size="full", epochs=2, eps=1e-3)
    gd = comparison.runs[0]
    np.testing.assert_array_equal(gd.theta, ref.theta)
    assert gd.summary["train_loss"] == pytest.approx(net.loss(ref.theta, digits.X_train, digits.y_train))


def test_samples_budget(digits, setup):
    net, theta0 = setup
    comp = compare_optimizers(net, theta0, digits.X_train, digits.y_train, ("gd", "sgd:batch=100"),
                              samples=3000)
    n = len(digits.y_train)
    gd, sgd = (r.summary for r in comp.runs)
    assert gd["steps"] == math.ceil(3000 / n)
    # 1437 rows in batches of 100: 14 full + 1 of 37 per epoch, so 3000 rows take 15 + 15 + 2 steps
    assert sgd["steps"] == 32 and sgd["stop_reason"] == "max_steps"
    assert 3000 <= sgd["samples"] < 3100
    assert 3000 <= gd["samples"] < 3000 + n


def test_seconds_budget(digits, setup):
    net, theta0 = setup
    comp = compare_optimizers(net, theta0, digits.X_train, digits.y_train, ("sgd:batch=32",), seconds=0.3)
    s = comp.runs[0].summary
    assert s["stop_reason"] == "time_budget"
    assert s["wall_seconds"] >= 0.3 and s["steps"] > 0


def test_bad_budgets_and_batches_fail_before_training(digits, setup):
    net, theta0 = setup
    with pytest.raises(ConfigError):
        compare_optimizers(net, theta0, digits.X_train, digits.y_train, epochs=1, samples=10)
    calls = []
    with pytest.raises(ConfigError, match="batch size 5000"):
        compare_optimizers(net, theta0, digits.X_train, digits.y_train, ("gd", "sgd:batch=5000"), epochs=1,
                           progress=calls.append)
    assert calls == []


def test_runspec_parse():
    s = RunSpec.parse("sgd:batch=16,lr=0.05")
    assert (s.optimizer, s.batch_size, s.lr, s.label) == ("sgd", 16, 0.05, "SGD B=16")
    m = RunSpec.parse("momentum:batch=full,momentum=0.8,label=heavy ball")
    assert m.batch_size == "full" and m.options == {"momentum": 0.8} and m.label == "heavy ball"
    assert RunSpec.parse("gd").batch_size == "full"
    assert RunSpec.parse("sgd:momentum=0.9,nesterov=true").options == {"momentum": 0.9, "nesterov": True}
    with pytest.raises(ConfigError):
        RunSpec.parse("adam:momentum=0.9")  # not an Adam option
    with pytest.raises(ConfigError, match="run spec 'sgd:batch'"):
        RunSpec.parse("sgd:batch")
    with pytest.raises(ConfigError, match="run spec 'sgd:lr=fast'"):
        RunSpec.parse("sgd:lr=fast")
    with pytest.raises(ConfigError, match="unknown optimizer"):
        RunSpec.parse("sgdd")
    with pytest.raises(ConfigError):
        parse_runs(["sgd:batch=16", "sgd:batch=16"])
    assert len(parse_runs(None)) == 6


def test_gradient_noise_full_batch_is_exact(digits, setup):
    net, theta0 = setup
    X, y = digits.X_train[:400], digits.y_train[:400]
    gn = gradient_noise(net, theta0, X, y, batch_sizes=(1, 8, 64, 400), n_batches=16)
    assert list(gn.batch_sizes) == [1, 8, 64, 400]
    assert gn.cos_mean[-1] == pytest.approx(1.0, abs=1e-6)   # B = n: g_B is g, summed in another order
    assert gn.variance[-1] <= 1e-10 * gn.full_norm**2
    assert gn.cos_mean[0] < gn.cos_mean[1] < gn.cos_mean[2] < gn.cos_mean[3]
    assert gn.variance[0] > gn.variance[1] > gn.variance[2] > gn.variance[3]
    # sampling without replacement: var_B ∝ (1/B − 1/n), within the noise of 16 batches
    ratio = gn.variance[1] / gn.variance[2]
    theory = (1 / 8 - 1 / 400) / (1 / 64 - 1 / 400)
    assert theory / 2 < ratio < theory * 2


def test_gradient_noise_rejects_big_batches(digits, setup):
    net, theta0 = setup
    with pytest.raises(ConfigError):
        gradient_noise(net, theta0, digits.X_train[:50], digits.y_train[:50], batch_sizes=(10, 51))


def test_files_written(comparison, digits, setup, tmp_path):
    net, theta0 = setup
    noise = {"θ₀": gradient_noise(net, theta0, digits.X_train, digits.y_train, (4, 64), n_batches=4)}
    files = write_comparison(comparison, tmp_path, noise)
    files += plots_compare.plot_comparison(comparison, tmp_path, noise, "test")
    names = {p.name for p in files}
    for stem in ("loss_vs_epochs", "loss_vs_samples", "loss_vs_seconds", "grad_norm_vs_steps",
                 "test_accuracy", "step_loss", "gradient_noise"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert {"summary.csv", "summary.json", "gradient_noise.json"} <= names
    assert all(p.stat().st_size > 200 for p in files)
    data = json.loads((tmp_path / "summary.json").read_text())
    assert [r["label"] for r in data["table"]] == ["GD", "SGD B=16", "momentum B=128"]
    assert data["budget"] == {"epochs": 2}
    header = (tmp_path / "summary.csv").read_text().splitlines()[0].split(",")
    assert {"label", "train_loss", "test_acc", "steps", "samples", "seconds", "stop_reason"} <= set(header)


def test_the_default_budget_gives_full_batch_gd_many_steps(digits, setup):
    from steepest.viz.compare import DEFAULT_EPOCHS, FEW_STEPS

    net, theta0 = setup
    comp = compare_optimizers(net, theta0, digits.X_train, digits.y_train, ("gd", "sgd:batch=128"), n_samples=200)
    gd, sgd = (r.summary for r in comp.runs)
    assert comp.budget == {"epochs": DEFAULT_EPOCHS} and gd["samples"] == sgd["samples"]   # equal compute
    assert gd["steps"] == DEFAULT_EPOCHS >= FEW_STEPS and len(comp.runs[0].history.steps["loss"]) == gd["steps"]
    assert sgd["steps"] == DEFAULT_EPOCHS * math.ceil(len(digits.y_train) / 128)


def test_legends_carry_lr_batch_and_momentum():
    assert RunSpec.parse("momentum:batch=128").legend == "momentum B=128 (lr 0.05, batch 128, μ 0.9)"
    assert RunSpec.parse("gd").legend == "GD (lr 0.5, batch full)"
    assert RunSpec.parse("adam:batch=32,lr=0.003").legend == "adam B=32 (lr 0.003, batch 32)"
    assert RunSpec.parse("sgd:batch=8,momentum=0.5").config()["momentum"] == 0.5


def test_tune_chooses_on_a_validation_split_and_never_the_test_set(digits, setup):
    from steepest.viz.compare import tune_lr

    net, theta0 = setup
    X, y = digits.X_train, digits.y_train
    spec = RunSpec.parse("gd:lr=0.01")           # far too small: the best of ×0.25…×4 is the largest
    t = tune_lr(net, theta0, X, y, spec, {"epochs": 5}, val_fraction=0.2, seed=0)
    assert t["grid"] == pytest.approx([0.0025, 0.005, 0.01, 0.02, 0.04])
    assert t["lr"] == t["grid"][int(np.argmin(t["val_loss"]))] == pytest.approx(0.04) and t["at_edge"]
    assert t["n_val"] == round(0.2 * len(y)) and np.all(np.diff(t["val_loss"]) < 0)
    # A test set with scrambled labels changes nothing that is chosen: it is only evaluated.
    runs = ("gd:lr=0.01", "sgd:batch=64,lr=0.05")
    kw = dict(epochs=2, n_samples=100, tune=True, val_fraction=0.2)
    a = compare_optimizers(net, theta0, X, y, runs, X_test=digits.X_test, y_test=digits.y_test, **kw)
    b = compare_optimizers(net, theta0, X, y, runs, X_test=digits.X_test, y_test=np.roll(digits.y_test, 1), **kw)
    assert [r.spec.lr for r in a.runs] == [r.spec.lr for r in b.runs]
    assert all(r.summary["tuned"]["lr"] == r.spec.lr and r.summary["lr"] == r.spec.lr for r in a.runs)
    assert a.runs[0].theta.tobytes() == b.runs[0].theta.tobytes()
    with pytest.raises(ConfigError, match="val_fraction"):
        tune_lr(net, theta0, X, y, spec, {"epochs": 1}, val_fraction=1.0)
