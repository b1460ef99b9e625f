"""Pillow plugin: ``ImageFile`` classes for HEIF and AVIF, save hooks and ``register_*_opener``.

An image opens **at** its primary frame (``tell() == primary_index``); ``seek``/``n_frames`` walk all
top-level images in file order. Pixels are decoded on ``load()``. High bit depth colour images open as
8-bit ``RGB``/``RGBA`` (Pillow has no multichannel 16-bit modes); high bit depth greyscale opens as
``I;16``. The EXIF/XMP orientation is reset to 1 because libheif already rotated the pixels; the old
value is in ``info["original_orientation"]``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable
from typing import IO, Any

from PIL import Image, ImageFile, ImageSequence, UnidentifiedImageError

from . import options
from ._info.metadata import exif_from_pillow, reset_orientation, xmp_from_pillow
from ._info.properties import NCLX_KEYS
from ._pillow_avif import PILLOW_AVIF_KEYS, save_avif
from ._read.entries import Entry, open_flags
from ._read.source import FTYP_PEEK, avif_by_compatible_brands, peek, sniff
from ._write import still as _write
from .codecs import libheif_info
from .errors import HeifError
from .heif import HeifFile, check_pillow_size, file_of, frame_of, image_from_frame, open_file, save_frame
from .image import HeifImage, HeifThumbnail, entry_of, image_as_stored
from .sequence import SEQUENCE_PARAMS, HeifSequence, save_sequence

__all__ = ["HeifImageFile", "AvifImageFile", "register_heif_opener", "register_avif_opener"]

HEIF_EXTENSIONS = [".heic", ".heics", ".heif", ".heifs", ".hif"]
AVIF_EXTENSIONS = [".avif", ".avifs"]


class _LibHeifImageFile(ImageFile.ImageFile):
    """Shared implementation of the HEIF and AVIF image files."""

    _close_exclusive_fp_after_loading = True
    # What an instance made without _open() (pickle.loads, copy.deepcopy) sees: one frame, already loaded.
    _heif_file: HeifFile | HeifSequence | None = None
    _n_frames = 1
    _frame = 0
    _loaded_frame = -1
    _draft: HeifThumbnail | None = None
    _headroom: float | None = None
    _sources: dict[int, Entry] = {}

    # Whether the current frame's pixels were loaded before save() began, when the caller could change them:
    # Pillow loads an image before it calls a save handler, so only here can a save tell that it was not.
    _pixels_shown = False
    _defer_load = False

    def save(self, fp: Any, format: str | None = None, **params: Any) -> None:
        """Pillow's ``save``; an image whose pixels were not loaded is written as stored (no decode, no encode)
        unless a coding change is asked for (see "Editing without re-encoding" in the docs)."""
        self._pixels_shown = self._loaded_frame == self._frame
        # Pillow decodes the image before it calls the save handler; a copy needs no pixels, so that decode
        # waits for the handler (which decodes if it encodes). Not for other formats' handlers, which read the
        # pixels, nor over the file read from, which Pillow truncates first (the decode reads it into memory).
        self._defer_load = not self._pixels_shown and _own_format(fp, format) and not _same_file(fp, self.filename)
        try:
            super().save(fp, format, **params)
        finally:
            self._pixels_shown = self._defer_load = False

    def _open(self) -> None:
        # Pillow gives accept() 16 bytes: too few for the compatible brands that say whether a "mif1"/"msf1" file
        # is AVIF. Checked here on the whole ftyp box; a SyntaxError lets Pillow try its next plugin.
        assert self.fp is not None
        if _is_avif(peek(self.fp, FTYP_PEEK))[1] != (self.format == "AVIF"):
            raise SyntaxError(f"not a {self.format} file by its brands")
        try:
            # Only what opening needs is read now (size, mode, info); the first decode reads the whole stream
            # into memory (Pillow truncates a file before saving over it, so later frames must not read it).
            assert self.fp is not None  # Image.open always gives one
            self._heif_file = _content(self.fp)
        except (OSError, ValueError, SyntaxError, RuntimeError, EOFError) as exc:
            # The brand matched, so no other plugin can read it: say why instead of Pillow's bare
            # "cannot identify image file" (Pillow drops a plugin's SyntaxError message).
            name = self.filename or getattr(self.fp, "name", None) or self.fp
            raise UnidentifiedImageError(f"cannot identify image file {name!r}: {exc}") from exc
        self.custom_mimetype = self._heif_file.mimetype
        self._n_frames = len(self._heif_file)
        self._frame_infos: dict[int, dict[Any, Any]] = {}
        self._sources = {}
        self._loaded_frame = -1
        self._frame = -1
        self._draft = None
        self._init_frame(self._heif_file.primary_index if isinstance(self._heif_file, HeifFile) else 0)
        self.tile = []

    def _init_frame(self, index: int) -> None:
        assert self._heif_file is not None
        image = self._heif_file[index]
        entry = entry_of(image)  # a sequence's frames (HeifFrame) have none
        if entry is not None:  # not the image itself: it may hold decoded pixels
            self._sources[index] = entry
        self._frame = index
        self._size = image.size
        # Pillow's AVIF plugin gives premultiplied images back as RGBA (colour divided by alpha again)
        self._mode = "RGBA" if image.mode == "RGBa" and self.format == "AVIF" else image.mode
        # options.HDR_HEADROOM: an HDR photo opens rendered for that display headroom, as 8-bit RGB
        self._headroom = options.HDR_HEADROOM if isinstance(image, HeifImage) and image.has_hdr() else None
        if self._headroom is not None:
            self._mode = "RGB"
        if index not in self._frame_infos:
            info = image.info.copy()
            # reset only when libheif turned the pixels (irot/imir): a file without them keeps its EXIF/XMP
            # orientation, for ImageOps.exif_transpose to apply, as Pillow's own plugins leave it
            info["original_orientation"] = reset_orientation(info, getattr(image, "orientation_applied", True))
            self._frame_infos[index] = info
        self.info = self._frame_infos[index]
        self._exif = None

    def seek(self, frame: int) -> None:
        """Move to top-level image ``frame`` (file order).

        Pillow's decompression-bomb check applies to every frame, as ``Image.open`` applies it to the first:
        a frame over ``Image.MAX_IMAGE_PIXELS`` warns (``DecompressionBombWarning``), one over twice that
        raises ``DecompressionBombError`` and the image stays at the frame it was at.
        """
        if not self._seek_check(frame) or frame == self._frame:
            return
        if self._heif_file is None:
            raise EOFError("attempt to seek outside sequence")
        Image._decompression_bomb_check(self._heif_file[frame].size)
        self._init_frame(frame)
        self._im = None
        self._loaded_frame = -1  # the pixels were dropped: the next load() must decode this frame again
        self._draft = None

    def tell(self) -> int:
        """Index of the current top-level image."""
        return self._frame

    @property
    def n_frames(self) -> int:
        """Number of top-level images."""
        return self._n_frames

    @property
    def is_animated(self) -> bool:
        """True for files with more than one top-level image."""
        return self._n_frames > 1

    def verify(self) -> None:
        """Nothing to verify beyond what opening already checked."""

    def draft(self, mode: str | None, size: tuple[int, int] | None) -> tuple[str, tuple[int, int, int, int]] | None:
        """Decode an embedded thumbnail instead of the full image when one is at least ``size``.

        Only before ``load()``. ``size`` is a box, as ``Image.thumbnail()`` passes it (its box times its
        ``reducing_gap``): the smallest thumbnail that covers the image scaled to fit the box and is a scaled
        copy of the current frame (same mode, aspect ratio give or take rounding, rotation, mirroring and
        crop, no other colour profile) is chosen; ``mode`` is ignored. So thumbnails of a 200 MP photo take
        milliseconds.
        Returns ``(mode, box)`` as Pillow expects, or None when no thumbnail fits.
        """
        if (
            not isinstance(self._heif_file, HeifFile)
            or not size
            or self._loaded_frame == self._frame
            or self._draft is not None
        ):
            return None
        thumbnail = thumbnail_for(self._heif_file[self._frame], size)
        if thumbnail is None:
            return None
        self._draft = thumbnail
        self._size = thumbnail.size
        return self.mode, (0, 0, *thumbnail.size)

    def crop(self, box: tuple[float, float, float, float] | None = None) -> Image.Image:
        """Pillow's ``crop``; before ``load()``, only the region is decoded (only the tiles that cover it,
        for a grid image), so a small crop of a huge photo takes little time and memory."""
        region = self._region(box)
        return region if region is not None else super().crop(box)

    def reduce(self, factor: int | tuple[int, int], box: tuple[int, int, int, int] | None = None) -> Image.Image:
        """Pillow's ``reduce``; with a ``box``, before ``load()``, only that region is decoded and reduced."""
        region = self._region(box)
        return region.reduce(factor) if region is not None else super().reduce(factor, box)

    def _region(self, box: Any) -> Image.Image | None:
        """The current frame's ``box`` (rounded as Pillow's ``crop`` rounds it) decoded on its own, as a new
        Pillow image with a copy of ``info``; None when the pixels are loaded already (or a thumbnail was
        chosen by ``draft()``), the frame is one of a sequence (decoded whole), or the box is not a smaller part
        of the image: Pillow's own way is used then."""
        if (
            box is None
            or not isinstance(self._heif_file, HeifFile)
            or self._loaded_frame == self._frame
            or self._draft is not None
        ):
            return None
        try:
            rounded = tuple(int(round(v)) for v in box)
        except (TypeError, ValueError):
            return None
        left, top, right, bottom = rounded if len(rounded) == 4 else (0, 0, 0, 0)
        width, height = self.size
        if not (0 <= left < right <= width and 0 <= top < bottom <= height) or rounded == (0, 0, width, height):
            return None
        img = self._heif_file[self._frame].crop(rounded)._pillow()
        img.info = self.info.copy()
        return img

    def load(self) -> Any:
        if self._defer_load:
            return None
        if self._heif_file is not None and self._loaded_frame != self._frame:
            frame: Any = self._draft or self._heif_file[self._frame]
            try:
                if self._headroom is not None and self._draft is None:
                    img = frame.to_pillow_at(float(self._headroom))
                else:
                    img = frame._pillow()  # RGB: decoded straight into Pillow's 4-byte layout, not copied
            except (EOFError, ValueError, HeifError):
                if not ImageFile.LOAD_TRUNCATED_IMAGES:
                    raise
                self.im = Image.core.fill(self._mode, self._size, 0)
            else:
                if img.mode != self._mode and img.mode == "RGBa":
                    img = img.convert(self._mode)
                self._size = img.size
                self.im = img.im
                self.readonly = img.readonly
            self._loaded_frame = self._frame
            # The decode read the whole stream into memory: let go of it, as pillow_heif does. A file Pillow
            # opened is closed; a caller's stream is left open and untouched, so im.close() cannot close it.
            if self._exclusive_fp and self._close_exclusive_fp_after_loading and self.fp is not None:
                self.fp.close()
            self.fp = None
            if not self.is_animated:
                self._heif_file = None  # single image: release the decoder's memory
        if getattr(self, "tile", None) is None:  # an unpickled copy: its pixels are already there
            return Image.Image.load(self)
        return super().load()


