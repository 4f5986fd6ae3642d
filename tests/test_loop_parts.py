"""The loop in parts: batches, the step and its transforms, listeners and their memory, cadences."""

import time
import warnings

import numpy as np
import pytest

from steepest import MLP, train
from steepest.batches import Batches
from steepest.events import Listener, Stop
from steepest.io import load_checkpoint, save_checkpoint
from steepest.listeners import Checkpointer
from steepest.step import Gradient, chain, clip_by_global_norm


@pytest.fixture(scope="module")
def relu_problem(problem):
    net, _, X, y = problem
    net = MLP([5, 12, 3], activation="relu")
    return net, net.init(0), X, y


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    net = MLP([5, 12, 3], activation="tanh")
    return net, net.init(0), X, y


def test_batches_visit_every_row_once_per_epoch_in_the_seeded_order():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    b = Batches(X, y, 4, seed=9)
    assert b.per_epoch == 3
    seen = [(s.y.copy(), s.last) for s in (b.batch(1, i) for i in range(3))]  # a batch lives until the next
    rows = np.concatenate([ys for ys, _ in seen])
    assert sorted(rows) == list(range(10))
    assert rows.tolist() == np.random.default_rng([9, 1]).permutation(10).tolist()
    assert [last for _, last in seen] == [False, False, True] and len(seen[-1][0]) == 2
    full = Batches(X, y, None).batch(0, 0)
    assert full.X is X and full.last and full.same_input


def test_holdout_splits_by_the_seeded_permutation_and_refuses_a_split_smaller_than_the_classes():
    """The validation rows are the first round(n·f) of default_rng([seed, 1]).permutation(n) — the split that
    runs trained before it was shared — and a split that cannot hold one row per class is refused with the
    least fraction that can (rounded up: 0.0066 would hold out 9 of 1,437)."""
    from steepest.batches import holdout
    from steepest.errors import ConfigError

    train_rows, val_rows = holdout(50, 0.2, 3, 10)
    perm = np.random.default_rng([3, 1]).permutation(50)
    assert val_rows.tolist() == sorted(perm[:10]) and train_rows.tolist() == sorted(perm[10:])
    with pytest.raises(ConfigError, match=r"--val-split 0.0001 holds out 1 of 1,437 samples, fewer than the 10 "
                                          r"classes; use at least --val-split 0.007$"):
        holdout(1437, 1e-4, 0, 10, "--val-split")
    assert len(holdout(1437, 0.007, 0, 10)[1]) == 10
    with pytest.raises(ConfigError, match="leaves no training data"):
        holdout(50, 0.99, 0, 2)
    with pytest.raises(ConfigError, match="too few to hold out one per class"):
        holdout(10, 0.5, 0, 10)
    # a run recorded before the rule (resumed, or re-trained by explain) keeps the split it was made with:
    # at least one row, as then
    assert holdout(1437, 0.001, 0, 10, recorded=True)[1].tolist() == \
        [int(np.random.default_rng([0, 1]).permutation(1437)[0])]
    assert len(holdout(1437, 1e-9, 0, 10, recorded=True)[1]) == 1


def test_clip_by_global_norm_keeps_the_direction_and_caps_the_length():
    g = np.array([3.0, 4.0], dtype=np.float32)
    grad = Gradient(g, 1.0, 0, 1, 25.0, 5.0)
    chain(clip_by_global_norm(1.0))(grad)
    assert np.allclose(g, [0.6, 0.8]) and g.dtype == np.float32
    small = Gradient(np.array([0.3, 0.4]), 1.0, 0, 1, 0.25, 0.5)
    clip_by_global_norm(1.0)(small)
    assert small.g.tolist() == [0.3, 0.4]
    with pytest.raises(Exception, match="clip_norm must be a positive number"):
        clip_by_global_norm(0)


def test_a_transform_changes_the_descent(problem):
    """A user transform is applied after clipping and before the update (here: halve the gradient)."""
    net, theta0, X, y = problem
    half = train(net, theta0, X, y, optimizer="gd", lr=0.2, batch_size=None, epochs=5,
                 transforms=[lambda grad: grad.g.__imul__(np.float32(0.5))])
    plain = train(net, theta0, X, y, optimizer="gd", lr=0.1, batch_size=None, epochs=5)
    assert np.array_equal(half.theta, plain.theta)  # η·(g/2) = (η/2)·g exactly, in binary floating point


