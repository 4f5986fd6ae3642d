"""Directories for ``steepest report``: the files it reads, with contents of every JSON type and depth.

A case is a directory spec (JSON: file name → content as latin-1 text, or a special kind): any of
config.toml, metrics.jsonl, summary.json, landscape.json, explain.json, x.png and sub/y.png, with
JSON values of every type and depth, invalid or non-UTF-8 text, lines cut short, objects where
lists are expected and the reverse; and now and then a FIFO, a directory or a dangling symlink
under one of those names. ``write_report`` must write a page or raise a SteepestError.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

# matplotlib is imported now, not inside the first input's time limit: an alarm that cuts its
# import short leaves it half-initialised (KeyError 'Line2D:kwdoc' on every later figure).
import matplotlib.backends.backend_agg  # noqa: E402,F401
import matplotlib.figure  # noqa: E402,F401

from targets import jsonvalues
from targets.common import Case, expect

NAME = "reports"
FILES = ["config.toml", "metrics.jsonl", "summary.json", "landscape.json", "explain.json", "x.png", "sub/y.png"]
SPECIAL = ["@fifo", "@dir", "@dangling"]


def _record(r: random.Random) -> dict:
    rec = {"epoch": r.choice([1, 2, 3, 1.5, "1", None, True, float("nan")])}
    for key in ("train_loss", "test_acc", "val_loss", "grad_norm", "stop_reason"):
        if r.random() < 0.5:
            rec[key] = jsonvalues.scalar(r) if r.random() < 0.7 else jsonvalues.value(r, 2)
    return rec


def _content(r: random.Random, name: str) -> str:
    k = r.random()
    if k < 0.06:
        return r.choice(SPECIAL)
    if k < 0.12:
        return "\ud800\udfff\ud800" + jsonvalues.text(r)  # written with surrogatepass: not UTF-8
    if name == "metrics.jsonl":
        if r.random() < 0.15:  # numbers that plot: the curves are drawn (slow; not too often)
            return "\n".join(json.dumps({"epoch": e, "train_loss": 1.0 / e}) for e in range(1, 4))
        return "\n".join(json.dumps(_record(r)) if r.random() < 0.8 else jsonvalues.text(r)
                         for _ in range(r.choice([0, 1, 2, 5])))
    if name == "summary.json" and r.random() < 0.5:
        return json.dumps({"table": jsonvalues.value(r, 3), "budget": jsonvalues.value(r, 2),
                           "eval": jsonvalues.scalar(r)})
    if name.endswith(".png"):
        return "\x89PNG\r\n\x1a\n" if r.random() < 0.5 else jsonvalues.text(r)
    if name == "config.toml":
        return "lr = 0.1\n" if r.random() < 0.5 else jsonvalues.text(r)
    return jsonvalues.text(r)


def spec(r: random.Random) -> bytes:
    files = {n: _content(r, n) for n in r.sample(FILES, r.randrange(0, len(FILES) + 1))}
    return json.dumps(files).encode()  # ASCII: \u escapes carry the odd characters


def seeds() -> list[bytes]:
    return [spec(random.Random(i)) for i in range(10)]


def mutate_bytes(r: random.Random, data: bytes, pool) -> bytes:
    return spec(r)


def generate(r: random.Random, pool) -> Case:
    return Case(spec(r), how="report", suffix=".json")


def build(data: bytes, d: Path) -> None:
    """Make the directory ``d`` a case describes."""
    d.mkdir()
    files = json.loads(data.decode("utf-8", "replace"))
    for name, content in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if content == "@fifo":
            os.mkfifo(p)
        elif content == "@dir":
            p.mkdir()
        elif content == "@dangling":
            p.symlink_to(d / "nowhere")
        else:
            p.write_bytes(content.encode("utf-8", "surrogatepass"))  # lone surrogates: invalid UTF-8


def prepare(case: Case, work: Path):
    import shutil

    from steepest.viz.report import write_report

    d = work / "run"
    if d.exists():
        shutil.rmtree(d)
    build(case.data, d)
    return (lambda: write_report(d, work / "report.html")), [d]


def check(result, case: Case):
    expect(Path(result).is_file() and Path(result).stat().st_size > 0, "no report written")
