"""Dropout, max-norm, label smoothing, input standardisation and the named recipes."""

import json
import re

import numpy as np
import pytest

import steepest
from steepest.finite_diff import gradcheck
from steepest.losses import softmax, softmax_cross_entropy
from steepest.network import MLP, standardisation
from steepest.regularise import Dropout, max_norm

from clirun import steepest as cli


def _data(n=9, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, n)


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "leaky_relu"])
def test_backprop_through_a_fixed_dropout_mask(act):
    X, y = _data()
    net = MLP([5, 7, 6, 3], activation=act, dtype="float64", dropout=[0.2, 0.5, 0.4])
    theta = net.init(1, bias="random")  # random biases: no unit sits exactly on ReLU's kink
    masks = Dropout(net, seed=4).masks(3, len(y))
    assert all(m is not None for m in masks)
    r = gradcheck(net, theta, X, y, masks=masks)
    assert r.ok, str(r)
    # the masks matter: the masked gradient is not the plain one
    g_plain = net.loss_and_grad(theta, X, y)[1]
    g_mask = net.loss_grad_correct(theta, X, y, masks=masks)[1]
    assert np.abs(g_plain - g_mask).max() > 1e-3


def test_a_wrong_mask_in_backprop_is_caught():
    """The check can fail: a gradient computed with one mask and a loss with another disagree."""
    X, y = _data()
    net = MLP([5, 7, 3], activation="tanh", dtype="float64", dropout=[0.3, 0.5])
    theta = net.init(0, bias="random")
    m1, m2 = Dropout(net, 1).masks(0, len(y)), Dropout(net, 2).masks(0, len(y))
    g = net.loss_grad_correct(theta, X, y, masks=m1)[1]
    i, h = 3, 1e-6
    tp, tm = theta.copy(), theta.copy()
    tp[i] += h
    tm[i] -= h
    num = (net.loss_grad_correct(tp, X, y, masks=m2)[0] - net.loss_grad_correct(tm, X, y, masks=m2)[0]) / (2 * h)
    assert abs(num - g[i]) > 1e-4


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_label_smoothing_loss_and_gradient(eps):
    X, y = _data(k=4)
    net = MLP([5, 6, 4], activation="tanh", dtype="float64", label_smoothing=eps, l2=0.01)
    theta = net.init(2, bias="random")
    assert gradcheck(net, theta, X, y).ok
    Z = net.logits(theta, X)
    q = np.full(Z.shape, eps / 4)
    q[np.arange(len(y)), y] += 1 - eps
    want = float(np.mean(-(q * np.log(softmax(Z))).sum(axis=1)))
    loss, dZ = softmax_cross_entropy(Z.copy(), y, smoothing=eps)
    assert loss == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(dZ, (softmax(Z) - q) / len(y), atol=1e-15)


def test_label_smoothing_zero_is_the_plain_loss_bit_for_bit():
    Z = np.random.default_rng(0).normal(size=(16, 10)).astype(np.float32)
    y = np.arange(16) % 10
    a, ga = softmax_cross_entropy(Z.copy(), y)
    b, gb = softmax_cross_entropy(Z.copy(), y, smoothing=0.0)
    assert a == b and ga.tobytes() == gb.tobytes()


def test_cli_gradcheck_with_dropout_and_smoothing():
    r = cli("gradcheck", "--hidden", "12", "8", "--activation", "relu", "--dropout", "0.2", "0.5", "0.5",
            "--label-smoothing", "0.1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"]


# ---------------------------------------------------------------- dropout masks

