/* deflate / zlib / gzip against Python's zlib and gzip modules (tests/ref/gen_images.py wrote
 * the compressed files, the plain bytes next to them, and corrupt streams that zlib itself
 * rejects), plus truncation, bit flips and the real CLIP vocabulary. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"
#include "test_util.h"

#include <stdint.h>
#include <unistd.h>

#define DIR "tests/data/images/"

static void spit(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    TEST_ASSERT(f, "cannot write %s", path);
    if (!f) return;
    fwrite(p, 1, n, f);
    fclose(f);
}

static char tmp_path[256];
static const char *tmp_name(const char *suffix)
{
    const char *dir = getenv("TMPDIR");
    snprintf(tmp_path, sizeof tmp_path, "%s/mcnn_test_inflate_%ld_%s", dir && *dir ? dir : "/tmp",
             (long)getpid(), suffix);
    return tmp_path;
}

static int error_names(const char *name)
{
    return strstr(mcnn_last_error(), name) != NULL;
}

static void expect_file_equals(const unsigned char *got, size_t n, const char *want_path)
{
    size_t wn = 0;
    unsigned char *want = test_read_file(want_path, &wn);
    if (!want) return;
    TEST_ASSERT(n == wn, "%s: %zu bytes, want %zu", want_path, n, wn);
    if (n == wn) TEST_ASSERT(memcmp(got, want, n) == 0, "content differs from %s", want_path);
    free(want);
}

static void test_gzip_levels(void)
{
    const char *files[] = {DIR "sample_l0.gz", DIR "sample_l1.gz", DIR "sample_l6.gz", DIR "sample_l9.gz",
                           DIR "flags.gz"};
    for (int i = 0; i < 5; i++) {
        unsigned char *out = NULL;
        size_t n = 0;
        TEST_OK(mcnn_read_file_maybe_gzip(&out, &n, files[i]));
        if (!out) continue;
        expect_file_equals(out, n, DIR "sample.bin");
        TEST_ASSERT(out[n] == 0, "%s: output not NUL-terminated", files[i]);
        free(out);
    }
}

static void test_gzip_empty_and_multi(void)
{
    unsigned char *out = NULL;
    size_t n = 99;
    TEST_OK(mcnn_read_file_maybe_gzip(&out, &n, DIR "empty.gz"));
    TEST_ASSERT(out && n == 0 && out[0] == 0, "empty.gz: %zu bytes", n);
    free(out);
    TEST_OK(mcnn_read_file_maybe_gzip(&out, &n, DIR "multi.gz"));
    if (out) expect_file_equals(out, n, DIR "multi.bin");
    free(out);
    /* a file that is not gzip comes back as it is */
    TEST_OK(mcnn_read_file_maybe_gzip(&out, &n, DIR "sample.bin"));
    if (out) expect_file_equals(out, n, DIR "sample.bin");
    free(out);
    /* an empty plain file */
    spit(tmp_name("empty"), (const unsigned char *)"", 0);
    TEST_OK(mcnn_read_file_maybe_gzip(&out, &n, tmp_path));
    TEST_ASSERT(out && n == 0, "empty plain file: %zu bytes", n);
    free(out);
    remove(tmp_path);
    TEST_ASSERT(mcnn_read_file_maybe_gzip(&out, &n, DIR "no_such_file.gz") == MCNN_ERR_IO && !out,
                "missing file not reported as an I/O error");
    TEST_ASSERT(error_names("no_such_file.gz"), "message does not name the file: %s", mcnn_last_error());
}

/* Variants of a gzip file written to a temporary file: padding, garbage, bad CRC, ... */
static mcnn_status gunzip_variant(const unsigned char *p, size_t n, size_t *out_n, int check_content)
{
    const char *path = tmp_name("variant.gz");
    spit(path, p, n);
    unsigned char *out = NULL;
    mcnn_status st = mcnn_read_file_maybe_gzip(&out, out_n, path);
    if (st == MCNN_OK && check_content) expect_file_equals(out, *out_n, DIR "sample.bin");
    if (st != MCNN_OK) {
        TEST_ASSERT(!out, "output left allocated after an error");
        TEST_ASSERT(error_names("variant.gz"), "message does not name the file: %s", mcnn_last_error());
    }
    free(out);
    remove(path);
    return st;
}

