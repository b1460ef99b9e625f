/* heifkit's C helpers: binding libheif by absolute path, context reference counting, and the per-pixel
   work (plane copies, fills with bit-depth conversion, padding) and writing a file to memory.
   Compiled by cffi into heifkit._native (see _native/build.py); HK_BIND_BODY is filled in by the builder with one
   dlsym per libheif function listed in _native/decls.py. */
#include <Python.h>
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <libheif/heif.h>

#ifndef HK_BIND_BODY  /* the builder defines it: one dlsym per libheif function (none when compiled alone) */
#define HK_BIND_BODY
#endif

static void* hk_lib_handle = NULL;

int hk_bind(const char* path, char* errbuf, size_t errlen)
{
  if (hk_lib_handle) return 0;
  int flags = RTLD_NOW | RTLD_LOCAL;
#ifdef RTLD_DEEPBIND
  /* libheif calls its own exported functions through the PLT: without DEEPBIND a libheif.so.1 already
     in the global scope (a system copy, another binding's preload) would take over those calls. */
  flags |= RTLD_DEEPBIND;
#endif
  void* lib = dlopen(path, flags);
  if (!lib) { snprintf(errbuf, errlen, "%s", dlerror()); return -1; }
  HK_BIND_BODY
  hk_lib_handle = lib;
  return 0;
}

/* A heif_context with a reference count. libheif keeps each context's memory accounting in a process-wide
   map keyed by the address of the context's security limits, and a decoded heif_image subtracts its bytes
   from that entry when it is released. An image released after its context would subtract them from
   whatever context lives at that address by then (the next file), so every decoded image holds a
   reference and the context is freed only when its Python owner and all its images are gone, in whatever
   order Python (or its cycle collector) drops them. Image handles keep libheif's context alive by
   themselves. */
typedef struct hk_context { heif_context* ctx; long refs; } hk_context;

hk_context* hk_context_new(void)
{
  hk_context* owner = (hk_context*)malloc(sizeof(hk_context));
  if (!owner) return NULL;
  owner->ctx = heif_context_alloc();
  if (!owner->ctx) { free(owner); return NULL; }
  owner->refs = 1;
  return owner;
}

void hk_context_retain(hk_context* owner) { __atomic_add_fetch(&owner->refs, 1, __ATOMIC_RELAXED); }

