"""Writing a timed image sequence: plain frames and their durations -> one visual track -> file bytes.

The mirror of ``heifkit.sequence``, and a sibling of ``still``: it takes the same :class:`~heifkit._write.still.Frame`
objects and never sees the image model, and it reuses the still writer's per-image pieces (output bit depth,
chroma, NCLX profile and its checks, copying pixels into a ``heif_image``). Everything is checked before the
first frame is encoded.

libheif writes the track (``heif_context_add_visual_sequence_track``), one sample per frame, and alpha as an
auxiliary track referring to it (``auxl``), the way ``heif-enc`` and libavif write it. Durations are in
milliseconds, at a timescale of 1000 ticks per second, so they are exact; the number of plays is the edit
list's (``loop``: 0 plays forever).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterable
from typing import Any

from .._info.checks import type_name
from .._info.properties import nclx_profile
from .._native.libheif import Context, check, ffi, lib, owned
from .encoder import Encoder, size_problem
from .frames import (
    Frame,
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
from .params import check_image_info
from .settings import EncodeSettings

__all__ = ["TIMESCALE", "MAX_SIDE", "durations_of", "loop_of", "encode_sequence"]

TIMESCALE = 1000
"""Ticks per second of the tracks heifkit writes: millisecond durations are exact."""

MAX_SIDE = 65535
"""Widest and highest a track's frames can be (libheif stores the resolution in 16 bits)."""

_MAX_TICKS = 2**32 - 1
_PICT = int.from_bytes(b"pict", "big")


def durations_of(durations: Any, count: int) -> list[int]:
    """Per-frame durations in milliseconds from an int (every frame) or a list (one per frame).

    0 is shown for the shortest time a track can hold, one tick (1 ms), as Pillow's AVIF plugin writes it.

    Raises:
        TypeError: not an int or a list/tuple of ints.
        ValueError: a negative or too long duration, or a list whose length is not the number of frames.
    """
    if isinstance(durations, (list, tuple)):
        if len(durations) != count:
            raise ValueError(f"duration has {len(durations)} values for {count} frames: give one per frame")
        values = list(durations)
    else:
        values = [durations] * count
    result = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise TypeError(f"durations must be whole milliseconds (int), not {type_name(value)} {value!r}")
        ms = int(value)
        if not 0 <= ms <= _MAX_TICKS:
            raise ValueError(f"invalid duration {ms}: use 0..{_MAX_TICKS} milliseconds")
        result.append(max(ms, 1))
    return result


def loop_of(loop: Any) -> int:
    """The number of plays (``loop``; 0 = forever, as Pillow's GIF and WebP plugins mean it), checked."""
    if isinstance(loop, bool) or not isinstance(loop, int):
        raise TypeError(f"loop must be an int (0: forever, else the number of plays), not {type_name(loop)}")
    if not 0 <= loop <= _MAX_TICKS - 1:
        raise ValueError(f"invalid loop {loop}: use 0 (forever) or a number of plays up to {_MAX_TICKS - 1}")
    return loop


class _Plan:
    """The track's size, mode, bit depth and chroma, fixed by the first frame; each frame checked against it."""

    def __init__(self, first: Frame, settings: EncodeSettings) -> None:
        self.settings = settings
        if settings.keep_quality:
            raise ValueError("quality='keep' applies to still images read from a file; give a sequence a quality")
        width, height = first.size
        if width <= 0 or height <= 0:
            raise ValueError("Empty images are not supported.")
        if width > MAX_SIDE or height > MAX_SIDE:
            raise ValueError(f"cannot write a {width}x{height} sequence: frames are at most {MAX_SIDE} pixels a side")
        self.codec = settings.codec
        problem = size_problem(width, height, self.codec)
        if problem:
            raise ValueError(f"cannot write a {width}x{height} sequence as {self.codec.fmt}: {problem}")
        self.first = self.job(first, 0)
        self.count = 0

    def job(self, frame: Frame, index: int) -> Job:
        """The checked job of frame ``index``."""
        settings = self.settings
        info = {**frame.info, **settings.image}
        check_image_info(info)
        if info.get("save_nclx_profile") is None:
            info["save_nclx_profile"] = settings.save_nclx_profile
        job = Job(frame, info, 1, job_chroma(settings, info), output_bits(frame.mode, info, settings.save_to_12bit))
        check_colour(job, self.codec)
        if index == 0:
            return job
        first, mode, first_mode = self.first, writer_mode(frame.mode), writer_mode(self.first.frame.mode)
        if frame.size != first.frame.size:
            raise ValueError(
                f"frame {index} is {frame.size[0]}x{frame.size[1]}, frame 0 {first.frame.size[0]}x"
                f"{first.frame.size[1]}: the frames of a sequence share one size"
            )
        if (mode.channels, mode.alpha) != (first_mode.channels, first_mode.alpha):
            raise ValueError(f"frame {index} is {frame.mode}, frame 0 {first.frame.mode}: a sequence has one mode")
        if job.bits != first.bits:
            raise ValueError(f"frame {index} would be written at {job.bits} bits, frame 0 at {first.bits}")
        if job.chroma != first.chroma:
            raise ValueError(
                f"frame {index} was read with chroma {job.chroma}, frame 0 with {first.chroma}: pass chroma="
            )
        return job


