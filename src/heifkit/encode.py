"""Encode orchestration: images (raw bytes, Pillow, HEIF) -> libheif images -> a HEIF/AVIF file.

First everything that can fail is checked, before a pixel is copied: the parameters (a wrong type is a
TypeError, a wrong value a ValueError), the size of every coded image against the codec's limits, and a
target path as ``open(path, "wb")`` would check it. Then, per image: the pixels are copied once into a
libheif image at the output bit depth, the colour profile and pixel aspect ratio are attached, libheif
encodes it (as one image or a grid of tiles), then the HDR metadata, EXIF/XMP/other metadata and
thumbnails are attached to the encoded item.

Orientation: HEIF stores it as ``irot``/``imir``. Images made from bytes or Pillow images are written
with the EXIF/XMP orientation as ``irot``/``imir`` and their pixels as given, so readers show them
upright exactly once. Images decoded from a HEIF/AVIF file are already upright: they are written
without a transform and with their EXIF/XMP orientation reset to 1.
"""

from __future__ import annotations

import copy
import errno
import numbers
import operator
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
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
    ycbcr: bool = False  # Y, Cb, Cr samples (BT.601 full range, as Pillow's YCbCr mode) instead of R, G, B


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

# Pillow's YCbCr, kept as it is on the Pillow ``save`` path only (see ``_pillow_mode``): not in MODES, so
# ``from_bytes`` and ``from_pillow`` never make a HeifImage in a mode that has no array layout.
_YCBCR = ModeInfo(3, 8, True, ycbcr=True)


def _mode_info(mode: str) -> ModeInfo:
    return _YCBCR if mode == "YCbCr" else MODES[mode]


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
# ``subsampling``: the JPEG-style names, and Pillow's JPEG integers (0, 1, 2) for the same; "keep"/-1 (Pillow's
# "as the source") mean what no value means here: the subsampling the image was read with, else 4:2:0.
_SUBSAMPLING: dict[Any, str | None] = {
    "4:4:4": "444",
    "4:2:2": "422",
    "4:2:0": "420",
    0: "444",
    1: "422",
    2: "420",
    "keep": None,
    -1: None,
}
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

# H.273 code points libheif knows: it writes others, but then drops the profile on read (pillow_heif
# cannot open such a file at all), so they are refused.
_NCLX_VALUES = {
    "color_primaries": frozenset([1, 2, *range(4, 13), 22]),
    "transfer_characteristics": frozenset([1, 2, *range(4, 19)]),
    "matrix_coefficients": frozenset([0, 1, 2, *range(4, 15)]),
}
_NO_RGB_CONVERSION = frozenset([11, 14])  # matrices libheif cannot convert RGB to (Y'D'zD'x, ICtCp)

# Size limits of a coded image (a whole image, a grid tile, a thumbnail, an alpha plane), measured with
# libheif 1.23.6, x265 4.2 and aom 3.15 (see docs/saving.md):
# - HEVC: libheif decodes pictures up to 65535 px per side after x265 pads them to its minimum coding unit
#   (16 px with speed=10, else 8): 65520 is the largest size every setting writes readably (x265 itself
#   writes larger ones that nothing here can read back).
# - x265 gets 16 px CTUs from libheif for images under 32 px on a side, and HEVC levels allow those only up
#   to 4222 px on the other side (4208 after padding); the placebo preset (speed=0) refuses them at all.
# - AV1 signals at most 65536 px per side (aom: "g_w out of range").
# - libheif refuses images of more than heif_security_limits.max_image_size_pixels (2**30) when it converts
#   colour for encoding, and when it decodes.
_HEVC_MAX_SIDE = 65520
_X265_SMALL_CTU_BELOW = 32
_X265_SMALL_CTU_MAX_SIDE = 4208
_AV1_MAX_SIDE = 65536


# ---------------------------------------------------------------------------------------------------
# checking save parameters: a wrong type is a TypeError, a wrong value a ValueError, both raised before
# anything is encoded or written


def _type_name(value: Any) -> str:
    return type(value).__name__


