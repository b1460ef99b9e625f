"""libheif's side of a sequence track: the decoding position in a track, the auxiliary tracks of a track,
and the decoder a track's samples need.

libheif decodes a track's samples one after the other, forward only, and its position lives in the context:
a :class:`Cursor` owns a context of its own and its track, so that going back means a new cursor.
"""

from __future__ import annotations

import os
from typing import Any

from .. import options
from .._native import dav1d as _dav1d
from .._native.libheif import Context, check, ffi, lib, owned, string
from ..errors import InvalidInputError
from . import entries as _read
from .source import open_context

__all__ = ["Cursor", "reopen", "aux_tracks", "frame_limit", "decoder_for"]

_AUXL = int.from_bytes(b"auxl", "big")
_END_OF_SEQUENCE = int(lib.heif_error_End_of_sequence)
_AS_CODED = (int(lib.heif_colorspace_undefined), int(lib.heif_chroma_undefined))  # no colour conversion


class Cursor:
    """A libheif context and one of its tracks, positioned before sample ``next`` (libheif decodes a track
    only forward). The track is released before the context it points into."""

    def __init__(self, source: Any, flags: _read.OpenFlags, track_id: int) -> None:
        self.ctx = reopen(source, flags)
        raw = lib.heif_context_get_track(self.ctx.ptr, track_id)
        if raw == ffi.NULL:
            raise InvalidInputError(f"the file has no track {track_id}")
        self.track = owned(raw, lib.heif_track_release, self.ctx)
        self.next = 0

    def decode_next(self, layout: Any, opts: Any, keep: bool) -> Any:
        """Decode the next sample (in ``layout``, or left as the codec gives it when not ``keep``)."""
        out = ffi.new("heif_image**")
        colorspace, chroma = (layout.colorspace, layout.chroma) if keep else _AS_CODED
        with self.ctx.lock:
            err = lib.heif_track_decode_next_image(self.track, out, colorspace, chroma, opts)
        image = self.ctx.adopt_image(out[0]) if out[0] != ffi.NULL else None
        if err.code == _END_OF_SEQUENCE:
            raise InvalidInputError(f"the track ends after {self.next} frames, fewer than its sample table lists")
        check(err)
        if image is None:
            raise InvalidInputError("libheif decoded no image")
        self.next += 1
        return image


def reopen(source: Any, flags: _read.OpenFlags) -> Context:
    """A new context parsing what ``source`` (a parsed ``Context.source``: the file's bytes or its path) holds."""
    return open_context(source, flags.limits, False)[0]


def aux_tracks(ctx: Context, main_id: int) -> tuple[dict[str, list[int]], int | None]:
    """The auxiliary tracks referring to track ``main_id`` (``auxl``): by URN, alpha left out (libheif merges
    it into the frames); and the alpha track's id (None when there is none)."""
    count = lib.heif_context_number_of_sequence_tracks(ctx.ptr)
    found: dict[str, list[int]] = {}
    alpha = None
    if count <= 0:
        return found, alpha
    ids = ffi.new("uint32_t[]", count)  # libheif writes exactly ``count`` ids
    lib.heif_context_get_track_ids(ctx.ptr, ids)
    for track_id in ids:
        raw = lib.heif_context_get_track(ctx.ptr, track_id) if track_id != main_id else ffi.NULL
        if raw == ffi.NULL:
            continue
        track = owned(raw, lib.heif_track_release, ctx)
        refs = lib.heif_track_get_number_of_track_reference_of_type(track, _AUXL)
        if refs <= 0:
            continue
        targets = ffi.new("uint32_t[]", refs)  # libheif writes exactly ``refs`` ids
        written = lib.heif_track_get_references_from_track(track, _AUXL, targets)
        if main_id not in list(targets)[:written]:
            continue
        if lib.heif_track_get_auxiliary_info_type(track) == lib.heif_auxiliary_track_info_type_alpha:
            alpha = int(track_id)
        else:
            found.setdefault(string(lib.heif_track_get_auxiliary_info_type_urn(track)), []).append(int(track_id))
    return found, alpha


def frame_limit(flags: _read.OpenFlags) -> int:
    """The ``max_sequence_frames`` security limit the file is read with (0: none)."""
    return flags.limits.max_sequence_frames if flags.limits is not None else 0


def decoder_for(flags: _read.OpenFlags, mimetype: str, kind: str) -> tuple[str, int]:
    """The decoder id and codec threads for a track whose samples are ``kind`` (``av01``, ``hvc1``...).

    AV1 tracks decode with heifkit's dav1d plugin where a dav1d library was found (libheif's own choice, by
    priority), else with aom; ``decoder_id`` picks another. Threads as for still images: one for aom (slower
    with more), the cores for dav1d and libde265.
    """
    key = "AVIF" if mimetype.startswith("image/avif") or kind == "av01" else "HEIF"
    decoder_id = flags.decoder_id or options.PREFERRED_DECODER.get(key, "") or ""
    threads = flags.codec_threads if flags.codec_threads is not None else options.CODEC_THREADS.get(key)
    if threads is None:
        aom = decoder_id == "aom" or (kind == "av01" and not decoder_id and _dav1d.library() is None)
        threads = 1 if aom else -1
    if threads < 0:
        try:
            threads = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            threads = os.cpu_count() or 1
    return decoder_id, threads
