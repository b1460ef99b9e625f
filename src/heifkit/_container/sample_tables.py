"""The sample tables of a file's tracks, read from its ``moov`` box: how many samples, their durations, and
what the first sample entry says (codec, bit depth, monochrome, colour).

libheif 1.23 decodes a track's samples one after the other but does not tell how many there are, their
durations before they are decoded, or the coded bit depth; a sequence needs all of them at open (``len()``,
Pillow's ``n_frames`` and the frame modes). So these few boxes are read here, bounded by the data: no
allocation grows with what a box claims, and a malformed box ends the walk. Nothing here calls libheif.

Boxes read (ISO/IEC 14496-12): ``moov/trak/tkhd`` (track id), ``.../mdia/minf/stbl/stsz`` or ``stz2``
(sample count), ``stts`` (durations), ``stsd`` (the first sample entry: ``av1C``, ``hvcC``, ``colr``).
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from typing import Any

from .boxes import boxes, child, read_top_level

__all__ = ["SampleEntry", "TrackTable", "read_tables"]

_MAX_BOX_READ = 1 << 28
"""The largest ``moov`` box read from a file (256 MB): a bigger one is not a real file's."""


@dataclass(frozen=True)
class SampleEntry:
    """What a track's first sample entry says: its type (``av01``, ``hvc1``...) and the coded pixels."""

    kind: str
    bits: int | None = None  # luma bit depth, None when the decoder configuration was not understood
    monochrome: bool | None = None
    chroma: int | None = None  # 420, 422, 444
    color: dict[str, Any] = field(default_factory=dict)  # icc_profile + icc_profile_type, or nclx_profile


class TrackTable:
    """A track's samples: ``samples`` of them, durations (in the track's timescale) as ``stts`` runs.

    Attributes:
        track_id: the track's id (``tkhd``).
        samples: the number of samples (``stsz``/``stz2``).
        runs: (sample count, duration) pairs as stored, cut to cover at most ``samples``.
        entry: the first sample entry, None when there is none.
    """

    def __init__(self, track_id: int, samples: int, runs: tuple[tuple[int, int], ...], entry: SampleEntry | None):
        self.track_id = track_id
        self.samples = samples
        self.runs = runs
        self.entry = entry
        self._first: list[int] = []  # index of each run's first sample
        self._time: list[int] = []  # decoding time of each run's first sample
        index = time = 0
        for count, delta in runs:
            self._first.append(index)
            self._time.append(time)
            index += count
            time += count * delta

    def __repr__(self) -> str:
        return f"TrackTable(track_id={self.track_id}, samples={self.samples}, runs={self.runs}, entry={self.entry})"

    def duration(self, index: int) -> int:
        """The duration of sample ``index`` in ticks (0 when ``stts`` does not cover it)."""
        run = bisect.bisect_right(self._first, index) - 1
        if run < 0 or index >= self._first[run] + self.runs[run][0]:
            return 0
        return self.runs[run][1]

    def start(self, index: int) -> int:
        """The decoding time of sample ``index`` in ticks (the sum of the durations before it)."""
        run = bisect.bisect_right(self._first, index) - 1
        if run < 0:
            return 0
        count, delta = self.runs[run]
        return self._time[run] + min(index - self._first[run], count) * delta


# --- boxes ---------------------------------------------------------------------------------------------


def _child(data: bytes, start: int, end: int, kind: str) -> tuple[int, int] | None:
    return child(data, start, end, kind.encode("latin-1"))


def _path(data: bytes, start: int, end: int, *kinds: str) -> tuple[int, int] | None:
    span: tuple[int, int] | None = (start, end)
    for kind in kinds:
        if span is None:
            return None
        span = _child(data, span[0], span[1], kind)
    return span


def _u32(data: bytes, pos: int, end: int) -> int | None:
    return struct.unpack_from(">I", data, pos)[0] if pos + 4 <= end else None


def _track_id(data: bytes, start: int, end: int) -> int | None:
    if start + 4 > end:
        return None
    version = data[start]
    return _u32(data, start + (20 if version == 1 else 12), end)


def _sample_count(data: bytes, stbl: tuple[int, int]) -> int | None:
    span = _child(data, *stbl, "stsz") or _child(data, *stbl, "stz2")
    if span is None:
        return None
    return _u32(data, span[0] + 8, span[1])  # after version/flags and sample_size (stz2: reserved + field_size)


