"""The output side of conversion: the formats and their options, the mode and metadata each format takes, and
the files written (atomically, by ``_write.target``; ``_convert`` reads the frames these write)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from PIL import Image, PngImagePlugin

from .._write import target as _target
from ..heif import HeifFile, from_bytes, from_hdr, gain_map_between, hdr_kept_as_gain_map
from ..image import HeifImage

__all__ = ["FORMATS", "ConvertOptions", "ConvertedImage", "output_names", "temp_files", "write_frames",
           "write_heif_file", "write_to", "keeps_samples"]  # fmt: skip

FORMATS: dict[str, tuple[str, ...]] = {
    "jpeg": (".jpg", ".jpeg", ".jpe"),
    "png": (".png",),
    "webp": (".webp",),
    "tiff": (".tif", ".tiff"),
    "heic": (".heic", ".heif", ".hif"),
    "avif": (".avif",),
}
"""Output formats and their extensions; the first is the one outputs get."""

_ALIASES = {"jpg": "jpeg", "tif": "tiff", "heif": "heic"}
_HEIF = {"heic": "HEIF", "avif": "AVIF"}
_DEFAULT_QUALITY = {"jpeg": 90, "webp": 90}  # Pillow's own defaults (75, 80) are low for photos
_BIT_DEPTHS = {"heic": (8, 10, 12), "avif": (8, 10, 12)}  # other formats: 8 only (see the README)
_WHITE = (255, 255, 255)
_JPEG_SEGMENT = 65533 - 2  # an APP1 segment's payload (EXIF, XMP) cannot be longer
_MAKER_NOTE, _EXIF_IFD = 0x927C, 0x8769


@dataclass(frozen=True)
class ConvertOptions:
    """How files are converted (``heifkit convert``'s options; see the README's "Command line" section).

    Raises:
        ValueError: an unknown format, a value out of range, or an option the output format cannot honour
            (``lossless`` for JPEG, ``speed`` for formats other than HEIC/AVIF...).
        TypeError: a value of the wrong type.
    """

    format: str = "jpeg"
    quality: int | None = None  # 0..100; None: 90 for JPEG/WebP, the encoder's default for HEIC/AVIF
    speed: int | None = None  # HEIC/AVIF: 0 (slowest) .. 10 (fastest)
    chroma: int | None = None  # JPEG/HEIC/AVIF: 420, 422, 444
    lossless: bool = False
    bit_depth: int | None = None  # HEIC/AVIF: 8, 10, 12; others: 8 (16-bit grey PNG/TIFF made 8-bit)
    all_images: bool = False
    resize: tuple[int | None, int | None] | None = None  # fit into this box (a None side is free)
    max_size: int | None = None  # shrink so the longer side is at most this
    overwrite: bool = False
    strip: bool = False
    to_srgb: bool = False
    hdr: str = "keep"  # keep (SDR + gain map where the target holds one), pq, hlg, or sdr
    decode_threads: int | None = None  # libheif threads per file; None: batch.convert decides

    def __post_init__(self) -> None:
        if not isinstance(self.format, str):
            raise TypeError(f"format must be a str, not {type(self.format).__name__}")
        fmt = _ALIASES.get(self.format.lower(), self.format.lower())
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        object.__setattr__(self, "format", fmt)
        for name, low, high in (("quality", 0, 100), ("speed", 0, 10), ("max_size", 1, None)):
            _check_int(name, getattr(self, name), low, high)
        _check_int("decode_threads", self.decode_threads, 1, None)
        if self.chroma is not None and self.chroma not in (420, 422, 444):
            raise ValueError(f"chroma must be 420, 422 or 444, not {self.chroma!r}")
        if self.lossless and fmt == "jpeg":
            raise ValueError("JPEG has no lossless mode: choose png, webp, tiff, heic or avif")
        if self.lossless and self.quality is not None:
            raise ValueError("lossless and quality exclude each other")
        if self.hdr not in HDR_CHOICES:
            raise ValueError(f"hdr must be one of {', '.join(HDR_CHOICES)}, not {self.hdr!r}")
        if self.hdr in ("pq", "hlg") and fmt not in _HEIF:
            raise ValueError(f"hdr={self.hdr} writes HEIC or AVIF, not {fmt}")
        if self.speed is not None and fmt not in _HEIF:
            raise ValueError(f"speed applies to heic and avif, not {fmt}")
        if self.chroma is not None and fmt not in ("jpeg", *_HEIF):
            raise ValueError(f"chroma applies to jpeg, heic and avif, not {fmt}")
        if self.bit_depth is not None and self.bit_depth not in _BIT_DEPTHS.get(fmt, (8,)):
            raise ValueError(f"bit depth {self.bit_depth!r} cannot be written as {fmt}: choose from "
                             f"{', '.join(map(str, _BIT_DEPTHS.get(fmt, (8,))))}")  # fmt: skip
        if self.resize is not None:
            if self.max_size is not None:
                raise ValueError("resize and max_size exclude each other")
            sides = tuple(self.resize)
            if len(sides) != 2 or sides == (None, None):
                raise ValueError("resize must be (width, height); one of them may be None")
            for side in sides:
                _check_int("resize", side, 1, None)
            object.__setattr__(self, "resize", sides)

    @property
    def extension(self) -> str:
        """The extension outputs get (``.jpg``, ``.png``, ...)."""
        return FORMATS[self.format][0]


def _check_int(name: str, value: Any, low: int, high: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {low}..{high}, not {value}" if high else f"{name} must be >= {low}")


@dataclass
class ConvertedImage:
    """One upright image to write, and the metadata that goes with it."""

    image: Image.Image
    exif: bytes | None = None  # orientation 1 (or none): the pixels are upright
    xmp: bytes | None = None  # without an orientation
    icc: bytes | None = None
    heif_info: dict[str, Any] = field(default_factory=dict)  # NCLX, bit depth, HDR metadata: HEIC/AVIF outputs
    hdr: Any = None  # the HDR rendition (linear light, a float32 array at the image's size) to keep as a gain map


# --- names ---------------------------------------------------------------------------------------------


def output_names(target: Path, count: int, options: ConvertOptions) -> list[Path]:
    """The files written for ``count`` images: ``target``, or ``stem-1``, ``stem-2``... when every image of a
    multi-image file goes to a format that holds one image."""
    if count <= 1 or not options.all_images or options.format in _HEIF:
        return [target]
    return [target.with_name(f"{target.stem}-{n}{target.suffix}") for n in range(1, count + 1)]


def temp_files(target: Path) -> list[Path]:
    """Temporary files a worker writing ``target`` (or its ``-N`` siblings) may have left behind."""
    name = rf"\.{re.escape(target.stem)}(-\d+)?{re.escape(target.suffix)}\.[^/]*{re.escape(_target.TMP_SUFFIX)}"
    pattern = re.compile(name)
    try:
        return [p for p in target.parent.iterdir() if pattern.fullmatch(p.name)]
    except OSError:
        return []


def write_to(path: Path, write: _target.Writer, overwrite: bool) -> bool:
    """Write one output with ``_write.target``'s writer (atomic; never replacing a file without ``overwrite``);
    False when the name was taken. Outputs mirror the input folders, so the output's folder is made first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _target.write_file(path, write, overwrite=overwrite)


