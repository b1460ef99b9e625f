"""The ``heifkit`` command line as users run it: the installed console script in a subprocess, over a temporary
folder of corpus files (HEIC with irot + ICC + EXIF orientation, AVIF with irot/imir, multi-image, 10-bit, a
JPEG with EXIF orientation 6 and an ICC profile, a truncated HEIC)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from PIL import Image

import heifkit
from conftest import CORPUS, ZPUG, ReadersKilled
from convert_corpus import (
    JPEG_SIZE,
    difference,
    display_p3,
    make_folder,
    open_any,
    quadrants,
    reference,
    schema_errors,
    upright_quadrants,
    xmp_of,
)
from heifkit import fileinfo
from subproc import child_env

pytestmark = pytest.mark.slow  # the console script, in a child process per test

SCRIPT = Path(sys.executable).with_name("heifkit")


def heifkit_cli(*args: str | Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the console script with ``args``; captured text output (pipes: not a terminal)."""
    assert SCRIPT.is_file(), f"console script not installed at {SCRIPT} (make install)"
    return subprocess.run(
        [str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=180, env=child_env(**env), cwd=cwd
    )


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("cli") / "in")


def test_console_script_and_module_run(tmp_path: Path) -> None:
    result = heifkit_cli("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"heifkit {heifkit.__version__}"
    module = subprocess.run(
        [sys.executable, "-m", "heifkit", "--version"], capture_output=True, text=True, env=child_env(), cwd=tmp_path
    )
    assert module.returncode == 0 and module.stdout.strip() == result.stdout.strip()
    converted = subprocess.run(  # its workers import heifkit.__main__ again, which must not run the command
        [sys.executable, "-m", "heifkit", "convert", str(ZPUG), str(CORPUS / "libheif_example.avif"), "-o", "out"],
        capture_output=True, text=True, env=child_env(), cwd=tmp_path,
    )  # fmt: skip
    assert converted.returncode == 0 and converted.stdout == "2 converted, 0 skipped, 0 failed\n", converted.stderr
    assert heifkit_cli(cwd=tmp_path).returncode == 2  # no command: usage


def test_heic_avif_and_rotated_jpeg_to_jpeg_are_upright_with_exif_and_icc(src: Path, tmp_path: Path) -> None:
    names = ["arrow.heic", "rot1mir0.avif", "example.avif", "rotated.jpg"]
    result = heifkit_cli("convert", *[src / n for n in names], "-o", tmp_path / "out", "--format", "jpeg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "4 converted, 0 skipped, 0 failed"

    arrow = open_any(tmp_path / "out" / "arrow.jpg")
    assert arrow.format == "JPEG" and arrow.size == (3024, 4032)  # libheif's irot 270 applied, once
    assert difference(arrow, reference(src / "arrow.heic")) < 4
    exif = arrow.getexif()
    assert exif[274] == 1 and exif[271] == "Apple"  # orientation reset: viewers do not turn it again
    assert exif.get_ifd(0x8769)[36867] == "2018:07:31 14:52:07"
    assert arrow.info["icc_profile"] == display_p3()

    for name in ("rot1mir0", "example"):
        out = open_any(tmp_path / "out" / f"{name}.jpg")
        expected = reference(src / f"{name}.avif")
        assert out.size == expected.size and difference(out, expected) < 4

    jpeg = open_any(tmp_path / "out" / "rotated.jpg")
    assert jpeg.size == JPEG_SIZE and quadrants(jpeg) == quadrants(upright_quadrants())
    exif = jpeg.getexif()
    assert (exif[274], exif[271], exif[272]) == (1, "Maker", "Camera 1")
    assert exif.get_ifd(0x8769)[36867] == "2024:05:06 07:08:09"
    assert jpeg.info["icc_profile"] == display_p3()
    xmp = xmp_of(jpeg)
    assert xmp is not None and b"adobe:ns:meta" in xmp and b"Orientation" not in xmp  # XMP kept, its turn done


def test_heic_output_is_upright_in_every_reader(src: Path, tmp_path: Path) -> None:
    result = heifkit_cli("convert",
        src / "rotated.jpg", src / "zpug.heic", src / "rgb10.heif", "-o", tmp_path, "-f", "heic", "--all-images",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    heif = heifkit.open_heif(tmp_path / "rotated.heic")
    assert heif[0]._transforms == ()  # pixels stored upright: no irot for a reader to apply (or apply twice)
    assert quadrants(heif.to_pillow()) == quadrants(upright_quadrants())
    assert heifkit._info.metadata.exif_orientation(heif.info["exif"]) == 1
    assert heif.info["icc_profile"] == display_p3()
    import pillow_heif  # an independent reader

    assert quadrants(pillow_heif.open_heif(tmp_path / "rotated.heic").to_pillow()) == quadrants(upright_quadrants())

    zpug = heifkit.open_heif(tmp_path / "zpug.heic")  # --all-images: one HEIC holds them all, same primary
    assert [im.size for im in zpug] == [(64, 64), (64, 64), (96, 64)] and zpug.primary_index == 1
    deep = heifkit.open_heif(tmp_path / "rgb10.heif")  # a .heif name is already a HEIC extension: kept
    assert deep.info["bit_depth"] == 10


def test_all_images_to_a_single_image_format_numbers_the_files(src: Path, tmp_path: Path) -> None:
    result = heifkit_cli("convert", src / "zpug.heic", "-o", tmp_path, "-f", "png", "--all-images", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for n, (size, mode) in enumerate([((64, 64), "RGB"), ((64, 64), "L"), ((96, 64), "RGB")], start=1):
        out = open_any(tmp_path / f"zpug-{n}.png")
        assert (out.size, out.mode) == (size, mode)
        assert out.tobytes() == reference(src / "zpug.heic", n - 1).tobytes()  # PNG: lossless
    assert not (tmp_path / "zpug.png").exists()


def test_ten_bit_sources(src: Path, tmp_path: Path) -> None:
    result = heifkit_cli("convert", src / "rgb10.heif", src / "grey10.heif", "-o", tmp_path, "-f", "png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    colour = open_any(tmp_path / "rgb10.png")
    assert colour.mode == "RGB" and colour.tobytes() == reference(src / "rgb10.heif").tobytes()  # 8 bits
    grey = open_any(tmp_path / "grey10.png")  # grey keeps 16 bits (Pillow has no 16-bit colour)
    assert grey.mode == "I;16" and grey.tobytes() == heifkit.open_heif(src / "grey10.heif").to_pillow().tobytes()
    result = heifkit_cli("convert", src / "grey10.heif", "-o", tmp_path / "jpeg", cwd=tmp_path)
    assert result.returncode == 0 and open_any(tmp_path / "jpeg" / "grey10.jpg").mode == "L"


def test_exit_status_and_failure_reasons(src: Path, tmp_path: Path) -> None:
    good = [src / "example.avif", src / "rot1mir0.avif"]
    result = heifkit_cli("convert", src / "broken.heic", *good, "-o", tmp_path / "a", "--jobs", "1", cwd=tmp_path)
    assert result.returncode == 1
    assert f"failed: {src / 'broken.heic'}: " in result.stderr  # with its reason
    assert "not started" in result.stdout  # stopped: --keep-going was not given
    result = heifkit_cli("convert", src / "broken.heic", *good, "-o", tmp_path / "b", "-k", "--jobs", "1", cwd=tmp_path)
    assert result.returncode == 1 and result.stdout.strip().endswith("2 converted, 0 skipped, 1 failed")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["example.jpg", "rot1mir0.jpg"]  # nothing partial

    missing = heifkit_cli("convert", tmp_path / "nope.heic", "-o", tmp_path / "c", cwd=tmp_path)
    assert missing.returncode == 1 and "no such file" in missing.stderr
    folder = heifkit_cli("convert", src, "-o", tmp_path / "c", cwd=tmp_path)
    assert folder.returncode == 1 and "use -r" in folder.stderr
    for bad in (["--quality", "101"], ["--lossless"], ["-f", "png", "--chroma", "444"], ["--jobs", "0"]):
        usage = heifkit_cli("convert", src / "example.avif", "-o", tmp_path / "d", *bad, cwd=tmp_path)
        assert usage.returncode == 2 and "usage: heifkit convert" in usage.stderr, bad
    assert not (tmp_path / "d").exists()  # usage errors convert nothing
    (tmp_path / "file.jpg").write_bytes(b"x")
    onto_a_file = heifkit_cli("convert", *good, "-o", tmp_path / "file.jpg", cwd=tmp_path)
    assert onto_a_file.returncode == 2 and "is a file" in onto_a_file.stderr


def test_existing_outputs_are_never_replaced_without_overwrite(src: Path, tmp_path: Path) -> None:
    args = (src / "example.avif", "-o", tmp_path, "-f", "png")
    assert heifkit_cli("convert", *args, cwd=tmp_path).returncode == 0
    out = tmp_path / "example.png"
    out.write_bytes(b"mine")
    again = heifkit_cli("convert", *args, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.strip().endswith("0 converted, 1 skipped, 0 failed")
    assert out.read_bytes() == b"mine"
    replaced = heifkit_cli("convert", *args, "--overwrite", cwd=tmp_path)
    assert replaced.returncode == 0 and open_any(out).size == (800, 533)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_folders_globs_and_name_clashes(src: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for sub in ("a", "b/c"):
        (tree / sub).mkdir(parents=True)
        shutil.copyfile(src / "example.avif", tree / sub / "x.avif")
    (tree / "notes.txt").write_text("not an image")
    (tree / ".hidden.avif").write_bytes((src / "example.avif").read_bytes())
    result = heifkit_cli("convert", "-r", tree, "-o", tree / "out", "-f", "webp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(str(p.relative_to(tree / "out")) for p in (tree / "out").rglob("*.webp")) == [
        "a/x.webp",
        "b/c/x.webp",
    ]
    again = heifkit_cli(
        "convert", "-r", tree, "-o", tree / "out", "-f", "webp", cwd=tmp_path
    )  # outputs under an input folder
    assert again.stdout.strip().endswith("0 converted, 2 skipped, 0 failed") and not (tree / "out" / "out").exists()

    clash = heifkit_cli(
        "convert", tree / "a" / "x.avif", tree / "b" / "c" / "x.avif", "-o", tmp_path / "flat", cwd=tmp_path
    )
    assert clash.returncode == 1 and "output name clash" in clash.stderr
    assert (tmp_path / "flat" / "x.jpg").is_file()  # the first one keeps the name

    pattern = heifkit_cli(
        "convert", str(src / "*.avif"), "-o", tmp_path / "glob", cwd=tmp_path
    )  # quoted: heifkit expands it
    assert pattern.returncode == 0 and sorted(p.name for p in (tmp_path / "glob").iterdir()) == [
        "example.jpg",
        "rot1mir0.jpg",
    ]
    nothing = heifkit_cli("convert", str(src / "*.gif"), "-o", tmp_path / "glob", cwd=tmp_path)
    assert nothing.returncode == 1 and "no file matches" in nothing.stderr


def test_one_input_may_name_the_output_file(src: Path, tmp_path: Path) -> None:
    result = heifkit_cli("convert", src / "zpug.heic", "-o", tmp_path / "picked.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = open_any(tmp_path / "picked.png")
    assert out.format == "PNG" and out.mode == "L" and out.tobytes() == reference(src / "zpug.heic").tobytes()


def test_resize_max_size_strip_and_to_srgb(src: Path, tmp_path: Path) -> None:
    args = (src / "arrow.heic", src / "rotated.jpg", "-o", tmp_path / "s", "--max-size", "100", "--strip")
    result = heifkit_cli("convert", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    arrow = open_any(tmp_path / "s" / "arrow.jpg")
    assert arrow.size == (75, 100) and difference(arrow, reference(src / "arrow.heic")) < 6
    assert not arrow.getexif() and "icc_profile" not in arrow.info and xmp_of(arrow) is None
    assert open_any(tmp_path / "s" / "rotated.jpg").size == (100, 67)  # upright first, then fitted

    boxed = heifkit_cli("convert", src / "example.avif", "-o", tmp_path / "r", "--resize", "100x100", cwd=tmp_path)
    assert boxed.returncode == 0 and open_any(tmp_path / "r" / "example.jpg").size == (100, 67)
    tall = heifkit_cli(
        "convert", src / "example.avif", "-o", tmp_path / "t", "--resize", "x1066", "-f", "png", cwd=tmp_path
    )
    assert tall.returncode == 0 and open_any(tmp_path / "t" / "example.png").size == (1600, 1066)  # may enlarge

    plain = heifkit_cli("convert", src / "rotated.jpg", "-o", tmp_path / "p", "-f", "png", cwd=tmp_path)
    srgb = heifkit_cli("convert", src / "rotated.jpg", "-o", tmp_path / "q", "-f", "png", "--to-srgb", cwd=tmp_path)
    assert plain.returncode == srgb.returncode == 0
    before, after = open_any(tmp_path / "p" / "rotated.png"), open_any(tmp_path / "q" / "rotated.png")
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(__import__("io").BytesIO(after.info["icc_profile"]))
    assert "sRGB" in ImageCms.getProfileDescription(profile)
    red_before, red_after = before.getpixel((5, 5)), after.getpixel((5, 5))
    assert red_after[0] > red_before[0] + 10  # Display P3 red is redder than sRGB can say: it saturates


def test_progress_bar_hidden_when_piped(src: Path, tmp_path: Path) -> None:
    piped = heifkit_cli("convert", src / "example.avif", src / "zpug.heic", "-o", tmp_path / "a", cwd=tmp_path)
    assert piped.returncode == 0
    for stream in (piped.stdout, piped.stderr):
        assert "\r" not in stream and "\x1b" not in stream and "file/s" not in stream and "%|" not in stream
    assert piped.stdout == "2 converted, 0 skipped, 0 failed\n" and piped.stderr == ""
    quiet = heifkit_cli("convert", src / "example.avif", "-o", tmp_path / "c", "--quiet", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stdout == quiet.stderr == ""


def _on_a_terminal(args: list[str], cwd: Path, columns: int = 80, **env: str) -> tuple[int, bytes, bytes]:
    """Run the console script with stderr on a pseudo-terminal ``columns`` wide: exit status, what the terminal
    showed, stdout."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    process = subprocess.Popen(
        [str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=slave, env=child_env(**env), cwd=cwd
    )
    os.close(slave)
    terminal = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        terminal += chunk
    os.close(master)
    status = process.wait(timeout=120)
    assert process.stdout is not None
    return status, terminal, process.stdout.read()


@pytest.mark.parametrize("columns", [80, 0])  # 0: a terminal that does not say its width
def test_progress_bar_on_a_terminal(src: Path, tmp_path: Path, columns: int) -> None:
    """stderr on a terminal: tqdm's bar is drawn there."""
    status, terminal, stdout = _on_a_terminal(
        ["convert", str(src / "example.avif"), "-o", str(tmp_path)], tmp_path, columns
    )
    assert status == 0
    assert b"100%" in terminal and b"1/1" in terminal and b"%|" in terminal  # tqdm's bar
    assert stdout == b"1 converted, 0 skipped, 0 failed\n"


def test_progress_without_tqdm_on_a_terminal(src: Path, tmp_path: Path) -> None:
    """Installed without the cli extra (tqdm unimportable): a plain count on the terminal, the same results."""
    hidden = tmp_path / "hidden" / "tqdm"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("tqdm is not installed (heifkit[cli])")\n')
    pythonpath = os.pathsep.join([str(hidden.parent), child_env()["PYTHONPATH"]])
    args = ["convert", str(src / "example.avif"), str(src / "zpug.heic"), "-o", str(tmp_path / "out")]
    status, terminal, stdout = _on_a_terminal(args, tmp_path, PYTHONPATH=pythonpath)
    assert status == 0 and stdout == b"2 converted, 0 skipped, 0 failed\n"
    assert terminal.startswith(b"\r0/2 files (0%)") and terminal.endswith(b"\r2/2 files (100%)\r\n")  # pty: \n is \r\n
    assert b"%|" not in terminal and b"\x1b" not in terminal
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["example.jpg", "zpug.jpg"]


def test_interrupted_and_empty_runs(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from heifkit import batch, cli

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "convert", interrupted)
    assert cli.main(["convert", str(src / "example.avif"), "-o", str(tmp_path)]) == 130
    (tmp_path / "empty").mkdir()
    empty = heifkit_cli("convert", "-r", tmp_path / "empty", "-o", tmp_path / "out", cwd=tmp_path)
    assert empty.returncode == 2 and "no images found" in empty.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the reader of a named pipe in /proc")
def test_a_worker_crash_fails_that_file_only(src: Path, tmp_path: Path) -> None:
    """The worker that opens ``dies.heic`` is killed (as by the out-of-memory killer): that file fails, the rest
    are converted."""
    inputs = [src / "example.avif", tmp_path / "dies.heic", src / "rot1mir0.avif", src / "rgb10.heif"]
    with ReadersKilled(inputs[1]):
        result = heifkit_cli("convert", *inputs, "-o", tmp_path / "out", "-k", cwd=tmp_path)
    assert result.returncode == 1
    assert f"failed: {inputs[1]}: the worker process died" in result.stderr
    assert result.stdout.strip().endswith("3 converted, 0 skipped, 1 failed")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["example.jpg", "rgb10.jpg", "rot1mir0.jpg"]


def test_info_json_has_its_documented_shape(src: Path, tmp_path: Path) -> None:
    schema = heifkit_cli("info", "--schema", cwd=tmp_path)
    assert schema.returncode == 0 and json.loads(schema.stdout) == fileinfo.INFO_SCHEMA
    files = sorted(src.iterdir())
    result = heifkit_cli("info", "--json", *files, cwd=tmp_path)
    assert result.returncode == 1  # broken.heic and rotated.jpg are not readable HEIF
    data = json.loads(result.stdout)
    assert schema_errors(data, json.loads(schema.stdout)) == []
    by_name = {Path(f["path"]).name: f for f in data["files"]}
    assert [name for name, f in by_name.items() if not f["ok"]] == ["broken.heic", "rotated.jpg"]
    assert all(f["error"] for f in data["files"] if not f["ok"])

    arrow = by_name["arrow.heic"]["images"][0]
    assert (arrow["width"], arrow["height"], arrow["codec"], arrow["item_type"]) == (3024, 4032, "HEVC", "grid")
    assert arrow["transforms"] == ["rotate 270"] and arrow["icc"]["description"] == "Display P3"
    assert arrow["exif"] == {"size": arrow["exif"]["size"], "camera": "Apple iPhone 8 Plus",
                             "datetime": "2018:07:31 14:52:07", "orientation": 6}  # fmt: skip
    assert arrow["thumbnails"] == [{"width": 240, "height": 320}]
    zpug = by_name["zpug.heic"]
    assert zpug["primary"] == 1 and [im["mode"] for im in zpug["images"]] == ["RGB", "L", "RGB"]
    assert by_name["rgb10.heif"]["images"][0]["bit_depth"] == 10
    assert by_name["example.avif"]["images"][0]["codec"] == "AV1"
    assert by_name["example.avif"]["images"][0]["nclx"]["color_primaries"] == 2


def test_info_text(src: Path, tmp_path: Path) -> None:
    result = heifkit_cli("info", src / "arrow.heic", CORPUS / "pillow_star.avifs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for phrase in ("image/heic", "3024x4032 RGB, 8-bit 4:2:0, HEVC (6x8 grid of 512x512)", "rotate 270",
                   "ICC Display P3", "EXIF: Apple iPhone 8 Plus, 2018:07:31 14:52:07, orientation 6",
                   "thumbnails 240x320", "image/avif-sequence", "track 1 pict av01 5 samples 159x159"):  # fmt: skip
        assert phrase in text
    assert heifkit_cli("info", cwd=tmp_path).returncode == 2


def test_a_folder_of_inputs_with_jpeg_default_and_verbose(src: Path, tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    shutil.copyfile(src / "example.avif", folder / "one.avif")
    Image.new("RGBA", (20, 10), (255, 0, 0, 0)).save(folder / "clear.png")  # fully transparent red
    result = heifkit_cli("convert", "-r", folder, "-o", tmp_path / "out", "-v", cwd=tmp_path)  # no --format: JPEG
    assert result.returncode == 0, result.stderr
    assert f"converted: {folder / 'one.avif'} -> {tmp_path / 'out' / 'one.jpg'}" in result.stdout
    clear = open_any(tmp_path / "out" / "clear.jpg")
    assert clear.mode == "RGB" and clear.getpixel((3, 3)) == (255, 255, 255)  # alpha composited over white
