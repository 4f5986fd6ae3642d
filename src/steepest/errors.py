"""Typed exceptions. The library raises these; only the command line turns them into exit codes.

Every message should tell the user what is wrong *and* what to do about it.
"""


class SteepestError(Exception):
    """Base class of every error steepest raises on purpose."""


class ConfigError(SteepestError, ValueError):
    """A parameter or option has a value that cannot work (negative learning rate, unknown name, ...)."""


class DataError(SteepestError, ValueError):
    """Input data is malformed, truncated, inconsistent or contains non-finite values."""


class DataNotFoundError(DataError):
    """A named dataset could not be found locally nor fetched.

    ``dataset``, ``reason`` and ``cache`` (where a copy would be looked for) let a caller — the
    command line — give the same advice in its own terms (options instead of function arguments).
    """

    def __init__(self, message, *, dataset=None, reason=None, cache=None):
        super().__init__(message)
        self.dataset, self.reason, self.cache = dataset, reason, cache


class ModelFileError(SteepestError, ValueError):
    """A model or checkpoint file is missing, malformed, or not a steepest model."""


class ShapeError(DataError):
    """Arrays do not match the network (wrong number of inputs, labels out of range, ...)."""
