"""Decode paths: from an image handle to a pixel buffer, and from a buffer to Pillow or numpy.

The output buffer is a parameter (:func:`decode_into`): libheif decodes, then one pass moves the plane
into the destination (removing libheif's row padding, shifting high bit depths to 16 bits, swapping
to BGR on the way). Without a destination that pass runs in place in libheif's image and the pixels are
handed out with no copy. Pillow maps the result without another copy for ``L``, ``RGBA`` and ``I;16``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from . import _lib
from ._lib import check, ffi, lib
from .errors import DecoderError, InvalidInputError

__all__ = ["Layout", "layout_for", "decode_into", "pillow_image", "MODE_SHAPES"]

# Pillow modes that Image.frombuffer maps without copying.
_MAPPABLE = {"L", "RGBA", "I;16", "RGBX"}


@dataclass(frozen=True)
class Layout:
    """What to ask libheif for, and how the result is laid out in memory."""

    mode: str
    colorspace: int
    chroma: int
    channels: int
    bytes_per_sample: int
    to_8bit: bool  # ask libheif to convert >8-bit data to 8 bits
    shift_to_16: bool  # widen 10/12-bit samples to 16 bits (left shift)
    bgr: bool

    @property
    def channel(self) -> int:
        if self.colorspace == lib.heif_colorspace_monochrome:
            return int(lib.heif_channel_Y)
        return int(lib.heif_channel_interleaved)


def layout_for(
    bits: int,
    monochrome: bool,
    alpha: bool,
    premultiplied: bool,
    convert_hdr_to_8bit: bool = True,
    hdr_to_16bit: bool = True,
    bgr_mode: bool = False,
) -> Layout:
    """The decoded layout and mode for an image, by pillow_heif's rules (``docs/modes.md``).

    Monochrome without alpha decodes to ``L`` (8 bit) or ``I;16``/``I;10``/``I;12``; everything else to
    interleaved ``RGB(A)`` (``BGR(A)`` with ``bgr_mode``), with ``;16``/``;10``/``;12`` for high bit
    depths unless ``convert_hdr_to_8bit``. Premultiplied alpha gives ``a`` instead of ``A``.
    """
    if bits < 1 or bits > 16:
        raise InvalidInputError(f"unsupported bit depth: {bits}")
    high = bits > 8
    if monochrome and not alpha:
        if not high:
            return Layout("L", lib.heif_colorspace_monochrome, lib.heif_chroma_monochrome, 1, 1, False, False, False)
        mode = "I;16" if hdr_to_16bit else f"I;{bits}"
        return Layout(
            mode, lib.heif_colorspace_monochrome, lib.heif_chroma_monochrome, 1, 2, False, hdr_to_16bit, False
        )
    base = ("BGR" if bgr_mode else "RGB") + (("a" if premultiplied else "A") if alpha else "")
    channels = 4 if alpha else 3
    if not high or convert_hdr_to_8bit:
        chroma = lib.heif_chroma_interleaved_RGBA if alpha else lib.heif_chroma_interleaved_RGB
        return Layout(base, lib.heif_colorspace_RGB, chroma, channels, 1, high, False, bgr_mode)
    chroma = lib.heif_chroma_interleaved_RRGGBBAA_LE if alpha else lib.heif_chroma_interleaved_RRGGBB_LE
    suffix = ";16" if hdr_to_16bit else f";{bits}"
    return Layout(base + suffix, lib.heif_colorspace_RGB, chroma, channels, 2, False, hdr_to_16bit, bgr_mode)


def decoding_options(to_8bit: bool, decoder_id: str) -> tuple[Any, Any]:
    """Allocated ``heif_decoding_options`` (freed with the returned object) and the id buffer to keep."""
    raw = lib.heif_decoding_options_alloc()
    if raw == ffi.NULL:
        raise MemoryError("heif_decoding_options_alloc failed")
    opts = ffi.gc(raw, lib.heif_decoding_options_free)
    opts.convert_hdr_to_8bit = 1 if to_8bit else 0
    id_buf = ffi.NULL
    if decoder_id:
        id_buf = ffi.new("char[]", decoder_id.encode())
        opts.decoder_id = id_buf
    return opts, id_buf


def decode_image(ctx: _lib.Context, handle: Any, layout: Layout, decoder_id: str = "") -> Any:
    """Decode ``handle`` (of ``ctx``) into an owned ``heif_image`` of ``layout``'s colorspace/chroma."""
    opts, _id_keep = decoding_options(layout.to_8bit, decoder_id)
    out = ffi.new("heif_image**")
    check(lib.heif_decode_image(handle, out, layout.colorspace, layout.chroma, opts))
    return ctx.adopt_image(out[0])


