"""Tests for steepest.optim: convergence on a quadratic, exact equations, torch parity, no allocation."""

import json
import tracemalloc

import numpy as np
import pytest

from steepest.errors import ConfigError
from steepest.optim import OPTIMIZERS, SGD, Adam, RMSprop, make_optimizer

# (name, kwargs, lr, steps) for every optimizer, several with the less common options switched on
SETTINGS = [
    ("gd", {}, 0.3, 300),
    ("sgd", {"momentum": 0.5, "dampening": 0.3}, 0.3, 300),
    ("momentum", {}, 0.05, 500),
    ("nesterov", {"momentum": 0.8}, 0.1, 300),
    ("adam", {}, 0.05, 3000),
    ("adam", {"beta1": 0.5, "beta2": 0.9}, 0.02, 3000),
    ("rmsprop", {}, 0.01, 3000),
    ("rmsprop", {"momentum": 0.5, "centered": True}, 0.005, 3000),
]


def quadratic(p, seed=0):
    """L(θ) = ½(θ − c)ᵀA(θ − c) with A = diag(a), a in [1, 4]; returns (grad_fn, c)."""
    rng = np.random.default_rng(seed)
    a, c = np.linspace(1.0, 4.0, p), rng.normal(size=p)
    return (lambda theta: a * (theta - c)), c


@pytest.mark.parametrize("name,kwargs,lr,steps", SETTINGS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_converges_to_minimum_of_quadratic(name, kwargs, lr, steps, dtype):
    grad_fn, c = quadratic(20)
    theta = np.zeros(20, dtype)
    opt = make_optimizer(name, **kwargs)
    state = opt.init(theta)
    for t in range(steps):
        # a decaying rate lets the sign-like methods (Adam, RMSprop) settle instead of hovering
        opt.update(theta, grad_fn(theta).astype(dtype), state, lr / (1 + t / 200))
    assert theta.dtype == dtype
    assert all(v.dtype == dtype for k, v in state.items() if k != "step")
    assert int(state["step"][0]) == steps
    np.testing.assert_allclose(theta, c, atol=2e-3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gd_is_theta_minus_lr_grad_bit_for_bit(dtype):
    grad_fn, _ = quadratic(50)
    theta = np.zeros(50, dtype)
    ref = theta.copy()
    opt = make_optimizer("gd")
    state = opt.init(theta)
    for t in range(30):
        lr = 0.1 + 0.01 * (t % 7)
        g = grad_fn(theta).astype(dtype)
        ref = ref - lr * g
        opt.update(theta, g.copy(), state, lr)
        assert np.array_equal(theta, ref)


def reference_sgd(theta, grad_fn, lrs, momentum, dampening, nesterov, weight_decay):
    """The equations of torch.optim.SGD as written, one new array per operation."""
    b = None
    for lr in lrs:
        g = grad_fn(theta) + weight_decay * theta
        if momentum != 0:
            b = g.copy() if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - lr * g
    return theta


SGD_SETTINGS = [
    dict(momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0),
    dict(momentum=0.9, dampening=0.5, nesterov=False, weight_decay=0.01),
    dict(momentum=0.8, dampening=0.0, nesterov=True, weight_decay=0.1),
    dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.1),
]
LRS = [0.1 * (1 + 0.5 * np.sin(t)) for t in range(20)]  # a rate that changes every step


@pytest.mark.parametrize("kw", SGD_SETTINGS)
def test_sgd_matches_reference_equations(kw):
    grad_fn, _ = quadratic(30)
    theta0 = np.random.default_rng(1).normal(size=30)
    expected = reference_sgd(theta0.copy(), grad_fn, LRS, **kw)
    for dtype, rtol in [(np.float64, 1e-12), (np.float32, 1e-5)]:
        opt, theta = SGD(**kw), theta0.astype(dtype)
        state = opt.init(theta)
        for lr in LRS:
            opt.update(theta, grad_fn(theta).astype(dtype), state, lr)
        assert theta.dtype == dtype
        np.testing.assert_allclose(theta, expected, rtol=rtol, atol=rtol)


def test_float64_scalar_lr_does_not_promote_float32():
    grad_fn, _ = quadratic(10)
    for opt in [SGD(momentum=0.9, weight_decay=0.1), Adam(), RMSprop(centered=True)]:
        a, b = np.ones(10, np.float32), np.ones(10, np.float32)
        sa, sb = opt.init(a), opt.init(b)
        for _ in range(5):
            opt.update(a, grad_fn(a).astype(np.float32), sa, 0.01)
            opt.update(b, grad_fn(b).astype(np.float32), sb, np.float64(0.01))
        assert a.dtype == b.dtype == np.float32
        assert np.array_equal(a, b)


# --- torch parity -------------------------------------------------------------------------------

TORCH_SETTINGS = [
    ("sgd", {}, "SGD", {}),
    ("sgd", {"momentum": 0.9}, "SGD", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.7, "dampening": 0.3, "weight_decay": 0.05}, "SGD",
     {"momentum": 0.7, "dampening": 0.3, "weight_decay": 0.05}),
    ("nesterov", {"momentum": 0.9, "weight_decay": 0.01}, "SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("adam", {}, "Adam", {}),
    ("adam", {"beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1}, "Adam",
     {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("rmsprop", {}, "RMSprop", {}),
    ("rmsprop", {"alpha": 0.9, "centered": True}, "RMSprop", {"alpha": 0.9, "centered": True}),
    ("rmsprop", {"momentum": 0.8, "weight_decay": 0.02}, "RMSprop", {"momentum": 0.8, "weight_decay": 0.02}),
    ("rmsprop", {"momentum": 0.5, "centered": True, "eps": 1e-4}, "RMSprop",
     {"momentum": 0.5, "centered": True, "eps": 1e-4}),
]


@pytest.mark.torch
@pytest.mark.parametrize("name,kwargs,torch_name,torch_kwargs", TORCH_SETTINGS)
def test_matches_torch_optimizer(name, kwargs, torch_name, torch_kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    theta = rng.normal(size=40)
    grads = rng.normal(size=(25, 40))
    param = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float64))
    topt = getattr(torch.optim, torch_name)([param], lr=LRS[0], **torch_kwargs)
    opt = make_optimizer(name, **kwargs)
    state = opt.init(theta)
    for g, lr in zip(grads, LRS + LRS):
        topt.param_groups[0]["lr"] = lr
        param.grad = torch.tensor(g)
        topt.step()
        opt.update(theta, g.copy(), state, lr)
        np.testing.assert_allclose(theta, param.detach().numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.torch
@pytest.mark.parametrize("kw", [{"momentum": -0.1}, {"weight_decay": -1.0}, {"nesterov": True},
                                {"nesterov": True, "momentum": 0.9, "dampening": 0.1}])
def test_sgd_rejects_what_torch_rejects(kw):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, **kw)
    with pytest.raises(ConfigError):
        SGD(**kw)


# --- performance ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs", [
    ("gd", {}), ("momentum", {"dampening": 0.1, "weight_decay": 1e-4}), ("nesterov", {"weight_decay": 1e-4}),
    ("adam", {"weight_decay": 1e-4}), ("rmsprop", {"momentum": 0.9, "centered": True, "weight_decay": 1e-4}),
])
def test_update_allocates_no_full_size_array(name, kwargs):
    theta = np.ones(200_000, np.float32)
    grad = np.empty_like(theta)
    opt = make_optimizer(name, **kwargs)
    state = opt.init(theta)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(100):
            grad.fill(0.5)
            opt.update(theta, grad, state, 1e-3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - base < 8 * 1024  # one float32 copy of theta would be 800 KB


# --- validation and configuration ------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: SGD(momentum=-0.5), lambda: SGD(weight_decay=-1e-3), lambda: SGD(nesterov=True),
    lambda: SGD(momentum=0.9, nesterov=True, dampening=0.5), lambda: SGD(momentum=float("nan")),
    lambda: SGD(momentum="fast"), lambda: SGD(momentum=0.9, nesterov="yes"),
    lambda: Adam(beta1=1.0), lambda: Adam(beta2=-0.1), lambda: Adam(eps=-1e-8), lambda: Adam(weight_decay=-1),
    lambda: RMSprop(alpha=-0.9), lambda: RMSprop(momentum=-1), lambda: RMSprop(eps=float("inf")),
    lambda: SGD(momentum=1.0), lambda: SGD(momentum=1.5), lambda: make_optimizer("nesterov", momentum=1.0),
    lambda: RMSprop(momentum=1.0), lambda: RMSprop(alpha=1.0),
    lambda: make_optimizer("adamw"), lambda: make_optimizer("gd", momentum=0.9),
    lambda: make_optimizer("momentum", nesterov=True), lambda: make_optimizer("adam", lr=0.1),
])
def test_invalid_configuration_raises_config_error(make):
    with pytest.raises(ConfigError):
        make()


