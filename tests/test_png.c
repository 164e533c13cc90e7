/* PNG decoder against PIL: every colour type and bit depth, Adam7, all five filters, palettes
 * with and without tRNS, 16-bit, split IDATs, tiny sizes.  The expected pixels are PIL's
 * Image.open(f).convert('L' / 'RGB') (tests/ref/gen_images.py; for the PNGs it wrote itself
 * the generator also checked PIL against pixels computed independently with numpy).  Then
 * corrupt files: structurally bad ones from the generator, truncations at every byte, bad
 * CRCs, and random byte flips (with and without fixing up the CRCs, so that the damage reaches
 * the inflater and the filters).  Run under SANITIZE=1 as well. */
#include "mcnn_test.h"
#include "test_util.h"

#include <stdint.h>

#define DIR "tests/data/images/"
#define GOLDEN DIR "golden.safetensors"

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Compare a decoded image with the golden tensor of the same name, (H, W, C) U8. */
static void expect_golden(mcnn_safetensors *st, const mcnn_st_tensor *t, const mcnn_image *img)
{
    TEST_ASSERT(t->ndim == 3, "%s: golden is not (H, W, C)", t->name);
    if (t->ndim != 3) return;
    TEST_ASSERT(img->height == t->shape[0] && img->width == t->shape[1] && img->channels == t->shape[2],
                "%s: decoded %dx%dx%d, PIL %lldx%lldx%lld", t->name, img->height, img->width, img->channels,
                (long long)t->shape[0], (long long)t->shape[1], (long long)t->shape[2]);
    if (img->height != t->shape[0] || img->width != t->shape[1] || img->channels != t->shape[2]) return;
    int32_t *want = malloc(t->numel * sizeof *want);
    TEST_OK(mcnn_safetensors_read_i32(st, t, want));
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < t->numel; i++)
        if (img->pixels[i] != want[i] && !bad++) first = i;
    TEST_ASSERT(bad == 0, "%s: %zu of %zu samples differ from PIL; first at %zu: got %d want %d", t->name, bad,
                t->numel, first, img->pixels[first], want[first]);
    free(want);
}

static void test_png_goldens(void)
{
    mcnn_safetensors *st = NULL;
    TEST_OK(mcnn_safetensors_open(&st, GOLDEN));
    if (!st) return;
    int count = 0;
    for (int i = 0; i < mcnn_safetensors_count(st); i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
        if (!ends_with(t->name, ".png")) continue;
        char path[512];
        snprintf(path, sizeof path, DIR "%s", t->name);
        mcnn_image img;
        TEST_OK(mcnn_image_load(&img, path));
        if (img.pixels) expect_golden(st, t, &img);
        /* the same bytes through the PNG decoder directly */
        size_t n;
        unsigned char *data = test_read_file(path, &n);
        mcnn_image img2;
        TEST_OK(mcnn_png_decode(&img2, data, n, t->name));
        TEST_ASSERT(img2.pixels && img.pixels &&
                        memcmp(img.pixels, img2.pixels, (size_t)img.width * img.height * img.channels) == 0,
                    "%s: decode from memory differs", t->name);
        mcnn_image_free(&img2);
        free(data);
        mcnn_image_free(&img);
        TEST_ASSERT(img.pixels == NULL && img.width == 0, "mcnn_image_free left fields set");
        count++;
    }
    TEST_ASSERT(count >= 45, "only %d PNG goldens", count);
    fprintf(stderr, "  %d PNGs match PIL\n", count);
    mcnn_safetensors_close(st);
}

static void test_png_to_rgb(void)
{
    mcnn_image img;
    TEST_OK(mcnn_image_load(&img, DIR "c0_d4_i_17x13.png"));
    if (!img.pixels) return;
    TEST_ASSERT(img.channels == 1, "gray PNG decoded with %d channels", img.channels);
    unsigned char *gray = malloc((size_t)img.width * img.height);
    memcpy(gray, img.pixels, (size_t)img.width * img.height);
    TEST_OK(mcnn_image_to_rgb(&img));
    TEST_ASSERT(img.channels == 3, "to_rgb: %d channels", img.channels);
    int bad = 0;
    for (int i = 0; i < img.width * img.height; i++)
        bad += img.pixels[3 * i] != gray[i] || img.pixels[3 * i + 1] != gray[i] || img.pixels[3 * i + 2] != gray[i];
    TEST_ASSERT(bad == 0, "to_rgb: %d pixels are not the gray value replicated", bad);
    TEST_OK(mcnn_image_to_rgb(&img)); /* already RGB: nothing to do */
    free(gray);
    mcnn_image_free(&img);
    mcnn_image empty = {0, 0, 0, NULL};
    TEST_ASSERT(mcnn_image_to_rgb(&empty) == MCNN_ERR_ARG, "to_rgb of an empty image accepted");
}

typedef void (*blob_fn)(const char *name, const unsigned char *data, size_t size);

