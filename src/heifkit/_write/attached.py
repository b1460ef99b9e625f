"""The items attached to an image read from a file -- its depth images, its auxiliary images (HDR gain maps,
portrait mattes...) and the ISO 21496-1 ``tmap`` items that pair it with a gain map -- copied as they are
into a file being written, attached to the image's new item.

Nothing is decoded or encoded: each item's data, properties (``_boxes.item_properties``), metadata items and
``dimg`` inputs (grid tiles) are copied through libheif's item API (``_items``), and the references tying them
to the image (``auxl``, ``cdsc``, a ``tmap``'s ``dimg``) are made anew. The copies are hidden: an attached
item is no image of its own (a damaged source that also shows one as an image has it written once, among
the file's images); a ``tmap`` is shown again as it was, and its ``altr`` entity group written, by
``_boxes.patch_written``. Alpha is not copied: the writer encodes it from the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._container.item_boxes import Property, item_properties, patch_written
from .._native.libheif import Context, Handle, lib
from .._read import items as _items
from .._read.source import file_data
from ..errors import InvalidInputError

__all__ = ["Attached", "attached_to", "copy_attached", "Copies"]

_CODED = {"hvc1": "HEIF", "av01": "AVIF"}  # coded image item types and the format that holds them


@dataclass
class Attached:
    """What is copied with one image: the source file's context (kept alive), the image's item id there,
    the roots to copy (auxiliary images, ``tmap`` items), every item they bring along, the properties of
    those, and the source's entity groups that hold a ``tmap`` and the image."""

    ctx: Context
    item: int
    roots: list[tuple[str, int]]  # ("auxl" | "tmap", item id)
    items: dict[int, str] = field(default_factory=dict)  # every item copied -> its type
    inputs: dict[int, list[int]] = field(default_factory=dict)  # item -> its dimg inputs, in order
    metadata: dict[int, list[int]] = field(default_factory=dict)  # item -> the items describing it (cdsc)
    hidden: set[int] = field(default_factory=set)
    properties: dict[int, list[Property]] = field(default_factory=dict)
    groups: list[tuple[str, list[int]]] = field(default_factory=list)

    def formats(self) -> set[str]:
        """The formats ("HEIF", "AVIF") whose codecs the copied images are coded with."""
        return {_CODED[kind] for kind in self.items.values() if kind in _CODED}


def attached_to(handle: Handle, aux: set[int] | None, depth: bool, tmaps: set[int] | None) -> Attached | None:
    """What to copy with the image of ``handle``: its auxiliary images whose ids are in ``aux`` (all when
    None; alpha never), its depth images when ``depth``, and the ``tmap`` items in ``tmaps`` (all when None)
    whose base image it is. None when there is nothing to copy, or the file keeps its properties where they
    cannot be read as boxes (the compact ``mini`` format).

    Raises:
        HeifError: libheif cannot read an item's data.
    """
    with handle.ctx.lock:  # a file read lazily from its path must not be read by two threads at once
        return _attached_to(handle, aux, depth, tmaps)


def _attached_to(handle: Handle, aux: set[int] | None, depth: bool, tmaps: set[int] | None) -> Attached | None:
    ctx, item = handle.ctx, int(lib.heif_image_handle_get_item_id(handle.ptr))
    refs = {i: _items.references(ctx.ptr, i) for i in _items.item_ids(ctx.ptr)}
    depth_ids = set(_item_list(handle, "depth")) if depth else set()
    others = set(_item_list(handle, "aux")) - set(_item_list(handle, "depth"))
    roots = [("auxl", i) for i in sorted(depth_ids | (others if aux is None else others & aux))]
    roots += [
        ("tmap", i)
        for i, rs in refs.items()
        if _items.item_type(ctx.ptr, i) == "tmap" and _first_input(rs) == item and (tmaps is None or i in tmaps)
    ]
    described: dict[int, list[int]] = {}
    for i, rs in refs.items():
        for kind, targets in rs:
            if kind == "cdsc":
                for target in targets:
                    described.setdefault(target, []).append(i)
    # A root whose items refer to an item the file lacks (a damaged grid or tmap) cannot be copied whole:
    # it is left out, as a file libheif could not show it from.
    roots = [(kind, root) for kind, root in roots if _complete(root, item, refs, described)]
    if not roots:
        return None
    attached = Attached(ctx, item, roots)
    todo = [i for _, i in roots]
    while todo:
        current = todo.pop()
        if current in attached.items or current == item:
            continue
        attached.items[current] = _items.item_type(ctx.ptr, current)
        if _items.is_hidden(ctx.ptr, current):
            attached.hidden.add(current)
        attached.inputs[current] = [t for kind, targets in refs[current] if kind == "dimg" for t in targets]
        attached.metadata[current] = described.get(current, [])
        todo += attached.inputs[current] + attached.metadata[current]
    try:
        attached.properties = item_properties(file_data(ctx.source), set(attached.items))
    except InvalidInputError:
        return None
    attached.groups = _groups_with(ctx, {root for kind, root in roots if kind == "tmap"}, item)
    return attached


