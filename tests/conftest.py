"""Shared fixtures and helpers: where the real-file corpus is, its manifest, well-known files, the lossless
save recipe, synthetic images and PSNR."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The real-file corpus ships with the tests (tests/corpus/SOURCES.md: origin and licence of every file);
# HEIFKIT_CORPUS points the suite at another copy.
CORPUS = Path(os.environ.get("HEIFKIT_CORPUS", Path(__file__).resolve().parent / "corpus"))

if not (CORPUS / "MANIFEST.tsv").is_file():
    raise RuntimeError(f"test corpus not found at {CORPUS}: it ships in tests/corpus (or set HEIFKIT_CORPUS)")


ZPUG = CORPUS / "pheif_zPug_3.heic"  # 3 images: 64x64 RGB [thumbnails 32, 16], 64x64 L (primary) [32], 96x64 RGB
ZPUG_MODES = ["RGB", "L", "RGB"]
ZPUG_SIZES = [(64, 64), (64, 64), (96, 64)]
ZPUG_THUMBS = [[32, 16], [32], []]
ZPUG_BYTES = [64 * 64 * 3, 64 * 64, 96 * 64 * 3]
PUG = CORPUS / "pheif_pug.heic"  # 12 MP grid with a depth image and an HDR gain map
ARROW = CORPUS / "pheif_arrow.heic"  # grid with irot and an ICC profile
CAT = CORPUS / "pheif_cat.hif"  # Canon 10-bit 4:2:2 grid, thumbnails [1616, 320, 160]

ALWAYS_KEYS = {"primary", "bit_depth", "exif", "metadata", "thumbnails", "depth_images", "aux"}
"""``info`` keys every image read from a file has."""

LOSSLESS = {"quality": -1, "chroma": 444, "matrix_coefficients": 0}
"""Save parameters for bit-exact lossless HEIF/AVIF."""

# HDR metadata test values (clli, mdcv, amve), as heifkit reads and writes them in ``info``
CLLI = {"max_content_light_level": 1000, "max_pic_average_light_level": 400}
MDCV = {
    "display_primaries_x": (13250, 7500, 34000),
    "display_primaries_y": (34500, 3000, 16000),
    "white_point_x": 15635,
    "white_point_y": 16450,
    "max_display_mastering_luminance": 10000000,
    "min_display_mastering_luminance": 50,
}
AMVE = {"ambient_illumination": 314, "ambient_light_x": 15635, "ambient_light_y": 16450}


def manifest() -> list[dict[str, str]]:
    """Rows of the corpus MANIFEST.tsv (one per file; ``file`` is relative to the corpus)."""
    with open(CORPUS / "MANIFEST.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def decodable_files() -> list[str]:
    """Corpus files (main set) that libheif 1.23.6 decodes."""
    return [r["file"] for r in manifest() if r["set"] == "main" and r["libheif_decode"] == "OK"]


def refused_files() -> list[str]:
    """Corpus files libheif refuses, and everything in bad/."""
    rows = manifest()
    names = {r["file"] for r in rows if r["libheif_decode"] != "OK"}
    names |= {f"bad/{p.name}" for p in (CORPUS / "bad").iterdir() if p.is_file()}
    return sorted(names)


@pytest.fixture
def corpus() -> Path:
    return CORPUS


@pytest.fixture(autouse=True)
def _restore_options() -> Iterator[None]:
    """Every heifkit option is put back after each test, whatever the test changed."""
    from heifkit import options

    saved = {name: getattr(options, name) for name in dir(options) if name.isupper()}
    saved = {k: (dict(v) if isinstance(v, dict) else v) for k, v in saved.items()}
    yield
    for name, value in saved.items():
        setattr(options, name, value)


@pytest.fixture
def heif_plugin() -> None:
    """heifkit's HEIF plugin registered with Pillow."""
    import heifkit

    heifkit.register_heif_opener()


def save_bytes(heif_file: Any, **kwargs: Any) -> bytes:
    """``heif_file.save`` into memory."""
    out = io.BytesIO()
    heif_file.save(out, **kwargs)
    return out.getvalue()