def _content(fp: Any) -> HeifFile | HeifSequence:
    """What Pillow shows of a file: the frames of its image sequence when that is its main content (an AVIF
    sequence, ``avis``, or a file with no still image), else its still images."""
    opened = open_file(fp, open_flags(True, False, {"hdr_to_16bit": True}), lazy_stream=True)
    frames = opened.main_sequence()
    return file_of(opened) if frames is None else frames


def thumbnail_for(image: HeifImage, size: tuple[int, int]) -> HeifThumbnail | None:
    """The smallest decodable thumbnail of ``image`` that is a scaled copy covering the box ``size``."""
    width, height = image.size
    # What Image.thumbnail() will make of it: ``size`` is a box, the image keeps its aspect ratio.
    scale = min(size[0] / width, size[1] / height)
    need = (math.floor(width * scale), math.floor(height * scale))
    candidates = []
    for index in range(len(image.info.get("thumbnails") or [])):
        try:
            thumbnail = image.get_thumbnail(index)
        except (IndexError, ValueError, HeifError):
            continue
        if thumbnail.size[0] >= need[0] and thumbnail.size[1] >= need[1] and _is_scaled_copy(thumbnail, image):
            candidates.append(thumbnail)
    for thumbnail in sorted(candidates, key=lambda t: t.size[0] * t.size[1]):
        try:
            thumbnail.load()
        except (ValueError, HeifError):
            continue
        return thumbnail
    return None


