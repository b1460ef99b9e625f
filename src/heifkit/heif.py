"""``HeifFile`` (the images of one file, or a new container to save) and the module-level functions.

Reading is lazy: opening parses the container and each image's properties and metadata (``_read``);
pixels are decoded on first access (``image``). Saving hands plain frames to the writer (``_write``).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from . import sequence
from ._decode.region import check_box, crop_rows
from ._info.checks import as_int
from ._info.modes import mode_of
from ._info.properties import NCLX_VALUES
from ._info.transforms import as_data, image_size, orientation_of, stored_geometry, transposed
from ._native.libheif import Context
from ._read import entries as _read
from ._read.source import FTYP_PEEK, FileLike, open_context, peek, sniff
from ._read.stream import StreamSource
from ._write import still as _write
from ._write.attached import attached_to
from ._write.stored import coded_format
from .gainmap import add_gain_maps
from .image import (
    HeifAuxImage,
    HeifImage,
    HeifThumbnail,
    image_from_bytes,
    image_from_entry,
    image_from_heif,
    image_from_pillow,
    pillow_target,
    stored_image,
    stored_pixels,
)

__all__ = [
    "HeifFile",
    "open_heif",
    "read_heif",
    "is_supported",
    "get_file_mimetype",
    "from_pillow",
    "from_bytes",
    "from_hdr",
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


@dataclass(frozen=True)
class OpenedFile:
    """A parsed file: its still images (lazy) and the libheif context they share with its sequence, if any.

    What :func:`open_file` gives every reader of a file: ``HeifFile`` (:func:`file_of`), the Pillow plugin (which
    shows the main sequence instead when there is one) and :func:`~heifkit.fileinfo.describe`.
    """

    mimetype: str
    images: list[HeifImage]
    has_sequence: bool
    ctx: Context
    flags: _read.OpenFlags

    def main_sequence(self) -> sequence.HeifSequence | None:
        """The sequence Pillow shows instead of the still images (an AVIF sequence, ``avis``, or a file with no
        still image, whose one image is the first frame), from the same context; None for other files."""
        if not self.has_sequence:
            return None
        return sequence.main_sequence(self.ctx, self.mimetype, self.flags, file_of(self).info)  # the primary's


def open_file(fp: FileLike, flags: _read.OpenFlags, lazy_stream: bool = False) -> OpenedFile:
    """Parse ``fp`` once: its still images (nothing decoded), whether it holds a sequence, and the context.

    ``lazy_stream``: a seekable stream is read only as far as opening needs, the rest at the first decode
    (``_read.stream``), so it must stay open until then (the Pillow plugin: Pillow keeps it open until ``load()``).
    A file with a sequence and no still image gets the sequence's first frame as its one image.
    """
    ctx, mimetype = open_context(fp, flags.limits, lazy_stream)
    try:
        mimetype, read_flags, entries = _read.read_context(ctx, mimetype, flags, stills=False)
        images = [image_from_entry(entry, read_flags) for entry in entries]
        add_gain_maps(images, read_flags)
        has_sequence = sequence.has_sequence(ctx)
        if not entries:  # an image sequence alone: its first frame
            images = [sequence.first_frame_image(ctx, mimetype, flags)]
    finally:
        if isinstance(ctx.source, StreamSource):
            ctx.source.opened()
    return OpenedFile(mimetype, images, has_sequence, ctx, flags)


def file_of(opened: OpenedFile) -> HeifFile:
    """The ``HeifFile`` of a parsed file's still images."""
    heif_file = HeifFile()
    heif_file._adopt(opened)
    return heif_file


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
        self._has_sequence = False
        if fp is not None:
            self._adopt(open_file(fp, _read.open_flags(convert_hdr_to_8bit, bgr_mode, kwargs)))

    def _adopt(self, opened: OpenedFile) -> None:
        self._images, self.mimetype, self._has_sequence = list(opened.images), opened.mimetype, opened.has_sequence

    @property
    def has_sequence(self) -> bool:
        """True when the file also holds an image sequence (an animation track): read its frames with
        :func:`~heifkit.open_sequence`. The images here are the file's still images; a file with a sequence
        and no still image shows its first frame as its one image."""
        return self._has_sequence

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

    def crop(self, box: tuple[int, int, int, int]) -> HeifImage:
        """The region ``box`` of the primary image, decoding only that region (:meth:`HeifImage.crop`)."""
        return self._primary().crop(box)

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

    def __setitem__(self, index: int, image: HeifImage) -> None:
        """Put ``image`` in place of the image at ``index`` (e.g. ``f[0] = f[0].transpose(...)``); a lossless
        edit of an image read from a file is still saved as stored."""
        if not isinstance(index, int):
            raise TypeError(f"indices must be integers, not {type(index).__name__}")
        if not isinstance(image, HeifImage):
            raise TypeError(f"a HeifFile holds HeifImage objects, not {type(image).__name__}")
        self._images[_normalize_index(index, len(self._images))] = image

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
        settings = _write.encode_settings(kwargs, _write.format_for(fp))
        images = list(self._images) + _as_images(kwargs.get("append_images"), settings)
        if not settings.save_all:
            images = images[:1]
        if not images:
            raise ValueError("Cannot write file with no images as HEIF.")
        _write.check_target(fp)
        primary = _write.primary_index(images, settings.primary_index)  # type: ignore[arg-type]
        frames = [
            save_frame(image, settings, settings.image if i == primary else {}, i) for i, image in enumerate(images)
        ]
        _write.save(frames, fp, settings)

    # --- copying -----------------------------------------------------------------------------------
    def __copy__(self) -> HeifFile:
        other = HeifFile()
        other.mimetype, other._has_sequence = self.mimetype, self._has_sequence
        other._images = list(self._images)
        return other

    def __getstate__(self) -> dict[str, Any]:
        return {"mimetype": self.mimetype, "images": self._images, "has_sequence": self._has_sequence}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.mimetype = state["mimetype"]
        self._images = list(state["images"])
        self._has_sequence = bool(state.get("has_sequence", False))

    def __deepcopy__(self, memo: dict[int, Any]) -> HeifFile:
        other = HeifFile()
        other.mimetype, other._has_sequence = self.mimetype, self._has_sequence
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
            ``remove_stride`` (default True), ``decode_threads``, ``codec_threads``, ``decoder_id``, ``limits``
            (a :class:`SecurityLimits` or a dict of the limits to change from ``options.SECURITY_LIMITS``),
            ``disable_security_limits``, ``apply_transformations`` (default True; False gives the stored
            pixels and ``info["transformations"]``, see :func:`apply_transformations`).

    Images libheif cannot open are left out; the file fails only when none opens, or when an image exceeds
    a security limit. A file that holds an image sequence (``has_sequence``) shows its still images here;
    one with a sequence and no still image shows the sequence's first frame. :func:`~heifkit.open_sequence`
    reads every frame.

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


