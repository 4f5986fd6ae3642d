"""steepest.viz.flatness: the numbers behind the flatness picture, ΔL(r) at filter-normalised distances."""

import numpy as np
import pytest

import steepest
from steepest.errors import ConfigError
from steepest.viz import flatness as F
from steepest.viz import landscape as L


@pytest.fixture(scope="module")
def trained(digits):
    net = steepest.MLP([64, 16, 10], activation="relu", input_scale=digits.input_scale)
    res = steepest.train(net, net.init(seed=1), digits.X_train, digits.y_train, optimizer="momentum", lr=0.05,
                         batch_size=64, epochs=8)
    return net, res.theta


def test_the_increase_is_zero_at_distance_zero(trained, digits):
    net, theta = trained
    f = F.flatness(net, theta, digits.X_train, digits.y_train, radii=[0.0, 0.5], n_directions=3, n_samples=400)
    assert f.increase.shape == (3, 2)
    assert (f.plus[:, 0] == f.loss0).all() and (f.minus[:, 0] == f.loss0).all()  # θ itself, bit for bit
    assert f.at(0.0) == (0.0, 0.0, 0.0)
    assert f.note == "on 400 of 1437 training samples"


def test_on_a_quadratic_it_is_half_r_squared_times_the_curvature_wherever_theta_is():
    """L(θ) = ½ θᵀAθ: ½[L(c + r·d) + L(c − r·d)] − L(c) = ½ r² dᵀAd exactly, for any c (the slope cancels)."""
    rng = np.random.default_rng(0)
    M = rng.standard_normal((6, 6))
    A = M @ M.T + np.eye(6)
    c = rng.standard_normal(6)            # not the minimum: L has a slope Ac here
    D = rng.standard_normal((4, 6))
    radii = np.array([0.0, 0.1, 0.5, 1.0, 2.0])
    plus, minus, loss0 = F.loss_increase(lambda t: 0.5 * t @ A @ t, c, D, radii)
    f = F.Flatness(radii, plus, minus, loss0, 0, "")
    expected = 0.5 * radii[None, :] ** 2 * np.einsum("kp,pq,kq->k", D, A, D)[:, None]
    np.testing.assert_allclose(f.increase, expected, rtol=1e-10, atol=1e-12)
    assert (np.diff(f.mean) > 0).all()
    # one side alone is not the measure: it carries the slope r·dᵀAc
    assert not np.allclose(plus - loss0, expected)


def test_it_grows_with_distance_around_a_trained_network(trained, digits):
    net, theta = trained
    f = F.flatness(net, theta, digits.X_train, digits.y_train, radii=[0.0, 0.1, 0.25, 0.5, 1.0], n_directions=4,
                   n_samples=500)
    assert (np.diff(f.mean) > 0).all(), f.mean
    assert (f.increase[:, 1:] > 0).all()  # every direction curves upward: θ* is near a minimum of the sample


def test_small_distances_give_the_curvature_measured_from_gradients(digits):
    """ΔL(r)/r² → ½ dᵀHd as r → 0, with Hd from central differences of backprop's gradient (float64)."""
    net = steepest.MLP([64, 12, 10], activation="tanh", input_scale=digits.input_scale, dtype="float64")
    X, y = digits.X_train[:300], digits.y_train[:300]
    theta = steepest.train(net, net.init(seed=2), X, y, optimizer="momentum", lr=0.05, batch_size=50,
                           epochs=5).theta
    d = F.directions(net, theta, 1, seed=5)[0]
    h = 1e-5
    Hd = (net.loss_and_grad(theta + h * d, X, y)[1] - net.loss_and_grad(theta - h * d, X, y)[1]) / (2 * h)
    r = 1e-3
    f = F.flatness(net, theta, X, y, radii=[r], n_directions=1, n_samples=None, seed=5)
    assert f.increase[0, 0] / r**2 == pytest.approx(0.5 * d @ Hd, rel=1e-3)


def test_the_same_seed_gives_the_same_numbers_and_another_seed_other_ones(trained, digits):
    net, theta = trained
    args = (net, theta, digits.X_train, digits.y_train, [0.0, 0.3, 0.6], 3, 300)
    a, b, c = F.flatness(*args, seed=7), F.flatness(*args, seed=7), F.flatness(*args, seed=8)
    np.testing.assert_array_equal(a.increase, b.increase)
    assert a.loss0 == b.loss0
    assert not np.array_equal(a.increase[:, 1:], c.increase[:, 1:])


def test_the_random_plane_is_spanned_by_the_first_two_directions(trained, digits):
    net, theta = trained
    D = F.directions(net, theta, 4, seed=3)
    plane = L.random_plane(net, theta, digits.X_train, digits.y_train, resolution=3, n_samples=100, seed=3)
    np.testing.assert_array_equal(plane.d1, D[0])
    np.testing.assert_array_equal(plane.d2, D[1])
    # two networks of one shape: the same Gaussian draws, each scaled to its own weights
    other = theta * 0.5
    D2 = F.directions(net, other, 4, seed=3)
    np.testing.assert_allclose(D2, D * 0.5, rtol=1e-5)


def test_bad_requests_are_refused(trained, digits):
    net, theta = trained
    with pytest.raises(ConfigError, match="at least 1"):
        F.directions(net, theta, 0)
    with pytest.raises(ConfigError, match="radii"):
        F.flatness(net, theta, digits.X_train, digits.y_train, radii=[-0.1])
    f = F.flatness(net, theta, digits.X_train, digits.y_train, radii=[0.0, 0.5], n_directions=1, n_samples=50)
    with pytest.raises(ConfigError, match="not measured at r = 0.3"):
        f.at(0.3)
