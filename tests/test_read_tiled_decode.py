"""Tile-by-tile decoding of grid images straight into the output buffer (decode.decode_tiles_into).

It must give exactly the pixels of libheif's whole-image decode, whatever the grid's orientation, crop,
bit depth or output layout; heifkit switches to it for big grids (decode.TILED_DECODE_MIN_PIXELS).
"""

from __future__ import annotations

import numpy as np
import pytest

import heifkit
from conftest import CORPUS, corpus_params, oriented_grid
from heifkit._decode import pixels as decode
from heifkit._info import modes


def _handle_and_layout(heif_file: heifkit.HeifFile, **flags: bool) -> tuple[object, decode.PixelLayout]:
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


@pytest.mark.slow  # a 12 MP grid in every layout
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


@pytest.mark.slow  # a 12 MP grid
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


def _grid_files() -> list[str]:
    from conftest import decodable_files

    names = []
    for name in decodable_files():
        f = heifkit.open_heif(CORPUS / name)
        if decode.image_tiling(f._primary()._handle) is not None:
            names.append(name)
    return names


GRIDS = _grid_files()


def test_the_corpus_has_grids_of_both_codecs():
    assert len(GRIDS) >= 8
    assert any(n.endswith(".avif") for n in GRIDS) and any(n.endswith((".heic", ".hif")) for n in GRIDS)


@pytest.mark.parametrize("name", corpus_params(n for n in GRIDS if n != "pheif_200MP.heic"))
def test_every_corpus_grid_matches_on_thread_contexts(name):
    """Threads decode tiles through contexts of their own over the file's bytes; the pixels are libheif's."""
    f = heifkit.open_heif(CORPUS / name)
    assert len(decode._worker_handles(f._primary()._handle, 3)) == 3
    for threads in (1, 3):
        whole, tiled = _both(f, threads=threads)
        assert whole == tiled, f"{name}: {threads} threads"


def test_files_read_by_path_decode_through_one_context(monkeypatch):
    from heifkit._read import source as _input

    monkeypatch.setattr(_input, "LAZY_READ_THRESHOLD", 0)  # libheif reads the file by path
    f = heifkit.open_heif(CORPUS / "pheif_xiaomi.heic")
    assert decode._worker_handles(f._primary()._handle, 3) == [f._primary()._handle]
    whole, tiled = _both(f, threads=3)
    assert whole == tiled


def test_thread_contexts_keep_disabled_security_limits():
    f = heifkit.open_heif(CORPUS / "pheif_arrow.heic", disable_security_limits=True)
    handle = f._primary()._handle
    assert all(h.ctx.limits_disabled for h in decode._worker_handles(handle, 2))


@pytest.mark.slow  # a 12 MP grid
def test_thread_contexts_dropped_in_any_order_then_another_file():
    """Images decoded through the thread contexts are copied out and released before their contexts."""
    import gc

    for _ in range(3):
        f = heifkit.open_heif(CORPUS / "pheif_xiaomi.heic")
        handle, layout = _handle_and_layout(f)
        pixels = decode.decode_tiles_into(handle, layout, decode.image_tiling(handle), threads=3)
        del f, handle
        gc.collect()
        assert len(pixels.buffer) == pixels.stride * pixels.height
        del pixels
        gc.collect()
    assert heifkit.open_heif(CORPUS / "pheif_zPug_3.heic").size == (64, 64)


def test_every_corpus_grid_has_tiles_coded_alike():
    """So the tile path is taken for them (a grid mixing codings goes to libheif's whole-image decode)."""
    for name in GRIDS:
        f = heifkit.open_heif(CORPUS / name)
        handle = f._primary()._handle
        assert decode._tiles_agree(handle, decode.image_tiling(handle)), name


def test_a_grid_mixing_tile_codings_is_refused_as_libheif_refuses_it():
    """Each tile would decode on its own, but libheif refuses the grid: heifkit says what libheif says."""
    import oracle

    name = "libavif_color_grid_alpha_grid_tile_shared_in_dimg.avif"
    f = heifkit.open_heif(CORPUS / name)
    handle = f._primary()._handle
    assert not decode._tiles_agree(handle, decode.image_tiling(handle))
    with pytest.raises(oracle.OracleError) as expected:
        oracle.decode_rgb(CORPUS / name)
    for threads in (1, 4):
        with pytest.raises(heifkit.HeifError) as got:
            heifkit.open_heif(CORPUS / name, decode_threads=threads).data  # noqa: B018
        assert (got.value.code, got.value.subcode) == (expected.value.code, expected.value.subcode)
