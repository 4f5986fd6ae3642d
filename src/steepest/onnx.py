"""ONNX export: a trained network as a graph of standard operators, for onnxruntime and friends.

The graph computes exactly what :meth:`steepest.MLP.predict_proba` computes, from the *raw*
inputs the model was trained on (pixels 0…255, digits 0…16, or standardised features):

    a_0 = (x − μ) ⊙ s / σ                      input scaling and standardisation …
    z_l = a_{l−1} W_l + b_l                    one ``Gemm`` per layer
    a_l = f(z_l)                               ``Relu``, ``LeakyRelu`` (α = 0.01), ``Sigmoid`` or ``Tanh``
    a_l[:, j] = max_p z_l[:, j·k + p]          maxout: ``Reshape`` to (N, units, k), ``ReduceMax`` over k
    p   = softmax(z_L)                         ``Softmax`` (axis 1)         → output ``probabilities``
    c   = argmax_j z_Lj                        ``ArgMax`` (first maximum)    → output ``class``

… where the scaling is folded into the first layer rather than computed: with ``s`` the model's
``input_scale`` and, optionally, a standardisation (mean μ, scale σ, as a scikit-learn
``StandardScaler`` has), ``a_0 W_1 + b_1 = x W_1' + b_1'`` with

    W_1' = diag(s / σ) W_1,      b_1' = b_1 − (μ ⊙ s / σ) W_1

(computed in float64, stored in the model's dtype). With ``labels`` the ``class`` output holds
``labels[c]`` (a ``Gather``; strings allowed) instead of the index.

Opset 17 with IR version 8: what onnxruntime ≥ 1.14 runs (steepest's ``onnx`` extra asks for
that); nothing in the graph needs a newer operator version.
"""

from __future__ import annotations

import json

import numpy as np

from .errors import ConfigError

#: operator set and IR version of the exported graphs (onnxruntime ≥ 1.14 runs both)
OPSET = 17
IR_VERSION = 8
#: steepest activation → ONNX operator (and its attributes)
ACTIVATION_OPS = {"relu": ("Relu", {}), "leaky_relu": ("LeakyRelu", {"alpha": 0.01}),
                  "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {})}


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package; install it with "
                          "`pip install 'steepest[onnx]'` (onnx and onnxruntime)") from None
    return onnx


def folded_first_layer(W, b, input_scale=1.0, mean=None, std=None):
    """``(W_1', b_1')``: the first layer absorbing ``a_0 = (x − μ) ⊙ s / σ`` (see the module docstring).

    ``W (n_0, n_1)``, ``b (n_1,)``; ``mean`` and ``std`` of shape ``(n_0,)`` or None (μ = 0, σ = 1).
    Returns float64 arrays.
    """
    W64, b64 = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = W64.shape[0]
    factor = np.full(d, float(input_scale))
    if std is not None:
        std = np.asarray(std, dtype=np.float64).reshape(-1)
        if std.shape != (d,) or not np.all(np.isfinite(std)) or np.any(std <= 0):
            raise ConfigError(f"the standardisation scale must be {d} positive numbers, got shape {std.shape}")
        factor = factor / std
    Wf = factor[:, None] * W64
    bf = b64.copy()
    if mean is not None:
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        if mean.shape != (d,) or not np.all(np.isfinite(mean)):
            raise ConfigError(f"the standardisation mean must be {d} finite numbers, got shape {mean.shape}")
        bf -= mean @ Wf
    return Wf, bf


def _labels_tensor(labels, k):
    labels = np.asarray(labels)
    if labels.shape != (k,):
        raise ConfigError(f"labels must name the {k} classes of the network, got shape {labels.shape}")
    if labels.dtype.kind in "iub":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f":
        return labels.astype(np.float64)
    if labels.dtype.kind in "UO" and all(isinstance(v, str) for v in labels.tolist()):
        return np.array(labels.tolist(), dtype=object)
    raise ConfigError(f"class labels of dtype {labels.dtype} cannot go into an ONNX graph; "
                      "use integers, floats or strings")


def _nodes(net, theta, dtype, mean, std):
    """Initializers and nodes from the input to the logits; returns them and the logits' name."""
    from onnx import helper, numpy_helper

    inits, nodes, x = [], [], "input"
    hidden = net.layers[:-1]
    for l, (W, b) in enumerate(net.unpack(theta)):
        if l == 0:
            W, b = folded_first_layer(W, b, net.input_scale, mean, std)
        n = l + 1
        inits += [numpy_helper.from_array(np.asarray(W, dtype=dtype), f"W{n}"),
                  numpy_helper.from_array(np.asarray(b, dtype=dtype), f"b{n}")]
        z = f"z{n}" if l < len(net.layers) - 1 else "logits"
        nodes.append(helper.make_node("Gemm", [x, f"W{n}", f"b{n}"], [z], name=f"layer{n}"))
        if l < len(hidden) and hidden[l].pieces > 1:  # the k pieces of each unit side by side: their max
            inits.append(numpy_helper.from_array(np.array([0, hidden[l].units, hidden[l].pieces], np.int64),
                                                 f"pieces{n}"))
            nodes.append(helper.make_node("Reshape", [z, f"pieces{n}"], [f"p{n}"], name=f"pieces{n}"))
            x = f"a{n}"
            nodes.append(helper.make_node("ReduceMax", [f"p{n}"], [x], name=f"maxout{n}", axes=[2], keepdims=0))
        elif l < len(hidden):
            op, attrs = ACTIVATION_OPS[net.activations[l]]
            x = f"a{n}"
            nodes.append(helper.make_node(op, [z], [x], name=f"{net.activations[l]}{n}", **attrs))
    return inits, nodes, "logits"


