"""Security limits: per call (``open_heif(..., limits=)``) and global (``options.SECURITY_LIMITS``), libheif's
values by default, each one lowered refuses a file with a SecurityLimitError that names it and says how to
raise it; ``DISABLE_SECURITY_LIMITS`` / ``disable_security_limits``; thread contexts read with the same
limits; Pillow's decompression-bomb check on every frame the plugin seeks to."""

from __future__ import annotations

import io
import pickle
import warnings
from typing import Any

import pytest
from PIL import Image

import heifkit
from conftest import CORPUS, ZPUG
from heifkit import SecurityLimitError, SecurityLimits, options
from heifkit._decode import pixels as decode
from heifkit._native.libheif import Context, lib
from heifkit.limits import FIELDS, native

GRID = CORPUS / "pheif_arrow.heic"  # 6x8 grid of 512x512 tiles, one ICC profile
SEQUENCE = CORPUS / "libavif_colors-animated-8bpc.avif"  # 5 frames


def test_defaults_are_libheifs() -> None:
    defaults = lib.heif_get_global_security_limits()
    limits = SecurityLimits()
    for name, field in FIELDS.items():
        assert getattr(limits, name) == getattr(defaults, field), name
    assert limits.max_image_pixels == 2**30 and limits.max_items == 1000
    assert SecurityLimits() == options.SECURITY_LIMITS


def _decode_all(path: Any, **kwargs: Any) -> None:
    for image in heifkit.open_heif(path, **kwargs):
        image.load()
        for index in range(len(image.info["thumbnails"])):
            image.get_thumbnail(index).load()


# (limit, value, file): each file is refused with the limit lowered to the value, read with libheif's.
LOWERED = [
    ("max_image_pixels", 64 * 64 - 1, ZPUG),  # 64x64 images
    ("max_total_memory", 10_000, ZPUG),  # decoding a 64x64 image takes 12 kB
    ("max_items", 3, ZPUG),  # 9 items
    ("max_tiles", 47, GRID),  # 48 tiles
    ("max_sequence_frames", 4, SEQUENCE),  # 5 frames
    ("max_memory_block_size", 1000, ZPUG),  # 2.6 kB of item data
    ("max_color_profile_size", 100, GRID),  # a 548-byte ICC profile
    ("max_children_per_box", 2, ZPUG),
]


@pytest.mark.parametrize(("name", "value", "path"), LOWERED, ids=[case[0] for case in LOWERED])
def test_each_lowered_limit_refuses_and_names_itself(name: str, value: int, path: Any) -> None:
    assert name in FIELDS
    _decode_all(path)  # within libheif's limits
    with pytest.raises(SecurityLimitError) as excinfo:
        _decode_all(path, limits={name: value})
    error = excinfo.value
    assert error.limit == name
    message = str(error)
    assert f"limits={{'{name}': ...}}" in message and "options.SECURITY_LIMITS" in message
    assert "disable_security_limits=True" in message
    assert isinstance(error, ValueError) and isinstance(error, heifkit.HeifError)
    # the same through the global option
    options.SECURITY_LIMITS = {name: value}
    with pytest.raises(SecurityLimitError, match=name):
        _decode_all(path)
    _decode_all(path, limits=SecurityLimits())  # a whole SecurityLimits given per call replaces the option
    _decode_all(path, disable_security_limits=True)


def test_the_limit_is_inclusive() -> None:
    _decode_all(ZPUG, limits={"max_image_pixels": 96 * 64})  # the largest image is 96x64
    with pytest.raises(SecurityLimitError):
        _decode_all(ZPUG, limits={"max_image_pixels": 96 * 64 - 1})
    _decode_all(GRID, limits={"max_tiles": 48})


def test_zero_turns_a_limit_off() -> None:
    options.SECURITY_LIMITS = {"max_image_pixels": 100}
    _decode_all(ZPUG, limits={"max_image_pixels": 0})


def test_call_limits_change_the_global_ones() -> None:
    options.SECURITY_LIMITS = SecurityLimits(max_items=3)
    with pytest.raises(SecurityLimitError, match="max_items"):
        heifkit.open_heif(ZPUG, limits={"max_image_pixels": 10**6})  # max_items still 3
    heifkit.open_heif(ZPUG, limits={"max_items": 9})


def test_disable_security_limits_option_is_honoured() -> None:
    options.SECURITY_LIMITS = {"max_image_pixels": 100}
    options.DISABLE_SECURITY_LIMITS = True
    heif_file = heifkit.open_heif(ZPUG)
    assert heif_file[0]._handle.ctx.limits_disabled
    _decode_all(ZPUG)
    # a call's own setting wins over the option
    with pytest.raises(SecurityLimitError):
        _decode_all(ZPUG, disable_security_limits=False)
    with pytest.raises(SecurityLimitError):
        _decode_all(ZPUG, limits={"max_image_pixels": 100})


