"""Images the codecs cannot write are refused at once, with the limit named, before any pixel is copied.

Limits of one coded image (a whole image, each grid tile, each thumbnail), measured with libheif 1.23.6,
x265 4.2 and aom 3.15 (docs/saving.md has the details):

* HEVC: at most 65520 pixels per side (libheif reads back nothing larger that x265 writes);
* x265: an image under 32 px on a side is coded with 16 px CTUs, which HEVC levels allow only up to
  4208 px on the other side; the placebo preset (speed=0) cannot code such images at all;
* AV1: at most 65536 pixels per side;
* libheif: at most 2**30 pixels per coded image (``max_image_size_pixels``).

A grid writes each tile separately, so where one would hold the image the message says which
``tile_size`` to use. The sizes refused here come with a 16-byte buffer: the check runs before the buffer is
even looked at, so nothing image-sized is ever allocated.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

import heifkit
import heifkit.heif
import heifkit.plugin
from conftest import ENCODING, NativeCalls, max_rss_mb

FAST = {"quality": 0, "speed": 10}


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    heifkit.register_heif_opener()


# (format, mode, size, save kwargs, text of the error, tile_size the message suggests or None)
REFUSED: list[tuple[str, str, tuple[int, int], dict[str, Any], str, int | None]] = [
    ("HEIF", "L", (65521, 64), {}, "at most 65520 pixels", 512),
    ("HEIF", "RGB", (64, 65521), {}, "at most 65520 pixels", 512),
    ("HEIF", "RGB", (70000, 16), {}, "at most 65520 pixels", 512),
    ("HEIF", "RGB", (4209, 16), {"speed": 10}, "over 4208", 512),
    ("HEIF", "L", (16, 5000), {}, "over 4208", 512),
    ("HEIF", "RGB", (31, 20000), {}, "over 4208", 512),
    ("HEIF", "RGB", (31, 31), {"speed": 0}, "placebo", None),
    ("HEIF", "RGB", (400, 20), {"enc_params": {"preset": "placebo"}}, "placebo", None),
    ("HEIF", "RGB", (32769, 32768), {}, "1073741824 pixels", 2048),
    ("HEIF", "L", (46341, 46341), {}, "1073741824 pixels", 2048),
    ("HEIF", "RGBA", (70000, 64), {}, "alpha cannot be written as grids", None),
    ("AVIF", "RGB", (65537, 64), {}, "at most 65536 pixels", None),  # odd width: no 4:2:0 AVIF grid
    ("AVIF", "RGB", (65538, 64), {}, "at most 65536 pixels", 512),
    ("AVIF", "L", (64, 65537), {}, "at most 65536 pixels", 512),
    ("AVIF", "RGB", (40000, 40000), {}, "1073741824 pixels", 2048),
]


@pytest.mark.parametrize(
    ("fmt", "mode", "size", "kwargs", "text", "tile"), REFUSED, ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}" for c in REFUSED]
)
def test_too_large_for_the_codec(
    fmt: str,
    mode: str,
    size: tuple[int, int],
    kwargs: dict[str, Any],
    text: str,
    tile: int | None,
    native_calls: NativeCalls,
) -> None:
    rss = max_rss_mb()
    with pytest.raises(ValueError, match=text) as excinfo:
        heifkit.from_bytes(mode, size, bytes(16)).save(io.BytesIO(), format=fmt, **kwargs)
    message = str(excinfo.value)
    assert f"{size[0]}x{size[1]}" in message
    if tile is None:
        assert "tile_size" not in message
    else:
        assert f"tile_size={tile}" in message
    with pytest.raises(ValueError, match=text):
        heifkit.encode(mode, size, bytes(16), io.BytesIO(), format=fmt, **kwargs)
    assert native_calls.made(*ENCODING) == {}  # refused before any image was made or encoded
    assert max_rss_mb() - rss < 50


@pytest.mark.parametrize(
    ("fmt", "size", "kwargs"),
    [
        ("HEIF", (4208, 16), FAST),  # the largest image coded with 16 px CTUs, at every speed
        ("HEIF", (16, 4208), {"quality": 0, "speed": 5}),
        ("HEIF", (32, 20000), FAST),  # 32 px CTUs: no level limit
        ("HEIF", (65520, 32), FAST),
        ("AVIF", (65536, 16), FAST),
        ("HEIF", (32, 32), {"quality": 0, "speed": 0}),  # the smallest placebo image
    ],
    ids=str,
)
@pytest.mark.slow
def test_largest_sizes_are_written_and_read_back(fmt: str, size: tuple[int, int], kwargs: dict[str, Any]) -> None:
    out = io.BytesIO()
    heifkit.from_bytes("L", size, bytes(size[0] * size[1])).save(out, format=fmt, **kwargs)
    heif = heifkit.open_heif(out.getvalue())
    assert heif.size == size
    assert np.asarray(heif).shape[:2] == (size[1], size[0])  # libheif decodes it


def test_the_suggested_grid_is_written() -> None:
    """5000 x 16 is beyond x265 as one image; the tile size the message suggests writes it."""
    pixels = np.random.default_rng(0).integers(0, 256, (16, 5000, 3), dtype=np.uint8)
    heif = heifkit.from_bytes("RGB", (5000, 16), pixels.tobytes())
    with pytest.raises(ValueError, match="tile_size=512"):
        heif.save(io.BytesIO())
    out = io.BytesIO()
    heif.save(out, tile_size=512, quality=-1, chroma=444, matrix_coefficients=0, speed=10)
    back = heifkit.open_heif(out.getvalue())
    assert back.info["tiling"]["num_columns"] == 10
    assert np.array_equal(np.asarray(back), pixels)


def test_grid_tiles_are_checked() -> None:
    with pytest.raises(ValueError, match="tile_size=20: x265's placebo"):
        heifkit.from_bytes("L", (300, 300), bytes(16)).save(io.BytesIO(), tile_size=20, speed=0)


def test_placebo_preset_set_by_enc_params_wins_over_speed() -> None:
    """enc_params are applied after speed: speed=0 with another preset writes small images."""
    out = io.BytesIO()
    heifkit.from_bytes("L", (20, 20), bytes(400)).save(out, speed=0, enc_params={"preset": "fast"})
    assert heifkit.open_heif(out.getvalue()).size == (20, 20)


@pytest.mark.parametrize(
    ("size", "box", "kwargs", "text"),
    [
        ((4000, 10), 256, {}, "256x0 pixels"),
        ((600, 2), 256, {}, "256x0 pixels"),
        ((10000, 40), 5000, {}, "5000x20 thumbnail 5000"),
        ((300, 100), 64, {"speed": 0}, "64x20 thumbnail 64"),
    ],
)
def test_thumbnails_libheif_cannot_make(size: tuple[int, int], box: int, kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(ValueError, match=text):
        heifkit.from_bytes("RGB", size, bytes(16)).save(io.BytesIO(), thumbnails=[box], **kwargs)


def test_thumbnail_at_the_limits_is_written() -> None:
    out = io.BytesIO()
    heifkit.from_bytes("RGB", (300, 100), bytes(300 * 100 * 3)).save(out, thumbnails=[96], speed=0, quality=0)
    heif = heifkit.open_heif(out.getvalue())
    assert heif.info["thumbnails"] == [96]
    assert heif.get_thumbnail(0).size == (96, 32)


def test_pillow_image_refused_before_its_pixels_are_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_copy(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the Pillow image was copied before its size was checked")

    monkeypatch.setattr(heifkit.heif, "image_from_pillow", no_copy)  # Pillow's save copies through heif too
    im = Image.new("L", (70000, 16))
    with pytest.raises(ValueError, match="65520"):
        im.save(io.BytesIO(), format="HEIF")
    with pytest.raises(ValueError, match="65520"):
        heifkit.from_bytes("L", (8, 8), bytes(64)).save(io.BytesIO(), append_images=[im])


def test_source_tiling_makes_a_big_image_writable() -> None:
    """An image read from a grid keeps its tile size on re-save (info["tiling"]), so the check uses tiles."""
    heif = heifkit.from_bytes("L", (5000, 16), bytes(5000 * 16))
    heif.info["tiling"] = {"tile_width": 512, "tile_height": 512}
    out = io.BytesIO()
    heif.save(out, **FAST)
    assert heifkit.open_heif(out.getvalue()).size == (5000, 16)
