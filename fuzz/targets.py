"""Fuzz targets: each takes one input (bytes) and returns normally or raises an exception that is a finding.

What each target accepts as a clean outcome is what heifkit promises for any input: a typed error
(:class:`heifkit.HeifError`, and the documented ``ValueError``/``TypeError`` for bad arguments) or a valid
image. Anything else, an unexpected exception type, a crash, a hang or runaway memory, is a finding.

* ``parse``: ``open_heif`` alone: the container, every image's ``info`` and coded quality, no pixels (fast: most of the
  executions of a run);
* ``read``: ``open_heif`` with open flags derived from the input (a CRC, so the file bytes stay as they are),
  then decode a region of each top-level image (``crop`` before decoding: only the tiles under it), every
  top-level image, thumbnail, depth image, auxiliary image and gain map, ``to_pillow()`` and the array
  interface; then ``open_sequence`` and every frame of the image sequence (and of its auxiliary tracks).
* ``plugin``: Pillow ``Image.open`` + ``draft`` or a region (``crop`` before ``load``) + ``load`` + ``seek``
  through every frame (still images, or the frames of a sequence).
* ``encode``: ``from_bytes``/``encode`` with a mode, size, stride, buffer and save parameters drawn from
  the input; what encodes must decode back to the same size and mode family.
* ``save``: ``HeifFile.save`` of an opened file (re-encode what was read), then read back.

``run.py`` runs them under atheris (libFuzzer); ``tests/test_fuzz_regressions.py`` replays saved inputs.
"""

from __future__ import annotations

import io
import warnings
import zlib
from collections.abc import Callable
from typing import Any

from PIL import Image, UnidentifiedImageError

import heifkit
from heifkit._info.modes import MODES

__all__ = ["TARGETS", "FUZZ_LIMITS", "MAX_PIXELS_PLUGIN"]

FUZZ_LIMITS = {"max_image_pixels": 16 << 20, "max_total_memory": 1 << 30}
"""Lowered security limits for the read targets: an image of up to 16 MP, 1 GiB of libheif memory per file,
so that a mutated size field is refused (a SecurityLimitError, a clean outcome) instead of making the fuzzer
allocate gigabytes. The limits themselves are exercised this way."""

MAX_PIXELS_PLUGIN = 16 << 20
"""Pillow's MAX_IMAGE_PIXELS in the plugin target (DecompressionBombError beyond twice this)."""

_SAVE_MAX_PIXELS = 128 * 128
"""Opened images re-encoded by the ``save`` target: bigger ones are only decoded (encoding takes 100 ms+)."""


def _flags(data: bytes) -> int:
    return zlib.crc32(data)


def _touch(image: Any) -> None:
    """Decode ``image`` and look at its pixels the ways a user does."""
    image.load()
    view = memoryview(image.data)
    if len(view) < image.stride * image.size[1]:
        raise AssertionError(f"{image!r}: {len(view)} bytes < stride {image.stride} x height {image.size[1]}")
    image.__array_interface__  # noqa: B018 - computes shape and typestr
    try:
        image.to_pillow()
    except ValueError as exc:  # modes Pillow has no equivalent for (I;16 with BGR, RGB;16...) say so
        if "has no Pillow equivalent" not in str(exc):
            raise


def _sub_images(image: Any) -> None:
    for index in range(len(image.info.get("thumbnails") or [])):
        try:
            _touch(image.get_thumbnail(index))
        except heifkit.HeifError:
            pass
    for depth in image.info.get("depth_images") or []:
        try:
            _touch(depth)
        except heifkit.HeifError:
            pass
    for ids in (image.info.get("aux") or {}).values():
        for aux_id in ids:
            try:
                _touch(image.get_aux_image(aux_id))
            except heifkit.HeifError:
                pass


def _region(image: Any, bits: int) -> None:
    """Decode a region of ``image`` before its pixels are (only the tiles under it, for a grid), with a box
    inside the image drawn from ``bits``."""
    width, height = image.size
    if width < 2 or height < 2:
        return
    left, top = (bits >> 8) % (width - 1), (bits >> 16) % (height - 1)
    right = left + 1 + (bits >> 20) % (width - left)  # <= width
    bottom = top + 1 + (bits >> 26) % (height - top)
    region = image.crop((left, top, right, bottom))
    if region.size != (right - left, bottom - top):
        raise AssertionError(f"crop of {image!r} to {(left, top, right, bottom)} gave {region.size}")
    _touch(region)


