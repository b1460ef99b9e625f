"""Inputs of the read API: paths, bytes-like objects and file objects, as a user passes them."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import ZPUG
from heifkit import options

ZPUG_MODES = ["RGB", "L", "RGB"]
ZPUG_SIZES = [(64, 64), (64, 64), (96, 64)]
ZPUG_THUMBS = [[32, 16], [32], []]
ZPUG_BYTES = [64 * 64 * 3, 64 * 64, 96 * 64 * 3]

ALWAYS_KEYS = {"primary", "bit_depth", "exif", "metadata", "thumbnails", "depth_images", "aux"}


def _pixels(image: Any) -> np.ndarray:
    return np.asarray(image)


def _comparable(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with depth images replaced by something comparable across libraries.

    ``entity_groups`` is new in pillow_heif 1.7+ and not part of the contract (written against 1.6).
    """
    out = dict(info)
    out.pop("entity_groups", None)
    out["depth_images"] = [(d.size, d.mode, d.info) for d in info.get("depth_images", [])]
    return out


def _exif_orientation(exif: bytes) -> int | None:
    e = Image.Exif()
    e.load(exif)
    return e.get(274)


@pytest.fixture
def restore_options():
    saved = {name: getattr(options, name) for name in ("THUMBNAILS", "DEPTH_IMAGES", "AUX_IMAGES", "DECODE_THREADS")}
    yield
    for name, value in saved.items():
        setattr(options, name, value)


def _zpug_reference() -> list[np.ndarray]:
    return [_pixels(im) for im in heifkit.open_heif(ZPUG)]


def _inputs() -> dict[str, Any]:
    data = ZPUG.read_bytes()
    return {
        "str": lambda: str(ZPUG),
        "Path": lambda: ZPUG,
        "bytes": lambda: data,
        "bytearray": lambda: bytearray(data),
        "memoryview": lambda: memoryview(data),
        "BytesIO": lambda: io.BytesIO(data),
    }


@pytest.mark.parametrize("kind", list(_inputs()))
@pytest.mark.parametrize("opener", [heifkit.open_heif, heifkit.HeifFile, heifkit.read_heif])
def test_input_kinds(kind, opener):
    f = opener(_inputs()[kind]())
    assert len(f) == 3
    assert f.primary_index == 1
    assert f.mimetype == "image/heic"
    assert (f.size, f.mode) == ((64, 64), "L")
    for image, expected in zip(f, _zpug_reference(), strict=True):
        np.testing.assert_array_equal(_pixels(image), expected)


def test_open_file_object_is_not_closed_and_outlives_it():
    with open(ZPUG, "rb") as fh:
        f = heifkit.open_heif(fh)
        assert not fh.closed
    # the caller closed the file; the HeifFile read everything it needs when it was opened
    assert [im.mode for im in f] == ZPUG_MODES
    for image, expected in zip(f, _zpug_reference(), strict=True):
        np.testing.assert_array_equal(_pixels(image), expected)


@pytest.mark.parametrize("wrap", [bytearray, lambda b: memoryview(bytearray(b))], ids=["bytearray", "memoryview"])
def test_mutable_input_is_not_aliased(wrap):
    buf = wrap(ZPUG.read_bytes())
    f = heifkit.open_heif(buf)
    buf[:] = bytes(len(buf))  # the caller reuses its buffer before the pixels are decoded
    for image, expected in zip(f, _zpug_reference(), strict=True):
        np.testing.assert_array_equal(_pixels(image), expected)


def test_unknown_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        heifkit.open_heif(tmp_path / "missing.heic")
