"""Lossless geometry: rotation, mirroring and crop as an item's transformative properties (``irot``, ``imir``,
``clap``), composed with those it has, never touching the coded data.

What an item shows is a box of its coded image (``clap``), turned ``turns`` x 90 degrees counter-clockwise
(``irot``), then mirrored left to right when ``mirrored`` (``imir`` about the vertical axis). Any order of those
properties comes down to this one, which is the order MIAF requires (clap, irot, imir), and is written so.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .._container.assembly import Item
from .._container.item_boxes import Property
from ..errors import InvalidInputError

__all__ = ["Geometry", "TRANSFORMS", "transform"]

TRANSFORMS = (b"clap", b"irot", b"imir")
"""The transformative properties, in the order they are written."""


@dataclass(frozen=True)
class Geometry:
    """A lossless change of what is shown: ``rotate`` degrees counter-clockwise (a multiple of 90), then a
    mirror (``"left_right"``/``"top_bottom"``), then a crop ``(left, top, right, bottom)`` of the result."""

    rotate: int = 0
    mirror: str | None = None
    crop: tuple[int, int, int, int] | None = None


Box = tuple[int, int, int, int]


def _turn(box: Box, size: tuple[int, int]) -> tuple[Box, tuple[int, int]]:
    """A box of an image, and the image's size, after turning it 90 degrees counter-clockwise."""
    left, top, right, bottom = box
    width, height = size
    return (top, width - right, bottom, width - left), (height, width)


def _flip(box: Box, size: tuple[int, int]) -> tuple[Box, tuple[int, int]]:
    """A box of an image, and its size, after mirroring it left to right."""
    left, top, right, bottom = box
    return (size[0] - right, top, size[0] - left, bottom), size


@dataclass
class _Shown:
    coded: Box  # in the coded image (ispe)
    turns: int = 0
    mirrored: bool = False

    def size(self) -> tuple[int, int]:
        width, height = self.coded[2] - self.coded[0], self.coded[3] - self.coded[1]
        return (height, width) if self.turns % 2 else (width, height)

    def to_coded(self, box: Box) -> Box:
        """A box of what is shown, as a box of the coded image."""
        size = self.size()
        if self.mirrored:
            box, size = _flip(box, size)
        for _ in range((4 - self.turns) % 4):
            box, size = _turn(box, size)
        return (box[0] + self.coded[0], box[1] + self.coded[1], box[2] + self.coded[0], box[3] + self.coded[1])

    def rotate(self, degrees: int) -> None:
        turns = degrees // 90
        self.turns = (self.turns - turns if self.mirrored else self.turns + turns) % 4

    def mirror(self, direction: str) -> None:
        if direction == "top_bottom":  # = mirrored left to right, then turned by 180 degrees
            self.mirrored = not self.mirrored
            self.rotate(180)
        else:
            self.mirrored = not self.mirrored

    def crop(self, box: Box) -> None:
        self.coded = self.to_coded(box)


def _ispe(props: list[Property]) -> tuple[int, int] | None:
    for prop in props:
        if prop.kind == b"ispe" and len(prop.payload) >= 12:
            return struct.unpack_from(">II", prop.payload, 4)
    return None


