"""The Pillow plugin, read side: registration, frames, laziness, orientation, metadata, errors, AVIF.

Tests that change Pillow's global registry in ways other modules could notice (AVIF, pillow_heif's
plugin, a fresh import of ``heifkit.HeifImagePlugin``) run in a fresh interpreter.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms, ImageFile, ImageOps, ImageSequence, UnidentifiedImageError

import heifkit
import heifkit.plugin
from conftest import ARROW, CORPUS, ZPUG

AVIF = CORPUS / "pillow_rot1mir0.avif"
HEIF_EXTENSIONS = [".heic", ".heics", ".heif", ".heifs", ".hif"]
SRC = Path(heifkit.__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _heif_registered():
    heifkit.register_heif_opener()


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter that imports the same heifkit; returns its stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


# ---------------------------------------------------------------------------------------------------
# registration


def test_register_heif_opener():
    heifkit.register_heif_opener()
    assert Image.OPEN["HEIF"][0] is heifkit.HeifImageFile
    assert heifkit.HeifImageFile is heifkit.plugin.HeifImageFile
    assert "HEIF" in Image.ID
    extensions = Image.registered_extensions()
    for ext in HEIF_EXTENSIONS:
        assert extensions[ext] == "HEIF"
    assert Image.MIME["HEIF"] == "image/heif"
    assert "HEIF" in Image.SAVE and "HEIF" in Image.SAVE_ALL  # an HEVC encoder is present
    assert heifkit.HeifImageFile.format == "HEIF"


@pytest.mark.parametrize(
    "how", ["import heifkit.HeifImagePlugin", "import heifkit; heifkit.register_heif_opener()"], ids=["import", "call"]
)
def test_registration_in_fresh_interpreter(how):
    out = run_python(
        f"""
        from PIL import Image
        {how}
        import heifkit.plugin
        assert Image.OPEN["HEIF"][0] is heifkit.plugin.HeifImageFile
        exts = Image.registered_extensions()
        assert all(exts[e] == "HEIF" for e in {HEIF_EXTENSIONS!r}), exts
        assert Image.MIME["HEIF"] == "image/heif"
        im = Image.open({str(ZPUG)!r})
        assert type(im) is heifkit.plugin.HeifImageFile and im.format == "HEIF"
        im.load()
        print("OK", im.mode, im.size)
        """
    )
    assert out.split() == ["OK", "L", "(64,", "64)"]


def test_register_unknown_option_warns():
    with pytest.warns(UserWarning, match="Unknown option"):
        heifkit.register_heif_opener(no_such_option=True)


# ---------------------------------------------------------------------------------------------------
# frames


def test_open_at_primary_frame():
    with Image.open(ZPUG) as im:
        assert isinstance(im, heifkit.HeifImageFile)
        assert im.format == "HEIF"
        assert im.tell() == 1
        assert (im.mode, im.size) == ("L", (64, 64))
        assert im.n_frames == 3
        assert im.is_animated is True
        assert im.get_format_mimetype() == "image/heic"
        assert im.info["thumbnails"] == [32]
        assert im.info["primary"] is True
        expected_keys = {"aux", "bit_depth", "depth_images", "exif", "metadata", "original_orientation"}
        assert expected_keys | {"primary", "thumbnails"} <= set(im.info)
        np.testing.assert_array_equal(np.asarray(im), np.asarray(heifkit.open_heif(ZPUG)[1]))


def test_seek_tell_and_sequence():
    ref = heifkit.open_heif(ZPUG)
    with Image.open(ZPUG) as im:
        frames = []
        for i, frame in enumerate(ImageSequence.Iterator(im)):
            assert frame.tell() == i
            frames.append((frame.size, frame.mode, frame.info["thumbnails"], frame.info["primary"]))
            np.testing.assert_array_equal(np.asarray(frame), np.asarray(ref[i]))
        assert frames == [
            ((64, 64), "RGB", [32, 16], False),
            ((64, 64), "L", [32], True),
            ((96, 64), "RGB", [], False),
        ]
        im.seek(2)
        assert (im.tell(), im.size, im.mode) == (2, (96, 64), "RGB")
        im.seek(0)
        assert (im.tell(), im.size, im.mode) == (0, (64, 64), "RGB")
        np.testing.assert_array_equal(np.asarray(im), np.asarray(ref[0]))
        with pytest.raises(EOFError):
            im.seek(3)
        with pytest.raises(EOFError):
            im.seek(-1)
        assert im.tell() == 0
        im.seek(1)
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), np.asarray(ref[1]))


def test_single_image_file():
    with Image.open(ARROW) as im:
        assert im.n_frames == 1 and im.is_animated is False and im.tell() == 0
        im.seek(0)
        with pytest.raises(EOFError):
            im.seek(1)


# ---------------------------------------------------------------------------------------------------
# laziness and file handles


def test_open_does_not_decode(monkeypatch):
    from heifkit._decode import pixels as decode

    decoded = []
    original = decode.decode
    monkeypatch.setattr(decode, "decode", lambda *args: decoded.append(args[1].mode) or original(*args))
    im = Image.open(ZPUG)
    assert im.size == (64, 64) and im.mode == "L"  # known without decoding
    im.seek(0)
    assert decoded == []
    im.load()
    assert decoded == ["RGB"]  # frame 0 only
    im.close()


def test_pillow_opened_file_closed_after_load():
    im = Image.open(ZPUG)
    fp = im.fp
    assert fp is not None and not fp.closed
    im.load()
    assert fp.closed
    im.seek(2)  # other frames still decode once the file is closed
    im.load()
    assert im.size == (96, 64)
    np.testing.assert_array_equal(np.asarray(im), np.asarray(heifkit.open_heif(ZPUG)[2]))


def test_callers_file_object_not_closed():
    with open(ZPUG, "rb") as fh:
        im = Image.open(fh)
        im.load()
        assert not fh.closed
        im.seek(0)
        im.load()
        assert not fh.closed
        assert im.mode == "RGB"


def test_open_from_bytesio():
    data = ZPUG.read_bytes()
    stream = io.BytesIO(data)
    im = Image.open(stream)
    assert (im.tell(), im.mode) == (1, "L")
    im.load()
    assert not stream.closed
    np.testing.assert_array_equal(np.asarray(im), np.asarray(heifkit.open_heif(data)[1]))


# ---------------------------------------------------------------------------------------------------
# orientation and metadata


def test_orientation_reset_and_exif_transpose_noop():
    with Image.open(ARROW) as im:
        assert im.size == (3024, 4032)
        assert im.getexif()[274] == 1
        assert im.info["original_orientation"] == 6
        transposed = ImageOps.exif_transpose(im)
        assert transposed.size == im.size
        np.testing.assert_array_equal(np.asarray(transposed), np.asarray(im))
        np.testing.assert_array_equal(np.asarray(im), np.asarray(heifkit.open_heif(ARROW)))


def test_icc_profile_parses():
    with Image.open(ARROW) as im:
        icc = im.info["icc_profile"]
        assert len(icc) == 548
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        assert "P3" in ImageCms.getProfileDescription(profile)


def test_getxmp():
    with Image.open(CORPUS / "pheif_L_exif_xmp_iptc.heic") as im:
        xmp = im.getxmp()
        assert isinstance(xmp, dict)
        assert "xmpmeta" in xmp and xmp["xmpmeta"]
        assert im.info["metadata"][0]["type"] == "iptc"
        assert im.getexif()  # EXIF parsed by Pillow
    with Image.open(ZPUG) as im:
        assert "xmp" not in im.info
        assert im.getxmp() == {}


def test_getxmp_latin1():
    with Image.open(CORPUS / "pheif_L_xmp_latin1.heic") as im:
        assert im.info["xmp"].endswith(b"\x00")
        im.info["xmp"].decode("utf-8")  # handed to Pillow as UTF-8
        xmp = im.getxmp()
        assert "Aimé" in repr(xmp)


# ---------------------------------------------------------------------------------------------------
# damaged, huge and bad files


def test_truncated_frame_raises():
    with Image.open(CORPUS / "bad/pheif_truncated.heic") as im:
        assert im.n_frames == 2
        assert im.tell() == 0
        im.load()
        assert im.size == (16, 16)
        im.seek(1)
        with pytest.raises(ValueError):
            im.load()


def test_truncated_frame_loads_blank_when_allowed(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with Image.open(CORPUS / "bad/pheif_truncated.heic") as im:
        im.seek(1)
        im.load()
        assert (im.mode, im.size) == ("RGB", (32, 32))
        arr = np.asarray(im)
        assert arr.shape == (32, 32, 3)
        assert not arr.any()


def test_decompression_bomb(monkeypatch):
    with pytest.raises(Image.DecompressionBombError):
        Image.open(CORPUS / "pheif_200MP.heic")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with Image.open(CORPUS / "pheif_200MP.heic") as im:  # not decoded here: that is a 600 MB image
        assert im.size == (12240, 16320)
        assert im.mode == "RGB"
        assert im.n_frames == 1


@pytest.mark.parametrize("name", ["bad/pheif_corrupted.heic", "bad/pheif_empty.heic", "bad/pheif_corrupted.hif"])
def test_bad_files_unidentified(name):
    with pytest.raises(UnidentifiedImageError):
        Image.open(CORPUS / name)


def test_garbage_after_ftyp_unidentified():
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x5a" * 500
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(data))


# ---------------------------------------------------------------------------------------------------
# high bit depth


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("pheif_RGB_10__128x128.heif", "RGB"),
        ("pheif_RGB_12__128x128.heif", "RGB"),
        ("pheif_RGBA_10__128x128.heif", "RGBA"),
        ("pheif_RGBA_12__29x100.heif", "RGBA"),
        ("pheif_L_10__128x128.heif", "I;16"),
        ("pheif_L_12__128x128.heif", "I;16"),
        ("pheif_cat.hif", "RGB"),
    ],
)
def test_high_bit_depth_modes(name, mode):
    with Image.open(CORPUS / name) as im:
        assert im.mode == mode
        assert im.info["bit_depth"] in (10, 12)
        arr = np.asarray(im)
        np.testing.assert_array_equal(arr, np.asarray(heifkit.open_heif(CORPUS / name).to_pillow()))
        np.testing.assert_array_equal(arr, np.asarray(pillow_heif.open_heif(CORPUS / name).to_pillow()))


# ---------------------------------------------------------------------------------------------------
# copies


@pytest.mark.parametrize("name", ["pheif_zPug_3.heic", "pheif_pug.heic"])
def test_copy_deepcopy_pickle(name):
    with Image.open(CORPUS / name) as im:
        expected = np.asarray(im)
        clones = [copy.copy(im), copy.deepcopy(im), pickle.loads(pickle.dumps(im)), im.copy()]
        for clone in clones:
            assert (clone.mode, clone.size) == (im.mode, im.size)
            np.testing.assert_array_equal(np.asarray(clone), expected)
            assert clone.info["thumbnails"] == im.info["thumbnails"]
        if name == "pheif_pug.heic":
            depth = np.asarray(im.info["depth_images"][0])
            for clone in clones[1:3]:
                (clone_depth,) = clone.info["depth_images"]
                assert clone_depth.info == im.info["depth_images"][0].info
                np.testing.assert_array_equal(np.asarray(clone_depth), depth)


# ---------------------------------------------------------------------------------------------------
# AVIF and coexistence (fresh interpreters)


def test_avif_is_opt_in():
    code = f"""
        from PIL import Image, features
        import numpy as np
        import heifkit, heifkit.plugin
        heifkit.register_heif_opener()
        import heifkit.HeifImagePlugin
        path = {str(AVIF)!r}
        pillow_avif = features.check("avif")
        im = Image.open(path)
        assert im.format == "AVIF" or not pillow_avif, im.format
        if pillow_avif:
            assert type(im).__module__.startswith("PIL."), type(im)
            assert not isinstance(im, heifkit.plugin.AvifImageFile)
        # registering HEIF (twice) did not touch the AVIF slot
        assert Image.OPEN.get("AVIF", (None,))[0] is not heifkit.plugin.AvifImageFile
        heifkit.register_avif_opener()
        im = Image.open(path)
        assert type(im) is heifkit.plugin.AvifImageFile, type(im)
        assert im.format == "AVIF" and im.get_format_mimetype() == "image/avif"
        assert Image.registered_extensions()[".avif"] == "AVIF"
        ref = heifkit.open_heif(path).to_pillow()
        assert (im.mode, im.size) == (ref.mode, ref.size)
        assert np.array_equal(np.asarray(im), np.asarray(ref))
        # HEIF still goes to heifkit's HEIF plugin
        assert type(Image.open({str(ZPUG)!r})) is heifkit.plugin.HeifImageFile
        print("OK", pillow_avif)
    """
    out = run_python(code)
    assert out.startswith("OK")


@pytest.mark.parametrize("last", ["heifkit", "pillow_heif"])
def test_coexists_with_pillow_heif(last):
    first = "pillow_heif" if last == "heifkit" else "heifkit"
    code = f"""
        from PIL import Image
        import numpy as np
        import heifkit, pillow_heif
        {first}.register_heif_opener()
        {last}.register_heif_opener()
        im = Image.open({str(ZPUG)!r})
        assert type(im).__module__.startswith({last!r}), type(im)
        assert (im.tell(), im.mode, im.n_frames) == (1, "L", 3)
        im.load()
        a = heifkit.open_heif({str(ZPUG)!r})
        b = pillow_heif.open_heif({str(ZPUG)!r})
        for x, y in zip(a, b):
            assert np.array_equal(np.asarray(x), np.asarray(y))
        assert np.array_equal(np.asarray(im), np.asarray(a[1]))
        print("OK")
    """
    assert run_python(code).strip() == "OK"
