"""HDR: ``HeifImage.to_hdr`` (ISO 21496-1 and Apple gain maps applied, PQ and HLG made linear), ``from_hdr`` (linear
light written as PQ or HLG) and the gain-map metadata (``tmap``, Apple's maker note).

What the code under test computes is checked against what the test computes on its own, from the standards' and
Apple's formulas (the transfer functions, the maker note read with ``struct``, the gain map upsampled with
Pillow), and against libavif's reference renditions with libavif's own metric and thresholds (see
:func:`libavif_psnr`). Linear light is in units of SDR white: 1.0 is 203 cd/m² (ITU-R BT.2408, as libavif).
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import heifkit
from conftest import CORPUS, LOSSLESS, PUG, save_bytes
from heifkit._info.tone_map import (
    ToneMap,
    apple_gain_map_version,
    apple_headroom,
    parse_tone_map,
    tone_map_bytes,
)

SEINE_SDR = CORPUS / "libavif_seine_sdr_gainmap_srgb.avif"  # 8-bit sRGB base, tmap to an HDR (PQ) alternate
SEINE_HDR_SMALL = CORPUS / "libavif_seine_hdr_gainmap_small_srgb.avif"  # 10-bit PQ base, tmap to SDR, 200x150 map
SEINE_HDR = CORPUS / "libavif_seine_hdr_srgb.avif"  # libavif's HDR rendition of the seine photo (10-bit PQ)
COSMOS_PQ = CORPUS / "libavif_cosmos1650_yuv444_10bpc_p3pq.avif"  # PQ, Display P3, no gain map
UNSUPPORTED_TMAP = CORPUS / "libavif_unsupported_gainmap_version.avif"  # 10-bit PQ, a tmap of version 0x63

SEINE_ALTERNATE_HEADROOM = 1.3  # both seine tmaps: headrooms 0 (SDR) and 1.3 stops (HDR)
DEEP = {"convert_hdr_to_8bit": False, "hdr_to_16bit": False}  # 10/12-bit samples as stored
PQ_FLOAT32 = 1e-4  # heifkit computes PQ in float32: up to 6e-5 apart from float64 near the peak (measured)


# --- the standards' formulas, written here ------------------------------------------------------------------

PQ_PEAK = 10000 / 203  # PQ's 10000 cd/m² in units of SDR white
HLG_PEAK = 1000 / 203  # HLG's nominal display peak, as libavif takes it
_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128  # SMPTE ST 2084
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
_HLG_A = 0.17883277  # ARIB STD-B67 / ITU-R BT.2100
_HLG_B = 1 - 4 * _HLG_A
_HLG_C = 0.5 - _HLG_A * math.log(4 * _HLG_A)
_BT709_ALPHA, _BT709_BETA = 1.09929682680944, 0.018053968510807  # BT.709's 1.099 and 0.018, to BT.2020's precision


def srgb_to_linear(v: Any) -> Any:
    """IEC 61966-2-1's sRGB decoding curve."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def srgb_from_linear(x: Any) -> Any:
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def bt709_to_linear(v: Any) -> Any:
    """The inverse of ITU-R BT.709's OETF."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(v < 4.5 * _BT709_BETA, v / 4.5, ((v + _BT709_ALPHA - 1) / _BT709_ALPHA) ** (1 / 0.45))


def pq_to_linear(v: Any) -> Any:
    """SMPTE ST 2084's EOTF, in units of SDR white."""
    p = np.asarray(v, dtype=np.float64) ** (1 / _M2)
    return (np.maximum(p - _C1, 0) / (_C2 - _C3 * p)) ** (1 / _M1) * PQ_PEAK


def pq_from_linear(x: Any) -> Any:
    y = np.clip(np.asarray(x, dtype=np.float64) / PQ_PEAK, 0.0, 1.0) ** _M1
    return ((_C1 + _C2 * y) / (1 + _C3 * y)) ** _M2


def hlg_to_linear(v: Any) -> Any:
    """BT.2100 HLG: the inverse OETF, then the OOTF of a 1000 cd/m² display (gamma 1.2), per channel."""
    v = np.asarray(v, dtype=np.float64)
    scene = np.where(v <= 0.5, v * v / 3, (np.exp((v - _HLG_C) / _HLG_A) + _HLG_B) / 12)
    return scene**1.2 * HLG_PEAK


def hlg_from_linear(x: Any) -> Any:
    scene = np.clip(np.asarray(x, dtype=np.float64) / HLG_PEAK, 0.0, 1.0) ** (1 / 1.2)
    return np.where(
        scene <= 1 / 12, np.sqrt(3 * scene), _HLG_A * np.log(np.maximum(12 * scene - _HLG_B, 1e-12)) + _HLG_C
    )


def codes(signal: Any, bits: int) -> Any:
    """A signal in [0, 1] as integer code values of ``bits`` bits."""
    return np.round(np.clip(signal, 0.0, 1.0) * ((1 << bits) - 1))