def encode_sequence(frames: Iterable[tuple[Frame, int]], loop: int, settings: EncodeSettings) -> bytes:
    """Encode (frame, duration in milliseconds) pairs as the visual track of a new file.

    ``settings`` are the save's (format, quality, chroma, speed, encoder parameters, 12-bit output); their
    ``image`` overrides apply to every frame's ``info`` (colour, ``bit_depth``). ``loop``: the number of plays,
    0 for forever. Frames are taken one at a time (an iterator that decodes them keeps one in memory), each
    checked before it is encoded; the first fixes the size and mode of the track.
    """
    pairs = iter(frames)
    try:
        first, first_duration = next(pairs)
    except StopIteration:
        raise ValueError("Cannot write a sequence with no frames.") from None
    plan = _Plan(first, settings)
    width, height = first.size
    ctx = Context()
    encoder = Encoder(ctx.ptr, settings)
    encoder.use_chroma(plan.first.chroma)
    nclx = output_nclx(plan.first.info)
    profile = nclx_profile(nclx) if nclx is not None else None
    track_opts = owned(lib.heif_track_options_alloc(), lib.heif_track_options_release)
    lib.heif_track_options_set_timescale(track_opts, TIMESCALE)
    seq_opts = owned(lib.heif_sequence_encoding_options_alloc(), lib.heif_sequence_encoding_options_release, profile)
    seq_opts.save_alpha_channel = 1 if writer_mode(first.mode).alpha else 0
    if profile is not None:
        seq_opts.output_nclx_profile = profile
    lib.heif_context_set_sequence_timescale(ctx.ptr, TIMESCALE)
    repetitions = lib.heif_sequence_maximum_number_of_repetitions if loop == 0 else loop
    lib.heif_context_set_number_of_sequence_repetitions(ctx.ptr, repetitions)
    out = ffi.new("heif_track**")
    check(lib.heif_context_add_visual_sequence_track(ctx.ptr, width, height, _PICT, track_opts, seq_opts, out))
    track = owned(out[0], lib.heif_track_release, ctx)
    index, job, duration = 0, plan.first, first_duration
    while True:
        mode = writer_mode(job.frame.mode)
        image = new_heif_image(width, height, mode, job.bits)
        buf, stride = frame_pixels(job.frame)
        fill_image(image, mode, job.bits, buf, stride, 0, 0, width, height)
        if mode.premultiplied:
            lib.heif_image_set_premultiplied_alpha(image, 1)
        lib.heif_image_set_duration(image, operator.index(duration))
        check(lib.heif_track_encode_sequence_image(track, image, encoder.ptr, seq_opts), f"encoding frame {index}")
        del image, buf, job  # the frame's pixels may go before the next frame is made
        if index == 0:
            plan.first = dataclasses.replace(plan.first, frame=dataclasses.replace(first, data=b""))
            del first
        try:
            frame, duration = next(pairs)
        except StopIteration:
            break
        index += 1
        job = plan.job(frame, index)
    check(lib.heif_track_encode_end_of_sequence(track, encoder.ptr), "ending the sequence")
    return ctx.file_bytes()
