"""A small, bounded reader of ISOBMFF boxes for ``heifkit info``: the brands (``ftyp``), each item's type and
derivation references (``meta``: ``iinf``, ``iref``) and the timed tracks (``moov``: handler, codec, sample
count, size). libheif decides everything about reading images; this only reports what the file declares
that heifkit does not expose (sequence tracks, ``tmap`` gain-map items, item types).

Every length is checked against its parent; a malformed box ends the walk of its parent instead of raising.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from .boxes import boxes, top_level

__all__ = ["Layout", "Track", "read_layout", "SEQUENCE_BRANDS"]

SEQUENCE_BRANDS = frozenset({"msf1", "hevc", "hevx", "hevm", "hevs", "avis"})
"""Brands that declare image sequences (timed tracks) rather than, or beside, still images."""

_MAX_BOX = 64 << 20  # meta and moov boxes bigger than this are not read (no real file has one)
_MAX_CHILDREN = 100_000


@dataclass
class Track:
    """A timed track of a sequence file."""

    id: int | None
    handler: str  # "pict" (image sequence), "vide", "auxv" (alpha or depth), "soun", "meta"...
    codec: str | None  # the first sample entry's format: "hvc1", "av01"...
    samples: int | None
    width: int | None
    height: int | None


@dataclass
class Layout:
    """What the boxes of a file declare."""

    major_brand: str | None = None
    compatible_brands: list[str] = field(default_factory=list)
    item_types: dict[int, str] = field(default_factory=dict)  # item id -> "hvc1", "grid", "tmap"...
    derived_from: dict[int, list[int]] = field(default_factory=dict)  # item id -> its "dimg" inputs
    tracks: list[Track] = field(default_factory=list)

    @property
    def sequence_brands(self) -> list[str]:
        """The sequence brands among the major and compatible brands."""
        brands = [self.major_brand, *self.compatible_brands]
        return sorted({b for b in brands if b in SEQUENCE_BRANDS})


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[str, int, int]]:
    """(type, payload start, box end) of each box in ``data[start:end]``, at most ``_MAX_CHILDREN``."""
    for count, (kind, payload, box_end) in enumerate(boxes(data, start, end)):
        if count >= _MAX_CHILDREN:
            return
        yield kind.decode("latin-1"), payload, box_end


def _child(data: bytes, start: int, end: int, kind: str) -> tuple[int, int] | None:
    for found, payload, box_end in _children(data, start, end):
        if found == kind:
            return payload, box_end
    return None


def _u(data: bytes, pos: int, size: int) -> int:
    return int.from_bytes(data[pos : pos + size], "big")


def read_layout(path: str | os.PathLike[str]) -> Layout:
    """The brands, items and tracks ``path`` declares (top-level boxes are found by seeking, so only ``ftyp``,
    ``meta`` and ``moov`` are read)."""
    layout = Layout()
    with open(path, "rb") as f:
        end = os.fstat(f.fileno()).st_size
        for box in itertools.islice(top_level(f, end), _MAX_CHILDREN):
            if box.end > end:
                break  # a box longer than the file ends the walk: a cut file gives what its whole boxes say
            kind, length = box.kind.decode("latin-1"), box.size - box.header
            if kind not in ("ftyp", "meta", "moov") or length > _MAX_BOX:
                continue
            f.seek(box.payload)
            data = f.read(length)
            if kind == "ftyp" and len(data) >= 8:
                layout.major_brand = data[0:4].decode("latin-1")
                layout.compatible_brands = [data[i : i + 4].decode("latin-1") for i in range(8, len(data) - 3, 4)]
            elif kind == "meta":
                _read_meta(data, layout)
            elif kind == "moov":
                layout.tracks.extend(_read_tracks(data))
    return layout


def _read_meta(data: bytes, layout: Layout) -> None:
    start = 4  # a full box: version and flags first
    iinf = _child(data, start, len(data), "iinf")
    if iinf is not None:
        first = iinf[0] + 4 + (2 if data[iinf[0]] == 0 else 4)  # entry count: 16 bits in version 0
        for kind, pos, box_end in _children(data, first, iinf[1]):
            version = data[pos] if pos < box_end else 0
            if kind != "infe" or version < 2:
                continue
            id_size = 2 if version == 2 else 4
            item_id = _u(data, pos + 4, id_size)
            type_at = pos + 4 + id_size + 2
            if type_at + 4 <= box_end:
                layout.item_types[item_id] = data[type_at : type_at + 4].decode("latin-1")
    iref = _child(data, start, len(data), "iref")
    if iref is not None:
        id_size = 2 if data[iref[0]] == 0 else 4
        for kind, pos, box_end in _children(data, iref[0] + 4, iref[1]):
            if kind != "dimg" or pos + id_size + 2 > box_end:
                continue
            source = _u(data, pos, id_size)
            count = _u(data, pos + id_size, 2)
            refs = pos + id_size + 2
            count = min(count, (box_end - refs) // id_size)
            layout.derived_from[source] = [_u(data, refs + i * id_size, id_size) for i in range(count)]


def _read_tracks(data: bytes) -> list[Track]:
    tracks = []
    for kind, start, end in _children(data, 0, len(data)):
        if kind != "trak":
            continue
        track = Track(None, "", None, None, None, None)
        tkhd = _child(data, start, end, "tkhd")
        if tkhd is not None:
            pos, box_end = tkhd
            track.id = _u(data, pos + (20 if data[pos] == 1 else 12), 4)
            if box_end - pos >= 8:  # width and height end the box, as 16.16 fixed point
                track.width, track.height = _u(data, box_end - 8, 2), _u(data, box_end - 4, 2)
        mdia = _child(data, start, end, "mdia")
        if mdia is not None:
            hdlr = _child(data, *mdia, "hdlr")
            if hdlr is not None and hdlr[0] + 12 <= hdlr[1]:
                track.handler = data[hdlr[0] + 8 : hdlr[0] + 12].decode("latin-1")
            minf = _child(data, *mdia, "minf")
            stbl = _child(data, *minf, "stbl") if minf else None
            if stbl is not None:
                _read_samples(data, stbl, track)
        tracks.append(track)
    return tracks


def _read_samples(data: bytes, stbl: tuple[int, int], track: Track) -> None:
    stsd = _child(data, *stbl, "stsd")
    if stsd is not None:
        entry = next(_children(data, stsd[0] + 8, stsd[1]), None)  # version, flags and entry count first
        track.codec = entry[0] if entry else None
    for kind in ("stsz", "stz2"):
        box = _child(data, *stbl, kind)
        if box is not None and box[0] + 12 <= box[1]:
            track.samples = _u(data, box[0] + 8, 4)
            break
