"""A small, independent reader of HEIF/AVIF item structure, and the structural checks every written file must pass.

It parses the boxes itself (ISO/IEC 14496-12 and 23008-12: ``ftyp``, ``meta`` with ``hdlr``, ``pitm``, ``iloc``,
``iinf``/``infe``, ``iref``, ``iprp`` (``ipco``, ``ipma``), ``idat``, ``grpl``; ``mdat``; ``moov``) and uses no
heifkit code, so that a writer's mistake is not read back by the same mistake. :func:`parse` gives the items
(type, flags, data gathered from their extents, associated properties, references); :func:`check` lists what is
wrong with a file, :func:`assert_valid` fails a test on the first list that is not empty.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Box", "Extent", "HeifItem", "Parsed", "parse", "check", "assert_valid", "coded_data", "boxes", "describe"]

CODED = {"hvc1", "av01", "avc1", "jpeg", "j2k1", "vvc1", "unci"}
"""Item types that hold a coded image."""

SEQUENCE_BRANDS = {"msf1", "hevs", "avis"}
"""Brands that promise an image sequence (a ``moov`` box with a track)."""


@dataclass(frozen=True)
class Box:
    kind: str
    start: int  # offset of the box header in the buffer
    payload: int  # offset of the payload
    end: int  # offset just past the box


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[Box]:
    """The boxes laid out one after the other in ``data[start:end]``.

    Raises:
        ValueError: a box header is cut short, or a size reaches past ``end``.
    """
    end = len(data) if end is None else end
    found = []
    pos = start
    while pos < end:
        if end - pos < 8:
            raise ValueError(f"{end - pos} stray bytes at offset {pos}")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise ValueError(f"large box header cut short at {pos}")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"box {kind!r} at {pos} has size {size}, reaching past {end}")
        found.append(Box(kind.decode("latin-1"), pos, pos + header, pos + size))
        pos += size
    return found


class _Reader:
    """Big-endian fields read one after the other from a buffer, within ``[pos, end)``."""

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def uint(self, size: int) -> int:
        if size == 0:
            return 0
        if self.pos + size > self.end:
            raise ValueError(f"field of {size} bytes cut short at {self.pos}")
        value = int.from_bytes(self.data[self.pos : self.pos + size], "big")
        self.pos += size
        return value

    def full_header(self) -> tuple[int, int]:
        version = self.uint(1)
        return version, self.uint(3)

    def fourcc(self) -> str:
        return self.uint(4).to_bytes(4, "big").decode("latin-1")

    def cstring(self) -> bytes:
        """A NUL-terminated string (one cut short by the end of the box is taken whole, as readers do)."""
        stop = self.data.find(b"\0", self.pos, self.end)
        stop = self.end if stop < 0 else stop
        value = bytes(self.data[self.pos : stop])
        self.pos = min(stop + 1, self.end)
        return value

    def rest(self) -> bytes:
        value = bytes(self.data[self.pos : self.end])
        self.pos = self.end
        return value


@dataclass(frozen=True)
class Extent:
    offset: int  # in the file (construction method 0) or in idat's payload (1)
    length: int  # 0: to the end of the file (method 0)


@dataclass(frozen=True)
class Property:
    kind: str
    payload: bytes  # the box's payload (after its 8-byte header)


@dataclass
class HeifItem:
    id: int
    type: str | None = None  # None: an infe of version 0/1 (no item type)
    hidden: bool = False
    name: bytes = b""
    content_type: bytes = b""
    method: int | None = None  # iloc construction method; None: not in iloc
    base_offset: int = 0
    extents: list[Extent] = field(default_factory=list)
    data: bytes = b""
    properties: list[tuple[int, bool]] = field(default_factory=list)  # (ipco index, 1-based; essential)
    references: list[tuple[str, list[int]]] = field(default_factory=list)


@dataclass
class Parsed:
    size: int
    top: list[Box]
    major: str
    minor: int
    compatible: list[str]
    primary: int | None
    items: dict[int, HeifItem]
    infe_ids: list[int]  # in order, with repetitions if any
    iloc_ids: list[int]
    ipma_ids: list[int]
    ipco: list[Property]
    groups: list[tuple[str, int, list[int]]]
    idat: tuple[int, int] | None  # payload offsets of idat
    meta_children: list[str]
    problems: list[str] = field(default_factory=list)

    @property
    def brands(self) -> set[str]:
        return {self.major, *self.compatible}

    def kinds(self) -> set[str | None]:
        return {item.type for item in self.items.values()}

    def props(self, item_id: int) -> list[tuple[str, bytes, bool]]:
        """The properties associated with an item, in order: (type, payload, essential)."""
        out = []
        for index, essential in self.items[item_id].properties:
            if 1 <= index <= len(self.ipco):
                prop = self.ipco[index - 1]
                out.append((prop.kind, prop.payload, essential))
        return out

    def refs_from(self, item_id: int, kind: str) -> list[int]:
        return [t for k, targets in self.items[item_id].references if k == kind for t in targets]

    def refs_to(self, item_id: int, kind: str) -> list[int]:
        return [i for i, item in self.items.items() for k, ts in item.references if k == kind and item_id in ts]


def _ftyp(data: bytes, b: Box) -> tuple[str, int, list[str]]:
    r = _Reader(data, b.payload, b.end)
    major, minor = r.fourcc(), r.uint(4)
    compatible = []
    while r.end - r.pos >= 4:
        compatible.append(r.fourcc())
    return major, minor, compatible


def _iloc(data: bytes, b: Box, parsed: Parsed) -> None:
    r = _Reader(data, b.payload, b.end)
    version, _ = r.full_header()
    if version > 2:
        parsed.problems.append(f"iloc version {version}")
        return
    sizes = r.uint(1)
    offset_size, length_size = sizes >> 4, sizes & 15
    sizes = r.uint(1)
    base_size, index_size = sizes >> 4, (sizes & 15) if version in (1, 2) else 0
    count = r.uint(4 if version == 2 else 2)
    for _ in range(count):
        item_id = r.uint(4 if version == 2 else 2)
        method = r.uint(2) & 15 if version in (1, 2) else 0
        r.uint(2)  # data_reference_index
        base = r.uint(base_size)
        extents = []
        for _ in range(r.uint(2)):
            r.uint(index_size)
            extents.append(Extent(r.uint(offset_size), r.uint(length_size)))
        parsed.iloc_ids.append(item_id)
        item = parsed.items.setdefault(item_id, HeifItem(item_id))
        item.method, item.base_offset, item.extents = method, base, extents


def _iinf(data: bytes, b: Box, parsed: Parsed) -> None:
    r = _Reader(data, b.payload, b.end)
    version, _ = r.full_header()
    r.uint(2 if version == 0 else 4)  # entry count: the infe boxes are counted instead
    for child in boxes(data, r.pos, b.end):
        if child.kind != "infe":
            continue
        e = _Reader(data, child.payload, child.end)
        ver, flags = e.full_header()
        item_id = e.uint(4 if ver == 3 else 2)
        e.uint(2)  # protection index
        kind = e.fourcc() if ver >= 2 else None
        name = e.cstring()
        content_type = e.cstring() if kind == "mime" or ver < 2 else b""
        parsed.infe_ids.append(item_id)
        item = parsed.items.setdefault(item_id, HeifItem(item_id))
        item.type, item.hidden, item.name, item.content_type = kind, bool(flags & 1), name, content_type


def _iref(data: bytes, b: Box, parsed: Parsed) -> None:
    r = _Reader(data, b.payload, b.end)
    version, _ = r.full_header()
    width = 4 if version == 1 else 2
    for child in boxes(data, r.pos, b.end):
        e = _Reader(data, child.payload, child.end)
        source = e.uint(width)
        targets = [e.uint(width) for _ in range(e.uint(2))]
        parsed.items.setdefault(source, HeifItem(source)).references.append((child.kind, targets))


def _iprp(data: bytes, b: Box, parsed: Parsed) -> None:
    children = boxes(data, b.payload, b.end)
    for child in children:
        if child.kind == "ipco":
            for prop in boxes(data, child.payload, child.end):
                parsed.ipco.append(Property(prop.kind, bytes(data[prop.payload : prop.end])))
    for child in children:
        if child.kind != "ipma":
            continue
        r = _Reader(data, child.payload, child.end)
        version, flags = r.full_header()
        for _ in range(r.uint(4)):
            item_id = r.uint(4 if version >= 1 else 2)
            parsed.ipma_ids.append(item_id)
            item = parsed.items.setdefault(item_id, HeifItem(item_id))
            for _ in range(r.uint(1)):
                if flags & 1:
                    value = r.uint(2)
                    item.properties.append((value & 0x7FFF, bool(value >> 15)))
                else:
                    value = r.uint(1)
                    item.properties.append((value & 0x7F, bool(value >> 7)))


def _grpl(data: bytes, b: Box, parsed: Parsed) -> None:
    for child in boxes(data, b.payload, b.end):
        r = _Reader(data, child.payload, child.end)
        r.full_header()
        group_id = r.uint(4)
        parsed.groups.append((child.kind, group_id, [r.uint(4) for _ in range(r.uint(4))]))


def parse(source: bytes | str | Path) -> Parsed:
    """The item structure of a HEIF/AVIF file (its bytes or path).

    Raises:
        ValueError: the boxes cannot be read at all (a box reaching past its parent, no ``ftyp`` first).
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    top = boxes(data)
    if not top or top[0].kind != "ftyp":
        raise ValueError("the file does not start with ftyp")
    major, minor, compatible = _ftyp(data, top[0])
    parsed = Parsed(len(data), top, major, minor, compatible, None, {}, [], [], [], [], [], None, [])
    metas = [b for b in top if b.kind == "meta"]
    if len(metas) != 1:
        parsed.problems.append(f"{len(metas)} top-level meta boxes")
    if not metas:
        return parsed
    meta = metas[0]
    children = boxes(data, meta.payload + 4, meta.end)  # meta is a full box
    parsed.meta_children = [c.kind for c in children]
    for child in children:
        if child.kind == "pitm":
            r = _Reader(data, child.payload, child.end)
            version, _ = r.full_header()
            parsed.primary = r.uint(4 if version else 2)
        elif child.kind == "iloc":
            _iloc(data, child, parsed)
        elif child.kind == "iinf":
            _iinf(data, child, parsed)
        elif child.kind == "iref":
            _iref(data, child, parsed)
        elif child.kind == "iprp":
            _iprp(data, child, parsed)
        elif child.kind == "idat":
            parsed.idat = (child.payload, child.end)
        elif child.kind == "grpl":
            _grpl(data, child, parsed)
    for item in parsed.items.values():
        item.data = _gather(data, item, parsed)
    return parsed


