"""heifkit.batch: bulk conversion as an API. The same results on a process pool, a Dask cluster and in
process; worker crashes; atomic, never-clobbering writes; output names; and the conversion rules (sizes,
thumbnails, modes, bit depth, metadata) that the command line shares."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path, PurePath
from typing import Any

import pytest
from PIL import Image

import heifkit
from conftest import CAT, CORPUS, ReadersKilled, noise
from convert_corpus import (
    QUADRANTS,
    display_p3,
    make_folder,
    open_any,
    quadrants,
    reference,
    upright_quadrants,
    xmp_of,
)
from heifkit import batch
from heifkit._write.target import write_file

SERIAL = batch.SerialExecutor()


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("batch") / "in")


def small_inputs(src: Path) -> list[Path]:
    return [src / n for n in ("zpug.heic", "example.avif", "rot1mir0.avif", "rgb10.heif", "rotated.jpg", "broken.heic")]


def comparable(results: list[batch.FileResult], out: Path) -> list[tuple[Any, ...]]:
    """Results with output paths relative to ``out`` and each output's content hash (timings left out)."""
    rows = []
    for r in results:
        outputs = [(str(Path(o).relative_to(out)), hashlib.sha256(Path(o).read_bytes()).hexdigest()) for o in r.outputs]
        rows.append((r.source, r.status, outputs, r.reason, r.notes))
    return rows


def forkserver_pool(workers: int = 2) -> cf.ProcessPoolExecutor:
    return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))


# --- executors -----------------------------------------------------------------------------------------


def test_process_pool_and_dask_cluster_give_the_serial_results(src: Path, tmp_path: Path) -> None:
    inputs = small_inputs(src)
    serial = batch.convert(inputs, tmp_path / "serial", executor=SERIAL, all_images=True)
    expected = comparable(serial, tmp_path / "serial")
    assert [row[1] for row in expected] == ["converted"] * 5 + ["failed"]
    assert len(expected[0][2]) == 3  # zpug: three images, three files

    with forkserver_pool() as pool:
        pooled = batch.convert(inputs, tmp_path / "pool", executor=pool, all_images=True)
    assert comparable(pooled, tmp_path / "pool") == expected
    default = batch.convert(inputs, tmp_path / "default", jobs=2, all_images=True)  # heifkit's own pool
    assert comparable(default, tmp_path / "default") == expected

    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed (make test does)")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert len(client.scheduler_info()["workers"]) == 2
        clustered = batch.convert(inputs, tmp_path / "dask", executor=client.get_executor(), all_images=True)
    assert comparable(clustered, tmp_path / "dask") == expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the reader of a named pipe in /proc")
def test_a_crashing_worker_fails_its_file_and_the_pool_is_replaced(src: Path, tmp_path: Path) -> None:
    """A worker killed on one file (the process that opens ``dies.avif`` is killed as the out-of-memory killer
    would): that file fails, the files in flight beside it are retried alone and converted."""
    inputs = small_inputs(src)[:5]
    inputs[2] = tmp_path / "dies.avif"
    with ReadersKilled(inputs[2]) as killer:
        pool = forkserver_pool()
        try:
            results = batch.convert(inputs, tmp_path / "out", executor=pool)
        finally:
            pool.shutdown()
    statuses = {Path(r.source).name: (r.status, r.reason) for r in results}
    assert statuses.pop("dies.avif") == ("failed", batch._DIED)
    assert killer.killed == 2  # in the first pool, then alone in a new one
    assert {status for status, _ in statuses.values()} == {"converted"}  # in flight with it, then retried alone
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "example.jpg",
        "rgb10.jpg",
        "rotated.jpg",
        "zpug.jpg",
    ]


def test_a_file_retried_after_its_first_run_wrote_it_is_converted(src: Path, tmp_path: Path) -> None:
    """A pool can break after a task wrote its output and before its result came back: retried alone, the
    task finds the output it wrote itself, and the file counts as converted (not skipped as pre-existing)."""
    first = batch.convert([src / "zpug.heic"], tmp_path, executor=SERIAL)
    assert [r.status for r in first] == ["converted"]
    retried = batch.convert([src / "zpug.heic", src / "example.avif"], tmp_path, executor=_Flaky(victim="zpug.heic"))
    assert [r.status for r in retried] == ["converted", "converted"]
    old = time.time() - 3600  # an output from an earlier run stays "skipped" when retried
    os.utime(tmp_path / "zpug.jpg", (old, old))
    again = batch.convert([src / "zpug.heic"], tmp_path, executor=_Flaky(victim="zpug.heic"))
    assert [(r.status, r.reason) for r in again] == [("skipped", "output exists (use --overwrite to replace it)")]


