"""``steepest train``: a new run, or ``--resume RUN_DIR`` to continue one."""

from __future__ import annotations

import argparse
import shlex

from steepest.commands._common import Output, add_json_flag
from steepest.commands._trainconfig import add_arguments

HELP = "train a network by gradient descent"
EPILOG = """\
examples:
  steepest train --dataset mnist --hidden 128 64 --activation relu --init he --optimizer momentum \\
      --lr 0.05 --momentum 0.9 --batch-size 128 --epochs 5 --eps 1e-3 --seed 0 --out runs/mnist
  steepest train --dataset digits --optimizer gd --batch-size full --lr 0.5 --epochs 300 --quiet
  steepest train --dataset mine.npz --hidden 32 --schedule cosine --warmup-steps 100 --json
  steepest train --config run.toml --lr 0.1      # options from the file, the command line overrides
  steepest train --resume runs/mnist             # continue after Ctrl-C, bit for bit
  steepest train --recipe mnist-record           # a named recipe (`steepest recipes` lists them)
  steepest train --recipe mnist-dropout --epochs 1 --seed 3   # … with options overridden
  steepest train --recipe mnist-record --max-norm off --no-standardize   # … or turned off

An option that a recipe or --config sets is unset with the value `off` (its default then
applies: no max-norm, no dropout, the optimizer's own momentum); a flag is turned off with
--no-…. A recipe's warm-up, momentum or maxout pieces that the schedule, optimizer or
activation you choose does not use is left out, with a note.

Run directory: config.toml, metrics.csv, metrics.jsonl, model.safetensors,
checkpoints/checkpoint.safetensors (each epoch, every --checkpoint-every steps, on Ctrl-C
or SIGTERM).
A killed run continues from its last checkpoint with --resume, to the same θ bit for bit,
on the same data: a file is recorded by its absolute path and a digest of its samples;
other data there is refused, and a moved copy is given with --resume RUN_DIR --dataset PATH.
Exit status: 0 done; 1 diverged (the last finite θ is saved); 2 bad input, or a run
directory that cannot be written (full disk, read-only: the last checkpoint is kept, fix it
and --resume); 130 interrupted by Ctrl-C, 143 stopped by SIGTERM (resume either with --resume).
"""


