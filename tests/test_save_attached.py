"""Re-saving keeps what users didn't touch: ``HeifFile.save`` (and Pillow's ``save`` of an unchanged frame)
copies an image's depth images, auxiliary images and gain maps (``tmap`` items included) from the file it was
read from, as they are, unless the image's geometry changed."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import CORPUS, PUG, psnr
from heifkit._container import item_boxes as _boxes
from heifkit._info.transforms import orientation_of
from heifkit._read import items as _items
from heifkit._write import attached as _attached
from heifkit._write import still as _write

SEINE = CORPUS / "libavif_seine_sdr_gainmap_srgb.avif"  # AVIF: base image, tmap item, altr group
SAMSUNG = CORPUS / "pheif_aux_YCbCr.heic"  # one gain map both auxiliary image and tmap input
FAST = {"HEIF": {"preset": "ultrafast"}, "AVIF": {"speed": "9"}}


def saved(f: heifkit.HeifFile, fmt: str = "HEIF", **kwargs) -> bytes:
    out = io.BytesIO()
    f.save(out, format=fmt, quality=90, enc_params=FAST[fmt], **kwargs)
    return out.getvalue()


def small_carrier(source: Path, orientation: int = 1, fmt: str = "HEIF") -> bytes:
    """A 64x48 file whose image carries everything attached to ``source``'s primary image, copied by the
    writer itself (sizes don't match, which libheif doesn't check): fast to re-save in the tests below."""
    src = heifkit.open_heif(source)
    attached = _attached.attached_to(src[src.primary_index]._entry.handle, None, True, None)
    pixels = np.random.default_rng(orientation).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    frame = _write.Frame("RGB", (64, 48), pixels.tobytes(), 64 * 3, {}, orientation=orientation, attached=attached)
    settings = _write.encode_settings({"quality": 90, "enc_params": FAST[fmt]}, fmt)
    return _write.encode_frames([frame], settings, {0: settings.image})


def item_types(data: bytes) -> dict[int, str]:
    ctx = heifkit.open_heif(data)[0]._entry.handle.ctx
    return {i: _items.item_type(ctx.ptr, i) for i in _items.item_ids(ctx.ptr)}


# --- the acceptance checks: real files ----------------------------------------------------------------


@pytest.fixture(scope="module")
def pug_resaved() -> tuple[heifkit.HeifFile, heifkit.HeifFile]:
    return heifkit.open_heif(PUG), heifkit.open_heif(saved(heifkit.open_heif(PUG)))


@pytest.mark.slow  # a 12 MP grid re-saved
def test_pug_keeps_its_depth_image(pug_resaved):
    before, after = pug_resaved
    (depth,), (kept,) = before.info["depth_images"], after.info["depth_images"]
    assert (kept.size, kept.mode) == (depth.size, depth.mode) == ((768, 576), "L")
    assert bytes(kept.data) == bytes(depth.data)  # lossless: the coded depth map is copied as it is
    assert kept.info == depth.info  # d_min, d_max, representation: in the copied hvcC


@pytest.mark.slow  # a 12 MP grid re-saved
def test_pug_keeps_its_apple_gain_map(pug_resaved):
    before, after = pug_resaved
    (gain_map,), (kept,) = before.info["gain_maps"], after.info["gain_maps"]
    assert kept.info["aux_type"] == gain_map.info["aux_type"] == "urn:com:apple:photo:2020:aux:hdrgainmap"
    assert kept.info["xmp"] == gain_map.info["xmp"]
    assert (kept.size, kept.mode) == (gain_map.size, gain_map.mode)
    assert bytes(kept.data) == bytes(gain_map.data)
    assert list(after.info["aux"]) == list(before.info["aux"])
    assert psnr(np.asarray(after), np.asarray(before)) >= 40  # the photo itself is encoded again


def test_a_tmap_gain_map_is_kept():
    before = heifkit.open_heif(SEINE)
    data = saved(heifkit.open_heif(SEINE), "AVIF")
    after = heifkit.open_heif(data)
    (gain_map,), (kept,) = before.info["gain_maps"], after.info["gain_maps"]
    assert kept.info["tmap"] == gain_map.info["tmap"]
    assert (kept.size, kept.mode) == (gain_map.size, gain_map.mode)
    assert bytes(kept.data) == bytes(gain_map.data)
    # the tmap item is shown and grouped with its base image, first, as the source had it
    (group,) = after.info["entity_groups"]
    assert group["type"] == "altr" and group["entities"] == [kept.info["tmap_item_id"], kept.info["base_item_id"]]
    ctx = after[0]._entry.handle.ctx
    assert not _items.is_hidden(ctx.ptr, kept.info["tmap_item_id"]) and _items.is_hidden(ctx.ptr, kept.info["item_id"])
    assert b"tmap" in data[: int.from_bytes(data[:4], "big")]  # a compatible brand of the ftyp box
    assert psnr(np.asarray(after), np.asarray(before)) >= 30


def test_a_gain_map_both_auxiliary_and_tmap_input_is_copied_once():
    data = small_carrier(SAMSUNG)
    (gain_map,) = heifkit.open_heif(data).info["gain_maps"]
    assert gain_map.info["aux_type"] == "urn:com:samsung:photo:2024:aux:hdrgainmap" and gain_map.info["tmap"]
    again = heifkit.open_heif(saved(heifkit.open_heif(data)))
    (kept,) = again.info["gain_maps"]
    assert kept.info["tmap"] == gain_map.info["tmap"] and kept.info["xmp"] == gain_map.info["xmp"]
    assert bytes(kept.data) == bytes(gain_map.data)
    types = list(item_types(saved(heifkit.open_heif(data))).values())
    assert types.count("grid") == 1 and types.count("tmap") == 1  # the gain map grid, once


# --- what is kept, and when ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def carrier() -> bytes:
    return small_carrier(PUG)


def _kept(data: bytes) -> tuple[int, list[str]]:
    f = heifkit.open_heif(data)
    return len(f.info["depth_images"]), [g.info["aux_type"] for g in f.info["gain_maps"]]


def test_what_info_no_longer_lists_is_left_out(carrier):
    apple = ["urn:com:apple:photo:2020:aux:hdrgainmap"]
    assert _kept(saved(heifkit.open_heif(carrier))) == (1, apple)
    f = heifkit.open_heif(carrier)
    f.info["depth_images"] = []
    assert _kept(saved(f)) == (0, apple)
    f = heifkit.open_heif(carrier)
    f.info["aux"] = {}
    assert _kept(saved(f)) == (1, [])
    f = heifkit.open_heif(small_carrier(SEINE, fmt="AVIF"))
    f.info["gain_maps"] = []
    assert heifkit.open_heif(saved(f, "AVIF")).info["gain_maps"] == []


def test_copies_keep_them_and_regions_do_not(carrier):
    f = heifkit.open_heif(carrier)
    copied = heifkit.HeifFile()
    copied.add_from_heif(f[0])
    assert _kept(saved(copied)) == (1, ["urn:com:apple:photo:2020:aux:hdrgainmap"])
    part = heifkit.HeifFile()
    part.add_from_heif(f.crop((0, 0, 32, 32)))
    assert _kept(saved(part)) == (0, [])


def test_another_format_leaves_out_items_coded_for_the_first(carrier):
    assert _kept(saved(heifkit.open_heif(carrier), "AVIF")) == (0, [])  # HEVC items in an AVIF file: no
    assert heifkit.open_heif(saved(heifkit.open_heif(SEINE), "HEIF")).info["gain_maps"] == []


@pytest.mark.parametrize("orientation", [6, 5, 3])
def test_a_rotated_image_keeps_its_stored_geometry(orientation):
    data = small_carrier(PUG, orientation)
    stored = heifkit.open_heif(data, apply_transformations=False)
    assert orientation_of(stored.info["transformations"]) == orientation
    for again in (saved(heifkit.open_heif(data)), _pillow_saved(data)):
        reread = heifkit.open_heif(again, apply_transformations=False)
        assert orientation_of(reread.info["transformations"]) == orientation  # irot/imir written again
        assert reread.size == stored.size and psnr(np.asarray(reread), np.asarray(stored)) >= 35
        assert _kept(again) == (1, ["urn:com:apple:photo:2020:aux:hdrgainmap"])
        assert np.array_equal(np.asarray(heifkit.open_heif(again).info["depth_images"][0]), _depth(data))


def _pillow_saved(data: bytes, change=None) -> bytes:
    heifkit.register_heif_opener()
    out = io.BytesIO()
    with Image.open(io.BytesIO(data)) as im:
        if change is not None:
            im = change(im) or im
        im.save(out, format="HEIF", quality=90, enc_params=FAST["HEIF"])
    return out.getvalue()


def _depth(data: bytes) -> np.ndarray:
    return np.asarray(heifkit.open_heif(data).info["depth_images"][0])


def test_pillow_save_keeps_them_for_unchanged_geometry_only(carrier):
    apple = ["urn:com:apple:photo:2020:aux:hdrgainmap"]
    assert _kept(_pillow_saved(carrier)) == (1, apple)

    def draw(im):
        im.load()
        im.paste((255, 0, 0), (0, 0, 8, 8))  # pixels changed in place, geometry not

    assert _kept(_pillow_saved(carrier, draw)) == (1, apple)
    assert _kept(_pillow_saved(carrier, lambda im: im.thumbnail((32, 32)))) == (0, [])
    assert _kept(_pillow_saved(carrier, lambda im: im.rotate(90, expand=True))) == (0, [])

    def drop_gain_map(im):
        im.info["aux"] = {}

    assert _kept(_pillow_saved(carrier, drop_gain_map)) == (1, [])
    out = io.BytesIO()
    with Image.open(io.BytesIO(carrier)) as im:
        heifkit.from_pillow(im).save(out)  # a Pillow image copied into a new file: pixels only
    assert _kept(out.getvalue()) == (0, [])


def test_alpha_is_encoded_from_the_pixels_not_copied():
    data = saved(heifkit.open_heif(CORPUS / "libavif_color_grid_gainmap_different_grid.avif"), "AVIF")
    f = heifkit.open_heif(data)
    assert f.mode == "RGBA" and len(f.info["gain_maps"]) == 1
    ctx = f[0]._entry.handle.ctx
    auxl = [i for i in _items.item_ids(ctx.ptr) for kind, _ in _items.references(ctx.ptr, i) if kind == "auxl"]
    assert len(auxl) == 1  # the alpha plane libheif wrote, no second copy


@pytest.mark.parametrize(
    "name", ["libheif_simple_osm_tile_alpha.avif", "libheif_with-alpha-512x512.heic", "pheif_zPug_3.heic"]
)
def test_files_with_nothing_to_copy_save_as_before(name):
    f = heifkit.open_heif(CORPUS / name)
    assert heifkit.open_heif(saved(f, "AVIF" if name.endswith("avif") else "HEIF")).size == f.size


def test_the_source_may_go_first(carrier):
    image = heifkit.open_heif(carrier)[0]
    target = heifkit.HeifFile()
    target.add_from_heif(image)
    del image
    assert _kept(saved(target)) == (1, ["urn:com:apple:photo:2020:aux:hdrgainmap"])
    for _ in range(3):  # the plain loop: open, save, drop
        assert _kept(saved(heifkit.open_heif(carrier)))[0] == 1


# --- the box patches -----------------------------------------------------------------------------------


def test_patching_moves_every_offset_and_keeps_the_pixels():
    src = io.BytesIO()
    heifkit.from_bytes("RGB", (64, 64), bytes(range(256)) * 48).save(src, quality=90)
    data = src.getvalue()
    patched = _boxes.patch_written(data, set(), [(b"altr", [1, 1])])
    assert len(patched) == len(data) + 8 + 12 + 8 + 2 * 4  # grpl, altr header, id and count, two entities
    assert np.array_equal(np.asarray(heifkit.open_heif(patched)), np.asarray(heifkit.open_heif(data)))
    (group,) = heifkit.open_heif(patched).info["entity_groups"]
    assert group["type"] == "altr" and group["entities"] == [1, 1]
    assert _boxes.patch_written(data, set(), []) == data


def test_properties_are_read_from_files_on_disk_and_in_memory(tmp_path):
    path = tmp_path / "pug.heic"
    path.write_bytes(PUG.read_bytes())
    from_disk = _boxes.item_properties(path, {52, 54})
    assert from_disk == _boxes.item_properties(PUG.read_bytes(), {52, 54})
    assert [p.kind for p in from_disk[52]] == [b"hvcC", b"ispe", b"irot", b"pixi", b"auxC"]
    assert from_disk[52][-1].payload[4:].rstrip(b"\0") == b"urn:com:apple:photo:2020:aux:hdrgainmap"  # auxC
    with pytest.raises(heifkit.InvalidInputError, match="no meta box"):
        _boxes.item_properties(b"\0\0\0\x10ftypheic\0\0\0\0", {1})


def test_a_gain_map_image_also_shown_as_an_image_is_written_once() -> None:
    """A damaged file (found by the fuzzer) shows its gain map's image as a top-level image too: a re-save
    writes it once, among the images, and the copy attached to the primary image stays hidden."""
    path = CORPUS.parent / "fuzz_regressions" / "save-gain-map-image-also-shown.avif"
    heif_file = heifkit.open_heif(path)
    sizes = [image.size for image in heif_file]
    assert heif_file[0].info["gain_maps"] and (50, 50) in sizes
    out = io.BytesIO()
    heif_file.save(out, format="AVIF", quality=50, speed=10)
    back = heifkit.open_heif(out.getvalue())
    assert [image.size for image in back] == sizes


def test_a_gain_map_made_of_a_missing_item_is_left_out() -> None:
    """A damaged file (found by the fuzzer) whose gain map grid names a tile the file lacks: the photo is
    re-saved whole, without the gain map it cannot copy whole, and a sound gain map of the same file layout
    is still kept."""
    sound = CORPUS / "libavif_color_grid_gainmap_different_grid.avif"
    damaged = CORPUS.parent / "fuzz_regressions" / "save-gain-map-grid-tile-missing.avif"
    for path, kept in ((sound, 1), (damaged, 0)):
        heif_file = heifkit.open_heif(path)
        back = heifkit.open_heif(saved(heif_file, "AVIF"))
        assert len(back.info["gain_maps"]) == kept, path.name
        assert back.size == heif_file.size
        assert psnr(np.asarray(back), np.asarray(heif_file)) >= 30
