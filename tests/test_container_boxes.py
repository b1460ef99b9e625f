"""The box walker (``_container.boxes``): runs of boxes in memory and a file's top-level boxes, read by their
headers only; damaged sizes end the walk (or raise, strict) and never make a read bigger than the data."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import heifkit
from conftest import CORPUS, PUG
from heifkit._container import boxes as b
from heifkit._container import item_boxes, layout, sample_tables


def _box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _large(kind: bytes, payload: bytes = b"") -> bytes:
    """A box with a 64-bit size (size field 1)."""
    return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload


def _to_end(kind: bytes, payload: bytes = b"") -> bytes:
    """A box with size 0: it runs to the end of its container."""
    return struct.pack(">I4s", 0, kind) + payload


class _Counting(io.BytesIO):
    """A file in memory that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


# --- in memory ------------------------------------------------------------------------------------------


def test_a_run_of_boxes() -> None:
    data = _box(b"ftyp", b"heic") + _box(b"free") + _box(b"mdat", b"x" * 5)
    assert list(b.walk(data, 0, len(data))) == [
        b.Box(b"ftyp", 0, 8, 12),
        b.Box(b"free", 12, 20, 20),
        b.Box(b"mdat", 20, 28, 33),
    ]
    assert list(b.boxes(data, 0, len(data))) == [(b"ftyp", 8, 12), (b"free", 20, 20), (b"mdat", 28, 33)]
    assert list(b.boxes(data, 12, len(data))) == [(b"free", 20, 20), (b"mdat", 28, 33)]  # from an offset
    assert list(b.boxes(data, 0, 20)) == [(b"ftyp", 8, 12), (b"free", 20, 20)]  # up to an end


def test_largesize_boxes() -> None:
    data = _large(b"mdat", b"abc") + _box(b"free")
    assert list(b.walk(data, 0, len(data))) == [b.Box(b"mdat", 0, 16, 19), b.Box(b"free", 19, 27, 27)]
    assert b.box_header(data, 0, len(data)) == (b"mdat", 16, 19)


def test_size_zero_runs_to_the_end_of_its_container() -> None:
    data = _box(b"ftyp") + _to_end(b"mdat", b"pixels")
    assert list(b.boxes(data, 0, len(data))) == [(b"ftyp", 8, 8), (b"mdat", 16, len(data))]
    parent = _box(b"moov", _to_end(b"trak", b"1234")) + _box(b"free")
    assert list(b.boxes(parent, 8, 20)) == [(b"trak", 16, 20)]  # to the end of its parent, not of the data
    assert b.box_header(_to_end(b"mdat"), 0, 100) == (b"mdat", 8, 100)


@pytest.mark.parametrize(
    "tail",
    [b"\0\0\0\x10mda", b"\0\0\0\x01mdat\0\0\0\0\0\0\0", b"\0\0\0\x01mdat"],  # 7 bytes; largesize cut short
    ids=["seven-bytes", "largesize-cut", "no-largesize"],
)
def test_a_header_cut_short_ends_the_walk_quietly(tail: bytes) -> None:
    data = _box(b"ftyp") + tail
    assert [k for k, *_ in b.walk(data, 0, len(data))] == [b"ftyp"]
    assert [k for k, *_ in b.walk(data, 0, len(data), strict=True)] == [b"ftyp"]  # not an error even when strict
    assert b.box_header(tail, 0, len(tail)) is None


@pytest.mark.parametrize(
    "bad",
    [
        b"\0\0\0\x40free",  # runs past its parent
        b"\0\0\0\x04free",  # smaller than its header
        struct.pack(">I4sQ", 1, b"free", 8),  # a 64-bit size smaller than its 16-byte header
        struct.pack(">I4sQ", 1, b"free", 1 << 63),  # a huge 64-bit size
    ],
    ids=["past-parent", "below-header", "largesize-below-header", "huge-largesize"],
)
def test_a_size_that_does_not_fit_ends_the_walk_or_raises_when_strict(bad: bytes) -> None:
    data = _box(b"meta", _box(b"hdlr") + bad + _box(b"iloc")) + _box(b"free")
    end = len(data) - 8  # meta's end
    assert [k for k, *_ in b.walk(data, 8, end)] == [b"hdlr"]
    with pytest.raises(heifkit.InvalidInputError, match=r"box b'free' at offset 16 runs past its container"):
        list(b.walk(data, 8, end, strict=True))
    assert b.box_header(data, 16, end - 16) is None
    assert b.child(data, 8, end, b"iloc") is None
    assert b.child(data, 8, end, b"hdlr") == (16, 16)
    assert b.child(data, 8, end, b"hdlr", strict=True) == (16, 16)  # found before the damaged box: no error
    with pytest.raises(heifkit.InvalidInputError):
        b.child(data, 8, end, b"iloc", strict=True)


