"""The options of ``steepest train``: one table, three sources (defaults ← TOML file ← command line).

Each option is declared once in :data:`OPTIONS`; that entry makes its command-line flag, reads
it from a ``--config`` TOML file (``batch_size`` or ``batch-size``), checks its value and gives
its default. The resolved configuration is a plain dict (the run's ``config.toml``), and the
functions at the bottom turn it into the optimizer and schedule arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from steepest.commands._limits import written_plainly
from steepest.errors import ConfigError

from steepest.registry import ACTIVATIONS, BIASES, INITS, OPTIMIZER_OPTIONS as _OPTIMIZER_ACCEPTS, OPTIMIZERS
from steepest.registry import KERNELS, SCHEDULE_OPTIONS, SCHEDULES

# option → schedule keyword it feeds (only passed when given)
SCHEDULE_FLAGS = {"step_size": "step_size", "gamma": "gamma", "warmup_steps": "warmup_steps",
                    "lr_min": "lr_min", "pct_start": "pct_start"}
# option → optimizer keyword it feeds (only passed when given)
OPTIMIZER_FLAGS = {"momentum": "momentum", "beta1": "beta1", "beta2": "beta2",
                     "weight_decay": "weight_decay"}


@dataclass(frozen=True)
class Opt:
    name: str            # key in the config dict and the TOML file; flag is --name-with-dashes
    kind: str            # how values are checked, see _convert
    default: object
    help: str
    choices: tuple = ()
    metavar: str | None = None
    hi: float | None = None  # largest value accepted (numbers), stated in the error message

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS = (
    # data
    Opt("dataset", "str", "mnist", "mnist, fashion-mnist, digits, or your data: a .npz (X, y), a .csv "
        "(label column + features), an IDX images file (with --labels) or a folder of class folders",
        metavar="NAME|PATH"),
    Opt("labels", "str", None, "the IDX labels file that goes with an IDX images file given as --dataset",
        metavar="FILE"),
    Opt("data_dir", "str", None, "look for named datasets here first (DIR/mnist/ or DIR itself)", metavar="DIR"),
    Opt("download", "bool", True, "download a named dataset that is not found locally"),
    Opt("fallback", "str", None, "dataset to use instead when --dataset cannot be found nor downloaded "
        "(the README uses --fallback digits); says so on screen", metavar="NAME"),
    Opt("val_split", "fraction", None, "hold out this fraction of the training data (seeded) for "
        "validation, e.g. 0.1", metavar="F"),
    # network
    Opt("hidden", "hidden", [128, 64], "hidden layer widths; the input size and the number of classes "
        "come from the data", metavar="N"),
    Opt("activation", "activation", "relu", "hidden activation, one for all layers or one per hidden layer",
        choices=ACTIVATIONS),
    Opt("pieces", "pieces", None, "linear pieces per maxout unit (--activation maxout; default 2)", metavar="K",
        hi=64),
    Opt("init", "choice", "he", "weight initialisation", choices=INITS),
    Opt("bias", "choice", "zero", "initial biases: zero, or random N(0, 0.01²)", choices=BIASES),
    Opt("dtype", "choice", "float32", "precision of θ and of all computations", choices=("float32", "float64")),
    Opt("l2", "nonneg", 0.0, "L2 term (λ/2)·Σ‖W‖² added to the loss (weights only)", metavar="λ", hi=1e6),
    Opt("dropout", "rates", None, "inverted dropout: the drop rate of the input and of each hidden layer, "
        "e.g. 0.2 0.5 0.5 (training only; masks keyed by seed and step)", metavar="P"),
    Opt("max_norm", "positive", None, "after each update, rescale each hidden unit's incoming weights to "
        "norm ≤ C", metavar="C", hi=1e6),
    Opt("label_smoothing", "smoothing", None, "cross-entropy against (1−ε)·onehot + ε/k", metavar="ε"),
    Opt("standardize", "flag", None, "standardise each input feature with the mean and σ of the training "
        "split (stored in the model file; evaluate and predict apply it)"),
    # optimizer
    Opt("optimizer", "choice", "momentum", "update rule", choices=OPTIMIZERS),
    Opt("lr", "positive", 0.05, "learning rate η (the peak rate for onecycle)", metavar="η", hi=1e6),
    Opt("momentum", "decay", None, "momentum μ (sgd, momentum, nesterov, rmsprop; default 0.9 for "
        "momentum and nesterov)", metavar="μ"),
    Opt("beta1", "decay", None, "Adam's β₁ (default 0.9)", metavar="β1"),
    Opt("beta2", "decay", None, "Adam's β₂ (default 0.999)", metavar="β2"),
    Opt("weight_decay", "nonneg", None, "weight decay added to the gradient, wd·θ (not with gd)", metavar="WD", hi=1e3),
    Opt("clip_norm", "positive", None, "rescale each step's gradient to at most this norm", metavar="C"),
    # schedule
    Opt("schedule", "choice", "constant", "learning-rate schedule", choices=SCHEDULES),
    Opt("step_size", "posint", None, "step schedule: multiply the rate by --gamma every this many steps",
        metavar="STEPS", hi=10**12),
    Opt("gamma", "positive", None, "step/exponential schedule: decay factor", metavar="γ", hi=1.0),
    Opt("warmup_steps", "nonnegsteps", None, "warmup/cosine schedule: linear warm-up steps, or a share of the "
        "run's steps such as 1%% (a recipe's warm-up then shrinks with --epochs)", metavar="STEPS|P%", hi=10**12),
    Opt("lr_min", "nonneg", None, "cosine schedule: final learning rate", metavar="η", hi=1e6),
    Opt("pct_start", "fraction", None, "onecycle schedule: share of steps spent rising", metavar="F"),
    # batches and stopping
    Opt("batch_size", "batch", 128, "mini-batch size B, or 'full' for vanilla (full-batch) gradient descent",
        metavar="B|full", hi=2**31),
    Opt("epochs", "posint", 5, "passes over the training data (the default applies when neither "
        "--max-steps nor --time-budget is given)", metavar="N", hi=10**6),
    Opt("max_steps", "posint", None, "stop after this many optimizer updates", metavar="N", hi=10**12),
    Opt("time_budget", "positive", None, "stop after this many seconds of wall time", metavar="SECONDS", hi=3.2e7),
    Opt("eps", "positive", None, "stop when ‖∇L(θ)‖ over the whole training set is below ε", metavar="ε"),
    Opt("patience", "posint", None, "stop when the validation loss has not improved for N evaluations "
        "(epochs, by default; needs --val-split) and keep the best θ", metavar="N", hi=10**6),
    Opt("seed", "seed", 0, "seeds the initial θ, the shuffles and the validation split", metavar="N"),
    Opt("threads", "posint", None, "BLAS threads (default: measured — the fastest of 1, half and all of the "
        "library's threads, timed on the run's own steps and again as it runs; a fixed N reproduces θ bit "
        "for bit)", metavar="N", hi=1024),
    Opt("kernels", "choice", "auto", "how each step's element-wise work runs: numba (compiled, fused passes), "
        "numpy (the reference code) or auto (numba where it imports)", choices=KERNELS),
    Opt("out", "str", None, "run directory (default runs/<dataset>-<time>)", metavar="RUN_DIR"),
    Opt("eval_every", "possteps", None, "evaluate (loss on the whole training set, validation and test sets, "
        "one metrics row) every N steps, or every P%% of the run's steps; default: at each epoch's end, and "
        "every 10 steps with --batch-size full, whose every step is an epoch", metavar="N|P%", hi=10**12),
    Opt("checkpoint_every", "posint", None, "also write the checkpoint every N optimizer steps (a kill then "
        "loses at most N steps)", metavar="N", hi=10**12),
    Opt("checkpoint_seconds", "positive", 5.0, "write the checkpoint when this many seconds have passed since "
        "the last one (a kill loses about that much work); always at the end and on Ctrl-C or SIGTERM",
        metavar="S",
        hi=7 * 86400),
)
BY_NAME = {o.name: o for o in OPTIONS}
#: options that may accompany --resume: they change where data comes from, how output looks or how
#: often the run is saved, never the arithmetic.
RESUME_OPTIONS = ("data_dir", "download", "threads", "checkpoint_every", "checkpoint_seconds")


# ---------------------------------------------------------------- checking values

#: the kinds of option that take several values (nargs on the command line, a list in TOML)
LIST_KINDS = ("hidden", "rates", "activation")


def _show(value, joined=True) -> str:
    """``value`` as the user wrote it: a command line's several values joined by spaces (``joined``), any
    other list (one a TOML file gave where a single value goes, or a list inside a list) as a list."""
    if isinstance(value, (list, dict)):
        if joined and isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            return " ".join(map(str, value))
        import json

        from steepest._text import cut

        kind = "a list" if isinstance(value, list) else "a table"
        return f"{kind} {cut(json.dumps(value, ensure_ascii=False, default=str), 80)}"
    return value if isinstance(value, str) and value else repr(value)


def _bad(opt: Opt, value, want: str, element=False) -> ConfigError:
    """``value`` is not ``want``; ``element``: it is one of the several values of a list option."""
    joined = opt.kind in LIST_KINDS and not element
    return ConfigError(f"{opt.flag} must be {want}, got {_show(value, joined)}; see `steepest train --help`")


def _number(opt, value, integer=False):
    if isinstance(value, (bool, list, dict)):
        raise _bad(opt, value, "an integer" if integer else "a number", element=True)
    if isinstance(value, str) and not written_plainly(value):  # ASCII, no "_": as _limits.Count and Real read them
        raise _bad(opt, value, "a whole number written in digits 0-9, such as 30 or 1e3" if integer else
                   "a number written in digits 0-9, such as 0.05 or 1e-3")
    if integer and isinstance(value, (int, str)):
        try:
            n = int(value)  # exact, where float() would round a large seed
        except ValueError:
            n = None
        if n is not None:
            if abs(n) >= 2**63:  # beyond int64: NumPy (seeds, counters) cannot take it
                raise _bad(opt, value, "an integer below 2**63")
            return n
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise _bad(opt, value, "an integer" if integer else "a number") from None
    if not math.isfinite(x) or (integer and not x.is_integer()):
        raise _bad(opt, value, "a whole number" if integer else "a finite number")
    if integer and abs(x) >= 2**63:
        raise _bad(opt, value, "an integer below 2**63")
    return int(x) if integer else x


#: the value that turns off an option a recipe or --config file set (its default is "not set")
OFF = "off"


def _share(opt: Opt, value):
    """A count of steps written as a share of the run ("P%"), normalised; None for a count of steps."""
    from steepest.schedules import share_percent

    p = share_percent(value, opt.flag)
    if p is not None:
        if opt.kind == "nonnegsteps" and p == 100:  # a warm-up of the whole run would leave no run
            raise _bad(opt, value, "a share of the run below 100%, such as 1%, or a number of steps")
        return f"{p:g}%"
    try:
        x = float(value) if isinstance(value, (float, str)) else None
    except ValueError:
        x = None
    if x is not None and 0 < x < 1:  # 0.05 meant as a share of the run
        raise _bad(opt, value, f"a number of steps, or a share of the run written \"{100 * x:g}%\"")
    return None


def convert(opt: Opt, value):
    """Check ``value`` (a string from the command line or a TOML value) for ``opt``; return it typed.
    ``off`` (for an option whose default is "not set") returns None: the option is not set."""
    k = opt.kind
    if opt.default is None and k not in ("str", "flag") and value in (OFF, [OFF]):
        return None
    if k == "str":
        if not isinstance(value, str) or not value:
            raise _bad(opt, value, "a non-empty string")
        return value
    if k in ("bool", "flag"):
        if isinstance(value, bool):
            return value
        raise _bad(opt, value, "true or false")
    if k == "rates":
        values = [value] if isinstance(value, (int, float, str)) else value
        if not isinstance(values, list) or not values:
            raise _bad(opt, value, "a list of rates, one for the input and one per hidden layer")
        rates = [_number(opt, v) for v in values]
        if any(not 0 <= p < 1 for p in rates):
            raise _bad(opt, value, "rates in [0, 1)")
        return rates
    if k in ("smoothing", "decay"):  # decay: a factor applied at every step, which must forget (μ, β < 1)
        x = _number(opt, value)
        if not 0 <= x < 1:
            raise _bad(opt, value, "a number in [0, 1), e.g. " + {"label_smoothing": "0.1", "beta2": "0.999"}.get(
                opt.name, "0.9"))
        return x
    if k == "choice":
        if value not in opt.choices:
            raise _bad(opt, value, "one of " + ", ".join(opt.choices))
        return value
    if k == "activation":
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or any(v not in ACTIVATIONS for v in values):
            raise _bad(opt, value, "one of " + ", ".join(ACTIVATIONS) + " (or one per hidden layer)")
        return values[0] if len(values) == 1 else list(values)
    if k == "hidden":
        values = [value] if isinstance(value, (int, str)) else value
        if not isinstance(values, list):
            raise _bad(opt, value, "a list of layer widths")
        from steepest.commands._limits import MAX_LAYERS, MAX_WIDTH

        sizes = [_number(opt, v, integer=True) for v in values]
        if any(not 1 <= s <= MAX_WIDTH for s in sizes) or len(sizes) > MAX_LAYERS:
            raise _bad(opt, value, f"at most {MAX_LAYERS} layer widths, each in 1 … {MAX_WIDTH:,}")
        return sizes
    if k == "batch":
        if value == "full":
            return "full"
        b = _number(opt, value, integer=True)
        if not 1 <= b <= opt.hi:
            raise _bad(opt, value, f"an integer in 1 … {opt.hi:,} or 'full'")
        return b
    if k in ("possteps", "nonnegsteps"):
        share = _share(opt, value)
        if share is not None:
            return share
        k = "posint" if k == "possteps" else "nonnegint"
    if k in ("posint", "nonnegint", "seed", "pieces"):
        n = _number(opt, value, integer=True)
        low = {"posint": 1, "pieces": 2}.get(k, 0)
        if n < low or (opt.hi is not None and n > opt.hi):
            raise _bad(opt, value, f"a whole number of linear pieces per maxout unit, 2 … {opt.hi}" if k == "pieces"
                       else f"an integer >= {low}" + (f" and <= {opt.hi:,}" if opt.hi is not None else ""))
        return n
    x = _number(opt, value)
    if opt.hi is not None and x > opt.hi:
        raise _bad(opt, value, f"at most {opt.hi:g}")
    if k == "positive" and x <= 0:
        what = "learning rate" if opt.name == "lr" else opt.flag
        raise ConfigError(f"{what} must be > 0, got {_show(value)}; give a positive value, e.g. {opt.flag} "
                          f"{'0.05' if opt.name == 'lr' else '1'}")
    if k == "nonneg" and x < 0:
        raise _bad(opt, value, "a number >= 0")
    if k == "fraction" and not 0 < x < 1:
        raise _bad(opt, value, "a fraction between 0 and 1 (exclusive), e.g. 0.1")
    return x


# ---------------------------------------------------------------- the parser and the sources

def add_arguments(parser) -> None:
    """Add every option of :data:`OPTIONS` to ``parser`` with default None (so "given" is visible)."""
    groups = {}
    sections = (("data", "dataset"), ("network", "hidden"), ("optimizer", "optimizer"),
                ("learning-rate schedule", "schedule"), ("batches and stopping", "batch_size"))
    starts = {first: title for title, first in sections}
    group = parser
    for opt in OPTIONS:
        if opt.name in starts:
            group = groups.setdefault(opt.name, parser.add_argument_group(starts[opt.name]))
        default = "" if opt.default is None else f" (default: {_show(opt.default)})".replace("%", "%%")
        if opt.kind == "flag":
            group.add_argument(opt.flag, dest=opt.name, action="store_const", const=True, default=None,
                               help=opt.help)
            group.add_argument("--no-" + opt.flag[2:], dest=opt.name, action="store_const", const=False,
                               default=None, help=f"turn {opt.flag} off (when a recipe or --config sets it)")
            continue
        if opt.kind == "bool":
            group.add_argument("--no-" + opt.name.replace("_", "-"), dest=opt.name, action="store_const",
                               const=False, default=None, help=f"do not {opt.help}")
            continue
        kwargs = {"dest": opt.name, "default": None, "help": opt.help + default}
        if opt.choices:
            kwargs["metavar"] = "{" + ",".join(opt.choices) + "}"
        elif opt.metavar:
            kwargs["metavar"] = opt.metavar
        if opt.kind == "hidden":
            kwargs["nargs"] = "*"
        elif opt.kind in ("activation", "rates"):
            kwargs["nargs"] = "+"
        group.add_argument(opt.flag, **kwargs)


def given(args) -> dict:
    """Options given on the command line, unconverted."""
    return {o.name: getattr(args, o.name) for o in OPTIONS if getattr(args, o.name, None) is not None}


def read_toml(path) -> dict:
    """Options from a TOML file (keys with dashes or underscores), checked."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    from steepest._files import open_regular

    path = Path(path)
    try:
        with open_regular(path, ConfigError, "a TOML file (--config)") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file; give the path of a TOML file") from None
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot read it ({e.strerror or e}); check the path and its permissions") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"--config {path}: not valid TOML in UTF-8 ({e}); fix the file") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays or tables
        raise ConfigError(f"--config {path}: nested too deeply to be a steepest configuration; fix the file") from None
    out = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in BY_NAME:
            raise ConfigError(f"--config {path}: unknown option {key!r}; valid options are the flags of "
                              "`steepest train --help` without the dashes, e.g. batch_size = 128")
        if name in out:
            raise ConfigError(f"--config {path}: option {name} is given twice (as {name} and with dashes); "
                              "keep one")
        out[name] = value
    return out