void hk_context_release(hk_context* owner)
{
  if (__atomic_sub_fetch(&owner->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    heif_context_free(owner->ctx);
    free(owner);
  }
}

/* Release a decoded image, then the reference it held on its context (owner may be NULL). */
void hk_image_release(heif_image* image, hk_context* owner)
{
  heif_image_release(image);
  if (owner) hk_context_release(owner);
}

/* Copy `height` rows of `width` pixels (channels x bytes_per_sample each) from a libheif plane into
   the destination. 16-bit samples are shifted left by `shift_left`; `swap_rb` swaps channels 0 and 2
   (RGB <-> BGR). `dst` may be `src` itself with dst_stride <= src_stride (compaction in place): rows are
   moved with memmove and every pixel is read before it is written. Returns 0, or -1 (nothing copied) for
   arguments it cannot honour: a row longer than a stride, or a shift or swap of samples other than 1 or 2
   bytes (plain copies take any sample size: a region copies whole pixels as one sample). */
int hk_copy_plane(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride,
                  uint32_t width, uint32_t height, int channels, int bytes_per_sample,
                  int shift_left, int swap_rb)
{
  if (channels < 1 || channels > 4 || bytes_per_sample < 1 || shift_left < 0 || shift_left > 15) return -1;
  if ((shift_left || swap_rb) && bytes_per_sample > 2) return -1;
  if (!src || !dst) return height && width ? -1 : 0;
  size_t row_bytes = (size_t)width * (size_t)channels * (size_t)bytes_per_sample;
  if (height > 1 && (row_bytes > src_stride || row_bytes > dst_stride)) return -1;
  for (uint32_t y = 0; y < height; y++) {
    const uint8_t* s = src + (size_t)y * src_stride;
    uint8_t* d = dst + (size_t)y * dst_stride;
    if (!shift_left && !swap_rb) {
      if (d != s) memmove(d, s, row_bytes);
      continue;
    }
    if (bytes_per_sample == 1) {
      for (uint32_t x = 0; x < width; x++) {
        uint8_t v[4];
        memcpy(v, s + (size_t)x * channels, (size_t)channels);
        if (swap_rb && channels >= 3) { uint8_t t = v[0]; v[0] = v[2]; v[2] = t; }
        memcpy(d + (size_t)x * channels, v, (size_t)channels);
      }
    } else {
      for (uint32_t x = 0; x < width; x++) {
        uint16_t v[4];
        memcpy(v, s + (size_t)x * channels * 2, (size_t)channels * 2);
        if (swap_rb && channels >= 3) { uint16_t t = v[0]; v[0] = v[2]; v[2] = t; }
        for (int c = 0; c < channels; c++) v[c] = (uint16_t)(v[c] << shift_left);
        memcpy(d + (size_t)x * channels * 2, v, (size_t)channels * 2);
      }
    }
  }
  return 0;
}

/* Fill a libheif plane (dst_channels interleaved samples per pixel) from caller memory holding
   src_channels samples per pixel, taking channels src_channel .. src_channel + dst_channels - 1.
   Samples are 1 byte when their bit depth is <= 8, else 2 (little endian). Depth conversion: a
   deeper source is shifted right (truncating, as pillow_heif does); a shallower one is widened by bit
   replication so that full scale stays full scale (255 -> 1023). `swap_rb` reads BGR as RGB. */
static inline uint16_t hk_convert_sample(uint16_t v, int src_bits, int dst_bits)
{
  if (src_bits == dst_bits) return v;
  if (src_bits > dst_bits) return (uint16_t)(v >> (src_bits - dst_bits));
  int up = dst_bits - src_bits;
  uint32_t out = (uint32_t)v << up;
  int rest = up;
  while (rest > 0) {  /* replicate the top bits into the new low bits */
    int take = rest < src_bits ? rest : src_bits;
    out |= (uint32_t)v >> (src_bits - take) << (rest - take);
    rest -= take;
  }
  return (uint16_t)out;
}

int hk_fill_plane(const uint8_t* src, size_t src_stride, int src_channels, int src_channel, int src_bits,
                  uint8_t* dst, size_t dst_stride, int dst_channels, int dst_bits, uint32_t width,
                  uint32_t height, int swap_rb)
{
  if (src_channels < 1 || src_channels > 4 || dst_channels < 1 || src_channel < 0
      || src_channel + dst_channels > src_channels || src_bits < 1 || src_bits > 16 || dst_bits < 1 || dst_bits > 16)
    return -1;
  int src_bytes = src_bits > 8 ? 2 : 1, dst_bytes = dst_bits > 8 ? 2 : 1;
  int rb = swap_rb && dst_channels >= 3;
  for (uint32_t y = 0; y < height; y++) {
    const uint8_t* s = src + (size_t)y * src_stride;
    uint8_t* d = dst + (size_t)y * dst_stride;
    if (src_bits == dst_bits && src_channels == dst_channels && !rb) {
      memcpy(d, s, (size_t)width * dst_channels * dst_bytes);
      continue;
    }
    for (uint32_t x = 0; x < width; x++) {
      uint16_t v[4];
      const uint8_t* sp = s + ((size_t)x * src_channels + src_channel) * src_bytes;
      for (int c = 0; c < dst_channels; c++) {
        uint16_t raw = src_bytes == 1 ? sp[c] : (uint16_t)(sp[2 * c] | (sp[2 * c + 1] << 8));
        v[c] = hk_convert_sample(raw, src_bits, dst_bits);
      }
      if (rb) { uint16_t t = v[0]; v[0] = v[2]; v[2] = t; }
      uint8_t* dp = d + (size_t)x * dst_channels * dst_bytes;
      for (int c = 0; c < dst_channels; c++) {
        if (dst_bytes == 1) dp[c] = (uint8_t)v[c];
        else { dp[2 * c] = (uint8_t)(v[c] & 0xFF); dp[2 * c + 1] = (uint8_t)(v[c] >> 8); }
      }
    }
  }
  return 0;
}

/* Pad a partly filled plane to width x height by repeating the last filled column and row (zeros would
   bleed into the picture through chroma subsampling at grid tile edges). */
void hk_pad_plane(uint8_t* dst, size_t dst_stride, uint32_t filled_width, uint32_t filled_height,
                  uint32_t width, uint32_t height, int bytes_per_pixel)
{
  if (filled_width == 0 || filled_height == 0) return;
  size_t bpp = (size_t)bytes_per_pixel;
  for (uint32_t y = 0; y < filled_height; y++) {
    uint8_t* row = dst + (size_t)y * dst_stride;
    const uint8_t* last = row + (size_t)(filled_width - 1) * bpp;
    for (uint32_t x = filled_width; x < width; x++) memcpy(row + (size_t)x * bpp, last, bpp);
  }
  const uint8_t* last_row = dst + (size_t)(filled_height - 1) * dst_stride;
  for (uint32_t y = filled_height; y < height; y++) memcpy(dst + (size_t)y * dst_stride, last_row, (size_t)width * bpp);
}

/* Expand the limited-range samples of one interleaved channel to full range, in place: samples of
   `bits` significant bits (stored in 1 or 2 bytes, native order) from [16, 235] << (bits - 8) to
   [0, 2^bits - 1], rounded and clamped (a limited-range alpha track, read as libavif reads it). */
void hk_expand_limited_range(uint8_t* data, size_t stride, uint32_t width, uint32_t height, int channels,
                             int channel, int bytes_per_sample, int bits)
{
  if (bits < 8 || bits > 16 || channel < 0 || channel >= channels) return;
  const int64_t low = 16 << (bits - 8), range = 219 << (bits - 8), top = (1 << bits) - 1;
  for (uint32_t y = 0; y < height; y++) {
    uint8_t* row = data + (size_t)y * stride;
    for (uint32_t x = 0; x < width; x++) {
      uint8_t* p = row + ((size_t)x * channels + channel) * bytes_per_sample;
      int64_t v = bytes_per_sample == 2 ? *(uint16_t*)p : *p;
      v = ((v - low) * top * 2 + range) / (2 * range);
      if (v < 0) v = 0;
      if (v > top) v = top;
      if (bytes_per_sample == 2) *(uint16_t*)p = (uint16_t)v; else *p = (uint8_t)v;
    }
  }
}

typedef struct { uint8_t* data; size_t size; size_t cap; } hk_membuf;

static heif_error hk_mem_write(heif_context* ctx, const void* data, size_t size, void* userdata)
{
  (void)ctx;
  hk_membuf* b = (hk_membuf*)userdata;
  heif_error err = { heif_error_Ok, heif_suberror_Unspecified, "Success" };
  if (size > SIZE_MAX - b->size) {  /* more than memory can hold: refused, never wrapped around */
    err.code = heif_error_Memory_allocation_error;
    err.message = "the file is too large to write to memory";
    return err;
  }
  if (b->size + size > b->cap) {
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->size + size) cap = cap > SIZE_MAX / 2 ? b->size + size : cap * 2;
    uint8_t* p = (uint8_t*)realloc(b->data, cap);
    if (!p) {
      err.code = heif_error_Memory_allocation_error;
      err.message = "out of memory while writing the file";
      return err;
    }
    b->data = p; b->cap = cap;
  }
  memcpy(b->data + b->size, data, size);
  b->size += size;
  return err;
}

