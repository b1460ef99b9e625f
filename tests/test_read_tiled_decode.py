"""Tile-by-tile decoding of grid images straight into the output buffer (decode.decode_tiles_into).

It must give exactly the pixels of libheif's whole-image decode, whatever the grid's orientation, crop,
bit depth or output layout; heifkit switches to it for big grids (decode.TILED_DECODE_MIN_PIXELS).
"""

from __future__ import annotations

import numpy as np
import pytest

import heifkit
from conftest import CORPUS, oriented_grid
from heifkit import decode, modes


def _handle_and_layout(heif_file: heifkit.HeifFile, **flags: bool) -> tuple[object, decode.Layout]:
    image = heif_file._primary()
    mode = modes.decoded_mode(
        heif_file.info["bit_depth"],
        heif_file.mode in ("L", "I;16"),
        image.has_alpha,
        image.premultiplied_alpha,
        flags.get("convert_hdr_to_8bit", True),
        True,
        flags.get("bgr_mode", False),
    )
    return image._handle, decode.layout_of(mode, heif_file.info["bit_depth"])


def _both(heif_file: heifkit.HeifFile, threads: int = 2, **flags: bool) -> tuple[bytes, bytes]:
    handle, layout = _handle_and_layout(heif_file, **flags)
    tiling = decode.image_tiling(handle)
    assert tiling is not None, "not a tiled image"
    w, h, stride, whole = decode.decode_into(handle, layout)
    w2, h2, stride2, tiled = decode.decode_tiles_into(handle, layout, tiling, threads=threads)
    assert (w, h, stride) == (w2, h2, stride2)
    return bytes(whole), bytes(tiled)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
@pytest.mark.parametrize("size", [(200, 130), (130, 200), (192, 128)])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_whole_image_decode(fmt, size, orientation):
    whole, tiled = _both(heifkit.open_heif(oriented_grid(fmt, size, orientation)))
    assert whole == tiled


@pytest.mark.parametrize("name", ["pheif_arrow.heic", "pheif_xiaomi.heic", "pheif_spatial_photo.heic"])
def test_corpus_grids_match(name):
    whole, tiled = _both(heifkit.open_heif(CORPUS / name))
    assert whole == tiled


def test_high_bit_depth_and_bgr_layouts_match():
    f = heifkit.open_heif(CORPUS / "pheif_cat.hif", convert_hdr_to_8bit=False)  # 10-bit 4:2:2, 2x2 grid
    for flags in ({"convert_hdr_to_8bit": False}, {"convert_hdr_to_8bit": False, "bgr_mode": True}, {}):
        whole, tiled = _both(f, threads=4, **flags)
        assert whole == tiled


def test_single_thread_and_caller_buffer():
    f = heifkit.open_heif(CORPUS / "pheif_xiaomi.heic")
    handle, layout = _handle_and_layout(f)
    tiling = decode.image_tiling(handle)
    w, h, stride, whole = decode.decode_into(handle, layout)
    target = bytearray(stride * h + 7)
    result = decode.decode_tiles_into(handle, layout, tiling, threads=1, dst=target)
    assert result[3] is target
    assert bytes(target[: stride * h]) == bytes(whole)
    with pytest.raises(ValueError, match="fewer than"):
        decode.decode_tiles_into(handle, layout, tiling, dst=bytearray(10))


def test_not_tiled_images_report_no_tiling():
    f = heifkit.open_heif(CORPUS / "pheif_RGB_8__29x100.heif")
    handle, _ = _handle_and_layout(f)
    assert decode.image_tiling(handle) is None


def test_public_api_uses_tiles_for_big_grids(monkeypatch):
    expected = np.asarray(heifkit.open_heif(CORPUS / "pheif_arrow.heic"))
    calls = []
    original = decode.decode_tiles_into

    def spy(*args, **kwargs):
        calls.append(args[3:])
        return original(*args, **kwargs)

    monkeypatch.setattr(decode, "TILED_DECODE_MIN_PIXELS", 1_000_000)
    monkeypatch.setattr(decode, "decode_tiles_into", spy)
    got = np.asarray(heifkit.open_heif(CORPUS / "pheif_arrow.heic"))
    assert calls, "the tile path was not taken"
    np.testing.assert_array_equal(got, expected)
    # remove_stride=False keeps libheif's whole-image path (its padded stride)
    calls.clear()
    heifkit.open_heif(CORPUS / "pheif_arrow.heic", remove_stride=False).data  # noqa: B018
    assert not calls
