"""The compare, landscape, explain and report commands, end to end on the bundled digits."""

import importlib
import json

import numpy as np
import pytest

import steepest

COMMANDS = ("compare", "landscape", "explain", "report")


def run_command(argv, capsys):
    """Parse ``argv`` with a parser holding the four commands (as steepest.cli does) and run it."""
    from steepest.cli import Parser

    parser = Parser(prog="steepest")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"steepest.commands.{name}")
        module.add_parser(sub).set_defaults(_run=module.run)
    args = parser.parse_args(argv)
    code = args._run(args)
    return code, capsys.readouterr()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory like `steepest train` writes: model with its record, metrics.jsonl, config.toml."""
    from steepest.data import load_dataset
    from steepest.io import save_model

    ds = load_dataset("digits")
    d = tmp_path_factory.mktemp("run")
    net = steepest.MLP([64, 16, 10], activation="relu", input_scale=ds.input_scale)
    theta0 = net.init(3, scheme="he", bias="zero")
    res = steepest.train(net, theta0, ds.X_train, ds.y_train, optimizer="momentum", lr=0.05, batch_size=64,
                         epochs=3, evals={"test": (ds.X_test, ds.y_test)}, seed=3)
    save_model(d / "model.safetensors", net, res.theta, {
        "preprocessing": {"input_scale": ds.input_scale, "image_shape": [8, 8]},
        "dataset": {"name": "digits"}, "training": {"seed": 3, "init": "he", "bias": "zero", "lr": 0.05,
                                                    "optimizer": "momentum", "batch_size": 64, "epochs": 3},
        "metrics": {"stop_reason": res.stop_reason, "test_acc": res.history.epochs[-1]["test_acc"]}, "seed": 3})
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in res.history.epochs))
    (d / "config.toml").write_text('dataset = "digits"\nseed = 3\n')
    return d, theta0


def test_compare_command(tmp_path, capsys):
    out = tmp_path / "cmp"
    code, io = run_command(["compare", "--dataset", "digits", "--epochs", "1", "--hidden", "16", "--runs", "gd",
                            "sgd:batch=32", "--noise-batches", "4", "64", "--noise-draws", "4", "--json",
                            "--out", str(out)], capsys)
    assert code == 0
    result = json.loads(io.out)
    assert [r["label"] for r in result["table"]] == ["GD", "SGD B=32"]
    assert all(r["samples"] == 1437 for r in result["table"])
    for name in ("summary.csv", "summary.json", "gradient_noise.json", "loss_vs_samples.png", "gradient_noise.svg"):
        assert (out / name).stat().st_size > 0 and str(out / name) in result["files"]
    noise = json.loads((out / "gradient_noise.json").read_text())
    assert set(noise) == {"θ₀ (initial)", "θ after SGD B=32"}
    assert noise["θ₀ (initial)"]["batch_sizes"] == [4, 64, 1437]
    assert noise["θ₀ (initial)"]["cos_mean"][-1] == pytest.approx(1.0, abs=1e-6)


def test_compare_rejects_a_bad_run_before_loading_data(tmp_path, capsys):
    from steepest.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown optimizer"):
        run_command(["compare", "--dataset", "nowhere", "--runs", "sgdd", "--out", str(tmp_path)], capsys)


def test_landscape_command(run_dir, capsys):
    d, theta0 = run_dir
    code, io = run_command(["landscape", str(d), "--n-samples", "300", "--resolution", "5", "--steps", "6",
                            "--quiet"], capsys)
    assert code == 0
    out = d / "landscape"
    for stem in ("line_1d", "plane_contour", "plane_surface", "trajectories", "step_probe", "step_probe_init",
                 "double_well_momentum", "double_well_basins", "ravine_momentum"):
        assert (out / f"{stem}.png").stat().st_size > 1000 and (out / f"{stem}.svg").stat().st_size > 1000
    numbers = json.loads((out / "landscape.json").read_text())
    from steepest.io import load_model

    net, theta, _ = load_model(d / "model.safetensors")
    from steepest.data import load_dataset
    from steepest.viz.common import sample_rows

    ds = load_dataset("digits")
    Xs, ys, _ = sample_rows(ds.X_train, ds.y_train, 300, 0)
    line = numbers["line"]
    # θ₀ re-drawn from the recorded seed and init is the θ₀ the run started from
    assert line["train_loss"][line["alpha"].index(0.0)] == pytest.approx(net.loss(theta0, Xs, ys), rel=1e-6)
    assert line["train_loss"][line["alpha"].index(1.0)] == pytest.approx(net.loss(theta, Xs, ys), rel=1e-6)
    assert numbers["minima"]["GD"]["basin"] == "shallow"
    assert numbers["step_probe"]["verdict"].startswith("lr 0.05 ")
    assert numbers["step_probe"]["best_alpha"] is None or not numbers["step_probe"]["at_edge"]
    assert str(out / "landscape.json") in io.out


def test_explain_command(run_dir, capsys, tmp_path):
    d, _ = run_dir
    code, io = run_command(["explain", str(d / "model.safetensors"), "--batch", "64", "--lr", "0.001",
                            "--epochs-at", "1", "3", "--out", str(tmp_path / "ex"), "--json"], capsys)
    assert code == 0
    result = json.loads(io.out)
    assert result["measured_change"] == pytest.approx(result["predicted_change"], rel=0.05)
    for stem in ("input_gradient_maps", "gradient_histograms", "top_moves", "first_order", "first_layer_weights",
                 "layer_grad_norms", "input_gradient_maps_over_training"):
        assert (tmp_path / "ex" / f"{stem}.png").is_file()
    numbers = json.loads((tmp_path / "ex" / "explain.json").read_text())
    assert len(numbers["top"]) == 12 and numbers["rows"] == 64
    assert all(" → " in t["name"] or t["name"].startswith("bias of") for t in numbers["top"])
    assert numbers["over_training"]["labels"] == ["θ₀ (initial)", "after epoch 1", "after epoch 3", "trained θ"]
    # re-trained from θ₀ with the recorded recipe, epoch 3 is the model's θ: the same run, bit for bit
    assert numbers["over_training"]["retrained_matches_model"] is True
    code, io = run_command(["explain", str(d), "--index", "0", "--split", "test", "--init", "--out",
                            str(tmp_path / "one")], capsys)
    assert code == 0 and "initial θ₀ on row 0 of the test split" in io.out
    assert "dead units (first hidden layer, silent on the whole batch):" in io.out


def test_report_command(run_dir, capsys):
    d, _ = run_dir
    code, io = run_command(["report", str(d), "--json"], capsys)
    assert code == 0
    path = json.loads(io.out)["report"]
    page = (d / "report.html").read_text()
    assert path == str(d / "report.html")
    assert page.count("Stopped by max_epochs") == 1 and "Configuration" in page
    assert page.count("<img ") >= 2 and "https://" not in page
    assert np.all([s in page for s in ("Metrics per epoch", "Final metrics", "Loss landscape (landscape)",
                                       "Misclassified test images", "of 360 test images are misclassified")])


@pytest.mark.slow
def test_commands_on_mnist(real_data_dir, tmp_path, capsys):
    """compare, landscape, explain and report on real MNIST, with small budgets and samples."""
    from steepest.data import load_dataset
    from steepest.io import save_model

    ds = load_dataset("mnist", data_dir=real_data_dir, download=False)
    code, io = run_command(["compare", "--dataset", "mnist", "--data-dir", str(real_data_dir), "--no-download",
                            "--hidden", "32", "--samples", "4000", "--runs", "gd", "sgd:batch=64",
                            "--n-samples", "500", "--noise-draws", "4", "--json", "--out", str(tmp_path / "cmp")],
                           capsys)
    assert code == 0 and [r["steps"] for r in json.loads(io.out)["table"]] == [1, 63]
    d = tmp_path / "run"
    d.mkdir()
    net = steepest.MLP([784, 32, 10], input_scale=ds.input_scale)
    theta0 = net.init(0, scheme="he")
    res = steepest.train(net, theta0, ds.X_train[:5000], ds.y_train[:5000], lr=0.05, batch_size=64, epochs=1)
    save_model(d / "model.safetensors", net, res.theta, {
        "preprocessing": {"input_scale": ds.input_scale, "image_shape": [28, 28]}, "dataset": {"name": "mnist"},
        "training": {"seed": 0, "init": "he", "bias": "zero", "lr": 0.05}, "metrics": {"stop_reason": "max_epochs"}})
    data = ["--data-dir", str(real_data_dir), "--no-download", "--quiet"]
    assert run_command(["landscape", str(d), "--n-samples", "300", "--resolution", "5", "--steps", "5", *data],
                       capsys)[0] == 0
    assert run_command(["explain", str(d), "--batch", "32", *data], capsys)[0] == 0
    assert (d / "explain" / "input_gradient_maps.png").is_file()
    assert run_command(["report", str(d)], capsys)[0] == 0
    assert (d / "report.html").read_text().count("<img ") >= 10


def test_landscape_against_a_second_model(run_dir, tmp_path, capsys):
    """--against: the same sample and directions for both models, their ΔL printed and stored, the pictures drawn."""
    from steepest.data import load_dataset
    from steepest.io import load_model, save_model
    from steepest.viz import flatness as F
    from steepest.viz.common import sample_rows

    d, _ = run_dir
    ds = load_dataset("digits")
    net = steepest.MLP([64, 16, 10], activation="relu", input_scale=ds.input_scale, dropout=[0.2, 0.5], max_norm=3.0)
    res = steepest.train(net, net.init(3, scheme="he", bias="zero"), ds.X_train, ds.y_train, optimizer="momentum",
                         lr=0.05, batch_size=64, epochs=3, seed=3)
    other = tmp_path / "dropout"
    other.mkdir()
    save_model(other / "model.safetensors", net, res.theta, {
        "dataset": {"name": "digits"}, "training": {"seed": 3, "init": "he", "bias": "zero", "lr": 0.05}, "seed": 3})
    out = tmp_path / "both"
    code, io = run_command(["landscape", str(d), "--against", str(other), "--parts", "line", "plane", "flatness",
                            "--n-samples", "300", "--resolution", "5", "--directions", "3", "--json", "--out",
                            str(out)], capsys)
    assert code == 0
    result = json.loads(io.out)
    labels = list(result["flatness"])
    assert labels == [f"{d.name} (no dropout, no max-norm)", "dropout (dropout 0.2/0.5, max-norm 3)"]
    for stem in ("line_1d_both", "plane_contour_both", "flatness", "line_1d", "plane_contour"):
        assert (out / f"{stem}.png").stat().st_size > 1000
    assert "flatness ΔL(0.5)" in io.err and labels[1] in io.err
    numbers = json.loads((out / "landscape.json").read_text())
    Xs, ys, _ = sample_rows(ds.X_train, ds.y_train, 300, 0)
    for label, model in zip(labels, (d / "model.safetensors", other / "model.safetensors")):
        n, theta, _ = load_model(model)
        f = F.flatness(n, theta, Xs, ys, np.unique(np.append(F.RADII, 0.5)), 3, None, seed=0)
        got = numbers["flatness"]["models"][label]
        assert got["loss"] == pytest.approx(f.loss0, rel=1e-12)
        assert got["delta"] == pytest.approx(f.at(0.5)[0], rel=1e-12) == result["flatness"][label]["delta"]
        assert [row[0] for row in got["increase"]] == [0.0, 0.0, 0.0]  # r = 0 first: θ* itself, each direction
    a = [numbers["plane_both"][k]["a"] for k in labels]
    assert a[0] == a[1] and len(a[0]) == 5


def test_landscape_against_needs_a_part_that_draws_it(run_dir, tmp_path, capsys):
    from steepest.errors import ConfigError

    d, _ = run_dir
    with pytest.raises(ConfigError, match="--against draws a second model"):
        run_command(["landscape", str(d), "--against", str(d), "--parts", "probe", "--out", str(tmp_path)], capsys)