def _gather(data: bytes, item: HeifItem, parsed: Parsed) -> bytes:
    """An item's data, its extents joined (b"" where an extent is out of bounds: :func:`check` says so)."""
    if item.method == 0:
        parts = []
        for extent in item.extents:
            start = item.base_offset + extent.offset
            stop = len(data) if extent.length == 0 else start + extent.length
            parts.append(data[start:stop] if stop <= len(data) else b"")
        return b"".join(parts)
    if item.method == 1 and parsed.idat is not None:
        begin, end = parsed.idat
        parts = []
        for extent in item.extents:
            start = begin + item.base_offset + extent.offset
            parts.append(data[start : start + extent.length] if start + extent.length <= end else b"")
        return b"".join(parts)
    return b""


def check(source: bytes | str | Path) -> list[str]:
    """What is wrong with the structure of a written file (empty: nothing)."""
    try:
        p = parse(source)
    except ValueError as exc:
        return [f"unreadable: {exc}"]
    problems = list(p.problems)
    mdats = [(b.payload, b.end) for b in p.top if b.kind == "mdat"]
    # --- item ids and their boxes
    if len(set(p.infe_ids)) != len(p.infe_ids):
        problems.append(f"item ids repeated in iinf: {sorted(p.infe_ids)}")
    if len(set(p.iloc_ids)) != len(p.iloc_ids):
        problems.append(f"item ids repeated in iloc: {sorted(p.iloc_ids)}")
    declared = set(p.infe_ids)
    if 0 in declared:
        problems.append("item id 0")
    for item in p.items.values():
        if item.id not in declared:
            problems.append(f"item {item.id} is located, associated or referenced from, but has no infe")
        if item.type in CODED | {"grid", "iovl", "tmap", "Exif", "mime"} and item.method is None:
            problems.append(f"item {item.id} ({item.type}) has no iloc entry")
    group_ids = [g for _, g, _ in p.groups]
    if len(set(group_ids)) != len(group_ids) or set(group_ids) & declared:
        problems.append(f"entity group ids {group_ids} repeat or clash with item ids")
    for kind, group_id, entities in p.groups:
        missing = [e for e in entities if e not in declared and e not in group_ids]
        if missing:
            problems.append(f"entity group {kind} {group_id} names missing entities {missing}")
    # --- extents
    for item in p.items.values():
        for extent in item.extents:
            if item.method == 0:
                start = item.base_offset + extent.offset
                stop = p.size if extent.length == 0 else start + extent.length
                if stop > p.size:
                    problems.append(f"item {item.id}: extent {start}..{stop} is outside the {p.size}-byte file")
                elif not any(a <= start and stop <= b for a, b in mdats):
                    problems.append(f"item {item.id}: extent {start}..{stop} is not inside an mdat box")
            elif item.method == 1:
                if p.idat is None:
                    problems.append(f"item {item.id} is in idat, but there is no idat box")
                else:
                    start = p.idat[0] + item.base_offset + extent.offset
                    if extent.length == 0 or start + extent.length > p.idat[1]:
                        problems.append(f"item {item.id}: idat extent {extent} is outside idat")
            elif item.method is not None:
                problems.append(f"item {item.id}: construction method {item.method}")
    # --- properties
    if len(set(p.ipma_ids)) != len(p.ipma_ids):
        problems.append(f"items associated in ipma more than once: {sorted(p.ipma_ids)}")
    for item in p.items.values():
        indices = [i for i, _ in item.properties]
        if len(set(indices)) != len(indices):
            problems.append(f"item {item.id}: a property associated twice: {indices}")
        for index, essential in item.properties:
            if index == 0:
                if essential:
                    problems.append(f"item {item.id}: property index 0 marked essential")
            elif index > len(p.ipco):
                problems.append(f"item {item.id}: property index {index} past ipco's {len(p.ipco)} properties")
        kinds = [k for k, _, _ in p.props(item.id)]
        for kind in ("ispe", "irot", "imir", "clap", "pixi", "hvcC", "av1C"):
            if kinds.count(kind) > 1:
                problems.append(f"item {item.id}: {kinds.count(kind)} {kind} properties")
        colours = [payload[:4] for kind, payload, _ in p.props(item.id) if kind == "colr"]
        for colour in (b"nclx", b"prof", b"rICC"):
            if colours.count(colour) > 1 or (colour == b"prof" and b"rICC" in colours and b"prof" in colours):
                problems.append(f"item {item.id}: more than one {colour.decode()} colour profile: {colours}")
        if item.type in CODED | {"grid", "iovl", "iden", "tmap"} and "ispe" not in kinds:
            problems.append(f"item {item.id} ({item.type}) has no ispe")
        transform_order = [k for k in kinds if k in ("clap", "irot", "imir")]
        if transform_order != sorted(transform_order, key=["clap", "irot", "imir"].index):
            problems.append(f"item {item.id}: transformative properties in the order {transform_order}")
        first_transform = next((n for n, k in enumerate(kinds) if k in ("clap", "irot", "imir")), len(kinds))
        late = sorted({k for k in kinds[first_transform:] if k not in ("clap", "irot", "imir")})
        if late:
            problems.append(f"item {item.id}: descriptive {late} after transformative {kinds[first_transform]}")
    # --- primary item and references
    if p.primary is None:
        problems.append("no pitm")
    elif p.primary not in declared:
        problems.append(f"pitm names item {p.primary}, which does not exist")
    elif p.items[p.primary].hidden:
        problems.append(f"the primary item {p.primary} is hidden")
    for item in p.items.values():
        for kind, targets in item.references:
            if not targets:
                problems.append(f"item {item.id}: an empty {kind} reference")
            for target in targets:
                if target not in declared and target not in group_ids:
                    problems.append(f"item {item.id}: {kind} reference to item {target}, which does not exist")
    # --- brands
    brands, kinds = p.brands, p.kinds()
    has_moov = any(b.kind == "moov" for b in p.top)
    if p.major not in p.compatible:
        problems.append(f"major brand {p.major!r} is not among the compatible brands {p.compatible}")
    if ("heic" in brands or "heix" in brands) and "hvc1" not in kinds:
        problems.append(f"brands {sorted(brands)} name HEVC, but there is no hvc1 item")
    if "avif" in brands and "av01" not in kinds:
        problems.append(f"brands {sorted(brands)} name AVIF, but there is no av01 item")
    if "tmap" in brands and "tmap" not in kinds:
        problems.append(f"brands {sorted(brands)} name tmap, but there is no tmap item")
    if brands & SEQUENCE_BRANDS and not has_moov:
        problems.append(f"sequence brands {sorted(brands & SEQUENCE_BRANDS)} without a moov box")
    if not brands & {"mif1", "mif2", "mif3"}:
        problems.append(f"no HEIF structural brand (mif1) among {sorted(brands)}")
    primary_type = p.items[p.primary].type if p.primary in p.items else None
    if primary_type == "grid" and p.primary is not None:
        tiles = p.refs_from(p.primary, "dimg")
        primary_type = p.items[tiles[0]].type if tiles and tiles[0] in p.items else None
    if primary_type == "av01" and "avif" not in brands:
        problems.append(f"an AV1 primary image, but no avif brand among {sorted(brands)}")
    return problems