def test_evaluating_every_k_steps_changes_records_not_theta(problem):
    net, theta0, X, y = problem
    every = train(net, theta0, X, y, optimizer="gd", lr=0.3, batch_size=None, epochs=25)
    sparse = train(net, theta0, X, y, optimizer="gd", lr=0.3, batch_size=None, epochs=25, eval_every=10,
                   evals={"test": (X[:30], y[:30])})
    assert sparse.theta.tobytes() == every.theta.tobytes()
    assert [r["step"] for r in sparse.history.epochs] == [10, 20, 25]  # and once more at the end
    assert len(every.history.epochs) == 25 and len(sparse.history.steps["loss"]) == 25
    last = sparse.history.epochs[-1]
    assert last["train_loss"] == pytest.approx(net.loss(sparse.theta, X, y), rel=1e-6)


def test_listeners_see_every_event_in_order_and_the_first_stop_wins(problem):
    net, theta0, X, y = problem
    seen = []

    class Watch(Listener):
        def on_train_begin(self, run):
            seen.append("begin")

        def on_step_end(self, run, rec):
            seen.append(f"step {rec.step}")
            return Stop("mine", "enough", "no hint") if rec.step == 5 else None

        def on_evaluation(self, run, rec):
            seen.append(f"eval {rec['step']}")

        def on_epoch_end(self, run):
            seen.append(f"epoch {run.state.epoch}")

        def on_train_end(self, run, stop):
            seen.append(f"end {stop.reason}")

    r = train(net, theta0, X, y, optimizer="sgd", lr=0.1, batch_size=40, epochs=4, listeners=[Watch()])
    assert seen == ["begin", "step 1", "step 2", "step 3", "eval 3", "epoch 1", "step 4", "step 5", "end mine"]
    assert r.stop_reason == "mine" and r.stop == Stop("mine", "enough", "no hint")
    assert r.stop_message == "enough. No hint."


def test_divergence_at_the_first_resumed_step_keeps_the_checkpoint_theta(relu_problem, tmp_path):
    """Interrupted just after the update that blew θ up (still finite), the run resumes with a loss that
    is non-finite at once: the θ kept is the checkpoint's, not an unfilled buffer."""
    net, theta0, X, y = relu_problem
    kw = dict(optimizer="momentum", lr=1e30, batch_size=40, epochs=3)
    part = train(net, theta0, X, y, callback=lambda e, s: e == "step" and s.step == 1, **kw)
    assert part.stop_reason == "interrupted" and np.isfinite(part.theta).all()
    net2, state, _ = load_checkpoint(save_checkpoint(tmp_path / "c.safetensors", net, part.state, {}))
    kept = state.theta.copy()
    r = train(net2, None, X, y, state=state, **kw)
    assert r.stop_reason == "diverged" and "at step 1:" in r.stop_message, r.stop_message
    assert r.theta.tobytes() == kept.tobytes()


def test_full_batch_blow_up_in_one_step_keeps_a_finite_theta_and_names_a_layer(relu_problem):
    net, theta0, X, y = relu_problem
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing in the loop may warn about the overflow it handles
        r = train(net, theta0, X, y, optimizer="gd", lr=1e30, batch_size=None, epochs=5)
    assert r.stop_reason == "diverged" and np.isfinite(r.theta).all()
    assert r.theta.tobytes() == theta0.tobytes()
    assert "layer" in r.stop.message and r.stop.hint


def test_a_loss_far_above_where_it_started_is_divergence_too():
    from steepest.data import load_dataset

    ds = load_dataset("digits")
    net = MLP([64, 32, 10], activation="relu", input_scale=ds.input_scale)
    theta0 = net.init(0, scheme="he")
    line = 4 * max(2.3, np.log(10))
    for optimizer in ("sgd", "momentum"):
        r = train(net, theta0, ds.X_train, ds.y_train, optimizer=optimizer, lr=50.0, batch_size=128, epochs=20)
        assert r.stop_reason == "diverged" and "evaluations in a row" in r.stop.message
        losses = [e["train_loss"] for e in r.history.epochs]
        assert len(losses) < 20 and min(losses[-3:]) > line
        ref = 4 * max(r.history.steps["loss"][0], np.log(10))
        assert net.loss(r.theta, ds.X_train, ds.y_train) <= ref  # the θ kept is below the line