THUMBNAIL_ASPECT_TOLERANCE = 0.02
"""How far a thumbnail's aspect ratio may be from its image's and still count as a scaled copy."""

_PADDING = 64  # a crop anchored top-left that removes less than this only drops an encoder's block padding


def _is_scaled_copy(thumbnail: HeifThumbnail, image: HeifImage) -> bool:
    """True when ``thumbnail`` shows what ``image`` shows: same mode, aspect ratio (give or take the rounding
    cameras and encoders apply), rotation, mirroring and crop, and no other colour profile."""
    if (
        thumbnail.mode != image.mode
        or thumbnail.size[0] >= image.size[0]
        or not _same_aspect(thumbnail.size, image.size)
    ):
        return False
    orientation = [t for t in image._transforms if t[0] != "clap"]
    if [t for t in thumbnail._transforms if t[0] != "clap"] != orientation:
        return False
    if not _same_crop(_crops(thumbnail._transforms), _crops(image._transforms)):
        return False
    profile, t_profile = _color_profile(image.info), _color_profile(thumbnail.info)
    return profile is None or t_profile is None or profile == t_profile


def _same_aspect(thumbnail: tuple[int, int], image: tuple[int, int]) -> bool:
    """True when ``thumbnail`` is ``image`` scaled, give or take the rounding cameras apply.

    Cameras and encoders round thumbnail sizes (to even numbers, multiples of 8...): Canon's 320x212
    preview of a 4240x2832 photo is 1.7 pixels (0.8%) off the exact 320x213.7, libheif's 50x24 thumbnail of
    a 201x101 image 1.1 pixels. Up to 2 pixels or 2% is rounding; another crop (4:3 against 3:2 is 11%) or
    a rotation is not a scaled copy.
    """
    expected_height = thumbnail[0] * image[1] / image[0]
    return abs(thumbnail[1] - expected_height) <= max(2.0, THUMBNAIL_ASPECT_TOLERANCE * expected_height)


