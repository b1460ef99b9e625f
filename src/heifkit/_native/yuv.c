/* YCbCr planes -> interleaved 8-bit RGB/RGBA with libheif 1.23's arithmetic, written so that the compiler
   vectorises it, on several threads (row bands).

   libheif's decode to RGB converts with the cheapest chain of its colour operations that its default
   options allow (nearest-neighbour chroma); measured on every corpus file (see docs/performance.md) that
   chain is one of:
   - 4:2:0, full range (any bit depth; deeper samples are first shifted down to 8 bits, truncating):
     integer arithmetic with the coefficients rounded to 8 fractional bits;
   - anything else (4:2:2, 4:4:4, limited range): single-precision float at the samples' bit depth,
     rounded by adding 0.5 and truncating, then (deeper than 8 bits) shifted down to 8 bits.
   The coefficients come from the matrix coefficients code (ITU-T H.273) the way libheif derives them,
   in float. Compile with -ffp-contract=off: a fused multiply-add rounds differently. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The row functions are compiled twice on x86-64 Linux, for AVX2 and for the baseline, and the loader
   picks one for the CPU it runs on (GCC/Clang function multi-versioning): AVX2 halves the time. */
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define HK_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef HK_CLONES
#define HK_CLONES
#endif

typedef struct {
  float r_cr, g_cb, g_cr, b_cb;  /* float coefficients */
  int ir_cr, ig_cb, ig_cr, ib_cb;  /* the same, times 256, rounded */
} hk_yuv_coeffs;

/* Kr/Kb of the matrix codes libheif knows as constants; 0 for the others (then libheif uses BT.601's
   conversion constants as given below). */
static int hk_kr_kb(int matrix, float* kr, float* kb)
{
  switch (matrix) {
    case 1: *kr = 0.2126f; *kb = 0.0722f; return 1;
    case 4: *kr = 0.30f; *kb = 0.11f; return 1;
    case 5: case 6: *kr = 0.299f; *kb = 0.114f; return 1;
    case 7: *kr = 0.212f; *kb = 0.087f; return 1;
    case 9: case 10: *kr = 0.2627f; *kb = 0.0593f; return 1;
    default: return 0;
  }
}

static hk_yuv_coeffs hk_coeffs_for(int matrix)
{
  hk_yuv_coeffs c;
  float kr, kb;
  if (hk_kr_kb(matrix, &kr, &kb)) {
    /* evaluated in float, left to right, as libheif's expressions are */
    c.r_cr = 2.0f * (1.0f - kr);
    c.g_cb = 2.0f * kb * (1.0f - kb) / (kb + kr - 1.0f);
    c.g_cr = 2.0f * kr * (1.0f - kr) / (kb + kr - 1.0f);
    c.b_cb = 2.0f * (1.0f - kb);
  } else {
    c.r_cr = 1.402f;
    c.g_cb = -0.344136f;
    c.g_cr = -0.714136f;
    c.b_cb = 1.772f;
  }
  c.ir_cr = (int)lroundf(256.0f * c.r_cr);
  c.ig_cb = (int)lroundf(256.0f * c.g_cb);
  c.ig_cr = (int)lroundf(256.0f * c.g_cr);
  c.ib_cb = (int)lroundf(256.0f * c.b_cb);
  return c;
}

typedef struct {
  const uint8_t* y; const uint8_t* cb; const uint8_t* cr; const uint8_t* a;
  size_t y_stride, cb_stride, cr_stride, a_stride, dst_stride;
  uint8_t* dst;
  uint32_t width, x0, y0, row_begin, row_end;
  void* chroma_row;  /* scratch: one row of Cb and one of Cr, widened (float path, 4:2:x) */
  int bits, alpha_bits, shift_x, shift_y, channels, bgr, full_range;
  hk_yuv_coeffs c;
} hk_yuv_job;

static inline int hk_clamp(int v, int maxval) { return v < 0 ? 0 : (v > maxval ? maxval : v); }