_PRIMARIES_BY_NAME = {"bt709": 1, "srgb": 1, "bt2020": 9, "p3": 12, "display-p3": 12, "dci-p3": 11}
_HDR_TRANSFERS = {"pq": 16, "hlg": 18}


def from_hdr(
    array: Any,
    primaries: int | str = 1,
    transfer: str = "pq",
    bit_depth: int = 10,
    sdr: Any = None,
    gain_map_scale: int = 2,
) -> HeifFile:
    """A new ``HeifFile`` holding an HDR image made from linear light: a (height, width, 3) array of floats
    where 1.0 is SDR white (203 cd/m²), as :meth:`HeifImage.to_hdr` gives.

    With ``sdr``, the image is written as an SDR picture with an ISO 21496-1 gain map that takes it to the HDR
    one (as libavif's ``avifImageComputeGainMap``): SDR screens show the SDR picture, HDR ones the HDR rendition,
    whose colour (``primaries``, ``transfer``) and ``bit_depth`` the ``tmap`` item records. ``sdr`` is
    ``"auto"`` (the HDR image tone-mapped: unchanged up to 0.75 of SDR white, the rest compressed towards white
    with a smooth knee, per pixel on its brightest channel so that hues keep), a Pillow image or a (height,
    width, 3) uint8 array in sRGB's transfer and the same primaries. The gain map has 3 channels, 8 bits, at
    1/``gain_map_scale`` of the size.

    It is coded with ``transfer`` (``"pq"``: SMPTE ST 2084, ``"hlg"``: ARIB STD-B67, BT.2100's OOTF for a
    1000 cd/m² display, as libavif) at ``bit_depth`` 10 or 12, and saves as a PQ/HLG HEIF or AVIF file with its
    NCLX profile (``primaries``: an H.273 code or ``"bt709"``/``"srgb"``, ``"bt2020"``, ``"p3"``; the matrix
    BT.2020's for BT.2020 primaries, else BT.709's; full range) and its content light level (``clli``: the
    brightest channel of any pixel and the mean of each pixel's brightest, in cd/m²). Values beyond what the
    transfer holds are clipped (negative ones to 0; PQ: 10000 cd/m², HLG: 1000 cd/m²).

    Raises:
        ImportError: NumPy is not installed.
        ValueError: an array of another shape, a non-finite value, or an unknown primaries (a name not listed,
            or a code libheif cannot write), transfer or bit depth.
        TypeError: ``primaries`` neither a str nor an int.
    """
    try:
        import numpy as np
    except ImportError as exc:
        raise ImportError("HDR arrays need NumPy: pip install 'heifkit[numpy]'") from exc
    from ._decode import hdr

    found = _PRIMARIES_BY_NAME.get(primaries.lower()) if isinstance(primaries, str) else as_int(primaries, "primaries")
    if found is None or found not in NCLX_VALUES["color_primaries"]:
        raise ValueError(
            f"unknown primaries {primaries!r}: use one of {sorted(_PRIMARIES_BY_NAME)} or an H.273 code libheif "
            f"supports ({sorted(NCLX_VALUES['color_primaries'])})"
        )
    transfer = transfer.lower() if isinstance(transfer, str) else transfer
    if transfer not in _HDR_TRANSFERS:
        raise ValueError(f"transfer must be 'pq' or 'hlg', not {transfer!r}")
    if isinstance(bit_depth, bool) or bit_depth not in (10, 12) or not isinstance(bit_depth, int):
        raise ValueError(f"bit_depth must be 10 or 12, not {bit_depth!r}")
    code = int(found)
    linear = np.asarray(array, dtype=np.float32)
    if linear.ndim != 3 or linear.shape[2] != 3 or 0 in linear.shape:
        raise ValueError(f"an HDR image is a (height, width, 3) array, not {linear.shape}")
    if not np.isfinite(linear).all():
        raise ValueError("linear light cannot be NaN or infinite")
    linear = np.maximum(linear, 0.0)
    height, width = linear.shape[:2]
    nclx = {
        "color_primaries": code,
        "transfer_characteristics": _HDR_TRANSFERS[transfer],
        "matrix_coefficients": 9 if code == 9 else 1,
        "full_range_flag": 1,
    }
    max_cll, max_fall = hdr.content_light_level(np.minimum(linear, _HDR_PEAKS[transfer] / hdr.SDR_WHITE_NITS))
    if sdr is not None:
        return _sdr_with_gain_map(linear, sdr, code, nclx, bit_depth, (max_cll, max_fall), gain_map_scale)
    signal = hdr.from_linear(linear, _HDR_TRANSFERS[transfer])
    samples = np.round(signal * ((1 << bit_depth) - 1)).astype("<u2")
    heif_file = from_bytes(f"RGB;{bit_depth}", (width, height), samples.tobytes())
    heif_file[0].info.update(
        bit_depth=bit_depth,
        nclx_profile=nclx,
        content_light_level={"max_content_light_level": max_cll, "max_pic_average_light_level": max_fall},
    )
    return heif_file


