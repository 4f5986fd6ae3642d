"""The network: layout of θ, forward pass, backprop against finite differences."""

import numpy as np
import pytest

from steepest import MLP
from steepest.activations import ACTIVATIONS, ELEMENTWISE, apply, derivative
from steepest.errors import ConfigError, ShapeError
from steepest.finite_diff import gradcheck


def small_problem(seed=0, sizes=(6, 8, 5, 4), n=11):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, sizes[0])), rng.integers(0, sizes[-1], size=n)


def test_theta_is_one_flat_vector_and_layers_are_views():
    net = MLP([784, 128, 64, 10])
    theta = net.init(seed=0)
    assert theta.shape == (784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10,) == (net.n_params,)
    assert theta.dtype == np.float32 and theta.flags.c_contiguous
    (W1, b1), (W2, b2), (W3, b3) = net.unpack(theta)
    assert W1.shape == (784, 128) and b3.shape == (10,)
    W2[3, 5] = 42.0  # writing a view writes θ
    assert theta[net.layers[1].w.start + 3 * 64 + 5] == 42.0
    assert np.shares_memory(W1, theta) and np.shares_memory(b3, theta)


def test_dtype_float64_on_request():
    net = MLP([3, 4, 2], dtype="float64")
    theta = net.init(0)
    loss, g = net.loss_and_grad(theta, np.ones((2, 3)), np.array([0, 1]))
    assert theta.dtype == g.dtype == np.float64


@pytest.mark.parametrize("scheme,expected_std", [("he", np.sqrt(2 / 400)), ("glorot", np.sqrt(2 / 700)),
                                                  ("normal", 0.01), ("uniform", 0.05 / np.sqrt(3))])
def test_init_schemes_have_their_variance(scheme, expected_std):
    net = MLP([400, 300, 10], dtype="float64")
    W = net.unpack(net.init(seed=1, scheme=scheme))[0][0]
    assert W.std() == pytest.approx(expected_std, rel=0.02)
    assert abs(W.mean()) < 0.1 * expected_std


def test_init_is_seeded_and_biases_zero_or_random():
    net = MLP([5, 4, 3])
    assert np.array_equal(net.init(seed=7), net.init(seed=7))
    assert not np.array_equal(net.init(seed=7), net.init(seed=8))
    b = net.unpack(net.init(seed=7))[0][1]
    assert np.all(b == 0)
    b = net.unpack(net.init(seed=7, bias="random"))[0][1]
    assert np.all(b != 0)
    # same seed → the same numbers in both precisions, up to rounding
    assert np.allclose(net.init(3), MLP([5, 4, 3], dtype="float64").init(3), atol=1e-7)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backprop_matches_finite_differences(activation):
    for seed in range(3):
        net = MLP([6, 8, 5, 4], activation=activation, dtype="float64")
        theta = net.init(seed, bias="random", scheme="glorot")
        X, y = small_problem(seed)
        result = gradcheck(net, theta, X, y)
        assert result.ok, str(result)
        assert set(result.errors) == {"layer1.W", "layer1.b", "layer2.W", "layer2.b", "layer3.W", "layer3.b"}
        assert result.overall < 1e-6


def test_backprop_with_l2_and_mixed_activations_matches_finite_differences():
    net = MLP([5, 7, 6, 3], activation=["tanh", "relu"], l2=0.1, dtype="float64")
    X, y = small_problem(1, (5, 7, 6, 3))
    assert gradcheck(net, net.init(2, bias="random"), X, y).ok


def test_gradcheck_detects_a_wrong_gradient(monkeypatch):
    """The check must be able to fail: break tanh's derivative and it must notice."""
    import steepest.activations as act
    original = act.backward

    def wrong(name, A, delta):
        return original("relu" if name == "tanh" else name, A, delta)

    monkeypatch.setattr(act, "backward", wrong)
    net = MLP([4, 6, 3], activation="tanh", dtype="float64")
    X, y = small_problem(0, (4, 6, 3))
    result = gradcheck(net, net.init(0), X, y)
    assert not result.ok and result.errors["layer1.W"] > 1e-3


