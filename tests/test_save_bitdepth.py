"""Bit depth on save: 16-bit input -> 10 (or 12) bits, ;10/;12 modes kept, opened files keep their depth.

Samples are compared exactly with the lossless recipe. Reading back with ``convert_hdr_to_8bit=False,
hdr_to_16bit=False`` gives the stored samples (``;10``/``;12`` modes); with the defaults of
``hdr_to_16bit`` they come back shifted left by ``16 - bits``.
"""

from __future__ import annotations

import io

import numpy as np
import pillow_heif
import pytest
from PIL import Image

import heifkit
from conftest import CORPUS, LOSSLESS, save_bytes
from heifkit import options

RGB_10 = CORPUS / "pheif_RGB_10__128x128.heif"
L_12 = CORPUS / "pheif_L_12__128x128.heif"
SIZE = (16, 12)
# edge values of the 16 -> 10/12 truncation, then random ones
EDGES = [0, 1, 15, 16, 63, 64, 65, 127, 128, 4095, 4096, 32767, 32768, 65471, 65472, 65535]


pytestmark = pytest.mark.usefixtures("heif_plugin")


def samples16(channels: int, seed: int = 0) -> np.ndarray:
    """(h, w, channels) little-endian uint16 samples covering the truncation edges."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 65536, (SIZE[1], SIZE[0], channels)).astype("<u2")
    flat = arr.reshape(-1)
    flat[: len(EDGES)] = EDGES
    return arr


def stored(data: bytes, index: int = 0) -> tuple[heifkit.HeifImage, np.ndarray]:
    """The image at ``index`` and its stored samples (``;10``/``;12`` or 8-bit), as (h, w, c)."""
    image = heifkit.open_heif(data, convert_hdr_to_8bit=False, hdr_to_16bit=False)[index]
    arr = np.asarray(image)
    return image, arr.reshape(arr.shape[0], arr.shape[1], -1)


# ---------------------------------------------------------------------------------------------------
# 16-bit input


@pytest.mark.parametrize(
    ("mode", "channels"),
    [("RGB;16", 3), ("RGBA;16", 4), ("L;16", 1), ("I;16", 1), ("I;16L", 1), ("LA;16", 2), ("BGR;16", 3)],
)
def test_16bit_frombytes_writes_10bit_truncated(mode, channels):
    src = samples16(channels)
    heif_file = heifkit.HeifFile()
    heif_file.add_frombytes(mode, SIZE, src.tobytes())
    assert heif_file.info["bit_depth"] == 16
    data = save_bytes(heif_file, **LOSSLESS)
    image, back = stored(data)
    assert image.info["bit_depth"] == 10
    assert pillow_heif.open_heif(data).info["bit_depth"] == 10
    expected = src >> 6
    if mode == "LA;16":  # monochrome with alpha reads back as RGBA
        expected = np.concatenate([expected[..., :1]] * 3 + [expected[..., 1:]], axis=2)
    if mode == "BGR;16":
        expected = expected[..., ::-1]
    assert image.mode.endswith(";10") or image.mode == "I;10"
    assert np.array_equal(back, expected)
    # the default read widens by a plain shift: (v >> 6) << 6
    wide = np.asarray(heifkit.open_heif(data, convert_hdr_to_8bit=False)).reshape(back.shape)
    assert np.array_equal(wide, expected << 6)


def test_16_to_10_truncation_table():
    values = np.array(EDGES, dtype="<u2").reshape(1, -1)
    data = save_bytes(heifkit.from_bytes("I;16", (len(EDGES), 1), values.tobytes()), **LOSSLESS)
    _, back = stored(data)
    assert back.reshape(-1).tolist() == [v >> 6 for v in EDGES]
    assert back.reshape(-1).tolist()[-3:] == [1022, 1023, 1023]


def test_add_from_pillow_i16_writes_10bit():
    src = samples16(1)[..., 0]
    im = Image.frombytes("I;16", SIZE, src.tobytes())
    heif_file = heifkit.HeifFile()
    heif_file.add_from_pillow(im)
    image, back = stored(save_bytes(heif_file, **LOSSLESS))
    assert (image.mode, image.info["bit_depth"]) == ("I;10", 10)
    assert np.array_equal(back[..., 0], src >> 6)


@pytest.mark.parametrize("pil_mode", ["I;16", "I", "I;16B"])
def test_pillow_save_16bit_modes_write_10bit(pil_mode):
    src = samples16(1, seed=2)[..., 0]
    im = Image.frombytes("I;16", SIZE, src.tobytes())
    if pil_mode == "I":
        im = im.convert("I")
    elif pil_mode == "I;16B":
        im = Image.frombytes("I;16B", SIZE, src.astype(">u2").tobytes())
    assert im.mode == pil_mode
    out = io.BytesIO()
    im.save(out, format="HEIF", **LOSSLESS)
    image, back = stored(out.getvalue())
    assert image.info["bit_depth"] == 10
    assert np.array_equal(back[..., 0], src >> 6)
    with Image.open(io.BytesIO(out.getvalue())) as reopened:
        assert reopened.mode == "I;16" and reopened.info["bit_depth"] == 10
        assert np.array_equal(np.asarray(reopened), (src >> 6) << 6)


def test_pillow_mode_i_values_are_clipped():
    values = np.array([[-5, 0, 70000, 65535]], dtype=np.int32)
    im = Image.fromarray(values, "I")
    out = io.BytesIO()
    im.save(out, format="HEIF", **LOSSLESS)
    _, back = stored(out.getvalue())
    assert back.reshape(-1).tolist() == [0, 0, 1023, 1023]


def test_save_hdr_to_12_bit_option():
    src = samples16(3, seed=3)
    options.SAVE_HDR_TO_12_BIT = True
    data = save_bytes(heifkit.from_bytes("RGB;16", SIZE, src.tobytes()), **LOSSLESS)
    image, back = stored(data)
    assert (image.mode, image.info["bit_depth"]) == ("RGB;12", 12)
    assert np.array_equal(back, src >> 4)
    options.SAVE_HDR_TO_12_BIT = False
    image, back = stored(save_bytes(heifkit.from_bytes("RGB;16", SIZE, src.tobytes()), **LOSSLESS))
    assert image.info["bit_depth"] == 10


def test_save_to_12bit_kwarg():
    src = samples16(1, seed=4)
    heif_file = heifkit.from_bytes("L;16", SIZE, src.tobytes())
    image, back = stored(save_bytes(heif_file, save_to_12bit=True, **LOSSLESS))
    assert (image.mode, image.info["bit_depth"]) == ("I;12", 12)
    assert np.array_equal(back, src >> 4)
    options.SAVE_HDR_TO_12_BIT = True
    image, _ = stored(save_bytes(heif_file, save_to_12bit=False, **LOSSLESS))
    assert image.info["bit_depth"] == 10


def test_register_heif_opener_save_to_12bit():
    src = samples16(1, seed=5)[..., 0]
    im = Image.frombytes("I;16", SIZE, src.tobytes())
    heifkit.register_heif_opener(save_to_12bit=True)
    assert options.SAVE_HDR_TO_12_BIT is True
    out = io.BytesIO()
    im.save(out, format="HEIF", **LOSSLESS)
    image, back = stored(out.getvalue())
    assert (image.mode, image.info["bit_depth"]) == ("I;12", 12)
    assert np.array_equal(back[..., 0], src >> 4)
    heifkit.register_heif_opener(save_to_12bit=False)
    out = io.BytesIO()
    im.save(out, format="HEIF", **LOSSLESS)
    assert heifkit.open_heif(out.getvalue()).info["bit_depth"] == 10


# ---------------------------------------------------------------------------------------------------
# ;10 / ;12 input keeps its depth


@pytest.mark.parametrize(
    ("mode", "channels", "bits"),
    [("RGB;10", 3, 10), ("RGBA;10", 4, 10), ("RGB;12", 3, 12), ("RGBA;12", 4, 12), ("L;10", 1, 10), ("I;12", 1, 12)],
)
@pytest.mark.parametrize("to_12", [False, True])
def test_10_and_12_bit_modes_keep_their_depth(mode, channels, bits, to_12):
    rng = np.random.default_rng(bits + channels)
    src = rng.integers(0, 2**bits, (SIZE[1], SIZE[0], channels)).astype("<u2")
    options.SAVE_HDR_TO_12_BIT = to_12
    image, back = stored(save_bytes(heifkit.from_bytes(mode, SIZE, src.tobytes()), **LOSSLESS))
    assert image.info["bit_depth"] == bits
    assert np.array_equal(back, src)


def test_10bit_mode_out_of_range_samples_are_refused():
    bad = np.full((2, 2, 3), 1024, dtype="<u2")
    with pytest.raises(ValueError):
        heifkit.from_bytes("RGB;10", (2, 2), bad.tobytes()).save(io.BytesIO())


# ---------------------------------------------------------------------------------------------------
# images opened from a file


@pytest.mark.parametrize(("path", "bits", "mode"), [(RGB_10, 10, "RGB;16"), (L_12, 12, "I;16")])
def test_hdr_file_opened_as_16bit_resaves_at_its_depth_losslessly(path, bits, mode):
    src = heifkit.open_heif(path, convert_hdr_to_8bit=False)
    assert (src.mode, src.info["bit_depth"]) == (mode, bits)
    data = save_bytes(src, **LOSSLESS)
    back = heifkit.open_heif(data, convert_hdr_to_8bit=False)
    assert (back.mode, back.info["bit_depth"]) == (mode, bits)
    assert np.array_equal(np.asarray(back), np.asarray(src))
    theirs = pillow_heif.open_heif(data, convert_hdr_to_8bit=False)
    assert theirs.info["bit_depth"] == bits
    assert np.array_equal(np.asarray(theirs), np.asarray(src))


@pytest.mark.parametrize(("path", "bits"), [(RGB_10, 10), (L_12, 12)])
def test_hdr_file_opened_with_hdr_to_16bit_false_resaves_same_samples(path, bits):
    src = heifkit.open_heif(path, convert_hdr_to_8bit=False, hdr_to_16bit=False)
    assert src.mode.endswith(f";{bits}")
    image, back = stored(save_bytes(src, **LOSSLESS))
    assert image.info["bit_depth"] == bits
    assert np.array_equal(back.reshape(np.asarray(src).shape), np.asarray(src))


def test_10bit_file_opened_as_8bit_resaves_at_10bit_by_bit_replication():
    src = heifkit.open_heif(RGB_10)  # defaults: decoded to 8-bit RGB
    assert (src.mode, src.info["bit_depth"]) == ("RGB", 10)
    eight = np.asarray(src).astype(np.uint16)
    image, back = stored(save_bytes(src, **LOSSLESS))
    assert (image.mode, image.info["bit_depth"]) == ("RGB;10", 10)
    assert np.array_equal(back, (eight << 2) | (eight >> 6))
    assert pillow_heif.open_heif(save_bytes(src)).info["bit_depth"] == 10


def test_12bit_mono_file_opened_with_defaults_resaves_at_12bit():
    src = heifkit.open_heif(L_12)  # monochrome HDR is I;16 even with convert_hdr_to_8bit
    assert (src.mode, src.info["bit_depth"]) == ("I;16", 12)
    image, back = stored(save_bytes(src, **LOSSLESS))
    assert image.info["bit_depth"] == 12
    assert np.array_equal(back[..., 0], np.asarray(src) >> 4)


def test_bit_depth_8_override():
    src = heifkit.open_heif(RGB_10)
    image, back = stored(save_bytes(src, bit_depth=8, **LOSSLESS))
    assert (image.mode, image.info["bit_depth"]) == ("RGB", 8)
    assert np.array_equal(back, np.asarray(src))
    mono = heifkit.open_heif(L_12)
    image, back = stored(save_bytes(mono, bit_depth=8, **LOSSLESS))
    assert (image.mode, image.info["bit_depth"]) == ("L", 8)
    assert np.array_equal(back[..., 0], np.asarray(mono) >> 8)


def test_bit_depth_overrides_for_new_images():
    rng = np.random.default_rng(11)
    eight = rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    heif_file = heifkit.from_bytes("RGB", SIZE, eight.tobytes())
    image, back = stored(save_bytes(heif_file, bit_depth=12, **LOSSLESS))
    assert image.info["bit_depth"] == 12
    wide = eight.astype(np.uint16)
    assert np.array_equal(back, (wide << 4) | (wide >> 4))
    src = samples16(3, seed=12)
    image, back = stored(save_bytes(heifkit.from_bytes("RGB;16", SIZE, src.tobytes()), bit_depth=12, **LOSSLESS))
    assert image.info["bit_depth"] == 12 and np.array_equal(back, src >> 4)
    image, _ = stored(save_bytes(heifkit.from_bytes("RGB;16", SIZE, src.tobytes()), bit_depth=16, **LOSSLESS))
    assert image.info["bit_depth"] == 10  # 16 means "high bit depth": 10 unless SAVE_HDR_TO_12_BIT
    heif_file.info["bit_depth"] = 10  # info works like the kwarg
    assert stored(save_bytes(heif_file))[0].info["bit_depth"] == 10


@pytest.mark.parametrize("bit_depth", [9, 7, 14, 0])
def test_invalid_bit_depth_is_valueerror(bit_depth):
    with pytest.raises(ValueError):
        heifkit.from_bytes("RGB", (4, 4), bytes(48)).save(io.BytesIO(), bit_depth=bit_depth)


def test_bit_depth_kwarg_applies_to_primary_only():
    heif_file = heifkit.from_bytes("RGB", (4, 4), bytes(48))
    heif_file.add_frombytes("RGB", (4, 4), bytes(48))
    data = save_bytes(heif_file, bit_depth=10, primary_index=1)
    assert [stored(data, i)[0].info["bit_depth"] for i in range(2)] == [8, 10]


def test_pillow_resave_of_10bit_file_keeps_10bit():
    with Image.open(RGB_10) as im:
        assert (im.mode, im.info["bit_depth"]) == ("RGB", 10)
        out = io.BytesIO()
        im.save(out, format="HEIF", **LOSSLESS)
        eight = np.asarray(im).astype(np.uint16)
    image, back = stored(out.getvalue())
    assert image.info["bit_depth"] == 10
    assert np.array_equal(back, (eight << 2) | (eight >> 6))


def test_from_pillow_of_12bit_mono_keeps_12bit_samples():
    with Image.open(L_12) as im:
        assert (im.mode, im.info["bit_depth"]) == ("I;16", 12)
        heif_file = heifkit.from_pillow(im)
        expected = np.asarray(im) >> 4
    image, back = stored(save_bytes(heif_file, **LOSSLESS))
    assert image.info["bit_depth"] == 12
    assert np.array_equal(back[..., 0], expected)