def _int(value: Any, name: str) -> int:
    """``value`` as an int (numpy integers too), refusing bools, floats and strings."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, not {_type_name(value)}") from None


def _int_in(value: Any, name: str, low: int, high: int) -> int:
    number = _int(value, name)
    if not low <= number <= high:
        raise ValueError(f"invalid {name} {number}: must be {low}..{high}")
    return number


def _flag(value: Any, name: str) -> bool:
    """A yes/no parameter: bool, or the ints 0 and 1."""
    if isinstance(value, bool):
        return value
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be True or False, not {_type_name(value)}") from None
    if number not in (0, 1):
        raise ValueError(f"invalid {name} {value!r}: use True or False")
    return bool(number)


def _is_bytes(value: Any) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


def _check_file_params(params: dict[str, Any]) -> None:
    """Check the parameters that apply to the whole file (see :data:`_FILE_KEYS`)."""
    fmt = params.get("format")
    if fmt is not None:
        if not isinstance(fmt, str):
            raise TypeError(f"format must be a str ('HEIF' or 'AVIF'), not {_type_name(fmt)}")
        _compression(fmt)
    quality = params.get("quality", options.QUALITY)
    if quality is not None and _int(quality, "quality") not in range(-1, 101):
        raise ValueError(f"invalid quality {quality!r}: use None, -1 (lossless) or 0..100")
    _chroma_value(params)
    if params.get("speed") is not None:
        _int_in(params["speed"], "speed", 0, 10)
    enc_params = params.get("enc_params")
    if enc_params is not None:
        if not isinstance(enc_params, Mapping):
            raise TypeError(f"enc_params must be a dict of encoder parameters, not {_type_name(enc_params)}")
        for key, value in enc_params.items():
            if not isinstance(key, str):
                raise TypeError(f"enc_params keys must be str, not {_type_name(key)} ({key!r})")
            if not isinstance(value, (str, numbers.Real)):  # numbers: numpy's too
                raise TypeError(f"enc_params[{key!r}] must be a str, int, float or bool, not {_type_name(value)}")
    tile_size = params.get("tile_size")
    if tile_size is not None and _int(tile_size, "tile_size") < 0:
        raise ValueError(f"invalid tile_size {tile_size}: use 0 (no grid) or a positive tile size in pixels")
    for key in ("save_all", "save_to_12bit"):
        if params.get(key) is not None:
            _flag(params[key], key)
    if params.get("primary_index") is not None:
        _int(params["primary_index"], "primary_index")
    encoder = params.get("encoder")
    if encoder is not None and not isinstance(encoder, str):
        raise TypeError(f"encoder must be a str (an id from libheif_info()['encoders']), not {_type_name(encoder)}")


def _check_mapping(value: Any, name: str, keys: tuple[str, ...]) -> Mapping[str, Any] | None:
    """A dict parameter with the given keys (None or an empty mapping: none)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict with {', '.join(keys)}, not {_type_name(value)}")
    if not value:
        return None
    missing = [k for k in keys if k not in value]
    if missing:
        raise ValueError(f"{name} is missing {', '.join(missing)} (it needs {', '.join(keys)})")
    return value


def _check_nclx_value(key: str, value: Any) -> None:
    if key == "full_range_flag":
        _flag(value, key)
        return
    number = _int(value, key)
    if number not in _NCLX_VALUES[key]:
        known = sorted(_NCLX_VALUES[key])
        raise ValueError(f"invalid {key} {number}: not an H.273 value libheif supports ({known})")


def _check_image_info(info: dict[str, Any]) -> None:
    """Check the per-image values (see :data:`_PER_IMAGE_KEYS`) of one image's ``info`` with overrides."""
    exif = info.get("exif")
    if exif is not None and not _is_bytes(exif):
        from PIL import Image

        if not isinstance(exif, Image.Exif):
            raise TypeError(f"exif must be bytes or PIL.Image.Exif, not {_type_name(exif)}")
    xmp = info.get("xmp")
    if xmp is not None and not _is_bytes(xmp) and not isinstance(xmp, str):
        raise TypeError(f"xmp must be bytes or str, not {_type_name(xmp)}")
    icc = info.get("icc_profile")
    if icc is not None and not _is_bytes(icc):
        raise TypeError(f"icc_profile must be bytes, not {_type_name(icc)}")
    kind = info.get("icc_profile_type")
    if kind is not None:
        if not isinstance(kind, str):
            raise TypeError(f"icc_profile_type must be a str ('prof' or 'rICC'), not {_type_name(kind)}")
        if kind not in ("prof", "rICC"):
            raise ValueError(f"invalid icc_profile_type {kind!r}: use 'prof' or 'rICC'")
    nclx = _check_mapping(info.get("nclx_profile"), "nclx_profile", _NCLX_KEYS)
    for key in _NCLX_KEYS:
        if nclx is not None:
            _check_nclx_value(key, nclx[key])
        if info.get(key) is not None:
            _check_nclx_value(key, info[key])
    if info.get("save_nclx_profile") is not None:
        _flag(info["save_nclx_profile"], "save_nclx_profile")
    thumbnails = info.get("thumbnails")
    if thumbnails is not None:
        if not isinstance(thumbnails, (list, tuple)):
            raise TypeError(f"thumbnails must be a list of box sizes (ints), not {_type_name(thumbnails)}")
        for box in thumbnails:
            _int(box, "a thumbnail box size")
    metadata = info.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, (list, tuple)):
            raise TypeError(f"metadata must be a list of dicts, not {_type_name(metadata)}")
        for block in metadata:
            _check_metadata_block(block)
    pasp = info.get("pixel_aspect_ratio")
    if pasp is not None:
        if not isinstance(pasp, (list, tuple)):
            raise TypeError(f"pixel_aspect_ratio must be a (h_spacing, v_spacing) tuple, not {_type_name(pasp)}")
        if len(pasp) != 2:
            raise ValueError(f"invalid pixel_aspect_ratio {pasp!r}: use (h_spacing, v_spacing)")
        for value in pasp:
            if not 1 <= _int(value, "pixel_aspect_ratio values") <= _U32:
                raise ValueError(f"invalid pixel_aspect_ratio {tuple(pasp)!r}: both values must be 1..{_U32}")
    _check_hdr(info)
    bits = info.get("bit_depth")
    if bits is not None and _int(bits, "bit_depth") not in (8, 10, 12, 16):
        raise ValueError(f"invalid bit_depth {bits}: use 8, 10, 12 (or 16 for 10/12 per options)")