def _crops(transforms: tuple[tuple[Any, ...], ...]) -> list[tuple[float, float, float, float]]:
    """The real crops among ``transforms``, as fractions of the image removed at each edge."""
    crops = []
    for t in transforms:
        if t[0] == "clap":
            left, top, right, bottom, width, height = t[1:]
            if left or top or right >= _PADDING or bottom >= _PADDING:
                crops.append((left / width, top / height, right / width, bottom / height))
    return crops


def _same_crop(a: list[tuple[float, float, float, float]], b: list[tuple[float, float, float, float]]) -> bool:
    if len(a) != len(b):
        return False
    pairs = zip((x for crop in a for x in crop), (y for crop in b for y in crop), strict=True)
    return all(abs(x - y) <= THUMBNAIL_ASPECT_TOLERANCE for x, y in pairs)


def _color_profile(info: dict[str, Any]) -> Any:
    if info.get("icc_profile"):
        return bytes(info["icc_profile"])
    nclx = info.get("nclx_profile")
    return tuple(nclx.get(k) for k in NCLX_KEYS) if nclx else None


class HeifImageFile(_LibHeifImageFile):
    """Pillow image file for HEIF/HEIC."""

    format = "HEIF"
    format_description = "HEIF container"


class AvifImageFile(_LibHeifImageFile):
    """Pillow image file for AVIF (registered only by :func:`register_avif_opener`)."""

    format = "AVIF"
    format_description = "AVIF container"


