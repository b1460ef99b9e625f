"""ISOBMFF boxes (ISO/IEC 14496-12) in a byte string: a run of boxes, and a box's child of a type.

Every box read is bounded by the data and by its parent: a malformed size ends the walk.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = ["boxes", "child"]


def boxes(data: bytes | memoryview, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box between ``start`` and ``end``."""
    end = min(end, len(data))
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1 and start + 16 <= end:
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            return
        yield kind, start + header, start + size
        start += size


def child(data: bytes | memoryview, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """(payload start, box end) of the first box of type ``kind`` between ``start`` and ``end``, or None."""
    for found, payload, box_end in boxes(data, start, end):
        if found == kind:
            return payload, box_end
    return None
