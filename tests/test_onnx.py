"""ONNX export, checked by ONNX's own checker and run by onnxruntime against steepest's own numbers."""

import json

import numpy as np
import pytest

from clirun import steepest

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install 'steepest[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="running the graph needs onnxruntime (pip install 'steepest[onnx]')")

from steepest import MLP, train  # noqa: E402
from steepest.data import load_dataset  # noqa: E402
from steepest.io import load_model  # noqa: E402
from steepest.onnx import ACTIVATION_OPS, IR_VERSION, OPSET, to_onnx  # noqa: E402
from steepest.registry import ACTIVATIONS  # noqa: E402


def session(model_or_path):
    source = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 64-32-16-10 model trained by the real command on digits, in its run directory."""
    out = tmp_path_factory.mktemp("onnx") / "run"
    r = steepest("train", "--dataset", "digits", "--hidden", "32", "16", "--epochs", "4", "--batch-size", "32",
                 "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    return out


def test_every_activation_has_an_operator():
    """Each element-wise activation has its operator; maxout is a Reshape and a ReduceMax (tested below)."""
    assert set(ACTIVATION_OPS) | {"maxout"} == set(ACTIVATIONS)


def test_export_command_matches_steepest_on_digits(run, digits, tmp_path):
    """`steepest export`, the full checker, then onnxruntime on the digits test set: p within 1e-5, same classes."""
    r = steepest("export", run / "model.safetensors", "-o", tmp_path / "digits.onnx", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["opset"] == OPSET and info["outputs"] == ["probabilities", "class"]
    assert info["nodes"] == ["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax", "ArgMax"]
    model = onnx.load(str(tmp_path / "digits.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == IR_VERSION and model.opset_import[0].version == OPSET
    assert all(n.op_type != "Mul" for n in model.graph.node)  # the input scale 1/16 is folded into layer 1
    net, theta, _ = load_model(run / "model.safetensors")
    X = digits.X_test.astype(np.float32)  # raw 0…16, as the model was trained on
    P, c = session(str(tmp_path / "digits.onnx")).run(None, {"input": X})
    assert P.dtype == np.float32 and c.dtype == np.int64
    assert np.abs(P - net.predict_proba(theta, digits.X_test)).max() <= 1e-5
    assert np.array_equal(c, net.predict(theta, digits.X_test))
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["class_names"]) == [str(i) for i in range(10)]


def test_default_output_and_human_summary(run):
    r = steepest("export", run)  # a run directory means its model file; the graph goes beside it
    assert r.returncode == 0, r.stderr
    assert (run / "model.onnx").is_file() and "opset 17" in r.stdout and "'probabilities'" in r.stdout


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_each_activation_and_precision(activation, dtype, digits):
    net = MLP([64, 16, 12, 10], activation=activation, dtype=dtype, input_scale=digits.input_scale)
    theta = train(net, net.init(1), digits.X_train, digits.y_train, optimizer="adam", lr=0.01,
                  batch_size=64, epochs=2).theta
    P, c = session(to_onnx(net, theta)).run(None, {"input": digits.X_test.astype(dtype)})
    tol = 1e-5 if dtype == "float32" else 1e-9
    assert np.abs(P - net.predict_proba(theta, digits.X_test)).max() <= tol
    assert np.array_equal(c, net.predict(theta, digits.X_test))


def test_estimator_with_string_labels_and_a_scaler_folded_in(digits):
    pytest.importorskip("sklearn", reason="the estimator needs scikit-learn")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from steepest.sklearn import MLPClassifier
    from steepest.sklearn import to_onnx as pipeline_to_onnx

    names = np.array([f"digit {i}" for i in range(10)], dtype=object)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden=(32,), epochs=5, batch_size=32))
    pipe.fit(digits.X_train, names[digits.y_train])
    model = pipeline_to_onnx(pipe)
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Relu", "Gemm", "Softmax", "ArgMax", "Gather"]
    P, c = session(model).run(None, {"input": digits.X_test.astype(np.float32)})
    assert np.abs(P - pipe.predict_proba(digits.X_test)).max() <= 1e-5
    assert c.tolist() == pipe.predict(digits.X_test).tolist()


def test_estimator_file_exports_its_labels(digits, tmp_path):
    pytest.importorskip("sklearn", reason="the estimator needs scikit-learn")
    from steepest.sklearn import MLPClassifier

    est = MLPClassifier(hidden=(16,), epochs=3, input_scale=1 / 16).fit(digits.X_train, digits.y_train + 100)
    est.save(tmp_path / "est.safetensors")
    r = steepest("export", tmp_path / "est.safetensors", "-o", tmp_path / "est.onnx")
    assert r.returncode == 0, r.stderr
    _, c = session(str(tmp_path / "est.onnx")).run(None, {"input": digits.X_test.astype(np.float32)})
    assert np.array_equal(c, est.predict(digits.X_test))


@pytest.mark.parametrize("data", ["digits", "digits.npz"])
def test_standardised_model_matches_steepest(data, digits, tmp_path):
    """`train --standardize` then `export`: μ and σ folded into layer 1 (no Sub/Div nodes), and onnxruntime
    on the raw digits test set gives steepest's probabilities within 1e-5 and every class.

    ``digits`` has input scale 1/16 (so A_0 = (x/16 − μ)/σ); the same pixels as float32 in a .npz
    have input scale 1, the standardisation alone."""
    dataset = "digits"
    if data == "digits.npz":
        dataset = tmp_path / "digits.npz"
        np.savez(dataset, X=digits.X_train.astype(np.float32), y=digits.y_train,
                 X_test=digits.X_test.astype(np.float32), y_test=digits.y_test)
    run = tmp_path / "run"
    r = steepest("train", "--dataset", dataset, "--standardize", "--hidden", "32", "16", "--epochs", "4",
                 "--batch-size", "32", "--out", run, "--quiet")
    assert r.returncode == 0, r.stderr
    net, theta, _ = load_model(run / "model.safetensors")
    assert net.input_mean is not None and net.input_scale == (digits.input_scale if data == "digits" else 1.0)
    r = steepest("export", run, "-o", tmp_path / "std.onnx", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["nodes"] == ["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax", "ArgMax"]
    P, c = session(str(tmp_path / "std.onnx")).run(None, {"input": digits.X_test.astype(np.float32)})
    assert np.abs(P - net.predict_proba(theta, digits.X_test)).max() <= 1e-5
    assert np.array_equal(c, net.predict(theta, digits.X_test))
    plain = MLP(**{**net.config(), "input_mean": None, "input_std": None})  # the folding is not a no-op
    assert not np.array_equal(plain.predict(theta, digits.X_test), c)
    said = steepest("export", run, "-o", tmp_path / "std2.onnx")  # and the summary says it is folded in
    assert "and the standardisation (x − μ)/σ folded in" in said.stdout, said.stdout


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_input_scale_and_standardisation_folded_together(dtype, digits):
    """An input scale that is neither 1 nor the dataset's (0.3) with a standardisation of x·s."""
    from steepest.network import standardisation

    mean, std = standardisation(digits.X_train, 0.3)
    net = MLP([64, 24, 10], activation="tanh", dtype=dtype, input_scale=0.3, input_mean=mean, input_std=std)
    theta = train(net, net.init(2), digits.X_train, digits.y_train, optimizer="adam", lr=0.01,
                  batch_size=64, epochs=3).theta
    model = to_onnx(net, theta)
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Tanh", "Gemm", "Softmax", "ArgMax"]
    P, c = session(model).run(None, {"input": digits.X_test.astype(dtype)})
    tol = 1e-5 if dtype == "float32" else 1e-9
    assert np.abs(P - net.predict_proba(theta, digits.X_test)).max() <= tol
    assert np.array_equal(c, net.predict(theta, digits.X_test))