class _Flaky(cf.ProcessPoolExecutor):
    """Runs tasks at once in the calling thread, except that the task of ``victim`` reports the pool broken, as
    a worker crash does; ``broken_on_submit``: the first submit finds the pool already broken."""

    def __init__(self, victim: str = "", broken_on_submit: bool = False) -> None:
        super().__init__(1)
        self.victim, self.broken_on_submit = victim, broken_on_submit

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        if self.broken_on_submit:
            raise cf.process.BrokenProcessPool("broke before this task")
        future: cf.Future[Any] = cf.Future()
        if Path(args[0].source).name == self.victim:
            future.set_exception(cf.process.BrokenProcessPool("a worker died"))
        else:
            future.set_result(fn(*args, **kwargs))
        return future


def test_tasks_beside_a_crash_keep_their_results_and_suspects_are_retried(src: Path, tmp_path: Path) -> None:
    inputs = [src / "example.avif", src / "zpug.heic", src / "rgb10.heif"]
    results = batch.convert(inputs, tmp_path / "a", executor=_Flaky(victim="zpug.heic"))
    assert [r.status for r in results] == ["converted"] * 3  # zpug retried alone on a new pool; the others once
    results = batch.convert(inputs, tmp_path / "b", executor=_Flaky(broken_on_submit=True))
    assert [r.status for r in results] == ["converted"] * 3  # replaced before anything ran


