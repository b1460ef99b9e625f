"""Region decode: ``HeifImage.crop(box)`` and the Pillow plugin's ``crop``/``reduce`` before ``load()`` decode
only the tiles that cover the box, and give exactly the pixels of a crop of the whole decode."""

from __future__ import annotations

import io
import random
import textwrap

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import ARROW, CAT, CORPUS, PUG, ZPUG, corpus_params, decodable_files, oriented_grid
from heifkit._decode import pixels as decode
from heifkit._decode import region
from subproc import run_python

BIG = CORPUS / "pheif_200MP.heic"  # 12240x16320 shown (irot 270), 24x32 grid of 512 px tiles
SINGLE = CORPUS / "libheif_rainbow-451x461.heic"  # one coded image (no grid), cropped by clap to odd sizes


def random_boxes(size: tuple[int, int], count: int, seed: int) -> list[tuple[int, int, int, int]]:
    """``count`` boxes inside an image of ``size``: random spans up to 700 px, plus the corners' pixels,
    a box on a 512-px tile boundary and the whole image."""
    rnd = random.Random(seed)
    width, height = size
    boxes = [(0, 0, 1, 1), (width - 1, height - 1, width, height), (0, 0, width, height)]
    boxes.append((min(511, width - 2), min(511, height - 2), min(513, width), min(513, height)))
    while len(boxes) < count:
        left, top = rnd.randrange(width), rnd.randrange(height)
        right = rnd.randrange(left + 1, min(width, left + 700) + 1)
        bottom = rnd.randrange(top + 1, min(height, top + 700) + 1)
        boxes.append((left, top, right, bottom))
    return boxes


@pytest.mark.parametrize("path", [PUG, BIG, ARROW, SINGLE], ids=lambda p: p.name)
def test_fifty_random_boxes_equal_a_crop_of_the_whole_decode(path):
    """The acceptance check: one whole decode per file, 50 regions decoded on their own."""
    whole = heifkit.open_heif(path)
    expected = np.asarray(whole)
    shown = whole.size
    del whole
    f = heifkit.open_heif(path)
    for box in random_boxes(shown, 50, seed=len(path.name)):
        left, top, right, bottom = box
        part = f.crop(box)
        assert part.size == (right - left, bottom - top)
        got = np.asarray(part)
        assert got.shape[:2] == (bottom - top, right - left)
        assert np.array_equal(got, expected[top:bottom, left:right]), box
    assert f[0]._data is None  # the image itself was never decoded whole


def test_only_the_tiles_covering_the_box_are_decoded(monkeypatch):
    decoded = []
    original = decode.covering_tiles

    def spy(*args):
        tiles = list(original(*args))
        decoded.extend(tiles)
        return iter(tiles)

    monkeypatch.setattr(decode, "covering_tiles", spy)
    f = heifkit.open_heif(PUG)  # 8x6 tiles of 512 px, no rotation
    f.crop((600, 100, 1100, 400)).load()
    assert decoded == [(1, 0), (2, 0)]
    decoded.clear()
    f.crop((1023, 1023, 1025, 1025)).load()  # a 2x2 box on the corner of four tiles
    assert decoded == [(1, 1), (2, 1), (1, 2), (2, 2)]


def test_covering_tiles_of_a_shifted_grid():
    # a rotated grid starts left of/above the image: its first tile shows only its last 100 px columns
    assert list(region.covering_tiles((0, 0, 100, 10), (512, 512), (412, 0), (3, 1))) == [(0, 0)]
    assert list(region.covering_tiles((99, 0, 101, 10), (512, 512), (412, 0), (3, 1))) == [(0, 0), (1, 0)]
    assert list(region.covering_tiles((0, 0, 1124, 1), (512, 512), (412, 0), (3, 1))) == [(0, 0), (1, 0), (2, 0)]


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_boxes_are_in_display_coordinates(fmt, orientation):
    data = oriented_grid(fmt, (200, 130), orientation)
    expected = np.asarray(heifkit.open_heif(data))
    f = heifkit.open_heif(data)
    assert decode.image_tiling(f[0]._handle) is not None
    for left, top, right, bottom in random_boxes(f.size, 12, seed=orientation):
        got = np.asarray(f.crop((left, top, right, bottom)))
        assert np.array_equal(got, expected[top:bottom, left:right])