def libavif_psnr(rgb_a: Any, rgb_b: Any, bits: int, kr: float = 0.299, kb: float = 0.114) -> float:
    """PSNR (dB) of two images of RGB code values, over their Y, Cb and Cr samples together.

    This is libavif's metric (its tests/gtest ``testutil::GetPsnr``, which ToneMapTest's thresholds are for): the
    squared differences of every sample of every plane summed, over the number of samples times the largest
    code value squared. libavif converts the tone-mapped RGB to the reference's YCbCr (full range, its matrix,
    here BT.601 as the seine files have) and compares it with the reference's YCbCr; both images here are RGB,
    so both are converted, rounded at ``bits``. (Plain RGB PSNR is a few dB lower on the same images.)
    """
    top = (1 << bits) - 1

    def ycbcr(rgb: Any) -> Any:
        r, g, b = np.moveaxis(np.asarray(rgb, dtype=np.float64) / top, -1, 0)[:3]
        y = kr * r + (1 - kr - kb) * g + kb * b
        return np.clip(
            np.round(np.stack([y, (b - y) / (2 - 2 * kb) + 0.5, (r - y) / (2 - 2 * kr) + 0.5]) * top), 0, top
        )

    error = float(np.mean((ycbcr(rgb_a) - ycbcr(rgb_b)) ** 2))
    return 99.0 if error == 0 else 10 * math.log10(top * top / error)


def psnr(a: Any, b: Any) -> float:
    """PSNR (dB) of two signals in [0, 1]."""
    error = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return math.inf if error == 0 else 10 * math.log10(1 / error)


def samples(path: Any, **kwargs: Any) -> Any:
    """The primary image's RGB code values (float64), as stored (no 8-bit conversion)."""
    return np.asarray(heifkit.open_heif(path, **DEEP, **kwargs)[0], dtype=np.float64)[..., :3]


def save_and_open(heif_file: heifkit.HeifFile, **kwargs: Any) -> heifkit.HeifImage:
    return heifkit.open_heif(io.BytesIO(save_bytes(heif_file, **kwargs)))[0]


@pytest.fixture(scope="module")
def seine_hdr_reference() -> Any:
    return samples(SEINE_HDR)


@pytest.fixture(scope="module")
def seine_rendition() -> Any:
    """The HDR rendition of the SDR-based seine photo."""
    return heifkit.open_heif(SEINE_SDR)[0].to_hdr()


# --- libavif's acceptance: the renditions libavif makes -----------------------------------------------------


def test_hdr_rendition_of_an_sdr_base_matches_libavif(seine_rendition: Any, seine_hdr_reference: Any) -> None:
    """libavif's ToneMapTest: seine_sdr_gainmap_srgb shown at its alternate headroom against seine_hdr_srgb,
    both 10-bit PQ: at least 40 dB (measured 44.3)."""
    assert seine_rendition.dtype == np.float32 and seine_rendition.shape == (300, 400, 3)
    assert libavif_psnr(codes(pq_from_linear(seine_rendition), 10), seine_hdr_reference, 10) >= 40


def test_sdr_rendition_of_an_hdr_base_matches_libavif() -> None:
    """libavif's ToneMapTest: seine_hdr_gainmap_small_srgb (PQ base, a quarter-size map) at headroom 0 against
    the SDR base of seine_sdr_gainmap_srgb, both 8-bit sRGB: at least 36 dB (measured 36.6)."""
    sdr = heifkit.open_heif(SEINE_HDR_SMALL)[0].to_hdr(headroom=0)
    assert libavif_psnr(codes(srgb_from_linear(sdr), 8), samples(SEINE_SDR), 8) >= 36


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
def test_hdr_rendition_saved_as_pq_still_matches_libavif(
    fmt: str, seine_rendition: Any, seine_hdr_reference: Any
) -> None:
    """The rendition written by from_hdr (10-bit PQ, quality 90, 4:4:4) and decoded again still passes
    libavif's threshold (measured 44.4 dB AVIF, 44.5 dB HEIF), in a file whose NCLX says PQ and that holds the
    content light level of what was written."""
    data = save_bytes(heifkit.from_hdr(seine_rendition), format=fmt, quality=90, chroma=444)
    image = heifkit.open_heif(io.BytesIO(data))[0]
    nclx = image.info["nclx_profile"]
    assert (nclx["color_primaries"], nclx["transfer_characteristics"], nclx["full_range_flag"]) == (1, 16, 1)
    brightest = seine_rendition.astype(np.float64).max(axis=2) * 203
    assert image.info["content_light_level"] == {
        "max_content_light_level": round(brightest.max()),
        "max_pic_average_light_level": round(brightest.mean()),
    }
    assert image.info["bit_depth"] == 10
    assert libavif_psnr(samples(io.BytesIO(data)), seine_hdr_reference, 10) >= 40


# --- Apple's gain map ---------------------------------------------------------------------------------------


def apple_maker_note(exif: bytes) -> dict[int, float]:
    """The rational tags of an Apple maker note, read here: EXIF IFD0 -> ExifIFD (0x8769) -> MakerNote (0x927C),
    which starts with ``Apple iOS\\0`` and holds a big-endian IFD at offset 14 whose offsets count from the start
    of the note."""
    tiff = exif[6:] if exif.startswith(b"Exif\0\0") else exif
    order = "<" if tiff[:2] == b"II" else ">"

    def ifd(data: bytes, offset: int, endian: str) -> dict[int, tuple[int, int, bytes]]:
        (count,) = struct.unpack_from(endian + "H", data, offset)
        entries = (struct.unpack_from(endian + "HHI4s", data, offset + 2 + 12 * n) for n in range(count))
        return {tag: (kind, number, value) for tag, kind, number, value in entries}

    ifd0 = ifd(tiff, struct.unpack_from(order + "I", tiff, 4)[0], order)
    exif_ifd = ifd(tiff, struct.unpack(order + "I", ifd0[0x8769][2])[0], order)
    _kind, length, where = exif_ifd[0x927C]
    start = struct.unpack(order + "I", where)[0]
    note = tiff[start : start + length]
    assert note[:10] == b"Apple iOS\0" and note[12:14] == b"MM"
    values = {}
    for tag, (kind, number, value) in ifd(note, 14, ">").items():
        if kind in (5, 10) and number == 1:  # RATIONAL, SRATIONAL: 8 bytes at an offset from the note's start
            numerator, denominator = struct.unpack_from(
                ">II" if kind == 5 else ">ii", note, struct.unpack(">I", value)[0]
            )
            values[tag] = numerator / denominator
    return values


