"""The few ISOBMFF boxes libheif's API does not give or write, read and patched as bytes.

libheif gives an item's data and references but not the bytes of its coded-image properties (``hvcC``,
``av1C``, ``auxC``...): :func:`item_properties` reads them from the source file's ``iprp`` box so that an
item can be copied as it is. libheif writes neither an item's visibility (items added through its item API
are hidden) nor entity groups: :func:`patch_written` sets the one and appends a ``grpl`` box to ``meta``,
moving the file offsets of ``iloc`` by the bytes added. Nothing here decodes pixels.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError
from .boxes import box, find, read_top_level, walk

__all__ = ["Property", "OpenedPath", "item_properties", "patch_written"]

_HEADER = 4096
"""The bytes of a file's start an :class:`OpenedPath` keeps (``ftyp`` and what follows)."""


class OpenedPath(str):
    """The path of a file libheif reads lazily (a big file), with what heifkit reads of the file itself as it was
    when it was opened: its first bytes (``header``) and its top-level ``meta`` box (``meta``: the box and where
    its payload starts, None without one).

    libheif keeps reading the file it opened, even once the path names another file (a save over it replaces it),
    so the properties and brands heifkit copies beside libheif's item data must come from that same file.
    """

    header: bytes
    meta: tuple[bytes, int] | None

    @classmethod
    def of(cls, path: str) -> OpenedPath:
        opened = cls(path)
        with open(path, "rb") as f:
            opened.header = f.read(_HEADER)
            found = read_top_level(f, b"meta")
        opened.meta = None if found is None else (found[1], found[0].header)
        return opened


@dataclass(frozen=True)
class Property:
    """One item property as stored: its type, payload (after the box header and, for ``uuid``, its
    16-byte type), the ``uuid`` type (else None), and whether the item lists it as essential."""

    kind: bytes
    payload: bytes
    uuid: bytes | None
    essential: bool


def _meta_of_source(source: Any) -> tuple[bytes, int]:
    """The top-level ``meta`` box of a file given as bytes or as a path (read up to its end only), and where its
    payload starts (after a 32- or 64-bit size)."""
    if isinstance(source, OpenedPath):
        if source.meta is None:
            raise InvalidInputError("the file has no meta box")
        return source.meta
    if isinstance(source, (str, os.PathLike)):
        found = read_top_level(source, b"meta")
        if found is None:
            raise InvalidInputError("the file has no meta box")
        return found[1], found[0].header
    data = memoryview(source).cast("B")
    meta = find(data, 0, len(data), b"meta", strict=True)
    if meta is None:
        raise InvalidInputError("the file has no meta box")
    return bytes(data[meta.start : meta.end]), meta.payload - meta.start


def item_properties(source: Any, items: set[int]) -> dict[int, list[Property]]:
    """The properties of ``items``, in the order the file associates them, read from the file (bytes or path).

    Raises:
        InvalidInputError: the file's ``meta``/``iprp`` boxes cannot be read.
    """
    try:
        return _properties(*_meta_of_source(source), items)
    except struct.error as exc:
        raise InvalidInputError(f"a property box of the file is truncated: {exc}") from exc


def _properties(meta: bytes, start: int, items: set[int]) -> dict[int, list[Property]]:
    """The properties of ``items`` in ``meta`` (the ``meta`` box, its payload from ``start`` on)."""
    iprp = find(meta, start + 4, len(meta), b"iprp", strict=True)  # meta: a FullBox, version and flags first
    if iprp is None:
        return {}
    ipco = find(meta, iprp.payload, iprp.end, b"ipco", strict=True)
    if ipco is None:
        return {}
    stored = []
    for kind, _start, payload, end in walk(meta, ipco.payload, ipco.end, strict=True):
        uuid = bytes(meta[payload : payload + 16]) if kind == b"uuid" else None
        stored.append((kind, bytes(meta[payload + (16 if uuid else 0) : end]), uuid))
    result: dict[int, list[Property]] = {}
    for kind, _start, payload, end in walk(meta, iprp.payload, iprp.end, strict=True):
        if kind == b"ipma":
            _associations(meta, payload, end, items, stored, result)
    return result


def _associations(meta: bytes, pos: int, end: int, items: set[int], stored: list[Any], out: dict[int, Any]) -> None:
    """Add the properties ``ipma`` (payload at ``pos``) gives each item of ``items`` to ``out``."""
    version, flags = meta[pos], int.from_bytes(meta[pos + 1 : pos + 4], "big")
    (count,) = struct.unpack_from(">I", meta, pos + 4)
    pos += 8
    id_format = (">I", 4) if version >= 1 else (">H", 2)
    index_format = (">H", 2) if flags & 1 else (">B", 1)
    for _ in range(count):
        if pos + id_format[1] + 1 > end:
            raise InvalidInputError("ipma box is truncated")
        (item,) = struct.unpack_from(id_format[0], meta, pos)
        associations = meta[pos + id_format[1]]
        pos += id_format[1] + 1
        for _ in range(associations):
            (value,) = struct.unpack_from(index_format[0], meta, pos)
            pos += index_format[1]
            bits = 8 * index_format[1] - 1
            index, essential = value & ((1 << bits) - 1), bool(value >> bits)
            if item in items and 1 <= index <= len(stored):
                kind, payload, uuid = stored[index - 1]
                out.setdefault(item, []).append(Property(kind, payload, uuid, essential))