def keeps_samples(options: ConvertOptions) -> bool:
    """HEIF/AVIF to HEIC/AVIF with no pixel change goes through heifkit alone, keeping 10/12-bit samples."""
    return options.format in _HEIF and options.resize is None and options.max_size is None and not options.to_srgb


def write_heif_file(heif: HeifFile, indices: list[int], path: Path, options: ConvertOptions) -> list[str]:
    """Images ``indices`` of ``heif`` (decoded with their 10/12-bit samples) to one HEIC/AVIF file at ``path``,
    their HDR kept as ``options.hdr`` says (:func:`_with_hdr`)."""
    primary = heif.primary_index
    for i in reversed(range(len(heif))):
        if i not in indices:
            del heif[i]
    heif.primary_index = indices.index(primary) if primary in indices else 0
    for i, image in enumerate(list(heif)):
        try:
            heif[i] = _with_hdr(image, options)
        except ImportError:  # NumPy: an optional extra; the image is written as before, its HDR as stored
            if options.hdr != "keep":
                raise
    for image in heif:
        if options.strip:
            image.info.update(exif=None, metadata=[])
            for key in ("xmp", "icc_profile", "icc_profile_type"):
                image.info.pop(key, None)
        if options.bit_depth is not None:
            image.info["bit_depth"] = options.bit_depth
        if options.lossless:
            image.info["matrix_coefficients"] = 0  # a per-image parameter: set on every image
    params = _heif_params(options)
    ok = write_to(path, lambda f: heif.save(f, **params), options.overwrite)
    return [str(path)] if ok else []


HDR_CHOICES = ("keep", "pq", "hlg", "sdr")
"""``--hdr``: keep an image's HDR as SDR + gain map (an ISO 21496-1 ``tmap`` in the target's codec, computed
from the HDR rendition when the source's cannot go: Apple's map, or one in the other codec), write a PQ or HLG
image, or only the SDR picture."""


def is_hdr_base(image: HeifImage) -> bool:
    """Whether an image is coded with an HDR transfer (PQ or HLG)."""
    nclx = image.info.get("nclx_profile") or {}
    return int(nclx.get("transfer_characteristics", 0) or 0) in (16, 18)


