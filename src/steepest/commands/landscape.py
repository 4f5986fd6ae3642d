"""``steepest landscape MODEL [--against MODEL2]``: the loss along θ₀ → θ*, on a random plane, under
optimizer paths, and how flat θ* is — of one model, or of two on the same axes and scale."""

from __future__ import annotations

import argparse

from steepest.commands._common import Output, add_json_flag

HELP = "plot the loss landscape around a trained model"
PARTS = ("line", "plane", "flatness", "trajectories", "probe", "minima", "ravine")
#: the parts that draw a second model (--against) beside MODEL
PAIRED = ("line", "plane", "flatness")
EPILOG = """\
examples:
  steepest landscape runs/digits/model.safetensors --dataset digits --out runs/digits/landscape
  steepest landscape runs/mnist --n-samples 1000 --resolution 31 --parts line plane
  steepest landscape runs/plain --against runs/dropout --parts line plane flatness --out runs/flatness

Parts: line (θ₀ → θ*, train and test), plane (filter-normalised random plane around θ*, contour and
surface), flatness (ΔL(r) = ½[L(θ*+r·d) + L(θ*−r·d)] − L(θ*) along --directions seeded
filter-normalised directions d, the mean at --radius printed), trajectories (GD, SGD and momentum
paths from θ₀ on their PCA plane, trained on the sample), probe (L(θ − α∇L) at θ* and θ₀, the
training lr marked, saying whether it overshoots), minima (f(x) = x⁴ − 3x² + x: GD against momentum
from --toy-x0, and a map of which minimum every start x₀ and momentum μ ends in), ravine (GD
against momentum on ½(u² + κv²), where momentum's advantage is general).
--against MODEL2 draws a second model beside MODEL in the parts line, plane and flatness — the same
sample, the same seeded directions, one axis and one colour scale — and prints both flatness
figures; the other parts are MODEL's alone. θ₀ is re-drawn from the seed and init recorded in the
model. Every loss is evaluated on --n-samples training rows; the plots say so. Writes PNG+SVG and
landscape.json.
"""


