"""Corpus round trips: open -> save -> open keeps the structure, the metadata and (nearly) the pixels.

Every decodable corpus file whose primary image is at most 1.5 MP and that has at most 8 top-level images
is re-encoded; larger files are skipped because x265 needs ~16 s for a 12 MP image on the 2-core test
machine (the largest included file is about 1.3 MP). The files are opened with
``convert_hdr_to_8bit=False`` so 10/12-bit images are re-encoded at their own bit depth.

The output format follows the source codec: AVIF for AV1 sources, HEIF (HEVC) for everything else (HEVC,
and the one JPEG-coded file, since heifkit has no JPEG encoder).

Lossy run (``quality=90``): PSNR >= 40 dB per image on 8-bit data. The source's chroma subsampling is
passed as ``chroma=`` (heifkit, like pillow_heif, defaults to 4:2:0 whatever the source was; re-saving a
4:4:4 file at 4:2:0 is a deliberate loss of colour resolution that costs up to 20 dB on the small
saturated libavif test images, which is not what this test measures). Two files stay below 40 dB for
reasons of their content, and are marked ``xfail(strict=True)``, see ``KNOWN_LOW_PSNR``.

Lossless run (``quality=-1, chroma=444, matrix_coefficients=0``): bit-exact on a subset of small files.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

import heifkit
from conftest import CORPUS, QUICK_FILES, corpus_params, decodable_files, manifest, psnr

MAX_PIXELS = 1_500_000
MAX_IMAGES = 8
QUALITY = 90
MIN_PSNR = 40.0

# Files that legitimately stay below MIN_PSNR at quality=90 (investigated; see the report in the PR):
KNOWN_LOW_PSNR = {
    # AV1 film grain synthesis: the decoded source carries synthesized noise that a quality-90 re-encode
    # cannot keep (39.6 dB at q90, 42.1 dB at q95).
    "av1avif-xiph_abandoned_filmgrain.avif": "film grain noise is baked into the decoded pixels (39.6 dB)",
    # A 4x4 4:2:0 image whose saturated colours change within each 2x2 chroma block: re-subsampling the
    # already upsampled chroma loses ~28 dB even when the re-encode is lossless at 4:2:0.
    "libavif_extended_pixi.avif": "4x4 image, 4:2:0 re-subsampling of high-frequency chroma (28 dB)",
}

# Small files for the bit-exact lossless run: 8/10/12-bit, grey, alpha, multi-image, EXIF/XMP, ICC, HDR.
LOSSLESS_FILES = [
    "pheif_L_8__128x128.heif",
    "pheif_L_10__128x128.heif",
    "pheif_RGB_12__128x128.heif",
    "pheif_RGBA_10__128x128.heif",
    "pheif_LA_8__128x128.heif",
    "pheif_zPug_3.heic",
    "pheif_L_exif_xmp_iptc.heic",
    "pheif_L_xmp_latin1.heic",
    "pheif_RGB_8__29x100.heif",
    "libheif-fuzz_colors-with-alpha-thumbnail.heic",
    "libavif_colors_hdr_p3.avif",
    "libavif_clop_irot_imor.avif",
    "libavif_draw_points_idat.avif",
    "libavif_white_1x1.avif",
    "pillow_icc_profile.avif",
    "pillow_transparency.avif",
]

_ROWS = {r["file"]: r for r in manifest()}


def _select() -> list[str]:
    """Decodable files small enough to re-encode in the test suite's time budget."""
    chosen = []
    for name in decodable_files():
        heif = heifkit.open_heif(CORPUS / name)  # lazy: only the container is parsed
        width, height = heif.size
        if width * height <= MAX_PIXELS and len(heif) <= MAX_IMAGES:
            chosen.append(name)
    return chosen


FILES = _select()


def _format_for(name: str) -> str:
    return "AVIF" if _ROWS[name]["codec"] == "AV1" else "HEIF"


def _as_8bit(image: heifkit.HeifImage) -> np.ndarray:
    """Pixels as float in 0..255: RGB/RGBA (premultiplied converted) or grey, 16-bit scaled down."""
    if image.mode in ("L", "RGB", "RGBA", "RGBa"):
        pil = image.to_pillow()
        if pil.mode == "RGBa":
            pil = pil.convert("RGBA")
        return np.asarray(pil, dtype=np.float64)
    return np.asarray(image, dtype=np.float64) / 256.0  # I;16 (grey stays grey for heifkit at 8 bit)


def _normalized(info: dict[str, Any]) -> dict[str, Any]:
    """The EXIF/XMP of ``info`` with the orientation reset (a re-save writes upright pixels, orientation 1)."""
    out = {"exif": info.get("exif"), "xmp": info.get("xmp")}
    heifkit.set_orientation(out)
    return out


NCLX_KEYS = ("color_primaries", "transfer_characteristics", "matrix_coefficients", "full_range_flag")
SRGB = (1, 13, 6, 1)


def _nclx(info: dict[str, Any]) -> tuple[int, ...] | None:
    nclx = info.get("nclx_profile")
    return None if nclx is None else tuple(int(nclx[k]) for k in NCLX_KEYS)


