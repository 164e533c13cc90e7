/* JPEG decoder against PIL (libjpeg-turbo) goldens, its IDCT against the definition, and its
 * refusal of unsupported, corrupt, truncated and fuzzed files.
 * Goldens: tests/ref/gen_jpeg.py -> tests/data/jpeg/<name>.jpg + tests/data/jpeg_golden.safetensors
 * (PIL's decoded pixels, U8 (H, W) or (H, W, 3)). */
#include "mcnn_test.h"

#include "io/jpeg_internal.h"

#define DIR "tests/data/jpeg/"
#define GOLDEN "tests/data/jpeg_golden.safetensors"

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        TEST_ASSERT(0, "cannot open %s", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

static unsigned char *read_jpeg(const char *name, size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, DIR "%s.jpg", name);
    return read_all(path, n);
}

/* ---- pixels against PIL ---------------------------------------------------------------------- */

/* Every golden: same shape, and the pixels PIL gives.  The decoder follows libjpeg's integer
 * arithmetic step by step, so we require exact equality, and report the counts. */
static void test_jpeg_matches_pil(void)
{
    mcnn_safetensors *st = NULL;
    TEST_OK(mcnn_safetensors_open(&st, GOLDEN));
    if (!st) return;
    long long pixels = 0, differ = 0;
    int maxdiff = 0, files = 0;
    for (int i = 0; i < mcnn_safetensors_count(st); i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
        size_t n = 0;
        unsigned char *data = read_jpeg(t->name, &n);
        if (!data) continue;
        mcnn_image img;
        mcnn_status s = mcnn_jpeg_decode(&img, data, n, t->name);
        free(data);
        TEST_ASSERT(s == MCNN_OK, "%s: %s", t->name, mcnn_last_error());
        if (s != MCNN_OK) continue;
        int want_c = t->ndim == 3 ? (int)t->shape[2] : 1;
        TEST_ASSERT(img.height == t->shape[0] && img.width == t->shape[1] && img.channels == want_c,
                    "%s: decoded %dx%dx%d, PIL %lldx%lldx%d", t->name, img.height, img.width,
                    img.channels, (long long)t->shape[0], (long long)t->shape[1], want_c);
        float *want = test_golden(st, t->name, NULL);
        if (want && img.height == t->shape[0] && img.width == t->shape[1] && img.channels == want_c) {
            int file_max = 0;
            for (size_t k = 0; k < t->numel; k++) {
                int d = abs((int)img.pixels[k] - (int)want[k]);
                if (d) differ++;
                if (d > file_max) file_max = d;
            }
            TEST_ASSERT(file_max == 0, "%s: max |ours - PIL| = %d", t->name, file_max);
            if (file_max > maxdiff) maxdiff = file_max;
            pixels += (long long)t->numel;
            files++;
        }
        free(want);
        mcnn_image_free(&img);
    }
    TEST_ASSERT(files >= 50, "only %d golden files decoded", files);
    fprintf(stderr, "  %d files, %lld samples: max |ours - PIL| = %d, %lld samples differ (%.4f%%)\n",
            files, pixels, maxdiff, differ, pixels ? 100.0 * differ / pixels : 0.0);
    mcnn_safetensors_close(st);
}

/* EXIF orientation 6 asks viewers to rotate by 90 degrees; like PIL's Image.open we ignore it:
 * the stored 17x13 pixels come out, not the 13x17 rotated ones (the pixels are checked by
 * test_jpeg_matches_pil against PIL's unrotated decode). */
static void test_jpeg_exif_orientation_ignored(void)
{
    size_t n = 0;
    unsigned char *data = read_jpeg("rgb_exif_orient6_17x13", &n);
    if (!data) return;
    mcnn_image img;
    TEST_OK(mcnn_jpeg_decode(&img, data, n, "exif"));
    TEST_ASSERT(img.width == 17 && img.height == 13, "got %dx%d, want the unrotated 17x13",
                img.width, img.height);
    mcnn_image_free(&img);
    free(data);
}

