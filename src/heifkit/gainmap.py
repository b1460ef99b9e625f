"""HDR gain maps: recognised among an image's auxiliary images and among ISO 21496-1 ``tmap`` items, and
exposed with their metadata as stored.

A gain map is a (usually smaller) image that tells a viewer how much brighter each part of the photo may be
shown on an HDR screen. Phones store it in two ways, sometimes both at once (Samsung):

- as an auxiliary image of the photo, with a vendor type: Apple's
  ``urn:com:apple:photo:2020:aux:hdrgainmap``, Samsung's ``urn:com:samsung:photo:2024:aux:hdrgainmap``,
  Adobe's ``urn:com:photo:aux:hdrgainmap`` (every type ending in ``:hdrgainmap``), its parameters in
  the gain map's own XMP (Adobe's ``hdrgm`` namespace, or Apple's ``HDRGainMap``);
- as an input of a ``tmap`` derived item (ISO 21496-1), whose first input is the photo: the ``tmap`` item's
  data holds the parameters (the standard's binary metadata).

Each image's ``info["gain_maps"]`` lists its :class:`HeifGainMap` images (read-only, decoded on access).
"""

from __future__ import annotations

import struct
from typing import Any

from ._container.item_boxes import item_properties
from ._read import entries as _read
from ._read import items as _items
from ._read.source import file_data
from .errors import HeifError, InvalidInputError
from .image import HeifImage, SubImage, entry_of, sub_image

__all__ = ["HeifGainMap", "GAIN_MAP_AUX_SUFFIX", "add_gain_maps"]

GAIN_MAP_AUX_SUFFIX = ":hdrgainmap"
"""Auxiliary image types ending with this are gain maps (Apple's, Samsung's and Adobe's end so)."""


class HeifGainMap(SubImage):
    """An HDR gain map of an image, from ``info["gain_maps"]``: read-only, decoded on first access.

    Attributes:
        size: (width, height); often smaller than the image's.
        mode: ``L`` or ``RGB`` (``I;16``/``RGB;16`` for deeper maps with ``convert_hdr_to_8bit=False``).
        info: ``aux_type`` (the auxiliary type, None for a gain map only a ``tmap`` item names), ``xmp``
            (the gain map's own XMP, bytes, or None), ``tmap`` (the ISO 21496-1 metadata, the ``tmap`` item's
            data as stored, or None), ``item_id`` (the gain map's item), ``tmap_item_id`` (or None),
            ``base_item_id`` (the item of the image it belongs to), ``image`` (that image's index in the
            file) and, for a ``tmap`` gain map, ``alternate_nclx`` (the NCLX values of the alternate rendition,
            the ``tmap`` item's, or None).
    """


def add_gain_maps(images: list[HeifImage], flags: _read.OpenFlags) -> None:
    """Fill ``info["gain_maps"]`` of each image read from a file (``images``: the file's top-level images)."""
    first = entry_of(images[0]) if images else None
    if first is None:
        return
    ctx = first.handle.ctx
    tmaps: dict[int, list[tuple[int, int, bytes]]] = {}  # base item -> (tmap item, gain map item, tmap data)
    for item in _items.item_ids(ctx.ptr):
        if _items.item_type(ctx.ptr, item) != "tmap":
            continue
        inputs = [t for kind, targets in _items.references(ctx.ptr, item) if kind == "dimg" for t in targets]
        if len(inputs) == 2:
            try:
                tmaps.setdefault(inputs[0], []).append((item, inputs[1], _items.item_data(ctx.ptr, item)[0]))
            except HeifError:
                continue
    for index, image in enumerate(images):
        if entry_of(image) is not None:
            image.info["gain_maps"] = _gain_maps_of(image, index, tmaps, flags)


def _alternate_nclx(handle: Any, tmap_item: int) -> dict[str, int] | None:
    """The NCLX values of a ``tmap`` item (the alternate image's colour: where ISO 21496-1 does its arithmetic
    unless ``use_base_colour_space``), or None."""
    try:
        props = item_properties(file_data(handle.ctx.source), {tmap_item}).get(tmap_item, [])
    except InvalidInputError:
        return None
    for prop in props:
        if prop.kind == b"colr" and prop.payload[:4] == b"nclx" and len(prop.payload) >= 11:
            primaries, transfer, matrix = struct.unpack_from(">HHH", prop.payload, 4)
            return {
                "color_primaries": primaries,
                "transfer_characteristics": transfer,
                "matrix_coefficients": matrix,
                "full_range_flag": prop.payload[10] >> 7,
            }
    return None


def _gain_maps_of(image: HeifImage, index: int, tmaps: dict[int, Any], flags: _read.OpenFlags) -> list[HeifGainMap]:
    entry = entry_of(image)
    assert entry is not None
    handle = entry.handle
    base = _read.item_id(handle)
    found: dict[int, dict[str, Any]] = {}
    for aux_type, ids in _read.aux_ids(handle).items():
        if aux_type.endswith(GAIN_MAP_AUX_SUFFIX):
            for item in ids:
                found[item] = {"aux_type": aux_type, "tmap": None, "tmap_item_id": None}
    for tmap_item, item, data in tmaps.get(base, []):
        found.setdefault(item, {"aux_type": None}).update(
            tmap=data, tmap_item_id=tmap_item, alternate_nclx=_alternate_nclx(handle, tmap_item)
        )
    gain_maps = []
    for item, info in found.items():
        try:
            if info["aux_type"] is not None:
                entry = _read.aux_image(handle, item, flags)
            else:
                entry = _read.item_image(handle.ctx, item, flags)
        except HeifError:
            continue  # a gain map libheif cannot open is left out, as unopenable images are
        xmp = [data for kind, _, data in _read.metadata_blocks(entry.handle) if kind == "mime" and data]
        entry.info = {**info, "xmp": xmp[0] if xmp else None, "item_id": item, "base_item_id": base, "image": index}
        gain_maps.append(sub_image(HeifGainMap, entry, flags))
    return gain_maps