def test_masks_are_keyed_by_seed_and_step_and_inverted():
    net = MLP([50, 40, 3], dropout=[0.2, 0.5])
    d = Dropout(net, seed=7)
    a, b = d.masks(11, 400), d.masks(11, 400)
    assert all(x.tobytes() == z.tobytes() for x, z in zip(a, b))
    assert a[1].tobytes() != d.masks(12, 400)[1].tobytes()
    assert a[1].tobytes() != Dropout(net, seed=8).masks(11, 400)[1].tobytes()
    for m, p in zip(a, (0.2, 0.5)):
        assert set(np.unique(m)) <= {0.0, np.float32(1 / (1 - p))}
        assert abs((m == 0).mean() - p) < 0.02
        assert abs(m.mean() - 1) < 0.03       # E[M] = 1: nothing to rescale at evaluation


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("offset, n", [(0, 7), (3, 4), (4, 3), (1, 6), (7, 0)])
def test_a_share_of_a_steps_masks_is_that_share_of_the_whole_steps(kernels, offset, n):
    """Under MPI a process holds rows offset … offset + n of a step of 7 rows: its masks are those rows of
    the masks one process draws (odd widths and offsets: the generator skips half a 64-bit output)."""
    from steepest.fused import resolve

    if kernels == "numba":
        pytest.importorskip("numba")
    net = MLP([5, 3, 3], dropout=[0.2, 0.5])  # widths 5 and 3: odd
    whole = [m.copy() for m in Dropout(net, 9, kernels=resolve(kernels)).masks(4, 7)]
    share = Dropout(net, 9, kernels=resolve(kernels)).masks(4, n, offset, 7)
    assert all(np.array_equal(w[offset:offset + n], s) for w, s in zip(whole, share))
    with pytest.raises(ValueError, match="not within a step of 7 rows"):
        Dropout(net, 9).masks(4, 3, 5, 7)


def test_dropout_has_no_effect_at_evaluation():
    X, y = _data(n=50)
    plain, dropped = MLP([5, 8, 3]), MLP([5, 8, 3], dropout=[0.2, 0.5])
    theta = plain.init(0)
    assert plain.logits(theta, X).tobytes() == dropped.logits(theta, X).tobytes()
    assert steepest.evaluate(plain, theta, X, y) == steepest.evaluate(dropped, theta, X, y)


def test_dropout_changes_training_and_resumes_bit_for_bit():
    X, y = _data(n=300, d=10, k=4, seed=3)
    net = MLP([10, 32, 16, 4], dropout=[0.2, 0.5, 0.5], max_norm=1.5)
    theta = net.init(0)
    kw = dict(optimizer="momentum", lr=0.1, batch_size=32, epochs=3, seed=5)
    whole = steepest.train(net, theta, X, y, **kw)
    part = steepest.train(net, theta, X, y, max_steps=13, **kw)       # stops mid-epoch
    assert part.state.step == 13
    rest = steepest.train(net, theta, X, y, state=part.state, **kw)
    assert rest.theta.tobytes() == whole.theta.tobytes()
    plain = steepest.train(MLP([10, 32, 16, 4]), theta, X, y, **kw)
    assert plain.theta.tobytes() != whole.theta.tobytes()


def test_full_batch_with_dropout_does_not_reuse_the_unmasked_gradient():
    X, y = _data(n=60, d=6, k=3)
    net = MLP([6, 16, 3], dropout=[0.0, 0.5], dtype="float64")
    theta = net.init(0)
    r = steepest.train(net, theta, X, y, optimizer="gd", lr=0.5, batch_size="full", epochs=3, eval_every=1,
                       kernels="numpy")  # the reference, replayed by hand below
    # replay by hand: θ ← θ − η ∇L(θ; M_t) with the masks of step t
    t, d = theta.copy(), Dropout(net, 0)
    for step in range(3):
        t -= 0.5 * net.loss_grad_correct(t, X, y, masks=d.masks(step, len(y)))[1]
    np.testing.assert_array_equal(r.theta, t)


# ---------------------------------------------------------------- max-norm

def test_max_norm_projects_hidden_units_only():
    net = MLP([6, 5, 4, 3])
    theta = net.init(0) * 10
    before = theta.copy()
    max_norm(net, 1.0)(theta)
    for layer in net.layers[:-1]:
        W, W0 = theta[layer.w].reshape(layer.shape), before[layer.w].reshape(layer.shape)
        n0 = np.linalg.norm(W0, axis=0)
        np.testing.assert_allclose(np.linalg.norm(W, axis=0), np.minimum(n0, 1.0), rtol=1e-5)
        np.testing.assert_allclose(W / np.linalg.norm(W, axis=0), W0 / n0, rtol=1e-5)  # directions kept
    out = net.layers[-1]
    assert theta[out.span].tobytes() == before[out.span].tobytes()
    assert all(theta[l.b].tobytes() == before[l.b].tobytes() for l in net.layers)


