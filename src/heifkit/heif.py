"""``HeifFile`` (the images of one file, or a new container to save) and the module-level functions.

Reading is lazy: opening parses the container and each image's properties and metadata (``_read``);
pixels are decoded on first access (``image``). Saving hands plain frames to the writer (``_write``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Iterator
from typing import Any

from . import _read, _write
from ._input import FTYP_PEEK, FileLike, peek, sniff
from .image import (
    HeifAuxImage,
    HeifImage,
    HeifThumbnail,
    image_from_bytes,
    image_from_entry,
    image_from_heif,
    image_from_pillow,
    pillow_target,
)

__all__ = [
    "HeifFile",
    "open_heif",
    "read_heif",
    "is_supported",
    "get_file_mimetype",
    "from_pillow",
    "from_bytes",
    "encode",
]


def get_file_mimetype(fp: FileLike) -> str:
    """MIME type libheif gives the file (``image/heic``, ``image/avif``, ``image/heif-sequence``...) or ``''``.

    A file object is read from its current position, which is restored.
    """
    return sniff(peek(fp, FTYP_PEEK))[1]


def is_supported(fp: FileLike) -> bool:
    """True when libheif recognises the data (at a file object's current position) as a file it reads.

    Only the ``ftyp`` box is checked; a damaged file with a valid header still returns True.
    """
    return sniff(peek(fp, FTYP_PEEK))[0]


class HeifFile:
    """The images of one HEIF/AVIF file (or a new, empty container to add images to and save).

    ``HeifFile(fp)`` reads a file object from offset 0 and leaves it at 0 (a stream that cannot seek is
    read from where it is), as Pillow and pillow_heif do. Properties such as ``size``, ``mode``,
    ``info`` and ``data`` are those of the primary image. Indexing takes ints (negative too) and slices.

    Attributes:
        mimetype: libheif's MIME type of the file read (``image/heic``, ``image/avif``, ...); ``""`` for a
            new container.
    """

    def __init__(
        self, fp: FileLike | None = None, convert_hdr_to_8bit: bool = True, bgr_mode: bool = False, **kwargs: Any
    ) -> None:
        self._images: list[HeifImage] = []
        self.mimetype = ""
        if fp is not None:
            flags = _read.open_flags(convert_hdr_to_8bit, bgr_mode, kwargs)
            self.mimetype, flags, entries = _read.read_file(fp, flags)
            self._images = [image_from_entry(entry, flags) for entry in entries]

    @classmethod
    def _open_stream_lazily(cls, fp: FileLike, **kwargs: Any) -> HeifFile:
        """Open ``fp`` reading only what opening needs; the rest is read at the first decode, so ``fp`` must
        stay open until then (the Pillow plugin, where Pillow keeps it open until ``load()``)."""
        heif_file = cls()
        flags = _read.open_flags(True, False, kwargs)
        heif_file.mimetype, flags, entries = _read.read_file(fp, flags, lazy_stream=True)
        heif_file._images = [image_from_entry(entry, flags) for entry in entries]
        return heif_file

    # --- primary image -----------------------------------------------------------------------------
    @property
    def primary_index(self) -> int:
        """The index of the primary image (the last image with ``info["primary"]``, else 0); settable."""
        index = 0
        for i, image in enumerate(self._images):
            if image.info.get("primary"):
                index = i
        return index

    @primary_index.setter
    def primary_index(self, value: int) -> None:
        index = _normalize_index(value, len(self._images))
        for i, image in enumerate(self._images):
            image.info["primary"] = i == index

    def _primary(self) -> HeifImage:
        if not self._images:
            raise IndexError("HeifFile has no images")
        return self._images[self.primary_index]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the primary image."""
        return self._primary().size

    @property
    def mode(self) -> str:
        """Mode of the primary image."""
        return self._primary().mode

    @property
    def has_alpha(self) -> bool:
        """Whether the primary image has alpha."""
        return self._primary().has_alpha

    @property
    def premultiplied_alpha(self) -> bool:
        """Whether the primary image's alpha is premultiplied."""
        return self._primary().premultiplied_alpha

    @premultiplied_alpha.setter
    def premultiplied_alpha(self, value: bool) -> None:
        self._primary().premultiplied_alpha = value

    @property
    def data(self) -> Any:
        """Pixel data of the primary image."""
        return self._primary().data

    @property
    def stride(self) -> int:
        """Row stride of the primary image."""
        return self._primary().stride

    @property
    def info(self) -> dict[str, Any]:
        """``info`` of the primary image (the same dict)."""
        return self._primary().info

    @property
    def __array_interface__(self) -> dict[str, Any]:
        return self._primary().__array_interface__

    def to_pillow(self) -> Any:
        """The primary image as a Pillow image."""
        return self._primary().to_pillow()

    def get_thumbnail(self, index: int) -> HeifThumbnail:
        """Thumbnail ``index`` of the primary image."""
        return self._primary().get_thumbnail(index)

    def get_aux_image(self, aux_id: int) -> HeifAuxImage:
        """Auxiliary image ``aux_id`` of the primary image."""
        return self._primary().get_aux_image(aux_id)

    # --- sequence ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._images)

    def __iter__(self) -> Iterator[HeifImage]:
        return iter(list(self._images))

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return self._images[index]
        if not isinstance(index, int):
            raise TypeError(f"indices must be integers or slices, not {type(index).__name__}")
        return self._images[_normalize_index(index, len(self._images))]

    def __delitem__(self, index: int | slice) -> None:
        if isinstance(index, slice):
            del self._images[index]
            return
        del self._images[_normalize_index(index, len(self._images))]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} with {len(self._images)} images: {[str(i) for i in self._images]}>"

    # --- adding and saving ---------------------------------------------------------------------------
    def add_frombytes(self, mode: str, size: tuple[int, int], data: Any, **kwargs: Any) -> HeifImage:
        """Append an image made from raw bytes in ``mode`` (``stride=`` for padded rows)."""
        image = image_from_bytes(mode, size, data, **kwargs)
        self._images.append(image)
        return image

    def add_from_pillow(self, image: Any) -> HeifImage:
        """Append a copy of a Pillow image (mode converted as documented, orientation applied)."""
        added = image_from_pillow(image)
        self._images.append(added)
        return added

    def add_from_heif(self, image: HeifImage | HeifFile) -> HeifImage:
        """Append a copy of a ``HeifImage``, or of every image of a ``HeifFile`` (returns the last added)."""
        sources = list(image) if isinstance(image, HeifFile) else [image]
        if not sources:
            raise ValueError("Cannot add images from an empty HeifFile.")
        added = None
        for src in sources:
            added = image_from_heif(src)
            self._images.append(added)
        assert added is not None
        return added

    def save(self, fp: Any, **kwargs: Any) -> None:
        """Encode all images (``save_all=True`` by default) to a path or a writable binary stream.

        Takes every parameter of the "Saving images" page (``docs/saving.md``). Without ``format``,
        a path ending in ``.avif``/``.avifs`` is written as AVIF, anything else as HEIF. Every parameter and
        image is checked before anything is encoded; a path is replaced only once the new file is complete.
        """
        if not isinstance(fp, (str, os.PathLike)) and not hasattr(fp, "write"):
            raise TypeError("`fp` must be a path to file or an object with `write` method.")
        params = _write.save_params(kwargs, _write.format_for(fp))
        images = list(self._images) + _as_images(kwargs.get("append_images"), params)
        if not params.save_all:
            images = images[:1]
        if not images:
            raise ValueError("Cannot write file with no images as HEIF.")
        _write.check_target(fp)
        _write.save([frame_of(image) for image in images], fp, params)

    # --- copying -----------------------------------------------------------------------------------
    def __copy__(self) -> HeifFile:
        other = HeifFile()
        other.mimetype = self.mimetype
        other._images = list(self._images)
        return other

    def __getstate__(self) -> dict[str, Any]:
        return {"mimetype": self.mimetype, "images": self._images}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.mimetype = state["mimetype"]
        self._images = list(state["images"])

    def __deepcopy__(self, memo: dict[int, Any]) -> HeifFile:
        other = HeifFile()
        other.mimetype = self.mimetype
        for image in self._images:
            clone = HeifImage.__new__(HeifImage)
            clone.__setstate__(copy.deepcopy(image.__getstate__(), memo))
            other._images.append(clone)
        return other


