"""Primary image and image order on save, in HeifFile.save and in the Pillow save hooks.

The primary is the last image with ``info["primary"]`` True, else the first; ``primary_index`` (an index,
-1 or anything past the end for the last) overrides. Reading back gives the same order and primary, with
heifkit, pillow_heif and the Pillow plugin (which opens at the primary).
"""

from __future__ import annotations

import io

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageSequence

import heifkit
from conftest import CORPUS, pil_bytes, save_bytes

ZPUG = CORPUS / "pheif_zPug_3.heic"  # 64x64 RGB, 64x64 L (primary), 96x64 RGB


pytestmark = pytest.mark.usefixtures("heif_plugin")


def three() -> heifkit.HeifFile:
    """Three new images told apart by width: 16, 24, 32."""
    heif_file = heifkit.HeifFile()
    for i in range(3):
        heif_file.add_from_pillow(Image.new("RGB", (16 + 8 * i, 16), (80 * i, 40, 0)))
    return heif_file


def read_back(data: bytes) -> tuple[list[int], int]:
    """(widths in file order, primary index), checked to agree across heifkit, pillow_heif and Pillow."""
    ours = heifkit.open_heif(data)
    theirs = pillow_heif.open_heif(data)
    widths = [im.size[0] for im in ours]
    assert widths == [im.size[0] for im in theirs]
    assert ours.primary_index == theirs.primary_index
    flags = [im.info["primary"] for im in ours]
    assert flags == [i == ours.primary_index for i in range(len(ours))]
    assert flags == [im.info["primary"] for im in theirs]
    assert ours.size == ours[ours.primary_index].size
    with Image.open(io.BytesIO(data)) as im:
        assert im.tell() == ours.primary_index
        assert im.n_frames == len(ours)
    return widths, ours.primary_index


def flags(heif_file: heifkit.HeifFile) -> list[bool]:
    return [bool(im.info.get("primary")) for im in heif_file]


# ---------------------------------------------------------------------------------------------------
# HeifFile.save


def test_default_primary_is_first():
    heif_file = three()
    assert flags(heif_file) == [False, False, False]
    assert heif_file.primary_index == 0
    assert read_back(save_bytes(heif_file)) == ([16, 24, 32], 0)


@pytest.mark.parametrize(("flagged", "expected"), [([1], 1), ([2], 2), ([0, 2], 2), ([2, 1], 2), ([0, 1, 2], 2)])
def test_last_flagged_image_is_primary(flagged, expected):
    heif_file = three()
    for i in flagged:
        heif_file[i].info["primary"] = True
    assert heif_file.primary_index == expected
    assert read_back(save_bytes(heif_file)) == ([16, 24, 32], expected)


@pytest.mark.parametrize(("primary_index", "expected"), [(0, 0), (1, 1), (2, 2), (-1, 2), (99, 2), (3, 2)])
def test_primary_index_overrides(primary_index, expected):
    heif_file = three()
    heif_file[1].info["primary"] = True
    assert read_back(save_bytes(heif_file, primary_index=primary_index)) == ([16, 24, 32], expected)
    assert flags(heif_file) == [False, True, False]  # the source is not modified
    assert heif_file.primary_index == 1


def test_opened_file_keeps_order_and_primary():
    src = heifkit.open_heif(ZPUG)
    assert src.primary_index == 1
    assert read_back(save_bytes(src)) == ([64, 64, 96], 1)
    data = save_bytes(src)
    assert [im.mode for im in heifkit.open_heif(data)] == ["RGB", "L", "RGB"]


def test_editing_info_primary_changes_the_primary():
    src = heifkit.open_heif(ZPUG)
    src[1].info["primary"] = False
    src[2].info["primary"] = True
    assert src.primary_index == 2
    assert read_back(save_bytes(src)) == ([64, 64, 96], 2)
    src[2].info.pop("primary")
    assert read_back(save_bytes(src)) == ([64, 64, 96], 0)


def test_primary_index_setter():
    heif_file = three()
    heif_file.primary_index = 2
    assert flags(heif_file) == [False, False, True]
    assert read_back(save_bytes(heif_file)) == ([16, 24, 32], 2)
    heif_file.primary_index = -2
    assert flags(heif_file) == [False, True, False]
    assert read_back(save_bytes(heif_file)) == ([16, 24, 32], 1)
    with pytest.raises(IndexError):
        heif_file.primary_index = 3


def test_resaving_twice_is_stable():
    heif_file = three()
    heif_file[2].info["primary"] = True
    first = heifkit.open_heif(save_bytes(heif_file))
    assert read_back(save_bytes(first)) == ([16, 24, 32], 2)


