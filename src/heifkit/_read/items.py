"""libheif's item API: any item of a file (type, data, references, visibility), and new items added to a
file being written. Images, metadata and derived items (``grid``, ``tmap``...) are all items."""

from __future__ import annotations

from typing import Any

from .._native.libheif import check, ffi, lib

__all__ = [
    "fourcc",
    "listed",
    "item_ids",
    "item_type",
    "is_hidden",
    "item_data",
    "references",
    "add_item_like",
    "add_references",
    "add_property",
    "entity_groups",
]


def fourcc(code: str | bytes) -> int:
    """The 32-bit code of a four-character type."""
    return int.from_bytes(code.encode("latin-1") if isinstance(code, str) else code, "big")


def listed(count: Any, list_ids: Any, *args: Any) -> list[int]:
    """The item ids a libheif ``count(*args)``/``list_ids(*args, ids, n)`` pair of functions gives."""
    n = count(*args)
    if n <= 0:
        return []
    ids = ffi.new("heif_item_id[]", n)
    n = list_ids(*args, ids, n)
    return [int(i) for i in ids[0:n]]


def item_ids(ctx: Any) -> list[int]:
    """Every item id of the file (``ctx``: a ``heif_context*``)."""
    return listed(lib.heif_context_get_number_of_items, lib.heif_context_get_list_of_item_IDs, ctx)


def item_type(ctx: Any, item: int) -> str:
    """The four-character type of an item (``hvc1``, ``grid``, ``tmap``, ``mime``...); latin-1, kept as is."""
    return int(lib.heif_item_get_item_type(ctx, item)).to_bytes(4, "big").decode("latin-1")


def is_hidden(ctx: Any, item: int) -> bool:
    return bool(lib.heif_item_is_item_hidden(ctx, item))


def item_data(ctx: Any, item: int, compressed: bool = False) -> tuple[bytes, int]:
    """An item's data as stored, and how it is compressed (``heif_metadata_compression``; with
    ``compressed=False`` a ``mime`` item's data is decompressed and the method is 0).

    Raises:
        HeifError: libheif cannot read it (e.g. a compression it was built without).
    """
    method = ffi.new("heif_metadata_compression*") if compressed else ffi.NULL
    out, size = ffi.new("uint8_t**"), ffi.new("size_t*")
    check(lib.heif_item_get_item_data(ctx, item, method, out, size), "item data")
    try:
        data = bytes(ffi.buffer(out[0], size[0])) if out[0] != ffi.NULL and size[0] else b""
    finally:
        if out[0] != ffi.NULL:
            lib.heif_release_item_data(ctx, out)
    return data, int(method[0]) if compressed else 0


def references(ctx: Any, item: int) -> list[tuple[str, list[int]]]:
    """The references from an item, in file order: (type such as ``dimg``/``auxl``/``cdsc``, target ids)."""
    result = []
    kind, out = ffi.new("uint32_t*"), ffi.new("heif_item_id**")
    for index in range(1 << 16):
        n = lib.heif_context_get_item_references(ctx, item, index, kind, out)
        if n == 0:
            break
        try:
            targets = [int(t) for t in out[0][0:n]] if out[0] != ffi.NULL else []
        finally:
            lib.heif_release_item_references(ctx, out)
        result.append((int(kind[0]).to_bytes(4, "big").decode("latin-1"), targets))
    return result


def add_item_like(src: Any, item: int, dst: Any) -> int:
    """Add to the file being written in ``dst`` a copy of item ``item`` of ``src`` (type, data as stored,
    MIME type and encoding, URI type, name), without its properties or references; the new item is hidden.
    Returns its id."""
    kind = item_type(src, item)
    new = ffi.new("heif_item_id*")
    if kind == "mime":
        data, _ = item_data(src, item, compressed=True)
        content_type = _bytes(lib.heif_item_get_mime_item_content_type(src, item))
        encoding = _bytes(lib.heif_item_get_mime_item_content_encoding(src, item))
        check(lib.heif_context_add_precompressed_mime_item(dst, content_type, encoding, data, len(data), new), "item")
    elif kind == "uri ":
        data, _ = item_data(src, item)
        uri = _bytes(lib.heif_item_get_uri_item_uri_type(src, item))
        check(lib.heif_context_add_uri_item(dst, uri, data, len(data), new), "item")
    else:
        data, _ = item_data(src, item)
        check(lib.heif_context_add_item(dst, kind.encode("latin-1"), data, len(data), new), "item")
    name = _bytes(lib.heif_item_get_item_name(src, item))
    if name:
        check(lib.heif_item_set_item_name(dst, new[0], name), "item name")
    return int(new[0])


def _bytes(ptr: Any) -> bytes:
    """A C string owned by libheif, as its bytes (b'' for NULL)."""
    return b"" if ptr == ffi.NULL else ffi.string(ptr)


def add_references(ctx: Any, kind: str, source: int, targets: list[int]) -> None:
    """Add references of type ``kind`` from item ``source`` to ``targets`` (in this order)."""
    ids = ffi.new("heif_item_id[]", targets)
    check(lib.heif_context_add_item_references(ctx, fourcc(kind), source, ids, len(targets)), "item reference")


def add_property(ctx: Any, item: int, kind: bytes, payload: bytes, uuid: bytes | None, essential: bool) -> None:
    """Attach a property, given as its stored payload (after the box header and ``uuid`` type), to an item."""
    uuid_type = ffi.new("uint8_t[16]", uuid) if uuid is not None else ffi.NULL
    check(
        lib.heif_item_add_raw_property(
            ctx, item, fourcc(kind), uuid_type, payload, len(payload), int(essential), ffi.NULL
        ),
        "item property",
    )


def entity_groups(ctx: Any) -> list[tuple[int, str, list[int]]]:
    """The file's entity groups (``altr``, ``ster``, ``pymd``...): (group id, type, entity ids) in file order."""
    count = ffi.new("int*")
    raw = lib.heif_context_get_entity_groups(ctx, 0, 0, count)
    if raw == ffi.NULL or count[0] <= 0:
        return []
    try:
        groups = []
        for g in range(count[0]):
            group = raw[g]
            entities = [int(group.entities[k]) for k in range(group.num_entities)] if group.entities != ffi.NULL else []
            kind = int(group.entity_group_type).to_bytes(4, "big").decode("latin-1")
            groups.append((int(group.entity_group_id), kind, entities))
        return groups
    finally:
        lib.heif_entity_groups_release(raw, count[0])
