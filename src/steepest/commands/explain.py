"""``steepest explain MODEL``: the gradient's anatomy — which weights the next step moves, and how."""

from __future__ import annotations

import argparse

from steepest.commands._common import Output, add_json_flag

HELP = "show the gradient of a model: what the next gradient-descent step changes"
EPILOG = """\
examples:
  steepest explain runs/digits/model.safetensors --dataset digits --out runs/digits/explain
  steepest explain runs/mnist --index 7 --split test      # the gradient of one test image
  steepest explain runs/mnist --init --batch 512          # at the initial θ₀ instead of the trained θ
  steepest explain runs/mnist --epochs-at 1 2             # maps at θ₀, after epochs 1 and 2, and trained

Writes input_gradient_maps (−∂L/∂W₁ per hidden unit as images; dead ReLU units marked),
input_gradient_maps_over_training (the same units and batch at θ₀, after each --epochs-at epoch —
re-trained from θ₀ with the model's recorded recipe, that of `steepest train` or of MLPClassifier.save;
a model whose training cannot be repeated says why — and at the trained θ), gradient_histograms, top_moves
(the k largest −η·∂L/∂θᵢ with the first-order loss change −η‖∇L‖² beside the measured one),
first_order (that comparison for a range of η), first_layer_weights, layer_grad_norms (from the
run's metrics.jsonl, when it sits beside the model), each as PNG+SVG, and explain.json.
"""