def _check_metadata_block(block: Any) -> None:
    if block is None:  # what the reader lists for a block it could not read
        return
    if not isinstance(block, Mapping):
        raise TypeError(f"metadata entries must be dicts with 'type' and 'data', not {_type_name(block)}")
    missing = [k for k in ("type", "data") if k not in block]
    if missing:
        raise ValueError(f"metadata entry is missing {', '.join(missing)}: {dict(block)!r:.80}")
    kind, data, content_type = block["type"], block["data"], block.get("content_type")
    if not isinstance(kind, str):
        raise TypeError(f"metadata 'type' must be a str, not {_type_name(kind)}")
    if len(kind.encode("utf-8")) != 4:
        raise ValueError(f"invalid metadata item_type {kind!r}: an item type has 4 characters, e.g. 'iptc'")
    if not _is_bytes(data):
        raise TypeError(f"metadata 'data' must be bytes, not {_type_name(data)}")
    if content_type is not None and not isinstance(content_type, str):
        raise TypeError(f"metadata 'content_type' must be a str, not {_type_name(content_type)}")


_U16 = 2**16 - 1
_U32 = 2**32 - 1


def _check_hdr(info: dict[str, Any]) -> None:
    clli = _check_mapping(
        info.get("content_light_level"),
        "content_light_level",
        ("max_content_light_level", "max_pic_average_light_level"),
    )
    if clli is not None:
        for key in ("max_content_light_level", "max_pic_average_light_level"):
            _int_in(clli[key], f"content_light_level[{key!r}]", 0, _U16)
    mdcv_keys = (
        "display_primaries_x",
        "display_primaries_y",
        "white_point_x",
        "white_point_y",
        "max_display_mastering_luminance",
        "min_display_mastering_luminance",
    )
    mdcv = _check_mapping(info.get("mastering_display_colour_volume"), "mastering_display_colour_volume", mdcv_keys)
    if mdcv is not None:
        for key in ("display_primaries_x", "display_primaries_y"):
            values = mdcv[key]
            if not isinstance(values, (list, tuple)):
                raise TypeError(f"mastering_display_colour_volume[{key!r}] must be 3 ints, not {_type_name(values)}")
            if len(values) != 3:
                raise ValueError(f"mastering_display_colour_volume[{key!r}] must be 3 ints, got {len(values)}")
            for value in values:
                _int_in(value, f"mastering_display_colour_volume[{key!r}]", 0, _U16)
        for key in ("white_point_x", "white_point_y"):
            _int_in(mdcv[key], f"mastering_display_colour_volume[{key!r}]", 0, _U16)
        for key in ("max_display_mastering_luminance", "min_display_mastering_luminance"):
            _int_in(mdcv[key], f"mastering_display_colour_volume[{key!r}]", 0, _U32)
    amve = _check_mapping(
        info.get("ambient_viewing_environment"),
        "ambient_viewing_environment",
        ("ambient_illumination", "ambient_light_x", "ambient_light_y"),
    )
    if amve is not None:
        _int_in(amve["ambient_illumination"], "ambient_viewing_environment['ambient_illumination']", 0, _U32)
        for key in ("ambient_light_x", "ambient_light_y"):
            _int_in(amve[key], f"ambient_viewing_environment[{key!r}]", 0, _U16)


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


