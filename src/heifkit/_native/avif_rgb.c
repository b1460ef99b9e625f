/* 8-bit YCbCr planes -> interleaved 8-bit RGB/RGBA the way libavif converts them (Pillow's AVIF plugin):
   libavif hands 8-bit images in the BT.601, BT.709 and BT.2020 (non-constant luminance) matrices to
   libyuv, whose arithmetic is fixed point with 6 fractional bits and whose chroma is upsampled
   bilinearly with the chroma samples centred between the luma ones (weights 3:1 per direction, 9:3:3:1
   for 4:2:0, rounded once). The first and last rows and columns use their nearest chroma sample only in
   that direction; libyuv writes the last column so even when the width is odd. Used where heifkit
   decodes outside libheif to stand for Pillow's plugin (layered AV1, _dav1d.decode_layered);
   tests/test_read_dav1d.py compares it with Pillow's bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int ub, ug, vg, vr; /* chroma contributions, times 64 */
  int yg, yb;         /* luma scale (times 64 * 65536 / 257) and bias (times 64, with rounding) */
} hk_avif_constants;

/* libyuv's constants by range and matrix. In limited range the blue coefficient is capped at 128 (2.0),
   which libyuv's default build does to fit its SIMD lanes: libavif's results carry that cap. */
static int hk_avif_constants_for(int matrix, int full_range, hk_avif_constants* c)
{
  static const hk_avif_constants limited[3] = {
      {128, 25, 52, 102, 18997, -1160}, /* BT.601 */
      {128, 14, 34, 115, 18997, -1160}, /* BT.709 */
      {128, 12, 42, 107, 19003, -1160}, /* BT.2020 */
  };
  static const hk_avif_constants full[3] = {
      {113, 22, 46, 90, 16320, 32},
      {119, 12, 30, 101, 16320, 32},
      {120, 11, 37, 94, 16320, 32},
  };
  int index;
  switch (matrix) {
    case 2: case 5: case 6: index = 0; break; /* unspecified is BT.601 for libavif */
    case 1: index = 1; break;
    case 9: index = 2; break;
    default: return -1;
  }
  *c = full_range ? full[index] : limited[index];
  return 0;
}

