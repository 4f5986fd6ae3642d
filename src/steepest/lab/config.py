"""What the lab's page may set, and the checks that turn bad input into one clear message.

Every value from the page or the API goes through :func:`check_config` (or :func:`check_racer`)
before it reaches the running training, so a negative learning rate, a batch of 0 or a hidden
layer of a million units is refused with a :class:`~steepest.errors.ConfigError` (HTTP 400) and
the run goes on untouched.
"""

from __future__ import annotations

import math

from steepest.errors import ConfigError
from steepest.registry import ACTIVATIONS, INITS, OPTIMIZER_OPTIONS, OPTIMIZERS

#: datasets the page offers; named ones are loaded on demand, a FILE given on the command line joins them
BUNDLED = ("digits", "moons", "circles", "spirals", "xor", "mnist", "fashion-mnist")
DEFAULTS = {"dataset": "digits", "hidden": [32], "activation": "relu", "init": "he", "optimizer": "momentum",
            "lr": 0.05, "momentum": 0.9, "batch_size": 64, "eps": None, "seed": 0}
#: keys whose change needs a new θ₀ (a reset); the others apply to the running training
STRUCTURAL = ("dataset", "hidden", "activation", "init", "seed")
#: one hidden layer's width, hidden layers, parameters: what a page trains live (`steepest lab`'s
#: --hidden, --lr and --seed are parsed with these same bounds, so the CLI and the API state one limit)
MAX_LAYER, MAX_LAYERS, MAX_PARAMS = 2048, 6, 5_000_000
MAX_LR = 1e3
#: a reset draws θ₀ from the next seed modulo 2³² (engine.reset), so seeds stay below it
MAX_SEED = 2**32 - 1
#: characters of a value echoed in an error message: enough to recognise it, never a page of it
SHOWN = 60
BUDGETS = {"steps": 4, "samples": 512, "seconds": 0.05}  # per racer per tick
MAX_RACERS = 4
#: the racers the page offers before anyone changes them (checked by :func:`check_racer` in the tests)
RACE_DEFAULTS = ({"optimizer": "gd", "lr": 0.5, "batch_size": "full"},
                 {"optimizer": "sgd", "lr": 0.1, "batch_size": 32},
                 {"optimizer": "momentum", "lr": 0.05, "batch_size": 32})


def choices() -> dict:
    """What the page's menus offer, from :mod:`steepest.registry` and this module — so the page
    never lists a name of its own: activations, inits, optimizers (with the options each accepts),
    budgets per tick, the racers offered first, and the most racers a race may have."""
    return {"activations": list(ACTIVATIONS), "inits": list(INITS), "optimizers": list(OPTIMIZERS),
            "optimizer_options": {k: list(v) for k, v in OPTIMIZER_OPTIONS.items()}, "budgets": list(BUDGETS),
            "race_defaults": [dict(r) for r in RACE_DEFAULTS], "max_racers": MAX_RACERS}


def short(value) -> str:
    """``repr(value)``, cut to :data:`SHOWN` characters, for an error message that echoes what it refuses."""
    text = repr(value)
    return text if len(text) <= SHOWN else f"{text[:SHOWN - 12]}… ({len(text):,} characters)"


def _fmt(x) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"  # as the command line's bounds are written


def _number(key, value, low=None, high=None, open_low=False, integer=False):
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    # an int is compared as an int: math.isfinite(10**400) would raise OverflowError
    if isinstance(value, bool) or not ok_type or (isinstance(value, float) and not math.isfinite(value)):
        want = "an integer" if integer else "a finite number"
        raise ConfigError(f"{key} must be {want}, got {short(value)}")
    if low is not None and (value <= low if open_low else value < low):
        raise ConfigError(f"{key} must be {'>' if open_low else '≥'} {low:g}, got {short(value)}")
    if high is not None and value > high:
        raise ConfigError(f"{key} must be at most {_fmt(high)}, got {short(value)}")
    return value


def _batch(value):
    if value in ("full", None):
        return "full"
    return _number("batch_size", value, low=1, integer=True)


def _hidden(value):
    if not isinstance(value, list) or len(value) > MAX_LAYERS:
        raise ConfigError(f"hidden must be a list of at most {MAX_LAYERS} layer widths, got {short(value)}")
    return [_number("hidden width", v, low=1, high=MAX_LAYER, integer=True) for v in value]


def _choice(key, value, choices):
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {short(value)}")
    return value


CHECKS = {
    "dataset": lambda v, datasets: _choice("dataset", v, datasets),
    "hidden": lambda v, _: _hidden(v),
    "activation": lambda v, _: _choice("activation", v, ACTIVATIONS),
    "init": lambda v, _: _choice("init", v, INITS),
    "optimizer": lambda v, _: _choice("optimizer", v, OPTIMIZERS),
    "lr": lambda v, _: _number("lr", v, low=0, high=MAX_LR, open_low=True),
    "momentum": lambda v, _: _number("momentum", v, low=0, high=0.999),
    "batch_size": lambda v, _: _batch(v),
    "eps": lambda v, _: None if v is None else _number("eps", v, low=0, open_low=True),
    "seed": lambda v, _: _number("seed", v, low=0, high=MAX_SEED, integer=True),
}


def check_config(update, current: dict, datasets=BUNDLED) -> dict:
    """``current`` with the entries of ``update`` (a JSON object from the page) checked and applied.

    Raises ConfigError naming the first bad entry; ``current`` is not modified.
    """
    if not isinstance(update, dict):
        raise ConfigError(f"the configuration must be a JSON object, got {type(update).__name__}")
    unknown = sorted(set(update) - set(CHECKS))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(map(short, unknown))}; known: {', '.join(CHECKS)}")
    out = dict(current)
    for key, value in update.items():
        out[key] = CHECKS[key](value, datasets)
    return out


def check_size(sizes, activation="relu") -> None:
    """Refuse a network too large for a page to train live (more than MAX_PARAMS parameters; a maxout layer
    counts its pieces), before any parameter is allocated."""
    from steepest.network import MLP

    p = MLP(sizes, activation=activation).n_params  # the layout alone: θ is not allocated
    if p > MAX_PARAMS:
        raise ConfigError(f"a {'-'.join(map(str, sizes))} network has {p:,} parameters; the lab trains at most "
                          f"{MAX_PARAMS:,}: use smaller hidden layers")


def check_batch_fits(cfg: dict, n: int) -> None:
    if cfg["batch_size"] != "full" and cfg["batch_size"] > n:
        raise ConfigError(f"batch size {cfg['batch_size']} is larger than the {n} training samples; "
                          f"use at most {n}, or full")


def check_racer(spec, base: dict) -> dict:
    """One racer of a race: ``{"optimizer", "lr", "momentum", "batch_size"}`` over ``base``'s values."""
    if not isinstance(spec, dict):
        raise ConfigError(f"each racer must be a JSON object, got {short(spec)}")
    allowed = ("optimizer", "lr", "momentum", "batch_size")
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown racer setting(s) {', '.join(map(short, unknown))}; known: {', '.join(allowed)}")
    out = {k: base[k] for k in allowed}
    for key, value in spec.items():
        out[key] = CHECKS[key](value, ())
    return out


def check_budget(kind) -> str:
    return _choice("budget", kind, tuple(BUDGETS))
