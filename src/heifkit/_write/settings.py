"""The settings of one save: every parameter checked and every default resolved once, at the API boundary.

``HeifFile.save``, the Pillow save hooks and ``save_sequence`` each build one :class:`EncodeSettings` from their
arguments and :mod:`heifkit.options` (read here, at the call, and nowhere else in the writer), and pass it down:
the modules below read typed fields, never a parameter dict or a global, and the codec is chosen once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .. import options
from .._info.checks import flag
from .._native.libheif import lib
from ..codecs import encoder_ids
from .params import CODING_KEYS, FILE_KEYS, IMAGE_KEYS, check_file_params, check_image_info, chroma_value, compression

__all__ = ["Codec", "EncodeSettings", "encode_settings"]

_LIBHEIF_DEFAULT_QUALITY = 50
"""The lossy quality libheif's x265 and aom plugins start at: what an image with no known coded quality gets with
``quality="keep"``, so that the images of one save never depend on each other's order."""


@dataclass(frozen=True)
class Codec:
    """What limits the coded images: the format, whether x265 encodes (and with its placebo preset)."""

    fmt: str
    x265: bool
    placebo: bool
    max_pixels: int  # libheif's security limit (0: none)


@dataclass(frozen=True)
class EncodeSettings:
    """One save's checked parameters with the defaults they fall back on resolved (see ``docs/saving.md``)."""

    format: str
    """``"HEIF"`` or ``"AVIF"``."""
    quality: int | None
    """0..100, -1 for lossless, None for the encoder's own default (with ``keep_quality``: for the images whose
    coded quality is not known)."""
    keep_quality: bool
    """``quality="keep"``: each image read from a file is encoded at the quality its coded stream says."""
    chroma: str | None
    """``"420"``/``"422"``/``"444"`` from ``subsampling`` or ``chroma``; None: as each image was read, else 4:2:0."""
    speed: int | None
    enc_params: Mapping[str, Any]
    """Encoder parameters, applied after ``speed`` (read-only)."""
    encoder: str
    """The encoder id asked for (the argument, else ``options.PREFERRED_ENCODER``); "" for libheif's choice."""
    codec: Codec
    tile_size: int | None
    """The grid tile size asked for (0: no grid); None: each image keeps its grid, else the default below."""
    default_tile_size: int
    """``options.GRID_TILE_SIZE``: the tile size of images too big for one coded image when none is given."""
    save_all: bool
    primary_index: int | None
    save_to_12bit: bool
    """16-bit input is written as 12-bit (else 10-bit)."""
    save_nclx_profile: bool
    """Whether images whose ``info`` does not say write an NCLX profile."""
    image: Mapping[str, Any]
    """The parameters that override an image's ``info`` (read-only)."""
    reencode: bool | None = None
    """True: encode every image; False: copy every image as stored, or refuse; None: copy what can be copied."""
    coding_changes: tuple[str, ...] = ()
    """The parameters given that ask for a coding change (:data:`~heifkit._write.params.CODING_KEYS`): with any,
    every image is encoded."""

    def replace(self, **changes: Any) -> EncodeSettings:
        """A copy with ``changes`` (fields that do not change the codec, e.g. ``primary_index``)."""
        return dataclasses.replace(self, **changes)


def _codec(fmt: str, encoder: str, speed: int | None, enc_params: Mapping[str, Any]) -> Codec:
    """The codec these settings encode with."""
    _, compression_id = compression(fmt)
    if not encoder:
        available = encoder_ids(compression_id)
        encoder = available[0] if available else ""
    # enc_params are applied after speed, so their preset wins
    preset = str(enc_params["preset"]) if "preset" in enc_params else None
    placebo = preset == "placebo" if preset is not None else speed == 0
    limits = lib.heif_get_global_security_limits()
    return Codec(fmt, encoder == "x265", fmt == "HEIF" and placebo, int(limits.max_image_size_pixels))


def encode_settings(kwargs: Mapping[str, Any], fmt: str, strict: bool = True) -> EncodeSettings:
    """Check ``save`` keyword arguments and resolve their defaults; ``fmt`` is the format when ``format`` is not
    given.

    Raises:
        TypeError: an unknown parameter (only when ``strict``: Pillow passes its own), ``image_orientation``
            (derived from EXIF/XMP), or a parameter of the wrong type.
        ValueError: a parameter with a wrong value.
    """
    if "image_orientation" in kwargs:
        raise TypeError("image_orientation is derived from EXIF/XMP and cannot be passed to save()")
    if strict:
        unknown = set(kwargs) - FILE_KEYS - IMAGE_KEYS
        if unknown:
            raise TypeError(f"unexpected save parameter(s): {', '.join(sorted(unknown))}")
    file = {k: v for k, v in kwargs.items() if k in FILE_KEYS and k != "append_images"}
    if file.get("format") is None:
        file["format"] = fmt
    file.setdefault("quality", options.QUALITY)
    image = {k: v for k, v in kwargs.items() if k in IMAGE_KEYS}
    check_file_params(file)
    check_image_info(image)
    name, _ = compression(file["format"])
    quality = file["quality"]
    keep_quality = quality == "keep"
    if keep_quality:  # images whose coded quality is not known: the default, else libheif's own (50)
        quality = options.QUALITY if isinstance(options.QUALITY, int) else _LIBHEIF_DEFAULT_QUALITY
    speed = file.get("speed")
    enc_params = MappingProxyType(dict(file.get("enc_params") or {}))  # the caller's dict is never changed
    encoder = file.get("encoder") or options.PREFERRED_ENCODER.get(name, "")
    save_to_12bit = file.get("save_to_12bit")
    reencode = file.get("reencode")
    coding = tuple(k for k in CODING_KEYS if kwargs.get(k) is not None and not (k == "quality" and keep_quality))
    return EncodeSettings(
        format=name,
        quality=None if quality is None else int(quality),
        keep_quality=keep_quality,
        chroma=chroma_value(file),
        speed=None if speed is None else int(speed),
        enc_params=enc_params,
        encoder=encoder,
        codec=_codec(name, encoder, None if speed is None else int(speed), enc_params),
        tile_size=None if file.get("tile_size") is None else int(file["tile_size"]),
        default_tile_size=int(options.GRID_TILE_SIZE),
        save_all=flag(file.get("save_all", True), "save_all"),
        primary_index=None if file.get("primary_index") is None else int(file["primary_index"]),
        save_to_12bit=flag(options.SAVE_HDR_TO_12_BIT if save_to_12bit is None else save_to_12bit, "save_to_12bit"),
        save_nclx_profile=flag(options.SAVE_NCLX_PROFILE, "options.SAVE_NCLX_PROFILE"),
        image=MappingProxyType(image),
        reencode=None if reencode is None else flag(reencode, "reencode"),
        coding_changes=coding,
    )
