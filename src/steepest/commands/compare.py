"""``steepest compare``: several optimizers from the same θ₀ with an equal budget; plots and a table."""

from __future__ import annotations

import argparse
import contextlib

from steepest.commands._common import Output, add_json_flag
from steepest.registry import ACTIVATIONS, INITS, OPTIMIZERS

HELP = "train several optimizers from the same initial θ and compare them"
EPILOG = f"""\
examples:
  steepest compare --dataset digits --out runs/compare-digits
  steepest compare --dataset digits --tune --out runs/compare-digits-tuned
  steepest compare --dataset mnist --samples 120000 --hidden 128 64 --out runs/compare-mnist
  steepest compare --dataset digits --seconds 2 --runs gd sgd:batch=32 adam:batch=32,lr=0.003
  steepest compare --dataset digits --epochs 20 --runs momentum:batch=32 momentum:batch=32,dropout=0.2/0.5/0.5

A run is NAME[:key=value,...]: NAME one of {", ".join(OPTIMIZERS)}; keys lr,
batch (an integer or full), label, dropout (rates of the input and each hidden layer joined by /),
max_norm, and the optimizer's options (momentum=0.8, beta1=0.9, ...).
Default runs: gd, sgd:batch=16,lr=0.05, sgd:batch=128, momentum:batch=128, nesterov:batch=128,
adam:batch=128. The default budget is 20 epochs for every run: the same samples for each, and
20 steps for full-batch GD (one step per pass). --tune tries each run's lr × 0.25, 0.5, 1, 2, 4
on a 10% validation split of the training rows (never the test set) and keeps the best.
Writes summary.csv, summary.json, gradient_noise.json and PNG+SVG plots into --out.
"""


