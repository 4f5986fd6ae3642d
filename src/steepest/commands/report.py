"""``steepest report DIR``: one self-contained HTML page for a run or comparison directory."""

from __future__ import annotations

import argparse

from steepest.commands._common import Output, add_json_flag

HELP = "write a self-contained HTML report of a run or comparison directory"
EPILOG = """\
examples:
  steepest report runs/digits               # writes runs/digits/report.html
  steepest report runs/compare-digits --out compare.html

The page holds the configuration (config.toml), the final metrics and stop reason (from the model),
the metrics per epoch (metrics.jsonl) with loss and accuracy curves, the comparison table
(summary.json) and every PNG in DIR and its sub-directories (e.g. landscape/, explain/), embedded:
it needs no network access to view.
"""


def add_parser(subparsers):
    p = subparsers.add_parser("report", help=HELP, description=HELP + ".", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", metavar="DIR", help="a run directory (steepest train) or an output directory of "
                   "steepest compare / landscape / explain")
    p.add_argument("--out", metavar="FILE", help="where to write the page (default DIR/report.html)")
    add_json_flag(p)
    return p


def run(args) -> int:
    from steepest.viz.report import write_report

    out = Output(args.json)
    path = write_report(args.dir, args.out)
    if args.json:
        out.emit({"report": str(path)})
    else:
        print(path)
    return 0
