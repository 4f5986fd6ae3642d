"""JSON values of every type and depth, for metadata and report files.

``value(r)`` draws null, booleans, integers (0, −1, 2**47, 2**63, 10**400 written out, …), floats
(NaN, ±Infinity as Python's json writes them, 1e308, −0.0), strings (empty, digits in other
scripts such as "²" and "١", NUL, lone surrogates escaped, 5,000 digits), lists and objects,
nested up to ``depth``, and now and then a value nested thousands of levels deep (which json's
recursive decoder turns into RecursionError).
"""

from __future__ import annotations

import json
import random

INTS = [0, 1, -1, 2, 7, 255, 2**31, 2**32 - 1, 2**47, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30]
FLOATS = [0.0, -0.0, 0.5, 1e-320, 1e308, -1e308, float("nan"), float("inf"), float("-inf"), 0.1, 3.0]
STRINGS = ["", "1", "0", "-1", "²", "١٢", "1_0", " 1", "1e3", "abc", "relu", "he", "zero", "float32",
           "\x00", "\ud800", "x" * 5000, "9" * 5000, "[", "{}", "null", "NaN"]


def scalar(r: random.Random):
    k = r.random()
    if k < 0.1:
        return None
    if k < 0.2:
        return r.random() < 0.5
    if k < 0.5:
        return r.choice(INTS)
    if k < 0.75:
        return r.choice(FLOATS)
    return r.choice(STRINGS)


def value(r: random.Random, depth: int = 3):
    """A random JSON value; containers nest at most ``depth`` levels."""
    k = r.random()
    if depth <= 0 or k < 0.55:
        return scalar(r)
    if k < 0.8:
        return [value(r, depth - 1) for _ in range(r.choice([0, 1, 2, 4]))]
    keys = ["sizes", "lr", "seed", "init", "bias", "name", "class_names", "image_shape", "input_scale",
            "activation", "dtype", "l2", "epoch", "train_loss", "stop_reason", "table", "budget", "x"]
    return {r.choice(keys): value(r, depth - 1) for _ in range(r.choice([0, 1, 2, 3]))}


def text(r: random.Random, obj=None) -> str:
    """``obj`` (or a random value) as JSON text; sometimes nested thousands deep or cut short."""
    k = r.random()
    if k < 0.05:
        n = r.choice([100, 1000, 2000, 20000])
        return "[" * n + "]" * n
    if k < 0.08:
        return '{"a":' * 3000 + "1" + "}" * 3000
    s = json.dumps(value(r) if obj is None else obj, ensure_ascii=r.random() < 0.5)
    if k < 0.12 and s:
        return s[: r.randrange(len(s))]
    return s
