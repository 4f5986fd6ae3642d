"""``python -m steepest`` is the ``steepest`` command."""

import sys

try:
    from steepest.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python is still importing: no traceback
    print("steepest: interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main())
