"""Colour on save: NCLX rules, ICC profiles, and the bit-exact lossless recipe.

NCLX: new images get sRGB (1, 13, 6, full range); an opened image's profile is kept; ``save_nclx_profile``
/ ``options.SAVE_NCLX_PROFILE`` False writes none; the four explicit keys override (unset keys keep
libheif's sRGB defaults, as pillow_heif). Lossless: ``quality=-1, chroma=444, matrix_coefficients=0``.
"""

from __future__ import annotations

import io

import numpy as np
import pillow_heif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

import heifkit
from conftest import CORPUS, LOSSLESS, noise, pil_bytes, save_bytes
from heifkit import options

NCLX_KEYS = ("color_primaries", "transfer_characteristics", "matrix_coefficients", "full_range_flag")
SRGB = (1, 13, 6, 1)


pytestmark = pytest.mark.usefixtures("heif_plugin")


def nclx_of(data: bytes, index: int = 0) -> tuple[int, ...] | None:
    """The 4 NCLX values heifkit reads back (and pillow_heif too, for HEIF), or None when there is none."""
    profile = heifkit.open_heif(data)[index].info.get("nclx_profile")
    ours = tuple(profile[k] for k in NCLX_KEYS) if profile else None
    if heifkit.get_file_mimetype(data) == "image/heic":
        theirs = pillow_heif.open_heif(data)[index].info.get("nclx_profile")
        assert ours == (tuple(theirs[k] for k in NCLX_KEYS) if theirs else None)
    return ours


def no_nclx(data: bytes) -> bool:
    return b"nclx" not in data and all("nclx_profile" not in im.info for im in heifkit.open_heif(data))


# ---------------------------------------------------------------------------------------------------
# NCLX


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_new_image_gets_srgb(fmt):
    data = save_bytes(heifkit.from_pillow(noise((16, 16))), format=fmt)
    assert b"nclx" in data
    assert nclx_of(data) == SRGB
    profile = heifkit.open_heif(data).info["nclx_profile"]
    assert profile["color_primary_red_x"] == pytest.approx(0.64, abs=1e-6)
    assert profile["color_primary_white_y"] == pytest.approx(0.329, abs=1e-6)


def test_new_images_get_srgb_through_every_path():
    assert nclx_of(pil_bytes(noise((16, 16)))) == SRGB
    assert nclx_of(save_bytes(heifkit.from_bytes("L", (8, 8), bytes(64)))) == SRGB
    out = io.BytesIO()
    heifkit.encode("RGBA", (4, 4), bytes(64), out)
    assert nclx_of(out.getvalue()) == SRGB


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("libavif_colors_hdr_p3.avif", (12, 16, 6, 1)),  # 200x200 10-bit Display P3 PQ
        ("libheif-fuzz_jpeg32.heif", (6, 6, 6, 1)),
        ("libavif_draw_points_idat.avif", (1, 4, 6, 1)),  # with alpha
        ("libavif_white_1x1.avif", SRGB),
    ],
)
@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_opened_image_nclx_is_written(name, expected, fmt):
    src = heifkit.open_heif(CORPUS / name)
    assert tuple(src.info["nclx_profile"][k] for k in NCLX_KEYS) == expected
    assert nclx_of(save_bytes(src, format=fmt)) == expected


def test_opened_image_nclx_through_pillow():
    # (libheif-fuzz_jpeg32.heif has the brand "jpeg", which the HEIF plugin does not claim: make a file)
    data = save_bytes(
        heifkit.from_pillow(noise((16, 16))), color_primaries=9, transfer_characteristics=16, full_range_flag=0
    )
    assert nclx_of(data) == (9, 16, 6, 0)
    with Image.open(io.BytesIO(data)) as im:
        assert nclx_of(pil_bytes(im)) == (9, 16, 6, 0)
        assert nclx_of(save_bytes(heifkit.from_pillow(im))) == (9, 16, 6, 0)
        # explicit values override the image's own profile, the rest is kept (pillow_heif resets it to sRGB)
        assert nclx_of(pil_bytes(im, matrix_coefficients=1)) == (9, 16, 1, 0)


