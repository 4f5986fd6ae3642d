"""Typed exceptions. The library raises these; only the command line turns them into exit codes.

Every message should tell the user what is wrong *and* what to do about it:
``"<what is wrong>; <what to do>"``. Each class carries a :attr:`~SteepestError.hint`, the
"what to do" that the command line adds to a message that lacks one (a message with no ``;``).
"""


class SteepestError(Exception):
    """Base class of every error steepest raises on purpose."""

    #: what to do, for a message that does not say
    hint = "see `steepest --help`"

    def message(self) -> str:
        """The message with its "what to do" half: the class's :attr:`hint` added when it has none."""
        text = str(self).strip()
        return text if ";" in text else f"{text}; {self.hint}"


class ConfigError(SteepestError, ValueError):
    """A parameter or option has a value that cannot work (negative learning rate, unknown name, ...)."""

    hint = "see the command's --help for the values it takes"


class DataError(SteepestError, ValueError):
    """Input data is malformed, truncated, inconsistent or contains non-finite values."""

    hint = "check or recreate the file (`steepest datasets --help` lists the formats steepest reads)"


class DataNotFoundError(DataError):
    """A named dataset could not be found locally nor fetched.

    ``dataset``, ``reason`` and ``cache`` (where a copy would be looked for) let a caller — the
    command line — give the same advice in its own terms (options instead of function arguments).
    """

    def __init__(self, message, *, dataset=None, reason=None, cache=None):
        super().__init__(message)
        self.dataset, self.reason, self.cache = dataset, reason, cache

    hint = "check the path, or run `steepest datasets` to see where datasets are looked for"


class ModelFileError(SteepestError, ValueError):
    """A model or checkpoint file is missing, malformed, or not a steepest model."""

    hint = "give a model file written by `steepest train` (RUN_DIR/model.safetensors)"
    #: the file's bytes are wrong (cut short, edited, not a steepest file), as opposed to a file steepest cannot
    #: read for another reason (missing, unreadable, a newer format) whose advice holds whatever the file is
    damaged = False


class ShapeError(DataError):
    """Arrays do not match the network (wrong number of inputs, labels out of range, ...)."""

    hint = "give data of the shape the model or the other files have"


class ParallelError(SteepestError):
    """The processes of a data-parallel run cannot work together: started unalike, too many for the batch,
    or θ no longer the same on all. Raised on every process alike, at the same point of the run."""


class Terminated(BaseException):
    """SIGTERM outside the training loop (loading data, writing plots): it unwinds like Ctrl-C's
    KeyboardInterrupt, so that what a command half-made is cleaned up, and the command ends with one
    line and exit status 143. Inside the loop, ``steepest train`` stops after the current step instead."""
