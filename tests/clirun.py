"""Run the real command in a subprocess: what every command-line test does."""

import os
import subprocess
import sys


def steepest(*args, cwd=None, env=None, timeout=300):
    """Run ``python -m steepest ARGS``; ``env`` entries are set on top of os.environ (None removes one)."""
    e = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = str(v)
    return subprocess.run([sys.executable, "-m", "steepest", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=e, timeout=timeout)
