"""Every decodable corpus file: heifkit's pixels equal an independent libheif decode, and its structure and
``info`` equal pillow_heif's.

Pixels (``test_pixels_match_libheif``): ``oracle.py`` calls libheif through ctypes with its defaults, no
heifkit code involved. For each top-level image (primary first), heifkit's ``to_pillow()`` must be
byte-identical to

* libheif's interleaved 8-bit RGB, or RGBA when the image has alpha (``convert_hdr_to_8bit=1``), after
  Pillow's ``convert`` to that mode (only ``L`` needs one: libheif's mono -> RGB copies Y to R, G and B,
  exactly what Pillow's ``L`` -> ``RGB`` does);
* for ``L`` and ``I;16`` images, also libheif's monochrome decode of the luma plane. ``I;16`` (10/12-bit
  monochrome) is compared *only* that way: heifkit, like pillow_heif, keeps full depth for monochrome
  (``convert_hdr_to_8bit`` does not apply) and widens samples with a plain left shift by ``16 - bits``
  (10-bit white is 65472). Converting ``I;16`` to RGB in Pillow clips at 255 instead of scaling, so a
  comparison with libheif's 8-bit RGB would test Pillow, not heifkit.

The expected mode comes from libheif's handle properties by pillow_heif's rules (contract §2.1), not from
heifkit.

Structure and metadata (``test_info_matches_pillow_heif``): number of images, ``primary_index``, each
image's size, mode, sorted ``info`` keys and the values of the keys in ``COMPARED_KEYS``. pillow_heif 1.8.1
has no AV1 decoder, but opening only parses the container, so it opens every AVIF file here as well; it
opens every file of ``decodable_files()``, so nothing is exempt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
import pytest
from PIL import Image

import heifkit
import oracle
from conftest import CORPUS, corpus_params, decodable_files

FILES = decodable_files()
BIG = {"pheif_200MP.heic"}  # 12240x16320 grid: ~600 MB per decoded copy, ~10 s; kept, decoded once per side
PARAMS = corpus_params(FILES)  # BIG is not among the quick files

COMPARED_KEYS = (
    "bit_depth",
    "thumbnails",
    "primary",
    "exif",
    "xmp",
    "chroma",
    "icc_profile",
    "nclx_profile",
    "pixel_aspect_ratio",
    "tiling",
    "entity_groups",  # pillow_heif >= 1.7: ster/altr/pymd groups, with "images" as top-level indexes
)
ABSENT = "<absent>"
BAND_ROWS = 256  # compare in bands: one tobytes() of a 600 MB Pillow image takes seconds and another copy


def expected_mode(props: oracle.Properties) -> str:
    """pillow_heif's decoded mode with default options (contract §2.1) from libheif's handle properties."""
    if props.monochrome and not props.has_alpha:
        return "L" if props.luma_bits <= 8 else "I;16"
    if props.has_alpha:
        return "RGBa" if props.premultiplied_alpha else "RGBA"
    return "RGB"


def assert_pixels_equal(img: Image.Image, expected: oracle.Decoded, what: str) -> None:
    assert img.size == expected.size, f"{what}: size {img.size} != libheif's {expected.size}"
    width, height = img.size
    row = len(expected.data) // height
    bpp = row // width
    ref = memoryview(expected.data)
    for y0 in range(0, height, BAND_ROWS):
        y1 = min(height, y0 + BAND_ROWS)
        got = img.crop((0, y0, width, y1)).tobytes()
        want = ref[y0 * row : y1 * row]
        if got != want:
            a, b = np.frombuffer(got, np.uint8), np.frombuffer(want, np.uint8)
            k = int(np.flatnonzero(a != b)[0])
            diff = int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())
            raise AssertionError(
                f"{what}: pixels differ from libheif's {expected.mode} decode; first at "
                f"x={(k % row) // bpp}, y={y0 + k // row} (byte {a[k]} != {b[k]}), max byte diff {diff} in rows "
                f"{y0}..{y1}"
            )


def check_image(path: Path, index: int, img: Image.Image) -> None:
    what = f"{path.name}[{index}] {img.mode} {img.size}"
    props = oracle.properties(path, index)
    assert img.mode == expected_mode(props), f"{what}: expected mode {expected_mode(props)} for {props}"
    if img.mode in ("L", "I;16"):
        mono = oracle.decode_mono(path, index)
        assert mono.mode == img.mode, f"{what}: libheif's monochrome decode gave {mono.mode}"
        assert_pixels_equal(img, mono, what)
    if img.mode == "I;16":
        return  # see the module docstring: no meaningful 8-bit RGB comparison for I;16
    rgb = oracle.decode_rgb(path, index)
    assert rgb.mode == ("RGB" if img.mode in ("L", "RGB") else "RGBA")
    # RGBa is compared as is: libheif's RGBA output of a premultiplied image is premultiplied too, and
    # Pillow's RGBa -> RGBA conversion would un-premultiply it.
    converted = img if img.mode in (rgb.mode, "RGBa") else img.convert(rgb.mode)
    del img
    assert_pixels_equal(converted, rgb, what)


@pytest.mark.parametrize("name", PARAMS)
def test_pixels_match_libheif(name: str) -> None:
    path = CORPUS / name
    count, primary = oracle.structure(path)
    heif = heifkit.open_heif(path)
    assert len(heif) == count
    assert heif.primary_index == primary
    del heif  # its decoded buffer would stay alive through the loop (600 MB for the 200 MP file)
    for index in [primary] + [i for i in range(count) if i != primary]:
        # open_heif(path).to_pillow() is the primary image; the others come from indexing.
        heif = heifkit.open_heif(path)
        img = heif.to_pillow() if index == primary else heif[index].to_pillow()
        del heif
        check_image(path, index, img)
        del img


HEIFKIT_KEYS = {"gain_maps"}
"""``info`` keys heifkit adds to pillow_heif's (HDR gain maps, see docs/gain-maps.md)."""


def _value(info: dict[str, Any], key: str) -> Any:
    return info.get(key, ABSENT)


@pytest.mark.parametrize("name", PARAMS)
def test_info_matches_pillow_heif(name: str) -> None:
    path = CORPUS / name
    ours = heifkit.open_heif(path)
    # Any failure here fails the test: pillow_heif 1.8.1 opens every decodable corpus file (see module doc).
    theirs = pillow_heif.open_heif(path)
    assert len(ours) == len(theirs)
    assert ours.primary_index == theirs.primary_index
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        what = f"{name}[{index}]"
        assert a.size == b.size, what
        assert a.mode == b.mode, what
        assert sorted(set(a.info) - HEIFKIT_KEYS) == sorted(b.info), what
        for key in COMPARED_KEYS:
            assert _value(a.info, key) == _value(b.info, key), f"{what} info[{key!r}]"