def _clap_box(payload: bytes, size: tuple[int, int]) -> Box:
    """The box a ``clap`` keeps of an image of ``size``, rounded as libheif rounds it."""
    wn, wd, hn, hd, xn, xd, yn, yd = struct.unpack_from(">IIIIiIiI", payload, 0)
    if not (wd and hd and xd and yd):
        raise InvalidInputError("clap box has a zero denominator")
    width, height = Fraction(wn, wd), Fraction(hn, hd)
    left = int((Fraction(xn, xd) + Fraction(size[0] - 1, 2) - (width - 1) / 2) // 1)
    top = int((Fraction(yn, yd) + Fraction(size[1] - 1, 2) - (height - 1) / 2) // 1)
    right, bottom = left + round(width), top + round(height)
    if not (0 <= left < right <= size[0] and 0 <= top < bottom <= size[1]):
        raise InvalidInputError("clap box reaches outside the image")
    return left, top, right, bottom


def _shown(props: list[Property]) -> _Shown | None:
    """How an item's properties show its coded image (None without ``ispe``)."""
    size = _ispe(props)
    if size is None:
        return None
    shown = _Shown((0, 0, *size))
    for prop in props:
        if prop.kind == b"irot" and prop.payload:
            shown.rotate((prop.payload[0] & 3) * 90)
        elif prop.kind == b"imir" and prop.payload:
            shown.mirror("left_right" if prop.payload[0] & 1 else "top_bottom")  # as libheif reads the axis
        elif prop.kind == b"clap" and len(prop.payload) >= 32:
            shown.crop(_clap_box(prop.payload, shown.size()))
    return shown


def _geometry_properties(props: list[Property], shown: _Shown) -> list[Property]:
    """``props`` with their transformative properties made anew, in MIAF's order, after the others."""
    width, height = _ispe(props) or (0, 0)
    rest = [p for p in props if p.kind not in TRANSFORMS]
    left, top, right, bottom = shown.coded
    if shown.coded != (0, 0, width, height):
        w, h = right - left, bottom - top
        payload = struct.pack(">IIIIiIiI", w, 1, h, 1, 2 * left + w - width, 2, 2 * top + h - height, 2)
        rest.append(Property(b"clap", payload, None, True))
    if shown.turns:
        rest.append(Property(b"irot", bytes([shown.turns]), None, True))
    if shown.mirrored:
        rest.append(Property(b"imir", b"\1", None, True))  # libheif: axis 1 mirrors left to right
    return rest


def _scaled(box: Box, size: tuple[int, int], to: tuple[int, int]) -> Box:
    """``box`` of an image of ``size`` as a box of the same picture at size ``to`` (outward)."""
    left, top, right, bottom = box
    sx, sy = to[0] / size[0], to[1] / size[1]
    scaled = (int(left * sx), int(top * sy), -int(-right * sx // 1), -int(-bottom * sy // 1))
    return (scaled[0], scaled[1], max(scaled[0] + 1, min(to[0], scaled[2])), max(scaled[1] + 1, min(to[1], scaled[3])))


def transform(items: list[Item], others: set[int], main: int, geometry: Geometry, chroma: Any = None) -> None:
    """Apply ``geometry`` to what item ``main`` shows, and the same to ``others`` (its alpha, thumbnails,
    ``tmap``), each from its own properties: libheif shows each with its own (alpha included, before it joins
    the colour). A crop keeps the same part of each one's coded image as of ``main``'s, scaled to its size
    (they are aligned as coded: a thumbnail is a smaller copy) and widened to start on a chroma sample of it.

    Raises:
        ValueError: the crop box is empty, reaches outside the image, or (for subsampled chroma) starts
            between two chroma samples of the coded image; ``main`` has no ``ispe``.
    """
    by_id = {item.id: item for item in items}
    shown = _shown(by_id[main].properties)
    size = _ispe(by_id[main].properties)
    if shown is None or size is None:
        raise ValueError("the image has no size property (ispe): it cannot be transformed")
    _turned(shown, geometry)
    if geometry.crop is not None:
        _check_crop(geometry.crop, shown, chroma)
        shown.crop(geometry.crop)
    by_id[main].properties = _geometry_properties(by_id[main].properties, shown)
    for other in sorted(others - {main}):
        item = by_id[other]
        own, own_size = _shown(item.properties), _ispe(item.properties)
        if own is None or own_size is None:
            continue
        _turned(own, geometry)
        if geometry.crop is not None:
            left, top, right, bottom = _scaled(shown.coded, size, own_size)
            step_x, step_y = _subsampling(item, by_id)  # widened to start on a chroma sample, as main's does
            own.coded = (left - left % step_x, top - top % step_y, right, bottom)
        item.properties = _geometry_properties(item.properties, own)


def _subsampling(item: Item, by_id: dict[int, Item]) -> tuple[int, int]:
    """How many luma samples across and down an item's chroma sample covers, from its codec configuration
    (``hvcC``, ``av1C``; a grid's from its first tile's): (2, 2) for 4:2:0, (2, 1) for 4:2:2, else (1, 1)."""
    for _ in range(2):  # the item, then the first input of a grid
        for prop in item.properties:
            if prop.kind == b"hvcC" and len(prop.payload) > 16:
                return {1: (2, 2), 2: (2, 1)}.get(prop.payload[16] & 3, (1, 1))  # chromaFormat
            if prop.kind == b"av1C" and len(prop.payload) > 2:
                flags = prop.payload[2]  # monochrome, chroma_subsampling_x, chroma_subsampling_y
                return (1, 1) if flags & 0x10 else (1 + (flags >> 3 & 1), 1 + (flags >> 2 & 1))
        inputs = [t for kind, targets in item.references if kind == b"dimg" for t in targets]
        if not inputs or inputs[0] not in by_id:
            break
        item = by_id[inputs[0]]
    return 1, 1


def _turned(shown: _Shown, geometry: Geometry) -> None:
    if geometry.rotate:
        shown.rotate(geometry.rotate)
    if geometry.mirror:
        shown.mirror(geometry.mirror)


def _check_crop(box: Box, shown: _Shown, chroma: Any) -> None:
    left, top, right, bottom = box
    width, height = shown.size()
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise ValueError(f"crop box {box} is empty or reaches outside the {width}x{height} image")
    coded = shown.to_coded(box)
    step_x, step_y = {420: (2, 2), 422: (2, 1)}.get(chroma, (1, 1))
    if coded[0] % step_x or coded[1] % step_y:
        raise ValueError(
            f"crop box {box} starts between two chroma samples of the {chroma} coded image (at {coded[:2]} "
            f"there); a lossless crop starts at a multiple of {step_x} across and {step_y} down in the coded image"
        )
