"""One writer for every file heifkit writes: ``_write.target.write_file``, behind ``HeifFile.save(path)``
(replacing) and bulk conversion (``heifkit.batch``, ``heifkit convert``: never clobbering unless ``overwrite``).

Both go through it, and nothing else in the package renames, links or makes temporary files; a write that fails
(a full disk, a failed rename, a writer that raises) leaves no temporary file and the target as it was, for
both; ``overwrite`` replaces a conversion's output the way a save replaces a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import resource
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import heifkit
from conftest import LOSSLESS, noise
from heifkit import batch
from heifkit._convert import formats
from heifkit._write import target

ORIGINAL = b"original content, not an image"
SERIAL = batch.SerialExecutor()
PACKAGE = Path(heifkit.__file__).resolve().parent


def _pixels() -> np.ndarray:
    # incompressible and big enough that every output is well over the file size limit of the disk-full case
    return np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)


def _heif() -> heifkit.HeifFile:
    return heifkit.from_bytes("RGB", (256, 256), _pixels().tobytes())


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A folder with a PNG and a HEIC to convert."""
    folder = tmp_path / "in"
    folder.mkdir()
    noise((256, 256)).save(folder / "noise.png")
    _heif().save(folder / "small.heic", quality=60)
    return folder


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Every ``write_file`` call, as (path, overwrite), the real writer still doing the work."""
    seen: list[tuple[str, bool]] = []
    real = target.write_file

    def spy(fp: Any, write: target.Writer, *, overwrite: bool = True) -> bool:
        seen.append((os.fspath(fp), overwrite))
        return real(fp, write, overwrite=overwrite)

    monkeypatch.setattr(target, "write_file", spy)
    return seen


# --- one writer ---------------------------------------------------------------------------------------


def test_saving_to_a_path_goes_through_write_file(tmp_path: Path, calls: list[tuple[str, bool]]) -> None:
    _heif().save(tmp_path / "a.heic", **LOSSLESS)
    heifkit.encode("RGB", (256, 256), _pixels().tobytes(), str(tmp_path / "b.avif"))
    with open(tmp_path / "c.heic", "wb") as stream:  # streams are written as they are: no file to replace
        _heif().save(stream)
    assert calls == [(str(tmp_path / "a.heic"), True), (str(tmp_path / "b.avif"), True)]
    assert np.array_equal(np.asarray(heifkit.open_heif(tmp_path / "a.heic")), _pixels())


@pytest.mark.parametrize(
    ("source", "options", "output"),
    [
        ("noise.png", {"format": "jpeg"}, "noise.jpg"),  # Pillow writes
        ("small.heic", {"format": "avif"}, "small.avif"),  # heifkit alone, 10/12-bit samples kept
        ("noise.png", {"format": "heic"}, "noise.heic"),  # frames made by Pillow, written by heifkit
    ],
    ids=["png-to-jpeg", "heic-to-avif", "png-to-heic"],
)
@pytest.mark.parametrize("overwrite", [False, True], ids=["never-clobber", "overwrite"])
def test_batch_conversion_goes_through_write_file(
    sources: Path, tmp_path: Path, calls: list[tuple[str, bool]], source: str, options: dict[str, Any], output: str,
    overwrite: bool,
) -> None:  # fmt: skip
    out = tmp_path / "out" / "sub"  # a folder that does not exist yet: conversion makes it
    [result] = batch.convert([sources / source], out, executor=SERIAL, overwrite=overwrite, **options)
    assert result.status == "converted", result.reason
    assert calls == [(str(out / output), overwrite)]
    assert (out / output).stat().st_size > 0


def test_nothing_else_renames_links_or_makes_temporary_files() -> None:
    """The atomic-write machinery lives in _write/target.py only (formats.write_atomic was a second copy)."""
    pattern = re.compile(r"\bos\.(replace|rename|renames|link)\(|\btempfile\b|\bmkstemp\b|O_EXCL")
    found = {
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if pattern.search(path.read_text())
    }  # fmt: skip
    assert found == {os.path.join("_write", "target.py")}
    assert not hasattr(formats, "write_atomic")


# --- failed writes: no temporary file, the target as it was ---------------------------------------------


@contextlib.contextmanager
def _disk_full() -> Iterator[None]:
    """Writes past 4 KB fail with EFBIG, as on a full disk, inside the block only (RLIMIT_FSIZE; CPython ignores
    SIGXFSZ, which would otherwise kill the process). The limit is the whole process's: pytest's own output, a
    file too once redirected, must not be written while it holds, so it never spans a test's report."""
    if signal.getsignal(signal.SIGXFSZ) != signal.SIG_IGN:
        pytest.skip("SIGXFSZ is not ignored")
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, limits[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)


