"""``HeifImage.coded_quality()``: the quality a file was coded at, read from its coded stream.

Files written at known qualities by heifkit (x265 and aom through libheif), pillow_heif (the oracle, its own x265)
and Pillow's own AVIF plugin (libavif and aom) are read back: AVIF within ±3, HEIC within ±10 and monotonic in
quality, each also within the ± the result states. Lossless files say so, grid images are read tile by tile, images
made from pixels give None, and damaged streams give None, never an exception. benchmarks/coded_quality.py is the
calibration these tests hold the library to (docs/reading.md, "The quality a file was coded at").
"""

from __future__ import annotations

import io
import random
from typing import Any

import numpy as np
import pytest
from PIL import Image, features

import heifkit
from conftest import CORPUS
from heifkit._container import item_boxes
from heifkit._native.libheif import lib
from heifkit._read import coded_quality as cq
from heifkit._read import items

FAST = {"enc_params": {"preset": "ultrafast"}}  # x265's preset does not change the QP it codes (test below)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A real photo, small: 256x171."""
    img = heifkit.open_heif(CORPUS / "pillow_rot0mir0.avif")[0].to_pillow().convert("RGB")
    return img.resize((256, 171))


def _read(data: bytes) -> dict[str, Any] | None:
    return heifkit.open_heif(data)[0].coded_quality()


def _heifkit(img: Image.Image, **params: Any) -> bytes:
    out = io.BytesIO()
    heifkit.from_pillow(img).save(out, **params)
    return out.getvalue()


def _pillow_avif(img: Image.Image, quality: int) -> bytes:
    """Pillow's own AVIF plugin, called directly: heifkit's register_avif_opener() may have taken Pillow's
    registry for "AVIF" in this process."""
    from PIL import AvifImagePlugin

    out = io.BytesIO()
    img.encoderinfo = {"quality": quality}  # what Image.save hands a plugin
    try:
        AvifImagePlugin._save(img, out, "coded.avif")
    finally:
        del img.encoderinfo
    return out.getvalue()


def _pillow_heif(img: Image.Image, **params: Any) -> bytes:
    import pillow_heif

    out = io.BytesIO()
    pillow_heif.from_pillow(img).save(out, **params)
    return out.getvalue()


def _check(found: dict[str, Any] | None, codec: str, quality: int, tolerance: int) -> dict[str, Any]:
    assert found is not None
    assert found["codec"] == codec and not found["lossless"]
    assert abs(found["quality"] - quality) <= min(tolerance, found["error"]), (quality, found)
    assert set(found) == {"codec", "quantizer", "quality", "error", "lossless"}
    assert isinstance(found["quantizer"], float) and isinstance(found["quality"], int)
    return found


# --- AVIF --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("quality", [30, 50, 70, 90])
def test_avif_by_heifkit(photo: Image.Image, quality: int) -> None:
    found = _check(_read(_heifkit(photo, format="AVIF", quality=quality)), "AV1", quality, 3)
    assert found["quantizer"] == cq._AOM_Q_INDEX[quality]


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF plugin")
@pytest.mark.parametrize("quality", [30, 50, 70, 90])
def test_avif_by_pillow(photo: Image.Image, quality: int) -> None:
    found = _check(_read(_pillow_avif(photo, quality)), "AV1", quality, 3)
    assert found["quantizer"] == cq._AOM_Q_INDEX[quality]


def test_avif_10_bit_and_444_code_the_same_q_index(photo: Image.Image) -> None:
    for params in ({"bit_depth": 10}, {"chroma": 444}, {"speed": 10}):
        _check(_read(_heifkit(photo, format="AVIF", quality=60, **params)), "AV1", 60, 3)


# --- HEIC --------------------------------------------------------------------------------------------------

HEIC_QUALITIES = [10, 30, 50, 70, 90]


def _monotonic_within(files: list[bytes], tolerance: int) -> None:
    found = [_check(_read(data), "HEVC", q, tolerance) for data, q in zip(files, HEIC_QUALITIES, strict=True)]
    estimates = [f["quality"] for f in found]
    assert estimates == sorted(estimates) and len(set(estimates)) == len(estimates)
    assert [f["quantizer"] for f in found] == [cq.x265_qp(q) for q in HEIC_QUALITIES]


def test_heic_by_heifkit(photo: Image.Image) -> None:
    _monotonic_within([_heifkit(photo, quality=q, **FAST) for q in HEIC_QUALITIES], 10)


def test_heic_by_pillow_heif(photo: Image.Image) -> None:
    _monotonic_within([_pillow_heif(photo, quality=q, **FAST) for q in HEIC_QUALITIES], 10)


