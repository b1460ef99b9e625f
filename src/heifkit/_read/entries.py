"""Reading a file: libheif context (``_input``) -> each image's handle, mode and ``info``.

Nothing is decoded here. :func:`read_context` gives one :class:`Entry` per top-level image, with its depth
images; :func:`thumbnail` and :func:`aux_image` give entries for an image's thumbnails and auxiliary
images on demand. The image model (``image.py``) turns entries into images that decode lazily.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .. import options
from .._info.metadata import exif_from_block
from .._info.modes import decoded_mode
from .._info.properties import read_color, read_properties
from .._info.transforms import as_data, image_size, transformations
from .._native import dav1d as _dav1d
from .._native.libheif import Context, Handle, check, ffi, lib, string
from ..errors import HeifError, InvalidInputError, SecurityLimitError, UnsupportedError
from ..limits import SecurityLimits
from ..limits import resolve as resolve_limits
from . import items as _items

__all__ = [
    "OpenFlags",
    "Entry",
    "open_flags",
    "read_context",
    "thumbnail",
    "aux_image",
    "aux_ids",
    "item_image",
    "metadata_blocks",
    "stored_tagging",
    "item_id",
]


@dataclass(frozen=True)
class OpenFlags:
    """How a file is opened and its images decoded (``open_heif``'s arguments, options applied)."""

    convert_hdr_to_8bit: bool = True
    bgr_mode: bool = False
    hdr_to_16bit: bool = True
    remove_stride: bool = True
    decode_threads: int = 4
    disable_security_limits: bool = False
    limits: SecurityLimits | None = None  # resolved (limits.resolve); None with disable_security_limits
    decoder_id: str = ""
    codec_threads: int | None = None  # None: options.CODEC_THREADS for the file's format; -1: automatic
    apply_transformations: bool = True  # False: stored pixels, the transforms in info["transformations"]


def open_flags(convert_hdr_to_8bit: bool, bgr_mode: bool, kwargs: dict[str, Any]) -> OpenFlags:
    """The flags for ``open_heif(fp, convert_hdr_to_8bit, bgr_mode, **kwargs)``, defaults from ``options``.

    Raises:
        TypeError: an unknown keyword argument.
    """
    known = {f.name for f in dataclasses.fields(OpenFlags)} - {"convert_hdr_to_8bit", "bgr_mode"}
    unknown = set(kwargs) - known
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    disable = kwargs.get("disable_security_limits")
    security = resolve_limits(
        kwargs.get("limits"),
        None if disable is None else bool(disable),
        options.SECURITY_LIMITS,
        bool(options.DISABLE_SECURITY_LIMITS),
    )
    return OpenFlags(
        convert_hdr_to_8bit=bool(convert_hdr_to_8bit),
        bgr_mode=bool(bgr_mode),
        hdr_to_16bit=bool(kwargs.get("hdr_to_16bit", True)),
        remove_stride=bool(kwargs.get("remove_stride", True)),
        decode_threads=int(kwargs.get("decode_threads", options.DECODE_THREADS)),
        disable_security_limits=security is None,
        limits=security,
        decoder_id=str(kwargs.get("decoder_id", "") or ""),
        codec_threads=_codec_threads(kwargs.get("codec_threads")),
        apply_transformations=bool(kwargs.get("apply_transformations", True)),
    )


def _codec_threads(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"invalid codec_threads {value!r}: use None (automatic), 0 (codec default) or a count")
    return value


@dataclass
class Entry:
    """What is known about one image before decoding: its handle, size, decoded mode and ``info``."""

    handle: Handle
    size: tuple[int, int]
    mode: str
    bits: int  # bits per sample as stored in the file
    info: dict[str, Any]
    depth: list[Entry] = field(default_factory=list)
    transforms: tuple[tuple[Any, ...], ...] = ()  # see :func:`transforms.transformations`


# --- the file ----------------------------------------------------------------------------------------


def read_context(ctx: Context, mime: str, flags: OpenFlags, stills: bool = True) -> tuple[str, OpenFlags, list[Entry]]:
    """A parsed file (``_input.open_context``): its MIME type, the flags with the decoder chosen, and an entry
    per top-level image; without ``stills``, a file with only an image sequence gives [].

    An image libheif cannot open (e.g. a layered-HEVC ``lhv1`` item beside its ``hvc1`` base image) is left
    out, as heif-info and pillow_heif do; the file fails only when no image opens, or when one exceeds a
    security limit.
    """
    key = "AVIF" if mime.startswith("image/avif") else "HEIF"
    if not flags.decoder_id:
        flags = dataclasses.replace(flags, decoder_id=options.PREFERRED_DECODER.get(key, "") or "")
    codec_threads = options.CODEC_THREADS.get(key) if flags.codec_threads is None else flags.codec_threads
    if codec_threads is None:
        aom = flags.decoder_id == "aom" or (key == "AVIF" and not flags.decoder_id and _dav1d.library() is None)
        codec_threads = 1 if aom else -1  # -1: the decode's share of the cores (decode.decode)
    flags = dataclasses.replace(flags, codec_threads=codec_threads)
    n = lib.heif_context_get_number_of_top_level_images(ctx.ptr)
    if n <= 0 and (stills or not lib.heif_context_has_sequence(ctx.ptr)):
        raise InvalidInputError("Invalid input: the file has no images")
    ids = ffi.new("heif_item_id[]", n)
    n = lib.heif_context_get_list_of_top_level_image_IDs(ctx.ptr, ids, n)
    primary_id = ffi.new("heif_item_id*")
    primary = int(primary_id[0]) if lib.heif_context_get_primary_image_ID(ctx.ptr, primary_id).code == 0 else None
    entries: list[Entry] = []
    index_of: dict[int, int] = {}
    first_error: HeifError | None = None
    primary_refused = False
    for i in range(n):
        try:
            out = ffi.new("heif_image_handle**")
            check(lib.heif_context_get_image_handle(ctx.ptr, ids[i], out))
            entry = _top_level_entry(Handle(out[0], ctx), int(ids[i]) == primary, flags)
        except SecurityLimitError:
            raise  # a file beyond a limit is refused, not read without the image that exceeds it
        except HeifError as exc:
            first_error = first_error or exc
            primary_refused = primary_refused or int(ids[i]) == primary
            continue
        index_of[int(ids[i])] = len(entries)
        entries.append(entry)
    if not entries and first_error is not None:
        raise first_error
    if primary_refused:
        entries[0].info["primary"] = True  # stands in for the primary image, which could not be opened
    groups = _entity_groups(ctx, index_of)
    if groups:
        for entry in entries:
            entry.info["entity_groups"] = copy.deepcopy(groups)
    return mime, flags, entries


def _entity_groups(ctx: Context, index_of: dict[int, int]) -> list[dict[str, Any]]:
    """Entity groups (``ster`` stereo pairs, ``altr`` alternatives, ``pymd`` pyramids...) of the file.

    ``images`` maps each entity to its index among the top-level images (None when it is not one).
    """
    return [
        {"id": group_id, "type": kind, "entities": entities, "images": [index_of.get(e) for e in entities]}
        for group_id, kind, entities in _items.entity_groups(ctx.ptr)
    ]


# --- one image ---------------------------------------------------------------------------------------


def _size(handle: Handle, flags: OpenFlags | None = None) -> tuple[int, int]:
    return image_size(handle, flags is None or flags.apply_transformations)


def _entry(
    handle: Handle, mode: str, info: dict[str, Any], flags: OpenFlags, depth: list[Entry] | None = None
) -> Entry:
    """The entry of an image whose ``info`` is known; without transformations applied, ``info`` lists them."""
    transforms = transformations(handle)
    if not flags.apply_transformations:
        info["transformations"] = as_data(transforms)
    return Entry(handle, _size(handle, flags), mode, _bits(handle), info, depth or [], transforms)


def item_id(handle: Handle) -> int:
    """The item id of an image in its file."""
    return int(lib.heif_image_handle_get_item_id(handle.ptr))


def _bits(handle: Handle) -> int:
    return int(lib.heif_image_handle_get_luma_bits_per_pixel(handle.ptr))


def _preferred(handle: Handle) -> tuple[int, int]:
    """libheif's preferred (colorspace, chroma) to decode the image to."""
    colorspace, chroma = ffi.new("heif_colorspace*"), ffi.new("heif_chroma*")
    check(lib.heif_image_handle_get_preferred_decoding_colorspace(handle.ptr, colorspace, chroma))
    return int(colorspace[0]), int(chroma[0])


def _is_monochrome(handle: Handle) -> bool:
    return _preferred(handle)[0] == int(lib.heif_colorspace_monochrome)


def _chroma(handle: Handle) -> int | None:
    """420/422/444 for a colour image, None for grey or anything else."""
    colorspace, chroma = _preferred(handle)
    if colorspace == int(lib.heif_colorspace_monochrome):
        return None
    return {int(lib.heif_chroma_420): 420, int(lib.heif_chroma_422): 422, int(lib.heif_chroma_444): 444}.get(chroma)


def _mode(handle: Handle, flags: OpenFlags, aux: bool = False) -> str:
    """The decoded mode of an image (an auxiliary image: never alpha, never BGR).

    Raises:
        UnsupportedError: the file says the image has more than 16 bits per sample.
    """
    alpha = not aux and bool(lib.heif_image_handle_has_alpha_channel(handle.ptr))
    bits = max(_bits(handle), 1)
    if bits > 16:
        raise UnsupportedError(
            f"Unsupported feature: Unsupported bit depth: the image has {bits} bits per sample (at most 16 are read)",
            int(lib.heif_error_Unsupported_feature),
        )
    return decoded_mode(
        bits,
        _is_monochrome(handle),
        alpha,
        alpha and bool(lib.heif_image_handle_is_premultiplied_alpha(handle.ptr)),
        flags.convert_hdr_to_8bit,
        flags.hdr_to_16bit,
        flags.bgr_mode and not aux,
    )


def _check_tiles(handle: Handle, flags: OpenFlags) -> None:
    """Refuse a grid with more tiles than ``max_tiles`` (libheif 1.23 applies its limit to 'tili' images only).

    Raises:
        SecurityLimitError: naming the limit.
    """
    limit = flags.limits.max_tiles if flags.limits is not None else 0
    tiling = ffi.new("heif_image_tiling*")
    if not limit or lib.heif_image_handle_get_image_tiling(handle.ptr, 1, tiling).code != 0:
        return
    tiles = int(tiling.num_columns) * int(tiling.num_rows)
    if tiles > limit:
        raise SecurityLimitError(
            f"Memory allocation error: Security limit exceeded: Number of tiles {tiles} "
            f"({tiling.num_columns}x{tiling.num_rows} grid) exceeds the security limit of {limit}",
            int(lib.heif_error_Memory_allocation_error),
            int(lib.heif_suberror_Security_limit_exceeded),
        )


def _top_level_entry(handle: Handle, primary: bool, flags: OpenFlags) -> Entry:
    _check_tiles(handle, flags)
    info: dict[str, Any] = {"primary": primary, "bit_depth": _bits(handle)}
    _read_metadata(handle, info)
    info["thumbnails"] = _thumbnail_sizes(handle) if options.THUMBNAILS else []
    depth = _depth_entries(handle, flags) if options.DEPTH_IMAGES else []
    info["depth_images"] = []  # filled with the depth images made from ``depth``
    if options.AUX_IMAGES:
        info["aux"] = aux_ids(handle)
    chroma = _chroma(handle)
    if chroma is not None:
        info["chroma"] = chroma
    read_color(handle.ptr, info)
    read_properties(handle.ptr, info)
    return _entry(handle, _mode(handle, flags), info, flags, depth)


def _read_metadata(handle: Handle, info: dict[str, Any]) -> None:
    """Put the image's ``exif``, ``xmp`` and other ``metadata`` items in ``info``."""
    info["exif"], info["metadata"] = None, []
    for kind, content_type, data in metadata_blocks(handle):
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


def stored_tagging(handle: Handle) -> dict[str, Any]:
    """What ``info`` says of a top-level image as read, of what a copy of it keeps or changes (metadata, colour
    profile, the properties of its coded image, bit depth, chroma, tiling) and its thumbnails as (item id,
    longer side), read again from the file: the image's ``info`` is the caller's to change."""
    info: dict[str, Any] = {"bit_depth": _bits(handle)}
    _read_metadata(handle, info)
    chroma = _chroma(handle)
    if chroma is not None:
        info["chroma"] = chroma
    read_color(handle.ptr, info)
    read_properties(handle.ptr, info)
    thumbnails = _thumbnail_ids(handle) if options.THUMBNAILS else []
    info["thumbnails"] = list(zip(thumbnails, _thumbnail_sizes(handle) if thumbnails else [], strict=True))
    return info


def metadata_blocks(handle: Handle) -> list[tuple[str, str, bytes | None]]:
    n = lib.heif_image_handle_get_number_of_metadata_blocks(handle.ptr, ffi.NULL)
    if n <= 0:
        return []
    ids = ffi.new("heif_item_id[]", n)
    n = lib.heif_image_handle_get_list_of_metadata_block_IDs(handle.ptr, ffi.NULL, ids, n)
    blocks: list[tuple[str, str, bytes | None]] = []
    for i in range(n):
        item = ids[i]
        # latin-1: an item type is four bytes, kept as they are (re-saved unchanged) whatever they hold
        kind = string(lib.heif_image_handle_get_metadata_type(handle.ptr, item), "latin-1")
        content_type = string(lib.heif_image_handle_get_metadata_content_type(handle.ptr, item))
        size = lib.heif_image_handle_get_metadata_size(handle.ptr, item)
        data: bytes | None = None
        if size > 0:
            buf = ffi.new("uint8_t[]", size)
            if lib.heif_image_handle_get_metadata(handle.ptr, item, buf).code == 0:
                data = bytes(ffi.buffer(buf, size))
        elif size == 0:
            data = b""
        blocks.append((kind, content_type, data))
    return blocks


def _ids(handle: Handle, count: Any, list_ids: Any, *filters: int) -> list[int]:
    """The item ids a libheif ``count``/``list`` pair gives for ``handle``."""
    return _items.listed(count, list_ids, handle.ptr, *filters)


def _thumbnail_handle(handle: Handle, item: int) -> Handle:
    out = ffi.new("heif_image_handle**")
    check(lib.heif_image_handle_get_thumbnail(handle.ptr, item, out))
    return Handle(out[0], handle.ctx)


def _thumbnail_ids(handle: Handle) -> list[int]:
    return _ids(handle, lib.heif_image_handle_get_number_of_thumbnails, lib.heif_image_handle_get_list_of_thumbnail_IDs)


def _thumbnail_sizes(handle: Handle) -> list[int]:
    """The longer side of each thumbnail (0 for one libheif cannot open)."""
    sizes = []
    for item in _thumbnail_ids(handle):
        try:
            sizes.append(max(_size(_thumbnail_handle(handle, item))))
        except HeifError:
            sizes.append(0)
    return sizes


def _depth_entries(handle: Handle, flags: OpenFlags) -> list[Entry]:
    ids = _ids(
        handle, lib.heif_image_handle_get_number_of_depth_images, lib.heif_image_handle_get_list_of_depth_image_IDs
    )
    entries = []
    for item in ids:
        out = ffi.new("heif_image_handle**")
        if lib.heif_image_handle_get_depth_image_handle(handle.ptr, item, out).code != 0 or out[0] == ffi.NULL:
            continue
        depth = Handle(out[0], handle.ctx)
        bits = _bits(depth)
        if not 1 <= bits <= 16:
            continue
        mode = decoded_mode(bits, True, False, False, hdr_to_16bit=flags.hdr_to_16bit)
        entries.append(_entry(depth, mode, {"metadata": _depth_metadata(handle, item)}, flags))
    return entries


def _depth_metadata(handle: Handle, item: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    rep = ffi.new("const heif_depth_representation_info**")
    if lib.heif_image_handle_get_depth_image_representation_info(handle.ptr, item, rep) and rep[0] != ffi.NULL:
        r = rep[0]
        for key in ("z_near", "z_far", "d_min", "d_max"):
            if getattr(r, "has_" + key):
                metadata[key] = float(getattr(r, key))
        metadata["representation_type"] = int(r.depth_representation_type)
        metadata["disparity_reference_view"] = int(r.disparity_reference_view)
        metadata["nonlinear_representation_model_size"] = int(r.depth_nonlinear_representation_model_size)
        lib.heif_depth_representation_info_free(r)
    return metadata


_AUX_FILTER = int(lib.LIBHEIF_AUX_IMAGE_FILTER_OMIT_ALPHA | lib.LIBHEIF_AUX_IMAGE_FILTER_OMIT_DEPTH)


def aux_ids(handle: Handle) -> dict[str, list[int]]:
    ids = _ids(
        handle,
        lib.heif_image_handle_get_number_of_auxiliary_images,
        lib.heif_image_handle_get_list_of_auxiliary_image_IDs,
        _AUX_FILTER,
    )
    result: dict[str, list[int]] = {}
    for item in ids:
        out = ffi.new("heif_image_handle**")
        if lib.heif_image_handle_get_auxiliary_image_handle(handle.ptr, item, out).code != 0 or out[0] == ffi.NULL:
            continue
        aux = Handle(out[0], handle.ctx)
        type_ptr = ffi.new("const char**")
        if lib.heif_image_handle_get_auxiliary_type(aux.ptr, type_ptr).code != 0:
            continue
        aux_type = string(type_ptr[0])
        lib.heif_image_handle_release_auxiliary_type(aux.ptr, type_ptr)
        result.setdefault(aux_type, []).append(item)
    return result


def thumbnail(handle: Handle, index: int, flags: OpenFlags) -> Entry:
    """The entry of thumbnail ``index`` of an image (``info``: bit depth, chroma, colour profile).

    Raises:
        IndexError: there is no such thumbnail.
        HeifError: libheif cannot open it.
    """
    ids = _thumbnail_ids(handle)
    if not 0 <= index < len(ids):
        raise IndexError(f"invalid thumbnail index: {index}")
    found = _thumbnail_handle(handle, ids[index])
    _check_tiles(found, flags)
    info: dict[str, Any] = {"bit_depth": _bits(found)}
    chroma = _chroma(found)
    if chroma is not None:
        info["chroma"] = chroma
    read_color(found.ptr, info)
    return _entry(found, _mode(found, flags), info, flags)


def item_image(ctx: Context, item: int, flags: OpenFlags) -> Entry:
    """The entry of any image item of the file (a hidden one too), decoded as an auxiliary image is."""
    out = ffi.new("heif_image_handle**")
    check(lib.heif_context_get_image_handle(ctx.ptr, item, out))
    found = Handle(out[0], ctx)
    _check_tiles(found, flags)
    return _entry(found, _mode(found, flags, aux=True), {}, flags)


def aux_image(handle: Handle, aux_id: int, flags: OpenFlags) -> Entry:
    """The entry of the auxiliary image ``aux_id`` (an id from ``info["aux"]``) of an image."""
    out = ffi.new("heif_image_handle**")
    check(lib.heif_image_handle_get_auxiliary_image_handle(handle.ptr, aux_id, out))
    aux = Handle(out[0], handle.ctx)
    _check_tiles(aux, flags)
    return _entry(aux, _mode(aux, flags, aux=True), {}, flags)
