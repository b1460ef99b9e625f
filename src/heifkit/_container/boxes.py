"""ISOBMFF boxes (ISO/IEC 14496-12) in a byte string: a run of boxes, and a box's child of a type.

Every box read is bounded by the data and by its parent: a malformed size ends the walk.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = ["box_header", "boxes", "child"]


def box_header(data: bytes | memoryview, start: int, room: int) -> tuple[bytes, int, int] | None:
    """(type, header length, size) of the box whose header is at ``data[start:]`` and which may take ``room``
    bytes (size 0: all of them), or None when the header is cut short or the size does not fit. ``data`` may
    hold just the header (a file's top-level boxes are read 16 bytes at a time)."""
    if room < 8 or start + 8 > len(data):
        return None
    size, kind = struct.unpack_from(">I4s", data, start)
    header = 8
    if size == 1 and room >= 16 and start + 16 <= len(data):
        size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
    elif size == 0:
        size = room
    if size < header or size > room:
        return None
    return kind, header, size


def boxes(data: bytes | memoryview, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box between ``start`` and ``end``."""
    end = min(end, len(data))
    while (found := box_header(data, start, end - start)) is not None:
        kind, header, size = found
        yield kind, start + header, start + size
        start += size


def child(data: bytes | memoryview, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """(payload start, box end) of the first box of type ``kind`` between ``start`` and ``end``, or None."""
    for found, payload, box_end in boxes(data, start, end):
        if found == kind:
            return payload, box_end
    return None