def test_heic_default_preset_codes_what_the_mapping_says(photo: Image.Image) -> None:
    """The mapping is the default preset's (the fast tests above use ultrafast, which codes the same QP)."""
    for quality in (25, 75):
        _check(_read(_heifkit(photo, quality=quality)), "HEVC", quality, 10)
        _check(_read(_pillow_heif(photo, quality=quality)), "HEVC", quality, 10)


def test_heic_10_bit_and_monochrome(photo: Image.Image) -> None:
    _check(_read(_heifkit(photo, quality=40, bit_depth=10, **FAST)), "HEVC", 40, 10)
    _check(_read(_heifkit(photo.convert("L"), quality=40, **FAST)), "HEVC", 40, 10)


# --- lossless, grids, corpus files -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_lossless_files_say_so(photo: Image.Image, fmt: str) -> None:
    found = _read(_heifkit(photo.resize((64, 64)), format=fmt, quality=-1, **(FAST if fmt == "HEIF" else {})))
    assert found is not None
    assert found["lossless"] and found["quality"] == -1 and found["error"] == 0
    assert found["quantizer"] == (4.0 if fmt == "HEIF" else 0.0)  # x265 codes lossless at QP 4, AV1 at q index 0


def test_lossless_files_of_pillow_heif_say_so() -> None:
    found = heifkit.open_heif(CORPUS / "pheif_RGB_8__29x100.heif")[0].coded_quality()
    assert found is not None and found["lossless"] and found["codec"] == "HEVC"


def test_x265_cu_lossless_is_not_lossless(photo: Image.Image) -> None:
    """libheif's complexity >= 70 turns on x265's cu-lossless: the bypass is enabled, the picture is lossy."""
    found = _read(_heifkit(photo, quality=50, enc_params={"preset": "ultrafast", "complexity": 70}))
    _check(found, "HEVC", 50, 10)


@pytest.mark.parametrize(("fmt", "size", "tile"), [("HEIF", (200, 120), 64), ("AVIF", (256, 160), 128)])
def test_grid_images(photo: Image.Image, fmt: str, size: tuple[int, int], tile: int) -> None:
    params = FAST if fmt == "HEIF" else {}
    heif = heifkit.open_heif(_heifkit(photo.resize(size), format=fmt, quality=60, tile_size=tile, **params))
    handle = heif[0]._entry.handle
    assert items.item_type(handle.ctx.ptr, int(lib.heif_image_handle_get_item_id(handle.ptr))) == "grid"
    _check(heif[0].coded_quality(), "AV1" if fmt == "AVIF" else "HEVC", 60, 3 if fmt == "AVIF" else 10)


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("pheif_pug.heic", "HEVC"),  # an iPhone grid of 48 tiles
        ("libavif_sofa_grid1x5_420.avif", "AV1"),  # an AV1 grid
        ("av1avif-xiph_quebec_3layer_op2.avif", "AV1"),  # layered AV1: inter frames above the key frame
        ("libheif_example.avif", "AV1"),
    ],
)
def test_corpus_files(name: str, codec: str) -> None:
    found = heifkit.open_heif(CORPUS / name)[0].coded_quality()
    assert found is not None and found["codec"] == codec
    assert 0 <= found["quality"] <= 100 and found["error"] >= 0


def test_other_codecs_and_images_from_pixels_give_none(photo: Image.Image) -> None:
    assert heifkit.open_heif(CORPUS / "libheif-fuzz_jpeg32.heif")[0].coded_quality() is None
    assert heifkit.from_pillow(photo)[0].coded_quality() is None
    assert heifkit.from_bytes("L", (4, 4), bytes(16))[0].coded_quality() is None
    read = heifkit.open_heif(_heifkit(photo, quality=50, **FAST))[0]
    assert read.crop((0, 0, 64, 64)).coded_quality() is None  # a new image, saved as such


# --- damaged streams ---------------------------------------------------------------------------------------


def _coded(data: bytes) -> tuple[str, bytes, bytes]:
    """(item type, item data, codec configuration payload) of the primary image of a file."""
    handle = heifkit.open_heif(data)[0]._entry.handle
    item = int(lib.heif_image_handle_get_item_id(handle.ptr))
    stream, _ = items.item_data(handle.ctx.ptr, item, compressed=True)
    properties = item_boxes.item_properties(data, {item})[item]
    config = next(p.payload for p in properties if p.kind in (b"hvcC", b"av1C"))
    return items.item_type(handle.ctx.ptr, item), stream, config


