"""The corpus the suite reads ships inside tests/: a fresh clone tests itself, with every file attributed."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from conftest import CORPUS, manifest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def test_corpus_is_bundled_with_the_tests() -> None:
    assert (TESTS / "corpus" / "MANIFEST.tsv").is_file()
    assert (TESTS / "corpus" / "SOURCES.md").is_file()


def test_every_bundled_file_is_catalogued_unchanged_and_attributed() -> None:
    rows = {r["file"]: r for r in manifest()}
    sources = (CORPUS / "SOURCES.md").read_text()
    prefixes = set(re.findall(r"`([a-z0-9_-]+_)`", sources))
    files = [p for p in CORPUS.rglob("*") if p.is_file() and p.name not in ("MANIFEST.tsv", "SOURCES.md")]
    assert len(files) == len(rows)
    for path in files:
        name = path.relative_to(CORPUS).as_posix()
        assert name in rows, f"{name} is not in MANIFEST.tsv"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == rows[name]["sha256"], name
        assert any(path.name.startswith(p) for p in prefixes), f"{name}: no licence row in SOURCES.md"


def test_nothing_reads_outside_the_repository() -> None:
    """Tests, benchmarks, the Makefile and CI never reach for the workspace's shared folder beside the
    repository (absent on a fresh clone)."""
    outside = "/".join(["..", "shared"])
    checked = [*TESTS.glob("*.py"), *(REPO / "benchmarks").glob("*.py"), REPO / "Makefile", REPO / ".ci" / "run"]
    for path in checked:
        if path == Path(__file__).resolve():
            continue
        text = path.read_text()
        assert outside not in text and '"shared"' not in text, f"{path.name} refers to {outside}"
