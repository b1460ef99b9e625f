"""The pieces both writers use for one image: a :class:`Frame` (all the writer knows of an image), its
checked :class:`Job` (info, orientation, chroma, bit depth, grid tile), the output bit depth, chroma and NCLX
profile and their checks, and copying the frame's pixels into a new libheif image at the output bit depth.
``still`` writes frames as the images of a file, ``sequence`` as the samples of a track.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._info.modes import MODES, Mode, mode_of
from .._info.properties import NCLX_KEYS, SRGB
from .._native.libheif import check, ffi, lib, owned
from ..errors import EncoderError
from .attached import Attached
from .settings import Codec, EncodeSettings
from .stored import Stored

__all__ = [
    "Frame",
    "GainMap",
    "Job",
    "writer_mode",
    "output_bits",
    "job_chroma",
    "output_nclx",
    "check_colour",
    "frame_pixels",
    "new_heif_image",
    "fill_image",
]


_NO_RGB_CONVERSION = frozenset([11, 14])  # matrices libheif cannot convert RGB to (Y'D'zD'x, ICtCp)


@dataclass(frozen=True)
class GainMap:
    """A gain map to write with an image, as an ISO 21496-1 ``tmap`` item: the map's pixels (a frame of its own),
    the ``tmap`` item's data, and what describes the alternate (HDR) rendition: its NCLX values, bit depth and
    content light level (or None)."""

    frame: Frame
    metadata: bytes
    alternate_nclx: dict[str, int]
    alternate_bits: int
    alternate_clli: tuple[int, int] | None = None


@dataclass(frozen=True)
class Frame:
    """An image as the writer takes it: ``stride * (height - 1) + row`` bytes of ``data`` in ``mode``."""

    mode: str
    size: tuple[int, int]
    data: Any
    stride: int
    info: dict[str, Any]
    pending_orientation: bool = False  # the EXIF/XMP orientation is still to be applied (as irot/imir)
    orientation: int = 0  # 1-8: written as irot/imir whatever EXIF/XMP says (stored pixels read as they are)
    attached: Attached | None = None  # items of the file it was read from to copy with it (_attached)
    coded_quality: int | None = None  # the quality its source was coded at (quality="keep"), -1 lossless
    stored: Stored | None = None  # written as stored in the file it was read from (no pixels then: ``stored``)
    gain_map: GainMap | None = None  # written with it as an ISO 21496-1 tmap item


def writer_mode(name: str) -> Mode:
    mode = mode_of(name) if name in MODES or name == "YCbCr" else None
    if mode is None:
        raise ValueError(f"unsupported mode {name!r}")
    return mode


@dataclass
class Job:
    """One image of the plan: its frame, the info to write, irot/imir orientation, chroma and grid tile."""

    frame: Frame
    info: dict[str, Any]
    orientation: int
    chroma: str | None  # "420"/"422"/"444", None for the encoder's default
    bits: int
    tile: int = 0
    quality: int | None = None  # the quality it is encoded at (None: the settings')


def output_bits(mode: str, info: dict[str, Any], save_to_12bit: bool) -> int:
    """Bit depth to write: ``info["bit_depth"]`` (the file's, for decoded images), else the mode's.

    16 means "high bit depth": 12 with ``save_to_12bit`` (the settings' value), else 10.
    """
    requested = info.get("bit_depth")
    bits = writer_mode(mode).bits if requested is None else int(requested)
    if bits == 16:
        bits = 12 if save_to_12bit else 10
    if bits not in (8, 10, 12):
        raise ValueError(f"invalid bit_depth {requested}: use 8, 10, 12 (or 16 for 10/12 per options)")
    return bits


def job_chroma(settings: EncodeSettings, info: dict[str, Any]) -> str | None:
    """Chroma for one image: the parameter, else the subsampling the image was read with."""
    chroma = settings.chroma
    if chroma is None and info.get("chroma") in (420, 422, 444):
        chroma = str(info["chroma"])
    return chroma


def output_nclx(info: dict[str, Any]) -> dict[str, int] | None:
    """The four NCLX values written for an image, or None when no NCLX profile is written. The plan has set
    ``save_nclx_profile`` (the settings' default where the image's ``info`` does not say)."""
    save_nclx = info.get("save_nclx_profile", True)
    explicit = {k: int(info[k]) for k in NCLX_KEYS if info.get(k) is not None}
    if not explicit and not save_nclx:
        return None
    # Explicit values override the image's own profile (new images: sRGB), so the lossless recipe
    # (matrix_coefficients=0) keeps a P3 or PQ image's primaries and transfer.
    base = info.get("nclx_profile") or SRGB
    return {**{k: int(base[k]) for k in NCLX_KEYS}, **explicit}


def check_colour(job: Job, codec: Codec) -> None:
    """Refuse NCLX values the codec, or libheif's colour conversion, cannot write for this image."""
    nclx = output_nclx(job.info)
    if nclx is None:
        return
    color = writer_mode(job.frame.mode).color
    if codec.x265 and nclx["color_primaries"] == 22:
        raise ValueError("x265 cannot write color_primaries 22 (EBU Tech 3213); save as AVIF or use another value")
    matrix = nclx["matrix_coefficients"]
    if color and matrix in _NO_RGB_CONVERSION:
        raise ValueError(f"libheif cannot convert RGB to matrix_coefficients {matrix}")
    if color and matrix == 0 and codec.fmt == "AVIF" and job.chroma != "444":
        raise ValueError("AV1 stores RGB (matrix_coefficients=0) only with 4:4:4 chroma: add chroma=444")


def frame_pixels(frame: Frame) -> tuple[Any, int]:
    """The frame's buffer and stride, checked to hold every row (no read beyond it, whatever the stride)."""
    width, height = frame.size
    if width > 2**31 - 1 or height > 2**31 - 1:
        raise ValueError(f"image size {width}x{height} is too large")
    row = width * writer_mode(frame.mode).pixel_bytes
    stride = int(frame.stride or row)
    if stride < row:
        raise ValueError(
            f"image plane does not contain enough data: stride {stride} is smaller than a row of {row} bytes"
        )
    try:
        buf = ffi.from_buffer(frame.data)
    except TypeError as exc:
        raise TypeError(f"image data must support the buffer protocol, not {type(frame.data).__name__}") from exc
    # Python ints: no overflow whatever the stride and size (CVE-2026-28231 in pillow_heif).
    if stride * (height - 1) + row > len(buf):
        raise ValueError("image plane does not contain enough data")
    return buf, stride


def _planes(mode: Mode) -> list[tuple[int, int, int]]:
    """(libheif channel, first source channel, channel count) for each plane of a new image."""
    if mode.ycbcr:
        return [(int(lib.heif_channel_Y), 0, 1), (int(lib.heif_channel_Cb), 1, 1), (int(lib.heif_channel_Cr), 2, 1)]
    if mode.color:
        return [(int(lib.heif_channel_interleaved), 0, mode.channels)]
    return [(int(lib.heif_channel_Y), 0, 1)] + ([(int(lib.heif_channel_Alpha), 1, 1)] if mode.alpha else [])


def new_heif_image(width: int, height: int, mode: Mode, bits: int) -> Any:
    if mode.ycbcr:
        colorspace, chroma = lib.heif_colorspace_YCbCr, lib.heif_chroma_444
    elif mode.color:
        colorspace = lib.heif_colorspace_RGB
        if bits > 8:
            chroma = lib.heif_chroma_interleaved_RRGGBBAA_LE if mode.alpha else lib.heif_chroma_interleaved_RRGGBB_LE
        else:
            chroma = lib.heif_chroma_interleaved_RGBA if mode.alpha else lib.heif_chroma_interleaved_RGB
    else:
        colorspace, chroma = lib.heif_colorspace_monochrome, lib.heif_chroma_monochrome
    out = ffi.new("heif_image**")
    check(lib.heif_image_create(width, height, colorspace, chroma, out))
    image = owned(out[0], lib.heif_image_release)
    for channel, _, _ in _planes(mode):
        check(lib.heif_image_add_plane(image, channel, width, height, bits))
    return image


def fill_image(img: Any, mode: Mode, bits: int, src: Any, src_stride: int, x0: int, y0: int, w: int, h: int) -> None:
    """Copy the region (x0, y0, w, h) of the source into ``img`` (top-left), padding to its full size."""
    channel0 = _planes(mode)[0][0]
    full_w, full_h = lib.heif_image_get_width(img, channel0), lib.heif_image_get_height(img, channel0)
    offset = y0 * src_stride + x0 * mode.pixel_bytes
    for channel, first, count in _planes(mode):
        stride = ffi.new("size_t*")
        dst = lib.heif_image_get_plane2(img, channel, stride)
        if dst == ffi.NULL:
            raise EncoderError("libheif image has no plane to fill")
        rc = lib.hk_fill_plane(
            src + offset, src_stride, mode.channels, first, mode.bits,
            dst, stride[0], count, bits, w, h, 1 if mode.bgr else 0,
        )  # fmt: skip
        if rc != 0:
            raise EncoderError("invalid plane layout")
        if w < full_w or h < full_h:
            lib.hk_pad_plane(dst, stride[0], w, h, full_w, full_h, count * (2 if bits > 8 else 1))
