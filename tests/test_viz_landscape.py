"""steepest.viz.landscape and minima: the numbers behind the landscape plots."""

import numpy as np
import pytest

import steepest
from steepest.viz import landscape as L
from steepest.viz import plots_landscape
from steepest.viz.common import sample_rows
from steepest.viz.minima import (BASINS, basin, basin_map, critical_points, descend, double_well, double_well_grad,
                                 momentum_vs_gd, ravine)


@pytest.fixture(scope="module")
def trained(digits):
    net = steepest.MLP([64, 16, 10], activation="relu", input_scale=digits.input_scale)
    theta0 = net.init(seed=1)
    res = steepest.train(net, theta0, digits.X_train, digits.y_train, optimizer="momentum", lr=0.05,
                         batch_size=64, epochs=5)
    return net, theta0, res.theta


def test_interpolate_is_exact_at_the_ends(trained):
    _, theta0, theta1 = trained
    np.testing.assert_array_equal(L.interpolate(theta0, theta1, 0.0), theta0)
    np.testing.assert_array_equal(L.interpolate(theta0, theta1, 1.0), theta1)


def test_line_ends_are_the_models_losses(trained, digits):
    net, theta0, theta1 = trained
    line = L.line_1d(net, theta0, theta1, digits.X_train, digits.y_train, digits.X_test, digits.y_test,
                     n_samples=500)
    Xs, ys, note = sample_rows(digits.X_train, digits.y_train, 500, 0)
    assert note == "on 500 of 1437 training samples"
    i0, i1 = list(line.alphas).index(0.0), list(line.alphas).index(1.0)
    assert line.alphas[0] == -0.5 and line.alphas[-1] == 1.5
    assert line.train_loss[i0] == pytest.approx(net.loss(theta0, Xs, ys), rel=1e-12)
    assert line.train_loss[i1] == pytest.approx(net.loss(theta1, Xs, ys), rel=1e-12)
    assert line.test_loss[i0] == pytest.approx(net.loss(theta0, digits.X_test, digits.y_test), rel=1e-12)
    assert line.test_loss[i1] == pytest.approx(net.loss(theta1, digits.X_test, digits.y_test), rel=1e-12)
    assert line.train_loss[i1] < line.train_loss[i0]


def test_filter_normalised_direction(trained):
    net, _, theta = trained
    d = L.filter_normalized_direction(net, theta, seed=3)
    assert d.shape == theta.shape and d.dtype == theta.dtype
    for layer in net.layers:
        D, W = d[layer.w].reshape(layer.shape), theta[layer.w].reshape(layer.shape)
        # a neuron's incoming weights are a column of W (n_in, n_out)
        np.testing.assert_allclose(np.linalg.norm(D, axis=0), np.linalg.norm(W, axis=0), rtol=1e-5)
        assert not d[layer.b].any()
    assert not np.array_equal(d, L.filter_normalized_direction(net, theta, seed=4))


def test_random_plane_centre_is_theta_star(trained, digits):
    net, _, theta = trained
    plane = L.random_plane(net, theta, digits.X_train, digits.y_train, resolution=5, n_samples=300)
    assert plane.loss.shape == (5, 5)
    Xs, ys, _ = sample_rows(digits.X_train, digits.y_train, 300, 0)
    assert plane.loss[2, 2] == pytest.approx(net.loss(theta, Xs, ys), rel=1e-6)
    assert plane.loss[2, 2] <= plane.loss.max()
    t = plane.theta(plane.alphas[4], plane.betas[0])
    assert plane.loss[0, 4] == pytest.approx(net.loss(t, Xs, ys), rel=1e-12)


def test_pca_plane_of_paths_in_a_plane():
    rng = np.random.default_rng(0)
    p = 50
    c = rng.normal(size=p)
    U = np.linalg.qr(rng.normal(size=(p, 2)))[0].T          # an orthonormal 2-D subspace
    a = {"one": rng.normal(size=(20, 2)), "two": rng.normal(size=(10, 2))}
    a["one"][-1] = 0.0                                       # the first path ends at the centre
    paths = {k: c + v @ U for k, v in a.items()}
    pca = L.pca_plane(paths)
    np.testing.assert_allclose(pca.center, c)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(2), atol=1e-12)
    assert pca.explained.sum() == pytest.approx(1.0)
    for k in paths:
        np.testing.assert_allclose(pca.reconstruct(pca.coords[k]), paths[k], atol=1e-10)
    np.testing.assert_allclose(pca.project(paths["one"][-1]), [0.0, 0.0], atol=1e-12)


