"""The quality a file was coded at: how well ``HeifImage.coded_quality()`` tells it, per encoder.

Usage: python benchmarks/coded_quality.py [--size N] [--step N] [--sweep-only]

Encodes varied pictures (real photos of tests/corpus decoded and shrunk to N px on the long side, and generated
noise, gradients and line art) at qualities 10, 15, ..., 95 with four encoders, each with its defaults:

* heifkit HEIC (libheif's x265 plugin, the default preset),
* pillow_heif HEIC (the oracle, its own libheif and x265),
* heifkit AVIF (libheif's aom plugin),
* Pillow's own AVIF plugin (libavif and aom),

reads each file back with ``coded_quality()`` and prints, per encoder and quality, the quantizer the stream holds
(HEVC slice QP, AV1 base_q_idx), the estimate and its error. A sweep of every quality 0..100 on one small
picture then checks the mappings ``heifkit._read.coded_quality`` inverts (``x265_qp``, ``_AOM_Q_INDEX``) against
what the encoders code; it fails (exit status 1) when they differ, as they would after an encoder update.

This is the calibration behind docs/reading.md, "The quality a file was coded at".
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

import heifkit
from heifkit._read import coded_quality as cq

CORPUS = Path(os.environ.get("HEIFKIT_CORPUS", Path(__file__).resolve().parents[1] / "tests" / "corpus"))
PHOTOS = [
    "pheif_pug.heic",
    "pheif_arrow.heic",
    "pheif_xiaomi.heic",
    "pheif_cat.hif",
    "libheif_example.heic",
    "av1avif-linku_fox.profile0.8bpc.yuv420.odd-width.odd-height.avif",
    "av1avif-linku_kimono.rotate90.avif",
    "libavif_paris_icc_exif_xmp.avif",
    "libavif_seine_sdr_gainmap_srgb.avif",
    "pillow_rot0mir0.avif",
]


def pictures(size: int) -> dict[str, Image.Image]:
    """The photos, shrunk to ``size`` px on the long side, and three generated pictures of that size."""
    found = {}
    for name in PHOTOS:
        img = heifkit.open_heif(CORPUS / name)[0].to_pillow().convert("RGB")
        img.thumbnail((size, size))
        found[name.split(".")[0]] = img
    width, height = size, size * 3 // 4
    rng = np.random.default_rng(20)
    found["noise"] = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    y, x = np.mgrid[0:height, 0:width]
    ramp = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 255 // (width + height - 2)], -1)
    found["gradient"] = Image.fromarray(ramp.astype(np.uint8))
    art = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(art)
    for i in range(0, width, 12):
        draw.line((i, 0, width - i, height), fill=(i % 256, 40, 200 - i % 200), width=2)
    draw.text((10, 10), "heifkit coded quality 0123456789", fill="black")
    found["line art"] = art
    return found


def _heifkit(fmt: str) -> Callable[[Image.Image, int], bytes]:
    def encode(img: Image.Image, quality: int) -> bytes:
        out = io.BytesIO()
        heifkit.from_pillow(img).save(out, quality=quality, format=fmt)
        return out.getvalue()

    return encode


def _pillow_heif(img: Image.Image, quality: int) -> bytes:
    import pillow_heif

    out = io.BytesIO()
    pillow_heif.from_pillow(img).save(out, quality=quality)
    return out.getvalue()


def _pillow_avif(img: Image.Image, quality: int) -> bytes:
    """Pillow's own AVIF plugin (libavif), called directly: whatever the registry holds for "AVIF"."""
    from PIL import AvifImagePlugin

    out = io.BytesIO()
    img.encoderinfo = {"quality": quality}  # what Image.save hands a plugin
    try:
        AvifImagePlugin._save(img, out, "coded_quality.avif")
    finally:
        del img.encoderinfo
    return out.getvalue()