@pytest.mark.parametrize(
    ("path", "flags"),
    [
        (CAT, {"convert_hdr_to_8bit": False}),  # 10-bit 4:2:2 grid -> RGB;16
        (CAT, {"convert_hdr_to_8bit": False, "bgr_mode": True}),
        (CORPUS / "pheif_RGBA_12__29x100.heif", {"convert_hdr_to_8bit": False, "hdr_to_16bit": False}),
        (CORPUS / "libavif_color_grid_alpha_nogrid.avif", {}),  # grid colour, alpha as one image
        (CORPUS / "libavif_sofa_grid1x5_420.avif", {}),
        (ZPUG, {}),  # primary: L
        (PUG, {"remove_stride": False}),  # regions have tight rows whatever the whole image's stride
        (CORPUS / "libheif_example.heic", {}),  # one image, 4:2:0, with a thumbnail
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_modes_and_layouts(path, flags):
    whole = heifkit.open_heif(path, **flags)
    expected = np.asarray(whole)
    f = heifkit.open_heif(path, **flags)
    count = 3 if path == CAT else 6  # CAT's tiles are 2176x1472 at 10 bits: each box decodes up to four
    for left, top, right, bottom in random_boxes(f.size, count, seed=3):
        part = f.crop((left, top, right, bottom))
        assert part.mode == whole.mode
        assert part.stride == (right - left) * expected.itemsize * (1 if expected.ndim == 2 else expected.shape[2])
        assert np.array_equal(np.asarray(part), expected[top:bottom, left:right])


def test_decoded_and_new_images_are_cut_from_memory():
    f = heifkit.open_heif(PUG)
    f[0].load()
    part = f.crop((10, 20, 30, 50))
    assert part._data is not None  # copied at once, nothing decoded again
    assert np.array_equal(np.asarray(part), np.asarray(f)[20:50, 10:30])
    made = heifkit.from_bytes("RGB", (4, 3), bytes(range(36)))
    cut = made[0].crop((1, 1, 3, 2))
    assert bytes(cut.data) == bytes(range(15, 21))
    assert cut.pending_orientation  # an image made from bytes keeps its EXIF orientation pending


def test_a_region_is_a_new_image_without_what_belongs_to_the_whole():
    f = heifkit.open_heif(PUG)
    part = f.crop((0, 0, 64, 64))
    assert isinstance(part, heifkit.HeifImage)
    assert part.info["depth_images"] == [] and part.info["aux"] == {} and "gain_maps" not in part.info
    arrow = heifkit.open_heif(ARROW)
    assert arrow.info["thumbnails"] and arrow.crop((0, 0, 8, 8)).info["thumbnails"] == []  # of the whole image
    assert part.info["primary"] is False
    assert part.info["exif"] == f.info["exif"] and part.info["icc_profile"] == f.info["icc_profile"]
    out = io.BytesIO()
    part_file = heifkit.HeifFile()
    part_file.add_from_heif(part)
    part_file.save(out, quality=90)
    saved = heifkit.open_heif(out.getvalue())
    assert saved.size == (64, 64) and saved.info["depth_images"] == [] and saved.info["gain_maps"] == []


@pytest.mark.parametrize(
    "box",
    [(0, 0, 0, 10), (5, 5, 4, 10), (-1, 0, 10, 10), (0, 0, 4033, 10), (0, 0, 10, 3025)],
)
def test_boxes_outside_the_image_or_empty_are_refused(box):
    f = heifkit.open_heif(PUG)
    with pytest.raises(ValueError, match="not inside the 4032x3024 image"):
        f.crop(box)


@pytest.mark.parametrize("box", [(0, 0, 10), "abcd", (0.5, 0, 10, 10), None])
def test_boxes_that_are_not_four_integers_are_refused(box):
    f = heifkit.open_heif(PUG)
    with pytest.raises(TypeError, match="four integers"):
        f.crop(box)


def test_regions_outlive_their_file_in_every_order():
    for order in range(3):
        f = heifkit.open_heif(ARROW)
        part = f.crop((100, 200, 300, 400))
        other = f.crop((0, 0, 8, 8))
        if order == 0:
            del f
        elif order == 1:
            other.load()
            del f, other
        else:
            del other
        assert part.to_pillow().size == (200, 200)
        del part
        heifkit.open_heif(PUG).crop((0, 0, 16, 16)).load()  # the next file is unaffected


def test_the_plain_loop():
    for _ in range(3):
        for path in (PUG, ARROW, SINGLE):
            f = heifkit.open_heif(path)
            part = f.crop((5, 5, 105, 55))
            assert np.asarray(part).shape[:2] == (50, 100)
            del f, part


@pytest.mark.parametrize("name", corpus_params(n for n in decodable_files() if n != BIG.name))  # BIG: checked above
def test_a_region_of_every_decodable_file(name):
    """The plain user loop over the corpus: open, cut the middle, look, drop; the same pixels as a whole decode."""
    expected = np.asarray(heifkit.open_heif(CORPUS / name))
    f = heifkit.open_heif(CORPUS / name)
    width, height = f.size
    box = (width // 4, height // 4, max(width // 4 + 1, 3 * width // 4), max(height // 4 + 1, 3 * height // 4))
    got = np.asarray(f.crop(box))
    assert np.array_equal(got, expected[box[1] : box[3], box[0] : box[2]])
    del f, got


# --- the Pillow plugin ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pug_loaded():
    heifkit.register_heif_opener()
    with Image.open(PUG) as im:
        im.load()
        return im.copy()


@pytest.mark.parametrize(
    "box", [(100, 200, 700, 900), (100.4, 199.6, 700.2, 900), (4000, 3000, 4032, 3024), (511, 0, 513, 3024)]
)
def test_pillow_crop_before_load_decodes_the_region(pug_loaded, box, monkeypatch):
    calls = []
    original = decode.decode

    def spy(*args, **kwargs):
        calls.append(kwargs.get("box", args[3] if len(args) > 3 else None))
        return original(*args, **kwargs)

    monkeypatch.setattr(decode, "decode", spy)
    monkeypatch.setattr("heifkit.image.decode", spy)
    with Image.open(PUG) as im:
        part = im.crop(box)
        assert im._loaded_frame == -1  # the image itself is still not loaded
        assert part.info == im.info
    assert part.mode == "RGB"
    assert part.tobytes() == pug_loaded.crop(box).tobytes()
    assert calls and None not in calls  # only regions were decoded


def test_pillow_crop_after_load_and_out_of_bounds_boxes_use_pillow(pug_loaded):
    with Image.open(PUG) as im:
        assert im.crop((-10, -10, 20, 20)).tobytes() == pug_loaded.crop((-10, -10, 20, 20)).tobytes()
        im.load()
        assert im.crop((5, 5, 25, 25)).tobytes() == pug_loaded.crop((5, 5, 25, 25)).tobytes()
    with Image.open(PUG) as im:
        assert im.crop().size == im.size  # no box: a copy, as Pillow gives


@pytest.mark.parametrize(("factor", "box"), [(3, (101, 33, 1000, 777)), ((2, 5), (0, 0, 999, 1001)), (4, None)])
def test_pillow_reduce_with_a_box_decodes_the_region(pug_loaded, factor, box):
    with Image.open(PUG) as im:
        assert im.reduce(factor, box).tobytes() == pug_loaded.reduce(factor, box).tobytes()


def test_pillow_draft_then_crop_cuts_the_thumbnail():
    with Image.open(CAT) as im:
        im.draft("RGB", (400, 300))  # a 1616 px preview instead of the 4240 px photo
        size = im.size
        part = im.crop((10, 10, 110, 60))
        assert part.size == (100, 50) and size[0] < 4240
    with Image.open(CAT) as full:
        full.draft("RGB", (400, 300))
        full.load()
        assert full.crop((10, 10, 110, 60)).tobytes() == part.tobytes()


def test_pillow_crop_of_other_frames():
    with Image.open(ZPUG) as im:
        im.seek(2)
        part = im.crop((10, 10, 40, 30))
    expected = heifkit.open_heif(ZPUG)[2].to_pillow().crop((10, 10, 40, 30))
    assert part.tobytes() == expected.tobytes()


_PEAK = textwrap.dedent(
    """
    import sys, heifkit
    def status(key):
        with open("/proc/self/status") as s:
            return next(int(line.split()[1]) for line in s if line.startswith(key + ":")) // 1024
    base = status("VmRSS")
    f = heifkit.open_heif(sys.argv[1])
    part = f.crop((6000, 8000, 6512, 8512))
    part.load()
    assert part.size == (512, 512)
    print(status("VmHWM") - base)
    """
)


def test_a_512_region_of_200mp_stays_within_100_mib():
    """Measured in a fresh process: peak resident memory above what it held before opening the file."""
    out = run_python(_PEAK, [str(BIG)], timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) <= 100


def test_a_region_beyond_what_the_image_decodes_to_is_a_typed_error() -> None:
    """A damaged file (found by the fuzzer) signals a 524298x8 image whose picture decodes to 34x8: a region
    past the decoded picture is a DecoderError, not an untyped ValueError (and never bytes outside it)."""
    path = CORPUS.parent / "fuzz_regressions" / "read-region-beyond-decoded-size.avif"
    image = heifkit.open_heif(path)[0]
    assert image.size == (524298, 8)
    with pytest.raises(heifkit.DecoderError, match="decoded to 34x8"):
        image.crop((40, 0, 100, 8)).load()
    assert image.crop((2, 1, 30, 7)).to_pillow().size == (28, 6)  # inside the decoded picture: fine