def test_training_with_max_norm_keeps_every_norm_bounded():
    X, y = _data(n=200, d=8, k=3, seed=1)
    net = MLP([8, 20, 3], max_norm=0.5)
    r = steepest.train(net, net.init(0), X, y, optimizer="sgd", lr=1.0, batch_size=20, epochs=3)
    W = r.theta[net.layers[0].w].reshape(net.layers[0].shape)
    assert np.linalg.norm(W, axis=0).max() <= 0.5 * (1 + 1e-5)
    free = steepest.train(MLP([8, 20, 3]), net.init(0), X, y, optimizer="sgd", lr=1.0, batch_size=20, epochs=3)
    assert np.linalg.norm(free.theta[net.layers[0].w].reshape(8, 20), axis=0).max() > 0.5


def test_bad_regularisation_settings_are_config_errors():
    from steepest.errors import ConfigError

    for kw in ({"dropout": [0.5]}, {"dropout": [0.2, 1.0]}, {"max_norm": 0}, {"label_smoothing": 1.0}):
        with pytest.raises(ConfigError):
            MLP([4, 5, 3], **kw)
    r = cli("train", "--dataset", "digits", "--hidden", "8", "--dropout", "0.2", "--epochs", "1")
    assert r.returncode == 2 and "--dropout lists 1 rates" in r.stderr


# ---------------------------------------------------------------- standardisation

def test_standardisation_statistics_and_forward():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(500, 6)).astype(np.uint8)
    X[:, 0] = 0  # constant feature: floored σ, not a division by zero
    mean, std = standardisation(X, 1 / 255)
    x = X / 255
    np.testing.assert_allclose(mean, x.mean(axis=0))
    np.testing.assert_allclose(std[1:], x.std(axis=0)[1:])
    assert std[0] == pytest.approx(x.std(axis=0).mean() / 10)
    a = MLP([6, 4, 3], input_scale=1 / 255, input_mean=mean, input_std=std, dtype="float64")
    b = MLP([6, 4, 3], dtype="float64")
    theta = a.init(0)
    np.testing.assert_allclose(a.logits(theta, X), b.logits(theta, (x - mean) / std), atol=1e-12)


def test_standardisation_is_stored_in_the_model_and_applied_by_evaluate(tmp_path):
    from steepest.io import load_model

    out = tmp_path / "run"
    r = cli("train", "--dataset", "digits", "--hidden", "16", "--standardize", "--val-split", "0.2",
            "--epochs", "2", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    net, theta, _ = load_model(out / "model.safetensors")
    assert net.input_mean is not None and net.input_std is not None
    from steepest.data import load_digits

    ds = load_digits()
    perm = np.random.default_rng([0, 1]).permutation(len(ds.y_train))  # the split of --seed 0
    train_rows = np.sort(perm[round(len(ds.y_train) * 0.2):])
    mean, std = standardisation(ds.X_train[train_rows], ds.input_scale)
    np.testing.assert_allclose(net.input_mean, mean)   # the training split's statistics, not all data
    np.testing.assert_allclose(net.input_std, std)
    ev = cli("evaluate", out / "model.safetensors", "--dataset", "digits", "--json")
    assert ev.returncode == 0, ev.stderr
    m = steepest.evaluate(net, theta, ds.X_test, ds.y_test)
    assert json.loads(ev.stdout)["accuracy"] == pytest.approx(m.accuracy)
    raw = MLP(**{k: v for k, v in net.config().items() if k not in ("input_mean", "input_std")})
    assert steepest.evaluate(raw, theta, ds.X_test, ds.y_test).accuracy != m.accuracy


# ---------------------------------------------------------------- recipes

def test_recipes_list_and_resolve():
    from steepest import recipes
    from steepest.commands._trainconfig import check, convert, BY_NAME, OPTIONS, read_recipe

    names = recipes.names()
    assert {"mnist-record", "mnist-dropout", "fashion-record"} <= set(names)
    for name in names:
        cfg = {o.name: o.default for o in OPTIONS}
        cfg.update({k: convert(BY_NAME[k], v) for k, v in read_recipe(name).items()})
        check(cfg)
        chosen = recipes.load(name)["recipe"].get("chosen_with", {})  # chosen on one, then trained on all
        assert cfg["val_split"] or chosen.get("val_split"), f"{name} must choose on a validation split, never on test"
        assert not (cfg["val_split"] and chosen.get("val_split")), f"{name}: which split did its final model keep?"
    r = cli("recipes", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)["recipes"]}
    assert set(rows) == set(names)
    for name, row in rows.items():  # the verdict a script reads agrees with the shipped measurement
        m = recipes.measured().get(name)
        assert row["measured_current"] == (bool(m) and m["options"] == recipes.fingerprint(name))
        assert row["meets_target"] == (row["measured_current"] and m["mean"] >= row["target"])
    bad = cli("train", "--recipe", "no-such-recipe")
    assert bad.returncode == 2 and "steepest recipes" in bad.stderr
    bad = cli("recipes", "--show", " mnist-record")  # the flag the user typed, the name as typed
    assert bad.returncode == 2 and "--show ' mnist-record': no such recipe" in bad.stderr


