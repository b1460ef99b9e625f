"""With register_avif_opener(), heifkit is Pillow's AVIF plugin: Pillow's own AVIF plugin (Pillow >= 11.3) is the
oracle, parameter by parameter of Pillow's handbook.

The same images are saved with both plugins, and each file is read back by both: the errors raised for bad values
(same class), the decoded mode and size, the NCLX range, the premultiplied flag, frame counts and durations, EXIF,
XMP and ICC, and at the default quality a PSNR within 0.5 dB of Pillow's at a file size within 10%. The plugins are
swapped in Pillow's registry for each call (`plugin`), so neither stays registered after a test.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from PIL import AvifImagePlugin, Image, ImageOps, features

import heifkit
from conftest import CORPUS, psnr
from heifkit import _pillow_avif

pytestmark = pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF plugin")

Image.init()
_REGISTRY = {name: copy.copy(getattr(Image, name)) for name in ("OPEN", "ID", "SAVE", "SAVE_ALL", "EXTENSION", "MIME")}


@contextmanager
def plugin(which: str) -> Iterator[None]:
    """Pillow's registry with ``which`` AVIF plugin ("pillow": Pillow's own; "heifkit"), restored afterwards."""
    saved = {name: copy.copy(getattr(Image, name)) for name in _REGISTRY}

    def put(state: dict[str, Any]) -> None:
        for name, value in state.items():
            current = getattr(Image, name)
            current.clear()
            (current.update if isinstance(current, dict) else current.extend)(copy.copy(value))

    put(_REGISTRY)
    if which == "pillow":
        Image.register_open("AVIF", AvifImagePlugin.AvifImageFile, AvifImagePlugin._accept)
        Image.register_save("AVIF", AvifImagePlugin._save)
        Image.register_save_all("AVIF", AvifImagePlugin._save_all)
    else:
        heifkit.register_avif_opener()
    try:
        yield
    finally:
        put(saved)


def save(which: str, im: Image.Image, **params: Any) -> bytes:
    with plugin(which):
        out = io.BytesIO()
        im.save(out, "AVIF", **params)
        return out.getvalue()


def frames(which: str, data: bytes) -> list[tuple[Image.Image, dict[str, Any]]]:
    """Every frame of ``data`` read with ``which`` plugin: (loaded copy, its info)."""
    with plugin(which), Image.open(io.BytesIO(data)) as im:
        assert im.format == "AVIF"
        out = []
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            im.load()
            out.append((im.copy(), dict(im.info)))
        return out


def _gradient(alpha: bool = False) -> Image.Image:
    x = np.linspace(0, 255, 96)
    base = (np.add.outer(x, x[:64]) / 2).astype(np.uint8)
    planes = [base, base[::-1], 255 - base] + ([np.clip(base * 2, 0, 255).astype(np.uint8)] if alpha else [])
    return Image.fromarray(np.dstack(planes), "RGBA" if alpha else "RGB")


RGB = _gradient()
RGBA = _gradient(alpha=True)


BAD = [
    {"quality": 101},
    {"quality": -2},
    {"quality": "50"},
    {"quality": 50.0},
    {"subsampling": "4:1:1"},
    {"subsampling": 2},
    {"speed": "fast"},
    {"max_threads": "all"},
    {"tile_rows": "1"},
    {"tile_cols": 1.5},
    {"range": "tv"},
    {"codec": "foo"},
    {"codec": "rav1e"},  # not in either build
    {"advanced": 5},
    {"advanced": [("end-usage",)]},
    {"advanced": {"cq-level": 5}},  # values are str
    {"advanced": {"no-such-option": "1"}},
    {"exif": b"invalid"},
    {"xmp": 5},
    {"save_all": True, "append_images": [RGB.resize((8, 8))]},  # frames of an animation share one size
    {"save_all": True, "append_images": [RGB], "duration": "long"},
]


@pytest.mark.parametrize("params", BAD, ids=lambda p: ",".join(f"{k}={v!r:.20}" for k, v in p.items()))
def test_bad_values_raise_what_pillow_raises(params: dict[str, Any]) -> None:
    raised = {}
    for which in ("pillow", "heifkit"):
        with pytest.raises(Exception) as excinfo:
            save(which, RGB, **params)
        raised[which] = type(excinfo.value)
    assert issubclass(raised["heifkit"], raised["pillow"]), raised


GOOD = [
    {},
    {"quality": 30},
    {"quality": 100, "subsampling": "4:4:4"},
    {"subsampling": "4:2:2"},
    {"subsampling": "4:0:0"},
    {"speed": 10},
    {"speed": 42},  # clamped
    {"speed": -1},  # the codec's default
    {"max_threads": 1},
    {"range": "limited"},
    {"codec": "aom"},
    {"tile_rows": 1, "tile_cols": 2},
    {"autotiling": True},
    {"autotiling": False, "tile_cols": 9},  # clamped to 6
    {"advanced": {"end-usage": "q", "cq-level": "20"}},
    {"advanced": [("sharpness", "2")]},
]


def _nclx_range(data: bytes) -> int | None:
    return heifkit.open_heif(data).info.get("nclx_profile", {}).get("full_range_flag")


@pytest.mark.parametrize("source", ["RGB", "RGBA", "L", "LA", "P"])
@pytest.mark.parametrize("params", GOOD, ids=lambda p: ",".join(f"{k}={v!r:.20}" for k, v in p.items()) or "defaults")
def test_files_read_back_alike(params: dict[str, Any], source: str) -> None:
    im = RGBA.convert(source) if source != "RGB" else RGB
    ours, theirs = save("heifkit", im, **params), save("pillow", im, **params)
    assert ours[4:12] == theirs[4:12] == b"ftypavif"
    for reader in ("pillow", "heifkit"):
        [(a, _)], [(b, _)] = frames(reader, ours), frames(reader, theirs)
        assert (a.mode, a.size) == (b.mode, b.size), reader
        if reader == "pillow" and params.get("quality", 75) >= 75:
            assert psnr(np.asarray(a), np.asarray(b)) > 30
    assert _nclx_range(ours) == _nclx_range(theirs)
    assert heifkit.open_heif(ours).premultiplied_alpha == heifkit.open_heif(theirs).premultiplied_alpha


def test_opaque_alpha_is_left_out_as_pillow_does() -> None:
    opaque = RGB.convert("RGBA")
    for data in (save("heifkit", opaque), save("pillow", opaque)):
        assert heifkit.open_heif(data).mode == "RGB"


def test_premultiplied_alpha() -> None:
    ours, theirs = (
        save(w, RGBA, alpha_premultiplied=True, quality=100, subsampling="4:4:4") for w in ("heifkit", "pillow")
    )
    expected = np.asarray(RGBA).astype(int)
    for data in (ours, theirs):
        assert heifkit.open_heif(data).premultiplied_alpha
        for reader in ("pillow", "heifkit"):
            [(im, _)] = frames(reader, data)
            assert im.mode == "RGBA"  # colour divided by alpha again
            # premultiplying and dividing again loses precision where alpha is small: compare where it is not
            assert np.abs(np.asarray(im).astype(int) - expected)[expected[..., 3] >= 128].max() <= 6
    assert not heifkit.open_heif(save("heifkit", RGBA)).premultiplied_alpha


def test_metadata_read_back_by_both_plugins() -> None:
    exif = Image.Exif()
    exif[0x010F] = "heifkit test"  # Make
    exif[0x0112] = 3  # orientation: written as a rotation (irot), as Pillow's plugin does
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    icc = Image.open(CORPUS / "pillow_icc_profile.avif").info["icc_profile"]
    upright = np.asarray(RGB.transpose(Image.Transpose.ROTATE_180))
    for writer in ("heifkit", "pillow"):
        data = save(writer, RGB, exif=exif.tobytes(), xmp=xmp, icc_profile=icc)
        for reader in ("pillow", "heifkit"):
            [(im, info)] = frames(reader, data)
            what = f"{writer} -> {reader}"
            assert im.getexif().get(0x010F) == "heifkit test", what
            assert info.get("xmp") == xmp and info.get("icc_profile") == icc, what
            shown = ImageOps.exif_transpose(im)  # what a viewer shows
            assert psnr(np.asarray(shown), upright) > 30, what


def _photo() -> Image.Image:
    heif = heifkit.open_heif(CORPUS / "libheif_example.heic")
    return heif.to_pillow().crop((400, 200, 784, 456))


def test_default_quality_matches_pillows_at_the_same_size() -> None:
    photo = _photo()
    ours, theirs = save("heifkit", photo), save("pillow", photo)
    assert abs(len(ours) - len(theirs)) <= 0.1 * len(theirs), (len(ours), len(theirs))
    reference = np.asarray(photo)
    ours_db = psnr(reference, np.asarray(frames("pillow", ours)[0][0]))
    theirs_db = psnr(reference, np.asarray(frames("pillow", theirs)[0][0]))
    assert ours_db >= theirs_db - 0.5, (ours_db, theirs_db)


def _gif() -> Image.Image:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    first, *rest = (Image.new("RGB", (32, 32), c) for c in colours)
    out = io.BytesIO()
    first.save(out, "GIF", save_all=True, append_images=rest, duration=[100, 200, 300], loop=0)
    return Image.open(io.BytesIO(out.getvalue()))


def test_an_animated_gif_plays_with_its_own_durations() -> None:
    data = save("heifkit", _gif(), save_all=True)
    assert data[4:12] == b"ftypavis"
    for reader in ("pillow", "heifkit"):
        played = frames(reader, data)
        assert [info["duration"] for _, info in played] == [100, 200, 300], reader
        assert [info["timestamp"] for _, info in played] == [0, 100, 300], reader
        for (im, _), colour in zip(played, [(255, 0, 0), (0, 255, 0), (0, 0, 255)], strict=True):
            assert max(abs(a - b) for a, b in zip(im.convert("RGB").getpixel((5, 5)), colour, strict=True)) <= 3, reader


def test_durations_given_and_single_frames() -> None:
    gif = _gif()
    for which in ("heifkit", "pillow"):
        data = save(which, gif, save_all=True, duration=[40, 50, 60])
        assert [info["duration"] for _, info in frames("pillow", data)] == [40, 50, 60]
        data = save(which, RGB, save_all=True)  # one frame: a still image
        assert data[4:12] == b"ftypavif" and len(frames("pillow", data)) == 1
        data = save(which, gif)  # without save_all: the current frame only
        assert data[4:12] == b"ftypavif"
    frames_l = [RGB.convert("L"), RGB.convert("L").transpose(Image.Transpose.ROTATE_180)]
    data = save("heifkit", frames_l[0], save_all=True, append_images=frames_l[1:], duration=10)
    assert [im.mode for im, _ in frames("pillow", data)] == ["L", "L"]  # 4:0:0 for greyscale frames


def _with_brands(path: Any, major: bytes, compatible: list[bytes]) -> bytes:
    """The file with its ``ftyp`` brands replaced by as many others (its length, so offsets stay right)."""
    data = path.read_bytes()
    size = int.from_bytes(data[:4], "big")
    body = major + b"\0\0\0\0" + b"".join(compatible)
    assert 8 + len(body) == size
    return data[:4] + b"ftyp" + body + data[size:]


@pytest.mark.parametrize(
    ("name", "major", "compatible"),
    [
        ("libheif_example.avif", b"mif1", [b"mif1", b"avif"]),
        ("pillow_star.avifs", b"msf1", [b"mif1", b"avif", b"iso4", b"av01", b"avis", b"msf1", b"miaf", b"MA1B"]),
    ],
)
def test_generic_major_brands_with_avif_open_as_avif(name: str, major: bytes, compatible: list[bytes]) -> None:
    data = _with_brands(CORPUS / name, major, compatible)
    for which in ("pillow", "heifkit"):
        read = frames(which, data)
        assert read[0][0].size == Image.open(CORPUS / name).size and len(read) >= 1
    with plugin("heifkit"):
        heifkit.register_heif_opener()
        assert Image.open(io.BytesIO(data)).format == "AVIF"  # not HEIF, whichever plugin Pillow tries first
        hevc = _with_brands(CORPUS / "libheif_example.heic", b"mif1", [b"mif1", b"avif", b"heic"])
        assert Image.open(io.BytesIO(hevc)).format == "HEIF"  # an HEVC brand: HEIF


@pytest.mark.parametrize(
    ("threads", "size", "expected"),
    [  # the expectations of libavif's own test of its rule (avifSetTileConfiguration), as (rows, columns)
        (8, (256, 144), (0, 0)),
        (8, (360, 640), (0, 0)),
        (8, (854, 480), (0, 1)),
        (8, (480, 854), (1, 0)),
        (8, (1280, 720), (1, 1)),
        (8, (720, 1280), (1, 1)),
        (8, (1920, 1080), (1, 2)),
        (8, (1080, 1920), (2, 1)),
        (8, (2560, 1440), (1, 2)),
        (32, (3840, 2160), (2, 3)),
        (32, (2160, 3840), (3, 2)),
        (1, (4000, 3000), (0, 0)),
    ],
)
def test_autotiling_follows_libavifs_rule(threads: int, size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert _pillow_avif.auto_tiles(threads, *size) == expected


def test_an_orientation_tag_without_irot_is_left_for_the_viewer() -> None:
    """pillow_xmp_tags_orientation.avif: XMP says orientation 3 and the file has no irot/imir, so nobody turned
    the pixels: the tag stays and ImageOps.exif_transpose shows the picture upright, as with Pillow's plugin."""
    data = (CORPUS / "pillow_xmp_tags_orientation.avif").read_bytes()
    shown = {}
    for reader in ("pillow", "heifkit"):
        [(im, info)] = frames(reader, data)
        assert im.getexif().get(0x0112) == 3, reader
        shown[reader] = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert psnr(shown["pillow"], shown["heifkit"]) > 40
    image = heifkit.open_heif(data)[0]
    assert not image.orientation_applied and image.to_pillow().info["original_orientation"] is None
    # a file with irot: libheif turned the pixels, the tag is reset (and kept in original_orientation)
    rotated = heifkit.open_heif(CORPUS / "pheif_arrow.heic")[0]
    assert rotated.orientation_applied and rotated.to_pillow().info["original_orientation"] == 6
