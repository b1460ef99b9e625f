"""Timed image sequences (animated HEIF and AVIF): a file's visual track, read frame by frame.

:func:`open_sequence` parses the file (``_read``) and the track's sample table (``_sample_tables``): the
frame count, each frame's duration and timestamp and the frames' mode are known before anything is decoded.
Frames decode lazily and in order: libheif decodes a track one sample after the other (later samples are
predicted from earlier ones), so the sequence keeps one decoding position (``_track.Cursor``: a libheif
context and its track) and moves it forward; going back starts again from the first frame in a fresh context.
Nothing keeps decoded frames but the frames themselves, so iterating a long track holds one or two frames in
memory, besides the codec's own reference pictures.

Edit lists: frames are the track's samples, each once, in order (libheif's ``ignore_sequence_editlist``);
how often the file asks for them to be played is ``info["loop"]`` (0: forever).

:func:`save_sequence` turns Pillow images, images and frames into the writer's frames one at a time and hands
them to ``_write_sequence``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

from ._container.sample_tables import read_tables
from ._decode.pixels import Pixels, decoding_options, image_pixels, layout_of
from ._info.metadata import get_orientation
from ._info.modes import decoded_mode, mode_of
from ._info.properties import NCLX_KEYS
from ._native.libheif import Context, check, copy_plane, ffi, lib, owned
from ._read import entries as _read
from ._read.source import FileLike, file_data, open_context
from ._read.tracks import Cursor, aux_tracks, decoder_for, frame_limit, reopen
from ._write.params import format_for
from ._write.sequence import durations_of, encode_sequence, loop_of
from ._write.settings import encode_settings
from ._write.still import Frame
from ._write.target import check_target, write_output
from .errors import DecoderError, HeifError, InvalidInputError, SecurityLimitError
from .image import BaseImage, HeifImage, image_from_pillow, pillow_target

__all__ = [
    "HeifFrame",
    "HeifSequence",
    "open_sequence",
    "has_sequence",
    "sequence_of",
    "main_sequence",
    "first_frame_image",
    "save_sequence",
]

_VISUAL = (int.from_bytes(b"pict", "big"), int.from_bytes(b"vide", "big"))
_INFINITE = int(lib.heif_sequence_track_number_of_repetitions_infinite)
_STILL_KEYS = ("exif", "xmp", "icc_profile", "icc_profile_type", "nclx_profile")


def has_sequence(ctx: Context) -> bool:
    """True when libheif finds an image sequence (a visual track) in the parsed file."""
    return bool(lib.heif_context_has_sequence(ctx.ptr))


class HeifFrame(BaseImage):
    """One frame of a :class:`HeifSequence`, decoded on first access to ``data``, ``stride``,
    ``__array_interface__`` or :meth:`to_pillow`.

    Attributes:
        size: (width, height).
        mode: how ``data`` is laid out (the rules of :func:`~heifkit.open_heif`): ``RGB``, ``RGBA``, ``L``,
            ``RGB;16``...
        index: the frame's position in its sequence.
        info: the sequence's ``info`` plus ``duration`` (milliseconds this frame shows) and ``timestamp``
            (milliseconds from the start of the sequence to this frame), rounded as Pillow rounds them.
    """

    def __init__(self, size: tuple[int, int], mode: str, index: int, info: dict[str, Any], decoder: Any) -> None:
        super().__init__(size, mode, decoder=decoder)
        self.index = index
        self.info = info

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.index}: {self.size[0]}x{self.size[1]} {self.mode}>"

    def to_pillow(self) -> Any:
        """A Pillow image of these pixels, with a copy of ``info``."""
        img = self._pillow()
        img.info = self.info.copy()
        return img

    def __getstate__(self) -> dict[str, Any]:
        return {"pixels": self._pixel_state(), "index": self.index, "info": self.info}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._restore_pixels(*state["pixels"])
        self.index = state["index"]
        self.info = state["info"]


class HeifSequence:
    """The frames of an image sequence (an animated HEIF or AVIF file's visual track).

    ``len()``, iteration, indexing (negative too) and slices give :class:`HeifFrame` objects. Frames decode
    lazily and in order; going back to an earlier frame decodes again from the first. Each frame and its
    pixels live as long as the caller keeps them: iterating holds one frame at a time.

    Attributes:
        mimetype: libheif's MIME type of the file (``image/avif-sequence``, ``image/heic-sequence``, ...).
        track_id: the track's id.
        size: (width, height) of the frames (the track's resolution).
        mode: the mode frames decode to (the rules of :func:`~heifkit.open_heif`).
        timescale: the track's clock ticks per second (durations in the file are in ticks).
        info: ``loop`` (0: play forever, else the number of plays), ``bit_depth``, ``chroma``, the colour
            profile (``nclx_profile`` or ``icc_profile``) the track's sample entry or the file's still image
            gives, the still image's ``exif``/``xmp``, and ``aux_tracks``: auxiliary tracks other than alpha
            (URN -> track ids, e.g. depth), read with :meth:`get_aux_sequence`.
    """

    def __init__(
        self, ctx: Context, mimetype: str, flags: _read.OpenFlags, track_id: int = 0, aux: bool = False,
        still: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        self.mimetype = mimetype
        self._source = file_data(ctx.source)
        self._flags = flags
        raw = lib.heif_context_get_track(ctx.ptr, track_id)
        if raw == ffi.NULL:
            raise InvalidInputError("the file has no image sequence" if not track_id else f"no track {track_id}")
        track = owned(raw, lib.heif_track_release, ctx)
        self.track_id = int(lib.heif_track_get_id(track))
        if not aux and lib.heif_track_get_track_handler_type(track) not in _VISUAL:
            raise InvalidInputError(f"track {self.track_id} is not an image sequence")
        width, height = ffi.new("uint16_t*"), ffi.new("uint16_t*")
        check(lib.heif_track_get_image_resolution(track, width, height))
        self.size = (int(width[0]), int(height[0]))
        self.timescale = int(lib.heif_track_get_timescale(track))
        tables = read_tables(self._source)
        table = tables.get(self.track_id)
        if table is None:
            raise InvalidInputError(f"track {self.track_id} has no sample table heifkit can read")
        if table.samples <= 0:
            raise InvalidInputError(f"track {self.track_id} has no samples")
        limit = frame_limit(flags)
        if limit and table.samples > limit:
            raise SecurityLimitError(
                f"Memory allocation error: Security limit exceeded: track {self.track_id} has {table.samples} frames, "
                f"more than the maximum number of frames of a sequence, {limit}",
                int(lib.heif_error_Memory_allocation_error),
                int(lib.heif_suberror_Security_limit_exceeded),
            )
        if self.timescale <= 0:
            raise InvalidInputError(f"track {self.track_id} has no timescale")
        self._table = table
        entry = table.entry
        bits = (entry.bits if entry else None) or int((still or {}).get("bit_depth") or 8)
        alpha = not aux and bool(lib.heif_track_has_alpha_channel(track))
        monochrome = bool(entry and entry.monochrome)
        self.mode = decoded_mode(
            bits, monochrome, alpha, False, flags.convert_hdr_to_8bit, flags.hdr_to_16bit, flags.bgr_mode and not aux
        )
        self._layout = layout_of(self.mode, bits)
        self._decoder_id, codec_threads = decoder_for(flags, mimetype, entry.kind if entry else "")
        self._codec_threads = codec_threads
        self.info = self._info(track, bits, still or {})
        self.info["aux_tracks"], alpha_track = aux_tracks(ctx, self.track_id)
        alpha_table = tables.get(alpha_track) if alpha_track is not None and self.has_alpha else None
        nclx = alpha_table.entry.color.get("nclx_profile") if alpha_table and alpha_table.entry else None
        self._alpha_limited = bool(nclx and not nclx["full_range_flag"])  # expanded, as libavif reads it
        self._lock = threading.Lock()
        self._cursor: Cursor | None = None

    def _info(self, track: Any, bits: int, still: dict[str, Any]) -> dict[str, Any]:
        repetitions = int(lib.heif_track_get_number_of_repetitions(track))
        info: dict[str, Any] = {"loop": 0 if repetitions == _INFINITE else max(repetitions, 1), "bit_depth": bits}
        entry = self._table.entry
        if entry and entry.chroma:
            info["chroma"] = entry.chroma
        info.update({k: still[k] for k in _STILL_KEYS if still.get(k) is not None})
        if entry and entry.color:
            for key in ("icc_profile", "icc_profile_type", "nclx_profile"):
                info.pop(key, None)
            info.update(entry.color)
        return info

    @property
    def has_alpha(self) -> bool:
        """True when the frames have alpha (an alpha track merged into them)."""
        return mode_of(self.mode).alpha

    # --- frames ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._table.samples

    @property
    def duration(self) -> int:
        """Milliseconds from the first frame to the end of the last (rounded as Pillow rounds timestamps)."""
        return self._ms(self._table.start(self._table.samples))

    def _ms(self, ticks: int) -> int:
        return round(1000 * ticks / self.timescale)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not isinstance(index, int):
            raise TypeError(f"indices must be integers or slices, not {type(index).__name__}")
        count = len(self)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError(f"invalid frame index: {index}")
        info = dict(self.info)
        info["duration"] = self._ms(self._table.duration(index))
        info["timestamp"] = self._ms(self._table.start(index))
        return HeifFrame(self.size, self.mode, index, info, lambda: self._decode(index))

    def __iter__(self) -> Iterator[HeifFrame]:
        for index in range(len(self)):
            yield self[index]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self)} frames {self.size[0]}x{self.size[1]} {self.mode}>"

    def _decode(self, index: int) -> Pixels:
        """The pixels of frame ``index``: the decoding position moves forward to it, or starts again."""
        opts = decoding_options(self._layout.to_8bit, self._decoder_id, self._codec_threads)
        opts.ignore_sequence_editlist = 1  # each sample once: repetition is info["loop"]
        # Bilinear chroma upsampling, as libavif (Pillow's AVIF plugin) shows these files, not libheif's default
        # nearest neighbour (up to 28 levels apart on pillow_star.avifs' edges).
        opts.color_conversion_options.preferred_chroma_upsampling_algorithm = lib.heif_chroma_upsampling_bilinear
        opts.color_conversion_options.only_use_preferred_chroma_algorithm = 1
        with self._lock:
            try:
                cursor = self._cursor
                if cursor is None or cursor.next > index:
                    self._cursor = None
                    cursor = Cursor(self._source, self._flags, self.track_id)
                while cursor.next < index:
                    cursor.decode_next(self._layout, opts, keep=False)
                image = cursor.decode_next(self._layout, opts, keep=True)
                self._cursor = cursor
            except HeifError as exc:
                self._cursor = None  # libheif's position in the track is lost: start again next time
                raise type(exc)(f"frame {index}: {exc.message}", exc.code, exc.subcode) from exc
        return self._pixels(image)

    def _pixels(self, image: Any) -> Pixels:
        """A decoded frame's pixels, cut to the track's size (libheif 1.23 hands out x265's padded pictures)."""
        size = (lib.heif_image_get_primary_width(image), lib.heif_image_get_primary_height(image))
        if size[0] < self.size[0] or size[1] < self.size[1]:
            raise DecoderError(f"decoded frame is {size[0]}x{size[1]}, smaller than the track's {self.size}")
        layout, tight = self._layout, self._flags.remove_stride
        pixels = image_pixels(image, layout, tight and size == self.size)
        if size != self.size:
            width, height = self.size
            stride = width * layout.channels * layout.bytes_per_sample if tight else pixels.stride
            dst = bytearray(stride * height)
            copy_plane(
                ffi.from_buffer(pixels.buffer), pixels.stride, ffi.from_buffer(dst, require_writable=True), stride,
                width, height, layout.channels, layout.bytes_per_sample,
            )  # fmt: skip
            pixels = Pixels(width, height, stride, dst)
        if self._alpha_limited:
            lib.hk_expand_limited_range(
                ffi.from_buffer(pixels.buffer, require_writable=True), pixels.stride, pixels.width, pixels.height,
                layout.channels, layout.channels - 1, layout.bytes_per_sample, mode_of(self.mode).bits,
            )  # fmt: skip
        return pixels

    def save(self, fp: Any, **kwargs: Any) -> None:
        """Save the frames as a new sequence (:func:`save_sequence`'s parameters; durations and ``loop`` are
        this sequence's unless given). Frames are decoded and encoded one at a time."""
        save_sequence(self, fp, **kwargs)

    def get_aux_sequence(self, track_id: int) -> HeifSequence:
        """The auxiliary track ``track_id`` (from ``info["aux_tracks"]``, e.g. a depth map per frame) as a
        sequence of grey frames.

        Raises:
            InvalidInputError: there is no such auxiliary track of this sequence.
        """
        if not any(track_id in ids for ids in self.info["aux_tracks"].values()):
            raise InvalidInputError(f"track {track_id} is not an auxiliary track of track {self.track_id}")
        return HeifSequence(reopen(self._source, self._flags), self.mimetype, self._flags, track_id, aux=True)


def sequence_of(
    ctx: Context, mimetype: str, flags: _read.OpenFlags, still: dict[str, Any] | None = None
) -> HeifSequence:
    """The sequence of a parsed file; ``still``: the ``info`` of its primary still image (read here if None).

    Raises:
        InvalidInputError: the file holds no image sequence.
    """
    if not has_sequence(ctx):
        raise InvalidInputError("the file holds no image sequence; open its images with open_heif()")
    if still is None:
        still = {}
        if lib.heif_context_get_number_of_top_level_images(ctx.ptr) > 0:
            try:
                stills = _read.read_context(ctx, mimetype, flags)[2]
            except HeifError:
                stills = []  # the still images are broken: the track may not be
            for entry in stills:
                if entry.info.get("primary") or not still:
                    still = entry.info
    return HeifSequence(ctx, mimetype, flags, still=still)


def main_sequence(ctx: Context, mimetype: str, flags: _read.OpenFlags, still: dict[str, Any]) -> HeifSequence | None:
    """The sequence Pillow shows of a parsed file: that of an AVIF sequence (``avis``) or of a file without still
    images; None for other files (their still images are shown) and for a track libheif cannot read."""
    if not has_sequence(ctx):
        return None
    if lib.heif_context_get_number_of_top_level_images(ctx.ptr) > 0 and _major_brand(file_data(ctx.source)) != b"avis":
        return None
    try:
        return sequence_of(ctx, mimetype, flags, still)
    except HeifError:
        return None


def _major_brand(source: Any) -> bytes:
    if isinstance(source, str):
        with open(source, "rb") as f:
            return f.read(12)[8:12]
    return bytes(memoryview(source).cast("B")[8:12])


def open_sequence(
    fp: FileLike, convert_hdr_to_8bit: bool = True, bgr_mode: bool = False, **kwargs: Any
) -> HeifSequence:
    """Open the image sequence (the first visual track) of an animated HEIF or AVIF file.

    Takes :func:`~heifkit.open_heif`'s arguments (``limits`` too: every context the frames decode in reads
    with them). Frames decode lazily, in order.

    Raises:
        InvalidInputError: the file holds no image sequence, or its track has no frames.
        SecurityLimitError: the track has more frames than ``max_sequence_frames`` (or another limit is met).
        HeifError: the subclass for what libheif reports (see the "Errors" page).
    """
    flags = _read.open_flags(convert_hdr_to_8bit, bgr_mode, kwargs)
    ctx, mimetype = open_context(fp, flags.limits, False)
    return sequence_of(ctx, mimetype, flags)


def first_frame_image(ctx: Context, mimetype: str, flags: _read.OpenFlags) -> HeifImage:
    """The first frame of the sequence of a file without still images, as a lazily decoded ``HeifImage``: what
    :func:`~heifkit.open_heif` shows of such a file."""
    sequence = sequence_of(ctx, mimetype, flags, still={})
    frame = sequence[0]
    info = {**frame.info, "primary": True, "exif": None, "metadata": [], "thumbnails": [], "depth_images": []}
    return HeifImage(frame.size, frame.mode, info, decoder=frame._decoder)


# --- saving ------------------------------------------------------------------------------------------

SEQUENCE_PARAMS = frozenset(
    {"quality", "chroma", "subsampling", "speed", "enc_params", "encoder", "save_to_12bit", "bit_depth"}
    | {"save_nclx_profile", "nclx_profile", *NCLX_KEYS}
)
"""The save parameters that apply to a sequence (the others are for still images: EXIF, thumbnails, grids...)."""


def save_sequence(
    frames: Any, fp: Any, durations: Any = None, loop: int | None = None, format: str | None = None, **params: Any
) -> None:
    """Save frames as a timed image sequence (an animated HEIF or AVIF file) to a path or binary stream.

    Args:
        frames: an iterable of Pillow images (every frame of an animated one), :class:`~heifkit.HeifImage`,
            :class:`HeifFrame`, or a :class:`HeifSequence` or :class:`~heifkit.HeifFile` (all its images).
            Frames are taken one at a time: a sequence being transcoded is decoded one frame at a time.
        fp: a path or a writable binary stream. A path is replaced only once the new file is complete.
        durations: milliseconds each frame shows, an int for all or a list with one per frame; by default each
            frame's ``info["duration"]`` (frames of a sequence, GIF, WebP or APNG carry one).
        loop: the number of plays, 0 forever; by default that of a :class:`HeifSequence` given, else 0 (as
            Pillow's AVIF plugin writes).
        format: ``"HEIF"`` (HEVC) or ``"AVIF"`` (AV1); by default from the path's extension (``.avif``,
            ``.avifs``: AVIF), else HEIF.
        **params: ``quality`` (-1: lossless), ``chroma``/``subsampling``, ``speed``, ``enc_params``,
            ``encoder``, ``bit_depth``, ``save_to_12bit`` and the NCLX parameters, as for still images.

    The first frame fixes the size and mode of the track: later Pillow frames are converted to its mode, other
    frames must have it. Frames are written upright (an EXIF orientation is applied to the pixels: a track has
    no rotation of its own).

    Raises:
        TypeError: an unknown parameter, or one that applies to still images only.
        ValueError: a wrong value, no frames, frames of different sizes or modes, or a frame without a duration.
    """
    if not isinstance(fp, (str, os.PathLike)) and not hasattr(fp, "write"):
        raise TypeError("`fp` must be a path to file or an object with `write` method.")
    unknown = set(params) - SEQUENCE_PARAMS
    if unknown:
        raise TypeError(f"save parameter(s) that do not apply to a sequence: {', '.join(sorted(unknown))}")
    settings = encode_settings({**params, "format": format}, format_for(fp))
    if loop is None:
        loop = int(frames.info["loop"]) if isinstance(frames, HeifSequence) else 0
    loop = loop_of(loop)
    if isinstance(durations, (list, tuple)):
        durations = durations_of(durations, len(durations))  # each checked now; their count as frames come
    elif durations is not None:
        durations = durations_of(durations, 1)[0]
    pairs = _timed_frames(frames, durations)
    check_target(fp)
    write_output(fp, encode_sequence(pairs, loop, settings))


def _timed_frames(items: Any, durations: Any) -> Iterator[tuple[Frame, int]]:
    """(frame, milliseconds) pairs made one at a time from ``save_sequence``'s frames."""
    listed = isinstance(durations, (list, tuple))
    index = -1
    for index, frame in enumerate(_frames(items)):
        if durations is None:
            value = frame.info.get("duration")
            if value is None:
                raise ValueError(f"frame {index} has no info['duration']: pass durations= to save_sequence")
        elif listed:
            if index >= len(durations):
                raise ValueError(f"{len(durations)} durations for more frames: give one per frame")
            value = durations[index]
        else:
            value = durations
        yield frame, durations_of(value, 1)[0]
    if listed and index + 1 != len(durations):
        raise ValueError(f"{len(durations)} durations for {index + 1} frames: give one per frame")


def _frames(items: Any) -> Iterator[Frame]:
    """The writer's frames of each item, made when it is needed; Pillow frames take the first frame's mode."""
    target = None
    if isinstance(items, HeifSequence) or hasattr(items, "_images"):  # a HeifSequence or HeifFile: its images
        items = iter(items)
    elif hasattr(items, "tobytes") or not hasattr(items, "__iter__"):
        raise TypeError(f"frames must be an iterable of images, not {type(items).__name__}")
    for item in items:
        if isinstance(item, (HeifFrame, HeifImage)):
            image: Any = item
            if getattr(item, "pending_orientation", False) and get_orientation(item.info) not in (None, 1):
                image = image_from_pillow(item.to_pillow())  # upright pixels: a track has no irot/imir
            image.load()
            target = target or image.mode
            yield Frame(image.mode, image.size, image._data, image._stride, image.info)
        elif hasattr(item, "mode") and hasattr(item, "tobytes"):  # a Pillow image: each of its frames
            from PIL import ImageOps, ImageSequence

            for pil in ImageSequence.Iterator(item):
                upright = ImageOps.exif_transpose(pil) if pil.getexif().get(0x0112, 1) != 1 else pil
                if target is not None and target != pillow_target(upright):
                    upright = upright.convert(target.split(";")[0] if target != "I;16" else "I;16")
                image = image_from_pillow(upright)
                image.info["duration"] = pil.info.get("duration")
                target = target or image.mode
                yield Frame(image.mode, image.size, image._data, image._stride, image.info)
        else:
            raise TypeError(f"frames are Pillow images, HeifImage or HeifFrame objects, not {type(item).__name__}")
