"""``HeifFile``, ``HeifImage``, ``HeifDepthImage``, ``HeifAuxImage`` and the module-level functions.

Reading is lazy: opening parses the container and each image's properties and metadata; pixels are
decoded on first access to ``data``/``stride``/``__array_interface__``/``to_pillow()``.
"""

from __future__ import annotations

import copy
import io
import os
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any, Union

from . import _lib, options
from ._lib import Context, check, ffi, lib
from .decode import (
    TILED_DECODE_MIN_PIXELS,
    Layout,
    channels_of,
    decode_into,
    decode_tiles_into,
    image_tiling,
    layout_for,
    pillow_image,
)
from .errors import HeifError, InvalidInputError
from .metadata import exif_from_block, set_orientation

__all__ = [
    "HeifFile",
    "HeifImage",
    "HeifThumbnail",
    "HeifDepthImage",
    "HeifAuxImage",
    "open_heif",
    "read_heif",
    "is_supported",
    "get_file_mimetype",
    "from_pillow",
    "from_bytes",
    "encode",
]

FileLike = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes]]

LAZY_READ_THRESHOLD = 16 * 1024 * 1024
"""Files up to this size are read into memory at once; bigger ones are read by libheif as needed."""

_OPEN_KWARGS = {"hdr_to_16bit", "remove_stride", "decode_threads", "disable_security_limits", "decoder_id"}


FTYP_PEEK = 4096
"""Bytes of a file's start given to libheif to recognise its type (the whole ``ftyp`` box, as a rule)."""


def _peek(fp: Any, length: int) -> bytes:
    """The first ``length`` bytes of a path or bytes-like object, or of a file object from its current
    position (restored afterwards, as pillow_heif's ``is_supported`` does)."""
    if isinstance(fp, (str, os.PathLike)):
        with open(fp, "rb") as f:
            return f.read(length)
    if isinstance(fp, (bytes, bytearray, memoryview)):
        return bytes(memoryview(fp).cast("B")[:length])
    if isinstance(fp, io.TextIOBase):
        raise TypeError(_TEXT_MODE)
    pos = fp.tell()
    try:
        data = fp.read(length)
    finally:
        fp.seek(pos)
    if isinstance(data, str):
        raise TypeError(_TEXT_MODE)
    return bytes(data)


def sniff(header: bytes) -> tuple[bool, str]:
    """Ask libheif about a file's first bytes: (libheif reads this file type, its MIME type).

    libheif knows every brand it reads (``mif3`` "mini" files included) better than a table of ours. The
    MIME type is libheif's (``image/heic``, ``image/avif``, ``image/heif-sequence``...); a HEIF file whose
    codec libheif names no type for (JPEG, VVC) is ``image/heif``. Not HEIF: ``(False, "")``.
    """
    if len(header) < 12 or header[4:8] != b"ftyp":
        return False, ""
    mime = _lib.string(lib.heif_get_file_mime_type(header, len(header)))
    if mime in ("image/jpeg", "image/png"):
        return False, ""
    known = (
        bool(mime)
        or lib.heif_check_filetype(header, len(header)) == lib.heif_filetype_yes_supported
        or lib.heif_has_compatible_filetype(header, len(header)).code == 0
    )
    return known, (mime or "image/heif") if known else ""


def get_file_mimetype(fp: FileLike) -> str:
    """MIME type libheif gives the file (``image/heic``, ``image/avif``, ``image/heif-sequence``...) or ``''``.

    A file object is read from its current position, which is restored.
    """
    return sniff(_peek(fp, FTYP_PEEK))[1]


def is_supported(fp: FileLike) -> bool:
    """True when libheif recognises the data (at a file object's current position) as a file it reads.

    Only the ``ftyp`` box is checked; a damaged file with a valid header still returns True.
    """
    return sniff(_peek(fp, FTYP_PEEK))[0]


# ---------------------------------------------------------------------------------------------------
# images