def test_the_walk_is_bounded_by_the_data() -> None:
    data = _box(b"ftyp", b"heic") + b"\0\0\0\x20mdat"  # claims 32 bytes, the data ends after 8
    assert list(b.boxes(data, 0, 1000)) == [(b"ftyp", 8, 12)]
    assert list(b.boxes(memoryview(data), 0, 1000)) == [(b"ftyp", 8, 12)]
    assert list(b.boxes(bytearray(data), 0, 12)) == [(b"ftyp", 8, 12)]
    assert list(b.boxes(data, 20, 10)) == []  # start past end
    assert b.box_header(data, 0, 7) is None  # no room for a header
    assert b.box_header(data[:8], 0, 12) == (b"ftyp", 8, 12)  # the data may hold just the header


def test_child_and_find_look_up_the_first_box_of_a_type() -> None:
    iprp = _box(b"iprp", _box(b"ipco", _box(b"ispe", b"1") + _box(b"ispe", b"2")) + _box(b"ipma"))
    meta = _box(b"meta", b"\0\0\0\0" + _box(b"hdlr") + iprp)
    data = _box(b"ftyp") + meta
    found = b.find(data, 0, len(data), b"meta")
    assert found == b.Box(b"meta", 8, 16, len(data))
    iprp_span = b.child(data, found.payload + 4, found.end, b"iprp")  # meta is a full box
    assert iprp_span is not None
    ipco = b.child(data, *iprp_span, b"ipco")
    assert ipco is not None
    ispe = b.child(data, *ipco, b"ispe")
    assert ispe is not None and data[ispe[0] : ispe[1]] == b"1"  # the first of two
    assert b.child(data, *iprp_span, b"ipma") == (iprp_span[1], iprp_span[1])  # an empty box, last
    assert b.child(data, *ipco, b"ipma") is None  # not a child of ipco
    assert b.find(data, 0, len(data), b"moov") is None


def test_box_writes_what_the_walker_reads() -> None:
    data = b.box(b"grpl", b.box(b"altr", b"\0" * 4))
    assert data == _box(b"grpl", _box(b"altr", b"\0" * 4))
    assert list(b.walk(data, 8, len(data))) == [b.Box(b"altr", 8, 16, 20)]


_KINDS = st.binary(min_size=4, max_size=4)
_RUN = st.lists(st.tuples(_KINDS, st.binary(max_size=40), st.booleans()), max_size=8)


@settings(max_examples=200, deadline=None)
@given(_RUN, st.booleans())
def test_generated_runs_walk_back_as_written(run: list[tuple[bytes, bytes, bool]], last_to_end: bool) -> None:
    data = b""
    expected = []
    for n, (kind, payload, large) in enumerate(run):
        to_end = last_to_end and n == len(run) - 1
        box = _to_end(kind, payload) if to_end else (_large if large else _box)(kind, payload)
        header = 16 if large and not to_end else 8
        expected.append(b.Box(kind, len(data), len(data) + header, len(data) + len(box)))
        data += box
    assert list(b.walk(data, 0, len(data), strict=True)) == expected
    assert list(b.top_level(io.BytesIO(data))) == [
        b.FileBox(k, start, end - start, payload - start) for k, start, payload, end in expected
    ]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=220), st.integers(min_value=0, max_value=220))
