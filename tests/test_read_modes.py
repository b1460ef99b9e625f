"""Decoded modes and strides for every open option, by pillow_heif's rules, and to_pillow()."""

from __future__ import annotations

from typing import Any

import numpy as np
import pillow_heif
import pytest

import heifkit
import subproc
from conftest import ARROW, CAT, CORPUS, ZPUG, exif_orientation_of

MODE_FILES = {
    # file: (size, bit depth, kind) -- kind is what the image decodes to in 8 bits: L, RGB or RGBA
    "pheif_L_8__128x128.heif": ((128, 128), 8, "L"),
    "pheif_L_10__128x128.heif": ((128, 128), 10, "L"),
    "pheif_L_12__128x128.heif": ((128, 128), 12, "L"),
    "pheif_RGB_8__29x100.heif": ((29, 100), 8, "RGB"),
    "pheif_RGB_10__128x128.heif": ((128, 128), 10, "RGB"),
    "pheif_RGB_12__128x128.heif": ((128, 128), 12, "RGB"),
    "pheif_RGBA_10__128x128.heif": ((128, 128), 10, "RGBA"),
    "pheif_RGBA_12__29x100.heif": ((29, 100), 12, "RGBA"),
    "pheif_LA_8__128x128.heif": ((128, 128), 8, "RGBA"),  # mono + alpha decodes as RGBA, never LA
}

MODE_OPTIONS = {
    "default": {},
    "no8bit": {"convert_hdr_to_8bit": False},
    "no8bit_no16": {"convert_hdr_to_8bit": False, "hdr_to_16bit": False},
    "bgr": {"bgr_mode": True},
    "bgr_no8bit": {"bgr_mode": True, "convert_hdr_to_8bit": False},
    "stride": {"remove_stride": False},
    "stride_no8bit": {"remove_stride": False, "convert_hdr_to_8bit": False},
}


def _expected_mode(bits: int, kind: str, opts: dict[str, Any]) -> str:
    to_8 = opts.get("convert_hdr_to_8bit", True)
    to_16 = opts.get("hdr_to_16bit", True)
    if kind == "L":
        if bits == 8:
            return "L"
        return "I;16" if to_16 else f"I;{bits}"  # convert_hdr_to_8bit and bgr_mode do not apply to mono
    base = ("BGR" if opts.get("bgr_mode") else "RGB") + kind[3:]
    if bits == 8 or to_8:
        return base
    return base + (";16" if to_16 else f";{bits}")


@pytest.mark.parametrize("opt_name", list(MODE_OPTIONS))
@pytest.mark.parametrize("name", list(MODE_FILES))
def test_modes(name, opt_name):
    size, bits, kind = MODE_FILES[name]
    opts = MODE_OPTIONS[opt_name]
    f = heifkit.open_heif(CORPUS / name, **opts)
    mode = _expected_mode(bits, kind, opts)
    assert f.mode == mode
    assert f.size == size
    assert f.info["bit_depth"] == bits
    width, height = size
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[kind]
    wide = ";" in mode
    sample = 2 if wide else 1
    tight = width * channels * sample

    assert len(f.data) == f.stride * height
    if opts.get("remove_stride", True):
        assert f.stride == tight
    else:
        assert f.stride >= tight
        assert f.stride % (channels * sample) == 0

    iface = f.__array_interface__
    row = f.stride // (channels * sample)
    assert iface["shape"] == ((height, row) if channels == 1 else (height, row, channels))
    assert iface["typestr"] == ("<u2" if wide else "|u1")
    assert iface["version"] == 3
    arr = np.asarray(f)
    assert arr.dtype == (np.dtype("<u2") if wide else np.uint8)
    assert arr.shape == iface["shape"]
    assert arr.max() > 0

    if wide and mode.endswith(";16"):
        low = (1 << (16 - bits)) - 1
        assert not (arr & low).any(), "10/12-bit samples widened to 16 bits by a plain left shift"
        assert arr.max() >= 1 << 15
    elif wide:
        assert arr.max() < 1 << bits
        assert arr.max() >= 1 << (bits - 1)

    # pillow_heif: the same mode and pixels, and with remove_stride (the default) the same tight stride. With
    # remove_stride=False how much a row is padded is libheif's choice, which pillow_heif does not promise
    # (pillow_heif 1.9's libheif 1.23.7 pads differently from 1.23.6): only the pixels compare.
    ref = pillow_heif.open_heif(CORPUS / name, **opts)
    assert ref.mode == f.mode
    if opts.get("remove_stride", True):
        assert ref.stride == f.stride
    else:
        assert len(ref.data) == ref.stride * height and ref.stride >= tight
    np.testing.assert_array_equal(np.asarray(ref)[:, :width], arr[:, :width])