/* ---- the IDCT against its definition ---------------------------------------------------------- */

/* IEEE 1180-style: random 8x8 pixel blocks in [-L, H] -> exact forward DCT -> rounded integer
 * coefficients -> both inverses.  The integer IDCT may differ from the rounded exact one by at
 * most 1 (the standard's peak error), and rarely. */
static void test_jpeg_idct_vs_reference(void)
{
    const double pi = 3.14159265358979323846;
    unsigned long long s = 12345;
    int maxdiff = 0;
    long differ = 0, total = 0;
    uint16_t q1[64];
    for (int i = 0; i < 64; i++) q1[i] = 1;
    for (int trial = 0; trial < 2000; trial++) {
        int range = trial % 2 ? 256 : 5; /* large and small inputs */
        double px[64];
        for (int i = 0; i < 64; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            px[i] = (double)((long)(s % (unsigned long long)(2 * range + 1)) - range);
            if (range == 256 && px[i] > 255) px[i] = 255;
        }
        int16_t coef[64];
        for (int v = 0; v < 8; v++)
            for (int u = 0; u < 8; u++) {
                double sum = 0;
                for (int y = 0; y < 8; y++)
                    for (int x = 0; x < 8; x++)
                        sum += px[y * 8 + x] * cos((2 * x + 1) * u * pi / 16) *
                               cos((2 * y + 1) * v * pi / 16);
                sum *= 0.25 * (u ? 1 : sqrt(0.5)) * (v ? 1 : sqrt(0.5));
                coef[v * 8 + u] = (int16_t)floor(sum + 0.5);
            }
        uint8_t a[64], b[64];
        mcnn_jpeg_idct_islow(a, 8, coef, q1);
        mcnn_jpeg_idct_ref(b, 8, coef, q1);
        for (int i = 0; i < 64; i++) {
            int d = abs(a[i] - b[i]);
            if (d > maxdiff) maxdiff = d;
            differ += d != 0;
            total++;
        }
    }
    TEST_ASSERT(maxdiff <= 1, "islow vs exact IDCT: max difference %d", maxdiff);
    TEST_ASSERT(differ * 100 < total, "islow differs from the exact IDCT in %ld of %ld samples",
                differ, total);
    fprintf(stderr, "  islow vs exact IDCT: max |diff| %d, %ld of %ld samples differ\n", maxdiff,
            differ, total);

    /* A lone DC coefficient: every sample is 128 + round(DC * q / 8) (A.3.3 with C(0)^2 = 1/2). */
    int16_t dc[64] = {-37};
    uint16_t q[64];
    for (int i = 0; i < 64; i++) q[i] = 2;
    uint8_t out[64];
    mcnn_jpeg_idct_islow(out, 8, dc, q);
    for (int i = 0; i < 64; i++)
        TEST_ASSERT(out[i] == 128 + (int)floor(-37 * 2 / 8.0 + 0.5), "DC only: sample %d is %d", i,
                    out[i]);
}

/* ---- refusals ----------------------------------------------------------------------------------- */

/* Offset of the 0xFF of the first segment with this marker (walking lengths from SOI), or -1. */
static long find_segment(const unsigned char *b, size_t n, int marker)
{
    size_t p = 2;
    while (p + 4 <= n && b[p] == 0xFF) {
        if (b[p + 1] == marker) return (long)p;
        if (b[p + 1] == 0xDA) break;
        p += 2 + (size_t)((b[p + 2] << 8) | b[p + 3]);
    }
    return -1;
}

/* Decode and expect failure with the given status; the message must name the file and contain
 * `word`, and the image must be left empty. */
