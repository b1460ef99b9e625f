"""Saving copies images read from a file as they are stored: the acceptance of the feature.

Every file written here passes the structural checks of ``tests/structure.py`` (its own box reader: extents in
the file, ipma/ipco consistency, ids, pitm, iref targets, true brands). After each kind of edit (metadata, colour
profiles, primary, removing and reordering images, removing thumbnails, depth images and gain maps, the seven
transposes, lossless crops, copies into a new ``HeifFile``, copies beside an image made from pixels):

* heifkit decodes the source's pixels (transposed or cropped with Pillow as the edit says), exactly;
* an independent reader decodes the same: pillow_heif (its own libheif) for HEVC files, Pillow's AVIF plugin
  (libavif, which shows ``irot``/``imir`` as an EXIF orientation and does not apply ``clap``) for AV1 files,
  each compared with its own decode of the source; and it reads the new metadata;
* the copy is a copy: every coded image item is byte for byte the source's, the file size moves by the
  metadata's only, and the save decodes nothing.

Odd-sized 4:2:0 images (``pillow_rot*``): libheif turns the subsampled planes before upsampling them, so a
mirrored decode differs from Pillow's mirror of the source's decode by chroma rounding; there the coded data,
libavif's decode and libheif's decode of the stored (untransformed) image are compared exactly instead.
"""

from __future__ import annotations

import functools
import gc
import io
import itertools
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import AvifImagePlugin, Image, ImageOps, features

import heifkit
import structure
from conftest import BIG_FILES, CORPUS, ENCODING, PUG, ZPUG, corpus_params, counting_native_calls, manifest, psnr

PARIS = CORPUS / "libavif_paris_icc_exif_xmp.avif"  # AV1 4:4:4 403x302, ICC + NCLX, EXIF, XMP
SEINE = CORPUS / "libavif_seine_sdr_gainmap_srgb.avif"  # AV1 4:4:4 400x300, a tmap gain map (altr group)
ABC = CORPUS / "libavif_abc_color_irot_alpha_irot.avif"  # AV1 4:4:4 256x512 shown, alpha, both irot 90
RGBA10 = CORPUS / "pheif_RGBA_10__128x128.heif"  # HEVC 10-bit 4:2:0 with alpha
THUMBED = CORPUS / "libheif-fuzz_colors-with-alpha-thumbnail.heic"  # HEVC 72x72 4:2:0 alpha, thumbnail with alpha
HOPPER = CORPUS / "pillow_hopper.heif"  # HEVC 128x128 4:2:0 with NCLX
ODD = sorted(CORPUS.glob("pillow_rot*mir*.avif"))  # AV1 4:2:0 640x427 shown, irot/imir

TRANSPOSES = list(Image.Transpose)
QUARTER_TURNS = {
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
}
XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>stored</dc:title></rdf:Description></rdf:RDF>'
    b'</x:xmpmeta><?xpacket end="w"?>'
)

needs_avif = pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF plugin")


def exif_bytes(text: str = "heifkit stored copy") -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "heifkit"  # Make
    exif[0x0131] = text  # Software
    return exif.tobytes()


def exif_tags(data: bytes | None) -> dict[int, Any]:
    exif = Image.Exif()
    if data:
        exif.load(data)
    return dict(exif)


def fmt_of(path: Path) -> str:
    return "AVIF" if path.suffix == ".avif" else "HEIF"


def written(heif_file: heifkit.HeifFile, *sources: Path, **kwargs: Any) -> bytes:
    """``heif_file`` saved into memory (as its first source's format unless ``format`` is given), after the
    structural checks (problems the sources have themselves are theirs: a copy keeps them)."""
    kwargs.setdefault("format", fmt_of(sources[0]))
    out = io.BytesIO()
    heif_file.save(out, **kwargs)
    data = out.getvalue()
    structure.assert_valid(data, *sources)
    return data


def coded(source: bytes | Path) -> list[bytes]:
    return structure.coded_data(source)


def shown(image: Any) -> np.ndarray:
    return np.asarray(image.to_pillow())


def primary(heif_file: Any) -> Any:
    return heif_file[heif_file.primary_index]


def heifkit_pixels(source: bytes | Path, index: int | None = None) -> np.ndarray:
    f = heifkit.open_heif(source)
    return shown(primary(f) if index is None else f[index])


def pheif_image(source: bytes | Path, index: int | None = None) -> Any:
    """pillow_heif's image ``index`` (None: primary) of a file, as a Pillow image."""
    f = pillow_heif.open_heif(source)
    return (f[f.primary_index] if index is None else f[index]).to_pillow()


