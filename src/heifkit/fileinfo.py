"""What ``heifkit info`` reports about a HEIF/AVIF file: :func:`describe` gives a dict of the documented,
stable shape :data:`INFO_SCHEMA` (a JSON Schema; ``heifkit info --json`` prints ``{"schema": ..., "files":
[describe(f), ...]}``), and :func:`render` the text shown without ``--json``.

Nothing is decoded: images are opened lazily; libheif tells the brands, each item's type and its ``dimg``
references (``tmap`` gain maps, grids); the timed tracks libheif does not list are read from the ``moov`` box by
``_container.layout``. The main image sequence is opened for its frame count, timing and format; no frame is
decoded.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any

from ._container import layout as _file_layout
from ._native.libheif import lib
from ._read import items as _items
from ._read.entries import open_flags
from ._read.source import FTYP_PEEK, declared_brands, peek
from .heif import file_of, get_file_mimetype, open_file
from .image import HeifImage
from .sequence import open_sequence

__all__ = ["INFO_SCHEMA", "SCHEMA_ID", "describe", "render"]

SEQUENCE_BRANDS = frozenset({"msf1", "hevc", "hevx", "hevm", "hevs", "avis"})
"""Brands that declare image sequences (timed tracks) rather than, or beside, still images."""

SCHEMA_ID = "heifkit-info/1"
"""The ``schema`` value of ``--json`` output; it changes only when a key is removed or changes meaning."""

_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_NULL_INT = {"type": ["integer", "null"]}
_NULL_STR = {"type": ["string", "null"]}


def _object(properties: dict[str, Any], nullable: bool = False) -> dict[str, Any]:
    """An object with exactly these keys, all always present."""
    return {
        "type": ["object", "null"] if nullable else "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


_SIZE = _object({"width": _INT, "height": _INT})
_IMAGE = _object(
    {
        "index": _INT,  # position among the top-level images, in file order
        "item_id": _NULL_INT,
        "primary": _BOOL,
        "width": _INT,  # as displayed: rotation, mirroring and crop applied
        "height": _INT,
        "mode": _STR,  # heifkit's decoded mode with convert_hdr_to_8bit=False (RGB;16 for 10-bit colour...)
        "bit_depth": _INT,
        "chroma": _NULL_INT,  # 420, 422, 444; null for grey
        "alpha": _BOOL,
        "codec": _NULL_STR,  # "HEVC", "AV1", "JPEG", "AVC", "VVC", "JPEG 2000", "uncompressed"...
        "item_type": _NULL_STR,  # the item's 4-character type: "hvc1", "av01", "grid"...
        "grid": _object({"columns": _INT, "rows": _INT, "tile_width": _INT, "tile_height": _INT}, nullable=True),
        "transforms": _array(_STR),  # "rotate 90" (counter-clockwise), "mirror vertical axis", "crop"
        "icc": _object({"type": _STR, "size": _INT, "description": _NULL_STR}, nullable=True),
        "nclx": _object(
            {
                "color_primaries": _INT,
                "transfer_characteristics": _INT,
                "matrix_coefficients": _INT,
                "full_range": _BOOL,
            },
            nullable=True,
        ),
        "exif": _object(
            {"size": _INT, "camera": _NULL_STR, "datetime": _NULL_STR, "orientation": _NULL_INT}, nullable=True
        ),
        "xmp": _object({"size": _INT}, nullable=True),
        "thumbnails": _array(_SIZE),
        "depth_images": _array(_object({"width": _INT, "height": _INT, "mode": _STR})),
        "aux": _array(_object({"type": _STR, "count": _INT})),
        "gain_map": _object({"kind": {"enum": ["tmap", "aux"]}, "type": _NULL_STR}, nullable=True),
        "hdr_metadata": _array(_STR),  # names of the HDR info keys the image has (content_light_level...)
        # what the coded stream says of its quality (HeifImage.coded_quality()); null: not HEVC/AV1, or unreadable
        "coded_quality": _object(
            {
                "codec": _STR,
                "quantizer": {"type": "number"},  # HEVC: slice QP; AV1: base_q_idx
                "quality": _INT,  # the estimate on save()'s 0..100 scale, -1 for lossless
                "error": _INT,  # the estimate's ±
                "lossless": _BOOL,
            },
            nullable=True,
        ),
    }
)
_TRACK = _object(
    {
        "id": _NULL_INT,
        "handler": _STR,
        "codec": _NULL_STR,
        "samples": _NULL_INT,
        "width": _NULL_INT,
        "height": _NULL_INT,
    }  # fmt: skip
)
_FRAMES = _object(
    {
        "count": _INT,
        "width": _INT,
        "height": _INT,
        "mode": _STR,
        "bit_depth": _INT,
        "duration_ms": _INT,  # from the first frame's start to the last one's end
        "loop": _INT,  # 0: forever, else the number of plays
        "timescale": _INT,  # ticks per second of the track's durations
        "error": _NULL_STR,  # why the track could not be opened (the other values are then 0 or "")
    },
    nullable=True,  # null: no image sequence
)
_FILE = _object(
    {
        "path": _STR,
        "ok": _BOOL,  # false: the file could not be read as HEIF/AVIF ("error" says why); images is then []
        "error": _NULL_STR,
        "mimetype": _NULL_STR,  # libheif's: image/heic, image/avif, image/heic-sequence, image/avif-sequence...
        "major_brand": _NULL_STR,
        "compatible_brands": _array(_STR),
        "primary": _NULL_INT,  # index of the primary image in "images" (the first when the file names none)
        "images": _array(_IMAGE),
        "sequence": _object({"brands": _array(_STR), "tracks": _array(_TRACK), "frames": _FRAMES}),
    }
)
INFO_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "heifkit info --json",
    **_object({"schema": {"enum": [SCHEMA_ID]}, "files": _array(_FILE)}),
}
"""JSON Schema of ``heifkit info --json`` output. Every key is always present (null when unknown or absent)."""

_CODECS = {
    "hvc1": "HEVC",
    "av01": "AV1",
    "jpeg": "JPEG",
    "avc1": "AVC",
    "vvc1": "VVC",
    "j2k1": "JPEG 2000",
    "unci": "uncompressed",
    "evc1": "EVC",
}
_HDR_KEYS = (
    "content_light_level",
    "mastering_display_colour_volume",
    "ambient_viewing_environment",
    "nominal_diffuse_white_luminance",
)


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Everything ``heifkit info`` says about ``path``, in the shape of :data:`INFO_SCHEMA` (one ``files``
    entry). A file that cannot be read has ``ok: false`` and ``error``; brands and tracks are still given."""
    result: dict[str, Any] = {
        "path": os.fspath(path),
        "ok": False,
        "error": None,
        "mimetype": None,
        "major_brand": None,
        "compatible_brands": [],
        "primary": None,
        "images": [],
        "sequence": {"brands": [], "tracks": [], "frames": None},
    }
    try:
        layout = _file_layout.read_layout(path)
        major, compatible = declared_brands(peek(path, FTYP_PEEK))
        result["mimetype"] = get_file_mimetype(path) or None
    except OSError as exc:
        result["error"] = f"{type(exc).__name__}: {exc.strerror or exc}"
        return result
    result.update(major_brand=major, compatible_brands=compatible)
    result["sequence"] = {
        "brands": sorted({b for b in (major, *compatible) if b in SEQUENCE_BRANDS}),
        "tracks": [vars(t).copy() for t in layout.tracks],
        "frames": _frames(path) if any(t.handler == "pict" for t in layout.tracks) else None,
    }
    try:
        opened = open_file(path, open_flags(False, False, {}))
        items = _item_graph(opened.ctx)
    except Exception as exc:  # any reason the file cannot be read is reported, not raised
        result["error"] = f"{type(exc).__name__}: {exc}"
        return result
    heif = file_of(opened)
    result["ok"] = True
    result["primary"] = heif.primary_index
    primary = heif.primary_index  # a file that names no primary image opens at its first, as heifkit does
    result["images"] = [_image(i, image, items, result["mimetype"], i == primary) for i, image in enumerate(heif)]
    return result