def plane_of(image: Any, layout: Layout) -> tuple[Any, int, int, int, int]:
    """(writable pointer, stride, width, height, bits) of the decoded plane, each checked before use."""
    stride = ffi.new("size_t*")
    ptr = lib.heif_image_get_plane2(image, layout.channel, stride)
    if ptr == ffi.NULL:
        raise DecoderError("decoded image has no pixel plane of the requested layout")
    width = lib.heif_image_get_primary_width(image)
    height = lib.heif_image_get_primary_height(image)
    plane_w = lib.heif_image_get_width(image, layout.channel)
    plane_h = lib.heif_image_get_height(image, layout.channel)
    bits = lib.heif_image_get_bits_per_pixel_range(image, layout.channel)
    if width <= 0 or height <= 0 or plane_w < width or plane_h < height:
        raise DecoderError(f"decoded image has an invalid size {width}x{height} (plane {plane_w}x{plane_h})")
    if stride[0] < width * layout.channels * layout.bytes_per_sample:
        raise DecoderError("decoded image plane is narrower than its width")
    return ptr, int(stride[0]), width, height, bits


def _owned_pixels(image: Any, ptr: Any, size: int) -> Any:
    """A writable buffer over ``size`` bytes at ``ptr`` inside ``image``, keeping ``image`` alive."""
    holder = ffi.cast("uint8_t *", ptr)
    pinned = ffi.gc(holder, lambda _p, _img=image: None)  # the closure holds the heif_image
    return ffi.buffer(pinned, size)


def decode_into(
    ctx: _lib.Context,
    handle: Any,
    layout: Layout,
    decoder_id: str = "",
    remove_stride: bool = True,
    dst: Any = None,
) -> tuple[int, int, int, Any]:
    """Decode ``handle`` (an image of ``ctx``) into ``dst`` (a writable buffer), or in place when it is None.

    Returns ``(width, height, stride, buffer)`` with ``len(buffer) >= stride * height``. In place, the
    rows are compacted, shifted and swapped inside libheif's own image, and the returned buffer keeps that
    image alive: no copy at all. With ``remove_stride=False`` the stride is libheif's (rows may be padded).
    """
    image = decode_image(ctx, handle, layout, decoder_id)
    ptr, src_stride, width, height, bits = plane_of(image, layout)
    row_bytes = width * layout.channels * layout.bytes_per_sample
    stride = row_bytes if remove_stride else src_stride
    need = stride * height
    if dst is None:
        target = ptr
        dst = _owned_pixels(image, ptr, need)
    else:
        if len(memoryview(dst).cast("B")) < need:
            raise InvalidInputError(f"destination buffer holds fewer than {need} bytes")
        target = ffi.from_buffer(dst, require_writable=True)
    shift = 16 - bits if (layout.shift_to_16 and 8 < bits < 16) else 0
    if target != ptr or stride != src_stride or shift or layout.bgr:
        lib.hk_copy_plane(
            ptr, src_stride, target, stride, width, height,
            layout.channels, layout.bytes_per_sample, shift, 1 if layout.bgr else 0,
        )  # fmt: skip
    return width, height, stride, dst


TILED_DECODE_MIN_PIXELS = 50_000_000
"""Grid images at least this big decode tile by tile into the output (see :func:`decode_tiles_into`).

Measured on 2 cores (libheif 1.23.6): a 200 MP grid takes 0.85x the time and 0.68x the peak memory of
libheif's whole-image decode; a 12 MP grid takes 0.6x the memory but 1.5x the time, so smaller images
keep the whole-image path."""


def image_tiling(handle: Any) -> Any:
    """libheif's tiling of an image in display coordinates, or None when it decodes as one piece."""
    tiling = ffi.new("heif_image_tiling*")
    if lib.heif_image_handle_get_image_tiling(handle, 1, tiling).code != 0:
        return None
    if tiling.num_columns * tiling.num_rows <= 1 or tiling.tile_width == 0 or tiling.tile_height == 0:
        return None
    return tiling


