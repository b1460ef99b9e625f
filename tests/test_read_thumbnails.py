"""Embedded thumbnails: decoding them (HeifImage.get_thumbnail) and the plugin's draft()."""

from __future__ import annotations

import io

import numpy as np
import pillow_heif
import pytest
from PIL import Image

import heifkit
from conftest import CAT, CORPUS, ZPUG, psnr

BIG = CORPUS / "pheif_200MP.heic"  # 12240x16320 with one 384x512 thumbnail


@pytest.fixture(autouse=True)
def _plugin(monkeypatch):
    heifkit.register_heif_opener()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)


def test_get_thumbnail_sizes_modes_and_info():
    f = heifkit.open_heif(ZPUG)
    thumbs = [f[0].get_thumbnail(i) for i in range(2)]
    assert [t.size for t in thumbs] == [(32, 32), (16, 16)]
    assert [t.mode for t in thumbs] == ["RGB", "RGB"]
    assert thumbs[0].info["bit_depth"] == 8 and thumbs[0].info["chroma"] == 420
    assert repr(thumbs[0]) == "<HeifThumbnail 32x32 RGB>"
    assert f[0].get_thumbnail(-1).size == (16, 16)
    assert f.get_thumbnail(0).size == (32, 32)  # HeifFile: the primary's (image 1)
    assert len(thumbs[0].data) == thumbs[0].stride * 32


def test_get_thumbnail_pixels_equal_pillow_heif():
    ours = heifkit.open_heif(ZPUG)
    theirs = pillow_heif.open_heif(ZPUG)
    for i in range(2):
        np.testing.assert_array_equal(np.asarray(ours[0].get_thumbnail(i)), np.asarray(theirs[0].get_thumbnail(i)))


