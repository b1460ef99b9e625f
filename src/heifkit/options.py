"""Global defaults, with pillow_heif's names and values. They are read at call time.

Per-call keyword arguments (``open_heif(..., decode_threads=...)``, ``save(..., quality=...)``)
override them.
"""

from __future__ import annotations

from .limits import SecurityLimits

DECODE_THREADS: int = 4
"""Maximum number of threads libheif uses to decode one image's grid tiles (0: in the calling thread).

Decodes running at the same time share the machine's cores: each uses at most ``cores // running`` threads
(at least one), so one big file gets every core and many files decoded in parallel do not oversubscribe."""

CODEC_THREADS: dict[str, int | None] = {"HEIF": None, "AVIF": None}
"""Threads the codec itself uses to decode one picture, per format (``open_heif(..., codec_threads=)`` per
file); 0 leaves it to the codec's default. ``None`` is automatic: as many as the decode's share of the cores
for libde265 (HEVC wavefronts in parallel: 0.55x the time of one thread for a 12 MP photo on 2 cores) and
dav1d (0.63x), one for aom (2x slower with more; measured on 2 cores with libheif 1.23.6)."""

THUMBNAILS: bool = True
"""List thumbnails in ``info["thumbnails"]`` when reading. ``False`` gives ``[]``."""

DEPTH_IMAGES: bool = True
"""List depth images in ``info["depth_images"]`` when reading. ``False`` gives ``[]``."""

AUX_IMAGES: bool = True
"""List auxiliary images in ``info["aux"]`` when reading. ``False`` leaves the key out."""

QUALITY: int | None = None
"""Default encoding quality, ``None`` (encoder default), ``-1`` (lossless) or ``0..100``."""

SAVE_HDR_TO_12_BIT: bool = False
"""Write 16-bit input as 12-bit instead of 10-bit."""

SAVE_NCLX_PROFILE: bool = True
"""Write an NCLX colour profile (``colr`` box) when saving."""

PREFERRED_ENCODER: dict[str, str] = {"AVIF": "", "HEIF": ""}
"""Encoder id per format (see ``libheif_info()["encoders"]``). An unknown id is an error at save time."""

PREFERRED_DECODER: dict[str, str] = {"AVIF": "", "HEIF": ""}
"""Decoder id per format (see ``libheif_info()["decoders"]``)."""

DISABLE_SECURITY_LIMITS: bool = False
"""Turn off libheif's security limits when reading (only for trusted files). A call's ``limits=`` or
``disable_security_limits=False`` overrides it."""

SECURITY_LIMITS: SecurityLimits | dict[str, int] = SecurityLimits()
"""The security limits files are read with (libheif's by default): a :class:`~heifkit.SecurityLimits`, or a
dict of the limits to change from libheif's defaults (``{"max_image_pixels": 50_000_000}``). A call's
``limits=`` changes them further."""

GRID_TILE_SIZE: int = 0
"""Default tile size for grid encoding; 0 writes single images."""

HDR_HEADROOM: float | None = None
"""The Pillow plugin's HDR rendition: None opens images as stored (the SDR base of a photo with a gain map, PQ or
HLG samples as coded); a headroom in stops (0: SDR) opens an image with a gain map or a PQ/HLG signal as
:meth:`~heifkit.HeifImage.to_hdr` renders it for a display of that headroom, as 8-bit ``RGB`` in sRGB's
transfer, scaled so that the display's peak (2 ** headroom times SDR white) is 255 (alpha is left out)."""

# register_heif_opener / register_avif_opener keyword -> option name
OPENER_KWARGS = {
    "decode_threads": "DECODE_THREADS",
    "thumbnails": "THUMBNAILS",
    "depth_images": "DEPTH_IMAGES",
    "aux_images": "AUX_IMAGES",
    "quality": "QUALITY",
    "save_to_12bit": "SAVE_HDR_TO_12_BIT",
    "save_nclx_profile": "SAVE_NCLX_PROFILE",
    "preferred_encoder": "PREFERRED_ENCODER",
    "preferred_decoder": "PREFERRED_DECODER",
    "grid_tile_size": "GRID_TILE_SIZE",
    "disable_security_limits": "DISABLE_SECURITY_LIMITS",
    "security_limits": "SECURITY_LIMITS",
    "hdr_headroom": "HDR_HEADROOM",
}
