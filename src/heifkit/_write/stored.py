"""Images written as they are stored: copied from the file they were read from, item by item, without a decode
or an encode, and changed only where the caller changed them.

An image read from a file is its item (a coded image or a ``grid``) and everything that belongs to it: its grid
tiles, alpha, depth and other auxiliary images, thumbnails, ``tmap`` gain-map items, metadata items and
properties. :func:`copy_problem` says what keeps one from being copied (a coding change it is saved with, a
property only an encoder can change); :func:`stored_file` lays the copies out in a new file
(``_container.assembly``), with new metadata items (EXIF, XMP, others) and colour properties (ICC, NCLX) where
the caller changed those, only the thumbnails, auxiliary images and gain maps still listed, the primary image
asked for, and the entity groups whose members were all copied. ``ftyp``'s brands are made true for what the
file holds (see :func:`_brands`).

Geometry (:class:`Geometry`): rotation, mirroring and crop change the ``irot``/``imir``/``clap`` properties of
the image and of what is shown with it (its alpha, its thumbnails and their alpha), each composed with its own,
never the coded data; depth images, gain maps, other auxiliary images and a ``tmap`` item keep theirs (they are
in the coded image's orientation, see :func:`_shown_with`).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._container.assembly import Item, assemble
from .._container.item_boxes import OpenedPath, Property, item_properties
from .._info.properties import NCLX_KEYS
from .._native.libheif import Context, Handle, check, ffi, lib, owned
from .._read import items as _items
from .._read.source import declared_brands, file_data
from ..errors import InvalidInputError
from .geometry import TRANSFORMS, Geometry, transform
from .settings import EncodeSettings

__all__ = ["Tagging", "Stored", "ToneMapItem", "copy_problem", "stored_file", "written_images", "coded_format"]

_XMP = "application/rdf+xml"
_EXIF_PREFIX = b"Exif\0\0"

FIXED_KEYS = (
    "pixel_aspect_ratio",
    "content_light_level",
    "mastering_display_colour_volume",
    "ambient_viewing_environment",
    "nominal_diffuse_white_luminance",
    "tiling",
    "chroma",
    "bit_depth",
)
"""``info`` keys that describe the coded image: changing one needs an encode."""


@dataclass(frozen=True)
class Tagging:
    """What an image's ``info`` said when it was read: its metadata and colour (which a copy may change) and the
    values only an encode can change (``fixed``), and its thumbnails (item id, longer side) in order."""

    exif: bytes | None
    xmp: bytes | None
    metadata: list[Any]
    icc_profile: bytes | None
    icc_profile_type: str | None
    nclx_profile: Mapping[str, Any] | None
    fixed: Mapping[str, Any]
    thumbnails: list[tuple[int, int]]


@dataclass(frozen=True)
class Stored:
    """An image to copy: its handle in the file it was read from (which keeps that file's context alive), what
    it said when read (None: write it as it is, whatever ``info`` says), and which of its auxiliary images
    (ids; None: all), depth images and ``tmap`` items (ids; None: all) stay with it."""

    handle: Handle
    tagging: Tagging | None
    aux: frozenset[int] | None = None
    depth: bool = True
    tmaps: frozenset[int] | None = None
    geometry: Geometry | None = None


# --- what keeps an image from being copied --------------------------------------------------------------


def coded_format(handle: Handle) -> str | None:
    """``"HEIF"`` or ``"AVIF"``: the format whose codec the image is coded with (None for other codecs: JPEG,
    uncompressed... which only a HEIF file holds)."""
    ctx, item = handle.ctx.ptr, int(lib.heif_image_handle_get_item_id(handle.ptr))
    kind = _items.item_type(ctx, item)
    if kind == "grid":
        inputs = [t for k, ts in _items.references(ctx, item) if k == "dimg" for t in ts]
        kind = _items.item_type(ctx, inputs[0]) if inputs else kind
    return {"hvc1": "HEIF", "av01": "AVIF"}.get(kind)


def _thumbnails_kept(stored: Stored, sizes: Any) -> list[int] | None:
    """The thumbnail items ``info["thumbnails"]`` (``sizes``) keeps, in order; None when it lists a size the
    file has no (more) thumbnail of."""
    assert stored.tagging is not None
    left = list(stored.tagging.thumbnails)
    kept = []
    for size in list(sizes or []):
        match = next((t for t in left if t[1] == size), None)
        if match is None:
            return None
        left.remove(match)
        kept.append(match[0])
    return kept


def copy_problem(stored: Stored, info: Mapping[str, Any], settings: EncodeSettings) -> str | None:
    """Why ``stored`` cannot be written as stored with ``info`` (its info, the save's overrides applied) by a
    save with ``settings``, or None when it can."""
    if settings.reencode:
        return "reencode=True"
    if settings.coding_changes:
        return f"the save asks for a coding change ({', '.join(settings.coding_changes)})"
    fmt = settings.format
    coded = coded_format(stored.handle)
    if coded != fmt and not (coded is None and fmt == "HEIF"):
        return f"it is coded for {coded or 'HEIF'}, not {fmt}"
    tagging = stored.tagging
    if tagging is None:
        return None
    for key in FIXED_KEYS:
        if key in info and info[key] != tagging.fixed.get(key) and not (key == "bit_depth" and info[key] is None):
            return f"info[{key!r}] was changed"
    if any(k in info and info[k] is not None for k in NCLX_KEYS) and not _nclx_to_write(info):
        return "the NCLX values are incomplete"
    if info.get("save_nclx_profile") is None:
        info = {**info, "save_nclx_profile": settings.save_nclx_profile}
    problem = _sample_nclx_problem(stored, tagging, info)
    if problem:
        return problem
    if info.get("save_nclx_profile") is False and tagging.nclx_profile and not any(info.get(k) for k in NCLX_KEYS):
        return "save_nclx_profile=False would drop the NCLX profile its samples are decoded with"
    if _thumbnails_kept(stored, info.get("thumbnails")) is None:
        return "it lists thumbnails the file does not have"
    ctx = stored.handle.ctx
    with ctx.lock:
        try:
            plan = _plan(stored, info)
            item_properties(file_data(ctx.source), set(plan.chosen))
        except InvalidInputError as exc:
            return f"its items cannot be copied: {exc}"
    return None


def written_images(data: bytes) -> list[Stored]:
    """The top-level images of a file just encoded (``data``), in order, to copy as they are."""
    ctx = Context()
    ctx.read_memory(data)
    count = lib.heif_context_get_number_of_top_level_images(ctx.ptr)
    ids = ffi.new("heif_item_id[]", max(count, 1))
    count = lib.heif_context_get_list_of_top_level_image_IDs(ctx.ptr, ids, count)
    images = []
    for item in ids[0:count]:
        out = ffi.new("heif_image_handle**")
        check(lib.heif_context_get_image_handle(ctx.ptr, item, out))
        images.append(Stored(Handle(out[0], ctx), None))
    return images


# --- the file -------------------------------------------------------------------------------------------


@dataclass
class _Ids:
    """New item ids, given out in order, and each image's map from its source's ids to the new ones."""

    next: int = 1
    by_source: dict[int, dict[int, int]] = field(default_factory=dict)  # id(ctx) -> old -> new (first copy)

    def new(self) -> int:
        self.next += 1
        return self.next - 1


@dataclass(frozen=True)
class ToneMapItem:
    """An ISO 21496-1 ``tmap`` item to write with an image and its gain map: the item's data, and the alternate
    rendition's NCLX values, bit depth and content light level (MaxCLL, MaxFALL) or None."""

    metadata: bytes
    nclx: Mapping[str, int]
    bits: int
    clli: tuple[int, int] | None = None


def stored_file(
    images: list[tuple[Stored, Mapping[str, Any]]],
    primary: int,
    tmaps: Mapping[int, tuple[Stored, ToneMapItem]] | None = None,
) -> bytes:
    """A file of ``images`` (each with the ``info`` to write: its own with the save's overrides), the one at
    index ``primary`` its primary image; ``tmaps`` maps an image's index to a gain map (an image written as
    stored, hidden) and the ``tmap`` item that pairs them, in an ``altr`` group (the ``tmap`` first, as the
    preferred rendition for readers that know it; the image stays the primary one for those that do not).

    Raises:
        InvalidInputError: a source's item boxes cannot be read, or an image's items are incomplete.
        HeifError: libheif cannot read an item's data.
    """
    ids = _Ids()
    items: list[Item] = []
    mains: list[int] = []
    contexts: dict[int, Context] = {}
    paired: list[tuple[int, int, ToneMapItem]] = []
    written: dict[int, Item] = {}
    for n, (stored, info) in enumerate(images):
        ctx = stored.handle.ctx
        with ctx.lock:
            main, copied = _image_items(stored, info, ids, written, mains)
        mains.append(main)
        items += copied
        written.update((item.id, item) for item in copied)
        contexts[id(ctx)] = ctx
        if tmaps and n in tmaps:
            gain_stored, tmap = tmaps[n]
            with gain_stored.handle.ctx.lock:
                gain_main, gain_items = _image_items(gain_stored, {}, ids, written, mains)
            for item in gain_items:
                item.hidden = True
            items += gain_items
            paired.append((main, gain_main, tmap))
    groups = _groups(contexts, ids, {i.id for i in items})
    for main, gain_main, tmap in paired:
        tmap_id = ids.new()
        items.append(_tmap_item(tmap_id, next(i for i in items if i.id == main), gain_main, tmap))
        groups.append((b"altr", ids.new(), [tmap_id, main]))
    for item in items:  # every top-level image is shown
        if item.id in mains:
            item.hidden = False
    major, compatible = _brands([s.handle for s, _ in images], items, primary)
    return assemble(major, compatible, items, mains[primary], groups)


def _tmap_item(tmap_id: int, base: Item, gain_main: int, tmap: ToneMapItem) -> Item:
    """The ``tmap`` derived image: its inputs the base image and the gain map; its size the base's; its colour,
    bit depth and content light level the alternate rendition's (as libavif writes them)."""
    ispe = next((p for p in base.properties if p.kind == b"ispe"), None)
    if ispe is None:
        raise InvalidInputError("the base image has no ispe property")
    nclx = tmap.nclx
    colr = b"nclx" + struct.pack(
        ">HHHB",
        int(nclx["color_primaries"]),
        int(nclx["transfer_characteristics"]),
        int(nclx["matrix_coefficients"]),
        0x80 if nclx.get("full_range_flag", 1) else 0,
    )
    properties = [
        ispe,
        Property(b"pixi", b"\0\0\0\0" + bytes([3, tmap.bits, tmap.bits, tmap.bits]), None, False),
        Property(b"colr", colr, None, False),
    ]
    if tmap.clli is not None:
        properties.append(Property(b"clli", struct.pack(">HH", *tmap.clli), None, False))
    return Item(tmap_id, b"tmap", tmap.metadata, properties, [(b"dimg", [base.id, gain_main])])


def _image_items(
    stored: Stored, info: Mapping[str, Any], ids: _Ids, written: Mapping[int, Item], mains: list[int]
) -> tuple[int, list[Item]]:
    """The new id of a stored image and the items it is written as (those not ``written`` already).

    An item of the same source may belong to more than one image written (a grid's tile that is a top-level
    image of its own too): it is written once, when its copies would be the same, so that the file keeps the
    source's structure; otherwise (an image written twice, or changed otherwise than the first copy) the image
    gets items of its own.
    """
    ctx, main = stored.handle.ctx, int(lib.heif_image_handle_get_item_id(stored.handle.ptr))
    plan = _plan(stored, info)
    refs, chosen = plan.refs, plan.chosen
    properties = item_properties(file_data(ctx.source), set(chosen))
    # A grid's tiles carry colour profiles too, which libheif shows when the grid has none: they change with it.
    coloured = {main}
    if _items.item_type(ctx.ptr, main) == "grid":
        coloured |= {t for kind, ts in refs.get(main, []) if kind == "dimg" for t in ts}

    def copies(mapping: dict[int, int]) -> list[Item]:
        copied = []
        for old in chosen:
            props = properties.get(old, [])
            if old in coloured and stored.tagging is not None:
                props = _colour_properties(props, stored.tagging, info)
            item = _item_like(ctx, old, mapping[old], props)
            item.references = [
                (kind.encode("latin-1"), [mapping[t] for t in targets if t in mapping])
                for kind, targets in refs.get(old, [])
                if any(t in mapping for t in targets)
            ]
            copied.append(item)
        copied += _new_metadata(info, plan.replaced, mapping[main], ids)
        if stored.geometry is not None:
            shown = {mapping[t] for t in _shown_with(stored, main, plan)}
            chroma = stored.tagging.fixed.get("chroma") if stored.tagging is not None else None
            transform(copied, shown, mapping[main], stored.geometry, chroma)
        return copied

    known = ids.by_source.setdefault(id(ctx), {})
    copied: list[Item] | None = None
    if known.get(main) not in mains and any(old in known for old in chosen):
        mapping = {old: known[old] if old in known else ids.new() for old in chosen}
        shared = copies(mapping)
        if all(written[item.id] == item for item in shared if item.id in written):
            copied = [item for item in shared if item.id not in written]
    if copied is None:
        mapping = {old: ids.new() for old in chosen}
        copied = copies(mapping)
    for old, new in mapping.items():
        known.setdefault(old, new)
    return mapping[main], copied


def _shown_with(stored: Stored, main: int, plan: _Plan) -> set[int]:
    """The items whose geometry changes with ``main``'s (of those written): its alpha, its thumbnails and their
    alpha. libheif shows each with its own transformative properties (alpha too, before it joins the colour).

    Depth images, gain maps and other auxiliary images keep theirs: by Apple's and ISO 21496-1's convention
    they are in the image's coded orientation (libavif writes a gain map without transformative properties,
    and refuses a ``tmap`` item that has them), and a ``tmap`` item keeps its own likewise.
    """
    others = _listed_aux(stored, False) | _listed_aux(stored, True)
    kept = set(plan.chosen)
    alpha = {s for kind, s in plan.incoming.get(main, []) if kind == "auxl"} - others
    shown = alpha | (plan.thumbnails & kept)
    shown |= {s for t in plan.thumbnails & kept for kind, s in plan.incoming.get(t, []) if kind == "auxl"}
    return (shown & kept) - {main}


@dataclass
class _Plan:
    """What one image is written as: the source's references (from each item) and their reverse, the metadata
    categories written anew, the thumbnails kept and every item copied (the image's first)."""

    refs: dict[int, list[tuple[str, list[int]]]]
    incoming: dict[int, list[tuple[str, int]]]
    replaced: set[str]
    thumbnails: set[int]
    chosen: list[int]


def _plan(stored: Stored, info: Mapping[str, Any]) -> _Plan:
    """The items ``stored`` is written as, with ``info``.

    Raises:
        InvalidInputError: an item the image is made of is missing from its file.
    """
    ctx, main = stored.handle.ctx, int(lib.heif_image_handle_get_item_id(stored.handle.ptr))
    refs = {i: _items.references(ctx.ptr, i) for i in _items.item_ids(ctx.ptr)}
    incoming: dict[int, list[tuple[str, int]]] = {}
    for source, rs in refs.items():
        for kind, targets in rs:
            for target in targets:
                incoming.setdefault(target, []).append((kind, source))
    replaced = _replaced_metadata(stored, info)
    if stored.tagging is None:
        thumbnails = set(_thumbnail_ids(stored))
    else:
        thumbnails = set(_thumbnails_kept(stored, info.get("thumbnails")) or [])
    chosen = _chosen(stored, main, refs, incoming, replaced, thumbnails)
    return _Plan(refs, incoming, replaced, thumbnails, chosen)


def _thumbnail_ids(stored: Stored) -> list[int]:
    return _items.listed(
        lib.heif_image_handle_get_number_of_thumbnails,
        lib.heif_image_handle_get_list_of_thumbnail_IDs,
        stored.handle.ptr,
    )


def _listed_aux(stored: Stored, depth: bool) -> set[int]:
    if depth:
        return set(
            _items.listed(
                lib.heif_image_handle_get_number_of_depth_images,
                lib.heif_image_handle_get_list_of_depth_image_IDs,
                stored.handle.ptr,
            )
        )
    return set(
        _items.listed(
            lib.heif_image_handle_get_number_of_auxiliary_images,
            lib.heif_image_handle_get_list_of_auxiliary_image_IDs,
            stored.handle.ptr,
            int(lib.LIBHEIF_AUX_IMAGE_FILTER_OMIT_ALPHA),
        )
    )


def _category(ctx: Any, item: int) -> str:
    """What a metadata item of an image holds: "exif", "xmp" or "metadata" (any other)."""
    kind = _items.item_type(ctx, item)
    if kind == "Exif":
        return "exif"
    if kind == "mime" and _content_type(ctx, item) == _XMP:
        return "xmp"
    return "metadata"


def _content_type(ctx: Any, item: int) -> str:
    ptr = lib.heif_item_get_mime_item_content_type(ctx, item)
    return "" if ptr == ffi.NULL else ffi.string(ptr).decode("latin-1")


def _replaced_metadata(stored: Stored, info: Mapping[str, Any]) -> set[str]:
    """The metadata categories whose items are written anew from ``info`` (the caller changed them)."""
    tagging = stored.tagging
    if tagging is None:
        return set()
    replaced = set()
    if _as_bytes(info.get("exif")) != tagging.exif:
        replaced.add("exif")
    if _as_bytes(info.get("xmp")) != tagging.xmp:
        replaced.add("xmp")
    if list(info.get("metadata") or []) != list(tagging.metadata):
        replaced.add("metadata")
    return replaced


def _as_bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value or None
    if isinstance(value, str):
        return value.encode("utf-8") or None
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value) or None
    return value.tobytes() or None  # an Image.Exif


def _chosen(
    stored: Stored,
    main: int,
    refs: dict[int, list[tuple[str, list[int]]]],
    incoming: dict[int, list[tuple[str, int]]],
    replaced: set[str],
    thumbnails: set[int],
) -> list[int]:
    """The items that make up ``main`` as it is written, ``main`` first, then in file order: its ``dimg``
    inputs, alpha, the depth and auxiliary images, ``tmap`` items and ``thumbnails`` kept, its metadata items
    not ``replaced``; and for each of those, their own inputs, auxiliary images and metadata."""
    ctx = stored.handle.ctx.ptr
    depth = _listed_aux(stored, True)
    others = _listed_aux(stored, False) - depth

    def wanted(kind: str, source: int, target: int) -> bool:
        if target != main:
            return kind in ("auxl", "cdsc")
        if kind == "auxl":
            if source in depth:
                return stored.depth
            if source in others:
                return stored.aux is None or source in stored.aux
            return True  # alpha: part of the pixels
        if kind == "cdsc":
            return _category(ctx, source) not in replaced
        if kind == "thmb":
            return source in thumbnails
        if kind == "dimg" and _items.item_type(ctx, source) == "tmap":
            inputs = [t for k, ts in refs.get(source, []) if k == "dimg" for t in ts]
            return inputs[:1] == [main] and (stored.tmaps is None or source in stored.tmaps)
        return False

    chosen: set[int] = set()
    todo = [main]
    while todo:
        current = todo.pop()
        if current in chosen:
            continue
        if current not in refs:
            raise InvalidInputError(f"item {current}, a part of image {main}, is missing from the file")
        chosen.add(current)
        todo += [t for kind, ts in refs[current] if kind == "dimg" for t in ts]
        todo += [s for kind, s in incoming.get(current, []) if wanted(kind, s, current)]
    return [main] + [i for i in refs if i in chosen and i != main]


def _item_like(ctx: Context, old: int, new: int, properties: list[Property]) -> Item:
    """Item ``old`` of ``ctx`` as it is stored (data, name, type fields, visibility), as item ``new``."""
    kind = _items.item_type(ctx.ptr, old)
    item = Item(new, kind.encode("latin-1"), b"", list(properties), hidden=_items.is_hidden(ctx.ptr, old))
    item.name = _c_string(lib.heif_item_get_item_name(ctx.ptr, old))
    if kind == "mime":
        item.data, _ = _items.item_data(ctx.ptr, old, compressed=True)
        item.content_type = _c_string(lib.heif_item_get_mime_item_content_type(ctx.ptr, old))
        item.content_encoding = _c_string(lib.heif_item_get_mime_item_content_encoding(ctx.ptr, old))
    else:
        item.data, _ = _items.item_data(ctx.ptr, old)
        if kind == "uri ":
            item.uri_type = _c_string(lib.heif_item_get_uri_item_uri_type(ctx.ptr, old))
    return item


def _c_string(ptr: Any) -> bytes:
    return b"" if ptr == ffi.NULL else ffi.string(ptr)


# --- what the caller changed ------------------------------------------------------------------------------


def _nclx_to_write(info: Mapping[str, Any]) -> dict[str, int] | None:
    """The NCLX values ``info`` gives (its profile, then explicit values over it), None for none or a part."""
    values = {k: v for k, v in (info.get("nclx_profile") or {}).items() if k in NCLX_KEYS}
    values.update({k: info[k] for k in NCLX_KEYS if info.get(k) is not None})
    if not values:
        return None
    if set(values) != set(NCLX_KEYS):
        return None
    return {k: int(values[k]) for k in NCLX_KEYS}


def _nclx_written(tagging: Tagging, info: Mapping[str, Any]) -> tuple[bool, dict[str, int] | None]:
    """Whether a copy writes the image's NCLX ``colr`` box anew (the caller changed its profile), and the values
    it then writes (None: no NCLX box)."""
    nclx = _nclx_to_write(info)  # save_nclx_profile=False is an encode's (copy_problem): its samples need it
    return nclx != _nclx_to_write({"nclx_profile": tagging.nclx_profile}), nclx


_SAMPLE_NCLX = ("matrix_coefficients", "full_range_flag")
"""The NCLX values that say how the coded samples convert to RGB (the primaries too, for the matrices derived from
them: 12 and 13): a copy keeps the coded samples, so changing one of these changes the decoded pixels."""


def _stored_nclx(handle: Handle) -> dict[str, int] | None:
    """The NCLX values of the image's own ``colr`` box as stored (whether or not it also has an ICC profile)."""
    out = ffi.new("heif_color_profile_nclx**")
    if lib.heif_image_handle_get_nclx_color_profile(handle.ptr, out).code != 0 or out[0] == ffi.NULL:
        return None
    profile = owned(out[0], lib.heif_nclx_color_profile_free)
    return {k: int(getattr(profile, k)) for k in NCLX_KEYS}


def _sample_nclx_problem(stored: Stored, tagging: Tagging, info: Mapping[str, Any]) -> str | None:
    """Why the NCLX box a copy would write in place of the stored one needs an encode: it changes how the coded
    samples convert to RGB (``matrix_coefficients``, ``full_range_flag``), and only an encode (converting the
    pixels anew) keeps the pixels through that; None when it does not."""
    changed, nclx = _nclx_written(tagging, info)
    if not changed:
        return None
    before = _stored_nclx(stored.handle)
    if before is None or nclx is None:  # added or left out: the coded stream's own colour description then holds
        return None
    keys = list(_SAMPLE_NCLX) if tagging.fixed.get("chroma") is not None else ["full_range_flag"]  # grey: no matrix
    if {before["matrix_coefficients"], nclx["matrix_coefficients"]} & {12, 13}:
        keys.append("color_primaries")
    changed_keys = [k for k in keys if nclx[k] != before[k]]
    if changed_keys:
        return f"{changed_keys[0]} was changed: it says how the coded samples convert to RGB"
    return None


def _colour_properties(props: list[Property], tagging: Tagging, info: Mapping[str, Any]) -> list[Property]:
    """The image's properties with its ICC ``colr`` box, its NCLX ``colr`` box, or both, made anew where the
    caller changed that profile (the other is kept as stored: an image may have one of each)."""
    read_icc = (tagging.icc_profile or None, tagging.icc_profile_type if tagging.icc_profile else None)
    icc = bytes(info["icc_profile"]) if info.get("icc_profile") else None
    wanted_icc = (icc, (info.get("icc_profile_type") or "prof") if icc else None)
    nclx_changed, nclx = _nclx_written(tagging, info)
    icc_changed = wanted_icc != read_icc
    if not icc_changed and not nclx_changed:
        return props
    new = []
    if nclx_changed and nclx is not None:
        payload = b"nclx" + struct.pack(
            ">HHHB",
            nclx["color_primaries"],
            nclx["transfer_characteristics"],
            nclx["matrix_coefficients"],
            0x80 if nclx["full_range_flag"] else 0,
        )
        new.append(Property(b"colr", payload, None, False))
    if icc_changed and icc is not None:
        new.append(Property(b"colr", str(wanted_icc[1]).encode("latin-1") + icc, None, False))

    def replaced(prop: Property) -> bool:
        if prop.kind != b"colr":
            return False
        return nclx_changed if prop.payload[:4] == b"nclx" else icc_changed

    rest = [p for p in props if not replaced(p)]
    # descriptive properties come before transformative ones (HEIF 6.5.1)
    split = next((n for n, p in enumerate(rest) if p.kind in TRANSFORMS), len(rest))
    return rest[:split] + new + rest[split:]


def _exif_item_data(exif: bytes) -> bytes:
    """An ``Exif`` item's data: the offset of the TIFF header, then the EXIF bytes (``Exif\0\0`` kept)."""
    return struct.pack(">I", len(_EXIF_PREFIX) if exif.startswith(_EXIF_PREFIX) else 0) + exif


def _new_metadata(info: Mapping[str, Any], replaced: set[str], main: int, ids: _Ids) -> list[Item]:
    """The metadata items written anew from ``info`` for the categories the caller changed."""
    new: list[Item] = []
    describes = [(b"cdsc", [main])]
    exif = _as_bytes(info.get("exif"))
    if "exif" in replaced and exif:
        new.append(Item(ids.new(), b"Exif", _exif_item_data(exif), references=describes, hidden=True))
    xmp = _as_bytes(info.get("xmp"))
    if "xmp" in replaced and xmp:
        new.append(Item(ids.new(), b"mime", xmp, references=describes, hidden=True, content_type=_XMP.encode()))
    if "metadata" in replaced:
        for block in info.get("metadata") or []:
            if not block:
                continue
            kind = str(block["type"]).encode("latin-1")
            item = Item(ids.new(), kind, bytes(block["data"]), references=describes, hidden=True)
            if kind == b"mime":
                item.content_type = (block.get("content_type") or "").encode("latin-1")
            new.append(item)
    return new


# --- entity groups and brands -----------------------------------------------------------------------------


def _groups(contexts: dict[int, Context], ids: _Ids, written: set[int]) -> list[tuple[bytes, int, list[int]]]:
    """The sources' entity groups whose entities were all copied, with new ids (after every item's)."""
    groups = []
    seen = set()
    for key, ctx in contexts.items():
        mapping = ids.by_source.get(key, {})
        for _, kind, entities in _items.entity_groups(ctx.ptr):
            if entities and all(e in mapping and mapping[e] in written for e in entities):
                new = (kind.encode("latin-1"), tuple(mapping[e] for e in entities))
                if new not in seen:
                    seen.add(new)
                    groups.append((new[0], ids.new(), list(new[1])))
    return groups


_SEQUENCE_BRANDS = {"msf1", "hevc", "hevs", "avis", "avio", "heim", "hevm", "hevx"}
_CODEC_BRANDS = {"heic", "heix", "avif", "mif1", "mif2", "tmap"}


def _header(ctx: Context) -> bytes:
    data = file_data(ctx.source)
    if isinstance(data, OpenedPath):  # as it was opened: the path may name another file by now
        return data.header
    if isinstance(data, (str, os.PathLike)):
        with open(data, "rb") as f:
            return f.read(4096)
    return bytes(memoryview(data).cast("B")[:4096])


def _brands(handles: list[Handle], items: list[Item], primary: int) -> tuple[bytes, list[bytes]]:
    """``ftyp``'s brands, true for what is written: ``mif1``; ``heic`` (or the source's ``heix``) where HEVC
    images are, ``avif`` where AV1 images are, ``tmap`` where a gain-map item is; the sources' other brands
    (``miaf``, MIAF and AVIF profiles...), which state constraints on the images, only where every source
    declares them; a sequence's brands never (tracks are not copied)."""
    sources = list({id(h.ctx): h.ctx for h in handles}.values())
    declared = [declared_brands(_header(ctx)) for ctx in sources]
    brand_sets = [set(compatible) | ({major} if major else set()) for major, compatible in declared]
    kinds = {item.kind for item in items}
    hevc = {b for brands in brand_sets for b in brands if b in ("heic", "heix")} if b"hvc1" in kinds else set()
    primary_major = declared[sources.index(handles[primary].ctx)][0]
    if coded_format(handles[primary]) == "AVIF":
        major = "avif"
    elif b"hvc1" in kinds:
        major = primary_major if primary_major in ("heic", "heix") else "heic"
        hevc.add(major)
    else:
        major = "mif1"
    compatible = {"mif1", major} | hevc | set.intersection(*(b - _CODEC_BRANDS - _SEQUENCE_BRANDS for b in brand_sets))
    if b"av01" in kinds:
        compatible.add("avif")
    if b"tmap" in kinds:
        compatible.add("tmap")
    order = ["mif1", major, "heic", "heix", "avif", "miaf", "tmap"]
    ranked = [b for b in order if b in compatible] + sorted(compatible - set(order))
    return major.encode("latin-1"), [b.encode("latin-1") for b in dict.fromkeys(ranked)]
