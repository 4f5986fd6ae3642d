"""Bounds of every size-like or numeric command-line option, declared where the option is.

Each is an argparse ``type=``: it parses the text strictly and checks the range, so a value
out of bounds is a usage error (one line, exit status 2) that states the limit, before any
data is read. The limits are the ones past which a run cannot finish in reasonable time or
memory, or the arithmetic itself breaks (an integer NumPy cannot hold, a float that overflows);
they are listed in each option's error message. ``tests/test_cli_sweep.py`` walks every
command's options and tries values at and past these bounds.
"""

from __future__ import annotations

import argparse
import math

#: largest seed: NumPy's generators take any integer, but the model file stores it as int64
MAX_SEED = 2**63 - 1
#: BLAS threads: more than this is a typing mistake on any machine this runs on
MAX_THREADS = 1024
#: one hidden layer's width, and the number of hidden layers
MAX_WIDTH = 65_536
MAX_LAYERS = 64
#: parameters of a network a command may build: 2**30 float32 values are 4 GiB
MAX_PARAMS = 2**30


def _fmt(x) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def written_plainly(text: str, integer: bool = False) -> bool:
    """``text`` is a number as the command line documents them: ASCII, no ``_`` separators (``float`` and ``int``
    would also take ``1_0`` and other scripts' digits, ``٣``), and for an integer only digits after a sign."""
    s = str(text).strip()
    if not s.isascii() or "_" in s:
        return False
    digits = s[1:] if s[:1] in "+-" else s
    return digits.isdigit() and len(digits) <= 40 if integer else True


class Count:
    """An integer in ``lo … hi`` written in decimal digits (``1e3`` and ``2.0`` are refused)."""

    def __init__(self, lo: int, hi: int, what: str = "an integer"):
        self.lo, self.hi, self.what = lo, hi, what
        self.__name__ = "integer"

    def __call__(self, text: str) -> int:
        s = str(text).strip()
        if not written_plainly(s, integer=True):
            raise argparse.ArgumentTypeError(f"must be {self.what} in {_fmt(self.lo)} … {_fmt(self.hi)} "
                                             f"(written in digits), got {text!r}")
        n = int(s)
        if not self.lo <= n <= self.hi:
            raise argparse.ArgumentTypeError(f"must be {self.what} in {_fmt(self.lo)} … {_fmt(self.hi)}, got {text}")
        return n


class Real:
    """A finite number in ``lo … hi`` (``lo`` excluded when ``open_lo``)."""

    def __init__(self, lo: float, hi: float, open_lo: bool = False):
        self.lo, self.hi, self.open_lo = lo, hi, open_lo
        self.__name__ = "number"

    def __call__(self, text: str) -> float:
        try:
            x = float(text) if written_plainly(text) else math.nan
        except (TypeError, ValueError):
            x = math.nan
        low_ok = x > self.lo if self.open_lo else x >= self.lo
        if not (math.isfinite(x) and low_ok and x <= self.hi):
            rng = f"{'>' if self.open_lo else '>='} {_fmt(self.lo)} and <= {_fmt(self.hi)}"
            raise argparse.ArgumentTypeError(f"must be a finite number {rng}, got {text!r}")
        return x


def existing_dir(text: str) -> str:
    """An argparse type: a directory that exists (``--data-dir``: a folder that is not there would be passed
    over by the search without a word)."""
    from pathlib import Path

    if not Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {text}")
    return text


def check_data_dir(data_dir) -> None:
    """:func:`existing_dir` for train, whose options are read outside argparse (and on --resume only when typed:
    a run's recorded folder may be gone with the data found elsewhere)."""
    from steepest.errors import ConfigError

    if data_dir is None:
        return
    try:
        existing_dir(data_dir)
    except argparse.ArgumentTypeError:
        raise ConfigError(f"--data-dir {data_dir}: no such directory; give the folder that holds mnist/ and "
                          "fashion-mnist/ (or one dataset's files)") from None


SEED = Count(0, MAX_SEED, "a seed")
THREADS = Count(1, MAX_THREADS, "a thread count")
WIDTH = Count(1, MAX_WIDTH, "a layer width")
N_SAMPLES = Count(0, 10**9, "a number of rows")
LR = Real(0.0, 1e6, open_lo=True)


def check_pieces(pieces, activation, off=False, origin="") -> None:
    """Refuse ``--pieces`` when no hidden activation is maxout, naming the flag (the network's own check names
    its parameter); an unknown activation name is left to the activation's own check."""
    from steepest.errors import ConfigError
    from steepest.registry import ACTIVATIONS

    names = [activation] if isinstance(activation, str) else list(activation)
    if pieces is not None and "maxout" not in names and set(names) <= set(ACTIVATIONS):
        raise ConfigError(f"{origin}--pieces {pieces} is for maxout layers; add --activation maxout, or remove --pieces"
                          + (" (--pieces off where a recipe or --config sets it)" if off else ""))


def check_network(sizes, option="--hidden", activation="relu", pieces=None) -> None:
    """Refuse a network with more than :data:`MAX_LAYERS` hidden layers or :data:`MAX_PARAMS` parameters,
    counted by the network's own layout (a maxout layer has ``pieces`` weight columns per unit) before any
    parameter is allocated."""
    from steepest.errors import ConfigError
    from steepest.network import MLP

    if len(sizes) - 2 > MAX_LAYERS:
        raise ConfigError(f"{option} gives {len(sizes) - 2} hidden layers, more than the limit of {MAX_LAYERS}; "
                          "give fewer layers")
    n = MLP(sizes, activation=activation, pieces=pieces).n_params
    if n > MAX_PARAMS:
        raise ConfigError(f"the network {'-'.join(map(str, sizes))} has {n:,} parameters, more than the limit of "
                          f"{MAX_PARAMS:,} (4 GiB as float32); give narrower {option} layers")
