"""The stream rule, as Pillow and pillow_heif read: a seekable stream is read from offset 0 and left at 0;
a stream that cannot seek is read from where it is; a text stream is a TypeError that says why."""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import ZPUG

OPENERS = [heifkit.open_heif, heifkit.HeifFile, heifkit.read_heif]


def _reference() -> list[np.ndarray]:
    return [np.asarray(im) for im in heifkit.open_heif(ZPUG)]


def _same_as_reference(heif_file: heifkit.HeifFile) -> None:
    assert len(heif_file) == 3 and heif_file.primary_index == 1
    for image, expected in zip(heif_file, _reference(), strict=True):
        np.testing.assert_array_equal(np.asarray(image), expected)


@pytest.mark.parametrize("opener", OPENERS)
def test_save_to_a_buffer_then_open_it(opener):
    """The "Saving images" pattern: no seek(0) needed between writing and reading."""
    buf = io.BytesIO()
    heifkit.open_heif(ZPUG).save(buf, quality=-1)
    assert buf.tell() > 0
    reopened = opener(buf)
    assert buf.tell() == 0  # left at 0, as pillow_heif does
    assert len(reopened) == 3 and reopened.primary_index == 1
    assert [im.size for im in reopened] == [(64, 64), (64, 64), (96, 64)]


@pytest.mark.parametrize("opener", OPENERS)
def test_stream_in_the_middle_is_read_from_offset_zero(opener):
    stream = io.BytesIO(ZPUG.read_bytes())
    stream.seek(1234)
    _same_as_reference(opener(stream))
    assert stream.tell() == 0


def test_save_open_save_overwrites_instead_of_appending():
    buf = io.BytesIO()
    first = heifkit.from_pillow(Image.new("RGB", (64, 48), (10, 200, 30)))
    first.save(buf, quality=-1, chroma=444)
    size = len(buf.getvalue())
    reopened = heifkit.open_heif(buf)  # leaves buf at 0
    reopened.save(buf, quality=-1, chroma=444)
    assert len(buf.getvalue()) == size  # written over the first file, not after it
    assert heifkit.open_heif(buf).size == (64, 48)


def test_plugin_leaves_the_stream_at_zero_and_open(heif_plugin):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buf, format="HEIF", quality=-1)
    with Image.open(buf) as im:  # buf is at its end here: Pillow and heifkit read from 0
        im.load()
        assert buf.tell() == 0
        assert im.fp is None  # everything was read at open: the caller's stream is let go
        assert im.size == (40, 30)
    assert not buf.closed  # neither load() nor close() closes a stream the caller owns
    im = Image.open(buf)
    im.load()
    im.save(buf, format="HEIF", quality=-1)  # at 0: overwrites, so the buffer still holds one readable file
    im.close()
    assert not buf.closed
    assert heifkit.open_heif(buf).size == (40, 30)


def test_plugin_closes_the_file_it_opened_itself(heif_plugin):
    im = Image.open(ZPUG)
    fp = im.fp
    im.load()
    assert fp.closed and im.fp is None


class _Unseekable(io.RawIOBase):
    """A stream that can only be read forward, like a pipe or a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        chunk = self._data.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_non_seekable_stream_is_read_from_where_it_is():
    stream = io.BufferedReader(_Unseekable(b"junk" + ZPUG.read_bytes()))
    assert stream.read(4) == b"junk"
    _same_as_reference(heifkit.open_heif(stream))


def test_pipe():
    read_fd, write_fd = os.pipe()
    data = ZPUG.read_bytes()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as w:
            w.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    with os.fdopen(read_fd, "rb") as pipe:
        heif_file = heifkit.open_heif(pipe)
    writer.join()
    _same_as_reference(heif_file)


def test_object_with_only_read():
    class ReadOnly:
        def __init__(self, data: bytes) -> None:
            self._data = data

        def read(self, size: int = -1) -> bytes:
            data, self._data = self._data, b""
            return data

    _same_as_reference(heifkit.open_heif(ReadOnly(ZPUG.read_bytes())))


@pytest.mark.parametrize("call", [heifkit.open_heif, heifkit.is_supported, heifkit.get_file_mimetype])
def test_text_stream_says_to_open_in_binary_mode(call, tmp_path):
    path = tmp_path / "x.heic"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
    with open(path, encoding="latin-1") as text, pytest.raises(TypeError, match="binary mode"):
        call(text)
    with pytest.raises(TypeError, match="binary mode"):
        call(io.StringIO("not bytes"))


def test_file_object_is_not_closed_and_position_is_zero(tmp_path):
    with open(ZPUG, "rb") as fh:
        fh.seek(100)
        heif_file = heifkit.open_heif(fh)
        assert not fh.closed and fh.tell() == 0
    _same_as_reference(heif_file)  # everything needed was read at open