def _renames_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The finished temporary file cannot be renamed or linked into place."""

    def fail(*args: Any) -> None:
        raise OSError(errno.EIO, "injected rename failure")

    monkeypatch.setattr(os, "replace", fail)
    monkeypatch.setattr(os, "link", fail)


def _save(out: Path, sources: Path) -> str:
    try:
        _heif().save(out / "noise.heic", **LOSSLESS)
    except OSError as exc:
        return str(exc)
    return "saved"


def _convert(overwrite: bool) -> Callable[[Path, Path], str]:
    def run(out: Path, sources: Path) -> str:
        [result] = batch.convert([sources / "noise.png"], out, executor=SERIAL, format="heic", overwrite=overwrite)
        return result.reason if result.status == "failed" else result.status

    return run


USERS = {"HeifFile.save": _save, "batch": _convert(False), "batch --overwrite": _convert(True)}


# (user, whether the target exists): without --overwrite an existing output is skipped, not written
CASES = [(user, existing) for user in sorted(USERS) for existing in (False, True) if user != "batch" or not existing]


@pytest.mark.parametrize("failure", ["disk full", "rename fails"])
@pytest.mark.parametrize(("user", "existing"), CASES, ids=[f"{u}-{'existing' if e else 'new'}" for u, e in CASES])
def test_a_failed_write_leaves_no_temporary_file_and_the_target_as_it_was(
    sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user: str, existing: bool, failure: str,
) -> None:  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    if existing:
        (out / "noise.heic").write_bytes(ORIGINAL)
        os.chmod(out / "noise.heic", 0o640)
    before = sorted(p.name for p in out.iterdir())
    if failure == "disk full":
        with _disk_full():
            outcome = USERS[user](out, sources)
    else:
        _renames_fail(monkeypatch)
        outcome = USERS[user](out, sources)
    monkeypatch.undo()
    expected = "File too large" if failure == "disk full" else "injected rename failure"
    assert expected in outcome
    assert sorted(p.name for p in out.iterdir()) == before  # no temporary file, no new file
    if existing:
        assert (out / "noise.heic").read_bytes() == ORIGINAL
        assert stat.S_IMODE(os.stat(out / "noise.heic").st_mode) == 0o640


def test_a_failing_pillow_writer_leaves_the_output_as_it_was(
    sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An encoder that fails after writing part of the file: the temporary file is removed."""
    (tmp_path / "noise.jpg").write_bytes(ORIGINAL)

    def half(image: Any, fmt: str, params: dict[str, Any], f: Any) -> None:
        f.write(b"half a JPEG")
        raise OSError("encoder failed")

    monkeypatch.setattr(formats, "_save_pillow", half)
    [result] = batch.convert([sources / "noise.png"], tmp_path, executor=SERIAL, overwrite=True)
    assert result.status == "failed" and "encoder failed" in result.reason
    assert (tmp_path / "noise.jpg").read_bytes() == ORIGINAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "noise.jpg"]


def test_a_failing_writer_leaves_a_file_written_in_place_untouched(tmp_path: Path) -> None:
    """A file with another hard link is written in place, but only once the writer has finished."""
    path, other = tmp_path / "a.jpg", tmp_path / "b.jpg"
    path.write_bytes(ORIGINAL)
    os.link(path, other)

    def failing(f: Any) -> None:
        f.write(b"half")
        raise ValueError("encoder failed")

    with pytest.raises(ValueError, match="encoder failed"):
        target.write_file(path, failing)
    assert path.read_bytes() == other.read_bytes() == ORIGINAL
    assert target.write_file(path, lambda f: f.write(b"new"))
    assert os.path.samefile(path, other) and other.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "b.jpg"]


# --- never clobbering, and what overwrite keeps ----------------------------------------------------------


def test_without_overwrite_a_dangling_symlink_is_a_taken_name(tmp_path: Path) -> None:
    """Like open(path, "xb"): the link is not followed to create the file it points to."""
    link = tmp_path / "out.jpg"
    link.symlink_to(tmp_path / "elsewhere.jpg")
    called: list[bool] = []
    assert not target.write_file(link, lambda f: called.append(True), overwrite=False)
    assert called == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"] and link.is_symlink()


def test_overwrite_keeps_an_outputs_mode_and_symlink(sources: Path, tmp_path: Path) -> None:
    """A conversion with overwrite replaces an output as HeifFile.save replaces a file (docs/saving.md)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "real.jpg").write_bytes(ORIGINAL)
    os.chmod(out / "real.jpg", 0o640)
    (out / "noise.jpg").symlink_to("real.jpg")
    [result] = batch.convert([sources / "noise.png"], out, executor=SERIAL, overwrite=True)
    assert result.status == "converted", result.reason
    assert (out / "noise.jpg").is_symlink() and os.readlink(out / "noise.jpg") == "real.jpg"
    assert (out / "real.jpg").read_bytes()[:2] == b"\xff\xd8"  # a JPEG now
    assert stat.S_IMODE(os.stat(out / "real.jpg").st_mode) == 0o640