def pil_bytes(im: Any, **kwargs: Any) -> bytes:
    """A Pillow image saved as HEIF into memory (``format="AVIF"`` in kwargs overrides)."""
    out = io.BytesIO()
    im.save(out, **{"format": "HEIF", **kwargs})
    return out.getvalue()


def noise(size: tuple[int, int] = (64, 64), mode: str = "RGB", seed: int = 0) -> Any:
    """A Pillow image of random pixels (incompressible: sizes depend strongly on quality)."""
    import numpy as np
    from PIL import Image

    channels = len(Image.new(mode, (1, 1)).getbands())
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], channels) if channels > 1 else (size[1], size[0])
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def psnr(a: Any, b: Any, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio of two arrays of the same shape, in dB (inf when equal)."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def comparable_info(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with depth images replaced by something comparable across libraries.

    ``entity_groups`` is new in pillow_heif 1.7+ and not part of the contract (written against 1.6);
    ``gain_maps`` is heifkit's own.
    """
    out = dict(info)
    out.pop("entity_groups", None)
    out.pop("gain_maps", None)
    out["depth_images"] = [(d.size, d.mode, d.info) for d in info.get("depth_images", [])]
    return out


def exif_orientation_of(exif: bytes) -> int | None:
    """The orientation tag Pillow reads in EXIF bytes (None when there is none)."""
    from PIL import Image

    e = Image.Exif()
    e.load(exif)
    return e.get(274)


def oriented_grid(fmt: str, size: tuple[int, int], orientation: int) -> bytes:
    """A noisy RGB grid image (64 px tiles) of ``size`` with EXIF ``orientation`` written as irot/imir."""
    import numpy as np
    from PIL import Image

    import heifkit

    rng = np.random.default_rng(orientation)
    src = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[274] = orientation
    out = io.BytesIO()
    heifkit.from_pillow(src).save(out, format=fmt, tile_size=64, exif=exif.tobytes(), quality=80)
    return out.getvalue()


# --- slow checks in child processes, run in the background -------------------------------------------
# The sweep, the leak loops and the fuzz smoke spend minutes in child processes. A module that defines
# ``background_jobs(tmp: Path) -> {key: job}`` has its jobs started on one background thread as soon as
# the tests are collected, longest first, so that they run on the second core while the rest of the suite
# runs on the first; its tests run last (pytest_collection_modifyitems) and wait for the results
# (``background_results``). Run alone (one module, -k), the jobs simply run first.

_BACKGROUND: dict[str, dict[str, Any]] = {}
_POOL: list[Any] = []


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests of modules with background jobs run after every other test, so that no test waits for them
    while there is other work to do."""
    waiting = [item for item in items if hasattr(getattr(item, "module", None), "background_jobs")]
    if waiting:
        last = set(waiting)
        items[:] = [item for item in items if item not in last] + waiting


def pytest_collection_finish(session: pytest.Session) -> None:
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    if session.config.option.collectonly:
        return
    modules = {item.module.__name__: item.module for item in session.items if getattr(item, "module", None)}
    starters = [(name, m.background_jobs) for name, m in modules.items() if hasattr(m, "background_jobs")]
    if not starters:
        return
    pool = ThreadPoolExecutor(1, thread_name_prefix="heifkit-background")
    tmp = Path(tempfile.mkdtemp(prefix="heifkit-background-"))
    _POOL.extend([pool, tmp])
    for name, start in sorted(starters, key=lambda s: getattr(modules[s[0]], "BACKGROUND_ORDER", 9)):
        directory = tmp / name
        directory.mkdir()
        _BACKGROUND[name] = {key: pool.submit(job) for key, job in start(directory).items()}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import shutil

    if _POOL:
        pool, tmp = _POOL
        pool.shutdown(cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)


def background_results(module: str) -> dict[str, Any]:
    """The results of ``module``'s background jobs (waiting for those still running)."""
    return {key: future.result() for key, future in _BACKGROUND[module].items()}
