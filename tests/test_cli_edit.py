"""``heifkit edit``: lossless rotation, mirroring, crop, orientation and metadata edits of HEIC/AVIF files, in
place or into a folder, as a user checks them: what the edited file shows, that its coded images are the same,
the exit status, and that a file an edit fails on is left as it was. In process (files run serially) except one
run of the console script with its pool of workers."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import heifkit
from conftest import CORPUS, PUG, ZPUG
from heifkit import batch, cli
from heifkit._info.metadata import exif_orientation, exif_with_orientation, xmp_orientation
from subproc import child_env

PARIS = CORPUS / "libavif_paris_icc_exif_xmp.avif"  # 403x302 AV1 4:4:4, ICC, EXIF (orientation 1), XMP
SMALL = CORPUS / "pheif_RGB_8__29x100.heif"  # HEVC 4:2:0, lossless, no EXIF
XMP_ROTATED = CORPUS / "pillow_xmp_tags_orientation.avif"  # 326x268, XMP tiff:Orientation 3, no EXIF orientation
PARIS_ICC = heifkit.open_heif(PARIS).info["icc_profile"]
ANIMATED = CORPUS / "libavif_colors-animated-8bpc.avif"
T = Image.Transpose


@pytest.fixture(autouse=True)
def serial(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's edits in this process (no pool to start for a file or two)."""
    monkeypatch.setattr(batch, "edit", functools.partial(batch.edit, executor=batch.SerialExecutor()))


def copy(source: Path, folder: Path, name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, folder / (name or source.name)))


def edit(*args: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["edit", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def pixels(path: Path) -> Image.Image:
    return heifkit.open_heif(path)[0].to_pillow()


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.mode == b.mode and a.tobytes() == b.tobytes()


def close_pixels(a: Image.Image, b: Image.Image) -> bool:
    """The same picture: 4:2:0 chroma of odd sizes, turned with the image, pairs other rows and columns when it
    is upsampled (docs/editing.md), so edges differ a little; a wrong turn differs everywhere."""
    difference = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
    return a.size == b.size and a.mode == b.mode and float(difference.mean()) < 4  # a wrong turn: 40 and more


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".heifkit-tmp")]


# --- geometry ------------------------------------------------------------------------------------------


def test_rotate_90_is_clockwise_in_place_and_keeps_the_coded_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = copy(PUG, tmp_path)  # a 4032x3024 grid with a depth image and a gain map
    code, out, err = edit("--rotate", "90", path, capsys=capsys)
    assert code == 0, err
    assert out == "1 edited, 0 skipped, 0 failed\n"
    src, edited = heifkit.open_heif(PUG), heifkit.open_heif(path)
    assert edited.size == (3024, 4032) and edited.mimetype == "image/heic"
    assert edited[0].coded_quality() == src[0].coded_quality()
    assert abs(path.stat().st_size - PUG.stat().st_size) < 300  # the same coded tiles, other properties
    # the depth image and the gain map stay in the coded image's orientation (the convention for both)
    assert [d.size for d in edited.info["depth_images"]] == [(768, 576)]
    assert [g.size for g in edited.info["gain_maps"]] == [(2016, 1512)]
    # clockwise: the output's top-left corner is the source's bottom-left (two regions, decoded alone)
    height = src.size[1]
    for box, source_box in [((0, 0, 600, 520), (0, height - 600, 520, height)),
                            ((2000, 3000, 3024, 4032), (3000, height - 3024, 4032, height - 2000))]:  # fmt: skip
        shown = edited[0].crop(box).to_pillow()
        assert same_pixels(shown, src[0].crop(source_box).to_pillow().transpose(T.ROTATE_270))


