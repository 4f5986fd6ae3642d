"""Maxout hidden layers (Goodfellow et al. 2013): the max of k linear pieces per unit, through every part that
builds, trains, saves, exports and explains a network."""

import json

import numpy as np
import pytest

from clirun import steepest
from steepest import MLP, train
from steepest.activations import maxout_backward, maxout_forward
from steepest.errors import ConfigError
from steepest.finite_diff import gradcheck
from steepest.io import load_model


def problem(seed, d=6, k=4, n=11):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, size=n)


def test_a_maxout_unit_is_the_largest_of_its_own_pieces():
    """Against a loop over units: unit j owns columns j·k … j·k + k − 1; ties go to the first piece, NaN wins."""
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(5, 12))
    out, win = np.empty((5, 4)), np.empty((5, 4), np.intp)
    maxout_forward(Z, 3, out, win)
    for i in range(5):
        for j in range(4):
            assert out[i, j] == max(Z[i, 3 * j:3 * j + 3])
            assert Z[i, 3 * j + win[i, j]] == out[i, j]
    Z = np.array([[2.0, 2.0, np.nan, 1.0]])
    maxout_forward(Z, 2, out[:1, :2], win[:1, :2])
    assert win[0, :2].tolist() == [0, 0] and out[0, 0] == 2.0 and np.isnan(out[0, 1])
    D = np.array([[5.0, -1.0]])
    assert maxout_backward(D, np.array([[1, 0]]), np.empty((1, 4))).tolist() == [[0.0, 5.0, -1.0, 0.0]]


def test_layout_widths_and_parameter_count():
    net = MLP([784, 240, 240, 10], activation="maxout", pieces=5)
    assert [(l.n_in, l.n_out, l.units, l.pieces) for l in net.layers] == \
        [(784, 1200, 240, 5), (240, 1200, 240, 5), (240, 10, 10, 1)]
    assert net.n_params == 784 * 1200 + 1200 + 240 * 1200 + 1200 + 240 * 10 + 10
    assert net.predict(net.init(0), np.zeros((3, 784))).shape == (3,)
    assert MLP(**net.config()).layers == net.layers and "pieces=5" in repr(net)
    assert MLP([4, 3, 2], activation="maxout").pieces == 2   # the default
    assert MLP([4, 3, 2]).pieces is None and "pieces" not in MLP([4, 3, 2]).config()


@pytest.mark.parametrize("pieces", [1, 65, 2.5, True, "3"])
def test_a_wrong_number_of_pieces_is_refused(pieces):
    with pytest.raises(ConfigError, match="pieces must be a whole number from 2 to 64"):
        MLP([4, 3, 2], activation="maxout", pieces=pieces)


def test_pieces_without_a_maxout_layer_is_refused():
    with pytest.raises(ConfigError, match="no hidden layer is maxout"):
        MLP([4, 3, 2], activation="relu", pieces=3)


@pytest.mark.parametrize("acts", ["maxout", ["maxout", "tanh"], ["relu", "maxout"]])
@pytest.mark.parametrize("pieces", [2, 5])
def test_backprop_through_maxout_matches_finite_differences(acts, pieces):
    for seed in range(3):
        net = MLP([6, 8, 5, 4], activation=acts, pieces=pieces, dtype="float64", l2=0.01)
        theta = net.init(seed, bias="random", scheme="glorot")
        X, y = problem(seed)
        result = gradcheck(net, theta, X, y)
        assert result.ok and result.overall < 1e-6, str(result)


def test_backprop_through_maxout_dropout_and_label_smoothing_matches_finite_differences():
    from steepest.regularise import Dropout

    net = MLP([6, 8, 5, 4], activation="maxout", pieces=3, dtype="float64", dropout=[0.2, 0.5, 0.5],
              label_smoothing=0.1)
    theta = net.init(1, bias="random")
    X, y = problem(1)
    masks = Dropout(net, 7).masks(0, len(y))
    assert any((m == 0).any() for m in masks if m is not None)
    result = gradcheck(net, theta, X, y, masks=masks)
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_compiled_kernels_agree_with_the_reference(dtype):
    pytest.importorskip("numba")
    from steepest.fused import resolve

    rng = np.random.default_rng(3)
    net = MLP([20, 16, 12, 5], activation=["maxout", "relu"], pieces=4, dtype=dtype, input_scale=1 / 255)
    theta = net.init(seed=3, bias="random")
    X, y = rng.integers(0, 256, (37, 20)).astype(np.uint8), rng.integers(0, 5, 37)
    l_ref, g_ref, c_ref = net.loss_grad_correct(theta, X, y)
    A_ref = net._buffers(37)["A"][1].copy()
    l, g, c = net.loss_grad_correct(theta, X, y, kernels=resolve("numba"))
    assert np.array_equal(net._buffers(37)["A"][1], A_ref)   # the same maxima, bit for bit
    tol = 2e-6 if dtype == "float32" else 1e-13              # bias sums in another order
    assert c == c_ref and abs(l - l_ref) <= tol * abs(l_ref)
    assert np.abs(g - g_ref).max() <= tol * np.abs(g_ref).max()