def test_negative_learning_rate_raises():
    opt, theta = Adam(), np.zeros(3)
    state = opt.init(theta)
    with pytest.raises(ConfigError, match="learning rate"):
        opt.update(theta, np.ones(3), state, -0.1)


def test_error_messages_list_the_valid_choices():
    with pytest.raises(ConfigError, match="gd, sgd, momentum, nesterov, adam, rmsprop"):
        make_optimizer("lbfgs")
    with pytest.raises(ConfigError, match="beta1, beta2, eps, weight_decay"):
        make_optimizer("adam", betas=(0.9, 0.99))


@pytest.mark.parametrize("name,kwargs,lr,steps", SETTINGS + [("sgd", {"weight_decay": 0.1, "nesterov": True,
                                                                      "momentum": 0.3}, 0.1, 10)])
def test_config_round_trips_through_make_optimizer(name, kwargs, lr, steps):
    opt = make_optimizer(name, **kwargs)
    cfg = opt.config()
    assert cfg["name"] == name and opt.name == name
    assert json.loads(json.dumps(cfg)) == cfg  # plain Python values
    again = make_optimizer(**cfg)
    assert again.config() == cfg and repr(again) == repr(opt)
    grad_fn, _ = quadratic(5)
    a, b = np.zeros(5), np.zeros(5)
    sa, sb = opt.init(a), again.init(b)
    for _ in range(10):
        opt.update(a, grad_fn(a), sa, lr)
        again.update(b, grad_fn(b), sb, lr)
    assert np.array_equal(a, b)


def test_names_and_defaults():
    assert OPTIMIZERS == ("gd", "sgd", "momentum", "nesterov", "adam", "rmsprop")
    assert make_optimizer("momentum").momentum == 0.9
    nesterov = make_optimizer("nesterov")
    assert nesterov.nesterov and nesterov.momentum == 0.9
    assert make_optimizer("sgd").momentum == 0.0
    assert make_optimizer("gd").config() == {"name": "gd"}


def test_state_is_a_dict_of_arrays_with_a_step_counter():
    theta = np.zeros(7, np.float32)
    for name in OPTIMIZERS:
        state = make_optimizer(name).init(theta)
        assert all(isinstance(v, np.ndarray) for v in state.values())
        assert state["step"].dtype == np.int64 and state["step"].shape == (1,)
        assert all(v.shape == (7,) and v.dtype == np.float32 for k, v in state.items() if k != "step")