def test_register_opener_sets_the_limits(heif_plugin: None) -> None:
    heifkit.register_heif_opener(security_limits={"max_items": 3})
    with pytest.raises(Image.UnidentifiedImageError, match="max_items"):
        Image.open(ZPUG)
    heifkit.register_heif_opener(security_limits=SecurityLimits())
    with Image.open(ZPUG) as im:
        im.load()


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"limits": {"max_pixels": 1}}, TypeError, "unknown security limit"),
        ({"limits": {"max_items": -1}}, ValueError, "max_items"),
        ({"limits": {"max_items": 2**32}}, ValueError, "max_items"),
        ({"limits": {"max_items": 1.5}}, TypeError, "max_items"),
        ({"limits": {"max_items": True}}, TypeError, "max_items"),
        ({"limits": [("max_items", 1)]}, TypeError, "SecurityLimits or a dict"),
        ({"limits": {"max_items": 5}, "disable_security_limits": True}, ValueError, "contradict"),
    ],
)
def test_invalid_limits(kwargs: dict[str, Any], error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        heifkit.open_heif(ZPUG, **kwargs)


def test_invalid_global_limits() -> None:
    options.SECURITY_LIMITS = "none"  # type: ignore[assignment]
    with pytest.raises(TypeError, match="options.SECURITY_LIMITS"):
        heifkit.open_heif(ZPUG)


def test_replace() -> None:
    limits = SecurityLimits().replace(max_items=5)
    assert limits.max_items == 5 and limits.max_image_pixels == 2**30
    with pytest.raises(TypeError, match="unknown"):
        limits.replace(items=5)


def test_error_pickles_with_one_hint() -> None:
    with pytest.raises(SecurityLimitError) as excinfo:
        heifkit.open_heif(ZPUG, limits={"max_items": 3})
    again = pickle.loads(pickle.dumps(excinfo.value))
    assert str(again) == str(excinfo.value) and str(again).count("[security limit") == 1
    assert (again.code, again.subcode, again.limit) == (excinfo.value.code, excinfo.value.subcode, "max_items")


def test_a_limit_heifkit_does_not_expose_is_named_as_such() -> None:
    error = SecurityLimitError("Security limit exceeded: Too many entities in dref box.", 6, 1000)
    assert error.limit is None
    assert "does not expose" in str(error) and "disable_security_limits=True" in str(error)


def test_a_file_beyond_a_limit_is_refused_not_read_without_that_image() -> None:
    """libavif's 1x5 grid has its tiles as top-level images too: the grid is not silently replaced by a tile."""
    path = CORPUS / "libavif_sofa_grid1x5_420.avif"
    assert heifkit.open_heif(path).size == (1024, 770)
    with pytest.raises(SecurityLimitError, match="max_tiles"):
        heifkit.open_heif(path, limits={"max_tiles": 4})


# --- contexts ---------------------------------------------------------------------------------------


def _limit_fields(ctx: Context) -> dict[str, int]:
    assert ctx.limits is not None
    return {field: int(getattr(ctx.limits, field)) for field in FIELDS.values()}


def test_thread_contexts_read_with_the_same_limits() -> None:
    limits = SecurityLimits(max_items=500, max_image_pixels=20_000_000)
    heif_file = heifkit.open_heif(GRID, limits=limits)
    handle = heif_file[0]._handle
    workers = decode._worker_handles(handle, 3)
    assert len(workers) == 3
    expected = {FIELDS[name]: getattr(limits, name) for name in FIELDS}
    for worker in workers:
        assert _limit_fields(worker.ctx) == expected
    assert heifkit.open_heif(GRID, limits=limits).to_pillow().tobytes() == heifkit.open_heif(GRID).to_pillow().tobytes()


@pytest.mark.parametrize("threads", [0, 4])
def test_a_grid_decoded_tile_by_tile_meets_the_whole_images_limits(threads: int) -> None:
    """Each tile alone is within the limits: a decode tile by tile (on thread contexts with 4 threads, and any
    region) applies max_image_pixels to the whole image and max_total_memory to its output, as libheif's
    whole-image decode (threads=0) does."""
    pixels = 3024 * 4032

    def image(**limits: int) -> Any:
        return heifkit.open_heif(GRID, decode_threads=threads, limits=limits)[0]

    with pytest.raises(SecurityLimitError, match="max_image_pixels"):
        image(max_image_pixels=pixels - 1).load()
    with pytest.raises(SecurityLimitError, match="max_image_pixels"):
        image(max_image_pixels=pixels - 1).crop((0, 0, 100, 100)).load()
    with pytest.raises(SecurityLimitError, match="max_total_memory"):
        image(max_total_memory=20_000_000).load()  # 36.6 MB of RGB
    region = image(max_total_memory=20_000_000).crop((0, 0, 600, 500))  # 0.9 MB
    assert len(region.data) == 600 * 500 * 3


def test_a_twin_applies_the_limits() -> None:
    """libheif refuses the file in the twin as in the context it was made from (zPug has 9 items)."""
    data = ZPUG.read_bytes()
    low = Context()
    low.set_limits(native(SecurityLimits(max_items=3)))
    with pytest.raises(SecurityLimitError, match="max_items"):
        low.twin(data)
    with pytest.raises(SecurityLimitError, match="max_items"):
        low.read_memory(data)
    Context().twin(data)  # libheif's limits
    disabled = Context()
    disabled.disable_limits()
    assert disabled.twin(data).limits_disabled


# --- the Pillow plugin: decompression bombs on every frame -------------------------------------------


def test_bomb_check_on_every_frame(heif_plugin: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """zPug: frame 0 64x64 RGB, frame 1 64x64 L (primary, opened first), frame 2 96x64 RGB (6144 px)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64)
    with Image.open(ZPUG) as im:
        im.seek(0)
        with pytest.warns(Image.DecompressionBombWarning):
            im.seek(2)
        assert im.tell() == 2
        im.load()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # frame 2 is over twice this
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(ZPUG) as im:
            with pytest.raises(Image.DecompressionBombError):
                im.seek(2)
            assert im.tell() == 1 and im.size == (64, 64)  # still at the frame it was at
            im.seek(0)
            im.load()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's way to turn the check off
    with Image.open(ZPUG) as im:
        im.seek(2)
        im.load()


def test_plugin_reads_a_big_frame_within_the_limit(heif_plugin: None) -> None:
    out = io.BytesIO()
    heifkit.from_bytes("L", (64, 64), bytes(64 * 64)).save(out, append_images=[Image.new("L", (128, 128))], quality=50)
    with Image.open(out) as im:
        im.seek(1)
        im.load()
        assert im.size == (128, 128)


# --- image sequences ----------------------------------------------------------------------------------


def test_open_sequence_applies_the_frame_limit() -> None:
    assert len(heifkit.open_sequence(SEQUENCE, limits={"max_sequence_frames": 5})) == 5
    with pytest.raises(SecurityLimitError) as excinfo:
        heifkit.open_sequence(SEQUENCE, limits={"max_sequence_frames": 4})
    assert excinfo.value.limit == "max_sequence_frames"
    options.SECURITY_LIMITS = {"max_sequence_frames": 4}
    with pytest.raises(SecurityLimitError, match="max_sequence_frames"):
        heifkit.open_sequence(SEQUENCE)
    assert len(heifkit.open_sequence(SEQUENCE, disable_security_limits=True)) == 5


def test_sequence_frames_decode_with_the_files_limits() -> None:
    """Each decoding position (a context of its own, made again to go back) reads with the call's limits."""
    limits = SecurityLimits(max_items=500, max_image_pixels=20_000_000)
    sequence = heifkit.open_sequence(SEQUENCE, limits=limits)
    sequence[1].load()
    sequence[0].load()  # back: a new decoding position
    cursor = sequence._cursor
    assert cursor is not None
    assert _limit_fields(cursor.ctx) == {FIELDS[name]: getattr(limits, name) for name in FIELDS}
    with pytest.raises(SecurityLimitError, match="max_image_pixels"):
        for frame in heifkit.open_sequence(SEQUENCE, limits={"max_image_pixels": 100}):
            frame.load()


def test_bomb_check_on_every_sequence_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin shows an AVIF sequence's frames (pillow_star.avifs: 5 frames); seeking to one checks it."""
    with heifkit.AvifImageFile(CORPUS / "pillow_star.avifs") as im:
        assert isinstance(im._heif_file, heifkit.HeifSequence)
        assert im.n_frames > 1
        width, height = im.size
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", width * height // 2 - 1)  # over twice the limit
        with pytest.raises(Image.DecompressionBombError):
            im.seek(1)
        assert im.tell() == 0
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", width * height - 1)
        with pytest.warns(Image.DecompressionBombWarning):
            im.seek(2)
        im.load()
        assert im.tell() == 2