def avif_image(source: bytes | Path) -> Image.Image:
    """Pillow's own AVIF plugin (libavif) decode of a file, turned by the orientation libavif derives from
    irot/imir. The class is used directly: whatever Pillow's registry holds (heifkit's AVIF opener or not)."""
    im = AvifImagePlugin.AvifImageFile(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    im.load()
    return ImageOps.exif_transpose(im)


def same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(a, b)


@functools.cache
def _reference(path: Path, reader: str, index: int) -> np.ndarray:
    """A source's decode by ``reader`` ("heifkit", "pillow_heif", "avif": Pillow's, primary only), once."""
    if reader == "heifkit":
        return heifkit_pixels(path, index)
    return np.asarray(pheif_image(path, index) if reader == "pillow_heif" else avif_image(path))


def check_pixels(data: bytes, path: Path) -> None:
    """Every image of ``data`` (a copy of the file at ``path``) decodes to the source's pixels: heifkit's
    decodes, and pillow_heif's (HEIF) or Pillow's AVIF plugin's (AVIF) against their own of the source."""
    for index in range(len(heifkit.open_heif(path))):
        assert same(heifkit_pixels(data, index), _reference(path, "heifkit", index)), index
        if fmt_of(path) == "HEIF":
            assert same(pheif_image(data, index), _reference(path, "pillow_heif", index)), index
    if fmt_of(path) == "AVIF" and features.check("avif"):
        assert same(avif_image(data), _reference(path, "avif", 0))


@pytest.fixture(scope="module")
def pug_pixels() -> np.ndarray:
    return heifkit_pixels(PUG)


@pytest.fixture(scope="module")
def pug_pheif_pixels() -> np.ndarray:
    return np.asarray(pheif_image(PUG))


# --- the structural checker itself ----------------------------------------------------------------


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full(kind: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big") + payload)


def tiny_file(
    brands: tuple[bytes, ...] = (b"mif1", b"heic"),
    major: bytes = b"heic",
    primary: int = 1,
    extent: tuple[int, int] | None = None,
    associations: tuple[int, ...] = (1, 2),
    refs: bytes = b"",
) -> bytes:
    """A minimal one-item HEVC file (the data is not a real stream: only the structure is checked)."""
    data = b"\0" * 16
    ipco = _box(b"ipco", _box(b"hvcC", b"\1" * 23) + _full(b"ispe", struct.pack(">II", 64, 64)))
    ipma = _full(b"ipma", struct.pack(">IHB", 1, 1, len(associations)) + bytes(associations))
    iinf = _full(b"iinf", struct.pack(">H", 1) + _full(b"infe", struct.pack(">HH", 1, 0) + b"hvc1\0", 2))

    def layout(offset: int, length: int) -> bytes:
        iloc = _full(b"iloc", b"\x44\x00" + struct.pack(">HHHHHII", 1, 1, 0, 0, 1, offset, length), 1)
        hdlr = _full(b"hdlr", b"\0\0\0\0pict" + bytes(13))
        return _full(
            b"meta", hdlr + _full(b"pitm", struct.pack(">H", primary)) + iloc + iinf + refs + _box(b"iprp", ipco + ipma)
        )

    ftyp = _box(b"ftyp", major + b"\0\0\0\0" + b"".join(brands))
    start = len(ftyp) + len(layout(0, 0)) + 8
    offset, length = extent or (start, len(data))
    return ftyp + layout(offset, length) + _box(b"mdat", data)


def test_the_checker_accepts_a_well_formed_file():
    assert structure.check(tiny_file()) == []
    assert structure.coded_data(tiny_file()) == [b"\0" * 16]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"extent": (10_000, 16)}, "outside the"),
        ({"extent": (4, 16)}, "not inside an mdat"),
        ({"primary": 7}, "pitm names item 7"),
        ({"associations": (1, 2, 1)}, "a property associated twice"),
        ({"associations": (1, 9)}, "past ipco"),
        ({"brands": (b"mif1", b"heic", b"avif")}, "name AVIF"),
        ({"brands": (b"mif1", b"heic", b"tmap")}, "name tmap"),
        ({"brands": (b"mif1", b"heic", b"msf1")}, "without a moov"),
        ({"brands": (b"mif1",)}, "major brand 'heic' is not among"),
        ({"refs": _full(b"iref", _box(b"thmb", struct.pack(">HHH", 1, 1, 5)))}, "which does not exist"),
    ],
)
def test_the_checker_finds_what_is_wrong(changes, expected):
    problems = structure.check(tiny_file(**changes))
    assert any(expected in p for p in problems), problems


def test_the_checker_passes_the_sources_used_here():
    for path in [PARIS, SEINE, ABC, RGBA10, THUMBED, HOPPER, ZPUG, *ODD]:
        assert structure.check(path) == [], path.name


# --- metadata and colour: copied, changed as the caller changed them --------------------------------


def _icc(path: Path) -> bytes:
    return heifkit.open_heif(path).info["icc_profile"]


METADATA_EDITS = ["exif-set", "exif-removed", "xmp-set", "xmp-removed", "icc-set", "icc-removed"]


def edit_metadata(edit: str, info: dict[str, Any], path: Path) -> dict[str, Any]:
    """Make ``edit`` to an image's ``info`` (of a file at ``path``); what ``info`` then says."""
    if edit == "exif-set":
        info["exif"] = exif_bytes()
    elif edit == "exif-removed":
        info["exif"] = None
    elif edit == "xmp-set":
        info["xmp"] = XMP
    elif edit == "xmp-removed":
        info.pop("xmp", None)
    elif edit == "icc-set":  # another file's profile
        info["icc_profile"], info["icc_profile_type"] = _icc(PARIS if path.suffix != ".avif" else PUG), "prof"
    else:
        info.pop("icc_profile", None)
    return dict(info)


def _metadata_bytes(p: structure.Parsed) -> int:
    """Bytes of metadata in a file: its metadata items' data and its ICC profiles."""
    items = sum(len(i.data) for i in p.items.values() if i.type in ("Exif", "mime"))
    icc = sum(len(q.payload) - 4 for q in p.ipco if q.kind == "colr" and q.payload[:4] in (b"prof", b"rICC"))
    return items + icc


