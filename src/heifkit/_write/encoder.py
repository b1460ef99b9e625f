"""libheif's encoders: configuring one from a save's settings, and what its codec can write (the size limits of a
coded image)."""

from __future__ import annotations

from typing import Any

from .._native.libheif import check, ffi, lib, owned
from ..codecs import encoder_descriptor, encoder_ids, libheif_info
from ..errors import EncoderError
from .params import compression
from .settings import Codec, EncodeSettings

__all__ = ["Encoder", "size_problem", "thumbnail_size", "MAX_GRID", "MAX_ITEMS"]

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
MAX_GRID = 256
"""Most rows or columns of a grid readers accept."""
MAX_ITEMS = 1000
"""Most items in a file readers accept (libheif's security limit)."""

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


class Encoder:
    """An owned ``heif_encoder`` configured from a save's settings."""

    def __init__(self, ctx: Any, settings: EncodeSettings) -> None:
        self.fmt, codec = compression(settings.format)
        if not libheif_info()[self.fmt]:
            raise EncoderError(f"No {self.fmt} encoder found.")
        preferred = settings.encoder
        out = ffi.new("heif_encoder**")
        if preferred:
            descriptor = encoder_descriptor(preferred, codec)
            if descriptor is None:
                available = ", ".join(encoder_ids(codec))
                raise ValueError(f"unknown {self.fmt} encoder {preferred!r}; available: {available}")
            check(lib.heif_context_get_encoder(ctx, descriptor, out))
        else:
            check(lib.heif_context_get_encoder_for_format(ctx, codec, out))
        if out[0] == ffi.NULL:
            raise EncoderError(f"No {self.fmt} encoder found.")
        self.ptr = owned(out[0], lib.heif_encoder_release)
        self.quality: int | None = None  # what the encoder is set to (None: its default; -1: lossless)
        self.use_quality(settings.quality)
        self.chroma: str | None = None  # what the encoder is set to (None: its default, 4:2:0)
        if settings.speed is not None:
            self._set_speed(settings.speed)
        for key, value in settings.enc_params.items():
            self.set(key, value)

    def use_quality(self, quality: int | None) -> None:
        """Switch the quality before encoding an image (-1: lossless; None: leave the encoder as it is)."""
        if quality is None or quality == self.quality:
            return
        if quality == -1:
            check(lib.heif_encoder_set_lossless(self.ptr, 1))
        else:
            if self.quality == -1:
                check(lib.heif_encoder_set_lossless(self.ptr, 0))
            check(lib.heif_encoder_set_lossy_quality(self.ptr, int(quality)))
        self.quality = quality

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


def size_problem(width: int, height: int, codec: Codec) -> str | None:
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


def thumbnail_size(size: tuple[int, int], box: int) -> tuple[int, int]:
    """The size libheif gives the thumbnail of an image in a ``box`` px bounding box (even, rounded down)."""
    width, height = size
    if max(width, height) * box > 2**31 - 1:  # libheif computes this in a C int
        raise ValueError(f"thumbnail box {box} is too large for a {width}x{height} image")
    if width > height:
        width, height = box, height * box // width
    else:
        width, height = width * box // height, box
    return width & ~1, height & ~1
