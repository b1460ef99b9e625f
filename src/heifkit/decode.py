"""Decoding: from an image handle to a pixel buffer, and from a buffer to Pillow.

:func:`decode` picks the path: big grids, and regions of any grid, decode tile by tile straight into the
output (:func:`decode_tiles_into`), everything else through libheif's whole-image decode (:func:`decode_into`),
whose result is compacted, shifted and swapped in place in libheif's own buffer and handed out without a
copy. Pillow maps the result without another copy for ``L``, ``RGBA`` and ``I;16``.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import _arrow
from ._lib import Handle, check, ffi, lib, owned
from ._oversized import open_patched
from .errors import DecoderError, HeifError, InvalidInputError
from .modes import PILLOW_MAPPABLE, mode_of
from .region import Box, covering_tiles, crop_rows
from .transforms import image_size

__all__ = ["Layout", "Pixels", "Settings", "layout_of", "decode", "decode_into", "decode_tiles_into", "pillow_image"]


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


@dataclass(frozen=True)
class Settings:
    """How to decode an image: the decoder, libheif's threads for its grid tiles (0: the calling thread),
    the codec's threads (-1: automatic, 0: the codec's default), whether rows are tight, and whether
    libheif applies the image's rotation, mirroring and crop."""

    decoder_id: str = ""
    threads: int = 4
    codec_threads: int = -1
    remove_stride: bool = True
    transformations: bool = True


class Pixels(NamedTuple):
    """A decoded image: ``stride * height`` bytes of ``buffer`` hold its rows."""

    width: int
    height: int
    stride: int
    buffer: Any


def layout_of(mode: str, bits: int, padded: bool = False) -> Layout:
    """How to decode an image stored with ``bits`` bits per sample to ``mode`` (a :func:`decoded_mode`).

    ``padded``: 8-bit ``RGB`` as 4 bytes per pixel (the 4th is 255), the layout Pillow keeps RGB in.
    """
    info = mode_of(mode)
    wide = info.bits > 8
    four = info.alpha or (padded and info.color and not wide)
    if not info.color:
        colorspace, chroma = lib.heif_colorspace_monochrome, lib.heif_chroma_monochrome
    else:
        colorspace = lib.heif_colorspace_RGB
        if wide:
            chroma = lib.heif_chroma_interleaved_RRGGBBAA_LE if info.alpha else lib.heif_chroma_interleaved_RRGGBB_LE
        else:
            chroma = lib.heif_chroma_interleaved_RGBA if four else lib.heif_chroma_interleaved_RGB
    return Layout(
        mode,
        int(colorspace),
        int(chroma),
        4 if four and info.color and not wide else info.channels,
        info.sample_bytes,
        to_8bit=bits > 8 and not wide,
        shift_to_16=wide and info.bits == 16,
        bgr=info.bgr,
    )


def _decoding_options(to_8bit: bool, decoder_id: str, codec_threads: int = 0, transformations: bool = True) -> Any:
    """Owned ``heif_decoding_options`` (libheif's defaults, with the decoder, bit depth, codec threads and
    whether rotation, mirroring and crop are applied given)."""
    id_buf = ffi.new("char[]", decoder_id.encode()) if decoder_id else ffi.NULL
    opts = owned(lib.heif_decoding_options_alloc(), lib.heif_decoding_options_free, id_buf)
    opts.convert_hdr_to_8bit = 1 if to_8bit else 0
    opts.ignore_transformations = 0 if transformations else 1
    opts.decoder_id = id_buf
    opts.num_codec_threads = max(0, codec_threads)
    return opts


def _plane(image: Any, layout: Layout) -> tuple[Any, int, int, int, int]:
    """(writable pointer, stride, width, height, bits) of a decoded plane, each checked before use."""
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


def _shift(layout: Layout, bits: int) -> int:
    return 16 - bits if (layout.shift_to_16 and 8 < bits < 16) else 0


def _pinned_buffer(image: Any, ptr: Any, size: int) -> Any:
    """A writable buffer over ``size`` bytes at ``ptr`` inside ``image``, keeping ``image`` alive."""
    return ffi.buffer(owned(ffi.cast("uint8_t *", ptr), lambda _p: None, image), size)


