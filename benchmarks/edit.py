"""Editing without re-encoding: a metadata edit and a lossless rotate, copied as stored against re-encoded.

Usage: python benchmarks/edit.py [--runs N] [--big-runs M] [--quick]

For pug.heic (12 MP, 8x6 grid) and the 200 MP photo (24x32 grid), each way opens the file, makes the edit and
saves to a new file in a scratch folder (the page cache warm); the time covers all three.

* metadata edit: the capture time in the EXIF (DateTimeOriginal, and DateTime/DateTimeDigitized where they hold
  the same string) is set to another date of the same length in ``info["exif"]``, then the file is saved:
  heifkit copies the coded images (``save(out)``), heifkit ``save(out, reencode=True)`` encodes them again at
  the default quality, pillow_heif (``open_heif``, ``info["exif"]``, ``save``) always encodes again.
* lossless rotate (90 degrees clockwise, Pillow's ROTATE_270): heifkit ``f[0] = f[0].transpose(...)`` and
  ``save(out)`` (a new ``irot``, no decode), the same with ``reencode=True``, and pillow_heif's way: decode into
  Pillow, ``transpose``, ``from_pillow(...).save(out)``.

Each round runs every way once, in alternating order, so that a busy machine slows each way alike; a row's time
is the median of its rounds, and "re-encode / copy" the median of the per-round ratios of its time to the copy's
of the same round. The 200 MP re-encodes take minutes each: they run in the first M rounds only (``--big-runs``),
``--quick`` leaves out pillow_heif's. Then each output is decoded with heifkit and compared with the source's
decode (rotated with Pillow for the rotate rows): pixels that differ in any channel, and the largest difference.
A copy that changes a pixel makes the run fail (exit status 1).

Prints a markdown table (stdout) and the progress (stderr).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL
import pillow_heif
from PIL import Image

import heifkit

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("HEIFKIT_CORPUS", REPO / "tests" / "corpus"))
PUG = CORPUS / "pheif_pug.heic"  # 4032x3024 iPhone photo, 8x6 grid of 512 px tiles, depth image, gain map
BIG = CORPUS / "pheif_200MP.heic"  # 12240x16320 shown (EXIF orientation 6 and irot), 24x32 grid, gain map
ROTATE = Image.Transpose.ROTATE_270  # counter-clockwise 270 degrees: a quarter turn clockwise
NEW_TIME = b"2027:01:02 03:04:05"

Image.MAX_IMAGE_PIXELS = None  # the 200 MP photo through Pillow (pillow_heif's rotate)


def capture_time(exif: bytes) -> bytes:
    """The EXIF DateTimeOriginal string (bytes, no NUL)."""
    parsed = Image.Exif()
    parsed.load(exif)
    value = parsed.get_ifd(0x8769).get(0x9003)  # Exif IFD, DateTimeOriginal
    if not isinstance(value, str) or len(value) != len(NEW_TIME):
        raise RuntimeError(f"no DateTimeOriginal of the usual form in the EXIF: {value!r}")
    return value.encode("ascii")


def edited(exif: bytes, old: bytes) -> bytes:
    """``exif`` with the capture time ``old`` replaced by NEW_TIME (same length: no offset moves)."""
    return exif.replace(old, NEW_TIME)


# --- the ways ---------------------------------------------------------------------------------------------


def heifkit_edit(src: Path, old: bytes, reencode: bool) -> Callable[[Path], None]:
    def run(out: Path) -> None:
        f = heifkit.open_heif(src)
        f.info["exif"] = edited(f.info["exif"], old)
        if reencode:
            f.save(out, reencode=True)
        else:
            f.save(out)

    return run


def pillow_heif_edit(src: Path, old: bytes) -> Callable[[Path], None]:
    def run(out: Path) -> None:
        f = pillow_heif.open_heif(src)
        f.info["exif"] = edited(f.info["exif"], old)
        f.save(out)

    return run


def heifkit_rotate(src: Path, reencode: bool) -> Callable[[Path], None]:
    def run(out: Path) -> None:
        f = heifkit.open_heif(src)
        f[0] = f[0].transpose(ROTATE)
        if reencode:
            f.save(out, reencode=True)
        else:
            f.save(out)

    return run


def pillow_heif_rotate(src: Path) -> Callable[[Path], None]:
    def run(out: Path) -> None:
        rotated = pillow_heif.open_heif(src).to_pillow().transpose(ROTATE)
        pillow_heif.from_pillow(rotated).save(out)

    return run


@dataclass
class Way:
    """One row of the table: a way of making the edit, its timings and what it wrote."""

    file: Path
    task: str  # "metadata edit" or "rotate"
    how: str
    run: Callable[[Path], None]
    rounds: int  # rounds it takes part in
    copy: bool = False  # the copy the other ways of the same file and task are measured against
    times: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # per round: this time / the copy's
    out: Path | None = None
    size: int = 0
    changed: int = 0
    max_diff: int = 0
    note: str = ""


def ways(runs: int, big_runs: int, quick: bool) -> list[Way]:
    found = []
    for src in (PUG, BIG):
        slow = runs if src == PUG else big_runs
        old = capture_time(heifkit.open_heif(src).info["exif"])
        found += [
            Way(src, "metadata edit", "heifkit, copied", heifkit_edit(src, old, False), runs, copy=True),
            Way(src, "metadata edit", "heifkit, reencode=True", heifkit_edit(src, old, True), slow),
        ]
        if src == PUG or not quick:
            found.append(Way(src, "metadata edit", "pillow_heif (re-encodes)", pillow_heif_edit(src, old), slow))
        found += [
            Way(src, "rotate", "heifkit transpose, copied", heifkit_rotate(src, False), runs, copy=True),
            Way(src, "rotate", "heifkit transpose, reencode=True", heifkit_rotate(src, True), slow),
        ]
        if src == PUG or not quick:
            found.append(Way(src, "rotate", "pillow_heif via Pillow", pillow_heif_rotate(src), slow))
    return found


# --- timing -----------------------------------------------------------------------------------------------


def warm_up(scratch: Path, rows: list[Way]) -> None:
    """Load both libraries' encoder plugins (a tiny encode each) and read each file once into the page cache."""
    tiny = Image.new("RGB", (64, 64), (10, 120, 200))
    heifkit.from_pillow(tiny).save(scratch / "tiny_heifkit.heic")
    pillow_heif.from_pillow(tiny).save(scratch / "tiny_pillow_heif.heic")
    for way in rows:
        if way.copy:
            way.run(scratch / "warm-up.heic")


