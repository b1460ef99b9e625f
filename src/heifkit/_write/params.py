"""The save parameters: their names, what each accepts, and the checks that run before anything is encoded
(``settings`` turns them into one save's :class:`~heifkit._write.settings.EncodeSettings`).

A wrong type is a ``TypeError``, a wrong value a ``ValueError``, both naming the parameter. File parameters
(format, quality, chroma, ...) apply to the whole file; image parameters (EXIF, XMP, colour, HDR metadata,
thumbnails, ...) override an image's ``info``, and the same checks apply to ``info`` itself.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from typing import Any

from .._info.checks import as_int, flag, int_in, is_bytes, type_name
from .._info.properties import NCLX_KEYS, check_properties
from .._native.libheif import lib

__all__ = [
    "FILE_KEYS",
    "CODING_KEYS",
    "IMAGE_KEYS",
    "check_file_params",
    "check_image_info",
    "compression",
    "chroma_value",
    "format_for",
]

IMAGE_KEYS = frozenset(
    {
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
        "nominal_diffuse_white_luminance",
        "bit_depth",
        "save_nclx_profile",
        *NCLX_KEYS,
    }
)
"""Parameters that override an image's ``info`` (the primary image's for ``HeifFile.save``, every frame's
for Pillow's ``save``)."""

FILE_KEYS = frozenset(
    {
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
        "reencode",
    }
)
"""Parameters of the whole file."""

CODING_KEYS = ("quality", "enc_params", "chroma", "subsampling", "speed", "tile_size", "save_to_12bit", "encoder")
"""File parameters that ask for a coding change: given, they make every image be encoded (``quality="keep"``
excepted: a copy keeps the quality best)."""

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


def format_for(fp: Any) -> str:
    """The format a path's extension names (AVIF for .avif/.avifs); HEIF for other names and streams."""
    if isinstance(fp, (str, os.PathLike)):
        extension = os.path.splitext(os.fsdecode(os.fspath(fp)))[1].lower()
        return _EXTENSION_FORMATS.get(extension, "HEIF")
    return "HEIF"


def compression(fmt: str) -> tuple[str, int]:
    """``("HEIF", HEVC)`` or ``("AVIF", AV1)`` for a ``format`` value."""
    key = str(fmt).upper()
    if key in ("HEIF", "HEIC"):
        return "HEIF", int(lib.heif_compression_HEVC)
    if key == "AVIF":
        return "AVIF", int(lib.heif_compression_AV1)
    raise ValueError(f"unknown format {fmt!r}: use 'HEIF' or 'AVIF'")


def chroma_value(params: dict[str, Any]) -> str | None:
    """``"420"``/``"422"``/``"444"`` from ``subsampling`` (which wins) or ``chroma``; None when neither says."""
    subsampling = params.get("subsampling")
    if subsampling is not None:
        key = subsampling if isinstance(subsampling, str) else as_int(subsampling, "subsampling")
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
    text = chroma if isinstance(chroma, str) else str(as_int(chroma, "chroma"))
    if text not in ("420", "422", "444"):
        raise ValueError(f"invalid chroma {chroma!r}: use 420, 422 or 444")
    return text