static void expect_fail(const unsigned char *data, size_t n, mcnn_status want, const char *word,
                        const char *what)
{
    mcnn_image img = {7, 7, 7, (unsigned char *)&img};
    mcnn_status s = mcnn_jpeg_decode(&img, data, n, what);
    TEST_ASSERT(s == want, "%s: got status %d (%s), want %d", what, (int)s, mcnn_last_error(),
                (int)want);
    if (s == MCNN_OK) {
        mcnn_image_free(&img);
        return;
    }
    TEST_ASSERT(strstr(mcnn_last_error(), what) != NULL, "%s: message '%s' does not name the file",
                what, mcnn_last_error());
    TEST_ASSERT(!word || strstr(mcnn_last_error(), word), "%s: message '%s' lacks '%s'", what,
                mcnn_last_error(), word);
    TEST_ASSERT(img.pixels == NULL && img.width == 0 && img.height == 0,
                "%s: image not left empty", what);
}

static void test_jpeg_unsupported(void)
{
    size_t n = 0;
    unsigned char *a = read_jpeg("reject_arithmetic", &n);
    if (a) expect_fail(a, n, MCNN_ERR_UNSUPPORTED, "arithmetic", "arith.jpg");
    free(a);
    unsigned char *c = read_jpeg("reject_cmyk", &n);
    if (c) expect_fail(c, n, MCNN_ERR_UNSUPPORTED, "CMYK", "cmyk.jpg");
    free(c);

    unsigned char *b = read_jpeg("rgb_420_q90_17x13", &n);
    if (!b) return;
    long sof = find_segment(b, n, 0xC0);
    TEST_ASSERT(sof > 0, "SOF0 found");
    if (sof <= 0) return;
    unsigned char *m = malloc(n);
    memcpy(m, b, n), m[sof + 4] = 12; /* precision */
    expect_fail(m, n, MCNN_ERR_UNSUPPORTED, "12-bit", "twelve.jpg");
    memcpy(m, b, n), m[sof + 1] = 0xC3;
    expect_fail(m, n, MCNN_ERR_UNSUPPORTED, "lossless", "lossless.jpg");
    memcpy(m, b, n), m[sof + 1] = 0xC5;
    expect_fail(m, n, MCNN_ERR_UNSUPPORTED, "hierarchical", "hier.jpg");
    memcpy(m, b, n), m[sof + 1] = 0xCA;
    expect_fail(m, n, MCNN_ERR_UNSUPPORTED, "arithmetic", "arith2.jpg");
    memcpy(m, b, n), m[sof + 5] = 0, m[sof + 6] = 0; /* height 0: DNL */
    expect_fail(m, n, MCNN_ERR_UNSUPPORTED, "DNL", "dnl.jpg");
    free(m);
    free(b);
}