class _BaseImage:
    """Pixels with a mode and size, decoded lazily by ``_decoder`` or given as bytes."""

    def __init__(
        self,
        size: tuple[int, int],
        mode: str,
        data: Any = None,
        stride: int = 0,
        decoder: Callable[[], tuple[int, int, int, Any]] | None = None,
    ) -> None:
        self.size = size
        self.mode = mode
        self._data = data
        self._stride = stride
        self._decoder = decoder
        self._decoded = False  # True once _data is a buffer decoded by libheif (handed out read-only)
        self._load_lock = threading.Lock()

    def load(self) -> _BaseImage:
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
        channels = channels_of(self.mode)
        wide = self.mode.endswith(("16", "12", "10")) and ";" in self.mode
        sample = 2 if wide else 1
        row_pixels = self._stride // (channels * sample) if self._stride else width
        shape: tuple[int, ...] = (height, row_pixels) if channels == 1 else (height, row_pixels, channels)
        return {"shape": shape, "typestr": "<u2" if wide else "|u1", "version": 3, "data": self.data}

    def _pillow(self) -> Any:
        self.load()
        return pillow_image(self.mode, self.size, self._data, self._stride)

    def to_pillow(self) -> Any:
        """A Pillow image of these pixels."""
        img = self._pillow()
        return img

    def _pixel_state(self) -> tuple[str, tuple[int, int], bytes, int]:
        self.load()
        return self.mode, self.size, bytes(self._data), self._stride

    def _restore_pixels(self, mode: str, size: tuple[int, int], data: bytes, stride: int) -> None:
        _BaseImage.__init__(self, size, mode, data, stride)


class _SubImage(_BaseImage):
    """A read-only image attached to a top-level image, with an ``info`` dict of its own."""

    info: dict[str, Any]

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


class HeifDepthImage(_SubImage):
    """A depth map attached to an image (read-only; ``info["metadata"]`` describes its values)."""


