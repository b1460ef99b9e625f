"""Editing one HEIC/AVIF file without re-encoding it (``heifkit edit``): rotation, mirroring and crop as the
images' ``irot``/``imir``/``clap`` properties, the EXIF orientation, metadata, thumbnails and the primary image.

Everything is saved with ``reencode=False``: an edit that would need an encode fails (with the save's reason)
and nothing is written. :func:`heifkit.batch.convert_file` runs :func:`edit` on a worker; :class:`EditOptions`
holds plain values so that a job pickles to any executor.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from PIL import Image

from .._info.metadata import (
    exif_with_orientation,
    get_orientation,
    set_orientation,
    xmp_orientation,
    xmp_with_orientation,
)
from .._info.transforms import orientation_between, orientation_of, orientation_transpose
from ..heif import HeifFile, is_supported
from ..image import HeifImage
from .formats import write_to

__all__ = ["EDIT_EXTENSIONS", "EditOptions", "edit"]

EDIT_EXTENSIONS = frozenset([".heic", ".heif", ".hif", ".avif"])
"""The files an edit takes from a folder (a file named explicitly is always tried)."""

_CLOCKWISE = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
"""Clockwise degrees (``--rotate``, as jpegtran and exiftool count) -> Pillow's counter-clockwise transposes."""
_FLIPS = {"horizontal": Image.Transpose.FLIP_LEFT_RIGHT, "vertical": Image.Transpose.FLIP_TOP_BOTTOM}
_TIFF_HEADERS = (b"II*\x00", b"MM\x00*")
_EXIF_PREFIX = b"Exif\x00\x00"
_OTHER_FORMAT = {"AVIF": (".heic", ".hif"), "HEIF": (".avif",)}
"""Output extensions that name the other format (``.heif`` is either)."""


@dataclass(frozen=True)
class EditOptions:
    """What ``heifkit edit`` changes, in this order: ``exif``/``xmp`` set, the orientation baked
    (``orientation="bake"``), ``rotate``, ``flip``, ``crop``, then ``strip``/``strip_icc``, the orientation
    tag set (``orientation`` 1..8) and the thumbnails removed, on the primary image (after ``primary``) or,
    with ``all_images``, on every top-level image.

    Raises:
        ValueError: a value out of range, or nothing to change.
        TypeError: a value of the wrong type.
    """

    rotate: int = 0  # clockwise degrees: 90, 180, 270
    flip: str | None = None  # "horizontal" (left-right mirror) or "vertical"
    crop: tuple[int, int, int, int] | None = None  # (left, top, right, bottom) of the image once turned
    orientation: int | str | None = None  # the EXIF tag's new value (1..8), or "bake"
    strip: bool = False  # EXIF, XMP and the other metadata items (IPTC...)
    strip_icc: bool = False
    exif: bytes | None = None  # replaces the EXIF (starting with Exif\0\0 or a TIFF header)
    xmp: bytes | None = None  # replaces the XMP
    remove_thumbnails: bool = False
    primary: int | None = None  # the index of the new primary image
    all_images: bool = False
    overwrite: bool = False  # replace an existing output (editing in place always replaces the input)

    def __post_init__(self) -> None:
        if isinstance(self.rotate, bool) or not isinstance(self.rotate, int):
            raise TypeError(f"rotate must be an int, not {type(self.rotate).__name__}")
        if self.rotate not in (0, *_CLOCKWISE):
            raise ValueError(f"rotate must be 90, 180 or 270 (degrees clockwise), not {self.rotate}")
        if self.flip is not None and self.flip not in _FLIPS:
            raise ValueError(f"flip must be horizontal or vertical, not {self.flip!r}")
        if self.crop is not None:
            box = tuple(self.crop)
            if len(box) != 4 or any(isinstance(v, bool) or not isinstance(v, int) for v in box):
                raise TypeError("crop must be four ints (left, top, right, bottom)")
            if box[0] < 0 or box[1] < 0 or box[2] <= box[0] or box[3] <= box[1]:
                raise ValueError(f"crop box {box} is empty or starts outside the image")
            object.__setattr__(self, "crop", box)
        if self.orientation is not None and self.orientation != "bake":
            if isinstance(self.orientation, bool) or not isinstance(self.orientation, int):
                raise TypeError(f"orientation must be an int or 'bake', not {type(self.orientation).__name__}")
            if not 1 <= self.orientation <= 8:
                raise ValueError(f"orientation must be 1..8 or 'bake', not {self.orientation}")
        for name in ("exif", "xmp"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (bytes, bytearray)):
                raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
        if self.exif is not None and bytes(self.exif).removeprefix(_EXIF_PREFIX)[:4] not in _TIFF_HEADERS:
            raise ValueError("exif must start with a TIFF header (II*\\0 or MM\\0*), or Exif\\0\\0 and one")
        if self.xmp is not None and b"xmpmeta" not in self.xmp and b"rdf:RDF" not in self.xmp:
            raise ValueError("xmp does not look like an XMP packet (no x:xmpmeta or rdf:RDF in it)")
        if self.primary is not None and (isinstance(self.primary, bool) or not isinstance(self.primary, int)):
            raise TypeError(f"primary must be an int, not {type(self.primary).__name__}")
        if not self.changes():
            raise ValueError("nothing to edit: give a rotation, flip, crop, orientation or metadata change")

    def changes(self) -> list[str]:
        """The changes asked for, by option name."""
        names = ("rotate", "flip", "crop", "orientation", "strip", "strip_icc", "exif", "xmp", "remove_thumbnails")
        asked = [name for name in names if getattr(self, name) not in (None, False, 0)]
        return asked + (["primary"] if self.primary is not None else [])


