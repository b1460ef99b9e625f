"""Grid (tiled) encoding: ``tile_size``, ``options.GRID_TILE_SIZE`` and the source's tile size on re-save.

A grid is written when the tile size is positive and the image is larger than one tile, except for
images with alpha (libheif's grid API has no alpha tiles), AVIF with tiles under 64 px, and AVIF with
subsampled chroma and odd sizes; those fall back to a single image. Partial edge tiles are padded, and
the padding must not show: sizes that are not multiples of the tile are checked pixel for pixel
(lossless: ``quality=-1, chroma=444, matrix_coefficients=0``). Metadata and colour profiles are attached
to the grid image.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageCms

import heifkit
from conftest import AMVE, CLLI, LOSSLESS, MDCV
from heifkit import options

FORMATS = ["HEIF", "AVIF"]
# format -> (image size, tile size): not multiples of the tile, and AVIF tiles at least 64 px
GRID_CASES = {"HEIF": ((100, 70), 32), "AVIF": ((150, 101), 64)}


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    heifkit.register_heif_opener()


@pytest.fixture
def restore_tile_option():
    saved = options.GRID_TILE_SIZE
    yield
    options.GRID_TILE_SIZE = saved


def _pixels(size: tuple[int, int], channels: int = 3, seed: int = 7, dtype: Any = np.uint8) -> np.ndarray:
    width, height = size
    top = 65536 if dtype == np.uint16 else 256
    a = np.random.default_rng(seed).integers(0, top, (height, width, channels)).astype(dtype)
    return a[..., 0] if channels == 1 else a


def _save(heif: heifkit.HeifFile, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    heif.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _tiling(size: tuple[int, int], tile: int) -> dict[str, int]:
    return {
        "num_columns": -(-size[0] // tile),
        "num_rows": -(-size[1] // tile),
        "tile_width": tile,
        "tile_height": tile,
        "image_width": size[0],
        "image_height": size[1],
    }


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_grid_lossless_edges(fmt: str, mode: str) -> None:
    size, tile = GRID_CASES[fmt]
    a = _pixels(size, 3 if mode == "RGB" else 1)
    data = _save(heifkit.from_bytes(mode, size, a.tobytes()), fmt, tile_size=tile, **LOSSLESS)
    heif = heifkit.open_heif(data)
    assert heif.mimetype == ("image/avif" if fmt == "AVIF" else "image/heic")
    assert heif.info["tiling"] == _tiling(size, tile)
    assert heif.size == size and heif.mode == mode
    got = np.asarray(heif)
    assert np.array_equal(got, a)  # the right column and bottom row (partial tiles) included
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == size
        assert np.array_equal(np.asarray(im), a)


@pytest.mark.parametrize(("size", "tile"), [((100, 20), 32), ((20, 100), 32), ((65, 65), 64), ((33, 64), 32)])
def test_grid_one_row_or_column(size: tuple[int, int], tile: int) -> None:
    """Larger than a tile in one direction only, or by a single pixel: still a grid, edges exact."""
    a = _pixels(size)
    heif = heifkit.open_heif(_save(heifkit.from_bytes("RGB", size, a.tobytes()), "HEIF", tile_size=tile, **LOSSLESS))
    assert heif.info["tiling"] == _tiling(size, tile)
    assert np.array_equal(np.asarray(heif), a)


@pytest.mark.parametrize("fmt", FORMATS)
def test_grid_lossy_edges_close(fmt: str) -> None:
    """Lossy 4:2:0 grid of a smooth image: edge tiles are as good as inner ones (no padding bleed)."""
    size, tile = GRID_CASES[fmt]
    if fmt == "AVIF":
        size = (150, 100)  # 4:2:0 AVIF grids need even sizes
    x = np.linspace(0, 255, size[0])[None, :, None]
    y = np.linspace(0, 255, size[1])[:, None, None]
    a = np.concatenate([np.broadcast_to(x, (size[1], size[0], 1)), np.broadcast_to(y, (size[1], size[0], 1))], 2)
    a = np.concatenate([a, 255 - a[..., :1]], 2).astype(np.uint8)
    data = _save(heifkit.from_bytes("RGB", size, a.tobytes()), fmt, tile_size=tile, quality=90)
    heif = heifkit.open_heif(data)
    assert heif.info["tiling"]["tile_width"] == tile
    diff = np.abs(np.asarray(heif).astype(int) - a.astype(int))
    assert diff.mean() < 2.0
    assert diff[-1].mean() < 4.0 and diff[:, -1].mean() < 4.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_grid_with_padded_stride(fmt: str) -> None:
    size, tile = GRID_CASES[fmt]
    a = _pixels(size)
    row = size[0] * 3
    stride = row + 13
    data = b"".join(a[y].tobytes() + b"\xee" * 13 for y in range(size[1]))
    out = _save(heifkit.from_bytes("RGB", size, data, stride=stride), fmt, tile_size=tile, **LOSSLESS)
    heif = heifkit.open_heif(out)
    assert heif.info["tiling"]["tile_width"] == tile
    assert np.array_equal(np.asarray(heif), a)


@pytest.mark.parametrize("fmt", FORMATS)
def test_rgba_falls_back_to_single_image(fmt: str) -> None:
    size, tile = GRID_CASES[fmt]
    a = _pixels(size, 4)
    heif = heifkit.open_heif(_save(heifkit.from_bytes("RGBA", size, a.tobytes()), fmt, tile_size=tile, **LOSSLESS))
    assert "tiling" not in heif.info
    assert np.array_equal(np.asarray(heif), a)


@pytest.mark.parametrize("mode", ["LA", "RGBa"])
def test_other_alpha_modes_fall_back(mode: str) -> None:
    channels = {"LA": 2, "RGBa": 4}[mode]
    a = _pixels((100, 70), channels)
    heif = heifkit.open_heif(_save(heifkit.from_bytes(mode, (100, 70), a.tobytes()), "HEIF", tile_size=32))
    assert "tiling" not in heif.info


@pytest.mark.parametrize("size", [(32, 32), (64, 64), (64, 20), (10, 64)])
@pytest.mark.parametrize("fmt", FORMATS)
def test_small_images_bypass_grid(fmt: str, size: tuple[int, int]) -> None:
    """Images not larger than one tile are written as a single image."""
    a = _pixels(size)
    heif = heifkit.open_heif(_save(heifkit.from_bytes("RGB", size, a.tobytes()), fmt, tile_size=64, **LOSSLESS))
    assert "tiling" not in heif.info
    assert np.array_equal(np.asarray(heif), a)


def test_avif_small_tiles_fall_back() -> None:
    a = _pixels((100, 70))
    heif = heifkit.open_heif(_save(heifkit.from_bytes("RGB", (100, 70), a.tobytes()), "AVIF", tile_size=32, **LOSSLESS))
    assert "tiling" not in heif.info
    assert np.array_equal(np.asarray(heif), a)


@pytest.mark.parametrize(("size", "tile", "grid"), [((150, 101), 64, False), ((150, 100), 64, True)])
def test_avif_subsampled_odd_sizes_fall_back(size: tuple[int, int], tile: int, grid: bool) -> None:
    a = _pixels(size)
    heif = heifkit.open_heif(_save(heifkit.from_bytes("RGB", size, a.tobytes()), "AVIF", tile_size=tile, quality=80))
    assert ("tiling" in heif.info) == grid
    # monochrome has no chroma to subsample: odd sizes are fine
    g = _pixels(size, 1)
    mono = heifkit.open_heif(_save(heifkit.from_bytes("L", size, g.tobytes()), "AVIF", tile_size=tile, quality=80))
    assert mono.info["tiling"]["tile_width"] == tile


@pytest.mark.parametrize("fmt", FORMATS)
def test_grid_tile_size_option(fmt: str, restore_tile_option: None) -> None:
    size, tile = GRID_CASES[fmt]
    a = _pixels(size)
    options.GRID_TILE_SIZE = tile
    heif = heifkit.open_heif(_save(heifkit.from_bytes("RGB", size, a.tobytes()), fmt, **LOSSLESS))
    assert heif.info["tiling"] == _tiling(size, tile)
    assert np.array_equal(np.asarray(heif), a)
    # an explicit tile_size=0 wins over the option
    plain = heifkit.open_heif(_save(heifkit.from_bytes("RGB", size, a.tobytes()), fmt, tile_size=0))
    assert "tiling" not in plain.info


def test_grid_tile_size_default_is_off() -> None:
    assert options.GRID_TILE_SIZE == 0
    heif = heifkit.open_heif(_save(heifkit.from_bytes("RGB", (100, 70), _pixels((100, 70)).tobytes()), "HEIF"))
    assert "tiling" not in heif.info


def test_register_opener_grid_tile_size(restore_tile_option: None) -> None:
    heifkit.register_heif_opener(grid_tile_size=32)
    assert options.GRID_TILE_SIZE == 32
    buf = io.BytesIO()
    Image.fromarray(_pixels((100, 70))).save(buf, format="HEIF", quality=80)
    assert heifkit.open_heif(buf.getvalue()).info["tiling"]["tile_width"] == 32


def test_pillow_save_tile_size() -> None:
    a = _pixels((100, 70))
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="HEIF", tile_size=32, **LOSSLESS)
    heif = heifkit.open_heif(buf.getvalue())
    assert heif.info["tiling"] == _tiling((100, 70), 32)
    assert np.array_equal(np.asarray(heif), a)


# --- re-saving a grid -----------------------------------------------------------------------------------


@pytest.fixture
def grid_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    a = _pixels((100, 70))
    path = tmp_path / "grid.heic"
    heifkit.from_bytes("RGB", (100, 70), a.tobytes()).save(path, tile_size=32, **LOSSLESS)
    return path, a


def test_resave_keeps_source_tile_size(grid_file: tuple[Path, np.ndarray], restore_tile_option: None) -> None:
    path, a = grid_file
    options.GRID_TILE_SIZE = 48  # the source's tile size has priority over the option
    out = heifkit.open_heif(_save(heifkit.open_heif(path), "HEIF", **LOSSLESS))
    assert out.info["tiling"] == _tiling((100, 70), 32)
    assert np.array_equal(np.asarray(out), a)


def test_resave_tile_size_zero_disables(grid_file: tuple[Path, np.ndarray]) -> None:
    path, a = grid_file
    out = heifkit.open_heif(_save(heifkit.open_heif(path), "HEIF", tile_size=0, **LOSSLESS))
    assert "tiling" not in out.info
    assert np.array_equal(np.asarray(out), a)


def test_resave_explicit_tile_size_overrides(grid_file: tuple[Path, np.ndarray]) -> None:
    path, a = grid_file
    out = heifkit.open_heif(_save(heifkit.open_heif(path), "HEIF", tile_size=64, **LOSSLESS))
    assert out.info["tiling"] == _tiling((100, 70), 64)
    assert np.array_equal(np.asarray(out), a)


def test_resave_through_pillow_keeps_tile_size(grid_file: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, a = grid_file
    out = tmp_path / "out.heic"
    with Image.open(path) as im:
        assert im.info["tiling"]["tile_width"] == 32
        im.save(out, format="HEIF", **LOSSLESS)
    heif = heifkit.open_heif(out)
    assert heif.info["tiling"]["tile_width"] == 32
    assert np.array_equal(np.asarray(heif), a)
    with Image.open(path) as im:
        im.save(out, format="HEIF", tile_size=0)
    assert "tiling" not in heifkit.open_heif(out).info


def test_resave_add_from_heif_keeps_tile_size(grid_file: tuple[Path, np.ndarray]) -> None:
    path, a = grid_file
    new = heifkit.HeifFile()
    new.add_from_heif(heifkit.open_heif(path))
    out = heifkit.open_heif(_save(new, "HEIF", **LOSSLESS))
    assert out.info["tiling"]["tile_width"] == 32


# --- metadata on grids ----------------------------------------------------------------------------------


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "heifkit"
    exif[0x0110] = "grid test"
    return exif.tobytes()


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
HDR = {"content_light_level": CLLI, "mastering_display_colour_volume": MDCV, "ambient_viewing_environment": AMVE}


@pytest.mark.parametrize("fmt", FORMATS)
def test_grid_keeps_exif_xmp_icc_pasp_hdr(fmt: str) -> None:
    size, tile = GRID_CASES[fmt]
    a = _pixels(size)
    kwargs = {
        "exif": _exif(),
        "xmp": XMP,
        "icc_profile": SRGB_ICC,
        "pixel_aspect_ratio": (4, 3),
        "metadata": [{"type": "iptc", "content_type": "", "data": b"\x1c\x02\x00\x00\x02\x00\x04"}],
        **HDR,
    }
    data = _save(heifkit.from_bytes("RGB", size, a.tobytes()), fmt, tile_size=tile, **LOSSLESS, **kwargs)
    for box in (b"clli", b"mdcv", b"amve", b"pasp"):
        assert box in data
    heif = heifkit.open_heif(data)
    info = heif.info
    assert info["tiling"]["tile_width"] == tile
    assert info["exif"] == kwargs["exif"]
    exif = Image.Exif()
    exif.load(info["exif"])
    assert exif[0x010F] == "heifkit"
    assert info["xmp"] == XMP
    assert info["icc_profile"] == SRGB_ICC and info["icc_profile_type"] == "prof"
    assert info["pixel_aspect_ratio"] == (4, 3)
    assert info["metadata"] == kwargs["metadata"]
    for key, value in HDR.items():
        assert info[key] == value, key
    assert np.array_equal(np.asarray(heif), a)
    # and again after a re-save that keeps the grid
    again = heifkit.open_heif(_save(heif, fmt, **LOSSLESS))
    assert again.info["tiling"]["tile_width"] == tile
    for key in ("exif", "xmp", "icc_profile", "pixel_aspect_ratio", "metadata", *HDR):
        assert again.info[key] == info[key], key
    assert np.array_equal(np.asarray(again), a)


@pytest.mark.parametrize("fmt", FORMATS)
def test_grid_keeps_nclx(fmt: str) -> None:
    size, tile = GRID_CASES[fmt]
    nclx = {"color_primaries": 9, "transfer_characteristics": 16, "matrix_coefficients": 9, "full_range_flag": 0}
    a = _pixels(size)
    data = _save(heifkit.from_bytes("RGB", size, a.tobytes()), fmt, tile_size=tile, quality=90, chroma=444, **nclx)
    heif = heifkit.open_heif(data)
    assert heif.info["tiling"]["tile_width"] == tile
    assert {k: heif.info["nclx_profile"][k] for k in nclx} == nclx
    again = heifkit.open_heif(_save(heif, fmt, quality=90, chroma=444))
    assert again.info["tiling"]["tile_width"] == tile
    assert {k: again.info["nclx_profile"][k] for k in nclx} == nclx


def test_grid_thumbnails() -> None:
    a = _pixels((100, 70))
    heif = heifkit.open_heif(_save(heifkit.from_bytes("RGB", (100, 70), a.tobytes()), "HEIF", tile_size=32,
                                   thumbnails=[40, 16], quality=80))  # fmt: skip
    assert heif.info["tiling"]["tile_width"] == 32
    assert sorted(heif.info["thumbnails"]) == [16, 40]


# --- 16-bit input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "channels"), [("RGB;16", 3), ("I;16", 1), ("L;16", 1)])
@pytest.mark.parametrize("fmt", FORMATS)
def test_grid_sixteen_bit(fmt: str, mode: str, channels: int) -> None:
    size, tile = GRID_CASES[fmt]
    a = _pixels(size, channels, dtype=np.uint16)
    data = _save(heifkit.from_bytes(mode, size, a.tobytes()), fmt, tile_size=tile, **LOSSLESS)
    heif = heifkit.open_heif(data, convert_hdr_to_8bit=False, hdr_to_16bit=False)
    assert heif.info["tiling"]["tile_width"] == tile
    assert heif.info["bit_depth"] == 10
    assert heif.mode == ("RGB;10" if channels == 3 else "I;10")
    assert np.array_equal(np.asarray(heif).astype(np.int64), a.astype(np.int64) >> 6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_grid_sixteen_bit_to_12(fmt: str) -> None:
    size, tile = GRID_CASES[fmt]
    a = _pixels(size, 3, dtype=np.uint16)
    data = _save(heifkit.from_bytes("RGB;16", size, a.tobytes()), fmt, tile_size=tile, save_to_12bit=True, **LOSSLESS)
    heif = heifkit.open_heif(data, convert_hdr_to_8bit=False, hdr_to_16bit=False)
    assert heif.info["tiling"]["tile_width"] == tile
    assert heif.info["bit_depth"] == 12
    assert np.array_equal(np.asarray(heif).astype(np.int64), a.astype(np.int64) >> 4)


def test_grid_pillow_sixteen_bit_grey() -> None:
    a = _pixels((100, 70), 1, dtype=np.uint16)
    img = Image.frombytes("I;16", (100, 70), a.astype("<u2").tobytes())
    buf = io.BytesIO()
    img.save(buf, format="HEIF", tile_size=32, **LOSSLESS)
    heif = heifkit.open_heif(buf.getvalue(), convert_hdr_to_8bit=False)
    assert heif.info["tiling"]["tile_width"] == 32
    assert heif.mode == "I;16"
    assert np.array_equal(np.asarray(heif).astype(np.int64) >> 6, a.astype(np.int64) >> 6)


def test_grid_high_bit_depth_resave_keeps_depth(tmp_path: Path) -> None:
    """A 10-bit grid opened as 16-bit and re-saved stays a 10-bit grid with the same samples."""
    size = (100, 70)
    a = _pixels(size, 3, dtype=np.uint16)
    path = tmp_path / "g10.heic"
    heifkit.from_bytes("RGB;16", size, a.tobytes()).save(path, tile_size=32, **LOSSLESS)
    src = heifkit.open_heif(path, convert_hdr_to_8bit=False)
    out = heifkit.open_heif(_save(src, "HEIF", **LOSSLESS), convert_hdr_to_8bit=False, hdr_to_16bit=False)
    assert out.info["tiling"]["tile_width"] == 32
    assert out.info["bit_depth"] == 10
    assert np.array_equal(np.asarray(out).astype(np.int64), a.astype(np.int64) >> 6)
