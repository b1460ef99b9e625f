"""Converting one file: read its images (HEIF/AVIF with heifkit, anything else with Pillow), make them upright,
convert their colour and size, and hand them to ``_export``, which writes each output atomically.

:func:`heifkit.batch.convert_file` runs :func:`convert` on a worker; everything here takes plain values so
that a job pickles to any executor.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageCms

from .._info.metadata import exif_orientation, set_orientation, xmp_from_pillow, xmp_orientation
from .._info.transforms import orientation_transpose
from ..heif import HeifFile, is_supported
from ..image import HeifImage
from ..plugin import thumbnail_for
from .formats import (
    ConvertedImage,
    ConvertOptions,
    is_hdr_base,
    keeps_samples,
    output_names,
    write_frames,
    write_heif_file,
)

__all__ = ["convert"]

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
# TIFF IFD0 tags that describe the photo (not the TIFF's own layout), kept when a TIFF's tags become EXIF
_TIFF_EXIF_TAGS = (270, 271, 272, 274, 305, 306, 315, 33432)


def convert(
    source: str, target: Path, options: ConvertOptions, threads: int, notes: list[str]
) -> tuple[list[str], list[Path]]:
    """Convert ``source`` into ``target`` (or its ``-N`` siblings): the files written ([] when they all existed),
    and every output name. ``notes`` gets what the caller should know (a thumbnail used, metadata dropped...)."""
    if is_supported(source):
        heif = HeifFile(
            source, convert_hdr_to_8bit=not keeps_samples(options), decode_threads=threads, codec_threads=threads
        )
        indices = list(range(len(heif))) if options.all_images else [heif.primary_index]
        names = output_names(target, len(indices), options)
        todo = _missing(names, options, notes)
        if not todo:
            return [], names
        if keeps_samples(options):
            return write_heif_file(heif, indices, todo[0], options), names
        makers = [functools.partial(_heif_frame, heif[i], options, notes) for i in indices]
        primary = indices.index(heif.primary_index) if heif.primary_index in indices else 0
        return write_frames(makers, names, todo, primary, options, notes), names
    with Image.open(source) as im:
        count = getattr(im, "n_frames", 1) if options.all_images else 1
        names = output_names(target, count, options)
        todo = _missing(names, options, notes)
        if not todo:
            return [], names
        makers = [functools.partial(_pillow_frame, im, n if count > 1 else None, options, notes) for n in range(count)]
        return write_frames(makers, names, todo, 0, options, notes), names


def _missing(names: list[Path], options: ConvertOptions, notes: list[str]) -> list[Path]:
    if options.overwrite:
        return names
    todo = [name for name in names if not name.exists()]
    if todo and len(todo) < len(names):
        notes.append(f"kept {len(names) - len(todo)} existing output(s)")
    return todo


# --- reading -------------------------------------------------------------------------------------------


def _target_size(size: tuple[int, int], options: ConvertOptions) -> tuple[int, int] | None:
    """The size ``--resize``/``--max-size`` asks for, or None when the image keeps its size."""
    width, height = size
    if options.max_size is not None:
        scale = min(1.0, options.max_size / max(width, height))
    elif options.resize is not None:
        box_w, box_h = options.resize
        scale = min(box_w / width if box_w else float("inf"), box_h / height if box_h else float("inf"))
    else:
        return None
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    return None if new == size else new


def _heif_frame(image: HeifImage, options: ConvertOptions, notes: list[str]) -> ConvertedImage:
    """A HEIF/AVIF image: libheif already applied ``irot``/``imir``, so only the EXIF/XMP tags are reset."""
    target = _target_size(image.size, options)
    pil = None
    if target is not None and target[0] < image.size[0]:
        # as Image.thumbnail does: a thumbnail at least twice the target size resamples as well as the image
        thumbnail = thumbnail_for(image, (target[0] * 2, target[1] * 2))
        if thumbnail is not None:
            pil = thumbnail.to_pillow()
            notes.append(f"decoded the {thumbnail.size[0]}x{thumbnail.size[1]} embedded thumbnail")
    hdr_base = is_hdr_base(image)
    keep_hdr = options.hdr == "keep" and options.format in ("heic", "avif") and image.has_hdr()
    if (hdr_base or keep_hdr) and not _has_numpy():
        notes.append("HDR written as stored: NumPy is needed to tone-map it or keep it as a gain map")
        hdr_base = keep_hdr = False
    if hdr_base and not keep_hdr:
        pil = None  # a PQ/HLG signal is tone-mapped, never shown as if it were SDR (washed out)
    if pil is None:
        # EXIF/XMP orientation reset in its info
        pil = image.to_pillow_at(0) if hdr_base else image.to_pillow()
    info = dict(image.info)
    set_orientation(info)
    heif_info = {k: v for k, v in info.items() if k in ("nclx_profile", "bit_depth", "chroma", "metadata")}
    for key in ("content_light_level", "mastering_display_colour_volume", "ambient_viewing_environment"):
        if key in info:
            heif_info[key] = info[key]
    if hdr_base:  # the SDR picture: the image's primaries in sRGB's transfer (the HDR one goes in a gain map)
        nclx = heif_info.get("nclx_profile") or {}
        heif_info["nclx_profile"] = {**nclx, "transfer_characteristics": 13, "matrix_coefficients": 6,
                                     "full_range_flag": 1}  # fmt: skip
        for key in ("content_light_level", "mastering_display_colour_volume", "bit_depth"):
            heif_info.pop(key, None)
    frame = ConvertedImage(pil, info.get("exif"), info.get("xmp"), info.get("icc_profile"), heif_info)
    frame = _finish(frame, target, options, notes)
    if keep_hdr:
        frame.hdr = _resized_hdr(image.to_hdr(), frame.image.size)
    return frame


def _has_numpy() -> bool:
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def _resized_hdr(linear: Any, size: tuple[int, int]) -> Any:
    """Linear light resized as Pillow resizes the SDR picture (Lanczos, per channel, in floats)."""
    import numpy as np

    if (linear.shape[1], linear.shape[0]) == size:
        return linear
    channels = [Image.fromarray(np.ascontiguousarray(linear[:, :, c]), "F").resize(size, Image.Resampling.LANCZOS)
                for c in range(3)]  # fmt: skip
    return np.maximum(np.stack([np.asarray(c) for c in channels], axis=2), 0).astype(np.float32)


def _pillow_frame(im: Image.Image, index: int | None, options: ConvertOptions, notes: list[str]) -> ConvertedImage:
    """Any other image Pillow reads (frame ``index`` of a sequence, else the first): turned upright by its EXIF
    (else XMP) orientation, which is then reset."""
    if index is not None:
        im.seek(index)
    target = None
    if im.format == "JPEG":  # JPEG decodes at a reduced size (draft), sized before loading, in stored orientation
        full = im.size
        turned = _orientation(_pillow_exif(im), xmp_from_pillow(im)) in (5, 6, 7, 8)
        upright = (full[1], full[0]) if turned else full
        target = _target_size(upright, options)
        if target is not None and target[0] < upright[0]:
            box = (target[0] * 2, target[1] * 2)
            if im.draft(None, (box[1], box[0]) if turned else box) is not None:
                notes.append(f"decoded at {im.size[0]}x{im.size[1]} (JPEG draft)")
    im.load()
    # read after loading: Pillow's TIFF reader turns the image itself and drops the tag as it loads
    info = {"exif": _pillow_exif(im), "xmp": xmp_from_pillow(im)}
    orientation = _orientation(info["exif"], info["xmp"])
    pil: Image.Image = im  # written before the next frame is read, so not copied
    if orientation != 1:
        pil = pil.transpose(orientation_transpose(orientation))
    if im.format != "JPEG":
        target = _target_size(pil.size, options)
    set_orientation(info)
    frame = ConvertedImage(pil, info["exif"], info["xmp"], im.info.get("icc_profile"))
    return _finish(frame, target, options, notes)


def _orientation(exif: bytes | None, xmp: bytes | None) -> int:
    """The EXIF orientation, else XMP's, else 1."""
    return exif_orientation(exif) or xmp_orientation(xmp) or 1