def read_recipe(name, flag="--recipe") -> dict:
    """The ``[options]`` of the named recipe (:mod:`steepest.recipes`), checked like a ``--config`` file."""
    from steepest import recipes

    try:
        options = recipes.load(name).get("options", {})
    except KeyError:
        shown = repr(name) if len(name) <= 60 else repr(name[:57]) + "…"
        raise ConfigError(f"{flag} {shown}: no such recipe; `steepest recipes` lists them "
                          f"({', '.join(recipes.names())})") from None
    unknown = sorted(k for k in options if k.replace("-", "_") not in BY_NAME)
    if unknown:
        raise ConfigError(f"--recipe {name}: unknown option(s) {', '.join(unknown)}; the recipe file is broken")
    return {k.replace("-", "_"): v for k, v in options.items()}


def resolve(args, notes=None) -> dict:
    """The run's configuration: defaults, then ``--recipe``, then ``--config`` TOML, then the command line;
    all checked. A recipe's schedule, optimizer or maxout option that the schedule, optimizer or activation
    chosen over it does not use (its warm-up under ``--schedule onecycle``, its momentum under ``--optimizer
    adam``, its pieces under ``--activation relu``) is left out, saying so in ``notes``; the same option
    given by the user is an error, which says where an option came from when not from the command line."""
    cfg = {o.name: o.default for o in OPTIONS}
    recipe = read_recipe(args.recipe) if getattr(args, "recipe", None) else {}
    labelled = [("the recipe's ", recipe)] + \
        ([("the --config file's ", read_toml(args.config))] if getattr(args, "config", None) else []) + \
        [("", given(args))]
    sources = [source for _, source in labelled]
    for source in sources:
        for name, value in source.items():
            cfg[name] = convert(BY_NAME[name], value)
    named = set().union(*sources)
    if "epochs" not in named and (cfg["max_steps"] is not None or cfg["time_budget"] is not None):
        cfg["epochs"] = None  # the default number of epochs applies only when no other bound is given
    overridden = set().union(*sources[1:])
    for name, key in list(_unused(cfg)):
        if name in recipe and name not in overridden:
            if notes is not None:
                notes.append(f"note: the recipe's {BY_NAME[name].flag} {_show(recipe[name])} is left out: "
                             f"--{key} {_show(cfg[key])} does not use it")
            cfg[name] = None
    if "data_dir" in labelled[-1][1]:  # typed now (a recorded one may be gone: the search passes over it)
        from steepest.commands._limits import check_data_dir

        check_data_dir(cfg["data_dir"])
    origin = {}  # where each option came from: the last source that gives it
    for label, source in labelled:
        origin.update(dict.fromkeys(source, label))
    check(cfg, origin)
    return cfg


