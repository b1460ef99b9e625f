"""Every save parameter: a bad value is a clear error raised before anything is encoded.

Following Python's conventions, a value of the wrong type is a ``TypeError`` and a value of the right type
that is out of range or unknown a ``ValueError``; the message names the parameter. Nothing is encoded
before the check: the tests replace heifkit's per-image encoding with a function that fails the test.
Per-image parameters are checked the same way when they come from ``info`` instead of keyword arguments.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import AMVE, CLLI, MDCV
from heifkit._write import params as _save_params
from heifkit._write import still as _write

NCLX = {"color_primaries": 1, "transfer_characteristics": 13, "matrix_coefficients": 6, "full_range_flag": 1}
IPTC = {"type": "iptc", "content_type": "", "data": b"\x1c\x02\x05\x00\x05title"}


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    heifkit.register_heif_opener()


def _pixels(size: tuple[int, int] = (64, 48)) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def _heif() -> heifkit.HeifFile:
    return heifkit.from_bytes("RGB", (64, 48), _pixels().tobytes())


@pytest.fixture
def no_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any image is encoded (or its pixels validated) before the error."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an image was encoded before the bad parameter was reported")

    monkeypatch.setattr(_write, "_encode_one", fail)
    monkeypatch.setattr(_write, "frame_pixels", fail)


# (parameter, bad value, exception, text the message must contain)
BAD: list[tuple[str, Any, type[Exception], str]] = [
    ("format", 1, TypeError, "format"),
    ("format", "JPEG", ValueError, "format"),
    ("format", "", ValueError, "format"),
    ("quality", 101, ValueError, "quality"),
    ("quality", -2, ValueError, "quality"),
    ("quality", "90", TypeError, "quality"),
    ("quality", 1.5, TypeError, "quality"),
    ("quality", True, TypeError, "quality"),
    ("chroma", 411, ValueError, "chroma"),
    ("chroma", "abc", ValueError, "chroma"),
    ("chroma", 444.0, TypeError, "chroma"),
    ("chroma", [444], TypeError, "chroma"),
    ("subsampling", "4:1:1", ValueError, "subsampling"),
    ("subsampling", "4:4:0", ValueError, "subsampling"),
    ("subsampling", 3, ValueError, "subsampling"),
    ("subsampling", "", ValueError, "subsampling"),
    ("subsampling", 1.0, TypeError, "subsampling"),
    ("subsampling", b"4:4:4", TypeError, "subsampling"),
    ("speed", 11, ValueError, "speed"),
    ("speed", "fast", TypeError, "speed"),
    ("enc_params", [("x265:ctu", 32)], TypeError, "enc_params"),
    ("enc_params", "x265:ctu=32", TypeError, "enc_params"),
    ("enc_params", {1: 2}, TypeError, "enc_params"),
    ("enc_params", {"x265:ctu": [32]}, TypeError, "enc_params"),
    ("tile_size", -1, ValueError, "tile_size"),
    ("tile_size", "512", TypeError, "tile_size"),
    ("tile_size", 512.0, TypeError, "tile_size"),
    ("tile_size", True, TypeError, "tile_size"),
    ("save_all", "yes", TypeError, "save_all"),
    ("save_all", 2, ValueError, "save_all"),
    ("reencode", "yes", TypeError, "reencode"),
    ("reencode", 2, ValueError, "reencode"),
    ("save_to_12bit", "yes", TypeError, "save_to_12bit"),
    ("append_images", 5, TypeError, "append_images"),
    ("append_images", "abc", TypeError, "append_images"),
    ("append_images", [5], TypeError, "append_images"),
    ("append_images", Image.new("RGB", (8, 8)), TypeError, "append_images"),
    ("append_images", [Image.new("F", (8, 8))], ValueError, "'F'"),
    ("primary_index", "0", TypeError, "primary_index"),
    ("primary_index", 1.0, TypeError, "primary_index"),
    ("primary_index", -2, ValueError, "primary_index"),
    ("encoder", 5, TypeError, "encoder"),
    ("encoder", "no-such-encoder", ValueError, "no-such-encoder"),
    ("exif", "text", TypeError, "exif"),
    ("exif", 5, TypeError, "exif"),
    ("xmp", 5, TypeError, "xmp"),
    ("xmp", ["<x/>"], TypeError, "xmp"),
    ("icc_profile", "abc", TypeError, "icc_profile"),
    ("icc_profile", 5, TypeError, "icc_profile"),
    ("icc_profile_type", "nclx", ValueError, "icc_profile_type"),
    ("icc_profile_type", b"prof", TypeError, "icc_profile_type"),
    ("nclx_profile", [1, 13, 6, 1], TypeError, "nclx_profile"),
    ("nclx_profile", {"color_primaries": 1}, ValueError, "transfer_characteristics"),
    ("nclx_profile", {**NCLX, "color_primaries": "1"}, TypeError, "color_primaries"),
    ("nclx_profile", {**NCLX, "color_primaries": 300}, ValueError, "color_primaries"),
    ("nclx_profile", {**NCLX, "matrix_coefficients": 3}, ValueError, "matrix_coefficients"),
    ("color_primaries", 300, ValueError, "color_primaries"),
    ("color_primaries", 0, ValueError, "color_primaries"),
    ("color_primaries", 3, ValueError, "color_primaries"),
    ("color_primaries", 13, ValueError, "color_primaries"),
    ("color_primaries", 22, ValueError, "color_primaries 22"),  # EBU 3213: H.273, but x265 refuses it
    ("color_primaries", "1", TypeError, "color_primaries"),
    ("transfer_characteristics", 3, ValueError, "transfer_characteristics"),
    ("transfer_characteristics", 19, ValueError, "transfer_characteristics"),
    ("matrix_coefficients", 3, ValueError, "matrix_coefficients"),
    ("matrix_coefficients", 15, ValueError, "matrix_coefficients"),
    ("matrix_coefficients", 11, ValueError, "matrix_coefficients 11"),  # libheif: no RGB -> Y'D'zD'x
    ("matrix_coefficients", 14, ValueError, "matrix_coefficients 14"),  # libheif: no RGB -> ICtCp
    ("matrix_coefficients", 1.0, TypeError, "matrix_coefficients"),
    ("full_range_flag", 2, ValueError, "full_range_flag"),
    ("full_range_flag", "1", TypeError, "full_range_flag"),
    ("save_nclx_profile", "no", TypeError, "save_nclx_profile"),
    ("thumbnails", 64, TypeError, "thumbnails"),
    ("thumbnails", ["64"], TypeError, "thumbnail"),
    ("thumbnails", [64.0], TypeError, "thumbnail"),
    ("thumbnails", [True], TypeError, "thumbnail"),
    ("metadata", IPTC, TypeError, "metadata"),
    ("metadata", [5], TypeError, "metadata"),
    ("metadata", [{}], ValueError, "metadata"),
    ("metadata", [{"type": "iptc"}], ValueError, "data"),
    ("metadata", [{"data": b"x"}], ValueError, "type"),
    ("metadata", [{"type": "toolong", "data": b"x"}], ValueError, "item_type"),
    ("metadata", [{"type": "", "data": b"x"}], ValueError, "item_type"),
    ("metadata", [{"type": 5, "data": b"x"}], TypeError, "type"),
    ("metadata", [{"type": "iptc", "data": "text"}], TypeError, "data"),
    ("metadata", [{"type": "iptc", "data": b"x", "content_type": 5}], TypeError, "content_type"),
    ("pixel_aspect_ratio", 5, TypeError, "pixel_aspect_ratio"),
    ("pixel_aspect_ratio", (1, 2, 3), ValueError, "pixel_aspect_ratio"),
    ("pixel_aspect_ratio", (0, 1), ValueError, "pixel_aspect_ratio"),
    ("pixel_aspect_ratio", (2**32, 1), ValueError, "pixel_aspect_ratio"),
    ("pixel_aspect_ratio", ("1", "2"), TypeError, "pixel_aspect_ratio"),
    ("pixel_aspect_ratio", (1.5, 1), TypeError, "pixel_aspect_ratio"),
    ("content_light_level", 5, TypeError, "content_light_level"),
    ("content_light_level", {"max_content_light_level": 1}, ValueError, "max_pic_average_light_level"),
    ("content_light_level", {**CLLI, "max_content_light_level": 70000}, ValueError, "max_content_light_level"),
    ("content_light_level", {**CLLI, "max_content_light_level": "1"}, TypeError, "max_content_light_level"),
    ("mastering_display_colour_volume", {"white_point_x": 1}, ValueError, "display_primaries_x"),
    ("mastering_display_colour_volume", {**MDCV, "display_primaries_x": (1, 2)}, ValueError, "display_primaries_x"),
    ("mastering_display_colour_volume", {**MDCV, "display_primaries_x": 5}, TypeError, "display_primaries_x"),
    ("mastering_display_colour_volume", {**MDCV, "white_point_x": -1}, ValueError, "white_point_x"),
    ("mastering_display_colour_volume", {**MDCV, "max_display_mastering_luminance": 2**32}, ValueError, "luminance"),
    ("ambient_viewing_environment", "x", TypeError, "ambient_viewing_environment"),
    ("ambient_viewing_environment", {"ambient_illumination": 1}, ValueError, "ambient_light_x"),
    ("ambient_viewing_environment", {**AMVE, "ambient_light_x": 70000}, ValueError, "ambient_light_x"),
    ("nominal_diffuse_white_luminance", "100", TypeError, "nominal_diffuse_white_luminance"),
    ("nominal_diffuse_white_luminance", -1, ValueError, "nominal_diffuse_white_luminance"),
    ("nominal_diffuse_white_luminance", 2**32, ValueError, "nominal_diffuse_white_luminance"),
    ("bit_depth", 9, ValueError, "bit_depth"),
    ("bit_depth", 0, ValueError, "bit_depth"),
    ("bit_depth", "10", TypeError, "bit_depth"),
    ("bit_depth", 10.0, TypeError, "bit_depth"),
]

# Pillow's save takes these with its own meanings (format is Pillow's, save_all its mode, append_images
# Pillow images only): they are covered through HeifFile.save only.
PILLOW_OWN = {"format", "save_all", "append_images"}


def _id(case: tuple[str, Any, type[Exception], str]) -> str:
    return f"{case[0]}={case[1]!r:.40}"


@pytest.mark.usefixtures("no_encoding")
@pytest.mark.parametrize("case", BAD, ids=[_id(c) for c in BAD])
def test_heif_file_save_refuses_bad_values(case: tuple[str, Any, type[Exception], str]) -> None:
    key, value, error, text = case
    with pytest.raises(error) as excinfo:
        _heif().save(io.BytesIO(), **{key: value})
    assert text in str(excinfo.value)


@pytest.mark.usefixtures("no_encoding")
@pytest.mark.parametrize("case", [c for c in BAD if c[0] not in PILLOW_OWN], ids=_id)
def test_pillow_save_refuses_bad_values(case: tuple[str, Any, type[Exception], str]) -> None:
    key, value, error, text = case
    with pytest.raises(error) as excinfo:
        Image.fromarray(_pixels()).save(io.BytesIO(), format="HEIF", **{key: value})
    assert text in str(excinfo.value)


PER_IMAGE = sorted({c[0] for c in BAD} & _save_params.IMAGE_KEYS)


@pytest.mark.usefixtures("no_encoding")
@pytest.mark.parametrize("case", [c for c in BAD if c[0] in PER_IMAGE], ids=_id)
def test_bad_values_in_info_are_refused_too(case: tuple[str, Any, type[Exception], str]) -> None:
    """info keys act as parameters: a bad one in any image's info is refused the same way."""
    key, value, error, text = case
    heif = _heif()
    heif.add_frombytes("RGB", (64, 48), _pixels().tobytes()).info[key] = value
    with pytest.raises(error) as excinfo:
        heif.save(io.BytesIO())
    assert text in str(excinfo.value)