class HeifAuxImage(_BaseImage):
    """An auxiliary image (HDR gain map, matte...) read by item id from ``info["aux"]``; no ``info``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.size[0]}x{self.size[1]} {self.mode}>"

    def __getstate__(self) -> dict[str, Any]:
        return {"pixels": self._pixel_state()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._restore_pixels(*state["pixels"])


class HeifThumbnail(_SubImage):
    """An embedded thumbnail of a :class:`HeifImage` (``info``: ``bit_depth``, ``chroma``, colour profile)."""


class HeifImage(_BaseImage):
    """One top-level image of a HEIF/AVIF file, or an image added to a :class:`HeifFile`."""

    def __init__(
        self,
        size: tuple[int, int],
        mode: str,
        info: dict[str, Any],
        data: Any = None,
        stride: int = 0,
        decoder: Callable[[], tuple[int, int, int, Any]] | None = None,
        source: _Source | None = None,
    ) -> None:
        super().__init__(size, mode, data, stride, decoder)
        self.info = info
        self._source = source
        # True when the EXIF/XMP orientation has not been applied to the pixels (images made from bytes
        # or Pillow images); decoded images are already upright (libheif applied irot/imir).
        self.pending_orientation = False

    def __repr__(self) -> str:
        if self._data is None:
            content = "no image data"
        else:
            content = f"{len(memoryview(self._data).cast('B'))} bytes image data"
        return (
            f"<{type(self).__name__} {self.size[0]}x{self.size[1]} {self.mode} "
            f"with {content} and {len(self.info.get('thumbnails', []))} thumbnails>"
        )

    def to_pillow(self) -> Any:
        """A Pillow image with a copy of ``info``; EXIF/XMP orientation reset (see ``metadata``)."""
        img = self._pillow()
        img.info = self.info.copy()
        img.info["original_orientation"] = set_orientation(img.info)
        if self.pending_orientation and img.info["original_orientation"]:
            img = _transposed(img, img.info["original_orientation"])
        return img

    def get_thumbnail(self, index: int) -> HeifThumbnail:
        """The embedded thumbnail at position ``index`` of ``info["thumbnails"]``, decoded on access.

        Raises:
            IndexError: there is no such thumbnail (images not read from a file have none).
        """
        count = len(self.info.get("thumbnails") or [])
        if self._source is None or self._source.handle_of(self) is None or not -count <= index < count:
            raise IndexError(f"invalid thumbnail index: {index}")
        return self._source.thumbnail_image(self, index % count)

    def get_aux_image(self, aux_id: int) -> HeifAuxImage:
        """The auxiliary image with item id ``aux_id`` (ids are listed in ``info["aux"]``)."""
        if self._source is None or self._source.handle_of(self) is None:
            raise InvalidInputError("Usage error: Non-existing item ID referenced")
        return self._source.aux_image(self, aux_id)

    def __getstate__(self) -> dict[str, Any]:
        return {"pixels": self._pixel_state(), "info": self.info, "pending_orientation": self.pending_orientation}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._restore_pixels(*state["pixels"])
        self.info = state["info"]
        self._source = None
        self.pending_orientation = state.get("pending_orientation", False)


# EXIF orientation -> the Pillow transpose that shows the image upright
_TRANSPOSE = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


def _transposed(img: Any, orientation: int) -> Any:
    from PIL import Image

    method = _TRANSPOSE.get(orientation)
    if method is None:
        return img
    info = img.info
    out = img.transpose(getattr(Image.Transpose, method))
    out.info = info
    return out


# ---------------------------------------------------------------------------------------------------
# reading a container


class _Source:
    """One opened file: the libheif context, decode settings and the handle of each top-level image."""

    def __init__(self, ctx: Context, mimetype: str, flags: dict[str, Any]) -> None:
        self.ctx = ctx
        self.mimetype = mimetype
        self.flags = flags
        self._handles: dict[int, Any] = {}  # id(HeifImage) -> handle

    def decoder_id(self) -> str:
        if self.flags.get("decoder_id"):
            return str(self.flags["decoder_id"])
        key = "AVIF" if self.mimetype.startswith("image/avif") else "HEIF"
        return options.PREFERRED_DECODER.get(key, "") or ""

    def bind(self, image: HeifImage, handle: Any) -> None:
        self._handles[id(image)] = handle

    def handle_of(self, image: HeifImage) -> Any:
        return self._handles.get(id(image))

    def decoder(self, handle: Any, layout: Layout) -> Callable[[], tuple[int, int, int, Any]]:
        remove_stride = self.flags["remove_stride"]

        def run() -> tuple[int, int, int, Any]:
            with self.ctx.lock:
                tiling = image_tiling(handle) if remove_stride else None
                if (
                    tiling is not None
                    and tiling.image_width * tiling.image_height >= TILED_DECODE_MIN_PIXELS
                    and (tiling.image_width, tiling.image_height)
                    == (lib.heif_image_handle_get_width(handle), lib.heif_image_handle_get_height(handle))
                ):
                    threads = max(1, int(self.flags["decode_threads"]))
                    return decode_tiles_into(self.ctx, handle, layout, tiling, self.decoder_id(), threads)
                return decode_into(self.ctx, handle, layout, self.decoder_id(), remove_stride)

        return run

    def thumbnail_image(self, image: HeifImage, index: int) -> HeifThumbnail:
        parent = self.handle_of(image)
        count = lib.heif_image_handle_get_number_of_thumbnails(parent)
        ids = ffi.new("heif_item_id[]", max(count, 1))
        count = lib.heif_image_handle_get_list_of_thumbnail_IDs(parent, ids, count)
        if not 0 <= index < count:
            raise IndexError(f"invalid thumbnail index: {index}")
        out = ffi.new("heif_image_handle**")
        check(lib.heif_image_handle_get_thumbnail(parent, ids[index], out))
        handle = _lib.owned_handle(out[0])
        layout = _layout_of(handle, self.flags)
        size = (lib.heif_image_handle_get_width(handle), lib.heif_image_handle_get_height(handle))
        thumbnail = HeifThumbnail(size, layout.mode, decoder=self.decoder(handle, layout))
        thumbnail.info = {"bit_depth": lib.heif_image_handle_get_luma_bits_per_pixel(handle)}
        if not _is_monochrome(handle):
            chroma = _chroma_of(handle)
            if chroma is not None:
                thumbnail.info["chroma"] = chroma
        _color_info(handle, thumbnail.info)
        thumbnail._handle = handle  # type: ignore[attr-defined]  # keeps the handle alive
        return thumbnail

    def aux_image(self, image: HeifImage, aux_id: int) -> HeifAuxImage:
        parent = self.handle_of(image)
        out = ffi.new("heif_image_handle**")
        check(lib.heif_image_handle_get_auxiliary_image_handle(parent, aux_id, out))
        handle = _lib.owned_handle(out[0])
        bits = lib.heif_image_handle_get_luma_bits_per_pixel(handle)
        layout = layout_for(
            max(bits, 1),
            _is_monochrome(handle),
            alpha=False,
            premultiplied=False,
            convert_hdr_to_8bit=self.flags["convert_hdr_to_8bit"],
            hdr_to_16bit=self.flags["hdr_to_16bit"],
        )
        size = (lib.heif_image_handle_get_width(handle), lib.heif_image_handle_get_height(handle))
        aux = HeifAuxImage(size, layout.mode, decoder=self.decoder(handle, layout))
        aux._handle = handle  # type: ignore[attr-defined]  # keeps the handle alive
        return aux


def _layout_of(handle: Any, flags: dict[str, Any]) -> Layout:
    """The decoded layout of an image handle under the open flags (see :func:`decode.layout_for`)."""
    alpha = bool(lib.heif_image_handle_has_alpha_channel(handle))
    return layout_for(
        lib.heif_image_handle_get_luma_bits_per_pixel(handle),
        _is_monochrome(handle),
        alpha,
        alpha and bool(lib.heif_image_handle_is_premultiplied_alpha(handle)),
        flags["convert_hdr_to_8bit"],
        flags["hdr_to_16bit"],
        flags["bgr_mode"],
    )


def _is_monochrome(handle: Any) -> bool:
    colorspace = ffi.new("heif_colorspace*")
    chroma = ffi.new("heif_chroma*")
    check(lib.heif_image_handle_get_preferred_decoding_colorspace(handle, colorspace, chroma))
    return int(colorspace[0]) == int(lib.heif_colorspace_monochrome)


def _chroma_of(handle: Any) -> int | None:
    colorspace = ffi.new("heif_colorspace*")
    chroma = ffi.new("heif_chroma*")
    check(lib.heif_image_handle_get_preferred_decoding_colorspace(handle, colorspace, chroma))
    return {
        int(lib.heif_chroma_420): 420,
        int(lib.heif_chroma_422): 422,
        int(lib.heif_chroma_444): 444,
    }.get(int(chroma[0]))


def _metadata_blocks(handle: Any) -> list[tuple[str, str, bytes | None]]:
    n = lib.heif_image_handle_get_number_of_metadata_blocks(handle, ffi.NULL)
    if n <= 0:
        return []
    ids = ffi.new("heif_item_id[]", n)
    n = lib.heif_image_handle_get_list_of_metadata_block_IDs(handle, ffi.NULL, ids, n)
    blocks: list[tuple[str, str, bytes | None]] = []
    for i in range(n):
        item = ids[i]
        kind = _lib.string(lib.heif_image_handle_get_metadata_type(handle, item))
        content_type = _lib.string(lib.heif_image_handle_get_metadata_content_type(handle, item))
        size = lib.heif_image_handle_get_metadata_size(handle, item)
        data: bytes | None = None
        if size > 0:
            buf = ffi.new("uint8_t[]", size)
            err = lib.heif_image_handle_get_metadata(handle, item, buf)
            if err.code == 0:
                data = bytes(ffi.buffer(buf, size))
        elif size == 0:
            data = b""
        blocks.append((kind, content_type, data))
    return blocks


def _color_info(handle: Any, info: dict[str, Any]) -> None:
    kind = lib.heif_image_handle_get_color_profile_type(handle)
    if kind in (lib.heif_color_profile_type_prof, lib.heif_color_profile_type_rICC):
        size = lib.heif_image_handle_get_raw_color_profile_size(handle)
        data = b""
        if size > 0:
            buf = ffi.new("uint8_t[]", size)
            check(lib.heif_image_handle_get_raw_color_profile(handle, buf))
            data = bytes(ffi.buffer(buf, size))
        info["icc_profile"] = data
        info["icc_profile_type"] = "prof" if kind == lib.heif_color_profile_type_prof else "rICC"
    elif kind == lib.heif_color_profile_type_nclx:
        out = ffi.new("heif_color_profile_nclx**")
        err = lib.heif_image_handle_get_nclx_color_profile(handle, out)
        if err.code == 0 and out[0] != ffi.NULL:
            p = ffi.gc(out[0], lib.heif_nclx_color_profile_free)
            info["nclx_profile"] = {
                "color_primaries": int(p.color_primaries),
                "transfer_characteristics": int(p.transfer_characteristics),
                "matrix_coefficients": int(p.matrix_coefficients),
                "full_range_flag": int(p.full_range_flag),
                "color_primary_red_x": p.color_primary_red_x,
                "color_primary_red_y": p.color_primary_red_y,
                "color_primary_green_x": p.color_primary_green_x,
                "color_primary_green_y": p.color_primary_green_y,
                "color_primary_blue_x": p.color_primary_blue_x,
                "color_primary_blue_y": p.color_primary_blue_y,
                "color_primary_white_x": p.color_primary_white_x,
                "color_primary_white_y": p.color_primary_white_y,
            }


def _thumbnail_sizes(handle: Any) -> list[int]:
    n = lib.heif_image_handle_get_number_of_thumbnails(handle)
    if n <= 0:
        return []
    ids = ffi.new("heif_item_id[]", n)
    n = lib.heif_image_handle_get_list_of_thumbnail_IDs(handle, ids, n)
    sizes = []
    for i in range(n):
        out = ffi.new("heif_image_handle**")
        err = lib.heif_image_handle_get_thumbnail(handle, ids[i], out)
        if err.code != 0 or out[0] == ffi.NULL:
            sizes.append(0)
            continue
        thumb = _lib.owned_handle(out[0])
        sizes.append(max(lib.heif_image_handle_get_width(thumb), lib.heif_image_handle_get_height(thumb)))
    return sizes


def _depth_images(source: _Source, handle: Any) -> list[HeifDepthImage]:
    n = lib.heif_image_handle_get_number_of_depth_images(handle)
    if n <= 0:
        return []
    ids = ffi.new("heif_item_id[]", n)
    n = lib.heif_image_handle_get_list_of_depth_image_IDs(handle, ids, n)
    result = []
    for i in range(n):
        out = ffi.new("heif_image_handle**")
        err = lib.heif_image_handle_get_depth_image_handle(handle, ids[i], out)
        if err.code != 0 or out[0] == ffi.NULL:
            continue
        depth = _lib.owned_handle(out[0])
        bits = lib.heif_image_handle_get_luma_bits_per_pixel(depth)
        try:
            layout = layout_for(bits, True, False, False, hdr_to_16bit=source.flags["hdr_to_16bit"])
        except InvalidInputError:
            continue
        metadata: dict[str, Any] = {}
        rep = ffi.new("const heif_depth_representation_info**")
        if lib.heif_image_handle_get_depth_image_representation_info(handle, ids[i], rep) and rep[0] != ffi.NULL:
            r = rep[0]
            for key in ("z_near", "z_far", "d_min", "d_max"):
                if getattr(r, "has_" + key):
                    metadata[key] = float(getattr(r, key))
            metadata["representation_type"] = int(r.depth_representation_type)
            metadata["disparity_reference_view"] = int(r.disparity_reference_view)
            metadata["nonlinear_representation_model_size"] = int(r.depth_nonlinear_representation_model_size)
            lib.heif_depth_representation_info_free(r)
        size = (lib.heif_image_handle_get_width(depth), lib.heif_image_handle_get_height(depth))
        image = HeifDepthImage(size, layout.mode, decoder=source.decoder(depth, layout))
        image.info = {"metadata": metadata}
        image._handle = depth  # type: ignore[attr-defined]  # keeps the handle alive
        result.append(image)
    return result


def _aux_ids(handle: Any) -> dict[str, list[int]]:
    aux_filter = lib.LIBHEIF_AUX_IMAGE_FILTER_OMIT_ALPHA | lib.LIBHEIF_AUX_IMAGE_FILTER_OMIT_DEPTH
    n = lib.heif_image_handle_get_number_of_auxiliary_images(handle, aux_filter)
    if n <= 0:
        return {}
    ids = ffi.new("heif_item_id[]", n)
    n = lib.heif_image_handle_get_list_of_auxiliary_image_IDs(handle, aux_filter, ids, n)
    result: dict[str, list[int]] = {}
    for i in range(n):
        out = ffi.new("heif_image_handle**")
        if lib.heif_image_handle_get_auxiliary_image_handle(handle, ids[i], out).code != 0 or out[0] == ffi.NULL:
            continue
        aux = _lib.owned_handle(out[0])
        type_ptr = ffi.new("const char**")
        if lib.heif_image_handle_get_auxiliary_type(aux, type_ptr).code != 0:
            continue
        aux_type = _lib.string(type_ptr[0])
        lib.heif_image_handle_release_auxiliary_type(aux, type_ptr)
        result.setdefault(aux_type, []).append(int(ids[i]))
    return result


def _image_properties(handle: Any, info: dict[str, Any]) -> None:
    h = ffi.new("uint32_t*")
    v = ffi.new("uint32_t*")
    if lib.heif_image_handle_get_pixel_aspect_ratio(handle, h, v):
        info["pixel_aspect_ratio"] = (int(h[0]), int(v[0]))
    clli = ffi.new("heif_content_light_level*")
    if lib.heif_image_handle_get_content_light_level(handle, clli):
        info["content_light_level"] = {
            "max_content_light_level": int(clli.max_content_light_level),
            "max_pic_average_light_level": int(clli.max_pic_average_light_level),
        }
    mdcv = ffi.new("heif_mastering_display_colour_volume*")
    if lib.heif_image_handle_get_mastering_display_colour_volume(handle, mdcv):
        info["mastering_display_colour_volume"] = {
            "display_primaries_x": tuple(int(x) for x in mdcv.display_primaries_x),
            "display_primaries_y": tuple(int(y) for y in mdcv.display_primaries_y),
            "white_point_x": int(mdcv.white_point_x),
            "white_point_y": int(mdcv.white_point_y),
            "max_display_mastering_luminance": int(mdcv.max_display_mastering_luminance),
            "min_display_mastering_luminance": int(mdcv.min_display_mastering_luminance),
        }
    amve = ffi.new("heif_ambient_viewing_environment*")
    if lib.heif_image_handle_get_ambient_viewing_environment(handle, amve):
        info["ambient_viewing_environment"] = {
            "ambient_illumination": int(amve.ambient_illumination),
            "ambient_light_x": int(amve.ambient_light_x),
            "ambient_light_y": int(amve.ambient_light_y),
        }
    tiling = ffi.new("heif_image_tiling*")
    if lib.heif_image_handle_get_image_tiling(handle, 1, tiling).code == 0 and tiling.num_columns * tiling.num_rows > 1:
        info["tiling"] = {
            "num_columns": int(tiling.num_columns),
            "num_rows": int(tiling.num_rows),
            "tile_width": int(tiling.tile_width),
            "tile_height": int(tiling.tile_height),
            "image_width": int(tiling.image_width),
            "image_height": int(tiling.image_height),
        }
    camera: dict[str, Any] = {}
    if lib.heif_image_handle_has_camera_intrinsic_matrix(handle):
        m = ffi.new("heif_camera_intrinsic_matrix*")
        if lib.heif_image_handle_get_camera_intrinsic_matrix(handle, m).code == 0:
            camera["camera_intrinsic_matrix"] = {
                "focal_length_x": m.focal_length_x,
                "focal_length_y": m.focal_length_y,
                "principal_point_x": m.principal_point_x,
                "principal_point_y": m.principal_point_y,
                "skew": m.skew,
            }
    if lib.heif_image_handle_has_camera_extrinsic_matrix(handle):
        out = ffi.new("heif_camera_extrinsic_matrix**")
        if lib.heif_image_handle_get_camera_extrinsic_matrix(handle, out).code == 0 and out[0] != ffi.NULL:
            ext = ffi.gc(out[0], lib.heif_camera_extrinsic_matrix_release)
            rot = ffi.new("double[9]")
            if lib.heif_camera_extrinsic_matrix_get_rotation_matrix(ext, rot).code == 0:
                camera["camera_extrinsic_matrix_rot"] = tuple(rot[i] for i in range(9))
    if camera:
        info["heif"] = camera


def _read_image(source: _Source, handle: Any, primary: bool) -> HeifImage:
    bits = lib.heif_image_handle_get_luma_bits_per_pixel(handle)
    monochrome = _is_monochrome(handle)
    layout = _layout_of(handle, source.flags)
    info: dict[str, Any] = {"primary": primary, "bit_depth": bits, "exif": None, "metadata": []}
    for kind, content_type, data in _metadata_blocks(handle):
        if kind == "Exif":
            if info["exif"] is None and data is not None:
                info["exif"] = exif_from_block(data)
        elif kind == "mime":
            if "xmp" not in info and data:
                info["xmp"] = data
        else:
            info["metadata"].append(
                None if data is None else {"type": kind, "content_type": content_type, "data": data}
            )
    info["thumbnails"] = _thumbnail_sizes(handle) if options.THUMBNAILS else []
    info["depth_images"] = _depth_images(source, handle) if options.DEPTH_IMAGES else []
    if options.AUX_IMAGES:
        info["aux"] = _aux_ids(handle)
    if not monochrome:
        chroma = _chroma_of(handle)
        if chroma is not None:
            info["chroma"] = chroma
    _color_info(handle, info)
    _image_properties(handle, info)
    size = (lib.heif_image_handle_get_width(handle), lib.heif_image_handle_get_height(handle))
    image = HeifImage(size, layout.mode, info, decoder=source.decoder(handle, layout), source=source)
    source.bind(image, handle)
    return image


def _read_input(fp: Any) -> Any:
    """The bytes to parse from memory, or None for a big file that libheif should read lazily by path."""
    if isinstance(fp, (str, os.PathLike)):
        path = os.fspath(fp)
        with open(path, "rb") as f:  # clear FileNotFoundError/IsADirectoryError before libheif sees it
            if os.fstat(f.fileno()).st_size > LAZY_READ_THRESHOLD:
                return None
            return f.read()  # one read beats libheif's many small ones for typical photos
    if isinstance(fp, bytes) or (isinstance(fp, memoryview) and isinstance(fp.obj, bytes)):
        return fp  # immutable: libheif reads it without a copy
    if isinstance(fp, (bytearray, memoryview)):
        return bytes(fp)  # a private copy: the caller may change its buffer before pixels are decoded
    if hasattr(fp, "read"):
        return _read_stream(fp)
    raise TypeError("fp must be a path, a bytes-like object or a binary file object")


_TEXT_MODE = "fp is a text stream: open the file in binary mode ('rb')"


def _read_stream(fp: Any) -> bytes:
    """All of a binary stream: from offset 0 and left at 0 when it can seek (as Pillow's ``Image.open`` and
    pillow_heif read), from where it is when it can't (pipes, sockets)."""
    if isinstance(fp, io.TextIOBase):
        raise TypeError(_TEXT_MODE)
    seekable = _rewind(fp)
    data = fp.read()
    if isinstance(data, str):
        raise TypeError(_TEXT_MODE)
    if seekable:
        fp.seek(0)
    return data if isinstance(data, bytes) else bytes(data)


