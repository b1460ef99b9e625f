"""Image information, for reading and writing: modes, properties (libheif struct <-> ``info`` dict),
transformations, EXIF/XMP and orientation, and the checks of values users pass.
"""
