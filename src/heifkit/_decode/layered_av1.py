"""Layered AV1 (``a1op``): the operating point an image selects, decoded by dav1d outside libheif.

libheif refuses such an image whatever its decoder (it checks the frame size its sequence header signals,
every layer's, before decoding); Pillow's plugin (libavif) decodes the operating point's layers. heifkit does
the same with its dav1d binding (``_native/dav1d.c``) when libheif has refused the image, and converts the
picture as libavif would (``_native/avif_rgb.c``, through ``yuv``).
"""

from __future__ import annotations

from typing import Any

from .._container import item_boxes as _boxes
from .._info.transforms import transformations
from .._native import dav1d as _dav1d
from .._native.libheif import Handle, check, ffi, lib, owned, uninitialized
from .._read import items as _items
from .._read.source import file_data
from ..errors import HeifError
from . import yuv as _yuv

__all__ = ["operating_point", "layered_or_raise", "decode_layered"]


def operating_point(handle: Handle) -> int | None:
    """The AV1 operating point the image of ``handle`` selects (its ``a1op`` property: layered AV1), or None.

    Read from the file's item properties (libheif does not give a1op through its API); asked only when libheif
    has refused the image, so nothing is read for the images it decodes."""
    ctx, item = handle.ctx, int(lib.heif_image_handle_get_item_id(handle.ptr))
    if _items.item_type(ctx.ptr, item) != "av01":
        return None
    try:
        properties = _boxes.item_properties(file_data(ctx.source), {item}).get(item, [])
    except HeifError:  # unreadable boxes: libheif's error says what is wrong
        return None
    return next((prop.payload[0] for prop in properties if prop.kind == b"a1op" and prop.payload), None)


def layered_or_raise(
    handle: Handle, point: int, error: HeifError, decoder_id: str, layout: Any, threads: int
) -> tuple[int, int, int, Any]:
    """libheif's decode of a layered AV1 image (operating ``point``) failed with ``error``: the pixels
    :func:`decode_layered` gives in ``layout`` (``pixels.PixelLayout``), or ``error`` again, saying why when the
    decoder is not dav1d (aom, or dav1d not found)."""
    if _dav1d.library() is None or decoder_id not in ("", "dav1d"):
        reason = f"layered AV1 (operating point {point}) decodes with dav1d only; aom gives every layer"
        raise type(error)(f"{error.message} ({reason})", error.code, error.subcode) from error
    layered = None
    if layout.bytes_per_sample == 1:
        layered = decode_layered(handle, point, layout.channels, layout.bgr, threads)
    if layered is None:
        raise error
    return layered


def decode_layered(
    handle: Handle, point: int, channels: int, bgr: bool, threads: int
) -> tuple[int, int, int, Any] | None:
    """Operating ``point`` of ``handle``'s layered AV1 image decoded by dav1d outside libheif, as 8-bit RGB in
    ``channels`` 3 or 4 (Pillow's RGB layout, the fourth opaque) in tight rows: (width, height, stride, buffer).
    None when that cannot stand for libheif's decode: no dav1d, alpha or a transformation libheif would apply,
    another picture size than the image's.

    libheif refuses such an image whatever its decoder (it checks the frame size its sequence header signals,
    every layer's, before decoding); Pillow's plugin (libavif) decodes its operating point.
    """
    ctx, item = handle.ctx, int(lib.heif_image_handle_get_item_id(handle.ptr))
    if (
        _dav1d.library() is None
        or channels not in (3, 4)
        or lib.heif_image_handle_has_alpha_channel(handle.ptr)
        or transformations(handle)
    ):
        return None
    with ctx.lock:
        data, _ = _items.item_data(ctx.ptr, item, compressed=True)
        properties = _boxes.item_properties(file_data(ctx.source), {item}).get(item, [])
    config = next((prop.payload[4:] for prop in properties if prop.kind == b"av1C"), b"")
    out = ffi.new("heif_image**")
    check(lib.hk_dav1d_decode_data(config + data, len(config) + len(data), point, max(1, threads), out), "dav1d")
    image = owned(out[0], lib.heif_image_release)
    # the colour the file's colr box states wins over the sequence header's, as libheif converts it
    nclx = ffi.new("heif_color_profile_nclx**")
    if lib.heif_image_handle_get_nclx_color_profile(handle.ptr, nclx).code == 0 and nclx[0] != ffi.NULL:
        profile = owned(nclx[0], lib.heif_nclx_color_profile_free)
        check(lib.heif_image_set_nclx_color_profile(image, profile), "colour profile")
    width, height = lib.heif_image_get_primary_width(image), lib.heif_image_get_primary_height(image)
    if (width, height) != (lib.heif_image_handle_get_width(handle.ptr), lib.heif_image_handle_get_height(handle.ptr)):
        return None
    stride = width * channels
    buffer = uninitialized(stride * height)
    target = ffi.from_buffer(buffer, require_writable=True)
    converted = _yuv.convert_as_libavif(image, channels, bgr, target, stride)  # as Pillow's plugin converts
    if not converted and not _yuv.convert(image, channels, bgr, target, stride, (0, 0, width, height), max(1, threads)):
        return None
    return width, height, stride, buffer