def _pillow_target(img: Any, keep_ycbcr: bool = False) -> str:
    """The mode a Pillow image is written in (per :data:`PILLOW_CONVERSIONS`), without converting it.

    ``keep_ycbcr`` (Pillow's ``save``): a YCbCr image stays YCbCr and its planes are written as they are,
    without the precision lost in a round trip through RGB.
    """
    mode = img.mode
    if mode == "YCbCr" and keep_ycbcr:
        return mode
    if mode not in PILLOW_CONVERSIONS:
        raise ValueError(
            f"Pillow mode {mode!r} cannot be saved as HEIF/AVIF; convert it first "
            f"(supported: {', '.join(sorted(PILLOW_CONVERSIONS))})"
        )
    if mode == "P":
        return "RGBA" if img.info.get("transparency") is not None or img.palette.mode == "RGBA" else "RGB"
    return PILLOW_CONVERSIONS[mode] or mode


def _pillow_mode(img: Any, keep_ycbcr: bool = False) -> tuple[Any, str]:
    """``img`` converted to its :func:`_pillow_target` mode, and that mode."""
    target = _pillow_target(img, keep_ycbcr)
    if target == img.mode:
        return img, target
    if target == "I;16":
        if img.mode in ("I;16L", "I;16N"):
            return img, "I;16"  # the same little-endian samples on the hosts heifkit supports
        if img.mode == "I;16B":
            return img.convert("I").convert("I;16"), "I;16"  # Pillow's direct I;16B -> I;16 is lossy
        return img.convert("I;16"), "I;16"  # "I": clipped to 0..65535 by Pillow
    return img.convert(target), target


def image_from_pillow(img: Any) -> HeifImage:
    """A ``HeifImage`` copied from a Pillow image, mode converted per :data:`PILLOW_CONVERSIONS`.

    ``info`` is carried over (EXIF, XMP, ICC, NCLX, thumbnails, metadata, pixel aspect ratio, HDR
    metadata, bit depth). The EXIF/XMP orientation is kept and written as ``irot``/``imir``; until then
    ``to_pillow()`` shows the image upright.
    """
    return _image_from_pillow(img, keep_ycbcr=False)


def _image_from_pillow(img: Any, keep_ycbcr: bool) -> HeifImage:
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ValueError("Empty images are not supported.")
    img.load()
    converted, mode = _pillow_mode(img, keep_ycbcr)
    minfo = _mode_info(mode)
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
    """``"420"``/``"422"``/``"444"`` from ``subsampling`` (which wins) or ``chroma``; None when neither says."""
    subsampling = params.get("subsampling")
    if subsampling is not None:
        key = subsampling if isinstance(subsampling, str) else _int(subsampling, "subsampling")
        if key not in _SUBSAMPLING:
            raise ValueError(
                f"invalid subsampling {subsampling!r}: use '4:4:4', '4:2:2' or '4:2:0' (or Pillow's JPEG values "
                "0, 1, 2, -1/'keep')"
            )
        if _SUBSAMPLING[key] is not None:
            return _SUBSAMPLING[key]
    chroma = params.get("chroma")
    if chroma is None:
        return None
    text = chroma if isinstance(chroma, str) else str(_int(chroma, "chroma"))
    if text not in ("420", "422", "444"):
        raise ValueError(f"invalid chroma {chroma!r}: use 420, 422 or 444")
    return text


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
        quality = params.get("quality", options.QUALITY)  # checked by _check_file_params
        self.lossless = quality is not None and int(quality) == -1
        if quality is not None:
            if self.lossless:
                check(lib.heif_encoder_set_lossless(self.ptr, 1))
            else:
                check(lib.heif_encoder_set_lossy_quality(self.ptr, int(quality)))
        self.chroma: str | None = None  # what the encoder is set to (None: its default, 4:2:0)
        speed = params.get("speed")
        if speed is not None:
            self._set_speed(int(speed))
        for key, value in (params.get("enc_params") or {}).items():
            self.set(key, value)

    def use_chroma(self, chroma: str | None) -> None:
        """Switch chroma subsampling before encoding an image (None: the encoder's default 4:2:0)."""
        value = chroma or "420"
        if value != (self.chroma or "420"):
            self.set("chroma", value)
        self.chroma = value

    def set(self, key: str, value: Any) -> None:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)  # libheif's boolean words
        check(lib.heif_encoder_set_parameter(self.ptr, key.encode(), text.encode()), f"encoder parameter {key!r}")

    def _set_speed(self, speed: int) -> None:
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
    bits = _mode_info(mode).bits if requested is None else int(requested)
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
    minfo = _YCBCR if image.mode == "YCbCr" else MODES.get(image.mode)
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
    if minfo.ycbcr:
        out = ffi.new("heif_image**")
        check(lib.heif_image_create(width, height, lib.heif_colorspace_YCbCr, lib.heif_chroma_444, out))
        img = _lib.owned_image(out[0])
        for channel in (lib.heif_channel_Y, lib.heif_channel_Cb, lib.heif_channel_Cr):
            check(lib.heif_image_add_plane(img, channel, width, height, bits))
        return img
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
    if minfo.ycbcr:
        return [(int(lib.heif_channel_Y), 0, 1), (int(lib.heif_channel_Cb), 1, 1), (int(lib.heif_channel_Cr), 2, 1)]
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
    for key in _NCLX_KEYS:  # values checked by _check_image_info
        if values.get(key) is not None:
            value = int(values[key])
            if key == "full_range_flag":
                profile.full_range_flag = 1 if value else 0
            else:
                setattr(profile, key, value)
    return profile


