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
    """A named dataset could not be found locally nor fetched."""


class ModelFileError(SteepestError, ValueError):
    """A model or checkpoint file is missing, malformed, or not a steepest model."""


class ShapeError(DataError):
    """Arrays do not match the network (wrong number of inputs, labels out of range, ...)."""


class ParallelError(SteepestError):
    """The processes of a data-parallel run cannot work together: started unalike, too many for the batch,
    or θ no longer the same on all. Raised on every process alike, at the same point of the run."""