def test_a_recipe_says_how_it_was_chosen():
    """A recipe whose final model trains on all the training data names the validation run that chose it
    (chosen_with): `steepest recipes` says so, `--show` keeps it as a comment above options a --config file
    takes, and a chosen_with without a split or with an option train does not have is a broken recipe."""
    import tomllib

    from steepest.commands._trainconfig import as_pairs, check_chosen_with
    from steepest.errors import ConfigError

    r = cli("recipes")
    assert r.returncode == 0 and "chosen on the validation split with val_split = 0.1, epochs = 300" in r.stdout
    show = cli("recipes", "--show", "mnist-dropout")
    assert show.returncode == 0 and show.stdout.startswith("# chosen on the validation split with val_split = 0.1")
    assert "val_split" not in tomllib.loads(show.stdout) and tomllib.loads(show.stdout)["epochs"] == 270
    rows = {row["name"]: row for row in json.loads(cli("recipes", "--json").stdout)["recipes"]}
    assert rows["mnist-dropout"]["chosen_with"] == {"val_split": 0.1, "epochs": 300}
    assert rows["mnist-record"]["chosen_with"] == {}  # it keeps its split
    final = {"dataset": "mnist", "hidden": [8], "epochs": 9}
    for options, given, said in (
            (final, None, "holds out no validation split and has no chosen_with"),
            (final, [0.1], "must be a table of options, got \\[0.1\\]"),
            (final, {"epochs": 3}, "must hold the validation split"),
            (final, {"val_split": "off"}, "must hold the validation split"),  # off: no split at all
            (final | {"val_split": 0.2}, {"val_split": 0.1}, "and \\[options\\] none"),
            (final, {"val_split": 0.1, "bogus": 1}, "'bogus', not an option"),
            (final, {"val_split": 1.5}, "chosen_with: --val-split must be a fraction"),
            (final, {"val_split": 0.1, "dropout": [0.2, 0.5, 0.5]}, "--dropout lists 3 rates"),  # with [options]
            (final | {"val_split": "off"}, None, "holds out no validation split"),  # off: none held out
            (final | {"lr": "fast"}, {"val_split": 0.1}, "^recipe x: --lr must be"),  # [options]' own error
            (final, {"x" * 5000: 1, "val_split": 0.1}, "'xxxxxxxx.{0,40}, not an option")):
        with pytest.raises(ConfigError, match="recipe x") as e:
            check_chosen_with("x", options, given)
        assert re.search(said, str(e.value)), str(e.value)
    assert check_chosen_with("x", final, {"val_split": "0.1", "epochs": 300}) == {"val_split": 0.1, "epochs": 300}
    assert check_chosen_with("x", final | {"val_split": "off"}, {"val-split": 0.1}) == {"val_split": 0.1}
    with pytest.raises(ConfigError) as e:
        check_chosen_with("x", final, {"x" * 5000: 1})
    assert len(str(e.value)) < 200
    assert as_pairs({"activation": ["relu", "maxout"], "val_split": None}) == 'activation = ["relu", "maxout"], val_split = off'
    shown = json.loads(cli("recipes", "--show", "mnist-dropout", "--json").stdout)
    assert shown["recipe"]["chosen_with"] == {"val_split": 0.1, "epochs": 300} and shown["options"]["epochs"] == 270
    assert check_chosen_with("x", final | {"val_split": 0.1}, None) == {}


