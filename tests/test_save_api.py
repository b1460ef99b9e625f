"""The write API as a user sees it: HeifFile.save, encode(), from_*/add_*, Pillow save hooks, parameters.

Everything written is read back with heifkit.open_heif and, for HEIF (pillow_heif has an HEVC decoder but
no AV1 codec), cross-checked with pillow_heif.open_heif. Pixels are compared exactly with the lossless recipe
(``quality=-1, chroma=444, matrix_coefficients=0``) and by PSNR otherwise. Images are small (x265 is slow).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import PIL
import pillow_heif
import pytest
from PIL import Image

import heifkit
from conftest import CORPUS, LOSSLESS, noise, pil_bytes, psnr, save_bytes
from heifkit import options
from subproc import child_env

ZPUG = CORPUS / "pheif_zPug_3.heic"  # 3 images: 64x64 RGB, 64x64 L (primary), 96x64 RGB
PILLOW_MAJOR = int(PIL.__version__.split(".")[0])


pytestmark = pytest.mark.usefixtures("heif_plugin")


def gradient(size: tuple[int, int] = (64, 64)) -> Image.Image:
    """A smooth RGB image (compresses well; lossy error is small)."""
    w, h = size
    x = np.linspace(0, 255, w)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h)[:, None].repeat(w, 1)
    return Image.fromarray(np.dstack([x, y, (x + y) / 2]).astype(np.uint8), "RGB")


def sizes(data: bytes) -> list[tuple[int, int]]:
    return [im.size for im in heifkit.open_heif(data)]


# ---------------------------------------------------------------------------------------------------
# where and what is written


def test_save_to_bytesio_without_format_is_heic():
    data = save_bytes(heifkit.from_pillow(gradient()))
    assert data[4:12] == b"ftypheic"
    assert heifkit.get_file_mimetype(data) == "image/heic"
    assert pillow_heif.get_file_mimetype(data) == "image/heic"
    assert heifkit.open_heif(data).mimetype == "image/heic"
    assert b"mif1" in data[:32]  # compatible brand


def test_save_avif_format_mimetype():
    data = save_bytes(heifkit.from_pillow(gradient()), format="AVIF")
    assert data[4:12] == b"ftypavif"
    assert heifkit.get_file_mimetype(data) == "image/avif"
    f = heifkit.open_heif(data)
    assert f.mimetype == "image/avif"
    assert f.size == (64, 64)
    assert save_bytes(heifkit.from_pillow(gradient()), format="avif")[4:12] == b"ftypavif"


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_mimetype_for_every_mode_and_multi_image(mode):
    one = save_bytes(heifkit.from_pillow(noise((16, 16), mode)))
    assert heifkit.get_file_mimetype(one) == "image/heic"
    multi = heifkit.from_pillow(noise((16, 16), mode))
    multi.add_from_pillow(noise((8, 8), mode, seed=1))
    data = save_bytes(multi)
    assert heifkit.get_file_mimetype(data) == "image/heic"
    assert len(heifkit.open_heif(data)) == 2
    assert heifkit.get_file_mimetype(save_bytes(multi, format="AVIF")) == "image/avif"


def test_resaving_an_avif_file_defaults_to_heif():
    f = heifkit.open_heif(CORPUS / "libavif_white_1x1.avif")
    assert f.mimetype == "image/avif"
    assert heifkit.get_file_mimetype(save_bytes(f)) == "image/heic"
    assert heifkit.get_file_mimetype(save_bytes(f, format="AVIF")) == "image/avif"


def test_save_targets_path_str_and_stream(tmp_path):
    heif_file = heifkit.from_pillow(noise((16, 16)))
    reference = save_bytes(heif_file, **LOSSLESS)
    heif_file.save(str(tmp_path / "a.heic"), **LOSSLESS)
    heif_file.save(tmp_path / "b.heic", **LOSSLESS)
    with open(tmp_path / "c.heic", "wb") as fh:
        heif_file.save(fh, **LOSSLESS)
    for name in "abc":
        assert (tmp_path / f"{name}.heic").read_bytes() == reference
    assert sorted(os.listdir(tmp_path)) == ["a.heic", "b.heic", "c.heic"]  # no temporary files left
    with pytest.raises(TypeError):
        heif_file.save(b"not a target")


def test_failed_save_to_path_keeps_existing_file(tmp_path):
    target = tmp_path / "keep.heic"
    heifkit.from_pillow(noise((16, 16))).save(target)
    before = target.read_bytes()
    with pytest.raises(ValueError):
        heifkit.from_pillow(noise((16, 16))).save(target, quality=1000)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.heic"]


def test_save_errors():
    with pytest.raises(ValueError, match="no images"):
        heifkit.HeifFile().save(io.BytesIO())
    with pytest.raises(ValueError, match="Empty images"):
        heifkit.from_bytes("RGB", (0, 0), b"").save(io.BytesIO())
    with pytest.raises(ValueError, match="not contain enough data"):
        heifkit.from_bytes("RGB", (8, 8), b"\0" * 10).save(io.BytesIO())
    with pytest.raises(ValueError):
        heifkit.from_pillow(noise((8, 8))).save(io.BytesIO(), format="JPEG")
    with pytest.raises(TypeError):
        heifkit.from_pillow(noise((8, 8))).save(io.BytesIO(), image_orientation=6)


def test_heiffile_save_unknown_parameter_is_typeerror():
    with pytest.raises(TypeError, match="no_such_param"):
        heifkit.from_pillow(noise((8, 8))).save(io.BytesIO(), no_such_param=1)


def test_pillow_save_ignores_unknown_parameters():
    data = pil_bytes(noise((16, 16)), no_such_param=1)  # Pillow passes arbitrary params to every plugin
    assert sizes(data) == [(16, 16)]


def test_heif_output_readable_by_pillow_heif():
    heif_file = heifkit.from_pillow(noise((24, 16), "RGBA"))
    heif_file.add_from_pillow(noise((16, 8), "L"))
    data = save_bytes(heif_file, **LOSSLESS)
    ours, theirs = heifkit.open_heif(data), pillow_heif.open_heif(data)
    assert (
        [(i.mode, i.size) for i in ours] == [(i.mode, i.size) for i in theirs] == [("RGBA", (24, 16)), ("L", (16, 8))]
    )
    for a, b, src in zip(ours, theirs, heif_file, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert np.array_equal(np.asarray(a), np.asarray(src))


# ---------------------------------------------------------------------------------------------------
# save_all and append_images


def _three_pillow_images() -> list[Image.Image]:
    return [noise((16 + 8 * i, 16), seed=i) for i in range(3)]


def test_pillow_save_default_is_one_frame():
    ims = _three_pillow_images()
    assert sizes(pil_bytes(ims[0])) == [(16, 16)]


def test_pillow_save_multi_frame_source_defaults_to_current_frame():
    with Image.open(ZPUG) as im:
        assert im.tell() == 1  # opened at the primary
        f = heifkit.open_heif(pil_bytes(im))
        assert (len(f), f.mode, f.size) == (1, "L", (64, 64))
        im.seek(2)
        f = heifkit.open_heif(pil_bytes(im))
        assert (len(f), f.mode, f.size) == (1, "RGB", (96, 64))


@pytest.mark.skipif(PILLOW_MAJOR < 12, reason="Pillow >= 12 turns save_all on when append_images is given")
def test_pillow_append_images_turns_save_all_on():
    ims = _three_pillow_images()
    assert sizes(pil_bytes(ims[0], append_images=ims[1:])) == [(16, 16), (24, 16), (32, 16)]
    assert sizes(pil_bytes(ims[0], append_images=ims[1:], save_all=False)) == [(16, 16)]


def test_pillow_save_all_with_multi_frame_source_and_append_images():
    extra = noise((8, 8))
    with Image.open(ZPUG) as im:
        data = pil_bytes(im, save_all=True, append_images=[extra])
        assert im.tell() == 1  # the current frame is restored
    f = heifkit.open_heif(data)
    assert [i.mode for i in f] == ["RGB", "L", "RGB", "RGB"]
    assert [i.size for i in f] == [(64, 64), (64, 64), (96, 64), (8, 8)]
    assert f.primary_index == 1


def test_pillow_can_seek_and_save_again_after_save_all():
    with Image.open(ZPUG) as im:
        pil_bytes(im, save_all=True)  # loads every frame, then goes back to frame 1
        im.seek(2)  # frame 2 was the last one decoded: it must be decoded again, not skipped
        im.load()
        assert im.size == (96, 64)
        f = heifkit.open_heif(pil_bytes(im))
    assert (len(f), f.size) == (1, (96, 64))


def test_heiffile_save_all_default_true_and_false_writes_first():
    heif_file = heifkit.HeifFile()
    for im in _three_pillow_images():
        heif_file.add_from_pillow(im)
    assert sizes(save_bytes(heif_file)) == [(16, 16), (24, 16), (32, 16)]
    assert sizes(save_bytes(heif_file, save_all=True)) == [(16, 16), (24, 16), (32, 16)]
    assert sizes(save_bytes(heif_file, save_all=False)) == [(16, 16)]
    # the first of images + append_images
    empty = heifkit.HeifFile()
    assert sizes(save_bytes(empty, append_images=[noise((8, 8))], save_all=False)) == [(8, 8)]


def test_heiffile_append_images_of_every_kind():
    heif_file = heifkit.from_pillow(noise((16, 16)))
    other = heifkit.HeifFile()
    other.add_from_pillow(noise((24, 16), seed=1))
    other.add_from_pillow(noise((32, 16), seed=2))
    single = heifkit.from_pillow(noise((8, 16), seed=3))[0]
    pil = noise((40, 16), seed=4)
    data = save_bytes(heif_file, append_images=[single, other, pil])
    assert sizes(data) == [(16, 16), (8, 16), (24, 16), (32, 16), (40, 16)]
    assert len(heif_file) == 1 and len(other) == 2  # sources untouched
    with pytest.raises(TypeError):
        heif_file.save(io.BytesIO(), append_images=["not an image"])


def test_append_images_to_an_empty_heiffile():
    data = save_bytes(heifkit.HeifFile(), append_images=[noise((8, 8)), noise((16, 8))])
    assert sizes(data) == [(8, 8), (16, 8)]


def test_pillow_append_images_heif_frames():
    with Image.open(ZPUG) as zpug:
        data = pil_bytes(noise((8, 8)), save_all=True, append_images=[zpug])
    assert sizes(data) == [(8, 8), (64, 64), (64, 64), (96, 64)]


# ---------------------------------------------------------------------------------------------------
# encode / from_* / add_*


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4), ("BGR", 3)])
def test_encode_function_lossless(mode, channels):
    rng = np.random.default_rng(channels)
    pixels = rng.integers(0, 256, (9, 13, channels), dtype=np.uint8)
    out = io.BytesIO()
    assert heifkit.encode(mode, (13, 9), pixels.tobytes(), out, **LOSSLESS) is None
    back = np.asarray(heifkit.open_heif(out.getvalue())).reshape(9, 13, -1)
    expected = {
        "LA": np.concatenate([pixels[..., :1]] * 3 + [pixels[..., 1:]], axis=2),  # reads back as RGBA
        "BGR": pixels[..., ::-1],
    }.get(mode, pixels)
    assert np.array_equal(back, expected)


def test_encode_function_with_stride_and_to_path(tmp_path):
    rng = np.random.default_rng(7)
    padded = rng.integers(0, 256, (10, 20, 3), dtype=np.uint8)  # 20 px per row, only 12 used
    heifkit.encode("RGB", (12, 10), padded.tobytes(), tmp_path / "s.heic", stride=60, **LOSSLESS)
    back = np.asarray(heifkit.open_heif(tmp_path / "s.heic"))
    assert np.array_equal(back, padded[:, :12])
    # the last row needs no padding after it; one byte less than that is refused
    minimal = padded.tobytes()[: 60 * 9 + 12 * 3]
    out = io.BytesIO()
    heifkit.encode("RGB", (12, 10), minimal, out, stride=60, **LOSSLESS)
    assert np.array_equal(np.asarray(heifkit.open_heif(out.getvalue())), padded[:, :12])
    with pytest.raises(ValueError, match="not contain enough data"):
        heifkit.encode("RGB", (12, 10), minimal[:-1], io.BytesIO(), stride=60)
    with pytest.raises(TypeError):
        heifkit.encode("RGB", (12, 10), padded.tobytes(), io.BytesIO(), stride=60, bogus=1)


def test_encode_is_still_the_function_after_saving():
    # no submodule is called ``encode``: importing one at save time would replace the function heifkit.encode
    save_bytes(heifkit.from_pillow(noise((8, 8))))
    assert callable(heifkit.encode)
    out = io.BytesIO()
    heifkit.encode("L", (4, 4), bytes(16), out)
    assert heifkit.open_heif(out.getvalue()).size == (4, 4)


def test_from_pillow_and_add_from_pillow():
    im = noise((20, 10), "RGBA")
    heif_file = heifkit.from_pillow(im)
    assert isinstance(heif_file, heifkit.HeifFile)
    assert (len(heif_file), heif_file.mode, heif_file.size) == (1, "RGBA", (20, 10))
    assert heif_file.info["primary"] is False and heif_file.info["bit_depth"] == 8
    added = heif_file.add_from_pillow(noise((5, 7), "L"))
    assert isinstance(added, heifkit.HeifImage) and heif_file[1] is added
    assert (added.mode, added.size) == ("L", (5, 7))
    f = heifkit.open_heif(save_bytes(heif_file, **LOSSLESS))
    assert np.array_equal(np.asarray(f[0]), np.asarray(im))
    assert f[1].mode == "L" and f[1].size == (5, 7)
    with pytest.raises(ValueError, match="Empty"):
        heifkit.from_pillow(Image.new("RGB", (0, 5)))


def test_from_bytes_and_add_frombytes():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    heif_file = heifkit.from_bytes("RGB", (8, 6), rgb.tobytes())
    assert (len(heif_file), heif_file.mode, heif_file.size) == (1, "RGB", (8, 6))
    assert heif_file.info == {
        "primary": False,
        "bit_depth": 8,
        "exif": None,
        "metadata": [],
        "thumbnails": [],
        "depth_images": [],
        "aux": {},
    }
    grey = rng.integers(0, 256, (4, 4), dtype=np.uint8)
    added = heif_file.add_frombytes("L", (4, 4), grey.tobytes())
    assert heif_file[1] is added
    f = heifkit.open_heif(save_bytes(heif_file, **LOSSLESS))
    assert np.array_equal(np.asarray(f[0]), rgb)
    assert np.array_equal(np.asarray(f[1]), grey)
    with pytest.raises(ValueError):
        heifkit.from_bytes("CMYK", (4, 4), bytes(64))


def test_add_from_heif_image_copies_pixels_and_info():
    src = heifkit.open_heif(ZPUG)
    heif_file = heifkit.HeifFile()
    added = heif_file.add_from_heif(src[1])
    assert (added.mode, added.size, added.info["thumbnails"]) == ("L", (64, 64), [32])
    assert added.info["primary"] is False and src[1].info["primary"] is True
    added.info["thumbnails"].append(8)
    assert src[1].info["thumbnails"] == [32]  # deep copy
    expected = np.asarray(src[1]).copy()
    del src
    f = heifkit.open_heif(save_bytes(heif_file, **LOSSLESS))
    assert np.array_equal(np.asarray(f), expected)
    assert f.info["thumbnails"] == [32, 8]


def test_add_from_heif_whole_file():
    src = heifkit.open_heif(ZPUG)
    heif_file = heifkit.HeifFile()
    last = heif_file.add_from_heif(src)
    assert last is heif_file[2]
    assert [(i.mode, i.size) for i in heif_file] == [("RGB", (64, 64)), ("L", (64, 64)), ("RGB", (96, 64))]
    assert [i.info["primary"] for i in heif_file] == [False, False, False]
    assert [i.info["thumbnails"] for i in heif_file] == [[32, 16], [32], []]
    f = heifkit.open_heif(save_bytes(heif_file))
    assert [(i.mode, i.size) for i in f] == [("RGB", (64, 64)), ("L", (64, 64)), ("RGB", (96, 64))]
    assert f.primary_index == 0
    assert [i.info["thumbnails"] for i in f] == [[32, 16], [32], []]
    # pillow_heif's bug (DESIGN §6), not copied
    with pytest.raises(AttributeError):
        pillow_heif.HeifFile().add_from_heif(pillow_heif.open_heif(ZPUG))
    with pytest.raises(ValueError):
        heif_file.add_from_heif(heifkit.HeifFile())


# ---------------------------------------------------------------------------------------------------
# encoder parameters


def test_enc_params_not_mutated():
    params = {"x265:ctu": "32"}
    heifkit.from_pillow(noise((16, 16))).save(io.BytesIO(), enc_params=params, chroma=444, quality=40)
    assert params == {"x265:ctu": "32"}
    pil_bytes(noise((16, 16)), enc_params=params, chroma=422)
    assert params == {"x265:ctu": "32"}


def test_enc_params_are_applied():
    im = noise((64, 64))
    small_ctu = save_bytes(heifkit.from_pillow(im), enc_params={"x265:ctu": "16"})
    big_ctu = save_bytes(heifkit.from_pillow(im), enc_params={"x265:ctu": 64})  # non-str values are str()'d
    assert small_ctu != big_ctu


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_unknown_enc_params_key_is_valueerror(fmt):
    with pytest.raises(ValueError, match="Unsupported encoder parameter"):
        heifkit.from_pillow(noise((8, 8))).save(io.BytesIO(), format=fmt, enc_params={"no:such:key": "1"})


@pytest.mark.parametrize("quality", [None, -1, 0, 1, 50, 99, 100])
def test_valid_quality_values(quality):
    im = gradient((32, 32))
    f = heifkit.open_heif(save_bytes(heifkit.from_pillow(im), quality=quality))
    assert f.size == (32, 32)
    assert psnr(np.asarray(f), np.asarray(im)) > (20 if quality in (0, 1) else 30)


@pytest.mark.parametrize("quality", [101, -2])
def test_invalid_quality_is_valueerror(quality):
    with pytest.raises(ValueError):
        heifkit.from_pillow(noise((8, 8))).save(io.BytesIO(), quality=quality)
    with pytest.raises(ValueError):
        pil_bytes(noise((8, 8)), quality=quality)


@pytest.mark.parametrize("quality", [1.5, "50", True, [50]])
def test_quality_of_a_wrong_type_is_typeerror(quality):
    """A wrong type is a TypeError (pillow_heif raises one for a str too)."""
    with pytest.raises(TypeError, match="quality"):
        heifkit.from_pillow(noise((8, 8))).save(io.BytesIO(), quality=quality)
    with pytest.raises(TypeError, match="quality"):
        pil_bytes(noise((8, 8)), quality=quality)


def test_quality_none_is_encoder_default():
    im = noise((32, 32))
    assert save_bytes(heifkit.from_pillow(im)) == save_bytes(heifkit.from_pillow(im), quality=None)
    assert save_bytes(heifkit.from_pillow(im), quality=None) == save_bytes(heifkit.from_pillow(im), quality=50)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_quality_orders_sizes(fmt):
    im = noise((128, 128))
    lengths = [len(save_bytes(heifkit.from_pillow(im), format=fmt, quality=q)) for q in (20, 50, 100)]
    assert lengths[0] < lengths[1] < lengths[2]
    if fmt == "HEIF":
        plugin = [len(pil_bytes(im, quality=q)) for q in (20, 50, 100)]
        assert plugin[0] < plugin[1] < plugin[2]


def test_options_quality_default_and_kwarg_priority():
    im = noise((32, 32))
    q10 = save_bytes(heifkit.from_pillow(im), quality=10)
    q90 = save_bytes(heifkit.from_pillow(im), quality=90)
    options.QUALITY = 10
    assert save_bytes(heifkit.from_pillow(im)) == q10
    assert pil_bytes(im) == pil_bytes(im, quality=10)
    assert save_bytes(heifkit.from_pillow(im), quality=90) == q90
    assert len(pil_bytes(im, quality=90)) > len(pil_bytes(im))
    options.QUALITY = None
    heifkit.register_heif_opener(quality=10)
    assert options.QUALITY == 10
    assert save_bytes(heifkit.from_pillow(im)) == q10


@pytest.mark.parametrize("chroma", [420, 422, 444, "420", "422", "444"])
def test_chroma_is_read_back(chroma):
    im = gradient((32, 32))
    f = heifkit.open_heif(save_bytes(heifkit.from_pillow(im), chroma=chroma))
    assert f.info["chroma"] == int(chroma)
    assert pillow_heif.open_heif(save_bytes(heifkit.from_pillow(im), chroma=chroma)).info["chroma"] == int(chroma)
    assert psnr(np.asarray(f), np.asarray(im)) > 30
    assert heifkit.open_heif(pil_bytes(im, chroma=chroma)).info["chroma"] == int(chroma)


@pytest.mark.parametrize("chroma", [420, 444])
def test_chroma_avif(chroma):
    f = heifkit.open_heif(save_bytes(heifkit.from_pillow(gradient((32, 32))), format="AVIF", chroma=chroma))
    assert f.info["chroma"] == chroma


@pytest.mark.parametrize(("subsampling", "chroma"), [("4:4:4", 444), ("4:2:2", 422), ("4:2:0", 420)])
def test_subsampling_is_byte_identical_to_chroma(subsampling, chroma):
    im = noise((32, 32))
    by_chroma = save_bytes(heifkit.from_pillow(im), chroma=chroma)
    assert save_bytes(heifkit.from_pillow(im), subsampling=subsampling) == by_chroma
    assert pil_bytes(im, subsampling=subsampling) == pil_bytes(im, chroma=chroma)
    # subsampling has priority over chroma
    assert (
        save_bytes(heifkit.from_pillow(im), subsampling=subsampling, chroma=420 if chroma != 420 else 444) == by_chroma
    )


def test_default_chroma_is_420():
    im = noise((32, 32))
    data = save_bytes(heifkit.from_pillow(im))
    assert data == save_bytes(heifkit.from_pillow(im), chroma=420)
    assert heifkit.open_heif(data).info["chroma"] == 420


@pytest.mark.parametrize("chroma", [411, "4:4:4", 0, "abc"])
def test_invalid_chroma_is_valueerror(chroma):
    with pytest.raises(ValueError):
        heifkit.from_pillow(noise((8, 8))).save(io.BytesIO(), chroma=chroma)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_speed_valid_range(fmt):
    im = gradient((32, 32))
    for speed in range(11):
        f = heifkit.open_heif(save_bytes(heifkit.from_pillow(im), format=fmt, speed=speed))
        assert f.size == (32, 32)
        assert psnr(np.asarray(f), np.asarray(im)) > 30
    assert heifkit.open_heif(pil_bytes(im, speed=0)).size == (32, 32)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
@pytest.mark.parametrize(("speed", "error"), [(-1, ValueError), (11, ValueError), (2.5, TypeError),
                                              ("fast", TypeError), (True, TypeError)])  # fmt: skip
def test_speed_invalid(fmt, speed, error):
    with pytest.raises(error, match="speed"):
        heifkit.from_pillow(noise((8, 8))).save(io.BytesIO(), format=fmt, speed=speed)


def test_speed_changes_the_heif_output():
    im = noise((64, 64))
    assert save_bytes(heifkit.from_pillow(im), speed=0) != save_bytes(heifkit.from_pillow(im), speed=10)


@pytest.mark.parametrize(("fmt", "encoder"), [("HEIF", "x265"), ("AVIF", "aom")])
def test_preferred_encoder_valid(fmt, encoder):
    im = noise((16, 16))
    default = save_bytes(heifkit.from_pillow(im), format=fmt)
    options.PREFERRED_ENCODER = {"HEIF": "", "AVIF": "", fmt: encoder}
    assert save_bytes(heifkit.from_pillow(im), format=fmt) == default


@pytest.mark.parametrize(
    ("fmt", "encoder"), [("HEIF", "no-such-encoder"), ("AVIF", "no-such-encoder"), ("AVIF", "x265")]
)
def test_preferred_encoder_unknown_is_valueerror(fmt, encoder):
    options.PREFERRED_ENCODER = {"HEIF": "", "AVIF": "", fmt: encoder}
    with pytest.raises(ValueError, match=encoder):
        heifkit.from_pillow(noise((8, 8))).save(io.BytesIO(), format=fmt)
    if fmt == "HEIF":
        with pytest.raises(ValueError):
            pil_bytes(noise((8, 8)))


def test_register_heif_opener_preferred_encoder():
    heifkit.register_heif_opener(preferred_encoder={"HEIF": "no-such-encoder", "AVIF": ""})
    with pytest.raises(ValueError):
        pil_bytes(noise((8, 8)))


# ---------------------------------------------------------------------------------------------------
# premultiplied alpha


def _premultiplied(size=(16, 16)) -> Image.Image:
    return noise(size, "RGBA", seed=5).convert("RGBa")


def test_premultiplied_rgba_round_trip():
    im = _premultiplied()
    data = save_bytes(heifkit.from_pillow(im), **LOSSLESS)
    f = heifkit.open_heif(data)
    assert (f.mode, f.premultiplied_alpha, f.has_alpha) == ("RGBa", True, True)
    assert np.array_equal(np.asarray(f), np.asarray(im))
    theirs = pillow_heif.open_heif(data)
    assert (theirs.mode, theirs.premultiplied_alpha) == ("RGBa", True)
    with Image.open(io.BytesIO(data)) as back:
        assert back.mode == "RGBa"


def test_premultiplied_la_round_trip():
    la = noise((16, 16), "LA", seed=6).convert("La")
    f = heifkit.open_heif(save_bytes(heifkit.from_pillow(la), **LOSSLESS))
    assert (f.mode, f.premultiplied_alpha) == ("RGBa", True)  # monochrome with alpha reads as RGB(A)
    back, src = np.asarray(f), np.asarray(la)
    for c in range(3):
        assert np.array_equal(back[..., c], src[..., 0])
    assert np.array_equal(back[..., 3], src[..., 1])


def test_premultiplied_via_pillow_save_and_setter():
    im = _premultiplied()
    f = heifkit.open_heif(pil_bytes(im, **LOSSLESS))
    assert f.mode == "RGBa" and np.array_equal(np.asarray(f), np.asarray(im))
    straight = noise((16, 16), "RGBA", seed=8)
    heif_file = heifkit.from_pillow(straight)
    assert heif_file.premultiplied_alpha is False
    assert heifkit.open_heif(save_bytes(heif_file)).mode == "RGBA"
    heif_file.premultiplied_alpha = True
    assert heif_file.mode == "RGBa"
    assert heifkit.open_heif(save_bytes(heif_file)).mode == "RGBa"


@pytest.mark.parametrize(("mode", "channels"), [("RGBa", 4), ("BGRa", 4), ("La", 2)])
def test_premultiplied_from_bytes(mode, channels):
    data = bytes(range(64)) * channels
    f = heifkit.open_heif(save_bytes(heifkit.from_bytes(mode, (8, 8), data), **LOSSLESS))
    assert f.mode == "RGBa" and f.premultiplied_alpha


# ---------------------------------------------------------------------------------------------------
# AVIF through Pillow (needs register_avif_opener: done in a child process so that Pillow's own AVIF
# plugin stays registered here)


def test_pillow_avif_save_in_subprocess():
    script = textwrap.dedent(
        """
        import io, json
        import numpy as np
        from PIL import Image
        import heifkit

        heifkit.register_avif_opener()
        rng = np.random.default_rng(0)
        im = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
        out = io.BytesIO()
        im.save(out, format="AVIF", quality=-1, chroma=444, matrix_coefficients=0, thumbnails=[16])
        data = out.getvalue()
        f = heifkit.open_heif(data)
        frames = io.BytesIO()  # Pillow's AVIF contract: save_all of several frames is an animation
        im.save(frames, format="AVIF", save_all=True, append_images=[im.convert("L")], speed=9)
        one = io.BytesIO()
        im.save(one, format="AVIF", append_images=[Image.new("L", (8, 8))], save_all=False)
        bad = ""
        try:  # frames of an animation share one size, as in Pillow's plugin
            im.save(io.BytesIO(), format="AVIF", save_all=True, append_images=[Image.new("L", (8, 8))])
        except ValueError as exc:
            bad = str(exc)
        reopened = Image.open(io.BytesIO(data))
        print(json.dumps({
            "mimetype": heifkit.get_file_mimetype(data),
            "size": f.size,
            "thumbnails": f.info["thumbnails"],
            "chroma": f.info["chroma"],
            "exact": bool(np.array_equal(np.asarray(f), np.asarray(im))),
            "frames": len(heifkit.open_sequence(frames.getvalue())),
            "one": len(heifkit.open_heif(one.getvalue())),
            "bad_speed": bad,
            "reopened": type(reopened).__module__ + "." + type(reopened).__name__,
        }))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=child_env(), timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {
        "mimetype": "image/avif",
        "size": [32, 24],
        "thumbnails": [16],  # only heifkit's save hook knows `thumbnails`: Pillow's AVIF plugin was replaced
        "chroma": 444,
        "exact": True,
        "frames": 2,
        "one": 1,
        "bad_speed": result["bad_speed"],
        "reopened": "heifkit.plugin.AvifImageFile",
    }
    assert "share one size" in result["bad_speed"]
