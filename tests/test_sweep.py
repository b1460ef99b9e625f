"""Truncation and corruption sweep: every prefix and single-byte corruptions of five files of different kinds
give a typed error or a valid image, never a crash, a hang or an untyped exception.

Files: a grid HEIC (made here: 3x2 tiles of 32x32), a 10-bit HEIC, an AVIF with alpha, a multi-image HEIC
with thumbnails, and an AVIF sequence (libavif's ``colors-animated-8bpc.avif``: an ``avis`` file of five
frames in a track, and a still image). For each file:

* every prefix length from 0 to the whole file, stepped (every length up to :data:`DENSE_PREFIX` bytes, where
  the ``ftyp`` and ``meta`` boxes are; then :data:`PREFIX_STEPS` lengths spread over the rest, and the whole
  file), so the sweep stays under a minute;
* single-byte corruptions at :data:`CORRUPTIONS` offsets drawn with a fixed seed (the byte at the offset is
  replaced by another drawn byte).

The five sweeps run in the background, one after the other, while other tests run (``conftest``). Each case
runs in a child process of its own, forked from a server process per file that has imported
heifkit (a fork costs about a millisecond; a fresh interpreter 100 times that), with its address space
capped (``subproc.MEMORY_LIMIT``) and an alarm (:data:`CASE_TIMEOUT`): a signal is a crash, the alarm a
hang. A case opens the bytes with ``open_heif`` and decodes every image, thumbnail, depth and auxiliary
image, then a region of the primary image alone (``crop`` before decoding: only the tiles under it, for the
grid), then every frame of the image sequence (``open_sequence``, for the sequence file), then
opens them with Pillow through the plugin (a lazily read stream) and loads every frame (Pillow's
``DecompressionBombError`` for a size field made huge is a clean outcome too).
"""

from __future__ import annotations

import functools
import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import heifkit
import subproc
from conftest import CORPUS, background_results

pytestmark = pytest.mark.slow  # a sweep of truncations and corruptions, in child processes

DENSE_PREFIX = 128
PREFIX_STEPS = 250
CORRUPTIONS = 400
"""Per file: 2,000 single-byte corruptions over the five files."""
CASE_TIMEOUT = 20
SEED = 20261126

FILES = {
    "grid": None,  # made by _grid_heic()
    "10-bit": CORPUS / "pheif_RGB_10__128x128.heif",
    "avif": CORPUS / "libheif_simple_osm_tile_alpha.avif",
    "multi-image": CORPUS / "pheif_zPug_3.heic",
    "sequence": CORPUS / "libavif_colors-animated-8bpc.avif",
}

SERVER = r"""
import io, json, os, random, resource, signal, sys, traceback
import heifkit
from PIL import Image
heifkit.register_heif_opener()
heifkit.register_avif_opener()

path = sys.argv[1]
memory_limit, timeout, dense, steps, corruptions, seed = map(int, sys.argv[2:8])
original = open(path, "rb").read()
size = len(original)
sequence = heifkit.open_heif(original).has_sequence  # its frames are read too

def cases():
    lengths = sorted(set(range(min(dense, size))) | {dense + (size - dense) * k // steps for k in range(steps + 1)})
    for n in lengths:
        if n <= size:
            yield f"prefix {n}", original[:n]
    rng = random.Random(seed)
    for _ in range(corruptions):
        offset = rng.randrange(size)
        value = (original[offset] + rng.randrange(1, 256)) % 256
        yield f"byte {offset}={value}", original[:offset] + bytes([value]) + original[offset + 1:]

def run(data):
    # 0: decoded, 1: typed error; anything else is reported on stdout
    typed = 0
    try:
        heif_file = heifkit.open_heif(data)
        for image in heif_file:
            image.load()
            for i in range(len(image.info["thumbnails"])):
                try:
                    image.get_thumbnail(i).load()
                except heifkit.HeifError:
                    typed = 1
            for depth in image.info["depth_images"]:
                try:
                    depth.load()
                except heifkit.HeifError:
                    typed = 1
            for ids in image.info.get("aux", {}).values():
                for aux_id in ids:
                    try:
                        image.get_aux_image(aux_id).load()
                    except heifkit.HeifError:
                        typed = 1
    except heifkit.HeifError as exc:
        assert str(exc), "a HeifError without a message"
        typed = 1
    try:
        heif_file = heifkit.open_heif(data)
        image = heif_file[heif_file.primary_index]
        width, height = image.size
        if width > 1 and height > 1:
            image.crop((width // 3, height // 3, width - width // 4, height - height // 4)).load()
    except heifkit.HeifError:
        typed = 1
    if sequence:
        try:
            for frame in heifkit.open_sequence(data):
                frame.load()
        except heifkit.HeifError:
            typed = 1
    try:
        with Image.open(io.BytesIO(data), formats=["HEIF", "AVIF"]) as im:
            for frame in range(im.n_frames):
                im.seek(frame)
                im.load()
    except (Image.UnidentifiedImageError, heifkit.HeifError, Image.DecompressionBombError):
        typed = 1
    return typed

counts = {"decoded": 0, "typed error": 0}
problems = []
whole = None
for name, data in cases():
    pid = os.fork()
    if pid == 0:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
            signal.alarm(timeout)
            code = run(data)
        except BaseException:
            sys.stdout.write(json.dumps({"case": name, "error": traceback.format_exc(limit=6)}) + "\n")
            sys.stdout.flush()
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        what = "hang (no end within %d s)" % timeout if sig == signal.SIGALRM else "crash: " + signal.Signals(sig).name
        problems.append(f"{name}: {what}")
    elif os.WEXITSTATUS(status) == 0:
        counts["decoded"] += 1
        if name == f"prefix {size}":
            whole = "decoded"
    elif os.WEXITSTATUS(status) == 1:
        counts["typed error"] += 1
    else:
        problems.append(f"{name}: untyped exception (see above)")
print(json.dumps({"counts": counts, "problems": problems, "size": size, "whole": whole, "sequence": sequence}))
"""


