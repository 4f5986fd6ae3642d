"""The compiled kernels (steepest.fused) against the NumPy reference they replace."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from steepest import MLP, train  # noqa: E402
from steepest.errors import ConfigError  # noqa: E402
from steepest.fused import Kernels, resolve  # noqa: E402
from steepest.optim import make_optimizer  # noqa: E402

K = resolve("numba")
ACTS = ("relu", "leaky_relu", "sigmoid", "tanh")
TOL = {"float32": 2e-6, "float64": 1e-13}


def data(rng, n=37, d=20, k=5, dtype=np.uint8):
    X = rng.integers(0, 256, (n, d)).astype(dtype)
    return X, rng.integers(0, k, n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_loss_gradient_and_count_agree_with_numpy(act, dtype, smoothing):
    rng = np.random.default_rng(hash((act, dtype, smoothing)) % 2**32)
    net = MLP([20, 16, 12, 5], activation=act, dtype=dtype, input_scale=1 / 255, label_smoothing=smoothing)
    theta = net.init(seed=3, bias="random")
    X, y = data(rng)
    l_ref, g_ref, c_ref = net.loss_grad_correct(theta, X, y)
    l, g, c = net.loss_grad_correct(theta, X, y, kernels=K)
    assert c == c_ref
    assert abs(l - l_ref) <= TOL[dtype] * abs(l_ref)
    assert np.abs(g - g_ref).max() <= TOL[dtype] * np.abs(g_ref).max()


@pytest.mark.parametrize("act", ACTS)
def test_fused_gradient_against_finite_differences(act):
    rng = np.random.default_rng(7)
    net = MLP([6, 5, 4, 3], activation=act, dtype="float64", label_smoothing=0.05)
    theta = net.init(seed=1, bias="random")
    X, y = rng.normal(size=(9, 6)), rng.integers(0, 3, 9)
    _, g, _ = net.loss_grad_correct(theta, X, y, kernels=K)
    h = 1e-6
    for i in rng.choice(net.n_params, 40, replace=False):
        e = np.zeros_like(theta)
        e[i] = h
        fd = (net.loss_grad_correct(theta + e, X, y, kernels=K)[0]
              - net.loss_grad_correct(theta - e, X, y, kernels=K)[0]) / (2 * h)
        assert abs(fd - g[i]) <= 1e-7 * max(1.0, abs(fd)), (i, fd, g[i])


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64, np.float32, np.float64])
def test_input_scaling_is_numpys_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (17, 13)).astype(dtype)
    for out_dtype in (np.float32, np.float64):
        ref = np.empty(X.shape, out_dtype)
        np.multiply(X, out_dtype(1 / 255), out=ref, casting="unsafe")
        out = np.empty_like(ref)
        K.scale_into(X, 1 / 255, out)
        assert np.array_equal(out.view(np.uint8), ref.view(np.uint8))


@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_bias_and_piecewise_linear_activation_are_numpys_bit_for_bit(act):
    from steepest import activations

    rng = np.random.default_rng(1)
    Z = rng.normal(size=(31, 19)).astype(np.float32)
    Z[0, :3] = [np.nan, np.inf, -np.inf]
    b = rng.normal(size=19).astype(np.float32)
    ref = Z + b
    with np.errstate(invalid="ignore"):  # NaN · 0 in the reference
        activations.forward(act, ref)
    K.bias_act(Z, b, act)
    assert np.array_equal(Z.view(np.uint32), ref.view(np.uint32))  # −0.0 and NaN included


OPTIMIZERS = [("gd", {}), ("sgd", {"momentum": 0.9}), ("sgd", {"momentum": 0.9, "dampening": 0.3}),
              ("nesterov", {"momentum": 0.8}), ("adam", {}), ("rmsprop", {}),
              ("rmsprop", {"momentum": 0.5, "centered": True}), ("sgd", {"momentum": 0.9, "weight_decay": 5e-4}),
              ("nesterov", {"momentum": 0.9, "weight_decay": 1e-3}), ("adam", {"weight_decay": 1e-2}),
              ("rmsprop", {"centered": True, "weight_decay": 1e-3})]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", OPTIMIZERS)
def test_every_optimizer_update_is_numpys_bit_for_bit(name, kw, dtype):
    rng = np.random.default_rng(2)
    theta0 = rng.normal(size=1001).astype(dtype)
    opt = make_optimizer(name, **kw)
    t_ref, t_fused = theta0.copy(), theta0.copy()
    s_ref, s_fused = opt.init(theta0), opt.init(theta0)
    save = np.empty_like(theta0)
    for step in range(5):
        g = rng.normal(size=1001).astype(dtype)
        before = t_fused.copy()
        opt.update(t_ref, g.copy(), s_ref, 0.01 * (step + 1))
        assert K.update(opt, t_fused, g, s_fused, 0.01 * (step + 1), save)
        assert np.array_equal(save, before)  # θ before the update, kept in the same pass
        assert np.array_equal(t_fused, t_ref), step
        for key in s_ref:
            assert np.array_equal(s_fused[key], s_ref[key]), key


def test_an_optimizer_without_a_fused_form_is_left_to_the_reference():
    class Halved(type(make_optimizer("sgd"))):
        pass

    opt = Halved(momentum=0.9)
    theta = np.ones(4, np.float32)
    assert not K.update(opt, theta, np.ones(4, np.float32), opt.init(theta), 0.1)
    assert np.array_equal(theta, np.ones(4, np.float32))


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_training_with_kernels_follows_the_reference(optimizer, digits):
    X, y = digits.X_train, digits.y_train
    net = MLP([64, 32, 10], activation="relu", dtype="float64", input_scale=1 / 16)
    theta = net.init(seed=0)
    runs = {k: train(net, theta, X, y, optimizer=optimizer, lr=0.01, batch_size=64, epochs=3, kernels=k, monitor=False)
            for k in ("numpy", "numba")}
    a, b = runs["numpy"].theta, runs["numba"].theta
    assert runs["numba"].state.step == runs["numpy"].state.step == 3 * -(-len(y) // 64)
    assert np.abs(a - b).max() <= 1e-11 * np.abs(a).max()
    assert not np.array_equal(theta, b)


def test_kernels_are_deterministic_and_resume_bit_for_bit(digits):
    X, y = digits.X_train, digits.y_train
    net = MLP([64, 32, 10], activation="relu", input_scale=1 / 16)
    theta = net.init(seed=0)
    whole = train(net, theta, X, y, optimizer="momentum", lr=0.05, batch_size=100, epochs=4, kernels="numba")
    again = train(net, theta, X, y, optimizer="momentum", lr=0.05, batch_size=100, epochs=4, kernels="numba")
    half = train(net, theta, X, y, optimizer="momentum", lr=0.05, batch_size=100, epochs=2, kernels="numba")
    rest = train(net, half.theta, X, y, optimizer="momentum", lr=0.05, batch_size=100, epochs=4, kernels="numba",
                 state=half.state)
    assert np.array_equal(whole.theta, again.theta)
    assert np.array_equal(whole.theta, rest.theta)


@pytest.mark.parametrize("lr", [1e30, 1e12])
def test_a_divergence_keeps_the_theta_the_reference_keeps(digits, lr):
    """θ before the last update, whose gradient was finite: copied by the fused update's own pass."""
    X, y = digits.X_train, digits.y_train
    net = MLP([64, 32, 10], activation="relu", input_scale=1 / 16)
    theta0 = net.init(seed=0)
    kept = {}
    for k in ("numpy", "numba"):
        seen = [theta0]
        res = train(net, theta0, X, y, optimizer="momentum", lr=lr, batch_size=100, epochs=50, kernels=k,
                    callback=lambda event, st: seen.append(st.theta.copy()) if event == "step" else None)
        assert res.stop_reason == "diverged" and np.isfinite(res.theta).all()
        assert np.array_equal(res.theta, seen[-2]), k
        kept[k] = len(seen)
    assert kept["numpy"] == kept["numba"]


