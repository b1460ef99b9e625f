"""HeifFile as a container: images in file order, the primary image, indexing, deleting, repr, read_heif,
copying and pickling (pheif_zPug_3.heic: three images, the middle one primary)."""

from __future__ import annotations

import copy
import gc
import pickle

import numpy as np
import pillow_heif
import pytest

import heifkit
from conftest import PUG, ZPUG, ZPUG_BYTES, ZPUG_MODES, ZPUG_SIZES, ZPUG_THUMBS, comparable_info


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
    np.testing.assert_array_equal(np.asarray(f), np.asarray(primary))
    np.testing.assert_array_equal(np.asarray(f.to_pillow()), np.asarray(primary))
    ref = pillow_heif.open_heif(ZPUG)
    np.testing.assert_array_equal(np.asarray(f), np.asarray(ref))


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


@pytest.mark.slow  # a 12 MP grid
def test_pickle_and_deepcopy_with_depth_image():
    f = heifkit.open_heif(PUG)
    depth = np.asarray(f.info["depth_images"][0])
    pixels = np.asarray(f)
    for clone in (pickle.loads(pickle.dumps(f)), copy.deepcopy(f)):
        assert (clone.size, clone.mode) == ((4032, 3024), "RGB")
        assert comparable_info(clone.info) == comparable_info(f.info)
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
