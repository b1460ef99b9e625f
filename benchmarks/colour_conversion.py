"""heifkit's own YCbCr -> RGB conversion against libheif's, both inside heifkit: wall and CPU time.

Usage: python benchmarks/colour_conversion.py [--pairs N] [--one-thread]
Decodes each file into Pillow (``open_heif(path).to_pillow()``) with heifkit's conversion and with
``heifkit._decode.yuv.may_convert`` patched to leave every image to libheif, alternating, and prints the medians and the
median per-pair ratios (ours / libheif's) of wall time and of the process's CPU time (every thread's: the work
done, whatever else runs on the machine). Uses bench.py's 12 MP files (encoded there once) and the corpus.
``--one-thread``: every decode on the calling thread (``decode_threads=0, codec_threads=1``), where CPU time is the
plainest measure of the work.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import heifkit
from heifkit._decode import yuv as _yuv

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "tests" / "corpus"


def timed(path: Path, ours: bool, **threads: Any) -> tuple[float, float]:
    # ours=False: every image is left to libheif's conversion, as heifkit does for those _yuv does not take
    with contextlib.nullcontext() if ours else mock.patch.object(_yuv, "may_convert", lambda *args: False):
        wall, cpu = time.perf_counter(), time.process_time()
        heifkit.open_heif(path, **threads).to_pillow()
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument("--one-thread", action="store_true", help="decode_threads=0, codec_threads=1")
    args = parser.parse_args()
    threads: dict[str, Any] = {"decode_threads": 0, "codec_threads": 1} if args.one_thread else {}
    names = ["single12.heic", "single12_10bit.heic", "single12.avif", "single12_10bit.avif"]
    files = [HERE / ".cache" / n for n in names] + [CORPUS / "pheif_pug.heic", CORPUS / "pheif_cat.hif"]
    print(f"{'file':<22} {'wall ours':>9} {'libheif':>8} {'ratio':>6}   {'CPU ours':>8} {'libheif':>8} {'ratio':>6}")
    for path in files:
        if not path.exists():
            print(f"{path.name}: missing (run benchmarks/bench.py once to encode it)")
            continue
        timed(path, True, **threads), timed(path, False, **threads)  # warm-up
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        for i in range(args.pairs):
            order = (True, False) if i % 2 == 0 else (False, True)
            for flag in order:
                (ours if flag else theirs).append(timed(path, flag, **threads))
        wall = statistics.median(a[0] / b[0] for a, b in zip(ours, theirs, strict=True))
        cpu = statistics.median(a[1] / b[1] for a, b in zip(ours, theirs, strict=True))
        med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
        print(
            f"{path.name:<22} {med(ours, 0):8.3f}s {med(theirs, 0):7.3f}s {wall:6.2f}   "
            f"{med(ours, 1):7.3f}s {med(theirs, 1):7.3f}s {cpu:6.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
