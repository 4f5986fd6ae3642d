"""The measured BLAS thread count (steepest.threads): its rule on a controlled clock, then the real thing.

The rule is driven step by step with a clock that advances by a step's cost at the thread count the
policy has set, so each decision can be checked exactly; the last tests train for real — NumPy's own
BLAS, and on a two-core machine one real competing process — and read what the run recorded.
"""

import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from steepest.threads import Blas, MeasuredThreads


class Threads:
    """Stands for the BLAS library: a thread count that can be read and set."""

    def __init__(self, n):
        self.n, self.sets = n, []

    def get(self):
        return self.n

    def set(self, n):
        self.n = n
        self.sets.append(n)


class Steps:
    """Runs the policy's hooks as train() would, with a clock advanced by each step's cost."""

    def __init__(self, top, cost, **kw):
        self.blas, self.t, self.cost = Threads(top), 0.0, cost
        self.policy = MeasuredThreads(self.blas, clock=lambda: self.t, **kw)
        self.run = SimpleNamespace(state=SimpleNamespace(step=0))
        self.policy.on_train_begin(self.run)

    def step(self, n=1, evaluate_every=None):
        for _ in range(n):
            self.t += self.cost(self.blas.n, self.t)  # the step runs at the count set before it
            self.run.state.step += 1
            self.policy.on_step_end(self.run, None)
            if evaluate_every and self.run.state.step % evaluate_every == 0:
                self.t += 5.0  # an evaluation: long, and must not count as a step
                self.policy.on_evaluation(self.run, {})


def test_candidates_are_one_half_and_all_of_the_librarys_threads():
    assert Steps(8, lambda n, t: 1.0).policy.candidates == [1, 4, 8]
    assert Steps(2, lambda n, t: 1.0).policy.candidates == [1, 2]
    one = Steps(1, lambda n, t: 1.0)
    one.step(50)
    assert one.policy.candidates == [1] and one.blas.sets == [] and one.policy.choices == []


def test_it_keeps_the_faster_count_and_records_the_medians():
    s = Steps(2, lambda n, t: {1: 0.002, 2: 0.020}[n])  # a busy machine: two threads wait for each other
    s.step(40)
    assert s.blas.n == 1 and s.policy.current == 1
    (choice,) = s.policy.choices
    assert choice["threads"] == 1 and choice["ms_per_step"] == {"1": 2.0, "2": 20.0}
    rec = s.policy.record()
    assert rec["policy"] == "measured" and rec["candidates"] == [1, 2] and rec["threads"] == 1
    json.dumps(rec)  # it goes into the model file's metadata


def test_a_tie_keeps_the_librarys_count_and_noise_does_not_make_it_flap():
    rng = np.random.default_rng(0)
    s = Steps(2, lambda n, t: 0.010 * (1 + 0.02 * rng.standard_normal()), recheck=0.5, max_recheck=2.0)
    s.step(3000)  # 30 s: a measurement every 2 s at most
    assert s.policy.measurements >= 12
    assert 1 in s.blas.sets and s.policy.current == s.blas.n == 2  # one thread was tried, and set back
    assert [c["threads"] for c in s.policy.choices] == [2]  # never changed: within the 5 % margin


def test_a_load_that_starts_mid_run_is_followed_and_so_is_its_end():
    def cost(n, t):
        busy = 10 <= t < 40  # another process runs from second 10 to second 40
        return {1: 0.004, 2: 0.030 if busy else 0.0025}[n]

    s = Steps(2, cost, recheck=2.0, max_recheck=8.0)
    s.step(1500)  # ≈ 4 s quiet
    assert s.policy.current == 2
    while s.t < 30:
        s.step()
    assert s.policy.current == 1, s.policy.choices
    while s.t < 60:
        s.step()
    assert s.policy.current == 2
    assert [c["threads"] for c in s.policy.choices] == [2, 1, 2]
    # The busy spell was noticed within one re-check interval (≤ 8 s) of its start.
    switched = s.policy.choices[1]["step"]
    assert switched < 1600 + 8 / 0.0025


def test_intervals_holding_an_evaluation_are_not_counted():
    # Evaluations fall on every 4th step; had they counted, the 5-second ones would decide.
    s = Steps(2, lambda n, t: {1: 0.003, 2: 0.002}[n], min_samples=5)
    s.step(60, evaluate_every=4)
    (choice,) = s.policy.choices
    assert choice["ms_per_step"] == {"1": 3.0, "2": 2.0} and choice["threads"] == 2


