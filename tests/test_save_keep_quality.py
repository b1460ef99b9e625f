"""``save(quality="keep")``: each image read from a file is encoded again at the quality its coded stream says
(``HeifImage.coded_quality()``), so a forced re-encode neither bloats nor degrades it; images with no known
quality get ``options.QUALITY`` (else libheif's 50), whatever their order in the file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import ZPUG
from heifkit import options

FAST = {"HEIF": {"preset": "ultrafast"}, "AVIF": {"speed": 9}}


def _picture() -> Image.Image:
    return heifkit.open_heif(ZPUG).to_pillow().resize((192, 144))


def _saved(image: heifkit.HeifFile, fmt: str, **params: object) -> heifkit.HeifFile:
    out = io.BytesIO()
    image.save(out, format=fmt, enc_params=FAST[fmt], **params)
    return heifkit.open_heif(out.getvalue())


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
@pytest.mark.parametrize("quality", [25, 80])
def test_keep_encodes_each_image_at_its_coded_quality(fmt: str, quality: int) -> None:
    source = _saved(heifkit.from_pillow(_picture()), fmt, quality=quality)
    estimate = source[0].coded_quality()
    assert estimate is not None and abs(estimate["quality"] - quality) <= estimate["error"]
    again = _saved(source, fmt, quality="keep")
    assert again[0].coded_quality()["quality"] == estimate["quality"]  # type: ignore[index]


def test_keep_follows_each_image_and_defaults_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    low = _saved(heifkit.from_pillow(_picture()), "HEIF", quality=20)
    high = _saved(heifkit.from_pillow(_picture().rotate(90)), "HEIF", quality=90)
    monkeypatch.setattr(options, "QUALITY", None)
    mixed = heifkit.HeifFile()
    mixed.add_from_heif(low[0])
    mixed.add_from_pillow(_picture())  # made from pixels: no coded quality, libheif's default
    mixed.add_from_heif(high[0])
    qualities = [im.coded_quality()["quality"] for im in _saved(mixed, "HEIF", quality="keep")]  # type: ignore[index]
    assert abs(qualities[0] - 20) <= 2 and abs(qualities[1] - 50) <= 2 and abs(qualities[2] - 90) <= 4


def test_keep_keeps_a_lossless_image_lossless() -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (48, 64, 3), np.uint8)
    lossless = {"chroma": 444, "matrix_coefficients": 0}
    source = _saved(heifkit.from_bytes("RGB", (64, 48), pixels.tobytes()), "HEIF", quality=-1, **lossless)
    again = _saved(source, "HEIF", quality="keep")
    assert again[0].coded_quality()["lossless"]  # type: ignore[index]
    assert np.array_equal(np.asarray(again[0]), pixels)


def test_keep_through_the_pillow_plugin() -> None:
    heifkit.register_heif_opener()
    with Image.open(io.BytesIO(_bytes(heifkit.from_pillow(_picture())))) as im:
        out = io.BytesIO()
        im.save(out, format="HEIF", quality="keep", enc_params=FAST["HEIF"])
    assert abs(heifkit.open_heif(out.getvalue())[0].coded_quality()["quality"] - 30) <= 2  # type: ignore[index]


def _bytes(f: heifkit.HeifFile) -> bytes:
    out = io.BytesIO()
    f.save(out, format="HEIF", quality=30, enc_params=FAST["HEIF"])
    return out.getvalue()


def test_keep_is_refused_where_it_means_nothing() -> None:
    with pytest.raises(ValueError, match="quality='keep' applies to still images"):
        heifkit.save_sequence([_picture()] * 2, io.BytesIO(), durations=40, quality="keep")
    with pytest.raises(TypeError, match="or 'keep', not 'best'"):
        heifkit.from_pillow(_picture()).save(io.BytesIO(), quality="best")
