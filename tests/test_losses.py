"""Softmax cross-entropy: values, stability, gradient."""

import numpy as np
import pytest

from steepest.losses import l2_penalty, softmax, softmax_cross_entropy


def naive(Z, y):
    P = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    return -np.mean(np.log(P[np.arange(len(y)), y]))


def test_matches_the_naive_formula_on_moderate_logits():
    rng = np.random.default_rng(0)
    Z, y = rng.normal(size=(7, 5)), rng.integers(0, 5, 7)
    loss, _ = softmax_cross_entropy(Z.copy(), y)
    assert loss == pytest.approx(naive(Z, y), rel=1e-12)


def test_uniform_logits_give_log_k():
    loss, _ = softmax_cross_entropy(np.zeros((3, 10)), np.array([0, 4, 9]))
    assert loss == pytest.approx(np.log(10))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_extreme_logits(dtype):
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4, -1e4]], dtype=dtype)
    y = np.array([0, 0, 1])
    # underflow of e^(−2e4) to 0 is exact enough; overflow, 0/0 and log 0 are what must not happen
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, delta = softmax_cross_entropy(Z.copy(), y)
    assert np.isfinite(loss) and np.all(np.isfinite(delta))
    # row 0 right with certainty: 0; row 1 wrong by 2e4: loss 2e4; row 2 a tie: log 2
    assert loss == pytest.approx((0 + 2e4 + np.log(2)) / 3, rel=1e-6)
    assert np.all(np.isfinite(softmax(Z)))


def test_gradient_is_softmax_minus_onehot_over_n():
    rng = np.random.default_rng(1)
    Z, y = rng.normal(size=(4, 3)), np.array([0, 1, 2, 1])
    _, delta = softmax_cross_entropy(Z.copy(), y)
    expected = (softmax(Z) - np.eye(3)[y]) / 4
    np.testing.assert_allclose(delta, expected, atol=1e-15)
    # and it is the derivative of the loss
    h, i, j = 1e-6, 2, 1
    Zp, Zm = Z.copy(), Z.copy()
    Zp[i, j] += h
    Zm[i, j] -= h
    assert (naive(Zp, y) - naive(Zm, y)) / (2 * h) == pytest.approx(delta[i, j], rel=1e-6)


def test_l2_penalty():
    W = [np.ones((2, 3)), 2 * np.ones((1, 1))]
    assert l2_penalty(W, 0.5) == pytest.approx(0.25 * (6 + 4))
    assert l2_penalty(W, 0.0) == 0.0
