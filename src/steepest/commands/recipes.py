"""``steepest recipes``: the named training recipes, their targets and what was measured."""

from __future__ import annotations

import argparse

from steepest.commands._common import Output, add_json_flag

HELP = "list the named training recipes and their measured results"
EPILOG = """\
examples:
  steepest recipes
  steepest recipes --json
  steepest train --recipe mnist-record

Measured results come from `python benchmarks/accuracy.py` (benchmarks/ACCURACY.md); a recipe
nobody has measured on full runs says so.
"""


def add_parser(subparsers):
    p = subparsers.add_parser("recipes", help=HELP, description=HELP + ".", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--show", metavar="NAME", help="print one recipe's TOML options")
    add_json_flag(p)
    return p


def _status(m: dict | None, fingerprint: str, target: float) -> tuple[bool, bool]:
    """(measured with the options shipped now, and that measurement meets the target)."""
    current = bool(m) and m.get("options") == fingerprint
    return current, current and m["mean"] >= target


def _result(m: dict, row: dict) -> str:
    if not m:
        return "not measured yet"
    current, meets = _status(m, row["fingerprint"], row["target"])
    if not current:
        return "not measured yet with these options (benchmarks/ACCURACY.md holds an earlier version's result)"
    acc = f"{100 * m['mean']:.2f}%" + (f" ± {100 * m['spread']:.2f}" if m.get("seeds", 1) > 1 else "")
    verdict = "meets" if meets else "under"
    return (f"{acc} test accuracy over {m['seeds']} seed{'s' * (m['seeds'] != 1)} ({verdict} the target), "
            f"{m['epochs']} epochs, {m['minutes']:.0f} min/seed on {m['machine']}"
            + (f" ({m['note']})" if m.get("note") else ""))


def run(args) -> int:
    from steepest import recipes
    from steepest.commands._trainconfig import as_pairs, chosen_with, read_recipe, to_toml
    from steepest.errors import ConfigError

    out = Output(args.json)
    if args.show:
        options = read_recipe(args.show, "--show")
        if args.json:
            recipe = recipes.load(args.show)
            out.emit({"name": args.show, **recipe, "recipe": {**recipe.get("recipe", {}),
                                                               "chosen_with": chosen_with(args.show)}})
        else:
            chosen = chosen_with(args.show)
            if chosen:  # a comment: the output stays a --config file of the final model's options
                print(f"# chosen on the validation split with {as_pairs(chosen)}; the final model below trains "
                      "on all the training data")
            print(to_toml(options), end="")
        return 0
    measured = recipes.measured()
    rows = []
    for name in recipes.names():
        r = recipes.load(name).get("recipe", {})
        if "title" not in r or "target" not in r:
            raise ConfigError(f"recipe {name} has no title or target; the recipe file is broken")
        m, fp = measured.get(name), recipes.fingerprint(name)
        current, meets = _status(m, fp, r["target"])
        rows.append({"name": name, **r, "chosen_with": chosen_with(name), "fingerprint": fp, "measured": m,
                     "measured_current": current, "meets_target": meets})
    if args.json:
        out.emit({"recipes": rows})
        return 0
    for row in rows:
        print(f"{row['name']}: {row['title']} — target ≥ {100 * row['target']:.1f}% "
              f"(anchor: {row.get('anchor', '?')})")
        if row["chosen_with"]:
            print(f"    chosen on the validation split with {as_pairs(row['chosen_with'])}; the final model "
                  f"trains on all the training data (steepest recipes --show {row['name']})")
        print(f"    measured: {_result(row['measured'] or {}, row)}")
    print("train one: steepest train --recipe NAME   (options: steepest recipes --show NAME)")
    return 0
