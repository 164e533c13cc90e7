/* Defects the fuzz drivers (tests/fuzz/, docs/fuzzing.md) found, one test each, written to fail
 * on the code before the fix.  The inputs that found them are replayed by
 * build/tests/test_fuzz_<driver> from tests/fuzz/regressions/<driver>/. */
#define _GNU_SOURCE
#include "mcnn_test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Bytes of address space this process maps now (VmSize), or 0. */
static size_t address_space_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

/* fuzz_bpe_vocab, on the shared vocabulary cut to libFuzzer's 1 MB: a truncated gzip's last
 * four bytes, read as the size it inflates to, made mcnn_read_file_maybe_gzip reserve up to
 * 1032 times the file before checking anything (2 GB for 1 MB; the fuzzer's malloc limit).
 * Here 300 KB of gzip that claims 256 MB, with 128 MB of address space to spare: the file is
 * corrupt (a stored block with a bad length), and that is what must be said, not "out of
 * memory". */
static void test_gzip_size_claim_is_not_trusted(void)
{
#ifdef UNDER_ASAN
    TEST_SKIP("AddressSanitizer reserves terabytes of address space: no limit can be set");
#else
    const char *path = "build/test_fuzz_finds_claim.gz";
    const size_t n = 300 * 1024;
    unsigned char *gz = calloc(n, 1);
    TEST_ASSERT(gz, "out of memory");
    if (!gz) return;
    const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memcpy(gz, header, sizeof header); /* then zeros: a stored block whose NLEN is not ~LEN */
    const uint32_t claim = 256u << 20;
    for (int i = 0; i < 4; i++) gz[n - 4 + i] = (unsigned char)(claim >> (8 * i));
    FILE *f = fopen(path, "wb");
    TEST_ASSERT(f && fwrite(gz, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
    free(gz);

    struct rlimit old, lim;
    getrlimit(RLIMIT_AS, &old);
    lim = old;
    lim.rlim_cur = address_space_bytes() + ((rlim_t)128 << 20);
    if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < lim.rlim_cur) lim.rlim_cur = old.rlim_cur;
    setrlimit(RLIMIT_AS, &lim);
    unsigned char *out = NULL;
    size_t out_size = 0;
    mcnn_status s = mcnn_read_file_maybe_gzip(&out, &out_size, path);
    setrlimit(RLIMIT_AS, &old);
    TEST_ASSERT(s == MCNN_ERR_FORMAT, "got %s (%s), want a format error", mcnn_strerror(s),
                mcnn_last_error());
    free(out);
    remove(path);
#endif
}

int main(void)
{
    TEST_RUN(test_gzip_size_claim_is_not_trusted);
    return test_summary();
}
