"""What the ``compare``, ``landscape``, ``explain`` and ``report`` commands share (imported inside ``run``)."""

from __future__ import annotations

from pathlib import Path

from steepest.commands import _limits as L
from steepest.commands._limits import N_SAMPLES, THREADS
from steepest.errors import ConfigError


def add_data_args(p, default_help="the one the model was trained on", threads_help="the library's choice"):
    p.add_argument("--dataset", metavar="NAME|PATH", help=f"dataset name or data file (default: {default_help})")
    p.add_argument("--labels", metavar="FILE", help="IDX labels file when --dataset is an IDX images file")
    p.add_argument("--data-dir", type=L.existing_dir, metavar="DIR", help="look for named datasets here first")
    p.add_argument("--no-download", dest="download", action="store_false", help="do not download datasets")
    p.add_argument("--threads", type=THREADS, metavar="N", help=f"BLAS threads (default: {threads_help})")


def add_sample_arg(p, default=2000):
    p.add_argument("--n-samples", type=N_SAMPLES, default=default, metavar="N",
                   help=f"evaluate losses on a seeded sample of N training rows, 0 for all (default {default})")


def n_samples(args):
    if args.n_samples < 0:
        raise ConfigError(f"--n-samples must be >= 0 (0 means all rows), got {args.n_samples}")
    return args.n_samples or None


def load_model_and_data(args, out):
    """``(path, net, theta, meta, ds)`` for a MODEL argument and the data options."""
    from steepest.commands._common import check_against_model, describe_net, load_model_and_dataset

    path, net, theta, meta, trained, ds = load_model_and_dataset(args)
    check_against_model(net, ds.X_train, ds.y_train, what=f"{ds.name} (train split)",
                        trained_on=trained if trained != ds.name else None)
    out.say(f"model {path}: {describe_net(net)}" + (f", trained on {trained}" if trained else ""))
    out.say(f"data  {ds.name}: {len(ds.y_train):,} training samples, from {ds.source}")
    return path, net, theta, meta, ds


def training_record(meta) -> dict:
    """The options a model was trained with: its ``training`` section (``steepest train`` and
    :meth:`MLPClassifier.save` write one), or the estimator parameters that older ``save`` files kept alone."""
    return meta.get("training") or (meta.get("sklearn") or {}).get("params") or {}


def initial_theta(net, meta):
    """θ₀ as ``steepest train`` drew it: ``net.init(seed, scheme=init, bias=bias)`` from the model's record."""
    training = training_record(meta)
    seed = training.get("seed", meta.get("seed"))
    if seed is None:
        raise ConfigError("the model does not record the seed of its initial θ₀, so θ₀ cannot be re-drawn; "
                          "use a model written by `steepest train`")
    return net.init(int(seed), scheme=training.get("init"), bias=training.get("bias") or "zero"), int(seed)


def out_dir(args, model_path, name) -> Path:
    """``--out``, else ``<the model's directory>/<name>``."""
    return Path(args.out) if args.out else Path(model_path).parent / name


def finish(out, args, files, extra=None) -> int:
    """Print the written files (or one JSON object with them) and return 0."""
    files = [str(f) for f in files]
    if args.json:
        out.emit({**(extra or {}), "files": files})
    else:
        for f in files:
            print(f)
    return 0
