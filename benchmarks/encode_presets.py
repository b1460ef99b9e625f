"""HEIC encode: x265 presets side by side on a real 12 MP photo: time, size, PSNR and SSIM.

Usage: python benchmarks/encode_presets.py [--quality Q ...] [--presets NAME ...] [--crop N]

Encodes pug.heic's pixels (12 MP, iPhone) once per preset and quality, decodes the result with heifkit and
compares it with the source pixels. Prints, per preset: wall and CPU seconds (CPU counts x265's threads, so
it is steadier than wall time on a busy machine), bytes, PSNR over RGB and SSIM over luma, and each figure
relative to the default (no preset given: libheif's x265 default, "slow").

This is the study behind heifkit's default HEIC speed (docs/performance.md, "Encoding").
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

import heifkit

CORPUS = Path(os.environ.get("HEIFKIT_CORPUS", Path(__file__).resolve().parents[1] / "tests" / "corpus"))
PRESETS = ["veryslow", "slower", "slow", "medium", "fast", "faster", "veryfast", "superfast", "ultrafast"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _box_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over every k x k window (valid positions), with summed-area tables."""
    s = np.pad(x, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return (s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]) / (k * k)


def ssim_luma(a: np.ndarray, b: np.ndarray, k: int = 8) -> float:
    """Mean SSIM of the BT.601 luma of two RGB images, over k x k windows (the usual constants)."""
    weights = np.array([0.299, 0.587, 0.114])
    x, y = a.astype(np.float64) @ weights, b.astype(np.float64) @ weights
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _box_mean(x, k), _box_mean(y, k)
    vx = _box_mean(x * x, k) - mx * mx
    vy = _box_mean(y * y, k) - my * my
    cov = _box_mean(x * y, k) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def encode(img: object, quality: int | None, preset: str | None) -> tuple[float, float, bytes]:
    out = io.BytesIO()
    params: dict[str, object] = {} if preset is None else {"enc_params": {"preset": preset}}
    wall, cpu = time.perf_counter(), time.process_time()
    heifkit.from_pillow(img).save(out, quality=quality, **params)
    return time.perf_counter() - wall, time.process_time() - cpu, out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quality", type=int, nargs="*", default=[85, 50])
    parser.add_argument("--presets", nargs="*", default=PRESETS)
    parser.add_argument("--crop", type=int, default=0, help="encode a centred N x N crop instead (quick runs)")
    args = parser.parse_args()
    img = heifkit.open_heif(CORPUS / "pheif_pug.heic").to_pillow()
    if args.crop:
        left, top = (img.width - args.crop) // 2, (img.height - args.crop) // 2
        img = img.crop((left, top, left + args.crop, top + args.crop))
    source = np.asarray(img)
    print(f"{img.width}x{img.height} RGB from pug.heic; heifkit {heifkit.__version__}, libheif "
          f"{heifkit.libheif_version()}, x265 {heifkit.libheif_info()['encoders'].get('x265', '?')}")  # fmt: skip
    for quality in args.quality:
        print(f"\nquality {quality}")
        print(f"{'preset':<12} {'wall s':>7} {'CPU s':>7} {'bytes':>10} {'PSNR dB':>8} {'SSIM':>7}   "
              f"{'CPU':>6} {'size':>7} {'dPSNR':>6}")  # fmt: skip
        base = None
        for preset in [None, *args.presets]:
            wall, cpu, data = encode(img, quality, preset)
            decoded = np.asarray(heifkit.open_heif(data).to_pillow())
            p, s = psnr(source, decoded), ssim_luma(source, decoded)
            if base is None:
                base = (cpu, len(data), p)
            print(
                f"{preset or 'default':<12} {wall:7.2f} {cpu:7.2f} {len(data):10,} {p:8.2f} {s:7.4f}   "
                f"{cpu / base[0]:5.2f}x {len(data) / base[1] - 1:+7.2%} {p - base[2]:+6.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