def test_trajectories_on_their_pca_plane(trained, digits):
    net, theta0, _ = trained
    paths = L.train_paths(net, theta0, digits.X_train, digits.y_train, steps=30, max_points=10)
    assert list(paths) == ["GD", "SGD B=64", "momentum full batch"]
    for P in paths.values():
        assert P.shape == (11, net.n_params)                 # θ₀ and every third step
        np.testing.assert_array_equal(P[0], theta0)
    pca, plane = L.trajectory_landscape(net, paths, digits.X_train, digits.y_train, resolution=7,
                                        n_samples=300)
    theta_star = paths["GD"][-1]
    # θ* is the centre: PCA coordinate (0, 0), and its projection equals its coordinate in the path
    np.testing.assert_allclose(pca.coords["GD"][-1], [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(pca.project(theta_star), pca.coords["GD"][-1], atol=1e-9)
    # every point's coordinates are (θ − centre)·V, and the reconstruction is its orthogonal projection
    for P, xy in zip(paths.values(), pca.coords.values()):
        rec = pca.reconstruct(xy)
        resid = P.astype(np.float64) - rec
        np.testing.assert_allclose(resid @ pca.components.T, 0.0, atol=1e-6)
    assert 0.5 < pca.explained.sum() <= 1.0 + 1e-12
    pts = np.concatenate(list(pca.coords.values()))
    assert plane.alphas.min() < pts[:, 0].min() and plane.alphas.max() > pts[:, 0].max()
    assert plane.betas.min() < pts[:, 1].min() and plane.betas.max() > pts[:, 1].max()
    assert plane.loss.shape == (7, 7) and np.isfinite(plane.loss).all()


def test_step_probe(trained, digits):
    net, theta0, _ = trained
    probe = L.step_probe(net, theta0, digits.X_train, digits.y_train, lr=0.3, n_samples=400)
    assert 0.3 in probe.alphas and probe.alphas[0] == 0.0
    assert probe.loss[0] == pytest.approx(probe.loss0, rel=1e-6)
    a = probe.alphas[1]
    slope = (probe.loss[1] - probe.loss0) / a
    assert slope == pytest.approx(-probe.grad_norm**2, rel=0.1)  # first order near α = 0
    assert np.all(probe.loss >= probe.first_order - 1e-6)       # convex-ish here: above the tangent


def test_gd_stops_in_the_shallow_minimum_momentum_goes_on():
    x_deep, x_hump, x_shallow = critical_points()
    assert double_well(x_deep) < double_well(x_shallow)
    assert abs(double_well_grad(x_deep)) < 1e-9 and abs(double_well_grad(x_shallow)) < 1e-9
    runs = momentum_vs_gd()
    gd, mom = runs["GD"], runs["momentum μ=0.9"]
    assert gd.xs[0] == mom.xs[0] == 2.0
    assert gd.basin == "shallow" and mom.basin == "deep"
    assert gd.xs[-1] == pytest.approx(x_shallow, abs=1e-4)
    assert mom.xs[-1] == pytest.approx(x_deep, abs=1e-3)
    assert basin(0.0) == "deep" and basin(0.5) == "shallow"
    assert descend("gd", x0=-2.0).basin == "deep"


def test_landscape_plots_written(trained, digits, tmp_path):
    net, theta0, theta1 = trained
    line = L.line_1d(net, theta0, theta1, digits.X_train, digits.y_train, alphas=np.linspace(-0.5, 1.5, 5))
    plane = L.random_plane(net, theta1, digits.X_train, digits.y_train, resolution=5, n_samples=200)
    paths = L.train_paths(net, theta0, digits.X_train, digits.y_train, steps=6)
    pca, tplane = L.trajectory_landscape(net, paths, digits.X_train, digits.y_train, resolution=5, n_samples=200)
    probe = L.step_probe(net, theta0, digits.X_train, digits.y_train, lr=0.5, n_samples=200)
    files = (plots_landscape.plot_line_1d(line, tmp_path) + plots_landscape.plot_plane(plane, tmp_path)
             + plots_landscape.plot_trajectories(pca, tplane, tmp_path)
             + plots_landscape.plot_step_probe(probe, tmp_path)
             + plots_landscape.plot_minima(momentum_vs_gd(), tmp_path)
             + plots_landscape.plot_basin_map(np.linspace(-2, 2, 5), [0.0, 0.9], np.zeros((2, 5), int), tmp_path,
                                              0.01, 10, mark=(2.0, 0.9))
             + plots_landscape.plot_ravine(ravine(steps=20), 100.0, 0.018, tmp_path))
    names = {p.name for p in files}
    for stem in ("line_1d", "plane_contour", "plane_surface", "trajectories", "step_probe", "double_well_momentum",
                 "double_well_basins", "ravine_momentum"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    for p in files:
        assert p.stat().st_size > 1000
    assert (tmp_path / "line_1d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "line_1d.svg").read_bytes()[:1000]


def test_the_basin_map_shows_momentum_is_no_rule_on_the_double_well():
    """From x₀ = 2 momentum reaches the deep minimum, but from x₀ = 1 it stays in the shallow one, and
    from x₀ = −1 plain GD finds the deep one: each cell is the run descend() makes from that start."""
    x0s, momenta = np.array([-1.0, 1.0, 2.0]), [0.0, 0.9]
    codes = basin_map(x0s, momenta, lr=0.01, steps=500)
    assert [[BASINS[c] for c in row] for row in codes] == [["deep", "shallow", "shallow"],
                                                            ["deep", "shallow", "deep"]]
    from steepest.optim import make_optimizer

    for j, x0 in enumerate(x0s):   # the vectorised map agrees with one run at a time
        one = descend(make_optimizer("momentum", momentum=0.9), x0=x0, lr=0.01, steps=500)
        assert one.basin == BASINS[codes[1, j]]
    assert BASINS[basin_map([2.0], [0.9], lr=0.01, steps=10)[0, 0]] == "unsettled"   # still rolling


def test_on_the_ravine_momentum_converges_where_gd_crawls():
    kappa, lr, mu, steps = 100.0, 0.018, 0.8, 150
    runs = ravine(kappa, lr, mu, steps=steps)
    gd, mom = runs["GD"], runs[f"momentum μ={mu:g}"]
    # GD's shallow coordinate shrinks by exactly (1 − η) per step: r(u, 0) = ½u²
    assert gd.xs[-1, 0] == pytest.approx(-10 * (1 - lr) ** steps, rel=1e-9)
    assert mom.fs[-1] < 1e-6 < 0.1 < gd.fs[-1]
    assert BASINS == ("deep", "shallow", "unsettled")


def _probe(lr, alphas, losses, loss0=1.0):
    a = np.asarray(alphas, float)
    return L.StepProbe(a, np.asarray(losses, float), loss0 - a, loss0, 1.0, lr, "")


def test_step_probe_verdict_and_never_an_alpha_at_the_grid_edge():
    grid = [0.0, 0.1, 0.2, 0.4, 0.8]
    falling = _probe(0.2, grid, [1.0, 0.9, 0.8, 0.7, 0.6])           # still falling at the largest α
    assert falling.at_edge and falling.best_alpha is None and "undershoots" in falling.verdict
    inside = _probe(0.1, grid, [1.0, 0.9, 0.8, 0.85, 2.0])
    assert inside.best_alpha == 0.2 and "does not overshoot" in inside.verdict
    past = _probe(0.4, grid, [1.0, 0.9, 0.8, 0.85, 2.0])
    assert "steps past the minimum" in past.verdict and "0.85" in past.verdict
    up = _probe(0.8, grid, [1.0, 0.9, 0.8, 0.85, 2.0])
    assert up.verdict.startswith("lr 0.8 overshoots: one step raises the loss from 1 to 2")


def test_step_probe_on_a_real_model_says_whether_its_lr_overshoots(trained, digits):
    net, theta0, _ = trained
    small = L.step_probe(net, theta0, digits.X_train, digits.y_train, lr=1e-4, n_samples=300)
    assert small.at_edge and small.best_alpha is None and "undershoots" in small.verdict
    huge = L.step_probe(net, theta0, digits.X_train, digits.y_train, lr=1e3, n_samples=300)
    assert "overshoots" in huge.verdict and huge.loss_at_lr > huge.loss0


def test_tick_labels_never_read_minus_zero():
    from steepest.viz.plots_landscape import _tick

    f = _tick()
    assert f(-1e-17) == "0.00" and f(-0.001) == "0.00" and f(-0.5) == "-0.50" and f(0.25) == "0.25"
    assert _tick("{:.4g}")(-3e-17) == "0"
