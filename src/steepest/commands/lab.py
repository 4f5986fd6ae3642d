"""``steepest lab``: a local page to watch and steer gradient descent while it runs.

Prints one line, ``lab: http://HOST:PORT/?token=…``, and opens it in the browser (unless
``--no-browser``). Ctrl-C stops the server; a run that has made steps is saved first as a run
directory (``runs/lab-…``) that ``steepest evaluate`` and ``steepest report`` read.
"""

from __future__ import annotations

import argparse
import sys

HELP = "a live page in the browser: train, pause, race optimizers, draw a digit"
EPILOG = """\
examples:
  steepest lab                                   # digits, opens the browser
  steepest lab --dataset moons --hidden 8 8 --no-browser
  steepest lab --dataset mnist --fallback digits --hidden 128 64 --port 8765

needs the lab extra: pip install 'steepest[lab]' (Starlette and uvicorn).
"""


def add_parser(subparsers):
    from steepest.commands import _limits as L
    from steepest.lab.config import MAX_LAYER, MAX_LR, MAX_SEED
    from steepest.registry import ACTIVATIONS, OPTIMIZERS

    p = subparsers.add_parser("lab", help=HELP, description=HELP + ".", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", metavar="NAME|FILE",
                   help="digits (default), moons, circles, spirals, xor, mnist, fashion-mnist, or your data file")
    p.add_argument("--data-dir", type=L.existing_dir, metavar="DIR", help="look for named datasets here first (DIR/mnist/ or DIR itself)")
    p.add_argument("--no-download", dest="download", action="store_false",
                   help="do not download a named dataset that is not found locally")
    p.add_argument("--fallback", metavar="NAME", help="dataset to start on instead when --dataset cannot be found "
                   "nor downloaded (e.g. --fallback digits); says so on screen")
    # the bounds of what a page trains live (steepest.lab.config), not train's: one limit, stated alike here
    # and in the API's refusals
    p.add_argument("--hidden", type=L.Count(1, MAX_LAYER, "a layer width"), nargs="+", default=None, metavar="N",
                   help=f"hidden layer widths (each at most {MAX_LAYER:,})")
    p.add_argument("--activation", choices=ACTIVATIONS, default=None)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    p.add_argument("--lr", type=L.Real(0.0, MAX_LR, open_lo=True), default=None, metavar="η")
    p.add_argument("--batch-size", type=_batch_size, default=None, metavar="B|full")
    p.add_argument("--seed", type=L.Count(0, MAX_SEED, "a seed"), default=None)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=L.Count(0, 65535, "a port"), default=0, help="port (default 0: a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the URL but do not open a browser")
    p.add_argument("--dry-run", action="store_true", help="check the options and load the dataset, then exit "
                   "without serving (for scripts)")
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="where saved runs go (default runs/)")
    return p


def _config(args) -> dict:
    cfg = {"dataset": args.dataset}
    for key in ("hidden", "activation", "optimizer", "lr", "seed"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.batch_size is not None:
        cfg["batch_size"] = args.batch_size
    return cfg


def _batch_size(text):
    """``full`` or a count in digits (int() would also take " 5", "1_000" and "٣")."""
    from steepest.commands._limits import Count

    return "full" if text == "full" else Count(1, 10**9, "'full' or a batch size")(text)


def run(args) -> int:
    from steepest.errors import ConfigError

    try:
        from steepest.lab.server import serve
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ConfigError("steepest lab needs Starlette and uvicorn; install them with "
                          "`pip install 'steepest[lab]'`") from None
    from steepest.data import looks_like_path
    from steepest.lab.config import BUNDLED

    cfg = _config(args)
    files = tuple(dict.fromkeys(d for d in (args.dataset, args.fallback) if d and d not in BUNDLED and looks_like_path(d)))
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0…65535, got {args.port}")
    if args.fallback and args.fallback not in BUNDLED + files:
        raise ConfigError(f"--fallback must be one of {', '.join(BUNDLED)} or a data file, got {args.fallback!r}; "
                          "e.g. --fallback digits")
    # what can be checked without serving is checked first, for --dry-run as for the real run
    _check_runs_dir(args.runs_dir)
    sock = _listen(args.host, args.port)
    try:
        engine = _engine(cfg, args, datasets=BUNDLED + files)
    except BaseException:
        sock.close()
        raise
    if args.dry_run:
        sock.close()
        engine.quit()
        print(f"lab: ready to serve {engine.cfg['dataset']} on {args.host} (not serving: --dry-run)")
        return 0
    serve(engine, host=args.host, open_browser=not args.no_browser, sock=sock)
    _save_on_exit(engine)
    return 0


def _listen(host: str, port: int):
    """The lab's listening socket on ``host:port``, or the one-line refusal of both real and dry runs."""
    from steepest.errors import ConfigError
    from steepest.lab.server import bind

    try:
        return bind(host, port)
    except (OSError, UnicodeError) as e:  # socket.gaierror (an OSError): a name that does not resolve
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError(f"cannot listen on {host}:{port} ({reason}); choose another --port or --host "
                          "(an address of this machine, e.g. 127.0.0.1)") from None


def _check_runs_dir(path) -> None:
    """Refuse --runs-dir unless it is, or can be made as, a writable directory. Creates nothing.

    Checked before serving: a lab that can never save would otherwise fail only when asked to, after
    the training the user wanted to keep.
    """
    import os
    import tempfile
    from pathlib import Path

    from steepest.errors import ConfigError

    def refuse(what):
        return ConfigError(f"--runs-dir {path}: {what}; choose a writable directory with --runs-dir")

    p = Path(path).absolute()
    try:
        probe = next(a for a in (p, *p.parents) if a.exists())  # "/" exists: there is one
    except OSError as e:  # a name too long for the file system, say
        raise refuse(e.strerror or str(e)) from None
    if not probe.is_dir():
        raise refuse("not a directory" if probe == p else f"{probe} is not a directory")
    try:  # the one sure test of writability, root's included: make a directory there and remove it
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".steepest-probe-"))
    except OSError as e:
        raise refuse(f"cannot write in {probe} ({e.strerror or e})") from None


def _engine(cfg, args, **kwargs):
    """The lab's engine on --dataset, or on --fallback (saying so) when --dataset cannot be found nor fetched."""
    from steepest.commands._common import load_data
    from steepest.errors import DataNotFoundError
    from steepest.lab.engine import Engine

    def load(name):
        return load_data(name, data_dir=args.data_dir, download=args.download)

    try:
        return Engine(cfg, load=load, runs_root=args.runs_dir, **kwargs)
    except DataNotFoundError:
        if not args.fallback or args.fallback == cfg["dataset"]:
            raise
    print(f"note: {cfg['dataset']} was not found locally nor downloaded; starting on {args.fallback} instead "
          f"(--fallback {args.fallback}). `steepest datasets` shows where {cfg['dataset']} is looked for.", flush=True)
    return Engine({**cfg, "dataset": args.fallback}, load=load, runs_root=args.runs_dir, **kwargs)


def _save_on_exit(engine) -> None:
    """A run in progress is kept: save it as a run directory, as Ctrl-C does for `steepest train`."""
    from steepest.lab.actions import save_run

    if not any(r.state is not None and r.state.step > 0 for r in engine.racers) or engine.saved_step == engine.status()["step"]:
        return
    try:
        path = save_run(engine)
    except Exception as e:  # the server is down already; say what was lost, do not hide it in a traceback
        print(f"steepest: could not save the lab's run: {e}", file=sys.stderr)
        return
    print(f"lab: stopped; the run is saved in {path} (steepest evaluate {path}; steepest report {path})")