def decode_tiles_into(
    ctx: _lib.Context,
    handle: Any,
    layout: Layout,
    tiling: Any,
    decoder_id: str = "",
    threads: int = 1,
    dst: Any = None,
) -> tuple[int, int, int, Any]:
    """Decode a tiled (grid) image tile by tile, each straight into its place in ``dst``.

    Tiles are decoded and converted to RGB on ``threads`` worker threads (libheif releases the GIL), so
    no whole-image YCbCr intermediate exists: about half the peak memory of a whole-image decode, and
    the colour conversion runs in parallel. Tile positions are in display coordinates (libheif applies
    rotation, mirroring and cropping per tile). Returns ``(width, height, stride, buffer)``, tight rows.
    """
    width, height = int(tiling.image_width), int(tiling.image_height)
    pixel = layout.channels * layout.bytes_per_sample
    stride = width * pixel
    if dst is None:
        dst = bytearray(stride * height)
    elif len(memoryview(dst).cast("B")) < stride * height:
        raise InvalidInputError(f"destination buffer holds fewer than {stride * height} bytes")
    target = ffi.from_buffer(dst, require_writable=True)
    tile_w, tile_h = int(tiling.tile_width), int(tiling.tile_height)
    # libheif 1.23 reports a rotated/mirrored grid's offsets as the visible part of the first tile: the
    # first tile starts (tile size - offset) pixels left of/above the image (checked against its
    # whole-image decode for all 8 orientations).
    left = (tile_w - int(tiling.left_offset)) % tile_w
    top = (tile_h - int(tiling.top_offset)) % tile_h

    def decode_tile(position: tuple[int, int]) -> None:
        tx, ty = position
        opts, _id_keep = decoding_options(layout.to_8bit, decoder_id)
        out = ffi.new("heif_image**")
        check(lib.heif_image_handle_decode_image_tile(handle, out, layout.colorspace, layout.chroma, opts, tx, ty))
        image = ctx.adopt_image(out[0])
        ptr, src_stride, t_width, t_height, bits = plane_of(image, layout)
        x0, y0 = tx * tile_w - left, ty * tile_h - top  # where the tile's top-left lands in the image
        sx, sy = max(0, -x0), max(0, -y0)
        dx, dy = max(0, x0), max(0, y0)
        w, h = min(t_width - sx, width - dx), min(t_height - sy, height - dy)
        if w <= 0 or h <= 0:
            return
        shift = 16 - bits if (layout.shift_to_16 and 8 < bits < 16) else 0
        lib.hk_copy_plane(
            ptr + sy * src_stride + sx * pixel, src_stride, target + dy * stride + dx * pixel, stride, w, h,
            layout.channels, layout.bytes_per_sample, shift, 1 if layout.bgr else 0,
        )  # fmt: skip

    positions = [(tx, ty) for ty in range(int(tiling.num_rows)) for tx in range(int(tiling.num_columns))]
    if threads <= 1:
        for position in positions:
            decode_tile(position)
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(positions))) as pool:
            for _ in pool.map(decode_tile, positions):
                pass
    return width, height, stride, dst


# mode -> (channels, typestr) for __array_interface__
MODE_SHAPES = {"L": 1, "I": 1, "RGB": 3, "BGR": 3, "RGBA": 4, "RGBa": 4, "BGRA": 4, "BGRa": 4, "LA": 2, "La": 2}


def channels_of(mode: str) -> int:
    """Number of interleaved channels of a heifkit/pillow_heif mode (``RGB;16`` -> 3, ``I;16`` -> 1)."""
    return MODE_SHAPES[mode.split(";")[0]]


def pillow_image(mode: str, size: tuple[int, int], data: Any, stride: int) -> Any:
    """A Pillow image over ``data``: mapped without a copy where Pillow can, copied otherwise."""
    from PIL import Image

    if mode in _MAPPABLE:
        img = Image.frombuffer(mode, size, data, "raw", mode, stride, 1)
        return img
    try:
        return Image.frombytes(mode, size, data, "raw", mode, stride)
    except ValueError as exc:
        raise ValueError(
            f"mode {mode!r} has no Pillow equivalent; open with convert_hdr_to_8bit=True and bgr_mode=False, "
            "or use numpy (__array_interface__)"
        ) from exc