def decode_into(
    handle: Handle,
    layout: Layout,
    decoder_id: str = "",
    remove_stride: bool = True,
    dst: Any = None,
    codec_threads: int = 0,
    transformations: bool = True,
) -> Pixels:
    """Decode ``handle`` into ``dst`` (a writable buffer), or in place when it is None.

    In place, the rows are compacted, shifted and swapped inside libheif's own image, and the returned
    buffer keeps that image alive: no copy at all. With ``remove_stride=False`` the stride is libheif's.
    """
    opts = _decoding_options(layout.to_8bit, decoder_id, codec_threads, transformations=transformations)
    out = ffi.new("heif_image**")
    check(lib.heif_decode_image(handle.ptr, out, layout.colorspace, layout.chroma, opts))
    image = handle.ctx.adopt_image(out[0])
    ptr, src_stride, width, height, bits = _plane(image, layout)
    row_bytes = width * layout.channels * layout.bytes_per_sample
    stride = row_bytes if remove_stride else src_stride
    need = stride * height
    if dst is None:
        target = ptr
        dst = _pinned_buffer(image, ptr, need)
    else:
        if len(memoryview(dst).cast("B")) < need:
            raise InvalidInputError(f"destination buffer holds fewer than {need} bytes")
        target = ffi.from_buffer(dst, require_writable=True)
    shift = _shift(layout, bits)
    if target != ptr or stride != src_stride or shift or layout.bgr:
        lib.hk_copy_plane(
            ptr, src_stride, target, stride, width, height,
            layout.channels, layout.bytes_per_sample, shift, 1 if layout.bgr else 0,
        )  # fmt: skip
    return Pixels(width, height, stride, dst)


TILED_DECODE_MIN_PIXELS = 50_000_000
"""Grid images at least this big decode tile by tile into the output (see :func:`decode_tiles_into`).

Measured on 2 cores (libheif 1.23.6): a 200 MP grid takes 0.85x the time and 0.68x the peak memory of
libheif's whole-image decode; a 12 MP grid takes 0.6x the memory but 1.5x the time, so smaller images
keep the whole-image path."""


def image_tiling(handle: Handle, transformations: bool = True) -> Any:
    """libheif's tiling of an image in display coordinates (of the stored image with
    ``transformations=False``), or None when it decodes as one piece."""
    tiling = ffi.new("heif_image_tiling*")
    if lib.heif_image_handle_get_image_tiling(handle.ptr, 1 if transformations else 0, tiling).code != 0:
        return None
    if tiling.num_columns * tiling.num_rows <= 1 or tiling.tile_width == 0 or tiling.tile_height == 0:
        return None
    return tiling


def decode_tiles_into(
    handle: Handle,
    layout: Layout,
    tiling: Any,
    decoder_id: str = "",
    threads: int = 1,
    dst: Any = None,
    box: Box | None = None,
    transformations: bool = True,
) -> Pixels:
    """Decode a tiled (grid or ``tili``) image tile by tile, each straight into its place in ``dst``.

    Tiles are decoded and converted to RGB on ``threads`` worker threads (libheif releases the GIL), so
    no whole-image YCbCr intermediate exists: about half the peak memory of a whole-image decode, and
    the colour conversion runs in parallel. Tile positions are in display coordinates (libheif applies
    rotation, mirroring and cropping per tile). Tight rows.

    ``box`` (``region.check_box``): only the tiles covering it are decoded, into a buffer of its size.
    ``transformations=False``: the stored tiles, without rotation, mirroring or crop (``tiling`` must be
    the untransformed one, see :func:`image_tiling`).
    """
    image_w, image_h = int(tiling.image_width), int(tiling.image_height)
    box = box or (0, 0, image_w, image_h)
    width, height = box[2] - box[0], box[3] - box[1]
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
        opts = _decoding_options(layout.to_8bit, decoder_id, transformations=transformations)
        out = ffi.new("heif_image**")
        check(lib.heif_image_handle_decode_image_tile(handle.ptr, out, layout.colorspace, layout.chroma, opts, tx, ty))
        image = handle.ctx.adopt_image(out[0])
        ptr, src_stride, t_width, t_height, bits = _plane(image, layout)
        # where the tile's top-left lands in the output
        x0, y0 = tx * tile_w - left - box[0], ty * tile_h - top - box[1]
        sx, sy = max(0, -x0), max(0, -y0)
        dx, dy = max(0, x0), max(0, y0)
        w, h = min(t_width - sx, width - dx), min(t_height - sy, height - dy)
        if w <= 0 or h <= 0:
            return
        lib.hk_copy_plane(
            ptr + sy * src_stride + sx * pixel, src_stride, target + dy * stride + dx * pixel, stride, w, h,
            layout.channels, layout.bytes_per_sample, _shift(layout, bits), 1 if layout.bgr else 0,
        )  # fmt: skip

    grid = (int(tiling.num_columns), int(tiling.num_rows))
    positions = list(covering_tiles(box, (tile_w, tile_h), (left, top), grid))
    if threads <= 1 or len(positions) == 1:
        for position in positions:
            decode_tile(position)
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(positions))) as pool:
            for _ in pool.map(decode_tile, positions):
                pass
    return Pixels(width, height, stride, dst)


def _cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_running = 0
_running_lock = threading.Lock()


