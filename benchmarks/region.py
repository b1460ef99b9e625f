"""Region decode: a 512x512 crop of the 200 MP photo, decoded alone against the whole image, in one run.

Usage: python benchmarks/region.py [--repeat N] [FILE]
Prints, for each way, the peak resident memory above what a fresh process held before opening the file
(VmHWM - VmRSS) and the best wall time of N runs. The whole-image lines are what a crop cost before region
decode (and what pillow_heif still costs): the file is decoded, then cut.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("HEIFKIT_CORPUS", REPO / "tests" / "corpus"))
BOX = (6000, 8000, 6512, 8512)

_CHILD = textwrap.dedent(
    """
    import sys, time
    which, path, repeat, box = sys.argv[1], sys.argv[2], int(sys.argv[3]), tuple(map(int, sys.argv[4:8]))
    def status(key):
        with open("/proc/self/status") as s:
            return next(int(line.split()[1]) for line in s if line.startswith(key + ":")) // 1024
    from PIL import Image
    import heifkit
    heifkit.register_heif_opener()
    if which.startswith("pillow_heif"):
        import pillow_heif
    Image.MAX_IMAGE_PIXELS = None
    def run():
        if which == "heifkit region":
            return heifkit.open_heif(path).crop(box).to_pillow()
        if which == "heifkit whole":
            return heifkit.open_heif(path).to_pillow().crop(box)
        if which == "Pillow plugin crop":
            with Image.open(path) as im:
                return im.crop(box)
        return pillow_heif.open_heif(path).to_pillow().crop(box)
    base = status("VmRSS")
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        out = run()
        assert out.size == (box[2] - box[0], box[3] - box[1])
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
        del out
    print(status("VmHWM") - base, best)
    """
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("file", nargs="?", default=str(CORPUS / "pheif_200MP.heic"))
    args = parser.parse_args()
    print(f"512x512 region {BOX} of {Path(args.file).name}, {os.cpu_count()} cores, best of {args.repeat}")
    ways = ["heifkit region", "Pillow plugin crop", "heifkit whole"]
    try:
        import pillow_heif  # noqa: F401

        ways.append("pillow_heif whole")
    except ImportError:
        pass
    results = {}
    for which in ways:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, which, args.file, str(args.repeat), *map(str, BOX)],
            capture_output=True,
            text=True,
            check=True,
        )
        peak, seconds = out.stdout.split()
        results[which] = (int(peak), float(seconds))
        print(f"{which:<22} peak above baseline {int(peak):6d} MiB   {float(seconds):7.3f} s", flush=True)
    region, whole = results["heifkit region"], results["heifkit whole"]
    print(f"region / whole: memory {region[0] / max(1, whole[0]):.3f}x, time {region[1] / whole[1]:.3f}x")
    print("bound: a 512x512 region of the 200 MP file peaks at most 100 MiB above baseline:", region[0] <= 100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
