"""Decoding: from an image handle to a pixel buffer, and from a buffer to Pillow.

:func:`decode` picks the path: big grids, and regions of any grid, decode tile by tile straight into the
output (:func:`decode_tiles_into`), everything else through libheif's whole-image decode (:func:`decode_into`),
whose result is compacted, shifted and swapped in place in libheif's own buffer and handed out without a
copy. Pillow maps the result without another copy for ``L``, ``RGBA`` and ``I;16``.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._info.modes import PILLOW_MAPPABLE, mode_of
from .._info.transforms import image_size
from .._native import arrow as _arrow
from .._native.libheif import Handle, check, copy_plane, ffi, lib, owned, uninitialized
from .._read.stream import StreamSource
from ..errors import DecoderError, HeifError, InvalidInputError, SecurityLimitError
from ..limits import check_whole_image
from . import layered_av1 as _layered_av1
from . import yuv as _yuv
from .cores import core_share
from .oversized import open_patched
from .region import Box, covering_tiles, crop_rows

__all__ = [
    "PixelLayout",
    "Pixels",
    "Settings",
    "layout_of",
    "decode",
    "decode_into",
    "decode_tiles_into",
    "image_pixels",
    "pillow_image",
]


@dataclass(frozen=True)
class PixelLayout:
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


def layout_of(mode: str, bits: int, padded: bool = False) -> PixelLayout:
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
    return PixelLayout(
        mode,
        int(colorspace),
        int(chroma),
        4 if four and info.color and not wide else info.channels,
        info.sample_bytes,
        to_8bit=bits > 8 and not wide,
        shift_to_16=wide and info.bits == 16,
        bgr=info.bgr,
    )


def decoding_options(
    to_8bit: bool, decoder_id: str, codec_threads: int = 0, transformations: bool = True, planar: bool = False
) -> Any:
    """Owned ``heif_decoding_options`` (libheif's defaults, with the decoder, bit depth, codec threads and
    whether rotation, mirroring and crop are applied given). ``planar``: the planes as coded, no colour
    conversion at all (``output_image_nclx_profile_passthrough``: libheif would convert to sRGB's NCLX)."""
    id_buf = ffi.new("char[]", decoder_id.encode()) if decoder_id else ffi.NULL
    opts = owned(lib.heif_decoding_options_alloc(), lib.heif_decoding_options_free, id_buf)
    opts.convert_hdr_to_8bit = 1 if to_8bit else 0
    opts.ignore_transformations = 0 if transformations else 1
    opts.decoder_id = id_buf
    opts.num_codec_threads = max(0, codec_threads)
    opts.output_image_nclx_profile_passthrough = 1 if planar else 0
    return opts


def _plane(image: Any, layout: PixelLayout) -> tuple[Any, int, int, int, int]:
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


def _check_read(err: Any, handle: Handle) -> None:
    """``check`` a decode's error; when reading a stream failed under it, raise what the stream raised."""
    source = handle.ctx.source
    error = source.take_error() if isinstance(source, StreamSource) else None
    if err.code != 0 and error is not None:
        raise error
    check(err)


def _shift(layout: PixelLayout, bits: int) -> int:
    return 16 - bits if (layout.shift_to_16 and 8 < bits < 16) else 0


def _pinned_buffer(image: Any, ptr: Any, size: int) -> Any:
    """A writable buffer over ``size`` bytes at ``ptr`` inside ``image``, keeping ``image`` alive."""
    return ffi.buffer(owned(ffi.cast("uint8_t *", ptr), lambda _p: None, image), size)


def decode_into(
    handle: Handle,
    layout: PixelLayout,
    decoder_id: str = "",
    remove_stride: bool = True,
    dst: Any = None,
    codec_threads: int = 0,
    transformations: bool = True,
    convert_threads: int = 1,
) -> Pixels:
    """Decode ``handle`` into ``dst`` (a writable buffer), or in place when it is None.

    In place, the rows are compacted, shifted and swapped inside libheif's own image, and the returned
    buffer keeps that image alive: no copy at all. With ``remove_stride=False`` the stride is libheif's.
    Tight 8-bit RGB(A) of common YCbCr images is converted by ``_yuv`` (on ``convert_threads`` threads).
    """
    if remove_stride and _yuv.may_convert(handle, layout.channels, layout.bytes_per_sample, layout.to_8bit):
        ycbcr = decoding_options(False, decoder_id, codec_threads, transformations=transformations, planar=True)
        converted = _yuv.decode_whole(handle, ycbcr, layout.channels, layout.bgr, dst, convert_threads)
        if converted is not None:
            return Pixels(*converted)
    opts = decoding_options(layout.to_8bit, decoder_id, codec_threads, transformations=transformations)
    out = ffi.new("heif_image**")
    _check_read(lib.heif_decode_image(handle.ptr, out, layout.colorspace, layout.chroma, opts), handle)
    return image_pixels(handle.ctx.adopt_image(out[0]), layout, remove_stride, dst)


def image_pixels(image: Any, layout: PixelLayout, remove_stride: bool = True, dst: Any = None) -> Pixels:
    """The pixels of a decoded ``heif_image`` (owned, see ``Context.adopt_image``) in ``layout``: into ``dst``,
    or in place in the image's own buffer when it is None (see :func:`decode_into`)."""
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
        copy_plane(
            ptr, src_stride, target, stride, width, height, layout.channels, layout.bytes_per_sample, shift, layout.bgr
        )
    return Pixels(width, height, stride, dst)


TILED_DECODE_MIN_PIXELS = 50_000_000
"""Grid images at least this big decode tile by tile into the output (see :func:`decode_tiles_into`)
even on one thread or one context (a file libheif reads by path): for the peak memory, about 0.6x.

Smaller grids decode tile by tile when they can on several threads, each with its own context: libheif
decodes one image at a time per context, so its own whole-image decode converts colour on one thread after
decoding the tiles, and tiles decoded through one context do not overlap. Measured on 2 cores (libheif
1.23.6, a 12 MP 8x6 grid): 0.72x the time of libheif's whole-image decode with the same threads."""


def image_tiling(handle: Handle, transformations: bool = True) -> Any:
    """libheif's tiling of an image in display coordinates (of the stored image with
    ``transformations=False``), or None when it decodes as one piece."""
    tiling = ffi.new("heif_image_tiling*")
    if lib.heif_image_handle_get_image_tiling(handle.ptr, 1 if transformations else 0, tiling).code != 0:
        return None
    if tiling.num_columns * tiling.num_rows <= 1 or tiling.tile_width == 0 or tiling.tile_height == 0:
        return None
    return tiling


def _check_tile_covers(
    position: tuple[int, int], size: tuple[int, int], start: tuple[int, int], part: tuple[int, int]
) -> None:
    """A decoded tile must cover its part of the output, else the output would keep bytes no tile wrote."""
    if size[0] - start[0] < part[0] or size[1] - start[1] < part[1]:
        raise DecoderError(f"tile {position} decoded to {size[0]}x{size[1]}, smaller than the grid's tiles")


def decode_tiles_into(
    handle: Handle,
    layout: PixelLayout,
    tiling: Any,
    decoder_id: str = "",
    threads: int = 1,
    dst: Any = None,
    codec_threads: int = 1,
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
    check_whole_image(handle.ctx.limits, (image_w, image_h), stride * height)
    if dst is None:
        dst = uninitialized(stride * height)
    elif len(memoryview(dst).cast("B")) < stride * height:
        raise InvalidInputError(f"destination buffer holds fewer than {stride * height} bytes")
    target = ffi.from_buffer(dst, require_writable=True)
    tile_w, tile_h = int(tiling.tile_width), int(tiling.tile_height)
    # libheif 1.23 reports a rotated/mirrored grid's offsets as the visible part of the first tile: the
    # first tile starts (tile size - offset) pixels left of/above the image (checked against its
    # whole-image decode for all 8 orientations).
    left = (tile_w - int(tiling.left_offset)) % tile_w
    top = (tile_h - int(tiling.top_offset)) % tile_h

    ycbcr = _yuv.may_convert(handle, layout.channels, layout.bytes_per_sample, layout.to_8bit)
    planar = lambda: decoding_options(False, decoder_id, codec_threads, transformations=transformations, planar=True)  # noqa: E731

    def decode_tile(tile_handle: Handle, position: tuple[int, int]) -> None:
        tx, ty = position
        # where the tile's top-left lands in the output
        x0, y0 = tx * tile_w - left - box[0], ty * tile_h - top - box[1]
        sx, sy = max(0, -x0), max(0, -y0)
        dx, dy = max(0, x0), max(0, y0)
        w, h = min(tile_w - sx, width - dx), min(tile_h - sy, height - dy)  # what the tile covers
        if w <= 0 or h <= 0:
            return
        if ycbcr and (image := _yuv.decode_tile(tile_handle, planar(), tx, ty)) is not None:
            t_width, t_height = lib.heif_image_get_primary_width(image), lib.heif_image_get_primary_height(image)
            _check_tile_covers(position, (t_width, t_height), (sx, sy), (w, h))
            part, into = (sx, sy, sx + w, sy + h), target + dy * stride + dx * pixel
            if _yuv.convert(image, layout.channels, layout.bgr, into, stride, part, 1):
                return
        out = ffi.new("heif_image**")
        opts = decoding_options(layout.to_8bit, decoder_id, codec_threads, transformations=transformations)
        err = lib.heif_image_handle_decode_image_tile(
            tile_handle.ptr, out, layout.colorspace, layout.chroma, opts, tx, ty
        )
        _check_read(err, tile_handle)
        image = tile_handle.ctx.adopt_image(out[0])
        ptr, src_stride, t_width, t_height, bits = _plane(image, layout)
        _check_tile_covers(position, (t_width, t_height), (sx, sy), (w, h))
        copy_plane(
            ptr + sy * src_stride + sx * pixel, src_stride, target + dy * stride + dx * pixel, stride, w, h,
            layout.channels, layout.bytes_per_sample, _shift(layout, bits), layout.bgr,
        )  # fmt: skip

    grid = (int(tiling.num_columns), int(tiling.num_rows))
    positions = list(covering_tiles(box, (tile_w, tile_h), (left, top), grid))
    workers = _worker_handles(handle, min(threads, len(positions)))
    if len(workers) <= 1:
        for position in positions:
            decode_tile(handle, position)
        return Pixels(width, height, stride, dst)
    queue = iter(positions)
    queue_lock = threading.Lock()

    def work(tile_handle: Handle) -> None:
        while True:
            with queue_lock:
                position = next(queue, None)
            if position is None:
                return
            decode_tile(tile_handle, position)

    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        for _ in pool.map(work, workers):
            pass
    return Pixels(width, height, stride, dst)


def _tiles_agree(handle: Handle, tiling: Any, transformations: bool = True) -> bool:
    """Whether every tile of a grid is coded alike (colorspace, chroma, bit depths, alpha), as libheif's
    whole-image decode requires (it refuses a grid that mixes them, where tiles decoded one by one would
    each convert fine); False also when a tile cannot be looked at."""
    item = ffi.new("heif_item_id*")
    out = ffi.new("heif_image_handle**")
    colorspace, chroma = ffi.new("heif_colorspace*"), ffi.new("heif_chroma*")
    first = None
    for ty in range(int(tiling.num_rows)):
        for tx in range(int(tiling.num_columns)):
            if lib.heif_image_handle_get_grid_image_tile_id(handle.ptr, int(transformations), tx, ty, item).code:
                return False
            if lib.heif_context_get_image_handle(handle.ctx.ptr, item[0], out).code != 0:
                return False
            tile = Handle(out[0], handle.ctx)
            if lib.heif_image_handle_get_preferred_decoding_colorspace(tile.ptr, colorspace, chroma).code != 0:
                return False
            coding = (
                int(colorspace[0]),
                int(chroma[0]),
                lib.heif_image_handle_get_luma_bits_per_pixel(tile.ptr),
                lib.heif_image_handle_get_chroma_bits_per_pixel(tile.ptr),
                lib.heif_image_handle_has_alpha_channel(tile.ptr),
            )
            if first is None:
                first = coding
            elif coding != first:
                return False
    return True


def _in_memory(handle: Handle) -> bool:
    """Whether ``handle``'s file is in memory (bytes, or a stream source), so threads can open it again."""
    return isinstance(handle.ctx.source, (bytes, memoryview, StreamSource))


def _worker_handles(handle: Handle, count: int) -> list[Handle]:
    """``handle``'s image in ``count`` contexts, one per thread: libheif decodes one image at a time per
    context (its tile decodes through one context do not overlap), so each thread opens the file's bytes
    again (a few hundred microseconds: only the boxes are parsed). The first is ``handle`` itself. A file
    libheif reads by path, or one whose image cannot be found again, is decoded through ``handle`` alone."""
    if count <= 1 or not _in_memory(handle):
        return [handle]
    source = handle.ctx.source
    data = source.all_bytes() if isinstance(source, StreamSource) else source
    item = lib.heif_image_handle_get_item_id(handle.ptr)
    handles = [handle]
    for _ in range(count - 1):
        ctx = handle.ctx.twin(data)
        out = ffi.new("heif_image_handle**")
        if lib.heif_context_get_image_handle(ctx.ptr, item, out).code != 0:
            return [handle]
        handles.append(Handle(out[0], ctx))
    return handles


def decode(handle: Handle, layout: PixelLayout, settings: Settings, box: Box | None = None) -> Pixels:
    """Decode an image the fastest way that gives libheif's pixels (holding its context's lock).

    Grids whose tiling covers the whole image decode tile by tile on ``settings.threads`` threads when they
    are in memory and get more than one thread, or are at least :data:`TILED_DECODE_MIN_PIXELS`; the rest,
    and every image with ``remove_stride=False`` (libheif's stride is asked for), decode whole. Threads
    are capped by the decode's share of the cores (``_cores.core_share``); automatic codec threads go to
    a single picture, not to each tile of a grid.

    ``box`` (checked by ``region.check_box``): only that region, in tight rows. A tiled image decodes just
    the tiles that cover it, whatever its size; any other image decodes whole and the box is copied out.
    """
    transformations = settings.transformations
    with core_share() as share, handle.ctx.lock:
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
            and (
                box is not None
                or tiling.image_width * tiling.image_height >= TILED_DECODE_MIN_PIXELS
                or (threads > 1 and _in_memory(handle))
            )
            and (tiling.image_width, tiling.image_height) == image_size(handle, transformations)
            and _tiles_agree(handle, tiling, transformations)
        ):
            try:
                return decode_tiles_into(
                    handle,
                    layout,
                    tiling,
                    settings.decoder_id,
                    max(1, threads),
                    codec_threads=codec_threads,
                    box=box,
                    transformations=transformations,
                )
            except SecurityLimitError:
                raise
            except HeifError:
                pass  # a damaged grid: libheif's whole-image decode below says what it says of it
        try:
            whole = decode_into(
                handle, layout, settings.decoder_id, settings.remove_stride, None, codec_threads, transformations, share
            )
        except HeifError as exc:
            point = _layered_av1.operating_point(handle)
            if point is not None:  # layered AV1, which libheif refuses: its operating point, by dav1d alone
                layered = _layered_av1.layered_or_raise(handle, point, exc, settings.decoder_id, layout, codec_threads)
                return _cropped(Pixels(*layered), box, layout, handle, transformations)
            if exc.subcode != _INVALID_IMAGE_SIZE:
                raise
            cropped = _decode_oversized(handle, layout, settings.decoder_id, transformations)
            if cropped is None:
                raise
            whole = cropped
    return _cropped(whole, box, layout, handle, transformations)


def _cropped(whole: Pixels, box: Box | None, layout: PixelLayout, handle: Handle, transformations: bool) -> Pixels:
    """``whole`` cut to ``box`` (None: all of it)."""
    if box is None:
        return whole
    if box[2] > whole.width or box[3] > whole.height:
        raise DecoderError(
            f"Decoder plugin generated an error: the image decoded to {whole.width}x{whole.height}, smaller than "
            f"the region {box} of the {image_size(handle, transformations)} the file signals"
        )
    buffer, stride = crop_rows(whole.buffer, whole.stride, box, layout.channels * layout.bytes_per_sample)
    return Pixels(box[2] - box[0], box[3] - box[1], stride, buffer)


_INVALID_IMAGE_SIZE = int(lib.heif_suberror_Invalid_image_size)


def _decode_oversized(
    handle: Handle, layout: PixelLayout, decoder_id: str, transformations: bool = True
) -> Pixels | None:
    """An image whose coded picture is bigger than its ``ispe``, decoded and cropped to size (``_oversized``)."""
    source = handle.ctx.source
    found = open_patched(handle, source.all_bytes() if isinstance(source, StreamSource) else source)
    if found is None:
        return None
    width, height = image_size(handle, transformations)
    coded = decode_into(found[0], layout, decoder_id, transformations=transformations)
    if coded.width < width or coded.height < height:
        return None
    stride = width * layout.channels * layout.bytes_per_sample
    dst = bytearray(stride * height)
    copy_plane(
        ffi.from_buffer(coded.buffer), coded.stride, ffi.from_buffer(dst, require_writable=True), stride,
        width, height, layout.channels, layout.bytes_per_sample,
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