def edit(source: str, target: Path, options: EditOptions, notes: list[str]) -> tuple[list[str], list[Path]]:
    """Edit ``source`` into ``target`` (``source`` itself: in place, atomically): the files written ([] when
    ``target`` exists and is another file, without ``overwrite``), and the output names. ``notes`` gets what the
    caller should know (images left as they are, an orientation that was 1 already).

    Raises:
        ValueError: the file is no HEIF/AVIF still image, or the edit cannot be made without an encode (an odd
            crop of 4:2:0 chroma...): nothing is written.
    """
    in_place = _same_file(source, target)
    if not in_place and not options.overwrite and os.path.lexists(target):
        return [], [target]
    if not is_supported(source):
        raise ValueError("not a HEIF or AVIF file: edit changes HEIC and AVIF files, as they are stored")
    heif = HeifFile(source)
    if heif.has_sequence:
        raise ValueError("the file holds an image sequence, which an edit cannot carry over")
    fmt = "AVIF" if heif.mimetype.startswith("image/avif") else "HEIF"
    if not in_place and target.suffix.lower() in _OTHER_FORMAT[fmt]:
        raise ValueError(f"the input is {fmt} and an edit keeps its format: the output cannot end in {target.suffix}")
    if options.primary is not None:
        if not -len(heif) <= options.primary < len(heif):
            raise ValueError(f"no image {options.primary} to make primary: the file has {len(heif)} image(s)")
        heif.primary_index = options.primary
    indices = range(len(heif)) if options.all_images else [heif.primary_index]
    if len(heif) > 1 and not options.all_images and options.changes() != ["primary"]:
        notes.append(f"{len(heif) - 1} other image(s) left as they are (--all-images edits them too)")
    # bake: how irot/imir turn each coded image now, as an EXIF orientation (read without them applied)
    turned = [1] * len(heif)
    if options.orientation == "bake":
        turned = [orientation_of(im.info["transformations"]) for im in HeifFile(source, apply_transformations=False)]
    for index in indices:
        heif[index] = _edited(heif[index], options, notes, turned[index])
    write = functools.partial(_save, heif, fmt)
    written = write_to(target, write, overwrite=in_place or options.overwrite)
    return ([str(target)] if written else []), [target]


def _same_file(source: str, target: Path) -> bool:
    try:
        return os.path.samefile(source, target)
    except OSError:  # either is missing: the source fails when it is read
        return False


def _save(heif: HeifFile, fmt: str, f: IO[bytes]) -> None:
    heif.save(f, format=fmt, reencode=False)


def _edited(image: HeifImage, options: EditOptions, notes: list[str], turned: int) -> HeifImage:
    """One image with the edits of ``options``, in their order (:class:`EditOptions`); ``turned``: the EXIF
    orientation its ``irot``/``imir`` amount to."""
    if options.exif is not None:
        image.info["exif"] = bytes(options.exif)
    if options.xmp is not None:
        image.info["xmp"] = bytes(options.xmp)
    if options.orientation == "bake":
        image = _baked(image, turned, notes)
    if options.rotate:
        image = image.transpose(_CLOCKWISE[options.rotate])
    if options.flip is not None:
        image = image.transpose(_FLIPS[options.flip])
    if options.crop is not None:
        image = image.crop(options.crop, lossless=True)
    info = image.info
    if options.strip:
        info.update(metadata=[], **{k: None for k in ("exif", "xmp") if getattr(options, k) is None})
    if options.strip_icc:
        info["icc_profile"] = None
    if isinstance(options.orientation, int):
        _set_orientation_tag(info, options.orientation)
    if options.remove_thumbnails:
        info["thumbnails"] = []
    return image


def _baked(image: HeifImage, turned: int, notes: list[str]) -> HeifImage:
    """``image`` with ``irot``/``imir`` that turn its coded pixels as its EXIF (else XMP) orientation says (the
    orientation of the stored pixels), and the tag reset to 1; as it was when the tag is 1 or missing.

    A camera that writes both says the same twice: then only the tag is reset. Otherwise the shown image turns
    by the difference (all of the tag's turn when the image had no ``irot``/``imir``).
    """
    wanted = get_orientation(image.info) or 1
    if wanted == 1:
        notes.append("orientation: 1 already, nothing to bake")
        return image
    method = orientation_transpose(orientation_between(turned, wanted))
    if method is None:
        set_orientation(image.info)
        notes.append(f"orientation {wanted}: irot/imir turn the image so already, the tag alone was reset to 1")
        return image
    return image.transpose(method)  # the EXIF/XMP orientation reset to 1 with it


def _set_orientation_tag(info: dict[str, Any], value: int) -> None:
    """The EXIF orientation set to ``value`` (a minimal EXIF made when there is none), and an XMP
    ``tiff:Orientation`` changed to match, so that readers that prefer either agree."""
    info["exif"] = exif_with_orientation(info.get("exif"), value)
    if info.get("xmp") and xmp_orientation(info["xmp"]) is not None:
        info["xmp"] = xmp_with_orientation(info["xmp"], value)