def add_parser(subparsers):
    from steepest.commands import _limits as L
    from steepest.commands._viewargs import add_data_args

    p = subparsers.add_parser("explain", help=HELP, description=HELP + ".", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a model file written by `steepest train` (or its run "
                   "directory) or by MLPClassifier.save")
    add_data_args(p)
    p.add_argument("--split", choices=("train", "test"), default="train",
                   help="where the batch comes from (default train)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--index", type=L.Count(0, L.MAX_SEED), metavar="I", help="explain one sample: row I of the split")
    which.add_argument("--batch", type=L.Count(1, 10**9), default=256, metavar="N",
                       help="explain a seeded random batch of N rows (default 256)")
    p.add_argument("--init", action="store_true", help="use the initial θ₀ (re-drawn from the model's seed) "
                   "instead of the trained θ")
    p.add_argument("--lr", type=L.LR, metavar="η", help="step size η (default: the model's training lr)")
    p.add_argument("--top-k", type=L.Count(1, 10_000), default=12, metavar="K", help="largest moves to list (default 12)")
    p.add_argument("--units", type=L.Count(1, 4096), default=None, metavar="N", help="hidden units to draw, each "
                   "maxout unit with all its pieces (default 16 panels: 16 units, or 16 // pieces maxout units)")
    p.add_argument("--epochs-at", type=L.Count(0, 10**6), nargs="+", default=[], metavar="E",
                   help="also draw the maps after these epochs, re-training from θ₀ with the recipe the model "
                   "records (default: θ₀ and the trained θ only)")
    p.add_argument("--seed", type=L.SEED, default=0, help="seeds the batch (default 0)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: MODEL's directory/explain)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_json_flag(p)
    return p


def run(args) -> int:
    import numpy as np

    from steepest.commands._common import blas_threads, split_name
    from steepest.commands._rundir import check_writable
    from steepest.errors import ConfigError
    from steepest.viz import plots_anatomy as P
    from steepest.commands._viewargs import finish, load_model_and_data, out_dir
    from steepest.viz.anatomy import first_order_sweep, gradient_anatomy
    from steepest.viz.common import write_json
    from steepest.viz.report import read_jsonl

    out = Output(args.json, args.quiet)
    if args.top_k < 1 or (args.units is not None and args.units < 1) or (args.batch is not None and args.batch < 1) \
            or any(e < 1 for e in args.epochs_at):
        raise ConfigError("--top-k, --units, --batch and --epochs-at must be positive integers")
    if args.lr is not None and not args.lr > 0:
        raise ConfigError(f"--lr must be positive, got {args.lr}")
    path, net, theta, meta, ds = load_model_and_data(args, out)
    target = out_dir(args, path, "explain")
    check_writable(target)
    theta_trained = theta
    recipe, why_not = _recipe(meta)
    notes = []  # where explain cannot follow the model's own recipe: said, never substituted quietly
    theta0, lr = _from_recipe(net, args, path, recipe, why_not, notes)
    if args.init:
        theta = theta0
    X, y = split_name(ds, args.split)
    if args.index is not None:
        if not 0 <= args.index < len(y):
            raise ConfigError(f"--index {args.index} is outside the {args.split} split (0…{len(y) - 1})")
        rows = np.array([args.index])
    else:
        rows = np.sort(np.random.default_rng(args.seed).choice(len(y), size=min(args.batch, len(y)), replace=False))
    Xb, yb = X[rows], y[rows]
    image_shape = (meta.get("preprocessing") or {}).get("image_shape") or ds.image_shape
    with blas_threads(args.threads):
        from steepest.io import machine

        where = machine()
        an = gradient_anatomy(net, theta, Xb, yb, lr=lr, k=args.top_k, image_shape=image_shape)
        sweep = first_order_sweep(net, theta, Xb, yb, np.unique(np.append(np.geomspace(1e-4, 10, 21), lr)))
        snapshots, matches = ([], None) if theta0 is None else \
            _over_training(net, theta0, theta_trained, (recipe, why_not, meta), ds, args, out, notes)
        snapshots = [(label, gradient_anatomy(net, th, Xb, yb, lr=lr, k=1)) for label, th in snapshots]
    k = net.layers[0].pieces  # a maxout unit is drawn with all its pieces, one panel each
    units = args.units or max(1, 16 // k)
    few = min(units, max(1, 8 // k))
    files = P.plot_input_maps_over_training(snapshots, image_shape, target, few) if snapshots else []
    files += (P.plot_input_maps(an, image_shape, target, units) + P.plot_grad_histograms(an, target)
             + P.plot_top_moves(an, target) + P.plot_first_order(sweep, target, lr)
             + P.plot_first_layer_weights(net, theta, image_shape, target, units))
    metrics = path.parent / "metrics.jsonl"
    if metrics.is_file():
        files += P.plot_layer_grad_norms(read_jsonl(metrics), net.layer_names(), target)
    else:
        out.say(f"no {metrics}: the per-layer gradient norms over the run are not drawn")
    what = f"row {args.index} of the {args.split} split" if args.index is not None else \
        f"{len(rows)} rows of the {args.split} split"
    summary = {"model": str(path), "theta": "initial θ₀" if args.init else "trained θ", "batch": what,
               **an.summary(), "first_order_sweep": sweep,
               "machine": where, "notes": notes, "over_training": {"labels": [label for label, _ in snapshots],
                                                   "retrained_matches_model": matches}}
    files.append(write_json(target / "explain.json", summary))
    for line in notes:
        out.note(line)
    if not args.json:
        print(f"{summary['theta']} on {what}: loss {an.loss:.4f}, ‖∇L‖ {np.linalg.norm(an.grad):.4g}")
        print(f"one step of η = {lr:g}: first-order change −η‖∇L‖² = {an.predicted_change:.5g}, "
              f"measured {an.measured_change:.5g} ({100 * an.relative_error:.1f}% apart)")
        if an.loss_share is not None:
            print(f"the {an.loss_share[0]} highest-loss rows carry {an.loss_share[1]:.0%} of the batch's loss")
        if matches is not None:
            print("re-trained from θ₀ for the maps over training: " + RETRAINED[matches])
        if an.dead is not None:
            print(f"dead units (first hidden layer, silent on the whole batch): {int(an.dead.sum())} of {an.dead.size}")
        for t in an.top[:5]:
            print(f"  {t['name']:<52} θ {t['theta']:+.4f}  ∂L/∂θ {t['grad']:+.4g}  step {t['step']:+.4g}")
    return finish(out, args, files, {"out": str(target), "loss": an.loss, "predicted_change": an.predicted_change,
                                     "measured_change": an.measured_change})


#: what the re-training for the maps over training came to: the model's own last θ, or not (and why it may not)
RETRAINED = {True: "its last epoch is the model's θ, bit for bit",
             False: "its last epoch differs from the model's θ (other training data than --dataset gives, another "
                    "BLAS kernel, thread count or a stop rule the re-training does not repeat); the maps show the "
                    "re-trained θ"}
#: what re-training from θ₀ needs from a recipe (one recorded before schedules existed used none: constant)
NEEDED = ("lr", "optimizer", "batch_size", "seed")


def _recipe(meta) -> tuple:
    """``(recipe, why_not)``: the options the model was trained with — the ``training`` section that
    ``steepest train`` and :meth:`MLPClassifier.save` write, or the estimator parameters that ``save``
    wrote alone before — and why its training cannot be repeated from them (None when it can)."""
    from steepest.commands._viewargs import training_record

    sk = meta.get("sklearn") or {}
    cfg = training_record(meta)
    if not cfg:
        return None, "the model file records no training recipe"
    cfg = {**cfg, "seed": cfg["seed"] if cfg.get("seed") is not None else meta.get("seed")}
    missing = [k for k in NEEDED if cfg.get(k) is None]
    if missing:
        return cfg, f"the model's training record lacks {', '.join(missing)}"
    if sk.get("trained_by") == "partial_fit":
        return cfg, "the model was trained by MLPClassifier.partial_fit calls, whose data the file does not record"
    return cfg, None


def _from_recipe(net, args, path, recipe, why_not, notes) -> tuple:
    """``(θ₀, η)``: θ₀ re-drawn as the recipe drew it (None without a recorded seed, unless ``--init``
    asks for it: then the error says why it cannot be), and the step size η to show: ``--lr``, else the
    recipe's, else 0.1 with a note that says so."""
    from steepest.commands._viewargs import initial_theta

    seeded = recipe is not None and recipe.get("seed") is not None
    theta0 = initial_theta(net, {"training": recipe or {}})[0] if (args.init or seeded) else None
    if theta0 is None and args.epochs_at:
        notes.append(f"--epochs-at is not drawn: {why_not}, so θ₀ cannot be re-drawn nor the training repeated")
    lr = args.lr or (recipe or {}).get("lr")
    if not lr:
        lr = 0.1
        notes.append(f"{path.name} records no training learning rate: the step shown is one of η = 0.1; "
                     "give --lr η to choose")
    return theta0, float(lr)


def _over_training(net, theta0, theta, record, ds, args, out, notes) -> list:
    """``[(label, θ)]``: θ₀, θ after each ``--epochs-at`` epoch (re-trained from θ₀ with the recorded
    recipe: optimizer, its options, lr schedule, batch, seed, validation split) and the trained θ.
    ``record`` is ``(recipe, why_not, meta)``; a recipe that cannot be repeated is said in ``notes``."""
    import numpy as np

    from steepest.loop import train
    from steepest.optim import make_optimizer

    snaps, matches = [("θ₀ (initial)", theta0)], None
    cfg, why_not, meta = record
    wanted = sorted(set(args.epochs_at))
    if wanted and why_not:
        notes.append(f"--epochs-at is not drawn: {why_not}, so explain cannot re-train it; the maps over training "
                     "show θ₀ and the trained θ only")
    elif wanted:
        from steepest.commands._trainconfig import OPTIMIZER_FLAGS, SCHEDULE_FLAGS, make_schedule

        cfg = {"epochs": None, "max_steps": None, "schedule": "constant",
               **{k: None for k in (*OPTIMIZER_FLAGS, *SCHEDULE_FLAGS)}, **cfg}

        X, y = ds.X_train, ds.y_train
        if cfg.get("val_split"):  # the rows `steepest train` held out (the same seeded permutation)
            from steepest.batches import holdout

            keep = holdout(len(y), cfg["val_split"], cfg["seed"], ds.n_classes, "the run's val_split",
                           recorded=True)[0]
            X, y = X[keep], y[keep]
        B = cfg["batch_size"] if cfg["batch_size"] == "full" else min(int(cfg["batch_size"]), len(y))  # as fit clips it
        steps = 1 if B == "full" else -(-len(y) // B)
        out.say(f"re-training from θ₀ to epoch {wanted[-1]} for the maps over training …")
        at = {}

        def keep_at(event, state):
            if event == "epoch" and state.epoch in wanted:
                at[state.epoch] = state.theta.copy()
            return False

        opts = {kw: cfg[name] for name, kw in OPTIMIZER_FLAGS.items() if cfg[name] is not None}
        train(net, theta0, X, y, optimizer=make_optimizer(cfg["optimizer"], **opts), lr=make_schedule(cfg, steps),
              batch_size=B, epochs=wanted[-1], seed=cfg["seed"], clip_norm=cfg.get("clip_norm"), monitor=False,
              callback=keep_at, kernels="numpy" if cfg.get("kernels") == "numpy" else "auto")  # numba: if it imports
        snaps += [(f"after epoch {e}", at[e]) for e in wanted if e in at]
        final = (meta.get("metrics") or {}).get("epochs") or (meta.get("sklearn") or {}).get("n_iter") \
            or cfg.get("epochs")
        if final in at:  # the re-training reached the model's own last epoch: is it the same run?
            matches = at[final].tobytes() == theta.tobytes()
    return snaps + [("trained θ", theta)], matches
