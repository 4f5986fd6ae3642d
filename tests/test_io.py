"""Model and checkpoint files: round trips, bit-for-bit resume, atomic writes, files that are not ours."""

import json
import os
import tracemalloc

import numpy as np
import pytest
from safetensors.numpy import save, save_file

from steepest import MLP
from steepest.errors import ModelFileError
from steepest.io import (atomic_write, load_checkpoint, load_model, read_safetensors, save_checkpoint,
                         save_model)
from steepest.loop import train


def blobs(n=90, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3, size=(k, d))
    y = rng.integers(0, k, n)
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float32), y


# ---------------------------------------------------------------- models

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_model_round_trip_is_exact(tmp_path, dtype):
    net = MLP([6, 7, 5, 3], activation=["tanh", "relu"], dtype=dtype, input_scale=0.5, l2=1e-3)
    theta = net.init(3, bias="random")
    meta = {"dataset": {"name": "blobs", "class_names": ["a", "b", "c"]}, "metrics": {"test_acc": 0.75},
            "training": {"lr": 0.1, "hidden": [7, 5]}, "seed": 3,
            "preprocessing": {"input_scale": 0.5, "image_shape": None}}
    path = save_model(tmp_path / "m.safetensors", net, theta, meta)
    net2, theta2, meta2 = load_model(path)
    assert theta2.tobytes() == theta.tobytes() and theta2.dtype == theta.dtype
    assert net2.config() == net.config()
    assert meta2["format"] == "steepest.model" and meta2["format_version"] == "1"
    assert meta2["dataset"] == meta["dataset"] and meta2["metrics"] == meta["metrics"]
    assert meta2["training"] == meta["training"] and meta2["seed"] == 3
    assert meta2["architecture"] == net.config()
    env = meta2["environment"]
    assert env["numpy"] == np.__version__ and "steepest" in env and "blas_threads" in env
    theta2 += 1  # owned and writable, not a view of the file's bytes
    # the file is plain safetensors: other tools read it without steepest
    raw, m = read_safetensors(path)
    assert set(raw) == {"theta"} and m["architecture"]["sizes"] == [6, 7, 5, 3]


def test_predictions_survive_the_round_trip(tmp_path):
    X, y = blobs()
    net = MLP([6, 8, 3])
    r = train(net, net.init(0), X, y, optimizer="momentum", lr=0.05, batch_size=16, epochs=3)
    net2, theta2, _ = load_model(save_model(tmp_path / "m.safetensors", net, r.theta))
    assert np.array_equal(net2.predict_proba(theta2, X), net.predict_proba(r.theta, X))


# ---------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_checkpoint_resume_mid_epoch_is_bit_for_bit(tmp_path, optimizer):
    X, y = blobs()
    net = MLP([6, 16, 3], activation="tanh")
    kw = dict(optimizer=optimizer, lr=0.01, batch_size=8, epochs=4, seed=5, val=(X[:20], y[:20]), patience=10)
    whole = train(net, net.init(1), X, y, **kw)

    stop_at = 17  # 12 batches per epoch: this is in the middle of epoch 2
    part = train(net, net.init(1), X, y, **kw, callback=lambda ev, st: ev == "step" and st.step == stop_at)
    assert part.stop_reason == "interrupted" and part.state.batch == 5 and part.state.epoch == 1
    path = save_checkpoint(tmp_path / "c.safetensors", net, part.state, {"lr": 0.01, "note": "x"})
    net2, state, config = load_checkpoint(path)
    assert config == {"lr": 0.01, "note": "x"}
    assert state.step == stop_at and state.batch == 5 and state.best_theta is not None
    assert state.history.steps["loss"] == part.history.steps["loss"]
    assert state.history.epochs == part.history.epochs
    for key, value in part.state.opt_state.items():
        assert state.opt_state[key].tobytes() == value.tobytes()
    resumed = train(net2, None, X, y, **kw, state=state)
    assert resumed.stop_reason == whole.stop_reason == "max_epochs"
    assert resumed.theta.tobytes() == whole.theta.tobytes()
    assert resumed.history.steps["loss"] == whole.history.steps["loss"]


def test_a_model_file_is_not_a_checkpoint(tmp_path):
    net = MLP([3, 2])
    path = save_model(tmp_path / "m.safetensors", net, net.init(0))
    with pytest.raises(ModelFileError, match="not a steepest model file.*expected steepest.checkpoint"):
        load_checkpoint(path)