@pytest.mark.parametrize("edit", METADATA_EDITS)
@pytest.mark.parametrize("path", [PUG, PARIS, ZPUG], ids=lambda p: p.name)
def test_a_metadata_edit_copies_the_coded_images(path, edit):
    plain = written(heifkit.open_heif(path), path)
    f = heifkit.open_heif(path)
    expected = edit_metadata(edit, primary(f).info, path)
    with counting_native_calls() as calls:
        data = written(f, path)
    assert calls.made("heif_decode_image", *ENCODING) == {}  # no decode, no encode
    assert all(image._data is None for image in f)
    assert coded(data) == coded(path)  # every coded image byte for byte
    before, after = structure.parse(plain), structure.parse(data)
    moved = (len(data) - len(plain)) - (_metadata_bytes(after) - _metadata_bytes(before))
    # an item's entries (an XMP item's infe, iloc entry and cdsc iref: 71 bytes), a colr box's header, and a
    # byte per property association (a grid's tiles carry its colour profile too)
    items = abs(len(after.items) - len(before.items))
    associations = abs(
        sum(len(i.properties) for i in after.items.values()) - sum(len(i.properties) for i in before.items.values())
    )
    assert abs(moved) <= 16 + 80 * items + associations, f"{moved} bytes more than the metadata's"

    check_pixels(data, path)
    again = primary(heifkit.open_heif(data))
    assert again.info.get("exif") == (expected.get("exif") or None)
    assert again.info.get("xmp") == expected.get("xmp")
    assert (again.info.get("icc_profile") or None) == (expected.get("icc_profile") or None)


@pytest.mark.parametrize("edit", METADATA_EDITS)
def test_a_metadata_edit_reads_the_same_elsewhere_heic(edit, pug_pheif_pixels):
    """pillow_heif reads the new metadata of a copied HEIC; the pixels of one edit are decoded by both."""
    f = heifkit.open_heif(PUG)
    expected = edit_metadata(edit, f.info, PUG)
    data = written(f, PUG)
    theirs = pillow_heif.open_heif(data)
    assert exif_tags(theirs.info.get("exif")) == exif_tags(expected.get("exif"))
    assert theirs.info.get("xmp") == expected.get("xmp")
    assert (theirs.info.get("icc_profile") or None) == (expected.get("icc_profile") or None)
    if edit == "exif-set":  # one 12 MP decode each: the coded data is the source's in every case
        assert np.array_equal(np.asarray(theirs), pug_pheif_pixels)
        assert np.array_equal(heifkit_pixels(data), pug_pheif_pixels)


@needs_avif
@pytest.mark.parametrize("edit", METADATA_EDITS)
def test_a_metadata_edit_reads_the_same_elsewhere_avif(edit):
    """Pillow's AVIF plugin reads the new metadata of a copied AVIF, and decodes the source's pixels."""
    f = heifkit.open_heif(PARIS)
    expected = edit_metadata(edit, f.info, PARIS)
    data = written(f, PARIS)
    theirs = avif_image(data)
    assert exif_tags(theirs.info.get("exif")) == exif_tags(expected.get("exif"))
    assert theirs.info.get("xmp") == expected.get("xmp")
    assert theirs.info.get("icc_profile") == (expected.get("icc_profile") or None)
    assert same(theirs, avif_image(PARIS))
    assert same(heifkit_pixels(data), heifkit_pixels(PARIS))


def test_save_parameters_change_the_metadata_of_a_copy():
    data = written(heifkit.open_heif(PARIS), PARIS, exif=exif_bytes("kwarg"), xmp=None, icc_profile=None)
    assert coded(data) == coded(PARIS)
    info = heifkit.open_heif(data).info
    assert exif_tags(info["exif"])[0x0131] == "kwarg"
    assert info.get("xmp") is None and not info.get("icc_profile")


def test_an_nclx_tag_change_is_copied_and_read_back():
    f = heifkit.open_heif(HOPPER)
    before = dict(f.info["nclx_profile"])
    f.info["nclx_profile"] = {**before, "color_primaries": 9, "transfer_characteristics": 16}
    data = written(f, HOPPER)
    assert coded(data) == coded(HOPPER)
    for reader in (heifkit.open_heif(data), pillow_heif.open_heif(data)):
        nclx = reader.info["nclx_profile"]
        assert (nclx["color_primaries"], nclx["transfer_characteristics"]) == (9, 16)
        assert (nclx["matrix_coefficients"], nclx["full_range_flag"]) == (6, 1)
    assert same(heifkit_pixels(data), heifkit_pixels(HOPPER))
    assert same(pheif_image(data), pheif_image(HOPPER))


def test_nclx_keyword_arguments_for_the_tags_are_copied():
    data = written(heifkit.open_heif(SEINE), SEINE, color_primaries=9, transfer_characteristics=16)
    assert coded(data) == coded(SEINE)
    nclx = heifkit.open_heif(data).info["nclx_profile"]
    assert (nclx["color_primaries"], nclx["transfer_characteristics"], nclx["matrix_coefficients"]) == (9, 16, 6)
    assert same(heifkit_pixels(data), heifkit_pixels(SEINE))


@pytest.mark.parametrize("change", [{"matrix_coefficients": 1}, {"full_range_flag": 0}])
def test_an_nclx_change_of_how_samples_convert_is_encoded(change):
    """matrix_coefficients and full_range_flag say how the coded samples convert to RGB: relabelling a copy
    would change every pixel, so the image is encoded anew (and reencode=False says why)."""
    f = heifkit.open_heif(HOPPER)
    f.info["nclx_profile"] = {**f.info["nclx_profile"], **change}
    data = written(f, HOPPER)
    assert coded(data) != coded(HOPPER)
    assert psnr(heifkit_pixels(data), heifkit_pixels(HOPPER)) > 30
    key = next(iter(change))
    with pytest.raises(ValueError, match=f"{key} was changed"):
        written(f, HOPPER, reencode=False)


# --- the images of the file: primary, removed, reordered, thumbnails ---------------------------------


def check_images(data: bytes, order: list[int], primary_index: int) -> None:
    """``data`` holds zPug's images ``order`` (indices in the source), ``primary_index`` its primary, with the
    source's pixels and thumbnails, for heifkit and for pillow_heif."""
    mine, theirs = heifkit.open_heif(data), pillow_heif.open_heif(data)
    source, source_theirs = heifkit.open_heif(ZPUG), pillow_heif.open_heif(ZPUG)
    assert len(mine) == len(theirs) == len(order)
    assert mine.primary_index == theirs.primary_index == primary_index
    for n, i in enumerate(order):
        assert mine[n].size == source[i].size and mine[n].mode == source[i].mode
        assert same(shown(mine[n]), shown(source[i]))
        assert same(theirs[n].to_pillow(), source_theirs[i].to_pillow())
        assert theirs[n].info["thumbnails"] == mine[n].info["thumbnails"]


