"""steepest.viz.anatomy: the gradient broken down, and the first-order prediction of one step."""

import numpy as np
import pytest

import steepest
from steepest.errors import ConfigError
from steepest.viz import plots_anatomy
from steepest.viz.anatomy import first_order_sweep, gradient_anatomy, locate


@pytest.fixture(scope="module")
def model(digits):
    net = steepest.MLP([64, 24, 12, 10], activation="tanh", input_scale=digits.input_scale)
    theta0 = net.init(seed=0)
    res = steepest.train(net, theta0, digits.X_train, digits.y_train, optimizer="momentum", lr=0.05,
                         batch_size=64, epochs=4)
    return net, theta0, res


@pytest.mark.parametrize("which", ["init", "trained"])
def test_first_order_prediction_for_a_tiny_step(model, digits, which):
    net, theta0, res = model
    theta = theta0 if which == "init" else res.theta
    an = gradient_anatomy(net, theta, digits.X_train[:200], digits.y_train[:200], lr=1e-3)
    assert an.predicted_change == pytest.approx(-1e-3 * float(an.grad @ an.grad))
    assert an.measured_change < 0
    assert an.relative_error < 0.03
    assert an.measured_change == pytest.approx(an.predicted_change, rel=0.03)


def test_first_order_fails_for_a_big_step(model, digits):
    net, _, res = model
    sw = first_order_sweep(net, res.theta, digits.X_train[:200], digits.y_train[:200], lrs=[1e-4, 1e-3, 100.0])
    np.testing.assert_allclose(sw["predicted"][1] / sw["predicted"][0], 10.0)  # linear in η
    assert sw["measured"][0] == pytest.approx(sw["predicted"][0], rel=0.01)
    assert sw["measured"][2] > sw["predicted"][2]   # overshoot: far less gain than predicted (or a loss)


def test_gradient_matches_backprop_and_layers(model, digits):
    net, _, res = model
    X, y = digits.X_train[:64], digits.y_train[:64]
    an = gradient_anatomy(net, res.theta, X, y, lr=0.1, k=7)
    _, g32 = net.loss_and_grad(res.theta, X, y)
    np.testing.assert_allclose(an.grad, g32, rtol=1e-3, atol=1e-6)
    assert an.grad.dtype == np.float64
    assert an.weight_grad(0).shape == (64, 24) and an.bias_grad(2).shape == (10,)
    np.testing.assert_array_equal(an.weight_grad(1), an.grad[net.layers[1].w].reshape(24, 12))
    np.testing.assert_allclose(np.sum(an.layer_norms**2), an.grad @ an.grad)
    assert an.n_rows == 64 and an.summary()["top"] == an.top


def test_top_moves(model, digits):
    net, _, res = model
    an = gradient_anatomy(net, res.theta, digits.X_train[:64], digits.y_train[:64], lr=0.2, k=10)
    mags = [abs(t["grad"]) for t in an.top]
    assert len(an.top) == 10 and mags == sorted(mags, reverse=True)
    assert mags[0] == pytest.approx(np.abs(an.grad).max())
    params = net.unpack(res.theta)
    names = net.layer_names()
    for t in an.top:
        assert t["step"] == pytest.approx(-0.2 * t["grad"])
        W, b = params[names.index(t["layer"])]
        value = W[t["row"], t["col"]] if t["kind"] == "W" else b[t["row"]]
        assert value == t["theta"] == res.theta[t["index"]]
        assert an.grad[t["index"]] == t["grad"]


def test_locate():
    net = steepest.MLP([3, 2, 2])
    assert locate(net, 0) == {"layer": "layer1", "kind": "W", "row": 0, "col": 0}
    assert locate(net, 5) == {"layer": "layer1", "kind": "W", "row": 2, "col": 1}
    assert locate(net, 6) == {"layer": "layer1", "kind": "b", "row": 0, "col": None}
    assert locate(net, 13) == {"layer": "layer2", "kind": "b", "row": 1, "col": None}
    with pytest.raises(ConfigError):
        locate(net, 14)
    with pytest.raises(ConfigError):
        gradient_anatomy(net, net.init(), np.ones((1, 3)), np.array([0]), lr=0.0)