/* The row loops below are written for the vectoriser: what changes a loop's shape (the sample type, 3 or
   4 channels, the chroma subsampling) is a macro parameter, one function per combination; subsampled
   rows go in pairs of pixels sharing a chroma sample (plain strided loads, no gathers); and the loops
   have no branches (BGR is a select; full range computes the limited-range formula with an offset of 0 and
   factors of 1, which leave every value as it is). */

/* Store one pixel (r, g, b) at p, in BGR order with `bgr`, with an opaque 4th byte when C is 4 (then as one
   32-bit word on little-endian machines: the vectoriser interleaves words far better than bytes). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HK_STORE4(p, r, g, b)                                                                            \
  do {                                                                                                   \
    uint32_t w_ = (uint32_t)(bgr ? (b) : (r)) | (uint32_t)(g) << 8 | (uint32_t)(bgr ? (r) : (b)) << 16    \
                  | 0xFF000000u;                                                                         \
    memcpy((p), &w_, 4);                                                                                 \
  } while (0)
#else
#define HK_STORE4(p, r, g, b)                                                                            \
  do {                                                                                                   \
    (p)[0] = (uint8_t)(bgr ? (b) : (r)); (p)[1] = (uint8_t)(g); (p)[2] = (uint8_t)(bgr ? (r) : (b));      \
    (p)[3] = 255;                                                                                        \
  } while (0)
#endif
#define HK_STORE(p, C, r, g, b)                                                                          \
  do {                                                                                                   \
    if ((C) == 4) {                                                                                      \
      HK_STORE4(p, r, g, b);                                                                             \
    } else {                                                                                             \
      (p)[0] = (uint8_t)(bgr ? (b) : (r));                                                               \
      (p)[1] = (uint8_t)(g);                                                                             \
      (p)[2] = (uint8_t)(bgr ? (r) : (b));                                                               \
    }                                                                                                    \
  } while (0)

/* libheif's integer 4:2:0 conversion (samples shifted down to 8 bits first): one pixel of luma yv with
   the chroma offsets of its pair. */
#define HK_INT_OFFSETS(cbv, crv)                                                                         \
  const int cb = ((int)(cbv) >> shift) - 128, cr = ((int)(crv) >> shift) - 128;                          \
  const int ro = (rc * cr + 128) >> 8, go = (gb * cb + gc * cr + 128) >> 8, bo = (bb * cb + 128) >> 8;
#define HK_INT_PIXEL(p, C, yv)                                                                           \
  do {                                                                                                   \
    const int yy_ = (int)(yv) >> shift;                                                                  \
    HK_STORE(p, C, hk_clamp(yy_ + ro, 255), hk_clamp(yy_ + go, 255), hk_clamp(yy_ + bo, 255));            \
  } while (0)

/* libheif's float conversion at the samples' bit depth, rounded by adding 0.5 and truncating toward zero,
   clamped to [0, maxval], then shifted down to 8 bits. Clamping the float to [0, maxval] before
   truncating gives the same integers (and vectorises). */
static inline int hk_round_clamp(float v, float maxval)
{
  v = v < 0.0f ? 0.0f : v;
  v = v > maxval ? maxval : v;
  return (int)v;
}
#define HK_FLOAT_CHROMA(cbv, crv)                                                                        \
  const float cb = (float)((int)(cbv) - half) * cs, cr = (float)((int)(crv) - half) * cs;                \
  const float rcr = rc * cr, gcb = gb * cb, gcr = gc * cr, bcb = bb * cb;
#define HK_FLOAT_PIXEL(p, C, yv)                                                                         \
  do {                                                                                                   \
    const float y_ = ((float)(int)(yv) - offset) * ys;                                                   \
    HK_STORE(p, C, hk_round_clamp(y_ + rcr + 0.5f, maxf) >> shift,                                       \
             hk_round_clamp(y_ + gcb + gcr + 0.5f, maxf) >> shift,                                       \
             hk_round_clamp(y_ + bcb + 0.5f, maxf) >> shift);                                            \
  } while (0)

