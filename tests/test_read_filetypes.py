"""Which files heifkit recognises: libheif is asked (no brand table of ours), for is_supported, the MIME
type, HeifFile.mimetype and the Pillow plugin's accept functions."""

from __future__ import annotations

import io

import pillow_heif
import pytest
from PIL import Image

import heifkit
from conftest import CORPUS

# pillow_heif's table: the major brands it knows, and the MIME type it gives them. libheif agrees on all.
PILLOW_HEIF_TABLE = {
    b"avif": "image/avif",
    b"avis": "image/avif-sequence",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"hevc": "image/heic-sequence",
    b"hevx": "image/heic-sequence",
    b"hevm": "image/heic-sequence",
    b"hevs": "image/heic-sequence",
    b"mif1": "image/heif",
    b"msf1": "image/heif-sequence",
}
# brands pillow_heif does not know, which libheif reads: "mini" files, HEIF with other codecs
LIBHEIF_ONLY = {b"mif3": "image/heif", b"jpeg": "image/heif", b"avci": "image/avci", b"j2ki": "image/hej2k"}


def _header(brand: bytes, compatible: bytes = b"mif1heic", box: bytes = b"ftyp") -> bytes:
    return (16 + len(compatible)).to_bytes(4, "big") + box + brand + b"\x00\x00\x00\x00" + compatible


@pytest.mark.parametrize("brand", list(PILLOW_HEIF_TABLE))
def test_brands_pillow_heif_knows(brand):
    header = _header(brand)
    expected = PILLOW_HEIF_TABLE[brand]
    assert heifkit.get_file_mimetype(header) == expected == pillow_heif.get_file_mimetype(header)
    assert heifkit.is_supported(header) is True is pillow_heif.is_supported(header)
    stream = io.BytesIO(b"junk" + header)
    stream.seek(4)  # is_supported and get_file_mimetype look at the current position, and restore it
    assert heifkit.get_file_mimetype(stream) == expected and stream.tell() == 4
    assert heifkit.is_supported(stream) is True and stream.tell() == 4


@pytest.mark.parametrize("brand", list(LIBHEIF_ONLY))
def test_brands_only_libheif_knows(brand):
    header = _header(brand, compatible=b"mif1")
    assert heifkit.get_file_mimetype(header) == LIBHEIF_ONLY[brand]
    assert heifkit.is_supported(header) is True
    assert pillow_heif.is_supported(header) is False  # what heifkit fixes


def test_a_known_compatible_brand_is_enough():
    # libheif reads a file whose major brand it does not know when a compatible brand says HEIF
    assert heifkit.is_supported(_header(b"    ", compatible=b"mif1heic"))
    assert not heifkit.is_supported(_header(b"heiZ", compatible=b""))
    assert not heifkit.is_supported(_header(b"heic", box=b"free"))  # libheif wants an ftyp box


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x00\x00\x18", b"\x00\x00\x00\x08ftyp", b"\x00\x00\x00\x0cftyphei", JPEG, PNG],
    ids=["empty", "4bytes", "ftyp_no_brand", "short_brand", "jpeg", "png"],
)
def test_not_heif(data):
    assert heifkit.get_file_mimetype(data) == ""
    assert heifkit.is_supported(data) is False
    assert heifkit.is_supported(io.BytesIO(data)) is False
    assert pillow_heif.get_file_mimetype(data) == ""


@pytest.mark.parametrize(
    ("name", "mimetype"),
    [
        ("pheif_zPug_3.heic", "image/heic"),
        ("pheif_cat.hif", "image/heic"),
        ("libheif_example.heic", "image/heif"),
        ("libheif_example.avif", "image/avif"),
        ("pillow_star.avifs", "image/avif-sequence"),
        ("libheif_lightning_mini.heif", "image/heic"),
        ("libheif_simple_osm_tile_alpha.avif", "image/avif"),
        ("libheif-fuzz_jpeg32.heif", "image/heif"),
    ],
)
def test_mimetype_of_files(name, mimetype):
    path = CORPUS / name
    assert heifkit.get_file_mimetype(path) == mimetype
    assert heifkit.get_file_mimetype(str(path)) == mimetype
    assert heifkit.get_file_mimetype(path.read_bytes()) == mimetype
    assert heifkit.is_supported(path) is True
    with open(path, "rb") as fh:
        assert heifkit.get_file_mimetype(fh) == mimetype
        assert fh.tell() == 0
    assert heifkit.open_heif(path).mimetype == mimetype


MINI_FILES = ["libheif_lightning_mini.heif", "libheif-fuzz_hevc32-mini.heif"]
MINI_AVIF = ["libheif_simple_osm_tile_alpha.avif", "libheif_simple_osm_tile_meta.avif", "libheif-fuzz_avif32-mini.heif"]


@pytest.mark.parametrize("name", [*MINI_FILES, "libheif-fuzz_jpeg32.heif"])
def test_plugin_opens_every_heif_brand_libheif_reads(name, heif_plugin):
    path = CORPUS / name
    with Image.open(path) as im:
        assert im.format == "HEIF"
        im.load()
        assert im.size == heifkit.open_heif(path).size
        assert im.tobytes() == heifkit.open_heif(path).to_pillow().tobytes()


@pytest.mark.parametrize("name", MINI_AVIF)
def test_plugin_opens_mini_avif_after_register_avif_opener(name):
    heifkit.register_avif_opener()
    path = CORPUS / name
    with Image.open(path) as im:
        assert im.format == "AVIF"
        im.load()
        assert im.tobytes() == heifkit.open_heif(path).to_pillow().tobytes()


def test_heif_plugin_leaves_avif_to_the_avif_plugin(heif_plugin):
    from heifkit.plugin import _accept_avif, _accept_heif

    for name in ["libheif_example.avif", "pillow_star.avifs", *MINI_AVIF]:
        prefix = (CORPUS / name).read_bytes()[:16]  # what Pillow hands an accept function
        assert not _accept_heif(prefix) and _accept_avif(prefix), name
    for name in ["pheif_zPug_3.heic", "pheif_cat.hif", *MINI_FILES]:
        prefix = (CORPUS / name).read_bytes()[:16]
        assert _accept_heif(prefix) and not _accept_avif(prefix), name


def test_plugin_error_for_an_unsupported_codec_says_why(heif_plugin):
    # AVC: libheif parses the file, so the plugin takes it, but this build has no AVC decoder; the error says so
    with Image.open(CORPUS / "libheif-fuzz_avc32.heif") as im:
        assert im.format == "HEIF"
        with pytest.raises(heifkit.UnsupportedError, match="AVC"):
            im.load()