def apple_stops(maker33: float, maker48: float) -> float:
    """Apple's "Applying Apple HDR effect to your photos": the stops the gain map adds at most."""
    if maker33 < 1.0:
        return -20.0 * maker48 + 1.8 if maker48 <= 0.01 else -0.101 * maker48 + 1.601
    return -70.0 * maker48 + 3.0 if maker48 <= 0.01 else -0.303 * maker48 + 2.303


def apple_exif(tags: dict[int, float], outer: str = ">") -> bytes:
    """EXIF bytes (TIFF of byte order ``outer``) holding an Apple maker note with these rational tags."""
    entries = sorted(tags.items())
    note_ifd = 14 + 2 + 12 * len(entries) + 4
    note = b"Apple iOS\0" + b"\0\x01" + b"MM" + struct.pack(">H", len(entries))
    data = b""
    for n, (tag, value) in enumerate(entries):
        note += struct.pack(">HHII", tag, 10, 1, note_ifd + 8 * n)
        fraction = Fraction(value).limit_denominator(1 << 20)
        data += struct.pack(">ii", fraction.numerator, fraction.denominator)
    note += b"\0\0\0\0" + data
    # TIFF header, IFD0 at 8 with one entry (ExifIFD at 26), ExifIFD with one entry (MakerNote at 44)
    tiff = (b"II*\0" if outer == "<" else b"MM\0*") + struct.pack(outer + "I", 8)
    tiff += struct.pack(outer + "H", 1) + struct.pack(outer + "HHII", 0x8769, 4, 1, 26) + b"\0\0\0\0"
    tiff += struct.pack(outer + "H", 1) + struct.pack(outer + "HHII", 0x927C, 7, len(note), 44) + b"\0\0\0\0"
    assert len(tiff) == 44
    return b"Exif\0\0" + tiff + note


@pytest.mark.parametrize("outer", ["<", ">"])
@pytest.mark.parametrize("maker33", [0.5, 0.8786, 1.0, 1.5])
@pytest.mark.parametrize("maker48", [None, 0.0, 0.005, 0.01, 0.25, 2.0, 20.0])
def test_apple_headroom_follows_apples_formula(outer: str, maker33: float, maker48: float | None) -> None:
    """Both branches of each of Apple's two cases; a missing tag 48 is read as 0; fewer than 0 stops is 0."""
    tags = {33: maker33} if maker48 is None else {33: maker33, 48: maker48}
    exif = apple_exif(tags, outer)
    read = apple_maker_note(exif)
    assert read.keys() == tags.keys()
    expected = 2.0 ** max(apple_stops(read[33], read.get(48, 0.0)), 0.0)
    assert apple_headroom(exif) == pytest.approx(expected, rel=1e-12)


def test_apple_headroom_needs_tag_33() -> None:
    assert apple_headroom(apple_exif({48: 0.5})) is None
    assert apple_headroom(None) is None
    assert apple_headroom(b"Exif\0\0MM\0*\0\0\0\x08\0\0") is None  # no ExifIFD


def test_apple_gain_map_version() -> None:
    assert apple_gain_map_version(b"<HDRGainMap:HDRGainMapVersion>65536</HDRGainMap:HDRGainMapVersion>") == 65536
    assert apple_gain_map_version(b'<rdf:Description HDRGainMap:HDRGainMapVersion="131072"/>') == 131072
    assert apple_gain_map_version(b"<x:xmpmeta/>") is None
    assert apple_gain_map_version(None) is None


@pytest.fixture(scope="module")
def pug() -> heifkit.HeifImage:
    return heifkit.open_heif(PUG)[0]


@pytest.fixture(scope="module")
def pug_apple(pug: heifkit.HeifImage) -> dict[str, Any]:
    """Apple's HDR rendition of the pug photo, computed here: the SDR image made linear with sRGB's curve, the
    gain map with BT.709's inverse OETF, ``hdr = sdr * (1 + (headroom - 1) * gain)``."""
    tags = apple_maker_note(pug.info["exif"])
    headroom = 2.0 ** max(apple_stops(tags[33], tags.get(48, 0.0)), 0.0)
    sdr = srgb_to_linear(np.arange(256) / 255).astype(np.float32)[np.asarray(pug.to_pillow())]  # 8-bit: a table
    coded = np.asarray(pug.info["gain_maps"][0].to_pillow(), dtype=np.float32) / 255

    def upsampled(plane: Any) -> Any:
        return np.asarray(Image.fromarray(plane.astype(np.float32), "F").resize(pug.size, Image.Resampling.BILINEAR))

    return {
        "tags": tags,
        "headroom": headroom,
        "sdr": sdr,
        # heifkit's order: the coded map upsampled, then made linear; and Apple's text read the other way round
        "gain": bt709_to_linear(upsampled(coded)).astype(np.float32),
        "gain_linear_first": upsampled(bt709_to_linear(coded)),
    }