static inline uint8_t hk_avif_clamp(int v)
{
  v >>= 6;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One row of chroma upsampled horizontally by 2 (linear), from one chroma row (t == NULL) or from the
   blend of two, s weighted 3 and t 1 (the rows of 4:2:0 above and below a luma row). */
static void hk_avif_upsample_row(const uint8_t* s, const uint8_t* t, uint8_t* out, uint32_t width)
{
  uint32_t pairs = (width - 1) / 2, x;
  if (!t) {
    out[0] = s[0];
    for (x = 0; x < pairs; x++) {
      out[2 * x + 1] = (uint8_t)((3 * s[x] + s[x + 1] + 2) >> 2);
      out[2 * x + 2] = (uint8_t)((s[x] + 3 * s[x + 1] + 2) >> 2);
    }
    out[width - 1] = s[(width - 1) / 2]; /* libyuv overwrites the last column so, odd widths too */
    return;
  }
  out[0] = (uint8_t)((3 * s[0] + t[0] + 2) >> 2);
  for (x = 0; x < pairs; x++) {
    out[2 * x + 1] = (uint8_t)((9 * s[x] + 3 * s[x + 1] + 3 * t[x] + t[x + 1] + 8) >> 4);
    out[2 * x + 2] = (uint8_t)((3 * s[x] + 9 * s[x + 1] + t[x] + 3 * t[x + 1] + 8) >> 4);
  }
  out[width - 1] = (uint8_t)((3 * s[(width - 1) / 2] + t[(width - 1) / 2] + 2) >> 2);
}

static void hk_avif_row(const uint8_t* y, const uint8_t* u, const uint8_t* v, uint8_t* out, uint32_t width,
                        int channels, int bgr, const hk_avif_constants* c)
{
  int r_at = bgr ? 2 : 0, b_at = bgr ? 0 : 2;
  for (uint32_t x = 0; x < width; x++) {
    int luma = (int)((uint32_t)(y[x] * 0x0101u * (uint32_t)c->yg) >> 16) + c->yb;
    int cb = (int)u[x] - 128, cr = (int)v[x] - 128;
    uint8_t* px = out + (size_t)x * (size_t)channels;
    px[r_at] = hk_avif_clamp(luma + cr * c->vr);
    px[1] = hk_avif_clamp(luma - cb * c->ug - cr * c->vg);
    px[b_at] = hk_avif_clamp(luma + cb * c->ub);
    if (channels == 4)
      px[3] = 255;
  }
}

/* The chroma row pair (upper, lower) for output row py of a 4:2:0 image; lower NULL at the edges. */
static void hk_avif_chroma_rows(uint32_t py, uint32_t height, uint32_t* upper, int* blend, int* upper_weighted)
{
  /* Luma row 0 (and the last row of an even height) sit beside one chroma row; row 2k+1 blends chroma
     rows k (weight 3) and k+1, row 2k+2 blends k+1 (weight 3) and k. */
  if (py == 0 || (height % 2 == 0 && py == height - 1)) {
    *upper = py / 2;
    *blend = 0;
    *upper_weighted = 1;
    return;
  }
  *upper = (py - 1) / 2;
  *blend = 1;
  *upper_weighted = (py % 2) == 1;
}

/* Convert: planes as decoded (8-bit samples), shift_x/shift_y the chroma subsampling (4:2:0 1/1,
   4:2:2 1/0, 4:4:4 0/0). 0 on success, -1 for arguments it does not convert, -2 out of memory. */
int hk_avif_yuv_to_rgb(const uint8_t* y, size_t y_stride, const uint8_t* cb, size_t cb_stride, const uint8_t* cr,
                       size_t cr_stride, uint32_t width, uint32_t height, int shift_x, int shift_y, int matrix,
                       int full_range, uint8_t* dst, size_t dst_stride, int channels, int bgr)
{
  hk_avif_constants c;
  if (!y || !cb || !cr || !dst || width == 0 || height == 0 || (channels != 3 && channels != 4))
    return -1;
  if (shift_x < 0 || shift_x > 1 || shift_y < 0 || shift_y > shift_x || hk_avif_constants_for(matrix, full_range, &c))
    return -1;
  if (dst_stride < (size_t)width * (size_t)channels || y_stride < width)
    return -1;
  uint32_t chroma_width = (width + (uint32_t)shift_x) >> shift_x;
  if (cb_stride < chroma_width || cr_stride < chroma_width)
    return -1;
  uint8_t* rows = malloc(2 * (size_t)width);
  if (!rows)
    return -2;
  uint8_t *up_u = rows, *up_v = rows + width;
  for (uint32_t py = 0; py < height; py++) {
    const uint8_t* row_u;
    const uint8_t* row_v;
    if (shift_x == 0) {
      row_u = cb + (size_t)py * cb_stride;
      row_v = cr + (size_t)py * cr_stride;
    } else if (shift_y == 0) {
      hk_avif_upsample_row(cb + (size_t)py * cb_stride, NULL, up_u, width);
      hk_avif_upsample_row(cr + (size_t)py * cr_stride, NULL, up_v, width);
      row_u = up_u;
      row_v = up_v;
    } else {
      uint32_t upper;
      int blend, upper_weighted;
      hk_avif_chroma_rows(py, height, &upper, &blend, &upper_weighted);
      size_t near_u = (size_t)upper * cb_stride, near_v = (size_t)upper * cr_stride;
      size_t far_u = near_u + (blend ? cb_stride : 0), far_v = near_v + (blend ? cr_stride : 0);
      if (!upper_weighted) {
        size_t swap = near_u; near_u = far_u; far_u = swap;
        swap = near_v; near_v = far_v; far_v = swap;
      }
      hk_avif_upsample_row(cb + near_u, blend ? cb + far_u : NULL, up_u, width);
      hk_avif_upsample_row(cr + near_v, blend ? cr + far_v : NULL, up_v, width);
      row_u = up_u;
      row_v = up_v;
    }
    hk_avif_row(y + (size_t)py * y_stride, row_u, row_v, dst + (size_t)py * dst_stride, width, channels, bgr, &c);
  }
  free(rows);
  return 0;
}