/* Corrupt headers, each patched into a valid 4:2:0 file. */
static void test_jpeg_bad_headers(void)
{
    size_t n = 0;
    unsigned char *b = read_jpeg("rgb_420_q90_17x13", &n);
    if (!b) return;
    long sof = find_segment(b, n, 0xC0), dht = find_segment(b, n, 0xC4),
         dqt = find_segment(b, n, 0xDB), sos = find_segment(b, n, 0xDA);
    TEST_ASSERT(sof > 0 && dht > 0 && dqt > 0 && sos > 0, "segments found");
    if (sof <= 0 || dht <= 0 || dqt <= 0 || sos <= 0) return;
    unsigned char *m = malloc(n + 16);

    expect_fail(b, 0, MCNN_ERR_FORMAT, "SOI", "empty.jpg");
    expect_fail((const unsigned char *)"\x89PNG\r\n", 6, MCNN_ERR_FORMAT, "SOI", "png.jpg");
    expect_fail(b, 2, MCNN_ERR_FORMAT, NULL, "soi_only.jpg");

    memcpy(m, b, n), m[sof + 7] = 0, m[sof + 8] = 0;
    expect_fail(m, n, MCNN_ERR_FORMAT, "width", "zero_width.jpg");
    /* 65535 x 65535 is over MCNN_IMAGE_MAX_PIXELS: refused before any allocation. */
    memcpy(m, b, n), m[sof + 5] = m[sof + 6] = m[sof + 7] = m[sof + 8] = 0xFF;
    expect_fail(m, n, MCNN_ERR_FORMAT, "limit", "huge.jpg");
    memcpy(m, b, n), m[sof + 11] = 0x00; /* Y sampling 0x0 */
    expect_fail(m, n, MCNN_ERR_FORMAT, "sampling", "samp0.jpg");
    memcpy(m, b, n), m[sof + 11] = 0x55; /* 5x5 */
    expect_fail(m, n, MCNN_ERR_FORMAT, "sampling", "samp5.jpg");
    memcpy(m, b, n), m[sof + 11] = 0x32; /* 3x2 luma over 1x1 chroma... fine; make chroma 2x1 */
    m[sof + 14] = 0x21;
    expect_fail(m, n, MCNN_ERR_UNSUPPORTED, "fractional", "fract.jpg");
    memcpy(m, b, n), m[sof + 12] = 7; /* quantisation table 7 */
    expect_fail(m, n, MCNN_ERR_FORMAT, "quantisation", "tq7.jpg");
    memcpy(m, b, n), m[sof + 13] = m[sof + 10]; /* two components with one id */
    expect_fail(m, n, MCNN_ERR_FORMAT, "twice", "dupid.jpg");
    memcpy(m, b, n), m[sof + 9] = 2; /* 2 components: length no longer fits */
    expect_fail(m, n, MCNN_ERR_FORMAT, "length", "ncomp.jpg");
    memcpy(m, b, n), m[sof + 2] = 0, m[sof + 3] = 5; /* SOF length 5 */
    expect_fail(m, n, MCNN_ERR_FORMAT, NULL, "soflen.jpg");
    memcpy(m, b, n), m[sof + 2] = 0xFF; /* length past the end of the file */
    expect_fail(m, n, MCNN_ERR_FORMAT, "length", "sofpast.jpg");

    memcpy(m, b, n), m[sos + 5] = 9; /* scan names component id 9 */
    expect_fail(m, n, MCNN_ERR_FORMAT, "component id 9", "scanid.jpg");
    memcpy(m, b, n), m[sos + 7] = m[sos + 5]; /* scan names a component twice */
    expect_fail(m, n, MCNN_ERR_FORMAT, "twice", "scandup.jpg");
    memcpy(m, b, n), m[sos + 6] = 0x33; /* Huffman tables 3/3, never defined */
    expect_fail(m, n, MCNN_ERR_FORMAT, "Huffman table", "notable.jpg");
    memcpy(m, b, n), m[sos + 4] = 4; /* 4 components in a 3-component frame */
    expect_fail(m, n, MCNN_ERR_FORMAT, "scan header", "scan4.jpg");

    /* Tables missing: cut the DQT / all DHT segments out. */
    size_t dqt_len = 2 + (size_t)((b[dqt + 2] << 8) | b[dqt + 3]);
    memcpy(m, b, (size_t)dqt), memcpy(m + dqt, b + dqt + dqt_len, n - dqt - dqt_len);
    {
        /* the file may hold a second DQT; remove the one the luma uses by retargeting it */
        size_t mn = n - dqt_len;
        long s2 = find_segment(m, mn, 0xC0);
        if (s2 > 0) m[s2 + 12] = 3, m[s2 + 15] = 3, m[s2 + 18] = 3;
        expect_fail(m, mn, MCNN_ERR_FORMAT, "quantisation table", "nodqt.jpg");
    }
    size_t dht_end = (size_t)dht;
    while (b[dht_end] == 0xFF && b[dht_end + 1] == 0xC4)
        dht_end += 2 + (size_t)((b[dht_end + 2] << 8) | b[dht_end + 3]);
    memcpy(m, b, (size_t)dht), memcpy(m + dht, b + dht_end, n - dht_end);
    expect_fail(m, n - (dht_end - dht), MCNN_ERR_FORMAT, "Huffman table", "nodht.jpg");

    /* A DHT whose counts overflow the code space: three codes of length 1. */
    memcpy(m, b, n), m[dht + 5] = 3, m[dht + 6] = 0;
    expect_fail(m, n, MCNN_ERR_FORMAT, NULL, "dhtover.jpg");
    memcpy(m, b, n), m[dht + 4] = 0x27; /* class 2 */
    expect_fail(m, n, MCNN_ERR_FORMAT, "Huffman", "dhtclass.jpg");
    memcpy(m, b, n), m[dqt + 4] = 0x25; /* precision 2 */
    expect_fail(m, n, MCNN_ERR_FORMAT, "quantisation", "dqtprec.jpg");

    /* SOS before SOF: move the SOS header in front of everything. */
    memcpy(m, b, 2), memcpy(m + 2, b + sos, n - sos);
    expect_fail(m, 2 + n - sos, MCNN_ERR_FORMAT, "before the frame", "sosfirst.jpg");
    free(m);
    free(b);

    /* The Huffman table builder on its own: full code spaces are refused, as libjpeg does,
     * because an all-ones code is not allowed (C.2). */
    jpeg_huffman t;
    uint8_t counts[16] = {0}, vals[256] = {0};
    counts[0] = 2; /* codes 0 and 1 of length 1: "1" is all ones */
    TEST_ASSERT(mcnn_jpeg_build_huffman(&t, counts, vals) != 0, "all-ones code accepted");
    counts[0] = 3; /* more codes of length 1 than there are */
    TEST_ASSERT(mcnn_jpeg_build_huffman(&t, counts, vals) != 0, "3 codes of length 1 accepted");
    counts[0] = 0, counts[6] = 120, counts[7] = 10, counts[8] = 13; /* length 9 runs to 512 */
    TEST_ASSERT(mcnn_jpeg_build_huffman(&t, counts, vals) != 0, "overfull length 9 accepted");
    memset(counts, 0, sizeof counts);
    counts[0] = 1, counts[1] = 1; /* 0, 10 */
    TEST_ASSERT(mcnn_jpeg_build_huffman(&t, counts, vals) == 0, "valid table refused");
}

