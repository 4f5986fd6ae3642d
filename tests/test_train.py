"""The training loop: GD and SGD, stopping rules, history, determinism, resume."""

import subprocess
import sys

import numpy as np
import pytest

from steepest import MLP
from steepest.errors import ConfigError, DataError, ShapeError
from steepest.optim import SGD
from steepest.loop import steps_per_epoch, train


def blobs(n=120, d=5, k=3, seed=0):
    """k Gaussian clusters: an easy problem a small network learns in a few epochs."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3, size=(k, d))
    y = rng.integers(0, k, n)
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float32), y


@pytest.fixture
def problem():
    X, y = blobs()
    net = MLP([5, 16, 8, 3], activation="tanh")
    return net, net.init(0), X, y


def test_training_reduces_the_loss_and_learns(problem):
    net, theta0, X, y = problem
    result = train(net, theta0, X, y, optimizer="momentum", lr=0.05, batch_size=16, epochs=20)
    h = result.history.epochs
    assert h[-1]["train_loss"] < 0.25 * h[0]["train_loss"]
    assert h[-1]["train_acc"] > 0.95
    assert result.stop_reason == "max_epochs" and len(h) == 20
    assert not np.array_equal(result.theta, theta0)  # trained a copy …
    assert np.array_equal(theta0, net.init(0))       # … and left the start alone


def test_sgd_with_batch_n_is_exactly_gradient_descent(problem):
    """B = n takes the full-batch path: the rows in their given order, never shuffled — so this is the
    same code as GD, and the test shows that batch_size=n does not reshuffle (see the next test)."""
    net, theta0, X, y = problem
    gd = train(net, theta0, X, y, optimizer="gd", lr=0.1, batch_size="full", epochs=7, kernels="numpy")
    sgd = train(net, theta0, X, y, optimizer="sgd", lr=0.1, batch_size=len(y), epochs=7, seed=123, kernels="numpy")
    assert np.array_equal(gd.theta, sgd.theta)
    # and GD is θ ← θ − η∇L written out by hand (with NumPy's reference passes, as loss_and_grad has them)
    theta = theta0.copy()
    for _ in range(7):
        _, g = net.loss_and_grad(theta, X, y)
        theta -= np.float32(0.1) * g
    assert np.array_equal(gd.theta, theta)
    assert gd.history.epochs[-1]["step"] == 7 and len(gd.history.steps["loss"]) == 7


def test_shuffled_full_batches_equal_gradient_descent_to_rounding(problem):
    """A batch of all n rows in a fresh order each epoch is the same mean gradient summed in another
    order: equal to GD up to float rounding, not bit for bit."""
    net, theta0, X, y = problem
    gd = train(net, theta0, X, y, optimizer="gd", lr=0.1, batch_size="full", epochs=7)
    theta = theta0.copy()
    for epoch in range(7):
        perm = np.random.default_rng([123, epoch]).permutation(len(y))
        _, g = net.loss_and_grad(theta, X[perm], y[perm])
        theta -= np.float32(0.1) * g
    scale = np.abs(gd.theta).max()
    assert np.abs(theta - gd.theta).max() <= 1e-5 * scale
    assert np.abs(theta - theta0).max() > 1e3 * np.abs(theta - gd.theta).max()  # it did move, and far more


def test_momentum_zero_equals_plain_gd(problem):
    net, theta0, X, y = problem
    a = train(net, theta0, X, y, optimizer="gd", lr=0.1, batch_size=10, epochs=3)
    b = train(net, theta0, X, y, optimizer=SGD(momentum=0.0), lr=0.1, batch_size=10, epochs=3)
    assert np.array_equal(a.theta, b.theta)


def test_short_last_batch_and_sample_counts(problem):
    net, theta0, X, y = problem  # 120 samples, batch 50 → 50, 50, 20
    r = train(net, theta0, X, y, lr=0.01, batch_size=50, epochs=2, monitor=False)
    assert steps_per_epoch(120, 50) == 3
    assert [e["step"] for e in r.history.epochs] == [3, 6]
    assert [e["samples"] for e in r.history.epochs] == [120, 240]
    assert r.history.epochs[-1]["grad_evals"] == 240
    assert r.history.steps["samples"] == [50, 100, 120, 170, 220, 240]
    assert r.history.steps["grad_evals"] == r.history.steps["samples"]
    assert np.all(np.diff(r.history.steps["seconds"]) > 0)
    assert all(0 <= a <= 1 for a in r.history.steps["acc"])
    # the loss of a short batch is the mean over its own rows: replay the first epoch by hand
    theta = theta0.copy()
    perm = np.random.default_rng([0, 0]).permutation(120)
    for s in (0, 50, 100):
        idx = perm[s:s + 50]
        loss, g = net.loss_and_grad(theta, X[idx], y[idx])
        assert loss == pytest.approx(r.history.steps["loss"][s // 50], rel=1e-6)
        theta -= np.float32(0.01) * g


def test_monitoring_counts_its_gradient_evaluations(problem):
    net, theta0, X, y = problem
    r = train(net, theta0, X, y, lr=0.01, batch_size=40, epochs=2, monitor=True)
    assert r.history.epochs[-1]["grad_evals"] == 2 * 120 + 2 * 120  # steps + one full pass per epoch
    e = r.history.epochs[-1]
    full_loss, g = net.loss_and_grad(r.theta, X, y)
    assert e["train_loss"] == pytest.approx(full_loss, rel=1e-5)
    assert e["grad_norm"] == pytest.approx(float(np.linalg.norm(g.astype(np.float64))), rel=1e-4)
    assert np.sqrt(np.sum(np.square(e["layer_grad_norms"]))) == pytest.approx(e["grad_norm"], rel=1e-5)
    assert e["train_metrics"] == "full" and e["seconds"] > 0


def test_full_batch_monitoring_is_free(problem):
    """In GD the epoch-end gradient is the next step's gradient: it is computed once."""
    net, theta0, X, y = problem
    r = train(net, theta0, X, y, optimizer="gd", lr=0.1, batch_size="full", epochs=5)
    assert r.history.epochs[-1]["grad_evals"] == 6 * 120


