"""The Pillow plugin reads a stream lazily: opening reads only the boxes it needs, the first decode the rest.

``Image.open`` on a seekable stream (Pillow opens paths as streams too) reads the container's boxes and the
metadata items, not the coded pixels; the first decode reads the whole stream into memory and the plugin
lets go of it. What users check: how much of the stream was read, that size, mode and ``info`` are those of
an eager open, that the pixels after ``load()`` are the same, that the stream is left at 0, and that a
stream that fails, shrinks or is closed too early raises an error (the one the stream raised) and never
crashes. ``open_heif`` still reads a stream whole (pillow_heif's contract: the stream may be closed after).
"""

from __future__ import annotations

import gc
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import ARROW, CORPUS, PUG, ZPUG, ZPUG_SIZES, comparable_info
from heifkit._read.entries import open_flags
from heifkit.heif import file_of, open_file


class CountingFile(io.FileIO):
    """A file that counts the bytes read from it, and fails a read that would go past ``fail_after``."""

    def __init__(self, path: Path, fail_after: int | None = None) -> None:
        super().__init__(path, "rb")
        self.bytes_read = 0
        self.fail_after = fail_after

    def _check(self, size: int) -> None:
        if self.fail_after is not None and (size < 0 or self.tell() + size > self.fail_after):
            raise OSError("disk on fire")

    def readinto(self, buffer: Any) -> int:
        self._check(len(memoryview(buffer)))
        n = super().readinto(buffer)
        self.bytes_read += n or 0
        return n  # type: ignore[no-any-return]

    def read(self, size: int = -1) -> bytes:
        self._check(size)
        data = super().read(size)
        self.bytes_read += len(data)
        return data


@pytest.fixture(autouse=True)
def _plugin(heif_plugin: None) -> Iterator[None]:
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    yield
    Image.MAX_IMAGE_PIXELS = saved


@pytest.mark.parametrize(("path", "most"), [(PUG, 0.05), (CORPUS / "pheif_200MP.heic", 0.05), (ARROW, 0.05)])
def test_open_reads_only_the_boxes(path: Path, most: float) -> None:
    size = path.stat().st_size
    with CountingFile(path) as f:
        im = Image.open(f)
        assert im.size == heifkit.open_heif(path).size
        assert f.tell() == 0
        assert f.bytes_read < most * size, f"{f.bytes_read} of {size} bytes read to open"


def test_metadata_without_decoding() -> None:
    """Size, mode, EXIF, XMP, ICC, thumbnails list: all there after reading a few kilobytes."""
    eager = heifkit.open_heif(PUG)
    with CountingFile(PUG) as f:
        im = Image.open(f)
        assert (im.size, im.mode) == (eager.size, eager.mode)
        assert im.info["exif"] == eager.info["exif"]
        assert im.info.get("icc_profile") == eager.info.get("icc_profile")
        assert im.getexif()[0x0110] == "iPhone 13 Pro"
        info = {k: v for k, v in im.info.items() if k != "original_orientation"}
        assert comparable_info(info) == comparable_info(eager.info)
        assert f.bytes_read < 100_000


@pytest.mark.parametrize("path", [PUG, ARROW, CORPUS / "pheif_cat.hif"])
def test_pixels_after_load_equal_an_eager_open(path: Path) -> None:
    expected = np.asarray(heifkit.open_heif(path).to_pillow())
    with CountingFile(path) as f:
        im = Image.open(f)
        im.load()
        assert f.tell() == 0
        assert np.array_equal(np.asarray(im), expected)


@pytest.mark.parametrize("name", ["libheif_simple_osm_tile_alpha.avif", "av1avif-linku_fox.profile1.10bpc.yuv444.avif"])
def test_avif_through_the_lazy_source(name: str) -> None:
    """The plugin's path for AVIF (Pillow's own AVIF plugin keeps .avif unless register_avif_opener() ran)."""
    path = CORPUS / name
    eager = heifkit.open_heif(path)
    with CountingFile(path) as f:
        lazy = file_of(open_file(f, open_flags(True, False, {}), lazy_stream=True))
        assert (lazy.size, lazy.mode, lazy.info["exif"]) == (eager.size, eager.mode, eager.info["exif"])
        assert bytes(lazy.data) == bytes(eager.data)
        assert f.tell() == 0


def test_every_frame_and_thumbnail_after_the_stream_is_closed() -> None:
    """The first decode reads the whole stream: later frames and thumbnails never need it again."""
    expected = [np.asarray(image.to_pillow()) for image in heifkit.open_heif(ZPUG)]
    with CountingFile(ZPUG) as f:
        im = Image.open(f)
        im.load()
    assert f.closed
    for i, want in enumerate(expected):
        im.seek(i)
        assert im.size == ZPUG_SIZES[i]
        assert np.array_equal(np.asarray(im), want)


