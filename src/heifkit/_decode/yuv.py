"""heifkit's own YCbCr to 8-bit RGB(A) conversion, for the decodes where it gives libheif's bytes.

libheif's colour conversion is scalar C. For the common images (YCbCr 4:2:0, 4:2:2 or 4:4:4 coded with one
of the usual matrices, to 8-bit RGB or RGBA), heifkit asks libheif for the decoded YCbCr planes as coded
(``output_image_nclx_profile_passthrough``: no conversion at all) and converts them with ``hk_yuv_to_rgb``
(``_native/yuv.c``: vectorised, on row bands in parallel), which repeats libheif 1.23's arithmetic exactly
(``tests/test_read_yuv.py`` compares every corpus file it takes, and generated images, with libheif's own
decode). Everything else keeps libheif's conversion: :func:`may_convert` says from the image handle,
before decoding, and :func:`convert` checks the decoded planes again and returns False when they are not
what the conversion reproduces (the caller then decodes with libheif). ``_native/yuv.c`` says which of libheif's
chains each image takes (integer 4:2:0 in full range, float otherwise); docs/performance.md tells how they
were found.
"""

from __future__ import annotations

from typing import Any

from .._native.libheif import Handle, ffi, lib, uninitialized
from ..errors import InvalidInputError

__all__ = ["may_convert", "convert", "convert_as_libavif", "decode_whole", "decode_tile"]

VERIFIED_LIBHEIF = (1, 23)
"""The libheif version whose conversion ``_native/yuv.c`` reproduces (checked on the corpus); others keep theirs."""

MATRICES = frozenset({1, 2, 5, 6, 9})
"""H.273 matrix coefficients taken: BT.709, unspecified (libheif: BT.601), BT.470BG/BT.601, BT.2020 NCL."""

HDR_TRANSFERS = frozenset({16, 18})
"""PQ and HLG: left to libheif (whatever it may do to map them to SDR)."""

_CHROMA_SHIFTS = {
    int(lib.heif_chroma_420): (1, 1),
    int(lib.heif_chroma_422): (1, 0),
    int(lib.heif_chroma_444): (0, 0),
}
_VERSION = (int(lib.LIBHEIF_NUMERIC_VERSION) >> 24, (int(lib.LIBHEIF_NUMERIC_VERSION) >> 16) & 0xFF)


def _nclx_taken(nclx: Any) -> bool:
    """Whether an NCLX profile (None: none, then libheif's defaults: BT.601, full range) is one the conversion
    reproduces."""
    if nclx is None:
        return True
    return int(nclx.matrix_coefficients) in MATRICES and int(nclx.transfer_characteristics) not in HDR_TRANSFERS


def _nclx(getter: Any, obj: Any) -> Any:
    """The NCLX profile ``getter`` (libheif's, of a handle or an image) gives ``obj`` (owned), or None
    when it has none (a handle without an ``nclx`` box: then the decoded image says)."""
    out = ffi.new("heif_color_profile_nclx**")
    if getter(obj, out).code != 0:
        return None
    return ffi.gc(out[0], lib.heif_nclx_color_profile_free)


def may_convert(handle: Handle, channels: int, bytes_per_sample: int, to_8bit: bool) -> bool:
    """Whether decoding ``handle`` to 8-bit interleaved RGB (3 ``channels``) or RGBA (4) may go through
    heifkit's conversion: YCbCr 4:2:0/4:2:2/4:4:4 of one bit depth (8, or deeper with ``to_8bit``), no
    premultiplied alpha, an NCLX profile (if the file has one) the conversion reproduces."""
    if _VERSION != VERIFIED_LIBHEIF or bytes_per_sample != 1 or channels not in (3, 4):
        return False
    colorspace, chroma = ffi.new("heif_colorspace*"), ffi.new("heif_chroma*")
    if lib.heif_image_handle_get_preferred_decoding_colorspace(handle.ptr, colorspace, chroma).code != 0:
        return False
    if colorspace[0] != lib.heif_colorspace_YCbCr or int(chroma[0]) not in _CHROMA_SHIFTS:
        return False
    luma = lib.heif_image_handle_get_luma_bits_per_pixel(handle.ptr)
    if luma != lib.heif_image_handle_get_chroma_bits_per_pixel(handle.ptr):
        return False
    if not (luma == 8 or (to_8bit and 8 < luma <= 16)):
        return False
    if lib.heif_image_handle_is_premultiplied_alpha(handle.ptr):
        return False
    return _nclx_taken(_nclx(lib.heif_image_handle_get_nclx_color_profile, handle.ptr))