def _with_hdr(image: HeifImage, options: ConvertOptions) -> HeifImage:
    """``image`` as ``options.hdr`` writes it (NumPy needed for anything but an SDR image without gain map)."""
    has_map = bool(image.info.get("gain_maps"))
    if options.hdr == "keep":
        if has_map and not is_hdr_base(image):
            hdr_kept_as_gain_map(image, _HEIF[options.format])
        return image
    if options.hdr == "sdr":
        if is_hdr_base(image) or has_map:
            sdr = _sdr_picture(image)
            sdr.info.update({k: image.info[k] for k in ("exif", "xmp", "primary") if k in image.info})
            return sdr
        return image
    if not has_map and not is_hdr_base(image):
        return image  # nothing brighter than SDR white to write as PQ/HLG
    nclx = image.info.get("nclx_profile") or {}
    written = from_hdr(image.to_hdr(), int(nclx.get("color_primaries", 1) or 1), options.hdr, options.bit_depth or 10)[
        0
    ]
    written.info.update({k: image.info[k] for k in ("exif", "xmp", "primary") if k in image.info})
    return written


def _sdr_picture(image: HeifImage) -> HeifImage:
    """The SDR rendition of an image with a gain map or an HDR (PQ/HLG) signal, as a new 8-bit sRGB image."""
    import numpy as np

    from .._decode import hdr

    pixels = np.round(hdr.from_linear(image.to_hdr(headroom=0), 13) * 255).astype(np.uint8)
    sdr = from_bytes("RGB", image.size, np.ascontiguousarray(pixels).tobytes())[0]
    nclx = image.info.get("nclx_profile") or {}
    primaries = int(nclx.get("color_primaries", 1) or 1)
    sdr.info["nclx_profile"] = {"color_primaries": primaries, "transfer_characteristics": 13,
                                "matrix_coefficients": 6, "full_range_flag": 1}  # fmt: skip
    if image.info.get("icc_profile") and not nclx:  # an ICC-tagged SDR base keeps its profile
        del sdr.info["nclx_profile"]
        sdr.info["icc_profile"] = image.info["icc_profile"]
        sdr.info["icc_profile_type"] = image.info.get("icc_profile_type")
    return sdr


def _heif_params(options: ConvertOptions) -> dict[str, Any]:
    params: dict[str, Any] = {"format": _HEIF[options.format]}
    if options.lossless:
        params.update(quality=-1, chroma=444)
    elif options.quality is not None:
        params["quality"] = options.quality
    if options.chroma is not None and not options.lossless:
        params["chroma"] = options.chroma
    if options.speed is not None:
        params["speed"] = options.speed
    return params


# --- writing -------------------------------------------------------------------------------------------


def write_frames(
    makers: Sequence[Callable[[], ConvertedImage]], names: list[Path], todo: list[Path], primary: int,
    options: ConvertOptions, notes: list[str],
) -> list[str]:  # fmt: skip
    """Each frame ``makers`` make, to its file (one HEIC/AVIF file holds them all); frames whose file is not in
    ``todo`` are not read."""
    written: list[str] = []
    if options.format in _HEIF:
        out = HeifFile()
        for make in makers:
            _add_heif(out, make(), options)
        out.primary_index = primary
        params = _heif_params(options)
        if write_to(names[0], lambda f: out.save(f, **params), options.overwrite):
            written.append(str(names[0]))
        return written
    fmt = options.format.upper()
    for name, make in zip(names, makers, strict=True):
        if name not in todo:
            continue
        image, params = _for_pillow(make(), options, notes)
        if write_to(name, functools.partial(_save_pillow, image, fmt, params), options.overwrite):
            written.append(str(name))
    return written


def _save_pillow(image: Image.Image, fmt: str, params: dict[str, Any], f: IO[bytes]) -> None:
    image.save(f, fmt, **params)


