"""Python's own tomllib on the inputs of the toml target, for reference.

Allowed: a dict or ``TOMLDecodeError``. Anything else (a RecursionError on deeply nested arrays,
say) is the standard library's behaviour, not steepest's, so the report lists it apart and leaves
it out of steepest's crash count; it shows what steepest's own config reader has to catch.
"""

from __future__ import annotations

import random

from targets import toml as _toml
from targets.common import Case

NAME = "tomllib"
STDLIB = True


def available() -> str | None:
    return "runs beside the toml target, which is skipped" if _toml.available() else None


seeds = _toml.seeds
mutate_bytes = _toml.mutate_bytes
prepare = _toml.prepare
typed_errors = _toml.typed_errors
check = _toml.check
clear = _toml.clear


def generate(r: random.Random, pool) -> Case:
    return Case(mutate_bytes(r, r.choice(pool), pool), how="tomllib", suffix=".toml")