def time_rounds(scratch: Path, rows: list[Way]) -> None:
    """Every round runs each way still due, in alternating order; the ratios pair each way with its copy."""
    for r in range(max(way.rounds for way in rows)):
        due = [way for way in rows if way.rounds > r]
        if r % 2:
            due.reverse()
        taken: dict[int, float] = {}
        for way in due:
            way.out = scratch / f"{rows.index(way):02d}-{way.file.stem}.heic"
            start = time.perf_counter()
            way.run(way.out)
            taken[id(way)] = time.perf_counter() - start
            way.times.append(taken[id(way)])
            print(f"  round {r + 1}: {way.file.name}, {way.task}, {way.how}: {taken[id(way)]:.3f} s", file=sys.stderr)
        for way in due:
            copy = next(c for c in rows if c.copy and c.file == way.file and c.task == way.task)
            if not way.copy and id(copy) in taken:
                way.ratios.append(taken[id(way)] / taken[id(copy)])


# --- what was written -------------------------------------------------------------------------------------


def pixels(path: Path) -> np.ndarray:
    """The primary image as shown, decoded by heifkit (H x W x 3 uint8)."""
    return np.asarray(heifkit.open_heif(path)[0])


def differences(got: np.ndarray, want: np.ndarray) -> tuple[int, int]:
    """Pixels that differ in any channel, and the largest difference, a band of rows at a time."""
    changed, worst = 0, 0
    for top in range(0, want.shape[0], 1024):
        diff = np.abs(got[top : top + 1024].astype(np.int16) - want[top : top + 1024].astype(np.int16))
        changed += int(np.count_nonzero(diff.max(axis=-1)))
        worst = max(worst, int(diff.max()))
    return changed, worst


