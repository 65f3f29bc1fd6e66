"""Redis replies as the ``str`` they are: redis-py's ``bytes | str`` narrowed in one place.

Every client the engine makes decodes its replies (``decode_responses=True``),
but redis-py types a reply as ``bytes | str`` whatever the client does, and
some replies as a union of the shapes other options or protocols give. Code
that reads a reply goes through these helpers instead of a cast or a
``type: ignore`` at each call; a client that does not decode gets the same
answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Fields = dict[str, str]


def text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()


def texts(values: Iterable[Any]) -> list[str]:
    """A reply that is a list of strings (ZRANGE's members without scores, ...)."""
    return [text(value) for value in values]


def fields(mapping: Mapping[bytes | str, bytes | str]) -> Fields:
    """A hash (HGETALL) or a stream entry's fields."""
    return {text(name): text(value) for name, value in mapping.items()}


def stream_entries(raw: Iterable[Any]) -> list[tuple[str, Fields]]:
    """``(entry id, fields)`` of each entry of an XRANGE / XREADGROUP / XAUTOCLAIM reply.

    XAUTOCLAIM reports an entry deleted meanwhile with no fields: it is left out.
    """
    return [(text(entry_id), fields(values)) for entry_id, values, *_ in raw if values is not None]


def read_entries(reply: Any) -> list[tuple[str, Fields]]:
    """Every stream's entries in an XREAD / XREADGROUP reply.

    RESP2 replies ``[[stream, entries], ...]``, RESP3 ``{stream: entries}``, and
    either gives nothing (None) when a BLOCK timed out.
    """
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, Mapping) else (raw for _, raw in reply)
    return [entry for raw in streams for entry in stream_entries(raw)]