#define HK_INT_SETUP                                                                                     \
  const int shift = j->bits - 8, bgr = j->bgr;                                                           \
  const int rc = j->c.ir_cr, gb = j->c.ig_cb, gc = j->c.ig_cr, bb = j->c.ib_cb;
#define HK_FLOAT_SETUP                                                                                   \
  const int shift = j->bits - 8, half = 1 << (j->bits - 1), bgr = j->bgr;                                \
  const float maxf = (float)((1 << j->bits) - 1);                                                        \
  const float offset = j->full_range ? 0.0f : (float)(16 << (j->bits - 8));                             \
  const float ys = j->full_range ? 1.0f : 1.1689f, cs = j->full_range ? 1.0f : 1.1429f;                 \
  const float rc = j->c.r_cr, gb = j->c.g_cb, gc = j->c.g_cr, bb = j->c.b_cb;

/* One row, chroma subsampled horizontally by 2: an odd first pixel alone, then pairs, then an odd last. */
#define HK_ROW_PAIRS(NAME, T, C, SETUP, CHROMA, PIXEL)                                                   \
  HK_CLONES static void NAME(const hk_yuv_job* j, uint32_t py, uint8_t* __restrict out)                           \
  {                                                                                                      \
    SETUP                                                                                                \
    const T* __restrict yr = (const T*)(j->y + (size_t)py * j->y_stride);                                 \
    const T* __restrict cbr = (const T*)(j->cb + (size_t)(py >> j->shift_y) * j->cb_stride);              \
    const T* __restrict crr = (const T*)(j->cr + (size_t)(py >> j->shift_y) * j->cr_stride);              \
    uint32_t x = 0, px = j->x0;                                                                           \
    if ((px & 1) && x < j->width) {                                                                       \
      CHROMA(cbr[px >> 1], crr[px >> 1]) PIXEL(out, C, yr[px]);                                          \
      x++; px++;                                                                                          \
    }                                                                                                     \
    const uint32_t pairs = (j->width - x) / 2;                                                            \
    const T* __restrict y2 = yr + px;                                                                     \
    const T* __restrict cb2 = cbr + (px >> 1);                                                            \
    const T* __restrict cr2 = crr + (px >> 1);                                                            \
    uint8_t* __restrict o = out + (size_t)x * C;                                                          \
    for (uint32_t k = 0; k < pairs; k++) {                                                                \
      CHROMA(cb2[k], cr2[k])                                                                              \
      PIXEL(o + (size_t)k * 2 * C, C, y2[2 * k]);                                                         \
      PIXEL(o + (size_t)k * 2 * C + C, C, y2[2 * k + 1]);                                                 \
    }                                                                                                     \
    x += 2 * pairs; px += 2 * pairs;                                                                      \
    if (x < j->width) {                                                                                   \
      CHROMA(cbr[px >> 1], crr[px >> 1]) PIXEL(out + (size_t)x * C, C, yr[px]);                          \
    }                                                                                                     \
    if (C == 4) hk_alpha_##T(j, py, out);                                                                 \
  }

/* One row, chroma not subsampled horizontally (4:4:4). */
#define HK_ROW_FULL(NAME, T, C, SETUP, CHROMA, PIXEL)                                                    \
  HK_CLONES static void NAME(const hk_yuv_job* j, uint32_t py, uint8_t* __restrict out)                           \
  {                                                                                                      \
    SETUP                                                                                                \
    const T* __restrict yr = (const T*)(j->y + (size_t)py * j->y_stride) + j->x0;                         \
    const T* __restrict cbr = (const T*)(j->cb + (size_t)(py >> j->shift_y) * j->cb_stride) + j->x0;      \
    const T* __restrict crr = (const T*)(j->cr + (size_t)(py >> j->shift_y) * j->cr_stride) + j->x0;      \
    for (uint32_t x = 0; x < j->width; x++) {                                                             \
      CHROMA(cbr[x], crr[x])                                                                              \
      PIXEL(out + (size_t)x * C, C, yr[x]);                                                               \
    }                                                                                                     \
    if (C == 4) hk_alpha_##T(j, py, out);                                                                 \
  }

