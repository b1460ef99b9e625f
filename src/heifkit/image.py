"""The image model: ``HeifImage`` (a top-level image), ``HeifDepthImage``, ``HeifAuxImage``,
``HeifThumbnail``, and the constructors that make images from a file's entries, raw bytes, Pillow images
and other images.

Images read from a file decode lazily, on first access to ``data``, ``stride``, ``__array_interface__``
or ``to_pillow()``; they keep their libheif handle (and through it the file's context) alive.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from . import options
from ._decode.pixels import Pixels, Settings, decode, decode_to_pillow, layout_of, pillow_image
from ._decode.region import check_box, crop_rows
from ._info.metadata import exif_from_pillow, reset_orientation, set_orientation, xmp_from_pillow
from ._info.modes import MODES, PILLOW_CONVERSIONS, decoded_mode, mode_of
from ._info.tone_map import apple_gain_map_version, apple_headroom, parse_tone_map
from ._info.transforms import as_data, image_size, transposed
from ._native.libheif import Handle
from ._read import entries as _read
from ._read.coded_quality import coded_quality as _coded_quality
from ._read.source import sniff
from ._write.geometry import Geometry
from ._write.stored import FIXED_KEYS, Stored, Tagging, stored_file
from .errors import InvalidInputError

__all__ = [
    "HeifImage",
    "HeifThumbnail",
    "HeifDepthImage",
    "HeifAuxImage",
    "image_from_entry",
    "entry_of",
    "sub_image",
    "image_from_bytes",
    "image_from_pillow",
    "image_from_heif",
    "pillow_target",
    "stored_pixels",
    "stored_image",
    "image_as_stored",
]

Decoder = Callable[[], Pixels]


class BaseImage:
    """Pixels with a mode and size, decoded lazily by ``decoder`` or given as bytes."""

    def __init__(
        self,
        size: tuple[int, int],
        mode: str,
        data: Any = None,
        stride: int = 0,
        decoder: Decoder | None = None,
        pillow_decoder: Callable[[], Any] | None = None,
    ) -> None:
        self.size = size
        self.mode = mode
        self._data = data
        self._stride = stride
        self._decoder = decoder
        # Decodes straight into a Pillow image without a copy (or returns None): used while the pixels are
        # not decoded yet, so ``data`` keeps pillow_heif's layout and Pillow gets its own 4-byte one.
        self._pillow_decoder = pillow_decoder
        self._decoded = False  # True once _data is a buffer decoded by libheif (handed out read-only)
        self._load_lock = threading.Lock()

    def load(self) -> BaseImage:
        """Decode the pixels if that has not happened yet (thread-safe, once)."""
        if self._data is None:
            with self._load_lock:
                if self._data is None:
                    if self._decoder is None:
                        raise InvalidInputError("image has no pixel data")
                    width, height, stride, buf = self._decoder()
                    # published in this order: a thread that sees _data also sees the rest
                    self.size = (width, height)
                    self._stride = stride
                    self._decoded = True
                    self._decoder = None
                    self._data = buf
        return self

    @property
    def data(self) -> Any:
        """The pixel bytes (``stride * height``), decoding on first access."""
        self.load()
        if self._decoded:
            return memoryview(self._data).toreadonly()
        return self._data

    @property
    def stride(self) -> int:
        """Bytes per row of ``data``."""
        self.load()
        return self._stride

    @property
    def has_alpha(self) -> bool:
        """True for modes with an alpha channel."""
        return self.mode.split(";")[0][-1] in ("A", "a")

    @property
    def premultiplied_alpha(self) -> bool:
        """True when the colour channels are premultiplied by alpha (mode with ``a``)."""
        return self.mode.split(";")[0][-1] == "a"

    @premultiplied_alpha.setter
    def premultiplied_alpha(self, value: bool) -> None:
        if self.has_alpha:
            base, sep, rest = self.mode.partition(";")
            self.mode = base[:-1] + ("a" if value else "A") + sep + rest

    @property
    def __array_interface__(self) -> dict[str, Any]:
        self.load()
        width, height = self.size
        info = mode_of(self.mode)
        row_pixels = self._stride // info.pixel_bytes if self._stride else width
        shape: tuple[int, ...] = (height, row_pixels) if info.channels == 1 else (height, row_pixels, info.channels)
        return {"shape": shape, "typestr": info.typestr, "version": 3, "data": self.data}

    def _pillow(self) -> Any:
        if self._data is None and self._pillow_decoder is not None:
            img = self._pillow_decoder()
            if img is not None:
                return img
        self.load()
        return pillow_image(self.mode, self.size, self._data, self._stride)

    def to_pillow(self) -> Any:
        """A Pillow image of these pixels."""
        return self._pillow()

    def _pixel_state(self) -> tuple[str, tuple[int, int], bytes, int]:
        self.load()
        return self.mode, self.size, bytes(self._data), self._stride

    def _restore_pixels(self, mode: str, size: tuple[int, int], data: bytes, stride: int) -> None:
        BaseImage.__init__(self, size, mode, data, stride)


class SubImage(BaseImage):
    """A read-only image attached to a top-level image, with an ``info`` dict of its own."""

    def __init__(
        self,
        size: tuple[int, int],
        mode: str,
        info: dict[str, Any],
        decoder: Decoder | None = None,
        transforms: tuple[tuple[Any, ...], ...] = (),
        pillow_decoder: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(size, mode, decoder=decoder, pillow_decoder=pillow_decoder)
        self.info = info
        self._transforms = transforms  # the rotation, mirroring and crop libheif applies
        self._entry: _read.Entry | None = None  # what it was read as, and how (to decode it at full depth)
        self._flags: _read.OpenFlags | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.size[0]}x{self.size[1]} {self.mode}>"

    def to_pillow(self) -> Any:
        """A Pillow image of these pixels, with a copy of ``info``."""
        img = self._pillow()
        img.info = self.info.copy()
        return img

    def __getstate__(self) -> dict[str, Any]:
        return {"pixels": self._pixel_state(), "info": self.info}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._restore_pixels(*state["pixels"])
        self.info = state["info"]
        self._transforms = ()
        self._entry = None
        self._flags = None


class HeifDepthImage(SubImage):
    """A depth map attached to an image (read-only; ``info["metadata"]`` describes its values).

    Attributes:
        size: (width, height).
        mode: ``L``, or ``I;16`` (``I;10``/``I;12`` with ``hdr_to_16bit=False``) for deeper maps.
        info: ``metadata``, a dict describing how the values map to depth (``representation_type``, one of
            :class:`~heifkit.HeifDepthRepresentationType`, ``z_near``, ``z_far``, ``d_min``, ``d_max``...).
    """


class HeifThumbnail(SubImage):
    """An embedded thumbnail of a :class:`HeifImage`, from :meth:`HeifImage.get_thumbnail`.

    Attributes:
        size: (width, height).
        mode: the mode it decodes to (the same rules as for its image).
        info: ``bit_depth``, ``chroma`` and the colour profile (``icc_profile`` or ``nclx_profile``) when it has one.
    """


class HeifAuxImage(BaseImage):
    """An auxiliary image (HDR gain map, matte...) read by item id from ``info["aux"]``; no ``info``.

    Attributes:
        size: (width, height).
        mode: ``L`` or ``I;16`` for grey images, ``RGB`` (``RGB;16`` with ``convert_hdr_to_8bit=False``) for colour.
    """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.size[0]}x{self.size[1]} {self.mode}>"

    def __getstate__(self) -> dict[str, Any]:
        return {"pixels": self._pixel_state()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._restore_pixels(*state["pixels"])


class HeifImage(BaseImage):
    """One top-level image of a HEIF/AVIF file, or an image added to a :class:`HeifFile`.

    Images read from a file decode on first access to ``data``, ``stride``, ``__array_interface__`` or
    :meth:`to_pillow`.

    Attributes:
        size: (width, height), after the rotation, mirroring and crop libheif applies.
        mode: how ``data`` is laid out (see the "Image modes" page): ``RGB``, ``RGBA``, ``L``, ``I;16``, ...
        info: the image's properties and metadata (``primary``, ``bit_depth``, ``exif``, ``xmp``,
            ``thumbnails``, ``depth_images``, colour profile, ...). Saving takes its values as defaults.
    """

    def __init__(
        self,
        size: tuple[int, int],
        mode: str,
        info: dict[str, Any],
        data: Any = None,
        stride: int = 0,
        decoder: Decoder | None = None,
        pending_orientation: bool = False,
        handle: Handle | None = None,
        flags: _read.OpenFlags | None = None,
        transforms: tuple[tuple[Any, ...], ...] = (),
        pillow_decoder: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(size, mode, data, stride, decoder, pillow_decoder)
        self.info = info
        # True when the EXIF/XMP orientation has not been applied to the pixels (images made from bytes
        # or Pillow images); decoded images are already upright (libheif applied irot/imir).
        self.pending_orientation = pending_orientation
        self._handle = handle  # of images read from a file: for thumbnails and auxiliary images
        self._flags = flags
        self._transforms = transforms  # the rotation, mirroring and crop libheif applies
        self._entry: _read.Entry | None = None  # of images read from a file (and their copies): what was read
        # True while the pixels are known to be the stored ones (read from a file, or a copy of such an image):
        # then saving may copy the image as stored (``_write.stored``) instead of encoding it again.
        self._as_stored = False
        self._gain_map: Any = None  # a gain map to write with it (``_write.GainMap``: from_hdr(sdr=...), conversions)

    @property
    def orientation_applied(self) -> bool:
        """Whether the pixels are upright already (libheif applied ``irot``/``imir``, or they were made upright)."""
        steps = self._entry.transforms if self._entry is not None else (("irot",),)
        unread = self.pending_orientation or self.info.get("transformations") is not None
        return unread or any(step[0] in ("irot", "imir") for step in steps)

    def __repr__(self) -> str:
        content = "no image data" if self._data is None else f"{len(memoryview(self._data).cast('B'))} bytes image data"
        return (
            f"<{type(self).__name__} {self.size[0]}x{self.size[1]} {self.mode} "
            f"with {content} and {len(self.info.get('thumbnails', []))} thumbnails>"
        )

    def to_pillow(self) -> Any:
        """A Pillow image with a copy of ``info``; its EXIF/XMP orientation reset to 1 (the old value in
        ``info["original_orientation"]``) when the pixels stand upright already (see ``orientation_applied``)."""
        img = self._pillow()
        img.info = self.info.copy()
        img.info["original_orientation"] = reset_orientation(img.info, self.orientation_applied)
        if self.pending_orientation and img.info["original_orientation"]:
            img = transposed(img, img.info["original_orientation"])
        return img

    def transpose(self, method: int) -> HeifImage:
        """A new image showing this one rotated or mirrored, without a decode or an encode: the same coded image
        with other transformative properties (``irot``, ``imir``), as ``jpegtran -rotate``/``-flip`` do for JPEG.

        ``method`` is one of Pillow's ``Image.Transpose`` values (``ROTATE_90``, ``ROTATE_180``,
        ``ROTATE_270``: counter-clockwise; ``FLIP_LEFT_RIGHT``, ``FLIP_TOP_BOTTOM``, ``TRANSPOSE``,
        ``TRANSVERSE``). Thumbnails, alpha and a ``tmap`` image turn with the image; depth images, gain
        maps and other auxiliary images are in the coded image's orientation and keep their properties. The
        EXIF/XMP orientation is reset to 1: ``irot``/``imir`` say how the image is shown. The new image is
        saved as stored, unless the save asks for an encode. See "Editing without re-encoding" in the docs.

        Raises:
            ValueError: an unknown ``method``, or an image not read from a file (made from pixels or a Pillow
                image: transpose those with Pillow), or one that cannot be copied as stored.
        """
        rotate, mirror = _TRANSPOSE.get(int(method), (None, None))
        if rotate is None:
            raise ValueError(f"unknown transpose method {method!r}: use one of Pillow's Image.Transpose values")
        return self._edited(Geometry(rotate=rotate, mirror=mirror))

    def crop(self, box: tuple[int, int, int, int], lossless: bool = False) -> HeifImage:
        """A new image holding the region ``box`` = (left, top, right, bottom) of this one (right and bottom
        excluded, as in Pillow), in the coordinates of ``size``.

        ``lossless=True``: the same coded image with a crop property (``clap``) that shows the box, without a
        decode or an encode (as ``jpegtran -crop``); the whole coded image stays in the file, and the new image
        keeps everything attached to this one (auxiliary images, thumbnails and a ``tmap`` item's gain map are
        cropped to the same part of the picture). With 4:2:0 or 4:2:2 chroma the box must start on a chroma
        sample of the coded image (an even column, and for 4:2:0 an even row, where the box falls once rotation
        and mirroring are undone).

        An image read from a file and not decoded yet decodes only the region, when its pixels are first
        used: for a grid (or ``tili``) image just the tiles that cover the box, straight into a buffer of the
        box's size; any other image decodes whole and the box is copied out. Pixels already in memory are
        copied. The new image has a copy of ``info`` without what belongs to the whole image (thumbnails,
        depth images, gain maps, auxiliary images, entity groups): it is saved as a new image.

        Raises:
            TypeError: ``box`` is not four integers.
            ValueError: the box is empty or reaches outside the image; with ``lossless``, it starts between
                two chroma samples, or the image was not read from a file.
        """
        left, top, right, bottom = box = check_box(box, self.size)
        if lossless:
            return self._edited(Geometry(crop=box))
        size = (right - left, bottom - top)
        info = _whole_image_info_removed(self.info)
        if self._data is None and self._entry is not None and self._flags is not None:
            decoder, pillow_decoder = (functools.partial(d, box=box) for d in _decoders(self._entry, self._flags))
            return HeifImage(size, self.mode, info, decoder=decoder, pillow_decoder=pillow_decoder)
        self.load()
        data, stride = crop_rows(self._data, self._stride, box, mode_of(self.mode).pixel_bytes)
        return HeifImage(size, self.mode, info, data, stride, pending_orientation=self.pending_orientation)

    def _edited(self, geometry: Geometry) -> HeifImage:
        """This image, read from a file, showing ``geometry``: written as stored into a one-image file with its
        new transformative properties, read again (libheif applies them when it decodes)."""
        stored, reason = stored_image(self, geometry)
        if stored is None or self._entry is None or self._flags is None:
            raise ValueError(f"a lossless edit needs an image read from a file as it is stored: {reason}")
        info = dict(self.info)
        set_orientation(info)  # irot/imir say how it is shown from now on
        source = self._entry.handle.ctx
        with source.lock:
            data = stored_file([(stored, info)], 0)
        ctx = source.twin(data)
        mime, flags, entries = _read.read_context(ctx, sniff(data[:64])[1], self._flags)
        image = image_from_entry(entries[0], flags)
        image.info["primary"] = bool(self.info.get("primary"))
        return image

    def to_hdr(self, headroom: float | None = None) -> Any:
        """The image as HDR linear light: a float32 NumPy array (height, width, 3) in the image's colour
        primaries, where 1.0 is SDR white (203 cd/m², as libavif and ITU-R BT.2408).

        A gain map is applied when the image has one: an ISO 21496-1 ``tmap`` (preferred when both are there),
        else Apple's ``hdrgainmap`` with the headroom its EXIF maker note gives (see "HDR" in the docs).
        ``headroom`` is the display's, in stops (log2): ``None`` shows the HDR rendition (the gain map applied
        fully to an SDR base; an HDR base as it is), ``0`` the SDR rendition, values in between interpolate
        as ISO 21496-1 says (Apple's map too, in log2). Without a gain map, the image's own signal is made
        linear by its transfer function (PQ and HLG included; sRGB's for an image tagged with an ICC profile
        or not at all), whatever ``headroom`` says. Values below 0 (ISO 21496-1's offsets may undershoot) are 0.

        Raises:
            ImportError: NumPy is not installed (``pip install heifkit[numpy]``).
            ValueError: a negative ``headroom``.
        """
        if headroom is not None and headroom < 0:
            raise ValueError(f"headroom is in stops above SDR white and cannot be negative: {headroom}")
        return self._with_gain_map(self._linear_signal(), headroom)

    def _linear_signal(self) -> Any:
        """The image's own signal made linear by its transfer function (no gain map applied)."""
        np = _numpy()
        from ._decode import hdr

        nclx = self.info.get("nclx_profile") or {}
        transfer = int(nclx.get("transfer_characteristics", 13)) if nclx else 13
        signal = _float_pixels(self)
        return hdr.to_linear(signal[:, :, :3] if signal.shape[2] >= 3 else np.repeat(signal, 3, axis=2), transfer)

    def _with_gain_map(self, linear: Any, headroom: float | None) -> Any:
        """``linear`` (:meth:`_linear_signal`) with the image's gain map applied for ``headroom`` (:meth:`to_hdr`);
        ``linear`` itself when no map applies."""
        np = _numpy()
        from ._decode import hdr

        nclx = self.info.get("nclx_profile") or {}
        primaries = int(nclx.get("color_primaries", 1)) if nclx else 1
        gain_maps = list(self.info.get("gain_maps") or [])
        iso = [g for g in gain_maps if getattr(g, "info", {}).get("tmap") is not None]
        apple = [g for g in gain_maps if str(getattr(g, "info", {}).get("aux_type") or "").startswith(_APPLE_GAIN_MAP)]
        for gain_map in iso:
            meta = parse_tone_map(gain_map.info["tmap"])
            if meta is None:
                continue
            target = max(meta.base_hdr_headroom, meta.alternate_hdr_headroom) if headroom is None else headroom
            weight = meta.weight(target)
            if weight == 0.0:
                return linear
            alternate = gain_map.info.get("alternate_nclx") or {}
            math_primaries = (
                primaries if meta.use_base_colour_space else int(alternate.get("color_primaries", primaries))
            )
            gain = _gain_map_as_shown(self, gain_map)
            base = hdr.convert_primaries(linear, primaries, math_primaries)
            mapped = hdr.convert_primaries(hdr.apply_iso_gain_map(base, gain, meta, weight), math_primaries, primaries)
            return np.ascontiguousarray(np.maximum(mapped, 0.0), dtype=np.float32)  # the offsets may undershoot 0
        for gain_map in apple:
            full = apple_headroom(self.info.get("exif"))
            version = apple_gain_map_version(gain_map.info.get("xmp")) or apple_gain_map_version(self.info.get("xmp"))
            if full is None or version is None or full <= 1.0:
                continue
            stops = float(np.log2(full))
            weight = 1.0 if headroom is None else min(1.0, headroom / stops)
            if weight <= 0.0:
                return linear
            return hdr.apply_apple_gain_map(linear, _gain_map_as_shown(self, gain_map), full, weight)
        return linear

    def has_hdr(self) -> bool:
        """Whether :meth:`to_hdr` gives more than the image's own SDR signal: a gain map, or a PQ/HLG transfer."""
        nclx = self.info.get("nclx_profile") or {}
        return bool(self.info.get("gain_maps")) or int(nclx.get("transfer_characteristics", 0) or 0) in (16, 18)

    def to_pillow_at(self, headroom: float) -> Any:
        """A Pillow ``RGB`` image of :meth:`to_hdr` for a display of ``headroom`` stops: linear light divided by
        2 ** headroom (the display's peak is 255), in sRGB's transfer, 8 bits; ``info`` as :meth:`to_pillow`'s.

        Raises:
            ImportError: NumPy is not installed.
        """
        np = _numpy()
        from PIL import Image

        from ._decode import hdr

        linear = self.to_hdr(headroom) / np.float32(2.0**headroom)
        pixels = np.round(hdr.from_linear(linear, 13) * 255).astype(np.uint8)
        img: Any = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
        info: dict[str, Any] = self.info.copy()
        info["original_orientation"] = reset_orientation(info, self.orientation_applied)
        img.info = info
        return img

    def coded_quality(self) -> dict[str, Any] | None:
        """The quality this image was coded at, as its coded stream tells it (nothing is decoded), or None.

        A dict: ``codec`` ("HEVC" or "AV1"), ``quantizer`` (HEVC: the slice QP, averaged over slices and grid
        tiles by their coded size; AV1: ``base_q_idx``), ``quality`` (an estimate on the 0..100 scale of
        ``save(quality=...)``, -1 when the stream is coded lossless), ``error`` (the ± of that estimate) and
        ``lossless``. The estimate inverts what libheif's x265 and aom plugins and libavif (Pillow's AVIF plugin)
        code each quality at (see "The quality a file was coded at" in the docs): other encoders choose their
        quantizer another way. None for an image not read from a file (made from pixels, or cropped), a codec
        other than HEVC or AV1, or a stream that cannot be read.
        """
        return _coded_quality(self._entry.handle) if self._entry is not None else None

    def get_thumbnail(self, index: int) -> HeifThumbnail:
        """The embedded thumbnail at position ``index`` of ``info["thumbnails"]``, decoded on access.

        Raises:
            IndexError: there is no such thumbnail (images not read from a file have none).
        """
        count = len(self.info.get("thumbnails") or [])
        if self._handle is None or self._flags is None or not -count <= index < count:
            raise IndexError(f"invalid thumbnail index: {index}")
        return sub_image(HeifThumbnail, _read.thumbnail(self._handle, index % count, self._flags), self._flags)

    def get_aux_image(self, aux_id: int) -> HeifAuxImage:
        """The auxiliary image with item id ``aux_id`` (ids are listed in ``info["aux"]``)."""
        if self._handle is None or self._flags is None:
            raise InvalidInputError("Usage error: Non-existing item ID referenced")
        entry = _read.aux_image(self._handle, aux_id, self._flags)
        decoder, pillow_decoder = _decoders(entry, self._flags)
        return HeifAuxImage(entry.size, entry.mode, decoder=decoder, pillow_decoder=pillow_decoder)

    def __getstate__(self) -> dict[str, Any]:
        return {"pixels": self._pixel_state(), "info": self.info, "pending_orientation": self.pending_orientation}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._restore_pixels(*state["pixels"])
        self.info = state["info"]
        self.pending_orientation = state.get("pending_orientation", False)
        self._handle = None
        self._flags = None
        self._transforms = ()
        self._entry = None
        self._as_stored = False


_APPLE_GAIN_MAP = "urn:com:apple:photo:"


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:  # an optional extra
        raise ImportError("HDR arrays need NumPy: pip install 'heifkit[numpy]'") from exc
    return numpy


def _float_pixels(image: BaseImage) -> Any:
    """An image's samples as floats in [0, 1], (height, width, channels), at the depth they are stored with: an
    image read from a file is decoded again without the 8-bit conversion; others are read from their data."""
    np = _numpy()
    entry, flags = getattr(image, "_entry", None), getattr(image, "_flags", None)
    if entry is not None and flags is not None and image.size == entry.size:
        mode_info = mode_of(entry.mode)
        mode = decoded_mode(entry.bits, not mode_info.color, False, False, False, False)
        settings = Settings(flags.decoder_id, flags.decode_threads, flags.codec_threads or 0, True,
                            flags.apply_transformations)  # fmt: skip
        width, height, stride, buffer = decode(entry.handle, layout_of(mode, entry.bits), settings)
        bits = entry.bits
    else:
        mode, (width, height), stride, buffer = image.mode, image.size, image.stride, image.data
        bits = mode_of(mode).bits
    info = mode_of(mode)
    dtype = np.dtype("<u2") if info.sample_bytes == 2 else np.uint8
    raw = np.frombuffer(memoryview(buffer).cast("B")[: stride * height], dtype=np.uint8)
    rows = raw.reshape(height, stride)[:, : width * info.pixel_bytes].copy().view(dtype)
    samples = rows.reshape(height, width, info.channels).astype(np.float32)
    return samples / np.float32((1 << bits) - 1)


def _gain_map_as_shown(image: HeifImage, gain_map: Any) -> Any:
    """A gain map's samples (float, [0, 1]) turned, mirrored and cropped as the image is shown (a gain map is
    in its image's coded orientation), then resized to the image (bilinear)."""
    np = _numpy()
    from ._decode import hdr

    gain = _float_pixels(gain_map)
    entry = image._entry
    steps = (
        entry.transforms if entry is not None and (image._flags is None or image._flags.apply_transformations) else ()
    )
    if steps and entry is not None:
        stored = image_size(entry.handle, transformations=False)
        scale_x, scale_y = gain.shape[1] / stored[0], gain.shape[0] / stored[1]
        for step in steps:
            if step[0] == "irot":
                gain = np.rot90(gain, k=int(step[1]) // 90)
                scale_x, scale_y = scale_y, scale_x
            elif step[0] == "imir":
                gain = gain[::-1] if step[1] == 0 else gain[:, ::-1]  # libheif: 0 flips top to bottom
            elif step[0] == "clap":
                left, top, right, bottom = step[1:5]
                h, w = gain.shape[:2]
                gain = gain[
                    round(top * scale_y) : h - round(bottom * scale_y),
                    round(left * scale_x) : w - round(right * scale_x),
                ]
    return hdr.upsample(np.ascontiguousarray(gain), image.size)


# --- constructors -----------------------------------------------------------------------------------


def _decoders(entry: _read.Entry, flags: _read.OpenFlags) -> tuple[Callable[..., Pixels], Callable[..., Any]]:
    """The decoder of an entry's pixels, and the one that decodes them straight into a Pillow image."""
    settings = Settings(
        flags.decoder_id,
        flags.decode_threads,
        flags.codec_threads or 0,
        flags.remove_stride,
        flags.apply_transformations,
    )
    return (
        functools.partial(decode, entry.handle, layout_of(entry.mode, entry.bits), settings),
        functools.partial(decode_to_pillow, entry.handle, entry.mode, entry.bits, settings),
    )


_Sub = TypeVar("_Sub", bound="SubImage")


def sub_image(cls: type[_Sub], entry: _read.Entry, flags: _read.OpenFlags) -> _Sub:
    """A read-only image attached to another (depth image, thumbnail, gain map), decoded on first access."""
    decoder, pillow_decoder = _decoders(entry, flags)
    image = cls(entry.size, entry.mode, entry.info, decoder, entry.transforms, pillow_decoder)
    image._entry, image._flags = entry, flags
    return image


def image_from_entry(entry: _read.Entry, flags: _read.OpenFlags) -> HeifImage:
    """The lazily decoded image of a file's top-level image, with its depth images in ``info``."""
    entry.info["depth_images"] = [sub_image(HeifDepthImage, depth, flags) for depth in entry.depth]
    decoder, pillow_decoder = _decoders(entry, flags)
    image = HeifImage(
        entry.size, entry.mode, entry.info, decoder=decoder, handle=entry.handle, flags=flags,
        transforms=entry.transforms, pillow_decoder=pillow_decoder,
    )  # fmt: skip
    image._entry = entry
    image._as_stored = True
    return image


def stored_image(image: HeifImage, geometry: Geometry | None = None) -> tuple[Stored | None, str]:
    """``image`` as it is stored in the file it was read from, to copy it without an encode (with ``geometry``
    applied to what it shows); else None and why it cannot be copied."""
    entry = image._entry
    if entry is None or not image._as_stored:
        return None, "its pixels were not read from a file (made from pixels, a Pillow image or a region)"
    if image.size != entry.size or image.mode != entry.mode:
        return None, "its size or mode was changed"
    steps = image.info.get("transformations")
    if steps is not None and steps != as_data(entry.transforms):
        return None, "info['transformations'] was changed"
    read = _read.stored_tagging(entry.handle)
    tagging = Tagging(
        exif=read["exif"] or None,
        xmp=read.get("xmp") or None,
        metadata=read["metadata"],
        icc_profile=read.get("icc_profile") or None,
        icc_profile_type=read.get("icc_profile_type"),
        nclx_profile=read.get("nclx_profile"),
        fixed={k: read[k] for k in FIXED_KEYS if k in read},
        thumbnails=read["thumbnails"],
    )
    info = image.info
    aux = None if "aux" not in info else frozenset(i for ids in (info["aux"] or {}).values() for i in ids)
    tmaps = None
    if "gain_maps" in info:
        tmaps = frozenset(g.info.get("tmap_item_id") for g in info["gain_maps"] or [] if getattr(g, "info", None))
    return Stored(entry.handle, tagging, aux, bool(info.get("depth_images")), tmaps, geometry), ""


def image_as_stored(entry: _read.Entry, info: dict[str, Any]) -> HeifImage:
    """An image standing for ``entry``'s stored pixels with ``info`` (a Pillow frame's, as the caller left it),
    to be copied as stored; it has no decoder: a save that cannot copy it encodes another image instead."""
    image = HeifImage(entry.size, entry.mode, info)
    image._entry = entry
    image._as_stored = True
    return image


def entry_of(image: Any) -> _read.Entry | None:
    """What ``image`` was read from (its handle, transforms and ``info`` as read): for images read from a file
    and their copies; None for images made from pixels, regions and sequence frames."""
    return getattr(image, "_entry", None)


def stored_pixels(image: HeifImage) -> Pixels | None:
    """The stored pixels (no rotation, mirroring or crop) of an image read from a file, decoded anew; None
    for other images."""
    if image._entry is None or image._flags is None:
        return None
    return _decoders(image._entry, dataclasses.replace(image._flags, apply_transformations=False))[0]()


_TRANSPOSE = {0: (0, "left_right"), 1: (0, "top_bottom"), 2: (90, None), 3: (180, None), 4: (270, None),
              5: (90, "top_bottom"), 6: (90, "left_right")}  # fmt: skip
"""Pillow's ``Image.Transpose`` values as a rotation (degrees counter-clockwise) followed by a mirror."""

_WHOLE_IMAGE_KEYS = ("primary", "depth_images", "gain_maps", "aux", "entity_groups", "transformations")


def _whole_image_info_removed(info: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``info`` for a part of the image: what describes the whole image left out or emptied."""
    kept = copy.deepcopy({k: v for k, v in info.items() if k not in _WHOLE_IMAGE_KEYS})
    kept.update(primary=False, depth_images=[], thumbnails=[])
    if "aux" in info:
        kept["aux"] = {}
    return kept


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
    """A ``HeifImage`` holding raw pixels in one of :data:`~heifkit._info.modes.MODES` (validated when saved)."""
    if mode not in MODES:
        raise ValueError(f"unsupported mode {mode!r}; supported: {', '.join(sorted(MODES))}")
    width, height = int(size[0]), int(size[1])
    info = MODES[mode]
    row = width * info.pixel_bytes
    return HeifImage(
        (width, height),
        mode,
        _new_info(info.bits),
        data=data,
        stride=row if stride is None else int(stride),
        pending_orientation=True,
    )


def pillow_target(img: Any, keep_ycbcr: bool = False) -> str:
    """The mode a Pillow image is written in (per :data:`~heifkit._info.modes.PILLOW_CONVERSIONS`), without converting.

    ``keep_ycbcr`` (Pillow's ``save``): a YCbCr image stays YCbCr and its planes are written as they are,
    without the precision lost in a round trip through RGB.

    Raises:
        ValueError: a Pillow mode that cannot be saved.
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


def _pillow_converted(img: Any, target: str) -> Any:
    """``img`` in the :func:`pillow_target` mode ``target``."""
    if target == img.mode:
        return img
    if target == "I;16":
        if img.mode in ("I;16L", "I;16N"):
            return img  # the same little-endian samples on the hosts heifkit supports
        if img.mode == "I;16B":
            return img.convert("I").convert("I;16")  # Pillow's direct I;16B -> I;16 is lossy
        return img.convert("I;16")  # "I": clipped to 0..65535 by Pillow
    return img.convert(target)


_PILLOW_INFO_KEYS = (
    "bit_depth",
    "chroma",
    "thumbnails",
    "icc_profile",
    "icc_profile_type",
    "pixel_aspect_ratio",
    "tiling",
    "nominal_diffuse_white_luminance",
)
_PILLOW_INFO_COPIED = (
    "nclx_profile",
    "metadata",
    "content_light_level",
    "mastering_display_colour_volume",
    "ambient_viewing_environment",
)


def image_from_pillow(img: Any, keep_ycbcr: bool = False) -> HeifImage:
    """A ``HeifImage`` copied from a Pillow image, mode converted per :data:`~heifkit._info.modes.PILLOW_CONVERSIONS`.

    ``info`` is carried over (EXIF, XMP, ICC, NCLX, thumbnails, metadata, pixel aspect ratio, HDR
    metadata, bit depth). The EXIF/XMP orientation is kept and written as ``irot``/``imir``; until then
    ``to_pillow()`` shows the image upright. ``keep_ycbcr``: see :func:`pillow_target`.
    """
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ValueError("Empty images are not supported.")
    img.load()
    mode = pillow_target(img, keep_ycbcr)
    data = _pillow_converted(img, mode).tobytes()
    image = HeifImage(
        (width, height), mode, _new_info(mode_of(mode).bits), data=data, stride=len(data) // height,
        pending_orientation=True,
    )  # fmt: skip
    src = img.info
    for key in _PILLOW_INFO_KEYS:
        if src.get(key) is not None:
            image.info[key] = src[key]
    for key in _PILLOW_INFO_COPIED:
        if src.get(key) is not None:
            image.info[key] = copy.deepcopy(src[key])
    image.info["exif"] = exif_from_pillow(img)
    xmp = xmp_from_pillow(img)
    if xmp:
        image.info["xmp"] = xmp
    return image


def image_from_heif(src: HeifImage) -> HeifImage:
    """A copy of a ``HeifImage`` (pixels and a deep copy of ``info`` without ``primary``). An image read from a
    file and not decoded yet stays so: its copy decodes when its pixels are first used, or is saved as stored."""
    skip = ("primary", "entity_groups")  # entity groups refer to the source file's items
    shared = ("depth_images", "gain_maps")
    info = {k: (v if k in shared else copy.deepcopy(v)) for k, v in src.info.items() if k not in skip}
    info["primary"] = False
    entry, flags = src._entry, src._flags
    if src._data is None and entry is not None and flags is not None and src.mode == entry.mode:
        decoder, pillow_decoder = _decoders(entry, flags)
        data, stride = None, 0
    else:
        src.load()
        data = bytes(memoryview(src._data).cast("B")[: src._stride * src.size[1]])
        stride, decoder, pillow_decoder = src._stride, None, None
    image = HeifImage(
        src.size, src.mode, info, data=data, stride=stride, decoder=decoder,
        pending_orientation=src.pending_orientation, handle=src._handle, flags=flags, transforms=src._transforms,
        pillow_decoder=pillow_decoder,
    )  # fmt: skip
    image._entry = entry  # the same pixels: what is attached to the source stays attached to the copy
    image._as_stored = src._as_stored
    return image