def test_training_follows_the_reference_and_max_norm_bounds_each_piece(digits):
    pytest.importorskip("numba")
    X, y = digits.X_train, digits.y_train
    net = MLP([64, 24, 16, 10], activation="maxout", pieces=3, dtype="float64", input_scale=1 / 16,
              dropout=[0.1, 0.3, 0.3], max_norm=1.5)
    theta = net.init(seed=0)
    runs = {k: train(net, theta, X, y, optimizer="momentum", lr=0.1, batch_size=64, epochs=3, kernels=k,
                     monitor=False, seed=5) for k in ("numpy", "numba")}
    a, b = runs["numpy"].theta, runs["numba"].theta
    assert np.abs(a - b).max() <= 1e-10 * np.abs(a).max() and not np.array_equal(a, theta)
    for layer in net.layers[:-1]:  # every piece's incoming weights, not each unit's k·n_in of them
        W = a[layer.w].reshape(layer.shape)
        norms = np.sqrt((W ** 2).sum(axis=0))
        assert norms.shape == (layer.units * 3,) and norms.max() <= 1.5 * (1 + 1e-12)
    assert runs["numpy"].history.epochs[-1]["train_acc"] > 0.5   # it learns (chance: 0.1)


def test_a_resumed_maxout_run_with_dropout_is_bit_identical(digits):
    X, y = digits.X_train, digits.y_train
    net = MLP([64, 32, 10], activation="maxout", pieces=4, input_scale=1 / 16, dropout=[0.2, 0.5])
    theta = net.init(seed=0)
    kw = dict(optimizer="momentum", lr=0.05, batch_size=100, seed=3)
    whole = train(net, theta, X, y, epochs=4, **kw)
    half = train(net, theta, X, y, epochs=2, **kw)
    rest = train(net, half.theta, X, y, epochs=4, state=half.state, **kw)
    assert np.array_equal(whole.theta, rest.theta)