def chosen_with(name) -> dict:
    """The options of the validation run that chose recipe ``name`` where they differ from its final model's
    (``[recipe] chosen_with``, typed), or {} for a recipe whose final model keeps its validation split. A
    recipe has one or the other — a split in ``[options]``, or ``chosen_with`` holding the split it was chosen
    on — and ``[options]`` with ``chosen_with`` over them must be a valid run."""
    from steepest import recipes

    return check_chosen_with(name, read_recipe(name), recipes.load(name).get("recipe", {}).get("chosen_with"))


def check_chosen_with(name, options: dict, given) -> dict:
    """:func:`chosen_with` of a recipe ``name`` with ``[options]`` ``options`` and ``chosen_with`` ``given``."""
    where = f"recipe {name}: chosen_with"
    try:
        final = {k: convert(BY_NAME[k], v) for k, v in options.items()}
    except ConfigError as e:
        raise ConfigError(f"recipe {name}: {e}; the recipe file is broken") from None
    if given is None:
        if not final.get("val_split"):
            raise ConfigError(f"recipe {name} holds out no validation split and has no chosen_with naming the one "
                              "it was chosen on; the recipe file is broken")
        return {}
    if not isinstance(given, dict):
        raise ConfigError(f"{where} must be a table of options, got {given!r:.60}; the recipe file is broken")
    given = {k.replace("-", "_"): v for k, v in given.items()}  # as [options] and --config files take them
    unknown = sorted(k for k in given if k not in BY_NAME)
    if unknown:
        raise ConfigError(f"{where} has {', '.join(f'{k!r:.40}' for k in unknown[:3])}, not an option of steepest "
                          "train; the recipe file is broken")
    try:
        chosen = {k: convert(BY_NAME[k], v) for k, v in given.items()}
        if chosen.get("val_split") is None or final.get("val_split") is not None:
            raise ConfigError("it must hold the validation split the recipe was chosen on, and [options] none "
                              "(its final model trains on all the training data)")
        check({o.name: o.default for o in OPTIONS} | final | chosen)
    except ConfigError as e:
        raise ConfigError(f"{where}: {str(e):.300}; the recipe file is broken") from None
    return chosen


