"""The lab's engine in-process: it drives steepest.train through LabListener, no loop of its own."""

import threading
import time

import numpy as np
import pytest

from steepest.errors import ConfigError
from steepest.lab.engine import Engine
from steepest.lab.probe import input_gradient


@pytest.fixture
def engine():
    e = Engine({"dataset": "moons", "hidden": [8], "activation": "tanh", "batch_size": 32, "lr": 0.1})
    yield e
    e.quit()


def wait_for(cond, timeout=20):
    t = time.monotonic()
    while not cond():
        assert time.monotonic() - t < timeout, "timed out"
        time.sleep(0.02)


def test_the_lab_is_a_listener_on_the_loop():
    """The lab's hooks are the loop's events: its listener ends a train() call with its own reason."""
    from steepest import MLP, train
    from steepest.events import Listener
    from steepest.lab.engine import YIELDED, LabListener

    assert issubclass(LabListener, Listener)

    class Tick(LabListener):
        def __init__(self):
            self.steps = []

        def on_step(self, state):
            self.steps.append(state.step)
            return state.step == 3

    net = MLP([2, 4, 2])
    X, y = np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 2
    tick = Tick()
    r = train(net, net.init(0), X, y, batch_size=10, epochs=5, listeners=[tick])
    assert tick.steps == [1, 2, 3] and r.stop_reason == YIELDED


def test_pause_blocks_inside_the_loop_and_step_makes_one(engine):
    engine.start()
    wait_for(lambda: engine.status()["step"] > 50)
    engine.pause()
    time.sleep(0.4)
    frames = [f for t in threading.enumerate() if t.name == "steepest-lab-train"
              for f in [__import__("sys")._current_frames()[t.ident]]]
    names = []
    f = frames[0]
    while f is not None:
        names.append(f.f_code.co_name)
        f = f.f_back
    assert "on_step" in names and "train" in names  # paused inside train(), in the lab's listener
    s = engine.racers[0].state.step
    time.sleep(0.3)
    assert engine.racers[0].state.step == s
    engine.step()
    wait_for(lambda: engine.racers[0].state.step == s + 1)
    time.sleep(0.3)
    assert engine.racers[0].state.step == s + 1


def test_race_by_steps_keeps_racers_level(engine):
    engine.race([{"optimizer": "gd", "lr": 0.5, "batch_size": "full"},
                 {"optimizer": "adam", "lr": 0.01, "batch_size": 16}], "steps")
    theta0 = engine.theta0.copy()
    engine.start()
    wait_for(lambda: all(r.state is not None and r.state.step > 40 for r in engine.racers))
    engine.pause()
    time.sleep(0.3)
    a, b = (r.state.step for r in engine.racers)
    assert abs(a - b) <= 4, (a, b)
    assert not np.array_equal(engine.racers[0].state.theta, engine.racers[1].state.theta)
    assert np.array_equal(engine.theta0, theta0)


def test_bad_settings_leave_the_run_alone(engine):
    engine.start()
    wait_for(lambda: engine.status()["step"] > 20)
    gen, cfg = engine.generation, dict(engine.cfg)
    for bad in ({"lr": 0}, {"batch_size": 0}, {"hidden": [10**6]}, {"momentum": 2}, {"eps": -1}):
        with pytest.raises(ConfigError):
            engine.configure(bad)
    assert engine.generation == gen and engine.cfg == cfg and engine.running
    s = engine.status()["step"]
    wait_for(lambda: engine.status()["step"] > s)


def test_learning_rate_acts_on_the_running_training(engine):
    engine.start()
    wait_for(lambda: engine.status()["step"] > 10)
    engine.configure({"lr": 0.0123})
    assert engine.generation == 1
    wait_for(lambda: engine.racers[0].points[-1]["lr"] == 0.0123)