static void test_gzip_corrupt(void)
{
    size_t n, on;
    unsigned char *gz = test_read_file(DIR "sample_l6.gz", &n);
    unsigned char *fl = NULL;
    size_t fn;
    if (!gz) return;
    unsigned char *buf = malloc(n + 64);
    memcpy(buf, gz, n);

    memset(buf + n, 0, 64); /* zero padding after the member is accepted */
    TEST_OK(gunzip_variant(buf, n + 64, &on, 1));
    memcpy(buf + n, "junk", 4);
    TEST_ASSERT(gunzip_variant(buf, n + 4, &on, 0) == MCNN_ERR_FORMAT, "trailing garbage accepted");
    TEST_ASSERT(strstr(mcnn_last_error(), "garbage"), "%s", mcnn_last_error());
    memcpy(buf + n, gz, 3); /* a second member cut inside its header */
    TEST_ASSERT(gunzip_variant(buf, n + 3, &on, 0) == MCNN_ERR_FORMAT, "truncated 2nd member accepted");

    buf[n - 8] ^= 1; /* CRC-32 */
    TEST_ASSERT(gunzip_variant(buf, n, &on, 0) == MCNN_ERR_FORMAT, "bad CRC accepted");
    TEST_ASSERT(strstr(mcnn_last_error(), "CRC"), "%s", mcnn_last_error());
    buf[n - 8] ^= 1;
    buf[n - 4] ^= 1; /* ISIZE */
    TEST_ASSERT(gunzip_variant(buf, n, &on, 0) == MCNN_ERR_FORMAT, "bad ISIZE accepted");
    buf[n - 4] ^= 1;
    buf[3] = 0x20; /* a reserved flag bit */
    TEST_ASSERT(gunzip_variant(buf, n, &on, 0) == MCNN_ERR_FORMAT, "reserved flag accepted");
    buf[3] = gz[3];
    buf[2] = 7; /* compression method */
    TEST_ASSERT(gunzip_variant(buf, n, &on, 0) == MCNN_ERR_FORMAT, "method 7 accepted");
    buf[2] = 8;
    TEST_OK(gunzip_variant(buf, n, &on, 1)); /* restored: fine again */

    /* the header CRC of flags.gz sits after 10 + 2 + 9 (FEXTRA) + 11 (FNAME) + 12 (FCOMMENT) */
    fl = test_read_file(DIR "flags.gz", &fn);
    if (fl) {
        TEST_OK(gunzip_variant(fl, fn, &on, 1));
        fl[44] ^= 0x10;
        TEST_ASSERT(gunzip_variant(fl, fn, &on, 0) == MCNN_ERR_FORMAT, "bad header CRC accepted");
        TEST_ASSERT(strstr(mcnn_last_error(), "header CRC"), "%s", mcnn_last_error());
        fl[44] ^= 0x10;
        fl[12] = 200; /* XLEN past the end of the file */
        fl[13] = 200;
        TEST_ASSERT(gunzip_variant(fl, fn, &on, 0) == MCNN_ERR_FORMAT, "bad XLEN accepted");
        free(fl);
    }

    /* truncated at every cut point in the header and trailer, and every 97th in between */
    int bad = 0;
    for (size_t cut = 2; cut < n; cut++) {
        if (cut > 40 && cut < n - 12 && cut % 97) continue;
        if (gunzip_variant(gz, cut, &on, 0) == MCNN_OK) bad++;
    }
    TEST_ASSERT(bad == 0, "%d truncated gzip files accepted", bad);
    free(buf);
    free(gz);
}