def add_parser(subparsers):
    from steepest.commands import _limits as L
    from steepest.commands._viewargs import add_data_args, add_sample_arg

    p = subparsers.add_parser("compare", help=HELP, description=HELP + ".", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(p, default_help="mnist", threads_help="measured on the runs' own steps, as in train")
    p.add_argument("--fallback", metavar="NAME", help="dataset to use instead when --dataset cannot be found "
                   "nor downloaded (e.g. --fallback digits); says so on screen")
    p.add_argument("--hidden", type=L.WIDTH, nargs="*", default=[128, 64], metavar="N",
                   help="hidden layer widths (default 128 64)")
    p.add_argument("--activation", default="relu", choices=ACTIVATIONS,
                   help="hidden activation (default relu)")
    p.add_argument("--pieces", type=L.Count(2, 64), metavar="K", help="linear pieces per maxout unit (default 2)")
    p.add_argument("--init", default=None, choices=INITS,
                   help="weight initialisation (default: he for relu, leaky_relu and maxout, glorot otherwise)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--runs", nargs="+", metavar="SPEC", help="the optimizers to compare (see below)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=L.Count(1, 10**6), metavar="N", help="budget: N passes over the data (default 20)")
    budget.add_argument("--samples", type=L.Count(1, 10**12), metavar="N", help="budget: N rows fed to optimizer steps")
    budget.add_argument("--seconds", type=L.Real(0, 7 * 86400, open_lo=True), metavar="S", help="budget: S seconds of wall time per run")
    p.add_argument("--eps", type=L.Real(0, 1e6, open_lo=True), default=1e-3, metavar="ε",
                   help="stop a run when ‖∇L‖ < ε (drawn on the gradient-norm plot; default 1e-3)")
    p.add_argument("--tune", action="store_true", help="choose each run's learning rate on a validation split "
                   "(lr × 0.25 … 4, each trained under the same budget; costs 5 runs more per run)")
    p.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                   help="with --tune: the share of training rows held out to choose the lr (default 0.1)")
    add_sample_arg(p)
    p.add_argument("--noise-batches", type=L.Count(1, 10**9), nargs="*", default=[1, 4, 16, 64, 256], metavar="B",
                   help="batch sizes for the gradient-noise plot; the whole sample is added (default 1 4 16 64 256)")
    p.add_argument("--noise-draws", type=L.Count(1, 10_000), default=32, metavar="K", help="mini-batches per batch size (default 32)")
    p.add_argument("--seed", type=L.SEED, default=0, help="seeds θ₀, the shuffles and the samples (default 0)")
    p.add_argument("--out", metavar="DIR", help="output directory (default runs/compare-<dataset>-<time>)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_json_flag(p)
    return p


def run(args) -> int:
    import numpy as np

    from steepest.commands._common import blas_threads, describe_net, load_data_or_fallback
    from steepest.commands._limits import check_network, check_pieces
    from steepest.commands._rundir import check_writable, default_out
    from steepest.errors import ConfigError
    from steepest.network import MLP
    from steepest.threads import MeasuredThreads
    from steepest.commands._viewargs import finish, n_samples
    from steepest.viz.common import sample_rows
    from steepest.viz.compare import FEW_STEPS, compare_optimizers, gradient_noise, parse_runs, write_comparison
    from steepest.viz.plots_compare import plot_comparison

    out = Output(args.json, args.quiet)
    for name in ("epochs", "samples", "noise_draws"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {v}")
    if args.seconds is not None and not args.seconds > 0:
        raise ConfigError(f"--seconds must be positive, got {args.seconds}")
    runs = parse_runs(args.runs)                      # checked before any data is loaded
    dataset = args.dataset or "mnist"
    target = args.out or default_out(f"compare-{dataset}")
    check_writable(target)
    if args.tune and not 0 < args.val_fraction < 1:
        raise ConfigError(f"--val-fraction must lie between 0 and 1, got {args.val_fraction}")
    ds = load_data_or_fallback(dataset, args.fallback, out, data_dir=args.data_dir, labels=args.labels,
                               download=args.download)
    check_pieces(args.pieces, args.activation)
    check_network([ds.n_features, *args.hidden, ds.n_classes], activation=args.activation, pieces=args.pieces)
    net = MLP([ds.n_features, *args.hidden, ds.n_classes], activation=args.activation, dtype=args.dtype,
              input_scale=ds.input_scale, pieces=args.pieces)
    theta0 = net.init(args.seed, scheme=args.init)
    out.say(f"data {ds.name}: {len(ds.y_train):,} training samples; network {describe_net(net)}")
    policy = None if args.threads is not None else MeasuredThreads()  # default: the count is measured
    with blas_threads(args.threads), policy.blas.kept() if policy else contextlib.nullcontext():
        comp = compare_optimizers(net, theta0, ds.X_train, ds.y_train, runs, epochs=args.epochs,  # default 20
                                  samples=args.samples, seconds=args.seconds, X_test=ds.X_test, y_test=ds.y_test,
                                  eps=args.eps, seed=args.seed, n_samples=n_samples(args), tune=args.tune,
                                  val_fraction=args.val_fraction,
                                  progress=lambda label: out.say(f"training {label} …"),
                                  listeners=[policy] * (policy is not None))
        comp.threads = policy.record() if policy else {"policy": "fixed", "threads": args.threads}
        Xs, ys, note = sample_rows(ds.X_train, ds.y_train, n_samples(args), args.seed)
        sizes = sorted({b for b in args.noise_batches if 1 <= b < len(ys)} | {len(ys)})
        best = min(comp.runs, key=lambda r: r.summary["train_loss"] if np.isfinite(r.summary["train_loss"]) else np.inf)
        noise = {"θ₀ (initial)": gradient_noise(net, theta0, Xs, ys, sizes, args.noise_draws, args.seed),
                 f"θ after {best.spec.label}": gradient_noise(net, best.theta, Xs, ys, sizes, args.noise_draws,
                                                              args.seed)}
    files = write_comparison(comp, target, noise) + plot_comparison(comp, target, noise, note)
    if not args.json:
        _print_table(comp)
    for r in comp.runs:
        if r.summary["steps"] < FEW_STEPS:
            out.note(f"note: {r.spec.label} took only {r.summary['steps']} step(s) under this budget, so its curves "
                     f"are {r.summary['steps'] + 1} points; give a larger --epochs or --samples to see it descend")
        if (r.summary.get("tuned") or {}).get("at_edge"):
            out.note(f"note: the lr chosen for {r.spec.label}, {r.spec.lr:g}, is at the edge of the grid tried "
                     f"({', '.join(f'{v:g}' for v in r.summary['tuned']['grid'])}); a better one may lie beyond it")
    return finish(out, args, files, {"dataset": ds.name, "out": str(target), "table": comp.table()})


def _print_table(comp):
    """The summary table; time as a ratio to the fastest run's wall time (seconds depend on the machine).

    Wall time, not the loop's step seconds: full-batch GD reuses each epoch's monitoring gradient
    for its next step, so its step seconds leave out most of its work."""
    (k, v), = comp.budget.items()
    tuned = any("tuned" in s for s in comp.table())
    print(f"budget {v:g} {k} per run; loss curves {comp.eval_note}"
          + ("; lr chosen on a validation split" if tuned else ""))
    fastest = min((s["wall_seconds"] for s in comp.table() if s["wall_seconds"] > 0), default=1.0)
    print(f"{'run':<16} {'lr':>7} {'batch':>6} {'μ':>4} {'train loss':>10} {'test acc':>9} {'steps':>7} "
          f"{'samples':>9} {'time':>6}  stop")
    for s in comp.table():
        acc = "—" if s["test_acc"] is None else f"{100 * s['test_acc']:.2f}%"
        mu = "—" if s.get("momentum") is None else f"{s['momentum']:g}"
        print(f"{s['label']:<16} {s['lr']:>7g} {s['batch_size']!s:>6} {mu:>4} {s['train_loss']:>10.4f} {acc:>9} "
              f"{s['steps']:>7} {s['samples']:>9} {s['wall_seconds'] / fastest:>5.1f}×  {s['stop_reason']}")
    print(f"time: each run's wall time over the fastest run's ({fastest:.2f} s), on {comp.machine or 'this machine'}")
