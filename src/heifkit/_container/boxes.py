"""ISOBMFF boxes (ISO/IEC 14496-12): the one module that reads and writes a box header.

A box starts with a 32-bit size and a 4-byte type; size 1 means a 64-bit size follows the type, size 0 that the
box runs to the end of its container (of the file, at the top level).

- In memory, :func:`walk`, :func:`boxes`, :func:`find` and :func:`child` read a run of boxes in a byte string,
  every box bounded by the data and by its parent: a size that runs past the parent, or is smaller than its
  header, ends the walk (or raises, ``strict``); a header cut short ends it quietly.
- Over a file, :func:`top_level` walks the top-level boxes reading only their headers (payloads are skipped
  by seeking), and :func:`read_top_level` reads the first box of a type, its payload up to a limit.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple, Union

from ..errors import InvalidInputError

__all__ = [
    "Box",
    "Data",
    "FileBox",
    "box",
    "box_header",
    "boxes",
    "child",
    "find",
    "read_top_level",
    "top_level",
    "walk",
]

Data = Union[bytes, bytearray, memoryview]
"""What boxes are read from in memory (a file being patched is a bytearray)."""

_HEADER = 8  # 32-bit size and 4-byte type
_LARGE_HEADER = 16  # ... and a 64-bit size after them


class Box(NamedTuple):
    """A box in a byte string: its type and offsets (its start, its payload's start, its end)."""

    kind: bytes
    start: int
    payload: int
    end: int


class FileBox(NamedTuple):
    """A top-level box of a file: its type, offset, size as declared and header length (8 or 16)."""

    kind: bytes
    start: int
    size: int
    header: int

    @property
    def payload(self) -> int:
        """The offset of the box's payload."""
        return self.start + self.header

    @property
    def end(self) -> int:
        """The offset just past the box (past the end of the file when the file is cut short)."""
        return self.start + self.size


def _declared(data: Data, start: int, room: int) -> tuple[bytes, int, int] | None:
    """(type, header length, size) as the header at ``data[start:]`` declares them, size 0 read as ``room``,
    or None when the header is cut short: by the data or by ``room``, the bytes its container has left."""
    if room < _HEADER or start + _HEADER > len(data):
        return None
    size, kind = struct.unpack_from(">I4s", data, start)
    if size == 1:
        if room < _LARGE_HEADER or start + _LARGE_HEADER > len(data):
            return None
        return kind, _LARGE_HEADER, struct.unpack_from(">Q", data, start + _HEADER)[0]
    return kind, _HEADER, size or room


def box_header(data: Data, start: int, room: int) -> tuple[bytes, int, int] | None:
    """(type, header length, size) of the box whose header is at ``data[start:]`` and which may take ``room``
    bytes (size 0: all of them), or None when the header is cut short or the size does not fit. ``data`` may
    hold just the header."""
    found = _declared(data, start, room)
    if found is None or not found[1] <= found[2] <= room:
        return None
    return found


def walk(data: Data, start: int, end: int, *, strict: bool = False) -> Iterator[Box]:
    """Each box between ``start`` and ``end`` (bounded by ``data`` too). A header cut short ends the walk; so
    does a size that runs past ``end`` or is smaller than its header, unless ``strict``: then that raises.

    Raises:
        InvalidInputError: ``strict``, and a box's size does not fit its container.
    """
    end = min(end, len(data))
    pos = start
    while (found := _declared(data, pos, end - pos)) is not None:
        kind, header, size = found
        if not header <= size <= end - pos:
            if strict:
                raise InvalidInputError(f"box {kind!r} at offset {pos} runs past its container")
            return
        yield Box(kind, pos, pos + header, pos + size)
        pos += size


def boxes(data: Data, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box between ``start`` and ``end`` (a malformed box ends the walk)."""
    for kind, _start, payload, box_end in walk(data, start, end):
        yield kind, payload, box_end


def find(data: Data, start: int, end: int, kind: bytes, *, strict: bool = False) -> Box | None:
    """The first box of type ``kind`` between ``start`` and ``end``, or None (``strict``: as :func:`walk`)."""
    for found in walk(data, start, end, strict=strict):
        if found.kind == kind:
            return found
    return None


def child(data: Data, start: int, end: int, kind: bytes, *, strict: bool = False) -> tuple[int, int] | None:
    """(payload start, box end) of the first box of type ``kind`` between ``start`` and ``end``, or None."""
    found = find(data, start, end, kind, strict=strict)
    return (found.payload, found.end) if found else None


def box(kind: bytes, payload: bytes) -> bytes:
    """A box of type ``kind`` holding ``payload``, with a 32-bit size."""
    return struct.pack(">I4s", _HEADER + len(payload), kind) + payload


# --- over a file ---------------------------------------------------------------------------------------


def top_level(f: BinaryIO, end: int | None = None) -> Iterator[FileBox]:
    """The top-level boxes of the binary file ``f`` before offset ``end`` (default: the end of the file),
    reading only their headers: each step seeks to the next box, so the caller may read ``f`` in between.

    A header cut short, or a size smaller than its header, ends the walk. The last box may run past ``end``
    (a file cut short): a caller that needs whole boxes checks ``box.end <= end``.
    """
    if end is None:
        end = f.seek(0, os.SEEK_END)
    pos = 0
    while pos + _HEADER <= end:  # before seeking: a huge size must not send the file past what it can seek to
        f.seek(pos)
        found = _declared(f.read(_LARGE_HEADER), 0, end - pos)
        if found is None:
            return
        kind, header, size = found
        if size < header:
            return  # where the next box starts is unknown
        yield FileBox(kind, pos, size, header)
        pos += size


def read_top_level(
    source: str | os.PathLike[str] | BinaryIO, kind: bytes, limit: int | None = None
) -> tuple[FileBox, bytes] | None:
    """The first top-level box of type ``kind`` in a file (a path or a binary file object) and its bytes from its
    start, header included (the payload starts at ``box.header``), or None when the walk ends before one.

    At most ``limit`` bytes of the payload are read. A box cut short by the end of the file gives the bytes there
    are: a declared size never makes a read bigger than the file.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return read_top_level(f, kind, limit)
    end = source.seek(0, os.SEEK_END)
    for found in top_level(source, end):
        if found.kind == kind:
            length = min(found.size - found.header, end - found.payload)
            source.seek(found.start)
            return found, source.read(found.header + (length if limit is None else min(length, limit)))
    return None
