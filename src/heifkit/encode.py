"""Encode orchestration: images (raw bytes, Pillow, HEIF) -> libheif images -> a HEIF/AVIF file.

Per image: the pixels are copied once into a libheif image at the output bit depth, the colour profile
and pixel aspect ratio are attached, libheif encodes it (as one image or a grid of tiles), then the
HDR metadata, EXIF/XMP/other metadata and thumbnails are attached to the encoded item.

Orientation: HEIF stores it as ``irot``/``imir``. Images made from bytes or Pillow images are written
with the EXIF/XMP orientation as ``irot``/``imir`` and their pixels as given, so readers show them
upright exactly once. Images decoded from a HEIF/AVIF file are already upright: they are written
without a transform and with their EXIF/XMP orientation reset to 1.
"""

from __future__ import annotations

import copy
import errno
import os
import secrets
import stat
from dataclasses import dataclass
from typing import Any

from . import _lib, options
from ._lib import check, ffi, lib
from .errors import EncoderError
from .heif import HeifFile, HeifImage
from .metadata import exif_from_pillow, get_orientation, set_orientation, xmp_from_pillow

__all__ = ["image_from_bytes", "image_from_pillow", "image_from_heif", "save_heif_file", "save_pillow"]


@dataclass(frozen=True)
class ModeInfo:
    """Layout of an input mode: interleaved channels, bits per sample, colour, BGR order."""

    channels: int
    bits: int
    color: bool
    bgr: bool = False


def _mode_table() -> dict[str, ModeInfo]:
    table: dict[str, ModeInfo] = {}
    for suffix, bits in (("", 8), (";16", 16), (";12", 12), (";10", 10)):
        for base, channels in (("RGB", 3), ("RGBA", 4), ("RGBa", 4)):
            table[base + suffix] = ModeInfo(channels, bits, True)
            table[base.replace("RGB", "BGR") + suffix] = ModeInfo(channels, bits, True, bgr=True)
        table["L" + suffix] = ModeInfo(1, bits, False)
        table["LA" + suffix] = ModeInfo(2, bits, False)
        table["La" + suffix] = ModeInfo(2, bits, False)
        if bits > 8:
            table[f"I;{bits}"] = ModeInfo(1, bits, False)
            table[f"I;{bits}L"] = ModeInfo(1, bits, False)
    return table


MODES = _mode_table()
"""Every mode accepted by ``encode``/``from_bytes``/``add_frombytes``."""

# Pillow mode -> mode it is converted to before encoding (None: kept). Others are refused.
PILLOW_CONVERSIONS: dict[str, str | None] = {
    "1": "L",
    "L": None,
    "LA": None,
    "La": None,
    "P": "RGB",  # RGBA when the palette has transparency
    "PA": "RGBA",
    "RGB": None,
    "RGBA": None,
    "RGBa": None,
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "I": "I;16",
    "I;16": None,
    "I;16L": "I;16",
    "I;16B": "I;16",
    "I;16N": "I;16",
}

_PER_IMAGE_KEYS = {
    "exif",
    "xmp",
    "icc_profile",
    "icc_profile_type",
    "nclx_profile",
    "thumbnails",
    "metadata",
    "pixel_aspect_ratio",
    "content_light_level",
    "mastering_display_colour_volume",
    "ambient_viewing_environment",
    "bit_depth",
    "save_nclx_profile",
    "color_primaries",
    "transfer_characteristics",
    "matrix_coefficients",
    "full_range_flag",
}
_FILE_KEYS = {
    "format",
    "quality",
    "enc_params",
    "chroma",
    "subsampling",
    "speed",
    "tile_size",
    "save_all",
    "append_images",
    "primary_index",
    "save_to_12bit",
    "encoder",
}
_NCLX_KEYS = ("color_primaries", "transfer_characteristics", "matrix_coefficients", "full_range_flag")
_SRGB = {"color_primaries": 1, "transfer_characteristics": 13, "matrix_coefficients": 6, "full_range_flag": 1}
_SUBSAMPLING = {"4:4:4": "444", "4:2:2": "422", "4:2:0": "420"}
_X265_PRESETS = (
    "placebo",
    "veryslow",
    "slower",
    "slow",
    "medium",
    "fast",
    "faster",
    "veryfast",
    "superfast",
    "ultrafast",
)
_MAX_GRID = 256
_MAX_ITEMS = 1000


# ---------------------------------------------------------------------------------------------------
# making images


def _new_info(bits: int) -> dict[str, Any]:
    info: dict[str, Any] = {
        "primary": False,
        "bit_depth": bits,
        "exif": None,
        "metadata": [],
        "thumbnails": [],
        "depth_images": [],
    }
    if options.AUX_IMAGES:
        info["aux"] = {}
    return info