def _grid_heic() -> bytes:
    rng = np.random.default_rng(SEED)
    pixels = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    out = io.BytesIO()
    heifkit.from_bytes("RGB", (96, 64), pixels.tobytes()).save(out, tile_size=32, quality=60, speed=10)
    data = out.getvalue()
    assert heifkit.open_heif(data).info["tiling"]["num_columns"] == 3
    return data


def _sweep(path: Path) -> dict[str, Any]:
    args = [str(path), str(subproc.MEMORY_LIMIT), str(CASE_TIMEOUT), str(DENSE_PREFIX), str(PREFIX_STEPS)]
    args += [str(CORRUPTIONS), str(SEED)]
    try:
        proc = subproc.run_python(SERVER, args, timeout=600)
    except subprocess.TimeoutExpired:
        return {"problems": [f"the sweep of {path.name} did not finish in 600 s"], "details": []}
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines or "counts" not in lines[-1]:
        return {"problems": [f"the sweep server died (rc {proc.returncode}): {proc.stderr[-2000:]}"], "details": []}
    result = lines[-1]
    result["details"] = lines[:-1]
    return result


BACKGROUND_ORDER = 0  # the longest: first


def background_jobs(tmp: Path) -> dict[str, Callable[[], dict[str, Any]]]:
    """One sweep per file, run in the background while other tests run (conftest.background_results)."""

    def grid() -> dict[str, Any]:
        path = tmp / "grid.heic"
        path.write_bytes(_grid_heic())
        return _sweep(path)

    jobs: dict[str, Callable[[], dict[str, Any]]] = {"grid": grid}
    for kind, path in FILES.items():
        if path is not None:
            jobs[kind] = functools.partial(_sweep, path)
    return jobs


@pytest.fixture(scope="module")
def sweeps() -> dict[str, dict[str, Any]]:
    return background_results(__name__)


@pytest.mark.parametrize("kind", list(FILES))
def test_prefixes_and_corruptions_fail_cleanly(kind: str, sweeps: dict[str, dict[str, Any]]) -> None:
    result = sweeps[kind]
    details = "\n".join(f"{d['case']}: {d['error']}" for d in result["details"][:3])
    assert not result["problems"], f"{kind}: " + "; ".join(result["problems"][:10]) + "\n" + details
    counts = result["counts"]
    assert result["whole"] == "decoded", f"{kind}: the whole file does not decode"
    assert counts["typed error"] > 0  # the empty prefix at least
    assert counts["decoded"] + counts["typed error"] >= PREFIX_STEPS + CORRUPTIONS
    assert result["sequence"] == (kind == "sequence")
