"""Text that steepest prints from files it did not write: class names from a user's labels or folders, and
from model files. Control characters (ESC starts a terminal escape), format characters (U+202E reverses the
text after it), surrogates and line or paragraph separators must not reach a terminal as they are."""

from __future__ import annotations

import unicodedata

#: the Unicode categories refused in a name that will be printed
UNPRINTABLE = ("Cc", "Cf", "Cs", "Zl", "Zp")


def first_unprintable(text: str) -> str | None:
    """The first character of ``text`` in an :data:`UNPRINTABLE` category, or None."""
    return next((c for c in text if unicodedata.category(c) in UNPRINTABLE), None)


def printable(text: str) -> str:
    """``text`` with each :data:`UNPRINTABLE` character written as its escape (``\\x1b``, ``\\u202e``)."""
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in UNPRINTABLE else c
                   for c in text)
