#!/bin/sh
# Run the lifetime tests (tests/test_lifetimes.py) under a memory checker. Not part of `make test`.
#
#   tests/sanitize_lifetimes.sh valgrind [pytest args...]
#   tests/sanitize_lifetimes.sh asan [pytest args...]
#
# valgrind: memcheck with Python's allocator off (PYTHONMALLOC=malloc), so that every object is a malloc
#   block. Reports reads, writes and frees of freed or unallocated memory. Uninitialised-value reports are
#   off (--undef-value-errors=no: CPython and the codecs make many that are not about lifetimes), and so
#   are leaks. Suppressions cover the vector loads past the end of a block that valgrind 3.19 reports in
#   code not under test: glibc's ld.so strncmp (is_dst) and AVX2 wmemcmp (CPython's str compare), and
#   x265's assembly (the encoder that makes test files; decoding uses libde265 and aom). About 2 minutes
#   for the default selection.
# asan: AddressSanitizer preloaded into the ordinary (not instrumented) CPython, also with
#   PYTHONMALLOC=malloc. Only what goes through ASan's interceptors is checked (malloc/free: double and
#   invalid frees; memcpy/memmove/memset and friends on freed or out-of-bounds memory); code that was not
#   compiled with -fsanitize=address is not. heifkit opens libheif with RTLD_DEEPBIND, which ASan refuses,
#   so a small dlopen shim (tests/nodeepbind.c, compiled here, preloaded first) drops that flag. About 20 seconds.
#
# Neither checker lets the allocator hand out a just-freed address at once (valgrind's free queue, ASan's
# quarantine), so issue 6's SecurityLimitError does not show under them: they check that nothing reads or
# frees memory it no longer owns, the normal run checks the release order.
#
# Default selection: in-process tests only (child processes are not traced) and the smaller drop-order
# cases. Pytest arguments after the mode replace it, e.g. `tests/sanitize_lifetimes.sh asan -k drop_orders`.
# Uses $PYTHON (default: .venv/bin/python of this checkout). Exit status: pytest's; 99 when valgrind
# reported an error; ASan aborts the run at its first report.
set -eu

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
MODE=${1:-}
[ $# -gt 0 ] && shift
if [ $# -eq 0 ]; then
    set -- -k "not child and (l-drops or l-reopen or la-drops or la-reopen or zpug-image0 or rgba-thumb or issue or 50_times or cycles or viewer_loop)"
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PYTEST="-m pytest -q -p no:cacheprovider --capture=sys tests/test_lifetimes.py"

case "$MODE" in
valgrind)
    cat > "$TMP/vector-reads.supp" <<'END'
{
   glibc ld.so strncmp
   Memcheck:Addr8
   fun:strncmp
   fun:is_dst
}
{
   glibc wmemcmp avx2
   Memcheck:Addr32
   fun:__wmemcmp_avx2_movbe
}
END
    for size in 4 8 16 32; do
        printf '{\n   x265 assembly\n   Memcheck:Addr%s\n   obj:*/libx265-*\n}\n' "$size" >> "$TMP/vector-reads.supp"
    done
    # shellcheck disable=SC2086
    PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=99 --leak-check=no --undef-value-errors=no \
        --suppressions="$TMP/vector-reads.supp" --trace-children=no -q "$PYTHON" $PYTEST "$@"
    ;;
asan)
    LIBASAN=$(gcc -print-file-name=libasan.so)
    [ -e "$LIBASAN" ] || { echo "libasan.so not found (gcc -print-file-name=libasan.so)" >&2; exit 2; }
    gcc -shared -fPIC -O1 -o "$TMP/nodeepbind.so" tests/nodeepbind.c -ldl
    # shellcheck disable=SC2086
    LD_PRELOAD="$TMP/nodeepbind.so $LIBASAN" PYTHONMALLOC=malloc \
        ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0:abort_on_error=1 \
        "$PYTHON" $PYTEST "$@"
    ;;
*)
    echo "usage: $0 valgrind|asan [pytest args...]" >&2
    exit 2
    ;;
esac
