"""heifkit: read and write HEIF/HEIC and AVIF images with libheif; a Pillow plugin and a standalone API.

The public API is compatible with pillow_heif's: ``import heifkit as pillow_heif`` works.
"""

from . import options
from ._info.metadata import set_orientation
from ._info.transforms import apply_transformations
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
from .gainmap import HeifGainMap
from .heif import (
    HeifFile,
    encode,
    from_bytes,
    from_hdr,
    from_pillow,
    get_file_mimetype,
    is_supported,
    open_heif,
    read_heif,
)
from .image import HeifAuxImage, HeifDepthImage, HeifImage, HeifThumbnail
from .limits import SecurityLimits
from .plugin import AvifImageFile, HeifImageFile, register_avif_opener, register_heif_opener
from .sequence import HeifFrame, HeifSequence, open_sequence, save_sequence

__all__ = [
    "__version__",
    "apply_transformations",
    "AvifImageFile",
    "DecoderError",
    "encode",
    "EncoderError",
    "from_bytes",
    "from_hdr",
    "from_pillow",
    "get_file_mimetype",
    "HeifAuxImage",
    "HeifColorPrimaries",
    "HeifDepthImage",
    "HeifDepthRepresentationType",
    "HeifError",
    "HeifFile",
    "HeifFrame",
    "HeifGainMap",
    "HeifImage",
    "HeifImageFile",
    "HeifMatrixCoefficients",
    "HeifSequence",
    "HeifThumbnail",
    "HeifTransferCharacteristics",
    "InternalError",
    "InvalidInputError",
    "is_supported",
    "libheif_info",
    "libheif_version",
    "load_libheif_plugin",
    "open_heif",
    "open_sequence",
    "options",
    "read_heif",
    "register_avif_opener",
    "register_heif_opener",
    "save_sequence",
    "SecurityLimitError",
    "SecurityLimits",
    "set_orientation",
    "TruncatedError",
    "UnsupportedError",
]