# ------------------------------------------------------------------ stopping rules

def test_grad_norm_rule_stops_full_batch_gd_before_stepping(problem):
    net, theta0, X, y = problem
    long = train(net, theta0, X, y, optimizer="gd", lr=0.5, batch_size="full", epochs=400)
    norms = long.history.steps["grad_norm"]
    eps = norms[30] * 1.0001  # a threshold first crossed around step 30
    first_below = next(i for i, v in enumerate(norms) if v < eps)
    r = train(net, theta0, X, y, optimizer="gd", lr=0.5, batch_size="full", epochs=400, eps=eps)
    assert r.stop_reason == "grad_norm" and "ε" in r.stop_message
    assert r.state.step == first_below  # stopped at the first θ whose full gradient is small enough
    assert r.state.full_grad_norm < eps


def test_grad_norm_rule_for_sgd_uses_the_full_gradient(problem):
    net, theta0, X, y = problem
    r = train(net, theta0, X, y, optimizer="momentum", lr=0.05, batch_size=16, epochs=200, eps=0.05)
    assert r.stop_reason == "grad_norm"
    _, g = net.loss_and_grad(r.theta, X, y)
    assert np.linalg.norm(g) < 0.05
    assert r.history.epochs[-1]["grad_norm"] < 0.05 <= r.history.epochs[-2]["grad_norm"]


def test_grad_norm_every_k_steps(problem):
    net, theta0, X, y = problem
    r = train(net, theta0, X, y, optimizer="momentum", lr=0.05, batch_size=16, epochs=200, eps=0.05,
              grad_norm_every=3)
    assert r.stop_reason == "grad_norm"
    assert r.state.step % 3 == 0 or r.state.batch == 0  # a k-step check, or an epoch end


def test_max_steps_and_max_epochs(problem):
    net, theta0, X, y = problem
    r = train(net, theta0, X, y, lr=0.01, batch_size=16, max_steps=11)
    assert r.stop_reason == "max_steps" and r.state.step == 11 and len(r.history.steps["loss"]) == 11
    r = train(net, theta0, X, y, lr=0.01, batch_size=16, epochs=3)
    assert r.stop_reason == "max_epochs" and r.state.epoch == 3


def test_time_budget(problem):
    net, theta0, X, y = problem
    r = train(net, theta0, X, y, lr=0.01, batch_size=4, epochs=10**6, time_budget=0.3)
    assert r.stop_reason == "time_budget"
    assert 0.3 <= r.state.elapsed() < 3


def test_patience_restores_the_best_theta():
    X, y = blobs(200, seed=1)
    Xv, yv = blobs(60, seed=2)
    yv = (yv + 1) % 3  # validation labels disagree with training: val loss rises as training fits
    net = MLP([5, 16, 3])
    r = train(net, net.init(0), X, y, optimizer="momentum", lr=0.05, batch_size=20, epochs=100,
              patience=3, val=(Xv, yv))
    assert r.stop_reason == "patience"
    losses = [e["val_loss"] for e in r.history.epochs]
    best = int(np.argmin(losses))
    assert len(losses) == best + 1 + 3
    assert net.loss(r.theta, Xv, yv) == pytest.approx(losses[best], rel=1e-6)


def test_divergence_stops_at_once_and_keeps_the_last_finite_theta(problem):
    net, theta0, X, y = problem
    net = MLP([5, 16, 8, 3], activation="relu")
    theta0 = net.init(0)
    r = train(net, theta0, X * 1000, y, optimizer="gd", lr=1e6, batch_size="full", epochs=50)
    assert r.stop_reason == "diverged"
    assert "smaller learning rate" in r.stop_message and f"step {r.state.step}" in r.stop_message
    assert any(f"gradient of layer{k}" in r.stop_message for k in (1, 2, 3)), r.stop_message
    assert np.all(np.isfinite(r.theta))
    assert r.state.step < 50