def test_save_nclx_profile_false_writes_none():
    assert no_nclx(save_bytes(heifkit.from_pillow(noise((16, 16))), save_nclx_profile=False))
    assert no_nclx(save_bytes(heifkit.from_pillow(noise((16, 16))), save_nclx_profile=False, format="AVIF"))
    assert no_nclx(pil_bytes(noise((16, 16)), save_nclx_profile=False))
    src = heifkit.open_heif(CORPUS / "libheif-fuzz_jpeg32.heif")
    assert no_nclx(save_bytes(src, save_nclx_profile=False))


def test_options_save_nclx_profile():
    options.SAVE_NCLX_PROFILE = False
    assert no_nclx(save_bytes(heifkit.from_pillow(noise((16, 16)))))
    assert no_nclx(pil_bytes(noise((16, 16))))
    assert nclx_of(save_bytes(heifkit.from_pillow(noise((16, 16))), save_nclx_profile=True)) == SRGB  # kwarg wins
    options.SAVE_NCLX_PROFILE = True
    heifkit.register_heif_opener(save_nclx_profile=False)
    assert options.SAVE_NCLX_PROFILE is False
    assert no_nclx(pil_bytes(noise((16, 16))))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"matrix_coefficients": 1}, (1, 13, 1, 1)),
        ({"color_primaries": 9}, (9, 13, 6, 1)),
        ({"full_range_flag": 0}, (1, 13, 6, 0)),
        ({"transfer_characteristics": 16, "full_range_flag": False}, (1, 16, 6, 0)),
        (
            {"color_primaries": 9, "transfer_characteristics": 16, "matrix_coefficients": 9, "full_range_flag": 0},
            (9, 16, 9, 0),
        ),
    ],
)
def test_explicit_nclx_values(kwargs, expected):
    assert nclx_of(save_bytes(heifkit.from_pillow(noise((16, 16))), **kwargs)) == expected
    assert nclx_of(pil_bytes(noise((16, 16)), **kwargs)) == expected
    assert nclx_of(save_bytes(heifkit.from_pillow(noise((16, 16))), format="AVIF", **kwargs)) == expected
    # the same values written by pillow_heif
    out = io.BytesIO()
    pillow_heif.from_pillow(noise((16, 16))).save(out, **kwargs)
    assert nclx_of(out.getvalue()) == expected


def test_explicit_nclx_values_override_an_images_profile():
    src = heifkit.open_heif(CORPUS / "libheif-fuzz_jpeg32.heif")  # NCLX (6, 6, 6, full range)
    # only the given values change; the rest stays the image's own (pillow_heif would reset them to sRGB)
    assert nclx_of(save_bytes(src, matrix_coefficients=1)) == (6, 6, 1, 1)
    assert nclx_of(save_bytes(src, color_primaries=9, transfer_characteristics=16, matrix_coefficients=9)) == (
        9,
        16,
        9,
        1,
    )
    # explicit values win over save_nclx_profile=False
    assert nclx_of(save_bytes(src, save_nclx_profile=False, color_primaries=4)) == (4, 6, 6, 1)
    # a new image has no profile of its own: the base is sRGB
    assert nclx_of(save_bytes(heifkit.from_pillow(noise((16, 16))), color_primaries=4)) == (4, 13, 6, 1)


def test_invalid_nclx_value_is_valueerror():
    with pytest.raises(ValueError):
        heifkit.from_pillow(noise((16, 16))).save(io.BytesIO(), color_primaries=300)


