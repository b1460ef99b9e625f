"""Shared fixtures: where the real-file corpus is, and its manifest."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("HEIFKIT_CORPUS", REPO.parent / "shared" / "corpus"))
DATA = Path(__file__).resolve().parent / "data"

if not (CORPUS / "MANIFEST.tsv").is_file():
    raise RuntimeError(f"test corpus not found at {CORPUS} (set HEIFKIT_CORPUS to ../shared/corpus)")


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
