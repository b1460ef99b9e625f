"""HDR gain maps: recognised among auxiliary images (Apple, Samsung, Adobe) and ISO 21496-1 ``tmap`` items,
listed in ``info["gain_maps"]`` with their metadata as stored and decoded on access."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pillow_heif
import pytest
from PIL import Image

import heifkit
from conftest import CORPUS, PUG, corpus_params, decodable_files

APPLE = "urn:com:apple:photo:2020:aux:hdrgainmap"
SAMSUNG = "urn:com:samsung:photo:2024:aux:hdrgainmap"
ADOBE = "urn:com:photo:aux:hdrgainmap"

# file -> (size, mode, aux type, XMP namespace or None, tmap version byte or None, item id, tmap item id)
GAIN_MAPS = {
    "pheif_pug.heic": ((2016, 1512), "L", APPLE, b"http://ns.apple.com/HDRGainMap/1.0/", None, 52, None),
    "pheif_200MP.heic": ((4080, 3060), "RGB", SAMSUNG, b"http://ns.adobe.com/hdr-gain-map/1.0/", None, 819, None),
    "pheif_aux_YCbCr.heic": ((1000, 462), "RGB", SAMSUNG, b"http://ns.adobe.com/hdr-gain-map/1.0/", 0, 37, 38),
    "libavif_colors_hdr_p3.avif": ((200, 200), "RGB", ADOBE, b"http://ns.adobe.com/hdr-gain-map/1.0/", None, 4, None),
    "libavif_seine_sdr_gainmap_srgb.avif": ((400, 300), "RGB", None, None, 0, 3, 2),
    "libavif_seine_hdr_srgb.avif": ((400, 300), "RGB", ADOBE, b"http://ns.adobe.com/hdr-gain-map/1.0/", None, 4, None),
    "libavif_seine_hdr_gainmap_small_srgb.avif": ((200, 150), "RGB", None, None, 0, 3, 2),
    "libavif_color_grid_gainmap_different_grid.avif": ((128, 160), "RGB", None, None, 0, 28, 27),
    "libavif_color_nogrid_alpha_nogrid_gainmap_grid.avif": ((128, 160), "RGB", None, None, 0, 4, 3),
    "libavif_unsupported_gainmap_version.avif": ((50, 50), "RGB", None, None, 0x63, 4, 3),  # kept as stored
}


@pytest.mark.parametrize("name", sorted(GAIN_MAPS))
def test_gain_maps_of_the_corpus(name):
    size, mode, aux_type, namespace, tmap_version, item, tmap_item = GAIN_MAPS[name]
    f = heifkit.open_heif(CORPUS / name)
    (gain_map,) = f.info["gain_maps"]
    assert isinstance(gain_map, heifkit.HeifGainMap)
    assert (gain_map.size, gain_map.mode) == (size, mode)
    info = gain_map.info
    assert info["aux_type"] == aux_type
    assert (info["item_id"], info["tmap_item_id"]) == (item, tmap_item)
    assert info["image"] == f.primary_index
    if namespace is None:
        assert info["xmp"] is None
    else:
        assert namespace in info["xmp"]
    if tmap_version is None:
        assert info["tmap"] is None
    else:
        assert info["tmap"][0] == tmap_version and len(info["tmap"]) >= 32
    pixels = np.asarray(gain_map)
    assert pixels.shape[:2] == (size[1], size[0]) and pixels.std() > 0


@pytest.mark.parametrize("name", corpus_params(n for n in decodable_files() if n not in GAIN_MAPS))
def test_other_files_have_no_gain_map(name):
    for image in heifkit.open_heif(CORPUS / name):
        assert image.info["gain_maps"] == []


def test_gain_maps_belong_to_their_image():
    f = heifkit.open_heif(CORPUS / "pheif_aux_YCbCr.heic")
    (gain_map,) = f.info["gain_maps"]
    assert gain_map.info["base_item_id"] == 33  # the grid the tmap item and the auxl reference point at


@pytest.mark.parametrize("name", ["pheif_pug.heic", "pheif_aux_YCbCr.heic", "libavif_colors_hdr_p3.avif"])
def test_auxiliary_gain_maps_are_the_auxiliary_images(name):
    f = heifkit.open_heif(CORPUS / name)
    (gain_map,) = f.info["gain_maps"]
    aux = f.get_aux_image(gain_map.info["item_id"])
    assert f.info["aux"][gain_map.info["aux_type"]] == [gain_map.info["item_id"]]
    assert bytes(aux.data) == bytes(gain_map.data)
    if name.endswith(".heic"):  # pillow_heif reads only 8-bit auxiliary images (this AVIF's is 10-bit)
        ref_aux = pillow_heif.open_heif(CORPUS / name).get_aux_image(gain_map.info["item_id"])
        assert np.array_equal(np.asarray(ref_aux), np.asarray(gain_map))


def test_high_bit_depth_and_pillow():
    f = heifkit.open_heif(CORPUS / "libavif_color_grid_gainmap_different_grid.avif", convert_hdr_to_8bit=False)
    (gain_map,) = f.info["gain_maps"]
    img = gain_map.to_pillow()
    assert img.size == gain_map.size and img.info["tmap_item_id"] == 27


def test_plugin_and_copies_carry_them():
    heifkit.register_heif_opener()
    with Image.open(PUG) as im:
        (gain_map,) = im.info["gain_maps"]
        assert gain_map.info["aux_type"] == APPLE
    f = heifkit.open_heif(PUG)
    clone = copy.deepcopy(f)
    restored = pickle.loads(pickle.dumps(f))
    for other in (clone, restored):
        (g,) = other.info["gain_maps"]
        assert g.size == (2016, 1512) and bytes(g.data) == bytes(f.info["gain_maps"][0].data)
        assert g.info["xmp"] == f.info["gain_maps"][0].info["xmp"]


def test_gain_maps_outlive_their_file():
    gain_map = heifkit.open_heif(CORPUS / "libavif_seine_sdr_gainmap_srgb.avif").info["gain_maps"][0]
    assert np.asarray(gain_map).shape == (300, 400, 3)
    heifkit.open_heif(PUG).info["gain_maps"][0].load()