_HDR_PEAKS = {"pq": 10000.0, "hlg": 1000.0}


def _sdr_with_gain_map(linear: Any, sdr: Any, primaries: int, nclx: dict[str, int], bits: int,
                       clli: tuple[int, int], scale: int) -> HeifFile:  # fmt: skip
    """``from_hdr(..., sdr=...)``: the SDR picture, carrying the gain map to the HDR one (written at save)."""
    import numpy as np

    from ._decode import hdr

    height, width = linear.shape[:2]
    if isinstance(sdr, str):
        if sdr != "auto":
            raise ValueError(f"sdr must be 'auto', a Pillow image or an array, not {sdr!r}")
        sdr_linear = hdr.tone_map_to_sdr(linear)
        sdr_pixels = np.round(hdr.from_linear(sdr_linear, 13) * 255).astype(np.uint8)
    else:
        sdr_pixels = np.asarray(sdr.convert("RGB") if hasattr(sdr, "convert") else sdr)
        if sdr_pixels.shape != (height, width, 3) or sdr_pixels.dtype != np.uint8:
            raise ValueError(
                f"the SDR picture must be {width}x{height} 8-bit RGB, not {sdr_pixels.shape} {sdr_pixels.dtype}"
            )
        sdr_linear = hdr.to_linear(sdr_pixels.astype(np.float32) / 255, 13)
    heif_file = from_bytes("RGB", (width, height), np.ascontiguousarray(sdr_pixels).tobytes())
    heif_file[0].info["nclx_profile"] = {"color_primaries": primaries, "transfer_characteristics": 13,
                                         "matrix_coefficients": 6, "full_range_flag": 1}  # fmt: skip
    heif_file[0]._gain_map = gain_map_between(sdr_linear, linear, nclx, bits, clli, scale)
    return heif_file


