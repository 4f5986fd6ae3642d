"""``python -m steepest`` is the ``steepest`` command."""

import sys

try:
    from steepest.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python is still importing: no traceback
    print("steepest: interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    status = main()
    # The command has ended and said so: a Ctrl-C or SIGTERM while the interpreter tears down (joining
    # BLAS and numba threads can take a moment) would only turn its exit status into 130 or 143.
    import signal

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)
    sys.exit(status)
