"""Decoding: an image handle -> a pixel buffer (``pixels``), heifkit's own colour conversion (``yuv``), regions,
the cores shared by decodes, oversized HEVC previews and layered AV1.
"""
