"""8-bit RGB decodes straight into Pillow's 4-byte layout and is handed over without a copy (Arrow C data
interface, Pillow >= 11.2.1): the same pixels as the copying path, memory released with the Pillow image."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import ARROW, CORPUS, PUG, ZPUG
from heifkit._decode import pixels as decode
from heifkit._native import arrow as _arrow

pytestmark = pytest.mark.skipif(not _arrow.SUPPORTED, reason="this Pillow cannot map Arrow arrays")

FILES = [PUG, ARROW, CORPUS / "libheif_example.heic", CORPUS / "pheif_cat.hif", CORPUS / "libheif_example.avif"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_plugin_and_to_pillow_equal_the_decoded_bytes(path, heif_plugin) -> None:  # type: ignore[no-untyped-def]
    if path.suffix == ".avif":
        heifkit.register_avif_opener()
    expected = np.asarray(heifkit.open_heif(path))  # 3 bytes per pixel, pillow_heif's layout
    with Image.open(path) as im:
        im.load()
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), expected)
    np.testing.assert_array_equal(np.asarray(heifkit.open_heif(path).to_pillow()), expected)


def test_tile_path_hands_its_buffer_over_too(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = np.asarray(heifkit.open_heif(PUG))
    monkeypatch.setattr(decode, "TILED_DECODE_MIN_PIXELS", 1)  # pug's 8x6 grid, tile by tile
    np.testing.assert_array_equal(np.asarray(heifkit.open_heif(PUG).to_pillow()), expected)


def test_the_copying_path_gives_the_same_image(monkeypatch: pytest.MonkeyPatch, heif_plugin) -> None:  # type: ignore[no-untyped-def]
    mapped = Image.open(ARROW)
    mapped.load()
    monkeypatch.setattr(_arrow, "SUPPORTED", False)  # as on Pillow < 11.2.1
    copied = Image.open(ARROW)
    copied.load()
    assert mapped.tobytes() == copied.tobytes() and mapped.info == copied.info


def test_data_keeps_three_bytes_per_pixel_and_to_pillow_leaves_it_undecoded() -> None:
    image = heifkit.open_heif(ZPUG)[0]
    pil = image.to_pillow()
    assert image._data is None  # Pillow got its own 4-byte decode
    assert image.stride == 64 * 3 and len(image.data) == 64 * 3 * 64
    assert pil.tobytes() == bytes(image.data)
    assert image.to_pillow().tobytes() == pil.tobytes()  # decoded: now copied from data


def test_the_pillow_image_is_private_and_writable() -> None:
    heif_file = heifkit.open_heif(ZPUG)
    first, second = heif_file[0].to_pillow(), heif_file[0].to_pillow()
    first.putpixel((0, 0), (1, 2, 3))  # copy-on-write: the decoded buffer is never changed
    assert first.getpixel((0, 0)) == (1, 2, 3)
    assert second.getpixel((0, 0)) == tuple(np.asarray(heif_file[0])[0, 0].tolist()) != (1, 2, 3)


@pytest.mark.slow  # every 12 MP file, into Pillow
def test_pillow_image_outlives_its_file_and_then_releases_it() -> None:
    images = [heifkit.open_heif(path).to_pillow() for path in FILES[:3]]
    gc.collect()  # the HeifFiles are gone; the Pillow images hold the decoded pixels
    again = [np.asarray(heifkit.open_heif(path)) for path in FILES[:3]]
    for im, expected in zip(images, again, strict=True):
        np.testing.assert_array_equal(np.asarray(im), expected)
    del images
    gc.collect()
    np.testing.assert_array_equal(np.asarray(heifkit.open_heif(FILES[0])), again[0])


def test_arrow_export_releases_its_reference() -> None:
    import sys

    buffer = bytearray(16 * 16 * 4)
    before = sys.getrefcount(buffer)
    im = _arrow.pillow_from_4byte_pixels("RGB", (16, 16), buffer)
    assert sys.getrefcount(buffer) == before + 1  # held by the exported array
    buffer[0:3] = b"\x07\x08\x09"
    assert im.getpixel((0, 0)) == (7, 8, 9)  # the same memory, not a copy
    del im
    gc.collect()
    assert sys.getrefcount(buffer) == before
    with pytest.raises(ValueError, match="fewer"):
        _arrow.pillow_from_4byte_pixels("RGB", (16, 17), buffer)