def _output_nclx(info: dict[str, Any]) -> dict[str, int] | None:
    """The four NCLX values written for an image, or None when no NCLX profile is written."""
    save_nclx = info.get("save_nclx_profile")
    if save_nclx is None:
        save_nclx = options.SAVE_NCLX_PROFILE
    explicit = {k: int(info[k]) for k in _NCLX_KEYS if info.get(k) is not None}
    if not explicit and not save_nclx:
        return None
    # Explicit values override the image's own profile (new images: sRGB), so the lossless recipe
    # (matrix_coefficients=0) keeps a P3 or PQ image's primaries and transfer.
    base = info.get("nclx_profile") or _SRGB
    return {**{k: int(base[k]) for k in _NCLX_KEYS}, **explicit}


def _encoding_options(info: dict[str, Any], orientation: int, keep: list[Any]) -> Any:
    raw = lib.heif_encoding_options_alloc()
    if raw == ffi.NULL:
        raise MemoryError("heif_encoding_options_alloc failed")
    opts = ffi.gc(raw, lib.heif_encoding_options_free)
    opts.image_orientation = orientation
    nclx = _output_nclx(info)
    if nclx is None:
        opts.macOS_compatibility_workaround_no_nclx_profile = 1
        return opts
    profile = _nclx(nclx)
    keep.append(profile)
    opts.output_nclx_profile = profile
    return opts


def _apply_image_properties(img: Any, info: dict[str, Any], nclx: dict[str, int] | None = None) -> None:
    """Attach ICC, NCLX and pixel aspect ratio to a new libheif image.

    ``nclx`` describes the samples when they are not RGB (YCbCr planes) and replaces the image's profile.
    """
    icc = info.get("icc_profile")
    if icc is not None and len(icc) > 0:
        kind = info.get("icc_profile_type") or "prof"
        data = bytes(icc)
        check(lib.heif_image_set_raw_color_profile(img, kind.encode(), data, len(data)))
    nclx = nclx or info.get("nclx_profile")
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
    """The thumbnail boxes to encode: boxes outside 3 < box < max(size) are dropped (as pillow_heif does)."""
    boxes = [operator.index(b) for b in info.get("thumbnails") or []]
    return [b for b in boxes if 3 < b < max(size)]


def _thumbnail_size(size: tuple[int, int], box: int) -> tuple[int, int]:
    """The size libheif gives the thumbnail of an image in a ``box`` px bounding box (even, rounded down)."""
    width, height = size
    if max(width, height) * box > 2**31 - 1:  # libheif computes this in a C int
        raise ValueError(f"thumbnail box {box} is too large for a {width}x{height} image")
    if width > height:
        width, height = box, height * box // width
    else:
        width, height = width * box // height, box
    return width & ~1, height & ~1


def _effective_tile(image: HeifImage, info: dict[str, Any], tile_size: Any, fmt: str, chroma: str | None) -> int:
    if tile_size is None:
        tiling = info.get("tiling") or {}
        tile_size = tiling.get("tile_width") or options.GRID_TILE_SIZE
    tile = operator.index(tile_size or 0)
    if tile <= 0:
        return 0
    width, height = image.size
    if width <= tile and height <= tile:
        return 0
    minfo = _mode_info(image.mode)
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