def to_onnx(net, theta, *, labels=None, mean=None, std=None, dtype=None, metadata=None,
            name="steepest_mlp"):
    """The network ``net`` at ``theta`` as an ``onnx.ModelProto`` (checked with the full checker).

    Parameters
    ----------
    net : MLP;  theta : ndarray, shape (n_params,)
    labels : array of shape (n_L,), optional
        What the ``class`` output reports for each class (default: the index 0 … n_L − 1, int64).
    mean, std : arrays of shape (n_0,), optional
        A standardisation ``(x − μ)/σ`` applied to raw inputs before the network, folded in.
    dtype : {"float32", "float64"}, optional
        Precision of the graph (default: the network's).
    metadata : dict, optional
        More ``metadata_props`` (values JSON-encoded unless strings).

    Raises
    ------
    ConfigError
        onnx not installed, an activation ONNX has no operator for here, or bad labels/mean/std.
    """
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    net.check_theta(theta)
    dtype = np.dtype(dtype or net.dtype)
    if str(dtype) not in ("float32", "float64"):
        raise ConfigError(f"an exported graph computes in float32 or float64, not {dtype}")
    missing = sorted(set(net.activations) - set(ACTIVATION_OPS) - {"maxout"})
    if missing:
        raise ConfigError(f"activation {', '.join(missing)} has no ONNX export yet; "
                          f"exportable: {', '.join(ACTIVATION_OPS)}")
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    d, k = net.sizes[0], net.sizes[-1]
    if mean is None and std is None and getattr(net, "input_mean", None) is not None:
        # the network's own standardisation, A_0 = (x·s − μ)/σ = (x − μ/s)·s/σ
        mean, std = net.input_mean / net.input_scale, net.input_std
    inits, nodes, logits = _nodes(net, theta, dtype, mean, std)
    nodes.append(helper.make_node("Softmax", [logits], ["probabilities"], name="softmax", axis=1))
    index = "class" if labels is None else "class_index"
    nodes.append(helper.make_node("ArgMax", [logits], [index], name="argmax", axis=1, keepdims=0))
    class_type = TensorProto.INT64
    if labels is not None:
        table = _labels_tensor(labels, k)
        inits.append(numpy_helper.from_array(table, "labels"))
        class_type = helper.np_dtype_to_tensor_dtype(table.dtype) if table.dtype != object else TensorProto.STRING
        nodes.append(helper.make_node("Gather", ["labels", index], ["class"], name="label", axis=0))
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("input", elem, ["N", d])],
        [helper.make_tensor_value_info("probabilities", elem, ["N", k]),
         helper.make_tensor_value_info("class", class_type, ["N"])], initializer=inits)
    from . import __version__

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="steepest", producer_version=__version__,
                              doc_string=f"steepest MLP {net.architecture}; input: raw features as trained on")
    props = {"architecture": net.config(), **(metadata or {})}
    helper.set_model_props(model, {key: v if isinstance(v, str) else json.dumps(v) for key, v in props.items()})
    onnx.checker.check_model(model, full_check=True)
    return model


def save_onnx(model, path):
    """Write an ``onnx.ModelProto`` to ``path`` atomically (see :func:`steepest.io.atomic_write`)."""
    from .io import atomic_write

    return atomic_write(path, model.SerializeToString())


def export_model_file(model_path, out_path, dtype=None):
    """Read a steepest model file, write its ONNX graph to ``out_path``; returns ``(path, model, net)``.

    The model file's ``input_scale`` is folded in and its class names (if any) go into the graph's
    metadata. The ``class`` output is the class index, or the estimator's label for a file written
    by :meth:`steepest.sklearn.MLPClassifier.save` (its ``classes_``).
    """
    from .io import load_model

    net, theta, meta = load_model(model_path)
    extra = {}
    names = (meta.get("dataset") or {}).get("class_names")
    if names:
        extra["class_names"] = names
    classes = (meta.get("sklearn") or {}).get("classes")
    model = to_onnx(net, theta, dtype=dtype, metadata=extra, labels=classes)
    return save_onnx(model, out_path), model, net