@pytest.mark.parametrize(("index", "widths", "primary"), [(0, [64, 96], 0), (2, [64, 64], 1), (-1, [64, 64], 1)])
def test_del_then_save(index, widths, primary):
    src = heifkit.open_heif(ZPUG)
    del src[index]
    assert len(src) == 2
    assert src.primary_index == primary  # recomputed (pillow_heif leaves it stale)
    assert src.mode == "L"
    assert read_back(save_bytes(src)) == (widths, primary)


def test_del_the_primary_then_save():
    src = heifkit.open_heif(ZPUG)
    del src[1]
    assert src.primary_index == 0 and src.mode == "RGB" and src.size == (64, 64)
    assert read_back(save_bytes(src)) == ([64, 96], 0)
    del src[0]
    assert src.size == (96, 64)
    assert read_back(save_bytes(src)) == ([96], 0)


def test_new_images_added_to_an_opened_file_are_not_primary():
    src = heifkit.open_heif(ZPUG)
    src.add_from_pillow(Image.new("RGB", (8, 8)))
    src.add_from_heif(src[1])  # a copy of the primary: "primary" is dropped
    assert flags(src) == [False, True, False, False, False]
    assert read_back(save_bytes(src)) == ([64, 64, 96, 8, 64], 1)


def test_appended_heif_image_keeps_its_primary_flag():
    # append_images are taken as they are: a flagged image there is the last flagged one
    heif_file = three()
    heif_file[0].info["primary"] = True
    zpug = heifkit.open_heif(ZPUG)
    assert read_back(save_bytes(heif_file, append_images=[zpug[1]])) == ([16, 24, 32, 64], 3)
    assert read_back(save_bytes(heif_file, append_images=[zpug[0]])) == ([16, 24, 32, 64], 0)
    assert read_back(save_bytes(heif_file, append_images=[zpug[1]], primary_index=1)) == ([16, 24, 32, 64], 1)


def test_save_all_false_writes_first_as_primary():
    heif_file = three()
    heif_file[2].info["primary"] = True
    assert read_back(save_bytes(heif_file, save_all=False)) == ([16], 0)
    assert read_back(save_bytes(heif_file, save_all=False, primary_index=2)) == ([16], 0)


def test_primary_pixels_follow_the_primary():
    heif_file = three()
    data = save_bytes(heif_file, primary_index=1, quality=-1, chroma=444, matrix_coefficients=0)
    back = heifkit.open_heif(data)
    assert np.array_equal(np.asarray(back), np.asarray(heif_file[1]))
    assert np.array_equal(np.asarray(back.to_pillow()), np.asarray(heif_file[1]))


# ---------------------------------------------------------------------------------------------------
# Pillow save


def _pillow_three() -> list[Image.Image]:
    return [Image.new("RGB", (16 + 8 * i, 16), (80 * i, 0, 0)) for i in range(3)]


def test_pillow_default_primary_is_first():
    ims = _pillow_three()
    assert read_back(pil_bytes(ims[0], save_all=True, append_images=ims[1:])) == ([16, 24, 32], 0)
    assert read_back(pil_bytes(ims[1])) == ([24], 0)


@pytest.mark.parametrize(("primary_index", "expected"), [(0, 0), (1, 1), (-1, 2), (99, 2)])
def test_pillow_primary_index(primary_index, expected):
    ims = _pillow_three()
    data = pil_bytes(ims[0], save_all=True, append_images=ims[1:], primary_index=primary_index)
    assert read_back(data) == ([16, 24, 32], expected)


def test_pillow_frame_info_primary():
    ims = _pillow_three()
    ims[2].info["primary"] = True
    assert read_back(pil_bytes(ims[0], save_all=True, append_images=ims[1:])) == ([16, 24, 32], 2)
    assert read_back(pil_bytes(ims[0], save_all=True, append_images=ims[1:], primary_index=0)) == ([16, 24, 32], 0)


def test_pillow_multi_frame_heif_keeps_primary():
    with Image.open(ZPUG) as im:
        assert read_back(pil_bytes(im, save_all=True)) == ([64, 64, 96], 1)
        # editing a frame's info changes the primary
        im.seek(1)
        im.info["primary"] = False
        im.seek(2)
        im.info["primary"] = True
        assert read_back(pil_bytes(im, save_all=True)) == ([64, 64, 96], 2)
        assert read_back(pil_bytes(im, save_all=True, primary_index=0)) == ([64, 64, 96], 0)
        assert im.tell() == 2


def test_pillow_frames_of_a_heif_file_in_order():
    with Image.open(ZPUG) as im:
        modes = [frame.mode for frame in ImageSequence.Iterator(im)]
        data = pil_bytes(im, save_all=True)
    assert modes == ["RGB", "L", "RGB"]
    assert [i.mode for i in heifkit.open_heif(data)] == modes