def _sequence_frames(data: bytes, bits: int) -> None:
    """Decode every frame of the file's image sequence (``open_sequence``), forward; with some ``bits``, go
    back to the first frame at the end (a fresh decoding position), or read the auxiliary tracks too."""
    try:
        sequence = heifkit.open_sequence(data, limits=FUZZ_LIMITS, convert_hdr_to_8bit=bool(bits & 1))
    except heifkit.HeifError:
        return
    try:
        for frame in sequence:
            _touch(frame)
        if bits & 64:
            _touch(sequence[0])
        if bits & 128:
            for ids in sequence.info.get("aux_tracks", {}).values():
                for track_id in ids:
                    for frame in sequence.get_aux_sequence(track_id):
                        _touch(frame)
    except heifkit.HeifError:
        pass


def parse(data: bytes) -> None:
    """open_heif only: the container, every image's ``info`` (EXIF, XMP, colour, HDR metadata, entity groups)
    and the thumbnail and auxiliary image handles, without decoding pixels (100x faster than ``read``)."""
    bits = _flags(data)
    try:
        heif_file = heifkit.open_heif(data, hdr_to_16bit=not bits & 4, limits=FUZZ_LIMITS)
    except heifkit.HeifError:
        return
    for image in heif_file:
        repr(image)
        image.coded_quality()  # the coded stream's headers, bounded: a damaged one gives None
        for index in range(len(image.info.get("thumbnails") or [])):
            try:
                repr(image.get_thumbnail(index))  # a size of 0 (a damaged ispe) fails when it is decoded
            except heifkit.HeifError:
                pass
        for ids in (image.info.get("aux") or {}).values():
            for aux_id in ids:
                try:
                    image.get_aux_image(aux_id)
                except heifkit.HeifError:
                    pass


def read(data: bytes) -> None:
    """open_heif + decode of every image (a region of it first, for some inputs), thumbnail, depth image,
    auxiliary image and gain map; open_sequence + decode of every frame."""
    bits = _flags(data)
    kwargs = {
        "convert_hdr_to_8bit": bool(bits & 1),
        "bgr_mode": bool(bits & 2),
        "hdr_to_16bit": not bits & 4,
        "remove_stride": not bits & 8,
        "decode_threads": (bits >> 4) & 3,
        "limits": FUZZ_LIMITS,
    }
    try:
        heif_file = heifkit.open_heif(data, **kwargs)
    except heifkit.HeifError:
        heif_file = None
    if heif_file is not None:
        for image in heif_file:
            if bits & 32:
                try:
                    _region(image, bits)  # before the image itself is decoded: the region alone
                except heifkit.HeifError:
                    pass
            try:
                _touch(image)
            except heifkit.HeifError:
                pass
            _sub_images(image)
            for gain_map in image.info.get("gain_maps") or []:
                try:
                    _touch(gain_map)
                except heifkit.HeifError:
                    pass
    _sequence_frames(data, bits)