@pytest.fixture(scope="module")
def pug_hdr(pug: heifkit.HeifImage) -> Any:
    return pug.to_hdr()


def test_pug_headroom(pug: heifkit.HeifImage, pug_apple: dict[str, Any]) -> None:
    """iPhone 13 Pro: tag 33 is 0.8786 and there is no tag 48, read as 0: 1.8 stops."""
    assert pug_apple["tags"][33] == pytest.approx(0.8786, abs=1e-4)
    assert 48 not in pug_apple["tags"]
    assert pug_apple["headroom"] == pytest.approx(2**1.8)
    assert apple_headroom(pug.info["exif"]) == pytest.approx(pug_apple["headroom"], rel=1e-12)
    gain_map = pug.info["gain_maps"][0]
    assert gain_map.size == (2016, 1512) and gain_map.info["aux_type"] == "urn:com:apple:photo:2020:aux:hdrgainmap"
    assert apple_gain_map_version(gain_map.info["xmp"]) == 65536


def test_pug_hdr_rendition_is_apples_formula(pug_hdr: Any, pug_apple: dict[str, Any]) -> None:
    """to_hdr applies Apple's formula: within float32 rounding (measured 6e-6) of the rendition computed here
    from the coded map upsampled, then made linear. Apple's text does not say in which order; with the map made
    linear before it is upsampled, the two differ where the map changes fast, by at most 0.1% of SDR white
    (measured 9.5e-4; 4e-6 on average)."""
    sdr, gain, headroom = pug_apple["sdr"], pug_apple["gain"], pug_apple["headroom"]
    assert pug_hdr.dtype == np.float32 and pug_hdr.shape == (3024, 4032, 3)
    expected = sdr * (1 + (headroom - 1) * gain)[:, :, None]
    assert np.abs(pug_hdr - expected).max() < 2e-5
    other_order = sdr * (1 + (headroom - 1) * pug_apple["gain_linear_first"])[:, :, None]
    assert np.abs(pug_hdr - other_order).max() < 1.5e-3
    assert np.abs(pug_hdr - other_order).mean() < 1e-5
    assert 1.3 < pug_hdr.max() <= headroom  # the map reaches 102/255 here: about 1.35 times SDR white


def test_pug_partial_headroom(pug: heifkit.HeifImage, pug_hdr: Any, pug_apple: dict[str, Any]) -> None:
    """0 stops is the SDR image; half of the 1.8 stops applies half the boost in log2 (the square root); 1.8
    stops or more the whole rendition."""
    sdr, gain, headroom = pug_apple["sdr"], pug_apple["gain"], pug_apple["headroom"]
    assert np.abs(pug.to_hdr(headroom=0) - sdr).max() < 1e-5  # sRGB's 0.055 to more digits there
    half = pug.to_hdr(headroom=0.9)
    expected = sdr * np.sqrt(1 + (headroom - 1) * gain)[:, :, None]
    assert np.abs(half - expected).max() < 2e-5
    rows = slice(None, None, 7)  # every 7th row is enough here
    brightened = pug_hdr[rows] > sdr[rows] + 1e-4
    assert brightened.mean() > 0.5
    assert np.all(half[rows][brightened] > sdr[rows][brightened])
    assert np.all(half[rows][brightened] < pug_hdr[rows][brightened])
    assert np.array_equal(pug.to_hdr(headroom=4), pug_hdr)


def test_apple_gain_map_without_its_version_is_not_applied(pug: heifkit.HeifImage, pug_apple: dict[str, Any]) -> None:
    """Apple: the gain map is valid only when HDRGainMapVersion is in the metadata."""
    gain_map = pug.info["gain_maps"][0]
    saved = gain_map.info["xmp"]
    assert apple_gain_map_version(pug.info.get("xmp")) is None
    gain_map.info["xmp"] = saved.replace(b"HDRGainMapVersion", b"SomethingElse")
    try:
        assert np.abs(pug.to_hdr() - pug_apple["sdr"]).max() < 1e-5
    finally:
        gain_map.info["xmp"] = saved


# --- headroom -----------------------------------------------------------------------------------------------


def iso_rendition(base: Any, gain: Any, meta: ToneMap, weight: float) -> Any:
    """ISO 21496-1, written here: ``(base + k_base) * 2 ** (G * w) - k_alternate``, where G interpolates the map's
    log2 range with the coded gain raised to 1 / gamma; negative results are 0."""
    lo, hi = np.array(meta.gain_map_min), np.array(meta.gain_map_max)
    log2_gain = lo + (hi - lo) * np.clip(gain, 0, 1) ** (1 / np.array(meta.gamma))
    out = (base + np.array(meta.base_offset)) * 2.0 ** (log2_gain * weight) - np.array(meta.alternate_offset)
    return np.maximum(out, 0)


def test_headroom_zero_on_an_sdr_base_is_the_sdr_image() -> None:
    linear = heifkit.open_heif(SEINE_SDR)[0].to_hdr(headroom=0)
    # heifkit takes sRGB's 0.055 and 0.04045 to more digits (as libavif): up to 2.5e-4 apart, at the knee
    np.testing.assert_allclose(linear, srgb_to_linear(samples(SEINE_SDR) / 255), rtol=3e-4, atol=1e-6)


