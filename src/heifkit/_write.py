"""Writing: plain frames -> a checked plan -> libheif images -> the bytes of a HEIF/AVIF file -> a path or stream.

A :class:`Frame` is what the writer knows of an image: mode, size, pixel buffer, stride, ``info`` and
whether its EXIF/XMP orientation is still to be applied. The writer never sees the image model.

Per image: the pixels are copied once into a libheif image at the output bit depth, the colour profile
and pixel aspect ratio are attached, libheif encodes it (as one image or a grid of tiles), then the
HDR metadata, EXIF/XMP/other metadata and thumbnails are attached to the encoded item.

Orientation: HEIF stores it as ``irot``/``imir``. Frames whose orientation is pending (made from bytes or
Pillow images) are written with the EXIF/XMP orientation as ``irot``/``imir`` and their pixels as given,
so readers show them upright exactly once. Decoded images are already upright: they are written without
a transform and with their EXIF/XMP orientation reset to 1.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Any

from . import options
from ._lib import Context, check, ffi, lib, owned
from .codecs import encoder_descriptor, encoder_ids, libheif_info
from .errors import EncoderError
from .metadata import get_orientation, set_orientation
from .modes import MODES, Mode
from .properties import SRGB, NCLX_KEYS, apply_to_handle, apply_to_image, nclx_profile, pixel_aspect_ratio

__all__ = ["Frame", "SaveParams", "save_params", "check_target", "encode_frames", "save", "save_pillow"]


@dataclass(frozen=True)
class Frame:
    """An image as the writer takes it: ``stride * (height - 1) + row`` bytes of ``data`` in ``mode``."""

    mode: str
    size: tuple[int, int]
    data: Any
    stride: int
    info: dict[str, Any]
    pending_orientation: bool = False  # the EXIF/XMP orientation is still to be applied (as irot/imir)


_PER_IMAGE_KEYS = {
    "exif",
    "xmp",
    "icc_profile",
    "icc_profile_type",
    "nclx_profile",
    "thumbnails",
    "metadata",
    "pixel_aspect_ratio",
    "content_light_level",
    "mastering_display_colour_volume",
    "ambient_viewing_environment",
    "nominal_diffuse_white_luminance",
    "bit_depth",
    "save_nclx_profile",
    *NCLX_KEYS,
}
_FILE_KEYS = {
    "format",
    "quality",
    "enc_params",
    "chroma",
    "subsampling",
    "speed",
    "tile_size",
    "save_all",
    "append_images",
    "primary_index",
    "save_to_12bit",
    "encoder",
}
_SUBSAMPLING = {"4:4:4": "444", "4:2:2": "422", "4:2:0": "420"}
_X265_PRESETS = (
    "placebo",
    "veryslow",
    "slower",
    "slow",
    "medium",
    "fast",
    "faster",
    "veryfast",
    "superfast",
    "ultrafast",
)
_MAX_GRID = 256
_MAX_ITEMS = 1000


# --- encoder set-up ---------------------------------------------------------------------------------


def _compression(fmt: str) -> tuple[str, int]:
    key = str(fmt).upper()
    if key in ("HEIF", "HEIC"):
        return "HEIF", int(lib.heif_compression_HEVC)
    if key == "AVIF":
        return "AVIF", int(lib.heif_compression_AV1)
    raise ValueError(f"unknown format {fmt!r}: use 'HEIF' or 'AVIF'")


def _chroma_value(params: dict[str, Any]) -> str | None:
    subsampling = params.get("subsampling")
    if subsampling is not None and str(subsampling) in _SUBSAMPLING:
        return _SUBSAMPLING[str(subsampling)]
    chroma = params.get("chroma")
    if chroma is None:
        return None
    if str(chroma) not in ("420", "422", "444"):
        raise ValueError(f"invalid chroma {chroma!r}: use 420, 422 or 444")
    return str(chroma)


class _Encoder:
    """An owned ``heif_encoder`` configured from the save parameters."""

    def __init__(self, ctx: Any, fmt: str, params: dict[str, Any]) -> None:
        self.fmt, compression = _compression(fmt)
        if not libheif_info()[self.fmt]:
            raise EncoderError(f"No {self.fmt} encoder found.")
        preferred = params.get("encoder") or options.PREFERRED_ENCODER.get(self.fmt, "")
        out = ffi.new("heif_encoder**")
        if preferred:
            descriptor = encoder_descriptor(preferred, compression)
            if descriptor is None:
                available = ", ".join(encoder_ids(compression))
                raise ValueError(f"unknown {self.fmt} encoder {preferred!r}; available: {available}")
            check(lib.heif_context_get_encoder(ctx, descriptor, out))
        else:
            check(lib.heif_context_get_encoder_for_format(ctx, compression, out))
        if out[0] == ffi.NULL:
            raise EncoderError(f"No {self.fmt} encoder found.")
        self.ptr = owned(out[0], lib.heif_encoder_release)
        quality = params.get("quality", options.QUALITY)
        self.lossless = quality == -1
        if quality is not None:
            if isinstance(quality, bool) or not isinstance(quality, int) or not -1 <= quality <= 100:
                raise ValueError(f"invalid quality {quality!r}: use None, -1 (lossless) or 0..100")
            if quality == -1:
                check(lib.heif_encoder_set_lossless(self.ptr, 1))
            else:
                check(lib.heif_encoder_set_lossy_quality(self.ptr, quality))
        self.chroma: str | None = None  # what the encoder is set to (None: its default, 4:2:0)
        speed = params.get("speed")
        if speed is not None:
            self._set_speed(speed)
        for key, value in dict(params.get("enc_params") or {}).items():
            self.set(str(key), value)

    def use_chroma(self, chroma: str | None) -> None:
        """Switch chroma subsampling before encoding an image (None: the encoder's default 4:2:0)."""
        value = chroma or "420"
        if value != (self.chroma or "420"):
            self.set("chroma", value)
        self.chroma = value

    def set(self, key: str, value: Any) -> None:
        check(lib.heif_encoder_set_parameter(self.ptr, key.encode(), str(value).encode()), f"encoder parameter {key!r}")

    def _set_speed(self, speed: Any) -> None:
        if isinstance(speed, bool) or not isinstance(speed, int) or not 0 <= speed <= 10:
            raise ValueError(f"invalid speed {speed!r}: use 0 (slowest, smallest) .. 10 (fastest)")
        if self.fmt == "HEIF":
            self.set("preset", _X265_PRESETS[round(speed * (len(_X265_PRESETS) - 1) / 10)])
        else:
            self.set("speed", round(speed * 9 / 10))


# --- one image ---------------------------------------------------------------------------------------


def _output_bits(mode: str, info: dict[str, Any], save_to_12bit: bool) -> int:
    """Bit depth to write: ``info["bit_depth"]`` (the file's, for decoded images), else the mode's.

    16 means "high bit depth": 12 with ``save_to_12bit``/``options.SAVE_HDR_TO_12_BIT``, else 10.
    """
    requested = info.get("bit_depth")
    bits = MODES[mode].bits if requested is None else int(requested)
    if bits == 16:
        bits = 12 if save_to_12bit else 10
    if bits not in (8, 10, 12):
        raise ValueError(f"invalid bit_depth {requested}: use 8, 10, 12 (or 16 for 10/12 per options)")
    return bits


def _pixels(frame: Frame) -> tuple[Any, int]:
    """The frame's buffer and stride, checked to hold every row (no read beyond it, whatever the stride)."""
    width, height = frame.size
    if width <= 0 or height <= 0:
        raise ValueError("Empty images are not supported.")
    if width > 2**31 - 1 or height > 2**31 - 1:
        raise ValueError(f"image size {width}x{height} is too large")
    mode = MODES.get(frame.mode)
    if mode is None:
        raise ValueError(f"unsupported mode {frame.mode!r}")
    row = width * mode.pixel_bytes
    stride = int(frame.stride or row)
    if stride < row:
        raise ValueError(f"image plane does not contain enough data: stride {stride} is smaller than a row of {row} bytes")
    try:
        buf = ffi.from_buffer(frame.data)
    except TypeError as exc:
        raise TypeError(f"image data must support the buffer protocol, not {type(frame.data).__name__}") from exc
    # Python ints: no overflow whatever the stride and size (CVE-2026-28231 in pillow_heif).
    if stride * (height - 1) + row > len(buf):
        raise ValueError("image plane does not contain enough data")
    return buf, stride


def _new_heif_image(width: int, height: int, mode: Mode, bits: int) -> Any:
    if mode.color:
        if bits > 8:
            chroma = lib.heif_chroma_interleaved_RRGGBBAA_LE if mode.alpha else lib.heif_chroma_interleaved_RRGGBB_LE
        else:
            chroma = lib.heif_chroma_interleaved_RGBA if mode.alpha else lib.heif_chroma_interleaved_RGB
        colorspace = lib.heif_colorspace_RGB
    else:
        chroma, colorspace = lib.heif_chroma_monochrome, lib.heif_colorspace_monochrome
    out = ffi.new("heif_image**")
    check(lib.heif_image_create(width, height, colorspace, chroma, out))
    img = owned(out[0], lib.heif_image_release)
    for channel, _, _ in _planes(mode):
        check(lib.heif_image_add_plane(img, channel, width, height, bits))
    return img


def _planes(mode: Mode) -> list[tuple[int, int, int]]:
    """(libheif channel, first source channel, channel count) for each plane of a new image."""
    if mode.color:
        return [(int(lib.heif_channel_interleaved), 0, mode.channels)]
    planes = [(int(lib.heif_channel_Y), 0, 1)]
    if mode.alpha:
        planes.append((int(lib.heif_channel_Alpha), 1, 1))
    return planes


def _fill(img: Any, mode: Mode, bits: int, src: Any, src_stride: int, x0: int, y0: int, w: int, h: int) -> None:
    """Copy the region (x0, y0, w, h) of the source into ``img`` (top-left), padding to its full size."""
    channel0 = _planes(mode)[0][0]
    full_w, full_h = lib.heif_image_get_width(img, channel0), lib.heif_image_get_height(img, channel0)
    offset = y0 * src_stride + x0 * mode.pixel_bytes
    for channel, first, count in _planes(mode):
        stride = ffi.new("size_t*")
        dst = lib.heif_image_get_plane2(img, channel, stride)
        if dst == ffi.NULL:
            raise EncoderError("libheif image has no plane to fill")
        rc = lib.hk_fill_plane(
            src + offset, src_stride, mode.channels, first, mode.bits,
            dst, stride[0], count, bits, w, h, 1 if mode.bgr else 0,
        )  # fmt: skip
        if rc != 0:
            raise EncoderError("invalid plane layout")
        if w < full_w or h < full_h:
            lib.hk_pad_plane(dst, stride[0], w, h, full_w, full_h, count * (2 if bits > 8 else 1))


def _encoding_options(info: dict[str, Any], orientation: int) -> Any:
    """Owned ``heif_encoding_options``: orientation as irot/imir, and the NCLX profile to write (if any)."""
    save_nclx = info.get("save_nclx_profile")
    if save_nclx is None:
        save_nclx = options.SAVE_NCLX_PROFILE
    explicit = {k: info[k] for k in NCLX_KEYS if info.get(k) is not None}
    # Explicit values override the image's own profile (new images: sRGB), so the lossless recipe
    # (matrix_coefficients=0) keeps a P3 or PQ image's primaries and transfer.
    profile = nclx_profile({**(info.get("nclx_profile") or SRGB), **explicit}) if explicit or save_nclx else None
    opts = owned(lib.heif_encoding_options_alloc(), lib.heif_encoding_options_free, profile)
    opts.image_orientation = orientation
    if profile is None:
        opts.macOS_compatibility_workaround_no_nclx_profile = 1
    else:
        opts.output_nclx_profile = profile
    return opts


def _add_metadata(ctx: Any, handle: Any, info: dict[str, Any]) -> None:
    exif, xmp = info.get("exif"), info.get("xmp")
    if exif:
        check(lib.heif_context_add_exif_metadata(ctx, handle, exif, len(exif)), "EXIF")
    if xmp:
        check(lib.heif_context_add_XMP_metadata(ctx, handle, xmp, len(xmp)), "XMP")
    for block in info.get("metadata") or []:
        if not block:
            continue
        data = bytes(block["data"])
        content_type = block.get("content_type") or ""
        check(
            lib.heif_context_add_generic_metadata(
                ctx,
                handle,
                data,
                len(data),
                str(block["type"]).encode("latin-1"),  # as read: four bytes, whatever they hold
                content_type.encode() if content_type else ffi.NULL,
            ),
            "metadata",
        )


def _thumbnail_boxes(info: dict[str, Any], size: tuple[int, int]) -> list[int]:
    boxes = info.get("thumbnails") or []
    return [int(b) for b in boxes if isinstance(b, int) and 3 < b < max(size)]


def _effective_tile(frame: Frame, info: dict[str, Any], tile_size: Any, fmt: str, chroma: str | None) -> int:
    if tile_size is None:
        tiling = info.get("tiling") or {}
        tile_size = tiling.get("tile_width") or options.GRID_TILE_SIZE
    tile = int(tile_size or 0)
    if tile <= 0:
        return 0
    width, height = frame.size
    if width <= tile and height <= tile:
        return 0
    mode = MODES[frame.mode]
    if mode.alpha:  # libheif's grid API has no alpha tiles
        return 0
    if fmt == "AVIF":
        if tile < 64:
            return 0
        subsampled = mode.color and chroma != "444"
        if subsampled and (width % 2 or height % 2 or tile % 2):
            return 0
    return tile


@dataclass
class _Job:
    """One image of the plan: its frame, the info to write, orientation (irot/imir), chroma and grid tile."""

    frame: Frame
    info: dict[str, Any]
    orientation: int
    chroma: str | None  # "420"/"422"/"444", None for the encoder's default
    tile: int = 0


def _job_chroma(params: dict[str, Any], info: dict[str, Any]) -> str | None:
    """Chroma for one image: the parameter, else the subsampling the image was read with."""
    chroma = _chroma_value(params)
    if chroma is None and info.get("chroma") in (420, 422, 444):
        chroma = str(info["chroma"])
    return chroma


def _encode_one(ctx: Any, encoder: _Encoder, job: _Job, save_to_12bit: bool) -> Any:
    frame, info, tile = job.frame, job.info, job.tile
    encoder.use_chroma(job.chroma)
    buf, stride = _pixels(frame)
    mode = MODES[frame.mode]
    bits = _output_bits(frame.mode, info, save_to_12bit)
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
                w, h = min(tile, width - x0), min(tile, height - y0)
                tile_img = _new_heif_image(tile, tile, mode, bits)
                _fill(tile_img, mode, bits, buf, stride, x0, y0, w, h)
                apply_to_image(tile_img, info)
                check(lib.heif_context_add_image_tile(ctx, handle, tx, ty, tile_img, encoder.ptr))
        if info.get("pixel_aspect_ratio") is not None:
            lib.heif_image_handle_set_pixel_aspect_ratio(handle, *pixel_aspect_ratio(info["pixel_aspect_ratio"]))
    else:
        full = _new_heif_image(width, height, mode, bits)
        _fill(full, mode, bits, buf, stride, 0, 0, width, height)
        if mode.premultiplied:
            lib.heif_image_set_premultiplied_alpha(full, 1)
        apply_to_image(full, info)
        check(lib.heif_context_encode_image(ctx, full, encoder.ptr, opts, out))
        handle = owned(out[0], lib.heif_image_handle_release)
    apply_to_handle(handle, info)
    _add_metadata(ctx, handle, info)
    boxes = _thumbnail_boxes(info, frame.size)
    if boxes:
        if full is None:
            full = _new_heif_image(width, height, mode, bits)
            _fill(full, mode, bits, buf, stride, 0, 0, width, height)
            apply_to_image(full, info)
        for box in boxes:
            thumb = ffi.new("heif_image_handle**")
            check(lib.heif_context_encode_thumbnail(ctx, full, handle, encoder.ptr, opts, box, thumb), "thumbnail")
            if thumb[0] != ffi.NULL:
                lib.heif_image_handle_release(thumb[0])
    return handle


# --- the plan ---------------------------------------------------------------------------------------


def _prepare_info(frame: Frame, overrides: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The info to write for ``frame`` (``overrides`` applied, EXIF/XMP as bytes) and its irot/imir orientation."""
    info = dict(frame.info)
    info.update(overrides)
    exif, xmp = info.get("exif"), info.get("xmp")
    if exif is not None and not isinstance(exif, bytes):
        info["exif"] = bytes(exif) if isinstance(exif, (bytearray, memoryview)) else exif.tobytes()  # Image.Exif
    if isinstance(xmp, str):
        info["xmp"] = xmp.encode("utf-8")
    elif isinstance(xmp, (bytearray, memoryview)):
        info["xmp"] = bytes(xmp)
    # Decoded pixels are upright whatever EXIF/XMP is passed with them (e.g. ``exif=f.info["exif"]``, which
    # open_heif leaves untouched): writing that orientation as irot/imir would rotate them a second time.
    if frame.pending_orientation:
        orientation = get_orientation(info) or 1
    else:
        orientation = 1
        if get_orientation(info):
            set_orientation(info)  # pixels are upright already: don't let EXIF rotate them again
    return info, orientation


def primary_index(frames: list[Frame], requested: Any) -> int:
    """The index of the primary image: ``requested`` (-1: the last), else the last frame marked primary."""
    if requested is not None:
        index = int(requested)
        return len(frames) - 1 if index == -1 or index >= len(frames) else max(index, 0)
    primary = 0
    for i, frame in enumerate(frames):
        if frame.info.get("primary"):
            primary = i
    return primary


def _count_items(jobs: list[_Job]) -> int:
    count = 0
    for job in jobs:
        width, height = job.frame.size
        count += 1 + (-(-width // job.tile)) * (-(-height // job.tile)) if job.tile else 1
        count += 2 * len(_thumbnail_boxes(job.info, job.frame.size))
        count += 1 if job.info.get("exif") else 0
        count += 1 if job.info.get("xmp") else 0
        count += len([m for m in job.info.get("metadata") or [] if m])
        if MODES[job.frame.mode].alpha:
            count += 1
    return count


def _plan(frames: list[Frame], params: dict[str, Any], per_frame: dict[int, dict[str, Any]]) -> list[_Job]:
    """Every image's job, checked before any encoding starts."""
    fmt = _compression(params.get("format") or "HEIF")[0]
    jobs = []
    for i, frame in enumerate(frames):
        info, orientation = _prepare_info(frame, per_frame.get(i, {}))
        job = _Job(frame, info, orientation, _job_chroma(params, info))
        job.tile = _effective_tile(frame, info, params.get("tile_size"), fmt, job.chroma)
        if job.tile:
            width, height = frame.size
            if -(-width // job.tile) > _MAX_GRID or -(-height // job.tile) > _MAX_GRID:
                raise ValueError("Grid image cannot have more than 256 rows or columns, increase `tile_size`.")
        jobs.append(job)
    if _count_items(jobs) > _MAX_ITEMS:
        raise ValueError(
            f"The file would have more than {_MAX_ITEMS} items (tiles, thumbnails, metadata), which readers refuse;"
            " increase `tile_size` or write fewer images."
        )
    return jobs


def encode_frames(frames: list[Frame], params: dict[str, Any], per_frame: dict[int, dict[str, Any]]) -> bytes:
    """Encode ``frames`` into the bytes of one HEIF/AVIF file.

    ``params`` are the file's save parameters; ``per_frame`` maps a frame index to its ``info`` overrides.
    """
    if not frames:
        raise ValueError("Cannot write file with no images as HEIF.")
    save_to_12bit = bool(params.get("save_to_12bit", options.SAVE_HDR_TO_12_BIT))
    primary = primary_index(frames, params.get("primary_index"))
    jobs = _plan(frames, params, per_frame)
    ctx = Context()
    encoder = _Encoder(ctx.ptr, params.get("format") or "HEIF", params)
    for i, job in enumerate(jobs):
        handle = _encode_one(ctx.ptr, encoder, job, save_to_12bit)
        if i == primary:
            check(lib.heif_context_set_primary_image(ctx.ptr, handle))
    out_data, out_size = ffi.new("uint8_t**"), ffi.new("size_t*")
    check(lib.hk_write_to_memory(ctx.ptr, out_data, out_size), "writing the file")
    if out_data[0] == ffi.NULL:
        raise EncoderError("libheif wrote an empty file")
    try:
        return bytes(ffi.buffer(out_data[0], out_size[0]))
    finally:
        lib.hk_free(out_data[0])


# --- output -----------------------------------------------------------------------------------------


def _create_temp(directory: str, name: str) -> tuple[str, int]:
    """A new file next to the target, created with mode 0o666 less the umask (as ``open()`` would)."""
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.heifkit-tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {directory}")


def write_output(fp: Any, data: bytes) -> None:
    """Write ``data`` to a path (atomically: temporary file + rename) or to a binary stream."""
    if isinstance(fp, (str, os.PathLike)):
        path = os.path.realpath(os.fspath(fp))  # through symlinks, like open(): replace the target, not the link
        directory = os.path.dirname(path)
        tmp, fd = _create_temp(directory, os.path.basename(path))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            if os.path.exists(path):
                os.chmod(tmp, os.stat(path).st_mode & 0o7777)  # keep the replaced file's permissions
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    elif hasattr(fp, "write"):
        fp.write(data)
    else:
        raise TypeError("`fp` must be a path to file or an object with `write` method.")


@dataclass(frozen=True)
class SaveParams:
    """Save parameters split into the file's (format, quality, ...) and the per-image ``info`` overrides."""

    file: dict[str, Any]
    image: dict[str, Any]

    @property
    def save_all(self) -> bool:
        return bool(self.file.get("save_all", True))


def save_params(kwargs: dict[str, Any], strict: bool = True) -> SaveParams:
    """Split and check ``save`` keyword arguments before any pixel is touched.

    Raises:
        TypeError: an unknown parameter (only when ``strict``: Pillow passes its own), or
            ``image_orientation`` (derived from EXIF/XMP).
    """
    if "image_orientation" in kwargs:
        raise TypeError("image_orientation is derived from EXIF/XMP and cannot be passed to save()")
    file_params = {k: v for k, v in kwargs.items() if k in _FILE_KEYS and k != "append_images"}
    image_params = {k: v for k, v in kwargs.items() if k in _PER_IMAGE_KEYS}
    if strict:
        unknown = set(kwargs) - _FILE_KEYS - _PER_IMAGE_KEYS
        if unknown:
            raise TypeError(f"unexpected save parameter(s): {', '.join(sorted(unknown))}")
    return SaveParams(file_params, image_params)


def check_target(fp: Any) -> None:
    """Raise ``TypeError`` unless ``fp`` is a path or a writable stream."""
    if not isinstance(fp, (str, os.PathLike)) and not hasattr(fp, "write"):
        raise TypeError("`fp` must be a path to file or an object with `write` method.")


def save(frames: list[Frame], fp: Any, params: SaveParams) -> None:
    """``HeifFile.save``: encode ``frames`` (the per-image parameters apply to the primary one), write to ``fp``."""
    if not frames:
        raise ValueError("Cannot write file with no images as HEIF.")
    primary = primary_index(frames, params.file.get("primary_index"))
    write_output(fp, encode_frames(frames, params.file, {primary: params.image}))


def save_pillow(frames: list[Frame], fp: Any, fmt: str, params: SaveParams) -> None:
    """The Pillow save hook's writer: the parameters (Pillow's ``encoderinfo``) apply to every frame."""
    file_params = {**params.file, "format": fmt}
    if file_params.get("primary_index") is None and not any(f.info.get("primary") for f in frames):
        file_params["primary_index"] = 0
    fp.write(encode_frames(frames, file_params, {i: params.image for i in range(len(frames))}))