def plugin(data: bytes) -> None:
    """Pillow: Image.open + draft + load + seek through every frame (+ load)."""
    bits = _flags(data)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS_PLUGIN
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["HEIF", "AVIF"]) as im:
                if bits & 1:
                    im.draft(None, (32, 32))
                elif bits & 2 and im.width > 2 and im.height > 2:
                    region = im.crop((1, 1, im.width - 1, im.height // 2 + 1))  # decodes the region alone
                    if region.size != (im.width - 2, im.height // 2):
                        raise AssertionError(f"crop gave {region.size} of {im.size}")
                im.load()
                for frame in range(im.n_frames):
                    im.seek(frame)
                    im.load()
                    if im.tell() != frame:
                        raise AssertionError(f"seek({frame}) left the image at frame {im.tell()}")
    except (UnidentifiedImageError, heifkit.HeifError, Image.DecompressionBombError):
        pass


# --- encoding ----------------------------------------------------------------------------------------

_CHROMAS: list[Any] = [None, 420, 422, 444, "4:4:4", "4:2:0", 411, "x"]
_BIT_DEPTHS: list[Any] = [None, 8, 10, 12, 16, 7]
_TILE_SIZES = [0, 0, 0, 16, 32, 64, 100]
_ENC_PARAMS: list[dict[str, Any]] = [
    {},
    {"preset": "ultrafast"},
    {"tune": "psnr"},
    {"x265:ctu": 16},
    {"speed": 9},
    {"threads": 1},
    {"no-such-parameter": 1},
]


def _encode_params(fdp: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "format": fdp.PickValueInList(["HEIF", "AVIF"]),
        "quality": fdp.PickValueInList([None, -1, 0, 30, 75, 100, 101, -2]),
        "speed": fdp.PickValueInList([None, 6, 8, 10, 10, 11]),  # 0-5 are slow: covered by the test suite
    }
    if fdp.ConsumeBool():
        params["chroma"] = fdp.PickValueInList(_CHROMAS)
    if fdp.ConsumeBool():
        params["bit_depth"] = fdp.PickValueInList(_BIT_DEPTHS)
    if fdp.ConsumeBool():
        params["save_nclx_profile"] = fdp.ConsumeBool()
        params["matrix_coefficients"] = fdp.ConsumeIntInRange(-1, 16)
        params["color_primaries"] = fdp.ConsumeIntInRange(0, 23)
        params["transfer_characteristics"] = fdp.ConsumeIntInRange(0, 19)
        params["full_range_flag"] = fdp.ConsumeIntInRange(0, 2)
    if fdp.ConsumeBool():
        params["exif"] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
    if fdp.ConsumeBool():
        params["xmp"] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
    if fdp.ConsumeBool():
        params["icc_profile"] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
    if fdp.ConsumeBool():
        params["thumbnails"] = [fdp.ConsumeIntInRange(-1, 40) for _ in range(fdp.ConsumeIntInRange(0, 2))]
    if fdp.ConsumeBool():
        params["tile_size"] = fdp.PickValueInList(_TILE_SIZES)
    if fdp.ConsumeBool():
        params["pixel_aspect_ratio"] = (fdp.ConsumeIntInRange(0, 3), fdp.ConsumeIntInRange(0, 3))
    if fdp.ConsumeBool():
        params["enc_params"] = fdp.PickValueInList(_ENC_PARAMS)
    return {k: v for k, v in params.items() if v is not None}


def encode(data: bytes) -> None:
    """from_bytes/encode with a random mode, size, stride, buffer and save parameters; read back."""
    import atheris

    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.PickValueInList(sorted(MODES))
    width, height = fdp.ConsumeIntInRange(0, 48), fdp.ConsumeIntInRange(0, 48)
    pixel = MODES[mode].pixel_bytes
    row = width * pixel
    stride = fdp.PickValueInList([None, row, row + pixel * fdp.ConsumeIntInRange(1, 4), max(0, row - 1), 0])
    need = (stride if stride is not None else row) * height
    size = max(0, need + fdp.PickValueInList([0, 0, 0, 1, -1, -need // 2]))
    fill = fdp.ConsumeBytes(min(size, 4096))
    buffer: Any = (fill * (size // max(1, len(fill)) + 1))[:size] if fill else bytes(size)
    if fdp.ConsumeBool():
        buffer = bytearray(buffer)
    params = _encode_params(fdp)
    use_encode = fdp.ConsumeBool()
    out = io.BytesIO()
    try:
        if use_encode:
            heifkit.encode(mode, (width, height), buffer, out, **({"stride": stride} if stride else {}), **params)
        else:
            heifkit.from_bytes(mode, (width, height), buffer, **({"stride": stride} if stride else {})).save(
                out, **params
            )
    except (ValueError, TypeError, heifkit.HeifError):
        return  # refused with a typed error: checks come before any encoding
    back = heifkit.open_heif(out.getvalue())  # what heifkit writes, heifkit reads
    if back.size != (width, height):
        raise AssertionError(f"{mode} {width}x{height} {params}: read back as {back.size}")
    _touch(back[0])


def save(data: bytes) -> None:
    """HeifFile.save of an opened file (re-encode what was read), then read back."""
    bits = _flags(data)
    try:
        heif_file = heifkit.open_heif(data, convert_hdr_to_8bit=bool(bits & 1), limits=FUZZ_LIMITS)
        for image in heif_file:
            image.load()
    except heifkit.HeifError:
        return
    if any(image.size[0] * image.size[1] > _SAVE_MAX_PIXELS for image in heif_file):
        return
    fmt = "AVIF" if bits & 2 else "HEIF"
    params: dict[str, Any] = {"format": fmt, "speed": 10, "quality": -1 if bits & 4 else 30}
    out = io.BytesIO()
    try:
        heif_file.save(out, **params)
    except (ValueError, heifkit.HeifError):
        return  # e.g. a size the codec cannot write: refused before encoding, with the reason
    back = heifkit.open_heif(out.getvalue())
    if len(back) != len(heif_file):
        raise AssertionError(f"saved {len(heif_file)} images, read back {len(back)}")
    for image in back:
        _touch(image)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "parse": parse,
    "read": read,
    "plugin": plugin,
    "encode": encode,
    "save": save,
}

heifkit.register_heif_opener()
heifkit.register_avif_opener()  # the plugin target reads AVIF through heifkit too
