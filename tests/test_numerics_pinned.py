"""Speed work must not change the numerics: a short training run against a naive reference.

The reference below is written independently of steepest's code — plain NumPy, no buffers, no
in-place tricks, float64 — and replays the same run: same θ₀, same per-epoch shuffles, the
forward pass, softmax cross-entropy, backprop and torch-style momentum. steepest in float64
must follow its loss trajectory to 1e-10, and in float32 to float32 rounding.
"""

import numpy as np
import pytest

from steepest import MLP, train
from steepest.optim import SGD


def reference_run(theta0, sizes, X, y, lr, momentum, batch, epochs, seed, input_scale):
    """Minibatch SGD with momentum on an MLP with ReLU hidden layers, written out naively."""
    theta = theta0.astype(np.float64).copy()
    shapes, pos = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        shapes.append((pos, n_in, n_out))
        pos += n_in * n_out + n_out

    def params(t):
        return [(t[p:p + i * o].reshape(i, o), t[p + i * o:p + i * o + o]) for p, i, o in shapes]

    buf, losses = None, []
    for epoch in range(epochs):
        perm = np.random.default_rng([seed, epoch]).permutation(len(y))
        for s in range(0, len(y), batch):
            idx = perm[s:s + batch]
            A = [X[idx].astype(np.float64) * input_scale]
            for k, (W, b) in enumerate(params(theta)):
                Z = A[-1] @ W + b
                A.append(Z if k == len(shapes) - 1 else np.maximum(Z, 0))
            Z = A[-1]
            P = np.exp(Z - Z.max(1, keepdims=True))
            P /= P.sum(1, keepdims=True)
            n = len(idx)
            losses.append(float(-np.mean(np.log(P[np.arange(n), y[idx]]))))
            delta = (P - np.eye(sizes[-1])[y[idx]]) / n
            grads = []
            for k in range(len(shapes) - 1, -1, -1):
                W, _ = params(theta)[k]
                grads.append((A[k].T @ delta, delta.sum(0)))
                delta = (delta @ W.T) * (A[k] > 0)
            g = np.concatenate([np.concatenate([dW.ravel(), db]) for dW, db in reversed(grads)])
            buf = g.copy() if buf is None else momentum * buf + g
            theta = theta - lr * buf
    return theta, losses


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(42)
    X = rng.integers(0, 256, size=(300, 20), dtype=np.uint8)
    y = (X[:, :5].sum(1) // 260).astype(np.int64) % 4
    return X, y


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-10), ("float32", 2e-4)])
def test_loss_trajectory_matches_the_naive_reference(data, dtype, rtol):
    X, y = data
    sizes = [20, 16, 12, 4]
    net = MLP(sizes, activation="relu", dtype=dtype, input_scale=1 / 255)
    theta0 = net.init(seed=3)
    r = train(net, theta0, X, y, optimizer=SGD(momentum=0.9), lr=0.1, batch_size=32, epochs=3, seed=7,
              monitor=False)
    ref_theta, ref_losses = reference_run(theta0, sizes, X, y, lr=0.1, momentum=0.9, batch=32, epochs=3,
                                          seed=7, input_scale=1 / 255)
    assert len(r.history.steps["loss"]) == len(ref_losses) == 30
    np.testing.assert_allclose(r.history.steps["loss"], ref_losses, rtol=rtol)
    np.testing.assert_allclose(r.theta, ref_theta, rtol=rtol, atol=rtol * np.abs(ref_theta).max())
    assert ref_losses[-1] < 0.8 * ref_losses[0]  # the run really trained