def _rewind(fp: Any) -> bool:
    """Seek ``fp`` to its start; False for a stream that cannot seek."""
    seekable = getattr(fp, "seekable", None)
    if seekable is not None and not seekable():
        return False
    try:
        fp.seek(0)
    except (AttributeError, OSError):  # io.UnsupportedOperation is an OSError
        return False
    return True


def _open_context(fp: Any, flags: dict[str, Any]) -> tuple[Context, str]:
    ctx = Context()
    if flags["disable_security_limits"]:
        check(lib.heif_context_set_security_limits(ctx.ptr, lib.heif_get_disabled_security_limits()))
    data = _read_input(fp)
    if data is None:
        # Big files: libheif reads only the boxes it needs, and image data when it is decoded.
        header = _peek(fp, FTYP_PEEK)
        check(lib.heif_context_read_from_file(ctx.ptr, os.fsencode(os.fspath(fp)), ffi.NULL))
    else:
        header = bytes(memoryview(data).cast("B")[:FTYP_PEEK])
        buf = ffi.from_buffer(data)
        ctx.keep(data)
        ctx.keep(buf)
        check(lib.heif_context_read_from_memory_without_copy(ctx.ptr, buf, len(buf), ffi.NULL))
    lib.heif_context_set_max_decoding_threads(ctx.ptr, max(0, int(flags["decode_threads"])))
    return ctx, sniff(header)[1]


