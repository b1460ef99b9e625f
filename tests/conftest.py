"""Shared fixtures: where the real-file corpus is, and its manifest."""

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