@pytest.mark.parametrize("name", list(MODE_FILES))
def test_mode_relations(name):
    """The option variants are views of the same pixels: padding, BGR order, shifts and 8-bit rounding."""
    size, bits, kind = MODE_FILES[name]
    width = size[0]
    base = np.asarray(heifkit.open_heif(CORPUS / name))
    padded = np.asarray(heifkit.open_heif(CORPUS / name, remove_stride=False))
    np.testing.assert_array_equal(padded[:, :width], base)

    bgr = np.asarray(heifkit.open_heif(CORPUS / name, bgr_mode=True))
    if kind == "L":
        np.testing.assert_array_equal(bgr, base)
    else:
        order = [2, 1, 0, 3][: base.shape[2]]
        np.testing.assert_array_equal(bgr, base[..., order])

    if bits > 8:
        wide16 = np.asarray(heifkit.open_heif(CORPUS / name, convert_hdr_to_8bit=False))
        native = np.asarray(heifkit.open_heif(CORPUS / name, convert_hdr_to_8bit=False, hdr_to_16bit=False))
        np.testing.assert_array_equal(wide16, native.astype(np.uint16) << (16 - bits))
        padded16 = np.asarray(heifkit.open_heif(CORPUS / name, convert_hdr_to_8bit=False, remove_stride=False))
        np.testing.assert_array_equal(padded16[:, :width], wide16)
        if kind != "L":  # libheif's own 8-bit conversion is close to the top byte of the 16-bit samples
            assert np.abs(base.astype(int) - (wide16.astype(int) >> 8)).max() <= 4


def test_to_pillow_copies_info():
    f = heifkit.open_heif(ZPUG)
    for image in f:
        img = image.to_pillow()
        assert (img.mode, img.size) == (image.mode, image.size)
        assert img.info is not image.info
        assert img.info["thumbnails"] == image.info["thumbnails"]
        assert img.info["primary"] == image.info["primary"]
        assert img.info["original_orientation"] is None
        assert "original_orientation" not in image.info
        np.testing.assert_array_equal(np.asarray(img), np.asarray(image))


@pytest.mark.slow  # a 12 MP grid
def test_to_pillow_resets_orientation_in_the_copy_only():
    f = heifkit.open_heif(ARROW)
    img = f.to_pillow()
    assert img.size == (3024, 4032)
    assert img.info["original_orientation"] == 6
    assert exif_orientation_of(img.info["exif"]) == 1
    assert img.getexif()[274] == 1
    assert exif_orientation_of(f.info["exif"]) == 6  # the HeifImage keeps what the file says
    assert len(img.info["exif"]) == len(f.info["exif"])
    assert img.info["icc_profile"] == f.info["icc_profile"]
    np.testing.assert_array_equal(np.asarray(img), np.asarray(f))


# Resetting the orientation of XMP packets with long runs of whitespace, in a child process whose CPU time is
# capped: a linear scan takes milliseconds, a quadratic one (a pattern retried at every blank) hours.
_XMP_RESET = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_CPU, (20, 20))
import heifkit
tag = b'<rdf:Description tiff:Orientation="6"/>'
xmp = b"<x:xmpmeta>" + b" " * 1_000_000 + tag + b"\n" * 200_000 + b"</x:xmpmeta>"
info = {"exif": None, "xmp": xmp}
assert heifkit.set_orientation(info) == 6
assert b"Orientation" not in info["xmp"]
assert info["xmp"].startswith(b"<x:xmpmeta>") and info["xmp"].endswith(b"</x:xmpmeta>")
cat = heifkit.open_heif(sys.argv[1])
assert len(cat.info["xmp"]) > 50_000  # mostly padding
heifkit.set_orientation(dict(cat.info))
print("ok")
"""


def test_orientation_reset_is_linear_in_xmp_size():
    """XMP packets carry kilobytes of whitespace padding (cat.hif: 57 kB); resetting must not be quadratic."""
    proc = subproc.run_python(_XMP_RESET, [str(CAT)], timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", f"rc {proc.returncode} (SIGXCPU: -24): {proc.stderr}"


def test_to_pillow_16bit_and_unsupported_modes():
    f = heifkit.open_heif(CORPUS / "pheif_L_12__128x128.heif")
    img = f.to_pillow()
    assert img.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(img), np.asarray(f))
    for opts in ({"convert_hdr_to_8bit": False}, {"convert_hdr_to_8bit": False, "hdr_to_16bit": False}):
        with pytest.raises(ValueError):
            heifkit.open_heif(CORPUS / "pheif_RGB_10__128x128.heif", **opts).to_pillow()
