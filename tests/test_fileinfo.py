"""heifkit.fileinfo (what ``heifkit info`` reports) and the box reader under it: the documented JSON shape on
every corpus file, sequence tracks, gain maps, codecs, and malformed boxes that must not raise."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import heifkit
from conftest import CORPUS, PUG, ZPUG, manifest
from convert_corpus import schema_errors
from heifkit import fileinfo
from heifkit._container import layout as _file_layout

SCHEMA = fileinfo.INFO_SCHEMA


def document(*paths: Path) -> dict:
    """What ``heifkit info --json`` prints for ``paths``, through JSON and back."""
    return json.loads(json.dumps({"schema": fileinfo.SCHEMA_ID, "files": [fileinfo.describe(p) for p in paths]}))


def test_every_corpus_file_is_described_in_the_documented_shape() -> None:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".tsv", ".md"))
    data = document(*files)
    assert schema_errors(data, SCHEMA) == []
    readable = {r["file"] for r in manifest() if r["set"] == "main" and r["libheif_decode"] == "OK"}
    for entry in data["files"]:
        name = str(Path(entry["path"]).relative_to(CORPUS))
        if name in readable:
            assert entry["ok"] and entry["images"], name
            assert entry["images"][entry["primary"]]["primary"], name
        if not entry["ok"]:
            assert entry["error"] and entry["images"] == [] and entry["primary"] is None, name


def _first_image(data: dict) -> dict:
    return data["files"][0]["images"][0]


def test_the_validator_finds_what_breaks_the_schema() -> None:
    assert schema_errors(document(ZPUG), SCHEMA) == []
    for change, message in [
        (lambda d: _first_image(d).pop("codec"), "missing 'codec'"),
        (lambda d: _first_image(d).update(extra=1), "unexpected key 'extra'"),
        (lambda d: _first_image(d).update(width="64"), "$.files[0].images[0].width: str is not integer"),
        (lambda d: _first_image(d).update(alpha=1), "int is not boolean"),
        (lambda d: _first_image(d).update(bit_depth=True), "bool is not integer"),
        (lambda d: _first_image(d).update(exif={"size": 1}), "missing 'camera'"),
        (lambda d: _first_image(d).update(gain_map={"kind": "other", "type": None}), "'other' not in"),
        (lambda d: d.update(schema="other/9"), "not in ['heifkit-info/1']"),
    ]:
        data = document(ZPUG)
        change(data)
        errors = schema_errors(data, SCHEMA)
        assert any(message in e for e in errors), (message, errors)


def test_sequence_tracks_are_listed() -> None:
    audio = fileinfo.describe(CORPUS / "libavif_colors-animated-8bpc-audio.avif")
    assert audio["mimetype"] == "image/avif-sequence" and audio["sequence"]["brands"] == ["avis", "msf1"]
    assert audio["sequence"]["tracks"] == [
        {"id": 1, "handler": "pict", "codec": "av01", "samples": 5, "width": 150, "height": 150},
        {"id": 2, "handler": "soun", "codec": "mp4a", "samples": 8, "width": 0, "height": 0},
    ]
    depth = fileinfo.describe(CORPUS / "libavif_colors-animated-8bpc-depth-exif-xmp.avif")
    assert [(t["handler"], t["samples"]) for t in depth["sequence"]["tracks"]] == [("pict", 5), ("auxv", 5)]
    still = fileinfo.describe(CORPUS / "libheif_example.heic")  # declares the hevc brand, has no tracks
    assert still["sequence"] == {"brands": ["hevc"], "tracks": [], "frames": None}
    assert not still["mimetype"].endswith("sequence")
    assert "no tracks" in fileinfo.render(still) and "frames:" not in fileinfo.render(still)


def test_sequence_frames_match_open_sequence() -> None:
    star = fileinfo.describe(CORPUS / "pillow_star.avifs")
    sequence = heifkit.open_sequence(CORPUS / "pillow_star.avifs")
    assert star["sequence"]["frames"] == {
        "count": len(sequence),
        "width": 159,
        "height": 159,
        "mode": "RGBA",  # the alpha track is merged into the frames
        "bit_depth": 8,
        "duration_ms": sequence.duration,
        "loop": sequence.info["loop"],
        "timescale": sequence.timescale,
        "error": None,
    }
    assert len(sequence) == 5 and f"frames: 5 x 159x159 RGBA, 8-bit, {sequence.duration} ms" in fileinfo.render(star)


def test_gain_maps_depth_and_codecs() -> None:
    pug = fileinfo.describe(PUG)["images"][0]
    assert pug["gain_map"] == {"kind": "aux", "type": "urn:com:apple:photo:2020:aux:hdrgainmap"}
    assert pug["depth_images"] == [{"width": 768, "height": 576, "mode": "L"}]
    assert (pug["codec"], pug["item_type"], pug["grid"]["columns"]) == ("HEVC", "grid", 8)
    seine = fileinfo.describe(CORPUS / "libavif_seine_sdr_gainmap_srgb.avif")["images"][0]
    assert seine["gain_map"] == {"kind": "tmap", "type": None} and seine["codec"] == "AV1"
    mini = fileinfo.describe(CORPUS / "libheif_lightning_mini.heif")  # no item table: the brand says HEVC
    assert mini["major_brand"] == "mif3" and mini["images"][0]["codec"] == "HEVC"
    jpeg_in_heif = fileinfo.describe(CORPUS / "libheif-fuzz_jpeg32.heif")["images"][0]
    assert jpeg_in_heif["codec"] == "JPEG"
    hdr = fileinfo.describe(CORPUS / "libavif_cosmos1650_yuv444_10bpc_p3pq.avif")["images"][0]
    assert hdr["bit_depth"] == 10 and hdr["mode"] == "RGB;16" and hdr["nclx"]["transfer_characteristics"] == 16


def test_unreadable_files_still_report_their_brands(tmp_path: Path) -> None:
    truncated = tmp_path / "cut.heic"
    truncated.write_bytes(ZPUG.read_bytes()[:300])
    entry = fileinfo.describe(truncated)
    assert not entry["ok"] and entry["major_brand"] == "heic" and entry["error"]
    missing = fileinfo.describe(tmp_path / "nope.heic")
    assert not missing["ok"] and "FileNotFoundError" in missing["error"] and missing["major_brand"] is None
    assert "error:" in fileinfo.render(missing) and "sequence" not in fileinfo.render(missing)


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00\x00\x01ftyp",  # a 64-bit size with no room for it
        _box(b"ftyp", b"heic") + b"\xff\xff\xff\xffmeta",  # a box longer than the file
        _box(b"ftyp", b"heicxxxxmif1") + _box(b"meta", b"\x00" * 4 + _box(b"iinf", b"\x00" * 3)),
        _box(b"moov", _box(b"trak", _box(b"tkhd", b"\x01"))),  # a version 1 tkhd cut short
        _box(b"moov", _box(b"trak", _box(b"mdia", _box(b"hdlr", b"")))),
        _box(b"meta", b"\x00" * 4 + _box(b"iref", b"\x00" * 4 + _box(b"dimg", b"\x00\x01\xff\xff\x00"))),
        b"\x00\x00\x00\x00moov" + b"\x00" * 20,  # size 0: to the end of the file
    ],
)
def test_malformed_boxes_end_the_walk_quietly(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.heic"
    path.write_bytes(data)
    _file_layout.read_layout(path)
    assert schema_errors(document(path), SCHEMA) == []


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=2000))
def test_box_reader_survives_corruption(garbage: bytes, at: int) -> None:
    original = (CORPUS / "libavif_colors-animated-8bpc-depth-exif-xmp.avif").read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.avif"
        path.write_bytes(original[:at] + garbage + original[at + len(garbage) :])
        layout = _file_layout.read_layout(path)
        assert all(isinstance(t.handler, str) for t in layout.tracks)


@pytest.mark.parametrize(("fmt", "quality"), [("AVIF", 50), ("HEIF", 40), ("HEIF", -1)])
def test_the_coded_quality_is_reported(tmp_path: Path, fmt: str, quality: int) -> None:
    path = tmp_path / f"q.{fmt.lower()}"
    extra = {"chroma": 444, "matrix_coefficients": 0} if quality == -1 else {}
    heifkit.from_pillow(heifkit.open_heif(ZPUG).to_pillow().resize((128, 96))).save(
        path, format=fmt, quality=quality, **extra
    )
    entry = document(path)["files"][0]
    assert schema_errors({"schema": fileinfo.SCHEMA_ID, "files": [entry]}, SCHEMA) == []
    coded = entry["images"][0]["coded_quality"]
    assert coded["codec"] == ("AV1" if fmt == "AVIF" else "HEVC")
    text = fileinfo.render(fileinfo.describe(path))
    if quality == -1:
        assert coded["lossless"] and coded["quality"] == -1 and "coded lossless" in text
    else:
        assert abs(coded["quality"] - quality) <= coded["error"] <= 3 and not coded["lossless"]
        assert f"coded at quality ~{coded['quality']} ±{coded['error']}" in text
