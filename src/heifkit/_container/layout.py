"""A small, bounded reader of a file's timed tracks for ``heifkit info`` (``moov``: each track's id, handler,
codec, sample count and size). libheif opens tracks it can decode and says nothing of the others, nor of a
track's declared sample count before decoding; what libheif does tell (brands, items and their references)
``heifkit.fileinfo`` asks libheif for.

Every length is checked against its parent; a malformed box ends the walk of its parent instead of raising.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from .boxes import boxes, top_level

__all__ = ["Layout", "Track", "read_layout"]

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
    """What the boxes of a file declare that libheif does not tell."""

    tracks: list[Track] = field(default_factory=list)


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
    """The tracks ``path`` declares (top-level boxes are found by seeking, so only ``moov`` is read)."""
    layout = Layout()
    with open(path, "rb") as f:
        end = os.fstat(f.fileno()).st_size
        for box in itertools.islice(top_level(f, end), _MAX_CHILDREN):
            if box.end > end:
                break  # a box longer than the file ends the walk: a cut file gives what its whole boxes say
            kind, length = box.kind.decode("latin-1"), box.size - box.header
            if kind != "moov" or length > _MAX_BOX:
                continue
            f.seek(box.payload)
            data = f.read(length)
            layout.tracks.extend(_read_tracks(data))
    return layout


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