class _Once(argparse.Action):
    """An option that names a whole source of options (a file, a recipe, a run): given twice, the first would
    be dropped without a word, so it is refused."""

    def __call__(self, parser, namespace, value, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            hint = {"config": " (one file holds every option; the command line overrides it)",
                    "recipe": " (--config and the command line override it)"}.get(self.dest, "")
            raise argparse.ArgumentError(self, f"given twice ({getattr(namespace, self.dest)} and {value}); give it "
                                         f"once{hint}")
        setattr(namespace, self.dest, value)


def add_parser(subparsers):
    p = subparsers.add_parser("train", help=HELP, description=HELP + ".", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    g = p.add_argument_group("run")
    g.add_argument("--config", action=_Once, metavar="FILE.toml", help="read options from a TOML file (keys as the flags, "
                   "e.g. batch_size = 128); command-line values override it")
    g.add_argument("--recipe", action=_Once, metavar="NAME", help="start from a named recipe shipped with steepest "
                   "(`steepest recipes` lists them); --config and the command line override it")
    g.add_argument("--resume", action=_Once, metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    g.add_argument("--force", action="store_true", help="start over in an --out directory that holds a run")
    g.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    add_json_flag(g)
    return p


def run(args) -> int:
    from steepest.commands._rundir import release_locks
    from steepest.parallel import world

    comm = world()  # imports mpi4py only when an MPI launcher started several processes
    if comm is not None:
        return ranked(args, comm)
    out = Output(args.json, args.quiet)
    try:
        return resume(args, out) if args.resume else new(args, out)
    finally:
        release_locks()  # the process may go on (tests call the command in-process)


def ranked(args, comm) -> int:
    """One process of ``mpiexec -n K steepest train …``: rank 0 writes the run directory and speaks.

    An error raised on every rank alike (:class:`~steepest.errors.ParallelError`) ends each with status
    2, rank 0 saying it; any other error may be this rank's alone, and the others would wait for it in
    their next collective call: this rank says it (unless rank 0 does first) and aborts them all.
    """
    import sys
    import time

    from steepest.commands._common import Silent
    from steepest.errors import ParallelError, SteepestError, Terminated

    rank = comm.Get_rank()
    out = Output(args.json, args.quiet) if rank == 0 else Silent()
    try:
        return resume(args, out, comm) if args.resume else new(args, out, comm)
    except ParallelError:
        if rank == 0:
            raise
        return 2
    except (SteepestError, OSError, KeyboardInterrupt, Terminated) as e:
        if rank != 0:
            time.sleep(2.0)  # the same error on rank 0 is said by rank 0 (and its abort ends this one)
        if isinstance(e, (KeyboardInterrupt, Terminated)):
            print(f"steepest: {'interrupted' if isinstance(e, KeyboardInterrupt) else 'terminated (SIGTERM)'}",
                  file=sys.stderr, flush=True)
        else:
            from steepest.cli import one_line

            where = f" (rank {rank} of {comm.Get_size()})" if rank else ""
            print(f"steepest: error{where}: {one_line(e)}", file=sys.stderr, flush=True)
        code = 130 if isinstance(e, KeyboardInterrupt) else 143 if isinstance(e, Terminated) else 2
        comm.Abort(code)
        import os

        os._exit(code)  # MPICH's Abort may return before it ends this process: the error is said once


def _load(cfg, out):
    """The dataset, or ``--fallback`` (saying so) when it cannot be found nor fetched."""
    from steepest.commands._common import load_data
    from steepest.errors import DataNotFoundError

    load = dict(data_dir=cfg["data_dir"], labels=cfg["labels"], download=cfg["download"],
                progress=out.bars)
    try:
        return load_data(cfg["dataset"], **load)
    except DataNotFoundError:
        if not cfg["fallback"] or cfg["fallback"] == cfg["dataset"]:
            raise
        out.note(f"note: {cfg['dataset']} was not found locally nor downloaded; training on {cfg['fallback']} "
                 f"instead (--fallback {cfg['fallback']}). `steepest datasets` shows where {cfg['dataset']} "
                 "is looked for.")
        cfg["dataset"], cfg["labels"] = cfg["fallback"], None
        return load_data(cfg["fallback"], **{**load, "labels": None})


def new(args, out, comm=None) -> int:
    from steepest.commands import _session
    from steepest.commands._limits import check_network
    from steepest.commands._rundir import RunDir, check_writable, default_out
    from steepest.commands._trainconfig import eval_every, make_schedule, optimizer_kwargs, resolve, to_toml
    from steepest.network import MLP
    from steepest.optim import make_optimizer
    from steepest.loop import steps_per_epoch

    notes = []
    cfg = resolve(args, notes)
    writer = comm is None or comm.Get_rank() == 0  # the other ranks of a data-parallel run write nothing
    # Output first: a read-only or occupied directory is reported before minutes of data loading.
    rundir = RunDir(cfg["out"]) if cfg["out"] else None
    if rundir is not None and writer:
        rundir.check_new(args.force)
        if rundir.restart:
            out.note(f"note: {rundir.path} holds a run that stopped before its first checkpoint; starting it again")
    elif writer:
        check_writable("runs")
    for note in notes:
        out.note(note)
    ds = _load(cfg, out)
    _absolute_data_paths(cfg)
    data = _session.split(ds, cfg)
    check_network([ds.n_features, *cfg["hidden"], ds.n_classes], activation=cfg["activation"], pieces=cfg["pieces"])
    net = MLP([ds.n_features, *cfg["hidden"], ds.n_classes], activation=cfg["activation"], pieces=cfg["pieces"],
              dtype=cfg["dtype"], input_scale=ds.input_scale, l2=cfg["l2"], **_regularisation(cfg, data))
    _session.check_batch(cfg, len(data.y))
    make_optimizer(cfg["optimizer"], **optimizer_kwargs(cfg))   # every option checked before any write
    make_schedule(cfg, steps_per_epoch(len(data.y), cfg["batch_size"]))
    eval_every(cfg, steps_per_epoch(len(data.y), cfg["batch_size"]))  # a share of a run of unknown length: refused
    theta = net.init(cfg["seed"], scheme=cfg["init"], bias=cfg["bias"])
    if rundir is None:
        rundir = RunDir(default_out(ds.name))
    cfg["out"] = str(rundir.path)
    out.say(_summary(ds, data, net, cfg, rundir))
    if not writer:
        return _session.fit(cfg, net, theta, data, rundir, out, comm=comm)
    rundir.create(force=args.force)
    try:
        rundir.remove_stale_temps()  # of a killed run that --force replaces
        recipe = f"# from recipe {args.recipe} (steepest recipes --show {args.recipe})\n" if args.recipe else ""
        rundir.write_config(_provenance(cfg, comm) + recipe + to_toml({k: v for k, v in cfg.items() if k != "out"}))
        rundir.start_metrics(data.columns(), [])
        return _session.fit(cfg, net, theta, data, rundir, out, comm=comm)
    except BaseException:
        rundir.remove_if_unused()
        raise


def _absolute_data_paths(cfg) -> None:
    """A user's data file is recorded (config.toml, checkpoint, model) by its absolute path: ``--resume``
    from another directory, and ``evaluate`` without ``--dataset``, then read the same file."""
    import os

    from steepest.data import is_user_file

    if cfg.get("dataset") and is_user_file(cfg["dataset"], cfg.get("labels")):
        cfg["dataset"] = os.path.abspath(cfg["dataset"])
        if cfg.get("labels") is not None:
            cfg["labels"] = os.path.abspath(cfg["labels"])


def _regularisation(cfg, data) -> dict:
    """The network's training-time options; standardisation statistics from the training split only."""
    from steepest.network import standardisation

    kw = {"dropout": cfg.get("dropout"), "max_norm": cfg.get("max_norm"),
          "label_smoothing": cfg.get("label_smoothing") or 0.0}
    if cfg.get("standardize"):
        kw["input_mean"], kw["input_std"] = standardisation(data.X, data.ds.input_scale)
    return kw


def _provenance(cfg, comm=None) -> str:
    """TOML comments for config.toml: what besides the options decides θ's last bits."""
    from steepest.commands._common import blas_threads
    from steepest.io import blas_kernel, environment

    with blas_threads(cfg["threads"]):  # the thread count training will use
        env = environment()
    simd = f" (SIMD {' '.join(env['numpy_simd'])})" if env["numpy_simd"] else ""
    blas = "; ".join(f"{b.get('internal_api')} {b.get('version')}, " + ", ".join(
        str(b[k]) for k in ("architecture", "threading_layer") if k in b) +
        f", {b.get('num_threads', '?')} thread{'s' * (b.get('num_threads') != 1)}" for b in env["blas"])
    if cfg["threads"] is None and comm is None:
        blas += " at most; the count is measured while training (the model file records each choice)"
    elif cfg["threads"] is None:  # the ranks share the cores: each one's timing would measure the others
        blas += f" in each of the {comm.Get_size()} processes (not measured under MPI; --threads sets it)"
    variables = " ".join(f"{k}={v}" for k, v in env["variables"].items())
    return (f"# steepest {env['steepest']}, NumPy {env['numpy']}{simd}, Python {env['python']}, {env['platform']}\n"
            f"# BLAS: {blas or 'unknown (threadpoolctl not installed)'}{'; ' + variables if variables else ''}\n"
            f"# The same seed, dtype, thread count, NumPy build and BLAS kernel ({blas_kernel(env['blas']) or 'unknown'}) "
            "give the same θ, bit for bit.\n")


def _summary(ds, data, net, cfg, rundir) -> str:
    from steepest.commands._common import describe_net
    from steepest.commands._trainconfig import optimizer_kwargs
    from steepest.optim import make_optimizer

    shape = f" ({ds.image_shape[0]}×{ds.image_shape[1]})" if ds.image_shape else ""
    parts = [f"{len(data.y):,} training"]
    if data.val is not None:
        parts.append(f"{len(data.val[1]):,} validation")
    if data.test is not None:
        parts.append(f"{len(data.test[1]):,} test")
    hyper = {k: v for k, v in make_optimizer(cfg["optimizer"], **optimizer_kwargs(cfg)).config().items()
             if k != "name" and v not in (0, 0.0, False)}
    opt = cfg["optimizer"] + f" lr {cfg['lr']:g}" + "".join(f" {k} {v:g}" for k, v in hyper.items())
    return (f"dataset {ds.name}: {' + '.join(parts)} samples, {ds.n_features} features{shape}, from {ds.source}\n"
            f"network {describe_net(net)}; optimizer {opt}, batch {cfg['batch_size']}, "
            f"schedule {cfg['schedule']}\nrun directory {rundir.path}")


def resume(args, out, comm=None) -> int:
    from steepest.commands import _session
    from steepest.commands._rundir import RunDir, check_writable, lock_dir
    from steepest.commands._trainconfig import BY_NAME, OPTIONS, RESUME_OPTIONS, convert, given
    from steepest.errors import ConfigError, ModelFileError
    from steepest.io import load_checkpoint

    extra = ["--no-" + BY_NAME[k].flag[2:] if v is False and BY_NAME[k].kind == "flag" else BY_NAME[k].flag
             for k, v in given(args).items() if k not in RESUME_OPTIONS + MOVED_DATA]
    extra += [f for f, on in (("--config", args.config), ("--recipe", args.recipe), ("--force", args.force)) if on]
    if extra:
        raise ConfigError(f"{', '.join(extra)} cannot be combined with --resume (the run continues as it "
                          "was configured); start a new run with --out to change them")
    if args.data_dir is not None:
        from steepest.commands._limits import check_data_dir

        check_data_dir(args.data_dir)
    rundir = RunDir(args.resume)
    if rundir.path.is_file():
        raise ConfigError(f"--resume {rundir.path} is a file; --resume takes the run directory (the --out of an "
                          f"earlier `steepest train`), e.g. --resume {rundir.path.parent}")
    if not rundir.path.is_dir():
        raise ConfigError(f"--resume {rundir.path}: no such run directory; give the --out directory of an "
                          "earlier `steepest train`")
    if not rundir.checkpoint.is_file():
        return _restart(args, out, rundir, comm)
    if comm is None or comm.Get_rank() == 0:  # the run directory is rank 0's (the others only read it)
        lock_dir(rundir.path)
    try:
        net, state, cfg, recorded = load_checkpoint(rundir.checkpoint, data=True)
    except ModelFileError as e:  # a damaged file's advice is for a model given by hand: this one the run wrote
        if not e.damaged:  # missing, unreadable, a newer format: its own advice holds
            raise
        what = str(e).rsplit("; ", 1)[0]
        raise ModelFileError(f"{what}; the run cannot continue from this checkpoint: start the run again with "
                             f"--out {rundir.path} --force (or restore the file from a backup)") from None
    finished = state.stop_reason not in (None, "interrupted")
    if finished and rundir.model.exists():
        raise ConfigError(f"{rundir.path} already finished ({state.stop_reason}: {state.stop_message}); "
                          f"nothing to resume — evaluate {rundir.model} or start a new run")
    unknown = sorted(set(cfg) - set(BY_NAME))
    if unknown:
        raise ConfigError(f"{rundir.checkpoint}: unknown option(s) {', '.join(unknown)} in its configuration; "
                          "it was written by another version of steepest")
    cfg = {**{o.name: o.default for o in OPTIONS}, **cfg}
    for key, value in cfg.items():
        if value is not None:
            cfg[key] = convert(BY_NAME[key], value)
    original = dict(cfg)  # as the run was configured, before this command's --threads and the like
    moved = {k: v for k, v in given(args).items() if k in MOVED_DATA}
    _check_moved(cfg, moved, recorded, rundir)
    for name, value in given(args).items():
        cfg[name] = convert(BY_NAME[name], value)
    writer = comm is None or comm.Get_rank() == 0  # the other ranks of a data-parallel run write nothing
    if writer:
        check_writable(rundir.path)
    stale = rundir.remove_stale_temps() if writer else 0
    if stale:
        out.say(f"removed {stale} temporary file{'s' * (stale > 1)} left by a write that was cut short")
    ds = _load({**cfg, "fallback": None}, out)
    _absolute_data_paths(cfg)
    _same_data(ds, cfg, recorded, bool(moved))
    data = _session.split(ds, cfg, recorded=True)
    if net.sizes[0] != ds.n_features or net.sizes[-1] < ds.n_classes:
        raise ConfigError(f"{cfg['dataset']} no longer fits the checkpoint's network {net.sizes}; "
                          "resume with the data the run started with")
    rundir.columns = data.columns()
    if writer:
        _config_file(rundir, cfg, original, out, moved)
        rundir.start_metrics(data.columns(), state.history.epochs)
    if finished:  # it stopped, but ended before its model was written: write it now
        out.say(f"{rundir.path} finished training ({state.stop_reason}) but has no model; saving it")
    else:
        out.say(f"resuming {rundir.path} at epoch {state.epoch + 1}, step {state.step} "
                f"({cfg['dataset']}, {'-'.join(map(str, net.sizes))})")
    return _session.fit(cfg, net, state.theta, data, rundir, out, state=state, comm=comm)


def _check_moved(cfg, moved, recorded, rundir) -> None:
    """``--resume`` with ``--dataset``/``--labels``: only where a digest can check the copy, and the whole
    pair for IDX data; without them, data no longer where the run recorded it is said with what to do."""
    from pathlib import Path

    from steepest.data import is_user_file
    from steepest.commands._trainconfig import BY_NAME
    from steepest.errors import ConfigError

    again = f"steepest train --resume {shlex.quote(str(rundir.path))}"
    if moved and not (recorded or {}).get("fingerprint"):
        raise ConfigError(f"{', '.join(BY_NAME[k].flag for k in moved)} cannot be combined with --resume of "
                          "this run: its checkpoint does not record what its data held, to check a moved copy "
                          "against; resume it with its data where it was, or start a new run with --out")
    if "dataset" in moved and cfg.get("labels") and "labels" not in moved:
        raise ConfigError(f"this run's data is a pair of IDX files (images {cfg['dataset']}, labels {cfg['labels']}); "
                          f"give both where they are now: {again} --dataset IMAGES --labels LABELS")
    if "labels" in moved and "dataset" not in moved and not cfg.get("labels"):
        raise ConfigError(f"--labels goes with a pair of IDX files, and this run's data is {cfg['dataset']}; "
                          f"give a moved copy of it with {again} --dataset PATH")
    if not moved and is_user_file(cfg["dataset"], cfg.get("labels")):
        gone = [p for p in (cfg["dataset"], cfg.get("labels")) if p and not Path(p).exists()]
        if gone:
            raise ConfigError(f"{gone[0]}, this run's data, is not there any more; if it moved, give it with "
                              f"{again} --dataset NEW_PATH" + (" --labels NEW_PATH" if cfg.get("labels") else ""))
    if "dataset" in moved and "labels" not in moved:
        cfg["labels"] = None


def _config_file(rundir, cfg, original, out, moved) -> None:
    """config.toml on ``--resume``: rewritten when the data moved (it records the data's path) or when it
    is missing; otherwise a note when it was edited by hand, since the run continues as its checkpoint
    was configured (``original``: before this command's own --threads and the like)."""
    from steepest.commands._trainconfig import BY_NAME, convert, read_toml, to_toml
    from steepest.errors import ConfigError

    if moved or not rundir.config.exists():
        why = f"resumed with its data at {cfg['dataset']}" if moved else "written again from the checkpoint"
        run = {**original, **{k: cfg[k] for k in MOVED_DATA}}  # the run's options; its data where it is now
        rundir.write_config(_provenance(run) + f"# {why}\n" + to_toml({k: v for k, v in run.items() if k != "out"}))
        if not moved:
            out.note(f"note: {rundir.config} was missing; written again from the run's checkpoint")
        return
    how = (f"the run continues as its checkpoint says — to train with the edits, start a new run with "
           f"`steepest train --config {rundir.config} --out NEW_DIR`")
    recorded = dict(original)
    _absolute_data_paths(recorded)
    try:
        edited = {k: convert(BY_NAME[k], v) for k, v in read_toml(rundir.config).items()}
        _absolute_data_paths(edited)  # a run from before paths were recorded whole: relative paths, as typed
        keys = set(edited) | {k for k, v in recorded.items() if v is not None}  # a line removed is an edit too
        differ = sorted(k for k in keys if k != "out" and edited.get(k) != recorded.get(k))
    except ConfigError as e:
        out.note(f"note: {rundir.config} no longer reads as a configuration ({str(e).split('; ')[0]}); {how}")
        return
    if differ:
        out.note(f"note: {rundir.config} differs from the run's configuration in {', '.join(differ)}; {how}")


# Options --resume takes when the data moved: the copy is checked against the run's fingerprint.
MOVED_DATA = ("dataset", "labels")


def _same_data(ds, cfg, recorded, moved: bool) -> None:
    """The data ``--resume`` loaded is the data the run started with, else a :class:`ConfigError`.

    The checkpoint records a digest of the samples (:meth:`Dataset.fingerprint`); a file edited in
    place, another file under the same relative path, or a moved copy that differs are all refused —
    they would continue the run on other data, with nothing said. Checkpoints written before the
    digest was recorded are checked only for their shape, as before.
    """
    from steepest.data import matches_record
    from steepest.errors import ConfigError

    want = (recorded or {}).get("fingerprint")
    if not matches_record(ds, {"data": recorded or {}}):
        where = "the copy given with --dataset" if moved else cfg["dataset"]
        raise ConfigError(f"{where} is not the data this run started with (its samples differ from those the "
                          f"checkpoint records, fingerprint {want}); resume with the same data — give a moved "
                          "copy with --dataset — or start a new run with --out")


def _restart(args, out, rundir, comm=None) -> int:
    """``--resume`` of a run killed before its first checkpoint: start it again from its config.toml.

    Nothing was saved to continue from, and a run started again from step 0 with the same
    configuration ends on the same θ, bit for bit; so resuming it means running it again.
    """
    from steepest._files import is_regular
    from steepest.commands._rundir import CHECKPOINT
    from steepest.errors import ConfigError

    if rundir.model.exists() or not is_regular(rundir.config):
        raise ConfigError(f"{rundir.path} has no checkpoint ({CHECKPOINT}) and no config.toml to start again "
                          "from; nothing to resume, start a new run with --out")
    # the new run says it starts again ("holds a run that stopped before its first checkpoint"): once
    args.config, args.out, args.resume = str(rundir.config), str(rundir.path), None
    return new(args, out, comm)
