"""Timed image sequences (issue 8), standalone API: ``open_sequence``, ``HeifSequence``, ``HeifFrame``,
``save_sequence``.

* the corpus: every sequence in MANIFEST.tsv (``sequence_tracks``, ``libheif_seq_decode`` OK) has the frame
  count of libheif's own ``heif-dec -S --ignore-editlist`` (run with a time limit), positive durations and
  frames of the track's size;
* round trips: 30 frames with varied durations, HEIF and AVIF, 8 and 10 bits, with and without alpha, give back
  the count, the durations, the loop count and the pixels (exactly, lossless; PSNR >= 40 dB, lossy); 12 bits;
* edit lists: a track that repeats forever gives each frame once and ``loop == 0``;
* errors: a damaged sample fails its frame with a typed error and the frames before it stay readable; a track
  with no samples, a file without a sequence and wrong save parameters are refused with clear errors;
* memory: iterating keeps no frame alive but the current one; lifetimes: frames, pixels and sequences dropped
  in every order, another file decoded in between.
"""

from __future__ import annotations

import gc
import io
import itertools
import pickle
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import heifkit
from conftest import CORPUS, LOSSLESS, ZPUG, manifest, psnr

HEIF_DEC = Path(sys.executable).parent / "heif-dec"
SIZE = (64, 48)


def corpus_sequences() -> list[str]:
    """The corpus files with a sequence track that libheif decodes (MANIFEST: sequence_tracks, libheif_seq_decode)."""
    return [r["file"] for r in manifest() if r["sequence_tracks"].strip() and r["libheif_seq_decode"] == "OK"]


SEQUENCES = corpus_sequences()
INFINITE = "libavif_colors-animated-12bpc-keyframes-0-2-3.avif"  # its edit list repeats forever
DEPTH = "libavif_colors-animated-8bpc-depth-exif-xmp.avif"  # a depth track besides the frames


