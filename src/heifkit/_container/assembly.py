"""A HEIF/AVIF file assembled from items given as stored: ``ftyp``, then ``meta`` (``hdlr``, ``pitm``, ``iloc``,
``iinf``, ``iref``, ``iprp``, ``grpl``), then one ``mdat`` with every item's data.

libheif writes only files it has encoded at least one image into (it refuses a file of items added through its
item API alone), so images copied as they are stored, without a decode or an encode, are laid out here. The
input is plain data (:class:`Item`); this module knows boxes, not images. Every offset is computed before a byte
is written: ``meta`` has a fixed size once its fields' widths are chosen, so the ``iloc`` extents point into the
``mdat`` that follows it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from .boxes import box
from .item_boxes import Property

__all__ = ["Item", "assemble"]


@dataclass
class Item:
    """One item of the file to write: its id, four-character type, data as stored, properties in the order
    they are associated, references from it (type, target ids), and the fields of its ``infe`` box."""

    id: int
    kind: bytes
    data: bytes
    properties: list[Property] = field(default_factory=list)
    references: list[tuple[bytes, list[int]]] = field(default_factory=list)
    hidden: bool = False
    name: bytes = b""
    content_type: bytes = b""  # mime items
    content_encoding: bytes = b""  # mime items
    uri_type: bytes = b""  # uri items


def _full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big") + payload)


def _ftyp(major: bytes, compatible: Iterable[bytes]) -> bytes:
    return box(b"ftyp", major + b"\0\0\0\0" + b"".join(compatible))


def _hdlr() -> bytes:
    return _full_box(b"hdlr", 0, 0, b"\0\0\0\0pict" + bytes(12) + b"\0")


def _pitm(primary: int) -> bytes:
    if primary < 1 << 16:
        return _full_box(b"pitm", 0, 0, struct.pack(">H", primary))
    return _full_box(b"pitm", 1, 0, struct.pack(">I", primary))


def _infe(item: Item) -> bytes:
    wide = item.id >= 1 << 16
    payload = struct.pack(">I" if wide else ">H", item.id) + b"\0\0" + item.kind + item.name + b"\0"
    if item.kind == b"mime":
        payload += item.content_type + b"\0"
        if item.content_encoding:
            payload += item.content_encoding + b"\0"
    elif item.kind == b"uri ":
        payload += item.uri_type + b"\0"
    return _full_box(b"infe", 3 if wide else 2, 1 if item.hidden else 0, payload)


def _iinf(items: list[Item]) -> bytes:
    count = len(items)
    head = struct.pack(">H", count) if count < 1 << 16 else struct.pack(">I", count)
    return _full_box(b"iinf", 0 if count < 1 << 16 else 1, 0, head + b"".join(_infe(i) for i in items))


def _iref(items: list[Item]) -> bytes:
    refs = [(item.id, kind, targets) for item in items for kind, targets in item.references if targets]
    if not refs:
        return b""
    wide = any(i >= 1 << 16 for source, _, targets in refs for i in [source, *targets])
    fmt = "I" if wide else "H"
    boxes = b"".join(
        box(kind, struct.pack(f">{fmt}H{len(targets)}{fmt}", source, len(targets), *targets))
        for source, kind, targets in refs
    )
    return _full_box(b"iref", 1 if wide else 0, 0, boxes)


def _property_box(prop: Property) -> bytes:
    return box(prop.kind, (prop.uuid or b"") + prop.payload)


def _iprp(items: list[Item]) -> bytes:
    """``ipco`` with each distinct property once, and ``ipma`` associating each item with its own, in order."""
    index: dict[tuple[bytes, bytes, bytes | None], int] = {}
    stored: list[bytes] = []
    associations: list[tuple[int, list[tuple[int, bool]]]] = []
    for entry in items:
        mine: list[tuple[int, bool]] = []
        for prop in entry.properties:
            key = (prop.kind, prop.payload, prop.uuid)
            if key not in index:
                stored.append(_property_box(prop))
                index[key] = len(stored)  # 1-based: 0 means "no property"
            if all(i != index[key] for i, _ in mine):  # a property is associated with an item once
                mine.append((index[key], prop.essential))
        if mine:
            associations.append((entry.id, mine))
    if not associations:
        return b""
    wide_ids = any(item >= 1 << 16 for item, _ in associations)
    wide_index = len(stored) > 127
    rows = []
    for item, mine in associations:
        if len(mine) > 255:
            raise ValueError(f"item {item} has more than 255 properties")
        row = struct.pack(">I" if wide_ids else ">H", item) + bytes([len(mine)])
        for i, essential in mine:
            value = i | (essential << (15 if wide_index else 7))
            row += struct.pack(">H" if wide_index else ">B", value)
        rows.append(row)
    ipma = _full_box(
        b"ipma", 1 if wide_ids else 0, 1 if wide_index else 0, struct.pack(">I", len(rows)) + b"".join(rows)
    )
    return box(b"iprp", box(b"ipco", b"".join(stored)) + ipma)


def _grpl(groups: list[tuple[bytes, int, list[int]]]) -> bytes:
    if not groups:
        return b""
    return box(
        b"grpl",
        b"".join(
            _full_box(kind, 0, 0, struct.pack(f">II{len(ids)}I", group_id, len(ids), *ids))
            for kind, group_id, ids in groups
        ),
    )


def _layout(items: list[Item]) -> tuple[dict[int, tuple[int, int]], list[bytes]]:
    """Where each item's data goes in ``mdat`` (item id -> (offset from its start, length)) and the data in order:
    items whose data are the same bytes share one extent (a file may point several items at one coded image)."""
    placed: dict[bytes, int] = {}
    where: dict[int, tuple[int, int]] = {}
    chunks: list[bytes] = []
    size = 0
    for item in items:
        if not item.data:
            continue
        if item.data not in placed:
            placed[item.data] = size
            chunks.append(item.data)
            size += len(item.data)
        where[item.id] = (placed[item.data], len(item.data))
    return where, chunks


def _iloc(where: dict[int, tuple[int, int]], first_offset: int, wide: bool) -> bytes:
    """``iloc`` (construction method 0): one extent per item with data, at ``first_offset`` + its place."""
    size = 8 if wide else 4
    version = 2 if any(item >= 1 << 16 for item in where) or len(where) >= 1 << 16 else 1
    rows = []
    for item, (offset, length) in where.items():
        row = struct.pack(">I" if version == 2 else ">H", item) + struct.pack(">HHH", 0, 0, 1)
        row += (first_offset + offset).to_bytes(size, "big") + length.to_bytes(size, "big")
        rows.append(row)
    head = bytes([(size << 4) | size, 0])  # offset and length sizes; no base offset, no extent index
    count = struct.pack(">I" if version == 2 else ">H", len(rows))
    return _full_box(b"iloc", version, 0, head + count + b"".join(rows))


def assemble(
    major: bytes,
    compatible: list[bytes],
    items: list[Item],
    primary: int,
    groups: list[tuple[bytes, int, list[int]]] = (),  # type: ignore[assignment]
) -> bytes:
    """The bytes of a file holding ``items`` (ids unique), ``primary`` as its primary item, and entity
    ``groups`` (type, group id, entity ids; group ids distinct from item ids).

    Raises:
        ValueError: ids are not unique, or an item has too many properties for ``ipma``.
    """
    ids = [item.id for item in items] + [group_id for _, group_id, _ in groups]
    if len(set(ids)) != len(ids) or any(i <= 0 for i in ids):
        raise ValueError("item and group ids must be unique and positive")
    if primary not in {item.id for item in items}:
        raise ValueError(f"primary item {primary} is not among the items")
    ftyp = _ftyp(major, compatible)
    head = _hdlr() + _pitm(primary)
    tail = _iinf(items) + _iref(items) + _iprp(items) + _grpl(list(groups))
    where, chunks = _layout(items)
    total = sum(len(chunk) for chunk in chunks)
    mdat_header = 16 if total + 8 >= 1 << 32 else 8
    wide = len(ftyp) + 12 + len(head) + len(_iloc(where, 0, False)) + len(tail) + mdat_header + total >= 1 << 32
    meta_size = 12 + len(head) + len(_iloc(where, 0, wide)) + len(tail)  # the iloc's size does not hang on offsets
    start = len(ftyp) + meta_size + mdat_header
    meta = _full_box(b"meta", 0, 0, head + _iloc(where, start, wide) + tail)
    if mdat_header == 8:
        mdat = struct.pack(">I", 8 + total) + b"mdat"
    else:
        mdat = struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 16 + total)
    return b"".join([ftyp, meta, mdat, *chunks])