def test_eps_is_tested_on_the_full_set_gradient_that_the_points_carry(engine):
    """A mini-batch racer's ε rule measures ‖∇L‖ on every training row once an epoch (the lab's
    evaluations do not); the racer stops on it, and its points carry that measurement, and only it, for
    the page to draw the ε line against. A full-batch racer's points carry its steps' own gradient."""
    import steepest
    from steepest.loop import steps_per_epoch

    engine.configure({"eps": 100.0})          # far above ‖∇L‖: the first measurement stops the run
    engine.start()
    r = engine.racers[0]
    wait_for(lambda: r.done is not None)
    assert "< ε = 100" in r.done and r.state.step == steps_per_epoch(len(engine.data.y), 32)
    full = [p["full_grad_norm"] for p in r.points]
    assert full[-1] is not None and all(v is None for v in full[:-1]), full
    d, net = engine.data, steepest.MLP(**engine.net.config())
    _, g = net.loss_and_grad(r.state.theta, d.X, d.y)
    assert abs(full[-1] - float(np.linalg.norm(g.astype(np.float64)))) <= 1e-4 * full[-1]

    engine.configure({"eps": None})         # (settings act on the first racer: before the race)
    engine.race([{"optimizer": "gd", "lr": 0.5, "batch_size": "full"}], "steps")
    engine.start()
    wait_for(lambda: len(engine.racers[0].points) >= 3)
    engine.pause()
    points = [p for p in engine.racers[0].points if p["grad_norm"] is not None]
    assert points and all(p["full_grad_norm"] is not None for p in points)


@pytest.mark.parametrize("standardised", [False, True])
def test_input_gradient_matches_finite_differences(standardised):
    """Through the input scale and, for a model trained with --standardize, through (x·s − μ)/σ too."""
    import steepest

    spread = dict(input_mean=[0.3, -1.0, 0.0, 2.0, 0.5], input_std=[0.1, 2.0, 1.0, 0.5, 3.0]) if standardised else {}
    net = steepest.MLP([5, 7, 3], activation="tanh", dtype="float64", input_scale=0.5, **spread)
    theta = net.init(seed=1)
    x = np.random.default_rng(0).normal(size=5)
    g = input_gradient(net, theta, x, 2)
    h = 1e-6
    num = []
    for i in range(5):
        e = np.zeros(5)
        e[i] = h
        lp = -np.log(net.predict_proba(theta, (x + e)[None])[0, 2])
        lm = -np.log(net.predict_proba(theta, (x - e)[None])[0, 2])
        num.append((lp - lm) / (2 * h))
    assert np.allclose(g, num, rtol=1e-5, atol=1e-8)


def test_a_snapshot_is_one_moment_of_the_run(engine):
    """Taken while training runs, the copy is θ after exactly its step count: full-batch GD from θ₀
    for that many steps gives the same θ bit for bit (the lab's many train() calls resume exactly)."""
    import steepest

    engine.configure({"optimizer": "gd", "batch_size": "full"})
    engine.start()
    wait_for(lambda: engine.status()["step"] > 30)
    snap = engine.snapshot(0)
    assert engine.running and snap.step > 0
    engine.pause()
    time.sleep(0.2)
    d, net = engine.data, steepest.MLP(**engine.net.config())   # own buffers: the lab's thread has its net
    r = steepest.train(net, engine.theta0, d.X, d.y, optimizer="gd", lr=0.1, batch_size="full",
                       max_steps=snap.step, monitor=False)
    assert np.array_equal(r.theta, snap.theta)
    paused = engine.snapshot(0)                       # served from inside the paused callback
    assert paused.step == engine.racers[0].state.step


def test_the_lab_measures_with_evaluate():
    """Test accuracy and the loss surface are :func:`steepest.metrics.evaluate`'s numbers, on the lab's samples."""
    from steepest import MLP
    from steepest.lab.engine import probe_accuracy
    from steepest.lab.probe import Plane
    from steepest.metrics import evaluate

    rng = np.random.default_rng(0)
    net = MLP([2, 6, 3], activation="tanh")
    theta = net.init(1)
    X, y = rng.normal(size=(50, 2)).astype(np.float32), rng.integers(0, 3, 50)
    assert probe_accuracy(net, theta, X, y) == evaluate(net, theta, X, y).accuracy
    plane = Plane(net, theta, seed=0)
    out = plane.surface(net, X, y, [-1.0, -1.0], [1.0, 1.0], n=5)
    assert out["alphas"][2] == out["betas"][2] == 0.0
    assert out["loss"][2][2] == evaluate(net, theta.astype(np.float64).astype(net.dtype), X, y).loss
    t = (plane.theta0 + out["alphas"][4] * plane.D[0] + out["betas"][1] * plane.D[1]).astype(net.dtype)
    assert out["loss"][1][4] == evaluate(net, t, X, y).loss
    with pytest.raises(Exception, match="empty"):
        probe_accuracy(net, theta, X[:0], y[:0])