/* One row, chroma subsampled horizontally by 2, float path: the row's chroma samples are first repeated
   into a scratch row (a plain loop), then converted as 4:4:4 (the pairs loop does not vectorise in float). */
#define HK_ROW_WIDENED(NAME, T, C, SETUP, CHROMA, PIXEL)                                                 \
  HK_CLONES static void NAME(const hk_yuv_job* j, uint32_t py, uint8_t* __restrict out)                 \
  {                                                                                                      \
    SETUP                                                                                                \
    const T* __restrict yr = (const T*)(j->y + (size_t)py * j->y_stride) + j->x0;                         \
    const T* __restrict cbr = (const T*)(j->cb + (size_t)(py >> j->shift_y) * j->cb_stride);              \
    const T* __restrict crr = (const T*)(j->cr + (size_t)(py >> j->shift_y) * j->cr_stride);              \
    T* __restrict ecb = (T*)j->chroma_row;                                                                \
    T* __restrict ecr = ecb + j->width + 2;                                                               \
    const uint32_t first = j->x0 >> 1, count = ((j->x0 + j->width - 1) >> 1) - first + 1;                \
    for (uint32_t k = 0; k < count; k++) {                                                                \
      ecb[2 * k] = ecb[2 * k + 1] = cbr[first + k];                                                       \
      ecr[2 * k] = ecr[2 * k + 1] = crr[first + k];                                                       \
    }                                                                                                     \
    const T* __restrict wcb = ecb + (j->x0 & 1);                                                          \
    const T* __restrict wcr = ecr + (j->x0 & 1);                                                          \
    for (uint32_t x = 0; x < j->width; x++) {                                                             \
      CHROMA(wcb[x], wcr[x])                                                                              \
      PIXEL(out + (size_t)x * C, C, yr[x]);                                                               \
    }                                                                                                     \
    if (C == 4) hk_alpha_##T(j, py, out);                                                                 \
  }

/* The alpha plane, if any, into the 4th byte of each pixel of a row, shifted down to 8 bits. */
#define HK_ALPHA(T)                                                                                      \
  HK_CLONES static void hk_alpha_##T(const hk_yuv_job* j, uint32_t py, uint8_t* __restrict out)                   \
  {                                                                                                      \
    if (!j->a) return;                                                                                   \
    const T* __restrict ar = (const T*)(j->a + (size_t)py * j->a_stride) + j->x0;                         \
    const int shift = j->alpha_bits - 8;                                                                 \
    for (uint32_t x = 0; x < j->width; x++) out[(size_t)x * 4 + 3] = (uint8_t)(ar[x] >> shift);          \
  }
HK_ALPHA(uint8_t)
HK_ALPHA(uint16_t)

