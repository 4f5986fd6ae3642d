"""TOML configs: tomllib.loads, then steepest's own ``--config`` reader on the same bytes.

The config reader is :func:`steepest.commands._trainconfig.resolve` (which calls ``read_toml``,
``convert`` and ``check``), found by grepping for tomllib; if it is absent the target is skipped.
The same inputs go to ``tomllib.loads`` alone in the ``tomllib`` target (targets/tomllib.py),
for reference: what the standard library lets through is what steepest's reader must catch.
"""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import mutate
from targets.common import Case, expect

NAME = "toml"


def available() -> str | None:
    """None if the config reader exists, else why the target is skipped."""
    try:
        from steepest.commands._trainconfig import resolve  # noqa: F401
    except ImportError as e:
        return f"no TOML config reader in steepest ({e})"
    return None


def _options():
    from steepest.commands._trainconfig import OPTIONS

    return OPTIONS


VALUES = ['1', '0', '-1', '0.05', '1e400', '-inf', 'nan', 'inf', 'true', 'false', '"full"', '""',
          '"relu"', '["relu", "tanh"]', '[]', '[128, 64]', '[0]', '[-5]', '[1.5]', '["x"]', '[[1]]',
          '{a = 1}', '9223372036854775807', '-9223372036854775808', '1979-05-27T07:32:00Z',
          '"momentum"', '"adam"', '"cosine"', '"step"', '"onecycle"', '0.1', '1.0', '"mnist"',
          '"\\u0000"', "'''multi\nline'''", '0x10', '0o17', '0b101', '1_000', '+1', '[' * 60 + ']' * 60]


def config_text(r: random.Random) -> str:
    opts = _options()
    lines = []
    for _ in range(r.choice([0, 1, 2, 3, 5, 8])):
        opt = r.choice(opts)
        key = opt.name if r.random() < 0.7 else opt.name.replace("_", "-")
        if r.random() < 0.05:
            key = r.choice(["nope", "\"quoted key\"", "a.b", "LR", "batch size"])
        if opt.choices and r.random() < 0.5:
            value = f'"{r.choice(opt.choices)}"'
        elif opt.default is not None and r.random() < 0.3:
            value = repr(opt.default).replace("'", '"').replace("True", "true").replace("False", "false")
        else:
            value = r.choice(VALUES)
        lines.append(f"{key} = {value}")
    if r.random() < 0.1:
        lines.insert(r.randrange(len(lines) + 1), r.choice(["[section]", "[[arr]]", "# comment", ""]))
    return "\n".join(lines) + "\n"


def seeds() -> list[bytes]:
    r = random.Random(0)
    return [config_text(r).encode() for _ in range(30)] + [
        b'lr = 0.1\noptimizer = "adam"\nbeta1 = 0.9\n', b'hidden = [64]\nbatch-size = "full"\n']


def mutate_bytes(r: random.Random, data: bytes, pool) -> bytes:
    what = r.random()
    if what < 0.5:
        return config_text(r).encode()
    if what < 0.6:
        blob = r.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\r", b"\x7f", b"\xef\xbb\xbf"])
        i = r.randrange(len(data) + 1)
        return data[:i] + blob + data[i:]
    if what < 0.62:
        return b"a = " + b"[" * r.choice([200, 1000, 5000]) + b"]" * 10
    return mutate.havoc(r, data, pool)


def generate(r: random.Random, pool) -> Case:
    return Case(mutate_bytes(r, r.choice(pool), pool), how="config", suffix=".toml")


def prepare(case: Case, work: Path):
    p = work / "run.toml"
    p.write_bytes(case.data)
    if case.how == "tomllib":
        tomllib = _tomllib()
        return (lambda: tomllib.loads(case.data.decode("utf-8", "replace"))), [p]
    from steepest.commands._trainconfig import resolve

    return (lambda: resolve(SimpleNamespace(config=str(p)))), [p]


def typed_errors(case: Case) -> tuple:
    """Exceptions that count as a proper refusal: tomllib's own, or steepest's."""
    from steepest.errors import SteepestError

    return (_tomllib().TOMLDecodeError,) if case.how == "tomllib" else (SteepestError,)


def check(result, case: Case):
    expect(isinstance(result, dict), f"returned {type(result).__name__}, not a dict")


def _tomllib():
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    return tomllib


def clear(message: str, case: Case, paths) -> bool:
    """A config error should name the file or the option (its --flag)."""
    from targets.common import names_a_file

    return case.how == "tomllib" or names_a_file(message, paths) or "--" in message