def gain_map_between(sdr_linear: Any, hdr_linear: Any, nclx: dict[str, int], bits: int, clli: tuple[int, int] | None,
                     scale: int = 2) -> _write.GainMap:  # fmt: skip
    """The ISO 21496-1 gain map (to write with the SDR picture) that takes linear ``sdr_linear`` to
    ``hdr_linear`` (the same size and primaries), whose colour ``nclx``, bit depth and light level the ``tmap``
    item records; computed at 1/``scale`` of the size."""
    import numpy as np

    from ._decode import hdr
    from ._info.tone_map import tone_map_bytes

    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"gain_map_scale must be a positive int, not {scale!r}")
    gain, meta = hdr.compute_gain_map(hdr.downsample(sdr_linear, scale), hdr.downsample(hdr_linear, scale))
    gain_image = from_bytes("RGB", (gain.shape[1], gain.shape[0]), np.ascontiguousarray(gain).tobytes())[0]
    gain_frame = _write.Frame("RGB", gain_image.size, gain_image._data, gain_image._stride, gain_image.info)
    return _write.GainMap(gain_frame, tone_map_bytes(meta), dict(nclx), bits, clli)


def hdr_kept_as_gain_map(image: HeifImage, fmt: str) -> bool:
    """Give ``image`` (read from a file, saved as ``fmt``) an ISO 21496-1 gain map computed from its HDR rendition
    when its own gain map cannot go with it (HEVC items in an AVIF file, AV1 in a HEIF file, or Apple's map,
    which AVIF has no place for): the HDR picture (``to_hdr()``) is kept. True when one was made.

    Raises:
        ImportError: NumPy is not installed.
    """
    gain_maps = image.info.get("gain_maps") or []
    entry = image._entry
    if not gain_maps or entry is None:
        return False
    if any(_codec_of(g) == fmt for g in gain_maps):
        return False  # a gain map coded for the target (Apple's in a HEIC, a tmap's) goes with it as stored
    import numpy as np

    from ._decode import hdr

    sdr_linear = image._linear_signal()  # an SDR base: its own signal is the SDR rendition (decoded once)
    hdr_linear = image._with_gain_map(sdr_linear, None)
    if float(np.max(hdr_linear)) <= float(np.max(sdr_linear)) * 1.0001:
        return False  # nothing brighter than SDR: no gain map to keep
    nclx = dict(image.info.get("nclx_profile") or {})
    primaries = int(nclx.get("color_primaries", 1)) if nclx else 1
    alternate = {"color_primaries": primaries, "transfer_characteristics": 16, "matrix_coefficients": 1,
                 "full_range_flag": 1}  # fmt: skip
    image._gain_map = gain_map_between(sdr_linear, hdr_linear, alternate, 10, hdr.content_light_level(hdr_linear))
    image.info["gain_maps"] = []
    image.info["aux"] = {k: v for k, v in (image.info.get("aux") or {}).items() if not k.endswith(":hdrgainmap")}
    return True