def test_editing_info_nclx_profile():
    heif_file = heifkit.from_pillow(noise((16, 16)))
    heif_file.info["nclx_profile"] = {
        "color_primaries": 4,
        "transfer_characteristics": 4,
        "matrix_coefficients": 0,
        "full_range_flag": 1,
    }
    assert nclx_of(save_bytes(heif_file)) == (4, 4, 0, 1)
    src = heifkit.open_heif(CORPUS / "libheif-fuzz_jpeg32.heif")
    src.info["nclx_profile"]["transfer_characteristics"] = 8
    assert nclx_of(save_bytes(src)) == (6, 8, 6, 1)
    del src.info["nclx_profile"]
    assert nclx_of(save_bytes(src, reencode=True)) == SRGB  # an encoded image without a profile: sRGB's
    assert nclx_of(save_bytes(src)) is None  # copied as stored, tagged as the caller left it: no profile


def test_nclx_profile_kwarg():
    profile = {"color_primaries": 4, "transfer_characteristics": 4, "matrix_coefficients": 0, "full_range_flag": 1}
    assert nclx_of(save_bytes(heifkit.from_pillow(noise((16, 16))), nclx_profile=profile)) == (4, 4, 0, 1)
    assert nclx_of(pil_bytes(noise((16, 16)), nclx_profile=profile)) == (4, 4, 0, 1)


def test_nclx_kwargs_affect_primary_only_in_heiffile_save():
    heif_file = heifkit.from_pillow(noise((16, 16)))
    heif_file.add_from_pillow(noise(seed=1))
    data = save_bytes(heif_file, primary_index=1, matrix_coefficients=1)
    assert [nclx_of(data, 0), nclx_of(data, 1)] == [SRGB, (1, 13, 1, 1)]
    ims = [noise((16, 16)), noise(seed=1)]
    data = pil_bytes(ims[0], save_all=True, append_images=ims[1:], matrix_coefficients=1)
    assert [nclx_of(data, 0), nclx_of(data, 1)] == [(1, 13, 1, 1), (1, 13, 1, 1)]


# ---------------------------------------------------------------------------------------------------
# ICC


@pytest.fixture(scope="module")
def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("icc_type", ["prof", "rICC"])
def test_icc_profile_round_trip(srgb_icc, icc_type):
    data = save_bytes(heifkit.from_pillow(noise((16, 16))), icc_profile=srgb_icc, icc_profile_type=icc_type)
    assert b"colr" in data and icc_type.encode() in data
    for f in (heifkit.open_heif(data), pillow_heif.open_heif(data)):
        assert f.info["icc_profile"] == srgb_icc
        assert f.info["icc_profile_type"] == icc_type


def test_icc_profile_default_type_is_prof(srgb_icc):
    data = save_bytes(heifkit.from_pillow(noise((16, 16))), icc_profile=srgb_icc)
    assert heifkit.open_heif(data).info["icc_profile_type"] == "prof"


def test_icc_profile_from_pillow_info(srgb_icc):
    im = noise((16, 16))
    im.info["icc_profile"] = srgb_icc
    for data in (pil_bytes(im), save_bytes(heifkit.from_pillow(im))):
        f = heifkit.open_heif(data)
        assert f.info["icc_profile"] == srgb_icc
        assert f.info["icc_profile_type"] == "prof"
    with Image.open(io.BytesIO(pil_bytes(im))) as back:
        assert back.info["icc_profile"] == srgb_icc
        ImageCms.ImageCmsProfile(io.BytesIO(back.info["icc_profile"]))  # parses


def test_opened_icc_profile_is_kept(srgb_icc):
    first = heifkit.open_heif(
        save_bytes(heifkit.from_pillow(noise((16, 16))), icc_profile=srgb_icc, icc_profile_type="rICC")
    )
    again = heifkit.open_heif(save_bytes(first))
    assert (again.info["icc_profile"], again.info["icc_profile_type"]) == (srgb_icc, "rICC")
    osm = heifkit.open_heif(CORPUS / "libheif_simple_osm_tile_meta.avif")  # 256x256 with an ICC profile
    assert osm.info["icc_profile_type"] == "prof"
    resaved = heifkit.open_heif(save_bytes(osm))
    assert resaved.info["icc_profile"] == osm.info["icc_profile"]