def test_draft_thumbnail_then_full_image(tmp_path: Path) -> None:
    with Image.open(CORPUS / "pheif_200MP.heic") as im:
        im.draft("RGB", (512, 512))
        im.load()
        assert im.size == (384, 512)


@pytest.mark.slow  # a loop over the whole corpus
def test_plain_loop_open_size_drop() -> None:
    """The loop of a photo-library scan: open, read the size and EXIF, drop; then decode another file."""
    for _ in range(30):
        for path in (PUG, ZPUG, ARROW):
            with Image.open(path) as im:
                assert im.size
                im.info.get("exif")
        gc.collect()
    with Image.open(ZPUG) as im:
        im.load()
        assert im.size == ZPUG_SIZES[1]


def test_dropped_before_load_then_another_file() -> None:
    for order in ("image-first", "stream-first"):
        f = CountingFile(PUG)
        im = Image.open(f)
        if order == "image-first":
            del im
            gc.collect()
            f.close()
        else:
            f.close()
            del im
            gc.collect()
        assert np.asarray(heifkit.open_heif(ZPUG).to_pillow()).shape == (64, 64)


def test_stream_closed_before_load() -> None:
    f = CountingFile(PUG)
    im = Image.open(f)
    f.close()
    with pytest.raises(ValueError, match="closed file"):
        im.load()
    assert heifkit.open_heif(ZPUG).size == ZPUG_SIZES[1]


def test_stream_failing_at_load() -> None:
    with CountingFile(PUG, fail_after=200_000) as f:
        im = Image.open(f)
        with pytest.raises(OSError, match="disk on fire"):
            im.load()


def test_stream_failing_at_open() -> None:
    with CountingFile(PUG, fail_after=5_000) as f, pytest.raises(OSError, match="disk on fire"):
        Image.open(f)


def test_stream_shrunk_before_load(tmp_path: Path) -> None:
    path = tmp_path / "pug.heic"
    path.write_bytes(PUG.read_bytes())
    with open(path, "rb") as f:
        im = Image.open(f)
        path.write_bytes(PUG.read_bytes()[:500_000])
        with pytest.raises(OSError, match="changed size"):
            im.load()


def test_bytes_io_and_non_seekable_streams() -> None:
    data = PUG.read_bytes()
    expected = np.asarray(heifkit.open_heif(data).to_pillow())
    with Image.open(io.BytesIO(data)) as im:
        assert np.array_equal(np.asarray(im), expected)

    class Pipe(io.RawIOBase):  # reads only: no seek, no tell
        def __init__(self) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            return self._data.readinto(buffer)

    with Image.open(io.BufferedReader(Pipe())) as im:
        assert np.array_equal(np.asarray(im), expected)


def test_open_heif_still_reads_streams_whole() -> None:
    """pillow_heif's contract: the stream may be closed right after ``open_heif``."""
    with CountingFile(PUG) as f:
        heif = heifkit.open_heif(f)
        assert f.bytes_read == PUG.stat().st_size
    assert np.asarray(heif).shape == (3024, 4032, 3)


@pytest.mark.slow  # threads opening and decoding 12 MP grids
def test_grid_tiles_read_in_parallel_threads() -> None:
    """A 200 MP grid decodes its tiles on several threads, each reading through the same source."""
    expected = heifkit.open_heif(CORPUS / "pheif_200MP.heic")[0].data
    with CountingFile(CORPUS / "pheif_200MP.heic") as f:
        heif = file_of(open_file(f, open_flags(True, False, {}), lazy_stream=True))
        assert bytes(heif[0].data) == bytes(expected)


@pytest.mark.slow  # threads opening and decoding 12 MP grids
def test_threads_opening_lazily_at_once() -> None:
    errors: list[BaseException] = []
    expected = np.asarray(heifkit.open_heif(ARROW).to_pillow())

    def work() -> None:
        try:
            for _ in range(3):
                with Image.open(ARROW) as im:
                    assert np.array_equal(np.asarray(im), expected)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.slow  # a 12 MP grid
def test_pillow_save_of_a_lazily_opened_frame_keeps_its_attached_items() -> None:
    """Saving an unchanged frame copies its depth image and gain map from the file: read from the stream."""
    with CountingFile(PUG) as f:
        im = Image.open(f)
        out = io.BytesIO()
        im.save(out, format="HEIF", quality=10, enc_params={"preset": "ultrafast"})
    saved = heifkit.open_heif(out.getvalue())
    assert len(saved.info["depth_images"]) == 1
    assert len(saved.info["gain_maps"]) == 1
