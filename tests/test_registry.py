"""The registry of names is the one list: every entry is implemented, and nothing implemented is missing."""

import subprocess
import sys

import numpy as np
import pytest

from steepest import activations, optim, registry, schedules
from steepest.errors import ConfigError
from steepest.init import init_layer


@pytest.mark.parametrize("name", registry.ELEMENTWISE)
def test_every_activation_runs(name):
    Z = np.linspace(-2, 2, 8).reshape(2, 4)
    assert activations.apply(name, Z).shape == Z.shape


def test_maxout_is_the_one_activation_that_is_not_element_wise():
    """The registry's names are the element-wise ones and maxout; maxout keeps each unit's largest piece."""
    assert registry.ACTIVATIONS == (*registry.ELEMENTWISE, "maxout")
    Z = np.array([[1.0, 3.0, -1.0, -2.0]])
    win = np.empty((1, 2), np.intp)
    assert activations.maxout_forward(Z, 2, np.empty((1, 2)), win).tolist() == [[3.0, -1.0]]
    assert win.tolist() == [[1, 0]]
    with pytest.raises(ConfigError, match="not element-wise"):
        activations.apply("maxout", Z)


@pytest.mark.parametrize("name", registry.INITS)
def test_every_init_runs(name):
    assert init_layer(np.random.default_rng(0), 3, 2, name).shape == (3, 2)


def test_an_unknown_name_is_refused_everywhere():
    with pytest.raises(ConfigError):
        activations.apply("swish", np.zeros((1, 1)))
    with pytest.raises(ConfigError):
        optim.make_optimizer("lion")
    with pytest.raises(ConfigError):
        schedules.make_schedule("linear", 0.1)


@pytest.mark.parametrize("name", registry.OPTIMIZERS)
def test_optimizer_options_are_exactly_those_accepted(name):
    opt = optim.make_optimizer(name)
    assert set(opt.config()) - {"name"} == set(registry.OPTIMIZER_OPTIONS[name])
    with pytest.raises(ConfigError, match="unknown option"):
        optim.make_optimizer(name, not_an_option=1)


@pytest.mark.parametrize("name", registry.SCHEDULES)
def test_schedule_options_are_exactly_those_accepted(name):
    required, optional = registry.SCHEDULE_OPTIONS[name]
    assert schedules._SPECS[name][0] == required
    assert tuple(schedules._SPECS[name][1]) == optional


def test_registry_and_command_line_import_no_numpy():
    code = ("import sys, steepest.registry, steepest.cli; "
            "steepest.cli.build_parser(); print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_evaluate_is_one_pass_with_the_loss_of_net_loss():
    from steepest import MLP, evaluate

    net = MLP([4, 6, 3], activation="tanh", dtype="float64", l2=0.01)
    theta = net.init(seed=1)
    X = np.random.default_rng(2).normal(size=(50, 4))
    y = np.arange(50) % 3
    m = evaluate(net, theta, X, y, chunk=7)
    assert m.loss == pytest.approx(net.loss(theta, X, y), rel=1e-12)
    assert m.correct == int(np.sum(net.predict(theta, X) == y)) and m.n == 50
    assert m.accuracy == m.correct / 50
    assert m.predicted is None
    p = evaluate(net, theta, X, y, chunk=7, predictions=True)
    assert p == m and np.array_equal(p.predicted, net.predict(theta, X))  # the same numbers, plus the classes
    from steepest.errors import DataError

    with pytest.raises(DataError, match="empty"):
        evaluate(net, theta, X[:0], y[:0])


def test_every_command_offers_exactly_the_registry_names():
    """Each --activation, --init and --optimizer of every command lists the registry's names, no others."""
    from steepest.cli import build_parser

    tables = {"activation": registry.ACTIVATIONS, "init": registry.INITS, "optimizer": registry.OPTIMIZERS}
    seen = []
    for name, p in build_parser().commands.items():
        for action in p._actions:
            if action.dest in tables and action.choices is not None:
                assert tuple(action.choices) == tables[action.dest], (name, action.dest)
                seen.append((name, action.dest))
    assert {("compare", "activation"), ("compare", "init"), ("lab", "optimizer")} <= set(seen)
    from steepest.commands._trainconfig import BY_NAME  # train checks its values after reading config files

    assert all(tuple(BY_NAME[k].choices) == v for k, v in tables.items())


@pytest.mark.parametrize("name", registry.OPTIMIZERS)
def test_the_lab_gives_momentum_to_exactly_the_optimizers_that_take_it(name):
    from steepest.lab.engine import Racer

    takes = "momentum" in optim.make_optimizer(name).config()
    assert ("μ=" in Racer(0, {"optimizer": name, "lr": 0.1, "momentum": 0.9, "batch_size": 32}).label) == takes