static void test_zlib_and_raw(void)
{
    static const struct {
        const char *file, *plain;
        int zlib;
    } cases[] = {{DIR "sample.zlib", DIR "sample.bin", 1},          {DIR "sample_stored.zlib", DIR "sample.bin", 1},
                 {DIR "sample.deflate", DIR "sample.bin", 0},       {DIR "sample_fixed.deflate", DIR "sample.bin", 0},
                 {DIR "skewed.deflate", DIR "skewed.bin", 0}};
    for (int i = 0; i < 5; i++) {
        size_t n, on = 0;
        unsigned char *in = test_read_file(cases[i].file, &n), *out = NULL;
        if (!in) continue;
        if (cases[i].zlib)
            TEST_OK(mcnn_zlib_decompress(&out, &on, in, n, cases[i].file));
        else
            TEST_OK(mcnn_inflate(&out, &on, in, n, cases[i].file));
        if (out) expect_file_equals(out, on, cases[i].plain);
        free(out);
        out = NULL;
        /* one byte more: trailing data is an error */
        unsigned char *more = malloc(n + 1);
        memcpy(more, in, n);
        more[n] = 0;
        mcnn_status st = cases[i].zlib ? mcnn_zlib_decompress(&out, &on, more, n + 1, "more")
                                       : mcnn_inflate(&out, &on, more, n + 1, "more");
        TEST_ASSERT(st == MCNN_ERR_FORMAT && !out, "%s: trailing byte accepted", cases[i].file);
        if (cases[i].zlib) { /* Adler-32 */
            more[n - 1] ^= 0x40;
            st = mcnn_zlib_decompress(&out, &on, more, n, "adler");
            TEST_ASSERT(st == MCNN_ERR_FORMAT && strstr(mcnn_last_error(), "Adler"), "%s: bad Adler-32 accepted: %s",
                        cases[i].file, mcnn_last_error());
            more[0] = 0x79; /* not deflate (CM = 9) */
            TEST_ASSERT(mcnn_zlib_decompress(&out, &on, more, n, "cm") == MCNN_ERR_FORMAT, "CM 9 accepted");
        }
        free(more);
        free(in);
    }
    /* the empty deflate stream: a final fixed block holding only end-of-block */
    unsigned char *out = NULL, empty[2] = {0x03, 0x00};
    size_t on = 7;
    TEST_OK(mcnn_inflate(&out, &on, empty, 2, "empty"));
    TEST_ASSERT(out && on == 0, "empty stream: %zu bytes", on);
    free(out);
    TEST_ASSERT(mcnn_inflate(&out, &on, NULL, 0, "nothing") == MCNN_ERR_FORMAT, "0 bytes accepted");
}

/* Each stream in bad_deflate.bin is rejected by Python's zlib; it must be rejected here too,
 * with a message naming the stream. */
static void test_bad_streams(void)
{
    size_t n;
    unsigned char *blob = test_read_file(DIR "bad_deflate.bin", &n);
    if (!blob) return;
    uint32_t count = blob[0] | blob[1] << 8 | blob[2] << 16 | (uint32_t)blob[3] << 24;
    size_t pos = 4;
    int seen = 0;
    for (uint32_t i = 0; i < count && pos < n; i++) {
        char name[256];
        size_t len = blob[pos++];
        memcpy(name, blob + pos, len);
        name[len] = 0;
        pos += len;
        size_t sz = blob[pos] | blob[pos + 1] << 8 | blob[pos + 2] << 16 | (size_t)blob[pos + 3] << 24;
        pos += 4;
        unsigned char *out = NULL;
        size_t on;
        mcnn_status st = mcnn_inflate(&out, &on, blob + pos, sz, name);
        TEST_ASSERT(st == MCNN_ERR_FORMAT, "%s: accepted (status %d)", name, (int)st);
        TEST_ASSERT(!out, "%s: output left allocated", name);
        TEST_ASSERT(error_names(name), "%s: message does not name it: %s", name, mcnn_last_error());
        if (getenv("MCNN_TEST_VERBOSE")) fprintf(stderr, "  %s\n", mcnn_last_error());
        pos += sz;
        seen++;
    }
    TEST_ASSERT(seen == 12 && pos == n, "read %d streams of bad_deflate.bin", seen);
    free(blob);
}

