"""Native memory is released: repeated open/decode/encode cycles do not grow the process.

Each check runs two warm-up blocks, then three measured blocks; the block that grows the resident set
least may not grow it by more than 2 MiB (malloc_trim first, so freed heap is returned). A leak grows
every block; the allocator's arenas (x265's thread pools among them) make single blocks swing by a few
MiB either way, which the smallest of three filters out. A self-check makes sure a real leak of the same
order would be caught.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import io
import sys
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import CORPUS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")

_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))
_PAGE = 4096


def _rss() -> int:
    gc.collect()
    _LIBC.malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def _growth(fn: Callable[[], object], rounds: int) -> int:
    for _ in range(2 * rounds):  # warm-up: caches, codec state, allocator pools
        fn()
    growths = []
    for _ in range(3):
        start = _rss()
        for _ in range(rounds):
            fn()
        growths.append(_rss() - start)
    return min(growths)


LIMIT = 2 << 20


def test_open_and_decode_do_not_leak():
    def cycle() -> None:
        f = heifkit.open_heif(CORPUS / "pheif_zPug_3.heic")
        for image in f:
            np.asarray(image)
        f[0].get_thumbnail(0).load()

    assert _growth(cycle, 60) < LIMIT


def test_metadata_depth_and_aux_do_not_leak():
    data = (CORPUS / "pheif_pug.heic").read_bytes()

    def cycle() -> None:
        f = heifkit.open_heif(data)
        _ = f.info["exif"], f.info.get("xmp"), f.info.get("icc_profile")
        f.info["depth_images"][0].load()

    assert _growth(cycle, 15) < LIMIT


def test_plugin_open_load_does_not_leak():
    heifkit.register_heif_opener()

    def cycle() -> None:
        with Image.open(CORPUS / "pheif_zPug_3.heic") as im:
            for i in range(im.n_frames):
                im.seek(i)
                im.load()

    assert _growth(cycle, 40) < LIMIT


def test_encode_does_not_leak():
    src = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))

    def cycle() -> None:
        out = io.BytesIO()
        heifkit.from_pillow(src).save(out, quality=50, thumbnails=[16], exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00")

    assert _growth(cycle, 20) < LIMIT


def test_regions_and_gain_maps_do_not_leak():
    data = (CORPUS / "pheif_pug.heic").read_bytes()

    def cycle() -> None:
        f = heifkit.open_heif(data)
        np.asarray(f.crop((500, 500, 1100, 900)))
        f.info["gain_maps"][0].load()

    assert _growth(cycle, 10) < LIMIT


def test_resaving_attached_items_does_not_leak():
    data = (CORPUS / "libavif_seine_sdr_gainmap_srgb.avif").read_bytes()

    def cycle() -> None:
        out = io.BytesIO()
        heifkit.open_heif(data).save(out, format="AVIF", quality=50, enc_params={"speed": "9"})

    assert _growth(cycle, 10) < LIMIT


def test_errors_do_not_leak():
    bad = (CORPUS / "bad" / "pheif_corrupted.heic").read_bytes()

    def cycle() -> None:
        with pytest.raises(heifkit.HeifError):
            heifkit.open_heif(bad)

    assert _growth(cycle, 200) < LIMIT


def test_a_real_leak_is_detected():
    kept = []

    def cycle() -> None:
        kept.append(bytearray(64 * 1024))  # 64 KiB per call, never freed

    assert _growth(cycle, 60) >= LIMIT