def _ycbcr_nclx(info: dict[str, Any], bits: int) -> dict[str, int] | None:
    """The NCLX profile that describes Pillow YCbCr planes, when they can be written as they are.

    Pillow's YCbCr is JPEG's: BT.601 (matrix 6, the same as 5) at full range, 8 bits. When the profile
    written says so (or no profile is written: readers then assume BT.601 full range), libheif only
    subsamples the chroma planes. Any other matrix or range (e.g. ``matrix_coefficients=0``, the lossless
    recipe), or another bit depth, needs the RGB pixels: None.
    """
    written = _output_nclx(info)
    if bits != 8:
        return None
    if written is None:
        return dict(_SRGB)
    if written["matrix_coefficients"] not in (5, 6) or not written["full_range_flag"]:
        return None
    return written


def _ycbcr_to_rgb(image: HeifImage, buf: Any, stride: int) -> tuple[Any, int]:
    """Pillow's RGB conversion of YCbCr pixels (the exact RGB that ``im.convert("RGB")`` gives)."""
    from PIL import Image

    width, height = image.size
    raw = bytes(ffi.buffer(buf))
    raw += bytes(max(0, stride * height - len(raw)))  # the last row need not be padded to the stride
    rgb = Image.frombytes("YCbCr", (width, height), raw, "raw", "YCbCr", stride).convert("RGB").tobytes()
    return ffi.from_buffer(rgb), width * 3


def _encode_one(ctx: Any, encoder: _Encoder, job: _Job, tile: int, save_to_12bit: bool, keep: list[Any]) -> Any:
    image, info = job.image, job.info
    encoder.use_chroma(job.chroma)
    buf, stride = _validate_pixels(image)
    minfo = _mode_info(image.mode)
    bits = _output_bits(image.mode, info, save_to_12bit)
    sample_nclx = None
    if minfo.ycbcr:
        sample_nclx = _ycbcr_nclx(info, bits)
        if sample_nclx is None:
            buf, stride = _ycbcr_to_rgb(image, buf, stride)
            minfo = MODES["RGB"]
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
                _apply_image_properties(tile_img, info, sample_nclx)
                check(lib.heif_context_add_image_tile(ctx, handle, tx, ty, tile_img, encoder.ptr))
    else:
        full = _new_heif_image(width, height, minfo, bits)
        _fill(full, minfo, bits, buf, stride, 0, 0, width, height)
        if image.premultiplied_alpha:
            lib.heif_image_set_premultiplied_alpha(full, 1)
        _apply_image_properties(full, info, sample_nclx)
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
            _apply_image_properties(full, info, sample_nclx)
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
    _check_image_info(info)
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
    """``primary_index`` (negative counts from the end; past the end is the last image), else the flags."""
    if requested is not None:
        index, count = _int(requested, "primary_index"), len(images)
        if index >= count:
            return count - 1
        if index < -count:
            raise ValueError(f"primary_index {index} is out of range for {count} images")
        return index % count
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


@dataclass(frozen=True)
class _Codec:
    """What limits the coded images: the format, whether x265 encodes (and with its placebo preset)."""

    fmt: str
    x265: bool
    placebo: bool
    max_pixels: int  # libheif's security limit (0: none)


def _codec(params: dict[str, Any]) -> _Codec:
    fmt, compression = _compression(params.get("format") or "HEIF")
    encoder = params.get("encoder") or options.PREFERRED_ENCODER.get(fmt, "")
    if not encoder:
        available = _lib._encoders(compression)
        encoder = available[0][0] if available else ""
    enc_params = params.get("enc_params") or {}
    # enc_params are applied after speed, so their preset wins
    preset = str(enc_params["preset"]) if "preset" in enc_params else None
    placebo = preset == "placebo" if preset is not None else params.get("speed") == 0
    limits = lib.heif_get_global_security_limits()
    return _Codec(fmt, encoder == "x265", fmt == "HEIF" and placebo, int(limits.max_image_size_pixels))