def patch_written(data: bytes, visible: set[int], groups: list[tuple[bytes, list[int]]]) -> bytes:
    """``data`` (a file libheif wrote) with the items ``visible`` not hidden, and entity ``groups`` (type,
    entity ids) in a ``grpl`` box appended to ``meta``; the ``iloc`` offsets after it move accordingly.

    Raises:
        InvalidInputError: the file is not laid out as libheif writes it (a bug, not a user error).
    """
    out = bytearray(data)
    meta = find(out, 0, len(out), b"meta", strict=True)
    if meta is None:
        raise InvalidInputError("written file has no meta box")
    _kind, start, payload, end = meta
    if visible:
        _show_items(out, payload + 4, end, visible)
    if not groups:
        return bytes(out)
    first_id = max(_item_ids(out, payload + 4, end), default=0) + 1
    group_boxes = b"".join(
        _full_box(kind, struct.pack(f">II{len(ids)}I", first_id + n, len(ids), *ids))
        for n, (kind, ids) in enumerate(groups)
    )
    grpl = box(b"grpl", group_boxes)
    if out[start : start + 4] == b"\0\0\0\1" or struct.unpack_from(">I", out, start)[0] != end - start:
        raise InvalidInputError("written meta box has an unexpected size field")
    _move_offsets(out, payload + 4, end, after=end, by=len(grpl))
    struct.pack_into(">I", out, start, end - start + len(grpl))
    return bytes(out[:end]) + grpl + bytes(out[end:])


def _full_box(kind: bytes, payload: bytes) -> bytes:
    return box(kind, b"\0\0\0\0" + payload)


def _infe_boxes(out: bytearray, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(payload start, item id) of each ``infe`` box of ``iinf`` in ``meta``'s children ``out[start:end]``."""
    iinf = find(out, start, end, b"iinf", strict=True)
    if iinf is None:
        return
    first = iinf.payload + 4 + (2 if out[iinf.payload] == 0 else 4)
    for kind, _start, payload, _end in walk(out, first, iinf.end, strict=True):
        if kind == b"infe" and out[payload] >= 2:  # version 2 and 3 infe boxes carry the item id after flags
            item = struct.unpack_from(">H" if out[payload] == 2 else ">I", out, payload + 4)[0]
            yield payload, item


def _item_ids(out: bytearray, start: int, end: int) -> list[int]:
    return [item for _payload, item in _infe_boxes(out, start, end)]


def _show_items(out: bytearray, start: int, end: int, visible: set[int]) -> None:
    for payload, item in _infe_boxes(out, start, end):
        if item in visible:
            out[payload + 3] &= 0xFE  # flags bit 0: hidden


def _move_offsets(out: bytearray, start: int, end: int, after: int, by: int) -> None:
    """Add ``by`` to every file offset of ``iloc`` (in ``meta``'s children ``out[start:end]``) at or past ``after``."""
    iloc = find(out, start, end, b"iloc", strict=True)
    if iloc is None:
        return
    pos = iloc.payload
    version = out[pos]
    offset_size, length_size = out[pos + 4] >> 4, out[pos + 4] & 15
    base_size, index_size = out[pos + 5] >> 4, (out[pos + 5] & 15) if version in (1, 2) else 0
    pos += 6
    wide = version == 2
    count = struct.unpack_from(">I" if wide else ">H", out, pos)[0]
    pos += 4 if wide else 2
    for _ in range(count):
        pos += 4 if wide else 2  # item id
        method = 0
        if version in (1, 2):
            method = struct.unpack_from(">H", out, pos)[0] & 15
            pos += 2
        pos += 2  # data reference index
        base_pos = pos
        base = _uint(out, pos, base_size)
        pos += base_size
        extents = struct.unpack_from(">H", out, pos)[0]
        pos += 2
        moved_base = method == 0 and base_size > 0 and base >= after
        if moved_base:
            _put_uint(out, base_pos, base_size, base + by)
        for _ in range(extents):
            pos += index_size
            offset = _uint(out, pos, offset_size)
            if method == 0 and not moved_base and offset_size and base + offset >= after:
                _put_uint(out, pos, offset_size, offset + by)
            pos += offset_size + length_size


def _uint(data: bytearray, pos: int, size: int) -> int:
    return int.from_bytes(data[pos : pos + size], "big") if size else 0


def _put_uint(data: bytearray, pos: int, size: int, value: int) -> None:
    if value >= 1 << (8 * size):
        raise InvalidInputError(f"an iloc offset does not fit its {size}-byte field after moving it")
    data[pos : pos + size] = value.to_bytes(size, "big")