Plane = tuple[Any, int, int, int, int]


def _ycbcr_planes(image: Any) -> tuple[Plane, Plane, Plane, int, int] | None:
    """The Y, Cb and Cr planes of a YCbCr image (see :func:`_plane`) and its chroma shifts, or None when it is not
    one in 4:2:0, 4:2:2 or 4:4:4 with all three planes, its chroma planes covering its luma."""
    if lib.heif_image_get_colorspace(image) != lib.heif_colorspace_YCbCr:
        return None
    chroma = int(lib.heif_image_get_chroma_format(image))
    if chroma not in _CHROMA_SHIFTS:
        return None
    shift_x, shift_y = _CHROMA_SHIFTS[chroma]
    y, cb, cr = (_plane(image, c) for c in (lib.heif_channel_Y, lib.heif_channel_Cb, lib.heif_channel_Cr))
    if any(p[0] == ffi.NULL for p in (y, cb, cr)):
        return None
    chroma_w, chroma_h = (y[2] + shift_x) >> shift_x, (y[3] + shift_y) >> shift_y
    if any(p[2] < chroma_w or p[3] < chroma_h for p in (cb, cr)):
        return None
    return y, cb, cr, shift_x, shift_y


def _plane(image: Any, channel: int) -> Plane:
    """(pointer, stride, width, height, bits) of a plane of a decoded image; pointer NULL when absent."""
    stride = ffi.new("size_t*")
    ptr = lib.heif_image_get_plane2(image, channel, stride)
    if ptr == ffi.NULL:
        return ptr, 0, 0, 0, 0
    return (
        ptr,
        int(stride[0]),
        lib.heif_image_get_width(image, channel),
        lib.heif_image_get_height(image, channel),
        lib.heif_image_get_bits_per_pixel_range(image, channel),
    )


def convert(
    image: Any,
    channels: int,
    bgr: bool,
    target: Any,
    stride: int,
    box: tuple[int, int, int, int],
    threads: int,
) -> bool:
    """Convert the pixels ``box`` (left, top, right, bottom) of ``image``, a YCbCr image decoded as coded
    (``decode.decoding_options(planar=True)``), into ``target`` (a cffi pointer, ``stride`` bytes per row)
    as 8-bit RGB or RGBA, on ``threads`` threads. False when the planes are not what the conversion
    reproduces: the caller then decodes with libheif."""
    planes = _ycbcr_planes(image)
    if planes is None:
        return False
    y, cb, cr, shift_x, shift_y = planes
    bits = y[4]
    left, top, right, bottom = box
    if cb[4] != bits or cr[4] != bits or not 8 <= bits <= 16:
        return False
    if not (0 <= left < right <= y[2] and 0 <= top < bottom <= y[3]):
        return False
    sample = 2 if bits > 8 else 1
    if any(p[1] < p[2] * sample for p in (y, cb, cr)):
        return False
    alpha = _plane(image, lib.heif_channel_Alpha) if channels == 4 else (ffi.NULL, 0, 0, 0, 0)
    if alpha[0] != ffi.NULL and (alpha[4] != bits or alpha[2] != y[2] or alpha[3] != y[3]):
        return False  # libheif converts such alpha by another chain
    nclx = _nclx(lib.heif_image_get_nclx_color_profile, image)
    if not _nclx_taken(nclx):
        return False
    matrix = 2 if nclx is None else int(nclx.matrix_coefficients)
    full = 1 if nclx is None else int(bool(nclx.full_range_flag))
    rc = lib.hk_yuv_to_rgb(
        y[0], y[1], cb[0], cb[1], cr[0], cr[1], alpha[0], alpha[1], alpha[4],
        right - left, bottom - top, left, top, bits, shift_x, shift_y, matrix, full,
        target, stride, channels, 1 if bgr else 0, max(1, threads),
    )  # fmt: skip
    return rc == 0