def as_pairs(options: dict) -> str:
    """``val_split = 0.1, epochs = 300``: options on one line as TOML writes values (None as ``off``)."""
    import json

    return ", ".join(f"{k} = {'off' if v is None else json.dumps(v, ensure_ascii=False)}" for k, v in options.items())


def check(cfg: dict, origin: dict | None = None) -> None:
    """Cross-option checks that do not need the data; ``origin`` names where an option came from when not
    from the command line ("the recipe's ", "the --config file's ")."""
    from steepest.commands._limits import check_pieces

    def of(name):
        return (origin or {}).get(name, "")

    acts, hidden = cfg["activation"], cfg["hidden"]
    if isinstance(acts, list) and len(acts) != len(hidden):
        raise ConfigError(f"--activation lists {len(acts)} names for {len(hidden)} hidden layers; give one name, "
                          "or one per --hidden layer")
    if cfg.get("pieces") is not None and not hidden:
        raise ConfigError(f"--pieces {cfg['pieces']} is for maxout layers, and --hidden gives no hidden layer; "
                          "give hidden widths, or remove --pieces (--pieces off where a recipe or --config sets it)")
    check_pieces(cfg.get("pieces"), acts, off=True, origin=of("pieces"))
    if cfg.get("dropout") is not None and len(cfg["dropout"]) != len(hidden) + 1:
        raise ConfigError(f"{of('dropout')}--dropout lists {len(cfg['dropout'])} rates for the input and "
                          f"{len(hidden)} hidden layers; give {len(hidden) + 1}"
                          + (" (--dropout off for none)" if of("dropout") else ""))
    fallback = cfg.get("fallback")
    if fallback is not None:  # read only when --dataset is missing: checked now, not on the day it is needed
        from steepest.data.datasets import KNOWN_DATASETS, is_user_file

        if fallback not in KNOWN_DATASETS and not is_user_file(fallback):
            raise ConfigError(f"--fallback {fallback!r} is neither a dataset nor a data file; give one of "
                              f"{', '.join(KNOWN_DATASETS)}, or a file's path")
    if cfg["patience"] is not None and cfg["val_split"] is None:
        raise ConfigError("--patience needs a validation set; add --val-split 0.1")
    missing = [BY_NAME[n].flag for n, kw in SCHEDULE_FLAGS.items()
               if kw in SCHEDULE_OPTIONS[cfg["schedule"]][0] and cfg[n] is None]
    if missing:
        raise ConfigError(f"--schedule {cfg['schedule']} needs {' and '.join(missing)}; e.g. "
                          + " ".join(f"{f} {_EXAMPLE[f]}" for f in missing))
    if cfg["schedule"] == "cosine" and cfg["lr_min"] is not None and cfg["lr_min"] > cfg["lr"]:
        raise ConfigError(f"--lr-min {cfg['lr_min']:g} is above --lr {cfg['lr']:g}: the cosine falls from --lr to "
                          "--lr-min; give a smaller --lr-min (0 by default)")
    if "total_steps" in SCHEDULE_OPTIONS[cfg["schedule"]][0] and cfg["epochs"] is None and cfg["max_steps"] is None:
        raise ConfigError(f"--schedule {cfg['schedule']} spans the whole run, and --time-budget alone does not say "
                          "how many steps that is; give --epochs or --max-steps as well")
    for name, key in _unused(cfg):
        raise ConfigError(f"{BY_NAME[name].flag} does not apply to --{key} {cfg[key]}; remove it or choose "
                          f"{'an' if key == 'optimizer' else 'a'} {key} that uses it")