def test_every_parameter_has_bad_values_in_the_table() -> None:
    assert (_save_params.FILE_KEYS | _save_params.IMAGE_KEYS) - {c[0] for c in BAD} == set()


def test_avif_rgb_matrix_needs_444() -> None:
    """aom stores matrix_coefficients=0 only at 4:4:4 ("must be 0 with AOM_CICP_MC_IDENTITY" otherwise)."""
    with pytest.raises(ValueError, match="chroma=444"):
        _heif().save(io.BytesIO(), format="AVIF", matrix_coefficients=0)
    heif = heifkit.open_heif(_save(_heif(), format="AVIF", matrix_coefficients=0, chroma=444, quality=-1))
    assert heif.info["nclx_profile"]["matrix_coefficients"] == 0


def test_ebu_primaries_are_written_as_avif() -> None:
    """color_primaries 22 is refused for x265 only."""
    heif = heifkit.open_heif(_save(_heif(), format="AVIF", color_primaries=22))
    assert heif.info["nclx_profile"]["color_primaries"] == 22


def _save(heif: heifkit.HeifFile, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    heif.save(out, **kwargs)
    return out.getvalue()


# values that are accepted (and what they mean)


@pytest.mark.parametrize(
    ("subsampling", "chroma"),
    [("4:4:4", 444), (0, 444), (1, 422), (2, 420), ("keep", 420), (-1, 420), (np.int64(0), 444)],
)
def test_subsampling_takes_pillow_jpeg_values(subsampling: Any, chroma: int) -> None:
    assert heifkit.open_heif(_save(_heif(), subsampling=subsampling)).info["chroma"] == chroma


def test_subsampling_keep_falls_back_to_chroma() -> None:
    assert heifkit.open_heif(_save(_heif(), subsampling="keep", chroma=422)).info["chroma"] == 422


def test_numpy_integers_are_ints() -> None:
    data = _save(_heif(), quality=np.int32(-1), chroma=np.int64(444), matrix_coefficients=np.uint8(0),
                 thumbnails=[np.int16(32)], pixel_aspect_ratio=(np.int64(4), 3), tile_size=np.int64(0))  # fmt: skip
    heif = heifkit.open_heif(data)
    assert np.array_equal(np.asarray(heif), _pixels())
    assert heif.info["thumbnails"] == [32]
    assert heif.info["pixel_aspect_ratio"] == (4, 3)


def test_accepted_forms() -> None:
    """The other forms each parameter documents: str XMP, Exif objects, tuples, None metadata entries..."""
    exif = Image.Exif()
    exif[0x010F] = "maker"
    nclx = {**NCLX, "color_primary_red_x": 0.64}  # as read: extra keys are ignored
    data = _save(
        _heif(),
        exif=exif,
        xmp="<x:xmpmeta xmlns:x='adobe:ns:meta/'/>",
        metadata=[None, IPTC],
        thumbnails=(32,),
        pixel_aspect_ratio=[4, 3],
        nclx_profile=nclx,
        full_range_flag=True,
        save_nclx_profile=1,
        content_light_level={},  # empty: none written
        enc_params={"x265:ctu": 32, "x265:rect": False},
        save_all=1,
    )
    heif = heifkit.open_heif(data)
    assert heif.info["exif"] and heif.info["xmp"].startswith(b"<x:xmpmeta")
    assert heif.info["metadata"] == [IPTC]
    assert heif.info["thumbnails"] == [32]
    assert "content_light_level" not in heif.info


def test_thumbnail_boxes_out_of_range_are_dropped_as_in_pillow_heif() -> None:
    assert heifkit.open_heif(_save(_heif(), thumbnails=[-1, 0, 3, 32, 64, 1000])).info["thumbnails"] == [32]


@pytest.mark.parametrize(("primary_index", "expected"), [(-1, 2), (-2, 1), (-3, 0), (3, 2), (99, 2)])
def test_primary_index_negative_counts_from_the_end(primary_index: int, expected: int) -> None:
    heif = heifkit.HeifFile()
    for width in (16, 24, 32):
        heif.add_frombytes("L", (width, 16), bytes(width * 16))
    f = heifkit.open_heif(_save(heif, primary_index=primary_index))
    assert f.primary_index == expected
    assert [im.size[0] for im in f] == [16, 24, 32]


def test_primary_index_before_the_first_image() -> None:
    heif = heifkit.HeifFile()
    for width in (16, 24, 32):
        heif.add_frombytes("L", (width, 16), bytes(width * 16))
    with pytest.raises(ValueError, match="primary_index -4"):
        heif.save(io.BytesIO(), primary_index=-4)


def test_bad_value_in_a_pillow_frame_is_refused_for_every_frame() -> None:
    """Pillow's save applies per-image parameters to every frame: checked once, before any frame is copied."""
    frames = [Image.fromarray(_pixels()) for _ in range(3)]
    with pytest.raises(TypeError, match="exif"):
        frames[0].save(io.BytesIO(), format="HEIF", save_all=True, append_images=frames[1:], exif="text")