def _general(problem: str) -> str:
    """A problem without its item ids and sizes, to compare one file's with another's."""
    return re.sub(r"\d+", "#", problem)


def assert_valid(written: bytes | str | Path, *sources: bytes | str | Path) -> Parsed:
    """Fail unless :func:`check` finds nothing in ``written`` but what it finds in the ``sources`` it was copied
    from (a problem of a source, e.g. Apple's ``pixi`` after ``irot``, stays in a copy as stored); the parsed
    file."""
    inherited = {_general(p) for source in sources for p in check(source)}
    problems = [p for p in check(written) if _general(p) not in inherited]
    assert not problems, "written file is malformed:\n  " + "\n  ".join(problems)
    return parse(written)


def coded_data(source: bytes | str | Path | Parsed) -> list[bytes]:
    """The data of every coded image item (hvc1, av01, ...), sorted: what a copy must keep byte for byte."""
    p = source if isinstance(source, Parsed) else parse(source)
    return sorted(item.data for item in p.items.values() if item.type in CODED)


def describe(source: bytes | str | Path) -> dict[str, Any]:
    """A summary for messages: brands, primary, and each item's type, flags, properties and references."""
    p = parse(source)
    return {
        "brands": (p.major, p.compatible),
        "primary": p.primary,
        "items": {
            i: (it.type, it.hidden, len(it.data), [k for k, _, _ in p.props(i)], it.references)
            for i, it in sorted(p.items.items())
        },
        "groups": p.groups,
    }