def test_a_checkpoint_can_be_loaded_as_a_model(tmp_path):
    X, y = blobs()
    net = MLP([6, 4, 3])
    r = train(net, net.init(0), X, y, epochs=1)
    _, theta, meta = load_model(save_checkpoint(tmp_path / "c.safetensors", net, r.state, {}))
    assert theta.tobytes() == r.theta.tobytes() and meta["format"] == "steepest.checkpoint"


# ---------------------------------------------------------------- atomic writes

def _listing(d):
    return sorted(os.listdir(d))


def test_failed_rename_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    net = MLP([3, 4, 2])
    path = save_model(tmp_path / "m.safetensors", net, net.init(0))
    before, files = path.read_bytes(), _listing(tmp_path)

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(ModelFileError, match="No space left"):
        save_model(path, net, net.init(1))
    assert path.read_bytes() == before and _listing(tmp_path) == files


def test_failure_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    path = atomic_write(tmp_path / "f.txt", "old")

    def broken(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(ModelFileError):
        atomic_write(path, "new" * 1000)
    assert path.read_text() == "old" and _listing(tmp_path) == ["f.txt"]


def test_interrupt_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    path = atomic_write(tmp_path / "f.txt", "old")

    def ctrl_c(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, "new")
    assert path.read_text() == "old" and _listing(tmp_path) == ["f.txt"]


def test_write_into_a_read_only_directory_fails_cleanly(readonly_dir):
    net = MLP([3, 2])
    with pytest.raises(ModelFileError, match="cannot write"):
        save_model(readonly_dir / "m.safetensors", net, net.init(0))
    assert _listing(readonly_dir) == ["keep.txt"]


# ---------------------------------------------------------------- files that are not steepest models

def _header_file(path, header: dict, data: bytes = b"") -> None:
    h = json.dumps(header).encode()
    path.write_bytes(len(h).to_bytes(8, "little") + h + data)


MARKER = {"format": "steepest.model", "format_version": "1",
          "architecture": json.dumps({"sizes": [2, 2], "activation": [], "dtype": "float32",
                                      "input_scale": 1.0, "l2": 0.0})}


@pytest.mark.parametrize("case", ["random", "empty", "short", "text", "no-marker", "other-format",
                                  "huge-header", "huge-tensor", "truncated", "bad-dtype", "newer",
                                  "wrong-theta-shape", "no-theta"])
def test_not_a_model_file_is_rejected(tmp_path, case):
    p = tmp_path / "x.safetensors"
    theta6 = np.zeros(6, np.float32)  # MLP([2, 2]) has 2·2 + 2 = 6 parameters
    if case == "random":
        p.write_bytes(np.random.default_rng(0).bytes(4096))
    elif case == "empty":
        p.write_bytes(b"")
    elif case == "short":
        p.write_bytes(b"\x01\x02")
    elif case == "text":
        p.write_text("epoch,loss\n1,0.5\n")
    elif case == "no-marker":
        save_file({"theta": theta6}, str(p))
    elif case == "other-format":
        save_file({"theta": theta6}, str(p), metadata={**MARKER, "format": "someone.else"})
    elif case == "huge-header":
        p.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    elif case == "huge-tensor":  # claims 4 TB of data in a file of a few hundred bytes
        _header_file(p, {"__metadata__": MARKER,
                         "theta": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 4 * 10**12]}}, b"\0" * 24)
    elif case == "truncated":
        save_file({"theta": theta6}, str(p), metadata=MARKER)
        p.write_bytes(p.read_bytes()[:-5])
    elif case == "bad-dtype":
        save_file({"theta": theta6.astype(np.float16)}, str(p), metadata=MARKER)
    elif case == "newer":
        save_file({"theta": theta6}, str(p), metadata={**MARKER, "format_version": "99"})
    elif case == "wrong-theta-shape":
        save_file({"theta": np.zeros(7, np.float32)}, str(p), metadata=MARKER)
    elif case == "no-theta":
        save_file({"other": theta6}, str(p), metadata=MARKER)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as err:
            load_model(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, "rejecting a file must not allocate what its header claims"
    msg = str(err.value)
    assert str(p) in msg and "\n" not in msg
    if case == "newer":
        assert "newer steepest" in msg
    elif case not in ("wrong-theta-shape",):
        assert "not a steepest model file" in msg


def test_any_damage_to_a_checkpoint_is_caught_or_harmless(tmp_path):
    """Flip bytes, cut the file, rewrite numbers in the header: every result either loads into a
    state that fits the network, or is refused with a ModelFileError — never another exception."""
    import random
    import re

    X, y = blobs(30, 5, 3)
    net = MLP([5, 4, 3])
    r = train(net, net.init(0), X, y, epochs=2, batch_size=7, optimizer="momentum")
    good = save_checkpoint(tmp_path / "c.safetensors", net, r.state, {"lr": 0.1}).read_bytes()
    n = int.from_bytes(good[:8], "little")
    rng = random.Random(0)
    loaded = refused = 0
    for i in range(400):
        b = bytearray(good)
        if i % 3 == 0:
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif i % 3 == 1:
            b = b[:rng.randrange(len(b))]
        else:
            header = good[8:8 + n].decode()
            m = rng.choice(list(re.finditer(r"-?\d+(\.\d+)?|null|true|\[\]", header)))
            header = header[:m.start()] + rng.choice(["-1", "1e400", "null", '"x"', "[]", "{}", "2.5", "10" * 12]) \
                + header[m.end():]
            h = header.encode()
            b = bytearray(len(h).to_bytes(8, "little")) + h + good[8 + n:]
        p = tmp_path / "damaged.safetensors"
        p.write_bytes(bytes(b))
        try:
            net2, state, _ = load_checkpoint(p)
        except ModelFileError:
            refused += 1
            continue
        loaded += 1
        assert state.theta.shape == (net2.n_params,) and len(state.history.steps["loss"]) == state.step
        assert all(v.shape == state.theta.shape for k, v in state.opt_state.items() if k != "step")
    assert refused > 100 and loaded > 10  # both outcomes were exercised


def test_the_well_formed_version_of_those_files_loads(tmp_path):
    """The control for the test above: the same construction with nothing wrong is accepted."""
    p = tmp_path / "ok.safetensors"
    save_file({"theta": np.arange(6, dtype=np.float32)}, str(p), metadata=MARKER)
    net, theta, _ = load_model(p)
    assert net.sizes == (2, 2) and theta.tolist() == [0, 1, 2, 3, 4, 5]
    h = {"theta": {"dtype": "F32", "shape": [6], "data_offsets": [0, 24]}, "__metadata__": MARKER}
    _header_file(p, h, np.arange(6, dtype=np.float32).tobytes())
    assert load_model(p)[1].tolist() == [0, 1, 2, 3, 4, 5]


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "nope.safetensors")
    net = MLP([3, 2])
    save_model(tmp_path / "model.safetensors", net, net.init(0))
    with pytest.raises(ModelFileError, match="did you mean .*model.safetensors"):
        load_model(tmp_path)


