"""Text that steepest prints from files it did not write: class names from a user's labels or folders, and
from model files. What a terminal acts on must not reach it as it is: control characters (ESC starts an
escape sequence, a newline breaks a one-line message), the bidirectional embeddings, overrides and isolates
(U+202E shows the text after it reversed), line and paragraph separators, and lone surrogates. Other format
characters are ordinary text — the zero-width non-joiner of Persian words, the joiner of emoji sequences, the
soft hyphen — and are kept."""

from __future__ import annotations

import unicodedata

#: the Unicode categories refused whole in a name that will be printed
UNPRINTABLE = ("Cc", "Cs", "Zl", "Zp")
#: the bidirectional controls (category Cf) that reorder the text around them
BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


def _acts(c: str) -> bool:
    return c in BIDI_CONTROLS or unicodedata.category(c) in UNPRINTABLE


def first_unprintable(text: str) -> str | None:
    """The first character of ``text`` that a terminal would act on, or None."""
    return next((c for c in text if _acts(c)), None)


def printable(text: str) -> str:
    """``text`` with each character a terminal would act on written as its escape (``\\x1b``, ``\\u202e``)."""
    return "".join(c.encode("unicode_escape").decode("ascii") if _acts(c) else c for c in text)


def cut(text: str, n: int = 60) -> str:
    """``text`` cut to ``n`` characters: a message quotes a bad value, never 5,000 digits of it."""
    return text if len(text) <= n else text[: n - 1] + "…"


def short(value, n: int = 60) -> str:
    """``repr(value)`` cut to ``n`` characters (:func:`cut`)."""
    return cut(repr(value), n)