def _complete(
    root: int, item: int, refs: dict[int, list[tuple[str, list[int]]]], described: dict[int, list[int]]
) -> bool:
    """Whether every item that ``root`` is made of (its ``dimg`` inputs, their metadata...) is in the file."""
    seen, todo = set(), [root]
    while todo:
        current = todo.pop()
        if current in seen or current == item:
            continue
        if current not in refs:
            return False
        seen.add(current)
        todo += [t for kind, targets in refs[current] if kind == "dimg" for t in targets] + described.get(current, [])
    return True


def _item_list(handle: Handle, kind: str) -> list[int]:
    """The ids of an image's depth images (``kind="depth"``) or auxiliary images other than alpha ("aux")."""
    if kind == "depth":
        return _items.listed(
            lib.heif_image_handle_get_number_of_depth_images,
            lib.heif_image_handle_get_list_of_depth_image_IDs,
            handle.ptr,
        )
    return _items.listed(
        lib.heif_image_handle_get_number_of_auxiliary_images,
        lib.heif_image_handle_get_list_of_auxiliary_image_IDs,
        handle.ptr,
        int(lib.LIBHEIF_AUX_IMAGE_FILTER_OMIT_ALPHA),
    )


def _first_input(refs: list[tuple[str, list[int]]]) -> int | None:
    inputs = [t for kind, targets in refs if kind == "dimg" for t in targets]
    return inputs[0] if inputs else None


def _groups_with(ctx: Context, tmaps: set[int], item: int) -> list[tuple[str, list[int]]]:
    """The source's entity groups made of ``item`` and ``tmap`` items (its ``altr`` groups), as (type, ids)."""
    if not tmaps:
        return []
    return [(kind, ids) for _, kind, ids in _items.entity_groups(ctx.ptr) if item in ids and set(ids) - {item} <= tmaps]


def copy_attached(dst: Any, new_item: int, attached: Attached) -> tuple[set[int], list[tuple[bytes, list[int]]]]:
    """Copy ``attached`` into the file being written in ``dst`` (a ``heif_context*``), tied to the image's new
    item ``new_item``. Returns the new items to show (``_boxes.patch_written``) and the entity groups to write.

    Raises:
        HeifError: libheif refuses an item, property or reference.
    """
    new: dict[int, int] = {attached.item: new_item}
    with attached.ctx.lock:
        for kind, root in attached.roots:
            copied = _copy_item(attached, dst, root, new)
            if kind == "auxl":
                _items.add_references(dst, "auxl", copied, [new_item])
    visible = {new[i] for i in new if attached.items.get(i) == "tmap" and i not in attached.hidden}
    groups = [
        (kind.encode("latin-1"), [new[i] for i in ids]) for kind, ids in attached.groups if all(i in new for i in ids)
    ]
    if any(kind == "tmap" for kind, _ in attached.roots):
        lib.heif_context_add_compatible_brand(dst, _items.fourcc("tmap"))
    return visible, groups


def _copy_item(attached: Attached, dst: Any, item: int, new: dict[int, int]) -> int:
    """Copy ``item`` of ``attached``'s source into ``dst`` with its properties, inputs and metadata (each item
    once: ``new`` maps source ids to copies); the copy's id. A plain function, not a closure that calls itself:
    that would be a reference cycle holding the source's context, and its file, until the cycle collector ran."""
    if item in new:
        return new[item]
    new[item] = copied = _items.add_item_like(attached.ctx.ptr, item, dst)
    for prop in attached.properties.get(item, []):
        _items.add_property(dst, copied, prop.kind, prop.payload, prop.uuid, prop.essential)
    inputs = [_copy_item(attached, dst, i, new) for i in attached.inputs.get(item, [])]
    if inputs:
        _items.add_references(dst, "dimg", copied, inputs)
    for meta in attached.metadata.get(item, []):
        _items.add_references(dst, "cdsc", _copy_item(attached, dst, meta, new), [copied])
    return copied


class Copies:
    """The attached items copied into one file being written, and the patch they need once it is written."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.visible: set[int] = set()
        self.groups: list[tuple[bytes, list[int]]] = []

    def add(self, dst: Any, handle: Any, attached: Attached | None) -> None:
        """Copy ``attached`` for the image just encoded as ``handle`` (a ``heif_image_handle*``), unless its
        images are coded for another format than the file's (HEVC items in an AVIF file, AV1 in a HEIF file)."""
        if attached is None or not attached.formats() <= {self.fmt}:
            return
        visible, groups = copy_attached(dst, int(lib.heif_image_handle_get_item_id(handle)), attached)
        self.visible |= visible
        self.groups += groups

    def patched(self, data: bytes) -> bytes:
        """The written file with the copies shown and grouped as in their source."""
        return patch_written(data, self.visible, self.groups) if self.visible or self.groups else data
