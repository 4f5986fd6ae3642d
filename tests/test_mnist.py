"""Integration on real MNIST: the seed's network learns (needs $STEEPEST_DATA, else skipped)."""

import numpy as np
import pytest

from steepest import MLP, train
from steepest.finite_diff import gradcheck
from steepest.metrics import accuracy, confusion_matrix

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist():
    import os
    from pathlib import Path

    env = os.environ.get("STEEPEST_DATA")
    if not env or not (Path(env) / "mnist").is_dir():
        pytest.skip("real MNIST not available: set STEEPEST_DATA to a directory containing mnist/")
    from steepest.data import load_mnist
    return load_mnist(Path(env) / "mnist")


def test_784_128_64_10_relu_momentum_reaches_97_percent_in_5_epochs(mnist):
    net = MLP([784, 128, 64, 10], activation="relu", input_scale=mnist.input_scale)
    result = train(net, net.init(seed=0, scheme="he"), mnist.X_train, mnist.y_train,
                   optimizer="momentum", lr=0.05, batch_size=128, epochs=5, seed=0, monitor=False,
                   evals={"test": (mnist.X_test, mnist.y_test)})
    acc = accuracy(mnist.y_test, net.predict(result.theta, mnist.X_test))
    assert acc >= 0.97, f"test accuracy {acc:.4f}"
    assert result.history.epochs[-1]["test_acc"] == pytest.approx(acc)
    C = confusion_matrix(mnist.y_test, net.predict(result.theta, mnist.X_test), 10)
    assert C.sum() == 10000 and np.trace(C) == round(acc * 10000)


def test_backprop_on_real_digits_matches_finite_differences(mnist):
    net = MLP([784, 16, 12, 10], activation="sigmoid", input_scale=mnist.input_scale, dtype="float64")
    X, y = mnist.X_train[:20], mnist.y_train[:20]
    result = gradcheck(net, net.init(1, bias="random"), X, y, max_per_block=40)
    assert result.ok, str(result)


def test_full_batch_gradient_descent_decreases_the_loss_every_step(mnist):
    """Vanilla descent with a small step is careful: the full training loss goes down monotonically."""
    X, y = mnist.X_train[:5000], mnist.y_train[:5000]
    net = MLP([784, 32, 16, 10], activation="tanh", input_scale=mnist.input_scale)
    r = train(net, net.init(0), X, y, optimizer="gd", lr=0.1, batch_size="full", epochs=15)
    losses = r.history.steps["loss"]
    assert all(b < a for a, b in zip(losses, losses[1:]))
    norms = [e["grad_norm"] for e in r.history.epochs]
    assert norms[0] == pytest.approx(r.history.steps["grad_norm"][1], rel=1e-6)  # the same full gradient
