"""The request bodies the lab's API reads: one JSON document, bounded in size, nesting and digits.

Every endpoint that takes a body reads it with :func:`read` and :func:`parse`, so a broken or hostile
body — megabytes of brackets, an integer of ten thousand digits, bytes that are not UTF-8, ``NaN`` — is
refused with a :class:`BodyError` (one line of JSON, status 400, or 413 when too large) before any
endpoint sees it. What the values mean is checked afterwards, by :mod:`steepest.lab.config` and
:mod:`steepest.lab.actions`.
"""

from __future__ import annotations

import json

from steepest.errors import SteepestError
from steepest.lab.actions import MAX_IMAGE_SIDE

#: bytes of a body: the largest drawing predict takes, MAX_IMAGE_SIDE² grey levels, fits even written as
#: long floats (up to 32 bytes a pixel: 32 MiB); a body past this is refused while it arrives, not after
MAX_BYTES = MAX_IMAGE_SIDE**2 * 32
#: nesting of a body: the deepest the API reads is 3 levels ({"image": [[…]]}); the decoder would
#: otherwise go as deep as the stack allows and fail with RecursionError
MAX_DEPTH = 8
#: digits of a JSON integer: the largest any setting takes is a seed (10 digits); Python's int()
#: refuses more than 4300 digits with advice about sys.set_int_max_str_digits that means nothing here
MAX_DIGITS = 64


class BodyError(SteepestError):
    """A request body the API cannot read: not JSON, nested too deeply, or too large (:attr:`status`)."""

    status = 400


class BodyTooLargeError(BodyError):
    status = 413


async def read(request) -> bytes:
    """The body's bytes, at most :data:`MAX_BYTES`: a longer one is refused as soon as it is seen to be."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BYTES:
        raise _too_large()
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > MAX_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> BodyTooLargeError:
    return BodyTooLargeError(f"the request body is larger than {MAX_BYTES // 2**20} MiB; send a smaller one "
                             f"(a drawing at most {MAX_IMAGE_SIDE} pixels on a side)")


def parse(raw: bytes):
    """The JSON document of a body (``{}`` for an empty one); raises :class:`BodyError`."""
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw, parse_int=_integer, parse_constant=_constant)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, and the refusals of the hooks below
        raise BodyError(f"the request body is not valid JSON ({_first_line(e)}); send a JSON object "
                        'such as {"lr": 0.1}') from None
    _check_depth(doc)
    return doc


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits; numbers have at most {MAX_DIGITS}")
    return int(text)


def _constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _too_deep() -> BodyError:
    return BodyError(f"the request body nests deeper than {MAX_DEPTH} levels of lists and objects; "
                     'send a JSON object such as {"lr": 0.1} or {"image": [[0, 255], [255, 0]]}')


def _check_depth(doc) -> None:
    """Refuse ``doc`` if it nests deeper than MAX_DEPTH. Iterative: a deep document must not be able to
    exhaust the stack of the code that walks it (nor of a later repr in an error message)."""
    level, depth = [doc], 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise _too_deep()
        inner = []
        for v in level:
            items = v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()
            inner.extend(c for c in items if isinstance(c, (list, dict)))
        level = inner
