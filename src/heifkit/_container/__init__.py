"""ISOBMFF container boxes, read as bytes where libheif tells nothing: the one box walker (``boxes``), item
property boxes and the patch of written files, track sample tables, and the file layout ``heifkit info`` shows.
"""