def test_an_executor_that_breaks_and_cannot_be_replaced_fails_the_rest(src: Path, tmp_path: Path) -> None:
    class Broken(cf.Executor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
            future: cf.Future[Any] = cf.Future()
            future.set_exception(cf.BrokenExecutor("gone"))
            return future

    results = batch.convert([src / "example.avif", src / "zpug.heic"], tmp_path, executor=Broken())
    assert [r.status for r in results] == ["failed", "failed"] and "cannot be replaced" in results[0].reason


def test_keep_going_off_stops_after_the_first_failure(src: Path, tmp_path: Path) -> None:
    inputs = [src / "broken.heic", src / "example.avif", src / "zpug.heic"]
    seen: list[str] = []
    results = batch.convert(
        inputs, tmp_path, executor=SERIAL, keep_going=False, on_result=lambda r: seen.append(r.status)
    )
    assert [r.status for r in results] == ["failed", "cancelled", "cancelled"] and sorted(seen) == sorted(
        r.status for r in results
    )
    assert not any(r.ok for r in results) and list(tmp_path.iterdir()) == []
    assert batch.summary(results) == {"converted": 0, "skipped": 0, "failed": 1, "cancelled": 2}


def test_a_thread_pool_works_too(src: Path, tmp_path: Path) -> None:
    with cf.ThreadPoolExecutor(2) as pool:
        results = batch.convert([src / "example.avif", src / "zpug.heic"], tmp_path, executor=pool, format="png")
    assert [r.status for r in results] == ["converted", "converted"]
    assert results[0].to_dict()["outputs"] == [str(tmp_path / "example.png")]


# --- options, names, inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"format": "gif"}, ValueError),
        ({"format": 3}, TypeError),
        ({"quality": 101}, ValueError),
        ({"quality": "90"}, TypeError),
        ({"quality": True}, TypeError),
        ({"lossless": True}, ValueError),  # JPEG
        ({"format": "png", "lossless": True, "quality": 50}, ValueError),
        ({"speed": 5}, ValueError),  # JPEG has no speed
        ({"format": "heic", "speed": 11}, ValueError),
        ({"format": "webp", "chroma": 444}, ValueError),
        ({"chroma": 411}, ValueError),
        ({"format": "png", "bit_depth": 10}, ValueError),
        ({"format": "avif", "bit_depth": 16}, ValueError),
        ({"resize": (0, 10)}, ValueError),
        ({"resize": (None, None)}, ValueError),
        ({"resize": (10, 10), "max_size": 5}, ValueError),
        ({"max_size": 0}, ValueError),
        ({"decode_threads": 0}, ValueError),
        ({"colour": "red"}, TypeError),
    ],
)
def test_bad_options_are_refused_before_anything_runs(tmp_path: Path, options: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        batch.convert([tmp_path / "x.heic"], tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_format_aliases() -> None:
    assert batch.ConvertOptions(format="JPG").format == "jpeg"
    assert batch.ConvertOptions(format="tif").extension == ".tif"
    assert batch.ConvertOptions(format="HEIF").format == "heic"


def test_output_names(tmp_path: Path) -> None:
    sources = [
        "IMG_0001.HEIC",
        "photo.JPEG",
        "a.b.heic",
        "noext",
        batch.Source(Path("d/x.heic"), PurePath("sub/x.heic")),
        "other/IMG_0001.heic",  # same output as the first, without case
    ]
    jobs = batch.plan(sources, tmp_path, batch.ConvertOptions())
    targets = [j.target if isinstance(j, batch.Job) else j.status for j in jobs]
    assert targets[:5] == [
        str(tmp_path / n) for n in ("IMG_0001.jpg", "photo.JPEG", "a.b.jpg", "noext.jpg", "sub/x.jpg")
    ]
    clash = jobs[5]
    assert isinstance(clash, batch.FileResult) and clash.status == "failed" and "IMG_0001.HEIC" in clash.reason


def test_expand_inputs(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for name in (
        "a.heic",
        "sub/b.JPG",
        "sub/deeper/c.avif",
        "notes.txt",
        ".hidden.heic",
        ".cache/d.heic",
        "out/e.heic",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    sources, errors = batch.expand_inputs([root], recursive=True, exclude=root / "out")
    assert [(str(s.path.relative_to(root)), str(s.name)) for s in sources] == [
        ("a.heic", "a.heic"),
        ("sub/b.JPG", "sub/b.JPG"),
        ("sub/deeper/c.avif", "sub/deeper/c.avif"),
    ]
    assert errors == []
    _, errors = batch.expand_inputs([root])
    assert [e.reason for e in errors] == ["is a folder (use -r for the images in it)"]
    files, errors = batch.expand_inputs(
        [root / "notes.txt", root / "a.heic", root / "a.heic", str(root / "**" / "*.avif")]
    )
    assert [s.name for s in files] == [PurePath("notes.txt"), PurePath("a.heic"), PurePath("c.avif")] and errors == []
    _, errors = batch.expand_inputs([str(root / "*.gif")])
    assert errors[0].reason == "no file matches this pattern"


# --- writing -------------------------------------------------------------------------------------------


def test_writes_are_atomic_and_never_clobber(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer conversion uses (``_write.target.write_file``, HeifFile.save's too) without ``overwrite``."""
    target = tmp_path / "sub" / "out.jpg"
    target.parent.mkdir()  # conversion makes the output's folder (tests/test_write_file.py), the writer does not
    assert write_file(target, lambda f: f.write(b"one"), overwrite=False)
    assert target.read_bytes() == b"one" and target.stat().st_mode & 0o777 == 0o666 & ~_umask()

    def racer(f: Any) -> None:  # another program takes the name while we write
        f.write(b"two")
        target.write_bytes(b"theirs")

    target.unlink()
    assert not write_file(target, racer, overwrite=False) and target.read_bytes() == b"theirs"
    assert write_file(target, lambda f: f.write(b"three"), overwrite=True) and target.read_bytes() == b"three"

    def failing(f: Any) -> None:
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_file(target, failing, overwrite=True)
    assert target.read_bytes() == b"three"

    def no_links(*args: Any) -> None:
        raise PermissionError("no hard links here")

    monkeypatch.setattr(os, "link", no_links)  # FAT and some network shares: check, then rename
    assert not write_file(target, lambda f: f.write(b"four"), overwrite=False)
    assert write_file(tmp_path / "sub" / "new.jpg", lambda f: f.write(b"five"), overwrite=False)
    assert sorted(p.name for p in target.parent.iterdir()) == ["new.jpg", "out.jpg"]  # no temporary file left


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_existing_outputs(src: Path, tmp_path: Path) -> None:
    (tmp_path / "zpug-2.jpg").write_bytes(b"kept")
    [result] = batch.convert([src / "zpug.heic"], tmp_path, executor=SERIAL, all_images=True)
    assert result.status == "converted" and result.notes == ["kept 1 existing output(s)"]
    assert result.outputs == [str(tmp_path / "zpug-1.jpg"), str(tmp_path / "zpug-3.jpg")]
    assert (tmp_path / "zpug-2.jpg").read_bytes() == b"kept"
    [again] = batch.convert([src / "zpug.heic"], tmp_path, executor=SERIAL, all_images=True)
    assert again.status == "skipped" and again.ok and len(again.outputs) == 3 and "--overwrite" in again.reason


# --- conversion rules ----------------------------------------------------------------------------------


def test_resizing_uses_embedded_thumbnails_when_they_suffice(src: Path, tmp_path: Path) -> None:
    results = batch.convert([src / "arrow.heic", CAT], tmp_path, executor=SERIAL, max_size=100)
    assert [r.notes for r in results] == [
        ["decoded the 240x320 embedded thumbnail"],  # the photo itself is 12 MP
        ["decoded the 320x212 embedded thumbnail"],  # not 1616x1080, not the 10-bit 12 MP image
    ]
    arrow = open_any(tmp_path / "arrow.jpg")
    assert arrow.size == (75, 100) and quadrants(arrow) == quadrants(reference(src / "arrow.heic"))
    assert open_any(tmp_path / "pheif_cat.jpg").size == (100, 67)
    [big] = batch.convert([src / "arrow.heic"], tmp_path / "big", executor=SERIAL, max_size=1000)
    assert big.notes == []  # 240x320 is too small for 750x1000: the image is decoded


def test_big_jpegs_are_decoded_at_a_reduced_size(tmp_path: Path) -> None:
    big = upright_quadrants().resize((1600, 1200))
    big.save(tmp_path / "big.jpg", quality=90)
    [result] = batch.convert([tmp_path / "big.jpg"], tmp_path / "out", executor=SERIAL, max_size=200, format="png")
    assert result.notes == ["decoded at 400x300 (JPEG draft)"]
    assert open_any(tmp_path / "out" / "big.png").size == (200, 150)


def test_heif_to_heif_keeps_ten_bit_samples(src: Path, tmp_path: Path) -> None:
    batch.convert([src / "rgb10.heif"], tmp_path, executor=SERIAL, format="avif", lossless=True)
    out = heifkit.open_heif(tmp_path / "rgb10.avif", convert_hdr_to_8bit=False, hdr_to_16bit=False)
    source = heifkit.open_heif(src / "rgb10.heif", convert_hdr_to_8bit=False, hdr_to_16bit=False)
    assert out.info["bit_depth"] == 10 and out.mode == "RGB;10"
    assert bytes(out.data) == bytes(source.data)  # 10-bit samples, exactly (not through 8 bits)
    batch.convert([src / "rgb10.heif"], tmp_path / "eight", executor=SERIAL, format="heic", bit_depth=8)
    assert heifkit.open_heif(tmp_path / "eight" / "rgb10.heif").info["bit_depth"] == 8


def test_lossless_outputs_are_exact(tmp_path: Path) -> None:
    picture = noise((48, 32), "RGBA")
    picture.save(tmp_path / "noise.png")
    for fmt in ("heic", "webp", "tiff"):
        [result] = batch.convert([tmp_path / "noise.png"], tmp_path / fmt, executor=SERIAL, format=fmt, lossless=True)
        assert result.status == "converted", result.reason
        out = open_any(Path(result.outputs[0]))
        assert out.mode == "RGBA" and out.tobytes() == picture.tobytes(), fmt


def test_metadata_is_kept_per_format(src: Path, tmp_path: Path) -> None:
    for fmt in ("tiff", "webp", "avif"):
        [result] = batch.convert([src / "rotated.jpg"], tmp_path, executor=SERIAL, format=fmt)
        out = open_any(Path(result.outputs[0]))
        exif = out.getexif()
        assert exif[271] == "Maker" and exif.get(274) in (1, None), fmt  # HEIF: orientation 1 in EXIF
        assert exif.get_ifd(0x8769).get(36867) == "2024:05:06 07:08:09", fmt  # TIFF: sub-IFDs kept (uncompressed)
        assert out.info["icc_profile"] == display_p3() and b"Orientation" not in (xmp_of(out) or b"x"), fmt
        assert xmp_of(out), fmt
        assert quadrants(out) == quadrants(upright_quadrants()), fmt


def test_tiff_inputs_keep_their_exif_and_turn_upright(tmp_path: Path) -> None:
    tags = Image.Exif()
    tags[271], tags[274] = "Scanner", 6  # the TIFF's own orientation tag
    tags.get_ifd(0x8769)[36867] = "2001:02:03 04:05:06"
    stored = Image.Exif()
    stored.load(tags.tobytes())  # as in a real file: the Exif IFD behind its pointer tag
    upright_quadrants().transpose(Image.Transpose.ROTATE_90).save(tmp_path / "scan.tif", exif=stored)
    [result] = batch.convert([tmp_path / "scan.tif"], tmp_path / "out", executor=SERIAL)
    out = open_any(Path(result.outputs[0]))
    assert quadrants(out) == quadrants(upright_quadrants())
    exif = out.getexif()
    assert (exif[271], exif.get(274, 1), exif.get_ifd(0x8769)[36867]) == ("Scanner", 1, "2001:02:03 04:05:06")
    assert 256 not in exif and 273 not in exif  # the TIFF's layout tags (width, strip offsets) are not EXIF


def test_heif_metadata_items_are_kept_or_stripped(tmp_path: Path) -> None:
    source = CORPUS / "pheif_L_exif_xmp_iptc.heic"
    batch.convert([source], tmp_path / "kept", executor=SERIAL, format="heic")
    kept = heifkit.open_heif(tmp_path / "kept" / source.name)
    assert kept.info["exif"] and kept.info.get("xmp") and [m["type"] for m in kept.info["metadata"]] == ["iptc"]
    zpug = CORPUS / "pheif_zPug_3.heic"
    batch.convert([source, zpug], tmp_path / "gone", executor=SERIAL, format="heic", strip=True, all_images=True)
    gone = heifkit.open_heif(tmp_path / "gone" / source.name)
    assert gone.info["exif"] is None and "xmp" not in gone.info and gone.info["metadata"] == []
    assert all("icc_profile" not in im.info for im in heifkit.open_heif(tmp_path / "gone" / zpug.name))


def test_long_exif_loses_its_maker_note_in_jpeg(tmp_path: Path) -> None:
    tags = Image.Exif()
    tags[271] = "Maker"
    tags.get_ifd(0x8769)[0x927C] = b"\x01" * 70_000  # a maker note bigger than a JPEG segment
    Image.new("RGB", (8, 8)).save(tmp_path / "long.png", exif=tags.tobytes())
    tags.get_ifd(0x8769).clear()
    tags[270] = "x" * 70_000  # a description: nothing to drop but everything
    Image.new("RGB", (8, 8)).save(tmp_path / "huge.png", exif=tags.tobytes())
    long, huge = batch.convert([tmp_path / "long.png", tmp_path / "huge.png"], tmp_path / "out", executor=SERIAL)
    assert long.notes == ["EXIF maker note dropped: the EXIF did not fit in a JPEG segment"]
    exif = open_any(tmp_path / "out" / "long.jpg").getexif()
    assert exif[271] == "Maker" and 0x927C not in exif.get_ifd(0x8769)
    assert huge.status == "converted" and huge.notes[0].startswith("EXIF dropped")


def test_to_srgb_says_what_it_cannot_convert(tmp_path: Path) -> None:
    [result] = batch.convert([CORPUS / "libavif_colors_hdr_p3.avif"], tmp_path, executor=SERIAL, to_srgb=True)
    assert result.status == "converted"
    assert result.notes == ["to-srgb: no ICC profile, colours left as they are (NCLX colour is not converted)"]


def test_the_primary_image_is_the_default(src: Path, tmp_path: Path) -> None:
    batch.convert([src / "zpug.heic"], tmp_path, executor=SERIAL, format="png")
    assert open_any(tmp_path / "zpug.png").mode == "L"  # image 1 of 3 is primary


def test_rgba_and_grey_modes_for_each_format(tmp_path: Path) -> None:
    shutil.copyfile(CORPUS / "pheif_RGBA_10__128x128.heif", tmp_path / "rgba.heif")
    modes = {}
    for fmt in ("jpeg", "png", "webp", "tiff"):
        [result] = batch.convert([tmp_path / "rgba.heif"], tmp_path / fmt, executor=SERIAL, format=fmt)
        modes[fmt] = open_any(Path(result.outputs[0])).mode
    assert modes == {"jpeg": "RGB", "png": "RGBA", "webp": "RGBA", "tiff": "RGBA"}
    grey = CORPUS / "pheif_L_10__128x128.heif"
    [eight] = batch.convert([grey], tmp_path / "g8", executor=SERIAL, format="tiff", bit_depth=8)
    [sixteen] = batch.convert([grey], tmp_path / "g16", executor=SERIAL, format="tiff")
    wide, narrow = open_any(Path(sixteen.outputs[0])), open_any(Path(eight.outputs[0]))
    assert (wide.mode, narrow.mode) == ("I;16", "L")
    high = wide.tobytes()[1::2]  # the high bytes of the little-endian 16-bit samples
    assert max(abs(a - b) for a, b in zip(high, narrow.tobytes(), strict=True)) <= 1  # scaled, not clipped


def test_quadrant_colours_are_distinct() -> None:
    assert len({tuple(round(c / 40) for c in q) for q in QUADRANTS}) == 4  # the orientation checks can fail