/* Serialise the context into one malloc'ed buffer (freed with hk_free). */
heif_error hk_write_to_memory(heif_context* ctx, uint8_t** out_data, size_t* out_size)
{
  hk_membuf b = { NULL, 0, 0 };
  heif_writer w;
  w.writer_api_version = 1;
  w.write = hk_mem_write;
  heif_error err = heif_context_write(ctx, &w, &b);
  if (err.code != heif_error_Ok) { free(b.data); b.data = NULL; b.size = 0; }
  *out_data = b.data;
  *out_size = b.size;
  return err;
}

void hk_free(void* p) { free(p); }

/* Memory for a destination every byte of which is written next (tile by tile): unlike Python's
   bytearray, not zeroed first (a pass over 48 MB for a 12 MP RGBA image). */
/* Big pixel buffers are asked for in 2 MiB pages where the kernel gives them on request (transparent huge
   pages in "madvise" mode): a 12 MP RGBA image then takes 24 page faults instead of 12,000. */
#define HK_HUGE (2u << 20)
void* hk_malloc(size_t size) {
  if (size > SIZE_MAX - HK_HUGE) return NULL;  /* rounding up to whole pages would wrap around */
  if (size >= 4 * (size_t)HK_HUGE) {
    size_t rounded = (size + HK_HUGE - 1) / HK_HUGE * HK_HUGE;
    void* p = aligned_alloc(HK_HUGE, rounded);
    if (p) madvise(p, rounded, MADV_HUGEPAGE);
    return p;
  }
  return malloc(size ? size : 1);
}

/* The Arrow C data interface (arrow.apache.org/docs/format/CDataInterface.html): the two structs of its
   stable ABI, declared here because nothing heifkit installs ships arrow's header. */
struct ArrowSchema {
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;
  void (*release)(struct ArrowSchema*);
  void* private_data;
};

struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;
  void (*release)(struct ArrowArray*);
  void* private_data;
};

/* What an exported array owns: a reference to the Python object holding the pixels, and the structs of
   its one child (4 uint8 samples per pixel). */
typedef struct {
  void* keep;
  const void* buffers[1];
  const void* child_buffers[2];
  struct ArrowSchema child_schema;
  struct ArrowSchema* child_schemas[1];
  struct ArrowArray child_array;
  struct ArrowArray* child_arrays[1];
} hk_arrow_owner;

static void hk_arrow_release_child_schema(struct ArrowSchema* schema) { schema->release = NULL; }

static void hk_arrow_release_schema(struct ArrowSchema* schema)
{
  if (schema->private_data) free(schema->private_data);  /* the child schema and its pointer list */
  schema->release = NULL;
}

static void hk_arrow_release_child_array(struct ArrowArray* array) { array->release = NULL; }

/* Called by the consumer (Pillow) when it no longer needs the pixels, from any thread. */
static void hk_arrow_release_array(struct ArrowArray* array)
{
  hk_arrow_owner* owner = (hk_arrow_owner*)array->private_data;
  PyGILState_STATE state = PyGILState_Ensure();
  Py_DECREF((PyObject*)owner->keep);
  PyGILState_Release(state);
  free(owner);
  array->release = NULL;
}

typedef struct { struct ArrowSchema child; struct ArrowSchema* children[1]; } hk_schema_children;

/* Describe `pixels` 4-byte pixels at `data` as an Arrow array of fixed-size lists of 4 uint8 (the layout
   Pillow itself exports) that owns a reference to the Python object `keep`, taken here (with the GIL: cffi
   calls without it) once nothing can fail. Returns 0, or -1 when out of memory (no reference taken). */
int hk_arrow_export(void* keep, const uint8_t* data, int64_t pixels, struct ArrowSchema** out_schema,
                    struct ArrowArray** out_array)
{
  struct ArrowSchema* schema = (struct ArrowSchema*)calloc(1, sizeof(struct ArrowSchema));
  struct ArrowArray* array = (struct ArrowArray*)calloc(1, sizeof(struct ArrowArray));
  hk_arrow_owner* owner = (hk_arrow_owner*)calloc(1, sizeof(hk_arrow_owner));
  hk_schema_children* kids = (hk_schema_children*)calloc(1, sizeof(hk_schema_children));
  if (!keep || !data || pixels < 0 || !schema || !array || !owner || !kids) {
    free(schema); free(array); free(owner); free(kids); return -1;
  }
  PyGILState_STATE state = PyGILState_Ensure();
  Py_INCREF((PyObject*)keep);
  PyGILState_Release(state);
  kids->child.format = "C";
  kids->child.name = "";
  kids->child.release = hk_arrow_release_child_schema;
  kids->children[0] = &kids->child;
  schema->format = "+w:4";
  schema->name = "";
  schema->n_children = 1;
  schema->children = kids->children;
  schema->release = hk_arrow_release_schema;
  schema->private_data = kids;

  owner->keep = keep;
  owner->buffers[0] = NULL;  /* no validity bitmap: no nulls */
  owner->child_buffers[0] = NULL;
  owner->child_buffers[1] = data;
  owner->child_array.length = pixels * 4;
  owner->child_array.n_buffers = 2;
  owner->child_array.buffers = owner->child_buffers;
  owner->child_array.release = hk_arrow_release_child_array;
  owner->child_arrays[0] = &owner->child_array;
  array->length = pixels;
  array->n_buffers = 1;
  array->buffers = owner->buffers;
  array->n_children = 1;
  array->children = owner->child_arrays;
  array->release = hk_arrow_release_array;
  array->private_data = owner;
  *out_schema = schema;
  *out_array = array;
  return 0;
}

/* PyCapsule destructors (called by Python with the GIL; the argument is the capsule): release what the
   consumer did not take, then free the struct. */
void hk_arrow_schema_capsule_free(void* capsule)
{
  struct ArrowSchema* schema = (struct ArrowSchema*)PyCapsule_GetPointer((PyObject*)capsule, "arrow_schema");
  if (!schema) { PyErr_Clear(); return; }
  if (schema->release) schema->release(schema);
  free(schema);
}

void hk_arrow_array_capsule_free(void* capsule)
{
  struct ArrowArray* array = (struct ArrowArray*)PyCapsule_GetPointer((PyObject*)capsule, "arrow_array");
  if (!array) { PyErr_Clear(); return; }
  if (array->release) array->release(array);
  free(array);
}
