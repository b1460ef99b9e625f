"""HDR arithmetic on NumPy arrays: transfer functions, colour primaries, the gain map's upsampling, and applying
a gain map (ISO 21496-1's and Apple's).

Linear light is "extended SDR": 1.0 is SDR white, 203 cd/m² (ITU-R BT.2408, as libavif). Signals are floats
in [0, 1]. The transfer functions follow ITU-T H.273's code points as libavif implements them (``src/colr.c``):
PQ is scaled so that 203 cd/m² is 1.0; HLG is BT.2100's inverse OETF then its OOTF for a 1000 cd/m² display,
applied per channel. Nothing here reads a file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "SDR_WHITE_NITS",
    "to_linear",
    "from_linear",
    "convert_primaries",
    "upsample",
    "apply_iso_gain_map",
    "apply_apple_gain_map",
    "content_light_level",
    "compute_gain_map",
    "downsample",
    "tone_map_to_sdr",
]

SDR_WHITE_NITS = 203.0
_PQ_MAX_NITS = 10000.0
_HLG_PEAK_NITS = 1000.0
_PQ = (0.1593017578125, 78.84375, 0.8359375, 18.8515625, 18.6875)  # m1, m2, c1, c2, c3
_HLG = (0.17883277, 0.28466892, 0.55991073)  # a, b, c


def _bt709_to_linear(v: Any) -> Any:
    v = np.clip(v, 0.0, None)
    return np.where(v < 4.5 * 0.018053968510807, v / 4.5, ((v + 0.09929682680944) / 1.09929682680944) ** (1 / 0.45))


def _bt709_from_linear(v: Any) -> Any:
    v = np.clip(v, 0.0, None)
    return np.where(v < 0.018053968510807, v * 4.5, 1.09929682680944 * v**0.45 - 0.09929682680944)


def _srgb_to_linear(v: Any) -> Any:
    v = np.clip(v, 0.0, 1.0)
    return np.where(
        v < 12.92 * 0.0030412825601275209, v / 12.92, ((v + 0.0550107189475866) / 1.0550107189475866) ** 2.4
    )


def _srgb_from_linear(v: Any) -> Any:
    v = np.clip(v, 0.0, 1.0)
    return np.where(v < 0.0030412825601275209, v * 12.92, 1.0550107189475866 * v ** (1 / 2.4) - 0.0550107189475866)


def _pq_to_linear(v: Any) -> Any:
    m1, m2, c1, c2, c3 = _PQ
    p = np.clip(v, 0.0, 1.0) ** (1 / m2)
    linear = (np.maximum(p - c1, 0.0) / np.maximum(c2 - c3 * p, np.finfo(np.float32).tiny)) ** (1 / m1)
    return linear * (_PQ_MAX_NITS / SDR_WHITE_NITS)


def _pq_from_linear(v: Any) -> Any:
    m1, m2, c1, c2, c3 = _PQ
    y = np.clip(v * (SDR_WHITE_NITS / _PQ_MAX_NITS), 0.0, 1.0) ** m1
    return ((c1 + c2 * y) / (1 + c3 * y)) ** m2


def _hlg_to_linear(v: Any) -> Any:
    a, b, c = _HLG
    v = np.clip(v, 0.0, None)
    scene = np.where(v <= 0.5, v * v / 3.0, (np.exp((v - c) / a) + b) / 12.0)
    return scene**1.2 * (_HLG_PEAK_NITS / SDR_WHITE_NITS)


def _hlg_from_linear(v: Any) -> Any:
    a, b, c = _HLG
    scene = np.clip(v * (SDR_WHITE_NITS / _HLG_PEAK_NITS), 0.0, 1.0) ** (1 / 1.2)
    return np.where(scene <= 1 / 12, np.sqrt(3.0 * scene), a * np.log(np.maximum(12.0 * scene - b, 1e-12)) + c)


def _linear(v: Any) -> Any:
    return np.asarray(v)


_TRANSFERS = {
    1: (_bt709_to_linear, _bt709_from_linear),
    6: (_bt709_to_linear, _bt709_from_linear),
    14: (_bt709_to_linear, _bt709_from_linear),
    15: (_bt709_to_linear, _bt709_from_linear),
    8: (_linear, _linear),
    13: (_srgb_to_linear, _srgb_from_linear),
    16: (_pq_to_linear, _pq_from_linear),
    18: (_hlg_to_linear, _hlg_from_linear),
}
"""H.273 transfer characteristics: (to linear, from linear). Others are read as BT.709's, as libavif does."""


def to_linear(signal: Any, transfer: int) -> Any:
    """Linear light (1.0 = SDR white) of a signal in [0, 1] coded with H.273 ``transfer``."""
    return _TRANSFERS.get(transfer, _TRANSFERS[1])[0](signal).astype(np.float32)


def from_linear(linear: Any, transfer: int) -> Any:
    """The signal in [0, 1] that codes ``linear`` with H.273 ``transfer`` (clipped to what it can hold)."""
    return np.clip(_TRANSFERS.get(transfer, _TRANSFERS[1])[1](linear), 0.0, 1.0).astype(np.float32)