def _normalize_index(index: int, length: int) -> int:
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"invalid image index: {index}")
    return index


def open_heif(fp: FileLike, convert_hdr_to_8bit: bool = True, bgr_mode: bool = False, **kwargs: Any) -> HeifFile:
    """Open a HEIF/AVIF file lazily (pixels are decoded on first access).

    Args:
        fp: path, bytes-like object, or binary file object (read from offset 0 and left at 0; a stream
            that cannot seek is read from where it is).
        convert_hdr_to_8bit: decode 10/12-bit colour images to 8 bits (``RGB``/``RGBA``).
        bgr_mode: ``BGR``/``BGRA`` channel order (for OpenCV).
        **kwargs: ``hdr_to_16bit`` (default True: widen 10/12-bit samples to 16 bits),
            ``remove_stride`` (default True), ``decode_threads``, ``decoder_id``, ``limits`` (a
            :class:`SecurityLimits` or a dict of the limits to change from ``options.SECURITY_LIMITS``),
            ``disable_security_limits``.

    Images libheif cannot open are left out; the file fails only when none opens, or when an image exceeds
    a security limit.

    Raises:
        HeifError: the subclass for what libheif reports (see the "Errors" page); SecurityLimitError for a
            file beyond a security limit (some are met only when an image is decoded).
        FileNotFoundError: there is no such file (and the other ``OSError`` of opening a path).
        TypeError: an unknown keyword argument, or a text-mode file object.
    """
    return HeifFile(fp, convert_hdr_to_8bit, bgr_mode, **kwargs)


