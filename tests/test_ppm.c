/* PPM/PGM reader against PIL (binary and ASCII, maxval 1 .. 65535, comments), corrupt
 * headers and rasters, and the P6/P5 writer checked byte for byte against the netpbm format. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"
#include "test_util.h"

#include <stdint.h>
#include <unistd.h>

#define DIR "tests/data/images/"
#define GOLDEN DIR "golden.safetensors"

static int is_pnm(const char *s)
{
    size_t n = strlen(s);
    return n > 4 && (strcmp(s + n - 4, ".ppm") == 0 || strcmp(s + n - 4, ".pgm") == 0);
}

static void test_ppm_goldens(void)
{
    mcnn_safetensors *st = NULL;
    TEST_OK(mcnn_safetensors_open(&st, GOLDEN));
    if (!st) return;
    int count = 0;
    for (int i = 0; i < mcnn_safetensors_count(st); i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
        if (!is_pnm(t->name)) continue;
        char path[512];
        snprintf(path, sizeof path, DIR "%s", t->name);
        mcnn_image img;
        TEST_OK(mcnn_image_load(&img, path));
        count++;
        if (!img.pixels) continue;
        TEST_ASSERT(t->ndim == 3 && img.height == t->shape[0] && img.width == t->shape[1] && img.channels == t->shape[2],
                    "%s: decoded %dx%dx%d", t->name, img.height, img.width, img.channels);
        if (img.height == t->shape[0] && img.width == t->shape[1] && img.channels == t->shape[2]) {
            int32_t *want = malloc(t->numel * sizeof *want);
            TEST_OK(mcnn_safetensors_read_i32(st, t, want));
            size_t bad = 0, first = 0;
            for (size_t k = 0; k < t->numel; k++)
                if (img.pixels[k] != want[k] && !bad++) first = k;
            TEST_ASSERT(bad == 0, "%s: %zu samples differ from PIL; first at %zu: got %d want %d", t->name, bad, first,
                        img.pixels[first], want[first]);
            free(want);
        }
        mcnn_image_free(&img);
    }
    TEST_ASSERT(count >= 23, "only %d PPM/PGM goldens", count);
    fprintf(stderr, "  %d PPM/PGM files match PIL\n", count);
    mcnn_safetensors_close(st);
}

static void test_ppm_bad(void)
{
    size_t n;
    unsigned char *blob = test_read_file(DIR "bad_ppm.bin", &n);
    if (!blob) return;
    uint32_t count = blob[0] | blob[1] << 8 | blob[2] << 16 | (uint32_t)blob[3] << 24;
    size_t pos = 4;
    uint32_t i = 0;
    for (; i < count && pos < n; i++) {
        char name[256];
        size_t len = blob[pos++];
        memcpy(name, blob + pos, len);
        name[len] = 0;
        pos += len;
        size_t sz = blob[pos] | blob[pos + 1] << 8 | blob[pos + 2] << 16 | (size_t)blob[pos + 3] << 24;
        pos += 4;
        mcnn_image img;
        /* through the dispatcher and directly ("P7" is not even recognised by the dispatcher) */
        TEST_ASSERT(mcnn_image_decode(&img, blob + pos, sz, name) != MCNN_OK, "%s: accepted", name);
        TEST_ASSERT(strstr(mcnn_last_error(), name), "%s: message does not name it: %s", name, mcnn_last_error());
        TEST_ASSERT(mcnn_ppm_decode(&img, blob + pos, sz, name) != MCNN_OK, "%s: accepted", name);
        TEST_ASSERT(img.pixels == NULL && img.width == 0, "%s: image not left empty", name);
        if (getenv("MCNN_TEST_VERBOSE")) fprintf(stderr, "  %s\n", mcnn_last_error());
        pos += sz;
    }
    TEST_ASSERT(i == 14 && pos == n, "%u bad PPMs read", i);
    free(blob);
}