# --- primaries ---------------------------------------------------------------------------------------------

_D65 = (0.3127, 0.3290)
_PRIMARIES = {
    1: ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060), _D65),
    4: ((0.67, 0.33), (0.21, 0.71), (0.14, 0.08), (0.310, 0.316)),
    5: ((0.64, 0.33), (0.29, 0.60), (0.15, 0.06), _D65),
    6: ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070), _D65),
    7: ((0.630, 0.340), (0.310, 0.595), (0.155, 0.070), _D65),
    9: ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046), _D65),
    11: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.314, 0.351)),
    12: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), _D65),
    22: ((0.630, 0.340), (0.295, 0.605), (0.155, 0.077), _D65),
}
"""H.273 colour primaries: red, green, blue and white (x, y)."""

_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


def _xyz(xy: tuple[float, float]) -> Any:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def _to_xyz(primaries: int) -> tuple[Any, Any]:
    red, green, blue, white = _PRIMARIES.get(primaries, _PRIMARIES[1])
    matrix = np.stack([_xyz(red), _xyz(green), _xyz(blue)], axis=1)
    scale = np.linalg.solve(matrix, _xyz(white))
    return matrix * scale, _xyz(white)


def convert_primaries(linear: Any, source: int, target: int) -> Any:
    """Linear RGB in H.273 primaries ``source`` as linear RGB in ``target`` (white points adapted with
    Bradford's transform)."""
    if source == target or _PRIMARIES.get(source) == _PRIMARIES.get(target):
        return linear
    src, src_white = _to_xyz(source)
    dst, dst_white = _to_xyz(target)
    adapt = np.linalg.inv(_BRADFORD) @ np.diag((_BRADFORD @ dst_white) / (_BRADFORD @ src_white)) @ _BRADFORD
    matrix = (np.linalg.inv(dst) @ adapt @ src).astype(np.float32)
    return np.einsum("ij,hwj->hwi", matrix, linear, optimize=True).astype(np.float32)


# --- the gain map ------------------------------------------------------------------------------------------


