"""Named training recipes shipped with steepest: ``steepest train --recipe NAME``, ``steepest recipes``.

Each recipe is a TOML file here, ``NAME.toml``, with two tables: ``[recipe]`` (``title``, ``target`` test
accuracy, the ``anchor`` result it is measured against, ``budget`` per seed) and ``[options]`` (options of
``steepest train``, keys as its flags without the dashes). The test split never chooses anything: every
recipe was chosen on a seeded validation split of the training data. Its final model either keeps that
split held out (``val_split`` in ``[options]``, reported with the run) or trains on all the training data,
and then ``[recipe]`` says with which options the validation run chose it: ``chosen_with = {val_split =
0.1, epochs = 300}``, where they differ from ``[options]``.

``measured.toml`` holds what ``benchmarks/accuracy.py`` measured for each recipe (seeds, mean and spread
of the test accuracy, epochs, wall time, machine) — absent for a recipe nobody has measured yet.
Standard library only.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["names", "load", "measured", "fingerprint"]


def _toml():
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    return tomllib


def _files():
    return resources.files(__name__)


def names() -> list[str]:
    """The recipes' names, sorted."""
    return sorted(p.name[:-5] for p in _files().iterdir() if p.name.endswith(".toml") and p.name != "measured.toml")


def load(name: str) -> dict:
    """The recipe ``name``: ``{"recipe": {...}, "options": {...}}``; KeyError when there is none."""
    if name not in names():
        raise KeyError(name)
    return _toml().loads(_files().joinpath(name + ".toml").read_text(encoding="utf-8"))


def measured() -> dict:
    """``name → results`` from ``measured.toml`` (empty when nothing was measured)."""
    f = _files().joinpath("measured.toml")
    return _toml().loads(f.read_text(encoding="utf-8")) if f.is_file() else {}


def fingerprint(name: str) -> str:
    """A short hash of recipe ``name``'s options: ``measured.toml`` keeps the one it measured, so a result
    measured on an earlier version of the recipe is not shown as this version's."""
    import hashlib
    import json

    options = json.dumps(load(name)["options"], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(options.encode("utf-8")).hexdigest()[:16]