HK_ROW_PAIRS(hk_row_int420_uint8_t_3, uint8_t, 3, HK_INT_SETUP, HK_INT_OFFSETS, HK_INT_PIXEL)
HK_ROW_PAIRS(hk_row_int420_uint8_t_4, uint8_t, 4, HK_INT_SETUP, HK_INT_OFFSETS, HK_INT_PIXEL)
HK_ROW_PAIRS(hk_row_int420_uint16_t_3, uint16_t, 3, HK_INT_SETUP, HK_INT_OFFSETS, HK_INT_PIXEL)
HK_ROW_PAIRS(hk_row_int420_uint16_t_4, uint16_t, 4, HK_INT_SETUP, HK_INT_OFFSETS, HK_INT_PIXEL)
HK_ROW_FULL(hk_row_float_uint8_t_3_0, uint8_t, 3, HK_FLOAT_SETUP, HK_FLOAT_CHROMA, HK_FLOAT_PIXEL)
HK_ROW_FULL(hk_row_float_uint8_t_4_0, uint8_t, 4, HK_FLOAT_SETUP, HK_FLOAT_CHROMA, HK_FLOAT_PIXEL)
HK_ROW_WIDENED(hk_row_float_uint8_t_3_1, uint8_t, 3, HK_FLOAT_SETUP, HK_FLOAT_CHROMA, HK_FLOAT_PIXEL)
HK_ROW_WIDENED(hk_row_float_uint8_t_4_1, uint8_t, 4, HK_FLOAT_SETUP, HK_FLOAT_CHROMA, HK_FLOAT_PIXEL)
HK_ROW_FULL(hk_row_float_uint16_t_3_0, uint16_t, 3, HK_FLOAT_SETUP, HK_FLOAT_CHROMA, HK_FLOAT_PIXEL)
HK_ROW_FULL(hk_row_float_uint16_t_4_0, uint16_t, 4, HK_FLOAT_SETUP, HK_FLOAT_CHROMA, HK_FLOAT_PIXEL)
HK_ROW_WIDENED(hk_row_float_uint16_t_3_1, uint16_t, 3, HK_FLOAT_SETUP, HK_FLOAT_CHROMA, HK_FLOAT_PIXEL)
HK_ROW_WIDENED(hk_row_float_uint16_t_4_1, uint16_t, 4, HK_FLOAT_SETUP, HK_FLOAT_CHROMA, HK_FLOAT_PIXEL)

typedef void (*hk_row_fn)(const hk_yuv_job*, uint32_t, uint8_t*);

static hk_row_fn hk_row_for(const hk_yuv_job* j)
{
  const int wide = j->bits > 8, four = j->channels == 4;
  if (j->shift_x == 1 && j->shift_y == 1 && j->full_range) {
    if (wide) return four ? hk_row_int420_uint16_t_4 : hk_row_int420_uint16_t_3;
    return four ? hk_row_int420_uint8_t_4 : hk_row_int420_uint8_t_3;
  }
  if (wide) {
    if (j->shift_x) return four ? hk_row_float_uint16_t_4_1 : hk_row_float_uint16_t_3_1;
    return four ? hk_row_float_uint16_t_4_0 : hk_row_float_uint16_t_3_0;
  }
  if (j->shift_x) return four ? hk_row_float_uint8_t_4_1 : hk_row_float_uint8_t_3_1;
  return four ? hk_row_float_uint8_t_4_0 : hk_row_float_uint8_t_3_0;
}

/* 4-byte pixels to 3-byte ones (the vectoriser handles 4-byte pixels far better than 3-byte ones, so 3-channel
   rows are converted as 4-byte pixels into a scratch row, then packed). */
HK_CLONES static void hk_pack3(const uint8_t* __restrict src, uint8_t* __restrict dst, uint32_t width)
{
  for (uint32_t x = 0; x < width; x++) {
    dst[3 * (size_t)x] = src[4 * (size_t)x];
    dst[3 * (size_t)x + 1] = src[4 * (size_t)x + 1];
    dst[3 * (size_t)x + 2] = src[4 * (size_t)x + 2];
  }
}

/* Convert a band of rows (one thread's work); returns NULL, or non-NULL when out of memory. */
static void* hk_yuv_band(void* arg)
{
  hk_yuv_job job = *(const hk_yuv_job*)arg;
  const int widened = job.shift_x == 1 && !(job.shift_y == 1 && job.full_range);
  uint8_t* scratch = job.channels == 3 ? (uint8_t*)malloc((size_t)job.width * 4) : NULL;
  job.chroma_row = widened ? malloc(((size_t)job.width + 2) * 2 * sizeof(uint16_t)) : NULL;
  if ((job.channels == 3 && !scratch) || (widened && !job.chroma_row)) {
    free(scratch);
    free(job.chroma_row);
    return arg;
  }
  hk_yuv_job four = job;  /* 3 channels: converted as 4 into the scratch row, then packed */
  four.channels = 4;
  four.a = NULL;
  hk_row_fn row = hk_row_for(&four);
  for (uint32_t yy = job.row_begin; yy < job.row_end; yy++) {
    uint8_t* out = job.dst + (size_t)yy * job.dst_stride;
    if (scratch) {
      row(&four, yy + job.y0, scratch);
      hk_pack3(scratch, out, job.width);
    } else {
      row(&job, yy + job.y0, out);
    }
  }
  free(scratch);
  free(job.chroma_row);
  return NULL;
}