def heif_dec_frames(path: Path, out: Path) -> list[Path]:
    """The PNG files libheif's ``heif-dec -S --ignore-editlist`` writes for a sequence (1 minute at most)."""
    out.mkdir()
    subprocess.run(
        [str(HEIF_DEC), "-S", "--ignore-editlist", str(path), str(out / "frame.png")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return sorted(out.glob("frame-*.png"), key=lambda p: int(p.stem.split("-")[1]))


def frames_of(mode: str, count: int = 30, seed: int = 0, size: tuple[int, int] = SIZE) -> list[heifkit.HeifImage]:
    """``count`` images of random pixels in ``mode`` (``;16`` modes: 10-bit values, as 10-bit files hold)."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode.split(";")[0]]
    images = []
    for _ in range(count):
        if mode.endswith(";16"):
            a = rng.integers(0, 1024, (size[1], size[0], channels), dtype=np.uint16) << 6
        else:
            a = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
        images.append(heifkit.from_bytes(mode, size, a.tobytes())[0])
    return images


def smooth_frames(mode: str, count: int) -> list[Image.Image]:
    """Pillow frames of moving gradients (lossy coding keeps them close)."""
    x, y = np.meshgrid(np.linspace(0, 1, SIZE[0]), np.linspace(0, 1, SIZE[1]))
    frames = []
    for i in range(count):
        t = i / count
        planes = [0.5 + 0.4 * np.sin(2 * np.pi * (x + t)), y, (x + y) / 2, 0.6 + 0.3 * np.cos(3 * y + t)]
        a = (np.dstack(planes[: len(mode)]) * 255).astype(np.uint8)
        frames.append(Image.fromarray(a, mode))
    return frames


def durations_for(count: int, seed: int = 1) -> list[int]:
    return [int(d) for d in np.random.default_rng(seed).integers(1, 400, count)]


def saved(frames: Any, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    heifkit.save_sequence(frames, out, **kwargs)
    return out.getvalue()


# --- the corpus --------------------------------------------------------------------------------------


def test_the_corpus_has_sequences() -> None:
    assert "pillow_star.avifs" in SEQUENCES and "libavif_colors-animated-8bpc.avif" in SEQUENCES
    assert len(SEQUENCES) >= 5


@pytest.mark.parametrize("name", SEQUENCES)
def test_corpus_frame_count_matches_heif_dec(name: str, tmp_path: Path) -> None:
    pngs = heif_dec_frames(CORPUS / name, tmp_path / "frames")
    sequence = heifkit.open_sequence(CORPUS / name)
    assert len(sequence) == len(pngs) > 1
    assert [Image.open(p).size for p in pngs] == [sequence.size] * len(pngs)
    total = 0
    for frame in sequence:
        assert frame.info["duration"] > 0
        assert abs(frame.info["timestamp"] - total) <= frame.index  # each rounded to milliseconds on its own
        total += frame.info["duration"]
        assert frame.to_pillow().size == frame.size == sequence.size
        assert len(frame.data) == frame.stride * frame.size[1]
    assert abs(sequence.duration - total) <= len(sequence)


def test_corpus_edit_list_that_repeats_forever_gives_each_frame_once() -> None:
    sequence = heifkit.open_sequence(CORPUS / INFINITE)
    assert sequence.info["loop"] == 0  # libheif: repetitions "infinite"
    assert len(list(sequence)) == len(sequence) == 5
    assert [f.info["timestamp"] for f in sequence] == [0, 1000, 2000, 3000, 4000]
    assert sequence.mode == "RGBA" and sequence.info["bit_depth"] == 12


def test_corpus_twelve_bit_frames_keep_their_depth() -> None:
    sequence = heifkit.open_sequence(CORPUS / INFINITE, convert_hdr_to_8bit=False)
    assert sequence.mode == "RGBA;16"
    frame = np.asarray(sequence[1])
    assert frame.dtype == np.uint16 and frame.shape == (64, 64, 4)
    assert not (frame & 0x0F).any()  # 12-bit samples widened to 16 bits
    eight = np.asarray(heifkit.open_sequence(CORPUS / INFINITE)[1]).astype(int)
    assert np.abs((frame >> 8).astype(int) - eight).max() <= 1


def test_corpus_depth_track_is_reachable() -> None:
    sequence = heifkit.open_sequence(CORPUS / DEPTH)
    assert sequence.info["aux_tracks"] == {"urn:mpeg:mpegB:cicp:systems:auxiliary:depth": [2]}
    assert sequence.mode == "RGB" and "exif" in sequence.info and "xmp" in sequence.info
    depth = sequence.get_aux_sequence(2)
    assert len(depth) == len(sequence) and depth.mode == "L" and depth.size == sequence.size
    assert [np.asarray(f).shape for f in depth] == [(150, 150)] * 5
    with pytest.raises(heifkit.InvalidInputError):
        sequence.get_aux_sequence(1)


def test_corpus_alpha_track_is_merged_into_the_frames() -> None:
    sequence = heifkit.open_sequence(CORPUS / "pillow_star.avifs")
    assert sequence.mode == "RGBA" and sequence.info["aux_tracks"] == {}
    alpha = np.asarray(sequence[0])[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255  # its limited-range alpha track, expanded


def test_open_heif_shows_the_still_image_of_an_animated_avif() -> None:
    heif_file = heifkit.open_heif(CORPUS / "pillow_star.avifs")
    assert len(heif_file) == 1 and heif_file.has_sequence
    assert "duration" not in heif_file.info
    assert not heifkit.open_heif(ZPUG).has_sequence


# --- round trips -------------------------------------------------------------------------------------

COMBINATIONS = list(itertools.product(["HEIF", "AVIF"], [8, 10], [False, True]))


@pytest.mark.parametrize(("fmt", "bits", "alpha"), COMBINATIONS)
def test_round_trip_thirty_frames_lossless(fmt: str, bits: int, alpha: bool) -> None:
    mode = ("RGBA" if alpha else "RGB") + (";16" if bits > 8 else "")
    frames = frames_of(mode)
    durations = durations_for(30)
    data = saved(frames, durations=durations, loop=2, format=fmt, bit_depth=bits, **LOSSLESS)
    sequence = heifkit.open_sequence(data, convert_hdr_to_8bit=False)
    assert sequence.mimetype == ("image/avif-sequence" if fmt == "AVIF" else "image/heic-sequence")
    assert (len(sequence), sequence.size, sequence.mode) == (30, SIZE, mode)
    assert sequence.info["bit_depth"] == bits and sequence.info["loop"] == 2
    assert [f.info["duration"] for f in sequence] == durations
    assert [f.info["timestamp"] for f in sequence] == list(itertools.accumulate([0, *durations[:-1]]))
    for frame, original in zip(sequence, frames, strict=True):
        assert bytes(frame.data) == bytes(original.data)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_round_trip_lossy(fmt: str, mode: str) -> None:
    frames = smooth_frames(mode, 10)
    data = saved(frames, durations=40, format=fmt, quality=90)
    sequence = heifkit.open_sequence(data)
    assert (len(sequence), sequence.mode) == (10, mode)
    for frame, original in zip(sequence, frames, strict=True):
        assert psnr(np.asarray(frame), np.asarray(original)) >= 40


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_round_trip_twelve_bit(fmt: str) -> None:
    frames = frames_of("RGB;16", count=3)
    data = saved(frames, durations=100, format=fmt, save_to_12bit=True, quality=90)
    sequence = heifkit.open_sequence(data, convert_hdr_to_8bit=False)
    assert sequence.info["bit_depth"] == 12 and sequence.mode == "RGB;16"
    assert [f.size for f in sequence] == [SIZE] * 3


def test_round_trip_grey() -> None:
    frames = frames_of("L", count=4)
    sequence = heifkit.open_sequence(saved(frames, durations=10, format="AVIF", quality=-1))
    assert sequence.mode == "L"
    assert [bytes(f.data) for f in sequence] == [bytes(f.data) for f in frames]


@given(
    count=st.integers(1, 5),
    width=st.integers(32, 72),
    height=st.integers(32, 72),
    durations=st.lists(st.integers(0, 5000), min_size=5, max_size=5),
    loop=st.integers(0, 3),
    fmt=st.sampled_from(["HEIF", "AVIF"]),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip_any_size_and_durations(
    count: int, width: int, height: int, durations: list[int], loop: int, fmt: str, seed: int
) -> None:
    frames = frames_of("RGB", count, seed, (width, height))
    data = saved(frames, durations=durations[:count], loop=loop, format=fmt, **LOSSLESS)
    sequence = heifkit.open_sequence(data)
    assert (len(sequence), sequence.size, sequence.info["loop"]) == (count, (width, height), loop)
    assert [f.info["duration"] for f in sequence] == [max(d, 1) for d in durations[:count]]  # 0: one tick
    assert [bytes(f.data) for f in sequence] == [bytes(f.data) for f in frames]


def test_transcoding_a_sequence_keeps_durations_and_loop() -> None:
    sequence = heifkit.open_sequence(CORPUS / "pillow_star.avifs")
    again = heifkit.open_sequence(saved(sequence, format="HEIF", quality=90))
    assert len(again) == len(sequence) and again.mode == "RGBA"
    assert [f.info["duration"] for f in again] == [f.info["duration"] for f in sequence]
    assert again.info["loop"] == sequence.info["loop"] == 1
    for mine, theirs in zip(again, sequence, strict=True):
        assert psnr(np.asarray(mine), np.asarray(theirs)) >= 35


def test_sequence_save_method(tmp_path: Path) -> None:
    sequence = heifkit.open_sequence(saved(frames_of("RGB", 3), durations=[5, 6, 7], loop=0, **LOSSLESS))
    sequence.save(tmp_path / "copy.avifs", **LOSSLESS)
    copy = heifkit.open_sequence(tmp_path / "copy.avifs")
    assert copy.mimetype == "image/avif-sequence"  # the format from the extension
    assert [f.info["duration"] for f in copy] == [5, 6, 7] and copy.info["loop"] == 0


def test_pillow_frames_of_different_modes_take_the_first_ones() -> None:
    frames = [Image.new("RGBA", SIZE, (10, 20, 30, 40)), Image.new("RGB", SIZE, (1, 2, 3)), Image.new("L", SIZE, 9)]
    sequence = heifkit.open_sequence(saved(frames, durations=10, **LOSSLESS))
    assert sequence.mode == "RGBA"
    assert [tuple(np.asarray(f)[0, 0]) for f in sequence] == [(10, 20, 30, 40), (1, 2, 3, 255), (9, 9, 9, 255)]


def test_animated_pillow_image_gives_every_frame_and_its_durations() -> None:
    gif = io.BytesIO()
    frames = [Image.new("RGB", SIZE, (i * 60, 0, 0)) for i in range(4)]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=[30, 40, 50, 60])
    with Image.open(gif) as im:
        sequence = heifkit.open_sequence(saved([im], **LOSSLESS))
    assert [f.info["duration"] for f in sequence] == [30, 40, 50, 60]


def test_exif_orientation_is_applied_to_the_pixels() -> None:
    im = Image.new("RGB", (64, 32), (200, 10, 10))
    im.paste((10, 200, 10), (0, 0, 32, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    im.info["exif"] = exif.tobytes()
    upright = np.asarray(im.rotate(-90, expand=True))
    sequence = heifkit.open_sequence(saved([im], durations=10, **LOSSLESS))
    assert sequence.size == (32, 64)
    assert np.array_equal(np.asarray(sequence[0]), upright)


# --- reading ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ten_frames() -> tuple[list[heifkit.HeifImage], bytes]:
    frames = frames_of("RGB", 10, seed=7)
    return frames, saved(frames, durations=list(range(10, 110, 10)), format="AVIF", **LOSSLESS)


def test_indexing_any_order_and_slices(ten_frames: tuple[list[heifkit.HeifImage], bytes]) -> None:
    frames, data = ten_frames
    sequence = heifkit.open_sequence(data)
    expected = [bytes(f.data) for f in frames]
    for index in [3, 1, 9, -1, 0, -10, 5, 5]:
        assert bytes(sequence[index].data) == expected[index]
    assert [bytes(f.data) for f in sequence[2:8:3]] == expected[2:8:3]
    assert sequence[-1].index == 9 and sequence[4].info["timestamp"] == 100
    with pytest.raises(IndexError):
        sequence[10]
    with pytest.raises(TypeError):
        sequence["1"]  # type: ignore[index]


def test_frames_in_numpy_and_pillow(ten_frames: tuple[list[heifkit.HeifImage], bytes]) -> None:
    frames, data = ten_frames
    frame = heifkit.open_sequence(data)[2]
    assert np.array_equal(np.asarray(frame), np.asarray(frames[2]))
    img = frame.to_pillow()
    assert img.mode == "RGB" and img.info["duration"] == 30 and img.info["timestamp"] == 30
    assert pickle.loads(pickle.dumps(frame)).data == frame.data
    assert "HeifFrame 2" in repr(frame) and "10 frames" in repr(heifkit.open_sequence(data))


def test_inputs_path_stream_bytes(ten_frames: tuple[list[heifkit.HeifImage], bytes], tmp_path: Path) -> None:
    _, data = ten_frames
    path = tmp_path / "s.avifs"
    path.write_bytes(data)
    stream = io.BytesIO(data)
    for source in (path, str(path), stream, bytearray(data), memoryview(data)):
        sequence = heifkit.open_sequence(source)
        assert len(sequence) == 10 and bytes(sequence[9].data) == bytes(heifkit.open_sequence(data)[9].data)
    assert stream.tell() == 0


def test_big_file_read_lazily_by_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from heifkit._read import source as _input

    monkeypatch.setattr(_input, "LAZY_READ_THRESHOLD", 100)  # this small file is read as a big one would be
    frames = frames_of("RGB", 3)
    path = tmp_path / "s.heics"
    path.write_bytes(saved(frames, durations=20, format="HEIF", **LOSSLESS))
    sequence = heifkit.open_sequence(path)
    assert [bytes(f.data) for f in sequence] == [bytes(f.data) for f in frames]


def test_bgr_and_stride_options(ten_frames: tuple[list[heifkit.HeifImage], bytes]) -> None:
    frames, data = ten_frames
    bgr = heifkit.open_sequence(data, bgr_mode=True)[0]
    assert bgr.mode == "BGR" and np.array_equal(np.asarray(bgr)[..., ::-1], np.asarray(frames[0]))
    strided = heifkit.open_sequence(data, remove_stride=False)[0]
    assert strided.stride >= 64 * 3 and len(strided.data) == strided.stride * 48


def test_heif_frames_are_cut_to_the_track_size() -> None:
    """libheif 1.23 hands out x265's padded pictures (64x64 for a 64x48 track): heifkit cuts them."""
    frames = frames_of("RGB", 2, size=(40, 24))
    sequence = heifkit.open_sequence(saved(frames, durations=10, format="HEIF", **LOSSLESS), remove_stride=False)
    assert [f.size for f in sequence] == [(40, 24)] * 2
    assert all(f.stride >= 40 * 3 and len(f.data) == f.stride * 24 for f in sequence)
    for frame, original in zip(sequence, frames, strict=True):
        assert np.array_equal(np.asarray(frame)[:, :40], np.asarray(original))  # numpy sees the padded rows


def test_threads_share_one_sequence(ten_frames: tuple[list[heifkit.HeifImage], bytes]) -> None:
    frames, data = ten_frames
    sequence = heifkit.open_sequence(data)
    expected = [bytes(f.data) for f in frames]
    failures: list[str] = []

    def work(order: list[int]) -> None:
        for index in order:
            if bytes(sequence[index].data) != expected[index]:
                failures.append(f"frame {index}")

    threads = [threading.Thread(target=work, args=(order,)) for order in (list(range(10)), list(range(9, -1, -1)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# --- open_heif and the sequence-only file --------------------------------------------------------------


def test_open_heif_of_a_sequence_alone_shows_its_first_frame(ten_frames: tuple[list[heifkit.HeifImage], bytes]) -> None:
    frames, data = ten_frames
    heif_file = heifkit.open_heif(data)
    assert heif_file.has_sequence and len(heif_file) == 1
    assert heif_file.size == SIZE and heif_file.info["primary"] and heif_file.info["duration"] == 10
    assert bytes(heif_file.data) == bytes(frames[0].data)
    assert pickle.loads(pickle.dumps(heif_file)).has_sequence


def test_open_sequence_of_a_still_file_is_refused() -> None:
    with pytest.raises(heifkit.InvalidInputError, match="no image sequence"):
        heifkit.open_sequence(ZPUG)


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_damaged_sample_fails_its_frame_and_the_earlier_frames_stay_readable(fmt: str) -> None:
    frames = frames_of("RGB", 6)
    data = saved(frames, durations=40, format=fmt, **LOSSLESS)
    assert data.find(b"moov") < data.find(b"mdat")  # the sample table survives a cut in the samples
    sequence = heifkit.open_sequence(data[: len(data) * 6 // 10])
    assert len(sequence) == 6
    assert bytes(sequence[1].data) == bytes(frames[1].data)
    with pytest.raises(heifkit.HeifError, match="frame 3") as failure:
        sequence[3].load()
    assert isinstance(failure.value, heifkit.TruncatedError)
    assert bytes(sequence[0].data) == bytes(frames[0].data)  # after the error: decoded again from the start
    assert bytes(sequence[1].data) == bytes(frames[1].data)


def test_corrupt_sample_is_a_typed_error() -> None:
    data = bytearray(saved(frames_of("RGB", 6), durations=40, format="AVIF", **LOSSLESS))
    middle = (data.find(b"mdat") + len(data)) // 2
    data[middle : middle + 2000] = bytes(2000)
    sequence = heifkit.open_sequence(bytes(data))
    sequence[0].load()
    with pytest.raises(heifkit.HeifError):
        for frame in sequence:
            frame.load()


def test_track_without_samples_is_invalid_input() -> None:
    data = bytearray(saved(frames_of("RGB", 2), durations=40, format="AVIF", **LOSSLESS))
    for box, offset in ((b"stsz", 12), (b"stts", 8), (b"stsc", 8), (b"stco", 8), (b"stss", 8)):
        at = data.find(box)
        data[at + offset : at + offset + 4] = bytes(4)  # no entries
    with pytest.raises(heifkit.InvalidInputError):
        heifkit.open_sequence(bytes(data))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"durations": -1}, ValueError, "invalid duration"),
        ({"durations": 1.5}, TypeError, "whole milliseconds"),
        ({"durations": "10"}, TypeError, "whole milliseconds"),
        ({"durations": [10, 20]}, ValueError, "give one per frame"),
        ({"durations": [10, 20, 30, 40]}, ValueError, "give one per frame"),
        ({}, ValueError, "no info\\['duration'\\]"),
        ({"durations": 10, "loop": -1}, ValueError, "invalid loop"),
        ({"durations": 10, "loop": True}, TypeError, "loop must be an int"),
        ({"durations": 10, "exif": b"Exif"}, TypeError, "do not apply to a sequence: exif"),
        ({"durations": 10, "tile_size": 512}, TypeError, "tile_size"),
        ({"durations": 10, "qualiti": 50}, TypeError, "qualiti"),
        ({"durations": 10, "quality": 101}, ValueError, "invalid quality"),
        ({"durations": 10, "format": "PNG"}, ValueError, "unknown format"),
    ],
)
def test_save_parameters_are_checked(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        saved(frames_of("RGB", 3, size=(32, 32)), **kwargs)


def test_frames_must_share_size_and_mode(tmp_path: Path) -> None:
    target = tmp_path / "s.heics"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match="share one size"):
        heifkit.save_sequence(frames_of("RGB", 1) + frames_of("RGB", 1, size=(32, 32)), target, durations=1)
    with pytest.raises(ValueError, match="one mode"):
        heifkit.save_sequence(frames_of("RGB", 1) + frames_of("RGBA", 1), target, durations=1)
    with pytest.raises(ValueError, match="no frames"):
        heifkit.save_sequence([], target, durations=1)
    with pytest.raises(TypeError, match="iterable of images"):
        heifkit.save_sequence(Image.new("RGB", SIZE), target, durations=1)
    with pytest.raises(TypeError, match="not int"):
        heifkit.save_sequence([1], target, durations=1)
    assert target.read_bytes() == b"old"  # nothing is written unless the whole sequence is


def test_frame_size_limit() -> None:
    wide = heifkit.from_bytes("L", (65536, 1), bytes(65536))[0]
    with pytest.raises(ValueError, match="at most 65535"):
        saved([wide], durations=1, format="AVIF")


# --- memory and lifetimes -------------------------------------------------------------------------------


@pytest.mark.slow  # long sequences
def test_iterating_keeps_no_frame_but_the_current_one(ten_frames: tuple[list[heifkit.HeifImage], bytes]) -> None:
    _, data = ten_frames
    sequence = heifkit.open_sequence(data)
    alive: list[weakref.ref[Any]] = []
    for frame in sequence:
        frame.load()
        alive.append(weakref.ref(frame._data))
        gc.collect()
        assert sum(ref() is not None for ref in alive) <= 2  # this frame, and the loop's previous binding
    del frame
    gc.collect()
    assert all(ref() is None for ref in alive)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.slow  # long sequences
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident size from /proc")
def test_iterating_a_long_sequence_stays_in_bounded_memory() -> None:
    """40 frames of 256x256 RGBA: the resident size stops growing once the decoder holds its reference
    pictures, far below what keeping the frames would take (benchmarks/sequence_memory.py: 300 frames of 1080p)."""
    frame_bytes = 256 * 256 * 4
    images = []
    for i in range(40):
        im = Image.new("RGBA", (256, 256), (0, 0, 0, 255))
        im.paste((i * 5, 255 - i * 5, 128, 200), (0, 0, 100 + i, 256))
        images.append(im)
    data = saved(images, durations=20, format="HEIF", quality=50, speed=10)
    del images
    gc.collect()
    baseline = _rss()
    sizes = []
    for frame in heifkit.open_sequence(data):
        frame.to_pillow()
        sizes.append(_rss() - baseline)
    assert sizes[-1] - sizes[len(sizes) // 2] < 2 * frame_bytes  # not growing with the length
    assert max(sizes) < 16 * frame_bytes  # 40 frames kept: 40


@pytest.mark.slow  # long sequences
def test_drop_orders_then_another_file() -> None:
    frames = frames_of("RGBA", 3)
    data = saved(frames, durations=10, format="AVIF", **LOSSLESS)
    expected = [bytes(f.data) for f in frames]
    zpug = bytes(heifkit.open_heif(ZPUG)[0].data)
    for order in itertools.permutations(range(4)):
        sequence = heifkit.open_sequence(data)
        frame = sequence[1]
        held = [sequence, frame, frame.data, frame.to_pillow()]
        for index in order:
            held[index] = None
            assert bytes(heifkit.open_heif(ZPUG)[0].data) == zpug
            if held[1] is not None:
                assert bytes(held[1].data) == expected[1]
            if held[2] is not None:
                assert bytes(held[2]) == expected[1]
            if held[3] is not None:
                assert held[3].tobytes() == expected[1]
        gc.collect()
    assert [bytes(f.data) for f in heifkit.open_sequence(data)] == expected
