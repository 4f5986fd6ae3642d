"""Opening a file that must be a regular file, without hanging on anything else.

``open()`` on a FIFO blocks until a writer appears (forever, if none does), and a character
device such as ``/dev/zero`` or ``/dev/urandom`` never ends. Every path a user gives steepest to
*read* (datasets, labels, models, ``.npy`` arrays, images, TOML configs, report directories) is
opened by :func:`open_regular`: ``os.open`` with ``O_NONBLOCK`` (which returns at once, even for a
FIFO without a writer), then ``fstat`` on the open descriptor — the file that was opened, not a
name that may since point elsewhere — and anything but a regular file is refused with the typed
error the caller names. This module imports nothing from NumPy.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["open_regular", "read_regular", "kind_of", "is_regular"]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    """``"a directory"``, ``"a FIFO (named pipe)"``, … for a non-regular ``st_mode``."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def is_regular(path) -> bool:
    """True when ``path`` (following symlinks) is a regular file; never blocks."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def open_regular(path, error=OSError, what: str = "a regular file"):
    """``open(path, "rb")`` for a regular file only; anything else raises ``error``.

    ``error`` is the exception class to raise (``DataError``, ``ModelFileError``, …); its message
    says what the path is and what to give instead (``what``). A missing file or a permission
    problem raises the usual ``FileNotFoundError`` or ``PermissionError``, so callers keep their own
    messages for those; any other failure to open (a socket, a symlink loop) raises ``error`` too.
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, PermissionError):
        raise
    except OSError as e:  # a socket (ENXIO), a symlink loop (ELOOP), a name too long, …
        raise error(f"cannot open {path}: {e.strerror or e}; give {what}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{path} is {kind_of(mode)}, not a regular file; give {what}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path, error=OSError, what: str = "a regular file", max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file (see :func:`open_regular`); at most ``max_bytes`` of them.

    A file larger than ``max_bytes`` raises ``error`` before anything is read.
    """
    with open_regular(path, error, what) as f:
        if max_bytes is not None:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise error(f"{path} is {size:,} bytes, more than the {max_bytes:,} bytes steepest reads "
                            f"for it; give {what}")
        return f.read()


def no_such(path, what: str = "file") -> str:
    """``PATH: no such file; check the path``, saying which directory a relative path was looked for in
    (a path written in a --config file is read from the current directory, not the file's)."""
    where = "" if os.path.isabs(os.fspath(path)) else f" (looked for in {os.getcwd()})"
    return f"{path}: no such {what}{where}; check the path"
