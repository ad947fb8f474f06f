r"""Decoding a request's JSON (a POST body, a GET ``variables``/``extensions`` parameter).

Two rules, both checked before anything else parses the request:

* **JSON as RFC 8259 defines it, in strict UTF-8.**  ``json.loads`` (what Strawberry uses)
  guesses UTF-16 and UTF-32 from the first bytes of a body and accepts ``NaN``,
  ``Infinity`` and lone surrogate escapes (``"\ud800"``), none of which is JSON a client
  of this API ever means to send, and a lone surrogate cannot even be encoded again when
  an error message quotes it.  ``orjson`` takes exactly RFC 8259 in UTF-8 (a byte order
  mark too is refused) and is what the rest of the gateway uses already.
* **At most** :data:`MAX_JSON_DEPTH` **levels of nesting.**  ``json.loads`` itself, and
  everything after the decoder (graphql-core's variable coercion, Strawberry's input
  conversion, error formatting, ``orjson.dumps``), walks values recursively, and Python
  stops at about 1,000 frames: ``variables`` nested 1,000 deep, a 2 KB body, ended in a
  ``RecursionError`` and a 500.  No input of this schema is more than a handful of
  levels deep, so 64 leaves ample room while staying far below any recursion limit.
  orjson's own limit (1,024) would not be low enough.

The depth is counted by a linear pre-scan of the raw text, so a deep document is refused
without building it: string literals are removed with one regular expression (brackets
inside strings do not nest), then the brackets are counted.  A request with no more than
:data:`MAX_JSON_DEPTH` brackets in all cannot be too deep and skips the scan; the full
scan of a 256 KiB body of brackets takes about 5 ms.
"""

from __future__ import annotations

import re

import orjson

__all__ = ["MAX_JSON_DEPTH", "JsonTooDeep", "decode_request_json"]

#: The deepest nesting of arrays and objects accepted in a request's JSON; the body's own
#: object is level 1.
MAX_JSON_DEPTH = 64

#: A complete JSON string literal, escapes included (the unrolled form: linear, no
#: backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
#: Every byte but the four brackets, for ``bytes.translate(None, delete)``.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")


class JsonTooDeep(ValueError):
    """The JSON nests arrays and objects deeper than :data:`MAX_JSON_DEPTH`."""


def decode_request_json(data: bytes | str) -> object:
    """The decoded value; ``JsonTooDeep``, or ``ValueError`` for anything not RFC 8259 JSON.

    Raises:
        JsonTooDeep: nested deeper than :data:`MAX_JSON_DEPTH`.
        ValueError: not JSON, not UTF-8, or ``NaN``/``Infinity``/lone surrogates.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _nests_deeper_than(raw, MAX_JSON_DEPTH):
        raise JsonTooDeep(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return orjson.loads(raw)


def _nests_deeper_than(raw: bytes, limit: int) -> bool:
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if byte in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
