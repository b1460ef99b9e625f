"""Mutated files never crash, hang or exhaust memory: they decode or raise a HeifError.

Deterministic byte mutations (flips, overwrites, truncations, duplicated ranges) of small HEIC/AVIF files,
run in a child process with capped memory so that a crash fails the test instead of killing pytest.
"""

from __future__ import annotations

import json

import pytest

from conftest import CORPUS
from subproc import run_python

pytestmark = pytest.mark.slow  # mutated files (fuzzing), each in a child process

SEEDS = {
    "pheif_zPug_3.heic": 400,  # 3 images, thumbnails, mono
    "libheif_simple_osm_tile_alpha.avif": 400,  # AV1 with alpha
    "pheif_L_exif_xmp_iptc.heic": 300,  # metadata blocks
    "libavif_color_grid_alpha_nogrid.avif": 300,  # grid
}

CHILD = r"""
import json, random, sys
import numpy as np
import heifkit

path, count = sys.argv[1], int(sys.argv[2])
original = open(path, "rb").read()
outcomes = {"decoded": 0, "heif_error": 0}
unexpected = []

def mutate(rng, data):
    data = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:  # flip bits
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # overwrite with extreme values (sizes, counts, offsets)
        i = rng.randrange(max(1, len(data) - 4))
        data[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x01"])
    elif kind == 2:  # truncate
        data = data[: rng.randrange(8, len(data))]
    else:  # duplicate a range somewhere else
        a = rng.randrange(len(data)); b = min(len(data), a + rng.randint(1, 64))
        i = rng.randrange(len(data))
        data[i:i] = data[a:b]
    return bytes(data)

for seed in range(count):
    rng = random.Random(seed)
    data = mutate(rng, original)
    try:
        f = heifkit.open_heif(data, convert_hdr_to_8bit=bool(seed % 2))
        for image in f:
            np.asarray(image)
            image.to_pillow() if image.mode in ("L", "RGB", "RGBA", "I;16") else None
            for i in range(len(image.info["thumbnails"])):
                try:
                    image.get_thumbnail(i).load()
                except heifkit.HeifError:
                    pass
            for depth in image.info["depth_images"]:
                depth.load()
        outcomes["decoded"] += 1
    except heifkit.HeifError:
        outcomes["heif_error"] += 1
    except Exception as exc:  # anything else is a bug: an unclear error type
        unexpected.append(f"seed {seed}: {type(exc).__name__}: {exc}")
print(json.dumps({"outcomes": outcomes, "unexpected": unexpected[:10]}))
"""


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutated_files_fail_cleanly(name):
    proc = run_python(CHILD, [str(CORPUS / name), str(SEEDS[name])], timeout=240, limit=True)
    assert proc.returncode == 0, f"child died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["unexpected"] == [], result["unexpected"]
    assert sum(result["outcomes"].values()) == SEEDS[name]
