"""``info`` of read images: keys, values against pillow_heif, depth and auxiliary images, tiling, camera
matrices, colour profiles, metadata, and the options that turn lists off."""

from __future__ import annotations

import numpy as np
import pillow_heif
import pytest

import heifkit
from conftest import (
    ALWAYS_KEYS,
    ARROW,
    CAT,
    CORPUS,
    PUG,
    ZPUG,
    ZPUG_THUMBS,
    comparable_info,
    corpus_params,
    decodable_files,
    exif_orientation_of,
)
from heifkit import options


@pytest.mark.parametrize("name", corpus_params(decodable_files()))
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
        assert comparable_info(image.info) == comparable_info(expected.info)


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
    assert exif_orientation_of(f.info["exif"]) == 6
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


def test_option_thumbnails():
    options.THUMBNAILS = False
    assert [im.info["thumbnails"] for im in heifkit.open_heif(ZPUG)] == [[], [], []]
    options.THUMBNAILS = True
    assert [im.info["thumbnails"] for im in heifkit.open_heif(ZPUG)] == ZPUG_THUMBS


def test_option_depth_and_aux():
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
def test_decode_threads_zero(name):
    expected = [np.asarray(im) for im in heifkit.open_heif(CORPUS / name, convert_hdr_to_8bit=False)]
    options.DECODE_THREADS = 0
    got = [np.asarray(im) for im in heifkit.open_heif(CORPUS / name, convert_hdr_to_8bit=False)]
    options.DECODE_THREADS = 4
    by_kwarg = [np.asarray(im) for im in heifkit.open_heif(CORPUS / name, convert_hdr_to_8bit=False, decode_threads=0)]
    for a, b, c in zip(expected, got, by_kwarg, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
