"""The quality an image was coded at, read from its coded stream (no pixels decoded).

HEIF stores no encoder setting, but the coded stream keeps the quantizer the encoder chose: for HEVC the slice QP
(``26 + init_qp_minus26 + slice_qp_delta``, from the PPS and each slice segment header), for AV1 the frame
header's ``base_q_idx``. :func:`coded_quality` reads it from an image's item (or a grid's tiles, weighted by
their coded size) and turns it into an estimate on libheif's 0..100 quality scale, by inverting what the
encoders code each quality at (measured by ``benchmarks/coded_quality.py``; docs/reading.md has the figures):

* HEVC: libheif's x265 plugin sets x265's CRF to ``(100 - quality) / 2``, and x265 codes a single picture at a
  QP that follows from the CRF alone (:func:`x265_qp`).
* AV1: libheif's aom plugin and libavif (Pillow's AVIF plugin) both hand aom the 0..63 quantizer
  ``((100 - quality) * 63 + 50) // 100``, and aom codes a still image at a q index that follows from the
  quality alone (``_AOM_Q_INDEX``).

Other encoders (Apple's, SVT-AV1, rav1e...) choose their quantizer their own way: the estimate then says which
libheif quality codes the same quantizer.

Every read is bounded by the data: a damaged stream gives None, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .._container import item_boxes as _boxes
from .._native.libheif import Handle, lib
from ..errors import HeifError
from . import items as _items
from .source import file_data

__all__ = ["coded_quality", "hevc_quality", "av1_quality", "x265_qp", "hevc_qp", "av1_q_index"]

_MAX_TILES = 4096  # a grid of more tiles is not read (each tile's data is copied out of libheif)
_MAX_NALS = 4096  # NAL units read from one item
_MAX_OBUS = 4096  # OBUs read from one item
_HEADER_BYTES = 1024  # the slice segment header (before its entry points) fits in the first bytes of a slice


class _Malformed(Exception):
    """The stream ends too early or holds a value out of its range."""


class _Bits:
    """A big-endian bit reader over a byte string; reading past the end raises :class:`_Malformed`."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data) * 8

    def u(self, n: int) -> int:
        """The next ``n`` bits as an unsigned number."""
        if n == 0:
            return 0
        if n < 0 or self.pos + n > self.end:
            raise _Malformed("read past the end")
        first, last = self.pos >> 3, (self.pos + n + 7) >> 3
        chunk = int.from_bytes(self.data[first:last], "big")
        self.pos += n
        return (chunk >> (last * 8 - self.pos)) & ((1 << n) - 1)

    def flag(self) -> bool:
        return bool(self.u(1))

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise _Malformed("skip past the end")
        self.pos += n

    def ue(self, limit: int = (1 << 32) - 2) -> int:
        """An unsigned exp-Golomb number (H.265 ``ue(v)``), at most ``limit``."""
        zeros = 0
        while not self.u(1):
            zeros += 1
            if zeros > 31:
                raise _Malformed("exp-Golomb code too long")
        value = (1 << zeros) - 1 + self.u(zeros)
        if value > limit:
            raise _Malformed(f"value {value} over {limit}")
        return value

    def se(self) -> int:
        """A signed exp-Golomb number (H.265 ``se(v)``)."""
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)

    def su(self, n: int) -> int:
        """An ``n``-bit two's complement number (AV1 ``su(n)``)."""
        value = self.u(n)
        return value - (1 << n) if value >> (n - 1) else value

    def ns(self, n: int) -> int:
        """A number in 0..n-1 in AV1's non-symmetric code (``ns(n)``)."""
        if n <= 1:
            return 0
        w = n.bit_length()
        m = (1 << w) - n
        v = self.u(w - 1)
        return v if v < m else (v << 1) - m + self.u(1)


# --- HEVC ----------------------------------------------------------------------------------------------


_Rps = tuple[tuple[int, ...], tuple[int, ...]]
"""A short-term reference picture set: the delta POCs of its negative pictures and of its positive ones."""


@dataclass(frozen=True)
class _Sps:
    """What a slice segment header needs of its sequence parameter set."""

    chroma_array_type: int
    separate_colour_plane: bool
    ctbs: int  # PicSizeInCtbsY
    poc_lsb_bits: int
    rps: tuple[_Rps, ...]  # the short-term reference picture sets
    long_term: bool
    long_term_sps: int  # num_long_term_ref_pics_sps
    temporal_mvp: bool
    sao: bool
    bit_depth: int


@dataclass(frozen=True)
class _Pps:
    """What a slice segment header needs of its picture parameter set, and whether it allows lossless blocks."""

    sps_id: int
    dependent_slices: bool
    output_flag: bool
    extra_bits: int
    init_qp: int  # 26 + init_qp_minus26
    transquant_bypass: bool


def _rbsp(nal: bytes, limit: int | None = None) -> bytes:
    """A NAL unit's payload without its emulation-prevention bytes (the first ``limit`` bytes only, if given).

    Removing each 03 of 00 00 03, left to right without overlap, is the rule of H.265 7.4.2."""
    return (nal if limit is None else nal[:limit]).replace(b"\0\0\3", b"\0\0")