/* Visit the named byte strings of a blob file: [u32 count] then [u8 len, name, u32 size, bytes]. */
static int each_in_blob(const char *path, blob_fn fn)
{
    size_t n;
    unsigned char *blob = test_read_file(path, &n);
    if (!blob) return 0;
    uint32_t count = blob[0] | blob[1] << 8 | blob[2] << 16 | (uint32_t)blob[3] << 24;
    size_t pos = 4;
    int seen = 0;
    for (uint32_t i = 0; i < count && pos < n; i++, seen++) {
        char name[256];
        size_t len = blob[pos++];
        memcpy(name, blob + pos, len);
        name[len] = 0;
        pos += len;
        size_t sz = blob[pos] | blob[pos + 1] << 8 | blob[pos + 2] << 16 | (size_t)blob[pos + 3] << 24;
        pos += 4;
        fn(name, blob + pos, sz);
        pos += sz;
    }
    TEST_ASSERT(pos == n, "%s: trailing bytes", path);
    free(blob);
    return seen;
}

static void expect_rejected(const char *name, const unsigned char *data, size_t size)
{
    mcnn_image img;
    mcnn_status st = mcnn_image_decode(&img, data, size, name);
    TEST_ASSERT(st != MCNN_OK, "%s: accepted", name);
    TEST_ASSERT(img.pixels == NULL && img.width == 0, "%s: image not left empty", name);
    TEST_ASSERT(strstr(mcnn_last_error(), name) != NULL, "%s: message does not name it: %s", name, mcnn_last_error());
    if (getenv("MCNN_TEST_VERBOSE")) fprintf(stderr, "  %s\n", mcnn_last_error());
    mcnn_image_free(&img);
}

static void test_png_bad_files(void)
{
    int n = each_in_blob(DIR "bad_png.bin", expect_rejected);
    TEST_ASSERT(n == 28, "%d bad PNGs", n);
}

/* Byte offsets of the chunks of a valid PNG. */
static int chunk_offsets(const unsigned char *d, size_t n, size_t *off, int max)
{
    int k = 0;
    for (size_t pos = 8; pos + 12 <= n && k < max;) {
        off[k++] = pos;
        size_t len = (size_t)d[pos] << 24 | (size_t)d[pos + 1] << 16 | (size_t)d[pos + 2] << 8 | d[pos + 3];
        pos += len + 12;
    }
    return k;
}

static void test_png_truncated_and_crc(void)
{
    const char *files[] = {DIR "c6_d16_i_9x1.png", DIR "c3_d2_i_5x3.png", DIR "pil_rgb_48x64.png"};
    for (int f = 0; f < 3; f++) {
        size_t n;
        unsigned char *d = test_read_file(files[f], &n);
        if (!d) continue;
        int accepted = 0, unnamed = 0;
        for (size_t cut = 0; cut < n; cut += n > 2000 && cut > 100 && cut < n - 100 ? 37 : 1) {
            mcnn_image img;
            if (mcnn_image_decode(&img, d, cut, files[f]) == MCNN_OK) accepted++;
            else if (!strstr(mcnn_last_error(), files[f])) unnamed++;
            mcnn_image_free(&img);
        }
        TEST_ASSERT(accepted == 0 && unnamed == 0, "%s: %d truncations accepted, %d messages without the name",
                    files[f], accepted, unnamed);
        /* a flipped bit inside every chunk (type, data or CRC) breaks its CRC */
        size_t off[64];
        int k = chunk_offsets(d, n, off, 64);
        for (int c = 0; c < k; c++) {
            size_t len = (size_t)d[off[c]] << 24 | (size_t)d[off[c] + 1] << 16 | (size_t)d[off[c] + 2] << 8 | d[off[c] + 3];
            size_t at = off[c] + 4 + (len + 8) / 2; /* somewhere after the length field */
            d[at] ^= 0x04;
            mcnn_image img;
            mcnn_status st = mcnn_image_decode(&img, d, n, files[f]);
            TEST_ASSERT(st != MCNN_OK && (strstr(mcnn_last_error(), "CRC") || strstr(mcnn_last_error(), "chunk type")),
                        "%s: flip in chunk %d at byte %zu: %s", files[f], c, at, st == MCNN_OK ? "accepted" : mcnn_last_error());
            mcnn_image_free(&img);
            d[at] ^= 0x04;
        }
        free(d);
    }
}

/* The CRC-32 of PNG chunks, bit at a time: the test's own, so that fuzzed files can be given
 * valid CRCs and reach the decoder proper. */