#define HK_YUV_MAX_THREADS 16

/* Convert the width x height pixels from (x0, y0) of YCbCr planes (samples of `bits` bits, 1 byte each up to 8 bits, else
   2 bytes native order; chroma planes subsampled by 2^shift_x horizontally and 2^shift_y vertically) to
   `channels` (3 or 4) 8-bit samples per pixel at dst (RGB order, or BGR with `bgr`); with 4 channels the
   4th is the alpha plane shifted to 8 bits, or 255 without one. `matrix` is the H.273 matrix code.
   Returns 0, -1 for arguments outside what this conversion reproduces (see the top of this file), or -2 when
   out of memory (some rows then unwritten). */
int hk_yuv_to_rgb(const uint8_t* y, size_t y_stride, const uint8_t* cb, size_t cb_stride,
                  const uint8_t* cr, size_t cr_stride, const uint8_t* alpha, size_t alpha_stride,
                  int alpha_bits, uint32_t width, uint32_t height, uint32_t x0, uint32_t y0, int bits, int shift_x, int shift_y,
                  int matrix, int full_range, uint8_t* dst, size_t dst_stride, int channels, int bgr,
                  int threads)
{
  if (!y || !cb || !cr || !dst || width == 0 || height == 0 || bits < 8 || bits > 16
      || (channels != 3 && channels != 4) || shift_x < 0 || shift_x > 1 || shift_y < 0 || shift_y > shift_x
      || (alpha && (alpha_bits < 8 || alpha_bits > 16)))
    return -1;
  hk_yuv_job base;
  base.y = y; base.cb = cb; base.cr = cr; base.a = channels == 4 ? alpha : NULL;
  base.y_stride = y_stride; base.cb_stride = cb_stride; base.cr_stride = cr_stride;
  base.a_stride = alpha_stride; base.dst = dst; base.dst_stride = dst_stride;
  base.width = width; base.x0 = x0; base.y0 = y0; base.bits = bits; base.alpha_bits = alpha ? alpha_bits : 8;
  base.shift_x = shift_x; base.shift_y = shift_y; base.channels = channels; base.bgr = bgr ? 1 : 0;
  base.full_range = full_range ? 1 : 0;
  base.c = hk_coeffs_for(matrix);
  if (threads < 1) threads = 1;
  if (threads > HK_YUV_MAX_THREADS) threads = HK_YUV_MAX_THREADS;
  if ((uint32_t)threads > height / 64 + 1) threads = (int)(height / 64 + 1);
  hk_yuv_job jobs[HK_YUV_MAX_THREADS];
  pthread_t ids[HK_YUV_MAX_THREADS];
  int started[HK_YUV_MAX_THREADS] = {0};
  for (int t = 0; t < threads; t++) {
    jobs[t] = base;
    jobs[t].row_begin = (uint32_t)((uint64_t)height * t / threads);
    jobs[t].row_end = (uint32_t)((uint64_t)height * (t + 1) / threads);
  }
  int failed = 0;
  for (int t = 1; t < threads; t++) started[t] = pthread_create(&ids[t], NULL, hk_yuv_band, &jobs[t]) == 0;
  failed |= hk_yuv_band(&jobs[0]) != NULL;
  for (int t = 1; t < threads; t++) {
    void* result = NULL;
    if (started[t]) pthread_join(ids[t], &result);
    else result = hk_yuv_band(&jobs[t]);  /* no thread: do its rows here */
    failed |= result != NULL;
  }
  return failed ? -2 : 0;
}
