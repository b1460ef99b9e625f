"""Handing a decoded pixel buffer to Pillow without a copy, through the Arrow C data interface.

Pillow keeps ``RGB`` at 4 bytes per pixel, so ``Image.frombytes("RGB", ...)`` of 3-byte pixels always copies.
Pillow 11.2.1 and later map a buffer of 4-byte pixels given as an Arrow array (``Image.fromarrow``). The array
heifkit exports owns a reference to the Python object holding the pixels (libheif's decoded image, or a
buffer tiles were decoded into), released by Pillow when its image goes away (``_native/helpers.c``).
"""

from __future__ import annotations

import ctypes
from typing import Any

from .libheif import ffi, lib

__all__ = ["SUPPORTED", "pillow_from_4byte_pixels"]


def _pillow_maps_arrow() -> bool:
    from PIL import Image

    version = tuple(int(part) for part in Image.__version__.split(".")[:3] if part.isdigit())
    return hasattr(Image, "fromarrow") and version >= (11, 2, 1)


SUPPORTED = _pillow_maps_arrow()
"""Whether this Pillow maps Arrow arrays (else images are copied in, as before)."""

_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_SCHEMA_NAME = b"arrow_schema"  # capsule names must outlive the capsules: module constants
_ARRAY_NAME = b"arrow_array"
_FREE_SCHEMA = int(ffi.cast("uintptr_t", ffi.addressof(lib, "hk_arrow_schema_capsule_free")))
_FREE_ARRAY = int(ffi.cast("uintptr_t", ffi.addressof(lib, "hk_arrow_array_capsule_free")))


class _Pixels:
    """An Arrow array of ``count`` 32-bit pixels in ``buffer`` (which it keeps alive until exported)."""

    def __init__(self, buffer: Any, count: int) -> None:
        self._buffer = buffer
        self._count = count

    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]:
        schema, array = ffi.new("struct ArrowSchema**"), ffi.new("struct ArrowArray**")
        # the exported array takes its own reference to the buffer (hk_arrow_export), dropped by its release
        if lib.hk_arrow_export(ffi.cast("void*", id(self._buffer)), ffi.from_buffer(self._buffer), self._count,
                               schema, array) != 0:  # fmt: skip
            raise MemoryError("cannot export the decoded pixels")
        schema_address = int(ffi.cast("uintptr_t", schema[0]))
        array_address = int(ffi.cast("uintptr_t", array[0]))
        return (
            _capsule_new(schema_address, _SCHEMA_NAME, _FREE_SCHEMA),
            _capsule_new(array_address, _ARRAY_NAME, _FREE_ARRAY),
        )


def pillow_from_4byte_pixels(mode: str, size: tuple[int, int], buffer: Any) -> Any:
    """A Pillow image of ``mode`` (``RGB``, ``RGBA``...) over ``buffer``'s tight 4-byte pixels, not copied."""
    from PIL import Image

    width, height = size
    if len(memoryview(buffer).cast("B")) < width * height * 4:
        raise ValueError("pixel buffer holds fewer than width * height 4-byte pixels")
    return Image.fromarrow(_Pixels(buffer, width * height), mode, size)
