"""The native binding: loading libheif, its errors and the owners of its objects, the cffi declarations and
build, the C helpers (``helpers.c``, ``yuv.c``, ``avif_rgb.c``, ``dav1d.c``), the in-process dav1d decoder
plugin and the zero-copy hand-off of pixels to Pillow. The compiled extension is ``heifkit._native._binding``.
"""