def _durations(data: bytes, stbl: tuple[int, int], samples: int) -> tuple[tuple[int, int], ...]:
    span = _child(data, *stbl, "stts")
    if span is None:
        return ()
    start, end = span
    count = _u32(data, start + 4, end) or 0
    runs = []
    covered = 0
    pos = start + 8
    for _ in range(count):
        if pos + 8 > end or covered >= samples:
            break
        run, delta = struct.unpack_from(">II", data, pos)
        run = min(run, samples - covered)
        if run:
            runs.append((run, delta))
        covered += run
        pos += 8
    return tuple(runs)


def _colr(data: bytes, start: int, end: int) -> dict[str, Any]:
    kind = data[start : start + 4]
    if kind == b"nclx" and start + 11 <= end:
        primaries, transfer, matrix = struct.unpack_from(">HHH", data, start + 4)
        return {
            "nclx_profile": {
                "color_primaries": primaries,
                "transfer_characteristics": transfer,
                "matrix_coefficients": matrix,
                "full_range_flag": data[start + 10] >> 7,
            }
        }
    if kind in (b"prof", b"rICC"):
        return {"icc_profile": bytes(data[start + 4 : end]), "icc_profile_type": kind.decode()}
    return {}


_VISUAL_SAMPLE_ENTRY = 78  # bytes of a VisualSampleEntry before its child boxes


def _sample_entry(data: bytes, stbl: tuple[int, int]) -> SampleEntry | None:
    span = _child(data, *stbl, "stsd")
    if span is None:
        return None
    entry = next(boxes(data, span[0] + 8, span[1]), None)  # after version/flags and entry_count
    if entry is None:
        return None
    kind, start, end = entry
    bits = monochrome = chroma = None
    color: dict[str, Any] = {}
    for name, begin, stop in boxes(data, start + _VISUAL_SAMPLE_ENTRY, end):
        if name == b"av1C" and stop - begin >= 4:
            flags = data[begin + 2]
            bits = 12 if flags & 0x20 else 10 if flags & 0x40 else 8
            monochrome = bool(flags & 0x10)
            sub_x, sub_y = (flags >> 3) & 1, (flags >> 2) & 1
            chroma = 420 if sub_x and sub_y else 422 if sub_x else 444
        elif name == b"hvcC" and stop - begin >= 23:
            chroma_idc = data[begin + 16] & 0x03
            bits = (data[begin + 17] & 0x07) + 8
            monochrome = chroma_idc == 0
            chroma = {1: 420, 2: 422, 3: 444}.get(chroma_idc)
        elif name == b"colr" and not color:
            color = _colr(data, begin, stop)
    return SampleEntry(kind.decode("latin-1"), bits, monochrome, None if monochrome else chroma, color)


def _tables(moov: bytes, payload: int) -> dict[int, TrackTable]:
    """The sample tables of the tracks in ``moov`` (its children from ``payload`` on)."""
    tables = {}
    for name, start, end in boxes(moov, payload, len(moov)):
        if name != b"trak":
            continue
        tkhd = _child(moov, start, end, "tkhd")
        stbl = _path(moov, start, end, "mdia", "minf", "stbl")
        if tkhd is None or stbl is None:
            continue
        track_id, samples = _track_id(moov, *tkhd), _sample_count(moov, stbl)
        if track_id is None or samples is None:
            continue
        tables[track_id] = TrackTable(track_id, samples, _durations(moov, stbl, samples), _sample_entry(moov, stbl))
    return tables


# --- the file ----------------------------------------------------------------------------------------


def _moov_from_bytes(data: Any) -> bytes | None:
    view = memoryview(data).cast("B")
    span = child(view, 0, len(view), b"moov")
    return bytes(view[span[0] : span[1]]) if span else None


def read_tables(source: Any) -> dict[int, TrackTable]:
    """The sample table of every track, by track id, from a file's bytes or its path (``Context.source``)."""
    if isinstance(source, str):
        found = read_top_level(source, b"moov", _MAX_BOX_READ)
        return _tables(found[1], found[0].header) if found else {}
    moov = _moov_from_bytes(source)
    return _tables(moov, 0) if moov else {}