@pytest.mark.parametrize("index", [0, 2])
def test_the_primary_image_changes(index):
    f = heifkit.open_heif(ZPUG)
    f.primary_index = index
    data = written(f, ZPUG)
    assert coded(data) == coded(ZPUG)
    check_images(data, [0, 1, 2], index)


def test_the_primary_image_as_a_save_parameter():
    data = written(heifkit.open_heif(ZPUG), ZPUG, primary_index=2)
    check_images(data, [0, 1, 2], 2)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_an_image_is_removed(index):
    f = heifkit.open_heif(ZPUG)
    del f[index]
    data = written(f, ZPUG)
    order = [i for i in range(3) if i != index]
    assert set(coded(data)) < set(coded(ZPUG))
    check_images(data, order, order.index(1) if 1 in order else 0)


def test_images_are_reordered():
    f = heifkit.open_heif(ZPUG)
    first, last = f[0], f[2]
    f[0], f[2] = last, first
    data = written(f, ZPUG)
    assert coded(data) == coded(ZPUG)
    check_images(data, [2, 1, 0], 1)


@pytest.mark.parametrize(("kept", "expected"), [([], []), ([16], [16]), ([32], [32])])
def test_thumbnails_are_removed(kept, expected):
    f = heifkit.open_heif(ZPUG)
    f[0].info["thumbnails"] = kept
    data = written(f, ZPUG)
    again = heifkit.open_heif(data)
    assert again[0].info["thumbnails"] == expected == pillow_heif.open_heif(data)[0].info["thumbnails"]
    assert again[1].info["thumbnails"] == [32]  # the other image's
    source = heifkit.open_heif(ZPUG)[0]
    for n, size in enumerate(expected):
        assert same(shown(again[0].get_thumbnail(n)), shown(source.get_thumbnail([32, 16].index(size))))
    check_images(data, [0, 1, 2], 1)


def test_a_thumbnail_with_alpha_is_removed():
    f = heifkit.open_heif(THUMBED)
    f.info["thumbnails"] = []
    data = written(f, THUMBED)
    p = structure.parse(data)
    assert [i.type for i in p.items.values()] == ["hvc1", "hvc1"]  # the image and its alpha
    assert same(heifkit_pixels(data), heifkit_pixels(THUMBED))
    assert same(pheif_image(data), pheif_image(THUMBED))


def test_listing_a_thumbnail_the_file_does_not_have_is_encoded():
    f = heifkit.open_heif(ZPUG)
    f[2].info["thumbnails"] = [32]
    with pytest.raises(ValueError, match="thumbnails the file does not have"):
        written(f, ZPUG, reencode=False)


# --- attached images: depth, auxiliary gain map, tmap gain map ---------------------------------------


def test_the_depth_image_is_removed(pug_pixels):
    f = heifkit.open_heif(PUG)
    f.info["depth_images"] = []
    data = written(f, PUG)
    again = heifkit.open_heif(data)
    assert again.info["depth_images"] == [] and pillow_heif.open_heif(data).info["depth_images"] == []
    assert [g.info["aux_type"] for g in again.info["gain_maps"]] == ["urn:com:apple:photo:2020:aux:hdrgainmap"]
    assert set(coded(data)) < set(coded(PUG))
    assert np.array_equal(shown(again[0]), pug_pixels)


def test_the_auxiliary_gain_map_is_removed():
    f = heifkit.open_heif(PUG)
    f.info["aux"] = {}
    data = written(f, PUG)
    again = heifkit.open_heif(data)
    assert again.info["aux"] == {} and again.info["gain_maps"] == []
    assert len(again.info["depth_images"]) == 1  # kept: only what info no longer lists goes
    assert set(coded(data)) < set(coded(PUG))


@needs_avif
def test_the_tmap_gain_map_is_removed():
    f = heifkit.open_heif(SEINE)
    f.info["gain_maps"] = []
    data = written(f, SEINE)
    p = structure.parse(data)
    assert "tmap" not in p.kinds() and "tmap" not in p.brands and p.groups == []
    assert len(coded(data)) == 1  # the gain map's coded image went with its tmap item
    assert heifkit.open_heif(data).info["gain_maps"] == []
    assert same(heifkit_pixels(data), heifkit_pixels(SEINE))
    assert same(avif_image(data), avif_image(SEINE))


def test_a_plain_copy_keeps_the_tmap_gain_map_and_its_group():
    data = written(heifkit.open_heif(SEINE), SEINE)
    assert coded(data) == coded(SEINE)
    p = structure.parse(data)
    assert "tmap" in p.brands and [kind for kind, _, _ in p.groups] == ["altr"]
    (kept,), (source,) = heifkit.open_heif(data).info["gain_maps"], heifkit.open_heif(SEINE).info["gain_maps"]
    assert kept.info["tmap"] == source.info["tmap"] and same(shown(kept), shown(source))


# --- lossless geometry -----------------------------------------------------------------------------


def transposed_file(path: Path, method: Image.Transpose, index: int | None = None) -> bytes:
    f = heifkit.open_heif(path)
    i = f.primary_index if index is None else index
    f[i] = f[i].transpose(method)
    assert f[i]._data is None  # nothing decoded
    return written(f, path)


def geometry_of(p: structure.Parsed, item: int) -> list[tuple[str, bytes]]:
    return [(kind, payload) for kind, payload, _ in p.props(item) if kind in ("clap", "irot", "imir")]


