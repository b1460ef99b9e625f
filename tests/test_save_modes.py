"""Image modes on the write path.

Pillow images, through Pillow's ``save`` and through ``from_pillow``, are converted as documented in
``encode.PILLOW_CONVERSIONS``: ``1`` -> L, ``P`` -> RGB/RGBA (transparency), ``PA`` -> RGBA,
``RGBX``/``CMYK``/``YCbCr`` -> RGB, ``I``/``I;16*`` -> 16-bit grey written as 10-bit, ``L``/``LA``/``La``/
``RGB``/``RGBA``/``RGBa`` kept; other modes raise a ValueError naming the mode. Raw bytes
(``encode``/``from_bytes``) take every mode of ``encode.MODES``. Everything is encoded losslessly
(``quality=-1, chroma=444, matrix_coefficients=0``), so read-back pixels equal the documented conversion.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import LOSSLESS
from heifkit._info.modes import MODES, PILLOW_CONVERSIONS

W, H = 16, 8


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    heifkit.register_heif_opener()


def _rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


def _rgba() -> Image.Image:
    a = _rng().integers(0, 256, (H, W, 4), dtype=np.uint8)
    a[0, 0, 3] = 0  # fully transparent and fully opaque pixels too
    a[0, 1, 3] = 255
    return Image.fromarray(a, "RGBA")


def _grey16() -> np.ndarray:
    a = _rng().integers(0, 65536, (H, W)).astype(np.uint16)
    a[0, :4] = [0, 63, 64, 65535]  # around the 16 -> 10 bit truncation
    return a


def _make(mode: str) -> Image.Image:
    """A source image in ``mode`` (``P+t`` is ``P`` with a transparent palette index)."""
    rgba = _rgba()
    if mode == "1":
        return rgba.convert("L").convert("1")
    if mode in ("L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "HSV", "LAB"):
        return rgba.convert(mode) if mode != "LAB" else rgba.convert("RGB").convert("LAB")
    if mode == "La":
        return rgba.convert("LA").convert("La")
    if mode == "RGBa":
        return rgba.convert("RGBa")
    if mode == "P":
        return rgba.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    if mode == "P+t":
        img = rgba.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
        img.info["transparency"] = int(np.asarray(img)[0, 0])
        return img
    if mode == "PA":
        p = rgba.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
        pa = p.convert("PA")
        pa.putalpha(rgba.getchannel("A"))
        return pa
    if mode == "I":
        a = _grey16().astype(np.int32)
        a[1, :3] = [-5, 70000, 2**31 - 1]  # out of the 16-bit range: clipped
        return Image.fromarray(a, "I")
    if mode == "I;16":
        return Image.frombytes("I;16", (W, H), _grey16().astype("<u2").tobytes())
    if mode == "I;16L":
        return Image.frombytes("I;16L", (W, H), _grey16().astype("<u2").tobytes())
    if mode == "I;16B":
        return Image.frombytes("I;16B", (W, H), _grey16().astype(">u2").tobytes())
    if mode == "F":
        return Image.fromarray(_rng().random((H, W)).astype(np.float32), "F")
    raise AssertionError(mode)


# source mode -> (mode read back by heifkit, Pillow mode read back by the plugin, expected pixels)
def _expected(mode: str, img: Image.Image) -> tuple[str, np.ndarray]:
    if mode == "1":
        return "L", np.asarray(img.convert("L"))
    if mode == "L":
        return "L", np.asarray(img)
    if mode == "LA":  # grey + alpha planes, read back as RGBA
        return "RGBA", np.asarray(img.convert("RGBA"))
    if mode == "La":
        la = np.asarray(img)
        return "RGBa", np.dstack([la[..., 0], la[..., 0], la[..., 0], la[..., 1]])
    if mode == "P":
        return "RGB", np.asarray(img.convert("RGB"))
    if mode in ("P+t", "PA"):
        return "RGBA", np.asarray(img.convert("RGBA"))
    if mode in ("RGB", "RGBA", "RGBa"):
        return mode, np.asarray(img)
    if mode in ("RGBX", "CMYK", "YCbCr"):
        return "RGB", np.asarray(img.convert("RGB"))
    if mode == "I":
        return "I;16", np.clip(np.asarray(img).astype(np.int64), 0, 65535) >> 6
    if mode.startswith("I;16"):
        return "I;16", _grey16().astype(np.int64) >> 6
    raise AssertionError(mode)


PILLOW_MODES = ["1", "L", "LA", "La", "P", "P+t", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"]
PILLOW_MODES += ["I", "I;16", "I;16L", "I;16B"]
REFUSED = ["F", "HSV", "LAB"]
PATHS = ["pillow_save", "from_pillow"]


def _save(img: Image.Image, path: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    if path == "pillow_save":
        img.save(buf, format="HEIF", **LOSSLESS, **kwargs)
    else:
        heifkit.from_pillow(img).save(buf, **LOSSLESS, **kwargs)
    return buf.getvalue()


def test_source_modes_are_what_they_claim() -> None:
    for mode in PILLOW_MODES + REFUSED:
        assert _make(mode).mode == mode.replace("+t", "")
    assert _make("P").palette.mode == "RGB" and "transparency" not in _make("P").info
    assert set(PILLOW_CONVERSIONS) >= {m.replace("+t", "") for m in PILLOW_MODES}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mode", PILLOW_MODES)
def test_pillow_modes(mode: str, path: str) -> None:
    img = _make(mode)
    expected_mode, expected = _expected(mode, img)
    data = _save(img, path)
    high = expected_mode == "I;16"

    heif = heifkit.open_heif(data, convert_hdr_to_8bit=False)
    assert heif.mode == expected_mode
    assert heif.size == (W, H)
    assert heif.info["bit_depth"] == (10 if high else 8)
    got = np.asarray(heif).astype(np.int64)
    assert np.array_equal(got >> 6 if high else got, expected)

    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == expected_mode
        got = np.asarray(im).astype(np.int64)
        assert np.array_equal(got >> 6 if high else got, expected)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mode", ["I", "I;16", "I;16B"])
def test_sixteen_bit_grey_at_12_bit(mode: str, path: str) -> None:
    img = _make(mode)
    data = _save(img, path, save_to_12bit=True)
    heif = heifkit.open_heif(data, convert_hdr_to_8bit=False, hdr_to_16bit=False)
    assert heif.mode == "I;12"
    assert heif.info["bit_depth"] == 12
    src = np.clip(np.asarray(img.convert("I")).astype(np.int64), 0, 65535)
    assert np.array_equal(np.asarray(heif).astype(np.int64), src >> 4)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mode", REFUSED)
def test_unsupported_pillow_modes(mode: str, path: str) -> None:
    img = _make(mode)
    with pytest.raises(ValueError) as excinfo:
        _save(img, path)
    assert repr(mode) in str(excinfo.value)


def test_from_pillow_refuses_at_add_time() -> None:
    heif = heifkit.HeifFile()
    with pytest.raises(ValueError, match="'F'"):
        heif.add_from_pillow(_make("F"))
    assert len(heif) == 0


def test_pillow_save_all_mixed_modes() -> None:
    """Frames of different modes in one Pillow save, each converted on its own."""
    frames = [_make("P"), _make("LA"), _make("I;16"), _make("CMYK")]
    buf = io.BytesIO()
    frames[0].save(buf, format="HEIF", save_all=True, append_images=frames[1:], **LOSSLESS)
    heif = heifkit.open_heif(buf.getvalue(), convert_hdr_to_8bit=False)
    assert [im.mode for im in heif] == ["RGB", "RGBA", "I;16", "RGB"]
    for image, mode, img in zip(heif, ["P", "LA", "I;16", "CMYK"], frames, strict=True):
        _, expected = _expected(mode, img)
        got = np.asarray(image).astype(np.int64)
        assert np.array_equal(got >> 6 if mode == "I;16" else got, expected)


# --- raw bytes: every mode of encode.MODES ---------------------------------------------------------------


def _family(mode: str) -> tuple[str, int]:
    """Mode read back with ``convert_hdr_to_8bit=False`` (16-bit samples), and the file's bit depth."""
    info = MODES[mode]
    base = mode.split(";")[0]
    bits = 10 if info.bits == 16 else info.bits
    if not info.color and info.channels == 1:
        return ("L" if info.bits == 8 else "I;16"), bits
    if base in ("LA", "RGBA", "BGRA"):
        family = "RGBA"
    elif base in ("La", "RGBa", "BGRa"):
        family = "RGBa"
    else:
        family = "RGB"
    return (family if info.bits == 8 else family + ";16"), bits


