"""heifkit's own YCbCr -> 8-bit RGB(A) conversion (``_yuv``) gives libheif's bytes, exactly.

Every corpus file the conversion takes (what calls ``hk_yuv_to_rgb``, counted) is compared byte for
byte with ``oracle.decode_rgb`` (libheif's own decode through ctypes, no heifkit code): as heifkit's
default mode (RGB or RGBA), in BGR order, into Pillow (4-byte RGB mapped without a copy), and as regions
whose corners fall on odd pixels (chroma pairs split). Generated images (random sizes, odd ones included;
HEIC and AVIF; lossy and lossless; 4:2:0, 4:2:2, 4:4:4; 8, 10 and 12 bits; full and limited range; several
matrices; with and without alpha) are compared the same way. A conversion off by one in a single sample
fails these tests.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

import heifkit
import oracle
from conftest import CORPUS, corpus_params, counting_native_calls, decodable_files
from heifkit._decode import yuv as _yuv

# files the conversion must take (one of each path: integer 4:2:0, 10-bit 4:2:0, float 4:2:2 10-bit, float
# limited range 4:2:0, float 4:4:4 with alpha, a grid decoded tile by tile, odd sizes)
MUST_CONVERT = {
    "pheif_pug.heic",
    "libheif_example.avif",
    "libheif_example.heic",
    "pheif_RGB_10__128x128.heif",
    "pheif_cat.hif",
    "av1avif-linku_fox.profile0.8bpc.yuv420.odd-width.odd-height.avif",
    "av1avif-linku_fox.profile2.12bpc.yuv422.odd-width.odd-height.avif",
    "libavif_draw_points_idat.avif",
    "libheif_rainbow-451x461.heic",
}
# files it must leave to libheif: monochrome, matrix 12 with PQ
MUST_NOT_CONVERT = {"pheif_L_8__128x128.heif", "libavif_cosmos1650_yuv444_10bpc_p3pq.avif"}
SKIP = {"pheif_200MP.heic"}
T = TypeVar("T")  # decoded by the conformance test; too big to decode four more times here


def _expected(path: Path | str, index: int | None = None) -> np.ndarray:
    ref = oracle.decode_rgb(path, index)
    channels = 4 if ref.mode == "RGBA" else 3
    return np.frombuffer(ref.data, np.uint8).reshape(ref.height, ref.width, channels)


def _converted_by_us(fn: Callable[[], T]) -> tuple[T, bool]:
    """fn()'s result, and whether heifkit's conversion converted anything during it."""
    with counting_native_calls() as calls:
        result = fn()
    return result, calls.counts["hk_yuv_to_rgb"] > 0


def _compare(path: Path | str, data: bytes | None = None) -> bool:
    """Compare heifkit's decodes of the primary image of ``path`` (or of ``data``) with libheif's; whether
    heifkit's conversion took the image."""
    source = io.BytesIO(data) if data is not None else path
    expected = _expected(path)
    heif, took = _converted_by_us(lambda: heifkit.open_heif(source, convert_hdr_to_8bit=True))
    image = heif[heif.primary_index]
    pixels, took = _converted_by_us(lambda: np.asarray(image))
    if image.mode not in ("RGB", "RGBA"):  # monochrome: never converted by heifkit (compared elsewhere)
        assert not took
        return False
    assert pixels.shape == expected.shape
    np.testing.assert_array_equal(pixels, expected)
    if not took:
        return False
    bgr = heifkit.open_heif(io.BytesIO(data) if data is not None else path, bgr_mode=True)
    np.testing.assert_array_equal(np.asarray(bgr[bgr.primary_index])[..., [2, 1, 0]], expected[..., :3])
    pil = heifkit.open_heif(io.BytesIO(data) if data is not None else path)
    pil_image = pil[pil.primary_index].to_pillow()
    assert pil_image.tobytes() == expected.tobytes()
    width, height = image.size
    if width > 2 and height > 2:  # a region with odd corners (tile by tile for grids)
        box = (1, 1, width - (width > 3), height - (height > 3))
        region = np.asarray(heifkit.open_heif(source)[heif.primary_index].crop(box))
        np.testing.assert_array_equal(region, expected[box[1] : box[3], box[0] : box[2]])
    return True


@pytest.mark.parametrize("name", corpus_params(n for n in decodable_files() if n not in SKIP))
def test_corpus_file_matches_libheif(name: str) -> None:
    took = _compare(CORPUS / name)
    if name in MUST_CONVERT:
        assert took, f"{name} should be converted by heifkit"
    if name in MUST_NOT_CONVERT:
        assert not took, f"{name} should be left to libheif"


def test_an_image_it_does_not_take_keeps_libheif_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    path = CORPUS / "libheif_example.avif"
    monkeypatch.setattr(_yuv, "may_convert", lambda *args: False)
    pixels, took = _converted_by_us(lambda: np.asarray(heifkit.open_heif(path)))
    assert not took
    np.testing.assert_array_equal(pixels, _expected(path))


def _picture(width: int, height: int, seed: int, alpha: bool) -> Image.Image:
    """Noise over gradients, with saturated corners: chroma varies from pixel to pixel and clamps."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1), (xx + yy) % 256], -1)
    noise = rng.integers(-90, 90, (height, width, 3))
    rgb = np.clip(base + noise, 0, 255).astype(np.uint8)
    rgb[0, 0], rgb[-1, -1] = (255, 0, 255), (0, 255, 0)
    if alpha:
        a = rng.integers(0, 256, (height, width, 1), dtype=np.uint8)
        return Image.fromarray(np.concatenate([rgb, a], -1), "RGBA")
    return Image.fromarray(rgb, "RGB")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 67),
    height=st.integers(1, 67),
    seed=st.integers(0, 2**16),
    fmt=st.sampled_from(["HEIF", "AVIF"]),
    chroma=st.sampled_from([420, 422, 444]),
    bits=st.sampled_from([8, 10, 12]),
    lossless=st.booleans(),
    matrix=st.sampled_from([1, 2, 5, 6, 9]),
    full_range=st.booleans(),
    alpha=st.booleans(),
)
def test_generated_images_match_libheif(
    tmp_path_factory: pytest.TempPathFactory,
    width: int,
    height: int,
    seed: int,
    fmt: str,
    chroma: int,
    bits: int,
    lossless: bool,
    matrix: int,
    full_range: bool,
    alpha: bool,
) -> None:
    nclx = {"color_primaries": 1, "transfer_characteristics": 13, "matrix_coefficients": matrix}
    nclx["full_range_flag"] = int(full_range)
    buf = io.BytesIO()
    image = heifkit.from_pillow(_picture(width, height, seed, alpha))
    try:
        image.save(buf, format=fmt, quality=-1 if lossless else 60, chroma=chroma, bit_depth=bits, nclx_profile=nclx)
    except heifkit.HeifError:  # an encoder without this combination
        assume(False)
    path = tmp_path_factory.mktemp("yuv") / f"image.{fmt.lower()}"
    path.write_bytes(buf.getvalue())
    _compare(path, buf.getvalue())