def test_callback_can_interrupt_and_the_run_resumes_bit_for_bit(problem):
    net, theta0, X, y = problem
    kw = dict(optimizer="nesterov", lr=0.05, batch_size=16, epochs=4, seed=5)
    whole = train(net, theta0, X, y, **kw)
    stop_at = {5, 17, 23}

    def cb(event, state):
        return event == "step" and state.step in stop_at

    part = train(net, theta0, X, y, callback=cb, **kw)
    assert part.stop_reason == "interrupted" and part.state.step == 5
    state = part.state
    while True:
        r = train(net, None, X, y, callback=cb, state=state, **kw)
        if r.stop_reason != "interrupted":
            break
        state = r.state
    assert r.stop_reason == "max_epochs"
    assert np.array_equal(r.theta, whole.theta)
    assert r.history.steps["loss"] == whole.history.steps["loss"]


def test_determinism_in_separate_processes(tmp_path):
    code = (
        "import sys, numpy as np; sys.path.insert(0, 'src'); from steepest import MLP; "
        "from steepest.loop import train; rng = np.random.default_rng(0); "
        "X = rng.normal(size=(300, 20)).astype(np.float32); y = rng.integers(0, 4, 300); "
        "net = MLP([20, 32, 16, 4]); r = train(net, net.init(3), X, y, optimizer='momentum', "
        "lr=0.05, batch_size=32, epochs=3, seed=9); sys.stdout.write(r.theta.tobytes().hex())"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert len(runs[0]) > 1000 and runs[0] == runs[1]


def test_different_seeds_shuffle_differently(problem):
    net, theta0, X, y = problem
    a = train(net, theta0, X, y, lr=0.05, batch_size=16, epochs=1, seed=1)
    b = train(net, theta0, X, y, lr=0.05, batch_size=16, epochs=1, seed=2)
    assert not np.array_equal(a.theta, b.theta)


def test_schedule_is_followed(problem):
    net, theta0, X, y = problem
    r = train(net, theta0, X, y, lr=lambda step: 0.1 / (1 + step), batch_size=30, epochs=2)
    assert r.history.steps["lr"] == pytest.approx([0.1 / (1 + s) for s in range(8)])


def test_evaluation_sets_are_recorded(problem):
    net, theta0, X, y = problem
    Xt, yt = blobs(50, seed=0)
    r = train(net, theta0, X, y, lr=0.05, batch_size=16, epochs=2, val=(Xt, yt), evals={"test": (Xt, yt)})
    e = r.history.epochs[-1]
    assert e["val_acc"] == e["test_acc"] == pytest.approx(np.mean(net.predict(r.theta, Xt) == yt))


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(batch_size=0), ConfigError, "positive integer"),
    (dict(batch_size=1000), ConfigError, "larger than the 120"),
    (dict(lr=-0.1), ConfigError, "lr"),
    (dict(epochs=0), ConfigError, "epochs"),
    (dict(optimizer="sgdx"), ConfigError, "sgdx"),
    (dict(patience=3), ConfigError, "validation"),
    (dict(eps=-1), ConfigError, "eps"),
])
def test_bad_settings_are_refused(problem, kwargs, error, match):
    net, theta0, X, y = problem
    with pytest.raises(error, match=match):
        train(net, theta0, X, y, **{"lr": 0.1, **kwargs})


def test_bad_data_is_refused_with_position(problem):
    net, theta0, X, y = problem
    Xbad = X.copy()
    Xbad[7, 2] = np.nan
    with pytest.raises(DataError, match="row 7, column 2"):
        train(net, theta0, Xbad, y)
    with pytest.raises(ShapeError, match="out of range"):
        train(net, theta0, X, y + 5)
    with pytest.raises(DataError, match="empty"):
        train(net, theta0, X[:0], y[:0])


@pytest.mark.parametrize("value", [2**64, float("inf"), "ten", True, 2.5])
def test_stopping_rules_refuse_values_that_are_not_counts(value):
    from steepest.stopping import MaxEpochs
    if value == 2**64:
        assert MaxEpochs(value).n == 2**64  # huge but a count: allowed
        return
    with pytest.raises(ConfigError, match="epochs"):
        MaxEpochs(value)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_full_batch_input_reuse_never_goes_stale(problem, kernels):
    """Full-batch descent converts X once; evaluating another set of the same size in between
    (which reuses the same work buffers) must not leave a stale input behind."""
    if kernels == "numba":
        pytest.importorskip("numba")
    net, theta0, X, y = problem
    Xv, yv = blobs(len(y), seed=5)  # same n as the training set: same buffers
    plain = train(net, theta0, X, y, optimizer="gd", lr=0.1, batch_size="full", epochs=6, kernels=kernels)
    with_val = train(net, theta0, X, y, optimizer="gd", lr=0.1, batch_size="full", epochs=6,
                     val=(Xv, yv), evals={"test": (Xv, yv)}, kernels=kernels)
    assert np.array_equal(plain.theta, with_val.theta)
    theta = theta0.copy()
    for _ in range(6):
        _, g = net.loss_and_grad(theta, X, y)
        theta -= np.float32(0.1) * g
    if kernels == "numpy":  # the reference is this code, so bit for bit; the compiled passes to rounding
        assert np.array_equal(plain.theta, theta)
    else:
        np.testing.assert_allclose(plain.theta, theta, rtol=0, atol=1e-5 * np.abs(theta).max())
