"""Writing: the save parameters (``params``), encoder set-up, still files, sequences, attached items copied as
stored, and where the bytes go (``target``). Nothing here knows the image model: frames in, bytes out.
"""