def _parse(kind: str, stream: bytes, config: bytes) -> Any:
    return cq.hevc_qp(stream, config) if kind == "hvc1" else cq.av1_q_index(stream, config[4:])


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_truncated_streams_give_none(photo: Image.Image, fmt: str) -> None:
    kind, stream, config = _coded(_heifkit(photo, format=fmt, quality=50, **(FAST if fmt == "HEIF" else {})))
    assert _parse(kind, stream, config) is not None
    for cut in (0, 1, 3, 5, 9, 20):
        assert _parse(kind, stream[:cut], config) is None
    if kind == "hvc1":
        assert _parse(kind, stream, config[:3]) is None  # no parameter sets
    else:
        assert _parse(kind, stream, config[:4]) is not None  # AV1 data holds its sequence header too
    assert _parse(kind, b"", b"") is None


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_truncated_files_give_none(photo: Image.Image, fmt: str) -> None:
    """libheif opens a file whose coded data is cut short (it reads the data when decoding): no quality."""
    data = _heifkit(photo, format=fmt, quality=50, **(FAST if fmt == "HEIF" else {}))
    for cut in (10, 1000):
        assert heifkit.open_heif(data[:-cut])[0].coded_quality() is None


def test_a_damaged_slice_header_gives_none(photo: Image.Image) -> None:
    data = _heifkit(photo, quality=50, **FAST)
    _, stream, _ = _coded(data)
    assert (stream[4] >> 1) & 0x3F in (19, 20)  # the item's first NAL unit: an IDR slice segment
    at = data.find(stream) + 6  # its slice segment header, after the length and the NAL unit header
    damaged = data[:at] + b"\xff\xff\xff" + data[at + 3 :]  # slice type 0 (B): no image item holds one
    assert heifkit.open_heif(damaged)[0].coded_quality() is None


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_corrupted_streams_never_raise(photo: Image.Image, fmt: str) -> None:
    kind, stream, config = _coded(_heifkit(photo, format=fmt, quality=50, **(FAST if fmt == "HEIF" else {})))
    rng = random.Random(20)
    for _ in range(400):
        in_config = rng.random() < 0.4
        target = bytearray(config if in_config else stream[:2048])
        for _ in range(rng.randint(1, 4)):
            target[rng.randrange(len(target))] = rng.randrange(256)
        result = _parse(kind, stream, bytes(target)) if in_config else _parse(kind, bytes(target), config)
        assert result is None or isinstance(result, tuple)


def test_damaged_files_never_raise(photo: Image.Image) -> None:
    """Whole files truncated and corrupted: either libheif refuses them, or coded_quality() reads a dict or None."""
    rng = random.Random(21)
    for data in (_heifkit(photo, quality=50, **FAST), _heifkit(photo, format="AVIF", quality=50)):
        for _ in range(60):
            damaged = bytearray(data)
            if rng.random() < 0.3:
                del damaged[rng.randrange(len(damaged)) :]
            for _ in range(rng.randint(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            try:
                heif = heifkit.open_heif(bytes(damaged))
            except Exception:  # refused by libheif: nothing to ask
                continue
            for image in heif:
                found = image.coded_quality()
                assert found is None or found["codec"] in ("HEVC", "AV1")


# --- the parsers and the mappings --------------------------------------------------------------------------


def test_exp_golomb_and_emulation_prevention() -> None:
    bits = cq._Bits(bytes([0b1010_0110, 0b0100_0100, 0b1100_0000]))  # ue 1 010 011 00100, se 010 011
    assert [bits.ue(), bits.ue(), bits.ue(), bits.ue()] == [0, 1, 2, 3]
    assert [bits.se(), bits.se()] == [1, -1]
    with pytest.raises(cq._Malformed):
        cq._Bits(bytes(5)).ue()  # 40 zeros: too long a code
    assert cq._rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00\x00\x03") == b"\x00\x00\x01\x00\x00\x00\x00"
    assert cq._rbsp(b"\x00\x00\x03\x03") == b"\x00\x00\x03"


def test_every_quality_is_inside_its_estimate() -> None:
    """The inverses are exact: each quality 0..100 is within the stated error of what its quantizer reads as."""
    for quality in range(101):
        estimate, error = cq.hevc_quality(cq.x265_qp(quality))
        assert abs(estimate - quality) <= error <= 4
        estimate, error = cq.av1_quality(cq._AOM_Q_INDEX[quality])
        assert abs(estimate - quality) <= error <= 1
    estimate, error = cq.hevc_quality(21.5)  # between QP 21 (q 51, 52) and QP 22 (q 49, 50)
    assert 49 <= estimate <= 52 and error == 2
    assert cq.hevc_quality(51)[0] == 0 and cq.av1_quality(-3)[0] == 100


def test_noise_pictures_code_the_same_quantizers() -> None:
    """The mappings do not depend on the content: noise codes what a photo codes."""
    noise = Image.fromarray(np.random.default_rng(3).integers(0, 256, (96, 128, 3), dtype=np.uint8))
    _check(_read(_heifkit(noise, quality=35, **FAST)), "HEVC", 35, 10)
    _check(_read(_heifkit(noise, format="AVIF", quality=35)), "AV1", 35, 3)