def test_gradient_is_written_into_the_given_buffer_and_chunking_agrees():
    net = MLP([6, 8, 5, 4], dtype="float64")
    theta = net.init(0)
    X, y = small_problem(0, n=50)
    buf = np.zeros_like(theta)
    loss, g = net.loss_and_grad(theta, X, y, grad=buf)
    assert g is buf
    loss_c, g_c = net.loss_and_grad(theta, X, y, chunk=7)
    assert loss_c == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(g_c, g, rtol=1e-10, atol=1e-14)
    assert net.loss(theta, X, y) == pytest.approx(loss, rel=1e-12)


def test_gradient_db_is_sum_of_delta_and_dW_is_At_delta():
    """dL/db = Σδ and dL/dW = Aᵀδ for a one-layer network (softmax regression), by hand."""
    net = MLP([3, 4], dtype="float64")
    theta = net.init(0, bias="random")
    X, y = small_problem(0, (3, 4), n=5)
    W, b = net.unpack(theta)[0]
    Z = X @ W + b
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    delta = (P - np.eye(4)[y]) / len(y)
    _, g = net.loss_and_grad(theta, X, y)
    dW, db = net.unpack(g)[0]
    np.testing.assert_allclose(dW, X.T @ delta, atol=1e-14)
    np.testing.assert_allclose(db, delta.sum(0), atol=1e-14)


def test_input_scale_applies_to_uint8_inputs():
    net = MLP([4, 3, 2], dtype="float64", input_scale=1 / 255)
    theta = net.init(0)
    Xu = np.array([[0, 255, 128, 7]], dtype=np.uint8)
    net1 = MLP([4, 3, 2], dtype="float64")
    assert np.allclose(net.logits(theta, Xu), net1.logits(theta, Xu / 255.0))


@pytest.mark.parametrize("activation", ELEMENTWISE)
def test_activation_derivatives_match_finite_differences(activation):
    z = np.linspace(-4, 4, 41) + 0.013  # avoid the ReLU kink at 0
    num = (apply(activation, z + 1e-6) - apply(activation, z - 1e-6)) / 2e-6
    np.testing.assert_allclose(derivative(activation, z), num, atol=1e-7)


def test_sigmoid_is_stable_for_large_inputs():
    with np.errstate(all="raise"):
        out = apply("sigmoid", np.array([-1e4, 0.0, 1e4]))
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0])


def test_predict_and_predict_proba():
    net = MLP([6, 8, 4], dtype="float64")
    theta = net.init(0)
    X, _ = small_problem(0, (6, 8, 4), n=20)
    P = net.predict_proba(theta, X, chunk=6)
    np.testing.assert_allclose(P.sum(1), 1.0)
    assert np.array_equal(net.predict(theta, X), P.argmax(1))


@pytest.mark.parametrize("kwargs", [dict(sizes=[5]), dict(sizes=[5, 0, 3]), dict(sizes=[5, 1]),
                                    dict(sizes=[5, 3, 2], activation="softsign"),
                                    dict(sizes=[5, 3, 2], dtype="int8"), dict(sizes=[5, 3, 2], l2=-1),
                                    dict(sizes=[5, 3, 3, 2], activation=["relu"])])
def test_bad_architectures_are_refused(kwargs):
    with pytest.raises(ConfigError):
        MLP(**kwargs)


def test_shape_and_label_errors_name_the_problem():
    net = MLP([4, 3, 2])
    theta = net.init(0)
    with pytest.raises(ShapeError, match=r"shape \(n, 4\)"):
        net.loss_and_grad(theta, np.ones((2, 5), np.float32), np.array([0, 1]))
    with pytest.raises(ShapeError, match="label 2 is out of range"):
        net.loss_and_grad(theta, np.ones((2, 4), np.float32), np.array([0, 2]))
    with pytest.raises(ShapeError, match="label -1"):
        net.loss_and_grad(theta, np.ones((2, 4), np.float32), np.array([0, -1]))
    with pytest.raises(ShapeError, match="float64"):
        net.loss_and_grad(theta.astype(np.float64), np.ones((2, 4)), np.array([0, 1]))
