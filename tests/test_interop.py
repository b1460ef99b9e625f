"""Files written by heifkit are read by other implementations.

* libheif's own tools: ``heif-info`` accepts every file (exit 0) and ``heif-dec`` decodes it to PNG
  that equals heifkit's decode (exactly: the same libheif decodes the same bitstream; PNGs are read
  with a small independent PNG reader below because Pillow reduces 16-bit RGB PNGs to 8 bits).
* pillow_heif (HEIF only: it has no AV1 codec): same number of images, primary, sizes, modes and pixels.
* Pillow's own AVIF plugin (libavif), in a fresh interpreter where heifkit is not registered:
  sizes, and exact pixels for the lossless 8-bit files.

Files: RGB, RGBA, L, 10-bit RGB and grey, a multi-image file with thumbnails and a non-first primary,
and a grid; each as HEIF and AVIF, lossless (``quality=-1, chroma=444, matrix_coefficients=0``), plus one
lossy 4:2:0 file per format.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
import pytest

import heifkit
from conftest import LOSSLESS

BIN = Path(sys.executable).parent
HEIF_INFO = BIN / "heif-info"
HEIF_DEC = BIN / "heif-dec"
FORMATS = ["HEIF", "AVIF"]


@dataclass(frozen=True)
class Case:
    name: str
    fmt: str
    lossless: bool
    eight_bit: bool
    path: Path


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _smooth(width: int, height: int) -> np.ndarray:
    """A smooth RGB image (lossy coding keeps it close)."""
    x = np.linspace(0, 255, width)[None, :]
    y = np.linspace(0, 255, height)[:, None]
    r = np.broadcast_to(x, (height, width))
    g = np.broadcast_to(y, (height, width))
    b = (r + g) / 2
    return np.dstack([r, g, b]).astype(np.uint8)


def _lossless_everywhere(heif: heifkit.HeifFile) -> None:
    """HeifFile.save's per-image parameters reach only the primary: give every image matrix 0 itself."""
    for image in heif:
        image.info["matrix_coefficients"] = 0


def _build(kind: str, fmt: str) -> tuple[heifkit.HeifFile, dict[str, Any]]:
    """The HeifFile for a case and its save parameters."""
    if kind == "rgb":
        a = _rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        return heifkit.from_bytes("RGB", (64, 48), a.tobytes()), dict(LOSSLESS)
    if kind == "rgba":
        a = _rng(2).integers(0, 256, (48, 64, 4), dtype=np.uint8)
        return heifkit.from_bytes("RGBA", (64, 48), a.tobytes()), dict(LOSSLESS)
    if kind == "l":
        a = _rng(3).integers(0, 256, (48, 64), dtype=np.uint8)
        return heifkit.from_bytes("L", (64, 48), a.tobytes()), dict(LOSSLESS)
    if kind == "rgb10":
        a = _rng(4).integers(0, 65536, (48, 64, 3)).astype(np.uint16)
        return heifkit.from_bytes("RGB;16", (64, 48), a.tobytes()), dict(LOSSLESS)
    if kind == "l10":
        a = _rng(5).integers(0, 65536, (48, 64)).astype(np.uint16)
        return heifkit.from_bytes("I;16", (64, 48), a.tobytes()), dict(LOSSLESS)
    if kind == "multi":
        heif = heifkit.HeifFile()
        heif.add_frombytes("RGB", (96, 64), _rng(6).integers(0, 256, (64, 96, 3), dtype=np.uint8).tobytes())
        heif.add_frombytes("L", (64, 80), _rng(7).integers(0, 256, (80, 64), dtype=np.uint8).tobytes())
        heif.add_frombytes("RGB", (40, 40), _rng(8).integers(0, 256, (40, 40, 3), dtype=np.uint8).tobytes())
        heif[0].info["thumbnails"] = [32]
        heif[1].info["thumbnails"] = [48, 16]
        heif.primary_index = 1
        _lossless_everywhere(heif)
        return heif, dict(LOSSLESS)
    if kind == "grid":
        size, tile = ((100, 70), 32) if fmt == "HEIF" else ((150, 101), 64)
        a = _rng(9).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        return heifkit.from_bytes("RGB", size, a.tobytes()), {**LOSSLESS, "tile_size": tile}
    if kind == "lossy":
        return heifkit.from_bytes("RGB", (64, 48), _smooth(64, 48).tobytes()), {"quality": 80, "chroma": 420}
    raise AssertionError(kind)


