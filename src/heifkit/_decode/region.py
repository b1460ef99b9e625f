"""Regions of an image: a box in the coordinates the image is shown in, the tiles that cover it, and the
rows of a decoded image cut to it.

A box is ``(left, top, right, bottom)`` like Pillow's: ``right`` and ``bottom`` are excluded, so the region
is ``right - left`` by ``bottom - top`` pixels. For images read with their transformations applied (the
default) the coordinates are those after libheif's rotation, mirroring and crop; with
``apply_transformations=False`` they are the stored pixels'. ``decode.decode`` decodes a box of a tiled
(grid or ``tili``) image tile by tile, only the tiles that cover it; other images decode whole and are cut.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

from .._native.libheif import copy_plane, ffi

__all__ = ["Box", "check_box", "covering_tiles", "crop_rows"]

Box = tuple[int, int, int, int]


def check_box(box: Any, size: tuple[int, int]) -> Box:
    """``box`` as four ints, checked to be a non-empty region inside an image of ``size``.

    Raises:
        TypeError: not a sequence of four integers.
        ValueError: an empty box, or one that reaches outside the image.
    """
    try:
        left, top, right, bottom = (operator.index(v) for v in box)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"box must be four integers (left, top, right, bottom), not {box!r}") from exc
    width, height = size
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise ValueError(
            f"box {(left, top, right, bottom)} is empty or not inside the {width}x{height} image "
            "(0 <= left < right <= width, 0 <= top < bottom <= height)"
        )
    return left, top, right, bottom


def covering_tiles(
    box: Box, tile_size: tuple[int, int], origin: tuple[int, int], grid: tuple[int, int]
) -> Iterator[tuple[int, int]]:
    """The (column, row) of every tile that holds a pixel of ``box``, row by row.

    Tile (column, row) starts at ``column * tile_width - origin[0]``, ``row * tile_height - origin[1]`` in
    image coordinates (a rotated or cropped grid starts left of/above the image); ``grid`` is (columns, rows).
    """
    tile_w, tile_h = tile_size
    first_col, last_col = (box[0] + origin[0]) // tile_w, (box[2] - 1 + origin[0]) // tile_w
    first_row, last_row = (box[1] + origin[1]) // tile_h, (box[3] - 1 + origin[1]) // tile_h
    for row in range(max(0, first_row), min(grid[1] - 1, last_row) + 1):
        for col in range(max(0, first_col), min(grid[0] - 1, last_col) + 1):
            yield col, row


def crop_rows(src: Any, src_stride: int, box: Box, pixel_bytes: int) -> tuple[bytearray, int]:
    """A copy of the ``box`` of an image whose rows are ``src_stride`` bytes of ``src``: (tight rows, stride)."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    stride = width * pixel_bytes
    need = (bottom - 1) * src_stride + right * pixel_bytes
    view = memoryview(src).cast("B")
    if len(view) < need:
        raise ValueError(f"image buffer holds {len(view)} bytes, fewer than the {need} the box needs")
    dst = bytearray(stride * height)
    copy_plane(
        ffi.from_buffer(view) + top * src_stride + left * pixel_bytes, src_stride,
        ffi.from_buffer(dst, require_writable=True), stride, width, height, 1, pixel_bytes,
    )  # fmt: skip
    return dst, stride