def _size_problem(width: int, height: int, codec: _Codec) -> str | None:
    """Why ``codec`` cannot write a coded image (image, tile, thumbnail) of this size, or None."""
    if codec.fmt == "AVIF":
        if max(width, height) > _AV1_MAX_SIDE:
            return f"AV1 images are at most {_AV1_MAX_SIDE} pixels wide and high"
    else:
        if max(width, height) > _HEVC_MAX_SIDE:
            return f"HEVC images are at most {_HEVC_MAX_SIDE} pixels wide and high (libheif cannot read larger ones)"
        if codec.x265 and min(width, height) < _X265_SMALL_CTU_BELOW:
            if codec.placebo:
                return (
                    f"x265's placebo preset (speed=0) cannot encode images under {_X265_SMALL_CTU_BELOW} pixels "
                    "on a side; use speed=1 or more"
                )
            if max(width, height) > _X265_SMALL_CTU_MAX_SIDE:
                return (
                    f"x265 cannot encode an image under {_X265_SMALL_CTU_BELOW} pixels on one side and over "
                    f"{_X265_SMALL_CTU_MAX_SIDE} on the other"
                )
    if codec.max_pixels and width * height > codec.max_pixels:
        return f"libheif encodes at most {codec.max_pixels} pixels per image (its security limit)"
    return None


def _grid_hint(job: _Job, codec: _Codec) -> str:
    """Advice to write an image too big for one coded image as a grid, when a grid can hold it."""
    width, height = job.image.size
    tile = 512  # iPhone-like tiles, doubled until the grid fits in the column, row and item limits
    while -(-max(width, height) // tile) > _MAX_GRID or (-(-width // tile)) * (-(-height // tile)) >= _MAX_ITEMS:
        tile *= 2
    if _mode_info(job.image.mode).channels in (2, 4):
        return "; images with alpha cannot be written as grids (libheif has no grid API with alpha)"
    if _effective_tile(job.image, job.info, tile, codec.fmt, job.chroma) == 0 or _size_problem(tile, tile, codec):
        return ""
    return f"; a grid can hold it, its tiles being encoded separately: use e.g. tile_size={tile}"


def _check_sizes(job: _Job, tile: int, codec: _Codec) -> None:
    """Refuse, before any pixel is copied, images whose coded images the codec or libheif cannot write."""
    width, height = job.image.size
    problem = _size_problem(tile, tile, codec) if tile else _size_problem(width, height, codec)
    if problem and tile:
        raise ValueError(f"cannot write a {width}x{height} image with tile_size={tile}: {problem}")
    if problem:
        raise ValueError(f"cannot write a {width}x{height} image as {codec.fmt}: {problem}{_grid_hint(job, codec)}")
    for box in _thumbnail_boxes(job.info, (width, height)):
        thumb = _thumbnail_size((width, height), box)
        if min(thumb) <= 0:
            raise ValueError(
                f"thumbnail {box} of a {width}x{height} image would be {thumb[0]}x{thumb[1]} pixels; "
                "use a larger box or no thumbnail"
            )
        problem = _size_problem(*thumb, codec)
        if problem:
            size = f"{thumb[0]}x{thumb[1]}"
            raise ValueError(f"cannot write the {size} thumbnail {box} of a {width}x{height} image: {problem}")


def _check_colour(job: _Job, codec: _Codec) -> None:
    """Refuse NCLX values the codec, or libheif's colour conversion, cannot write for this image."""
    nclx = _output_nclx(job.info)
    if nclx is None:
        return
    color = _mode_info(job.image.mode).color
    if codec.x265 and nclx["color_primaries"] == 22:
        raise ValueError("x265 cannot write color_primaries 22 (EBU Tech 3213); save as AVIF or use another value")
    matrix = nclx["matrix_coefficients"]
    if color and matrix in _NO_RGB_CONVERSION:
        raise ValueError(f"libheif cannot convert RGB to matrix_coefficients {matrix}")
    if color and matrix == 0 and codec.fmt == "AVIF" and job.chroma != "444":
        raise ValueError("AV1 stores RGB (matrix_coefficients=0) only with 4:4:4 chroma: add chroma=444")


def encode_images(images: list[HeifImage], params: dict[str, Any], per_image: dict[int, dict[str, Any]]) -> bytes:
    """Encode ``images`` into the bytes of one HEIF/AVIF file.

    ``per_image`` maps an image index to the info overrides for that image. Every parameter, size and
    limit is checked before the first pixel is copied or encoded.
    """
    if not images:
        raise ValueError("Cannot write file with no images as HEIF.")
    _check_file_params(params)
    codec = _codec(params)
    save_to_12bit = params.get("save_to_12bit")
    save_to_12bit = bool(options.SAVE_HDR_TO_12_BIT if save_to_12bit is None else save_to_12bit)
    primary = _primary_index(images, params.get("primary_index"))
    jobs = []
    for i, image in enumerate(images):
        if image.size[0] <= 0 or image.size[1] <= 0:
            raise ValueError("Empty images are not supported.")
        info, orientation = _prepare_info(image, per_image.get(i, {}))
        _output_bits(image.mode, info, save_to_12bit)
        jobs.append(_Job(image, info, orientation, _job_chroma(params, info)))
    tiles = []
    for job in jobs:
        tile = _effective_tile(job.image, job.info, params.get("tile_size"), codec.fmt, job.chroma)
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
    for job, tile in zip(jobs, tiles, strict=True):
        _check_sizes(job, tile, codec)
        _check_colour(job, codec)
    ctx = _lib.Context()
    encoder = _Encoder(ctx.ptr, codec.fmt, params)
    keep: list[Any] = []
    for i, (job, tile) in enumerate(zip(jobs, tiles, strict=True)):
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


def _as_heif_images(items: Any, check: Any = None) -> list[HeifImage]:
    """``append_images`` as HeifImages; ``check(pillow_image)`` runs before a Pillow image is copied."""
    if items is None:
        return []
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable) or hasattr(items, "tobytes"):
        raise TypeError(f"append_images must be a list of images, not {_type_name(items)}")
    result: list[HeifImage] = []
    for item in items:
        if isinstance(item, HeifImage):
            result.append(item)
        elif isinstance(item, HeifFile):
            result.extend(item)
        elif hasattr(item, "mode") and hasattr(item, "tobytes"):  # a Pillow image
            if check is not None:
                check(item)
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