def _unused(cfg: dict):
    """``(option, "schedule" | "optimizer" | "activation")`` for each option set that the chosen schedule,
    optimizer or activations do not take (``pieces`` without a maxout layer)."""
    for flags, accepts, key in ((SCHEDULE_FLAGS, _SCHEDULE_ACCEPTS, "schedule"),
                                (OPTIMIZER_FLAGS, _OPTIMIZER_ACCEPTS, "optimizer")):
        for name, kw in flags.items():
            if cfg[name] is not None and kw not in accepts[cfg[key]]:
                yield name, key
    acts = cfg["activation"]
    if cfg["pieces"] is not None and "maxout" not in ([acts] if isinstance(acts, str) else acts):
        yield "pieces", "activation"


_SCHEDULE_ACCEPTS = {name: required + optional for name, (required, optional) in SCHEDULE_OPTIONS.items()}
_EXAMPLE = {"--step-size": "1000", "--gamma": "0.5", "--warmup-steps": "1%"}


def to_toml(cfg: dict) -> str:
    """The resolved configuration as TOML text (None values left out: TOML has no null)."""
    import tomli_w

    return tomli_w.dumps({k: v for k, v in cfg.items() if v is not None and not k.startswith("_")})


# ---------------------------------------------------------------- building the pieces