def _codec_of(gain_map: Any) -> str | None:
    """``"HEIF"`` or ``"AVIF"``: the format whose codec a gain map is coded with (None if unknown)."""
    entry = getattr(gain_map, "_entry", None)
    return coded_format(entry.handle) if entry is not None else None


def encode(mode: str, size: tuple[int, int], data: Any, fp: Any, **kwargs: Any) -> None:
    """Encode raw bytes straight to ``fp``; takes every ``save`` parameter plus ``stride``."""
    stride = kwargs.pop("stride", None)
    extra = {"stride": stride} if stride is not None else {}
    from_bytes(mode, size, data, **extra).save(fp, **kwargs)


def save_frame(
    image: HeifImage,
    settings: _write.EncodeSettings,
    overrides: Any,
    index: int,
    encoded: Callable[[], _write.Frame] | None = None,
) -> _write.Frame:
    """The frame a save writes for ``image``: copied as stored when it can be (:func:`image.stored_image`,
    ``_write.copy_problem``) and ``reencode`` is not True, else the frame to encode: ``encoded()``, by default
    :func:`frame_of` ``image``.

    Raises:
        ValueError: ``reencode=False`` and the image cannot be copied (the message says why).
    """
    stored, reason = stored_image(image) if settings.reencode is not True else (None, "reencode=True")
    if stored is not None:
        reason = _write.copy_problem(stored, {**image.info, **overrides}, settings) or ""
        if not reason:
            return _write.Frame(image.mode, image.size, None, 0, image.info, stored=stored)
    if settings.reencode is False:
        raise ValueError(f"reencode=False, but image {index} cannot be copied as stored: {reason}")
    return encoded() if encoded is not None else frame_of(image, settings.keep_quality)


def frame_of(image: HeifImage, keep_quality: bool = False) -> _write.Frame:
    """The plain frame the writer takes for ``image`` (decoding it first if it was read from a file), with the
    quality it was coded at when ``keep_quality`` (``save(quality="keep")``).

    Stored pixels read with ``apply_transformations=False`` are written so that they show as before: their
    rotation and mirroring as ``irot``/``imir``, their crop applied (see :func:`transforms.stored_geometry`).
    An image read from a file, at its size as read, brings its depth images, auxiliary images and gain maps
    along (``_attached``), unless libheif cropped it other than at its right and bottom edges (where encoders
    pad): their geometry stays right because the image keeps its stored pixels and its ``irot``/``imir``,
    decoded anew if libheif had applied them.
    """
    frame = _plain_frame(image)
    pending = getattr(image, "_gain_map", None)
    if pending is not None:
        frame = dataclasses.replace(frame, gain_map=pending)
    if keep_quality:
        coded = image.coded_quality()
        if coded is not None:
            frame = dataclasses.replace(frame, coded_quality=int(coded["quality"]))
    return frame


def _plain_frame(image: HeifImage) -> _write.Frame:
    """The frame of ``image`` (see :func:`frame_of`)."""
    entry = image._entry
    steps = image.info.get("transformations")
    attached = _attached_of(image) if entry is not None and image.size in _sizes_as_read(entry, bool(steps)) else None
    if not steps and attached is not None and entry is not None and entry.transforms:
        shown = as_data(entry.transforms)
        if not _anchored(shown):
            attached = None
        elif orientation_of(shown) != 1:  # libheif rotated the pixels: write the stored ones and irot/imir
            pixels = stored_pixels(image)
            assert pixels is not None
            size = (pixels.width, pixels.height)
            return _stored_frame(image, size, pixels.buffer, pixels.stride, shown, attached)
    image.load()
    if not steps:
        return _write.Frame(
            image.mode, image.size, image._data, image._stride, image.info, image.pending_orientation, attached=attached
        )
    return _stored_frame(image, image.size, image._data, image._stride, steps, attached)


