"""Tests for steepest.schedules: the equations, torch parity, configs and validation."""

import math

import pytest

import steepest.schedules as schedules
from steepest.errors import ConfigError
from steepest.schedules import (
    SCHEDULES,
    as_schedule,
    constant,
    cosine,
    exponential,
    make_schedule,
    one_cycle,
    step_decay,
    warmup,
)


def test_constant_step_and_exponential_equations():
    assert [constant(0.1)(t) for t in (0, 5, 10_000)] == [0.1, 0.1, 0.1]
    s = step_decay(1.0, step_size=3, gamma=0.5)
    assert [s(t) for t in range(7)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    e = exponential(2.0, gamma=0.9)
    assert e(0) == 2.0 and e(3) == pytest.approx(2.0 * 0.9**3, rel=1e-15)


def test_cosine_endpoints_midpoint_and_after_end():
    s = cosine(0.1, total_steps=10, lr_min=0.01)
    assert s(0) == pytest.approx(0.1, rel=1e-15)
    assert s(5) == pytest.approx(0.055, rel=1e-12)
    assert s(10) == s(11) == s(1000) == 0.01
    assert all(s(t) > s(t + 1) for t in range(10))


def test_warmup_formula():
    s = warmup(step_decay(1.0, step_size=2, gamma=0.5), warmup_steps=4, start_factor=0.2)
    # t < 4: s(0)·(0.2 + 0.8·t/4); then s(t − 4)
    assert [s(t) for t in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8], rel=1e-15)
    assert [s(t) for t in range(4, 9)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert warmup(0.3, warmup_steps=0)(0) == 0.3
    w = make_schedule("warmup", 0.5, warmup_steps=10)
    assert w(0) == 0.0 and w(5) == 0.25 and w(10) == w(500) == 0.5


def test_cosine_with_warmup_counts_warmup_inside_total_steps():
    s = make_schedule("cosine", 0.1, total_steps=100, warmup_steps=10, lr_min=0.001)
    assert s(0) == 0.0 and s(5) == pytest.approx(0.05)
    assert s(10) == pytest.approx(0.1, rel=1e-15)
    assert s(55) == pytest.approx(0.001 + 0.099 / 2, rel=1e-12)
    assert s(99) > 0.001 and s(100) == 0.001


def test_one_cycle_shape():
    s = one_cycle(1.0, total_steps=101, pct_start=0.2, div_factor=10.0, final_div_factor=100.0)
    peak = 0.2 * 101 - 1
    assert s(0) == pytest.approx(0.1, rel=1e-15)  # torch's formula, rounding included
    assert max(s(t) for t in range(101)) == pytest.approx(1.0, rel=1e-3)
    assert s(math.floor(peak)) < 1.0 and s(math.ceil(peak)) < 1.0
    assert s(100) == s(200) == 0.1 / 100.0
    assert all(s(t) < s(t + 1) for t in range(19)) and all(s(t) > s(t + 1) for t in range(20, 100))


# --- torch parity -------------------------------------------------------------------------------

def torch_lrs(torch, make_scheduler, steps, lr=0.1):
    """The lr torch's scheduler gives to each of `steps` optimizer updates."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.torch
@pytest.mark.parametrize("total,pct,div,final", [(100, 0.3, 25.0, 1e4), (7, 0.25, 10.0, 100.0),
                                                 (1000, 0.45, 5.0, 1e3), (20, 0.1, 25.0, 1e4),
                                                 (30, 0.02, 25.0, 1e4)])
def test_one_cycle_matches_torch(total, pct, div, final):
    torch = pytest.importorskip("torch")
    lr_sched = torch.optim.lr_scheduler
    expected = torch_lrs(torch, lambda o: lr_sched.OneCycleLR(
        o, max_lr=0.3, total_steps=total, pct_start=pct, div_factor=div, final_div_factor=final,
        anneal_strategy="cos", three_phase=False, cycle_momentum=False), total)
    ours = one_cycle(0.3, total, pct_start=pct, div_factor=div, final_div_factor=final)
    assert [ours(t) for t in range(total)] == pytest.approx(expected, rel=1e-12, abs=0)


@pytest.mark.torch
@pytest.mark.parametrize("ours,make,steps", [
    (cosine(0.1, 50), lambda s, o: s.CosineAnnealingLR(o, T_max=50), 51),
    (cosine(0.1, 30, lr_min=0.02), lambda s, o: s.CosineAnnealingLR(o, T_max=30, eta_min=0.02), 31),
    (step_decay(0.1, 7, 0.3), lambda s, o: s.StepLR(o, step_size=7, gamma=0.3), 60),
    (exponential(0.1, 0.95), lambda s, o: s.ExponentialLR(o, gamma=0.95), 60),
])
def test_schedules_match_torch(ours, make, steps):
    torch = pytest.importorskip("torch")
    expected = torch_lrs(torch, lambda o: make(torch.optim.lr_scheduler, o), steps)
    # torch updates these recursively (lr ← lr·factor), so allow rounding that accumulates
    assert [ours(t) for t in range(steps)] == pytest.approx(expected, rel=1e-10, abs=1e-14)


# --- configs, repr, as_schedule -------------------------------------------------------------------

EXAMPLES = [
    constant(0.1), step_decay(0.1, 10, 0.5), exponential(0.2, 0.99), cosine(0.1, 100, 1e-4),
    warmup(0.1, 5, 0.1), warmup(step_decay(0.1, 3), 4), warmup(cosine(0.1, 90), 10),
    one_cycle(0.5, 200, 0.25, 10.0, 1e3),
    make_schedule("cosine", 0.1, total_steps=100, warmup_steps=10, start_factor=0.5),
]


@pytest.mark.parametrize("s", EXAMPLES, ids=repr)
def test_config_and_repr_rebuild_the_schedule(s):
    cfg = s.config()
    assert cfg["name"] in SCHEDULES
    for rebuilt in (make_schedule(**cfg), as_schedule(cfg), eval(repr(s), vars(schedules))):
        assert rebuilt.config() == cfg
        assert [rebuilt(t) for t in range(0, 250, 7)] == [s(t) for t in range(0, 250, 7)]


def test_as_schedule():
    assert as_schedule(0.1)(123) == 0.1 and isinstance(as_schedule(1), constant)
    f = lambda step: 1.0 / (1 + step)  # noqa: E731
    assert as_schedule(f) is f
    assert as_schedule({"name": "exponential", "lr": 1.0, "gamma": 0.5})(2) == 0.25
    assert warmup(f, 2)(1) == 0.5 and warmup(f, 2)(3) == 0.5


def test_every_name_builds():
    kw = {"step": {"step_size": 5}, "exponential": {"gamma": 0.9}, "warmup": {"warmup_steps": 5}}
    for name in SCHEDULES:
        s = make_schedule(name, 0.1, total_steps=50, **kw.get(name, {}))
        assert isinstance(s(0), float) and isinstance(s(49), float)


# --- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: constant(-0.1), lambda: constant(float("nan")), lambda: constant("fast"), lambda: as_schedule(None),
    lambda: step_decay(0.1, 0), lambda: step_decay(0.1, 2.5), lambda: step_decay(0.1, 5, gamma=0.0),
    lambda: exponential(0.1, -0.9), lambda: cosine(0.1, 0), lambda: cosine(0.1, 10, lr_min=-1),
    lambda: warmup(0.1, -1), lambda: warmup(0.1, 5, start_factor=1.5),
    lambda: one_cycle(0.1, 0), lambda: one_cycle(0.1, 100, pct_start=1.2), lambda: one_cycle(0.1, 10, div_factor=0),
    lambda: make_schedule("linear", 0.1), lambda: make_schedule("step", 0.1),
    lambda: make_schedule("cosine", 0.1), lambda: make_schedule("onecycle", 0.1),
    lambda: make_schedule("exponential", 0.1, gamma=0.9, step_size=3),
    lambda: make_schedule("cosine", 0.1, total_steps=10, warmup_steps=10),
    lambda: cosine(0.1, 10, lr_min=0.2), lambda: make_schedule("cosine", 0.1, total_steps=10, lr_min=0.11),
])
def test_invalid_schedules_raise_config_error(make):
    with pytest.raises(ConfigError):
        make()


def test_a_cosine_may_end_at_its_starting_rate():
    """lr_min = lr is a flat line (refused only above lr, where the cosine would rise)."""
    s = cosine(0.1, 10, lr_min=0.1)
    assert [s(t) for t in (0, 5, 10)] == [0.1, 0.1, 0.1]


def test_error_messages_name_the_choices():
    with pytest.raises(ConfigError, match="constant, step, exponential, cosine, warmup, onecycle"):
        make_schedule("poly", 0.1)
    with pytest.raises(ConfigError, match="step_size"):
        make_schedule("step", 0.1)