def test_anatomy_plots(model, digits, tmp_path):
    net, _, res = model
    an = gradient_anatomy(net, res.theta, digits.X_train[:32], digits.y_train[:32], lr=0.1)
    files = (plots_anatomy.plot_input_maps(an, digits.image_shape, tmp_path)
             + plots_anatomy.plot_first_layer_weights(net, res.theta, digits.image_shape, tmp_path)
             + plots_anatomy.plot_grad_histograms(an, tmp_path) + plots_anatomy.plot_top_moves(an, tmp_path)
             + plots_anatomy.plot_first_order(first_order_sweep(net, res.theta, digits.X_train[:32],
                                                                digits.y_train[:32], lrs=[1e-3, 1e-1, 10]),
                                              tmp_path, 0.1)
             + plots_anatomy.plot_layer_grad_norms(res.history.epochs, net.layer_names(), tmp_path))
    names = {p.name for p in files}
    for stem in ("input_gradient_maps", "first_layer_weights", "gradient_histograms", "top_moves",
                 "first_order", "layer_grad_norms"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert all(p.stat().st_size > 1000 for p in files)
    # non-image inputs fall back to a strip per unit; no recorded layer norms, no plot
    assert plots_anatomy.plot_input_maps(an, None, tmp_path / "strip", n_units=4)
    assert plots_anatomy.plot_layer_grad_norms([{"epoch": 1, "layer_grad_norms": None}], ["a"], tmp_path) == []


def test_weights_are_named_in_words():
    from steepest.viz.anatomy import describe

    one = steepest.MLP([64, 40, 10])
    assert describe(one, locate(one, one.layers[1].w.start + 34 * 10 + 2), (8, 8)) == "hidden unit 34 → class 2"
    assert describe(one, locate(one, 13 * 40 + 3), (8, 8)) == "pixel (1, 5) → hidden unit 3"
    assert describe(one, locate(one, 13 * 40 + 3)) == "input 13 → hidden unit 3"
    assert describe(one, locate(one, one.layers[1].b.start + 7)) == "bias of class 7"
    two = steepest.MLP([4, 3, 5, 2])
    assert describe(two, locate(two, two.layers[1].w.start + 2 * 5 + 4)) == \
        "hidden unit 2 (layer 1) → hidden unit 4 (layer 2)"
    assert describe(two, locate(two, two.layers[0].b.start + 1)) == "bias of hidden unit 1 (layer 1)"


def test_top_moves_carry_their_names(model, digits):
    net, _, res = model
    an = gradient_anatomy(net, res.theta, digits.X_train[:64], digits.y_train[:64], lr=0.2, k=5,
                          image_shape=(8, 8))
    from steepest.viz.anatomy import describe

    assert all(t["name"] == describe(net, t, (8, 8)) and "→" in t["name"] or t["name"].startswith("bias")
               for t in an.top)


def test_dead_units_are_the_silent_relus_and_get_no_gradient(digits):
    from steepest.viz.anatomy import dead_units

    net = steepest.MLP([64, 6, 10], activation="relu", input_scale=digits.input_scale)
    theta = net.init(seed=0)
    (W, b), _ = net.unpack(theta)
    b[[1, 4]] = -1e3                               # pre-activation < 0 on every row: dead
    X, y = digits.X_train[:100], digits.y_train[:100]
    dead = dead_units(net, theta, X)
    assert dead.tolist() == [False, True, False, False, True, False]
    an = gradient_anatomy(net, theta, X, y, lr=0.1)
    assert np.all(an.weight_grad(0)[:, dead] == 0) and np.all(an.weight_grad(0)[:, ~dead].any(axis=0))
    assert an.summary()["dead_units"] == [1, 4]
    assert dead_units(steepest.MLP([64, 6, 10], activation="tanh"), theta, X) is None


def test_loss_share_of_the_highest_loss_rows(model, digits):
    from steepest.viz.anatomy import loss_share

    net, _, res = model
    X, y = digits.X_train[:200], digits.y_train[:200]
    k, share = loss_share(net, res.theta, X, y, fraction=0.05)
    li = [net.astype("float64").loss(res.theta.astype(np.float64), X[i:i + 1].astype(np.float64), y[i:i + 1])
          for i in range(len(y))]
    assert k == 10 and share == pytest.approx(np.sort(li)[::-1][:10].sum() / np.sum(li), rel=1e-6)
    assert 0.05 < share <= 1.0


def test_maps_over_training_plot(model, digits, tmp_path):
    net, theta0, res = model
    X, y = digits.X_train[:32], digits.y_train[:32]
    snaps = [("θ₀", gradient_anatomy(net, theta0, X, y)), ("trained", gradient_anatomy(net, res.theta, X, y))]
    files = plots_anatomy.plot_input_maps_over_training(snaps, (8, 8), tmp_path, n_units=4)
    assert {p.name for p in files} == {"input_gradient_maps_over_training.png", "input_gradient_maps_over_training.svg"}


@pytest.mark.parametrize("hidden, pieces, n_units", [(3, None, 8), (2, 3, 4), (6, 2, 4)])
def test_maps_over_training_one_row_per_snapshot(digits, tmp_path, monkeypatch, hidden, pieces, n_units):
    """Each snapshot is one row, whatever the first layer's width against the units asked for: a layer
    narrower than n_units (3 units of 8 asked, 2 maxout units of 4) once laid its rows across each other."""
    activation = "maxout" if pieces else "relu"
    net = steepest.MLP([64, hidden, 10], activation=activation, pieces=pieces, input_scale=digits.input_scale)
    X, y = digits.X_train[:16], digits.y_train[:16]
    snaps = [(f"θ{s}", gradient_anatomy(net, net.init(s), X, y)) for s in range(3)]
    figures = []
    real_save = plots_anatomy.save_figure
    monkeypatch.setattr(plots_anatomy, "save_figure", lambda fig, *a: figures.append(fig) or real_save(fig, *a))
    plots_anatomy.plot_input_maps_over_training(snaps, (8, 8), tmp_path, n_units=n_units)
    panels = [ax for ax in figures[0].axes if ax.get_title()]  # the colour bar has no title
    per_row = min(hidden, n_units) * (pieces or 1)
    assert len(panels) == 3 * per_row
    for i, ax in enumerate(panels):
        spec = ax.get_subplotspec()
        assert (spec.rowspan.start, spec.colspan.start) == divmod(i, per_row)
        assert ax.get_ylabel().startswith(f"θ{i // per_row}") == (i % per_row == 0)


def test_dead_units_of_a_standardised_network_are_those_its_gradient_says(digits):
    """A model trained with --standardize sees (x·s − μ)/σ: a unit with all input weights −1 is silent on every
    raw image (x ≥ 0) but not on the standardised ones. Dead is exactly "no gradient reaches the weights", in
    explain and in the lab."""
    from steepest.lab import probe
    from steepest.network import standardisation
    from steepest.viz.anatomy import dead_units

    X, y = digits.X_train[:100], digits.y_train[:100]
    mean, std = standardisation(X, digits.input_scale)
    net = steepest.MLP([64, 6, 10], activation="relu", input_scale=digits.input_scale, input_mean=mean, input_std=std)
    theta = net.init(seed=0)
    (W, b), _ = net.unpack(theta)
    b[1] = -1e3
    W[:, 3], b[3] = -1.0, 0.0
    dead = dead_units(net, theta, X)
    assert dead.tolist() == [False, True, False, False, False, False]
    moved = gradient_anatomy(net, theta, X, y, lr=0.1).weight_grad(0).any(axis=0)
    assert dead.tolist() == (~moved).tolist()
    assert probe.dead_units(net, theta, X) == dead.tolist()
    assert probe.dead_units(net, theta, X, units=3) == dead.tolist()[:3]
