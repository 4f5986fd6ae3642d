"""``steepest export MODEL -o model.onnx``: the trained network as an ONNX graph (:mod:`steepest.onnx`)."""

from __future__ import annotations

import argparse

from steepest.commands._common import Output, add_json_flag

HELP = "export a trained model to ONNX, for onnxruntime and other runtimes"
EPILOG = """\
examples:
  steepest export runs/mnist/model.safetensors -o mnist.onnx
  steepest export runs/mnist -o mnist64.onnx --dtype float64 --json

The graph takes raw inputs as the model was trained on (MNIST pixels 0…255: the input scale and a
--standardize model's statistics are folded into the first layer) in input "input" (N, d) and gives
"probabilities" (N, k) and "class" (N,). Gemm, Relu/LeakyRelu/Sigmoid/Tanh (maxout: Reshape and
ReduceMax), Softmax and ArgMax nodes, opset 17, IR 8
(onnxruntime ≥ 1.14). Needs `pip install 'steepest[onnx]'`.
"""


def add_parser(subparsers):
    p = subparsers.add_parser("export", help=HELP, description=HELP + ".", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a model file written by `steepest train` (or its run directory)")
    p.add_argument("-o", "--output", metavar="FILE.onnx", help="where to write the graph "
                   "(default: MODEL with the suffix .onnx)")
    p.add_argument("--dtype", choices=("float32", "float64"), help="precision of the graph (default: the model's)")
    add_json_flag(p)
    return p


def run(args) -> int:
    from pathlib import Path

    from steepest.commands._common import describe_net, model_path
    from steepest.errors import ConfigError
    from steepest.onnx import IR_VERSION, OPSET, export_model_file

    source = model_path(args.model)
    target = Path(args.output) if args.output else source.with_suffix(".onnx")
    if target.is_dir():
        raise ConfigError(f"-o {target} is a directory; give the path of the .onnx file to write")
    if target.resolve() == source.resolve():
        raise ConfigError(f"-o {target} is the model file itself; give another path")
    path, model, net = export_model_file(source, target, dtype=args.dtype)
    graph = model.graph
    inp = graph.input[0]
    dtype = args.dtype or str(net.dtype)
    nodes = [n.op_type for n in graph.node]
    if args.json:
        Output(True).emit({"model": str(source), "onnx": str(path), "opset": OPSET, "ir_version": IR_VERSION,
                           "input": inp.name, "dtype": dtype, "input_scale": net.input_scale,
                           "outputs": [o.name for o in graph.output], "nodes": nodes,
                           "bytes": path.stat().st_size})
        return 0
    print(f"model {source}: {describe_net(net)}")
    print(f"wrote {path} ({path.stat().st_size:,} bytes): opset {OPSET}, IR {IR_VERSION}, {dtype}, "
          f"{len(nodes)} nodes ({' '.join(nodes)})")
    folded = f"×{net.input_scale:g}" + (" and the standardisation (x − μ)/σ" if net.input_mean is not None else "")
    print(f"input '{inp.name}' (N, {net.sizes[0]}): raw features as trained on ({folded} folded "
          f"in); outputs 'probabilities' (N, {net.sizes[-1]}) and 'class' (N,)")
    return 0
