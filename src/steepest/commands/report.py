"""``steepest report DIR``: one self-contained HTML page for a run or comparison directory."""

from __future__ import annotations

import argparse

from steepest.commands._common import Output, add_json_flag

HELP = "write a self-contained HTML report of a run (with its analyses) or of a comparison directory"
EPILOG = """\
examples:
  steepest report runs/digits               # writes runs/digits/report.html
  steepest report runs/compare-digits --out compare.html

One page per run, with a table of contents: a summary (model, data, final metrics, the stop reason,
the machine), training curves and the metrics per epoch (metrics.jsonl), the configuration
(config.toml), then whatever DIR or its sub-directories hold from `steepest compare`
(summary.json), `landscape` (landscape.json) and `explain` (explain.json), and, when the model's
test set is at hand, a gallery of misclassified test images. Under each picture: what to look for
and its caveats. Images are embedded: the page needs no network access to view.
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
