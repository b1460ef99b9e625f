"""Inputs of the read API: paths, bytes-like objects and file objects, as a user passes them."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

import heifkit
from conftest import ZPUG, ZPUG_MODES


def _zpug_reference() -> list[np.ndarray]:
    return [np.asarray(im) for im in heifkit.open_heif(ZPUG)]


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
        np.testing.assert_array_equal(np.asarray(image), expected)


def test_open_file_object_is_not_closed_and_outlives_it():
    with open(ZPUG, "rb") as fh:
        f = heifkit.open_heif(fh)
        assert not fh.closed
    # the caller closed the file; the HeifFile read everything it needs when it was opened
    assert [im.mode for im in f] == ZPUG_MODES
    for image, expected in zip(f, _zpug_reference(), strict=True):
        np.testing.assert_array_equal(np.asarray(image), expected)


@pytest.mark.parametrize("wrap", [bytearray, lambda b: memoryview(bytearray(b))], ids=["bytearray", "memoryview"])
def test_mutable_input_is_not_aliased(wrap):
    buf = wrap(ZPUG.read_bytes())
    f = heifkit.open_heif(buf)
    buf[:] = bytes(len(buf))  # the caller reuses its buffer before the pixels are decoded
    for image, expected in zip(f, _zpug_reference(), strict=True):
        np.testing.assert_array_equal(np.asarray(image), expected)


def test_unknown_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        heifkit.open_heif(tmp_path / "missing.heic")
