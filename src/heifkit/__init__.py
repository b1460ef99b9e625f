"""heifkit: read and write HEIF/HEIC and AVIF images with libheif; a Pillow plugin and a standalone API.

The public API is compatible with pillow_heif's: ``import heifkit as pillow_heif`` works.
"""

from . import options
from ._version import __version__
from .codecs import libheif_info, libheif_version, load_libheif_plugin
from .constants import (
    HeifColorPrimaries,
    HeifDepthRepresentationType,
    HeifMatrixCoefficients,
    HeifTransferCharacteristics,
)
from .errors import (
    DecoderError,
    EncoderError,
    HeifError,
    InternalError,
    InvalidInputError,
    SecurityLimitError,
    TruncatedError,
    UnsupportedError,
)
from .heif import (
    HeifFile,
    encode,
    from_bytes,
    from_pillow,
    get_file_mimetype,
    is_supported,
    open_heif,
    read_heif,
)
from .image import HeifAuxImage, HeifDepthImage, HeifImage, HeifThumbnail
from .metadata import set_orientation
from .plugin import AvifImageFile, HeifImageFile, register_avif_opener, register_heif_opener

__all__ = [
    "__version__",
    "options",
    "libheif_info",
    "libheif_version",
    "load_libheif_plugin",
    "HeifColorPrimaries",
    "HeifDepthRepresentationType",
    "HeifMatrixCoefficients",
    "HeifTransferCharacteristics",
    "HeifError",
    "InvalidInputError",
    "TruncatedError",
    "UnsupportedError",
    "SecurityLimitError",
    "DecoderError",
    "EncoderError",
    "InternalError",
    "HeifAuxImage",
    "HeifDepthImage",
    "HeifFile",
    "HeifImage",
    "HeifThumbnail",
    "HeifImageFile",
    "AvifImageFile",
    "encode",
    "from_bytes",
    "from_pillow",
    "get_file_mimetype",
    "is_supported",
    "open_heif",
    "read_heif",
    "register_heif_opener",
    "register_avif_opener",
    "set_orientation",
]