def test_thumbnail_looks_like_the_image():
    f = heifkit.open_heif(ZPUG)
    thumb = np.asarray(f[0].get_thumbnail(0).to_pillow(), dtype=np.float64)
    small = np.asarray(f[0].to_pillow().resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
    assert np.abs(thumb - small).mean() < 12


def test_get_thumbnail_index_errors():
    f = heifkit.open_heif(ZPUG)
    with pytest.raises(IndexError, match="invalid thumbnail index"):
        f[0].get_thumbnail(2)
    with pytest.raises(IndexError):
        f[2].get_thumbnail(0)  # no thumbnails
    made = heifkit.from_bytes("L", (8, 8), bytes(64))
    made[0].info["thumbnails"] = [4]  # a size to generate on save, not an embedded thumbnail
    with pytest.raises(IndexError):
        made[0].get_thumbnail(0)


def test_broken_thumbnail_raises_heif_error():
    # Canon's 320x212 thumbnail (coded 320x256), its ispe made to say 320x300: more than it codes, so it stays
    # libheif's error (only a picture bigger than its ispe is cropped to size)
    ispe = b"ispe\0\0\0\0" + (320).to_bytes(4, "big") + (212).to_bytes(4, "big")
    data = CAT.read_bytes()
    assert data.count(ispe) == 1
    broken = data.replace(ispe, b"ispe\0\0\0\0" + (320).to_bytes(4, "big") + (300).to_bytes(4, "big"))
    with pytest.raises(heifkit.HeifError, match="size"):
        heifkit.open_heif(broken).get_thumbnail(1).load()


def test_draft_uses_the_embedded_thumbnail():
    with Image.open(BIG) as im:
        assert im.size == (12240, 16320)
        assert im.draft(None, (384, 512)) == ("RGB", (0, 0, 384, 512))
        assert im.size == (384, 512)
        im.load()
        expected = np.asarray(heifkit.open_heif(BIG).get_thumbnail(0))
        np.testing.assert_array_equal(np.asarray(im), expected)


def test_image_thumbnail_on_200mp_decodes_only_the_thumbnail():
    with Image.open(BIG) as im:
        im.thumbnail((256, 256))
        assert im.size == (192, 256)
        assert im._heif_file is None or im._draft is not None
        # the result is the embedded thumbnail downscaled, not a decode of 200 MP
        ref = heifkit.open_heif(BIG).get_thumbnail(0).to_pillow()
        ref.thumbnail((256, 256))
        np.testing.assert_array_equal(np.asarray(im), np.asarray(ref))


def test_draft_declines_when_no_thumbnail_is_big_enough():
    with Image.open(BIG) as im:
        assert im.draft(None, (1000, 1000)) is None
        assert im.size == (12240, 16320)


def test_canon_thumbnails_coded_bigger_than_signalled_decode():
    # Canon codes its 1616x1080 and 320x212 previews as 1664x1088 and 320x256 HEVC pictures without a
    # conformance window; libheif 1.23.6 alone refuses them ("Decoded image does not have the size signaled")
    f = heifkit.open_heif(CAT)
    full = f.to_pillow()
    for index, size in enumerate([(1616, 1080), (320, 212), (160, 120)]):
        thumbnail = f.get_thumbnail(index)
        assert thumbnail.size == size
        pixels = np.asarray(thumbnail.to_pillow(), dtype=np.float64)
        assert pixels.shape == (size[1], size[0], 3)
        if index < 2:  # the 160x120 one is 4:3: another crop of the scene
            reference = np.asarray(full.resize(size, Image.Resampling.BOX), dtype=np.float64)
            assert psnr(pixels, reference) > 25  # the top-left of the coded picture is the image


def test_draft_uses_canon_thumbnails():
    from heifkit.plugin import _same_aspect

    assert _same_aspect((1616, 1080), (4240, 2832)) and _same_aspect((320, 212), (4240, 2832))
    assert not _same_aspect((160, 120), (4240, 2832))  # 4:3: another crop
    with Image.open(CAT) as im:
        assert im.draft(None, (300, 200)) == ("RGB", (0, 0, 320, 212))
        im.load()
        assert im.size == (320, 212)
        expected = heifkit.open_heif(CAT).get_thumbnail(1).to_pillow()
        assert im.tobytes() == expected.tobytes()
    with Image.open(CAT) as im:
        im.thumbnail((300, 200))  # asks for (600, 400): the 1616x1080 preview, not 12 MP
        assert im.size == (299, 200)


def test_oversized_parser_never_raises_on_damaged_files():
    from heifkit._decode import oversized as _oversized

    data = CAT.read_bytes()[:65536]  # ftyp and meta, where every box and hvcC parsed lives
    assert _oversized.patched_file(CAT.read_bytes(), 6) is not None
    rng = np.random.default_rng(0)
    meta_end = 40 + 0x740  # ftyp (40 bytes), then the meta box
    for length in range(0, 8000, 37):
        result = _oversized.patched_file(data[:length], 6)
        assert (result is None) if length < meta_end else (result is not None)
    for _ in range(300):
        damaged = bytearray(data)
        for at in rng.integers(0, 8000, 4):
            damaged[at] = int(rng.integers(0, 256))
        result = _oversized.patched_file(bytes(damaged), int(rng.choice([6, 7])))
        assert result is None or len(result[0]) == len(damaged)


def _file_with_thumbnail(size: tuple[int, int], thumbnail_size: tuple[int, int]) -> bytes:
    """A HEIF with a ``size`` image whose thumbnail is ``thumbnail_size`` (even), as cameras round them.

    libheif scales thumbnails exactly, so the image is encoded at the thumbnail's aspect ratio and its
    ``ispe`` is then patched to ``size``: draft() reads sizes at open and decodes only the thumbnail.
    """
    coded = (thumbnail_size[0] * 3, thumbnail_size[1] * 3)  # libheif then scales to thumbnail_size exactly
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (coded[1], coded[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    heifkit.from_pillow(Image.fromarray(pixels)).save(out, quality=30, speed=10, thumbnails=[max(thumbnail_size)])
    data = out.getvalue()
    old = b"ispe\0\0\0\0" + coded[0].to_bytes(4, "big") + coded[1].to_bytes(4, "big")
    assert data.count(old) == 1
    return data.replace(old, b"ispe\0\0\0\0" + size[0].to_bytes(4, "big") + size[1].to_bytes(4, "big"))


@pytest.mark.parametrize(
    ("thumbnail_size", "used"),
    [
        ((300, 198), True),  # 2.1 px (1%) short of 300x200.1, as cameras round: a scaled copy
        ((300, 200), True),  # under a pixel off
        ((300, 226), False),  # 4:3: another crop
        ((200, 300), False),  # rotated
    ],
)
def test_draft_allows_camera_rounding(thumbnail_size, used, heif_plugin):
    data = _file_with_thumbnail((1000, 667), thumbnail_size)
    assert heifkit.open_heif(data).get_thumbnail(0).size == thumbnail_size
    with Image.open(io.BytesIO(data)) as im:
        result = im.draft(None, (150, 100))
        if used:
            assert result == ("RGB", (0, 0, *thumbnail_size))
            im.load()
            assert im.size == thumbnail_size
        else:
            assert result is None and im.size == (1000, 667)


def test_draft_after_load_or_without_size_is_a_no_op():
    with Image.open(ZPUG) as im:
        assert im.draft(None, None) is None
        im.load()
        assert im.draft(None, (16, 16)) is None
        assert im.size == (64, 64)


def test_seek_drops_the_draft():
    with Image.open(ZPUG) as im:
        im.seek(0)
        assert im.draft(None, (16, 16)) == ("RGB", (0, 0, 16, 16))
        im.seek(1)
        assert im.size == (64, 64)
        im.load()
        assert im.size == (64, 64)


def test_draft_takes_libheifs_rounded_thumbnail():
    # libheif makes a 50x24 thumbnail of a 201x101 image (coded 202x102 and cropped): 1.1 px of rounding
    out = io.BytesIO()
    heifkit.from_pillow(Image.new("RGB", (201, 101), (200, 30, 30))).save(out, quality=90, thumbnails=[50])
    thumbnail = heifkit.open_heif(out)[0].get_thumbnail(0)
    assert thumbnail.size[0] == 50
    with Image.open(out) as im:
        assert im.draft(None, (12, 12)) == ("RGB", (0, 0, *thumbnail.size))


def _pair(image_transforms=(), thumb_transforms=(), image_info=None, thumb_info=None, thumb_size=(32, 32)):
    from heifkit.image import HeifImage, HeifThumbnail

    image = HeifImage((64, 64), "RGB", dict(image_info or {}), transforms=image_transforms)
    thumbnail = HeifThumbnail(thumb_size, "RGB", dict(thumb_info or {}), transforms=thumb_transforms)
    return thumbnail, image


SRGB_NCLX = {"color_primaries": 1, "transfer_characteristics": 13, "matrix_coefficients": 6, "full_range_flag": 1}
PQ_NCLX = {"color_primaries": 9, "transfer_characteristics": 16, "matrix_coefficients": 9, "full_range_flag": 1}


@pytest.mark.parametrize(
    ("pair", "scaled"),
    [
        (_pair(), True),
        (_pair((("irot", 270),), (("irot", 270),)), True),
        (_pair((("irot", 270),), ()), False),  # the thumbnail is not rotated like the image
        (_pair((("imir", 1),), (("imir", 0),)), False),
        (_pair((("clap", 0, 0, 1, 1, 65, 65),), ()), True),  # only the encoder's padding is cropped
        (_pair((("clap", 8, 8, 8, 8, 80, 80),), ()), False),  # a real crop the thumbnail does not have
        (_pair((("clap", 8, 8, 8, 8, 80, 80),), (("clap", 4, 4, 4, 4, 40, 40),)), True),  # the same crop
        (_pair((("clap", 8, 8, 8, 8, 80, 80),), (("clap", 0, 8, 16, 8, 80, 80),)), False),  # another crop
        (_pair(image_info={"nclx_profile": SRGB_NCLX}, thumb_info={"nclx_profile": PQ_NCLX}), False),
        (_pair(image_info={"nclx_profile": SRGB_NCLX}, thumb_info={"nclx_profile": dict(SRGB_NCLX)}), True),
        (_pair(image_info={"nclx_profile": SRGB_NCLX}), True),  # no profile on the thumbnail: the file's
        (_pair(image_info={"icc_profile": b"a"}, thumb_info={"icc_profile": b"b"}), False),
        (_pair(thumb_size=(32, 24)), False),  # 4:3 thumbnail of a square image
    ],
)
def test_a_scaled_copy_has_the_same_orientation_crop_and_profile(pair, scaled):
    from heifkit.plugin import _is_scaled_copy

    assert _is_scaled_copy(*pair) is scaled
