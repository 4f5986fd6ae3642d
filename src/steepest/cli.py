"""The ``steepest`` command: builds the parser from :mod:`steepest.commands`, runs one, maps errors.

Exit status: 0 success; 1 the work ran but failed (gradient check above threshold, training
diverged); 2 bad input — every :class:`~steepest.errors.SteepestError` and usage error becomes one
line ``steepest: error: <what is wrong>; <what to do>`` on stderr, without a traceback; 130 Ctrl-C;
143 SIGTERM (``train`` first saves a checkpoint to resume from, as for Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys

EPILOG = """\
examples:
  steepest train --dataset mnist --fallback digits --hidden 128 64 --epochs 5
  steepest evaluate runs/mnist/model.safetensors --dataset mnist
  steepest predict runs/mnist/model.safetensors digit.png
  steepest export runs/mnist/model.safetensors -o mnist.onnx
  steepest gradcheck --hidden 16 8 --activation tanh
  steepest datasets

`steepest COMMAND --help` shows each command's options and an example.
"""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that says where to look, exit status 2."""

    argv: list = []  # the words being parsed, for the hint below

    def error(self, message):
        self.exit(2, f"steepest: error: {message}{_dash_hint(message, self.argv)}; see `{self.prog} --help`\n")


def _dash_hint(message: str, argv) -> str:
    """argparse reads a word that starts with '-' as an option, unless it is a plain negative number:
    `--eval-every -1%` is "expected one argument". Say how to give such a value."""
    import re

    m = re.match(r"argument (\S+): expected one argument", message)
    if m:
        names = m.group(1).split("/")
        for word, after in zip(argv, argv[1:]):
            if word in names and after.startswith("-") and after not in ("-", "--"):
                return f" (the word after it, {after!r}, reads as an option: write {names[-1]}={after})"
    return ""


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from steepest import __version__
    from steepest.commands import COMMANDS

    parser = Parser(prog="steepest", description="Neural networks trained by gradient descent, from first "
                    "principles: NumPy and backpropagation by hand.", epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"steepest {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    parser.commands = {}
    for name in COMMANDS:
        module = importlib.import_module(f"steepest.commands.{name}")
        parser.commands[name] = module.add_parser(sub)
        parser.commands[name].set_defaults(_run=module.run)
    return parser


def parse(parser, argv):
    """Parse; an unknown option is reported by the subcommand's parser, which names its own --help."""
    Parser.argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    args, extra = parser.parse_known_args(argv)
    owner = parser.commands.get(getattr(args, "command", None), parser)
    if extra:
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    _refuse_empty(owner, args)
    return args


def _refuse_empty(owner, args):
    """An empty or blank value given to any option or argument (``--resume "$UNSET"``, ``--recipe ""``)
    is a usage error: read as "not given", it would silently start something else."""
    for action in owner._actions:
        value = getattr(args, action.dest, None)
        values = value if isinstance(value, list) else [value]
        if value is not action.default and any(isinstance(v, str) and not v.strip() for v in values):
            name = "/".join(action.option_strings) or action.metavar or action.dest
            owner.error(f"{name} was given an empty value")


def one_line(message: str) -> str:
    """A multi-line message as one line: lines joined by '; ' (by a space after ':', ';' or '.')."""
    out = ""
    for line in (" ".join(s.split()) for s in str(message).splitlines()):
        if line:
            out += line if not out else (" " if out.endswith((":", ";", ".")) else "; ") + line
    return out


def main(argv=None) -> int:
    """Run one command; return its exit status. Ctrl-C at any moment, imports included, is 130; SIGTERM
    is 143, after the same clean-up (``train`` first saves a checkpoint to resume from)."""
    try:
        return _guarded(argv)
    except KeyboardInterrupt:  # in the instants before _guarded's own handler is in place
        print("steepest: interrupted", file=sys.stderr)
        return 130


def _guarded(argv) -> int:
    import signal

    from steepest.errors import Terminated

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _defer_interrupts_in_imports()
        import warnings

        with warnings.catch_warnings():
            if not sys.warnoptions:  # a command's output is its lines, not NumPy's RuntimeWarnings;
                warnings.simplefilter("ignore")  # `python -W default -m steepest` shows them again
            return _main(argv)
    except KeyboardInterrupt:
        print("steepest: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("steepest: terminated (SIGTERM)", file=sys.stderr)
        return 143
    finally:
        for s, handler in old.items():
            if handler is not None and signal.getsignal(s) is not handler:
                try:
                    signal.signal(s, handler)
                except ValueError:  # not the main thread: nothing was changed
                    pass


def _defer_interrupts_in_imports():
    """Ctrl-C raises KeyboardInterrupt (SIGTERM :class:`Terminated`), but never inside an import: it is
    asked again 20 ms later.

    A KeyboardInterrupt raised while a compiled extension initialises comes out as an unrelated
    ImportError (NumPy: "PyCapsule_Import could not import module datetime"), or leaves the
    interpreter flagged so that it kills itself by SIGINT after our own exit. Deferring the
    interrupt to the end of the import makes every Ctrl-C the one line ``steepest: interrupted``.
    Nothing changes where Ctrl-C is ignored (``nohup``, background jobs) or already handled.
    """
    import signal
    import threading

    from steepest.errors import Terminated

    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum, frame):
        if _importing(frame):
            timer = threading.Timer(0.02, signal.raise_signal, (signum,))
            timer.daemon = True
            timer.start()
            return
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated

    # SIGTERM likewise (its default ends the process at once, leaving what a command half-made)
    for s, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(s) is default:
            signal.signal(s, interrupt)


_IMPORT_MACHINERY = {"importlib._bootstrap", "importlib._bootstrap_external", "_frozen_importlib",
                     "_frozen_importlib_external"}


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_globals.get("__name__") in _IMPORT_MACHINERY:
            return True
        frame = frame.f_back
    return False


def _main(argv) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    from steepest.errors import SteepestError

    try:
        return args._run(args)
    except SteepestError as e:
        print(f"steepest: error: {one_line(e.message())}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `steepest … | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except MemoryError:
        print("steepest: error: not enough memory for this; use a smaller network, batch or dataset",
              file=sys.stderr)
        return 2
    except OSError as e:
        print(f"steepest: error: {os_error(e)}", file=sys.stderr)
        return 2


def os_error(e: OSError) -> str:
    """One line for an OSError the commands did not turn into a typed error: the file, the reason, what to do."""
    import errno

    where = f" {e.filename}" if e.filename else ""
    why = e.strerror or str(e)
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG):
        return f"cannot write{where} ({why}); free disk space (or raise the file-size limit) and run the command again"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot access{where} ({why}); check its permissions, or choose another path"
    return f"cannot access{where} ({why}); check the path and its permissions"


if __name__ == "__main__":
    sys.exit(main())
