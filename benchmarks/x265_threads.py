"""x265's own threading when heifkit encodes a 12 MP photo: wall time, CPU time, cores used, bytes and PSNR.

Usage: python benchmarks/x265_threads.py [--rounds N] [--quality Q] [--configs NAME,...] [--grid-configs NAME,...]

The photo is tests/corpus/pheif_pug.heic decoded (4032x3024, 8-bit, its EXIF left out), encoded into memory
at ``--quality`` (85) with libheif's x265 plugin and heifkit's default speed, once as one coded image
(``tile_size=0``) and once as a grid of 512 px tiles (``tile_size=512``, the tiles encoded one after another,
as heifkit does). x265's threading is set through ``enc_params``: libheif's plugin hands every ``x265:NAME``
parameter to x265's own option parser (``x265_param_parse``) after its defaults, and an option x265 does not know
fails the save. ``pools`` is x265's thread pool (a number of worker threads, ``none``: no pool), ``frame-threads``
the pictures coded at once, ``wpp`` wavefront parallel processing (CTU rows in parallel on the pool).

Each round encodes every configuration once (the order rotated from round to round, so that a busy machine
favours none); a row gives the medians over the rounds. CPU is this process's user + system time during the
save (x265's threads included), cores = CPU / wall. PSNR is over R, G and B against the source pixels, decoded
back with heifkit.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import heifkit

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("HEIFKIT_CORPUS", REPO / "tests" / "corpus"))
PUG = CORPUS / "pheif_pug.heic"

CONFIGS: dict[str, dict[str, str]] = {
    "default": {},
    "pools=1": {"x265:pools": "1"},
    "pools=2": {"x265:pools": "2"},
    "pools=none": {"x265:pools": "none"},
    "frame-threads=1": {"x265:frame-threads": "1"},
    "wpp=0": {"x265:wpp": "0"},
    "wpp=1": {"x265:wpp": "1"},
    "pools=1 frame-threads=1": {"x265:pools": "1", "x265:frame-threads": "1"},
}
"""Label -> the ``enc_params`` of a configuration (``default``: libheif's and x265's own)."""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB) of two 8-bit images of the same shape."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def encode(image: Image.Image, quality: int, tile_size: int, params: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall time, process CPU time and the file of one save into memory."""
    out = io.BytesIO()
    heif = heifkit.from_pillow(image)
    wall, cpu = time.perf_counter(), time.process_time()
    heif.save(out, quality=quality, tile_size=tile_size, enc_params=params)
    return time.perf_counter() - wall, time.process_time() - cpu, out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="encodes of each configuration (median taken)")
    parser.add_argument("--quality", type=int, default=85)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated labels of CONFIGS to run")
    parser.add_argument("--grid-configs", default="default,pools=1,pools=none,wpp=0", help="the same for the grid")
    parser.add_argument("--tile-size", type=int, default=512, help="the grid's tile size (0: no grid rows)")
    args = parser.parse_args()
    labels = [label.strip() for label in args.configs.split(",") if label.strip()]
    grid_labels = [label.strip() for label in args.grid_configs.split(",") if label.strip()]
    unknown = [label for label in labels + grid_labels if label not in CONFIGS]
    if unknown:
        parser.error(f"unknown configurations {unknown}; known: {', '.join(CONFIGS)}")

    info = heifkit.libheif_info()
    print(f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"heifkit {heifkit.__version__}: libheif {info['libheif']}, {info['HEIF']}")
    image = heifkit.open_heif(PUG).to_pillow()
    image.info.pop("exif", None)
    source = np.asarray(image.convert("RGB"))
    print(f"source: {PUG.name} decoded, {image.width}x{image.height}, quality {args.quality}, {args.rounds} rounds")
    print()

    cases = [(0, label) for label in labels]
    if args.tile_size:
        cases += [(args.tile_size, label) for label in grid_labels]
    timings: dict[tuple[int, str], list[tuple[float, float]]] = {case: [] for case in cases}
    coded: dict[tuple[int, str], bytes] = {}
    encode(image.crop((0, 0, 512, 512)), args.quality, 0, {})  # warm-up: the plugin loaded, x265 set up once
    for r in range(args.rounds):
        shift = r % len(cases)
        for case in cases[shift:] + cases[:shift]:
            tile, label = case
            wall, cpu, data = encode(image, args.quality, tile, CONFIGS[label])
            timings[case].append((wall, cpu))
            coded.setdefault(case, data)
        print(f"(round {r + 1} of {args.rounds} done, load average {os.getloadavg()[0]:.2f})", flush=True)
    print()

    print(f"{'layout':<14} {'x265 threads':<24} {'wall':>7} {'CPU':>7} {'cores':>6} {'bytes':>11} {'PSNR':>8}")
    for case in cases:
        tile, label = case
        wall = statistics.median(w for w, _ in timings[case])
        cpu = statistics.median(c for _, c in timings[case])
        cores = statistics.median(c / w for w, c in timings[case])
        data = coded[case]
        decoded = np.asarray(heifkit.open_heif(io.BytesIO(data)).to_pillow().convert("RGB"))
        layout = "one image" if tile == 0 else f"{tile} px grid"
        print(
            f"{layout:<14} {label:<24} {wall:6.2f}s {cpu:6.2f}s {cores:6.2f} {len(data):>11,} "
            f"{psnr(source, decoded):6.2f}dB",
            flush=True,
        )
    print()
    print("wall, CPU: medians per encode (CPU: user + system of every thread); cores: median CPU / wall")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