def _is_avif(prefix: bytes) -> tuple[bool, bool]:
    """(libheif reads it, it is AVIF): by libheif's MIME type, or a generic major brand with AVIF compatible
    brands and no HEVC one (``avif_by_compatible_brands``), as Pillow's AVIF plugin takes files."""
    supported, mimetype = sniff(prefix)
    return supported, supported and (mimetype.startswith("image/avif") or bool(avif_by_compatible_brands(prefix)))


def _accept_heif(prefix: bytes) -> bool:
    """Every file libheif reads except AVIF, which stays Pillow's unless register_avif_opener() is called."""
    supported, avif = _is_avif(prefix)
    return supported and not avif


def _accept_avif(prefix: bytes) -> bool:
    """AVIF files, and files whose generic major brand may be AVIF (``_open`` looks at the compatible brands)."""
    supported, avif = _is_avif(prefix)
    return avif or (supported and prefix[8:12] in (b"mif1", b"msf1"))


def _own_format(fp: Any, format: str | None) -> bool:
    """Whether Pillow saves to ``fp`` with ``format`` through this plugin (HEIF or AVIF)."""
    if format is None:
        name = fp if isinstance(fp, (str, bytes, os.PathLike)) else getattr(fp, "name", "")
        name = os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else ""
        format = Image.registered_extensions().get(os.path.splitext(name)[1].lower())
    return str(format).upper() in ("HEIF", "AVIF")


def _same_file(fp: Any, filename: Any) -> bool:
    """Whether Pillow's ``save`` takes ``fp`` for the file the image was read from (its name as Pillow reads it;
    both empty for streams without a name): it then copies or decodes the image before the handler runs."""
    if isinstance(fp, (str, bytes, os.PathLike)):
        target = os.fsdecode(fp)
    elif isinstance(getattr(fp, "name", None), (str, bytes, os.PathLike)):
        target = os.fsdecode(fp.name)
    else:
        target = ""
    return os.path.abspath(target) == os.path.abspath(os.fsdecode(filename or ""))


def _save(im: Image.Image, fp: IO[bytes], fmt: str, save_all: bool) -> None:
    """Save ``im`` (every frame and ``append_images`` with ``save_all``) as ``fmt``; ``im.encoderinfo``
    holds the parameters, which apply to every frame. Every parameter and frame is checked before encoding."""
    if isinstance(im, _LibHeifImageFile):
        im._defer_load = False  # from here on, whatever needs the pixels decodes them
    kwargs = dict(getattr(im, "encoderinfo", {}) or {})
    if fmt == "AVIF":  # Pillow's AVIF contract
        sources = [im, *_pillow_sources(kwargs.get("append_images"))] if save_all else [im]
        if not _avif_copied(im, sources, fp, kwargs, save_all):
            save_avif(sources, fp, kwargs, save_all, _source_of(im))
        return
    if save_all and kwargs.get("duration") is not None:  # a timed sequence, as Pillow's AVIF plugin writes
        _save_sequence(im, fp, fmt, kwargs)
        return
    settings = _write.encode_settings({**kwargs, "format": fmt}, fmt, strict=False)  # Pillow passes its own too
    frames: list[_write.Frame] = []
    current = im.tell()
    try:
        sources = [im, *_pillow_sources(kwargs.get("append_images"))] if save_all else [im]
        shown = _frames_shown(sources)
        for source in sources:
            for frame in ImageSequence.Iterator(source) if save_all else [source]:

                def encoded(frame: Image.Image = frame) -> _write.Frame:
                    check_pillow_size(frame, settings, keep_ycbcr=True)
                    image = image_from_frame(frame, _source_of(frame), keep_ycbcr=True)
                    if frame.info.get("primary") is not None:
                        image.info["primary"] = bool(frame.info["primary"])
                    return frame_of(image, settings.keep_quality)

                stored = _stored_candidate(frame, shown, settings)
                if stored is None:
                    if settings.reencode is False:
                        raise ValueError(
                            f"reencode=False, but frame {len(frames)} cannot be copied as stored: its pixels are "
                            "not known to be the stored ones (loaded before the save, or not read by this plugin)"
                        )
                    frames.append(encoded())
                else:
                    frames.append(save_frame(stored, settings, settings.image, len(frames), encoded))
    finally:
        if im.tell() != current:
            im.seek(current)
    _write.save_pillow(frames, fp, settings)


