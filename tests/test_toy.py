"""The toy 2-D datasets: seeded, balanced, learnable, and usable by `steepest train` by name."""

import json

import numpy as np
import pytest

import steepest as st
from steepest.data import KNOWN_DATASETS, load_dataset
from steepest.data.toy import TOY_DATASETS, load_toy
from clirun import steepest as run_cli


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_toy_is_seeded_and_balanced(name):
    a, b, c = load_toy(name), load_toy(name), load_toy(name, seed=1)
    assert name in KNOWN_DATASETS
    assert np.array_equal(a.X_train, b.X_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.X_train, c.X_train)
    assert a.X_train.shape == (600, 2) and a.X_test.shape == (200, 2) and a.X_train.dtype == np.float32
    assert abs(np.bincount(a.y_train, minlength=2)[0] - 300) < 40
    assert np.abs(a.X_train).max() < 2.0
    assert load_dataset(name).name == name


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_toy_is_learnable_but_not_linear(name):
    """A 2-16-16-2 tanh net separates each set; on moons/circles/xor a linear model cannot."""
    ds = load_toy(name)
    net = st.MLP([2, 16, 16, 2], activation="tanh")
    r = st.train(net, net.init(seed=0, scheme="glorot"), ds.X_train, ds.y_train, optimizer="adam",
                       lr=0.03, batch_size="full", max_steps=600 if name == "spirals" else 300, monitor=False)
    acc = st.evaluate(net, r.theta, ds.X_test, ds.y_test).accuracy
    assert acc > (0.8 if name == "spirals" else 0.9), (name, acc)
    if name in ("circles", "xor"):
        lin = st.MLP([2, 2])
        rl = st.train(lin, lin.init(seed=0), ds.X_train, ds.y_train, optimizer="adam", lr=0.05,
                            batch_size="full", max_steps=300, monitor=False)
        assert st.evaluate(lin, rl.theta, ds.X_test, ds.y_test).accuracy < 0.75


def test_train_command_takes_a_toy_dataset(tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "--dataset", "circles", "--hidden", "8", "--activation", "tanh", "--optimizer", "adam",
                "--lr", "0.05", "--batch-size", "full", "--max-steps", "200", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    end = json.loads(r.stdout.strip().splitlines()[-1])
    assert end["test_acc"] > 0.9, end
    r = run_cli("evaluate", str(out), "--json")
    assert r.returncode == 0, r.stderr