def steps(cfg: dict, name: str, steps_per_epoch: int):
    """Option ``name`` as a number of steps: as given, or "P%" of the run's steps (an evaluation cadence at least 1)."""
    from steepest.schedules import run_length, share_steps

    return share_steps(cfg.get(name), run_length(cfg["epochs"], cfg["max_steps"], steps_per_epoch),
                       BY_NAME[name].flag, least=1 if BY_NAME[name].kind == "possteps" else 0,
                       within=name == "warmup_steps" and cfg["schedule"] == "cosine")


def eval_every(cfg: dict, steps_per_epoch: int):
    """Steps between evaluations (None: at each epoch's end; full batch: every few steps)."""
    from steepest.records import default_eval_every

    return default_eval_every(cfg["batch_size"], steps(cfg, "eval_every", steps_per_epoch))


def optimizer_kwargs(cfg: dict) -> dict:
    return {kw: cfg[name] for name, kw in OPTIMIZER_FLAGS.items() if cfg[name] is not None}


def make_schedule(cfg: dict, steps_per_epoch: int):
    """The learning-rate schedule; ``total_steps`` = epochs × steps per epoch (or --max-steps if fewer)."""
    from steepest.schedules import make_schedule as make, run_length

    kwargs = {kw: steps(cfg, name, steps_per_epoch) for name, kw in SCHEDULE_FLAGS.items() if cfg[name] is not None}
    total = run_length(cfg["epochs"], cfg["max_steps"], steps_per_epoch)
    if cfg["schedule"] == "cosine" and total is not None and kwargs.get("warmup_steps", 0) >= total:
        raise ConfigError(f"--warmup-steps {cfg['warmup_steps']} is not shorter than the run's {total:,} steps, so "
                          "the cosine would never start; give fewer steps or a share such as 5%")
    return make(cfg["schedule"], cfg["lr"], total_steps=run_length(cfg["epochs"], cfg["max_steps"], steps_per_epoch),
                **kwargs)
