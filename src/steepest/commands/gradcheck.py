"""``steepest gradcheck``: backpropagation against central finite differences, layer by layer."""

from __future__ import annotations

import argparse

from steepest.commands._common import Output, add_json_flag

HELP = "check backpropagation against finite differences"
EPILOG = """\
examples:
  steepest gradcheck --hidden 16 8 --activation tanh
  steepest gradcheck --hidden 32 --activation relu --inputs 50 --classes 10 --l2 0.01 --json
  steepest gradcheck --hidden 16 8 --dropout 0.2 0.5 0.5 --label-smoothing 0.1   # through a fixed mask
  steepest gradcheck --hidden 12 8 --activation maxout --pieces 3

Exit status 1 when any relative error is at or above --threshold.
"""


def add_parser(subparsers):
    from steepest.commands import _limits as L
    p = subparsers.add_parser("gradcheck", help=HELP, description=HELP + " (in float64, random data).",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=L.Count(1, 10_000), nargs="*", default=[16, 8], metavar="N", help="hidden widths (default 16 8)")
    p.add_argument("--activation", nargs="+", default=["tanh"], metavar="NAME",
                   help="relu, leaky_relu, sigmoid, tanh or maxout; one, or one per hidden layer (default tanh)")
    p.add_argument("--pieces", type=L.Count(2, 64), metavar="K", help="linear pieces per maxout unit (default 2)")
    p.add_argument("--inputs", type=L.Count(1, 10_000), default=20, metavar="D", help="input size (default 20)")
    p.add_argument("--classes", type=L.Count(1, 10_000), default=5, metavar="K", help="number of classes (default 5)")
    p.add_argument("--samples", type=L.Count(1, 10_000), default=8, metavar="N", help="random samples (default 8)")
    p.add_argument("--l2", type=L.Real(0, 1e6), default=0.0, metavar="λ", help="L2 coefficient (default 0)")
    p.add_argument("--dropout", type=L.Real(0, 0.99), nargs="+", metavar="P", help="drop rates of the input and "
                   "each hidden layer; backprop is checked through one fixed mask")
    p.add_argument("--label-smoothing", type=L.Real(0, 0.99), default=0.0, metavar="ε",
                   help="label smoothing (default 0)")
    p.add_argument("--h", type=L.Real(0, 1, open_lo=True), default=1e-6, help="finite-difference step (default 1e-6)")
    p.add_argument("--max-per-block", type=L.Count(1, L.MAX_SEED), metavar="N", help="check at most N coordinates of each W and b")
    p.add_argument("--threshold", type=L.Real(0, 1e6, open_lo=True), default=1e-6, help="largest relative error allowed (default 1e-6)")
    p.add_argument("--seed", type=L.SEED, default=0, help="seeds θ, the data and the sampled coordinates")
    add_json_flag(p)
    return p


def run(args) -> int:
    import numpy as np

    from steepest.errors import ConfigError
    from steepest.finite_diff import gradcheck
    from steepest.network import MLP

    for name in ("inputs", "classes", "samples"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if not args.h > 0 or not args.threshold > 0:
        raise ConfigError("--h and --threshold must be positive numbers")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    if args.max_per_block is not None and args.max_per_block < 1:
        raise ConfigError(f"--max-per-block must be a positive integer, got {args.max_per_block}")
    act = args.activation[0] if len(args.activation) == 1 else args.activation
    from steepest.commands._limits import check_pieces

    check_pieces(args.pieces, args.activation)
    _check_cost([args.inputs, *args.hidden, args.classes], args.samples, args.max_per_block, act, args.pieces)
    net = MLP([args.inputs, *args.hidden, args.classes], activation=act, dtype="float64", l2=args.l2,
              dropout=args.dropout, label_smoothing=args.label_smoothing, pieces=args.pieces)
    rng = np.random.default_rng(args.seed)
    theta = net.init(rng, bias="random")  # random biases: their gradients are checked too
    X = rng.normal(size=(args.samples, args.inputs))
    y = rng.integers(0, args.classes, args.samples)
    from steepest.regularise import Dropout
    masks = Dropout(net, args.seed).masks(0, args.samples) if net.dropout else None
    r = gradcheck(net, theta, X, y, h=args.h, max_per_block=args.max_per_block, seed=args.seed,
                  threshold=args.threshold, masks=masks)
    out = Output(args.json)
    if args.json:
        out.emit({"network": list(net.sizes), "activation": list(net.activations), "pieces": net.pieces,
                  "errors": r.errors,
                  "overall": r.overall, "threshold": r.threshold, "n_checked": r.n_checked, "ok": r.ok})
    else:
        print(f"gradient check of {net.architecture}, {net.n_params} parameters, "
              f"{args.samples} samples, h = {args.h:g}")
        print(f"{'block':>10}  relative error")
        for name, err in r.errors.items():
            print(f"{name:>10}  {err:.3e}  {'ok' if err < r.threshold else 'FAILED'}")
        print(f"{'overall':>10}  {r.overall:.3e}  {'ok' if r.ok else 'FAILED'} "
              f"(threshold {r.threshold:g}, {r.n_checked} coordinates)")
    return 0 if r.ok else 1


#: longest check the command starts without being asked to narrow it, in estimated seconds
MAX_SECONDS = 60.0


def _check_cost(sizes, samples, max_per_block, activation="relu", pieces=None) -> None:
    """Refuse a check estimated to take more than :data:`MAX_SECONDS`.

    Each checked coordinate costs two forward passes, ≈ 2 · samples · p multiply-adds each for
    p parameters, plus ~30 µs of per-layer overhead; at 1 GFLOP/s (float64, one core)
    seconds ≈ checked · 2 · (2 · samples · p / 1e9 + 3e-5 · layers).
    """
    from steepest.commands._limits import check_network
    from steepest.errors import ConfigError
    from steepest.network import MLP

    check_network(sizes, activation=activation, pieces=pieces)
    blocks = [(l.n_in * l.n_out, l.n_out) for l in MLP(sizes, activation=activation, pieces=pieces).layers]
    p = sum(w + b for w, b in blocks)
    checked = sum(min(n, max_per_block or n) for wb in blocks for n in wb)
    seconds = checked * 2 * (2 * samples * p / 1e9 + 3e-5 * len(blocks))
    if seconds > MAX_SECONDS:
        raise ConfigError(f"checking {checked:,} coordinates of a {p:,}-parameter network would take about "
                          f"{seconds:,.0f} s, more than the limit of {MAX_SECONDS:g} s; give --max-per-block "
                          "(e.g. 20), fewer --samples or a smaller network")