@pytest.mark.parametrize("method", TRANSPOSES, ids=lambda m: m.name)
@pytest.mark.parametrize("path", [RGBA10, THUMBED], ids=lambda p: p.name)
def test_transpose_heic(path, method):
    data = transposed_file(path, method)
    assert coded(data) == coded(path)
    source = heifkit.open_heif(path)[0]
    again = heifkit.open_heif(data)[0]
    assert again.size == source.to_pillow().transpose(method).size
    assert same(shown(again), source.to_pillow().transpose(method))
    assert same(pheif_image(data), pheif_image(path).transpose(method))
    for n in range(len(source.info["thumbnails"])):  # thumbnails turn, their alpha too
        assert same(shown(again.get_thumbnail(n)), source.get_thumbnail(n).to_pillow().transpose(method))


@needs_avif
@pytest.mark.parametrize("method", TRANSPOSES, ids=lambda m: m.name)
@pytest.mark.parametrize("path", [ABC, SEINE], ids=lambda p: p.name)
def test_transpose_avif(path, method):
    data = transposed_file(path, method)
    assert coded(data) == coded(path)
    assert same(heifkit_pixels(data), Image.fromarray(heifkit_pixels(path)).transpose(method))
    assert same(avif_image(data), avif_image(path).transpose(method))


@needs_avif
@pytest.mark.parametrize("method", TRANSPOSES, ids=lambda m: m.name)
def test_transpose_keeps_the_tmap_gain_map_as_coded(method):
    """The gain map stays in the base image's coded orientation and the tmap item has no geometry of its own, as
    libavif writes them (it refuses a tmap item with irot/imir/clap); to_hdr() turns the map with the photo."""
    data = transposed_file(SEINE, method)
    (gain_map,) = heifkit.open_heif(data).info["gain_maps"]
    (source,) = heifkit.open_heif(SEINE).info["gain_maps"]
    assert same(shown(gain_map), source.to_pillow())
    p = structure.parse(data)
    (tmap,) = [i for i in p.items.values() if i.type == "tmap"]
    base, gain = p.refs_from(tmap.id, "dimg")
    assert geometry_of(p, tmap.id) == [] and geometry_of(p, gain) == []
    assert geometry_of(p, base) != []
    hdr = heifkit.open_heif(data)[0].to_hdr()
    expected = Image.fromarray(heifkit.open_heif(SEINE)[0].to_hdr()[:, :, 0], "F").transpose(method)
    assert abs(hdr[:, :, 0] - np.asarray(expected)).max() < 1e-4


def test_transpose_resets_the_exif_orientation(tmp_path):
    """After a transpose irot/imir say how the image is shown: the EXIF orientation is reset to 1 (a file that
    says 6 in EXIF and has no irot shows its pixels as stored, as libheif does)."""
    source = tmp_path / "oriented.heic"
    exif = Image.Exif()
    exif[274] = 6
    source.write_bytes(written(heifkit.open_heif(ZPUG), ZPUG, exif=exif.tobytes(), primary_index=0))
    assert coded(source) == coded(ZPUG)
    data = transposed_file(source, Image.Transpose.FLIP_TOP_BOTTOM)
    assert coded(data) == coded(ZPUG)
    for info in (heifkit.open_heif(data).info, pillow_heif.open_heif(data).info):
        assert exif_tags(info["exif"]).get(274) == 1
    assert same(
        heifkit_pixels(data), Image.fromarray(heifkit_pixels(ZPUG, 0)).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    )


@pytest.mark.slow  # 12 MP decodes, and the depth image's
@pytest.mark.parametrize("method", [Image.Transpose.ROTATE_90, Image.Transpose.TRANSVERSE], ids=lambda m: m.name)
def test_transpose_a_grid_with_depth_and_gain_map(method, pug_pixels, pug_pheif_pixels):
    data = transposed_file(PUG, method)
    expected = Image.fromarray(pug_pixels).transpose(method)
    again = heifkit.open_heif(data)
    assert same(shown(again[0]), expected)
    assert same(pheif_image(data), Image.fromarray(pug_pheif_pixels).transpose(method))
    source = heifkit.open_heif(PUG)
    # the depth image and the gain map stay in the coded orientation (Apple's convention for both)
    (depth,), (depth_source,) = again.info["depth_images"], source.info["depth_images"]
    assert same(shown(depth), depth_source.to_pillow())
    (gain_map,), (gain_source,) = again.info["gain_maps"], source.info["gain_maps"]
    assert same(shown(gain_map), gain_source.to_pillow())


@needs_avif
@pytest.mark.parametrize("method", TRANSPOSES, ids=lambda m: m.name)
@pytest.mark.parametrize("path", ODD, ids=lambda p: p.name)
def test_transpose_odd_sized_420(path, method):
    """Equal up to chroma rounding (libheif turns the subsampled planes): the coded data, libavif's decode and
    the stored pixels are exact, libheif's turned decode close."""
    data = transposed_file(path, method)
    assert coded(data) == coded(path)
    assert same(avif_image(data), avif_image(path).transpose(method))
    stored = heifkit.open_heif(data, apply_transformations=False)[0]
    assert same(shown(stored), shown(heifkit.open_heif(path, apply_transformations=False)[0]))
    expected = Image.fromarray(heifkit_pixels(path)).transpose(method)
    got = heifkit_pixels(data)
    assert got.shape == np.asarray(expected).shape
    assert psnr(got, expected) > 30


