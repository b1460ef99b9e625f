/* Preloaded before AddressSanitizer's runtime (tests/sanitize_lifetimes.sh asan, fuzz/run.py --asan): heifkit
   opens libheif with RTLD_DEEPBIND, which ASan refuses; this dlopen drops that flag and calls the real one. */
#define _GNU_SOURCE
#include <dlfcn.h>

void *dlopen(const char *file, int mode) {
    void *(*next)(const char *, int) = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    return next(file, mode & ~RTLD_DEEPBIND);
}
