"""Gain-map metadata as data: ISO 21496-1's (the ``tmap`` item's bytes, read and written) and Apple's (the
headroom its EXIF maker note gives, and the XMP version that says the gain map is valid).

ISO 21496-1 stores every value as a fraction; :class:`ToneMap` holds them as floats, per channel (red, green,
blue: a single-channel map repeats its values). Headrooms are log2 (stops), as the standard and libavif keep
them. The layout read and written here is the standard's binary form as libavif reads it (version 0, minimum
version 0): a flags byte (``is_multichannel``, ``use_base_colour_space``), the two headrooms, then per channel
the gain map's minimum and maximum (log2), gamma and the base and alternate offsets.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from fractions import Fraction

__all__ = ["ToneMap", "parse_tone_map", "tone_map_bytes", "apple_headroom", "apple_gain_map_version"]


def _three(value: float) -> list[float]:
    return [value] * 3


@dataclass
class ToneMap:
    """ISO 21496-1 gain-map metadata, as floats (headrooms and the map's range in log2 units)."""

    base_hdr_headroom: float = 0.0
    alternate_hdr_headroom: float = 1.0
    gain_map_min: list[float] = field(default_factory=lambda: _three(0.0))
    gain_map_max: list[float] = field(default_factory=lambda: _three(1.0))
    gamma: list[float] = field(default_factory=lambda: _three(1.0))
    base_offset: list[float] = field(default_factory=lambda: _three(1 / 64))
    alternate_offset: list[float] = field(default_factory=lambda: _three(1 / 64))
    use_base_colour_space: bool = True

    def weight(self, headroom: float) -> float:
        """How much of the map to apply for a display of ``headroom`` stops: 0 shows the base image, 1 (or -1
        when the alternate image has less headroom than the base) the alternate one; between, in proportion."""
        base, alternate = self.base_hdr_headroom, self.alternate_hdr_headroom
        if base == alternate:
            return 0.0
        w = min(1.0, max(0.0, (headroom - base) / (alternate - base)))
        return -w if alternate < base else w

    @property
    def multichannel(self) -> bool:
        return any(len(set(values)) > 1 for values in self._channels())

    def _channels(self) -> list[list[float]]:
        return [self.gain_map_min, self.gain_map_max, self.gamma, self.base_offset, self.alternate_offset]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple[int, ...]:
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def fraction(self, signed: bool) -> float:
        numerator, denominator = self.take(">iI" if signed else ">II")
        if denominator == 0:
            raise ValueError("a denominator is zero")
        return numerator / denominator


def parse_tone_map(data: bytes) -> ToneMap | None:
    """The metadata of a ``tmap`` item, or None for a version this reader does not know (the gain map is then
    ignored, as libavif ignores it).

    Raises:
        ValueError: the data is truncated or holds a zero denominator or gamma.
    """
    reader = _Reader(bytes(data))
    try:
        (version,) = reader.take(">B")
        if version != 0:
            return None
        minimum, writer = reader.take(">HH")
        if minimum > 0:
            return None
        if writer < minimum:
            raise ValueError("the writer version is below the minimum version")
        (flags,) = reader.take(">B")
        channels = 3 if flags & 0x80 else 1
        meta = ToneMap(use_base_colour_space=bool(flags & 0x40))
        meta.base_hdr_headroom = reader.fraction(False)
        meta.alternate_hdr_headroom = reader.fraction(False)
        values: list[list[float]] = [[], [], [], [], []]
        for _ in range(channels):
            for n, signed in enumerate((True, True, False, True, True)):
                values[n].append(reader.fraction(signed))
    except struct.error as exc:
        raise ValueError(f"the tmap metadata is truncated: {exc}") from exc
    if writer == 0 and reader.pos != len(reader.data):
        raise ValueError("the tmap metadata has bytes after its end")
    meta.gain_map_min, meta.gain_map_max, meta.gamma, meta.base_offset, meta.alternate_offset = (
        v * 3 if channels == 1 else v for v in values
    )
    if any(g <= 0 for g in meta.gamma):
        raise ValueError("the gain map's gamma must be positive")
    return meta


def _fraction(value: float, signed: bool) -> tuple[int, int]:
    """``value`` as the closest fraction whose numerator fits 32 bits (signed or not) and whose denominator
    fits 24 bits, or fewer when the numerator would not fit (values of 128 and more).

    Raises:
        ValueError: ``value`` is not finite, negative while ``signed`` is false, or beyond what a 32-bit
            numerator holds.
    """
    low, high = (-(1 << 31), (1 << 31) - 1) if signed else (0, (1 << 32) - 1)
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a number a fraction can hold")
    exact = Fraction(value)
    if not signed and exact < 0:
        raise ValueError(f"{value} must not be negative")
    largest = -low if exact < 0 else high
    # the largest denominator whose numerator fits, give or take the float's rounding
    f = exact.limit_denominator(min(1 << 24, int(largest / abs(exact)) + 1) if exact else 1)
    while not low <= f.numerator <= high:  # the numerator is just past the end: a smaller denominator
        if f.denominator == 1:
            raise ValueError(f"{value} does not fit a fraction of 32-bit terms")
        f = exact.limit_denominator(f.denominator - 1)
    return f.numerator, f.denominator


def tone_map_bytes(meta: ToneMap) -> bytes:
    """The ``tmap`` item data of ``meta`` (version 0).

    Raises:
        ValueError: a headroom is negative, a gamma not positive (readers refuse a zero gamma), or a value is
            not finite or does not fit a fraction of 32-bit terms.
    """
    if any(not g > 0 for g in meta.gamma):
        raise ValueError(f"the gain map's gamma must be positive, not {meta.gamma}")
    channels = 3 if meta.multichannel else 1
    out = struct.pack(">BHHB", 0, 0, 0, (0x80 if channels == 3 else 0) | (0x40 if meta.use_base_colour_space else 0))
    for value in (meta.base_hdr_headroom, meta.alternate_hdr_headroom):
        out += struct.pack(">II", *_fraction(value, False))
    for c in range(channels):
        for values, signed in zip(meta._channels(), (True, True, False, True, True), strict=True):
            out += struct.pack(">iI" if signed else ">II", *_fraction(values[c], signed))
    return out


# --- Apple ------------------------------------------------------------------------------------------------

_APPLE_MAKER_NOTE = b"Apple iOS\0"
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


def _maker_note_values(note: bytes) -> dict[int, float]:
    """The numeric tags of an Apple maker note (its own big-endian IFD after a 14-byte header; offsets are from
    the maker note's start)."""
    if not note.startswith(_APPLE_MAKER_NOTE) or len(note) < 16:
        return {}
    order = "<" if note[12:14] == b"II" else ">"
    (count,) = struct.unpack_from(order + "H", note, 14)
    values: dict[int, float] = {}
    for n in range(count):
        pos = 16 + 12 * n
        if pos + 12 > len(note):
            break
        tag, kind, number, raw = struct.unpack_from(order + "HHI4s", note, pos)
        size = _TYPE_SIZES.get(kind, 0) * number
        if number != 1 or size == 0:
            continue
        payload = raw if size <= 4 else note[struct.unpack(order + "I", raw)[0] :][:size]
        if len(payload) < size:
            continue
        if kind in (5, 10):
            numerator, denominator = struct.unpack(order + ("II" if kind == 5 else "ii"), payload[:8])
            if denominator:
                values[tag] = numerator / denominator
        elif kind in (11, 12):
            values[tag] = struct.unpack(order + ("f" if kind == 11 else "d"), payload[:size])[0]
        elif kind in (3, 8):
            values[tag] = struct.unpack(order + ("H" if kind == 3 else "h"), payload[:2])[0]
        elif kind in (4, 9):
            values[tag] = struct.unpack(order + ("I" if kind == 4 else "i"), payload[:4])[0]
    return values


def _maker_note(exif: bytes) -> bytes | None:
    """The maker note of EXIF bytes (``Exif\\0\\0`` prefix or a bare TIFF header), or None."""
    base = 6 if exif.startswith(b"Exif\0\0") else 0
    tiff = exif[base:]
    if tiff[:4] not in (b"II*\0", b"MM\0*"):
        return None
    order = "<" if tiff[:2] == b"II" else ">"

    def entries(offset: int) -> dict[int, tuple[int, int, bytes]]:
        found: dict[int, tuple[int, int, bytes]] = {}
        if offset + 2 > len(tiff):
            return found
        (count,) = struct.unpack_from(order + "H", tiff, offset)
        for n in range(count):
            pos = offset + 2 + 12 * n
            if pos + 12 > len(tiff):
                break
            tag, kind, number, raw = struct.unpack_from(order + "HHI4s", tiff, pos)
            found[tag] = (kind, number, raw)
        return found

    (ifd0,) = struct.unpack_from(order + "I", tiff, 4)
    exif_ifd = entries(ifd0).get(0x8769)
    if exif_ifd is None:
        return None
    note = entries(struct.unpack(order + "I", exif_ifd[2])[0]).get(0x927C)
    if note is None:
        return None
    _kind, number, raw = note
    start = struct.unpack(order + "I", raw)[0] if number > 4 else None
    return tiff[start : start + number] if start is not None else raw[:number]


def apple_headroom(exif: bytes | None) -> float | None:
    """The headroom (a linear ratio of the brightest white to SDR white) of an Apple photo's gain map, from the
    maker note tags 33 and 48 its EXIF holds, as Apple's "Applying Apple HDR effect to your photos" computes it;
    None without an Apple maker note or tag 33. A photo without tag 48 is read as if it were 0 (the most the
    gain map may add), the value iPhones that omit it are shown with."""
    note = _maker_note(exif) if exif else None
    values = _maker_note_values(note) if note else {}
    if 33 not in values:
        return None
    maker33, maker48 = values[33], values.get(48, 0.0)
    if maker33 < 1.0:
        stops = -20.0 * maker48 + 1.8 if maker48 <= 0.01 else -0.101 * maker48 + 1.601
    else:
        stops = -70.0 * maker48 + 3.0 if maker48 <= 0.01 else -0.303 * maker48 + 2.303
    return float(2.0 ** max(stops, 0.0))


_VERSION = re.compile(rb"HDRGainMapVersion(?:>|\s*=\s*[\"'])\s*(\d+)")


def apple_gain_map_version(xmp: bytes | None) -> int | None:
    """``HDRGainMap:HDRGainMapVersion`` from XMP (the gain map's own, or the photo's), as element or attribute;
    None when absent (Apple: the gain map is then not valid)."""
    found = _VERSION.search(xmp or b"")
    return int(found.group(1)) if found else None