def test_four_quarter_turns_give_the_source_back(tmp_path):
    """Open, turn, save, reopen, four times: the file shows the source again, with its own transforms."""
    path = tmp_path / ABC.name
    shutil.copy(ABC, path)
    for _ in range(4):
        f = heifkit.open_heif(path)
        f[0] = f[0].transpose(Image.Transpose.ROTATE_90)
        f.save(path)
        structure.assert_valid(path, ABC)
    assert coded(path) == coded(ABC)
    after, before = structure.parse(path), structure.parse(ABC)
    assert [geometry_of(after, i) for i in sorted(after.items)] == [
        geometry_of(before, i) for i in sorted(before.items)
    ]
    assert same(heifkit_pixels(path), heifkit_pixels(ABC))


def _scaled(box: tuple[int, int, int, int], size: tuple[int, int], to: tuple[int, int]) -> tuple[int, ...]:
    sx, sy = to[0] / size[0], to[1] / size[1]
    left, top, right, bottom = box
    return (int(left * sx), int(top * sy), -int(-right * sx // 1), -int(-bottom * sy // 1))


def test_lossless_crop_heic_with_thumbnails():
    box = (2, 4, 41, 51)  # 4:2:0: an even start, any end
    f = heifkit.open_heif(ZPUG)
    f[0] = f[0].crop(box, lossless=True)
    assert f[0]._data is None
    data = written(f, ZPUG)
    assert coded(data) == coded(ZPUG)
    source, again = heifkit.open_heif(ZPUG)[0], heifkit.open_heif(data)[0]
    assert again.size == (39, 47)
    assert same(shown(again), source.to_pillow().crop(box))
    assert same(pheif_image(data, 0), pheif_image(ZPUG, 0).crop(box))
    for n in range(2):  # each thumbnail keeps the same part of the picture, from a chroma sample (4:2:0)
        thumbnail = source.get_thumbnail(n)
        left, top, right, bottom = _scaled(box, source.size, thumbnail.size)
        assert same(
            shown(again.get_thumbnail(n)), thumbnail.to_pillow().crop((left - left % 2, top - top % 2, right, bottom))
        )


@needs_avif
@pytest.mark.parametrize("path", [ABC, SEINE], ids=lambda p: p.name)
def test_lossless_crop_avif(path):
    box = (3, 5, 200, 250)  # 4:4:4: any box
    f = heifkit.open_heif(path)
    f[0] = f[0].crop(box, lossless=True)
    data = written(f, path)
    assert coded(data) == coded(path)
    assert same(heifkit_pixels(data), Image.fromarray(heifkit_pixels(path)).crop(box))
    assert same(avif_image(data), avif_image(path))  # libavif does not apply clap: the whole coded image
    if path == SEINE:
        (gain_map,), (source,) = heifkit.open_heif(data).info["gain_maps"], heifkit.open_heif(path).info["gain_maps"]
        assert same(shown(gain_map), source.to_pillow())  # as coded: to_hdr() crops it with the image
        cropped = heifkit.open_heif(data)[0].to_hdr()
        assert abs(cropped - heifkit.open_heif(path)[0].to_hdr()[5:250, 3:200]).max() < 1e-4


def test_lossless_crop_of_420_refuses_an_odd_start():
    image = heifkit.open_heif(RGBA10)[0]
    with pytest.raises(ValueError, match="between two chroma samples"):
        image.crop((1, 0, 20, 20), lossless=True)
    turned = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)  # the box's right edge is the coded left
    with pytest.raises(ValueError, match="between two chroma samples"):
        turned.crop((0, 0, 21, 20), lossless=True)
    expected = image.to_pillow().transpose(Image.Transpose.FLIP_LEFT_RIGHT).crop((0, 0, 22, 20))
    assert same(shown(turned.crop((0, 0, 22, 20), lossless=True)), expected)


def test_a_lossless_edit_of_an_image_made_from_pixels_is_refused():
    image = heifkit.from_pillow(Image.new("RGB", (16, 16)))[0]
    with pytest.raises(ValueError, match="not read from a file"):
        image.transpose(Image.Transpose.ROTATE_90)
    with pytest.raises(ValueError, match="not read from a file"):
        image.crop((0, 0, 8, 8), lossless=True)


def _ops(draw: Any, size: tuple[int, int], subsampled: bool) -> list[Any]:
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            ops.append(draw(st.sampled_from(TRANSPOSES)))
            if ops[-1] in QUARTER_TURNS:
                size = (size[1], size[0])
            continue
        width, height = size
        step = 2 if subsampled else 1  # every edge even: a later mirror puts an end where a start was
        if width < 2 * step or height < 2 * step:
            continue
        left = draw(st.integers(0, width // step - 1)) * step
        top = draw(st.integers(0, height // step - 1)) * step
        right = draw(st.integers(left // step + 1, width // step)) * step
        bottom = draw(st.integers(top // step + 1, height // step)) * step
        ops.append((left, top, right, bottom))
        size = (right - left, bottom - top)
    return ops


@st.composite
def geometry_case(draw: Any) -> tuple[Path, int, list[Any]]:
    path, index, subsampled = draw(st.sampled_from([(ABC, 0, False), (ZPUG, 0, True), (RGBA10, 0, True)]))
    size = heifkit.open_heif(path)[index].size
    return path, index, _ops(draw, size, subsampled)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geometry_case())
def test_transposes_and_crops_compose(case):
    """Any sequence of transposes and lossless crops (even edges for 4:2:0) shows what Pillow makes of the
    source's decode with the same sequence; saved, the file is well formed and shows the same."""
    path, index, ops = case
    source = heifkit.open_heif(path)[index]
    image, expected = source, source.to_pillow()
    for op in ops:
        if isinstance(op, tuple):
            image, expected = image.crop(op, lossless=True), expected.crop(op)
        else:
            image, expected = image.transpose(op), expected.transpose(op)
    assert image.size == expected.size
    assert same(shown(image), expected)
    f = heifkit.HeifFile()
    f.add_from_heif(image)
    data = written(f, path)
    assert set(coded(data)) <= set(coded(path))
    assert same(heifkit_pixels(data), expected)


# --- copies into another HeifFile, and beside new images ------------------------------------------


def test_add_from_heif_copies_lazily():
    source = heifkit.open_heif(ZPUG)
    f = heifkit.HeifFile()
    f.add_from_heif(source[2])
    f.add_from_heif(source[1])
    f.primary_index = 1
    with counting_native_calls() as calls:
        data = written(f, ZPUG)
    assert calls.made("heif_decode_image", *ENCODING) == {}
    assert all(image._data is None for image in [*f, *source])
    p = structure.parse(data)
    assert set(coded(data)) < set(coded(ZPUG))
    assert sorted(i.type for i in p.items.values()) == ["grid", "hvc1", "hvc1", "hvc1"]  # 2, 1 and its thumbnail
    check_images(data, [2, 1], 1)


def test_add_from_heif_of_two_files():
    f = heifkit.HeifFile()
    f.add_from_heif(heifkit.open_heif(THUMBED)[0])
    f.add_from_heif(heifkit.open_heif(RGBA10)[0])
    data = written(f, THUMBED, RGBA10)
    assert sorted(coded(data)) == sorted(coded(THUMBED) + coded(RGBA10))
    again = pillow_heif.open_heif(data)
    assert same(again[0].to_pillow(), pheif_image(THUMBED))
    assert same(again[1].to_pillow(), pheif_image(RGBA10))
    assert again[0].info["thumbnails"] == [64]


@pytest.mark.parametrize("path", [ZPUG, SEINE], ids=lambda p: p.name)
def test_a_copy_beside_an_image_from_pixels(path):
    x = np.linspace(0, 255, 64)[None, :] * np.ones((48, 1))
    pixels = Image.fromarray(np.dstack([x, x[:, ::-1], x / 2]).astype(np.uint8))  # smooth: codes closely
    f = heifkit.open_heif(path)
    f.add_from_pillow(pixels)
    data = written(f, path)
    p = structure.parse(data)
    assert set(coded(path)) <= set(coded(data))  # the copies, byte for byte
    assert len(coded(data)) == len(coded(path)) + 1  # and the new image, encoded
    again = heifkit.open_heif(data)
    assert len(again) == len(f)
    assert again[-1].size == (64, 48) and psnr(shown(again[-1]), np.asarray(pixels)) > 25
    for n in range(len(f) - 1):
        assert same(shown(again[n]), heifkit_pixels(path, n))
    assert ("avif" in p.brands) == (path == SEINE) and ("heic" in p.brands) == (path == ZPUG)
    if path == ZPUG:
        theirs = pillow_heif.open_heif(data)
        assert [im.size for im in theirs] == [im.size for im in again]
        assert theirs.primary_index == again.primary_index == 1


# --- reencode ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [PARIS, ZPUG], ids=lambda p: p.name)
def test_reencode_true_encodes(path):
    data = written(heifkit.open_heif(path), path, reencode=True)
    assert not set(coded(data)) & set(coded(path))
    for n in range(len(heifkit.open_heif(path))):
        assert psnr(heifkit_pixels(data, n), heifkit_pixels(path, n)) > 30


def test_a_quality_encodes_and_keep_copies():
    assert coded(written(heifkit.open_heif(ZPUG), ZPUG, quality=90)) != coded(ZPUG)
    assert coded(written(heifkit.open_heif(ZPUG), ZPUG, quality="keep")) == coded(ZPUG)
    assert coded(written(heifkit.open_heif(ZPUG), ZPUG, reencode=False, quality="keep")) == coded(ZPUG)


@pytest.mark.parametrize(
    ("make", "kwargs", "reason"),
    [
        (lambda: heifkit.from_pillow(Image.new("RGB", (16, 16))), {}, "not read from a file"),
        (lambda: heifkit.open_heif(ZPUG), {"quality": 50}, r"coding change \(quality\)"),
        (lambda: heifkit.open_heif(ZPUG), {"chroma": 444}, r"coding change \(chroma\)"),
        (lambda: heifkit.open_heif(PARIS), {"format": "HEIF"}, "coded for AVIF, not HEIF"),
        (lambda: heifkit.open_heif(ZPUG), {"format": "AVIF"}, "coded for HEIF, not AVIF"),
    ],
)
def test_reencode_false_says_why(make, kwargs, reason, native_calls):
    f = make()
    kwargs.setdefault("format", "HEIF")
    with pytest.raises(ValueError, match=reason):
        f.save(io.BytesIO(), reencode=False, **kwargs)
    assert native_calls.made(*ENCODING) == {}


def test_reencode_false_names_a_changed_coded_property():
    f = heifkit.open_heif(ZPUG)
    f[0].info["bit_depth"] = 10
    with pytest.raises(ValueError, match="bit_depth"):
        f.save(io.BytesIO(), reencode=False)
    assert coded(written(f, ZPUG)) != coded(ZPUG)  # by default: encoded


# --- the loop users write ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ZPUG, SEINE], ids=lambda p: p.name)
def test_edit_exif_and_save_in_a_loop(tmp_path, path):
    target = tmp_path / path.name
    shutil.copy(path, target)
    expected = [shown(im) for im in heifkit.open_heif(path)]
    sizes = []
    for n in range(20):
        f = heifkit.open_heif(target)
        f.info["exif"] = exif_bytes(f"pass {n:03d}")
        f.save(target)
        structure.assert_valid(target, path)
        sizes.append(target.stat().st_size)
        again = heifkit.open_heif(target)
        assert exif_tags(again.info["exif"])[0x0131] == f"pass {n:03d}"
        assert all(same(shown(im), pixels) for im, pixels in zip(again, expected, strict=True))
    assert len(set(sizes)) == 1, sizes  # no growth
    assert coded(target) == coded(path)


def test_saving_a_big_file_twice_over_itself(tmp_path, monkeypatch):
    """A file libheif reads lazily by path (over LAZY_READ_THRESHOLD) saved over itself twice by the same
    HeifFile: the second copy is made of the file as it was opened, not of the one the first save wrote."""
    monkeypatch.setattr(heifkit._read.source, "LAZY_READ_THRESHOLD", 0)
    target = tmp_path / ZPUG.name
    shutil.copy(ZPUG, target)
    f = heifkit.open_heif(target)
    first, last = f[0], f[2]
    f[0], f[2] = last, first
    f.save(target)
    f.info["xmp"] = XMP
    f.save(target)
    structure.assert_valid(target, ZPUG)
    check_images(target.read_bytes(), [2, 1, 0], 1)


# --- lifetimes: the source dropped first ------------------------------------------------------------


def _edited(kind: str, source: heifkit.HeifFile) -> heifkit.HeifImage:
    if kind == "transposed":
        return source[2].transpose(Image.Transpose.ROTATE_270)
    if kind == "cropped":
        return source[2].crop((2, 2, 40, 40), lossless=True)
    image = heifkit.HeifFile()
    return image.add_from_heif(source[2])  # a lazy copy


@pytest.mark.parametrize("kind", ["transposed", "cropped", "copied"])
@pytest.mark.parametrize("order", list(itertools.permutations(["file", "image", "other"])), ids="-".join)
def test_the_source_dropped_before_the_save(kind, order):
    """The source HeifFile and its image dropped, another file opened and decoded, in every order, before the
    edited image is saved: it keeps what it needs alive (a handle keeps its context)."""
    expected = {"transposed": lambda im: im.transpose(Image.Transpose.ROTATE_270),
                "cropped": lambda im: im.crop((2, 2, 40, 40)), "copied": lambda im: im}[kind]  # fmt: skip
    fresh = shown(heifkit.open_heif(ZPUG)[2])
    reference = np.asarray(expected(Image.fromarray(fresh)))
    held: dict[str, Any] = {"file": heifkit.open_heif(ZPUG)}
    held["image"] = held["file"][2]
    edited = _edited(kind, held["file"])
    for step in order:
        if step == "other":
            other = heifkit.open_heif(THUMBED)
            assert other[0].to_pillow().size == (72, 72)
            del other
        else:
            del held[step]
        gc.collect()
    f = heifkit.HeifFile()
    f.add_from_heif(edited)
    del edited
    gc.collect()
    data = written(f, ZPUG)
    del f
    gc.collect()
    assert same(heifkit_pixels(data), reference)
    assert same(heifkit_pixels(ZPUG, 2), fresh)  # the source file, opened again, decodes as before


# --- the Pillow plugin ------------------------------------------------------------------------------


def test_pillow_open_and_save_copies_the_stored_image(heif_plugin):
    out = io.BytesIO()
    with Image.open(ZPUG) as im:
        im.save(out, format="HEIF")  # the pixels were never loaded
    data = out.getvalue()
    structure.assert_valid(data, ZPUG)
    assert coded(data) and set(coded(data)) <= set(coded(ZPUG))


def test_the_odd_sized_files_are_there():
    assert [p.name for p in ODD] == [f"pillow_rot{r}mir{m}.avif" for r in range(4) for m in range(2)]


# --- every file of the corpus, copied as it is -------------------------------------------------------


def _copyable() -> list[Any]:
    """Each corpus file libheif decodes, stored as items (not ``mini``, not a sequence), with its format."""
    rows = [r for r in manifest() if r["set"] == "main" and r["libheif_decode"] == "OK" and r["container"] == "items"]
    rows = [r for r in rows if not r["file"].endswith("s")]  # .avifs/.heics: sequences
    marks = {p.id: p.marks for p in corpus_params(r["file"] for r in rows)}
    return [
        pytest.param(r["file"], "AVIF" if r["codec"] == "AV1" else "HEIF", marks=marks[r["file"]], id=r["file"])
        for r in rows
    ]


@pytest.mark.parametrize(("name", "fmt"), _copyable())
def test_every_corpus_file_is_copied_well_formed(name, fmt):
    """A plain save of each file copies every image (reencode=False), well formed, its coded images byte for
    byte (the file's own that the copy keeps: thumbnails and attached images of its top-level images)."""
    path = CORPUS / name
    data = written(heifkit.open_heif(path), path, format=fmt, reencode=False)
    assert set(coded(data)) <= set(coded(path))
    source, again = heifkit.open_heif(path), heifkit.open_heif(data)
    assert [(im.size, im.mode) for im in again] == [(im.size, im.mode) for im in source]
    assert again.primary_index == source.primary_index
    if name not in BIG_FILES:  # 7 MP and more: the coded data says it
        for mine, theirs in zip(again, source, strict=True):
            assert same(shown(mine), shown(theirs))


def test_a_tile_that_is_a_top_level_image_too_is_written_once():
    """libavif's sofa_grid1x5_420 shows a grid and its five tiles as top-level images: a copy keeps one item of
    each tile, whichever image comes first."""
    path = CORPUS / "libavif_sofa_grid1x5_420.avif"
    data = written(heifkit.open_heif(path), path)
    assert coded(data) == coded(path) and len(heifkit.open_heif(data)) == 6
    source = heifkit.open_heif(path)
    f = heifkit.HeifFile()
    f.add_from_heif(source[2])
    f.add_from_heif(source[0])  # the grid, with the tile already written
    data = written(f, path)
    assert coded(data) == coded(path)
    again = heifkit.open_heif(data)
    assert same(shown(again[0]), shown(source[2])) and same(shown(again[1]), shown(source[0]))