def _sizes_as_read(entry: Any, stored: bool) -> list[tuple[int, int]]:
    """The sizes an image read from a file has while its geometry is unchanged: as shown, or as stored
    (``stored``), then also without the padding its first crop drops."""
    if not stored:
        return [image_size(entry.handle)]
    sizes = [image_size(entry.handle, transformations=False)]
    shown = as_data(entry.transforms)
    if shown and "crop" in shown[0]:
        left, top, right, bottom = shown[0]["crop"]
        sizes.append((right - left, bottom - top))
    return sizes


def _anchored(steps: list[dict[str, Any]]) -> bool:
    """True when every crop in ``steps`` keeps the top-left corner (it only drops an encoder's padding)."""
    return all(step["crop"][:2] == (0, 0) for step in steps if "crop" in step)


def _stored_frame(image: HeifImage, size: tuple[int, int], data: Any, stride: int, steps: list[dict[str, Any]],
                  attached: Any) -> _write.Frame:  # fmt: skip
    """The frame of stored pixels that shows as ``steps`` say: cropped, and rotated/mirrored by irot/imir."""
    box, orientation = stored_geometry(steps)
    if box is not None:
        box = check_box(box, size)
        data, stride = crop_rows(data, stride, box, mode_of(image.mode).pixel_bytes)
        size = (box[2] - box[0], box[3] - box[1])
        attached = attached if _anchored(steps) else None
    return _write.Frame(image.mode, size, data, stride, image.info, orientation=orientation, attached=attached)


def image_from_frame(frame: Any, entry: _read.Entry | None, keep_ycbcr: bool = False) -> HeifImage:
    """A ``HeifImage`` copied from a Pillow frame that was decoded from the image read as ``entry`` (or None):
    at that image's size, it keeps what is attached to it (``_attached``), its pixels turned back to the
    stored orientation and written with the image's ``irot``/``imir``. A frame of another size, or of an
    image cropped other than at its right and bottom edges, gives a plain copy (:func:`image.image_from_pillow`).
    """
    if entry is None or frame.size != entry.size or entry.info.get("transformations") is not None:
        return image_from_pillow(frame, keep_ycbcr)
    steps = as_data(entry.transforms)
    if not _anchored(steps):
        return image_from_pillow(frame, keep_ycbcr)
    orientation = orientation_of(steps)
    if orientation == 1:
        image = image_from_pillow(frame, keep_ycbcr)
    else:
        image = image_from_pillow(transposed(frame, {6: 8, 8: 6}.get(orientation, orientation)), keep_ycbcr)
        image.info["transformations"] = [step for step in steps if "crop" not in step]  # as irot/imir (frame_of)
    for key in ("aux", "depth_images", "gain_maps"):  # what the frame lists is what stays attached
        if key in frame.info:
            image.info[key] = frame.info[key]
    image._entry = entry
    return image


def _attached_of(image: HeifImage) -> Any:
    """What to copy with an image read from a file: the depth images, auxiliary images and ``tmap`` gain maps
    still listed in its ``info`` (``depth_images``, ``aux``, ``gain_maps``)."""
    entry, info = image._entry, image.info
    assert entry is not None
    aux = None if "aux" not in info else {i for ids in (info["aux"] or {}).values() for i in ids}
    tmaps = None
    if "gain_maps" in info:
        tmaps = {g.info.get("tmap_item_id") for g in info["gain_maps"] or [] if getattr(g, "info", None)}
    return attached_to(entry.handle, aux, bool(info.get("depth_images")), tmaps)


def _as_images(items: Any, settings: _write.EncodeSettings) -> list[HeifImage]:
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
            check_pillow_size(item, settings)
            result.append(image_from_pillow(item))
        else:
            raise TypeError(f"append_images takes HeifImage, HeifFile or Pillow images, not {type(item).__name__}")
    return result


def check_pillow_size(img: Any, settings: _write.EncodeSettings, keep_ycbcr: bool = False) -> None:
    """Refuse a Pillow image that cannot be written, before its pixels are loaded and copied."""
    width, height = img.size
    if width > 0 and height > 0:  # empty images: image_from_pillow says "Empty images are not supported."
        info = {k: img.info[k] for k in ("tiling", "chroma") if k in img.info}
        _write.check_size(pillow_target(img, keep_ycbcr), (width, height), info, settings)
