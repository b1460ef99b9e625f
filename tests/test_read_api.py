"""The standalone read API: open_heif / read_heif / HeifFile / HeifImage, as a user sees it.

pillow_heif (installed as a test-only oracle) is used to cross-check values where it can open the file
(it has no AV1 decoder). Where DESIGN §6 says pillow_heif has a bug, heifkit's correct behaviour is
asserted instead (negative indexes and slices, ``del f[i]``, pickling with depth images, stream position).
"""

from __future__ import annotations

import copy
import gc
import io
import pickle
import time
from typing import Any

import numpy as np
import pillow_heif
import pytest
from PIL import Image

import heifkit
from conftest import CORPUS, decodable_files
from heifkit import constants, options

ZPUG = CORPUS / "pheif_zPug_3.heic"
PUG = CORPUS / "pheif_pug.heic"
ARROW = CORPUS / "pheif_arrow.heic"
CAT = CORPUS / "pheif_cat.hif"

ZPUG_MODES = ["RGB", "L", "RGB"]
ZPUG_SIZES = [(64, 64), (64, 64), (96, 64)]
ZPUG_THUMBS = [[32, 16], [32], []]
ZPUG_BYTES = [64 * 64 * 3, 64 * 64, 96 * 64 * 3]

ALWAYS_KEYS = {"primary", "bit_depth", "exif", "metadata", "thumbnails", "depth_images", "aux"}


def _pixels(image: Any) -> np.ndarray:
    return np.asarray(image)


