"""``steepest datasets``: which datasets are known, where each was found or would come from."""

from __future__ import annotations

import argparse

from steepest.commands._common import Output, add_json_flag

HELP = "list the known datasets and where they are"
EPILOG = """\
examples:
  steepest datasets
  STEEPEST_DATA=/data steepest datasets --json

Search order for mnist and fashion-mnist: --data-dir, $STEEPEST_DATA/<name>/, the cache
($STEEPEST_CACHE or the user cache), /usr/share/datasets/<name>/, then a download (SHA-256 checked).
Your own data: give `steepest train --dataset` a .npz (X, y), a .csv (label column + features),
an IDX images file with --labels, or a folder with one sub-folder of images per class.
"""


def add_parser(subparsers):
    from steepest.commands import _limits as L

    p = subparsers.add_parser("datasets", help=HELP, description=HELP + ".", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=L.existing_dir, metavar="DIR", help="also look here first, as `train --data-dir` would")
    add_json_flag(p)
    return p


def _size(n) -> str:
    if n is None:
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def run(args) -> int:
    from steepest.data import describe_datasets

    rows = describe_datasets(data_dir=args.data_dir)
    if args.json:
        out = Output(True)
        for row in rows:
            out.emit({**row, "image_shape": list(row["image_shape"]) if row["image_shape"] else None})
        return 0
    print(f"{'dataset':<14} {'train':>7} {'test':>6}  {'image':<6} {'size':>8}  where")
    for r in rows:
        shape = "×".join(map(str, r["image_shape"])) if r["image_shape"] else ""
        counts = [f"{r[k]:>{w}}" if r[k] is not None else " " * w for k, w in (("n_train", 7), ("n_test", 6))]
        if r.get("incomplete"):
            where = f"not usable: {r['incomplete']}"
        elif r["found"]:
            where = f"found: {r['path']}"
        elif r.get("fetch_from"):
            where = f"not found; would be downloaded from {r['fetch_from']} into {r['cache']}"
        else:
            where = "not available (install scikit-learn for digits)"
        if r.get("error"):
            where += f" (unreadable: {r['error']})"
        print(f"{r['name']:<14} {counts[0]} {counts[1]}  {shape:<6} {_size(r['bytes']):>8}  {where}")
    return 0
