"""Run ``python -m steepest ARGS`` and SIGKILL it at an exact point of its N-th write of a file.

    python reliability/killpoint.py FILE POINT N ARGS...

FILE   the name of the file whose writes are watched, e.g. ``checkpoint.safetensors``; any file
       whose path contains it counts (so ``.checkpoint.safetensors.XXXXXXXX.tmp`` does too)
POINT  ``write``  — halfway through writing its bytes: the first half reaches the file, then SIGKILL;
       ``fsync``  — on entering fsync of the file: every byte written, none forced to the disk;
       ``rename`` — on entering the os.replace / os.rename that would put it in place
N      which write of that file, counting from 1 in this process

A kill from outside lands inside a write only when the timing allows; this one always does. The
process dies from SIGKILL all the same (no handler, no cleanup), sent by itself. Nothing of
steepest is patched: the hooks sit on ``open``/``os.fdopen`` (the file object's ``write``),
``os.fsync`` and ``os.replace``/``os.rename``, so they catch a file written in any way — a write
in place as well as an atomic one, which is what makes the harness able to fail.
"""

from __future__ import annotations

import builtins
import os
import runpy
import signal
import sys


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


class Hooks:
    def __init__(self, name: str, point: str, n: int):
        self.name, self.point, self.n = name, point, n
        self.opened = 0     # files of that name opened for writing
        self.fsyncs = 0
        self.renames = 0

    def install(self) -> None:
        real_open, real_fdopen, real_fsync = builtins.open, os.fdopen, os.fsync
        real_replace, real_rename = os.replace, os.rename
        hooks = self

        def wrap(f, path):
            if hooks.name not in str(path) or not any(c in getattr(f, "mode", "") for c in "wax+"):
                return f
            hooks.opened += 1
            return Watched(f, hooks.point == "write" and hooks.opened == hooks.n)

        def open_(file, mode="r", *a, **kw):
            f = real_open(file, mode, *a, **kw)
            return wrap(f, file if not isinstance(file, int) else fd_path(file))

        def fdopen(fd, mode="r", *a, **kw):
            return wrap(real_fdopen(fd, mode, *a, **kw), fd_path(fd))

        def fsync(fd):
            if hooks.point == "fsync" and hooks.name in fd_path(fd if isinstance(fd, int) else fd.fileno()):
                hooks.fsyncs += 1
                if hooks.fsyncs == hooks.n:
                    die()
            return real_fsync(fd)

        def renamer(real):
            def rename(src, dst, *a, **kw):
                if hooks.point == "rename" and (hooks.name in str(src) or hooks.name in str(dst)):
                    hooks.renames += 1
                    if hooks.renames == hooks.n:
                        die()
                return real(src, dst, *a, **kw)
            return rename

        builtins.open, os.fdopen, os.fsync = open_, fdopen, fsync
        os.replace, os.rename = renamer(real_replace), renamer(real_rename)


class Watched:
    """A file object whose first write is cut in half by SIGKILL, if ``armed``."""

    def __init__(self, f, armed: bool):
        self._f, self._armed = f, armed

    def write(self, data):
        if self._armed:
            half = len(data) // 2
            self._f.write(data[:half])
            self._f.flush()  # the bytes reach the file, as they would before a kill mid-write
            die()
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        self._f.__enter__()
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)

    def __iter__(self):
        return iter(self._f)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[1] not in ("write", "fsync", "rename") or not argv[2].isdigit() or int(argv[2]) < 1:
        sys.exit(__doc__)
    name, point, n, rest = argv[0], argv[1], int(argv[2]), argv[3:]
    Hooks(name, point, n).install()
    sys.argv = ["steepest", *rest]
    runpy.run_module("steepest", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
