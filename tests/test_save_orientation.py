"""Orientation on the write path: images are shown upright exactly once after save -> open.

Images made from Pillow images or bytes keep their pixels as given and store the EXIF/XMP orientation as
``irot``/``imir``; readers (libheif, so heifkit and pillow_heif) apply it, and heifkit's ``to_pillow()``
and Pillow plugin reset the EXIF/XMP orientation so ``ImageOps.exif_transpose`` does nothing more.
Images decoded from a file are upright already and are written without a transform (encode.py).

pillow_heif's ``from_pillow(img).save()`` rotates twice (DESIGN §6); heifkit must not.
Everything is encoded losslessly (``quality=-1, chroma=444, matrix_coefficients=0``) so pixels compare
exactly.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageOps, PngImagePlugin

import heifkit
from conftest import LOSSLESS

ORIENTATIONS = list(range(1, 9))
SIZE = (64, 32)

XMP_ATTR = (
    '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="{n}"/>'
    '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)
XMP_ELEM = (
    '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Image::ExifTool 12.40">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/">'
    "<tiff:Orientation>{n}</tiff:Orientation>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
    '<?xpacket end="w"?>'
)

# Where the orientation comes from: EXIF only, XMP (two styles) only, or XMP N with EXIF saying 1.
SOURCES = ["exif", "xmp_attr", "xmp_elem", "xmp_exif1"]


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    heifkit.register_heif_opener()


def _base(size: tuple[int, int] = SIZE) -> Image.Image:
    """An RGB image that looks different under each of the 8 transforms."""
    width, height = size
    a = np.zeros((height, width, 3), np.uint8)
    a[..., 0] = (np.arange(width) * 255 // max(width - 1, 1))[None, :]
    a[..., 1] = (np.arange(height) * 255 // max(height - 1, 1))[:, None]
    a[: height // 4, : width // 8, 2] = 255  # a marker in the top-left corner
    a[height // 2, :, 2] = 128  # a row that is not the middle after a vertical flip (even height)
    return Image.fromarray(a)


def _exif(n: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = n
    exif[0x010F] = "heifkit-test"  # Make: something besides the orientation
    return exif.tobytes()


def _upright(base: Image.Image, n: int) -> Image.Image:
    """``base`` shown upright for orientation ``n`` (Pillow's own EXIF transpose)."""
    tagged = base.copy()
    tagged.info["exif"] = _exif(n)
    return ImageOps.exif_transpose(tagged)


def _metadata(source: str, n: int) -> dict[str, bytes]:
    if source == "exif":
        return {"exif": _exif(n)}
    if source == "xmp_attr":
        return {"xmp": XMP_ATTR.format(n=n).encode()}
    if source == "xmp_elem":
        return {"xmp": XMP_ELEM.format(n=n).encode()}
    return {"exif": _exif(1), "xmp": XMP_ATTR.format(n=n).encode()}


def _tagged(source: str, n: int, base: Image.Image | None = None) -> Image.Image:
    img = (base or _base()).copy()
    img.info.update(_metadata(source, n))
    return img


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


def _exif_orientation(exif: Any) -> int | None:
    if not exif:
        return None
    e = Image.Exif()
    e.load(exif)
    return e.get(0x0112)


def _xmp_orientation(xmp: Any) -> bool:
    if not xmp:
        return False
    if isinstance(xmp, str):
        xmp = xmp.encode()
    return b"tiff:Orientation" in xmp


def _assert_upright_pil(img: Image.Image, expected: Image.Image, n: int) -> None:
    """A Pillow image read back by heifkit: upright, orientation reset, the old value kept."""
    assert img.size == expected.size
    assert np.array_equal(_arr(img), _arr(expected))
    assert img.getexif().get(0x0112) in (None, 1)
    assert heifkit._info.metadata.xmp_orientation(img.info.get("xmp")) in (None, 1)  # 1 is kept when there is no irot
    assert img.info["original_orientation"] == (None if n == 1 else n)
    # nothing left for Pillow to rotate
    assert np.array_equal(_arr(ImageOps.exif_transpose(img)), _arr(expected))


def _check_file(data: bytes, expected: Image.Image, n: int) -> None:
    """``data`` (a HEIF file) opens upright via heifkit, via Pillow and via pillow_heif."""
    heif = heifkit.open_heif(data)
    assert heif.size == expected.size
    assert np.array_equal(np.asarray(heif), _arr(expected))
    _assert_upright_pil(heif.to_pillow(), expected, n)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "HEIF"
        im.load()
        _assert_upright_pil(im, expected, n)
    # an independent reader of the same file (libheif applies irot/imir there too)
    other = pillow_heif.open_heif(data)
    assert other.size == expected.size
    assert np.array_equal(np.asarray(other), _arr(expected))
    # the transform is in the container: irot/imir present exactly when the orientation is not 1
    assert (b"irot" in data or b"imir" in data) == (n != 1)


# --- (a) Pillow's save, (b) from_pillow().save(), (c) encode()/from_bytes() with metadata kwargs -----------


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("n", ORIENTATIONS)
def test_pillow_save(n: int, source: str) -> None:
    img = _tagged(source, n)
    buf = io.BytesIO()
    img.save(buf, format="HEIF", **LOSSLESS)
    _check_file(buf.getvalue(), _upright(_base(), n), n)


@pytest.mark.parametrize("n", ORIENTATIONS)
def test_pillow_save_from_png_with_exif(n: int) -> None:
    """The usual case: a PNG/JPEG carrying EXIF orientation, opened with Pillow and saved as HEIF."""
    png = io.BytesIO()
    _base().save(png, format="PNG", exif=_exif(n))
    with Image.open(png) as img:
        assert img.getexif().get(0x0112) == n
        buf = io.BytesIO()
        img.save(buf, format="HEIF", **LOSSLESS)
    _check_file(buf.getvalue(), _upright(_base(), n), n)


@pytest.mark.parametrize("n", ORIENTATIONS)
def test_pillow_save_from_png_with_xmp(n: int) -> None:
    """XMP from a PNG iTXt chunk (``XML:com.adobe.xmp``)."""
    pnginfo = PngImagePlugin.PngInfo()
    pnginfo.add_itxt("XML:com.adobe.xmp", XMP_ATTR.format(n=n))
    png = io.BytesIO()
    _base().save(png, format="PNG", pnginfo=pnginfo)
    with Image.open(png) as img:
        buf = io.BytesIO()
        img.save(buf, format="HEIF", **LOSSLESS)
    _check_file(buf.getvalue(), _upright(_base(), n), n)


@pytest.mark.parametrize("as_object", [False, True], ids=["bytes", "Image.Exif"])
@pytest.mark.parametrize("n", ORIENTATIONS)
def test_pillow_save_exif_kwarg(n: int, as_object: bool) -> None:
    exif: Any = _exif(n)
    if as_object:
        exif = Image.Exif()
        exif.load(_exif(n))
    buf = io.BytesIO()
    _base().save(buf, format="HEIF", exif=exif, **LOSSLESS)
    _check_file(buf.getvalue(), _upright(_base(), n), n)
    buf = io.BytesIO()
    heifkit.from_pillow(_base()).save(buf, exif=exif, **LOSSLESS)
    _check_file(buf.getvalue(), _upright(_base(), n), n)


@pytest.mark.parametrize("n", [3, 6])
def test_pillow_getexif_edited_in_place(n: int) -> None:
    """An orientation set through ``img.getexif()`` (no ``info["exif"]``) is written too."""
    img = _base()
    img.getexif()[0x0112] = n
    buf = io.BytesIO()
    img.save(buf, format="HEIF", **LOSSLESS)
    _check_file(buf.getvalue(), _upright(_base(), n), n)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("n", ORIENTATIONS)
def test_from_pillow_save(n: int, source: str) -> None:
    """pillow_heif rotates these twice (pixels pre-rotated and irot written); heifkit once."""
    img = _tagged(source, n)
    heif = heifkit.from_pillow(img)
    assert heif.size == img.size  # pixels are kept as given until written
    buf = io.BytesIO()
    heif.save(buf, **LOSSLESS)
    _check_file(buf.getvalue(), _upright(_base(), n), n)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("n", ORIENTATIONS)
def test_from_pillow_to_pillow_is_upright(n: int, source: str) -> None:
    """No save: ``from_pillow(img)[0].to_pillow()`` is already upright, with the orientation reset."""
    img = _tagged(source, n)
    heif = heifkit.from_pillow(img)
    _assert_upright_pil(heif[0].to_pillow(), _upright(_base(), n), n)
    _assert_upright_pil(heif.to_pillow(), _upright(_base(), n), n)
    # showing it does not change what gets written
    buf = io.BytesIO()
    heif.save(buf, **LOSSLESS)
    _check_file(buf.getvalue(), _upright(_base(), n), n)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("n", ORIENTATIONS)
def test_encode_with_metadata_kwargs(n: int, source: str) -> None:
    base = _base()
    raw = base.tobytes()
    buf = io.BytesIO()
    heifkit.encode("RGB", base.size, raw, buf, **_metadata(source, n), **LOSSLESS)
    _check_file(buf.getvalue(), _upright(base, n), n)
    buf = io.BytesIO()
    heifkit.from_bytes("RGB", base.size, raw).save(buf, **_metadata(source, n), **LOSSLESS)
    _check_file(buf.getvalue(), _upright(base, n), n)


@pytest.mark.parametrize("n", ORIENTATIONS)
def test_from_bytes_info_orientation(n: int) -> None:
    """EXIF set on ``info`` of an image made from bytes works like the kwarg."""
    base = _base()
    heif = heifkit.from_bytes("RGB", base.size, base.tobytes())
    heif.info["exif"] = _exif(n)
    buf = io.BytesIO()
    heif.save(buf, **LOSSLESS)
    _check_file(buf.getvalue(), _upright(base, n), n)


def test_exif_kept_in_file_alongside_irot() -> None:
    """The container keeps the caller's EXIF (orientation included, like pillow_heif) next to irot."""
    buf = io.BytesIO()
    _tagged("exif", 6).save(buf, format="HEIF", **LOSSLESS)
    heif = heifkit.open_heif(buf.getvalue())
    assert heif.size == (32, 64)
    assert _exif_orientation(heif.info["exif"]) == 6  # open_heif leaves EXIF untouched
    e = Image.Exif()
    e.load(heif.info["exif"])
    assert e.get(0x010F) == "heifkit-test"


# --- grids --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["exif", "xmp_elem"])
@pytest.mark.parametrize("n", ORIENTATIONS)
def test_grid_heif(n: int, source: str) -> None:
    img = _tagged(source, n)
    buf = io.BytesIO()
    img.save(buf, format="HEIF", tile_size=16, **LOSSLESS)
    data = buf.getvalue()
    heif = heifkit.open_heif(data)
    assert heif.info["tiling"]["tile_width"] == 16
    _check_file(data, _upright(_base(), n), n)
    buf = io.BytesIO()
    heifkit.from_pillow(img).save(buf, tile_size=16, **LOSSLESS)
    _check_file(buf.getvalue(), _upright(_base(), n), n)


@pytest.mark.parametrize("n", ORIENTATIONS)
def test_grid_avif(n: int) -> None:
    base = _base((160, 96))
    img = _tagged("exif", n, base)
    buf = io.BytesIO()
    heifkit.from_pillow(img).save(buf, format="AVIF", tile_size=64, **LOSSLESS)
    heif = heifkit.open_heif(buf.getvalue())
    assert heif.info["tiling"]["tile_width"] == 64
    expected = _upright(base, n)
    assert heif.size == expected.size
    assert np.array_equal(np.asarray(heif), _arr(expected))
    _assert_upright_pil(heif.to_pillow(), expected, n)


# --- a file opened from disk with an orientation, then re-saved -----------------------------------------


@pytest.fixture
def rotated_file(tmp_path: Path) -> Path:
    """A small HEIF file whose image is stored sideways with irot and EXIF orientation 6."""
    path = tmp_path / "rotated.heic"
    base = _base()
    heifkit.encode("RGB", base.size, base.tobytes(), path, exif=_exif(6), **LOSSLESS)
    return path


def test_opened_file_is_upright(rotated_file: Path) -> None:
    heif = heifkit.open_heif(rotated_file)
    assert heif.size == (32, 64)
    assert np.array_equal(np.asarray(heif), _arr(_upright(_base(), 6)))
    assert _exif_orientation(heif.info["exif"]) == 6


@pytest.mark.parametrize("how", ["heif_file", "add_from_heif", "read_heif"])
def test_resave_heif_file_upright_once(rotated_file: Path, tmp_path: Path, how: str) -> None:
    expected = _upright(_base(), 6)
    out = tmp_path / "out.heic"
    if how == "heif_file":
        heifkit.open_heif(rotated_file).save(out, **LOSSLESS)
    elif how == "read_heif":
        heifkit.read_heif(rotated_file).save(out, **LOSSLESS)
    else:
        new = heifkit.HeifFile()
        new.add_from_heif(heifkit.open_heif(rotated_file)[0])
        new.save(out, **LOSSLESS)
    data = out.read_bytes()
    assert b"irot" not in data and b"imir" not in data  # upright pixels, no transform
    heif = heifkit.open_heif(data)
    assert heif.size == expected.size
    assert np.array_equal(np.asarray(heif), _arr(expected))
    assert _exif_orientation(heif.info["exif"]) == 1  # reset in the file, so nothing rotates again
    pil = heif.to_pillow()
    assert pil.info["original_orientation"] is None
    assert np.array_equal(_arr(ImageOps.exif_transpose(pil)), _arr(expected))
    with Image.open(out) as im:
        assert im.size == expected.size
        assert np.array_equal(_arr(im), _arr(expected))
    # and a second generation stays the same
    out2 = tmp_path / "out2.heic"
    heifkit.open_heif(out).save(out2, **LOSSLESS)
    assert np.array_equal(np.asarray(heifkit.open_heif(out2)), _arr(expected))


@pytest.mark.parametrize("kwarg", ["exif", "xmp_attr", "xmp_elem", "xmp_exif1"])
def test_resave_with_metadata_kwargs_upright_once(rotated_file: Path, kwarg: str) -> None:
    """Passing the file's own EXIF (orientation 6, kept by open_heif) or an XMP orientation along with
    decoded, already upright pixels must not rotate them again."""
    expected = _upright(_base(), 6)
    heif = heifkit.open_heif(rotated_file)
    metadata = {"exif": heif.info["exif"]} if kwarg == "exif" else _metadata(kwarg, 6)
    buf = io.BytesIO()
    heif.save(buf, **metadata, **LOSSLESS)
    data = buf.getvalue()
    assert b"irot" not in data and b"imir" not in data
    again = heifkit.open_heif(data)
    assert again.size == expected.size
    assert np.array_equal(np.asarray(again), _arr(expected))
    assert _exif_orientation(again.info["exif"]) in (None, 1)
    assert not _xmp_orientation(again.info.get("xmp"))
    pil = again.to_pillow()
    assert np.array_equal(_arr(ImageOps.exif_transpose(pil)), _arr(expected))


@pytest.mark.parametrize("how", ["pillow", "from_pillow_of_plugin", "from_pillow_of_to_pillow"])
def test_resave_via_pillow_upright_once(rotated_file: Path, tmp_path: Path, how: str) -> None:
    expected = _upright(_base(), 6)
    out = tmp_path / "out.heic"
    with Image.open(rotated_file) as im:
        assert im.size == expected.size
        assert im.info["original_orientation"] == 6
        if how == "pillow":
            im.save(out, format="HEIF", **LOSSLESS)
        elif how == "from_pillow_of_plugin":
            heifkit.from_pillow(im).save(out, **LOSSLESS)
        else:
            heifkit.from_pillow(heifkit.open_heif(rotated_file).to_pillow()).save(out, **LOSSLESS)
    with Image.open(out) as im:
        assert im.size == expected.size
        assert np.array_equal(_arr(im), _arr(expected))
        assert im.getexif().get(0x0112) in (None, 1)
        assert np.array_equal(_arr(ImageOps.exif_transpose(im)), _arr(expected))
    heif = heifkit.open_heif(out)
    assert heif.size == expected.size
    assert np.array_equal(np.asarray(heif), _arr(expected))


def test_resave_grid_file_upright_once(tmp_path: Path) -> None:
    """A grid written with an orientation, re-saved (grid kept): still upright exactly once."""
    src = tmp_path / "grid.heic"
    _tagged("exif", 8).save(src, format="HEIF", tile_size=16, **LOSSLESS)
    out = tmp_path / "out.heic"
    heif = heifkit.open_heif(src)
    assert heif.size == (32, 64)
    heif.save(out, **LOSSLESS)
    again = heifkit.open_heif(out)
    assert again.info["tiling"]["tile_width"] == 16
    assert again.size == (32, 64)
    assert np.array_equal(np.asarray(again), _arr(_upright(_base(), 8)))