/* Restart markers must be there, numbered in order. */
static void test_jpeg_bad_restart(void)
{
    size_t n = 0;
    unsigned char *b = read_jpeg("rgb_420_rst1mcu_33x31", &n);
    if (!b) return;
    long sos = find_segment(b, n, 0xDA);
    unsigned char *m = malloc(n);
    size_t rst = 0;
    for (size_t p = (size_t)sos + 2; p + 1 < n; p++)
        if (b[p] == 0xFF && b[p + 1] == 0xD1) { rst = p; break; }
    TEST_ASSERT(rst > 0, "RST1 found");
    if (rst) {
        memcpy(m, b, n), m[rst + 1] = 0xD3; /* RST3 where RST1 belongs */
        expect_fail(m, n, MCNN_ERR_FORMAT, "RST1", "rstnum.jpg");
        memcpy(m, b, rst), memcpy(m + rst, b + rst + 2, n - rst - 2); /* RST1 removed */
        expect_fail(m, n - 2, MCNN_ERR_FORMAT, NULL, "rstgone.jpg");
    }
    free(m);
    free(b);
}

/* Every prefix of a file: no crash, and failure whenever the cut is inside the scan data.  A
 * baseline file cut just before or inside EOI still decodes, to the same pixels (libjpeg and
 * PIL do the same); a progressive one does not (PIL calls it truncated). */
static void truncation(const char *name, int progressive)
{
    size_t n = 0;
    unsigned char *b = read_jpeg(name, &n);
    if (!b) return;
    mcnn_image full;
    TEST_OK(mcnn_jpeg_decode(&full, b, n, name));
    for (size_t cut = 0; cut < n; cut++) {
        unsigned char *m = malloc(cut ? cut : 1); /* exact size, so ASan sees any over-read */
        memcpy(m, b, cut);
        mcnn_image img;
        mcnn_status s = mcnn_jpeg_decode(&img, m, cut, name);
        int may_pass = !progressive && cut >= n - 2;
        if (!may_pass) TEST_ASSERT(s != MCNN_OK, "%s cut at %zu of %zu decoded", name, cut, n);
        if (s == MCNN_OK) {
            TEST_ASSERT(full.pixels && img.width == full.width && img.height == full.height &&
                            memcmp(img.pixels, full.pixels,
                                   (size_t)img.width * img.height * img.channels) == 0,
                        "%s cut at %zu: pixels differ", name, cut);
            mcnn_image_free(&img);
        } else {
            TEST_ASSERT(strstr(mcnn_last_error(), name), "message '%s'", mcnn_last_error());
        }
        free(m);
    }
    mcnn_image_free(&full);
    free(b);
}

