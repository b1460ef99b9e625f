"""Metadata on save: EXIF, XMP, generic blocks (IPTC), thumbnails, pixel aspect ratio, HDR metadata.

Scope: HeifFile.save applies per-image kwargs to the primary image only; the Pillow save hooks apply them
to every frame (as pillow_heif). Values are read back with heifkit and pillow_heif; HDR boxes are also
looked for in the raw bytes.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageSequence

import heifkit
from conftest import AMVE, CLLI, CORPUS, MDCV, pil_bytes, save_bytes
from heifkit import options

ZPUG = CORPUS / "pheif_zPug_3.heic"  # 64x64 RGB [32, 16], 64x64 L primary [32], 96x64 RGB []
EXIF_META = CORPUS / "pheif_L_exif_xmp_iptc.heic"

XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:subject><rdf:Bag><rdf:li>TestSubject</rdf:li>'
    b'</rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)
IPTC = {"type": "iptc", "content_type": "", "data": b"\x1c\x02\x00\x00\x02\x00\x04\x1c\x02\x05\x00\x05title"}


pytestmark = pytest.mark.usefixtures("heif_plugin")


def image(size: tuple[int, int] = (32, 32), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def exif_with(**tags: Any) -> Image.Exif:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[{"description": 270, "make": 271, "software": 305}[tag]] = value
    return exif


def both(data: bytes) -> tuple[heifkit.HeifFile, Any]:
    return heifkit.open_heif(data), pillow_heif.open_heif(data)


def two_images() -> heifkit.HeifFile:
    """Two new images; the second (24x16) is the primary."""
    heif_file = heifkit.from_pillow(image((16, 16)))
    heif_file.add_from_pillow(image((24, 16), seed=1))
    heif_file[1].info["primary"] = True
    return heif_file


# ---------------------------------------------------------------------------------------------------
# EXIF


def test_exif_bytes_round_trip():
    exif = exif_with(description="hello", software="heifkit").tobytes()
    assert exif.startswith(b"Exif\x00\x00")
    ours, theirs = both(save_bytes(heifkit.from_pillow(image()), exif=exif))
    assert ours.info["exif"] == theirs.info["exif"] == exif
    with Image.open(io.BytesIO(save_bytes(heifkit.from_pillow(image()), exif=exif))) as im:
        assert im.getexif()[270] == "hello"


def test_exif_without_prefix_round_trip():
    exif = exif_with(description="abc").tobytes()[6:]
    assert exif.startswith(b"MM\x00*")
    ours, theirs = both(save_bytes(heifkit.from_pillow(image()), exif=exif))
    assert ours.info["exif"] == theirs.info["exif"] == exif


def test_exif_as_pillow_exif_object():
    exif = exif_with(description="object", make="Cam")
    for data in (save_bytes(heifkit.from_pillow(image()), exif=exif), pil_bytes(image(), exif=exif)):
        ours, theirs = both(data)
        assert ours.info["exif"] == theirs.info["exif"] == exif.tobytes()
        with Image.open(io.BytesIO(data)) as im:
            assert (im.getexif()[270], im.getexif()[271]) == ("object", "Cam")


def test_exif_from_pillow_info_and_getexif():
    im = image()
    im.getexif()[270] = "from getexif"
    with Image.open(io.BytesIO(pil_bytes(im))) as back:
        assert back.getexif()[270] == "from getexif"
    im2 = image()
    im2.info["exif"] = exif_with(description="from info").tobytes()
    with Image.open(io.BytesIO(save_bytes(heifkit.from_pillow(im2)))) as back:
        assert back.getexif()[270] == "from info"


def test_no_exif_means_no_exif_block():
    data = save_bytes(heifkit.from_pillow(image()))
    ours, theirs = both(data)
    assert ours.info["exif"] is None and theirs.info["exif"] is None
    assert b"Exif" not in data
    assert heifkit.open_heif(pil_bytes(image())).info["exif"] is None


def test_exif_none_removes():
    src = heifkit.open_heif(save_bytes(heifkit.from_pillow(image()), exif=exif_with(description="x")))
    assert src.info["exif"]
    assert heifkit.open_heif(save_bytes(src, exif=None)).info["exif"] is None
    assert heifkit.open_heif(save_bytes(src)).info["exif"]  # the kwarg did not change the source
    src.info["exif"] = None
    assert heifkit.open_heif(save_bytes(src)).info["exif"] is None
    src.info.pop("exif")
    assert heifkit.open_heif(save_bytes(src)).info["exif"] is None
    with Image.open(EXIF_META) as im:
        assert im.info["exif"]
        assert heifkit.open_heif(pil_bytes(im, exif=None)).info["exif"] is None


def test_data_before_tiff_header_is_preserved():
    exif = Image.Exif().tobytes()
    data = pil_bytes(image(), exif=b"hidden data " + exif)
    assert data.find(b"hidden data ") != -1
    ours, theirs = both(data)
    assert ours.info["exif"] == theirs.info["exif"] == exif
    with Image.open(io.BytesIO(data)) as im:
        assert im.getexif() == Image.Exif()
    data = save_bytes(heifkit.from_pillow(image()), exif=b"hidden data " + exif)
    assert b"hidden data " in data and heifkit.open_heif(data).info["exif"] == exif


def test_empty_and_corrupted_exif_kept_verbatim():
    empty = Image.Exif().tobytes()
    assert heifkit.open_heif(pil_bytes(image(), exif=empty)).info["exif"] == empty
    corrupted = b"This_is_not_valid_EXIF_data"
    data = pil_bytes(image(), exif=corrupted)
    ours, theirs = both(data)
    assert ours.info["exif"] == theirs.info["exif"] == corrupted
    assert heifkit.open_heif(pil_bytes(image(), exif=b"")).info["exif"] is None


def test_opened_file_exif_xmp_iptc_survive_resave():
    src = heifkit.open_heif(EXIF_META)
    data = save_bytes(src)
    ours, theirs = both(data)
    assert ours.info["exif"] == src.info["exif"] == theirs.info["exif"]
    assert ours.info["xmp"] == src.info["xmp"] == theirs.info["xmp"]
    assert ours.info["metadata"] == src.info["metadata"] == theirs.info["metadata"]
    assert [m["type"] for m in ours.info["metadata"]] == ["iptc"]


# ---------------------------------------------------------------------------------------------------
# XMP and generic metadata


@pytest.mark.parametrize("xmp", [XMP, XMP + b"\x00", XMP.decode("utf-8")])
def test_xmp_round_trip(xmp):
    expected = xmp.encode("utf-8") if isinstance(xmp, str) else xmp
    for data in (save_bytes(heifkit.from_pillow(image()), xmp=xmp), pil_bytes(image(), xmp=xmp)):
        ours, theirs = both(data)
        assert ours.info["xmp"] == theirs.info["xmp"] == expected
        with Image.open(io.BytesIO(data)) as im:
            assert im.getxmp()["xmpmeta"]["RDF"]["Description"]["subject"]["Bag"]["li"] == "TestSubject"


def test_xmp_none_removes_and_default_is_absent():
    assert "xmp" not in heifkit.open_heif(save_bytes(heifkit.from_pillow(image()))).info
    src = heifkit.open_heif(save_bytes(heifkit.from_pillow(image()), xmp=XMP))
    assert src.info["xmp"] == XMP
    assert "xmp" not in heifkit.open_heif(save_bytes(src, xmp=None)).info
    src.info.pop("xmp")
    assert "xmp" not in heifkit.open_heif(save_bytes(src)).info


def test_xmp_from_pillow_png_text():
    im = image()
    im.info["XML:com.adobe.xmp"] = XMP.decode("utf-8")
    assert heifkit.open_heif(pil_bytes(im)).info["xmp"] == XMP


def test_iptc_metadata_round_trip():
    for data in (save_bytes(heifkit.from_pillow(image()), metadata=[IPTC]), pil_bytes(image(), metadata=[IPTC])):
        ours, theirs = both(data)
        assert ours.info["metadata"] == theirs.info["metadata"] == [IPTC]
    src = heifkit.from_pillow(image())
    src.info["metadata"].append(IPTC)
    src.info["metadata"].append({"type": "iptc", "content_type": "", "data": b"\x1c\x02\x05\x00\x01x"})
    ours, _ = both(save_bytes(src))
    assert ours.info["metadata"] == src.info["metadata"]
    assert heifkit.open_heif(save_bytes(src, metadata=[])).info["metadata"] == []


def test_generic_metadata_blocks():
    uri = {"type": "uri ", "content_type": "", "data": b"https://example.com/meta"}
    ours, theirs = both(save_bytes(heifkit.from_pillow(image()), metadata=[uri]))
    assert ours.info["metadata"] == theirs.info["metadata"] == [uri]
    # a "mime" item is what XMP is stored as: both readers report the first one as XMP
    mime = {"type": "mime", "content_type": "application/json", "data": b'{"a": 1}'}
    ours, theirs = both(save_bytes(heifkit.from_pillow(image()), metadata=[mime]))
    assert ours.info["metadata"] == theirs.info["metadata"] == []
    assert ours.info["xmp"] == theirs.info["xmp"] == mime["data"]
    with pytest.raises(ValueError, match="item_type"):
        heifkit.from_pillow(image()).save(io.BytesIO(), metadata=[{"type": "toolong", "data": b"x"}])


# ---------------------------------------------------------------------------------------------------
# thumbnails


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([-1], []),
        ([0], []),
        ([1], []),
        ([100], []),
        ([200], []),
        ([28], [28]),
        ([96], [96]),
        ([28, 56], [28, 56]),
        ([0, 84], [84]),
        ([-1, 84, 0], [84]),
    ],
)
def test_thumbnail_filter_table(boxes, expected):
    im = image((29, 100))
    for data in (save_bytes(heifkit.from_pillow(im), thumbnails=boxes), pil_bytes(im, thumbnails=boxes)):
        ours, theirs = both(data)
        assert ours.info["thumbnails"] == theirs.info["thumbnails"] == expected
    heif_file = heifkit.from_pillow(im)
    heif_file.info["thumbnails"] = boxes
    assert heifkit.open_heif(save_bytes(heif_file)).info["thumbnails"] == expected


def test_thumbnails_kept_and_removed_on_resave():
    src = heifkit.open_heif(ZPUG)
    assert [im.info["thumbnails"] for im in heifkit.open_heif(save_bytes(src))] == [[32, 16], [32], []]
    src[0].info["thumbnails"] = []
    assert [im.info["thumbnails"] for im in heifkit.open_heif(save_bytes(src))] == [[], [32], []]
    with Image.open(ZPUG) as im:
        data = pil_bytes(im, save_all=True)
    assert [im.info["thumbnails"] for im in heifkit.open_heif(data)] == [[32, 16], [32], []]


def test_thumbnails_option_off_drops_them():
    options.THUMBNAILS = False
    src = heifkit.open_heif(ZPUG)
    assert [im.info["thumbnails"] for im in src] == [[], [], []]
    options.THUMBNAILS = True
    assert [im.info["thumbnails"] for im in heifkit.open_heif(save_bytes(src))] == [[], [], []]


# ---------------------------------------------------------------------------------------------------
# pixel aspect ratio and HDR metadata


@pytest.mark.parametrize("ratio", [(4, 3), (3, 4), (10, 11), (65535, 1)])
def test_pixel_aspect_ratio_round_trip(ratio):
    for data in (
        save_bytes(heifkit.from_pillow(image()), pixel_aspect_ratio=ratio),
        pil_bytes(image(), pixel_aspect_ratio=ratio),
    ):
        assert b"pasp" in data
        ours, theirs = both(data)
        assert ours.info["pixel_aspect_ratio"] == theirs.info["pixel_aspect_ratio"] == ratio
        assert heifkit.open_heif(save_bytes(ours)).info["pixel_aspect_ratio"] == ratio  # kept on re-save


def test_no_pixel_aspect_ratio_by_default_or_when_square():
    for data in (
        save_bytes(heifkit.from_pillow(image())),
        save_bytes(heifkit.from_pillow(image()), pixel_aspect_ratio=(1, 1)),
    ):
        assert b"pasp" not in data  # libheif writes no pasp box for square pixels
        ours, theirs = both(data)
        assert "pixel_aspect_ratio" not in ours.info and "pixel_aspect_ratio" not in theirs.info


@pytest.mark.parametrize("bad", [(0, 1), (1, 0), (-1, 2)])
def test_invalid_pixel_aspect_ratio(bad):
    with pytest.raises(ValueError):
        heifkit.from_pillow(image()).save(io.BytesIO(), pixel_aspect_ratio=bad)


HDR = {
    "content_light_level": CLLI,
    "mastering_display_colour_volume": MDCV,
    "ambient_viewing_environment": AMVE,
    "nominal_diffuse_white_luminance": 2030000,
}
HDR_BOXES = {
    "content_light_level": b"clli",
    "mastering_display_colour_volume": b"mdcv",
    "ambient_viewing_environment": b"amve",
    "nominal_diffuse_white_luminance": b"ndwt",
}


@pytest.mark.parametrize("key", sorted(HDR))
def test_hdr_metadata_round_trip_each(key):
    data = save_bytes(heifkit.from_pillow(image()), **{key: HDR[key]})
    assert HDR_BOXES[key] in data
    assert [box in data for box in HDR_BOXES.values()].count(True) == 1
    ours, theirs = both(data)
    assert ours.info[key] == theirs.info[key] == HDR[key]
    assert all(other not in ours.info for other in HDR if other != key)


def test_hdr_metadata_round_trip_all_and_resave():
    for data in (save_bytes(heifkit.from_pillow(image()), **HDR), pil_bytes(image(), **HDR)):
        assert all(box in data for box in HDR_BOXES.values())
        ours, theirs = both(data)
        for key, value in HDR.items():
            assert ours.info[key] == theirs.info[key] == value
        again = heifkit.open_heif(save_bytes(ours))
        assert {k: again.info[k] for k in HDR} == HDR
        with Image.open(io.BytesIO(data)) as im:
            assert {k: im.info[k] for k in HDR} == HDR
            resaved = heifkit.open_heif(pil_bytes(im))
            assert {k: resaved.info[k] for k in HDR} == HDR


def test_nominal_diffuse_white_luminance_zero_is_a_value():
    # 0 selects the ISO/TS 22028-5 default: it is written, not dropped
    data = save_bytes(heifkit.from_pillow(image()), nominal_diffuse_white_luminance=0)
    assert b"ndwt" in data
    assert heifkit.open_heif(data).info["nominal_diffuse_white_luminance"] == 0


@pytest.mark.parametrize(
    ("bad", "error"), [(-1, ValueError), (2**32, ValueError), (1.5, TypeError), ("100", TypeError), (True, TypeError)]
)
def test_invalid_nominal_diffuse_white_luminance(bad, error):
    with pytest.raises(error, match="nominal_diffuse_white_luminance"):
        save_bytes(heifkit.from_pillow(image()), nominal_diffuse_white_luminance=bad)


def test_metadata_item_type_bytes_survive_a_resave():
    # an item type is four bytes, not text: a non-ASCII one is read and written back unchanged
    block = {"type": "E\xeaif", "content_type": "", "data": b"\x00" * 48}
    data = save_bytes(heifkit.from_pillow(image()), metadata=[block])
    assert b"E\xeaif" in data
    read = heifkit.open_heif(data).info["metadata"]
    assert [(m["type"], m["data"]) for m in read] == [("E\xeaif", block["data"])]
    assert b"E\xeaif" in save_bytes(heifkit.open_heif(data))


def test_no_hdr_metadata_by_default():
    data = save_bytes(heifkit.from_pillow(image()))
    assert not any(box in data for box in HDR_BOXES.values())
    assert not any(key in heifkit.open_heif(data).info for key in HDR)


def test_hdr_metadata_kept_with_10bit_data():
    src = heifkit.from_bytes("RGB;16", (8, 8), bytes(range(128)) * 3)
    back = heifkit.open_heif(save_bytes(src, **HDR), convert_hdr_to_8bit=True)
    assert back.info["bit_depth"] == 10 and back.mode == "RGB"
    assert {k: back.info[k] for k in HDR} == HDR


# ---------------------------------------------------------------------------------------------------
# multi-frame: per-frame values, and the scope of save kwargs


def test_per_frame_values_in_heiffile_save():
    heif_file = heifkit.HeifFile()
    for i in range(3):
        heif_file.add_from_pillow(image((16 + 8 * i, 16), seed=i))
    heif_file[0].info["pixel_aspect_ratio"] = (1, 2)
    heif_file[0].info["exif"] = exif_with(description="zero").tobytes()
    heif_file[1].info["content_light_level"] = CLLI
    heif_file[1].info["xmp"] = XMP
    heif_file[1].info["thumbnails"] = [8]
    heif_file[2].info["mastering_display_colour_volume"] = MDCV
    heif_file[2].info["ambient_viewing_environment"] = AMVE
    heif_file[2].info["metadata"] = [IPTC]
    heif_file[2].info["pixel_aspect_ratio"] = (3, 2)
    ours, theirs = both(save_bytes(heif_file))
    for f in (ours, theirs):
        assert [im.info.get("pixel_aspect_ratio") for im in f] == [(1, 2), None, (3, 2)]
        assert [im.info.get("content_light_level") for im in f] == [None, CLLI, None]
        assert [im.info.get("mastering_display_colour_volume") for im in f] == [None, None, MDCV]
        assert [im.info.get("ambient_viewing_environment") for im in f] == [None, None, AMVE]
        assert [im.info.get("xmp") for im in f] == [None, XMP, None]
        assert [im.info["thumbnails"] for im in f] == [[], [8], []]
        assert [im.info["metadata"] for im in f] == [[], [], [IPTC]]
        assert [im.info["exif"] for im in f] == [exif_with(description="zero").tobytes(), None, None]


def test_per_frame_values_through_pillow_save_all():
    heif_file = heifkit.HeifFile()
    for i in range(3):
        heif_file.add_from_pillow(image((16 + 8 * i, 16), seed=i))
    heif_file[0].info["pixel_aspect_ratio"] = (1, 2)
    heif_file[1].info["content_light_level"] = CLLI
    heif_file[2].info["xmp"] = XMP
    heif_file[2].info["thumbnails"] = [12]
    with Image.open(io.BytesIO(save_bytes(heif_file))) as im:
        data = pil_bytes(im, save_all=True)
        frames = [(frame.info.get("pixel_aspect_ratio"), frame.info.get("xmp")) for frame in ImageSequence.Iterator(im)]
    assert frames == [((1, 2), None), (None, None), (None, XMP)]
    f = heifkit.open_heif(data)
    assert [im.info.get("pixel_aspect_ratio") for im in f] == [(1, 2), None, None]
    assert [im.info.get("content_light_level") for im in f] == [None, CLLI, None]
    assert [im.info.get("xmp") for im in f] == [None, None, XMP]
    assert [im.info["thumbnails"] for im in f] == [[], [], [12]]


def test_pillow_appended_images_keep_their_own_info():
    ims = [image((16, 16)), image((24, 16), seed=1)]
    ims[1].info["xmp"] = XMP
    ims[1].info["pixel_aspect_ratio"] = (5, 4)
    f = heifkit.open_heif(pil_bytes(ims[0], save_all=True, append_images=ims[1:]))
    assert [im.info.get("xmp") for im in f] == [None, XMP]
    assert [im.info.get("pixel_aspect_ratio") for im in f] == [None, (5, 4)]


KWARGS = {
    "exif": exif_with(description="kw").tobytes(),
    "xmp": XMP,
    "thumbnails": [8],
    "metadata": [IPTC],
    "pixel_aspect_ratio": (4, 3),
    **HDR,
}


def _per_image(f: heifkit.HeifFile) -> list[dict[str, Any]]:
    keys = ("exif", "xmp", "thumbnails", "metadata", "pixel_aspect_ratio", *HDR)
    return [{k: im.info.get(k) for k in keys} for im in f]


def test_heiffile_save_kwargs_affect_the_primary_only():
    heif_file = two_images()
    ours, theirs = both(save_bytes(heif_file, **KWARGS))
    untouched = {"exif": None, "xmp": None, "thumbnails": [], "metadata": [], "pixel_aspect_ratio": None}
    untouched.update({k: None for k in HDR})
    for f in (ours, theirs):
        assert _per_image(f) == [untouched, KWARGS]
    assert _per_image(heif_file) == [untouched, untouched]  # the source is not modified
    data = save_bytes(heif_file, primary_index=0, **KWARGS)
    assert _per_image(heifkit.open_heif(data)) == [KWARGS, untouched]


def test_heiffile_save_kwargs_primary_only_on_opened_file():
    src = heifkit.open_heif(ZPUG)
    f = heifkit.open_heif(save_bytes(src, thumbnails=[], xmp=XMP))
    assert [im.info["thumbnails"] for im in f] == [[32, 16], [], []]
    assert [im.info.get("xmp") for im in f] == [None, XMP, None]


def test_pillow_save_kwargs_affect_every_frame():
    ims = [image((16, 16)), image((24, 16), seed=1), image((32, 16), seed=2)]
    data = pil_bytes(ims[0], save_all=True, append_images=ims[1:], primary_index=1, **KWARGS)
    ours, theirs = both(data)
    for f in (ours, theirs):
        assert _per_image(f) == [KWARGS, KWARGS, KWARGS]
    with Image.open(ZPUG) as im:
        f = heifkit.open_heif(pil_bytes(im, save_all=True, thumbnails=[20], xmp=XMP))
    assert [i.info["thumbnails"] for i in f] == [[20], [20], [20]]
    assert [i.info.get("xmp") for i in f] == [XMP, XMP, XMP]


def test_pillow_exif_kwarg_none_removes_from_every_frame():
    exif = exif_with(description="frame").tobytes()
    heif_file = two_images()
    for im in heif_file:
        im.info["exif"] = exif
    with Image.open(io.BytesIO(save_bytes(heif_file))) as im:
        kept = heifkit.open_heif(pil_bytes(im, save_all=True))
        removed = heifkit.open_heif(pil_bytes(im, save_all=True, exif=None))
    assert [bool(i.info["exif"]) for i in kept] == [True, True]
    assert [i.info["exif"] for i in removed] == [None, None]