KINDS = ["rgb", "rgba", "l", "rgb10", "l10", "multi", "grid", "lossy"]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    directory = tmp_path_factory.mktemp("interop")
    out = {}
    for fmt in FORMATS:
        for kind in KINDS:
            heif, params = _build(kind, fmt)
            path = directory / f"{kind}.{'avif' if fmt == 'AVIF' else 'heic'}"
            heif.save(path, format=fmt, **params)
            name = f"{fmt}-{kind}"
            out[name] = Case(name, fmt, kind != "lossy", kind not in ("rgb10", "l10"), path)
    return out


CASE_IDS = [f"{fmt}-{kind}" for fmt in FORMATS for kind in KINDS]
HEIF_IDS = [c for c in CASE_IDS if c.startswith("HEIF")]
AVIF_IDS = [c for c in CASE_IDS if c.startswith("AVIF")]


def test_written_files_have_expected_structure(cases: dict[str, Case]) -> None:
    for fmt in FORMATS:
        multi = heifkit.open_heif(cases[f"{fmt}-multi"].path)
        assert len(multi) == 3 and multi.primary_index == 1
        assert [im.info["thumbnails"] for im in multi] == [[32], [48, 16], []]
        grid = heifkit.open_heif(cases[f"{fmt}-grid"].path)
        assert "tiling" in grid.info
        assert heifkit.open_heif(cases[f"{fmt}-rgb10"].path).info["bit_depth"] == 10
        assert heifkit.open_heif(cases[f"{fmt}-rgb"].path).mimetype == ("image/avif" if fmt == "AVIF" else "image/heic")


# --- libheif's command line tools -----------------------------------------------------------------------