def _check_pillow_size(img: Any, params: dict[str, Any], codec: _Codec, keep_ycbcr: bool) -> None:
    """Refuse a Pillow image that cannot be written, before its pixels are loaded and copied."""
    width, height = img.size
    if width <= 0 or height <= 0:
        return  # image_from_pillow says "Empty images are not supported."
    info = {k: img.info[k] for k in ("tiling", "chroma") if k in img.info}
    stub = HeifImage((width, height), _pillow_target(img, keep_ycbcr), info)
    job = _Job(stub, info, 1, _job_chroma(params, info))
    _check_sizes(job, _effective_tile(stub, info, params.get("tile_size"), codec.fmt, job.chroma), codec)


def save_heif_file(heif_file: HeifFile, fp: Any, **kwargs: Any) -> None:
    """``HeifFile.save``: check everything, encode everything, then write (see :meth:`HeifFile.save`).

    Without ``format``, a path ending in ``.avif``/``.avifs`` is written as AVIF, anything else as HEIF.
    """
    if not isinstance(fp, (str, os.PathLike)) and not hasattr(fp, "write"):
        raise TypeError("`fp` must be a path to file or an object with `write` method.")
    params, image_params = _split_params(kwargs, strict=True)
    if params.get("format") is None:
        params["format"] = _format_for(fp)
    _check_file_params(params)
    _check_image_info(image_params)
    codec = _codec(params)
    appended = _as_heif_images(
        params.get("append_images"), lambda img: _check_pillow_size(img, params, codec, keep_ycbcr=False)
    )
    images = list(heif_file) + appended
    if not _flag(params.get("save_all", True), "save_all"):
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
    _check_file_params(params)
    _check_image_info(image_params)
    codec = _codec(params)
    frames: list[Any] = []
    current = im.tell() if hasattr(im, "tell") else 0
    try:
        if save_all:
            sources = [im, *_pillow_sources(kwargs.get("append_images"))]
            for source in sources:
                for frame in ImageSequence.Iterator(source):
                    _check_pillow_size(frame, params, codec, keep_ycbcr=True)
                    frames.append(_frame_image(frame))
        else:
            _check_pillow_size(im, params, codec, keep_ycbcr=True)
            frames.append(_frame_image(im))
    finally:
        if hasattr(im, "seek") and im.tell() != current:
            im.seek(current)
    primary = params.get("primary_index")
    if primary is None and not any(f.info.get("primary") for f in frames):
        params["primary_index"] = 0
    data = encode_images(frames, params, {i: image_params for i in range(len(frames))})
    fp.write(data)


def _pillow_sources(items: Any) -> list[Any]:
    """Pillow's ``append_images``: a list of Pillow images."""
    if items is None:
        return []
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable) or hasattr(items, "tobytes"):
        raise TypeError(f"append_images must be a list of Pillow images, not {_type_name(items)}")
    items = list(items)
    for item in items:
        if not (hasattr(item, "mode") and hasattr(item, "tobytes")):
            raise TypeError(f"append_images takes Pillow images here, not {_type_name(item)}")
    return items


def _frame_image(frame: Any) -> HeifImage:
    image = _image_from_pillow(frame, keep_ycbcr=True)
    if frame.info.get("primary") is not None:
        image.info["primary"] = bool(frame.info["primary"])
    return image
