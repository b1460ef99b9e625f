"""Native memory is released: loops of 1,000 iterations of what users do grow the process by at most 2 MiB.

Each loop (open + decode, thumbnails, depth images, auxiliary images, the Pillow plugin, the frames of an
image sequence, a region of a grid, a gain map, ``HeifFile.save`` of an opened file, a re-save that copies
attached items, encoding with metadata, failing opens) runs
:data:`WARMUP` iterations (caches, codec state, allocator pools), then :data:`ITERATIONS` measured ones; the
resident set may grow by at most :data:`LIMIT` between the two (``malloc_trim`` first, so freed heap is
given back). The loops run in child processes with one malloc arena (``MALLOC_ARENA_MAX=1``): x265's and
libheif's threads otherwise get arenas of their own, whose size swings by a few MiB from one block of
encodes to the next (measured: +-2.4 MiB over 1,000 saves with the default arenas, +-32 kB with one). Two
self-checks run in the same harness and must be caught: a Python leak of 4 KiB per iteration, and a native
one (a decoded ``heif_image`` of 29x100 pixels that is never released, 9 kB per iteration).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import subproc
from conftest import CORPUS, background_results

pytestmark = [
    pytest.mark.slow,  # measures leaks over long loops in child processes
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm"),
]

WARMUP = 50
ITERATIONS = 1000
LIMIT = 2 << 20

CHILD = r"""
import ctypes, ctypes.util, gc, io, json, sys
import numpy as np
from PIL import Image
import heifkit
from heifkit._native.libheif import ffi, lib

corpus, warmup, iterations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = sys.argv[4:]
libc = ctypes.CDLL(ctypes.util.find_library("c"))
heifkit.register_heif_opener()

def rss():
    gc.collect()
    libc.malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

def read(name):
    with open(f"{corpus}/{name}", "rb") as f:
        return f.read()

ZPUG = f"{corpus}/pheif_zPug_3.heic"
SMALL = read("pheif_RGB_8__29x100.heif")
DEPTH = read("libavif_colors-animated-8bpc-depth-exif-xmp.avif")
AUX = read("libavif_colors_hdr_p3.avif")
BAD = read("bad/pheif_corrupted.heic")
SOURCE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8))
EXIF = b"Exif\x00\x00II*\x00\x08\x00\x00\x00"
TWO_FRAMES = io.BytesIO()  # two 32x32 images: the plugin's seek, a few milliseconds a loop
heifkit.from_pillow(SOURCE.resize((32, 32))).save(TWO_FRAMES, append_images=[SOURCE.resize((32, 32))], speed=10)
GRID = io.BytesIO()  # 3x2 tiles of 32x32
heifkit.from_pillow(SOURCE.resize((96, 64))).save(GRID, tile_size=32, quality=50, speed=10)
GRID = GRID.getvalue()
GAIN_MAP = read("libavif_color_nogrid_alpha_nogrid_gainmap_grid.avif")
kept = []

def decode():
    for image in heifkit.open_heif(ZPUG):
        np.asarray(image)

def thumbnail():
    image = heifkit.open_heif(ZPUG)[0]
    image.get_thumbnail(0).load()
    image.get_thumbnail(1).to_pillow()

def depth():
    heif_file = heifkit.open_heif(DEPTH)
    _ = heif_file.info["exif"], heif_file.info.get("xmp")
    np.asarray(heif_file.info["depth_images"][0])

def aux():
    heifkit.open_heif(AUX).get_aux_image(4).load()

def plugin():
    with Image.open(io.BytesIO(TWO_FRAMES.getvalue())) as im:
        for frame in range(im.n_frames):
            im.seek(frame)
            im.load()

def plugin_path():
    with Image.open(f"{corpus}/pheif_RGB_8__29x100.heif") as im:
        im.thumbnail((16, 16))

def save():
    heifkit.open_heif(SMALL).save(io.BytesIO(), quality=50, speed=10)

def encode():
    heifkit.from_pillow(SOURCE).save(io.BytesIO(), format="AVIF", quality=50, speed=10, thumbnails=[8], exif=EXIF)

def error():
    try:
        heifkit.open_heif(BAD)
    except heifkit.HeifError:
        return
    raise AssertionError("the bad file opened")

def sequence():
    for frame in heifkit.open_sequence(DEPTH):
        frame.load()

def region():  # a region of a grid: only the tiles under it, on thread contexts
    np.asarray(heifkit.open_heif(GRID).crop((10, 5, 70, 40)))

def gain_map():
    heifkit.open_heif(GAIN_MAP).info["gain_maps"][0].load()

def resave_attached():  # the gain map's coded items are copied into the new file
    heifkit.open_heif(GAIN_MAP).save(io.BytesIO(), format="AVIF", quality=50, speed=10)

def python_leak():  # self-check
    kept.append(bytearray(4096))

def native_leak():  # self-check: a decoded image never released
    handle = heifkit.open_heif(SMALL)[0]._handle
    out = ffi.new("heif_image**")
    lib.heif_decode_image(handle.ptr, out, lib.heif_colorspace_RGB, lib.heif_chroma_interleaved_RGB, ffi.NULL)

result = {}
for name in names:
    loop = globals()[name]
    for _ in range(warmup):
        loop()
    start = rss()
    for _ in range(iterations):
        loop()
    result[name] = rss() - start
print(json.dumps(result))
"""

LOOPS = ["decode", "thumbnail", "depth", "aux", "plugin", "plugin_path", "sequence", "region", "gain_map"]
LOOPS += ["save", "resave_attached", "encode", "error"]
SELF_CHECKS = ["python_leak", "native_leak"]
# two children, one after the other in the background: the encoders in one, the decoders in the other
ENCODERS = ["save", "resave_attached", "encode", "error"]
GROUPS = [[*ENCODERS, *SELF_CHECKS], [name for name in LOOPS if name not in ENCODERS]]


def _run(names: list[str]) -> dict[str, Any]:
    proc = subproc.run_python(
        CHILD,
        [str(CORPUS), str(WARMUP), str(ITERATIONS), *names],
        timeout=600,
        env=subproc.child_env(MALLOC_ARENA_MAX="1"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


BACKGROUND_ORDER = 1


def background_jobs(tmp: Path) -> dict[str, Callable[[], dict[str, Any]]]:
    """The two groups of loops, run in the background while other tests run (conftest.background_results)."""
    return {str(k): functools.partial(_run, group) for k, group in enumerate(GROUPS)}


@pytest.fixture(scope="module")
def growth() -> dict[str, int]:
    return {name: value for result in background_results(__name__).values() for name, value in result.items()}


@pytest.mark.parametrize("loop", LOOPS)
def test_loop_does_not_leak(loop: str, growth: dict[str, int]) -> None:
    assert growth[loop] <= LIMIT, f"{loop}: {ITERATIONS} iterations grew RSS by {growth[loop] / 2**20:.2f} MiB"


@pytest.mark.parametrize("leak", SELF_CHECKS)
def test_a_real_leak_is_detected(leak: str, growth: dict[str, int]) -> None:
    assert growth[leak] > LIMIT, f"{leak} grew RSS by only {growth[leak] / 2**20:.2f} MiB: the harness is blind"


def test_every_loop_runs() -> None:
    assert set(LOOPS) | set(SELF_CHECKS) == {name for group in GROUPS for name in group}