/* Every prefix of a valid stream is rejected (deflate has no way to end early); random byte
 * flips never crash and never report success with wrong data for zlib (Adler-32). */
static void test_truncation_and_flips(void)
{
    size_t n, plain_n;
    unsigned char *z = test_read_file(DIR "sample.zlib", &n), *plain = test_read_file(DIR "sample.bin", &plain_n);
    if (!z || !plain) return;
    int accepted = 0;
    for (size_t cut = 0; cut < n; cut += (cut < 64 || cut > n - 64) ? 1 : 5) {
        unsigned char *out = NULL;
        size_t on;
        if (mcnn_zlib_decompress(&out, &on, z, cut, "cut") == MCNN_OK) accepted++;
        free(out);
    }
    TEST_ASSERT(accepted == 0, "%d truncated zlib streams accepted", accepted);

    unsigned char *copy = malloc(n);
    unsigned long long s = 12345;
    int wrong = 0, ok = 0;
    for (int it = 0; it < 1500; it++) {
        memcpy(copy, z, n);
        int flips = 1 + it % 4;
        for (int f = 0; f < flips; f++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            copy[(s >> 8) % n] ^= (unsigned char)(1u << (s % 8));
        }
        unsigned char *out = NULL;
        size_t on;
        /* raw inflate of the body (no checksum: anything may come out, but it must not crash) */
        if (mcnn_inflate(&out, &on, copy + 2, n - 6, "flip") == MCNN_OK) ok++;
        free(out);
        out = NULL;
        if (mcnn_zlib_decompress(&out, &on, copy, n, "flip") == MCNN_OK &&
            (on != plain_n || memcmp(out, plain, on) != 0))
            wrong++;
        free(out);
    }
    TEST_ASSERT(wrong == 0, "%d corrupted zlib streams decoded to wrong data without an error", wrong);
    fprintf(stderr, "  1500 corrupted streams: %d still inflate (no checksum in raw deflate)\n", ok);
    free(copy);
    free(z);
    free(plain);
}

/* mcnn_read_file_maybe_gzip_max: exactly the limit is accepted, a byte more is refused, with
 * the file named first, before the output grows past the limit. */
static void test_gzip_limit(void)
{
    const char *files[] = {DIR "sample_l6.gz", DIR "sample_l9.gz", DIR "multi.gz", DIR "sample.bin"};
    const size_t sizes[] = {12000, 12000, 10000, 12000}; /* ls -l sample.bin multi.bin */
    for (int i = 0; i < 4; i++) {
        unsigned char *out = NULL;
        size_t n = 0;
        TEST_OK(mcnn_read_file_maybe_gzip_max(&out, &n, files[i], sizes[i]));
        TEST_ASSERT(out && n == sizes[i], "%s: %zu bytes", files[i], n);
        free(out);
        out = (unsigned char *)&out;
        mcnn_status st = mcnn_read_file_maybe_gzip_max(&out, &n, files[i], sizes[i] - 1);
        char want[128];
        snprintf(want, sizeof want, "%s: %s %zu bytes", files[i],
                 i < 3 ? "inflates to more than" : "larger than", sizes[i] - 1);
        TEST_ASSERT(st == MCNN_ERR_FORMAT && !out && n == 0, "%s: limit %zu: %s", files[i],
                    sizes[i] - 1, mcnn_strerror(st));
        TEST_ASSERT(strcmp(mcnn_last_error(), want) == 0, "message '%s', want '%s'",
                    mcnn_last_error(), want);
    }
    /* a limit in whole megabytes is said so */
    unsigned char *out = NULL;
    size_t n = 0;
    spit(tmp_name("big"), (const unsigned char *)"", 0);
    FILE *f = fopen(tmp_path, "r+b");
    if (f) fseek(f, (1 << 20) + 1, SEEK_SET), fputc(1, f), fclose(f); /* 1 MB + 2 bytes */
    TEST_ASSERT(mcnn_read_file_maybe_gzip_max(&out, &n, tmp_path, 1 << 20) == MCNN_ERR_FORMAT,
                "1 MB + 2 bytes under a 1 MB limit");
    TEST_ASSERT(strstr(mcnn_last_error(), "larger than 1 MB"), "%s", mcnn_last_error());
    remove(tmp_path);
}

