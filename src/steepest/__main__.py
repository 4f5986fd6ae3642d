"""``python -m steepest`` is the ``steepest`` command."""

import sys

from steepest.cli import main

if __name__ == "__main__":
    sys.exit(main())