def _comparable(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with depth images replaced by something comparable across libraries.

    ``entity_groups`` is new in pillow_heif 1.7+ and not part of the contract (written against 1.6).
    """
    out = dict(info)
    out.pop("entity_groups", None)
    out["depth_images"] = [(d.size, d.mode, d.info) for d in info.get("depth_images", [])]
    return out


def _exif_orientation(exif: bytes) -> int | None:
    e = Image.Exif()
    e.load(exif)
    return e.get(274)


@pytest.fixture
def restore_options():
    saved = {name: getattr(options, name) for name in ("THUMBNAILS", "DEPTH_IMAGES", "AUX_IMAGES", "DECODE_THREADS")}
    yield
    for name, value in saved.items():
        setattr(options, name, value)


# ---------------------------------------------------------------------------------------------------
# inputs


def _zpug_reference() -> list[np.ndarray]:
    return [_pixels(im) for im in heifkit.open_heif(ZPUG)]


def _inputs() -> dict[str, Any]:
    data = ZPUG.read_bytes()
    return {
        "str": lambda: str(ZPUG),
        "Path": lambda: ZPUG,
        "bytes": lambda: data,
        "bytearray": lambda: bytearray(data),
        "memoryview": lambda: memoryview(data),
        "BytesIO": lambda: io.BytesIO(data),
    }


@pytest.mark.parametrize("kind", list(_inputs()))
@pytest.mark.parametrize("opener", [heifkit.open_heif, heifkit.HeifFile, heifkit.read_heif])
def test_input_kinds(kind, opener):
    f = opener(_inputs()[kind]())
    assert len(f) == 3
    assert f.primary_index == 1
    assert f.mimetype == "image/heic"
    assert (f.size, f.mode) == ((64, 64), "L")
    for image, expected in zip(f, _zpug_reference(), strict=True):
        np.testing.assert_array_equal(_pixels(image), expected)


def test_open_file_object_is_not_closed_and_outlives_it():
    with open(ZPUG, "rb") as fh:
        f = heifkit.open_heif(fh)
        assert not fh.closed
    # the caller closed the file; the HeifFile read everything it needs when it was opened
    assert [im.mode for im in f] == ZPUG_MODES
    for image, expected in zip(f, _zpug_reference(), strict=True):
        np.testing.assert_array_equal(_pixels(image), expected)


@pytest.mark.parametrize("wrap", [bytearray, lambda b: memoryview(bytearray(b))], ids=["bytearray", "memoryview"])
def test_mutable_input_is_not_aliased(wrap):
    buf = wrap(ZPUG.read_bytes())
    f = heifkit.open_heif(buf)
    buf[:] = bytes(len(buf))  # the caller reuses its buffer before the pixels are decoded
    for image, expected in zip(f, _zpug_reference(), strict=True):
        np.testing.assert_array_equal(_pixels(image), expected)


def test_unknown_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        heifkit.open_heif(tmp_path / "missing.heic")


# ---------------------------------------------------------------------------------------------------
# pheif_zPug_3.heic: three images, the middle one primary


def test_zpug_images():
    f = heifkit.open_heif(ZPUG)
    assert len(f) == 3
    assert f.primary_index == 1
    assert [im.mode for im in f] == ZPUG_MODES
    assert [im.size for im in f] == ZPUG_SIZES
    assert [im.info["thumbnails"] for im in f] == ZPUG_THUMBS
    assert [im.info["primary"] for im in f] == [False, True, False]
    assert [im.info["bit_depth"] for im in f] == [8, 8, 8]
    assert [im.has_alpha for im in f] == [False, False, False]


def test_zpug_repr_before_and_after_load():
    f = heifkit.open_heif(ZPUG)
    before = [
        "<HeifImage 64x64 RGB with no image data and 2 thumbnails>",
        "<HeifImage 64x64 L with no image data and 1 thumbnails>",
        "<HeifImage 96x64 RGB with no image data and 0 thumbnails>",
    ]
    assert [repr(im) for im in f] == before
    assert repr(f) == f"<HeifFile with 3 images: {before}>"
    ref = pillow_heif.open_heif(ZPUG)
    assert repr(f) == repr(ref)

    _ = (f.size, f.mode, f.info, f.has_alpha)  # properties from the container do not decode
    assert repr(f[1]) == before[1]
    _ = f.data  # decodes the primary only
    assert repr(f[1]) == "<HeifImage 64x64 L with 4096 bytes image data and 1 thumbnails>"
    assert repr(f[0]) == before[0] and repr(f[2]) == before[2]

    for im in f:
        im.load()
    after = [
        "<HeifImage 64x64 RGB with 12288 bytes image data and 2 thumbnails>",
        "<HeifImage 64x64 L with 4096 bytes image data and 1 thumbnails>",
        "<HeifImage 96x64 RGB with 18432 bytes image data and 0 thumbnails>",
    ]
    assert [repr(im) for im in f] == after
    assert repr(f) == f"<HeifFile with 3 images: {after}>"
    for im in ref:
        im.load()
    assert repr(f) == repr(ref)


def test_zpug_file_properties_delegate_to_primary():
    f = heifkit.open_heif(ZPUG)
    primary = f[1]
    assert f.size == primary.size == (64, 64)
    assert f.mode == primary.mode == "L"
    assert f.info is primary.info
    assert f.has_alpha is False and f.premultiplied_alpha is False
    assert f.stride == primary.stride == 64
    assert bytes(f.data) == bytes(primary.data)
    assert len(f.data) == 64 * 64
    assert f.__array_interface__["shape"] == (64, 64)
    np.testing.assert_array_equal(_pixels(f), _pixels(primary))
    np.testing.assert_array_equal(_pixels(f.to_pillow()), _pixels(primary))
    ref = pillow_heif.open_heif(ZPUG)
    np.testing.assert_array_equal(_pixels(f), _pixels(ref))


def test_zpug_data_is_read_only():
    f = heifkit.open_heif(ZPUG)
    data = f[0].data
    assert len(data) == ZPUG_BYTES[0]
    with pytest.raises(TypeError):
        data[0] = 1


def test_indexing():
    f = heifkit.open_heif(ZPUG)
    images = list(f)
    for i in range(3):
        assert f[i] is images[i]
        assert f[i - 3] is images[i]
    assert f[-1].size == (96, 64)
    assert list(f[1:]) == images[1:]
    assert list(f[::-1]) == images[::-1]
    assert list(f[:]) == images
    assert list(f[5:]) == []
    for bad in (3, -4, 100):
        with pytest.raises(IndexError, match="invalid image index"):
            f[bad]
    with pytest.raises(TypeError):
        f["0"]


def test_iteration_is_file_order():
    f = heifkit.open_heif(ZPUG)
    assert [im.mode for im in f] == ZPUG_MODES
    assert [im.size for im in f] == ZPUG_SIZES
    assert [im.info["thumbnails"] for im in f] == ZPUG_THUMBS
    ref = pillow_heif.open_heif(ZPUG)
    assert [(im.mode, im.size) for im in f] == [(im.mode, im.size) for im in ref]


def test_del_recomputes_primary():
    f = heifkit.open_heif(ZPUG)
    del f[0]
    assert len(f) == 2
    assert f.primary_index == 0
    assert (f.size, f.mode) == ((64, 64), "L")
    assert f.info["thumbnails"] == [32]
    assert [im.mode for im in f] == ["L", "RGB"]

    f = heifkit.open_heif(ZPUG)
    del f[-1]
    assert f.primary_index == 1 and f.mode == "L"
    with pytest.raises(IndexError, match="invalid image index"):
        del f[2]

    f = heifkit.open_heif(ZPUG)
    del f[1]  # the primary itself: the first remaining image stands in, nothing points out of range
    assert len(f) == 2
    assert f.primary_index == 0
    assert (f.size, f.mode) == ((64, 64), "RGB")

    f = heifkit.open_heif(ZPUG)
    del f[1]
    del f[0]
    assert (f.size, f.mode) == ((96, 64), "RGB")

    f = heifkit.open_heif(ZPUG)
    del f[:1]
    assert [im.mode for im in f] == ["L", "RGB"] and f.primary_index == 0


# ---------------------------------------------------------------------------------------------------
# modes


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

    # pillow_heif: same mode, stride and pixels (row padding excluded; its contents are unspecified)
    ref = pillow_heif.open_heif(CORPUS / name, **opts)
    assert ref.mode == f.mode
    assert ref.stride == f.stride
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


# ---------------------------------------------------------------------------------------------------
# info


@pytest.mark.parametrize("name", decodable_files())
def test_info_keys_always_present(name):
    f = heifkit.open_heif(CORPUS / name)
    for image in f:
        assert set(image.info) >= ALWAYS_KEYS, name
        assert isinstance(image.info["primary"], bool)
        assert image.info["bit_depth"] in range(1, 17)
        assert image.info["exif"] is None or isinstance(image.info["exif"], bytes)
        assert isinstance(image.info["metadata"], list)
        assert all(isinstance(t, int) for t in image.info["thumbnails"])
        assert isinstance(image.info["aux"], dict)
    assert sum(im.info["primary"] for im in f) <= 1  # pheif_invalid_id.heic has no usable primary


COMPARE_FILES = [
    "pheif_zPug_3.heic",
    "pheif_pug.heic",
    "pheif_arrow.heic",
    "pheif_cat.hif",
    "pheif_spatial_photo.heic",
    "pheif_aux_YCbCr.heic",
    "pheif_L_exif_xmp_iptc.heic",
    "pheif_L_xmp_latin1.heic",
    "pheif_empty_icc.heic",
    "pheif_RGBA_12__29x100.heif",
    "pheif_LA_8__128x128.heif",
    "pheif_200MP.heic",
    "libheif_example.heic",
]


@pytest.mark.parametrize("name", COMPARE_FILES)
def test_info_matches_pillow_heif(name):
    f = heifkit.open_heif(CORPUS / name)
    ref = pillow_heif.open_heif(CORPUS / name)
    assert f.mimetype == ref.mimetype
    assert f.primary_index == ref.primary_index
    assert [(im.size, im.mode) for im in f] == [(im.size, im.mode) for im in ref]
    for image, expected in zip(f, ref, strict=True):
        assert _comparable(image.info) == _comparable(expected.info)


def test_pug_depth_image():
    f = heifkit.open_heif(PUG)
    depth_images = f.info["depth_images"]
    assert len(depth_images) == 1
    depth = depth_images[0]
    assert isinstance(depth, heifkit.HeifDepthImage)
    assert repr(depth) == "<HeifDepthImage 768x576 L>"
    assert (depth.size, depth.mode) == ((768, 576), "L")
    meta = depth.info["metadata"]
    assert meta["d_min"] == pytest.approx(1.498046875)
    assert meta["d_max"] == pytest.approx(4.3828125)
    assert meta["representation_type"] == heifkit.HeifDepthRepresentationType.UNIFORM_DISPARITY == 1
    assert meta["disparity_reference_view"] == 0
    assert meta["nonlinear_representation_model_size"] == 0
    assert "z_near" not in meta and "z_far" not in meta
    arr = np.asarray(depth)
    assert arr.shape == (576, 768) and arr.dtype == np.uint8
    assert arr.min() < arr.max()
    img = depth.to_pillow()
    assert (img.mode, img.size) == ("L", (768, 576))
    assert img.info["metadata"] == meta and img.info is not depth.info
    np.testing.assert_array_equal(np.asarray(img), arr)
    ref = pillow_heif.open_heif(PUG).info["depth_images"][0]
    np.testing.assert_array_equal(arr, np.asarray(ref))


def test_pug_aux_image():
    f = heifkit.open_heif(PUG)
    assert f.info["aux"] == {"urn:com:apple:photo:2020:aux:hdrgainmap": [52]}
    aux = f.get_aux_image(52)
    assert isinstance(aux, heifkit.HeifAuxImage)
    assert repr(aux) == "<HeifAuxImage 2016x1512 L>"
    assert (aux.size, aux.mode) == ((2016, 1512), "L")
    arr = np.asarray(aux)
    assert arr.shape == (1512, 2016) and arr.dtype == np.uint8
    assert len(aux.data) == aux.stride * 1512
    assert arr.min() < arr.max()
    assert aux.to_pillow().size == (2016, 1512)
    np.testing.assert_array_equal(arr, np.asarray(pillow_heif.open_heif(PUG).get_aux_image(52)))
    assert f[0].get_aux_image(52).size == (2016, 1512)
    with pytest.raises(ValueError):
        f.get_aux_image(9999)


def test_samsung_ycbcr_aux_image():
    f = heifkit.open_heif(CORPUS / "pheif_aux_YCbCr.heic")
    assert list(f.info["aux"]) == ["urn:com:samsung:photo:2024:aux:hdrgainmap"]
    (aux_id,) = f.info["aux"]["urn:com:samsung:photo:2024:aux:hdrgainmap"]
    aux = f.get_aux_image(aux_id)
    assert (aux.size, aux.mode) == ((1000, 462), "RGB")
    assert repr(aux) == "<HeifAuxImage 1000x462 RGB>"
    arr = np.asarray(aux)
    assert arr.shape == (462, 1000, 3)
    ref = pillow_heif.open_heif(CORPUS / "pheif_aux_YCbCr.heic").get_aux_image(aux_id)
    np.testing.assert_array_equal(arr, np.asarray(ref))


def test_tiling():
    assert heifkit.open_heif(PUG).info["tiling"] == {
        "num_columns": 8,
        "num_rows": 6,
        "tile_width": 512,
        "tile_height": 512,
        "image_width": 4032,
        "image_height": 3024,
    }
    assert heifkit.open_heif(CAT).info["tiling"] == {
        "num_columns": 2,
        "num_rows": 2,
        "tile_width": 2176,
        "tile_height": 1472,
        "image_width": 4240,
        "image_height": 2832,
    }
    assert "tiling" not in heifkit.open_heif(ZPUG).info


def test_spatial_photo_camera_matrices():
    f = heifkit.open_heif(CORPUS / "pheif_spatial_photo.heic")
    assert len(f) == 2
    for image in f:
        camera = image.info["heif"]
        intrinsic = camera["camera_intrinsic_matrix"]
        assert set(intrinsic) == {"focal_length_x", "focal_length_y", "principal_point_x", "principal_point_y", "skew"}
        assert intrinsic["focal_length_x"] == pytest.approx(1525.444598197937)
        assert intrinsic["principal_point_x"] == pytest.approx(1280.0)
        assert intrinsic["skew"] == 0.0
        rot = camera["camera_extrinsic_matrix_rot"]
        assert isinstance(rot, tuple) and len(rot) == 9
        assert rot == pytest.approx((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    ref = pillow_heif.open_heif(CORPUS / "pheif_spatial_photo.heic")
    assert [im.info["heif"] for im in f] == [im.info["heif"] for im in ref]


def test_cat_hif_nclx_and_bit_depth():
    f = heifkit.open_heif(CAT)
    nclx = f.info["nclx_profile"]
    key = ("color_primaries", "transfer_characteristics", "matrix_coefficients", "full_range_flag")
    assert tuple(nclx[k] for k in key) == (1, 13, 5, 1)
    assert all(type(nclx[k]) is int for k in key)
    assert nclx["color_primary_white_x"] == pytest.approx(0.3127, abs=1e-4)
    assert "icc_profile" not in f.info
    assert f.info["bit_depth"] == 10
    assert f.info["chroma"] == 422
    assert f.info["thumbnails"] == [1616, 320, 160]
    assert (f.mode, f.size) == ("RGB", (4240, 2832))
    assert f.mimetype == "image/heic"
    assert f.info["nclx_profile"] == pillow_heif.open_heif(CAT).info["nclx_profile"]


def test_arrow_icc_and_exif_orientation_untouched():
    f = heifkit.open_heif(ARROW)
    assert f.size == (3024, 4032)  # irot already applied by libheif
    icc = f.info["icc_profile"]
    assert len(icc) == 548
    assert icc[36:40] == b"acsp"
    assert f.info["icc_profile_type"] == "prof"
    assert f.info["exif"].startswith(b"Exif\x00\x00MM\x00*")
    assert _exif_orientation(f.info["exif"]) == 6
    assert "original_orientation" not in f.info
    assert "nclx_profile" not in f.info


def test_exif_xmp_iptc():
    f = heifkit.open_heif(CORPUS / "pheif_L_exif_xmp_iptc.heic")
    assert f.mode == "L"
    assert f.info["exif"].startswith(b"Exif\x00\x00")
    assert f.info["xmp"].startswith(b"<?xpacket")
    assert b"xmpmeta" in f.info["xmp"]
    (iptc,) = f.info["metadata"]
    assert iptc["type"] == "iptc" and iptc["content_type"] == ""
    assert isinstance(iptc["data"], bytes) and len(iptc["data"]) == 99


def test_latin1_xmp_kept_verbatim():
    f = heifkit.open_heif(CORPUS / "pheif_L_xmp_latin1.heic")
    xmp = f.info["xmp"]
    assert xmp.endswith(b"\x00")
    assert b"Aim\xe9" in xmp  # not re-encoded by open_heif
    # to_pillow gives Pillow (and defusedxml) UTF-8, keeping the trailing NUL, as pillow_heif does
    converted = f.to_pillow().info["xmp"]
    assert converted.endswith(b"\x00")
    assert "Aimé" in converted.decode("utf-8")
    assert converted == pillow_heif.open_heif(CORPUS / "pheif_L_xmp_latin1.heic").to_pillow().info["xmp"]
    assert f.info["xmp"] == xmp


def test_empty_icc():
    f = heifkit.open_heif(CORPUS / "pheif_empty_icc.heic")
    assert len(f) == 2
    assert len(f[0].info["icc_profile"]) > 0
    assert f[1].info["icc_profile"] == b""
    assert f[1].info["icc_profile_type"] == "prof"
    assert np.asarray(f[1]).shape[:2] == f[1].size[::-1]


# ---------------------------------------------------------------------------------------------------
# options


def test_option_thumbnails(restore_options):
    options.THUMBNAILS = False
    assert [im.info["thumbnails"] for im in heifkit.open_heif(ZPUG)] == [[], [], []]
    options.THUMBNAILS = True
    assert [im.info["thumbnails"] for im in heifkit.open_heif(ZPUG)] == ZPUG_THUMBS


def test_option_depth_and_aux(restore_options):
    options.DEPTH_IMAGES = False
    options.AUX_IMAGES = False
    f = heifkit.open_heif(PUG)
    assert f.info["depth_images"] == []
    assert "aux" not in f.info
    options.DEPTH_IMAGES = True
    options.AUX_IMAGES = True
    f = heifkit.open_heif(PUG)
    assert len(f.info["depth_images"]) == 1
    assert f.info["aux"] == {"urn:com:apple:photo:2020:aux:hdrgainmap": [52]}


@pytest.mark.parametrize("name", ["pheif_zPug_3.heic", "pheif_RGBA_12__29x100.heif", "pheif_L_10__128x128.heif"])
def test_decode_threads_zero(name, restore_options):
    expected = [np.asarray(im) for im in heifkit.open_heif(CORPUS / name, convert_hdr_to_8bit=False)]
    options.DECODE_THREADS = 0
    got = [np.asarray(im) for im in heifkit.open_heif(CORPUS / name, convert_hdr_to_8bit=False)]
    options.DECODE_THREADS = 4
    by_kwarg = [np.asarray(im) for im in heifkit.open_heif(CORPUS / name, convert_hdr_to_8bit=False, decode_threads=0)]
    for a, b, c in zip(expected, got, by_kwarg, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


# ---------------------------------------------------------------------------------------------------
# to_pillow


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


def test_to_pillow_resets_orientation_in_the_copy_only():
    f = heifkit.open_heif(ARROW)
    img = f.to_pillow()
    assert img.size == (3024, 4032)
    assert img.info["original_orientation"] == 6
    assert _exif_orientation(img.info["exif"]) == 1
    assert img.getexif()[274] == 1
    assert _exif_orientation(f.info["exif"]) == 6  # the HeifImage keeps what the file says
    assert len(img.info["exif"]) == len(f.info["exif"])
    assert img.info["icc_profile"] == f.info["icc_profile"]
    np.testing.assert_array_equal(np.asarray(img), np.asarray(f))


def test_orientation_reset_is_linear_in_xmp_size():
    """XMP packets carry kilobytes of whitespace padding (cat.hif: 57 kB); resetting must not be quadratic."""
    tag = b'<rdf:Description tiff:Orientation="6"/>'
    xmp = b"<x:xmpmeta>" + b" " * 100_000 + tag + b"\n" * 20_000 + b"</x:xmpmeta>"
    info = {"exif": None, "xmp": xmp}
    start = time.perf_counter()
    assert heifkit.set_orientation(info) == 6
    assert time.perf_counter() - start < 2.0  # linear: milliseconds; quadratic: minutes
    assert b"Orientation" not in info["xmp"]
    assert info["xmp"].startswith(b"<x:xmpmeta>") and info["xmp"].endswith(b"</x:xmpmeta>")

    f = heifkit.open_heif(CAT)
    start = time.perf_counter()
    heifkit.set_orientation(dict(f.info))
    assert time.perf_counter() - start < 2.0


def test_to_pillow_16bit_and_unsupported_modes():
    f = heifkit.open_heif(CORPUS / "pheif_L_12__128x128.heif")
    img = f.to_pillow()
    assert img.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(img), np.asarray(f))
    for opts in ({"convert_hdr_to_8bit": False}, {"convert_hdr_to_8bit": False, "hdr_to_16bit": False}):
        with pytest.raises(ValueError):
            heifkit.open_heif(CORPUS / "pheif_RGB_10__128x128.heif", **opts).to_pillow()


# ---------------------------------------------------------------------------------------------------
# lifetime, copying


def _churn() -> None:
    junk = [bytearray(b"\xaa" * 100_000) for _ in range(50)]
    junk += [np.full((256, 256, 3), 0x55, np.uint8) for _ in range(20)]
    del junk
    gc.collect()


def test_numpy_array_outlives_heif_file():
    f = heifkit.open_heif(ZPUG)
    arrays = [np.asarray(im) for im in f]
    copies = [a.copy() for a in arrays]
    data = f[1].data
    pil = f[1].to_pillow()
    del f
    gc.collect()
    _churn()
    for a, c in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(a, c)
    assert bytes(data) == copies[1].tobytes()
    np.testing.assert_array_equal(np.asarray(pil), copies[1])


def test_pickle_and_deepcopy_zpug():
    f = heifkit.open_heif(ZPUG)
    for clone in (pickle.loads(pickle.dumps(f)), copy.deepcopy(f)):
        assert isinstance(clone, heifkit.HeifFile)
        assert len(clone) == 3 and clone.primary_index == 1
        assert clone.mimetype == "image/heic"
        assert [(im.mode, im.size) for im in clone] == list(zip(ZPUG_MODES, ZPUG_SIZES, strict=True))
        for a, b in zip(clone, f, strict=True):
            assert a is not b and a.info is not b.info
            assert a.info == b.info
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        clone[0].info["thumbnails"].append(8)
        assert f[0].info["thumbnails"] == [32, 16]


def test_pickle_and_deepcopy_with_depth_image():
    f = heifkit.open_heif(PUG)
    depth = np.asarray(f.info["depth_images"][0])
    pixels = np.asarray(f)
    for clone in (pickle.loads(pickle.dumps(f)), copy.deepcopy(f)):
        assert (clone.size, clone.mode) == ((4032, 3024), "RGB")
        assert _comparable(clone.info) == _comparable(f.info)
        (clone_depth,) = clone.info["depth_images"]
        assert clone_depth is not f.info["depth_images"][0]
        assert clone_depth.info == f.info["depth_images"][0].info
        np.testing.assert_array_equal(np.asarray(clone_depth), depth)
        np.testing.assert_array_equal(np.asarray(clone), pixels)


def test_copy_shares_images():
    f = heifkit.open_heif(ZPUG)
    c = copy.copy(f)
    assert c is not f
    assert all(a is b for a, b in zip(c, f, strict=True))
    assert c.primary_index == 1
    del c[0]
    assert len(f) == 3


# ---------------------------------------------------------------------------------------------------
# read_heif, module functions


def test_read_heif_decodes_everything():
    f = heifkit.read_heif(ZPUG)
    assert all("bytes image data" in repr(im) for im in f)
    assert [len(im.data) for im in f] == ZPUG_BYTES


def test_libheif_version_and_info():
    assert heifkit.libheif_version() == "1.23.6"
    info = heifkit.libheif_info()
    assert set(info) == {"libheif", "HEIF", "AVIF", "encoders", "decoders"}
    assert info["libheif"] == "1.23.6"
    assert isinstance(info["HEIF"], str) and info["HEIF"]
    assert isinstance(info["AVIF"], str) and info["AVIF"]
    assert "libde265" in info["decoders"]
    assert "aom" in info["decoders"]
    assert "x265" in info["encoders"]
    assert "aom" in info["encoders"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in info["decoders"].items())


@pytest.mark.parametrize(
    "name",
    [
        "HeifChroma",
        "HeifColorspace",
        "HeifCompressionFormat",
        "HeifChannel",
        "HeifColorPrimaries",
        "HeifTransferCharacteristics",
        "HeifMatrixCoefficients",
        "HeifDepthRepresentationType",
    ],
)
def test_constants_match_pillow_heif(name):
    ours = getattr(constants, name)
    theirs = getattr(pillow_heif.constants, name)
    assert {m.name: int(m) for m in ours} == {m.name: int(m) for m in theirs}


def test_constants_values_and_exports():
    assert heifkit.HeifColorPrimaries is constants.HeifColorPrimaries
    assert heifkit.HeifMatrixCoefficients.ITU_R_BT_601_6 == 6
    assert heifkit.HeifTransferCharacteristics.IEC_61966_2_1 == 13
    assert heifkit.HeifColorPrimaries.ITU_R_BT_709_5 == 1
    assert heifkit.HeifDepthRepresentationType.NON_UNIFORM_DISPARITY == 3
    assert constants.HeifChroma.INTERLEAVED_RRGGBBAA_LE == 15
    assert constants.HeifCompressionFormat.AV1 == 4


def test_public_names():
    for name in (
        "open_heif",
        "read_heif",
        "HeifFile",
        "HeifImage",
        "HeifDepthImage",
        "HeifAuxImage",
        "is_supported",
        "get_file_mimetype",
        "libheif_version",
        "libheif_info",
        "register_heif_opener",
        "HeifImageFile",
        "options",
        "set_orientation",
        "from_bytes",
        "from_pillow",
        "encode",
        "load_libheif_plugin",
    ):
        assert hasattr(heifkit, name), name