def _run(args: list[Any], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_heif_info_accepts(cases: dict[str, Case], case_id: str) -> None:
    case = cases[case_id]
    result = _run([HEIF_INFO, case.path])
    assert result.returncode == 0, result.stderr
    heif = heifkit.open_heif(case.path)
    for image in heif:
        assert f"image: {image.size[0]}x{image.size[1]}" in result.stdout
    if case_id.endswith("multi"):
        assert result.stdout.count("thumbnail:") == 3


def _read_png(path: Path) -> np.ndarray:
    """A minimal PNG reader (non-interlaced, 8/16-bit grey, grey+alpha, RGB, RGBA): samples as uint16."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert interlace == 0 and depth in (8, 16)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    bpp = channels * depth // 8
    stride = width * bpp
    raw = zlib.decompress(idat)
    out = np.zeros((height, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(height):
        row_start = y * (stride + 1)
        kind = raw[row_start]
        line = np.frombuffer(raw, np.uint8, stride, row_start + 1).astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) & 0xFF
        else:
            cur = np.zeros(stride, np.int32)
            for x in range(stride):
                left = cur[x - bpp] if x >= bpp else 0
                up = prev[x]
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:  # Paeth
                    upleft = prev[x - bpp] if x >= bpp else 0
                    p = left + up - upleft
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else upleft)
                cur[x] = (line[x] + pred) & 0xFF
        out[y] = cur
        prev = cur
    samples = out.astype(np.uint8).reshape(height, width * bpp)
    if depth == 16:
        samples16 = samples.reshape(height, width * channels, 2).astype(np.uint16)
        pixels = (samples16[..., 0] << 8) | samples16[..., 1]
    else:
        pixels = samples.astype(np.uint16)
    return pixels.reshape(height, width, channels)


def _heifkit_pixels(image: heifkit.HeifImage) -> np.ndarray:
    """heifkit's decode at the file's bit depth, as (height, width, channels) with grey + alpha kept apart."""
    a = np.asarray(image).astype(np.int64)
    return a[..., None] if a.ndim == 2 else a


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_heif_dec_matches_heifkit(cases: dict[str, Case], case_id: str, tmp_path: Path) -> None:
    case = cases[case_id]
    result = _run([HEIF_DEC, "--quiet", case.path, tmp_path / "out.png"])
    assert result.returncode == 0, result.stderr
    heif = heifkit.open_heif(case.path, convert_hdr_to_8bit=False, hdr_to_16bit=False)
    if len(heif) == 1:
        pngs = [tmp_path / "out.png"]
    else:
        pngs = [tmp_path / f"out-{i + 1}.png" for i in range(len(heif))]  # heif-dec: file order
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in pngs)
    for image, png in zip(heif, pngs, strict=True):
        decoded = _read_png(png).astype(np.int64)
        mine = _heifkit_pixels(image)
        bits = image.info["bit_depth"]
        if bits > 8:
            decoded = decoded >> (16 - bits)  # heif-dec writes 16-bit PNG samples
        if mine.shape[2] == 1 and decoded.shape[2] == 3:  # heif-dec writes grey images as RGB PNGs
            assert np.array_equal(decoded[..., 0], decoded[..., 1]) and np.array_equal(decoded[..., 0], decoded[..., 2])
            decoded = decoded[..., :1]
        assert decoded.shape == mine.shape, image.mode
        assert np.array_equal(decoded, mine)


# --- pillow_heif ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", HEIF_IDS)
def test_pillow_heif_reads_heif(cases: dict[str, Case], case_id: str) -> None:
    case = cases[case_id]
    for hdr8 in (True, False):
        mine = heifkit.open_heif(case.path, convert_hdr_to_8bit=hdr8)
        theirs = pillow_heif.open_heif(case.path, convert_hdr_to_8bit=hdr8)
        assert len(theirs) == len(mine)
        assert theirs.primary_index == mine.primary_index
        for a, b in zip(mine, theirs, strict=True):
            assert b.size == a.size
            assert b.mode == a.mode
            assert b.info["bit_depth"] == a.info["bit_depth"]
            assert b.info["thumbnails"] == a.info["thumbnails"]
            x, y = np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64)
            if case.lossless:
                assert np.array_equal(x, y)
            else:
                assert np.abs(x - y).max() <= 2


def test_pillow_heif_reads_the_original_values(cases: dict[str, Case]) -> None:
    """The lossless files are lossless for pillow_heif too: compare with the data that was written."""
    heif, _ = _build("rgb", "HEIF")
    theirs = pillow_heif.open_heif(cases["HEIF-rgb"].path)
    assert bytes(theirs.data) == bytes(heif.data)
    heif, _ = _build("rgb10", "HEIF")
    theirs = pillow_heif.open_heif(cases["HEIF-rgb10"].path, convert_hdr_to_8bit=False, hdr_to_16bit=False)
    assert theirs.mode == "RGB;10"
    expected = np.frombuffer(bytes(heif.data), "<u2").astype(np.int64) >> 6
    assert np.array_equal(np.frombuffer(bytes(theirs.data), "<u2").astype(np.int64), expected)


# --- Pillow's own AVIF plugin, without heifkit -------------------------------------------------------

_PILLOW_SCRIPT = r"""
import json, sys
import numpy as np
from PIL import Image, features
out = {"avif": bool(features.check("avif")), "files": {}}
if out["avif"]:
    for path in sys.argv[2:]:
        with Image.open(path) as im:
            im.load()
            entry = {"format": im.format, "size": list(im.size), "mode": im.mode}
            np.save(path + ".npy", np.asarray(im))
            entry["modules"] = sorted(m for m in sys.modules if m.startswith(("heifkit", "pillow_heif")))
        out["files"][path] = entry
with open(sys.argv[1], "w") as f:
    json.dump(out, f)
"""


@pytest.fixture(scope="module")
def pillow_avif(cases: dict[str, Case], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    report = tmp_path_factory.mktemp("pillow_avif") / "report.json"
    paths = [str(cases[c].path) for c in AVIF_IDS]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # not the src/ tree under test
    result = subprocess.run(
        [sys.executable, "-c", _PILLOW_SCRIPT, str(report), *paths],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(report.read_text())


@pytest.mark.parametrize("case_id", AVIF_IDS)
def test_pillow_avif_plugin_reads_avif(cases: dict[str, Case], pillow_avif: dict[str, Any], case_id: str) -> None:
    if not pillow_avif["avif"]:
        pytest.skip("Pillow was built without AVIF support")
    case = cases[case_id]
    entry = pillow_avif["files"][str(case.path)]
    assert entry["format"] == "AVIF"
    assert entry["modules"] == []  # a clean interpreter: nothing of heifkit or pillow_heif loaded
    primary = heifkit.open_heif(case.path)
    assert tuple(entry["size"]) == primary.size
    if not (case.lossless and case.eight_bit):
        return
    theirs = np.load(str(case.path) + ".npy").astype(np.int64)
    mine = np.asarray(primary).astype(np.int64)
    if mine.ndim == 2 and theirs.ndim == 3:  # grey read back as RGB by Pillow
        assert np.array_equal(theirs[..., 0], theirs[..., 2])
        theirs = theirs[..., 0]
    assert theirs.shape == mine.shape
    assert np.array_equal(theirs, mine)