def one_line_error(r):
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("steepest: error: ") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    return r.stderr


def test_bad_input_is_one_line_and_exit_2(run, tmp_path, readonly_dir):
    model = run / "model.safetensors"
    assert "no such file" in one_line_error(steepest("export", tmp_path / "missing.safetensors", "-o", tmp_path / "m.onnx"))
    (tmp_path / "notes.txt").write_text("not a model")
    assert "not a steepest model file" in one_line_error(steepest("export", tmp_path / "notes.txt", "-o",
                                                                  tmp_path / "m.onnx"))
    assert "cannot write" in one_line_error(steepest("export", model, "-o", readonly_dir / "m.onnx"))
    assert "is a directory" in one_line_error(steepest("export", model, "-o", tmp_path))
    assert "cannot write" in one_line_error(steepest("export", model, "-o", tmp_path / "no" / "such" / "m.onnx"))
    assert "--dtype" in one_line_error(steepest("export", model, "--dtype", "float16"))
    assert sorted(p.name for p in readonly_dir.iterdir()) == ["keep.txt"] and not list(tmp_path.glob("*.onnx"))


def _model_with_architecture(src, dst, **changes):
    """A copy of the model file ``src``, written by steepest's own io functions, its architecture changed."""
    from steepest.io import MODEL_FORMAT, read_safetensors
    from steepest.io.tensors import _encode, _save

    tensors, meta = read_safetensors(src)
    meta["architecture"] = {**meta["architecture"], **changes}
    return _save(dst, tensors, _encode(MODEL_FORMAT, meta))


