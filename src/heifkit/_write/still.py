"""Writing: plain frames -> a checked plan -> libheif images -> the bytes of a HEIF/AVIF file.

A :class:`Frame` is all the writer knows of an image: mode, size, pixel buffer, stride, ``info`` and whether
its EXIF/XMP orientation is still to be applied; the writer never sees the image model. Everything that can
fail is checked before a pixel is copied: the settings (``settings``, built once by the caller), every coded
image's size against the codec (``encoder``), the colour values. Then, per image: the pixels are copied once
into a libheif image at the output bit depth, the colour profile and pixel aspect ratio are attached, libheif
encodes it (as one image or a grid of tiles), then the HDR metadata, EXIF/XMP/other metadata and thumbnails,
and the items a frame read from a file brings along (depth, auxiliary images, gain maps: copied as stored by
``attached``).

Orientation: HEIF stores it as ``irot``/``imir``. Frames whose orientation is pending (made from bytes or
Pillow images) are written with the EXIF/XMP orientation as ``irot``/``imir`` and their pixels as given, so
readers show them upright exactly once. Decoded images are already upright: they are written without a
transform and with their EXIF/XMP orientation reset to 1.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping
from typing import Any

from .._info.checks import as_int
from .._info.metadata import get_orientation, set_orientation
from .._info.modes import MODES
from .._info.properties import SRGB, apply_to_handle, apply_to_image, nclx_profile
from .._native.libheif import Context, check, ffi, lib, owned
from ..errors import EncoderError
from .attached import Copies
from .encoder import MAX_GRID, MAX_ITEMS, Encoder, size_problem, thumbnail_size
from .frames import (
    Frame,
    GainMap,
    Job,
    check_colour,
    fill_image,
    frame_pixels,
    job_chroma,
    new_heif_image,
    output_bits,
    output_nclx,
    writer_mode,
)
from .params import check_image_info, format_for
from .settings import Codec, EncodeSettings, encode_settings
from .stored import Stored, ToneMapItem, copy_problem, stored_file, written_images
from .target import check_target, write_output

__all__ = [
    "Frame",
    "GainMap",
    "EncodeSettings",
    "encode_settings",
    "format_for",
    "check_target",
    "check_size",
    "encode_frames",
    "file_bytes",
    "primary_index",
    "copy_problem",
    "save",
    "save_pillow",
]


# --- the plan: every image checked before anything is encoded ----------------------------------------


def _prepare_info(frame: Frame, overrides: Mapping[str, Any], settings: EncodeSettings) -> tuple[dict[str, Any], int]:
    """The info to write for ``frame`` (``overrides`` applied, checked, EXIF/XMP as bytes, the settings'
    defaults filled in) and its orientation."""
    info = dict(frame.info)
    info.update(overrides)
    check_image_info(info)
    if info.get("save_nclx_profile") is None:
        info["save_nclx_profile"] = settings.save_nclx_profile
    exif, xmp = info.get("exif"), info.get("xmp")
    if exif is not None and not isinstance(exif, bytes):
        info["exif"] = bytes(exif) if isinstance(exif, (bytearray, memoryview)) else exif.tobytes()  # Image.Exif
    if isinstance(xmp, str):
        info["xmp"] = xmp.encode("utf-8")
    elif isinstance(xmp, (bytearray, memoryview)):
        info["xmp"] = bytes(xmp)
    # Decoded pixels are upright whatever EXIF/XMP is passed with them (e.g. ``exif=f.info["exif"]``, which
    # open_heif leaves untouched): writing that orientation as irot/imir would rotate them a second time.
    if frame.orientation:
        orientation = frame.orientation
        if get_orientation(info):
            set_orientation(info)  # irot/imir carry it: EXIF/XMP must not rotate the pixels again
    elif frame.pending_orientation:
        orientation = get_orientation(info) or 1
    else:
        orientation = 1
        if get_orientation(info):
            set_orientation(info)  # pixels are upright already: don't let EXIF rotate them again
    return info, orientation


def _effective_tile(mode: str, size: tuple[int, int], info: dict[str, Any], tile_size: int | None, codec: Codec,
                    chroma: str | None, default_tile: int = 0) -> int:  # fmt: skip
    """The grid tile size an image is written with (0: one coded image); ``tile_size`` None: the image's own
    grid, else ``default_tile``."""
    if tile_size is None:
        tiling = info.get("tiling") or {}
        tile_size = tiling.get("tile_width") or default_tile
    tile = operator.index(tile_size or 0)
    width, height = size
    if tile <= 0 or (width <= tile and height <= tile):
        return 0
    if writer_mode(mode).alpha:  # libheif's grid API has no alpha tiles
        return 0
    if codec.fmt == "AVIF":
        if tile < 64:
            return 0
        if writer_mode(mode).color and chroma != "444" and (width % 2 or height % 2 or tile % 2):
            return 0
    return tile


def _thumbnail_boxes(info: dict[str, Any], size: tuple[int, int]) -> list[int]:
    """The thumbnail boxes to encode: boxes outside 3 < box < max(size) are dropped (as pillow_heif does)."""
    return [b for b in (operator.index(b) for b in info.get("thumbnails") or []) if 3 < b < max(size)]


def _grid_hint(mode: str, size: tuple[int, int], info: dict[str, Any], chroma: str | None, codec: Codec) -> str:
    """Advice to write an image too big for one coded image as a grid, when a grid can hold it."""
    width, height = size
    tile = 512  # iPhone-like tiles, doubled until the grid fits in the column, row and item limits
    while -(-max(width, height) // tile) > MAX_GRID or (-(-width // tile)) * (-(-height // tile)) >= MAX_ITEMS:
        tile *= 2
    if writer_mode(mode).alpha:
        return "; images with alpha cannot be written as grids (libheif has no grid API with alpha)"
    if _effective_tile(mode, size, info, tile, codec, chroma) == 0 or size_problem(tile, tile, codec):
        return ""
    return f"; a grid can hold it, its tiles being encoded separately: use e.g. tile_size={tile}"


def check_size(mode: str, size: tuple[int, int], info: dict[str, Any], settings: EncodeSettings) -> None:
    """Refuse, before any pixel is copied, an image whose coded images the codec or libheif cannot write.

    Raises:
        ValueError: an image, grid tile or thumbnail is too big or too small for the codec.
    """
    codec = settings.codec
    chroma = job_chroma(settings, info)
    tile = _effective_tile(mode, size, info, settings.tile_size, codec, chroma, settings.default_tile_size)
    width, height = size
    problem = size_problem(tile, tile, codec) if tile else size_problem(width, height, codec)
    if problem and tile:
        raise ValueError(f"cannot write a {width}x{height} image with tile_size={tile}: {problem}")
    if problem:
        hint = _grid_hint(mode, size, info, chroma, codec)
        raise ValueError(f"cannot write a {width}x{height} image as {codec.fmt}: {problem}{hint}")
    for box in _thumbnail_boxes(info, size):
        thumb = thumbnail_size(size, box)
        if min(thumb) <= 0:
            raise ValueError(
                f"thumbnail {box} of a {width}x{height} image would be {thumb[0]}x{thumb[1]} pixels; "
                "use a larger box or no thumbnail"
            )
        problem = size_problem(*thumb, codec)
        if problem:
            raise ValueError(
                f"cannot write the {thumb[0]}x{thumb[1]} thumbnail {box} of a {width}x{height} image: {problem}"
            )


def _count_items(jobs: list[Job]) -> int:
    count = 0
    for job in jobs:
        width, height = job.frame.size
        count += 1 + (-(-width // job.tile)) * (-(-height // job.tile)) if job.tile else 1
        count += 2 * len(_thumbnail_boxes(job.info, job.frame.size))
        count += 1 if job.info.get("exif") else 0
        count += 1 if job.info.get("xmp") else 0
        count += len([m for m in job.info.get("metadata") or [] if m])
        count += 1 if writer_mode(job.frame.mode).alpha else 0
        count += len(job.frame.attached.items) if job.frame.attached else 0
    return count


def _plan(frames: list[Frame], settings: EncodeSettings, per_frame: dict[int, Mapping[str, Any]]) -> list[Job]:
    """Every image's job, all checked before the first one is encoded."""
    codec = settings.codec
    jobs = []
    for i, frame in enumerate(frames):
        if frame.size[0] <= 0 or frame.size[1] <= 0:
            raise ValueError("Empty images are not supported.")
        info, orientation = _prepare_info(frame, per_frame.get(i, {}), settings)
        chroma = job_chroma(settings, info)
        job = Job(frame, info, orientation, chroma, output_bits(frame.mode, info, settings.save_to_12bit))
        job.quality = settings.quality
        if settings.keep_quality and frame.coded_quality is not None:
            job.quality = frame.coded_quality
        job.tile = _effective_tile(
            frame.mode, frame.size, info, settings.tile_size, codec, chroma, settings.default_tile_size
        )
        if job.tile and max(-(-frame.size[0] // job.tile), -(-frame.size[1] // job.tile)) > MAX_GRID:
            raise ValueError("Grid image cannot have more than 256 rows or columns, increase `tile_size`.")
        jobs.append(job)
    if _count_items(jobs) > MAX_ITEMS:
        raise ValueError(
            f"The file would have more than {MAX_ITEMS} items (tiles, thumbnails, metadata), which readers refuse;"
            " increase `tile_size` or write fewer images."
        )
    for job in jobs:
        check_size(job.frame.mode, job.frame.size, job.info, settings)
        check_colour(job, codec)
    return jobs


def primary_index(frames: list[Frame], requested: Any) -> int:
    """``primary_index`` (negative counts from the end; past the end is the last image), else the flags."""
    if requested is not None:
        index, count = as_int(requested, "primary_index"), len(frames)
        if index >= count:
            return count - 1
        if index < -count:
            raise ValueError(f"primary_index {index} is out of range for {count} images")
        return index % count
    primary = 0
    for i, frame in enumerate(frames):
        if frame.info.get("primary"):
            primary = i
    return primary


# --- one image into libheif --------------------------------------------------------------------------


def _encoding_options(info: dict[str, Any], orientation: int) -> Any:
    """Owned ``heif_encoding_options``: orientation as irot/imir, and the NCLX profile to write (if any)."""
    nclx = output_nclx(info)
    profile = nclx_profile(nclx) if nclx is not None else None
    opts = owned(lib.heif_encoding_options_alloc(), lib.heif_encoding_options_free, profile)
    opts.image_orientation = orientation
    if profile is None:
        opts.macOS_compatibility_workaround_no_nclx_profile = 1
    else:
        opts.output_nclx_profile = profile
    return opts


def _add_metadata(ctx: Any, handle: Any, info: dict[str, Any]) -> None:
    exif, xmp = info.get("exif"), info.get("xmp")  # bytes: see _prepare_info
    if exif:
        check(lib.heif_context_add_exif_metadata(ctx, handle, exif, len(exif)), "EXIF")
    if xmp:
        check(lib.heif_context_add_XMP_metadata(ctx, handle, xmp, len(xmp)), "XMP")
    for block in info.get("metadata") or []:
        if not block:
            continue
        data = bytes(block["data"])
        kind = str(block["type"]).encode("latin-1")  # as read: four bytes, whatever they hold
        content_type = (block.get("content_type") or "").encode() or ffi.NULL
        check(lib.heif_context_add_generic_metadata(ctx, handle, data, len(data), kind, content_type), "metadata")


def _ycbcr_nclx(info: dict[str, Any], bits: int) -> dict[str, int] | None:
    """The NCLX profile that describes Pillow YCbCr planes, when they can be written as they are.

    Pillow's YCbCr is JPEG's: BT.601 (matrix 6, the same as 5) at full range, 8 bits. When the profile
    written says so (or no profile is written: readers then assume BT.601 full range), libheif only
    subsamples the chroma planes. Any other matrix or range (e.g. ``matrix_coefficients=0``, the lossless
    recipe), or another bit depth, needs the RGB pixels: None.
    """
    written = output_nclx(info)
    if bits != 8:
        return None
    if written is None:
        return dict(SRGB)
    if written["matrix_coefficients"] not in (5, 6) or not written["full_range_flag"]:
        return None
    return written


def _ycbcr_to_rgb(frame: Frame, buf: Any, stride: int) -> tuple[Any, int]:
    """Pillow's RGB conversion of YCbCr pixels (the exact RGB that ``im.convert("RGB")`` gives)."""
    from PIL import Image

    width, height = frame.size
    raw = bytes(ffi.buffer(buf))
    raw += bytes(max(0, stride * height - len(raw)))  # the last row need not be padded to the stride
    rgb = Image.frombytes("YCbCr", (width, height), raw, "raw", "YCbCr", stride).convert("RGB").tobytes()
    return ffi.from_buffer(rgb), width * 3


def _encode_one(ctx: Any, encoder: Encoder, job: Job) -> Any:
    frame, info, tile, bits = job.frame, job.info, job.tile, job.bits
    encoder.use_chroma(job.chroma)
    encoder.use_quality(job.quality)
    buf, stride = frame_pixels(frame)
    mode = writer_mode(frame.mode)
    sample_nclx = None
    if mode.ycbcr:
        sample_nclx = _ycbcr_nclx(info, bits)
        if sample_nclx is None:
            buf, stride = _ycbcr_to_rgb(frame, buf, stride)
            mode = MODES["RGB"]
    width, height = frame.size
    opts = _encoding_options(info, job.orientation)
    out = ffi.new("heif_image_handle**")
    full = None
    if tile:
        cols, rows = -(-width // tile), -(-height // tile)
        check(lib.heif_context_add_grid_image(ctx, width, height, cols, rows, opts, out))
        handle = owned(out[0], lib.heif_image_handle_release)
        for ty in range(rows):
            for tx in range(cols):
                x0, y0 = tx * tile, ty * tile
                tile_img = new_heif_image(tile, tile, mode, bits)
                fill_image(tile_img, mode, bits, buf, stride, x0, y0, min(tile, width - x0), min(tile, height - y0))
                apply_to_image(tile_img, info, sample_nclx)
                check(lib.heif_context_add_image_tile(ctx, handle, tx, ty, tile_img, encoder.ptr))
    else:
        full = new_heif_image(width, height, mode, bits)
        fill_image(full, mode, bits, buf, stride, 0, 0, width, height)
        if mode.premultiplied:
            lib.heif_image_set_premultiplied_alpha(full, 1)
        apply_to_image(full, info, sample_nclx)
        check(lib.heif_context_encode_image(ctx, full, encoder.ptr, opts, out))
        handle = owned(out[0], lib.heif_image_handle_release)
    apply_to_handle(handle, info, grid=bool(tile))
    _add_metadata(ctx, handle, info)
    boxes = _thumbnail_boxes(info, frame.size)
    if boxes and full is None:
        full = new_heif_image(width, height, mode, bits)
        fill_image(full, mode, bits, buf, stride, 0, 0, width, height)
        apply_to_image(full, info, sample_nclx)
    for box in boxes:
        thumb = ffi.new("heif_image_handle**")
        check(lib.heif_context_encode_thumbnail(ctx, full, handle, encoder.ptr, opts, box, thumb), "thumbnail")
        if thumb[0] != ffi.NULL:
            lib.heif_image_handle_release(thumb[0])
    return handle


# --- the file ----------------------------------------------------------------------------------------


def encode_frames(frames: list[Frame], settings: EncodeSettings, per_frame: dict[int, Mapping[str, Any]]) -> bytes:
    """Encode ``frames`` into the bytes of one HEIF/AVIF file.

    ``settings`` are the save's; ``per_frame`` maps a frame index to its ``info`` overrides. Every size, limit
    and value is checked before the first pixel is copied or encoded.
    """
    if not frames:
        raise ValueError("Cannot write file with no images as HEIF.")
    primary = primary_index(frames, settings.primary_index)
    jobs = _plan(frames, settings, per_frame)
    ctx = Context()
    encoder = Encoder(ctx.ptr, settings)
    copies = Copies(settings.format)
    for i, job in enumerate(jobs):
        handle = _encode_one(ctx.ptr, encoder, job)
        copies.add(ctx.ptr, handle, job.frame.attached)
        if i == primary:
            check(lib.heif_context_set_primary_image(ctx.ptr, handle))
    return copies.patched(ctx.file_bytes())


def file_bytes(frames: list[Frame], settings: EncodeSettings, per_frame: dict[int, Mapping[str, Any]]) -> bytes:
    """The bytes of one file of ``frames``: encoded (:func:`encode_frames`), or, where frames are to be copied as
    stored (``Frame.stored``) or carry a gain map to write (``Frame.gain_map``), laid out by ``stored``: the
    frames (and gain maps) that need an encode are encoded first, into a file of their own, whose images are
    then copied beside the others in the frames' order, each gain map as a ``tmap`` item with its image."""
    if not any(frame.stored is not None or frame.gain_map is not None for frame in frames):
        return encode_frames(frames, settings, per_frame)
    primary = primary_index(frames, settings.primary_index)
    encoded = [i for i, frame in enumerate(frames) if frame.stored is None]
    maps = [i for i, frame in enumerate(frames) if frame.gain_map is not None and frame.stored is None]
    written: dict[int, Stored] = {}
    gain_maps: dict[int, Stored] = {}
    if encoded:
        overrides = {n: per_frame[i] for n, i in enumerate(encoded) if i in per_frame}
        to_encode = [frames[i] for i in encoded] + [_gain_map_frame(frames[i]) for i in maps]
        data = encode_frames(to_encode, settings.replace(primary_index=0), overrides)
        images_written = written_images(data)
        if len(images_written) != len(to_encode):
            raise EncoderError(f"libheif wrote {len(images_written)} images of {len(to_encode)}")
        written = dict(zip(encoded, images_written[: len(encoded)], strict=True))
        gain_maps = dict(zip(maps, images_written[len(encoded) :], strict=True))
    images: list[tuple[Stored, Mapping[str, Any]]] = []
    tmaps: dict[int, tuple[Stored, ToneMapItem]] = {}
    for i, frame in enumerate(frames):
        if frame.stored is None:
            images.append((written[i], {}))
        else:
            info = {**frame.info, **per_frame.get(i, {})}
            check_image_info(info)
            images.append((frame.stored, info))
        if i in gain_maps and frame.gain_map is not None:
            gain = frame.gain_map
            tmaps[i] = (
                gain_maps[i],
                ToneMapItem(gain.metadata, gain.alternate_nclx, gain.alternate_bits, gain.alternate_clli),
            )
    return stored_file(images, primary, tmaps)


def _gain_map_frame(frame: Frame) -> Frame:
    """The frame of a gain map, written untagged (NCLX 2/2/6, as libavif writes gain maps) in 4:4:4."""
    assert frame.gain_map is not None
    gain = frame.gain_map.frame
    nclx = {"color_primaries": 2, "transfer_characteristics": 2, "matrix_coefficients": 6, "full_range_flag": 1}
    info = {**gain.info, "nclx_profile": nclx, "chroma": 444, "thumbnails": [], "exif": None, "xmp": None}
    return dataclasses.replace(gain, info=info)


def save(frames: list[Frame], fp: Any, settings: EncodeSettings) -> None:
    """``HeifFile.save``: encode ``frames`` (the image parameters apply to the primary one), write to ``fp``.

    The caller checks ``fp`` (:func:`check_target`) before it decodes the images that make the frames.
    """
    if not frames:
        raise ValueError("Cannot write file with no images as HEIF.")
    primary = primary_index(frames, settings.primary_index)
    write_output(fp, file_bytes(frames, settings, {primary: settings.image}))


def save_pillow(frames: list[Frame], fp: Any, settings: EncodeSettings) -> None:
    """Pillow's ``save``: the image parameters (Pillow's ``encoderinfo``) apply to every frame.

    Pillow has opened (and truncated) the target before this runs: a save that fails here leaves an empty
    file behind, which only ``HeifFile.save`` avoids (see docs/saving.md).
    """
    if settings.primary_index is None and not any(f.info.get("primary") for f in frames):
        settings = settings.replace(primary_index=0)
    fp.write(file_bytes(frames, settings, {i: settings.image for i in range(len(frames))}))
