"""Un-rotated decode: ``open_heif(..., apply_transformations=False)`` gives the stored pixels and the
rotation, mirroring and crop as data (``info["transformations"]``); ``apply_transformations`` applies them;
saving such an image writes them back."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import ARROW, CORPUS, LOSSLESS, PUG, psnr
from heifkit._info.transforms import orientation_of, transposed

# (file, stored size, transformations): the corpus's transformed images
TRANSFORMED = [
    ("pheif_arrow.heic", (4032, 3024), [{"rotate": 270}]),
    ("libheif_rainbow-451x461.heic", (452, 462), [{"crop": (0, 0, 451, 461)}]),
    ("libheif-fuzz_hevc32.heif", (64, 64), [{"crop": (0, 0, 32, 32)}]),
    ("av1avif-linku_kimono.rotate90.avif", (1024, 722), [{"rotate": 270}]),
    ("libavif_abc_color_irot_alpha_irot.avif", (512, 256), [{"rotate": 90}]),
    ("pillow_rot0mir0.avif", (640, 427), [{"mirror": "top_bottom"}]),
    ("pillow_rot1mir0.avif", (427, 640), [{"rotate": 90}, {"mirror": "top_bottom"}]),
    (
        "av1avif-linku_kimono.mirror-vertical.rotate270.crop.avif",
        (1024, 722),
        [{"crop": (39, 272, 369, 657)}, {"rotate": 90}, {"mirror": "top_bottom"}],
    ),
]


@pytest.mark.parametrize(("name", "stored", "steps"), TRANSFORMED, ids=[t[0] for t in TRANSFORMED])
def test_stored_pixels_and_their_transformations(name, stored, steps):
    shown = heifkit.open_heif(CORPUS / name)
    raw = heifkit.open_heif(CORPUS / name, apply_transformations=False)
    assert raw.size == stored
    assert raw.info["transformations"] == steps
    assert "transformations" not in shown.info
    assert np.asarray(raw).shape[:2] == (stored[1], stored[0])
    applied = heifkit.apply_transformations(raw.to_pillow(), raw.info["transformations"])
    assert applied.size == shown.size
    expected = shown.to_pillow()
    if name.startswith(("pillow_", "av1avif-linku_kimono.mirror")):
        # libheif transforms 4:2:0 planes before upsampling the chroma: an odd height or crop offset pairs
        # other chroma rows, so the pixels differ a little; the geometry is the right one of the eight
        assert psnr(np.asarray(applied), np.asarray(expected)) >= 20
        errors = {}
        for orientation in range(1, 9):
            other = heifkit.apply_transformations(raw.to_pillow(), [s for s in steps if "crop" in s])
            other = transposed(other, orientation)
            if other.size == expected.size:
                errors[orientation] = np.abs(np.asarray(other, int) - np.asarray(expected, int)).mean()
        assert min(errors, key=errors.get) == orientation_of(steps)
    else:
        assert applied.tobytes() == expected.tobytes()


def test_untransformed_images_have_an_empty_list():
    raw = heifkit.open_heif(CORPUS / "libheif_example.heic", apply_transformations=False)
    assert raw.info["transformations"] == []
    assert raw.size == heifkit.open_heif(CORPUS / "libheif_example.heic").size


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation(orientation):
    rng = np.random.default_rng(orientation)
    src = Image.fromarray(rng.integers(0, 256, (40, 64, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[274] = orientation
    out = io.BytesIO()
    heifkit.from_pillow(src).save(out, exif=exif.tobytes(), **LOSSLESS)
    raw = heifkit.open_heif(out.getvalue(), apply_transformations=False)
    assert orientation_of(raw.info["transformations"]) == orientation
    crops = [step for step in raw.info["transformations"] if "crop" in step]  # the encoder's padding
    assert np.array_equal(np.asarray(heifkit.apply_transformations(raw.to_pillow(), crops)), np.asarray(src))
    shown = heifkit.open_heif(out.getvalue())
    applied = heifkit.apply_transformations(raw.to_pillow(), raw.info["transformations"])
    assert applied.tobytes() == shown.to_pillow().tobytes()


def test_grids_decode_tile_by_tile_untransformed_too():
    raw = heifkit.open_heif(ARROW, apply_transformations=False, decode_threads=2)
    stored = np.asarray(raw)
    assert stored.shape == (3024, 4032, 3)
    region = heifkit.open_heif(ARROW, apply_transformations=False).crop((500, 400, 1100, 700))
    assert np.array_equal(np.asarray(region), stored[400:700, 500:1100])
    shown = np.asarray(heifkit.open_heif(ARROW))
    assert np.array_equal(np.rot90(stored, k=-1), shown)  # irot 270 ccw = 90 clockwise


def test_depth_and_thumbnails_are_untransformed_too():
    raw = heifkit.open_heif(PUG, apply_transformations=False)
    assert raw.info["depth_images"][0].info["transformations"] == [{"rotate": 0}]
    arrow = heifkit.open_heif(ARROW, apply_transformations=False)
    thumb = arrow.get_thumbnail(0)
    assert thumb.info["transformations"] == [{"rotate": 270}]
    assert thumb.size[0] > thumb.size[1]  # stored landscape, shown portrait


@pytest.mark.parametrize(
    "name", ["pheif_RGB_8_chroma444.heif", "libheif_rainbow-451x461.heic", "av1avif-linku_kimono.rotate90.avif"]
)
def test_saving_writes_the_transformations_back(name):
    shown = heifkit.open_heif(CORPUS / name)
    raw = heifkit.open_heif(CORPUS / name, apply_transformations=False)
    out = io.BytesIO()
    raw.save(out, **LOSSLESS, full_range_flag=1)  # the AV1 source is limited range
    again = heifkit.open_heif(out.getvalue())
    assert again.size == shown.size
    expected = heifkit.apply_transformations(raw.to_pillow(), raw.info["transformations"])
    assert np.array_equal(np.asarray(again), np.asarray(expected))
    rotations = [s for s in raw.info["transformations"] if "crop" not in s]
    written = heifkit.open_heif(out.getvalue(), apply_transformations=False).info["transformations"]
    assert orientation_of(written) == orientation_of(rotations)


def test_a_crop_after_a_rotation_cannot_be_written():
    raw = heifkit.open_heif(CORPUS / "pheif_RGB_8__29x100.heif", apply_transformations=False)
    raw.info["transformations"] = [{"rotate": 90}, {"crop": (0, 0, 10, 10)}]
    with pytest.raises(ValueError, match="libheif writes no crop"):
        raw.save(io.BytesIO())


def test_unknown_steps_are_refused():
    img = Image.new("RGB", (4, 4))
    with pytest.raises(ValueError, match="unknown transformation"):
        heifkit.apply_transformations(img, [{"rotate": 45}])
    with pytest.raises(ValueError, match="unknown transformation"):
        heifkit.apply_transformations(img, [{"shear": 1}])


def test_info_is_kept_by_apply_transformations():
    img = Image.new("RGB", (4, 2))
    img.info["exif"] = b"x"
    out = heifkit.apply_transformations(img, [{"rotate": 90}, {"mirror": "left_right"}, {"crop": (0, 0, 2, 3)}])
    assert out.size == (2, 3) and out.info["exif"] == b"x"