static void test_ppm_truncated(void)
{
    const char *files[] = {DIR "p6_255_17x13.ppm", DIR "p5_65535_3x5.pgm", DIR "p6_1023_5x3.ppm"};
    for (int f = 0; f < 3; f++) {
        size_t n;
        unsigned char *d = test_read_file(files[f], &n);
        if (!d) continue;
        int accepted = 0;
        for (size_t cut = 0; cut < n; cut++) {
            mcnn_image img;
            if (mcnn_ppm_decode(&img, d, cut, files[f]) == MCNN_OK) accepted++;
            mcnn_image_free(&img);
        }
        TEST_ASSERT(accepted == 0, "%s: %d truncations accepted", files[f], accepted);
        free(d);
    }
    /* ASCII: dropping whole samples at the end is detected */
    static const char p3[] = "P3\n2 1\n255\n1 2 3 4 5 6\n";
    for (size_t cut = 0; cut < sizeof p3 - 1; cut++) {
        if (cut >= 21) break; /* from "6" on, a cut leaves all six samples */
        mcnn_image img;
        TEST_ASSERT(mcnn_ppm_decode(&img, (const unsigned char *)p3, cut, "p3") != MCNN_OK, "P3 cut at %zu accepted", cut);
        mcnn_image_free(&img);
    }
}

static void test_ppm_write(void)
{
    /* write a PIL-checked image and a gray one; the bytes must be exactly the netpbm format */
    mcnn_image img;
    TEST_OK(mcnn_image_load(&img, DIR "p6_1023_5x3.ppm"));
    if (!img.pixels) return;
    char path[256];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/mcnn_test_ppm_%ld.ppm", dir && *dir ? dir : "/tmp", (long)getpid());
    TEST_OK(mcnn_ppm_write(path, &img));
    size_t n;
    unsigned char *d = test_read_file(path, &n);
    const char *head = "P6\n5 3\n255\n";
    size_t hn = strlen(head);
    TEST_ASSERT(d && n == hn + 45 && memcmp(d, head, hn) == 0 && memcmp(d + hn, img.pixels, 45) == 0,
                "P6 file is not the header + raw pixels (%zu bytes)", n);
    free(d);
    mcnn_image back;
    TEST_OK(mcnn_image_load(&back, path));
    TEST_ASSERT(back.pixels && back.width == 5 && back.height == 3 && back.channels == 3 &&
                    memcmp(back.pixels, img.pixels, 45) == 0,
                "P6 round trip differs");
    mcnn_image_free(&back);
    mcnn_image_free(&img);

    TEST_OK(mcnn_image_load(&img, DIR "p5_15_4x4.pgm"));
    TEST_OK(mcnn_ppm_write(path, &img));
    d = test_read_file(path, &n);
    head = "P5\n4 4\n255\n";
    hn = strlen(head);
    TEST_ASSERT(d && n == hn + 16 && memcmp(d, head, hn) == 0 && memcmp(d + hn, img.pixels, 16) == 0,
                "P5 file is not the header + raw pixels");
    free(d);
    remove(path);
    mcnn_image_free(&img);

    mcnn_image empty = {0, 0, 0, NULL};
    TEST_ASSERT(mcnn_ppm_write(path, &empty) == MCNN_ERR_ARG, "empty image written");
    unsigned char px[3] = {1, 2, 3};
    mcnn_image one = {1, 1, 3, px};
    TEST_ASSERT(mcnn_ppm_write("/nonexistent_dir/x.ppm", &one) == MCNN_ERR_IO, "unwritable path");
    TEST_ASSERT(strstr(mcnn_last_error(), "/nonexistent_dir/x.ppm"), "%s", mcnn_last_error());
}

/* The reference images shipped with the CLIP goldens are P6 files. */
static void test_shared_ppm(void)
{
    const char *path = test_shared_path("ref/clip_tiny_img0.ppm");
    FILE *f = fopen(path, "rb");
    if (!f) {
        TEST_SKIP("%s absent", path);
        return;
    }
    fclose(f);
    mcnn_image img;
    TEST_OK(mcnn_image_load(&img, path));
    TEST_ASSERT(img.width == 64 && img.height == 64 && img.channels == 3, "%dx%dx%d", img.width, img.height,
                img.channels);
    mcnn_image_free(&img);
}

int main(void)
{
    TEST_RUN(test_ppm_goldens);
    TEST_RUN(test_ppm_bad);
    TEST_RUN(test_ppm_truncated);
    TEST_RUN(test_ppm_write);
    TEST_RUN(test_shared_ppm);
    return test_summary();
}