def check_file_params(params: dict[str, Any]) -> None:
    """Check the parameters that apply to the whole file (see :data:`FILE_KEYS`)."""
    fmt = params.get("format")
    if fmt is not None:
        if not isinstance(fmt, str):
            raise TypeError(f"format must be a str ('HEIF' or 'AVIF'), not {type_name(fmt)}")
        compression(fmt)
    quality = params.get("quality")
    if isinstance(quality, str) and quality != "keep":
        raise TypeError(f"quality must be an int (-1 lossless, 0..100), None or 'keep', not {quality!r}")
    if quality is not None and quality != "keep" and as_int(quality, "quality") not in range(-1, 101):
        raise ValueError(f"invalid quality {quality!r}: use None, -1 (lossless), 0..100 or 'keep'")
    chroma_value(params)
    if params.get("speed") is not None:
        int_in(params["speed"], "speed", 0, 10)
    enc_params = params.get("enc_params")
    if enc_params is not None:
        if not isinstance(enc_params, Mapping):
            raise TypeError(f"enc_params must be a dict of encoder parameters, not {type_name(enc_params)}")
        for key, value in enc_params.items():
            if not isinstance(key, str):
                raise TypeError(f"enc_params keys must be str, not {type_name(key)} ({key!r})")
            if not isinstance(value, (str, numbers.Real)):  # numbers: numpy's too
                raise TypeError(f"enc_params[{key!r}] must be a str, int, float or bool, not {type_name(value)}")
    tile_size = params.get("tile_size")
    if tile_size is not None and as_int(tile_size, "tile_size") < 0:
        raise ValueError(f"invalid tile_size {tile_size}: use 0 (no grid) or a positive tile size in pixels")
    for key in ("save_all", "save_to_12bit", "reencode"):
        if params.get(key) is not None:
            flag(params[key], key)
    if params.get("primary_index") is not None:
        as_int(params["primary_index"], "primary_index")
    encoder = params.get("encoder")
    if encoder is not None and not isinstance(encoder, str):
        raise TypeError(f"encoder must be a str (an id from libheif_info()['encoders']), not {type_name(encoder)}")


def check_image_info(info: dict[str, Any]) -> None:
    """Check the per-image values (see :data:`IMAGE_KEYS`) of one image's ``info`` with overrides."""
    exif = info.get("exif")
    if exif is not None and not is_bytes(exif):
        from PIL import Image

        if not isinstance(exif, Image.Exif):
            raise TypeError(f"exif must be bytes or PIL.Image.Exif, not {type_name(exif)}")
    xmp = info.get("xmp")
    if xmp is not None and not is_bytes(xmp) and not isinstance(xmp, str):
        raise TypeError(f"xmp must be bytes or str, not {type_name(xmp)}")
    check_properties(info)
    if info.get("save_nclx_profile") is not None:
        flag(info["save_nclx_profile"], "save_nclx_profile")
    thumbnails = info.get("thumbnails")
    if thumbnails is not None:
        if not isinstance(thumbnails, (list, tuple)):
            raise TypeError(f"thumbnails must be a list of box sizes (ints), not {type_name(thumbnails)}")
        for box in thumbnails:
            as_int(box, "a thumbnail box size")
    metadata = info.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, (list, tuple)):
            raise TypeError(f"metadata must be a list of dicts, not {type_name(metadata)}")
        for block in metadata:
            _check_metadata_block(block)
    bits = info.get("bit_depth")
    if bits is not None and as_int(bits, "bit_depth") not in (8, 10, 12, 16):
        raise ValueError(f"invalid bit_depth {bits}: use 8, 10, 12 (or 16 for 10/12 per options)")


def _check_metadata_block(block: Any) -> None:
    if block is None:  # what the reader lists for a block it could not read
        return
    if not isinstance(block, Mapping):
        raise TypeError(f"metadata entries must be dicts with 'type' and 'data', not {type_name(block)}")
    missing = [k for k in ("type", "data") if k not in block]
    if missing:
        raise ValueError(f"metadata entry is missing {', '.join(missing)}: {dict(block)!r:.80}")
    kind, data, content_type = block["type"], block["data"], block.get("content_type")
    if not isinstance(kind, str):
        raise TypeError(f"metadata 'type' must be a str, not {type_name(kind)}")
    try:  # an item type is four bytes; the reader gives them as latin-1 characters
        fourcc = kind.encode("latin-1")
    except UnicodeEncodeError:
        fourcc = b""
    if len(fourcc) != 4:
        raise ValueError(f"invalid metadata item_type {kind!r}: an item type has 4 characters, e.g. 'iptc'")
    if not is_bytes(data):
        raise TypeError(f"metadata 'data' must be bytes, not {type_name(data)}")
    if content_type is not None and not isinstance(content_type, str):
        raise TypeError(f"metadata 'content_type' must be a str, not {type_name(content_type)}")