def _read_images(fp: Any, flags: dict[str, Any]) -> tuple[_Source, list[HeifImage]]:
    ctx, mimetype = _open_context(fp, flags)
    source = _Source(ctx, mimetype, flags)
    n = lib.heif_context_get_number_of_top_level_images(ctx.ptr)
    if n <= 0:
        raise InvalidInputError("Invalid input: the file has no images")
    ids = ffi.new("heif_item_id[]", n)
    n = lib.heif_context_get_list_of_top_level_image_IDs(ctx.ptr, ids, n)
    primary_id = ffi.new("heif_item_id*")
    primary = int(primary_id[0]) if lib.heif_context_get_primary_image_ID(ctx.ptr, primary_id).code == 0 else None
    images: list[HeifImage] = []
    index_of: dict[int, int] = {}
    first_error: Exception | None = None
    primary_refused = False
    for i in range(n):
        # An image libheif can't open (e.g. a layered-HEVC ``lhv1`` item beside its ``hvc1`` base image) is
        # left out, as heif-info and pillow_heif do; the file fails only when no image opens.
        try:
            out = ffi.new("heif_image_handle**")
            check(lib.heif_context_get_image_handle(ctx.ptr, ids[i], out))
            image = _read_image(source, _lib.owned_handle(out[0]), int(ids[i]) == primary)
        except HeifError as exc:
            first_error = first_error or exc
            primary_refused = primary_refused or int(ids[i]) == primary
            continue
        index_of[int(ids[i])] = len(images)
        images.append(image)
    if not images:
        assert first_error is not None
        raise first_error
    if primary_refused:
        images[0].info["primary"] = True  # stands in for the primary image, which could not be opened
    groups = _entity_groups(ctx, index_of)
    if groups:
        for image in images:
            image.info["entity_groups"] = copy.deepcopy(groups)
    return source, images


