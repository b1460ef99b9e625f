"""Saving safely: atomic writes to paths, saving over the source file, and clear errors for bad input.

A failed save to a path leaves the target as it was and no temporary file behind; a successful one
replaces the file. Bad sizes, strides and buffers raise ``ValueError`` quickly, with 64-bit-safe size
arithmetic (pillow_heif's CVE-2026-28231 was an overflow here), bad parameters raise ``TypeError``/
``ValueError``, and grid limits are checked before anything is encoded or written.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import CORPUS, ENCODING, LOSSLESS, NativeCalls, max_rss_mb

ORIGINAL = b"original content, not a HEIF file"


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    heifkit.register_heif_opener()


def _rgb(width: int = 24, height: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "target.heic"
    path.write_bytes(ORIGINAL)
    return path


# --- atomic saves ---------------------------------------------------------------------------------------

FAILING_SAVES: dict[str, Any] = {
    "invalid_quality": lambda p: heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes()).save(p, quality=101),
    "invalid_quality_type": lambda p: heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes()).save(p, quality="90"),
    "invalid_enc_param": lambda p: heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes()).save(
        p, enc_params={"no-such-parameter": 1}
    ),
    "invalid_chroma": lambda p: heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes()).save(p, chroma=411),
    "data_too_short": lambda p: heifkit.from_bytes("RGB", (24, 16), bytes(24 * 16 * 3 - 1)).save(p),
    "encode_data_too_short": lambda p: heifkit.encode("RGB", (24, 16), bytes(100), p),
    "empty_image": lambda p: heifkit.from_bytes("RGB", (0, 16), b"").save(p),
    "unknown_format": lambda p: heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes()).save(p, format="JPEG"),
    "invalid_bit_depth": lambda p: heifkit.from_bytes("RGB;16", (24, 16), bytes(24 * 16 * 6)).save(p, bit_depth=9),
    "second_image_bad": lambda p: heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes()).save(
        p, append_images=[heifkit.from_bytes("RGB", (24, 16), b"short")[0]]
    ),
}


@pytest.mark.parametrize("case", sorted(FAILING_SAVES))
def test_failed_save_leaves_target_untouched(target: Path, case: str) -> None:
    before = _listing(target.parent)
    with pytest.raises((ValueError, TypeError)):
        FAILING_SAVES[case](target)
    assert target.read_bytes() == ORIGINAL
    assert _listing(target.parent) == before  # no temporary file left


@pytest.mark.parametrize("case", ["invalid_quality", "data_too_short"])
def test_failed_save_to_new_path_creates_nothing(tmp_path: Path, case: str) -> None:
    path = tmp_path / "new.heic"
    with pytest.raises(ValueError):
        FAILING_SAVES[case](path)
    assert _listing(tmp_path) == []


def test_successful_save_replaces_file(target: Path) -> None:
    os.chmod(target, 0o640)
    a = _rgb()
    heifkit.from_bytes("RGB", (24, 16), a.tobytes()).save(target, **LOSSLESS)
    assert _listing(target.parent) == ["target.heic"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640  # the replaced file's permissions are kept
    assert np.array_equal(np.asarray(heifkit.open_heif(target)), a)


def test_new_file_gets_umask_permissions(tmp_path: Path) -> None:
    path = tmp_path / "new.heic"
    heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes()).save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


def test_save_through_symlink_replaces_the_target(target: Path) -> None:
    """Like ``open(path, "wb")``: the link stays a link and the file it points to gets the new content."""
    link = target.parent / "link.heic"
    link.symlink_to(target.name)
    a = _rgb()
    heifkit.from_bytes("RGB", (24, 16), a.tobytes()).save(link, **LOSSLESS)
    assert link.is_symlink() and os.readlink(link) == target.name
    assert np.array_equal(np.asarray(heifkit.open_heif(target)), a)
    assert _listing(target.parent) == ["link.heic", "target.heic"]
    dangling = target.parent / "dangling.heic"
    dangling.symlink_to("created.heic")
    heifkit.from_bytes("RGB", (24, 16), a.tobytes()).save(dangling, **LOSSLESS)
    assert dangling.is_symlink()
    assert np.array_equal(np.asarray(heifkit.open_heif(target.parent / "created.heic")), a)


def test_save_to_a_directory_fails_cleanly(tmp_path: Path) -> None:
    folder = tmp_path / "folder.heic"
    folder.mkdir()
    with pytest.raises(OSError):
        heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes()).save(folder)
    assert _listing(tmp_path) == ["folder.heic"]
    assert _listing(folder) == []


def test_save_to_str_and_pathlike(tmp_path: Path) -> None:
    a = _rgb()
    heif = heifkit.from_bytes("RGB", (24, 16), a.tobytes())
    heif.save(str(tmp_path / "a.heic"), **LOSSLESS)
    heif.save(tmp_path / "b.heic", **LOSSLESS)
    assert (tmp_path / "a.heic").read_bytes() == (tmp_path / "b.heic").read_bytes()


# --- saving over the file being read --------------------------------------------------------------------


def _write_source(path: Path, n: int = 1) -> list[np.ndarray]:
    arrays = [_rgb(seed=i) for i in range(n)]
    heif = heifkit.HeifFile()
    for a in arrays:
        # per-image parameters of HeifFile.save reach only the primary image: the others get them in info
        heif.add_frombytes("RGB", (24, 16), a.tobytes()).info["matrix_coefficients"] = 0
    heif.save(path, **LOSSLESS)
    return arrays


@pytest.mark.parametrize("n", [1, 3])
def test_heif_file_saved_over_its_source(tmp_path: Path, n: int) -> None:
    path = tmp_path / "src.heic"
    arrays = _write_source(path, n)
    heif = heifkit.open_heif(path)  # lazy: nothing decoded yet
    heif.save(path, **LOSSLESS)
    again = heifkit.open_heif(path)
    assert len(again) == n
    for image, a in zip(again, arrays, strict=True):
        assert np.array_equal(np.asarray(image), a)
    assert _listing(tmp_path) == ["src.heic"]


def test_heif_file_failed_save_over_its_source(tmp_path: Path) -> None:
    path = tmp_path / "src.heic"
    arrays = _write_source(path)
    original = path.read_bytes()
    heif = heifkit.open_heif(path)
    with pytest.raises(ValueError):
        heif.save(path, quality=500)
    assert path.read_bytes() == original
    assert np.array_equal(np.asarray(heif), arrays[0])  # the opened file still decodes


@pytest.mark.parametrize("n", [1, 3])
def test_pillow_saved_over_its_source(tmp_path: Path, n: int) -> None:
    path = tmp_path / "src.heic"
    arrays = _write_source(path, n)
    with Image.open(path) as im:  # not loaded: Pillow truncates the file before the plugin encodes
        im.save(path, format="HEIF", save_all=True, **LOSSLESS)
    with Image.open(path) as im:
        assert getattr(im, "n_frames", 1) == n
        for i, a in enumerate(arrays):
            im.seek(i)
            assert np.array_equal(np.asarray(im.convert("RGB")), a)


def test_pillow_saved_over_its_source_by_extension(tmp_path: Path) -> None:
    path = tmp_path / "src.heic"
    arrays = _write_source(path)
    im = Image.open(path)
    im.save(path, **LOSSLESS)  # format from the .heic extension
    im.close()
    assert np.array_equal(np.asarray(heifkit.open_heif(path)), arrays[0])


# --- bad sizes, strides and buffers ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [(0, 16), (24, 0), (0, 0), (-1, 16), (24, -5)])
def test_empty_images_error_at_save(size: tuple[int, int]) -> None:
    heif = heifkit.from_bytes("RGB", size, b"")  # accepted here, refused when saved
    with pytest.raises(ValueError, match="Empty images"):
        heif.save(io.BytesIO())
    with pytest.raises(ValueError, match="Empty images"):
        heifkit.encode("RGB", size, b"", io.BytesIO())


def test_pillow_empty_image() -> None:
    with pytest.raises(ValueError, match="Empty images"):
        Image.new("RGB", (0, 0)).save(io.BytesIO(), format="HEIF")
    with pytest.raises(ValueError, match="Empty images"):
        heifkit.from_pillow(Image.new("RGB", (0, 5)))


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA;16", "I;16"])
def test_data_shorter_than_stride_times_height(mode: str) -> None:
    bpp = {"RGB": 3, "L": 1, "RGBA;16": 8, "I;16": 2}[mode]
    row = 24 * bpp
    with pytest.raises(ValueError, match="not contain enough data"):
        heifkit.encode(mode, (24, 16), bytes(row * 16 - 1), io.BytesIO())
    with pytest.raises(ValueError, match="not contain enough data"):
        heifkit.encode(mode, (24, 16), bytes(row * 16), io.BytesIO(), stride=row + 4)


def test_last_row_need_not_be_padded() -> None:
    """With a stride, the last row only needs the pixels (like libheif's and numpy's views)."""
    a = _rgb()
    stride = 24 * 3 + 5
    data = b"".join(a[y].tobytes() + b"\0" * 5 for y in range(16))[:-5]
    buf = io.BytesIO()
    heifkit.encode("RGB", (24, 16), data, buf, stride=stride, **LOSSLESS)
    assert np.array_equal(np.asarray(heifkit.open_heif(buf.getvalue())), a)


@pytest.mark.parametrize("stride", [1, 24 * 3 - 1, -1, -(2**31)])
def test_stride_smaller_than_a_row(stride: int) -> None:
    with pytest.raises(ValueError, match="stride"):
        heifkit.encode("RGB", (24, 16), bytes(24 * 16 * 3), io.BytesIO(), stride=stride)


OVERFLOW_CASES = [
    ("RGB", (8, 8), {"stride": 2**31 - 1}),
    ("RGBA;16", (8, 8), {"stride": 2**31 - 1}),
    ("L", (1, 2**31 - 1), {"stride": 2**31 - 1}),
    ("RGB", (46341, 46341), {}),
    ("RGBA", (46341, 46341), {}),
    ("RGBA;16", (46341, 46341), {}),
    ("RGB", (32768, 32768), {}),
    ("RGBA", (32768, 32768), {}),
    ("L", (32768, 32768), {}),
    ("RGB", (2**31 - 1, 2), {}),
    ("RGB", (2**32 + 1, 1), {}),
]


@pytest.mark.parametrize(("mode", "size", "kwargs"), OVERFLOW_CASES, ids=[f"{c[0]}-{c[1]}" for c in OVERFLOW_CASES])
def test_no_integer_overflow(
    mode: str, size: tuple[int, int], kwargs: dict[str, Any], native_calls: NativeCalls
) -> None:
    rss = max_rss_mb()
    for call in (
        lambda: heifkit.encode(mode, size, bytes(4096), io.BytesIO(), **kwargs),
        lambda: heifkit.from_bytes(mode, size, bytes(4096), **kwargs).save(io.BytesIO()),
        lambda: heifkit.from_bytes(mode, size, bytes(4096), **kwargs).save(io.BytesIO(), tile_size=512),
    ):
        with pytest.raises(ValueError):
            call()
    assert native_calls.made(*ENCODING) == {}  # refused before any image was made or encoded
    assert max_rss_mb() - rss < 100  # nothing image-sized was allocated


# --- bad parameters -------------------------------------------------------------------------------------


def test_heif_file_without_images() -> None:
    with pytest.raises(ValueError, match="no images"):
        heifkit.HeifFile().save(io.BytesIO())
    heif = heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes())
    del heif[0]
    with pytest.raises(ValueError, match="no images"):
        heif.save(io.BytesIO())


def test_heif_file_without_images_to_path(target: Path) -> None:
    with pytest.raises(ValueError):
        heifkit.HeifFile().save(target)
    assert target.read_bytes() == ORIGINAL


def test_unknown_save_kwarg() -> None:
    heif = heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes())
    with pytest.raises(TypeError, match="qualty"):
        heif.save(io.BytesIO(), qualty=90)
    with pytest.raises(TypeError):
        heifkit.encode("RGB", (24, 16), _rgb().tobytes(), io.BytesIO(), bogus=True)


def test_image_orientation_kwarg() -> None:
    heif = heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes())
    with pytest.raises(TypeError, match="image_orientation"):
        heif.save(io.BytesIO(), image_orientation=6)
    with pytest.raises(TypeError, match="image_orientation"):
        Image.fromarray(_rgb()).save(io.BytesIO(), format="HEIF", image_orientation=6)


@pytest.mark.parametrize("fp", [None, 123, 1.5, object(), ["a.heic"]], ids=["None", "int", "float", "object", "list"])
def test_fp_of_a_wrong_type(fp: Any) -> None:
    heif = heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes())
    with pytest.raises(TypeError):
        heif.save(fp)
    with pytest.raises(TypeError):
        heifkit.encode("RGB", (24, 16), _rgb().tobytes(), fp)


def test_text_stream_is_refused() -> None:
    with pytest.raises(TypeError):
        heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes()).save(io.StringIO())


def test_data_of_a_wrong_type() -> None:
    with pytest.raises(TypeError):
        heifkit.encode("RGB", (24, 16), [0] * (24 * 16 * 3), io.BytesIO())


def test_enc_params_not_mutated() -> None:
    params = {"x265:ctu": 32}
    heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes()).save(io.BytesIO(), enc_params=params, chroma=444)
    assert params == {"x265:ctu": 32}


def test_preferred_encoder_unknown() -> None:
    with pytest.raises(ValueError, match="no-such-encoder"):
        heifkit.from_bytes("RGB", (24, 16), _rgb().tobytes()).save(io.BytesIO(), encoder="no-such-encoder")


# --- grid limits ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(257 * 2, 2), (2, 257 * 2)], ids=["columns", "rows"])
def test_grid_more_than_256_columns_or_rows(size: tuple[int, int], target: Path) -> None:
    data = bytes(size[0] * size[1])
    with pytest.raises(ValueError, match="256"):
        heifkit.from_bytes("L", size, data).save(io.BytesIO(), tile_size=2)
    with pytest.raises(ValueError, match="256"):
        heifkit.from_bytes("L", size, data).save(target, tile_size=2)
    assert target.read_bytes() == ORIGINAL


def test_grid_256_columns_is_allowed() -> None:
    buf = io.BytesIO()
    heifkit.from_bytes("L", (256 * 8, 8), bytes(256 * 64)).save(buf, tile_size=8, quality=10)
    assert heifkit.open_heif(buf.getvalue()).info["tiling"]["num_columns"] == 256


def test_grid_more_than_1000_items_checked_before_encoding(target: Path, native_calls: NativeCalls) -> None:
    """40 x 40 tiles: refused before a single tile is encoded (that would take a long time) or written."""
    size = (40 * 64, 40 * 64)
    heif = heifkit.from_bytes("L", size, bytes(size[0] * size[1]))
    with pytest.raises(ValueError, match="1000"):
        heif.save(target, tile_size=64)
    assert native_calls.made(*ENCODING) == {}
    assert target.read_bytes() == ORIGINAL
    assert _listing(target.parent) == ["target.heic"]


def test_more_than_1000_items_over_many_images(target: Path, native_calls: NativeCalls) -> None:
    """Items of every image count: 16 grids of 8 x 8 tiles are over the limit together."""
    heif = heifkit.HeifFile()
    for _ in range(16):
        heif.add_frombytes("L", (512, 512), bytes(512 * 512))
    with pytest.raises(ValueError, match="1000"):
        heif.save(target, tile_size=64)
    assert native_calls.made(*ENCODING) == {}
    assert target.read_bytes() == ORIGINAL


def test_saving_over_a_lazily_read_big_file_keeps_it_readable(tmp_path, monkeypatch):
    """Paths over _input.LAZY_READ_THRESHOLD are read by libheif on demand: the rename must not break that."""
    path = tmp_path / "big.heic"
    path.write_bytes((CORPUS / "pheif_zPug_3.heic").read_bytes())
    expected = [np.asarray(image).copy() for image in heifkit.open_heif(path)]
    monkeypatch.setattr(heifkit._read.source, "LAZY_READ_THRESHOLD", 0)
    untouched = heifkit.open_heif(path)  # nothing decoded yet: pixels are still to be read from the file
    heifkit.open_heif(path).save(path, quality=30)
    for image, pixels in zip(untouched, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(image), pixels)
    assert len(heifkit.open_heif(path)) == 3