def convert_as_libavif(image: Any, channels: int, bgr: bool, target: Any, stride: int) -> bool:
    """Convert the whole of ``image``, an 8-bit YCbCr image in one of the matrices libavif hands to libyuv
    (BT.601, BT.709, BT.2020 NCL, unspecified), into ``target`` as Pillow's AVIF plugin would: libyuv's
    fixed point and bilinear chroma (``_native/avif_rgb.c``). For the images heifkit decodes outside libheif in
    place of that plugin (layered AV1). False when the image is not one of those: convert it with
    :func:`convert` instead."""
    planes = _ycbcr_planes(image)
    if planes is None:
        return False
    y, cb, cr, shift_x, shift_y = planes
    if any(p[4] != 8 for p in (y, cb, cr)):
        return False
    nclx = _nclx(lib.heif_image_get_nclx_color_profile, image)
    matrix = 2 if nclx is None else int(nclx.matrix_coefficients)
    full = 0 if nclx is None else int(bool(nclx.full_range_flag))
    rc = lib.hk_avif_yuv_to_rgb(
        y[0], y[1], cb[0], cb[1], cr[0], cr[1], y[2], y[3], shift_x, shift_y, matrix, full,
        target, stride, channels, 1 if bgr else 0,
    )  # fmt: skip
    if rc == -2:
        raise MemoryError("converting a layered AV1 image")
    return rc == 0


def decode_whole(
    handle: Handle, opts: Any, channels: int, bgr: bool, dst: Any, threads: int
) -> tuple[int, int, int, Any] | None:
    """Decode ``handle`` with ``opts`` (the planes as coded: ``decode.decoding_options(planar=True)``) and
    convert it into ``dst`` (a new buffer when None) in tight rows: (width, height, stride, buffer), or None
    when libheif's decode to YCbCr fails or the planes are not what the conversion reproduces (the caller
    then decodes with libheif)."""
    out = ffi.new("heif_image**")
    if lib.heif_decode_image(handle.ptr, out, lib.heif_colorspace_YCbCr, lib.heif_chroma_undefined, opts).code:
        return None
    image = handle.ctx.adopt_image(out[0])
    width, height = lib.heif_image_get_primary_width(image), lib.heif_image_get_primary_height(image)
    stride = width * channels
    if width <= 0 or height <= 0:
        return None
    if dst is None:
        dst = uninitialized(stride * height)
    elif len(memoryview(dst).cast("B")) < stride * height:
        raise InvalidInputError(f"destination buffer holds fewer than {stride * height} bytes")
    target = ffi.from_buffer(dst, require_writable=True)
    if not convert(image, channels, bgr, target, stride, (0, 0, width, height), threads):
        return None
    return width, height, stride, dst


def decode_tile(handle: Handle, opts: Any, tx: int, ty: int) -> Any:
    """Tile (tx, ty) of ``handle``'s tiled image decoded by libheif with ``opts`` (the planes as coded), as an
    owned ``heif_image``, or None when that fails (the caller decodes with libheif's conversion)."""
    out = ffi.new("heif_image**")
    err = lib.heif_image_handle_decode_image_tile(
        handle.ptr, out, lib.heif_colorspace_YCbCr, lib.heif_chroma_undefined, opts, tx, ty
    )
    return None if err.code else handle.ctx.adopt_image(out[0])
