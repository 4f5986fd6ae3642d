"""Atomic writes: a file is either the old one or the whole new one, never half of either."""

from __future__ import annotations

import os
import stat
import tempfile
from glob import escape as glob_escape
from pathlib import Path

from ..errors import ModelFileError


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def temp_files(path) -> list[Path]:
    """Temporary files of :func:`atomic_write` for ``path`` that a killed process left behind."""
    path = Path(path)
    try:
        return sorted(path.parent.glob(glob_escape(_temp_prefix(path)) + "*.tmp"))
    except OSError:
        return []


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give: 0o666 less the umask (mkstemp gives 0o600)."""
    mask = os.umask(0o022)  # reading the umask means setting it; put back at once
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the whole new one.

    The bytes go to a temporary file in the same directory, are flushed and fsync'ed, then
    ``os.replace`` renames it over ``path`` (atomic on one file system) and the directory is
    fsync'ed so the rename survives a crash. On any failure the temporary file is removed and
    the previous ``path``, if any, is untouched.

    Raises
    ------
    ModelFileError
        The directory does not exist or is not writable, or ``path`` exists and is not a regular
        file (a directory, a FIFO, a device: renaming over it would replace it); the message says which.
    """
    path = Path(path)
    if isinstance(data, str):  # a lone surrogate (from "\ud800" in some JSON input) has no UTF-8: "?"
        data = data.encode("utf-8", "replace")
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):  # never rename over a directory, FIFO or device
        from .._files import kind_of

        raise ModelFileError(f"cannot write {path}: it is {kind_of(mode)}, not a regular file; "
                             "give the path of a file")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    except OSError as e:
        raise ModelFileError(f"cannot write {path}: {e.strerror or e}; choose a writable directory") from None
    try:
        with os.fdopen(fd, "wb") as f:
            try:  # readable like any file the user writes, not private to them as mkstemp makes it
                os.fchmod(f.fileno(), _file_mode())
            except (AttributeError, OSError):  # no fchmod (Windows), or a file system without modes
                pass
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise ModelFileError(f"cannot write {path}: {e.strerror or e}; "
                                 "check the disk space and permissions of that directory") from None
        raise
    _fsync_dir(path.parent)
    return path