def upsample(plane: Any, size: tuple[int, int]) -> Any:
    """``plane`` (height, width[, channels]) resized to ``size`` = (width, height) by bilinear interpolation
    between pixel centres (edges repeated)."""
    height, width = plane.shape[:2]
    out_w, out_h = size
    if (width, height) == (out_w, out_h):
        return plane.astype(np.float32)

    def axis(n_in: int, n_out: int) -> tuple[Any, Any, Any]:
        pos = np.clip((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        low = np.floor(pos).astype(np.intp)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (pos - low).astype(np.float32)

    y0, y1, fy = axis(height, out_h)
    x0, x1, fx = axis(width, out_w)
    p = plane.astype(np.float32)
    if p.ndim == 2:
        p = p[:, :, None]
    fx3, fy3 = fx[None, :, None], fy[:, None, None]
    top = p[y0][:, x0] * (1 - fx3) + p[y0][:, x1] * fx3
    bottom = p[y1][:, x0] * (1 - fx3) + p[y1][:, x1] * fx3
    out = top * (1 - fy3) + bottom * fy3
    return out if plane.ndim == 3 else out[:, :, 0]


def apply_iso_gain_map(base: Any, gain: Any, meta: Any, weight: float) -> Any:
    """ISO 21496-1: ``(base + base_offset) * 2 ** (lerp(min, max, gain ** (1 / gamma)) * weight) - alternate_offset``
    per channel, for linear ``base`` (height, width, 3) and ``gain`` in [0, 1] at the same size (1 or 3
    channels)."""
    if gain.ndim == 2:
        gain = gain[:, :, None]
    if gain.shape[2] == 1:
        gain = np.repeat(gain, 3, axis=2)
    lo, hi = np.asarray(meta.gain_map_min, np.float32), np.asarray(meta.gain_map_max, np.float32)
    inverse_gamma = 1.0 / np.asarray(meta.gamma, np.float32)
    log2_boost = lo + (hi - lo) * np.power(np.clip(gain, 0.0, 1.0), inverse_gamma)
    base_offset = np.asarray(meta.base_offset, np.float32)
    alternate_offset = np.asarray(meta.alternate_offset, np.float32)
    return ((base + base_offset) * np.exp2(log2_boost * np.float32(weight)) - alternate_offset).astype(np.float32)


def apply_apple_gain_map(base: Any, gain: Any, headroom: float, weight: float) -> Any:
    """Apple's HDR effect: ``base * (1 + (headroom - 1) * gain)``, the gain map (coded with BT.709's transfer)
    made linear first; a ``weight`` below 1 applies that boost in proportion in log2 (as ISO 21496-1 does)."""
    if gain.ndim == 3:
        gain = gain[:, :, 0]
    boost = 1.0 + (np.float32(headroom) - 1.0) * _bt709_to_linear(gain).astype(np.float32)
    if weight != 1.0:
        boost = np.power(boost, np.float32(weight))
    return (base * boost[:, :, None]).astype(np.float32)


def content_light_level(linear: Any) -> tuple[int, int]:
    """(MaxCLL, MaxFALL) in cd/m² of linear RGB (1.0 = SDR white), as libavif computes them: the brightest
    channel of any pixel, and the mean over the pixels of each one's brightest channel."""
    brightest = np.max(linear, axis=2) if linear.ndim == 3 else linear
    max_cll = int(np.clip(np.round(float(brightest.max(initial=0.0)) * SDR_WHITE_NITS), 0, 65535))
    max_fall = int(np.clip(np.round(float(brightest.mean()) * SDR_WHITE_NITS), 0, 65535))
    return max_cll, max_fall


# --- computing a gain map ----------------------------------------------------------------------------------


def _range_without_outliers(values: Any) -> tuple[float, float]:
    """The range of ``values`` leaving out up to 0.1% of them at each end (as libavif's
    ``avifFindMinMaxWithoutOutliers``, with 0.01-wide buckets): a few extreme pixels do not stretch the map."""
    flat = values.ravel()
    low, high = float(flat.min()), float(flat.max())
    outliers = round(flat.size * 0.001 / 2)
    if high - low <= 0.02 or outliers == 0:
        return low, high
    return float(np.quantile(flat, outliers / flat.size)), float(np.quantile(flat, 1 - outliers / flat.size))


def compute_gain_map(base: Any, alternate: Any, depth: int = 8, base_offset: float = 1 / 64,
                     alternate_offset: float = 1 / 64) -> tuple[Any, Any]:  # fmt: skip
    """A gain map taking linear ``base`` to linear ``alternate`` (both (height, width, 3), the same primaries):
    per channel ``log2((alternate + offset) / (base + offset))``, its range (outliers left out) mapped to
    ``[0, 2**depth - 1]``, gamma 1. Returns the map (uint8 or uint16, (height, width, 3)) and its
    :class:`~heifkit._info.tone_map.ToneMap` (headrooms: log2 of each rendition's brightest channel, at
    least 0)."""
    from .._info.tone_map import ToneMap

    log2_ratio = np.log2((np.maximum(alternate, 0) + alternate_offset) / (np.maximum(base, 0) + base_offset))
    lows, highs = [], []
    for c in range(3):
        low, high = _range_without_outliers(log2_ratio[:, :, c])
        if high - low < 1e-6:
            high = low + 1e-6
        lows.append(low)
        highs.append(high)
    lo, hi = np.asarray(lows, np.float32), np.asarray(highs, np.float32)
    scaled = np.clip((log2_ratio - lo) / (hi - lo), 0.0, 1.0)
    top = (1 << depth) - 1
    coded = np.round(scaled * top).astype(np.uint8 if depth == 8 else np.uint16)
    meta = ToneMap(
        base_hdr_headroom=max(0.0, float(np.log2(max(float(base.max(initial=0.0)), 1.0)))),
        alternate_hdr_headroom=max(0.0, float(np.log2(max(float(alternate.max(initial=0.0)), 1.0)))),
        gain_map_min=[float(v) for v in lows],
        gain_map_max=[float(v) for v in highs],
        gamma=[1.0, 1.0, 1.0],
        base_offset=[base_offset] * 3,
        alternate_offset=[alternate_offset] * 3,
        use_base_colour_space=True,
    )
    return coded, meta


def downsample(linear: Any, factor: int) -> Any:
    """``linear`` (height, width, channels) shrunk by an integer ``factor``: each output pixel the mean of a
    ``factor`` x ``factor`` block (the last row and column of blocks may be smaller)."""
    if factor == 1:
        return linear
    height, width = linear.shape[:2]
    out_h, out_w = -(-height // factor), -(-width // factor)
    padded = np.pad(linear, ((0, out_h * factor - height), (0, out_w * factor - width), (0, 0)), mode="edge")
    return padded.reshape(out_h, factor, out_w, factor, -1).mean(axis=(1, 3)).astype(np.float32)


_KNEE = 0.75


def tone_map_to_sdr(linear: Any) -> Any:
    """An SDR rendition of linear HDR light: each pixel scaled by what a curve gives its brightest channel,
    unchanged up to 0.75 of SDR white and above it ``knee + (1 - knee) * e / (e + 1 - knee)`` for the excess
    ``e`` (smooth at the knee, tending to white)."""
    brightest = np.max(linear, axis=2, keepdims=True)
    excess = np.maximum(brightest - _KNEE, 0.0)
    mapped = np.where(brightest > _KNEE, _KNEE + (1 - _KNEE) * excess / (excess + 1 - _KNEE), brightest)
    scale = np.where(brightest > 0, mapped / np.maximum(brightest, 1e-12), 1.0)
    return np.clip(linear * scale, 0.0, 1.0).astype(np.float32)
