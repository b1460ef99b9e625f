"""Pillow's AVIF save parameters, read as Pillow's own AVIF plugin reads them, and turned into heifkit's.

With :func:`~heifkit.register_avif_opener`, heifkit is Pillow's AVIF plugin, so ``im.save("x.avif", ...)`` takes
the parameters of Pillow's handbook ("Image file formats", AVIF) with their defaults (quality 75, speed 6, 4:2:0,
or 4:0:0 when every frame is greyscale), the values they accept, and the exception class Pillow raises for a bad
one. Each maps to what libheif's AV1 encoder has: aom's ``speed`` and ``threads``, its own options for tiles and
``advanced`` (``aom:NAME``), the NCLX range flag, premultiplied alpha. heifkit's own save parameters (``chroma``,
``enc_params``, ``bit_depth``, ``tile_size``, the NCLX values...) are taken too; where both name one thing,
Pillow's name wins. docs/saving.md has the table.
"""

from __future__ import annotations

import contextlib
import math
import operator
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from PIL import Image, ImageSequence

from . import options
from ._info.checks import type_name
from ._native.libheif import lib
from ._write import still as _write
from .codecs import encoder_ids
from .errors import EncoderError
from .heif import check_pillow_size, frame_of, image_from_frame
from .sequence import SEQUENCE_PARAMS, save_sequence

__all__ = ["GRAYSCALE_MODES", "AvifSave", "avif_save", "auto_tiles", "save_avif"]