@contextmanager
def _core_share() -> Iterator[int]:
    """The cores one decode may use while it runs: all of them alone, an equal share beside others."""
    global _running
    with _running_lock:
        _running += 1
        share = max(1, _cores() // _running)
    try:
        yield share
    finally:
        with _running_lock:
            _running -= 1


def decode(handle: Handle, layout: Layout, settings: Settings, box: Box | None = None) -> Pixels:
    """Decode an image the fastest way that gives libheif's pixels (holding its context's lock).

    Grids of at least :data:`TILED_DECODE_MIN_PIXELS` whose tiling covers the whole image decode tile by
    tile on ``settings.threads`` threads; the rest, and every image with ``remove_stride=False`` (libheif's
    stride is asked for), decode whole. Threads are capped by the decode's share of the cores
    (:func:`_core_share`); automatic codec threads go to a single picture, not to each tile of a grid.

    ``box`` (checked by ``region.check_box``): only that region, in tight rows. A tiled image decodes just
    the tiles that cover it, whatever its size; any other image decodes whole and the box is copied out.
    """
    transformations = settings.transformations
    with _core_share() as share, handle.ctx.lock:
        tiling = image_tiling(handle, transformations)
        threads = min(settings.threads, share) if settings.threads > 0 else 0
        if settings.codec_threads < 0:
            codec_threads = max(1, share // max(1, threads)) if tiling is not None else share
        else:
            codec_threads = min(settings.codec_threads, share)
        lib.heif_context_set_max_decoding_threads(handle.ctx.ptr, threads)
        if (
            (settings.remove_stride or box is not None)
            and tiling is not None
            and (box is not None or tiling.image_width * tiling.image_height >= TILED_DECODE_MIN_PIXELS)
            and (tiling.image_width, tiling.image_height) == image_size(handle, transformations)
        ):
            return decode_tiles_into(
                handle, layout, tiling, settings.decoder_id, max(1, threads), None, box, transformations
            )
        try:
            whole = decode_into(
                handle, layout, settings.decoder_id, settings.remove_stride, None, codec_threads, transformations
            )
        except HeifError as exc:
            if exc.subcode != _INVALID_IMAGE_SIZE:
                raise
            cropped = _decode_oversized(handle, layout, settings.decoder_id, transformations)
            if cropped is None:
                raise
            whole = cropped
    if box is None:
        return whole
    buffer, stride = crop_rows(whole.buffer, whole.stride, box, layout.channels * layout.bytes_per_sample)
    return Pixels(box[2] - box[0], box[3] - box[1], stride, buffer)


_INVALID_IMAGE_SIZE = int(lib.heif_suberror_Invalid_image_size)


def _decode_oversized(handle: Handle, layout: Layout, decoder_id: str, transformations: bool = True) -> Pixels | None:
    """An image whose coded picture is bigger than its ``ispe``, decoded and cropped to size (``_oversized``)."""
    found = open_patched(handle, handle.ctx.source)
    if found is None:
        return None
    width, height = image_size(handle, transformations)
    coded = decode_into(found[0], layout, decoder_id, transformations=transformations)
    if coded.width < width or coded.height < height:
        return None
    stride = width * layout.channels * layout.bytes_per_sample
    dst = bytearray(stride * height)
    lib.hk_copy_plane(
        ffi.from_buffer(coded.buffer), coded.stride, ffi.from_buffer(dst, require_writable=True), stride,
        width, height, layout.channels, layout.bytes_per_sample, 0, 0,
    )  # fmt: skip
    return Pixels(width, height, stride, dst)


def decode_to_pillow(handle: Handle, mode: str, bits: int, settings: Settings, box: Box | None = None) -> Any:
    """Decode an 8-bit ``RGB`` image (or its ``box``) straight into a Pillow image that maps the decoded
    pixels (no copy), or None when this Pillow cannot map them (older than 11.2.1) or the mode is another one."""
    if mode != "RGB" or not _arrow.SUPPORTED:
        return None
    layout = layout_of(mode, bits, padded=True)
    pixels = decode(handle, layout, dataclasses.replace(settings, remove_stride=True), box)
    return _arrow.pillow_from_4byte_pixels(mode, (pixels.width, pixels.height), pixels.buffer)


def pillow_image(mode: str, size: tuple[int, int], data: Any, stride: int) -> Any:
    """A Pillow image over ``data``: mapped without a copy where Pillow can, copied otherwise."""
    from PIL import Image

    if mode in PILLOW_MAPPABLE:
        return Image.frombuffer(mode, size, data, "raw", mode, stride, 1)
    try:
        return Image.frombytes(mode, size, data, "raw", mode, stride)
    except ValueError as exc:
        raise ValueError(
            f"mode {mode!r} has no Pillow equivalent; open with convert_hdr_to_8bit=True and bgr_mode=False, "
            "or use numpy (__array_interface__)"
        ) from exc
