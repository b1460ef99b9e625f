"""IntEnums mirroring libheif's enums, with pillow_heif's names and values."""

from __future__ import annotations

from enum import IntEnum


class HeifChroma(IntEnum):
    """Chroma formats (libheif ``heif_chroma``)."""

    UNDEFINED = 99
    MONOCHROME = 0
    CHROMA_420 = 1
    CHROMA_422 = 2
    CHROMA_444 = 3
    INTERLEAVED_RGB = 10
    INTERLEAVED_RGBA = 11
    INTERLEAVED_RRGGBB_BE = 12
    INTERLEAVED_RRGGBBAA_BE = 13
    INTERLEAVED_RRGGBB_LE = 14
    INTERLEAVED_RRGGBBAA_LE = 15


class HeifColorspace(IntEnum):
    """Colour spaces (libheif ``heif_colorspace``)."""

    UNDEFINED = 99
    YCBCR = 0
    RGB = 1
    MONOCHROME = 2


class HeifCompressionFormat(IntEnum):
    """Compression formats (libheif ``heif_compression_format``)."""

    UNDEFINED = 0
    HEVC = 1
    AVC = 2
    JPEG = 3
    AV1 = 4
    VVC = 5
    EVC = 6
    JPEG2000 = 7
    UNCOMPRESSED = 8
    MASK = 9


class HeifChannel(IntEnum):
    """Image channels (libheif ``heif_channel``)."""

    CHANNEL_Y = 0
    CHANNEL_CB = 1
    CHANNEL_CR = 2
    CHANNEL_R = 3
    CHANNEL_G = 4
    CHANNEL_B = 5
    CHANNEL_ALPHA = 6
    CHANNEL_INTERLEAVED = 10


class HeifColorPrimaries(IntEnum):
    """NCLX colour primaries (ITU-T H.273)."""

    ITU_R_BT_709_5 = 1
    UNSPECIFIED = 2
    ITU_R_BT_470_6_SYSTEM_M = 4
    ITU_R_BT_470_6_SYSTEM_B_G = 5
    ITU_R_BT_601_6 = 6
    SMPTE_240M = 7
    GENERIC_FILM = 8
    ITU_R_BT_2020_2_AND_2100_0 = 9
    SMPTE_ST_428_1 = 10
    SMPTE_RP_431_2 = 11
    SMPTE_EG_432_1 = 12
    EBU_TECH_3213_E = 22


class HeifTransferCharacteristics(IntEnum):
    """NCLX transfer characteristics (ITU-T H.273)."""

    ITU_R_BT_709_5 = 1
    UNSPECIFIED = 2
    ITU_R_BT_470_6_SYSTEM_M = 4
    ITU_R_BT_470_6_SYSTEM_B_G = 5
    ITU_R_BT_601_6 = 6
    SMPTE_240M = 7
    LINEAR = 8
    LOGARITHMIC_100 = 9
    LOGARITHMIC_100_SQRT10 = 10
    IEC_61966_2_4 = 11
    ITU_R_BT_1361 = 12
    IEC_61966_2_1 = 13
    ITU_R_BT_2020_2_10BIT = 14
    ITU_R_BT_2020_2_12BIT = 15
    ITU_R_BT_2100_0_PQ = 16
    SMPTE_ST_428_1 = 17
    ITU_R_BT_2100_0_HLG = 18


class HeifMatrixCoefficients(IntEnum):
    """NCLX matrix coefficients (ITU-T H.273)."""

    RGB_GBR = 0
    ITU_R_BT_709_5 = 1
    UNSPECIFIED = 2
    US_FCC_T47 = 4
    ITU_R_BT_470_6_SYSTEM_B_G = 5
    ITU_R_BT_601_6 = 6
    SMPTE_240M = 7
    YCGCO = 8
    ITU_R_BT_2020_2_NON_CONSTANT_LUMINANCE = 9
    ITU_R_BT_2020_2_CONSTANT_LUMINANCE = 10
    SMPTE_ST_2085 = 11
    CHROMATICITY_DERIVED_NON_CONSTANT_LUMINANCE = 12
    CHROMATICITY_DERIVED_CONSTANT_LUMINANCE = 13
    ICTCP = 14


class HeifDepthRepresentationType(IntEnum):
    """How a depth image's values map to depth."""

    UNIFORM_INVERSE_Z = 0
    UNIFORM_DISPARITY = 1
    UNIFORM_Z = 2
    NON_UNIFORM_DISPARITY = 3