@pytest.mark.parametrize("headroom", [0.1, 0.65, 1.0, 1.3, 2.0, None])
def test_headroom_weighs_the_map_as_iso_21496_1_says(headroom: float | None) -> None:
    """w = clamp((H - base) / (alternate - base), 0, 1): on the seine photo (headrooms 0 and 1.3 stops, a map
    of the image's size), H / 1.3, capped at 1 (None: the alternate's headroom)."""
    image = heifkit.open_heif(SEINE_SDR)[0]
    meta = parse_tone_map(image.info["gain_maps"][0].info["tmap"])
    assert meta is not None
    assert (meta.base_hdr_headroom, meta.alternate_hdr_headroom) == (0, SEINE_ALTERNATE_HEADROOM)
    weight = 1.0 if headroom is None else min(headroom / SEINE_ALTERNATE_HEADROOM, 1.0)
    assert meta.weight(SEINE_ALTERNATE_HEADROOM if headroom is None else headroom) == pytest.approx(weight)
    base = srgb_to_linear(samples(SEINE_SDR) / 255)
    gain = np.asarray(image.info["gain_maps"][0].to_pillow(), dtype=np.float64) / 255
    expected = iso_rendition(base, gain, meta, weight)
    np.testing.assert_allclose(image.to_hdr(headroom), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("path", [SEINE_SDR, SEINE_HDR_SMALL], ids=["sdr-base", "hdr-base"])
def test_intermediate_headroom_lies_between_the_renditions(path: Any) -> None:
    """Each pixel moves monotonically from the SDR rendition to the HDR one as the headroom grows, whichever the
    base is (an HDR base: the weight is negative, the map taken away)."""
    image = heifkit.open_heif(path)[0]
    steps = [image.to_hdr(h) for h in (0, 0.3, 0.65, 1.0, SEINE_ALTERNATE_HEADROOM)]
    sdr, hdr = steps[0], steps[-1]
    assert np.array_equal(image.to_hdr(), hdr)  # None: the HDR rendition
    assert np.array_equal(image.to_hdr(3.0), hdr)  # beyond the alternate's headroom: nothing more
    brighter = hdr > sdr + 1e-4
    assert brighter.mean() > 0.5
    for low, high in zip(steps, steps[1:], strict=False):
        assert np.all(high[brighter] >= low[brighter] - 1e-6)
    middle = steps[2][brighter]
    assert np.all(middle <= hdr[brighter])
    assert np.mean((middle > sdr[brighter]) & (middle < hdr[brighter])) > 0.99  # some of an HDR base's shadows
    # are 0 in the SDR rendition and at low headrooms (ISO 21496-1's offsets undershoot; to_hdr clips at 0)


def test_an_hdr_base_is_its_own_hdr_rendition() -> None:
    """seine_hdr_gainmap_small's base is PQ: to_hdr() (or at the base's 1.3 stops) is the base made linear."""
    image = heifkit.open_heif(SEINE_HDR_SMALL)[0]
    expected = pq_to_linear(samples(SEINE_HDR_SMALL) / 1023)
    np.testing.assert_allclose(image.to_hdr(), expected, rtol=PQ_FLOAT32, atol=1e-6)


@pytest.mark.parametrize("headroom", [None, 0.8, 1.3, 1.8])
def test_equal_headrooms_leave_the_base_alone(headroom: float | None) -> None:
    """libavif's ToneMapImageSameHeadroom: when the tmap gives the base the alternate's headroom, the map is
    not applied, whatever the display's headroom (ISO 21496-1's weight would divide by zero)."""
    image = heifkit.open_heif(SEINE_SDR)[0]
    gain_map = image.info["gain_maps"][0]
    meta = parse_tone_map(gain_map.info["tmap"])
    assert meta is not None
    meta.base_hdr_headroom = meta.alternate_hdr_headroom
    gain_map.info["tmap"] = tone_map_bytes(meta)
    assert np.array_equal(image.to_hdr(headroom), image.to_hdr(0))
    np.testing.assert_allclose(image.to_hdr(headroom), srgb_to_linear(samples(SEINE_SDR) / 255), rtol=3e-4)


def test_negative_headroom_is_refused() -> None:
    for path in (SEINE_SDR, COSMOS_PQ):
        with pytest.raises(ValueError, match="headroom"):
            heifkit.open_heif(path)[0].to_hdr(headroom=-0.5)


def test_the_full_precision_is_used_whatever_the_file_was_opened_with() -> None:
    """A 10-bit image opened with the default 8-bit conversion is made linear from its 10-bit samples."""
    default = heifkit.open_heif(SEINE_HDR_SMALL)[0]
    assert default.mode == "RGB"
    assert np.array_equal(default.to_hdr(0.5), heifkit.open_heif(SEINE_HDR_SMALL, **DEEP)[0].to_hdr(0.5))


@pytest.mark.parametrize("headroom", [None, 0, 1, 6])
def test_pq_without_a_gain_map_is_pq_linear_light(headroom: float | None) -> None:
    """No gain map: the signal made linear with PQ's EOTF, whatever the headroom (203 cd/m² is 1.0)."""
    image = heifkit.open_heif(COSMOS_PQ)[0]
    assert not image.info["gain_maps"] and image.info["nclx_profile"]["transfer_characteristics"] == 16
    coded = samples(COSMOS_PQ)
    linear = image.to_hdr(headroom)
    np.testing.assert_allclose(linear, pq_to_linear(coded / 1023), rtol=PQ_FLOAT32, atol=1e-6)
    peak = coded.max()  # 1002 in this file
    assert linear.max() == pytest.approx(float(pq_to_linear(peak / 1023)), rel=1e-5)
    assert linear.max() == pytest.approx(40.52, abs=0.01)  # 8225 cd/m²


@pytest.mark.parametrize("headroom", [None, 0, 2])
def test_a_gain_map_of_an_unknown_version_is_ignored(headroom: float | None) -> None:
    """libavif ignores a tmap it cannot read: the PQ base as it is; its 1023 code values are PQ's peak."""
    image = heifkit.open_heif(UNSUPPORTED_TMAP)[0]
    assert parse_tone_map(image.info["gain_maps"][0].info["tmap"]) is None
    coded = samples(UNSUPPORTED_TMAP)
    linear = image.to_hdr(headroom)
    np.testing.assert_allclose(linear, pq_to_linear(coded / 1023), rtol=PQ_FLOAT32, atol=1e-6)
    assert coded.max() == 1023
    assert linear[coded == 1023] == pytest.approx(10000 / 203, rel=1e-6)


def test_hlg_and_pq_curves() -> None:
    """Spot values of the curves the tests use: PQ's 1.0 is 10000 cd/m², its 0.58 about 203 cd/m² (SDR white);
    HLG's 1.0 is the 1000 cd/m² display peak, its 0.5 a twelfth of the scene light through the OOTF."""
    assert pq_to_linear(1.0) == pytest.approx(10000 / 203)
    assert pq_to_linear(0.5807) == pytest.approx(1.0, abs=2e-3)
    assert hlg_to_linear(1.0) == pytest.approx(1000 / 203)
    assert hlg_to_linear(0.5) == pytest.approx((1 / 12) ** 1.2 * 1000 / 203)
    x = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(pq_from_linear(pq_to_linear(x)), x, atol=1e-6)
    np.testing.assert_allclose(hlg_from_linear(hlg_to_linear(x)), x, atol=1e-9)


# --- from_hdr -----------------------------------------------------------------------------------------------

CURVES: dict[str, tuple[int, Callable[[Any], Any], Callable[[Any], Any], float]] = {
    "pq": (16, pq_from_linear, pq_to_linear, PQ_PEAK),
    "hlg": (18, hlg_from_linear, hlg_to_linear, HLG_PEAK),
}


def light(seed: int = 0, size: tuple[int, int] = (48, 64)) -> Any:
    """Random linear light from deep shadows to beyond PQ's and HLG's peaks (0..60 times SDR white)."""
    rng = np.random.default_rng(seed)
    return (rng.random((*size, 3)) ** 4 * 60).astype(np.float32)


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
@pytest.mark.parametrize("transfer", ["pq", "hlg"])
@pytest.mark.parametrize("bit_depth", [10, 12])
def test_from_hdr_lossless_round_trip(fmt: str, transfer: str, bit_depth: int) -> None:
    """Saved lossless (RGB coded as is), the file holds the code values of x's signal, and to_hdr gives the
    linear light they stand for: x itself, to the precision of the code values."""
    code, encode, decode, peak = CURVES[transfer]
    x = light(bit_depth)
    data = save_bytes(heifkit.from_hdr(x, transfer=transfer, bit_depth=bit_depth), format=fmt, **LOSSLESS)
    image = heifkit.open_heif(io.BytesIO(data))[0]
    assert image.info["bit_depth"] == bit_depth
    assert image.info["nclx_profile"]["transfer_characteristics"] == code
    expected = codes(encode(x), bit_depth)
    stored = samples(io.BytesIO(data))
    assert np.abs(stored - expected).max() <= 1  # rounding at a code value's edge: float32 there, float64 here
    assert np.mean(stored != expected) < 0.01  # measured: 0.6% of 12-bit PQ samples, none of 10-bit ones
    y = image.to_hdr()
    np.testing.assert_allclose(y, decode(stored / ((1 << bit_depth) - 1)), rtol=PQ_FLOAT32, atol=1e-6)
    clipped = np.minimum(x, peak)
    assert psnr(encode(y), encode(clipped)) > (70 if bit_depth == 10 else 82)  # quantisation: 71 and 83 dB
    assert np.abs(y - clipped).max() <= 0.012 * clipped.max()  # PQ's code values are < 1% apart up there


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_from_hdr_lossy_round_trip(fmt: str, transfer: str, seine_rendition: Any) -> None:
    """Quality 90, 4:4:4: at least 45 dB in the transfer's own signal (measured PQ 46.8 dB AVIF, 53.2 HEIF;
    HLG 46.2 and 52.0)."""
    _code, encode, _decode, _peak = CURVES[transfer]
    image = save_and_open(heifkit.from_hdr(seine_rendition, transfer=transfer), format=fmt, quality=90, chroma=444)
    assert psnr(encode(image.to_hdr()), encode(seine_rendition)) >= 45


@pytest.mark.parametrize("transfer", ["pq", "hlg"])
@pytest.mark.parametrize("bit_depth", [10, 12])
def test_from_hdr_before_saving(transfer: str, bit_depth: int) -> None:
    """The HeifFile from_hdr makes already holds the coded image: to_hdr gives x back, and its info says how."""
    code, encode, decode, peak = CURVES[transfer]
    x = light(3)
    image = heifkit.from_hdr(x, primaries="bt2020", transfer=transfer, bit_depth=bit_depth)[0]
    assert image.mode == f"RGB;{bit_depth}" and image.info["bit_depth"] == bit_depth
    assert image.info["nclx_profile"] == {
        "color_primaries": 9,
        "transfer_characteristics": code,
        "matrix_coefficients": 9,
        "full_range_flag": 1,
    }
    stored = np.asarray(image, dtype=np.float64)
    assert np.abs(stored - codes(encode(x), bit_depth)).max() <= 1
    np.testing.assert_allclose(image.to_hdr(), decode(stored / ((1 << bit_depth) - 1)), rtol=PQ_FLOAT32, atol=1e-6)


@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_from_hdr_content_light_level(transfer: str) -> None:
    """MaxCLL: the brightest channel of any pixel; MaxFALL: the mean of each pixel's brightest channel; in
    cd/m², of the light the transfer holds (HLG stops at 1000 cd/m², PQ at 10000)."""
    _code, _encode, _decode, peak = CURVES[transfer]
    for x in (light(5), light(6) / 20, np.zeros((4, 4, 3), np.float32)):
        brightest = np.minimum(x.astype(np.float64), peak).max(axis=2) * 203
        expected = {
            "max_content_light_level": round(brightest.max()),
            "max_pic_average_light_level": round(brightest.mean()),
        }
        assert heifkit.from_hdr(x, transfer=transfer)[0].info["content_light_level"] == expected
    assert heifkit.from_hdr(light(5), transfer="hlg")[0].info["content_light_level"]["max_content_light_level"] == 1000


@pytest.mark.parametrize(
    ("primaries", "code"), [(1, 1), ("srgb", 1), ("BT709", 1), ("bt2020", 9), ("p3", 12), ("display-p3", 12), (11, 11)]
)
def test_from_hdr_primaries(primaries: Any, code: int) -> None:
    nclx = heifkit.from_hdr(light(), primaries=primaries)[0].info["nclx_profile"]
    assert (nclx["color_primaries"], nclx["matrix_coefficients"]) == (code, 9 if code == 9 else 1)


@pytest.mark.parametrize(
    ("array", "kwargs", "error"),
    [
        (np.ones((4, 4)), {}, ValueError),
        (np.ones((4, 4, 4)), {}, ValueError),
        (np.ones((4, 4, 1)), {}, ValueError),
        (np.ones((0, 4, 3)), {}, ValueError),
        (np.full((4, 4, 3), np.nan), {}, ValueError),
        (np.full((4, 4, 3), np.inf), {}, ValueError),
        (np.ones((4, 4, 3)), {"primaries": "adobe-rgb"}, ValueError),
        (np.ones((4, 4, 3)), {"primaries": 999}, ValueError),
        (np.ones((4, 4, 3)), {"primaries": 0}, ValueError),
        (np.ones((4, 4, 3)), {"primaries": 9.0}, TypeError),
        (np.ones((4, 4, 3)), {"transfer": "srgb"}, ValueError),
        (np.ones((4, 4, 3)), {"transfer": 16}, ValueError),
        (np.ones((4, 4, 3)), {"bit_depth": 8}, ValueError),
        (np.ones((4, 4, 3)), {"bit_depth": 16}, ValueError),
        (np.ones((4, 4, 3)), {"bit_depth": 10.0}, ValueError),
        (np.ones((4, 4, 3)), {"bit_depth": True}, ValueError),
    ],
)
def test_from_hdr_refuses(array: Any, kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        heifkit.from_hdr(array, **kwargs)


def test_from_hdr_clips_what_the_transfer_cannot_hold() -> None:
    x = np.array([[[-1.0, 0.0, 100.0]]], np.float32)
    y = heifkit.from_hdr(x)[0].to_hdr()
    assert y[0, 0, 0] == 0 and y[0, 0, 1] == 0 and y[0, 0, 2] == pytest.approx(PQ_PEAK, rel=1e-5)


# --- tmap metadata ------------------------------------------------------------------------------------------

_DENOMINATORS = st.integers(1, 1 << 24)  # what tone_map_bytes writes exactly (see test_fractions_beyond_...)


def _fraction(signed: bool) -> st.SearchStrategy[float]:
    low, high = (-(1 << 31), (1 << 31) - 1) if signed else (0, (1 << 32) - 1)
    return st.builds(lambda n, d: n / d, st.integers(low, high), _DENOMINATORS)


def _channels(signed: bool, positive: bool = False) -> st.SearchStrategy[list[float]]:
    value = _fraction(signed).filter(lambda v: v > 0) if positive else _fraction(signed)
    return st.one_of(value.map(lambda v: [v] * 3), st.lists(value, min_size=3, max_size=3))


TONE_MAPS = st.builds(
    ToneMap,
    base_hdr_headroom=_fraction(False),
    alternate_hdr_headroom=_fraction(False),
    gain_map_min=_channels(True),
    gain_map_max=_channels(True),
    gamma=_channels(False, positive=True),
    base_offset=_channels(True),
    alternate_offset=_channels(True),
    use_base_colour_space=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(TONE_MAPS)
def test_tone_map_round_trip(meta: ToneMap) -> None:
    data = tone_map_bytes(meta)
    assert data[:5] == b"\0\0\0\0\0"  # version 0, minimum and writer version 0
    assert len(data) == 6 + 16 + 40 * (3 if meta.multichannel else 1)
    assert parse_tone_map(data) == meta


@settings(max_examples=200, deadline=None)
@given(st.integers(-(1 << 31), (1 << 31) - 1), st.integers(1, (1 << 32) - 1))
def test_fractions_beyond_24_bits_are_written_closely(numerator: int, denominator: int) -> None:
    """A value the file held with a denominator above 2**24 comes back within 2**-24 (a few parts in 10**8)."""
    value = numerator / denominator
    small = abs(value) < 120  # bigger values keep fewer bits of fraction: their error is relative
    meta = ToneMap(gain_map_min=[value] * 3)
    back = parse_tone_map(tone_map_bytes(meta))
    assert back is not None
    tolerance = 2.0**-24 if small else abs(value) * 2.0**-23
    assert abs(back.gain_map_min[0] - value) <= tolerance


@pytest.mark.parametrize("value", [-(2.0**31), 2.0**31 - 1, -(2.0**31) + 0.5])
def test_the_ends_of_the_signed_range_are_written(value: float) -> None:
    back = parse_tone_map(tone_map_bytes(ToneMap(gain_map_min=[value] * 3)))
    assert back is not None and back.gain_map_min[0] == pytest.approx(value, abs=0.5)


@pytest.mark.parametrize(
    "meta",
    [
        ToneMap(gain_map_min=[3e9] * 3),  # beyond a signed 32-bit numerator
        ToneMap(gain_map_max=[-(2.0**31) - 1] * 3),
        ToneMap(alternate_hdr_headroom=5e9),  # beyond an unsigned one
        ToneMap(base_hdr_headroom=-1.0),  # a headroom is unsigned
        ToneMap(gamma=[-0.5] * 3),
        ToneMap(base_offset=[math.nan] * 3),
        ToneMap(alternate_hdr_headroom=math.inf),
    ],
)
def test_values_a_tmap_cannot_hold_are_refused(meta: ToneMap) -> None:
    """These used to hang (values beyond 32 bits) or are negative where the format is unsigned."""
    with pytest.raises(ValueError):
        tone_map_bytes(meta)


CORPUS_TMAPS = {
    "libavif_seine_sdr_gainmap_srgb.avif": (0.0, 1.3, True),
    "libavif_seine_hdr_gainmap_small_srgb.avif": (1.3, 0.0, False),
    "libavif_color_grid_gainmap_different_grid.avif": (3.0, 0.0, True),
    "libavif_color_nogrid_alpha_nogrid_gainmap_grid.avif": (3.0, 0.0, True),
}


@pytest.mark.parametrize("name", sorted(CORPUS_TMAPS))
def test_corpus_tmaps_parse(name: str) -> None:
    base, alternate, base_colour_space = CORPUS_TMAPS[name]
    data = heifkit.open_heif(CORPUS / name)[0].info["gain_maps"][0].info["tmap"]
    meta = parse_tone_map(data)
    assert meta is not None
    assert (meta.base_hdr_headroom, meta.alternate_hdr_headroom) == (base, alternate)
    assert meta.use_base_colour_space is base_colour_space
    assert meta.multichannel and all(g > 0 for g in meta.gamma)
    assert parse_tone_map(tone_map_bytes(meta)) == meta  # written again, the same values


def test_unsupported_tmap_versions_give_none() -> None:
    data = heifkit.open_heif(UNSUPPORTED_TMAP)[0].info["gain_maps"][0].info["tmap"]
    assert data[0] == 0x63
    assert parse_tone_map(data) is None
    good = tone_map_bytes(ToneMap())
    assert parse_tone_map(b"\x01" + good[1:]) is None  # a version after 0
    assert parse_tone_map(good[:1] + b"\0\x01" + good[3:]) is None  # needs a reader of version 1


def test_truncated_tmaps_raise() -> None:
    for meta in (ToneMap(), ToneMap(gain_map_max=[1.0, 2.0, 3.0])):
        data = tone_map_bytes(meta)
        for end in range(len(data)):
            with pytest.raises(ValueError):
                parse_tone_map(data[:end])
        with pytest.raises(ValueError):
            parse_tone_map(data + b"\0")  # writer version 0: nothing may follow


def test_bad_tmap_values_raise() -> None:
    data = bytearray(tone_map_bytes(ToneMap()))
    zero_denominator = bytes(data[:10]) + b"\0\0\0\0" + bytes(data[14:])  # the base headroom's denominator
    with pytest.raises(ValueError, match="denominator"):
        parse_tone_map(zero_denominator)
    gamma = 6 + 16 + 16  # flags, headrooms, then min and max of the one channel
    zero_gamma = bytes(data[:gamma]) + b"\0\0\0\0\0\0\0\x01" + bytes(data[gamma + 8 :])
    with pytest.raises(ValueError, match="gamma"):
        parse_tone_map(zero_gamma)


def test_a_zero_gamma_is_refused_when_written() -> None:
    from heifkit._info.tone_map import ToneMap, tone_map_bytes

    with pytest.raises(ValueError, match="gamma must be positive"):
        tone_map_bytes(ToneMap(gamma=[0.0, 1.0, 1.0]))


def test_transfer_names_ignore_case() -> None:
    light = np.full((4, 4, 3), 0.5, np.float32)
    assert heifkit.from_hdr(light, transfer="PQ")[0].info["nclx_profile"]["transfer_characteristics"] == 16
    assert heifkit.from_hdr(light, transfer="Hlg")[0].info["nclx_profile"]["transfer_characteristics"] == 18