@dataclass
class _Items:
    """Each item's type and ``dimg`` inputs (grid tiles, a ``tmap``'s base image and gain map), read by libheif."""

    types: dict[int, str] = field(default_factory=dict)
    derived_from: dict[int, list[int]] = field(default_factory=dict)


def _item_graph(ctx: Any) -> _Items:
    items = _Items()
    with ctx.lock:
        for item in _items.item_ids(ctx.ptr):
            items.types[item] = _items.item_type(ctx.ptr, item)
            inputs = [t for kind, targets in _items.references(ctx.ptr, item) if kind == "dimg" for t in targets]
            if inputs:
                items.derived_from[item] = inputs
    return items


def _frames(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The main image sequence's frame count, size, mode, timing (nothing decoded), or why it cannot be read."""
    try:
        sequence = open_sequence(path)
        return {
            "count": len(sequence),
            "width": sequence.size[0],
            "height": sequence.size[1],
            "mode": sequence.mode,
            "bit_depth": int(sequence.info["bit_depth"]),
            "duration_ms": sequence.duration,
            "loop": int(sequence.info["loop"]),
            "timescale": sequence.timescale,
            "error": None,
        }
    except Exception as exc:  # reported, not raised: info describes broken files too
        return dict.fromkeys(("count", "width", "height", "bit_depth", "duration_ms", "loop", "timescale"), 0) | {
            "mode": "",
            "error": f"{type(exc).__name__}: {exc}",
        }


def _image(index: int, image: HeifImage, items: _Items, mimetype: str | None, primary: bool) -> dict[str, Any]:
    info = image.info
    item_id = int(lib.heif_image_handle_get_item_id(image._handle.ptr)) if image._handle is not None else None
    item_type = items.types.get(item_id) if item_id is not None else None
    tiling = info.get("tiling")
    icc = info.get("icc_profile")
    nclx = info.get("nclx_profile")
    return {
        "index": index,
        "item_id": item_id,
        "primary": primary,
        "width": image.size[0],
        "height": image.size[1],
        "mode": image.mode,
        "bit_depth": int(info.get("bit_depth") or 8),
        "chroma": info.get("chroma"),
        "alpha": image.has_alpha,
        "codec": _codec(item_id, items, mimetype),
        "item_type": item_type,
        "grid": None
        if not tiling
        else {
            k: tiling[t]
            for k, t in (
                ("columns", "num_columns"),
                ("rows", "num_rows"),
                ("tile_width", "tile_width"),
                ("tile_height", "tile_height"),
            )
        },  # fmt: skip
        "transforms": [_transform(t) for t in image._transforms if t[:2] != ("irot", 0)],
        "icc": None
        if not icc
        else {"type": str(info.get("icc_profile_type", "prof")), "size": len(icc), "description": _icc_name(icc)},
        "nclx": None
        if not nclx
        else {
            "color_primaries": int(nclx["color_primaries"]),
            "transfer_characteristics": int(nclx["transfer_characteristics"]),
            "matrix_coefficients": int(nclx["matrix_coefficients"]),
            "full_range": bool(nclx["full_range_flag"]),
        },
        "exif": _exif(info.get("exif")),
        "xmp": {"size": len(info["xmp"])} if info.get("xmp") else None,
        "thumbnails": _thumbnails(image),
        "depth_images": [{"width": d.size[0], "height": d.size[1], "mode": d.mode} for d in info["depth_images"]],
        "aux": [{"type": t, "count": len(ids)} for t, ids in sorted((info.get("aux") or {}).items())],
        "gain_map": _gain_map(item_id, info, items),
        "hdr_metadata": [k for k in _HDR_KEYS if info.get(k) not in (None, {})],
        "coded_quality": _coded_quality(image),
    }


def _coded_quality(image: HeifImage) -> dict[str, Any] | None:
    try:
        found = image.coded_quality()
    except Exception:  # reported as unknown: info describes damaged files too
        return None
    if found is None:
        return None
    return {
        "codec": str(found["codec"]),
        "quantizer": float(found["quantizer"]),
        "quality": int(found["quality"]),
        "error": int(found["error"]),
        "lossless": bool(found["lossless"]),
    }


def _codec(item_id: int | None, items: _Items, mimetype: str | None) -> str | None:
    """The codec of an item, through derived items (grids, overlays) to the first image they are made of."""
    seen: set[int] = set()
    while item_id is not None and item_id not in seen:
        seen.add(item_id)
        item_type = items.types.get(item_id)
        if item_type in _CODECS:
            return _CODECS[item_type]
        inputs = items.derived_from.get(item_id)
        item_id = inputs[0] if inputs else None
    if mimetype and mimetype.startswith("image/avif"):  # no item table ("mini" files): the brand says
        return "AV1"
    if mimetype and mimetype.startswith("image/heic"):
        return "HEVC"
    return None


def _transform(t: tuple[Any, ...]) -> str:
    if t[0] == "irot":
        return f"rotate {t[1]}"
    if t[0] == "imir":
        return "mirror vertical axis" if t[1] == 0 else "mirror horizontal axis"
    return "crop"


def _icc_name(icc: bytes) -> str | None:
    try:
        from PIL import ImageCms

        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip() or None
    except Exception:  # a profile lcms cannot parse still has a size
        return None


def _exif(exif: bytes | None) -> dict[str, Any] | None:
    if not exif:
        return None
    from PIL import Image

    summary: dict[str, Any] = {"size": len(exif), "camera": None, "datetime": None, "orientation": None}
    tags = Image.Exif()
    try:
        tags.load(exif)
        sub = tags.get_ifd(0x8769)
    except Exception:  # unreadable EXIF: its size is all there is to say
        return summary
    make, model = (_text(tags.get(t)) for t in (271, 272))
    if make and model and not model.lower().startswith(make.lower().split()[0]):
        summary["camera"] = f"{make} {model}"
    else:
        summary["camera"] = model or make
    summary["datetime"] = _text(sub.get(36867)) or _text(tags.get(306))
    orientation = tags.get(274)
    summary["orientation"] = orientation if isinstance(orientation, int) else None
    return summary


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.strip("\x00 ").strip() or None


def _thumbnails(image: HeifImage) -> list[dict[str, int]]:
    sizes = []
    for i, longer in enumerate(image.info.get("thumbnails") or []):
        try:
            width, height = image.get_thumbnail(i).size
        except Exception:  # a thumbnail libheif cannot open: its longer side is all that is known
            width = height = int(longer)
        sizes.append({"width": width, "height": height})
    return sizes


def _gain_map(item_id: int | None, info: dict[str, Any], items: _Items) -> dict[str, Any] | None:
    for tmap, inputs in items.derived_from.items():
        if items.types.get(tmap) == "tmap" and inputs and inputs[0] == item_id:
            return {"kind": "tmap", "type": None}
    for aux_type in info.get("aux") or {}:
        if "gainmap" in aux_type.lower():
            return {"kind": "aux", "type": aux_type}
    return None


# --- text ----------------------------------------------------------------------------------------------


def render(entry: dict[str, Any]) -> str:
    """The text ``heifkit info`` prints for one :func:`describe` result."""
    lines = [f"{entry['path']}:"]
    brands = ", ".join(dict.fromkeys(entry["compatible_brands"]))  # some files repeat them
    if not entry["ok"]:
        lines.append(f"  error: {entry['error']}")
    else:
        count = len(entry["images"])
        lines.append(
            f"  {entry['mimetype']}, brand {entry['major_brand']}{f' ({brands})' if brands else ''}, "
            f"{count} image{'s' if count != 1 else ''}, primary #{entry['primary']}"
        )
        for image in entry["images"]:
            lines.extend(_render_image(image))
    if entry["major_brand"] is not None:
        lines.append("  " + _render_sequence(entry["sequence"]))
    return "\n".join(lines)


def _render_image(image: dict[str, Any]) -> list[str]:
    chroma = f" {image['chroma'] // 100}:{image['chroma'] // 10 % 10}:{image['chroma'] % 10}" if image["chroma"] else ""
    grid = image["grid"]
    layout = f" ({grid['columns']}x{grid['rows']} grid of {grid['tile_width']}x{grid['tile_height']})" if grid else ""
    head = (
        f"  #{image['index']}{' (primary)' if image['primary'] else ''}: {image['width']}x{image['height']} "
        f"{image['mode']}, {image['bit_depth']}-bit{chroma}, {image['codec'] or 'unknown codec'}{layout}"
    )
    lines = [head]
    if image["transforms"]:
        lines.append(f"      transforms: {', '.join(image['transforms'])} (applied: pixels are shown upright)")
    colour = []
    if image["icc"]:
        icc = image["icc"]
        colour.append(f"ICC {icc['description'] or 'profile'} ({icc['size']} bytes)")
    if image["nclx"]:
        n = image["nclx"]
        colour.append(
            f"NCLX primaries {n['color_primaries']}, transfer {n['transfer_characteristics']}, "
            f"matrix {n['matrix_coefficients']}, {'full' if n['full_range'] else 'limited'} range"
        )
    lines.append(f"      colour: {'; '.join(colour) or 'not signalled'}")
    exif = image["exif"]
    if exif:
        parts = [exif["camera"] or "camera unknown", exif["datetime"] or "date unknown"]
        if exif["orientation"] is not None:
            parts.append(f"orientation {exif['orientation']}")
        lines.append(f"      EXIF: {', '.join(parts)} ({exif['size']} bytes)")
    else:
        lines.append("      EXIF: none")
    extras = []
    if image["xmp"]:
        extras.append(f"XMP {image['xmp']['size']} bytes")
    if image["thumbnails"]:
        extras.append("thumbnails " + ", ".join(f"{t['width']}x{t['height']}" for t in image["thumbnails"]))
    if image["depth_images"]:
        extras.append("depth " + ", ".join(f"{d['width']}x{d['height']} {d['mode']}" for d in image["depth_images"]))
    if image["gain_map"]:
        gain = image["gain_map"]
        extras.append("gain map " + ("(ISO 21496-1 tmap)" if gain["kind"] == "tmap" else f"({gain['type']})"))
    other = [a for a in image["aux"] if not (image["gain_map"] and a["type"] == image["gain_map"]["type"])]
    if other:
        extras.append("aux " + ", ".join(f"{a['type']} x{a['count']}" for a in other))
    if image["hdr_metadata"]:
        extras.append("HDR " + ", ".join(image["hdr_metadata"]))
    coded = image["coded_quality"]
    if coded and coded["lossless"]:
        extras.append("coded lossless")
    elif coded:
        name = "QP" if coded["codec"] == "HEVC" else "base_q_idx"
        extras.append(f"coded at quality ~{coded['quality']} ±{coded['error']} ({name} {coded['quantizer']:g})")
    if extras:
        lines.append(f"      {'; '.join(extras)}")
    return lines


def _render_sequence(sequence: dict[str, Any]) -> str:
    brands = f"brands {', '.join(sequence['brands'])}" if sequence["brands"] else "no sequence brand"
    if not sequence["tracks"]:
        return f"sequence: {brands}, no tracks"
    tracks = "; ".join(
        f"track {t['id']} {t['handler']} {t['codec'] or '?'}"
        + (f" {t['samples']} samples" if t["samples"] is not None else "")
        + (f" {t['width']}x{t['height']}" if t["width"] else "")
        for t in sequence["tracks"]
    )
    frames = sequence["frames"]
    if frames is None:
        return f"sequence: {brands}; {tracks}"
    if frames["error"]:
        return f"sequence: {brands}; {tracks}; cannot be read: {frames['error']}"
    loop = "loops forever" if frames["loop"] == 0 else f"plays {frames['loop']}x"
    return (
        f"sequence: {brands}; {tracks}\n  frames: {frames['count']} x {frames['width']}x{frames['height']} "
        f"{frames['mode']}, {frames['bit_depth']}-bit, {frames['duration_ms']} ms, {loop}"
    )