def test_a_recipe_option_can_be_turned_off_or_left_out(tmp_path):
    """Every recipe option can be overridden: `off` unsets one, --no-standardize turns the flag off, and a
    recipe's warm-up or momentum that the chosen schedule or optimizer does not use is left out with a
    note — while the same option typed by the user with that schedule or optimizer is still refused."""
    import tomllib

    small = ["--dataset", "digits", "--hidden", "8", "8", "--epochs", "1", "--quiet"]
    r = cli("train", "--recipe", "mnist-dropout", "--schedule", "onecycle", "--optimizer", "adam", *small,
            "--out", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    assert "recipe's --gamma 0.999996 is left out: --schedule onecycle" in r.stdout + r.stderr
    assert "recipe's --momentum 0.5 is left out: --optimizer adam" in r.stdout + r.stderr
    cfg = tomllib.loads((tmp_path / "a" / "config.toml").read_text())
    assert cfg["schedule"] == "onecycle" and "gamma" not in cfg and "momentum" not in cfg
    r = cli("train", "--recipe", "mnist-dropout", "--activation", "relu", *small, "--out", str(tmp_path / "relu"))
    assert r.returncode == 0 and "recipe's --pieces 5 is left out: --activation relu" in r.stdout + r.stderr, r.stderr
    assert "pieces" not in tomllib.loads((tmp_path / "relu" / "config.toml").read_text())
    two = cli("train", "--recipe", "mnist-dropout", *small[:2], "--hidden", "8", *small[5:], "--out", str(tmp_path / "c"))
    assert two.returncode == 2 and "the recipe's --dropout lists 3 rates" in two.stderr, two.stderr  # not typed
    typed = cli("train", "--recipe", "mnist-dropout", "--schedule", "onecycle", "--warmup-steps", "2%", *small,
                "--out", str(tmp_path / "b"))
    assert typed.returncode == 2 and "--warmup-steps does not apply to --schedule onecycle" in typed.stderr
    assert not (tmp_path / "b").exists()
    from steepest.io.models import load_model

    r = cli("train", "--recipe", "fashion-record", "--max-norm", "off", "--label-smoothing", "off", "--dropout",
            "off", "--no-standardize", *small, "--out", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    cfg = tomllib.loads((tmp_path / "c" / "config.toml").read_text())
    assert not {"max_norm", "label_smoothing", "dropout"} & set(cfg) and cfg["standardize"] is False
    assert cfg["val_split"] == 0.1  # what was not turned off stays the recipe's
    net, _, _ = load_model(tmp_path / "c" / "model.safetensors")
    assert net.max_norm is None and net.input_mean is None and net.dropout is None and not net.label_smoothing
    assert cli("train", "--recipe", "fashion-record", *small, "--out", str(tmp_path / "d")).returncode == 0
    on, _, _ = load_model(tmp_path / "d" / "model.safetensors")  # the recipe as shipped sets each of them
    assert on.max_norm and on.input_mean is not None and on.dropout and on.label_smoothing
    (tmp_path / "off.toml").write_text('max_norm = "off"\n')  # off in a --config file too
    r = cli("train", "--recipe", "mnist-record", "--config", str(tmp_path / "off.toml"), *small,
            "--out", str(tmp_path / "e"))
    assert r.returncode == 0 and "max_norm" not in tomllib.loads((tmp_path / "e" / "config.toml").read_text())
    r = cli("train", "--dataset", "digits", "--hidden", "8", "--time-budget", "off", "--quiet", "--json",
            "--out", str(tmp_path / "f"))  # an option turned off does not count as a bound on the run
    assert r.returncode == 0 and json.loads(r.stdout.splitlines()[-1])["epochs"] == 5
    missing = cli("train", "--dataset", "digits", "--schedule", "warmup", "--epochs", "1")
    assert missing.returncode == 2 and "--schedule warmup needs --warmup-steps" in missing.stderr


def _subset(real, name, tmp_path, n_train=1200, n_test=300):
    from steepest.data.idx import read_idx, write_idx

    src, dst = real / name, tmp_path / name
    if not src.is_dir():
        pytest.skip(f"{name} not in STEEPEST_DATA")
    dst.mkdir(parents=True)
    for stem, n in (("train-images-idx3-ubyte", n_train), ("train-labels-idx1-ubyte", n_train),
                    ("t10k-images-idx3-ubyte", n_test), ("t10k-labels-idx1-ubyte", n_test)):
        write_idx(dst / (stem + ".gz"), read_idx(src / (stem + ".gz"))[:n], gzip=True)
    return tmp_path


@pytest.mark.parametrize("name, epochs", [("mnist-record", 1), ("mnist-dropout", 20), ("fashion-record", 1)])
def test_recipe_smoke_run_on_a_subset(name, epochs, real_data_dir, tmp_path):
    """Each recipe, shortened, on 1,080 training images: 9 steps of mnist-record or fashion-record already give
    three times chance (10%); mnist-dropout starts from N(0, 0.01²) weights and momentum 0.5, a plateau of
    about a hundred steps (on all of MNIST its first epoch is 540 steps), so it gets 20 epochs (220 steps)."""
    from steepest import recipes

    dataset = recipes.load(name)["options"]["dataset"]
    data = _subset(real_data_dir, dataset, tmp_path)
    r = cli("train", "--recipe", name, "--epochs", epochs, "--data-dir", data, "--no-download",
            "--out", tmp_path / "run", "--json", env={"STEEPEST_DATA": None})
    assert r.returncode == 0, r.stderr
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    end = lines[-1]
    assert end["test_acc"] > 0.3, end
    held_out = "val_split" in recipes.load(name)["options"]  # mnist-dropout: its final model trains on all of it
    rows = [row for row in lines if "val_acc" in row]
    assert rows and all((row["val_acc"] is not None) == held_out for row in rows)


def test_compare_races_with_and_without_dropout():
    from steepest.viz.compare import RunSpec, compare_optimizers

    spec = RunSpec.parse("momentum:batch=16,dropout=0.2/0.5,max_norm=2")
    assert spec.dropout == (0.2, 0.5) and spec.max_norm == 2.0 and spec.label == "momentum B=16 dropout max-norm 2"
    X, y = _data(n=120, d=6, k=3, seed=2)
    net = MLP([6, 12, 3])
    comp = compare_optimizers(net, net.init(0), X, y, ["momentum:batch=16", spec], epochs=2, n_samples=None)
    a, b = comp.runs
    assert a.theta.tobytes() != b.theta.tobytes()
    assert b.summary["dropout"] == [0.2, 0.5]
    assert np.linalg.norm(b.theta[net.layers[0].w].reshape(6, 12), axis=0).max() <= 2 * (1 + 1e-5)


# ---------------------------------------------------------------- step counts as a share of the run

def test_share_of_the_run_converts_and_refuses():
    from steepest.commands._trainconfig import BY_NAME, ConfigError, convert

    assert convert(BY_NAME["warmup_steps"], "1%") == "1%" and convert(BY_NAME["warmup_steps"], " 2.5 %") == "2.5%"
    assert convert(BY_NAME["eval_every"], "100%") == "100%" and convert(BY_NAME["eval_every"], 7) == 7
    with pytest.raises(ConfigError, match='share of the run written "5%"'):  # TOML eval_every = 0.05
        convert(BY_NAME["eval_every"], 0.05)
    for name, bad in (("warmup_steps", "0%"), ("warmup_steps", "100%"), ("warmup_steps", "-1%"),
                      ("warmup_steps", "x%"), ("eval_every", "0%"), ("eval_every", "101%"), ("eval_every", "nan%")):
        with pytest.raises(ConfigError, match=BY_NAME[name].flag):
            convert(BY_NAME[name], bad)


def test_share_of_the_run_is_the_same_schedule_as_its_steps():
    from steepest.commands._trainconfig import BY_NAME, OPTIONS, ConfigError, convert, make_schedule, steps

    cfg = {o.name: o.default for o in OPTIONS} | {"schedule": "cosine", "lr": 0.1, "epochs": 200}
    spe = 422
    shared = make_schedule(cfg | {"warmup_steps": convert(BY_NAME["warmup_steps"], "1%")}, spe)
    counted = make_schedule(cfg | {"warmup_steps": 844}, spe)
    assert [shared(t) for t in range(0, 84400, 211)] == [counted(t) for t in range(0, 84400, 211)]
    assert steps(cfg | {"eval_every": "5%"}, "eval_every", spe) == 4220
    assert steps(cfg | {"epochs": 1, "eval_every": "5%"}, "eval_every", 9) == 1  # never 0 steps
    assert steps(cfg | {"epochs": 1, "warmup_steps": "1%"}, "warmup_steps", 9) == 0      # a shortened recipe
    with pytest.raises(ConfigError, match=r"--warmup-steps 97.5% of a 20-step run rounds to 20 steps, the whole"):
        steps(cfg | {"epochs": 1, "warmup_steps": "97.5%"}, "warmup_steps", 20)  # named as typed, for both
    from steepest.sklearn import MLPClassifier

    with pytest.raises(ConfigError, match=r"warmup_steps 97.5% of a 2-step run rounds to 2 steps, the whole"):
        MLPClassifier(schedule="cosine", warmup_steps="97.5%", epochs=1, batch_size=2).fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(ConfigError, match=r"warmup_steps must be .* a share of the run below 100%"):  # as the CLI
        MLPClassifier(schedule="cosine", warmup_steps="100%", epochs=1, batch_size=2).fit(np.eye(4), [0, 1, 0, 1])


def test_share_of_the_run_on_the_command_line(tmp_path):
    """--warmup-steps 10% and --eval-every 25% of 4 epochs × 23 steps (1,437 digits, batch 64) train the same
    θ as --warmup-steps 9 --eval-every 23 and evaluate four times; a share of a run whose length is not
    known (--time-budget alone) is refused in one line, before the run directory is made."""
    from safetensors.numpy import load_file

    base = ["train", "--dataset", "digits", "--hidden", "16", "--epochs", "4", "--batch-size", "64",
            "--schedule", "cosine", "--threads", "1", "--quiet"]
    for tag, extra in (("share", ["--warmup-steps", "10%", "--eval-every", "25%"]),
                       ("steps", ["--warmup-steps", "9", "--eval-every", "23"])):
        r = cli(*base, *extra, "--out", tmp_path / tag)
        assert r.returncode == 0, r.stderr
        assert len((tmp_path / tag / "metrics.jsonl").read_text().splitlines()) == 4
    theta = [load_file(tmp_path / tag / "model.safetensors")["theta"] for tag in ("share", "steps")]
    assert theta[0].tobytes() == theta[1].tobytes()
    assert 'warmup_steps = "10%"' in (tmp_path / "share" / "config.toml").read_text()  # a resume resolves it again
    bad = cli("train", "--dataset", "digits", "--time-budget", "1", "--eval-every", "5%", "--out", tmp_path / "bad")
    assert bad.returncode == 2 and "--eval-every 5% is a share of the run's steps" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) <= 3 and not (tmp_path / "bad").exists()


def test_shipped_measurements_are_of_the_shipped_recipes():
    """measured.toml records which version of each recipe it measured; a recipe changed since shows no
    result until benchmarks/accuracy.py measures it again."""
    from steepest import recipes
    from steepest.commands.recipes import _result

    measured = recipes.measured()
    for name in recipes.names():
        row = {"target": recipes.load(name)["recipe"]["target"], "fingerprint": recipes.fingerprint(name)}
        assert measured[name]["options"] == row["fingerprint"], f"{name} changed since it was measured"
        assert "test accuracy over" in _result(measured[name], row)
        assert "not measured yet with these options" in _result(measured[name], row | {"fingerprint": "0" * 16})