GRAYSCALE_MODES = frozenset({"1", "L", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
"""Modes Pillow's AVIF plugin writes as greyscale (4:0:0 by default, ``L`` when converted)."""

_SUBSAMPLINGS = {"4:0:0": "400", "4:2:0": "420", "4:2:2": "422", "4:4:4": "444"}
_RANGES = {"full": 1, "limited": 0}
_MAX_TILES_LOG2 = 6  # AV1: at most 64 tile rows and 64 tile columns

# Pillow's parameters, all of them taken here (the others, heifkit's, go on to heifkit's checks)
PILLOW_AVIF_KEYS = frozenset(
    {
        "quality",
        "subsampling",
        "speed",
        "max_threads",
        "codec",
        "range",
        "tile_rows",
        "tile_cols",
        "autotiling",
        "alpha_premultiplied",
        "advanced",
    }
)


@dataclass(frozen=True)
class AvifSave:
    """What a Pillow AVIF save asks for, in heifkit's terms.

    ``params``: heifkit save parameters (``quality``, ``chroma``, ``encoder``, ``enc_params``, the NCLX range
    flag, and the caller's own heifkit parameters). ``monochrome``: write 4:0:0 (frames converted to ``L``/``LA``).
    ``premultiplied``: write RGBA frames with their colour premultiplied by alpha, and say so in the file.
    ``tiles``: tile rows and columns (log2) the encoder is asked for, (0, 0) for one tile, or None to compute them
    from each image's size (Pillow's ``autotiling``).
    """

    params: dict[str, Any]
    monochrome: bool
    premultiplied: bool
    tiles: tuple[int, int] | None
    threads: int
    enc_params: dict[str, Any] = field(default_factory=dict)

    def encoder_params(self, size: tuple[int, int]) -> dict[str, Any]:
        """The encoder parameters for an image of ``size``: aom's, then the caller's ``enc_params``."""
        rows, cols = self.tiles if self.tiles is not None else auto_tiles(self.threads, *size)
        tiles = {"aom:tile-rows": rows, "aom:tile-columns": cols} if rows or cols else {}
        return {**tiles, **self.enc_params}


def avif_save(info: Mapping[str, Any], grayscale: bool) -> AvifSave:
    """Read Pillow's AVIF parameters from ``info`` (``im.encoderinfo``); ``grayscale``: every frame is in one of
    :data:`GRAYSCALE_MODES` (4:0:0 by default then).

    Raises what Pillow raises for the same value: ``ValueError`` for a bad quality, subsampling, range, codec or
    ``advanced`` options, ``TypeError`` for a value of the wrong type.
    """
    params = {k: v for k, v in info.items() if k not in PILLOW_AVIF_KEYS}
    params.setdefault("thumbnails", [])  # Pillow's plugin writes none; a frame's info["thumbnails"] is not a request
    quality = info.get("quality", 75)
    if isinstance(quality, bool) or not isinstance(quality, int) or not -1 <= quality <= 100:
        raise ValueError(f"invalid quality {quality!r}: an int from 0 (smallest) to 100 (best), or -1 for lossless")
    params["quality"] = quality

    default = "4:0:0" if grayscale else "4:2:0"
    if info.get("chroma") is not None:  # heifkit's own name for it, given without Pillow's
        default = {"420": "4:2:0", "422": "4:2:2", "444": "4:4:4"}.get(str(info["chroma"]), str(info["chroma"]))
    subsampling = info.get("subsampling", default)
    if not isinstance(subsampling, str):
        raise TypeError(f"subsampling must be a str such as '4:2:0', not {type_name(subsampling)}")
    if subsampling not in _SUBSAMPLINGS:
        raise ValueError(f"invalid subsampling {subsampling!r}: use {', '.join(map(repr, _SUBSAMPLINGS))}")
    monochrome = subsampling == "4:0:0"
    params.pop("chroma", None)
    if not monochrome:
        params["chroma"] = _SUBSAMPLINGS[subsampling]

    range_ = info.get("range", "full")
    if range_ not in _RANGES:
        raise ValueError(f"invalid range {range_!r}: use 'full' or 'limited'")
    params["full_range_flag"] = _RANGES[range_]

    codec = info.get("codec", "auto")
    available = encoder_ids(int(lib.heif_compression_AV1))
    if codec != "auto":
        if codec not in available:
            raise ValueError(
                f"invalid codec {codec!r}: use 'auto' or an AV1 encoder heifkit has ({', '.join(available)})"
            )
        params["encoder"] = codec
    encoder = params.get("encoder") or options.PREFERRED_ENCODER.get("AVIF") or (available[0] if available else "")

    # aom's speed is libavif's, clamped to what aom has (0..9); -1 leaves aom's default
    enc_params: dict[str, Any] = {}
    speed = _index(info.get("speed", 6), "speed")
    if speed != -1 and encoder == "aom":
        enc_params["speed"] = min(max(speed, 0), 9)
    threads = max(1, _index(info.get("max_threads", _usable_cores()), "max_threads"))
    if encoder == "aom":
        enc_params["threads"] = threads

    rows = min(max(_index(info.get("tile_rows", 0), "tile_rows"), 0), _MAX_TILES_LOG2)
    cols = min(max(_index(info.get("tile_cols", 0), "tile_cols"), 0), _MAX_TILES_LOG2)
    autotiling = bool(info.get("autotiling", rows == cols == 0))
    tiles = None if autotiling else (rows, cols)
    if encoder != "aom":
        tiles = (0, 0)  # libheif's other AV1 encoders have no tile settings heifkit knows

    for key, value in _advanced(info.get("advanced")):
        if encoder != "aom":
            raise ValueError(f"advanced codec options need the aom encoder; this save uses {encoder or 'none'}")
        name = _aom_option(key, value)
        if name:
            enc_params[f"aom:{name}"] = value
    exif = params.get("exif")
    if isinstance(exif, (bytes, bytearray, memoryview)) and len(exif):
        try:  # what Pillow's plugin does with it: an EXIF block Pillow cannot read is refused before encoding
            Image.Exif().load(bytes(exif))
        except SyntaxError as exc:
            raise SyntaxError(f"invalid exif: {exc}") from exc
    caller = params.pop("enc_params", None) or {}
    return AvifSave(
        params,
        monochrome,
        bool(info.get("alpha_premultiplied", False)),
        tiles,
        threads,
        {**enc_params, **caller},
    )


def auto_tiles(threads: int, width: int, height: int) -> tuple[int, int]:
    """(rows, columns), log2, for an image of ``width`` x ``height`` encoded on ``threads`` threads: the rule
    libavif applies with ``autotiling``. Tiles speed coding up with threads but cost compression (prediction stops
    at their edges), so there is one tile per 512x512 pixels at most, no more than ``threads`` and 32, and the
    longer side of the image is cut more, to keep tiles close to square."""
    if threads <= 1 or width <= 0 or height <= 0:
        return 0, 0
    tiles = min(-(-width * height // (512 * 512)), 32, threads)
    total = int(math.log2(tiles))
    longer, shorter = max(width, height), min(width, height)
    across_shorter = max(0, total - int(math.log2(longer // shorter))) // 2
    across_longer = total - across_shorter
    return (across_shorter, across_longer) if width >= height else (across_longer, across_shorter)


def _advanced(value: Any) -> list[tuple[str, str]]:
    """Pillow's ``advanced``: a dict, or key-value pairs, of strings (codec-specific options)."""
    if value is None:
        return []
    items = value.items() if isinstance(value, Mapping) else value
    try:
        pairs = list(items) if isinstance(items, Iterable) and not isinstance(items, (str, bytes)) else None
    except TypeError:
        pairs = None
    if pairs is None or any(not isinstance(pair, tuple) or len(pair) != 2 for pair in pairs):
        raise ValueError("advanced codec options must be a dict of str keys and values, or (key, value) pairs")
    for key, text in pairs:
        if not isinstance(key, str) or not isinstance(text, str):
            raise ValueError(f"advanced codec option {key!r}: {text!r}: keys and values must be str")
    return pairs


def _aom_option(key: str, value: str) -> str | None:
    """The aom option an ``advanced`` key of libavif's sets (None: nothing to set), as libavif reads them: a
    ``color:``/``c:`` prefix for the colour planes, which are what aom codes here (``alpha:``/``a:`` ones, for the
    alpha plane alone, cannot be set apart); ``end-usage``, which libavif sets itself, must be ``q``, the constant
    quality mode libheif codes stills in. Other names go to aom, which refuses those it does not know."""
    for prefix in ("color:", "c:"):
        key = key.removeprefix(prefix)
    if key.startswith(("alpha:", "a:")):
        raise ValueError(f"advanced codec option {key!r}: heifkit's encoder sets options for colour and alpha together")
    if key == "end-usage":
        if value != "q":
            raise ValueError(f"advanced codec option end-usage={value!r}: heifkit's encoder codes stills with 'q' only")
        return None
    return key


def _index(value: Any, name: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type_name(value)}") from None


def _usable_cores() -> int:
    """The cores this process may run on (Pillow's default ``max_threads``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# --- saving ---------------------------------------------------------------------------------------------


def save_avif(sources: list[Image.Image], fp: IO[bytes], kwargs: dict[str, Any], save_all: bool, entry: Any) -> None:
    """Save Pillow images as Pillow's own AVIF plugin does. ``sources``: the image saved, then ``append_images``
    (with ``save_all``); ``kwargs``: its ``encoderinfo``; ``entry``: what the image was read from, if heifkit's
    plugin read it (its attached items are kept). ``save_all`` of several frames (an animated image, or
    ``append_images``) writes an animation whose frames last ``duration`` (an int, or one per frame) or each
    frame's ``info["duration"]``; anything else writes the current frame as a still image."""
    im = sources[0]
    current = im.tell()

    def every_frame() -> Iterator[Image.Image]:
        for source in sources:
            yield from ImageSequence.Iterator(source)

    try:
        grayscale = all(frame.mode in GRAYSCALE_MODES for frame in every_frame())
        animated = save_all and (len(sources) > 1 or getattr(im, "n_frames", 1) > 1)
        durations = kwargs.get("duration")
        if animated and durations is None:
            durations = [frame.info.get("duration", 0) for frame in every_frame()]
    finally:
        if im.tell() != current:
            im.seek(current)
    settings = avif_save(kwargs, grayscale)
    enc_params = settings.encoder_params(im.size)
    if animated:
        track = {k: v for k, v in settings.params.items() if k in SEQUENCE_PARAMS}
        try:
            frames = (_avif_pixels(frame.copy(), settings) for frame in every_frame())
            with _aom_options_refused():
                save_sequence(
                    frames, fp, durations, kwargs.get("loop", 0), "AVIF", **{**track, "enc_params": enc_params}
                )
        finally:
            if im.tell() != current:
                im.seek(current)
        return
    encode = _write.encode_settings({**settings.params, "enc_params": enc_params}, "AVIF", strict=False)
    frame = _avif_pixels(im, settings)
    check_pillow_size(frame, encode, keep_ycbcr=True)
    image = image_from_frame(frame, entry if frame is im else None, keep_ycbcr=True)
    with _aom_options_refused():
        _write.save_pillow([frame_of(image)], fp, encode)


@contextlib.contextmanager
def _aom_options_refused() -> Iterator[None]:
    """aom refuses an option it does not know only when it encodes: a ValueError, as Pillow's plugin raises."""
    try:
        yield
    except EncoderError as exc:
        if "Cannot set AOM encoder option" not in str(exc):
            raise
        raise ValueError(f"aom does not take this advanced codec option: {exc}") from exc


def _avif_pixels(frame: Image.Image, settings: AvifSave) -> Image.Image:
    """``frame`` in the mode Pillow's AVIF plugin writes it: modes other than ``L``, ``RGB`` and ``RGBA`` as
    ``RGBA`` (with transparency), ``L`` (greyscale) or ``RGB``; ``L``/``LA`` for 4:0:0, colour otherwise; RGBA
    premultiplied (``RGBa``) with ``alpha_premultiplied``. The frame itself when nothing changes."""
    mode = frame.mode
    if mode not in ("L", "RGB", "RGBA", "RGBa", "LA", "YCbCr"):  # YCbCr: its planes are written as they are
        mode = "RGBA" if frame.has_transparency_data else "L" if mode in GRAYSCALE_MODES else "RGB"
    alpha = mode in ("RGBA", "RGBa", "LA")
    if settings.monochrome:
        mode = "LA" if alpha else "L"
    elif mode in ("L", "LA"):  # colour: as RGB (libavif codes greyscale in colour planes then)
        mode = "RGBA" if alpha else "RGB"
    if mode in ("RGBA", "LA") and frame.mode == mode and frame.getchannel("A").getextrema() == (255, 255):
        mode = mode[:-1] or "L"  # opaque: libavif leaves such alpha out, so Pillow's files have none
    if settings.premultiplied and mode == "RGBA":
        mode = "RGBa"
    return frame if mode == frame.mode else frame.convert(mode)
