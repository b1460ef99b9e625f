"""A file with an image libheif cannot open still opens: that image is left out (as heif-info and
pillow_heif show the base image of a layered-HEVC file), and the file fails only when no image opens."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import CORPUS

# two top-level images (item ids 20004, 20006), with thumbnails 20005, 20007
EXAMPLE = CORPUS / "libheif_example.heic"


def _patched(item_ids: set[int]) -> bytes:
    """libheif_example.heic with the ``infe`` item type of ``item_ids`` changed from hvc1 to lhv1."""
    data = bytearray(EXAMPLE.read_bytes())
    start, found = 0, set()
    while (at := data.find(b"infe", start)) >= 0:
        start = at + 4
        item_id = int.from_bytes(data[at + 8 : at + 10], "big")  # infe version 2: id, protection, type
        if item_id in item_ids:
            assert data[at + 12 : at + 16] == b"hvc1"
            data[at + 12 : at + 16] = b"lhv1"
            found.add(item_id)
    assert found == item_ids
    return bytes(data)


def test_an_image_libheif_refuses_is_left_out():
    whole = heifkit.open_heif(EXAMPLE)
    assert len(whole) == 2
    f = heifkit.open_heif(_patched({20006}))
    assert len(f) == 1 and f.primary_index == 0
    assert f.info["primary"] is True
    np.testing.assert_array_equal(np.asarray(f[0]), np.asarray(whole[0]))


def test_a_refused_primary_leaves_the_next_image_as_primary():
    whole = heifkit.open_heif(EXAMPLE)
    f = heifkit.open_heif(_patched({20004}))
    assert len(f) == 1 and f.primary_index == 0 and f.info["primary"] is True
    np.testing.assert_array_equal(np.asarray(f), np.asarray(whole[1]))


def test_the_plugin_opens_it_too(heif_plugin):
    import io

    with Image.open(io.BytesIO(_patched({20006}))) as im:
        assert im.n_frames == 1
        im.load()
        assert im.size == (1280, 854)


def test_a_file_fails_only_when_no_image_opens():
    with pytest.raises(heifkit.UnsupportedError):
        heifkit.open_heif(_patched({20004, 20006}))
