/* Fuzz deflate (RFC 1951), zlib (RFC 1950) and gzip (RFC 1952) in lib/io/inflate.c and gzip.c:
 * the same bytes as each of the three. */
#include "fuzz.h"

#include <stdlib.h>

static void check_output(unsigned char *out, size_t n)
{
    fuzz_touch(out, n + 1); /* with the promised NUL after the data */
    if (out[n] != 0) abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *out;
    size_t n;
    if (mcnn_inflate(&out, &n, data, size, "fuzz") == MCNN_OK) check_output(out, n);
    if (mcnn_zlib_decompress(&out, &n, data, size, "fuzz") == MCNN_OK) check_output(out, n);
    const char *path = fuzz_file(0, data, size);
    if (path && mcnn_read_file_maybe_gzip(&out, &n, path) == MCNN_OK) check_output(out, n);
    return 0;
}
