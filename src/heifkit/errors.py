"""heifkit's exception hierarchy.

Every error libheif reports becomes a :class:`HeifError` subclass that carries libheif's ``code``,
``subcode`` and message. Each class is *also* the built-in exception pillow_heif raises in the same
situation, so ``except ValueError`` / ``except EOFError`` / ``except SyntaxError`` / ``except
RuntimeError`` written for pillow_heif keeps working:

======================  ==========================================  =====================================
class                   raised for                                  also an instance of
======================  ==========================================  =====================================
InvalidInputError       malformed file, bad argument (usage error)  ValueError
TruncatedError          data ends early (libheif "End of data")     EOFError and ValueError
UnsupportedError        unsupported file type, feature or codec     SyntaxError and NotImplementedError
SecurityLimitError      a libheif security limit was exceeded       ValueError and RuntimeError
DecoderError            the codec failed to decode                  ValueError
EncoderError            the codec failed to encode                  RuntimeError
InternalError           anything else libheif reports               RuntimeError
======================  ==========================================  =====================================

``UnsupportedError`` is both a ``SyntaxError`` (what pillow_heif raises for unsupported features) and a
``NotImplementedError`` (a ``RuntimeError``, what it raises when no codec plugin is available).
"""

from __future__ import annotations

__all__ = [
    "HeifError",
    "InvalidInputError",
    "TruncatedError",
    "UnsupportedError",
    "SecurityLimitError",
    "DecoderError",
    "EncoderError",
    "InternalError",
]


class HeifError(Exception):
    """Base class of every error heifkit raises for libheif failures.

    Attributes:
        code: libheif's ``heif_error_code`` (0 when the error was detected by heifkit itself).
        subcode: libheif's ``heif_suberror_code``.
        message: the human-readable message (libheif's when it came from libheif).
    """

    def __init__(self, message: str, code: int = 0, subcode: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type, tuple[str, int, int]]:
        return (type(self), (self.message, self.code, self.subcode))


class InvalidInputError(HeifError, ValueError):
    """The input is not a valid HEIF/AVIF file, or an argument is invalid."""


class TruncatedError(HeifError, EOFError, ValueError):
    """The data ends before the file says it should."""


class UnsupportedError(HeifError, SyntaxError, NotImplementedError):
    """The file uses a file type, feature or codec this libheif build does not support."""


class SecurityLimitError(HeifError, ValueError, RuntimeError):
    """A security limit (image size, number of items, memory...) was exceeded; ``str()`` names it.

    ``message`` is libheif's message; ``str(error)`` adds which limit it is and how to raise it.

    Attributes:
        limit: the :class:`~heifkit.SecurityLimits` field that was exceeded, or None for a libheif limit
            heifkit does not expose (only ``disable_security_limits=True`` lifts those).
    """

    def __init__(self, message: str, code: int = 0, subcode: int = 0) -> None:
        super().__init__(message.strip(), code, subcode)
        self.limit = limit_named_in(self.message)

    @property
    def hint(self) -> str:
        """Which limit this is and how to raise it (the end of ``str(error)``)."""
        if self.limit is None:
            return (
                "[a libheif security limit heifkit does not expose: only disable_security_limits=True lifts it, "
                "for files you trust]"
            )
        return (
            f"[security limit {self.limit}: to read files you trust, raise it with limits={{'{self.limit}': ...}} "
            "in open_heif() or in heifkit.options.SECURITY_LIMITS (0: no limit), or turn every limit off with "
            "disable_security_limits=True]"
        )

    def __str__(self) -> str:
        return f"{self.message} {self.hint}"


# Fragments of libheif 1.23's messages -> the SecurityLimits field they are about (first match wins).
_LIMIT_MESSAGES = (
    ("sequence frames", "max_sequence_frames"),
    ("maximum number of frames", "max_sequence_frames"),
    ("number of tiles", "max_tiles"),
    ("maximum image size", "max_image_pixels"),
    ("iloc box contained", "max_memory_block_size"),
    ("memory block size", "max_memory_block_size"),
    ("of total memory", "max_total_memory"),
    ("items, which exceeds the security limit", "max_items"),
    ("items, but the security limit", "max_items"),
    ("color profile", "max_color_profile_size"),
    ("child boxes", "max_children_per_box"),
)


def limit_named_in(message: str) -> str | None:
    """The :class:`~heifkit.SecurityLimits` field a libheif security-limit message is about, or None."""
    lowered = message.lower()
    return next((limit for fragment, limit in _LIMIT_MESSAGES if fragment in lowered), None)


class DecoderError(HeifError, ValueError):
    """The codec reported an error while decoding."""


class EncoderError(HeifError, RuntimeError):
    """The codec reported an error while encoding, or no encoder is available."""


class InternalError(HeifError, RuntimeError):
    """Any other libheif failure (memory allocation, plugin loading, cancellation...)."""