def _raw(mode: str) -> np.ndarray:
    info = MODES[mode]
    dtype = np.uint16 if info.bits > 8 else np.uint8
    return _rng().integers(0, 1 << info.bits, (H, W, info.channels)).astype(dtype)


def _expected_raw(mode: str, a: np.ndarray) -> np.ndarray:
    """Samples at the file's bit depth, in RGB(A) order (grey + alpha becomes grey x3 + alpha)."""
    info = MODES[mode]
    out = a.astype(np.int64)
    if info.bits == 16:
        out = out >> 6
    if info.bgr:
        out = out[..., [2, 1, 0, 3][: info.channels]]
    if not info.color:
        out = out[..., 0] if info.channels == 1 else np.dstack([out[..., 0]] * 3 + [out[..., 1]])
    return out


def _with_stride(a: np.ndarray, pad: int) -> tuple[bytes, int]:
    row = a[0].nbytes
    stride = row + pad
    buf = bytearray(b"\xab" * (stride * H))
    for y in range(H):
        buf[y * stride : y * stride + row] = a[y].tobytes()
    return bytes(buf), stride


@pytest.mark.parametrize("padded", [False, True], ids=["tight", "stride"])
@pytest.mark.parametrize("api", ["encode", "from_bytes"])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_raw_modes(mode: str, api: str, padded: bool) -> None:
    a = _raw(mode)
    if padded:
        data, stride = _with_stride(a, 10)
        kwargs: dict[str, Any] = {"stride": stride}
    else:
        data, kwargs = a.tobytes(), {}
    buf = io.BytesIO()
    if api == "encode":
        heifkit.encode(mode, (W, H), data, buf, **kwargs, **LOSSLESS)
    else:
        heif = heifkit.from_bytes(mode, (W, H), data, **kwargs)
        assert heif.mode == mode
        heif.save(buf, **LOSSLESS)
    family, bits = _family(mode)
    out = heifkit.open_heif(buf.getvalue(), convert_hdr_to_8bit=False)
    assert out.mode == family
    assert out.size == (W, H)
    assert out.info["bit_depth"] == bits
    # exact values at the file's bit depth
    exact = heifkit.open_heif(buf.getvalue(), convert_hdr_to_8bit=False, hdr_to_16bit=False)
    got = np.asarray(exact).astype(np.int64)
    assert np.array_equal(got.reshape(_expected_raw(mode, a).shape), _expected_raw(mode, a))


@pytest.mark.parametrize("mode", ["RGB;16", "LA;16", "I;16"])
def test_raw_sixteen_bit_to_12(mode: str) -> None:
    a = _raw(mode)
    buf = io.BytesIO()
    heifkit.encode(mode, (W, H), a.tobytes(), buf, save_to_12bit=True, **LOSSLESS)
    out = heifkit.open_heif(buf.getvalue(), convert_hdr_to_8bit=False, hdr_to_16bit=False)
    assert out.info["bit_depth"] == 12
    expected = a.astype(np.int64) >> 4
    if mode == "LA;16":
        expected = np.dstack([expected[..., 0]] * 3 + [expected[..., 1]])
    assert np.array_equal(np.asarray(out).astype(np.int64).reshape(expected.shape), expected)


def test_raw_unknown_mode() -> None:
    with pytest.raises(ValueError, match="'RGBX'"):
        heifkit.from_bytes("RGBX", (W, H), bytes(W * H * 4))
    with pytest.raises(ValueError, match="'YCbCr'"):
        heifkit.encode("YCbCr", (W, H), bytes(W * H * 3), io.BytesIO())