def test_any_bytes_walk_within_their_bounds(data: bytes, start: int, end: int) -> None:
    pos = start
    for kind, box_start, payload, box_end in b.walk(data, start, end):
        assert len(kind) == 4 and box_start == pos and box_start + 8 <= payload <= box_end <= min(end, len(data))
        pos = box_end
    try:
        strict = list(b.walk(data, start, end, strict=True))
    except heifkit.InvalidInputError:
        return
    assert strict == list(b.walk(data, start, end))


# --- over a file ----------------------------------------------------------------------------------------


def test_a_file_is_walked_by_its_headers_only() -> None:
    data = _box(b"ftyp", b"heic") + _large(b"mdat", b"\xff" * 100_000) + _box(b"meta", b"\0" * 5000) + _box(b"free")
    f = _Counting(data)
    found = list(b.top_level(f))
    assert [(x.kind, x.start, x.size, x.header) for x in found] == [
        (b"ftyp", 0, 12, 8),
        (b"mdat", 12, 100_016, 16),
        (b"meta", 100_028, 5008, 8),
        (b"free", 105_036, 8, 8),
    ]
    assert found[1].payload == 28 and found[1].end == 100_028
    assert f.bytes_read <= 16 * len(found)  # one header read per box (at most 16 bytes), no payload


def test_the_caller_may_read_a_file_between_steps() -> None:
    data = _box(b"ftyp", b"heic") + _box(b"meta", b"abcd") + _box(b"free")
    f = io.BytesIO(data)
    payloads = []
    for found in b.top_level(f, len(data)):
        f.seek(found.payload)
        payloads.append(f.read(found.size - found.header))
    assert payloads == [b"heic", b"abcd", b""]


def test_a_file_cut_short_gives_its_last_box_as_declared() -> None:
    data = _box(b"ftyp", b"heic") + _box(b"moov", b"x" * 100)[:50]
    found = list(b.top_level(io.BytesIO(data)))
    assert [(x.kind, x.end) for x in found] == [(b"ftyp", 12), (b"moov", 120)]  # past the end: callers check
    assert found[-1].end > len(data)


@pytest.mark.parametrize(
    ("tail", "kinds"),
    [
        (b"\0\0\0", [b"ftyp"]),  # a header cut short
        (b"\0\0\0\x01mdat\0\0", [b"ftyp"]),  # a 64-bit size cut short
        (b"\0\0\0\x04mdat" + _box(b"meta"), [b"ftyp"]),  # smaller than its header: the walk cannot go on
        (struct.pack(">I4sQ", 1, b"mdat", 15) + _box(b"meta"), [b"ftyp"]),
        (_to_end(b"mdat", b"123") + _box(b"meta"), [b"ftyp", b"mdat"]),  # size 0: to the end of the file
    ],
)
def test_damaged_top_level_headers_end_the_walk(tail: bytes, kinds: list[bytes]) -> None:
    data = _box(b"ftyp", b"heic") + tail
    found = list(b.top_level(io.BytesIO(data)))
    assert [x.kind for x in found] == kinds
    assert found[-1].end <= len(data)


def test_the_walk_stops_at_the_end_it_is_given() -> None:
    data = _box(b"ftyp", b"heic") + _box(b"meta") + _box(b"moov")
    assert [x.kind for x in b.top_level(io.BytesIO(data), 20)] == [b"ftyp", b"meta"]
    assert [x.kind for x in b.top_level(io.BytesIO(data), 27)] == [b"ftyp", b"meta"]  # moov's header cut by end
    assert list(b.top_level(io.BytesIO(b""))) == []
    sized = io.BytesIO(_to_end(b"mdat", b"x" * 20))
    assert list(b.top_level(sized, 12)) == [b.FileBox(b"mdat", 0, 12, 8)]  # size 0: to the given end


def test_a_huge_size_ends_the_walk_without_seeking_past_the_file(tmp_path: Path) -> None:
    data = _box(b"ftyp", b"heic") + struct.pack(">I4sQ", 1, b"mdat", (1 << 64) - 1) + _box(b"meta")
    path = tmp_path / "huge.heic"
    path.write_bytes(data)
    with open(path, "rb") as f:  # a real file refuses to seek that far (ValueError, OSError): the walk never tries
        assert [(x.kind, x.size) for x in b.top_level(f)] == [(b"ftyp", 12), (b"mdat", (1 << 64) - 1)]
        assert b.read_top_level(f, b"meta") is None


