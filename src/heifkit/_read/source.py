"""Input: a path, bytes or a binary stream -> a libheif context reading it, and the file's type.

The stream rule: a seekable stream is read from offset 0 and left at 0, as Pillow's ``Image.open`` and
pillow_heif read; one that cannot seek is read from where it is (pipes, sockets).
"""

from __future__ import annotations

import io
import os
from typing import IO, Any, Union

from .._container.item_boxes import OpenedPath
from .._native.libheif import Context, check, ffi, lib, string
from ..limits import SecurityLimits
from ..limits import native as native_limits
from .stream import READER, StreamSource, stream_size

__all__ = [
    "FileLike",
    "LAZY_READ_THRESHOLD",
    "FTYP_PEEK",
    "peek",
    "sniff",
    "declared_brands",
    "avif_by_compatible_brands",
    "open_context",
    "file_data",
]

FileLike = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes]]

LAZY_READ_THRESHOLD = 16 * 1024 * 1024
"""Files up to this size are read into memory at once; bigger ones are read by libheif as needed."""

FTYP_PEEK = 4096
"""Bytes of a file's start given to libheif to recognise its type (the whole ``ftyp`` box, as a rule)."""

_TEXT_MODE = "fp is a text stream: open the file in binary mode ('rb')"


def peek(fp: Any, length: int) -> bytes:
    """The first ``length`` bytes of a path or bytes-like object, or of a file object from its current
    position (restored afterwards, as pillow_heif's ``is_supported`` does)."""
    if isinstance(fp, (str, os.PathLike)):
        with open(fp, "rb") as f:
            return f.read(length)
    if isinstance(fp, (bytes, bytearray, memoryview)):
        return bytes(memoryview(fp).cast("B")[:length])
    if isinstance(fp, io.TextIOBase):
        raise TypeError(_TEXT_MODE)
    pos = fp.tell()
    try:
        data = fp.read(length)
    finally:
        fp.seek(pos)
    if isinstance(data, str):
        raise TypeError(_TEXT_MODE)
    return bytes(data)


def sniff(header: bytes) -> tuple[bool, str]:
    """Ask libheif about a file's first bytes: (libheif reads this file type, its MIME type).

    libheif knows every brand it reads (``mif3`` "mini" files included) better than a table of ours. The
    MIME type is libheif's (``image/heic``, ``image/avif``, ``image/heif-sequence``...); a HEIF file whose
    codec libheif names no type for (JPEG, VVC) is ``image/heif``. Not HEIF: ``(False, "")``.
    """
    if len(header) < 12 or header[4:8] != b"ftyp":
        return False, ""
    mime = string(lib.heif_get_file_mime_type(header, len(header)))
    if mime in ("image/jpeg", "image/png"):
        return False, ""
    known = (
        bool(mime)
        or lib.heif_check_filetype(header, len(header)) == lib.heif_filetype_yes_supported
        or lib.heif_has_compatible_filetype(header, len(header)).code == 0
    )
    return known, (mime or "image/heif") if known else ""


_HEVC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})


def declared_brands(header: bytes) -> tuple[str | None, list[str]]:
    """The major brand and the compatible brands the ``ftyp`` box at the start of ``header`` declares, as libheif
    reads them (``heif_read_main_brand``, ``heif_list_compatible_brands``); (None, []) without an ``ftyp``."""
    if len(header) < 12 or header[4:8] != b"ftyp":
        return None, []
    major = int(lib.heif_read_main_brand(header, len(header)))
    out, count = ffi.new("heif_brand2**"), ffi.new("int*")
    if lib.heif_list_compatible_brands(header, len(header), out, count).code != 0 or out[0] == ffi.NULL:
        return _fourcc(major), []
    try:
        compatible = [_fourcc(int(out[0][i])) for i in range(max(0, count[0]))]
    finally:
        lib.heif_free_list_of_compatible_brands(out[0])
    return _fourcc(major), compatible


def _fourcc(brand: int) -> str:
    return brand.to_bytes(4, "big").decode("latin-1")


def avif_by_compatible_brands(header: bytes) -> str | None:
    """``image/avif`` (or ``image/avif-sequence``) for a file of a generic major brand (``mif1``, ``msf1``) that
    lists ``avif``/``avis`` among its compatible brands and no HEVC brand, as Pillow's AVIF plugin reads it
    (libheif's MIME type follows the major brand only: ``image/heif``); None for other files."""
    major, compatible = declared_brands(header)
    brands = {brand.encode("latin-1") for brand in compatible}
    if brands & _HEVC_BRANDS or not brands & {b"avif", b"avis"}:
        return None
    return "image/avif-sequence" if major == "msf1" or b"avis" in brands else "image/avif"


