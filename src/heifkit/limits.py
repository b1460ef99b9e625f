"""Security limits: how much one file may make libheif allocate and parse (public: :class:`SecurityLimits`).

Each field maps to one field of libheif's ``heif_security_limits`` (``heif_security.h``). The defaults are
libheif's own (read from the library at import), so a file that libheif's tools refuse is refused here too.
``0`` turns a limit off, as in libheif. A file beyond a limit raises :class:`~heifkit.SecurityLimitError`,
which names the limit.

Which limits a file is read with (:func:`resolve`): the call's ``disable_security_limits``, else the call's
``limits``, else ``options.DISABLE_SECURITY_LIMITS``, else ``options.SECURITY_LIMITS``. A ``limits`` dict
changes only the fields it names, of ``options.SECURITY_LIMITS`` for a call, of libheif's defaults for the
option.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from ._native.libheif import ffi, lib
from .errors import SecurityLimitError

__all__ = ["SecurityLimits", "LimitsLike", "FIELDS", "resolve", "native", "check_whole_image"]

FIELDS = {
    "max_image_pixels": "max_image_size_pixels",
    "max_total_memory": "max_total_memory",
    "max_items": "max_items",
    "max_tiles": "max_number_of_tiles",
    "max_sequence_frames": "max_sequence_frames",
    "max_memory_block_size": "max_memory_block_size",
    "max_color_profile_size": "max_color_profile_size",
    "max_children_per_box": "max_children_per_box",
}
"""Our name of each limit -> its field in libheif's ``heif_security_limits``."""

_DEFAULTS = lib.heif_get_global_security_limits()
_BITS = {"max_image_pixels": 64, "max_total_memory": 64, "max_tiles": 64, "max_memory_block_size": 64}  # others: 32


def _default(name: str) -> Any:
    return dataclasses.field(default=int(getattr(_DEFAULTS, FIELDS[name])))


@dataclass(frozen=True)
class SecurityLimits:
    """Limits on what reading one file may cost; each defaults to libheif's value, and 0 turns it off.

    Attributes:
        max_image_pixels: pixels of one image, thumbnail, depth or auxiliary image (libheif: 2**30).
        max_total_memory: bytes libheif may hold at once for one file: decoded images, buffers (4 GiB).
        max_items: items in the file: images, tiles, metadata blocks (1000).
        max_tiles: tiles of one grid or tiled image (2**24).
        max_sequence_frames: frames (samples) of one image sequence track.
        max_memory_block_size: bytes of one block libheif reads or allocates, e.g. an item's data (4 GiB).
        max_color_profile_size: bytes of an ICC profile (100 MiB).
        max_children_per_box: entries of a box that no other limit covers (100).
    """

    max_image_pixels: int = _default("max_image_pixels")
    max_total_memory: int = _default("max_total_memory")
    max_items: int = _default("max_items")
    max_tiles: int = _default("max_tiles")
    max_sequence_frames: int = _default("max_sequence_frames")
    max_memory_block_size: int = _default("max_memory_block_size")
    max_color_profile_size: int = _default("max_color_profile_size")
    max_children_per_box: int = _default("max_children_per_box")

    def __post_init__(self) -> None:
        for name in FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"security limit {name} must be an int, not {type(value).__name__}")
            bits = _BITS.get(name, 32)
            if not 0 <= value < 1 << bits:
                raise ValueError(f"security limit {name} must be 0 (no limit) or a count below 2**{bits}, not {value}")

    def replace(self, **changes: int) -> SecurityLimits:
        """A copy with the given limits changed (unknown names raise ``TypeError``)."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)


LimitsLike = Union[SecurityLimits, Mapping[str, int]]
"""A :class:`SecurityLimits`, or a mapping of limit names to values (the fields it changes)."""


def _check_names(changes: Mapping[str, Any]) -> None:
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise TypeError(f"unknown security limit(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")


def _apply(limits: Any, base: SecurityLimits, what: str) -> SecurityLimits:
    if isinstance(limits, SecurityLimits):
        return limits
    if isinstance(limits, Mapping):
        return base.replace(**dict(limits))
    raise TypeError(f"{what} must be a SecurityLimits or a dict of limits, not {type(limits).__name__}")


def resolve(limits: Any, disable: bool | None, global_limits: Any, global_disable: bool) -> SecurityLimits | None:
    """The limits a file is read with (None: every limit off), by the rule in this module's docstring.

    Raises:
        TypeError: a value that is not a :data:`LimitsLike`, or an unknown limit name.
        ValueError: ``limits`` together with ``disable_security_limits=True``, or a negative limit.
    """
    if disable:
        if limits is not None:
            raise ValueError("limits and disable_security_limits=True contradict each other: pass one of them")
        return None
    if disable is None and limits is None and global_disable:
        return None
    base = _apply(global_limits, SecurityLimits(), "options.SECURITY_LIMITS")
    return base if limits is None else _apply(limits, base, "limits")


def native(limits: SecurityLimits | None) -> Any:
    """libheif's ``heif_security_limits*`` for ``limits`` (None: libheif's disabled limits), for
    ``Context.set_limits``; the fields we do not expose keep libheif's defaults."""
    if limits is None:
        return lib.heif_get_disabled_security_limits()
    struct = ffi.new("heif_security_limits*")
    struct[0] = _DEFAULTS[0]
    for name, field in FIELDS.items():
        setattr(struct, field, getattr(limits, name))
    return struct


def check_whole_image(limits: Any, size: tuple[int, int], nbytes: int) -> None:
    """Apply the whole image's limits to a decode tile by tile (``decode.decode_tiles_into``), as libheif
    applies them to a decode of the whole image while each tile alone is within them: ``max_image_pixels``
    to the image's ``size``, ``max_total_memory`` to the ``nbytes`` of the output buffer. ``limits``: the
    ``heif_security_limits*`` of the image's context (``Context.limits``; None: libheif's defaults).

    Raises:
        SecurityLimitError: naming the limit.
    """
    if limits is None:
        limits = _DEFAULTS
    max_pixels, max_memory = int(limits.max_image_size_pixels), int(limits.max_total_memory)
    code, subcode = int(lib.heif_error_Memory_allocation_error), int(lib.heif_suberror_Security_limit_exceeded)
    if max_pixels and size[0] * size[1] > max_pixels:
        message = f"Image size {size[0]}x{size[1]} exceeds the maximum image size {max_pixels}"
        raise SecurityLimitError(f"Memory allocation error: Security limit exceeded: {message}", code, subcode)
    if max_memory and nbytes > max_memory:
        message = (
            f"Memory usage of {nbytes} bytes for image data exceeds the security limit of {max_memory} bytes of "
            "total memory usage"
        )
        raise SecurityLimitError(f"Memory allocation error: Security limit exceeded: {message}", code, subcode)