def _add_heif(out: HeifFile, frame: ConvertedImage, options: ConvertOptions) -> None:
    image = frame.image
    if image.mode not in ("1", "L", "LA", "La", "RGB", "RGBA", "RGBa", "I", "I;16", "P", "PA", "CMYK", "YCbCr"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    kept, image.info = image.info, {}  # what the writer takes comes from the frame, below
    try:
        added = out.add_from_pillow(image)
    finally:
        image.info = kept
    added.info.update(frame.heif_info)
    added.info["exif"] = frame.exif
    if frame.xmp:
        added.info["xmp"] = frame.xmp
    if frame.icc:
        added.info.update(icc_profile=frame.icc, icc_profile_type="prof")
        added.info.pop("nclx_profile", None)
    if options.bit_depth is not None:
        added.info["bit_depth"] = options.bit_depth
    if options.lossless:
        added.info["matrix_coefficients"] = 0
    if frame.hdr is not None:
        _keep_hdr(added, frame, image)


def _keep_hdr(added: HeifImage, frame: ConvertedImage, image: Image.Image) -> None:
    """Write ``frame``'s HDR rendition as an ISO 21496-1 gain map with the SDR picture ``image`` (both resized)."""
    import numpy as np

    from .._decode import hdr

    sdr = hdr.to_linear(np.asarray(image.convert("RGB")).astype(np.float32) / 255, 13)
    nclx = frame.heif_info.get("nclx_profile") or {}
    alternate = {"color_primaries": int(nclx.get("color_primaries", 1) or 1), "transfer_characteristics": 16,
                 "matrix_coefficients": 1, "full_range_flag": 1}  # fmt: skip
    added._gain_map = gain_map_between(sdr, frame.hdr, alternate, 10, hdr.content_light_level(frame.hdr))


def _for_pillow(frame: ConvertedImage, options: ConvertOptions, notes: list[str]) -> tuple[Image.Image, dict[str, Any]]:
    """The image in a mode the format holds, and Pillow's save parameters (metadata included)."""
    fmt, image = options.format, frame.image
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N") and (fmt in ("jpeg", "webp") or options.bit_depth):
        image = image.convert("I").point(lambda v: v * (1 / 257)).convert("L")  # scaled: convert("L") clips
    elif image.mode == "I":
        image = image.convert("I;16")
    if fmt == "jpeg":
        image = _flatten(image) if image.mode not in ("L", "RGB", "CMYK") else image
    elif fmt == "webp":
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    elif image.mode in ("RGBa", "La"):
        image = image.convert("RGBA" if image.mode == "RGBa" else "LA")
    elif image.mode not in ("L", "LA", "RGB", "RGBA", "I;16", "CMYK") or (fmt == "png" and image.mode == "CMYK"):
        image = image.convert("RGB")
    params: dict[str, Any] = {}
    if fmt in ("jpeg", "webp"):
        params["quality"] = options.quality if options.quality is not None else _DEFAULT_QUALITY[fmt]
    if fmt == "jpeg" and options.chroma is not None:
        params["subsampling"] = {444: 0, 422: 1, 420: 2}[options.chroma]
    if fmt == "webp" and options.lossless:
        params = {"lossless": True, "exact": True}  # exact: keep the colour of transparent pixels too
    if frame.icc:
        params["icc_profile"] = frame.icc
    exif, xmp = frame.exif, frame.xmp
    if fmt == "jpeg":
        exif = _jpeg_exif(exif, notes)
        if xmp and len(xmp) > _JPEG_SEGMENT - 29:  # 29: the XMP namespace header
            notes.append(f"XMP dropped: {len(xmp)} bytes do not fit in a JPEG segment")
            xmp = None
    if fmt == "tiff":  # Pillow's TIFF writer takes EXIF and XMP as tags; libtiff compression loses sub-IFDs
        tags = Image.Exif()
        if exif:
            tags.load(exif)
        if xmp:
            tags[700] = xmp
        if len(tags):
            params["exif"] = tags
    elif fmt == "png":
        if exif:
            params["exif"] = exif
        if xmp:
            info = PngImagePlugin.PngInfo()
            info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
            params["pnginfo"] = info
    else:
        if exif:
            params["exif"] = exif
        if xmp:
            params["xmp"] = xmp
    return image, params


def _flatten(image: Image.Image) -> Image.Image:
    """An image with alpha composited over white (JPEG has no alpha); other modes as RGB."""
    if "A" not in image.getbands() and "a" not in image.mode:
        return image.convert("RGB")
    grey = image.mode in ("LA", "La")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
    flat = Image.alpha_composite(background, rgba).convert("RGB")
    return flat.convert("L") if grey else flat


def _jpeg_exif(exif: bytes | None, notes: list[str]) -> bytes | None:
    """EXIF as JPEG's APP1 segment holds it (``Exif\\0\\0`` first), without the maker note if it is too long."""
    if not exif:
        return None
    if not exif.startswith(b"Exif\x00\x00"):
        exif = b"Exif\x00\x00" + exif
    if len(exif) <= _JPEG_SEGMENT:
        return exif
    tags = Image.Exif()
    tags.load(exif)
    tags.get_ifd(_EXIF_IFD).pop(_MAKER_NOTE, None)
    smaller = tags.tobytes()
    if len(smaller) <= _JPEG_SEGMENT:
        notes.append("EXIF maker note dropped: the EXIF did not fit in a JPEG segment")
        return smaller
    notes.append(f"EXIF dropped: {len(exif)} bytes do not fit in a JPEG segment")
    return None
