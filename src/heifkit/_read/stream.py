"""Reading a binary stream lazily: libheif's ``heif_reader`` over a Python file object.

Opening a file through :class:`StreamSource` reads only the boxes libheif parses (``ftyp``, ``meta``...)
and the metadata items heifkit reads at open (EXIF, XMP), not the coded image data, so opening a 30 MB
photo for its size or EXIF reads a few kilobytes. Once the file is open (:meth:`StreamSource.opened`), the
next read libheif asks for, the first decode as a rule, reads the whole stream into memory at once and the
source lets go of the stream: decoding reads what it needs from memory, and later frames or thumbnails
never touch the stream again (Pillow truncates a file before saving over it, and closes the files it
opened after ``load()``).

The stream is read from offset 0, seeking to each position libheif asks for, and left at 0 after each
batch of reads, as Pillow and pillow_heif leave it. libheif calls the reader from several threads at once
(a grid's tiles decode in parallel), each seeking and then reading: the read position is kept per thread,
and each read holds the source's lock.
"""

from __future__ import annotations

import threading
from typing import Any

from .._native.libheif import ffi, lib

__all__ = ["StreamSource", "stream_size", "READER"]


def stream_size(fp: Any) -> int | None:
    """The size of a seekable binary stream (left at 0), or None when it cannot seek or tell."""
    seekable = getattr(fp, "seekable", None)
    try:
        if seekable is not None and not seekable():
            return None
        size = fp.seek(0, 2)
        if not isinstance(size, int):  # some file-likes return None: ask where they are
            size = fp.tell()
        fp.seek(0)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None
    return size if isinstance(size, int) and size >= 0 else None


class StreamSource:
    """A seekable stream of ``size`` bytes, read lazily by libheif until opened, then from memory."""

    def __init__(self, fp: Any, size: int) -> None:
        self.fp: Any = fp
        self.size = size
        self._where = threading.local()  # the read position, per thread
        self.data: bytes | None = None
        self.error: BaseException | None = None  # what a callback caught: see take_error()
        self._lazy = True
        self._lock = threading.Lock()

    @property
    def position(self) -> int:
        """Where the calling thread reads next."""
        return getattr(self._where, "position", 0)

    @position.setter
    def position(self, value: int) -> None:
        self._where.position = value

    def take_error(self) -> BaseException | None:
        """What the stream raised under the libheif call that just failed (cleared: a retry starts afresh)."""
        error, self.error = self.error, None
        return error

    def opened(self) -> None:
        """The file is open: the next read loads the whole stream and lets go of it."""
        self._lazy = False
        self._rewind()

    def read_at(self, position: int, size: int) -> bytes:
        """``size`` bytes at ``position`` (fewer at the end of the stream)."""
        with self._lock:
            if self.data is None and not self._lazy:
                self._load_all()
            if self.data is not None:
                return self.data[position : position + size]
            self._check_open()
            self.fp.seek(position)
            chunk = self.fp.read(size)
            if not isinstance(chunk, bytes):
                chunk = bytes(chunk or b"")
            return chunk

    def all_bytes(self) -> bytes:
        """The whole stream, read into memory once (and the stream let go)."""
        with self._lock:
            if self.data is None:
                self._load_all()
            assert self.data is not None
            return self.data

    def _check_open(self) -> None:
        if getattr(self.fp, "closed", False):
            raise ValueError("I/O operation on closed file: the stream was closed before its image was loaded")

    def _load_all(self) -> None:
        self._check_open()
        self.fp.seek(0)
        data = self.fp.read()
        data = data if isinstance(data, bytes) else bytes(data or b"")
        if len(data) != self.size:
            raise OSError(f"the stream changed size while it was being read ({self.size} then {len(data)} bytes)")
        self.data = data
        self._rewind()
        self.fp = None

    def _rewind(self) -> None:
        if self.fp is not None:
            try:
                self.fp.seek(0)
            except (OSError, ValueError):
                pass  # a closed stream: the next read reports it


def _source(userdata: Any) -> StreamSource:
    source = ffi.from_handle(userdata)
    assert isinstance(source, StreamSource)
    return source


@ffi.def_extern()
def hk_reader_get_position(userdata: Any) -> int:
    return _source(userdata).position


@ffi.def_extern()
def hk_reader_read(data: Any, size: int, userdata: Any) -> int:
    source = _source(userdata)
    try:
        end = source.position + size
        if end > source.size:
            raise EOFError(f"libheif read past the end of the stream ({end} > {source.size} bytes)")
        chunk = source.read_at(source.position, size)
        if len(chunk) != size:
            raise EOFError(f"the stream ended early: {len(chunk)} of {size} bytes at offset {source.position}")
    except BaseException as exc:  # every failure must reach the caller, not cffi's stderr
        source.error = source.error or exc
        return 1
    ffi.memmove(data, chunk, size)
    source.position = end
    return 0


@ffi.def_extern()
def hk_reader_seek(position: int, userdata: Any) -> int:
    source = _source(userdata)
    if not 0 <= position <= source.size:
        return 1
    source.position = position
    return 0


@ffi.def_extern()
def hk_reader_wait_for_file_size(target_size: int, userdata: Any) -> int:
    if target_size <= _source(userdata).size:
        return int(lib.heif_reader_grow_status_size_reached)
    return int(lib.heif_reader_grow_status_size_beyond_eof)


def _reader_struct() -> Any:
    reader = ffi.new("heif_reader*")
    reader.reader_api_version = 1
    reader.get_position = lib.hk_reader_get_position
    reader.read = lib.hk_reader_read
    reader.seek = lib.hk_reader_seek
    reader.wait_for_file_size = lib.hk_reader_wait_for_file_size
    return reader


READER = _reader_struct()
"""libheif's table of the callbacks above (API version 1), shared by every source: libheif keeps a pointer
to it for the life of each context, so it lives as long as the module."""