def test_save_refuses_a_theta_that_does_not_fit(tmp_path):
    net = MLP([3, 2])
    with pytest.raises(Exception, match="theta must have shape"):
        save_model(tmp_path / "m.safetensors", net, np.zeros(5, np.float32))
    assert not (tmp_path / "m.safetensors").exists()


def test_model_bytes_are_plain_safetensors(tmp_path):
    """Byte-level: the header starts with its length and the marker sits in __metadata__."""
    net = MLP([3, 2])
    data = save_model(tmp_path / "m.safetensors", net, net.init(0)).read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    assert header["__metadata__"]["format"] == "steepest.model"
    assert header["theta"]["dtype"] == "F32" and header["theta"]["shape"] == [net.n_params]
    assert save({"a": np.zeros(1)})  # the numpy API used for writing is available


def test_the_model_records_its_blas_kernel(tmp_path):
    """The bit-identical promise is per BLAS kernel, so the model file names the kernel threadpoolctl reports."""
    import subprocess
    import sys

    from steepest.io import blas_kernel

    code = ("import json, numpy, threadpoolctl; print(json.dumps([p for p in threadpoolctl.threadpool_info() "
            "if p['user_api'] == 'blas']))")
    blas = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                     check=True).stdout)
    if not blas:
        pytest.skip("threadpoolctl sees no BLAS library in this NumPy")
    net = MLP([3, 2])
    save_model(tmp_path / "m.safetensors", net, net.init(seed=0))
    kernel = load_model(tmp_path / "m.safetensors")[2]["environment"]["blas_kernel"]
    assert kernel == blas_kernel() == " + ".join(f"{p['internal_api']} {p['version']} {p['architecture']}"
                                                 for p in blas)
    assert blas_kernel([]) is None and blas_kernel([{"internal_api": "mkl", "version": "2024"}]) == "mkl 2024"