/* The real CLIP BPE vocabulary.  Expected values from the command line:
 *   zcat bpe_simple_vocab_16e6.txt.gz | wc -l   -> 262145
 *   zcat bpe_simple_vocab_16e6.txt.gz | wc -c   -> 3194984
 *   zcat bpe_simple_vocab_16e6.txt.gz | head -1 -> "bpe_simple_vocab_16e6.txt#version: 0.2
 *   (the first line really starts with a double quote) */
static void test_bpe_vocab(void)
{
    const char *path = test_shared_path("data/clip/bpe_simple_vocab_16e6.txt.gz");
    FILE *f = fopen(path, "rb");
    if (!f) {
        TEST_SKIP("%s absent", path);
        return;
    }
    fclose(f);
    unsigned char *out = NULL;
    size_t n = 0;
    double t = mcnn_seconds();
    TEST_OK(mcnn_read_file_maybe_gzip(&out, &n, path));
    t = mcnn_seconds() - t;
    if (!out) return;
    const char *header = "\"bpe_simple_vocab_16e6.txt#version: 0.2\n";
    TEST_ASSERT(n >= strlen(header) && memcmp(out, header, strlen(header)) == 0, "first line: %.60s", (char *)out);
    size_t lines = 0;
    for (size_t i = 0; i < n; i++) lines += out[i] == '\n';
    TEST_ASSERT(lines == 262145, "%zu lines, zcat | wc -l says 262145", lines);
    TEST_ASSERT(n == 3194984, "%zu bytes, zcat | wc -c says 3194984", n);
    fprintf(stderr, "  %zu bytes, %zu lines in %.1f ms\n", n, lines, t * 1e3);
    free(out);
}

/* Fashion-MNIST test images (IDX), when installed.  gzip -l: 7840016 bytes uncompressed;
 * IDX header: magic 0x00000803, 10000 images of 28 x 28. */
static void test_fashion_mnist(void)
{
    const char *path = test_shared_path("data/fashion-mnist/t10k-images-idx3-ubyte.gz");
    FILE *f = fopen(path, "rb");
    if (!f) f = fopen(path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "rb");
    if (!f) {
        TEST_SKIP("Fashion-MNIST absent");
        return;
    }
    fclose(f);
    unsigned char *out = NULL;
    size_t n = 0;
    double t = mcnn_seconds();
    TEST_OK(mcnn_read_file_maybe_gzip(&out, &n, path));
    t = mcnn_seconds() - t;
    if (!out) return;
    static const unsigned char head[16] = {0, 0, 8, 3, 0, 0, 0x27, 0x10, 0, 0, 0, 28, 0, 0, 0, 28};
    TEST_ASSERT(n == 7840016 && memcmp(out, head, 16) == 0, "%zu bytes", n);
    fprintf(stderr, "  %s: %zu bytes in %.1f ms (%.0f MB/s)\n", path, n, t * 1e3, n / t / 1e6);
    free(out);
}

int main(void)
{
    TEST_RUN(test_gzip_levels);
    TEST_RUN(test_gzip_empty_and_multi);
    TEST_RUN(test_gzip_corrupt);
    TEST_RUN(test_zlib_and_raw);
    TEST_RUN(test_bad_streams);
    TEST_RUN(test_truncation_and_flips);
    TEST_RUN(test_gzip_limit);
    TEST_RUN(test_bpe_vocab);
    TEST_RUN(test_fashion_mnist);
    return test_summary();
}