def image_from_bytes(mode: str, size: tuple[int, int], data: Any, stride: int | None = None) -> HeifImage:
    """A ``HeifImage`` holding raw pixels in one of :data:`MODES` (validated when saved)."""
    if mode not in MODES:
        raise ValueError(f"unsupported mode {mode!r}; supported: {', '.join(sorted(MODES))}")
    width, height = int(size[0]), int(size[1])
    info = MODES[mode]
    row = width * info.channels * (2 if info.bits > 8 else 1)
    image = HeifImage(
        (width, height), mode, _new_info(info.bits), data=data, stride=row if stride is None else int(stride)
    )
    image.pending_orientation = True
    return image


def _pillow_mode(img: Any) -> tuple[Any, str]:
    mode = img.mode
    if mode not in PILLOW_CONVERSIONS:
        raise ValueError(
            f"Pillow mode {mode!r} cannot be saved as HEIF/AVIF; convert it first "
            f"(supported: {', '.join(sorted(PILLOW_CONVERSIONS))})"
        )
    target = PILLOW_CONVERSIONS[mode]
    if mode == "P":
        target = "RGBA" if img.info.get("transparency") is not None or img.palette.mode == "RGBA" else "RGB"
    if target is None:
        return img, mode
    if target == "I;16":
        if mode in ("I;16L", "I;16N"):
            return img, "I;16"  # the same little-endian samples on the hosts heifkit supports
        if mode == "I;16B":
            return img.convert("I").convert("I;16"), "I;16"  # Pillow's direct I;16B -> I;16 is lossy
        return img.convert("I;16"), "I;16"  # "I": clipped to 0..65535 by Pillow
    return img.convert(target), target