def check_outputs(rows: list[Way]) -> None:
    for src in dict.fromkeys(way.file for way in rows):
        source = pixels(src)
        rotated = np.asarray(Image.fromarray(source).transpose(ROTATE))
        for way in (w for w in rows if w.file == src and w.out is not None):
            assert way.out is not None
            way.size = way.out.stat().st_size
            written = heifkit.open_heif(way.out)
            if way.task == "metadata edit" and NEW_TIME not in written.info["exif"]:
                raise RuntimeError(f"{way.how} did not write the edited EXIF of {src.name}")
            want = rotated if way.task == "rotate" else source
            got = pixels(way.out)
            if got.shape != want.shape:
                # pillow_heif's HeifFile.save hands the EXIF orientation to libheif's encoder as a rotation,
                # to pixels that were rotated by it when read: the photo is shown turned once more.
                turn = Image.Exif()
                turn.load(written.info["exif"])
                orientation = turn.get(0x0112, 1)
                way.note = f"shown {got.shape[1]}x{got.shape[0]}, turned by EXIF orientation {orientation} again"
                transposes = {6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90}
                if orientation not in transposes:
                    raise RuntimeError(f"{way.how}: {way.note}, and not a quarter turn")
                want = np.asarray(Image.fromarray(want).transpose(transposes[orientation]))
            way.changed, way.max_diff = differences(got, want)
            print(f"  checked {src.name}, {way.task}, {way.how}", file=sys.stderr)
            del got


def table(rows: list[Way]) -> str:
    lines = [
        "| file | edit | how | runs | time (median) | output bytes | pixels changed | max diff | re-encode / copy |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for way in rows:
        total = int(np.prod(pixels_shape(way.file)))
        seconds = statistics.median(way.times)
        shown = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
        changed = f"{way.changed:,} ({100 * way.changed / total:.1f} %)" if way.changed else "0"
        ratio = "" if way.copy else f"{statistics.median(way.ratios):,.0f}x"
        lines.append(
            f"| {way.file.name} | {way.task} | {way.how} | {len(way.times)} | {shown} | {way.size:,} | {changed} "
            f"| {way.max_diff} | {ratio} |"
        )
    notes = [f"- {way.how}, {way.file.name}: {way.note}" for way in rows if way.note]
    return "\n".join(lines + ([""] + notes if notes else []))


def pixels_shape(path: Path) -> tuple[int, int]:
    width, height = heifkit.open_heif(path)[0].size
    return height, width


def acceptance(rows: list[Way]) -> tuple[bool, str]:
    """The target: a metadata edit of pug.heic under 50 ms and at least 50x faster than re-encoding it."""
    edit = [w for w in rows if w.file == PUG and w.task == "metadata edit"]
    copy = next(w for w in edit if w.copy)
    seconds = statistics.median(copy.times)
    quickest = min(statistics.median(w.ratios) for w in edit if not w.copy)
    met = seconds < 0.050 and quickest >= 50
    return met, (
        f"metadata edit of {PUG.name}: {seconds * 1000:.1f} ms (target < 50 ms), "
        f"{quickest:,.0f}x faster than the quickest re-encode (target >= 50x): {'met' if met else 'NOT met'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="rounds for every way but the 200 MP re-encodes (5)")
    parser.add_argument("--big-runs", type=int, default=1, help="rounds for the 200 MP re-encodes (1)")
    parser.add_argument("--quick", action="store_true", help="leave out pillow_heif's 200 MP re-encodes")
    args = parser.parse_args()
    if args.runs < 1 or args.big_runs < 1:
        parser.error("--runs and --big-runs must be at least 1")
    load = os.getloadavg()[0]
    print(
        f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}, load average {load:.2f}"
    )
    print(
        f"heifkit {heifkit.__version__} (libheif {heifkit.libheif_version()}), "
        f"pillow_heif {pillow_heif.__version__} (libheif {pillow_heif.libheif_version()}), "
        f"Pillow {PIL.__version__}"
    )
    rows = ways(args.runs, min(args.big_runs, args.runs), args.quick)
    with tempfile.TemporaryDirectory(prefix="heifkit-edit-") as scratch:
        warm_up(Path(scratch), rows)
        time_rounds(Path(scratch), rows)
        check_outputs(rows)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print()
    print(table(rows))
    met, verdict = acceptance(rows)
    print()
    print(verdict)
    copies_changed = [f"{w.file.name} {w.task}" for w in rows if w.copy and (w.changed or w.max_diff)]
    if copies_changed:
        print(f"FAILED: a copy changed pixels: {', '.join(copies_changed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