def _read_input(fp: Any) -> Any:
    """The bytes to parse from memory, or None for a big file that libheif should read lazily by path."""
    if isinstance(fp, (str, os.PathLike)):
        with open(fp, "rb") as f:  # clear FileNotFoundError/IsADirectoryError before libheif sees it
            if os.fstat(f.fileno()).st_size > LAZY_READ_THRESHOLD:
                return None
            return f.read()  # one read beats libheif's many small ones for typical photos
    if isinstance(fp, bytes) or (isinstance(fp, memoryview) and isinstance(fp.obj, bytes)):
        return fp  # immutable: libheif reads it without a copy
    if isinstance(fp, (bytearray, memoryview)):
        return bytes(fp)  # a private copy: the caller may change its buffer before pixels are decoded
    if hasattr(fp, "read"):
        return _read_stream(fp)
    raise TypeError("fp must be a path, a bytes-like object or a binary file object")


def _read_stream(fp: Any) -> bytes:
    """All of a binary stream: from offset 0 and left at 0 when it can seek (as Pillow's ``Image.open`` and
    pillow_heif read), from where it is when it can't (pipes, sockets)."""
    if isinstance(fp, io.TextIOBase):
        raise TypeError(_TEXT_MODE)
    seekable = _rewind(fp)
    data = fp.read()
    if isinstance(data, str):
        raise TypeError(_TEXT_MODE)
    if seekable:
        fp.seek(0)
    return data if isinstance(data, bytes) else bytes(data)


def _is_binary_stream(fp: Any) -> bool:
    if isinstance(fp, io.TextIOBase):
        raise TypeError(_TEXT_MODE)
    return hasattr(fp, "read") and not isinstance(fp, (str, os.PathLike, bytes, bytearray, memoryview))


def _rewind(fp: Any) -> bool:
    """Seek ``fp`` to its start; False for a stream that cannot seek."""
    seekable = getattr(fp, "seekable", None)
    if seekable is not None and not seekable():
        return False
    try:
        fp.seek(0)
    except (AttributeError, OSError):  # io.UnsupportedOperation is an OSError
        return False
    return True


def open_context(fp: Any, limits: SecurityLimits | None, lazy_stream: bool) -> tuple[Context, str]:
    """A libheif context reading ``fp`` with the security limits ``limits`` (None: every limit off; the
    contexts made from it by ``Context.twin`` get the same), and the file's MIME type (see :func:`sniff`).

    Paths are read into memory at once, or by libheif as needed when bigger than
    :data:`LAZY_READ_THRESHOLD`; bytes-like objects are read in place (``bytearray``/``memoryview``
    copied first); streams are read whole from offset 0, or, with ``lazy_stream``, only as far as opening
    needs (``_reader.StreamSource``: the caller keeps the stream open until the first decode).
    """
    ctx = Context()
    ctx.set_limits(native_limits(limits))
    size = stream_size(fp) if lazy_stream and _is_binary_stream(fp) else None
    if size is not None:
        # libheif reads the boxes it parses through the stream; the rest waits for the first decode (_reader).
        source = StreamSource(fp, size)
        ctx.source = source
        userdata = ffi.new_handle(source)
        ctx.borrow(userdata)
        header = source.read_at(0, FTYP_PEEK)
        err = lib.heif_context_read_from_reader(ctx.ptr, READER, userdata, ffi.NULL)
        error = source.take_error()
        if err.code != 0 and error is not None:
            raise error
        check(err)
        return ctx, sniff(header)[1]
    data = _read_input(fp)
    if data is None:
        # Big files: libheif reads only the boxes it needs, and image data when it is decoded.
        header = peek(fp, FTYP_PEEK)
        ctx.source = OpenedPath.of(os.fspath(fp))  # what heifkit reads of the file itself, as libheif opens it
        check(lib.heif_context_read_from_file(ctx.ptr, os.fsencode(ctx.source), ffi.NULL))
    else:
        header = bytes(memoryview(data).cast("B")[:FTYP_PEEK])
        ctx.read_memory(data)
    return ctx, sniff(header)[1]


def file_data(source: Any) -> Any:
    """What a context read (``Context.source``) as :func:`open_context` can read it again: the file's bytes,
    or its path; a stream source gives its whole stream (read into memory once)."""
    return source.all_bytes() if isinstance(source, StreamSource) else source