def test_a_callback_stopping_the_first_full_batch_step_still_ends_cleanly(problem):
    """Every rule sees the evaluation at the end of the epoch a callback stopped in (full batch: step 1)."""
    net, theta0, X, y = problem
    r = train(net, theta0, X, y, optimizer="gd", lr=0.1, batch_size="full", epochs=5, callback=lambda e, s: True)
    assert r.stop_reason == "interrupted" and r.state.step == 1 and len(r.history.epochs) == 1


def test_patience_memory_survives_a_checkpoint(problem, tmp_path):
    """The patience rule's memory (best loss, best θ, evaluations waited) is saved with the checkpoint:
    interrupted and resumed, a run stops and restores exactly as an uninterrupted one."""
    net, theta0, X, y = problem
    kw = dict(optimizer="momentum", lr=0.5, batch_size=20, epochs=60, val=(X[:40], y[:40]), patience=3, seed=1)
    whole = train(net, theta0, X[40:], y[40:], **kw)
    assert whole.stop_reason == "patience"
    stop_at = whole.state.step - 7
    part = train(net, theta0, X[40:], y[40:], callback=lambda e, s: e == "step" and s.step == stop_at, **kw)
    net2, state, _ = load_checkpoint(save_checkpoint(tmp_path / "c.safetensors", net, part.state, {}))
    assert state.memory["patience"]["waited"] == part.state.memory["patience"]["waited"]
    resumed = train(net2, None, X[40:], y[40:], state=state, **kw)
    assert resumed.stop_reason == "patience" and resumed.theta.tobytes() == whole.theta.tobytes()


def test_checkpointer_cadence_by_steps_and_at_the_end(problem):
    net, theta0, X, y = problem
    saved = []
    cp = Checkpointer(lambda st: saved.append((st.step, st.batch)), every_steps=4)
    train(net, theta0, X, y, optimizer="sgd", lr=0.1, batch_size=40, epochs=4, listeners=[cp])
    # at the start, every 4 steps but never between an epoch's last step and its end, and at the end
    assert saved == [(0, 0), (4, 1), (8, 2), (12, 0)]
    by_clock = []
    cp = Checkpointer(lambda st: by_clock.append(st.step), every_seconds=3600, at_begin=False)
    train(net, theta0, X, y, optimizer="sgd", lr=0.1, batch_size=40, epochs=4, listeners=[cp])
    assert by_clock == [12]


def test_dispatch_to_listeners_is_cheap(problem):
    """Twenty listeners that watch every step add little to a step (a loose bound: this is not a benchmark)."""
    net, theta0, X, y = problem

    class Nop(Listener):
        def on_step_end(self, run, rec):
            return None

    def per_step(listeners):
        t = time.perf_counter()
        r = train(net, theta0, X, y, optimizer="sgd", lr=0.1, batch_size=8, epochs=20, monitor=False,
                  listeners=listeners)
        return (time.perf_counter() - t) / r.state.step

    base = min(per_step([]) for _ in range(3))
    many = min(per_step([Nop() for _ in range(20)]) for _ in range(3))
    assert many - base < 20 * 20e-6, (base, many)  # < 20 µs a listener a step, even on a busy machine


@pytest.mark.parametrize("monitor", [True, False])
def test_an_evaluation_record_has_exactly_the_declared_columns_in_order(problem, monitor):
    """The loop's records, the metrics files' header, the report's headings and the terminal line all
    come from steepest.records: a key the loop adds without declaring it fails here."""
    from steepest.commands._progress import epoch_line
    from steepest.records import EXTRA_FIELDS, LABELS, evaluated_sets, evaluation_columns

    net, theta0, X, y = problem
    r = train(net, theta0, X[:80], y[:80], optimizer="sgd", lr=0.1, batch_size=40, epochs=2, monitor=monitor,
              val=(X[80:100], y[80:100]), evals={"test": (X[100:], y[100:])})
    for rec in r.history.epochs:
        assert list(rec) == evaluation_columns(["val", "test"]) + list(EXTRA_FIELDS)
        assert evaluated_sets([rec]) == ["val", "test"]
        assert (rec["grad_norm"] is None) == (not monitor) and rec["train_metrics"] == ("full" if monitor else "running")
    assert set(evaluation_columns(["val", "test"])) <= set(LABELS)
    line = epoch_line(r.history.epochs[-1], 2)
    assert line.startswith("epoch   2/2  loss ") and " val " in line and " test " in line
    assert ("‖∇L‖" in line) == monitor