def _length_prefixed(data: bytes, length_size: int) -> Iterator[bytes]:
    """The NAL units of an item's data: each after a big-endian length of ``length_size`` bytes."""
    pos, count = 0, 0
    while pos < len(data):
        if count >= _MAX_NALS:
            raise _Malformed("too many NAL units")
        if pos + length_size > len(data):
            raise _Malformed("NAL unit length cut short")
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if size < 2 or pos + size > len(data):
            raise _Malformed("NAL unit runs past the item's data")
        yield data[pos : pos + size]
        pos += size
        count += 1


def _hvcc(payload: bytes) -> tuple[int, list[bytes]]:
    """The NAL unit length size and the parameter-set NAL units of an ``hvcC`` property's payload."""
    if len(payload) < 23:
        raise _Malformed("hvcC too short")
    length_size = (payload[21] & 3) + 1
    if length_size == 3:
        raise _Malformed("hvcC: NAL unit lengths of 3 bytes")
    nals, pos = [], 23
    for _ in range(payload[22]):
        if pos + 3 > len(payload):
            raise _Malformed("hvcC array cut short")
        count = int.from_bytes(payload[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            if pos + 2 > len(payload):
                raise _Malformed("hvcC NAL unit cut short")
            size = int.from_bytes(payload[pos : pos + 2], "big")
            if size < 2 or pos + 2 + size > len(payload):
                raise _Malformed("hvcC NAL unit runs past the property")
            nals.append(payload[pos + 2 : pos + 2 + size])
            pos += 2 + size
    return length_size, nals


def _profile_tier_level(bits: _Bits, max_sub_layers_minus1: int) -> None:
    bits.skip(96)  # general profile, tier, flags and level
    present = [(bits.flag(), bits.flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        bits.skip(2 * (8 - max_sub_layers_minus1))
    for profile, level in present:
        bits.skip((88 if profile else 0) + (8 if level else 0))


def _scaling_list_data(bits: _Bits) -> None:
    for size_id in range(4):
        for _ in range(0, 6, 3 if size_id == 3 else 1):
            if not bits.flag():  # scaling_list_pred_mode_flag
                bits.ue(5)
                continue
            if size_id > 1:
                bits.se()
            for _ in range(min(64, 1 << (4 + (size_id << 1)))):
                bits.se()


def _short_term_rps(bits: _Bits, sets: tuple[_Rps, ...], in_slice: bool) -> _Rps:
    """One ``st_ref_pic_set(len(sets))`` (H.265 7.3.7), derived from an earlier set (7.4.8) when it is predicted:
    ``sets`` holds the SPS's sets before it (all of them for the set a slice header codes, ``in_slice``)."""
    index = len(sets)
    if index and bits.flag():  # inter_ref_pic_set_prediction_flag
        delta_idx = bits.ue(index - 1) + 1 if in_slice else 1
        if delta_idx > index:
            raise _Malformed("reference picture set predicted from a set that does not exist")
        sign = bits.flag()
        delta_rps = (bits.ue(1 << 15) + 1) * (-1 if sign else 1)
        ref_neg, ref_pos = sets[index - delta_idx]
        ref = ref_neg + ref_pos
        use = []
        for _ in range(len(ref) + 1):
            used = bits.flag()
            use.append(used or bits.flag())  # use_delta_flag, inferred 1 for a picture used by the current one
        # (index in ``use``, delta POC) of the reference set's pictures, moved by delta_rps; the set's own
        # picture (delta_rps itself) comes between its negative and its positive ones, in the order of 7.4.8
        moved_neg = [(j, d + delta_rps) for j, d in enumerate(ref_neg)]
        moved_pos = [(j, d + delta_rps) for j, d in enumerate(ref_pos, len(ref_neg))]
        order_neg = [*reversed(moved_pos), (len(ref), delta_rps), *moved_neg]
        order_pos = [*reversed(moved_neg), (len(ref), delta_rps), *moved_pos]
        neg = [d for j, d in order_neg if d < 0 and use[j]]
        pos = [d for j, d in order_pos if d > 0 and use[j]]
        if len(neg) + len(pos) > 32:
            raise _Malformed("too many reference pictures")
        return tuple(neg), tuple(pos)
    negatives, positives = bits.ue(16), bits.ue(16)
    neg, poc = [], 0
    for _ in range(negatives):
        poc -= bits.ue(1 << 15) + 1
        bits.skip(1)
        neg.append(poc)
    pos, poc = [], 0
    for _ in range(positives):
        poc += bits.ue(1 << 15) + 1
        bits.skip(1)
        pos.append(poc)
    return tuple(neg), tuple(pos)


def _sps(rbsp: bytes) -> tuple[int, _Sps]:
    """(sps_seq_parameter_set_id, what slices need) of an SPS NAL unit's payload (H.265 7.3.2.2)."""
    bits = _Bits(rbsp)
    bits.skip(16 + 4)  # NAL unit header, sps_video_parameter_set_id
    max_sub_layers_minus1 = bits.u(3)
    bits.skip(1)
    _profile_tier_level(bits, max_sub_layers_minus1)
    sps_id = bits.ue(15)
    chroma_format = bits.ue(3)
    separate = chroma_format == 3 and bits.flag()
    width, height = bits.ue(1 << 16), bits.ue(1 << 16)
    if bits.flag():  # conformance_window_flag
        for _ in range(4):
            bits.ue()
    bit_depth = bits.ue(8) + 8
    bits.ue(8)  # bit_depth_chroma_minus8
    poc_lsb_bits = bits.ue(12) + 4
    ordering = bits.flag()
    for _ in range(0 if ordering else max_sub_layers_minus1, max_sub_layers_minus1 + 1):
        bits.ue(), bits.ue(), bits.ue()
    min_cb = bits.ue(3) + 3
    ctb_log2 = min_cb + bits.ue(3)
    if not 4 <= ctb_log2 <= 6 or not width or not height:
        raise _Malformed("SPS: coding tree block size or picture size out of range")
    for _ in range(4):
        bits.ue(32)  # transform block sizes, transform hierarchy depths
    if bits.flag() and bits.flag():  # scaling_list_enabled_flag, sps_scaling_list_data_present_flag
        _scaling_list_data(bits)
    bits.skip(1)  # amp_enabled_flag
    sao = bits.flag()
    if bits.flag():  # pcm_enabled_flag
        bits.skip(8)
        bits.ue(), bits.ue()
        bits.skip(1)
    sets: tuple[_Rps, ...] = ()
    for _ in range(bits.ue(64)):
        sets += (_short_term_rps(bits, sets, in_slice=False),)
    long_term, long_term_sps = bits.flag(), 0
    if long_term:
        long_term_sps = bits.ue(32)
        bits.skip(long_term_sps * (poc_lsb_bits + 1))
    temporal_mvp = bits.flag()
    ctb = 1 << ctb_log2
    ctbs = -(-width // ctb) * -(-height // ctb)
    chroma_array_type = 0 if separate else chroma_format
    return sps_id, _Sps(
        chroma_array_type, separate, ctbs, poc_lsb_bits, sets, long_term, long_term_sps, temporal_mvp, sao, bit_depth
    )


def _pps(rbsp: bytes) -> tuple[int, _Pps]:
    """(pps_pic_parameter_set_id, what slices need) of a PPS NAL unit's payload (H.265 7.3.2.3)."""
    bits = _Bits(rbsp)
    bits.skip(16)
    pps_id, sps_id = bits.ue(63), bits.ue(15)
    dependent, output_flag, extra_bits = bits.flag(), bits.flag(), bits.u(3)
    bits.skip(2)  # sign_data_hiding_enabled_flag, cabac_init_present_flag
    bits.ue(14), bits.ue(14)  # num_ref_idx_l0/l1_default_active_minus1
    init_qp = 26 + bits.se()
    bits.skip(2)  # constrained_intra_pred_flag, transform_skip_enabled_flag
    if bits.flag():  # cu_qp_delta_enabled_flag
        bits.ue()
    bits.se(), bits.se()  # pps_cb_qp_offset, pps_cr_qp_offset
    bits.skip(3)  # pps_slice_chroma_qp_offsets_present_flag, weighted_pred_flag, weighted_bipred_flag
    bypass = bits.flag()
    if not -48 <= init_qp <= 51:  # down to -QpBdOffsetY: -48 at 16 bits
        raise _Malformed("PPS: init_qp_minus26 out of range")
    return pps_id, _Pps(sps_id, dependent, output_flag, extra_bits, init_qp, bypass)


def _slice_qp(rbsp: bytes, nal_type: int, spss: dict[int, _Sps], ppss: dict[int, _Pps]) -> tuple[int | None, _Pps]:
    """The SliceQpY of an I slice segment (H.265 7.3.6.1; None for a dependent segment, which keeps the QP of
    the segment before it) and its PPS. P and B slices (never in an image item) are not read."""
    bits = _Bits(rbsp)
    bits.skip(16)
    first = bits.flag()
    if 16 <= nal_type <= 23:  # an IRAP picture
        bits.skip(1)  # no_output_of_prior_pics_flag
    pps = ppss.get(bits.ue(63))
    sps = spss.get(pps.sps_id) if pps is not None else None
    if pps is None or sps is None:
        raise _Malformed("slice refers to a parameter set that is not there")
    if not first:
        if pps.dependent_slices and bits.flag():
            return None, pps
        bits.skip((sps.ctbs - 1).bit_length())  # slice_segment_address
    bits.skip(pps.extra_bits)
    if bits.ue(9) != 2:  # slice_type: 2 is I
        raise _Malformed("not an I slice")
    if pps.output_flag:
        bits.skip(1)
    if sps.separate_colour_plane:
        bits.skip(2)
    if nal_type not in (19, 20):  # not an IDR picture: the POC and reference pictures are signalled
        bits.skip(sps.poc_lsb_bits)
        if not bits.flag():  # short_term_ref_pic_set_sps_flag
            _short_term_rps(bits, sps.rps, in_slice=True)
        elif len(sps.rps) > 1:
            bits.skip((len(sps.rps) - 1).bit_length())
        if sps.long_term:
            from_sps = bits.ue(sps.long_term_sps) if sps.long_term_sps else 0
            for i in range(from_sps + bits.ue(32)):
                if i < from_sps:
                    bits.skip((sps.long_term_sps - 1).bit_length())
                else:
                    bits.skip(sps.poc_lsb_bits + 1)
                if bits.flag():  # delta_poc_msb_present_flag
                    bits.ue()
        if sps.temporal_mvp:
            bits.skip(1)
    if sps.sao:
        bits.skip(2 if sps.chroma_array_type else 1)
    qp = pps.init_qp + bits.se()
    if not -6 * (sps.bit_depth - 8) <= qp <= 51:
        raise _Malformed(f"slice QP {qp} out of range")
    return qp, pps


def hevc_qp(data: bytes, config: bytes) -> tuple[float, bool] | None:
    """(slice QP averaged over the slice segments weighted by their coded size, whether the picture may bypass
    transform and quantisation) of an HEVC image item's ``data`` and ``hvcC`` payload, or None when the stream
    cannot be read."""
    try:
        length_size, parameter_sets = _hvcc(config)
        spss: dict[int, _Sps] = {}
        ppss: dict[int, _Pps] = {}
        total = weight = 0.0
        bypass, qp = False, None
        for nal in [*parameter_sets, *_length_prefixed(data, length_size)]:
            nal_type, layer = (nal[0] >> 1) & 0x3F, ((nal[0] & 1) << 5) | (nal[1] >> 3)
            if layer:  # a layer above the base one (layered HEVC) is another image
                continue
            if nal_type == 33:
                sps_id, sps = _sps(_rbsp(nal))
                spss[sps_id] = sps
            elif nal_type == 34:
                pps_id, pps = _pps(_rbsp(nal))
                ppss[pps_id] = pps
            elif nal_type <= 9 or 16 <= nal_type <= 21:  # a slice segment
                segment_qp, pps = _slice_qp(_rbsp(nal, _HEADER_BYTES), nal_type, spss, ppss)
                qp = segment_qp if segment_qp is not None else qp
                if qp is None:
                    raise _Malformed("dependent slice segment first")
                total += qp * len(nal)
                weight += len(nal)
                bypass = bypass or pps.transquant_bypass
        return (total / weight, bypass) if weight else None
    except _Malformed:
        return None


# --- AV1 -----------------------------------------------------------------------------------------------

_OBU_SEQUENCE_HEADER, _OBU_FRAME_HEADER, _OBU_TILE_GROUP, _OBU_FRAME = 1, 3, 4, 6
_SELECT = 2  # SELECT_SCREEN_CONTENT_TOOLS, SELECT_INTEGER_MV
_KEY_FRAME, _INTRA_ONLY_FRAME, _SWITCH_FRAME = 0, 2, 3


def _obus(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, temporal id, spatial id, payload) of each OBU of a low-overhead AV1 stream (AV1 5.3)."""
    pos, count = 0, 0
    while pos < len(data):
        if count >= _MAX_OBUS:
            raise _Malformed("too many OBUs")
        header = data[pos]
        if header & 0x80:
            raise _Malformed("OBU forbidden bit set")
        kind, extension, has_size = (header >> 3) & 15, header & 4, header & 2
        pos += 1
        temporal = spatial = 0
        if extension:
            if pos >= len(data):
                raise _Malformed("OBU extension cut short")
            temporal, spatial = data[pos] >> 5, (data[pos] >> 3) & 3
            pos += 1
        if has_size:
            size = shift = 0
            for i in range(8):  # leb128
                if pos >= len(data):
                    raise _Malformed("OBU size cut short")
                byte = data[pos]
                pos += 1
                size |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
                if i == 7:
                    raise _Malformed("OBU size too long")
        else:
            size = len(data) - pos
        if pos + size > len(data):
            raise _Malformed("OBU runs past the data")
        yield kind, temporal, spatial, data[pos : pos + size]
        pos += size
        count += 1


@dataclass(frozen=True)
class _SequenceHeader:
    """What a frame header needs of its sequence header (AV1 5.5)."""

    reduced: bool
    decoder_model: bool
    equal_picture_interval: bool
    buffer_removal_bits: int
    presentation_time_bits: int
    op_decoder_models: tuple[tuple[int, bool], ...]  # (operating_point_idc, decoder_model_present_for_this_op)
    width_bits: int
    height_bits: int
    max_width: int
    max_height: int
    frame_id_bits: int  # 0: no frame ids
    delta_frame_id_bits: int
    sb128: bool
    screen_content: int
    integer_mv: int
    order_hint_bits: int
    ref_frame_mvs: bool
    superres: bool
    planes: int
    separate_uv_delta_q: bool


def _sequence_header(payload: bytes) -> _SequenceHeader:
    """What frame headers need of a sequence header OBU's payload (AV1 5.5.1)."""
    bits = _Bits(payload)
    profile = bits.u(3)
    bits.skip(1)  # still_picture
    reduced = bits.flag()
    decoder_model = equal_interval = False
    removal_bits = presentation_bits = delay_bits = 0
    ops: list[tuple[int, bool]] = []
    if reduced:
        bits.skip(5)
        ops.append((0, False))
    else:
        if bits.flag():  # timing_info_present_flag
            bits.skip(64)
            equal_interval = bits.flag()
            if equal_interval:
                bits.ue()  # num_ticks_per_picture_minus_1: uvlc(), read as exp-Golomb (32 zeros at most)
            decoder_model = bits.flag()
            if decoder_model:
                delay_bits = bits.u(5) + 1
                bits.skip(32)
                removal_bits, presentation_bits = bits.u(5) + 1, bits.u(5) + 1
        initial_display_delay = bits.flag()
        for _ in range(bits.u(5) + 1):
            idc = bits.u(12)
            if bits.u(5) > 7:
                bits.skip(1)  # seq_tier
            present = decoder_model and bits.flag()
            if present:
                bits.skip(2 * delay_bits + 1)
            if initial_display_delay and bits.flag():
                bits.skip(4)
            ops.append((idc, present))
    width_bits, height_bits = bits.u(4) + 1, bits.u(4) + 1
    max_width, max_height = bits.u(width_bits) + 1, bits.u(height_bits) + 1
    frame_id_bits = delta_frame_id_bits = 0
    if not reduced and bits.flag():  # frame_id_numbers_present_flag
        delta_frame_id_bits = bits.u(4) + 2
        frame_id_bits = bits.u(3) + 1 + delta_frame_id_bits
    sb128 = bits.flag()
    bits.skip(2)  # enable_filter_intra, enable_intra_edge_filter
    screen_content = integer_mv = _SELECT
    order_hint_bits = 0
    ref_frame_mvs = False
    if not reduced:
        bits.skip(4)  # interintra compound, masked compound, warped motion, dual filter
        order_hint = bits.flag()
        if order_hint:
            bits.skip(1)  # enable_jnt_comp
            ref_frame_mvs = bits.flag()
        screen_content = _SELECT if bits.flag() else bits.u(1)
        if screen_content:
            integer_mv = _SELECT if bits.flag() else bits.u(1)
        if order_hint:
            order_hint_bits = bits.u(3) + 1
    superres = bits.flag()
    bits.skip(2)  # enable_cdef, enable_restoration
    planes, separate_uv = _color_config(bits, profile)
    return _SequenceHeader(
        reduced, decoder_model, equal_interval, removal_bits, presentation_bits, tuple(ops), width_bits,
        height_bits, max_width, max_height, frame_id_bits, delta_frame_id_bits, sb128, screen_content, integer_mv,
        order_hint_bits, ref_frame_mvs, superres, planes, separate_uv,
    )  # fmt: skip


def _color_config(bits: _Bits, profile: int) -> tuple[int, bool]:
    """(NumPlanes, separate_uv_delta_q) of a ``color_config()`` (AV1 5.5.2)."""
    high = bits.flag()
    twelve = profile == 2 and high and bits.flag()
    mono = profile != 1 and bits.flag()
    primaries = transfer = matrix = 2
    if bits.flag():  # color_description_present_flag
        primaries, transfer, matrix = bits.u(8), bits.u(8), bits.u(8)
    if mono:
        bits.skip(1)
        return 1, False
    if (primaries, transfer, matrix) == (1, 13, 0):  # sRGB: 4:4:4 and full range, not coded
        return 3, bits.flag()
    bits.skip(1)  # color_range
    subsampled = profile == 0  # 4:2:0; profile 1 is 4:4:4, profile 2 below 12 bits 4:2:2
    if profile == 2 and twelve:
        subsampled = bits.flag() and bits.flag()  # subsampling_x, then subsampling_y
    if subsampled:
        bits.skip(2)  # chroma_sample_position
    return 3, bits.flag()


def _frame_q(
    payload: bytes, seq: _SequenceHeader, temporal: int, spatial: int, refs: list[Any]
) -> tuple[int, bool] | None:
    """(base_q_idx, coded lossless) of a frame header (AV1 5.9.2), up to its ``segmentation_params()``; None for
    a frame shown again (``show_existing_frame``). ``refs`` holds the (upscaled width, height) of the frames in the
    eight reference slots, which an inter frame (a layer of layered AV1) may take its size from; it is updated."""
    bits = _Bits(payload)
    if seq.reduced:
        frame_type, show_frame, error_resilient = _KEY_FRAME, True, True
    else:
        if bits.flag():  # show_existing_frame
            return None
        frame_type, show_frame = bits.u(2), bits.flag()
        if show_frame and seq.decoder_model and not seq.equal_picture_interval:
            bits.skip(seq.presentation_time_bits)
        if not show_frame:
            bits.skip(1)  # showable_frame
        error_resilient = frame_type == _SWITCH_FRAME or (frame_type == _KEY_FRAME and show_frame) or bits.flag()
    intra = frame_type in (_KEY_FRAME, _INTRA_ONLY_FRAME)
    disable_cdf_update = bits.flag()
    screen_content = bits.u(1) if seq.screen_content == _SELECT else seq.screen_content
    integer_mv = 0
    if screen_content:
        integer_mv = bits.u(1) if seq.integer_mv == _SELECT else seq.integer_mv
    bits.skip(seq.frame_id_bits)
    size_override = frame_type == _SWITCH_FRAME or (not seq.reduced and bits.flag())
    bits.skip(seq.order_hint_bits)
    primary_ref_none = intra or error_resilient or bits.u(3) == 7  # primary_ref_frame, 7: none
    if seq.decoder_model and bits.flag():  # buffer_removal_time_present_flag
        for idc, present in seq.op_decoder_models:
            in_layer = (idc >> temporal) & 1 and (idc >> (spatial + 8)) & 1
            if present and (idc == 0 or in_layer):
                bits.skip(seq.buffer_removal_bits)
    every_slot = frame_type == _SWITCH_FRAME or (frame_type == _KEY_FRAME and show_frame)
    refresh = 0xFF if every_slot else bits.u(8)
    if (not intra or refresh != 0xFF) and error_resilient and seq.order_hint_bits:
        bits.skip(8 * seq.order_hint_bits)  # ref_order_hint[i]
    if intra:
        upscaled, width, height = _frame_size(bits, seq, size_override)
        if screen_content and upscaled == width:
            bits.skip(1)  # allow_intrabc
    else:
        if seq.order_hint_bits and bits.flag():  # frame_refs_short_signaling: slots derived from order hints
            raise _Malformed("frame_refs_short_signaling is not read")
        slots = []
        for _ in range(7):
            slots.append(bits.u(3))
            bits.skip(seq.delta_frame_id_bits)
        found = None
        if size_override and not error_resilient:
            for slot in slots:  # frame_size_with_refs()
                if bits.flag():  # found_ref
                    found = refs[slot]
                    if found is None:
                        raise _Malformed("size from an empty reference slot")
                    break
        if found is None:
            upscaled, width, height = _frame_size(bits, seq, size_override)
        else:
            upscaled, height = found
            width = _superres(bits, seq, upscaled)
        if not integer_mv:
            bits.skip(1)  # allow_high_precision_mv
        if not bits.flag():  # is_filter_switchable
            bits.skip(2)  # interpolation_filter
        bits.skip(1)  # is_motion_mode_switchable
        if not error_resilient and seq.ref_frame_mvs:
            bits.skip(1)  # use_ref_frame_mvs
    for slot in range(8):
        if refresh >> slot & 1:
            refs[slot] = (upscaled, height)
    if not (seq.reduced or disable_cdf_update):
        bits.skip(1)  # disable_frame_end_update_cdf
    _tile_info(bits, seq, width, height)
    # quantization_params()
    base_q_idx = bits.u(8)
    deltas = [_delta_q(bits)]
    if seq.planes > 1:
        different_uv = seq.separate_uv_delta_q and bits.flag()
        u_dc, u_ac = _delta_q(bits), _delta_q(bits)
        v_dc, v_ac = (_delta_q(bits), _delta_q(bits)) if different_uv else (u_dc, u_ac)
        deltas += [u_dc, u_ac, v_dc, v_ac]
    if bits.flag():  # using_qmatrix: qm_y, qm_u and (with separate_uv_delta_q) qm_v
        bits.skip(12 if seq.separate_uv_delta_q else 8)
    # segmentation_params(): a segment may code another q index than the frame's
    segment_q = [0]
    if bits.flag():  # segmentation_enabled
        coded = primary_ref_none
        if not primary_ref_none:
            if bits.flag():  # segmentation_update_map
                bits.skip(1)  # segmentation_temporal_update
            coded = bits.flag()  # segmentation_update_data
        segment_q = []
        for _ in range(8 if coded else 0):
            q = 0
            for feature, (size, signed) in enumerate(_SEGMENT_FEATURES):
                if bits.flag():
                    value = bits.su(1 + size) if signed else bits.u(size)
                    q = value if feature == 0 else q
            segment_q.append(q)
    # segments kept from a reference frame are not known here: such a frame does not count as lossless
    lossless = bool(segment_q) and not any(deltas) and all(base_q_idx + q <= 0 for q in segment_q)
    return base_q_idx, lossless


def _frame_size(bits: _Bits, seq: _SequenceHeader, size_override: bool) -> tuple[int, int, int]:
    """(upscaled width, frame width, frame height) of ``frame_size()`` and ``render_size()`` (AV1 5.9.5-6)."""
    upscaled, height = seq.max_width, seq.max_height
    if size_override:
        upscaled, height = bits.u(seq.width_bits) + 1, bits.u(seq.height_bits) + 1
    width = _superres(bits, seq, upscaled)
    if bits.flag():  # render_and_frame_size_different
        bits.skip(32)
    return upscaled, width, height


def _superres(bits: _Bits, seq: _SequenceHeader, upscaled: int) -> int:
    """The coded frame width of ``superres_params()`` (AV1 5.9.8)."""
    if seq.superres and bits.flag():  # use_superres
        denominator = bits.u(3) + 9
        return (upscaled * 8 + denominator // 2) // denominator
    return upscaled


_SEGMENT_FEATURES = ((8, True), (6, True), (6, True), (6, True), (6, True), (3, False), (0, False), (0, False))
"""(bits, signed) of each segmentation feature: alt_q, the four loop filter levels, the reference frame, skip
and global motion (AV1 5.9.14)."""


def _delta_q(bits: _Bits) -> int:
    return bits.su(7) if bits.flag() else 0


def _tile_log2(block: int, target: int) -> int:
    k = 0
    while (block << k) < target:
        k += 1
    return k


def _tile_info(bits: _Bits, seq: _SequenceHeader, width: int, height: int) -> None:
    """Reads past ``tile_info()`` (AV1 5.9.15)."""
    mi_cols, mi_rows = 2 * ((width + 7) >> 3), 2 * ((height + 7) >> 3)
    shift = 5 if seq.sb128 else 4
    sb_cols, sb_rows = (mi_cols + (1 << shift) - 1) >> shift, (mi_rows + (1 << shift) - 1) >> shift
    sb_size = shift + 2
    max_width_sb, max_area_sb = 4096 >> sb_size, (4096 * 2304) >> (2 * sb_size)
    min_log2_cols = _tile_log2(max_width_sb, sb_cols)
    max_log2_cols, max_log2_rows = _tile_log2(1, min(sb_cols, 64)), _tile_log2(1, min(sb_rows, 64))
    min_log2_tiles = max(min_log2_cols, _tile_log2(max_area_sb, sb_rows * sb_cols))
    if bits.flag():  # uniform_tile_spacing_flag
        cols_log2 = min_log2_cols
        while cols_log2 < max_log2_cols and bits.flag():
            cols_log2 += 1
        rows_log2 = max(min_log2_tiles - cols_log2, 0)
        while rows_log2 < max_log2_rows and bits.flag():
            rows_log2 += 1
    else:
        widest = start = cols = 0
        while start < sb_cols:
            size = bits.ns(min(sb_cols - start, max_width_sb)) + 1
            widest, start, cols = max(widest, size), start + size, cols + 1
        area = (sb_rows * sb_cols) >> (min_log2_tiles + 1) if min_log2_tiles else sb_rows * sb_cols
        max_height_sb = max(area // widest, 1)
        start = rows = 0
        while start < sb_rows:
            start += bits.ns(min(sb_rows - start, max_height_sb)) + 1
            rows += 1
        cols_log2, rows_log2 = _tile_log2(1, cols), _tile_log2(1, rows)
    if cols_log2 or rows_log2:
        bits.skip(cols_log2 + rows_log2 + 2)  # context_update_tile_id, tile_size_bytes_minus_1


def av1_q_index(data: bytes, config: bytes) -> tuple[int, bool] | None:
    """(``base_q_idx``, coded lossless) of the last frame of an AV1 image item (its top layer, when the item is
    layered: the picture shown), from the item's ``data`` and the ``configOBUs`` of its ``av1C``; None when the
    stream cannot be read."""
    try:
        seq: _SequenceHeader | None = None
        refs: list[Any] = [None] * 8
        last = None
        for kind, temporal, spatial, payload in [*_obus(config), *_obus(data)]:
            if kind == _OBU_SEQUENCE_HEADER:
                seq = _sequence_header(payload)
            elif kind in (_OBU_FRAME_HEADER, _OBU_FRAME):
                if seq is None:
                    raise _Malformed("frame before the sequence header")
                last = _frame_q(payload, seq, temporal, spatial, refs) or last
        return last
    except _Malformed:
        return None


# --- estimates -----------------------------------------------------------------------------------------

# The q index aom codes a still image at for each quality 0..100, through libheif's aom plugin or libavif (Pillow's
# AVIF plugin) with their defaults, measured by benchmarks/coded_quality.py (aom 3.14 and 3.15; the same for any
# picture, size, bit depth, chroma or speed). Both hand aom the quantizer ((100 - quality) * 63 + 50) // 100 as its
# cq-level: with tune=psnr aom codes the q index of aom's quantizer_to_qindex table for it (4 per step, then 249
# and 255), with tune=ssim, the default of both, the higher q indexes below.
_AOM_Q_INDEX = (
    255, 255, 255, 249, 249, 249, 244, 244, 240, 240, 236, 236, 232, 232, 228, 228, 224, 224, 220, 220,
    216, 216, 212, 212, 208, 208, 204, 204, 200, 200, 196, 196, 192, 192, 188, 184, 184, 180, 180, 176,
    172, 172, 168, 168, 164, 160, 160, 156, 156, 152, 148, 148, 144, 144, 140, 136, 132, 132, 128, 124,
    120, 120, 116, 112, 108, 108, 104, 100, 96, 96, 92, 88, 84, 84, 80, 76, 72, 72, 68, 64,
    60, 60, 56, 52, 48, 48, 44, 40, 36, 36, 32, 28, 24, 24, 20, 16, 12, 12, 8, 4,
    0,
)  # fmt: skip


def x265_qp(quality: int) -> int:
    """The slice QP libheif's x265 plugin codes a still image at for a 0..100 ``quality``.

    The plugin sets x265's CRF to ``(100 - quality) / 2``; for a single picture x265's rate control then
    codes it 3 to 3.5 QP lower, whatever the picture, its size, bit depth, chroma and the preset
    (benchmarks/coded_quality.py measures it: x265 4.2 and 4.3)."""
    return max(0, (94 - quality) // 2)


def _inverse(coded: Callable[[int], int], value: float) -> tuple[int, int]:
    """(quality, ±error) that a quantizer ``value`` stands for, for an encoder that codes quality ``q`` at
    ``coded(q)`` (non-increasing in ``q``): the middle of the qualities coded at ``value`` and half their spread.
    A value the encoder never codes (an average over tiles, another encoder) lies between two neighbouring
    qualities: the nearer one, ±2."""
    qualities = [q for q in range(101) if coded(q) == value]
    if qualities:
        low, high = qualities[0], qualities[-1]
        return (low + high + 1) // 2, (high - low + 1) // 2
    finer = [q for q in range(101) if coded(q) < value]  # the qualities coded at a finer quantizer
    if not finer:
        return 100, 2
    if finer[0] == 0:
        return 0, 2
    high = finer[0]
    low = high - 1
    return (high if coded(low) - value > value - coded(high) else low), 2


def av1_quality(q_index: float) -> tuple[int, int]:
    """(quality, ±error) on libheif's 0..100 scale that an AV1 ``base_q_idx`` stands for (libaom through
    libheif or libavif, their default tune=ssim)."""
    return _inverse(lambda quality: _AOM_Q_INDEX[quality], q_index)


def hevc_quality(qp: float) -> tuple[int, int]:
    """(quality, ±error) on libheif's 0..100 scale that an HEVC slice QP stands for (x265 through libheif)."""
    return _inverse(x265_qp, qp)


def coded_quality(handle: Handle) -> dict[str, Any] | None:
    """What the coded stream of a top-level image (``handle``) says of the quality it was coded at, or None.

    ``{"codec": "HEVC" or "AV1", "quantizer": float, "quality": int, "error": int, "lossless": bool}``:
    the HEVC slice QP or the AV1 ``base_q_idx``, averaged over a grid's tiles weighted by their coded size;
    the quality libheif's encoders code at that quantizer (-1 for a lossless stream) and the ± of that
    estimate. None for another codec (JPEG, uncompressed...), or a stream or file that cannot be read."""
    ctx = handle.ctx
    item = int(lib.heif_image_handle_get_item_id(handle.ptr))
    try:
        with ctx.lock:
            kind = _items.item_type(ctx.ptr, item)
            coded = [item]
            if kind in ("grid", "iovl", "iden"):  # derived images: the coded images they are made of
                coded = next((targets for ref, targets in _items.references(ctx.ptr, item) if ref == "dimg"), [])
                kinds = {_items.item_type(ctx.ptr, tile) for tile in set(coded[:_MAX_TILES])}
                if not coded or len(coded) > _MAX_TILES or len(kinds) != 1:
                    return None
                (kind,) = kinds
            if kind not in _READERS:
                return None
            try:
                properties = _boxes.item_properties(file_data(ctx.source), set(coded))
            except (HeifError, IndexError):  # damaged, or no meta box (a "mini" file: AV1 data holds its config)
                properties = {}
            data = {tile: _items.item_data(ctx.ptr, tile, compressed=True)[0] for tile in set(coded)}
    except HeifError:
        return None
    codec, config_kind, read, estimate = _READERS[kind]
    total = weight = 0.0
    lossless = True
    for tile, stream in data.items():
        config = next((prop.payload for prop in properties.get(tile, []) if prop.kind == config_kind), None)
        found = read(stream, config)
        if found is None:
            return None
        size = len(stream) * coded.count(tile)  # a tile shown twice counts twice
        total += found[0] * size
        weight += size
        lossless = lossless and found[1]
    if not weight:
        return None
    quantizer = total / weight
    quality, error = (-1, 0) if lossless else estimate(quantizer)
    return {"codec": codec, "quantizer": quantizer, "quality": quality, "error": error, "lossless": lossless}


def _read_hevc(data: bytes, config: bytes | None) -> tuple[float, bool] | None:
    found = hevc_qp(data, config) if config is not None else None  # the parameter sets are in hvcC
    if found is None:
        return None
    qp, bypass = found
    # x265 codes a lossless picture at QP 4 with transform and quantisation bypassed; its cu-lossless option
    # (libheif's complexity >= 70) enables the bypass at any QP, for the blocks where it pays off only
    return qp, bypass and qp == 4


def _read_av1(data: bytes, config: bytes | None) -> tuple[float, bool] | None:
    return av1_q_index(data, config[4:] if config is not None else b"")  # av1C: 4 bytes, then configOBUs


_READERS: dict[str, tuple[str, bytes, Any, Any]] = {
    "hvc1": ("HEVC", b"hvcC", _read_hevc, hevc_quality),
    "av01": ("AV1", b"av1C", _read_av1, av1_quality),
}
"""Item type -> (codec, configuration property, reader of (quantizer, lossless), quality estimate)."""