def _check_structure(src: heifkit.HeifFile, out: heifkit.HeifFile, nclx: tuple[int, ...] | None = None) -> None:
    """``out`` has ``src``'s images and metadata; ``nclx``: the profile expected when it was passed explicitly."""
    assert len(out) == len(src)
    assert out.primary_index == src.primary_index
    for i, (a, b) in enumerate(zip(src, out, strict=True)):
        where = f"image {i}"
        assert b.size == a.size, where
        assert b.mode == a.mode, where
        assert b.info["bit_depth"] == a.info["bit_depth"], where
        assert _normalized(b.info) == _normalized(a.info), where
        # An empty ICC profile (pheif_empty_icc.heic) is not written: nothing to keep.
        assert b.info.get("icc_profile") == (a.info.get("icc_profile") or None), where
        if a.info.get("icc_profile"):
            assert b.info.get("icc_profile_type") == a.info.get("icc_profile_type"), where
        if nclx is not None:
            if not a.info.get("icc_profile"):
                assert _nclx(b.info) == nclx, where
        elif _nclx(a.info) is not None:
            assert _nclx(b.info) == _nclx(a.info), where
        elif a.info.get("icc_profile") is None:
            assert _nclx(b.info) in (None, SRGB), where  # no profile in the source: sRGB default
        # Thumbnails are re-made from their sizes; a "thumbnail" not smaller than its image is dropped
        # (pheif_invalid_id.heic has a 1227 px one on a 564x870 image), as documented for `thumbnails`.
        assert b.info["thumbnails"] == [t for t in a.info["thumbnails"] if 3 < t < max(a.size)], where
        assert b.info.get("metadata") == a.info.get("metadata"), where
        # A 1:1 pixel aspect ratio is the default, and libheif writes no pasp box for it.
        assert b.info.get("pixel_aspect_ratio", (1, 1)) == a.info.get("pixel_aspect_ratio", (1, 1)), where
        for key in (
            "content_light_level",
            "mastering_display_colour_volume",
            "ambient_viewing_environment",
        ):
            assert b.info.get(key) == a.info.get(key), f"{where}: {key}"


def _lossy_params() -> list[Any]:
    params = []
    for name in FILES:
        marks = []
        if name in KNOWN_LOW_PSNR:
            marks.append(pytest.mark.xfail(reason=KNOWN_LOW_PSNR[name], strict=True))
        if name not in QUICK_FILES:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.parametrize("name", _lossy_params())
def test_roundtrip_lossy(name: str) -> None:
    src = heifkit.open_heif(CORPUS / name, convert_hdr_to_8bit=False)
    chroma = src.info.get("chroma")
    extra = {"chroma": chroma} if chroma in (420, 422, 444) else {}
    buf = io.BytesIO()
    src.save(buf, format=_format_for(name), quality=QUALITY, **extra)
    data = buf.getvalue()
    out = heifkit.open_heif(data, convert_hdr_to_8bit=False)
    assert out.mimetype == ("image/avif" if _format_for(name) == "AVIF" else "image/heic")
    _check_structure(src, out)
    src8, out8 = heifkit.open_heif(CORPUS / name), heifkit.open_heif(data)
    for i in range(len(src8)):
        value = psnr(_as_8bit(src8[i]), _as_8bit(out8[i]))
        assert value >= MIN_PSNR, f"image {i}: PSNR {value:.1f} dB"


@pytest.mark.parametrize("name", corpus_params(LOSSLESS_FILES))
def test_roundtrip_lossless_bit_exact(name: str) -> None:
    assert name in FILES
    src = heifkit.open_heif(CORPUS / name, convert_hdr_to_8bit=False)
    # An explicit NCLX value replaces the whole output profile, the fields not given falling back to libheif's
    # sRGB defaults (pillow_heif's rule), so the source's primaries/transfer go along with matrix 0. Save
    # kwargs only reach the primary image; the other images of a multi-image file take them from `info`.
    expected = []
    for image in src:
        cp, tc, _, fr = _nclx(image.info) or SRGB
        assert fr == 1, "the lossless recipe needs full range"
        image.info.update(color_primaries=cp, transfer_characteristics=tc, matrix_coefficients=0)
        expected.append((cp, tc, 0, 1))
    assert len(set(expected)) == 1
    buf = io.BytesIO()
    src.save(buf, format=_format_for(name), quality=-1, chroma=444)
    out = heifkit.open_heif(buf.getvalue(), convert_hdr_to_8bit=False)
    _check_structure(src, out, nclx=expected[0])
    for i, (a, b) in enumerate(zip(src, out, strict=True)):
        assert b.stride == a.stride, f"image {i}"
        assert bytes(b.data) == bytes(a.data), f"image {i}"


def test_selection_is_sane() -> None:
    """The size filter keeps most of the corpus and skips only the big camera files."""
    skipped = set(decodable_files()) - set(FILES)
    assert len(FILES) >= 60
    assert "pheif_arrow.heic" in skipped and "pheif_zPug_3.heic" in FILES
    assert all(n in FILES for n in KNOWN_LOW_PSNR)
