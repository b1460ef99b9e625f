"""Regenerates the pictures of docs/hdr.md (the PNG files beside this script) from the test corpus.

Usage, from the repository root, with heifkit, NumPy and Pillow installed (``make install`` and the test tools):

    .venv/bin/python docs/_static/hdr/make_pictures.py

The seine photo is libavif's test image (AOMediaCodec/libavif, tests/data, BSD-2-Clause); the pug is
pillow_heif's test photo (bigcat88/pillow_heif, BSD-3-Clause, taken with an iPhone 13 Pro); see
tests/corpus/SOURCES.md. Each picture is scaled to 320 pixels wide and stored with a palette of at most 256
colours, to keep it under 60 kB.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

import heifkit

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[2] / "tests" / "corpus"
WIDTH = 320
BUDGET = 60_000


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """8-bit sRGB samples of linear light in [0, 1] (IEC 61966-2-1's curve)."""
    v = np.clip(linear, 0.0, 1.0)
    coded = np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1 / 2.4) - 0.055)
    return np.round(coded * 255).astype(np.uint8)


def reinhard(linear: np.ndarray, white: float) -> np.ndarray:
    """The extended Reinhard curve, per channel: x (1 + x / white²) / (1 + x), which takes ``white`` to 1.0
    and leaves dark values nearly as they are."""
    return linear * (1 + linear / (white * white)) / (1 + linear)


def save(image: Image.Image, name: str) -> None:
    """``image`` scaled to WIDTH and written as a palette PNG beside this script."""
    height = round(image.height * WIDTH / image.width)
    small = image.resize((WIDTH, height), Image.Resampling.LANCZOS)
    paletted = small.quantize(256, dither=Image.Dither.FLOYDSTEINBERG) if small.mode == "RGB" else small
    path = HERE / name
    paletted.save(path, optimize=True)
    size = path.stat().st_size
    print(f"{path.relative_to(HERE.parents[2])}: {small.width}x{small.height}, {size} bytes")
    if size > BUDGET:
        sys.exit(f"{name} is over {BUDGET} bytes")


def main() -> None:
    seine = heifkit.open_heif(CORPUS / "libavif_seine_sdr_gainmap_srgb.avif")[0]
    save(seine.to_pillow(), "seine_sdr.png")
    save(seine.info["gain_maps"][0].to_pillow(), "seine_gain_map.png")
    hdr = seine.to_hdr()  # linear light, 1.0 = SDR white; the brightest pixels reach 2 ** 1.3
    peak = float(hdr.max())
    save(Image.fromarray(srgb_encode(reinhard(hdr, peak))), "seine_hdr_reinhard.png")
    save(Image.fromarray(srgb_encode(reinhard(seine.to_hdr(0), peak))), "seine_sdr_reinhard.png")
    pug = heifkit.open_heif(CORPUS / "pheif_pug.heic")[0]
    gain = np.asarray(pug.info["gain_maps"][0].to_pillow(), dtype=np.float32)
    stretched = np.round(gain * (255 / gain.max())).astype(np.uint8)  # its brightest sample (102) as white
    save(Image.fromarray(stretched), "pug_gain_map.png")


if __name__ == "__main__":
    main()