class _NeedsEncode(Exception):
    """A frame cannot be copied as stored (raised where the frame to encode would be made)."""


def _avif_copied(
    im: Image.Image, sources: list[Image.Image], fp: IO[bytes], kwargs: dict[str, Any], save_all: bool
) -> bool:
    """Write ``im`` as stored when Pillow's AVIF save would only encode its stored pixels again: a still image
    this plugin read and the caller never loaded (or ``reencode=False``), saved without any of Pillow's coding
    parameters (``quality``, ``subsampling``, ``codec``...). False when it must be encoded, as Pillow's plugin does.
    """
    animated = save_all and (len(sources) > 1 or getattr(im, "n_frames", 1) > 1)
    needs = "an animation" if animated else ", ".join(sorted(set(kwargs) & (PILLOW_AVIF_KEYS - {"max_threads"})))
    reencode = kwargs.get("reencode")
    if reencode or needs:
        if reencode is False:
            raise ValueError(f"reencode=False, but the save asks for an encode ({needs})")
        return False
    params = {k: v for k, v in kwargs.items() if k not in PILLOW_AVIF_KEYS}
    settings = _write.encode_settings({**params, "format": "AVIF"}, "AVIF", strict=False)
    candidate = _stored_candidate(im, _frames_shown([im]), settings)
    if candidate is None:
        if settings.reencode is False:
            raise ValueError("reencode=False, but the image's pixels are not known to be the stored ones")
        return False

    def needs_encode() -> _write.Frame:
        raise _NeedsEncode

    try:
        frame = save_frame(candidate, settings, settings.image, 0, needs_encode)
    except _NeedsEncode:
        return False
    _write.save_pillow([frame], fp, settings)
    return True


def _frames_shown(sources: list[Image.Image]) -> set[tuple[int, int]]:
    """(id of the image, frame index) of the frames whose pixels the caller has had (loaded before the save): only
    those may differ from the stored ones, since ``seek`` drops a frame's pixels."""
    shown = set()
    for n, source in enumerate(sources):
        if isinstance(source, _LibHeifImageFile):
            loaded = source._pixels_shown if n == 0 else source._loaded_frame == source._frame
            if loaded:
                shown.add((id(source), source.tell()))
    return shown


def _stored_candidate(frame: Image.Image, shown: set[tuple[int, int]], settings: Any) -> HeifImage | None:
    """The frame as the image stored in the file this plugin read it from, when its pixels are provably the
    stored ones (never loaded by the caller, at its size as read), or the caller said so (``reencode=False``)."""
    entry = _source_of(frame)
    if entry is None or frame.size != entry.size:
        return None
    if (id(frame), frame.tell()) in shown and settings.reencode is not False:
        return None
    info: dict[str, Any] = {k: v for k, v in frame.info.items() if isinstance(k, str)}
    info["exif"] = exif_from_pillow(frame)
    xmp = xmp_from_pillow(frame)
    if xmp:
        info["xmp"] = xmp
    return image_as_stored(entry, info)