def _fourcc(value: int) -> str:
    return value.to_bytes(4, "big").decode("latin-1")


def _entity_groups(ctx: Context, index_of: dict[int, int]) -> list[dict[str, Any]]:
    """Entity groups (``ster`` stereo pairs, ``altr`` alternatives, ``pymd`` pyramids...) of the file.

    ``images`` maps each entity to its index among the top-level images (None when it is not one).
    """
    count = ffi.new("int*")
    raw = lib.heif_context_get_entity_groups(ctx.ptr, 0, 0, count)
    if raw == ffi.NULL or count[0] <= 0:
        return []
    try:
        groups = []
        for g in range(count[0]):
            group = raw[g]
            entities = [int(group.entities[k]) for k in range(group.num_entities)] if group.entities != ffi.NULL else []
            groups.append(
                {
                    "id": int(group.entity_group_id),
                    "type": _fourcc(int(group.entity_group_type)),
                    "entities": entities,
                    "images": [index_of.get(e) for e in entities],
                }
            )
        return groups
    finally:
        lib.heif_entity_groups_release(raw, count[0])


def _open_flags(convert_hdr_to_8bit: bool, bgr_mode: bool, kwargs: dict[str, Any]) -> dict[str, Any]:
    unknown = set(kwargs) - _OPEN_KWARGS
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    return {
        "convert_hdr_to_8bit": bool(convert_hdr_to_8bit),
        "bgr_mode": bool(bgr_mode),
        "hdr_to_16bit": bool(kwargs.get("hdr_to_16bit", True)),
        "remove_stride": bool(kwargs.get("remove_stride", True)),
        "decode_threads": kwargs.get("decode_threads", options.DECODE_THREADS),
        "disable_security_limits": bool(kwargs.get("disable_security_limits", options.DISABLE_SECURITY_LIMITS)),
        "decoder_id": kwargs.get("decoder_id", ""),
    }