@pytest.mark.parametrize(("rotate", "method"), [("90", T.ROTATE_270), ("180", T.ROTATE_180), ("270", T.ROTATE_90)])
def test_each_rotation_of_an_odd_sized_image(
    rotate: str, method: T, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = copy(SMALL, tmp_path)  # 29x100, 4:2:0
    assert edit("--rotate", rotate, path, capsys=capsys)[0] == 0
    assert close_pixels(pixels(path), pixels(SMALL).transpose(method))
    assert heifkit.open_heif(path)[0].coded_quality() == heifkit.open_heif(SMALL)[0].coded_quality()


def test_rotate_flip_then_crop_in_shown_coordinates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jpegtran, corners = copy(PARIS, tmp_path / "a"), copy(PARIS, tmp_path / "b")
    for path, box in ((jpegtran, "197x296+3+5"), (corners, "3,5,200,301")):  # the same box, both syntaxes
        code, _, err = edit("--rotate", "90", "--flip", "horizontal", "--crop", box, path, capsys=capsys)
        assert code == 0, err
    expected = pixels(PARIS).transpose(T.ROTATE_270).transpose(T.FLIP_LEFT_RIGHT).crop((3, 5, 200, 301))
    assert same_pixels(pixels(jpegtran), expected) and same_pixels(pixels(corners), expected)
    edited = heifkit.open_heif(jpegtran)
    assert edited.mimetype.startswith("image/avif") and edited.info["icc_profile"] == PARIS_ICC
    assert edited[0].coded_quality() == heifkit.open_heif(PARIS)[0].coded_quality()


def test_flip_vertical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = copy(PARIS, tmp_path)
    assert edit("--flip", "vertical", path, capsys=capsys)[0] == 0
    assert same_pixels(pixels(path), pixels(PARIS).transpose(T.FLIP_TOP_BOTTOM))


def test_a_crop_between_chroma_samples_fails_and_leaves_the_file_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = copy(PUG, tmp_path)  # 4:2:0
    before, inode = path.read_bytes(), path.stat().st_ino
    code, out, err = edit("--rotate", "90", "--crop", "100x100+1+0", path, capsys=capsys)
    assert code == 1
    assert out == "0 edited, 0 skipped, 1 failed\n"
    assert f"failed: {path}: ValueError: crop box" in err and "chroma" in err
    assert path.read_bytes() == before and path.stat().st_ino == inode and no_temp_files(tmp_path)


# --- orientation ---------------------------------------------------------------------------------------


def test_orientation_patches_the_tag_or_adds_an_exif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paris, small = copy(PARIS, tmp_path), copy(SMALL, tmp_path)
    assert edit("--orientation", "6", paris, small, capsys=capsys)[0] == 0
    exif, old = heifkit.open_heif(paris).info["exif"], heifkit.open_heif(PARIS).info["exif"]
    assert exif_orientation(exif) == 6 and len(exif) == len(old)
    assert sum(a != b for a, b in zip(exif, old, strict=True)) == 1  # patched in place, the rest as it was
    assert exif_orientation(heifkit.open_heif(small).info["exif"]) == 6  # SMALL had no EXIF: a minimal one
    assert heifkit.open_heif(paris).size == (403, 302)  # the tag alone: informational in HEIF
    assert same_pixels(pixels(small), pixels(SMALL))


def test_orientation_bake_turns_the_image_and_resets_the_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rotated = copy(XMP_ROTATED, tmp_path)  # XMP orientation 3, no irot/imir
    assert edit("--orientation", "bake", rotated, capsys=capsys)[0] == 0
    assert same_pixels(pixels(rotated), pixels(XMP_ROTATED).transpose(T.ROTATE_180))
    assert xmp_orientation(heifkit.open_heif(rotated).info.get("xmp")) is None
    paris = copy(PARIS, tmp_path)
    assert edit("--orientation", "6", paris, capsys=capsys)[0] == 0
    assert edit("--orientation", "bake", paris, capsys=capsys)[0] == 0
    baked = heifkit.open_heif(paris)
    assert baked.size == (302, 403) and exif_orientation(baked.info["exif"]) == 1
    assert same_pixels(pixels(paris), pixels(PARIS).transpose(T.ROTATE_270))  # 6: a quarter turn clockwise
    code, out, _ = edit("-v", "--orientation", "bake", paris, capsys=capsys)  # 1 already: written as it was
    assert code == 0 and "orientation: 1 already" in out


def test_bake_makes_irot_imir_say_what_the_tag_says(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The tag is the orientation of the coded pixels: a photo whose irot/imir turn it as its EXIF says (as
    cameras write them) is not turned again; one whose irot/imir say otherwise ends up as the tag says."""
    photo = copy(CORPUS / "pheif_arrow.heic", tmp_path)  # an iPhone photo: irot 270 and EXIF orientation 6
    code, out, _ = edit("-v", "--orientation", "bake", photo, capsys=capsys)
    assert code == 0 and "irot/imir turn the image so already, the tag alone was reset to 1" in out
    baked = heifkit.open_heif(photo)
    assert baked.size == (3024, 4032) and exif_orientation(baked.info["exif"]) == 1
    paris = copy(PARIS, tmp_path)
    assert edit("--rotate", "90", paris, capsys=capsys)[0] == 0  # irot: a quarter turn clockwise (6)
    assert edit("--orientation", "8", paris, capsys=capsys)[0] == 0  # another tool's tag: counter-clockwise
    assert edit("--orientation", "bake", paris, capsys=capsys)[0] == 0
    assert same_pixels(pixels(paris), pixels(PARIS).transpose(T.ROTATE_90))
    mirrored = copy(CORPUS / "pillow_rot1mir0.avif", tmp_path)  # irot and imir
    stored = heifkit.open_heif(mirrored, apply_transformations=False)[0].to_pillow()
    assert edit("--orientation", "2", mirrored, capsys=capsys)[0] == 0
    assert edit("--orientation", "bake", mirrored, capsys=capsys)[0] == 0
    assert close_pixels(pixels(mirrored), stored.transpose(T.FLIP_LEFT_RIGHT))
    assert heifkit.open_heif(mirrored, apply_transformations=False).info["transformations"] == [
        {"mirror": "left_right"}
    ]


def test_exif_orientation_helper() -> None:
    tags = Image.Exif()
    tags[271] = "Maker"
    without = tags.tobytes()  # Exif\0\0, no orientation tag
    added = exif_with_orientation(without, 8)
    assert added.startswith(b"Exif\x00\x00") and exif_orientation(added) == 8
    reread = Image.Exif()
    reread.load(added)
    assert reread[271] == "Maker"
    assert exif_with_orientation(without[6:], 2)[:4] == b"MM\x00*"  # a TIFF header first stays so
    assert exif_orientation(exif_with_orientation(None, 5)) == 5
    with pytest.raises(ValueError, match="1..8"):
        exif_with_orientation(added, 9)


# --- metadata ------------------------------------------------------------------------------------------


def test_strip_keeps_the_icc_profile_unless_strip_icc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stripped, bare = copy(PARIS, tmp_path / "a"), copy(PARIS, tmp_path / "b")
    assert edit("--strip", stripped, capsys=capsys)[0] == 0
    assert edit("--strip", "--strip-icc", bare, capsys=capsys)[0] == 0
    info = heifkit.open_heif(stripped).info
    assert not info.get("exif") and not info.get("xmp") and info["icc_profile"] == PARIS_ICC
    assert not heifkit.open_heif(bare).info.get("icc_profile")
    assert same_pixels(pixels(stripped), pixels(PARIS))


def test_set_exif_and_xmp_read_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tags = Image.Exif()
    tags[271], tags[274] = "heifkit test", 1
    exif, xmp = tmp_path / "new.exif", tmp_path / "new.xmp"
    exif.write_bytes(tags.tobytes()[6:])  # a TIFF header first
    xmp.write_bytes(b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>')
    path = copy(PUG, tmp_path)
    assert edit("--set-exif", exif, "--set-xmp", xmp, path, capsys=capsys)[0] == 0
    info = heifkit.open_heif(path).info
    assert info["exif"] == exif.read_bytes() and info["xmp"] == xmp.read_bytes()
    assert heifkit.open_heif(path)[0].coded_quality() == heifkit.open_heif(PUG)[0].coded_quality()
    with pytest.raises(SystemExit) as usage:  # not EXIF: a usage error, nothing read
        edit("--set-exif", xmp, path, capsys=capsys)
    assert usage.value.code == 2 and "--set-exif: the file must start with a TIFF header" in capsys.readouterr().err


def test_primary_and_thumbnails_of_every_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = copy(ZPUG, tmp_path)  # 3 images, primary 1; thumbnails on images 0 and 1
    assert edit("--primary", "0", path, capsys=capsys)[0] == 0  # the others are not edited: no note
    assert heifkit.open_heif(path).primary_index == 0
    code, _, err = edit("--remove-thumbnails", path, capsys=capsys)
    assert code == 0 and "2 other image(s) left as they are (--all-images edits them too)" in err
    assert [len(im.info["thumbnails"]) for im in heifkit.open_heif(path)] == [0, 1, 0]
    assert edit("--remove-thumbnails", "--all-images", "--rotate", "180", path, capsys=capsys)[0] == 0
    edited, src = heifkit.open_heif(path), heifkit.open_heif(ZPUG)
    assert [len(im.info["thumbnails"]) for im in edited] == [0, 0, 0] and edited.primary_index == 0
    for mine, theirs in zip(edited, src, strict=True):
        assert mine.size == theirs.size and close_pixels(mine.to_pillow(), theirs.to_pillow().transpose(T.ROTATE_180))
    code, _, err = edit("--primary", "3", path, capsys=capsys)
    assert code == 1 and "no image 3 to make primary: the file has 3 image(s)" in err


# --- files, outputs and failures -----------------------------------------------------------------------


def test_many_files_into_a_folder_keep_their_names_and_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "in"
    copy(PARIS, inputs / "sub")
    copy(SMALL, inputs, "small.HEIC")
    (inputs / "notes.txt").write_text("not an image")  # not taken from a folder
    before = {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()}
    code, out, err = edit("-r", inputs, "-o", tmp_path / "out", "--rotate", "270", "-v", capsys=capsys)
    assert code == 0, err
    assert out.splitlines()[-1] == "2 edited, 0 skipped, 0 failed"
    assert {p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()} == {
        "sub/libavif_paris_icc_exif_xmp.avif",
        "small.HEIC",
    }
    assert heifkit.open_heif(tmp_path / "out" / "sub" / PARIS.name).mimetype.startswith("image/avif")
    assert close_pixels(pixels(tmp_path / "out" / "small.HEIC"), pixels(SMALL).transpose(T.ROTATE_90))
    assert {p: p.read_bytes() for p in before} == before  # the inputs as they were
    code, out, _ = edit("-r", inputs, "-o", tmp_path / "out", "--rotate", "270", capsys=capsys)
    assert code == 0 and out == "0 edited, 2 skipped, 0 failed\n"  # existing outputs kept without --overwrite
    code, out, _ = edit("-r", inputs, "-o", tmp_path / "out", "--rotate", "270", "--overwrite", capsys=capsys)
    assert code == 0 and out == "2 edited, 0 skipped, 0 failed\n"


def test_one_input_to_a_named_file_keeps_the_input_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = edit(PARIS, "-o", tmp_path / "turned.avif", "--rotate", "90", capsys=capsys)
    assert code == 0, err
    assert heifkit.open_heif(tmp_path / "turned.avif").size == (302, 403)
    code, _, err = edit(PARIS, "-o", tmp_path / "turned.heic", "--rotate", "90", capsys=capsys)
    assert code == 1 and "an edit keeps its format" in err and not (tmp_path / "turned.heic").exists()


def test_a_bad_file_fails_the_run_and_the_others_are_edited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "truncated.heic"
    bad.write_bytes(PUG.read_bytes()[:3000])
    animated = copy(ANIMATED, tmp_path)
    good = copy(SMALL, tmp_path)
    damaged = {p: (p.read_bytes(), p.stat().st_ino) for p in (bad, animated)}
    code, out, err = edit("-k", "--rotate", "90", bad, animated, good, capsys=capsys)
    assert code == 1
    assert out == "1 edited, 0 skipped, 2 failed\n"
    assert f"failed: {animated}: ValueError: the file holds an image sequence" in err
    assert {p: (p.read_bytes(), p.stat().st_ino) for p in damaged} == damaged and no_temp_files(tmp_path)
    assert heifkit.open_heif(good).size == (100, 29)
    code, out, _ = edit("--rotate", "90", tmp_path / "missing.heic", good, capsys=capsys)  # no -k: stop
    assert code == 1 and out == "0 edited, 0 skipped, 1 failed, 1 not started (use --keep-going to edit them anyway)\n"


@pytest.mark.parametrize(
    "args",
    [
        ["x.heic"],  # nothing to edit
        ["--crop", "10x10+-1+0", "x.heic"],
        ["--crop", "0,0,10", "x.heic"],
        ["--orientation", "9", "x.heic"],
        ["--rotate", "45", "x.heic"],
        ["--rotate", "90", "--jobs", "0", "x.heic"],
    ],
)
def test_usage_errors(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        edit(*args, capsys=capsys)
    assert usage.value.code == 2


def test_the_console_script_edits_files_on_its_workers(tmp_path: Path) -> None:
    """The real command: a pool of two worker processes, files into a folder, the exit status."""
    names = [copy(PARIS, tmp_path / "in", f"{n}.avif") for n in range(3)] + [copy(SMALL, tmp_path / "in")]
    script = Path(sys.executable).with_name("heifkit")
    result = subprocess.run(
        [str(script), "edit", *map(str, names), "-o", "out", "-j", "2", "--rotate", "90", "--strip"],
        capture_output=True, text=True, timeout=120, env=child_env(), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "4 edited, 0 skipped, 0 failed\n"
    for name in names:
        edited = heifkit.open_heif(tmp_path / "out" / name.name)
        assert edited.size == heifkit.open_heif(name).size[::-1] and not edited.info.get("exif")
    assert os.listdir(tmp_path / "out") and no_temp_files(tmp_path / "out")
