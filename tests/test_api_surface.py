"""The public surface: module functions, libheif version and codecs, constants, exported names."""

from __future__ import annotations

import pillow_heif
import pytest

import heifkit
from conftest import ZPUG, ZPUG_BYTES
from heifkit import constants


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