ENCODERS: dict[str, tuple[Callable[[Image.Image, int], bytes], Callable[[int], int]]] = {
    "heifkit HEIC": (_heifkit("HEIF"), cq.x265_qp),
    "pillow_heif HEIC": (_pillow_heif, cq.x265_qp),
    "heifkit AVIF": (_heifkit("AVIF"), lambda q: cq._AOM_Q_INDEX[q]),
    "Pillow AVIF": (_pillow_avif, lambda q: cq._AOM_Q_INDEX[q]),
}


def read_back(data: bytes) -> dict[str, Any]:
    found = heifkit.open_heif(data)[0].coded_quality()
    if found is None:
        raise RuntimeError("coded_quality() read nothing of a file just written")
    return found


def measure(images: dict[str, Image.Image], qualities: list[int]) -> list[tuple[str, int, float, int, int]]:
    """(encoder, quality, quantizer, estimate, stated error) of every picture, encoder and quality."""
    rows = []
    for encoder, (encode, _) in ENCODERS.items():
        for quality in qualities:
            for img in images.values():
                found = read_back(encode(img, quality))
                rows.append((encoder, quality, found["quantizer"], found["quality"], found["error"]))
        print(f"  {encoder}: {len(qualities) * len(images)} files", file=sys.stderr, flush=True)
    return rows


def report(rows: list[tuple[str, int, float, int, int]]) -> None:
    print(f"{'encoder':18} {'quality':>7} {'quantizer':>12} {'estimate':>9} {'error':>6} {'stated':>7}")
    for encoder in ENCODERS:
        mine = [r for r in rows if r[0] == encoder]
        for quality in sorted({r[1] for r in mine}):
            at = [r for r in mine if r[1] == quality]
            coded = sorted({r[2] for r in at})
            shown = "/".join(f"{c:g}" for c in coded)
            estimates = sorted({r[3] for r in at})
            worst = max(abs(r[3] - quality) for r in at)
            print(f"{encoder:18} {quality:7} {shown:>12} {'/'.join(map(str, estimates)):>9} {worst:6} {at[0][4]:>6}±")
    print()
    print(f"{'encoder':18} {'files':>6} {'max |error|':>12} {'mean |error|':>13} {'within stated ±':>16}")
    for encoder in ENCODERS:
        mine = [r for r in rows if r[0] == encoder]
        errors = [abs(r[3] - r[1]) for r in mine]
        within = sum(abs(r[3] - r[1]) <= r[4] for r in mine)
        print(f"{encoder:18} {len(mine):6} {max(errors):12} {sum(errors) / len(errors):13.2f} {within:>10}/{len(mine)}")


def sweep(img: Image.Image) -> bool:
    """Every quality 0..100 through every encoder: does each code what the module's mapping says?"""
    ok = True
    for encoder, (encode, expected) in ENCODERS.items():
        wrong = []
        for quality in range(101):
            found = read_back(encode(img, quality))
            lossless = encoder.endswith("AVIF") and expected(quality) == 0  # q index 0: AV1 codes it lossless
            if found["quantizer"] != expected(quality) or found["lossless"] != lossless:
                wrong.append((quality, found["quantizer"], expected(quality)))
        print(f"sweep 0..100, {encoder}: " + ("as the mapping says" if not wrong else f"differs at {wrong}"))
        ok = ok and not wrong
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="long side of the pictures (default 512)")
    parser.add_argument("--step", type=int, default=5, help="quality step from 10 to 95 (default 5)")
    parser.add_argument("--sweep-only", action="store_true", help="only the 0..100 sweep of the mappings")
    args = parser.parse_args()
    import pillow_heif
    from PIL import features

    info = heifkit.libheif_info()
    print(f"heifkit {heifkit.__version__}: libheif {info['libheif']}, {info['HEIF']}, {info['AVIF']}")
    print(f"pillow_heif {pillow_heif.__version__}: {pillow_heif.libheif_info()['HEIF']}")
    print(f"Pillow {Image.__version__}: libavif {features.version('avif')}")
    images = pictures(args.size)
    ok = sweep(images["noise"].resize((128, 96)))
    if not args.sweep_only:
        print(f"\n{len(images)} pictures, {args.size} px on the long side", file=sys.stderr)
        report(measure(images, list(range(10, 96, args.step))))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
