"""HDR through conversions: ``heifkit convert --hdr`` keeps an iPhone photo's HDR rendition from HEIC to AVIF and
back (its Apple gain map computed again as an ISO 21496-1 ``tmap`` in each target's codec), writes PQ, or the
SDR picture. The photo is a lossless crop of pug.heic (its gain map and EXIF maker note kept), to stay fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import heifkit
from heifkit import batch
from heifkit._decode import hdr

CORPUS = Path(__file__).parent / "corpus"


def pq_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two linear images coded in PQ at 10 bits (the HDR signal a display gets)."""
    x, y = hdr.from_linear(a, 16) * 1023, hdr.from_linear(b, 16) * 1023
    return float(10 * np.log10(1023**2 / np.mean((x.astype(np.float64) - y) ** 2)))


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    f = heifkit.open_heif(CORPUS / "pheif_pug.heic")
    f[0] = f[0].crop((2048, 0, 2560, 512), lossless=True)  # 512x512 of the sky, grid tiles as stored
    path = tmp_path_factory.mktemp("hdr") / "photo.heic"
    f.save(path)
    return path


def convert(source: Path, out: Path, **options: object) -> Path:
    (result,) = batch.convert([source], out.parent, format=out.suffix[1:], **options)
    assert result.ok, result.error
    return Path(result.outputs[0])


def test_the_source_is_hdr(photo: Path) -> None:
    image = heifkit.open_heif(photo)[0]
    assert image.info["gain_maps"] and image.to_hdr().max() > 1.2  # brighter than SDR white


def test_heic_to_avif_to_heic_keeps_the_hdr_rendition(photo: Path, tmp_path: Path) -> None:
    source = heifkit.open_heif(photo)[0].to_hdr()
    avif = convert(photo, tmp_path / "a" / "photo.avif")
    f = heifkit.open_heif(avif)
    (gain_map,) = f.info["gain_maps"]
    assert gain_map.info["tmap"] is not None  # ISO 21496-1, coded in AV1
    assert pq_psnr(f[0].to_hdr(), source) >= 32
    back = convert(avif, tmp_path / "b" / "photo.heic")
    g = heifkit.open_heif(back)
    (gain_map,) = g.info["gain_maps"]
    assert gain_map.info["tmap"] is not None
    assert pq_psnr(g[0].to_hdr(), source) >= 32
    # the SDR picture stays the SDR picture
    assert pq_psnr(g[0].to_hdr(headroom=0), heifkit.open_heif(photo)[0].to_hdr(headroom=0)) >= 32


def test_pq_and_sdr(photo: Path, tmp_path: Path) -> None:
    source = heifkit.open_heif(photo)[0]
    pq = heifkit.open_heif(convert(photo, tmp_path / "pq" / "photo.avif", hdr="pq"))
    assert pq.info["nclx_profile"]["transfer_characteristics"] == 16 and not pq.info["gain_maps"]
    assert pq.info["content_light_level"]["max_content_light_level"] > 203
    assert pq_psnr(pq[0].to_hdr(), source.to_hdr()) >= 32
    sdr = heifkit.open_heif(convert(photo, tmp_path / "sdr" / "photo.heic", hdr="sdr"))
    assert not sdr.info["gain_maps"] and sdr[0].to_hdr().max() <= 1.0
    assert pq_psnr(sdr[0].to_hdr(), source.to_hdr(headroom=0)) >= 32


def test_an_sdr_photo_converts_as_before(tmp_path: Path) -> None:
    out = convert(CORPUS / "pheif_RGB_8__29x100.heif", tmp_path / "x" / "small.avif")
    assert not heifkit.open_heif(out).info["gain_maps"]


def test_bad_hdr_option() -> None:
    with pytest.raises(ValueError, match="hdr must be one of"):
        batch.ConvertOptions(format="avif", hdr="bright")
    with pytest.raises(ValueError, match="writes HEIC or AVIF"):
        batch.ConvertOptions(format="jpeg", hdr="pq")


def test_the_pillow_plugin_opens_at_a_headroom(photo: Path) -> None:
    from PIL import Image

    image = heifkit.open_heif(photo)[0]
    try:
        heifkit.register_heif_opener(hdr_headroom=0)
        with Image.open(photo) as sdr:
            assert sdr.mode == "RGB" and sdr.size == image.size
            assert np.array_equal(np.asarray(sdr), np.asarray(image.to_pillow_at(0)))
            # an SDR base shown at headroom 0 is the base itself, up to the float round trip
            assert np.abs(np.asarray(sdr).astype(int) - np.asarray(image.to_pillow())[:, :, :3]).max() <= 1
        heifkit.register_heif_opener(hdr_headroom=1.8)
        with Image.open(photo) as bright:
            expected = image.to_hdr(1.8) / 2**1.8
            shown = hdr.to_linear(np.asarray(bright).astype(np.float32) / 255, 13)
            assert np.abs(shown - np.clip(expected, 0, 1)).max() < 0.02
    finally:
        heifkit.options.HDR_HEADROOM = None