def test_read_top_level_reads_one_box_by_type(tmp_path: Path) -> None:
    data = _box(b"ftyp", b"heic") + _large(b"mdat", b"\0" * 100_000) + _box(b"meta", b"meta-payload")
    path = tmp_path / "f.heic"
    path.write_bytes(data)
    meta = b.FileBox(b"meta", 100_028, 20, 8)
    assert b.read_top_level(path, b"meta") == (meta, _box(b"meta", b"meta-payload"))
    assert b.read_top_level(str(path), b"ftyp") == (b.FileBox(b"ftyp", 0, 12, 8), _box(b"ftyp", b"heic"))
    assert b.read_top_level(path, b"mdat", limit=3) == (b.FileBox(b"mdat", 12, 100_016, 16), data[12:31])
    assert b.read_top_level(path, b"moov") is None
    assert b.read_top_level(path, b"meta", limit=4) == (meta, _box(b"meta", b"meta-payload")[:12])  # header + 4
    f = _Counting(data)
    assert b.read_top_level(f, b"meta") == (meta, _box(b"meta", b"meta-payload"))
    assert f.bytes_read <= 3 * 16 + 20  # the mdat payload is skipped


def test_read_top_level_of_a_box_cut_short_reads_what_there_is() -> None:
    cut = _box(b"ftyp", b"heic") + _box(b"moov", b"m" * 100)[:60]
    assert b.read_top_level(io.BytesIO(cut), b"moov") == (b.FileBox(b"moov", 12, 108, 8), cut[12:])
    huge = _box(b"ftyp", b"heic") + struct.pack(">I4sQ", 1, b"meta", (1 << 64) - 1) + b"abc"
    f = _Counting(huge)
    found = b.read_top_level(f, b"meta")
    assert found is not None and found[1] == huge[12:]  # a huge declared size reads only what the file holds
    assert f.bytes_read <= 2 * 16 + 19
    to_end = _box(b"ftyp") + _to_end(b"meta", b"to the end")
    assert b.read_top_level(io.BytesIO(to_end), b"meta") == (b.FileBox(b"meta", 8, 18, 8), to_end[8:])
    assert b.read_top_level(io.BytesIO(b"\0\0\0\x04meta" + _box(b"meta", b"x")), b"meta") is None  # walk ended


# --- the callers ----------------------------------------------------------------------------------------


def _widened(data: bytes, kind: bytes) -> bytes:
    """``data`` with its top-level ``kind`` box given a 64-bit size: 8 bytes longer, the offsets into ``mdat``
    wrong, but the boxes the walker's callers read the same."""
    found = b.find(data, 0, len(data), kind)
    assert found is not None
    return data[: found.start] + _large(kind, data[found.payload : found.end]) + data[found.end :]


def test_item_properties_read_a_meta_box_of_a_64_bit_size(tmp_path: Path) -> None:
    data = PUG.read_bytes()
    large = _widened(data, b"meta")
    path = tmp_path / "large.heic"
    path.write_bytes(large)
    expected = item_boxes.item_properties(data, {52, 54})
    assert [p.kind for p in expected[52]] == [b"hvcC", b"ispe", b"irot", b"pixi", b"auxC"]
    assert item_boxes.item_properties(large, {52, 54}) == expected
    assert item_boxes.item_properties(path, {52, 54}) == expected


def test_sample_tables_and_the_layout_read_boxes_through_the_walker(tmp_path: Path) -> None:
    source = CORPUS / "libavif_colors-animated-8bpc.avif"
    data = source.read_bytes()
    path = tmp_path / "large.avif"
    path.write_bytes(_widened(data, b"moov"))
    tables = {k: repr(v) for k, v in sample_tables.read_tables(str(source)).items()}
    assert tables and {k: repr(v) for k, v in sample_tables.read_tables(str(path)).items()} == tables
    assert {k: repr(v) for k, v in sample_tables.read_tables(data).items()} == tables
    assert layout.read_layout(path).tracks == layout.read_layout(source).tracks != []