def _save_sequence(im: Image.Image, fp: IO[bytes], fmt: str, kwargs: dict[str, Any]) -> None:
    """``save_all`` with ``duration``: ``im``'s frames and ``append_images``' as an image sequence, ``loop``
    times (default 0: forever)."""
    params = {k: v for k, v in kwargs.items() if k in SEQUENCE_PARAMS}
    sources = [im, *_pillow_sources(kwargs.get("append_images"))]
    current = im.tell()
    try:
        save_sequence(sources, fp, kwargs["duration"], kwargs.get("loop", 0), fmt, **params)
    finally:
        if im.tell() != current:
            im.seek(current)


def _source_of(frame: Any) -> Entry | None:
    """What a frame of a HEIF/AVIF file opened by this plugin was read from, unless a thumbnail was decoded in
    its place (``draft``)."""
    if not isinstance(frame, _LibHeifImageFile) or frame._draft is not None:
        return None
    return frame._sources.get(frame.tell())


def _pillow_sources(items: Any) -> list[Any]:
    """Pillow's ``append_images``: a list of Pillow images."""
    if items is None:
        return []
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable) or hasattr(items, "tobytes"):
        raise TypeError(f"append_images must be a list of Pillow images, not {type(items).__name__}")
    items = list(items)
    for item in items:
        if not (hasattr(item, "mode") and hasattr(item, "tobytes")):
            raise TypeError(f"append_images takes Pillow images here, not {type(item).__name__}")
    return items


def _save_hook(fmt: str, save_all: bool) -> Any:
    """A Pillow save handler writing ``fmt`` ("HEIF" or "AVIF")."""

    def save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
        _save(im, fp, fmt, save_all)

    return save


def _apply_options(kwargs: dict[str, Any]) -> None:
    for key, value in kwargs.items():
        name = options.OPENER_KWARGS.get(key)
        if name is None:
            warnings.warn(f"Unknown option: {key}", UserWarning, stacklevel=3)
            continue
        setattr(options, name, value)


def _register(cls: type[_LibHeifImageFile], accept: Any, extensions: list[str], mime: str) -> None:
    fmt = str(cls.format)
    Image.register_open(fmt, cls, accept)
    if libheif_info()[fmt]:  # an encoder for the format exists
        Image.register_save(fmt, _save_hook(fmt, save_all=False))
        Image.register_save_all(fmt, _save_hook(fmt, save_all=True))
    Image.register_extensions(fmt, extensions)
    Image.register_mime(fmt, mime)


def register_heif_opener(**kwargs: Any) -> None:
    """Register the HEIF plugin with Pillow (open, and save when an HEVC encoder exists).

    Keyword arguments set :mod:`heifkit.options` (``decode_threads``, ``thumbnails``, ``depth_images``,
    ``aux_images``, ``quality``, ``save_to_12bit``, ``save_nclx_profile``, ``preferred_encoder``,
    ``preferred_decoder``, ``grid_tile_size``, ``disable_security_limits``, ``hdr_headroom``: open HDR photos
    rendered for a display of that headroom, see ``options.HDR_HEADROOM``); unknown ones warn.
    """
    _apply_options(kwargs)
    _register(HeifImageFile, _accept_heif, HEIF_EXTENSIONS, "image/heif")


def register_avif_opener(**kwargs: Any) -> None:
    """Register heifkit as Pillow's AVIF plugin (replacing Pillow's own for this process).

    Opt-in: without this call Pillow's AVIF plugin is untouched. Pillow's plugins are initialised first
    so that its lazy plugin loading cannot silently take the format back later.
    """
    _apply_options(kwargs)
    Image.init()
    _register(AvifImageFile, _accept_avif, AVIF_EXTENSIONS, "image/avif")