static void test_jpeg_truncated(void)
{
    truncation("rgb_420_q90_17x13", 0);
    truncation("rgb_420_rst1mcu_33x31", 0);
    truncation("rgb_420_prog_q90_33x31", 1);
    truncation("gray_prog_rst3mcu_33x31", 1);
}

/* Deterministic fuzzing: flip a few bytes of valid files, thousands of times.  Any outcome is
 * fine except a crash, a hang or a sanitizer report; a success must give a sane image. */
static void test_jpeg_fuzz(void)
{
    const char *names[] = {"rgb_420_q90_17x13",       "rgb_420_prog_q90_33x31",
                           "rgb_420_rst1mcu_33x31",   "gray_prog_rst3mcu_33x31",
                           "rgb_422_prog_opt_q90_64x48", "rgb_420_prog_script_33x31",
                           "rgb_440_prog_17x13",      "rgb_420_q90_5x4"};
    const int nfiles = (int)(sizeof names / sizeof names[0]), iters = 500;
    unsigned long long s = 0x243F6A8885A308D3ull;
    int ok = 0, failed = 0;
    for (int f = 0; f < nfiles; f++) {
        size_t n = 0;
        unsigned char *b = read_jpeg(names[f], &n);
        if (!b) continue;
        unsigned char *m = malloc(n);
        for (int it = 0; it < iters; it++) {
            memcpy(m, b, n);
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            int flips = 1 + (int)(s % 4);
            for (int k = 0; k < flips; k++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                size_t at = (size_t)(s % n);
                /* half the time a single bit, half the time a random byte */
                m[at] = (s >> 32) & 1 ? (unsigned char)(m[at] ^ (1u << ((s >> 40) & 7)))
                                      : (unsigned char)(s >> 48);
            }
            size_t len = n;
            if (it % 7 == 0) len = (size_t)((s >> 20) % n); /* sometimes truncated too */
            mcnn_image img;
            mcnn_status st = mcnn_jpeg_decode(&img, m, len, "fuzz.jpg");
            if (st == MCNN_OK) {
                ok++;
                TEST_ASSERT(img.pixels && img.width > 0 && img.height > 0 &&
                                (img.channels == 1 || img.channels == 3),
                            "fuzz: bad image %dx%dx%d", img.width, img.height, img.channels);
                mcnn_image_free(&img);
            } else {
                failed++;
                TEST_ASSERT(strstr(mcnn_last_error(), "fuzz.jpg") && img.pixels == NULL,
                            "fuzz: message '%s'", mcnn_last_error());
            }
        }
        free(m);
        free(b);
    }
    fprintf(stderr, "  %d fuzzed files: %d decoded, %d refused\n", ok + failed, ok, failed);
    TEST_ASSERT(ok + failed == nfiles * iters, "ran %d of %d", ok + failed, nfiles * iters);
}

int main(void)
{
    TEST_RUN(test_jpeg_matches_pil);
    TEST_RUN(test_jpeg_exif_orientation_ignored);
    TEST_RUN(test_jpeg_idct_vs_reference);
    TEST_RUN(test_jpeg_unsupported);
    TEST_RUN(test_jpeg_bad_headers);
    TEST_RUN(test_jpeg_bad_restart);
    TEST_RUN(test_jpeg_truncated);
    TEST_RUN(test_jpeg_fuzz);
    return test_summary();
}