def image_from_pillow(img: Any) -> HeifImage:
    """A ``HeifImage`` copied from a Pillow image, mode converted per :data:`PILLOW_CONVERSIONS`.

    ``info`` is carried over (EXIF, XMP, ICC, NCLX, thumbnails, metadata, pixel aspect ratio, HDR
    metadata, bit depth). The EXIF/XMP orientation is kept and written as ``irot``/``imir``; until then
    ``to_pillow()`` shows the image upright.
    """
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ValueError("Empty images are not supported.")
    img.load()
    converted, mode = _pillow_mode(img)
    minfo = MODES[mode]
    data = converted.tobytes()
    image = HeifImage((width, height), mode, _new_info(minfo.bits), data=data, stride=len(data) // height)
    src = img.info
    for key in ("bit_depth", "chroma", "thumbnails", "icc_profile", "icc_profile_type", "pixel_aspect_ratio", "tiling"):
        if src.get(key) is not None:
            image.info[key] = src[key]
    for key in (
        "nclx_profile",
        "metadata",
        "content_light_level",
        "mastering_display_colour_volume",
        "ambient_viewing_environment",
    ):
        if src.get(key) is not None:
            image.info[key] = copy.deepcopy(src[key])
    image.info["exif"] = exif_from_pillow(img)
    xmp = xmp_from_pillow(img)
    if xmp:
        image.info["xmp"] = xmp
    image.pending_orientation = True
    return image


def image_from_heif(src: HeifImage) -> HeifImage:
    """A copy of a ``HeifImage`` (pixels and a deep copy of ``info`` without ``primary``)."""
    src.load()
    data = bytes(memoryview(src._data).cast("B")[: src._stride * src.size[1]])
    skip = ("primary", "entity_groups")  # entity groups refer to the source file's items
    info = {k: (v if k == "depth_images" else copy.deepcopy(v)) for k, v in src.info.items() if k not in skip}
    info["primary"] = False
    image = HeifImage(src.size, src.mode, info, data=data, stride=src._stride)
    image.pending_orientation = src.pending_orientation
    return image


# ---------------------------------------------------------------------------------------------------
# encoder set-up


def _compression(fmt: str) -> tuple[str, int]:
    key = str(fmt).upper()
    if key in ("HEIF", "HEIC"):
        return "HEIF", int(lib.heif_compression_HEVC)
    if key == "AVIF":
        return "AVIF", int(lib.heif_compression_AV1)
    raise ValueError(f"unknown format {fmt!r}: use 'HEIF' or 'AVIF'")


def _chroma_value(params: dict[str, Any]) -> str | None:
    subsampling = params.get("subsampling")
    if subsampling is not None and str(subsampling) in _SUBSAMPLING:
        return _SUBSAMPLING[str(subsampling)]
    chroma = params.get("chroma")
    if chroma is None:
        return None
    if str(chroma) not in ("420", "422", "444"):
        raise ValueError(f"invalid chroma {chroma!r}: use 420, 422 or 444")
    return str(chroma)


class _Encoder:
    """An owned ``heif_encoder`` configured from the save parameters."""

    def __init__(self, ctx: Any, fmt: str, params: dict[str, Any]) -> None:
        self.fmt, compression = _compression(fmt)
        info = _lib.libheif_info()
        if not info[self.fmt]:
            raise EncoderError(f"No {self.fmt} encoder found.")
        preferred = params.get("encoder") or options.PREFERRED_ENCODER.get(self.fmt, "")
        out = ffi.new("heif_encoder**")
        if preferred:
            descriptor = _lib.encoder_descriptor(preferred, compression)
            if descriptor is None:
                names = [i for i, _ in _lib._encoders(compression)]
                raise ValueError(f"unknown {self.fmt} encoder {preferred!r}; available: {', '.join(names)}")
            check(lib.heif_context_get_encoder(ctx, descriptor, out))
        else:
            check(lib.heif_context_get_encoder_for_format(ctx, compression, out))
        if out[0] == ffi.NULL:
            raise EncoderError(f"No {self.fmt} encoder found.")
        self.ptr = ffi.gc(out[0], lib.heif_encoder_release)
        quality = params.get("quality", options.QUALITY)
        self.lossless = quality == -1
        if quality is not None:
            if isinstance(quality, bool) or not isinstance(quality, int) or not -1 <= quality <= 100:
                raise ValueError(f"invalid quality {quality!r}: use None, -1 (lossless) or 0..100")
            if quality == -1:
                check(lib.heif_encoder_set_lossless(self.ptr, 1))
            else:
                check(lib.heif_encoder_set_lossy_quality(self.ptr, quality))
        self.chroma: str | None = None  # what the encoder is set to (None: its default, 4:2:0)
        speed = params.get("speed")
        if speed is not None:
            self._set_speed(speed)
        for key, value in dict(params.get("enc_params") or {}).items():
            self.set(str(key), value)

    def use_chroma(self, chroma: str | None) -> None:
        """Switch chroma subsampling before encoding an image (None: the encoder's default 4:2:0)."""
        value = chroma or "420"
        if value != (self.chroma or "420"):
            self.set("chroma", value)
        self.chroma = value

    def set(self, key: str, value: Any) -> None:
        check(lib.heif_encoder_set_parameter(self.ptr, key.encode(), str(value).encode()), f"encoder parameter {key!r}")

    def _set_speed(self, speed: Any) -> None:
        if isinstance(speed, bool) or not isinstance(speed, int) or not 0 <= speed <= 10:
            raise ValueError(f"invalid speed {speed!r}: use 0 (slowest, smallest) .. 10 (fastest)")
        if self.fmt == "HEIF":
            self.set("preset", _X265_PRESETS[round(speed * (len(_X265_PRESETS) - 1) / 10)])
        else:
            self.set("speed", round(speed * 9 / 10))


# ---------------------------------------------------------------------------------------------------
# per-image encoding


def _output_bits(mode: str, info: dict[str, Any], save_to_12bit: bool) -> int:
    """Bit depth to write: ``info["bit_depth"]`` (the file's, for decoded images), else the mode's.

    16 means "high bit depth": 12 with ``save_to_12bit``/``options.SAVE_HDR_TO_12_BIT``, else 10.
    """
    requested = info.get("bit_depth")
    bits = MODES[mode].bits if requested is None else int(requested)
    if bits == 16:
        bits = 12 if save_to_12bit else 10
    if bits not in (8, 10, 12):
        raise ValueError(f"invalid bit_depth {requested}: use 8, 10, 12 (or 16 for 10/12 per options)")
    return bits


def _validate_pixels(image: HeifImage) -> tuple[Any, int]:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ValueError("Empty images are not supported.")
    if width > 2**31 - 1 or height > 2**31 - 1:
        raise ValueError(f"image size {width}x{height} is too large")
    image.load()
    minfo = MODES.get(image.mode)
    if minfo is None:
        raise ValueError(f"unsupported mode {image.mode!r}")
    row = width * minfo.channels * (2 if minfo.bits > 8 else 1)
    stride = int(image._stride or row)
    if stride < row:
        raise ValueError(f"stride {stride} is smaller than a row of {row} bytes")
    try:
        buf = ffi.from_buffer(image._data)
    except TypeError as exc:
        raise TypeError(f"image data must support the buffer protocol, not {type(image._data).__name__}") from exc
    # Python ints: no overflow whatever the stride and size (CVE-2026-28231 in pillow_heif).
    if stride * (height - 1) + row > len(buf):
        raise ValueError("image plane does not contain enough data")
    return buf, stride


def _new_heif_image(width: int, height: int, minfo: ModeInfo, bits: int) -> Any:
    alpha = minfo.channels in (2, 4)
    if minfo.color:
        if bits > 8:
            chroma = lib.heif_chroma_interleaved_RRGGBBAA_LE if alpha else lib.heif_chroma_interleaved_RRGGBB_LE
        else:
            chroma = lib.heif_chroma_interleaved_RGBA if alpha else lib.heif_chroma_interleaved_RGB
        colorspace = lib.heif_colorspace_RGB
    else:
        chroma, colorspace = lib.heif_chroma_monochrome, lib.heif_colorspace_monochrome
    out = ffi.new("heif_image**")
    check(lib.heif_image_create(width, height, colorspace, chroma, out))
    img = _lib.owned_image(out[0])
    if minfo.color:
        check(lib.heif_image_add_plane(img, lib.heif_channel_interleaved, width, height, bits))
    else:
        check(lib.heif_image_add_plane(img, lib.heif_channel_Y, width, height, bits))
        if alpha:
            check(lib.heif_image_add_plane(img, lib.heif_channel_Alpha, width, height, bits))
    return img


def _planes(img: Any, minfo: ModeInfo) -> list[tuple[int, int, int]]:
    """(libheif channel, first source channel, channel count) for each plane of a new image."""
    if minfo.color:
        return [(int(lib.heif_channel_interleaved), 0, minfo.channels)]
    planes = [(int(lib.heif_channel_Y), 0, 1)]
    if minfo.channels == 2:
        planes.append((int(lib.heif_channel_Alpha), 1, 1))
    return planes


def _fill(img: Any, minfo: ModeInfo, bits: int, src: Any, src_stride: int, x0: int, y0: int, w: int, h: int) -> None:
    """Copy the region (x0, y0, w, h) of the source into ``img`` (top-left), padding to its full size."""
    sample = 2 if minfo.bits > 8 else 1
    pixel = minfo.channels * sample
    full_w = lib.heif_image_get_width(img, _planes(img, minfo)[0][0])
    full_h = lib.heif_image_get_height(img, _planes(img, minfo)[0][0])
    offset = y0 * src_stride + x0 * pixel
    for channel, first, count in _planes(img, minfo):
        stride = ffi.new("size_t*")
        dst = lib.heif_image_get_plane2(img, channel, stride)
        if dst == ffi.NULL:
            raise EncoderError("libheif image has no plane to fill")
        rc = lib.hk_fill_plane(
            src + offset, src_stride, minfo.channels, first, minfo.bits,
            dst, stride[0], count, bits, w, h, 1 if minfo.bgr else 0,
        )  # fmt: skip
        if rc != 0:
            raise EncoderError("invalid plane layout")
        if w < full_w or h < full_h:
            lib.hk_pad_plane(dst, stride[0], w, h, full_w, full_h, count * (2 if bits > 8 else 1))


def _nclx(values: dict[str, Any]) -> Any:
    raw = lib.heif_nclx_color_profile_alloc()
    if raw == ffi.NULL:
        raise MemoryError("heif_nclx_color_profile_alloc failed")
    profile = ffi.gc(raw, lib.heif_nclx_color_profile_free)
    for key in _NCLX_KEYS:
        if values.get(key) is not None:
            value = int(values[key])
            if key == "full_range_flag":
                profile.full_range_flag = 1 if value else 0
            else:
                if not 0 <= value <= 255:
                    raise ValueError(f"invalid {key} {value}")
                setattr(profile, key, value)
    return profile


def _encoding_options(info: dict[str, Any], orientation: int, keep: list[Any]) -> Any:
    raw = lib.heif_encoding_options_alloc()
    if raw == ffi.NULL:
        raise MemoryError("heif_encoding_options_alloc failed")
    opts = ffi.gc(raw, lib.heif_encoding_options_free)
    opts.image_orientation = orientation
    save_nclx = info.get("save_nclx_profile")
    if save_nclx is None:
        save_nclx = options.SAVE_NCLX_PROFILE
    explicit = {k: info[k] for k in _NCLX_KEYS if info.get(k) is not None}
    if not explicit and not save_nclx:
        opts.macOS_compatibility_workaround_no_nclx_profile = 1
        return opts
    # Explicit values override the image's own profile (new images: sRGB), so the lossless recipe
    # (matrix_coefficients=0) keeps a P3 or PQ image's primaries and transfer.
    profile = _nclx({**(info.get("nclx_profile") or _SRGB), **explicit})
    keep.append(profile)
    opts.output_nclx_profile = profile
    return opts


def _apply_image_properties(img: Any, info: dict[str, Any]) -> None:
    icc = info.get("icc_profile")
    if icc is not None and len(icc) > 0:
        kind = info.get("icc_profile_type") or "prof"
        if kind not in ("prof", "rICC"):
            raise ValueError(f"invalid icc_profile_type {kind!r}: use 'prof' or 'rICC'")
        data = bytes(icc)
        check(lib.heif_image_set_raw_color_profile(img, kind.encode(), data, len(data)))
    nclx = info.get("nclx_profile")
    if nclx:
        check(lib.heif_image_set_nclx_color_profile(img, _nclx(nclx)))
    pasp = info.get("pixel_aspect_ratio")
    if pasp is not None:
        h, v = (int(x) for x in pasp)
        if h <= 0 or v <= 0:
            raise ValueError(f"invalid pixel_aspect_ratio {pasp!r}")
        lib.heif_image_set_pixel_aspect_ratio(img, h, v)


def _apply_handle_properties(handle: Any, info: dict[str, Any]) -> None:
    clli = info.get("content_light_level")
    if clli:
        c = ffi.new("heif_content_light_level*")
        c.max_content_light_level = int(clli["max_content_light_level"])
        c.max_pic_average_light_level = int(clli["max_pic_average_light_level"])
        lib.heif_image_handle_set_content_light_level(handle, c)
    mdcv = info.get("mastering_display_colour_volume")
    if mdcv:
        m = ffi.new("heif_mastering_display_colour_volume*")
        for i in range(3):
            m.display_primaries_x[i] = int(mdcv["display_primaries_x"][i])
            m.display_primaries_y[i] = int(mdcv["display_primaries_y"][i])
        m.white_point_x = int(mdcv["white_point_x"])
        m.white_point_y = int(mdcv["white_point_y"])
        m.max_display_mastering_luminance = int(mdcv["max_display_mastering_luminance"])
        m.min_display_mastering_luminance = int(mdcv["min_display_mastering_luminance"])
        lib.heif_image_handle_set_mastering_display_colour_volume(handle, m)
    amve = info.get("ambient_viewing_environment")
    if amve:
        a = ffi.new("heif_ambient_viewing_environment*")
        a.ambient_illumination = int(amve["ambient_illumination"])
        a.ambient_light_x = int(amve["ambient_light_x"])
        a.ambient_light_y = int(amve["ambient_light_y"])
        lib.heif_image_handle_set_ambient_viewing_environment(handle, a)


def _add_metadata(ctx: Any, handle: Any, info: dict[str, Any]) -> None:
    exif = info.get("exif")
    if exif is not None and not isinstance(exif, (bytes, bytearray, memoryview)):
        exif = exif.tobytes()  # PIL.Image.Exif
    if exif:
        data = bytes(exif)
        check(lib.heif_context_add_exif_metadata(ctx, handle, data, len(data)), "EXIF")
    xmp = info.get("xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    if xmp:
        data = bytes(xmp)
        check(lib.heif_context_add_XMP_metadata(ctx, handle, data, len(data)), "XMP")
    for block in info.get("metadata") or []:
        if not block:
            continue
        data = bytes(block["data"])
        content_type = block.get("content_type") or ""
        check(
            lib.heif_context_add_generic_metadata(
                ctx,
                handle,
                data,
                len(data),
                str(block["type"]).encode(),
                content_type.encode() if content_type else ffi.NULL,
            ),
            "metadata",
        )


def _thumbnail_boxes(info: dict[str, Any], size: tuple[int, int]) -> list[int]:
    boxes = info.get("thumbnails") or []
    return [int(b) for b in boxes if isinstance(b, int) and 3 < b < max(size)]


def _effective_tile(image: HeifImage, info: dict[str, Any], tile_size: Any, fmt: str, chroma: str | None) -> int:
    if tile_size is None:
        tiling = info.get("tiling") or {}
        tile_size = tiling.get("tile_width") or options.GRID_TILE_SIZE
    tile = int(tile_size or 0)
    if tile <= 0:
        return 0
    width, height = image.size
    if width <= tile and height <= tile:
        return 0
    minfo = MODES[image.mode]
    if minfo.channels in (2, 4):  # libheif's grid API has no alpha tiles
        return 0
    if fmt == "AVIF":
        if tile < 64:
            return 0
        subsampled = minfo.color and chroma != "444"
        if subsampled and (width % 2 or height % 2 or tile % 2):
            return 0
    return tile


@dataclass
class _Job:
    image: HeifImage
    info: dict[str, Any]
    orientation: int
    chroma: str | None  # "420"/"422"/"444", None for the encoder's default


def _job_chroma(params: dict[str, Any], info: dict[str, Any]) -> str | None:
    """Chroma for one image: the parameter, else the subsampling the image was read with."""
    chroma = _chroma_value(params)
    if chroma is None and info.get("chroma") in (420, 422, 444):
        chroma = str(info["chroma"])
    return chroma


def _encode_one(ctx: Any, encoder: _Encoder, job: _Job, tile: int, save_to_12bit: bool, keep: list[Any]) -> Any:
    image, info = job.image, job.info
    encoder.use_chroma(job.chroma)
    buf, stride = _validate_pixels(image)
    minfo = MODES[image.mode]
    bits = _output_bits(image.mode, info, save_to_12bit)
    width, height = image.size
    opts = _encoding_options(info, job.orientation, keep)
    out = ffi.new("heif_image_handle**")
    full = None
    if tile:
        cols, rows = -(-width // tile), -(-height // tile)
        check(lib.heif_context_add_grid_image(ctx, width, height, cols, rows, opts, out))
        handle = _lib.owned_handle(out[0])
        for ty in range(rows):
            for tx in range(cols):
                x0, y0 = tx * tile, ty * tile
                w, h = min(tile, width - x0), min(tile, height - y0)
                tile_img = _new_heif_image(tile, tile, minfo, bits)
                _fill(tile_img, minfo, bits, buf, stride, x0, y0, w, h)
                _apply_image_properties(tile_img, info)
                check(lib.heif_context_add_image_tile(ctx, handle, tx, ty, tile_img, encoder.ptr))
    else:
        full = _new_heif_image(width, height, minfo, bits)
        _fill(full, minfo, bits, buf, stride, 0, 0, width, height)
        if image.premultiplied_alpha:
            lib.heif_image_set_premultiplied_alpha(full, 1)
        _apply_image_properties(full, info)
        check(lib.heif_context_encode_image(ctx, full, encoder.ptr, opts, out))
        handle = _lib.owned_handle(out[0])
    if tile and info.get("pixel_aspect_ratio") is not None:
        h, v = (int(x) for x in info["pixel_aspect_ratio"])
        lib.heif_image_handle_set_pixel_aspect_ratio(handle, h, v)
    _apply_handle_properties(handle, info)
    _add_metadata(ctx, handle, info)
    boxes = _thumbnail_boxes(info, image.size)
    if boxes:
        if full is None:
            full = _new_heif_image(width, height, minfo, bits)
            _fill(full, minfo, bits, buf, stride, 0, 0, width, height)
            _apply_image_properties(full, info)
        for box in boxes:
            thumb = ffi.new("heif_image_handle**")
            check(lib.heif_context_encode_thumbnail(ctx, full, handle, encoder.ptr, opts, box, thumb), "thumbnail")
            if thumb[0] != ffi.NULL:
                lib.heif_image_handle_release(thumb[0])
    return handle


def _prepare_info(image: HeifImage, overrides: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The info to write for ``image`` (``overrides`` applied) and the orientation to store as irot/imir."""
    info = dict(image.info)
    info.update(overrides)
    exif, xmp = info.get("exif"), info.get("xmp")
    if exif is not None and not isinstance(exif, bytes):
        info["exif"] = bytes(exif) if isinstance(exif, (bytearray, memoryview)) else exif.tobytes()  # Image.Exif
    if isinstance(xmp, str):
        info["xmp"] = xmp.encode("utf-8")
    elif isinstance(xmp, (bytearray, memoryview)):
        info["xmp"] = bytes(xmp)
    # Decoded pixels are upright whatever EXIF/XMP is passed with them (e.g. ``exif=f.info["exif"]``, which
    # open_heif leaves untouched): writing that orientation as irot/imir would rotate them a second time.
    if image.pending_orientation:
        orientation = get_orientation(info) or 1
    else:
        orientation = 1
        if get_orientation(info):
            set_orientation(info)  # pixels are upright already: don't let EXIF rotate them again
    return info, orientation


def _primary_index(images: list[HeifImage], requested: Any) -> int:
    if requested is not None:
        index = int(requested)
        return len(images) - 1 if index == -1 or index >= len(images) else max(index, 0)
    primary = 0
    for i, image in enumerate(images):
        if image.info.get("primary"):
            primary = i
    return primary


def _count_items(jobs: list[_Job], tiles: list[int]) -> int:
    count = 0
    for job, tile in zip(jobs, tiles, strict=True):
        width, height = job.image.size
        count += 1 + (-(-width // tile)) * (-(-height // tile)) if tile else 1
        count += 2 * len(_thumbnail_boxes(job.info, job.image.size))
        count += 1 if job.info.get("exif") else 0
        count += 1 if job.info.get("xmp") else 0
        count += len([m for m in job.info.get("metadata") or [] if m])
        if job.image.has_alpha:
            count += 1
    return count


def encode_images(images: list[HeifImage], params: dict[str, Any], per_image: dict[int, dict[str, Any]]) -> bytes:
    """Encode ``images`` into the bytes of one HEIF/AVIF file.

    ``per_image`` maps an image index to the info overrides for that image.
    """
    if not images:
        raise ValueError("Cannot write file with no images as HEIF.")
    fmt = params.get("format") or "HEIF"
    save_to_12bit = bool(params.get("save_to_12bit", options.SAVE_HDR_TO_12_BIT))
    primary = _primary_index(images, params.get("primary_index"))
    jobs = []
    for i, image in enumerate(images):
        info, orientation = _prepare_info(image, per_image.get(i, {}))
        jobs.append(_Job(image, info, orientation, _job_chroma(params, info)))
    tiles = []
    for job in jobs:
        tile = _effective_tile(job.image, job.info, params.get("tile_size"), _compression(fmt)[0], job.chroma)
        if tile:
            width, height = job.image.size
            if -(-width // tile) > _MAX_GRID or -(-height // tile) > _MAX_GRID:
                raise ValueError("Grid image cannot have more than 256 rows or columns, increase `tile_size`.")
        tiles.append(tile)
    if _count_items(jobs, tiles) > _MAX_ITEMS:
        raise ValueError(
            f"The file would have more than {_MAX_ITEMS} items (tiles, thumbnails, metadata), which readers refuse;"
            " increase `tile_size` or write fewer images."
        )
    ctx = _lib.Context()
    encoder = _Encoder(ctx.ptr, fmt, params)
    keep: list[Any] = []
    for i, (job, tile) in enumerate(zip(jobs, tiles, strict=True)):
        if job.image.size[0] <= 0 or job.image.size[1] <= 0:
            raise ValueError("Empty images are not supported.")
        handle = _encode_one(ctx.ptr, encoder, job, tile, save_to_12bit, keep)
        if i == primary:
            check(lib.heif_context_set_primary_image(ctx.ptr, handle))
    out_data = ffi.new("uint8_t**")
    out_size = ffi.new("size_t*")
    err = lib.hk_write_to_memory(ctx.ptr, out_data, out_size)
    check(err, "writing the file")
    if out_data[0] == ffi.NULL:
        raise EncoderError("libheif wrote an empty file")
    try:
        return bytes(ffi.buffer(out_data[0], out_size[0]))
    finally:
        lib.hk_free(out_data[0])


def _create_temp(directory: str, name: str) -> tuple[str, int]:
    """A new file next to the target, created with mode 0o666 less the umask (as ``open()`` would)."""
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.heifkit-tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {directory}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _open_for_writing(path: str) -> int:
    """Open an existing file for writing without truncating it: fails exactly where ``open(path, "wb")`` would."""
    return os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))


def _give_back(fd: int, st: os.stat_result) -> bool:
    """Give a new file the owner and group of the file it replaces; False when that is not allowed."""
    if (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid()):
        return True
    try:
        os.fchown(fd, st.st_uid, st.st_gid)
    except PermissionError:
        return False
    return True


def _target(fp: Any) -> tuple[str, str | None, os.stat_result | None]:
    """The path as given, the path to rename a new file over (None: none), and the target's stat.

    The kernel follows symlinks for ``stat``/``open``, magic links such as ``/dev/stdout`` and
    ``/proc/self/fd/N`` too; ``realpath`` names the file a plain symlink points to (so that the target is
    replaced, not the link, like ``open()``), but a magic link has no such name: None. The stat is None
    when nothing exists there yet.
    """
    given = os.fsdecode(os.fspath(fp))
    resolved = os.path.realpath(given)
    try:
        st = os.stat(given)
    except FileNotFoundError:
        return given, resolved, None
    try:
        same = os.path.samestat(st, os.stat(resolved))
    except OSError:
        same = False
    return given, resolved if same else None, st


def check_target(fp: Any) -> None:
    """Raise, before any encoding, the error ``open(fp, "wb")`` would raise for a path (streams: nothing).

    A directory is an ``IsADirectoryError``; a read-only file or a missing or unwritable folder a
    ``PermissionError``/``FileNotFoundError``. As for ``open()``, the permission checks are the operating
    system's, so root may write read-only files.
    """
    if not isinstance(fp, (str, os.PathLike)):
        return
    given, path, st = _target(fp)
    name = os.fsdecode(given)
    if st is None:
        directory = os.path.dirname(path or given) or os.curdir
        if not os.path.isdir(directory):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        kwargs = {"effective_ids": True} if os.access in os.supports_effective_ids else {}
        if not os.access(directory, os.W_OK | os.X_OK, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
    elif stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    elif stat.S_ISREG(st.st_mode):
        os.close(_open_for_writing(given))
    # FIFOs and devices: opening them could block (a FIFO without reader) or have effects; write_output opens them.


def write_output(fp: Any, data: bytes) -> None:
    """Write ``data`` to a path or to a binary stream.

    A path that names a regular file (or nothing yet) gets a temporary file in the same folder, renamed over
    it: the target is replaced atomically and keeps its permission bits (and owner, where allowed). The file
    is written in place instead (truncated, then written: not atomic) when a rename would lose it: the folder
    is not writable, the file has other hard links, its owner cannot be given back, or it is reached through
    a magic link to a file without a name (``/proc/self/fd/N``). FIFOs, devices and other special files are
    opened and written like ``open(path, "wb")`` would. Symlinks are followed: the target is replaced, not the
    link. Where ``open(path, "wb")`` would fail (a read-only file for a non-root user, a directory), the same
    error is raised and the file is untouched.
    """
    if not isinstance(fp, (str, os.PathLike)):
        if not hasattr(fp, "write"):
            raise TypeError("`fp` must be a path to file or an object with `write` method.")
        fp.write(data)
        return
    given, path, st = _target(fp)
    name = os.fsdecode(given)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    if st is not None and not stat.S_ISREG(st.st_mode):
        with open(given, "wb") as special:
            special.write(data)
        return
    if st is None:
        new = path or given  # nothing there yet: realpath names where to create it
        try:
            tmp, tmp_fd = _create_temp(*os.path.split(new))
        except OSError as exc:  # name the target, as open() would, not the temporary file
            raise type(exc)(exc.errno, exc.strerror, name) from None
        _replace(tmp, tmp_fd, new, data, None)
        return
    fd = _open_for_writing(given)  # the permission check of open(path, "wb"), with the file left as it is
    try:
        if path is None or st.st_nlink > 1:
            _write_in_place(fd, data)
            return
        try:
            tmp, tmp_fd = _create_temp(*os.path.split(path))
        except PermissionError:  # a writable file in a read-only folder
            _write_in_place(fd, data)
            return
        if not _give_back(tmp_fd, st):
            os.close(tmp_fd)
            os.unlink(tmp)
            _write_in_place(fd, data)
            return
        _replace(tmp, tmp_fd, path, data, st)
    finally:
        os.close(fd)


def _write_in_place(fd: int, data: bytes) -> None:
    os.ftruncate(fd, 0)
    _write_all(fd, data)


def _replace(tmp: str, tmp_fd: int, path: str, data: bytes, st: os.stat_result | None) -> None:
    """Write the temporary file, give it the replaced file's permission bits, and rename it over ``path``."""
    try:
        try:
            _write_all(tmp_fd, data)
            if st is not None:
                os.fchmod(tmp_fd, stat.S_IMODE(st.st_mode))  # after fchown, which may clear set-id bits
        finally:
            os.close(tmp_fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _split_params(kwargs: dict[str, Any], strict: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    if "image_orientation" in kwargs:
        raise TypeError("image_orientation is derived from EXIF/XMP and cannot be passed to save()")
    file_params = {k: v for k, v in kwargs.items() if k in _FILE_KEYS}
    image_params = {k: v for k, v in kwargs.items() if k in _PER_IMAGE_KEYS}
    if strict:
        unknown = set(kwargs) - _FILE_KEYS - _PER_IMAGE_KEYS
        if unknown:
            raise TypeError(f"unexpected save parameter(s): {', '.join(sorted(unknown))}")
    return file_params, image_params


def _as_heif_images(items: Any) -> list[HeifImage]:
    result: list[HeifImage] = []
    for item in items or []:
        if isinstance(item, HeifImage):
            result.append(item)
        elif isinstance(item, HeifFile):
            result.extend(item)
        elif hasattr(item, "mode") and hasattr(item, "tobytes"):  # a Pillow image
            result.append(image_from_pillow(item))
        else:
            raise TypeError(f"append_images takes HeifImage, HeifFile or Pillow images, not {type(item).__name__}")
    return result


# file name extension -> format, when ``format`` is not given to HeifFile.save
_EXTENSION_FORMATS = {
    ".avif": "AVIF",
    ".avifs": "AVIF",
    ".heic": "HEIF",
    ".heics": "HEIF",
    ".heif": "HEIF",
    ".heifs": "HEIF",
    ".hif": "HEIF",
}


def _format_for(fp: Any) -> str:
    """The format a path's extension names (AVIF for .avif/.avifs); HEIF for other names and streams."""
    if isinstance(fp, (str, os.PathLike)):
        extension = os.path.splitext(os.fsdecode(os.fspath(fp)))[1].lower()
        return _EXTENSION_FORMATS.get(extension, "HEIF")
    return "HEIF"


def save_heif_file(heif_file: HeifFile, fp: Any, **kwargs: Any) -> None:
    """``HeifFile.save``: check the target, encode everything, then write (see :meth:`HeifFile.save`).

    Without ``format``, a path ending in ``.avif``/``.avifs`` is written as AVIF, anything else as HEIF.
    """
    if not isinstance(fp, (str, os.PathLike)) and not hasattr(fp, "write"):
        raise TypeError("`fp` must be a path to file or an object with `write` method.")
    params, image_params = _split_params(kwargs, strict=True)
    if params.get("format") is None:
        params["format"] = _format_for(fp)
    images = list(heif_file) + _as_heif_images(params.get("append_images"))
    if not params.get("save_all", True):
        images = images[:1]
    if not images:
        raise ValueError("Cannot write file with no images as HEIF.")
    primary = _primary_index(images, params.get("primary_index"))
    check_target(fp)
    data = encode_images(images, params, {primary: image_params})
    write_output(fp, data)


def save_pillow(im: Any, fp: Any, fmt: str, save_all: bool) -> None:
    """The Pillow save hook: ``im.encoderinfo`` holds the parameters; they apply to every frame.

    Pillow has opened (and truncated) the target before this runs: a save that fails here leaves an empty
    file behind, which only ``HeifFile.save`` avoids (see docs/saving.md).
    """
    from PIL import ImageSequence

    kwargs = dict(getattr(im, "encoderinfo", {}) or {})
    params, image_params = _split_params(kwargs, strict=False)
    params["format"] = fmt
    frames: list[Any] = []
    current = im.tell() if hasattr(im, "tell") else 0
    try:
        if save_all:
            for source in [im, *(kwargs.get("append_images") or [])]:
                for frame in ImageSequence.Iterator(source):
                    frames.append(_frame_image(frame))
        else:
            frames.append(_frame_image(im))
    finally:
        if hasattr(im, "seek") and im.tell() != current:
            im.seek(current)
    primary = params.get("primary_index")
    if primary is None and not any(f.info.get("primary") for f in frames):
        params["primary_index"] = 0
    data = encode_images(frames, params, {i: image_params for i in range(len(frames))})
    fp.write(data)


def _frame_image(frame: Any) -> HeifImage:
    image = image_from_pillow(frame)
    if frame.info.get("primary") is not None:
        image.info["primary"] = bool(frame.info["primary"])
    return image