def add_parser(subparsers):
    from steepest.commands import _limits as L
    from steepest.commands._viewargs import add_data_args, add_sample_arg

    p = subparsers.add_parser("landscape", help=HELP, description=HELP + ".", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a model file written by `steepest train` (or its run directory)")
    p.add_argument("--against", metavar="MODEL2", help="a second model on the same data (e.g. the same network "
                   "trained with --dropout and --max-norm), drawn beside MODEL in the parts line, plane, flatness")
    add_data_args(p)
    add_sample_arg(p)
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), metavar="PART",
                   help=f"what to draw: {', '.join(PARTS)} (default all)")
    p.add_argument("--alpha-range", type=L.Real(-1e3, 1e3), nargs=2, default=(-0.5, 1.5), metavar=("LO", "HI"),
                   help="α range of the line θ(α) = (1 − α)θ₀ + αθ* (default -0.5 1.5)")
    p.add_argument("--span", type=L.Real(0, 1e3, open_lo=True), default=1.0, help="plane half-width in filter-normalised units (default 1)")
    p.add_argument("--directions", type=L.Count(1, 1000), default=8, metavar="K",
                   help="random directions ΔL is averaged over (part flatness; default 8)")
    p.add_argument("--radius", type=L.Real(0, 1e3, open_lo=True), default=0.5, metavar="R",
                   help="filter-normalised distance of the printed ΔL(R) (default 0.5)")
    p.add_argument("--resolution", type=L.Count(3, 201), default=25, metavar="N", help="grid points per plane axis (default 25)")
    p.add_argument("--steps", type=L.Count(1, 100_000), default=200, metavar="N", help="optimizer steps of each path (default 200)")
    p.add_argument("--runs", nargs="+", metavar="SPEC", help="the paths, as in `steepest compare --runs` "
                   "(default gd:lr=0.5 sgd:batch=64,lr=0.1 momentum:batch=full,lr=0.1)")
    p.add_argument("--probe-lr", type=L.LR, metavar="η", help="learning rate marked on the step probe "
                   "(default: the model's training lr)")
    toy = p.add_argument_group("the toy functions (parts minima and ravine)")
    toy.add_argument("--toy-x0", type=L.Real(-1e3, 1e3), default=2.0, metavar="X", help="start of the two double-well runs "
                     "(default 2)")
    toy.add_argument("--toy-lr", type=L.LR, default=0.01, metavar="η", help="their learning rate (default 0.01)")
    toy.add_argument("--toy-momentum", type=L.Real(0, 1), default=0.9, metavar="μ", help="their momentum (default 0.9)")
    toy.add_argument("--toy-steps", type=L.Count(1, 10**6), default=300, metavar="N", help="their steps (default 300)")
    toy.add_argument("--ravine-kappa", type=L.Real(1, 1e8), default=100.0, metavar="κ",
                     help="the ravine's condition number (default 100)")
    toy.add_argument("--ravine-lr", type=L.LR, default=0.018, metavar="η",
                     help="learning rate on the ravine, below 2/κ for GD to converge (default 0.018)")
    toy.add_argument("--ravine-momentum", type=L.Real(0, 1), default=0.8, metavar="μ", help="momentum on the ravine "
                     "(default 0.8)")
    p.add_argument("--seed", type=L.SEED, default=0, help="seeds the sample, the directions and the paths (default 0)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: MODEL's directory/landscape)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_json_flag(p)
    return p


def run(args) -> int:
    import numpy as np

    from steepest.commands._common import blas_threads
    from steepest.commands._rundir import check_writable
    from steepest.errors import ConfigError
    from steepest.viz import landscape as L
    from steepest.viz import plots_landscape as P
    from steepest.commands._viewargs import (finish, initial_theta, load_model_and_data, n_samples, out_dir,
                                             training_record)
    from steepest.viz.common import sample_rows, write_json
    from steepest.viz.compare import parse_runs

    out = Output(args.json, args.quiet)
    if args.resolution < 3 or args.steps < 1 or not args.span > 0 or args.directions < 1 or not args.radius > 0:
        raise ConfigError("--resolution must be >= 3, --steps >= 1, --directions >= 1, and --span and --radius > 0")
    if not (args.toy_lr > 0 and args.ravine_lr > 0 and args.ravine_kappa >= 1 and args.toy_steps >= 1
            and 0 <= args.toy_momentum < 1 and 0 <= args.ravine_momentum < 1):
        raise ConfigError("--toy-lr and --ravine-lr must be > 0, --ravine-kappa >= 1, --toy-steps >= 1, and the "
                          "momenta in [0, 1)")
    lo, hi = args.alpha_range
    if not lo < 0 < 1 < hi:
        raise ConfigError(f"--alpha-range must contain 0 and 1 (θ₀ and θ*), e.g. -0.5 1.5; got {lo} {hi}")
    runs = parse_runs(args.runs or L.TRAJECTORY_RUNS)
    if args.against and not set(args.parts) & set(PAIRED):
        raise ConfigError(f"--against draws a second model in the parts {', '.join(PAIRED)}; ask for at least one")
    path, net, theta, meta, ds = load_model_and_data(args, out)
    second = _load_against(args, out, ds) if args.against else None
    target = out_dir(args, path, "landscape")
    check_writable(target)
    theta0, seed0 = initial_theta(net, meta)
    lr = args.probe_lr or float(training_record(meta).get("lr") or 0.1)
    ns = n_samples(args)
    files, numbers, extra = [], {"model": str(path), "dataset": ds.name, "theta0_seed": seed0}, {"out": str(target)}
    cache = {}  # MODEL's line and plane, drawn again beside MODEL2's
    with blas_threads(args.threads):
        from steepest.io import machine

        numbers["machine"] = machine()
        if "line" in args.parts:
            out.say("line θ₀ → θ* …")
            line = L.line_1d(net, theta0, theta, ds.X_train, ds.y_train, ds.X_test, ds.y_test, _alphas(args), ns,
                             args.seed)
            files += P.plot_line_1d(line, target)
            cache["line"] = line
            numbers["line"] = {"alpha": line.alphas, "train_loss": line.train_loss, "test_loss": line.test_loss,
                               "train_acc": line.train_acc, "test_acc": line.test_acc, "note": line.note}
        if "plane" in args.parts:
            out.say(f"random plane, {args.resolution}×{args.resolution} points …")
            plane = L.random_plane(net, theta, ds.X_train, ds.y_train, args.span, args.resolution, ns, args.seed)
            files += P.plot_plane(plane, target)
            cache["plane"] = plane
            numbers["plane"] = {"a": plane.alphas, "b": plane.betas, "loss": plane.loss, "note": plane.note}
        if second is not None or "flatness" in args.parts:
            models = {_label(path, net, second and second[0]): (net, theta, theta0)}
            if second is not None:
                label = _label(second[0], second[1], path)
                models[label if label not in models else f"{label} [2]"] = second[1:]
            extra.update(_paired(args, out, models, ds, ns, numbers, target, files, cache))
        if "trajectories" in args.parts:
            Xs, ys, note = sample_rows(ds.X_train, ds.y_train, ns, args.seed)
            out.say(f"paths of {', '.join(r.label for r in runs)}, {args.steps} steps each …")
            paths = L.train_paths(net, theta0, Xs, ys, runs, args.steps, max_points=60, seed=args.seed)
            pca, tplane = L.trajectory_landscape(net, paths, Xs, ys, resolution=args.resolution, n_samples=None)
            tplane.note = f"paths trained and loss evaluated {note}"
            files += P.plot_trajectories(pca, tplane, target, {r.label: r.legend for r in runs})
            numbers["trajectories"] = {"explained": pca.explained, "coords": pca.coords, "a": tplane.alphas,
                                       "b": tplane.betas, "loss": tplane.loss, "note": tplane.note}
        if "probe" in args.parts:
            for at, th, stem in (("θ*", theta, "step_probe"), ("θ₀", theta0, "step_probe_init")):
                probe = L.step_probe(net, th, ds.X_train, ds.y_train, lr, n_samples=ns, seed=args.seed)
                probe.note = f"at {at}, {probe.note}"
                files += P.plot_step_probe(probe, target, stem)
                out.say(f"step probe at {at}: {probe.verdict}")
                numbers[stem] = {"alpha": probe.alphas, "loss": probe.loss, "first_order": probe.first_order,
                                 "lr": lr, "best_alpha": probe.best_alpha, "at_edge": probe.at_edge,
                                 "verdict": probe.verdict, "note": probe.note}
    files += _toys(args, numbers, target)
    files.append(write_json(target / "landscape.json", numbers))
    return finish(out, args, files, extra)


def _alphas(args):
    """The line's α grid: steps of about 0.05 over --alpha-range, holding exactly 0 and 1."""
    import numpy as np

    lo, hi = args.alpha_range
    alphas = np.round(np.linspace(lo, hi, max(11, int(round((hi - lo) / 0.05)) + 1)), 12)
    return np.unique(np.concatenate([alphas, [0.0, 1.0]]))


def _load_against(args, out, ds):
    """``(path, net, θ*, θ₀)`` of --against, checked against MODEL's data."""
    from steepest.commands._common import check_against_model, describe_net, model_path
    from steepest.commands._viewargs import initial_theta
    from steepest.io import load_model

    path = model_path(args.against)
    net, theta, meta = load_model(path)
    trained = (meta.get("dataset") or {}).get("name")
    check_against_model(net, ds.X_train, ds.y_train, what=f"{ds.name} (train split)",
                        trained_on=trained if trained != ds.name else None)
    out.say(f"against {path}: {describe_net(net)}" + (f", trained on {trained}" if trained else ""))
    if trained and trained != ds.name:
        out.note(f"warning: {path} was trained on {trained}, not {ds.name}; its minimum is measured on {ds.name}")
    return (path, net, theta, initial_theta(net, meta)[0])


def _label(path, net, other=None) -> str:
    """``"run-dir (dropout 0.2/0.5/0.5, max-norm 3)"``: the run directory, or the file when the two share it."""
    from pathlib import Path

    from steepest.commands._common import regularisation

    path = Path(path)
    name = path.parent.name or str(path)
    if other is not None and Path(other).parent.name == path.parent.name:
        name = str(path)
    return f"{name} ({', '.join(regularisation(net)) or 'no dropout, no max-norm'})"


def _paired(args, out, models, ds, ns, numbers, target, files, cache) -> dict:
    """Part flatness of each model in ``models`` (label → (net, θ*, θ₀)); with two, the parts line and
    plane of both on one axis and one colour scale (the first model's from ``cache`` when drawn already).
    Appends to ``files`` and ``numbers``; returns the flatness summary for --json."""
    import numpy as np

    from steepest.metrics import evaluate
    from steepest.viz import flatness as F
    from steepest.viz import landscape as L
    from steepest.viz import plots_flatness as P

    nets = [m[0] for m in models.values()]
    if len({(n.l2, getattr(n, "label_smoothing", 0.0)) for n in nets}) > 1:
        out.note("warning: the models' losses differ in their L2 term or label smoothing, so their ΔL measure "
                 "different functions")
    if len(models) > 1 and "line" in args.parts:
        out.say("lines θ₀ → θ* of both models …")
        lines = {k: cache["line"] if i == 0 and "line" in cache else
                 L.line_1d(n, t0, t, ds.X_train, ds.y_train, ds.X_test, ds.y_test, _alphas(args), ns, args.seed)
                 for i, (k, (n, t, t0)) in enumerate(models.items())}
        files += P.plot_lines(lines, target)
        numbers["line_both"] = {k: {"alpha": v.alphas, "train_loss": v.train_loss, "test_loss": v.test_loss,
                                    "note": v.note} for k, v in lines.items()}
    if len(models) > 1 and "plane" in args.parts:
        out.say(f"random planes of both models, {args.resolution}×{args.resolution} points each …")
        planes = {k: cache["plane"] if i == 0 and "plane" in cache else
                  L.random_plane(n, t, ds.X_train, ds.y_train, args.span, args.resolution, ns, args.seed)
                  for i, (k, (n, t, _)) in enumerate(models.items())}
        files += P.plot_planes(planes, target)
        numbers["plane_both"] = {k: {"a": v.alphas, "b": v.betas, "loss": v.loss, "note": v.note}
                                 for k, v in planes.items()}
    if "flatness" not in args.parts:
        return {}
    radii = np.unique(np.append(F.RADII, args.radius))
    out.say(f"flatness: {args.directions} directions × {len(radii)} distances × 2 sides per model …")
    res = {k: F.flatness(n, t, ds.X_train, ds.y_train, radii, args.directions, ns, args.seed)
           for k, (n, t, _) in models.items()}
    files += P.plot_flatness(res, target, args.radius)
    summary = {}
    for k, f in res.items():
        net, theta = models[k][0], models[k][1]
        mean, lo, hi = f.at(args.radius)
        acc = evaluate(net, theta, ds.X_test, ds.y_test).accuracy if ds.X_test is not None else None
        summary[k] = {"loss": f.loss0, "delta": mean, "delta_min": lo, "delta_max": hi, "test_acc": acc}
    numbers["flatness"] = {"radius": args.radius, "directions": args.directions, "seed": args.seed,
                           "note": next(iter(res.values())).note,
                           "models": {k: {**summary[k], "radii": f.radii, "increase": f.increase}
                                      for k, f in res.items()}}
    _say_flatness(out, args, summary, next(iter(res.values())).note)
    return {"flatness": summary}


def _say_flatness(out, args, summary, note):
    r = f"{args.radius:g}"
    out.note(f"flatness ΔL({r}) = ½[L(θ*+{r}·d) + L(θ*−{r}·d)] − L(θ*): mean (min–max) over {args.directions} "
             f"filter-normalised directions, seed {args.seed}, {note}")
    width = max(len(k) for k in summary)
    for k, s in summary.items():
        acc = "" if s["test_acc"] is None else f"  test accuracy {s['test_acc']:.2%}"
        out.note(f"  {k:<{width}}  L(θ*) {s['loss']:.4g}  ΔL({r}) {s['delta']:.4g} "
                 f"({s['delta_min']:.3g}–{s['delta_max']:.3g}){acc}")


def _toys(args, numbers, target) -> list:
    """The parts on toy functions: the double well (paths from one start, the basin map) and the ravine."""
    import numpy as np

    from steepest.viz import minima as M
    from steepest.viz import plots_landscape as P

    files = []
    if "minima" in args.parts:
        toy = M.momentum_vs_gd(args.toy_x0, args.toy_lr, args.toy_momentum, args.toy_steps)
        files += P.plot_minima(toy, target, lr=args.toy_lr)
        x0s, momenta = np.round(np.linspace(-2.0, 2.2, 85), 6), np.round(np.linspace(0.0, 0.95, 20), 6)
        codes = M.basin_map(x0s, momenta, args.toy_lr, max(args.toy_steps, 500))
        files += P.plot_basin_map(x0s, momenta, codes, target, args.toy_lr, max(args.toy_steps, 500),
                                  mark=(args.toy_x0, args.toy_momentum))
        numbers["minima"] = {**{k: {"x": r.xs, "basin": r.basin} for k, r in toy.items()},
                             "basin_map": {"x0": x0s, "momentum": momenta, "codes": codes, "meaning": M.BASINS}}
    if "ravine" in args.parts:
        rav = M.ravine(args.ravine_kappa, args.ravine_lr, args.ravine_momentum)
        files += P.plot_ravine(rav, args.ravine_kappa, args.ravine_lr, target)
        numbers["ravine"] = {k: {"path": r.xs, "loss": r.fs} for k, r in rav.items()}
    return files
