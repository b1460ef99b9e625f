"""Pillow ``YCbCr`` images are written as YCbCr planes, not through RGB.

Pillow's YCbCr is JPEG's: BT.601 at full range, 8 bits. Pillow's ``save`` writes the three planes as they
are (a libheif image in ``heif_colorspace_YCbCr``/``heif_chroma_444``, tagged with the NCLX that describes
them: matrix 6, full range), so at ``quality=-1, chroma=444`` the file holds the source planes exactly and
decodes to the exact BT.601 RGB, as pillow_heif's files do. Through RGB (Pillow's integer conversion, then
libheif's back to YCbCr) the planes moved by 0.15 on average.

When the file must describe other samples (``matrix_coefficients`` other than 5/6, limited range, or more
than 8 bits, e.g. the lossless RGB recipe ``matrix_coefficients=0``), the image is converted to RGB by
Pillow first, so the lossless recipe gives back ``im.convert("RGB")`` exactly. ``from_pillow`` converts
YCbCr to RGB, as in pillow_heif (the HeifImage is an ``RGB`` image). Grids of YCbCr images are written
(pillow_heif refuses them).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pillow_heif
import pytest
from PIL import Image

import heifkit
import heifkit.plugin
from conftest import CORPUS, psnr
from heifkit._native.libheif import Context, Handle, check, ffi, lib

LOSSLESS_444 = {"quality": -1, "chroma": 444}
pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")  # pillow_heif's own


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    heifkit.register_heif_opener()


@pytest.fixture(scope="module")
def source() -> Image.Image:
    """A natural image (libheif's example, scaled to 200 x 130) in Pillow's YCbCr."""
    rgb = heifkit.open_heif(CORPUS / "libheif_example.heic").to_pillow().convert("RGB").resize((200, 130))
    return rgb.convert("YCbCr")


def exact_rgb(ycbcr: Image.Image) -> np.ndarray:
    """BT.601 full-range YCbCr -> RGB in floating point (JFIF), rounded: the colours the planes mean."""
    y, cb, cr = (np.asarray(ycbcr).astype(np.float64)[..., i] for i in range(3))
    rgb = np.dstack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128), y + 1.772 * (cb - 128)])
    return np.clip(np.round(rgb), 0, 255)


def ycbcr_planes(data: bytes) -> np.ndarray:
    """The primary image's Y, Cb, Cr planes decoded by libheif at 4:4:4, without any RGB conversion."""
    ctx = Context()
    buf = ffi.from_buffer(data)
    check(lib.heif_context_read_from_memory_without_copy(ctx.ptr, buf, len(buf), ffi.NULL))
    item = ffi.new("heif_item_id*")
    check(lib.heif_context_get_primary_image_ID(ctx.ptr, item))
    out = ffi.new("heif_image_handle**")
    check(lib.heif_context_get_image_handle(ctx.ptr, item[0], out))
    handle = Handle(out[0], ctx)
    decoded = ffi.new("heif_image**")
    check(lib.heif_decode_image(handle.ptr, decoded, lib.heif_colorspace_YCbCr, lib.heif_chroma_444, ffi.NULL))
    image = ctx.adopt_image(decoded[0])
    planes = []
    for channel in (lib.heif_channel_Y, lib.heif_channel_Cb, lib.heif_channel_Cr):
        stride = ffi.new("size_t*")
        plane = lib.heif_image_get_plane2(image, channel, stride)
        width, height = lib.heif_image_get_width(image, channel), lib.heif_image_get_height(image, channel)
        rows = np.frombuffer(ffi.buffer(plane, stride[0] * height), np.uint8).reshape(height, stride[0])
        planes.append(rows[:, :width].copy())
    return np.dstack(planes)


def heifkit_bytes(im: Image.Image, fmt: str = "HEIF", **kwargs: Any) -> bytes:
    out = io.BytesIO()
    im = im.copy()  # Pillow merges a leftover im.encoderinfo into the next save's parameters
    if fmt == "AVIF":  # Pillow's own AVIF plugin stays registered in this process: call the hook itself
        im.encoderinfo = kwargs
        heifkit.plugin._save(im, out, "AVIF", save_all=False)
    else:
        im.save(out, format=fmt, **kwargs)
    return out.getvalue()


def pillow_heif_bytes(im: Image.Image, **kwargs: Any) -> bytes:
    """pillow_heif's Pillow save (the path that keeps YCbCr), called directly: heifkit's plugin is registered."""
    out = io.BytesIO()
    im = im.copy()
    im.encoderinfo = kwargs
    pillow_heif.as_plugin._save_heif(im, out, "x.heic")
    return out.getvalue()


def decoded_rgb(data: bytes) -> np.ndarray:
    return np.asarray(heifkit.open_heif(data).to_pillow().convert("RGB")).astype(np.float64)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_lossless_444_keeps_the_planes(source: Image.Image, fmt: str) -> None:
    data = heifkit_bytes(source, fmt, **LOSSLESS_444)
    assert np.array_equal(ycbcr_planes(data), np.asarray(source))
    assert np.abs(decoded_rgb(data) - exact_rgb(source)).mean() < 0.01
    nclx = heifkit.open_heif(data).info["nclx_profile"]
    assert (nclx["matrix_coefficients"], nclx["full_range_flag"]) == (6, 1)


def test_lossless_444_as_close_as_pillow_heif(source: Image.Image) -> None:
    ours, theirs = heifkit_bytes(source, **LOSSLESS_444), pillow_heif_bytes(source, **LOSSLESS_444)
    assert np.array_equal(ycbcr_planes(ours), ycbcr_planes(theirs))
    assert np.abs(decoded_rgb(ours) - decoded_rgb(theirs)).mean() < 0.01
    reference = exact_rgb(source)
    assert np.abs(decoded_rgb(ours) - reference).mean() <= np.abs(decoded_rgb(theirs) - reference).mean() + 0.01


@pytest.mark.parametrize("kwargs", [{"quality": 90}, {"quality": 90, "chroma": 444}, {"quality": 50}], ids=str)
def test_lossy_colours(source: Image.Image, kwargs: dict[str, Any]) -> None:
    ours, theirs = heifkit_bytes(source, **kwargs), pillow_heif_bytes(source, **kwargs)
    reference = exact_rgb(source)
    ours_psnr, theirs_psnr = psnr(decoded_rgb(ours), reference), psnr(decoded_rgb(theirs), reference)
    assert ours_psnr > 28
    assert ours_psnr > theirs_psnr - 0.2
    assert heifkit.open_heif(ours).info["chroma"] == kwargs.get("chroma", 420)


@pytest.mark.parametrize(
    "kwargs", [{"save_nclx_profile": False}, {"matrix_coefficients": 5}, {"color_primaries": 9}], ids=str
)
def test_other_bt601_full_range_profiles_keep_the_planes(source: Image.Image, kwargs: dict[str, Any]) -> None:
    data = heifkit_bytes(source, **LOSSLESS_444, **kwargs)
    assert np.abs(decoded_rgb(data) - exact_rgb(source)).mean() < 0.01


def test_lossless_rgb_recipe_gives_pillows_rgb(source: Image.Image) -> None:
    """matrix_coefficients=0 stores RGB: Pillow converts, and the file gives back im.convert("RGB") exactly."""
    data = heifkit_bytes(source, **LOSSLESS_444, matrix_coefficients=0)
    assert np.array_equal(decoded_rgb(data), np.asarray(source.convert("RGB")))


@pytest.mark.parametrize("kwargs", [{"full_range_flag": 0}, {"bit_depth": 10}], ids=str)
def test_other_samples_go_through_rgb(source: Image.Image, kwargs: dict[str, Any]) -> None:
    data = heifkit_bytes(source, **LOSSLESS_444, **kwargs)
    assert psnr(decoded_rgb(data), np.asarray(source.convert("RGB"))) > 45


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_grid_of_ycbcr_tiles(source: Image.Image, fmt: str) -> None:
    data = heifkit_bytes(source, fmt, **LOSSLESS_444, tile_size=64)
    heif = heifkit.open_heif(data)
    assert heif.info["tiling"]["num_columns"] == 4
    assert np.abs(decoded_rgb(data) - exact_rgb(source)).mean() < 0.01


def test_thumbnail_of_a_ycbcr_image(source: Image.Image) -> None:
    """libheif scales the YCbCr image like an RGB one: the thumbnail matches that of the RGB image."""
    ours = heifkit.open_heif(heifkit_bytes(source, thumbnails=[64], quality=90)).get_thumbnail(0)
    rgb = heifkit.open_heif(heifkit_bytes(source.convert("RGB"), thumbnails=[64], quality=90)).get_thumbnail(0)
    assert ours.size == rgb.size == (64, 40)
    diff = np.abs(np.asarray(ours).astype(np.float64) - np.asarray(rgb).astype(np.float64))
    assert diff.mean() < 2


def test_from_pillow_converts_to_rgb_as_pillow_heif(source: Image.Image) -> None:
    heif = heifkit.from_pillow(source)
    assert heif.mode == "RGB"
    assert np.array_equal(np.asarray(heif), np.asarray(source.convert("RGB")))


def test_ycbcr_frames_among_others(source: Image.Image) -> None:
    frames = [source, source.convert("RGB"), source.convert("L")]
    out = io.BytesIO()
    frames[0].save(out, format="HEIF", save_all=True, append_images=frames[1:], **LOSSLESS_444)
    heif = heifkit.open_heif(out.getvalue())
    assert [im.mode for im in heif] == ["RGB", "RGB", "L"]
    assert np.abs(np.asarray(heif[0]).astype(np.float64) - exact_rgb(source)).mean() < 0.01