def read_heif(fp: FileLike, convert_hdr_to_8bit: bool = True, bgr_mode: bool = False, **kwargs: Any) -> HeifFile:
    """Like :func:`open_heif`, then decode every top-level image."""
    heif_file = open_heif(fp, convert_hdr_to_8bit, bgr_mode, **kwargs)
    for image in heif_file:
        image.load()
    return heif_file


def from_pillow(pil_image: Any) -> HeifFile:
    """A new ``HeifFile`` holding a copy of a Pillow image."""
    heif_file = HeifFile()
    heif_file.add_from_pillow(pil_image)
    return heif_file


def from_bytes(mode: str, size: tuple[int, int], data: Any, **kwargs: Any) -> HeifFile:
    """A new ``HeifFile`` holding one image made from raw bytes (``stride=`` for padded rows)."""
    heif_file = HeifFile()
    heif_file.add_frombytes(mode, size, data, **kwargs)
    return heif_file


def encode(mode: str, size: tuple[int, int], data: Any, fp: Any, **kwargs: Any) -> None:
    """Encode raw bytes straight to ``fp``; takes every ``save`` parameter plus ``stride``."""
    stride = kwargs.pop("stride", None)
    extra = {"stride": stride} if stride is not None else {}
    from_bytes(mode, size, data, **extra).save(fp, **kwargs)


def frame_of(image: HeifImage) -> _write.Frame:
    """The plain frame the writer takes for ``image`` (decoding it first if it was read from a file)."""
    image.load()
    return _write.Frame(image.mode, image.size, image._data, image._stride, image.info, image.pending_orientation)


def _as_images(items: Any, params: _write.SaveParams) -> list[HeifImage]:
    """``append_images``: HeifImage, HeifFile (all its images) or Pillow images (checked before they are copied)."""
    if items is None:
        return []
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable) or hasattr(items, "tobytes"):
        raise TypeError(f"append_images must be a list of images, not {type(items).__name__}")
    result: list[HeifImage] = []
    for item in items:
        if isinstance(item, HeifImage):
            result.append(item)
        elif isinstance(item, HeifFile):
            result.extend(item)
        elif hasattr(item, "mode") and hasattr(item, "tobytes"):  # a Pillow image
            check_pillow_size(item, params)
            result.append(image_from_pillow(item))
        else:
            raise TypeError(f"append_images takes HeifImage, HeifFile or Pillow images, not {type(item).__name__}")
    return result


def check_pillow_size(img: Any, params: _write.SaveParams, keep_ycbcr: bool = False) -> None:
    """Refuse a Pillow image that cannot be written, before its pixels are loaded and copied."""
    width, height = img.size
    if width > 0 and height > 0:  # empty images: image_from_pillow says "Empty images are not supported."
        info = {k: img.info[k] for k in ("tiling", "chroma") if k in img.info}
        _write.check_size(pillow_target(img, keep_ycbcr), (width, height), info, params.file)