def test_empty_icc_is_not_written():
    f = heifkit.open_heif(save_bytes(heifkit.from_pillow(noise((16, 16))), icc_profile=b""))
    assert "icc_profile" not in f.info


def test_invalid_icc_profile_type(srgb_icc):
    with pytest.raises(ValueError):
        heifkit.from_pillow(noise((16, 16))).save(io.BytesIO(), icc_profile=srgb_icc, icc_profile_type="nclx")


# ---------------------------------------------------------------------------------------------------
# lossless


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_lossless_is_bit_exact(fmt, mode):
    im = noise((37, 23), mode, seed=3)
    for data in (save_bytes(heifkit.from_pillow(im), format=fmt, **LOSSLESS), _pillow_save(im, fmt)):
        f = heifkit.open_heif(data)
        assert (f.mode, f.size) == (mode, (37, 23))
        assert f.info["chroma"] == 444
        assert np.array_equal(np.asarray(f), np.asarray(im))
        if fmt == "HEIF":
            assert np.array_equal(np.asarray(pillow_heif.open_heif(data)), np.asarray(im))


def _pillow_save(im: Image.Image, fmt: str) -> bytes:
    if fmt == "AVIF":  # Pillow's AVIF slot belongs to Pillow here; the HEIF hook covers the plugin path
        return save_bytes(heifkit.from_pillow(im), format=fmt, **LOSSLESS)
    return pil_bytes(im, **LOSSLESS)


def test_lossless_non_primary_image():
    heif_file = heifkit.from_pillow(noise((8, 8)))
    heif_file.add_from_pillow(noise((20, 12), "RGBA", seed=4))
    # HeifFile.save: quality and chroma are encoder-wide, matrix_coefficients is per image (primary only)
    f = heifkit.open_heif(save_bytes(heif_file, **LOSSLESS))
    assert np.array_equal(np.asarray(f[0]), np.asarray(heif_file[0]))
    assert f[1].info["nclx_profile"]["matrix_coefficients"] == 6
    heif_file[1].info["matrix_coefficients"] = 0  # any per-image kwarg can be set in info instead
    f = heifkit.open_heif(save_bytes(heif_file, **LOSSLESS))
    assert np.array_equal(np.asarray(f[1]), np.asarray(heif_file[1]))
    assert f[1].info["nclx_profile"]["matrix_coefficients"] == 0
    # Pillow: kwargs apply to every frame
    ims = [noise((8, 8)), noise((20, 12), "RGBA", seed=4)]
    f = heifkit.open_heif(pil_bytes(ims[0], save_all=True, append_images=ims[1:], **LOSSLESS))
    for back, src in zip(f, ims, strict=True):
        assert np.array_equal(np.asarray(back), np.asarray(src))


def test_lossy_default_is_close():
    w, h = 64, 64
    x = np.linspace(0, 255, w)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h)[:, None].repeat(w, 1)
    im = Image.fromarray(np.dstack([x, y, (x + y) / 2]).astype(np.uint8), "RGB")
    for fmt in ("HEIF", "AVIF"):
        back = np.asarray(heifkit.open_heif(save_bytes(heifkit.from_pillow(im), format=fmt))).astype(float)
        mse = np.mean((back - np.asarray(im).astype(float)) ** 2)
        assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 35


_MODES = {"RGB": 3, "RGBA": 4, "L": 1, "BGRA": 4}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(sorted(_MODES)),
    width=st.integers(1, 24),
    height=st.integers(1, 24),
    fmt=st.sampled_from(["HEIF", "AVIF"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_lossless_round_trip_property(mode, width, height, fmt, seed):
    channels = _MODES[mode]
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    out = io.BytesIO()
    heifkit.encode(mode, (width, height), pixels.tobytes(), out, format=fmt, **LOSSLESS)
    f = heifkit.open_heif(out.getvalue())
    assert f.size == (width, height)
    back = np.asarray(f).reshape(height, width, -1)
    expected = pixels[..., [2, 1, 0, 3]] if mode == "BGRA" else pixels
    assert np.array_equal(back, expected)