static uint32_t crc32_bitwise(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void fix_crcs(unsigned char *d, size_t n)
{
    for (size_t pos = 8; pos + 12 <= n;) {
        size_t len = (size_t)d[pos] << 24 | (size_t)d[pos + 1] << 16 | (size_t)d[pos + 2] << 8 | d[pos + 3];
        if (len > n - pos - 12) return;
        uint32_t c = crc32_bitwise(d + pos + 4, len + 4);
        unsigned char *q = d + pos + 8 + len;
        q[0] = (unsigned char)(c >> 24), q[1] = (unsigned char)(c >> 16), q[2] = (unsigned char)(c >> 8), q[3] = (unsigned char)c;
        pos += len + 12;
    }
}

static void test_png_fuzz(void)
{
    const char *files[] = {DIR "c3_d4_i_17x13.png", DIR "c2_d16_3x5.png", DIR "c0_d1_i_17x13.png", DIR "pil_rgba.png"};
    unsigned long long s = 0x5eed;
    int decoded = 0, total = 0;
    for (int f = 0; f < 4; f++) {
        size_t n;
        unsigned char *orig = test_read_file(files[f], &n);
        if (!orig) continue;
        /* the CRC the test computes agrees with the file's (so fix_crcs is a no-op on it) */
        unsigned char *d = malloc(n);
        memcpy(d, orig, n);
        fix_crcs(d, n);
        TEST_ASSERT(memcmp(d, orig, n) == 0, "%s: the test's CRC-32 disagrees with the file", files[f]);
        for (int it = 0; it < 1000; it++, total++) {
            memcpy(d, orig, n);
            int flips = 1 + it % 3;
            for (int k = 0; k < flips; k++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                size_t at = 8 + (s >> 16) % (n - 8);
                d[at] = (it & 4) ? (unsigned char)(s >> 8) : d[at] ^ (unsigned char)(1u << (s % 8));
            }
            if (it % 4 != 3) fix_crcs(d, n); /* most of the time, let the damage through */
            mcnn_image img;
            if (mcnn_image_decode(&img, d, n, "fuzz") == MCNN_OK) {
                decoded++;
                TEST_ASSERT(img.width > 0 && img.height > 0 && (img.channels == 1 || img.channels == 3),
                            "fuzz: decoded a %dx%dx%d image", img.width, img.height, img.channels);
            } else {
                TEST_ASSERT(img.pixels == NULL, "fuzz: pixels left after an error");
            }
            mcnn_image_free(&img);
        }
        free(d);
        free(orig);
    }
    fprintf(stderr, "  %d fuzzed PNGs: %d decoded, the rest rejected\n", total, decoded);
}

static void test_image_load_errors(void)
{
    mcnn_image img;
    TEST_ASSERT(mcnn_image_load(&img, DIR "no_such.png") == MCNN_ERR_IO, "missing file");
    TEST_ASSERT(strstr(mcnn_last_error(), "no_such.png"), "%s", mcnn_last_error());
    TEST_ASSERT(mcnn_image_load(&img, DIR "sample.bin") == MCNN_ERR_FORMAT, "not an image");
    TEST_ASSERT(strstr(mcnn_last_error(), "sample.bin") && strstr(mcnn_last_error(), "unrecognised"), "%s",
                mcnn_last_error());
    TEST_ASSERT(mcnn_image_decode(&img, (const unsigned char *)"", 0, "nothing") == MCNN_ERR_FORMAT, "empty input");
    TEST_ASSERT(strstr(mcnn_last_error(), "nothing"), "%s", mcnn_last_error());
    TEST_ASSERT(img.pixels == NULL, "pixels after an error");
}

/* mcnn_image_load picks the decoder by the magic bytes: each file gives what its own decoder
 * gives (their pixels are checked against PIL in test_png, test_ppm and test_jpeg). */
static void test_image_dispatch(void)
{
    static const struct {
        const char *path;
        mcnn_status (*decode)(mcnn_image *, const unsigned char *, size_t, const char *);
    } files[] = {{DIR "c6_d8_i_17x13.png", mcnn_png_decode},
                 {DIR "p6_255_17x13.ppm", mcnn_ppm_decode},
                 {DIR "p2_255_4x3.pgm", mcnn_ppm_decode},
                 {"tests/data/jpeg/rgb_420_q90_17x13.jpg", mcnn_jpeg_decode},
                 {"tests/data/jpeg/gray_q90_17x13.jpg", mcnn_jpeg_decode}};
    for (int i = 0; i < 5; i++) {
        FILE *f = fopen(files[i].path, "rb");
        if (!f) {
            TEST_SKIP("%s absent", files[i].path);
            continue;
        }
        fclose(f);
        size_t n;
        unsigned char *d = test_read_file(files[i].path, &n);
        mcnn_image a, b;
        TEST_OK(mcnn_image_load(&a, files[i].path));
        TEST_OK(files[i].decode(&b, d, n, files[i].path));
        TEST_ASSERT(a.pixels && b.pixels && a.width == b.width && a.height == b.height && a.channels == b.channels &&
                        memcmp(a.pixels, b.pixels, (size_t)a.width * a.height * a.channels) == 0,
                    "%s: mcnn_image_load differs from its decoder", files[i].path);
        mcnn_image_free(&a);
        mcnn_image_free(&b);
        free(d);
    }
}

int main(void)
{
    TEST_RUN(test_png_goldens);
    TEST_RUN(test_png_to_rgb);
    TEST_RUN(test_png_bad_files);
    TEST_RUN(test_png_truncated_and_crc);
    TEST_RUN(test_png_fuzz);
    TEST_RUN(test_image_load_errors);
    TEST_RUN(test_image_dispatch);
    return test_summary();
}