@pytest.mark.parametrize("changes, says", [
    ({"activation": ["swish", "relu"]}, "unknown activation 'swish'"),
    ({"activation": ["relu", "gelu"]}, "unknown activation 'gelu'"),
    ({"dtype": "float16"}, "dtype"),
    ({"dtype": "bfloat16"}, "dtype"),
], ids=["swish", "gelu", "float16", "bfloat16"])
def test_unsupported_model_is_one_line_and_writes_nothing(run, tmp_path, changes, says):
    """A model file naming an activation or a precision the exporter cannot express: exit 2, no graph."""
    bad = _model_with_architecture(run / "model.safetensors", tmp_path / "odd.safetensors", **changes)
    out = tmp_path / "out" / "odd.onnx"
    out.parent.mkdir()
    line = one_line_error(steepest("export", bad, "-o", out))
    assert says in line and "; " in line
    assert not out.exists() and list(out.parent.iterdir()) == []  # no graph, no temporary file
    assert not (tmp_path / "odd.onnx").exists()  # nor one beside the model


def test_unsupported_precision_or_activation_from_the_library(digits):
    """The exporter's own checks, for callers of to_onnx: a dtype no graph holds, an activation without an operator."""
    from steepest.errors import ConfigError

    net = MLP([64, 8, 10], input_scale=digits.input_scale)
    theta = net.init(0)
    with pytest.raises(ConfigError, match="float32 or float64, not float16"):
        to_onnx(net, theta, dtype="float16")
    net.activations = ("swish",)  # as a future activation without an ONNX operator would look
    with pytest.raises(ConfigError, match="activation swish has no ONNX export yet; exportable: relu"):
        to_onnx(net, theta)


@pytest.mark.slow
def test_full_mnist_test_set(real_data_dir, tmp_path):
    """The issue's promise on real MNIST: every class the same, probabilities within 1e-5."""
    out = tmp_path / "run"
    r = steepest("train", "--dataset", "mnist", "--hidden", "64", "--epochs", "1", "--out", out, "--quiet",
                 env={"STEEPEST_DATA": real_data_dir})
    assert r.returncode == 0, r.stderr
    assert steepest("export", out, "-o", tmp_path / "mnist.onnx").returncode == 0
    ds = load_dataset("mnist", data_dir=real_data_dir, download=False)
    net, theta, _ = load_model(out / "model.safetensors")
    P, c = session(str(tmp_path / "mnist.onnx")).run(None, {"input": ds.X_test.reshape(len(ds.X_test), -1).astype(np.float32)})
    assert np.abs(P - net.predict_proba(theta, ds.X_test)).max() <= 1e-5
    assert np.array_equal(c, net.predict(theta, ds.X_test))


def test_without_onnx_installed_the_command_says_what_to_install(run, tmp_path):
    """onnx made unimportable in a real process (``sys.modules["onnx"] = None``): one line, exit 2."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['onnx'] = None; from steepest.cli import main; "
            f"sys.exit(main(['export', {str(run)!r}, '-o', {str(tmp_path / 'm.onnx')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'steepest[onnx]'" in one_line_error(r) and not (tmp_path / "m.onnx").exists()