def _pillow_exif(im: Image.Image) -> bytes | None:
    exif = im.info.get("exif")
    if isinstance(exif, str):
        exif = exif.encode("latin-1")
    if exif:
        return bytes(exif)
    tags = im.getexif()
    if im.format == "TIFF":  # a TIFF's tags describe the file too: keep only those about the photo
        kept = Image.Exif()
        for tag in _TIFF_EXIF_TAGS:
            if tag in tags:
                kept[tag] = tags[tag]
        for pointer in (_EXIF_IFD, _GPS_IFD):  # sub-IFDs are copied as tags, not as the TIFF's offsets
            kept.pop(pointer, None)
            if tags.get_ifd(pointer):
                kept.get_ifd(pointer).update(tags.get_ifd(pointer))
        tags = kept
    return tags.tobytes() if len(tags) else None


def _finish(
    frame: ConvertedImage, target: tuple[int, int] | None, options: ConvertOptions, notes: list[str]
) -> ConvertedImage:
    """Colour conversion, size, then the metadata policy."""
    if options.to_srgb:
        _to_srgb(frame, notes)
    image = frame.image
    if image.mode in ("P", "PA", "1"):
        image = image.convert("RGBA" if image.has_transparency_data else ("L" if image.mode == "1" else "RGB"))
    if target is not None and image.size != target:
        image = image.resize(target, Image.Resampling.LANCZOS)
        frame.heif_info.pop("tiling", None)
    frame.image = image
    if options.strip:
        frame.exif = frame.xmp = frame.icc = None
        frame.heif_info.pop("metadata", None)
    return frame


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_SRGB_BYTES = _SRGB.tobytes()


def _to_srgb(frame: ConvertedImage, notes: list[str]) -> None:
    image = frame.image
    if not frame.icc:
        nclx = frame.heif_info.get("nclx_profile") or {}
        if nclx.get("color_primaries", 1) not in (1, 2) or nclx.get("transfer_characteristics", 13) in (16, 18):
            notes.append("to-srgb: no ICC profile, colours left as they are (NCLX colour is not converted)")
        return
    if image.mode not in ("RGB", "RGBA", "CMYK"):
        notes.append(f"to-srgb: {image.mode} images are not converted")
        return
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(frame.icc))
        mode = "RGB" if image.mode == "CMYK" else image.mode
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        notes.append(f"to-srgb: ICC profile not usable ({exc}); colours left as they are")
        return
    assert converted is not None
    frame.image, frame.icc = converted, _SRGB_BYTES
    frame.heif_info.pop("nclx_profile", None)
