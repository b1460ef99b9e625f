"""Reading: a path, bytes or stream -> a libheif context (``source``, ``stream``) -> an entry per image
(``entries``), any item of a file (``items``) and sequence tracks (``tracks``). Nothing here decodes pixels.
"""