def test_command_line_trains_saves_evaluates_and_exports_a_maxout_network(tmp_path, digits):
    """train → model file (pieces recorded) → evaluate's accuracy is the model's → ONNX gives its probabilities."""
    run = tmp_path / "run"
    r = steepest("train", "--dataset", "digits", "--hidden", "24", "--activation", "maxout", "--pieces", "3",
                 "--epochs", "8", "--lr", "0.1", "--max-norm", "2", "--out", run, "--quiet")
    assert r.returncode == 0, r.stderr
    net, theta, meta = load_model(run / "model.safetensors")
    assert net.pieces == 3 and net.layers[0].n_out == 72 and meta["architecture"]["pieces"] == 3
    acc = float((net.predict(theta, digits.X_test) == digits.y_test).mean())
    assert acc > 0.85
    r = steepest("evaluate", run / "model.safetensors", "--dataset", "digits", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["accuracy"] == pytest.approx(acc, abs=1e-12)
    ort = pytest.importorskip("onnxruntime")
    r = steepest("export", run / "model.safetensors", "-o", tmp_path / "m.onnx", "--json")
    assert r.returncode == 0, r.stderr
    assert "ReduceMax" in json.loads(r.stdout)["nodes"]
    onnx = pytest.importorskip("onnx")
    assert onnx.load(str(tmp_path / "m.onnx")).doc_string.startswith("steepest MLP 64-24-10 maxout (3 pieces); ")
    P = ort.InferenceSession(str(tmp_path / "m.onnx")).run(["probabilities"],
                                                           {"input": digits.X_test.astype(np.float32)})[0]
    assert np.abs(P - net.predict_proba(theta, digits.X_test)).max() < 1e-5
    r = steepest("explain", run, "--epochs-at", "1", "--units", "2", "--out", tmp_path / "explain", "--json")
    assert r.returncode == 0, r.stderr   # the maps over training drew 2 whole units: 6 panels a row
    assert (tmp_path / "explain" / "input_gradient_maps_over_training.png").is_file()


@pytest.mark.parametrize("args, said", [
    (["--pieces", "3"], "--pieces 3 is for maxout layers"),
    (["--activation", "maxout", "--pieces", "1"], "2 … 64"),
    (["--activation", "maxout", "--pieces", "65"], "2 … 64"),
    (["--activation", "maxout", "relu", "--hidden", "8", "--pieces", "2.5"], "whole number"),
])
def test_command_line_refuses_a_wrong_pieces_in_one_line(tmp_path, args, said):
    r = steepest("train", "--dataset", "digits", "--hidden", "8", "8", *args, "--epochs", "1",
                 "--out", tmp_path / "run")
    assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_gradcheck_command_checks_maxout():
    r = steepest("gradcheck", "--hidden", "12", "8", "--activation", "maxout", "--pieces", "3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] and out["pieces"] == 3 and out["overall"] < 1e-6
    r = steepest("gradcheck", "--pieces", "3")
    assert r.returncode == 2 and "add --activation maxout" in r.stderr


def test_explain_names_a_piece_of_a_maxout_unit():
    from steepest.viz.anatomy import describe, locate

    net = MLP([4, 3, 2, 5], activation="maxout", pieces=4)
    w = net.layers[0]
    # row 1 (input 1), column 7: unit 1, piece 3 of the first hidden layer
    assert describe(net, locate(net, w.w.start + 1 * w.n_out + 7)) == "input 1 → hidden unit 1 (layer 1), piece 3"
    assert describe(net, locate(net, w.b.start + 5)) == "bias of hidden unit 1 (layer 1), piece 1"
    out = net.layers[2]
    assert describe(net, locate(net, out.w.start + 1 * 5 + 4)) == "hidden unit 1 (layer 2) → class 4"


def test_the_lab_input_gradient_through_maxout_matches_finite_differences():
    from steepest.lab.probe import input_gradient

    net = MLP([6, 5, 4, 3], activation="maxout", pieces=3, dtype="float64")
    theta = net.init(2, bias="random")
    x = np.random.default_rng(0).normal(size=6)

    def loss(v):
        return -np.log(net.predict_proba(theta, v[None, :])[0, 2])

    num = np.array([(loss(x + h) - loss(x - h)) / 2e-6 for h in np.eye(6) * 1e-6])
    np.testing.assert_allclose(input_gradient(net, theta, x, 2), num, rtol=1e-6, atol=1e-9)


def test_the_estimator_takes_pieces_and_load_gives_them_back(digits, tmp_path):
    from steepest.sklearn import MLPClassifier, load

    est = MLPClassifier(hidden=(16,), activation="maxout", pieces=3, input_scale=1 / 16, epochs=3)
    est.fit(digits.X_train, digits.y_train)
    assert est.net_.pieces == 3 and est.coefs_[0].shape == (64, 48)
    est.save(tmp_path / "m.safetensors")
    back = load(tmp_path / "m.safetensors")
    assert back.get_params() == est.get_params()
    assert np.array_equal(back.predict(digits.X_test), est.predict(digits.X_test))
    with pytest.raises(ConfigError, match="pieces=3 is for maxout layers"):
        MLPClassifier(hidden=(16,), pieces=3, epochs=1).fit(digits.X_train, digits.y_train)


def test_the_lab_trains_a_maxout_network_and_draws_its_pictures():
    """The lab's menu offers maxout (from the registry): its run trains, and its pictures are computed."""
    import time

    from steepest.lab.engine import Engine, pictures

    e = Engine({"dataset": "digits", "hidden": [8], "activation": "maxout", "batch_size": 32, "lr": 0.1})
    try:
        assert e.net.pieces == 2 and e.net.layers[0].n_out == 16
        e.start()
        t = time.monotonic()
        while e.status()["step"] < 20:
            assert time.monotonic() - t < 30, "the lab did not train"
            time.sleep(0.02)
        snap = e.snapshot(0)
        pics, norms = pictures(e.net.astype("float64"), e.data, snap.theta.astype(np.float64))
        assert len(pics["anatomy"]["maps"]) == 16 and pics["anatomy"]["pieces"] == 2 and len(norms) == 2
        assert not np.array_equal(snap.theta, e.theta0)
    finally:
        e.quit()


def test_the_lab_counts_the_pieces_against_its_size_limit():
    from steepest.lab.config import MAX_PARAMS, check_size

    sizes = [784, 2048, 1024, 10]
    assert MLP(sizes).n_params <= MAX_PARAMS < MLP(sizes, activation="maxout").n_params
    check_size(sizes, "relu")
    with pytest.raises(ConfigError, match="7,421,962 parameters"):
        check_size(sizes, "maxout")


def test_a_huge_pieces_value_is_named_in_a_short_line():
    """A model file's architecture is the user's input: a 100,000-character pieces is not echoed whole."""
    with pytest.raises(ConfigError) as e:
        MLP([4, 3, 2], activation="maxout", pieces="x" * 100_000)
    assert len(str(e.value)) < 200 and "…" in str(e.value)


@pytest.mark.parametrize("args, said", [
    (["train", "--dataset", "digits", "--hidden", "--activation", "maxout", "--pieces", "3", "--epochs", "1"],
     "--hidden gives no hidden layer"),
    (["train", "--dataset", "digits", "--hidden", "8", "--pieces", "3", "--epochs", "1"], "--pieces off"),
    (["gradcheck", "--activation", "foo", "--hidden", "8", "--pieces", "3"], "unknown activation 'foo'"),
    (["gradcheck", "--activation", "maxout", "--hidden", "--pieces", "3"], "this network has no hidden layer"),
])
def test_pieces_that_cannot_apply_say_why(tmp_path, args, said):
    r = steepest(*args, *(["--out", tmp_path / "run"] if args[0] == "train" else []))
    assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_the_architecture_as_reports_print_it():
    """One description of sizes, activation and pieces for train, gradcheck and the report."""
    from steepest.commands._common import describe_net

    assert MLP([4, 3, 2], activation="maxout", pieces=2).architecture == "4-3-2 maxout (2 pieces)"
    assert MLP([4, 3, 3, 2], activation=["relu", "tanh"]).architecture == "4-3-3-2 relu,tanh"
    assert describe_net(MLP([4, 3, 2], activation="maxout", pieces=2)).startswith("4-3-2 maxout (2 pieces), 38 parameters")
