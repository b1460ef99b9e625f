"""Decoding an HEVC image whose coded picture is bigger than its ``ispe`` says, as some cameras write them.

Canon's HIF files code their 1616x1080 and 320x212 preview thumbnails as 1664x1088 and 320x256 HEVC
pictures, without the conformance window that would crop them to size: readers are meant to show the
top-left ``ispe``-sized part. libheif 1.23 refuses such an image ("Decoded image does not have the size
signaled in the file"). Here the image's own ``ispe`` box is set to the coded size in a private copy of the
file, libheif decodes that copy, and the result is cropped to the size the file signals.

Only an image with its own ``ispe`` (shared with no other item) and no rotation, mirroring or crop is
handled; anything else keeps libheif's error. The parsing reads only what it checks the bounds of.
"""

from __future__ import annotations

import struct
from typing import Any

from .._container.boxes import boxes as _boxes
from .._container.boxes import child as _child
from .._native.libheif import Handle, check, ffi, lib

__all__ = ["patched_file", "coded_size"]


def _properties(data: bytes) -> tuple[list[tuple[bytes, int, int]], dict[int, list[int]]] | None:
    """The ``ipco`` properties (type, payload, end) and each item's property indexes (1-based) from ``ipma``."""
    meta = _child(data, 0, len(data), b"meta")
    iprp = meta and _child(data, meta[0] + 4, meta[1], b"iprp")  # meta is a full box: 4 bytes version/flags
    ipco = iprp and _child(data, iprp[0], iprp[1], b"ipco")
    if not iprp or not ipco:
        return None
    properties = list(_boxes(data, *ipco))
    associations: dict[int, list[int]] = {}
    for kind, start, end in _boxes(data, *iprp):
        if kind != b"ipma":
            continue
        version, flags = data[start], int.from_bytes(data[start + 1 : start + 4], "big")
        count = int.from_bytes(data[start + 4 : start + 8], "big")
        at = start + 8
        for _ in range(count):
            id_size = 2 if version < 1 else 4
            item = int.from_bytes(data[at : at + id_size], "big")
            n = data[at + id_size]
            at += id_size + 1
            entry_size = 2 if flags & 1 else 1
            mask = 0x7FFF if flags & 1 else 0x7F
            indexes = [
                int.from_bytes(data[at + i * entry_size : at + (i + 1) * entry_size], "big") & mask for i in range(n)
            ]
            at += n * entry_size
            if at > end:
                return None
            associations.setdefault(item, []).extend(indexes)
    return properties, associations


class _Bits:
    """A big-endian bit reader over an RBSP (emulation prevention bytes removed)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]  # IndexError past the end: the caller gives up
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)


def _rbsp(nal: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def coded_size(hvcc: bytes) -> tuple[int, int] | None:
    """The size of the pictures an ``hvcC`` configuration's SPS describes (conformance window applied)."""
    try:
        at, arrays = 23, hvcc[22]
        for _ in range(arrays):
            nal_type, count = hvcc[at] & 0x3F, int.from_bytes(hvcc[at + 1 : at + 3], "big")
            at += 3
            for _ in range(count):
                length = int.from_bytes(hvcc[at : at + 2], "big")
                nal = hvcc[at + 2 : at + 2 + length]
                at += 2 + length
                if nal_type == 33:  # SPS
                    return _sps_size(_Bits(_rbsp(nal[2:])))
    except (IndexError, ValueError):
        return None
    return None


def _sps_size(bits: _Bits) -> tuple[int, int]:
    bits.u(4)  # sps_video_parameter_set_id
    sub_layers = bits.u(3)  # sps_max_sub_layers_minus1
    bits.u(1)
    bits.u(96)  # general profile, tier and level
    present = [(bits.u(1), bits.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.u(2 * (8 - sub_layers))
    for profile, level in present:
        bits.u(88 * profile + 8 * level)
    bits.ue()  # sps_seq_parameter_set_id
    chroma_format = bits.ue()
    if chroma_format == 3:
        bits.u(1)
    width, height = bits.ue(), bits.ue()
    if bits.u(1):  # conformance window, in chroma samples
        sub_w, sub_h = {1: (2, 2), 2: (2, 1)}.get(chroma_format, (1, 1))
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        width, height = width - sub_w * (left + right), height - sub_h * (top + bottom)
    return width, height


def patched_file(data: bytes, item: int) -> tuple[bytes, tuple[int, int]] | None:
    """A copy of ``data`` where ``item``'s ``ispe`` gives its coded size, and that size; None when the image
    is not one this module handles."""
    parsed = _properties(data)
    if parsed is None:
        return None
    properties, associations = parsed
    mine = associations.get(item, [])
    kinds = {properties[i - 1][0]: properties[i - 1] for i in mine if 0 < i <= len(properties)}
    if b"ispe" not in kinds or b"hvcC" not in kinds or b"imir" in kinds or b"clap" in kinds:
        return None
    irot = kinds.get(b"irot")
    if irot is not None and data[irot[1]] & 3:
        return None
    ispe_index = next(i for i in mine if properties[i - 1][0] == b"ispe")
    if any(ispe_index in indexes for other, indexes in associations.items() if other != item):
        return None  # shared with another item: patching it would change that one too
    _, hvcc_start, hvcc_end = kinds[b"hvcC"]
    size = coded_size(data[hvcc_start:hvcc_end])
    _, ispe_start, ispe_end = kinds[b"ispe"]
    if size is None or ispe_end - ispe_start < 12 or min(size) <= 0:
        return None
    signalled = struct.unpack_from(">II", data, ispe_start + 4)
    if size[0] < signalled[0] or size[1] < signalled[1] or size == signalled:
        return None
    patched = bytearray(data)
    struct.pack_into(">II", patched, ispe_start + 4, *size)
    return bytes(patched), size


def open_patched(handle: Handle, source: Any) -> tuple[Handle, tuple[int, int]] | None:
    """``handle``'s image in a private copy of its file (``source``: bytes, or a path) with a patched ``ispe``,
    and its coded size; None when it cannot be patched."""
    if source is None:
        return None
    if not isinstance(source, (bytes, bytearray, memoryview)):
        with open(source, "rb") as f:
            source = f.read()
    found = patched_file(bytes(source), int(lib.heif_image_handle_get_item_id(handle.ptr)))
    if found is None:
        return None
    data, size = found
    ctx = handle.ctx.twin(data)  # the same security limits
    out = ffi.new("heif_image_handle**")
    check(lib.heif_context_get_image_handle(ctx.ptr, lib.heif_image_handle_get_item_id(handle.ptr), out))
    return Handle(out[0], ctx), size