# ---------------------------------------------------------------------------------------------------
# the container


class HeifFile:
    """The images of one HEIF/AVIF file (or a new, empty container to add images to and save).

    ``HeifFile(fp)`` reads a file object from offset 0 and leaves it at 0 (a stream that cannot seek is
    read from where it is), as Pillow and pillow_heif do. Properties such as ``size``, ``mode``,
    ``info`` and ``data`` are those of the primary image. Indexing takes ints (negative too) and slices.
    """

    def __init__(
        self, fp: FileLike | None = None, convert_hdr_to_8bit: bool = True, bgr_mode: bool = False, **kwargs: Any
    ) -> None:
        self._images: list[HeifImage] = []
        self.mimetype = ""
        if fp is not None:
            flags = _open_flags(convert_hdr_to_8bit, bgr_mode, kwargs)
            source, self._images = _read_images(fp, flags)
            self.mimetype = source.mimetype

    # --- primary image -----------------------------------------------------------------------------
    @property
    def primary_index(self) -> int:
        """Index of the primary image: the last image with ``info["primary"]``, else 0."""
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

    # --- adding and saving (see encode.py) ---------------------------------------------------------
    def add_frombytes(self, mode: str, size: tuple[int, int], data: Any, **kwargs: Any) -> HeifImage:
        """Append an image made from raw bytes in ``mode`` (``stride=`` for padded rows)."""
        from .encode import image_from_bytes

        image = image_from_bytes(mode, size, data, **kwargs)
        self._images.append(image)
        return image

    def add_from_pillow(self, image: Any) -> HeifImage:
        """Append a copy of a Pillow image (mode converted as documented, orientation applied)."""
        from .encode import image_from_pillow

        added = image_from_pillow(image)
        self._images.append(added)
        return added

    def add_from_heif(self, image: HeifImage | HeifFile) -> HeifImage:
        """Append a copy of a ``HeifImage``, or of every image of a ``HeifFile`` (returns the last added)."""
        from .encode import image_from_heif

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
        """Encode all images (``save_all=True`` by default) to a path or a writable binary stream."""
        from .encode import save_heif_file

        save_heif_file(self, fp, **kwargs)

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
            ``remove_stride`` (default True), ``decode_threads``, ``decoder_id``,
            ``disable_security_limits``.

    Raises:
        heifkit.HeifError subclasses (see :mod:`heifkit.errors`), ``FileNotFoundError``, ``TypeError`` (also
        for a text-mode file). Images libheif cannot open are left out; the file fails only when none opens.
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


# Load the write path now, while ``heifkit/__init__`` is still importing this module: the first import of a
# submodule sets it as an attribute of the package, so a lazy first import at save time would replace the
# function ``heifkit.encode`` with the module ``heifkit.encode``.
from . import encode as _encode_module  # noqa: E402, F401