def test_unknown_kernels_are_refused():
    with pytest.raises(ConfigError, match="unknown kernels"):
        resolve("fortran")
    assert resolve("numpy") is None
    assert isinstance(resolve("auto"), Kernels)


def test_import_steepest_does_not_import_numba_and_numba_missing_is_one_clear_error():
    code = ("import sys; import steepest; assert 'numba' not in sys.modules, 'numba imported eagerly'\n"
            "sys.modules['numba'] = None\n"
            "from steepest.fused import resolve\n"
            "assert resolve('auto') is None\n"
            "try:\n    resolve('numba')\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ConfigError the numba kernels need numba"), r.stdout



def test_dropout_masks_are_the_reference_masks_bit_for_bit():
    from steepest.regularise import Dropout

    net = MLP([30, 20, 10, 4], dropout=[0.2, 0.5, 0.0])
    ref, fused = Dropout(net, seed=3), Dropout(net, seed=3, kernels=K)
    for step in (0, 1, 17):
        for n in (7, 5):
            for a, b in zip(ref.masks(step, n), fused.masks(step, n)):
                assert (a is None and b is None) or np.array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_max_norm_agrees_with_the_reference(dtype):
    from steepest.regularise import max_norm

    net = MLP([30, 20, 10, 4], dtype=dtype)
    theta = net.init(seed=0) * 40  # most columns above the radius
    a, b = theta.copy(), theta.copy()
    max_norm(net, 3.0)(a)
    max_norm(net, 3.0, K)(b)
    assert not np.array_equal(a, theta)
    assert np.abs(a - b).max() <= 4 * np.finfo(dtype).eps * np.abs(a).max()
    for layer in net.layers[:-1]:
        W = b[layer.w].reshape(layer.shape)
        assert np.sqrt((W.astype(np.float64) ** 2).sum(axis=0)).max() <= 3.0 * (1 + 1e-6)


def test_dropout_and_max_norm_training_follows_the_reference(digits):
    X, y = digits.X_train, digits.y_train
    net = MLP([64, 40, 30, 10], activation="relu", dtype="float64", input_scale=1 / 16, dropout=[0.1, 0.3, 0.3],
              max_norm=2.0)
    theta = net.init(seed=0)
    runs = {k: train(net, theta, X, y, optimizer="momentum", lr=0.05, batch_size=64, epochs=2, kernels=k,
                     monitor=False, seed=5) for k in ("numpy", "numba")}
    a, b = runs["numpy"].theta, runs["numba"].theta
    assert np.abs(a - b).max() <= 1e-10 * np.abs(a).max()