def test_the_first_step_is_not_timed():
    first = [True]

    def cost(n, t):
        if first[0]:
            first[0] = False
            return 100.0  # buffers allocated, caches cold
        return {1: 0.002, 2: 0.003}[n]

    s = Steps(2, cost)
    s.step(30)
    assert s.policy.choices[0]["ms_per_step"] == {"1": 2.0, "2": 3.0}


def test_blas_sets_the_real_library_and_kept_puts_it_back():
    blas = Blas()
    if not blas.libs:
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl")
    before = blas.get()
    with blas.kept():
        blas.set(1)
        assert blas.get() == 1
        a = np.ones((300, 300))
        assert (a @ a)[0, 0] == 300
    assert blas.get() == before


# --- the real thing: steepest train on real data and real BLAS threads --------------------------

def _train(tmp_path, name, *extra, busy=False):
    run = tmp_path / name
    cmd = [sys.executable, "-m", "steepest", "train", "--dataset", "mnist", "--hidden", "256",
           "128", "--no-download", "--epochs", "1", "--seed", "0", "--out", str(run), "--json", "--quiet", *extra]
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    from safetensors import safe_open

    with safe_open(str(run / "model.safetensors"), "np") as f:
        meta = {k: json.loads(v) for k, v in f.metadata().items() if k in ("threads", "environment")}
    return events, meta


def test_a_run_records_its_measured_count_and_json_says_each_choice(tmp_path, real_data_dir):
    top = Blas().get()
    events, meta = _train(tmp_path, "measured")
    rec = meta["threads"]
    assert rec["policy"] == "measured" and rec["candidates"] == sorted({1, max(1, top // 2), top})
    if top == 1:
        assert rec["choices"] == [] and rec["threads"] == 1
        return
    said = [{k: v for k, v in e.items() if k != "event"} for e in events if e.get("event") == "threads"]
    assert said and said == rec["choices"]
    assert rec["threads"] == said[-1]["threads"] == meta["environment"]["blas_threads"]
    for c in said:  # each choice is the fastest median, or the kept count within 5 % of it
        ms = {int(k): v for k, v in c["ms_per_step"].items()}
        assert ms[c["threads"]] <= min(ms.values()) / 0.95 + 1e-9


def test_a_fixed_count_is_recorded_as_fixed_and_nothing_is_measured(tmp_path, real_data_dir):
    events, meta = _train(tmp_path, "fixed", "--threads", "1")
    assert meta["threads"] == {"policy": "fixed", "threads": 1}
    assert not [e for e in events if e.get("event") == "threads"]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) != 2, reason="the busy-machine case is that of two cores")
def test_with_one_competing_process_on_two_cores_every_choice_is_the_fastest_measured(tmp_path, real_data_dir):
    """Under a real competing process the policy measures again as the run goes on, and each count it
    keeps is the fastest it measured (within its 5% margin). Which count that is depends on how the
    scheduler shares the cores (two threads lost by 1.15× to 2.3× on one machine, and a first measurement
    can still favour them): how much the default gains is the benchmark's workload e, not a test's."""
    if Blas().get() != 2:
        pytest.skip("NumPy's BLAS does not start with two threads here")
    events, meta = _train(tmp_path, "busy", "--epochs", "5", busy=True)
    rec = meta["threads"]
    assert rec["policy"] == "measured" and rec["measurements"] >= 2, rec  # it measured again while running
    assert rec["choices"] and rec["threads"] == rec["choices"][-1]["threads"]
    for c in rec["choices"]:
        ms = {int(k): v for k, v in c["ms_per_step"].items()}
        assert set(ms) == {1, 2} and ms[c["threads"]] <= min(ms.values()) / 0.95 + 1e-9, c


def test_runs_in_turn_share_the_choice_until_a_measurement_is_due():
    s = Steps(2, lambda n, t: {1: 0.002, 2: 0.020}[n], recheck=1.0)
    s.step(40)
    assert s.policy.current == 1 and s.policy.measurements == 1
    s.blas.n = 2  # the caller put the library's count back between the runs
    s.policy.on_train_begin(s.run)  # the next run, at once: no new measurement
    assert s.blas.n == 1
    s.step(10)
    assert s.policy.measurements == 1 and s.blas.sets[-1] == 1
    s.t += 5.0  # later than the re-check: the next run begins with a measurement
    s.policy.on_train_begin(s.run)
    s.step(40)
    assert s.policy.measurements == 2 and s.blas.n == 1
