/* Preprocessing against PIL 9.4 and torchvision 0.14 (tests/ref/gen_preprocess.py):
 *   - PIL's Image.resize, six filters, up/down/one-sided/extreme aspect/1x1/L images:
 *     bit-exact (max |diff| 0 asserted, and the count of differing pixels printed);
 *   - torchvision Resize(int), CenterCrop (half-to-even offsets, padding), PIL convert: exact;
 *   - clip._transform, the ResNet-50 / ViT-B/16 ImageNet preset and a gray pipeline as float
 *     tensors: within 1e-6 (the largest difference is printed);
 *   - the official CLIP reference's normalised images (/work/shared/ref), when present;
 *   - RandomResizedCrop: our draws against torchvision's sampler's moments, the fallback box,
 *     and the flip rate;
 *   - error paths. */
#include "mcnn_test.h"

#define GOLDEN "tests/data/preprocess.safetensors"

static mcnn_safetensors *golden;

/* ---- helpers --------------------------------------------------------------------------------- */

/* A U8 (H, W, C) golden as an image (pixels from malloc). */
static int golden_image(mcnn_image *img, const char *name)
{
    memset(img, 0, sizeof *img);
    const mcnn_st_tensor *t = mcnn_safetensors_find(golden, name);
    if (!t || t->ndim != 3) {
        TEST_ASSERT(0, "golden image '%s' missing or not (H, W, C)", name);
        return 0;
    }
    float *f = test_golden(golden, name, NULL);
    if (!f) return 0;
    img->height = (int)t->shape[0], img->width = (int)t->shape[1], img->channels = (int)t->shape[2];
    img->pixels = malloc(t->numel);
    for (size_t i = 0; i < t->numel; i++) img->pixels[i] = (unsigned char)f[i];
    free(f);
    return 1;
}

/* The generator's 320x240 pattern, computed rather than stored. */
static void pattern_image(mcnn_image *img)
{
    img->width = 320, img->height = 240, img->channels = 3;
    img->pixels = malloc(320 * 240 * 3);
    for (int y = 0; y < 240; y++)
        for (int x = 0; x < 320; x++)
            for (int c = 0; c < 3; c++)
                img->pixels[(y * 320 + x) * 3 + c] =
                    (unsigned char)(((x * 3 + y * 2 + c * 70) ^ ((x * y) >> 4)) & 255);
}

static int input_image(mcnn_image *img, const char *name)
{
    if (!strcmp(name, "pattern")) {
        pattern_image(img);
        return 1;
    }
    char key[128];
    snprintf(key, sizeof key, "img/%s", name);
    return golden_image(img, key);
}

/* Byte-exact comparison with a U8 golden; counts into *ndiff / *npx, tracks the max |diff|. */
static void compare_u8(const char *name, const mcnn_image *got, size_t *ndiff, size_t *npx,
                       int *maxdiff)
{
    mcnn_image want;
    if (!golden_image(&want, name)) return;
    if (got->width != want.width || got->height != want.height ||
        got->channels != want.channels) {
        TEST_ASSERT(0, "%s: got %dx%dx%d want %dx%dx%d", name, got->width, got->height,
                    got->channels, want.width, want.height, want.channels);
        free(want.pixels);
        return;
    }
    size_t n = (size_t)want.width * want.height * want.channels, bad = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)got->pixels[i] - (int)want.pixels[i]);
        if (d) bad++;
        if (d > *maxdiff) *maxdiff = d;
    }
    TEST_ASSERT(bad == 0, "%s: %zu of %zu bytes differ", name, bad, n);
    *ndiff += bad, *npx += n;
    free(want.pixels);
}

/* Parse "<prefix><img>/<filter>/<W>x<H>"-style names: the pieces after the prefix. */
static int split3(const char *name, const char *prefix, char *a, char *b, char *c)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n)) return 0;
    return sscanf(name + n, "%63[^/]/%63[^/]/%63s", a, b, c) == 3;
}

static mcnn_resample filter_by_name(const char *s)
{
    static const char *names[] = {"nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, names[i])) return (mcnn_resample)i;
    TEST_ASSERT(0, "unknown filter '%s'", s);
    return MCNN_RESAMPLE_NEAREST;
}

/* max |got - want| over a tensor golden, failing above tol. */
static double compare_f32(const char *name, const float *got, size_t n, double tol)
{
    size_t numel = 0;
    float *want = test_golden(golden, name, &numel);
    if (!want) return INFINITY;
    TEST_ASSERT(numel == n, "%s: %zu values, golden has %zu", name, n, numel);
    double maxd = 0;
    for (size_t i = 0; i < n && i < numel; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= maxd)) maxd = d;
    }
    TEST_ASSERT(maxd <= tol, "%s: max |diff| %.3g > %.3g", name, maxd, tol);
    free(want);
    return maxd;
}

/* ---- resize ---------------------------------------------------------------------------------- */

static void test_resize_pil(void)
{
    size_t ndiff = 0, npx = 0;
    int maxdiff = 0, cases = 0;
    for (int i = 0; i < mcnn_safetensors_count(golden); i++) {
        const char *name = mcnn_safetensors_at(golden, i)->name;
        char img_name[64], filt[64], size[64];
        int w, h;
        if (!split3(name, "resize/", img_name, filt, size)) continue;
        TEST_ASSERT(sscanf(size, "%dx%d", &w, &h) == 2, "bad name %s", name);
        mcnn_image src, got;
        if (!input_image(&src, img_name)) continue;
        mcnn_status s = mcnn_image_resize(&got, &src, w, h, filter_by_name(filt));
        TEST_ASSERT(s == MCNN_OK, "%s: %s", name, mcnn_last_error());
        if (s == MCNN_OK) compare_u8(name, &got, &ndiff, &npx, &maxdiff);
        free(src.pixels), free(got.pixels);
        cases++;
    }
    TEST_ASSERT(cases >= 150, "only %d resize goldens found", cases);
    fprintf(stderr, "  PIL resize: %d cases, %zu bytes, max |diff| %d, %zu bytes differ\n", cases,
            npx, maxdiff, ndiff);
}

/* Weights are normalised per output pixel, so a flat image stays flat under every filter and
 * size (an independent property, not a golden). */
static void test_resize_flat(void)
{
    unsigned char px[7 * 5 * 3];
    memset(px, 173, sizeof px);
    mcnn_image src = {7, 5, 3, px};
    const int sizes[][2] = {{1, 1}, {3, 2}, {7, 11}, {20, 5}, {29, 31}};
    for (int f = MCNN_RESAMPLE_NEAREST; f <= MCNN_RESAMPLE_LANCZOS; f++)
        for (int k = 0; k < 5; k++) {
            mcnn_image got;
            TEST_OK(mcnn_image_resize(&got, &src, sizes[k][0], sizes[k][1], (mcnn_resample)f));
            size_t n = (size_t)got.width * got.height * 3, bad = 0;
            for (size_t i = 0; i < n; i++) bad += got.pixels[i] != 173;
            TEST_ASSERT(bad == 0, "filter %d to %dx%d: %zu pixels not 173", f, sizes[k][0],
                        sizes[k][1], bad);
            free(got.pixels);
        }
}

static void test_resize_shorter(void)
{
    int cases = 0, maxdiff = 0;
    size_t ndiff = 0, npx = 0;
    for (int i = 0; i < mcnn_safetensors_count(golden); i++) {
        const char *name = mcnn_safetensors_at(golden, i)->name;
        char img_name[64], filt[64], size[64];
        if (!split3(name, "short/", img_name, filt, size)) continue;
        mcnn_image src, got;
        if (!input_image(&src, img_name)) continue;
        TEST_OK(mcnn_image_resize_shorter(&got, &src, atoi(size), filter_by_name(filt)));
        compare_u8(name, &got, &ndiff, &npx, &maxdiff);
        free(src.pixels), free(got.pixels);
        cases++;
    }
    TEST_ASSERT(cases == 7, "%d Resize(int) goldens", cases);
    /* torchvision's arithmetic on its own: int(size * long / short), orientation kept */
    int w, h;
    mcnn_resize_shorter_size(&w, &h, 500, 375, 256);
    TEST_ASSERT(w == 341 && h == 256, "500x375 -> %dx%d", w, h);
    mcnn_resize_shorter_size(&w, &h, 375, 500, 224);
    TEST_ASSERT(w == 224 && h == 298, "375x500 -> %dx%d", w, h);
}

static void test_center_crop(void)
{
    int cases = 0, maxdiff = 0;
    size_t ndiff = 0, npx = 0;
    for (int i = 0; i < mcnn_safetensors_count(golden); i++) {
        const char *name = mcnn_safetensors_at(golden, i)->name;
        char img_name[64];
        int w, h;
        if (sscanf(name, "crop/%63[^/]/%dx%d", img_name, &w, &h) != 3) continue;
        mcnn_image src, got;
        if (!input_image(&src, img_name)) continue;
        TEST_OK(mcnn_image_center_crop(&got, &src, w, h));
        compare_u8(name, &got, &ndiff, &npx, &maxdiff);
        free(src.pixels), free(got.pixels);
        cases++;
    }
    TEST_ASSERT(cases == 10, "%d crop goldens", cases);
}

static void test_convert(void)
{
    int cases = 0, maxdiff = 0;
    size_t ndiff = 0, npx = 0;
    for (int i = 0; i < mcnn_safetensors_count(golden); i++) {
        const char *name = mcnn_safetensors_at(golden, i)->name;
        char img_name[64], mode[8];
        if (sscanf(name, "convert/%63[^/]/%7s", img_name, mode) != 2) continue;
        mcnn_image src, got;
        if (!input_image(&src, img_name)) continue;
        TEST_OK(mcnn_image_convert(&got, &src, !strcmp(mode, "L") ? 1 : 3));
        compare_u8(name, &got, &ndiff, &npx, &maxdiff);
        free(src.pixels), free(got.pixels);
        cases++;
    }
    TEST_ASSERT(cases == 6, "%d convert goldens", cases);
}

/* ---- whole pipelines --------------------------------------------------------------------------- */

/* Run cfg on the input and compare the output (optionally its [:, off::step, off::step]). */
static double run_pipeline(const char *golden_name, const char *img_name,
                           const mcnn_preprocess_config *cfg, int off, int step)
{
    mcnn_image src;
    if (!input_image(&src, img_name)) return INFINITY;
    int C, H, W;
    TEST_OK(mcnn_preprocess_shape(&C, &H, &W, src.width, src.height, cfg));
    float *out = malloc((size_t)C * H * W * sizeof(float));
    TEST_OK(mcnn_preprocess(out, &src, cfg));
    size_t n = 0;
    for (int c = 0; c < C; c++)
        for (int y = off; y < H; y += step)
            for (int x = off; x < W; x += step) out[n++] = out[((size_t)c * H + y) * W + x];
    double d = compare_f32(golden_name, out, n, 1e-6);
    free(out), free(src.pixels);
    return d;
}

static void test_clip_transform(void)
{
    double maxd = 0;
    int cases = 0;
    for (int i = 0; i < mcnn_safetensors_count(golden); i++) {
        const char *name = mcnn_safetensors_at(golden, i)->name;
        char img_name[64];
        int n_px;
        if (sscanf(name, "clip/%63[^/]/%d", img_name, &n_px) != 2) continue;
        mcnn_preprocess_config cfg = mcnn_preprocess_clip(n_px);
        maxd = fmax(maxd, run_pipeline(name, img_name, &cfg, 0, 1));
        cases++;
    }
    mcnn_preprocess_config cfg = mcnn_preprocess_clip(224);
    maxd = fmax(maxd, run_pipeline("clip224/pattern", "pattern", &cfg, 3, 7));
    maxd = fmax(maxd, run_pipeline("clip224/grad64x48", "grad64x48", &cfg, 3, 7));
    TEST_ASSERT(cases == 9, "%d CLIP goldens", cases);
    fprintf(stderr, "  clip._transform: %d + 2 cases, max |diff| %.3g\n", cases, maxd);
}

static void test_imagenet_transform(void)
{
    mcnn_preprocess_config cfg = mcnn_preprocess_imagenet();
    TEST_ASSERT(cfg.resize == 256 && cfg.crop == 224 && cfg.filter == MCNN_RESAMPLE_BILINEAR,
                "ImageNet preset is %d/%d/%d", cfg.resize, cfg.crop, (int)cfg.filter);
    double maxd = 0;
    maxd = fmax(maxd, run_pipeline("imagenet/grad64x48", "grad64x48", &cfg, 3, 7));
    maxd = fmax(maxd, run_pipeline("imagenet/pattern", "pattern", &cfg, 3, 7));
    maxd = fmax(maxd, run_pipeline("imagenet/thin5x300", "thin5x300", &cfg, 3, 7));
    mcnn_preprocess_config gray = mcnn_preprocess_gray(16, (float)0.2860, (float)0.3530);
    maxd = fmax(maxd, run_pipeline("gray/noise37x23/16", "noise37x23", &gray, 0, 1));
    maxd = fmax(maxd, run_pipeline("gray/gray29x41/16", "gray29x41", &gray, 0, 1));
    fprintf(stderr, "  ImageNet preset and gray pipeline: max |diff| %.3g\n", maxd);
}

/* A binary PPM (P6, maxval 255) reader: the shared reference images are PPMs, and this test
 * should not depend on the decoders being built. */
static int read_ppm(mcnn_image *img, const char *path)
{
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int w = 0, h = 0, maxv = 0;
    int ok = fscanf(f, "P6 %d %d %d", &w, &h, &maxv) == 3 && fgetc(f) != EOF && maxv == 255 &&
             w > 0 && h > 0 && w <= 4096 && h <= 4096;
    if (ok) {
        img->width = w, img->height = h, img->channels = 3;
        img->pixels = malloc((size_t)w * h * 3);
        ok = fread(img->pixels, 1, (size_t)w * h * 3, f) == (size_t)w * h * 3;
    }
    fclose(f);
    if (!ok) free(img->pixels), img->pixels = NULL;
    return ok;
}

static void test_clip_tiny_reference(void)
{
    mcnn_safetensors *ref = NULL;
    if (mcnn_safetensors_open(&ref, test_shared_path("ref/clip_tiny_ref.safetensors")) != MCNN_OK) {
        TEST_SKIP("%s", mcnn_last_error());
        return;
    }
    size_t numel = 0, nu8 = 0;
    float *want = test_golden(ref, "image", &numel);
    float *want_u8 = test_golden(ref, "image_u8", &nu8);
    const int S = 64, N = 4;
    TEST_ASSERT(numel == (size_t)N * 3 * S * S && nu8 == numel, "reference image tensors");
    mcnn_preprocess_config cfg = mcnn_preprocess_clip(S);
    float *out = malloc(3 * S * S * sizeof(float));
    double maxd = 0;
    for (int k = 0; k < N && want && want_u8 && numel == (size_t)N * 3 * S * S; k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "ref/clip_tiny_img%d.ppm", k);
        mcnn_image img;
        if (!read_ppm(&img, test_shared_path(rel))) {
            TEST_SKIP("%s unreadable", test_shared_path(rel));
            break;
        }
        int bad = 0; /* our reader against the reference's own pixels */
        for (int i = 0; i < S * S * 3; i++) bad += img.pixels[i] != (int)want_u8[(size_t)k * S * S * 3 + i];
        TEST_ASSERT(bad == 0, "image %d: %d pixels differ from image_u8", k, bad);
        TEST_OK(mcnn_preprocess(out, &img, &cfg));
        for (int i = 0; i < 3 * S * S; i++)
            maxd = fmax(maxd, fabs((double)out[i] - want[(size_t)k * 3 * S * S + i]));
        free(img.pixels);
    }
    TEST_ASSERT(maxd <= 1e-6, "CLIP reference images: max |diff| %.3g", maxd);
    fprintf(stderr, "  clip_tiny reference images: max |diff| %.3g\n", maxd);
    free(out), free(want), free(want_u8);
    mcnn_safetensors_close(ref);
}

/* ---- training augmentation ---------------------------------------------------------------------- */

/* Our sampler's moments against torchvision's (same statistics, independent RNG streams): each
 * mean within 5 combined standard errors.  Every box must also be inside the image and be the
 * rounding of some (area, ratio) within the ranges. */
static void test_random_resized_crop_stats(void)
{
    const int dims[][2] = {{100, 100}, {64, 48}, {300, 20}};
    mcnn_augment_config aug = mcnn_augment_default();
    mcnn_rng rng;
    mcnn_rng_seed(&rng, 12345);
    enum { N = 20000, K = 6 };
    for (int d = 0; d < 3; d++) {
        const int W = dims[d][0], H = dims[d][1];
        char key[64];
        snprintf(key, sizeof key, "rrc/%dx%d/stats", W, H);
        float *ref = test_golden(golden, key, NULL);
        if (!ref) continue;
        double sum[K] = {0}, sq[K] = {0};
        int outside = 0, inconsistent = 0;
        for (int k = 0; k < N; k++) {
            int l, t, w, h;
            TEST_OK(mcnn_random_resized_crop_box(&l, &t, &w, &h, W, H, &aug, &rng));
            if (l < 0 || t < 0 || w < 1 || h < 1 || l + w > W || t + h > H) outside++;
            /* w = round(a), h = round(b) for some a/b in [3/4, 4/3], ab/(WH) in [0.08, 1]
             * (the fallback box, whole image, is inside these too for these shapes) */
            double A = (double)W * H;
            if ((w + 0.5) / (h - 0.5) < 0.75 - 1e-9 || (w - 0.5) / (h + 0.5) > 4.0 / 3 + 1e-9 ||
                (w + 0.5) * (h + 0.5) < 0.08 * A || (w - 0.5) * (h - 0.5) > A)
                inconsistent++;
            double v[K] = {w * h / A, log((double)w / h), (l + w / 2.0) / W, (t + h / 2.0) / H,
                           (double)w / W, (double)h / H};
            for (int j = 0; j < K; j++) sum[j] += v[j], sq[j] += v[j] * v[j];
        }
        TEST_ASSERT(outside == 0, "%dx%d: %d boxes outside the image", W, H, outside);
        TEST_ASSERT(inconsistent == 0, "%dx%d: %d boxes off the area/ratio ranges", W, H,
                    inconsistent);
        for (int j = 0; j < K; j++) {
            double mean = sum[j] / N, var = sq[j] / N - mean * mean;
            double se = sqrt((var > 0 ? var : 0) / N), se_ref = ref[K + j];
            double z = (mean - ref[j]) / sqrt(se * se + se_ref * se_ref + 1e-18);
            TEST_ASSERT(fabs(z) < 5, "%dx%d statistic %d: ours %.5f torchvision %.5f (z %.1f)", W,
                        H, j, mean, ref[j], z);
        }
        free(ref);
    }
}

static void test_random_resized_crop_fallback(void)
{
    int32_t *box = test_golden_i32(golden, "rrc/5x300/fallback", NULL); /* top, left, h, w */
    if (!box) return;
    mcnn_augment_config aug = mcnn_augment_default();
    mcnn_rng rng;
    mcnn_rng_seed(&rng, 99);
    for (int k = 0; k < 200; k++) {
        int l, t, w, h;
        TEST_OK(mcnn_random_resized_crop_box(&l, &t, &w, &h, 5, 300, &aug, &rng));
        TEST_ASSERT(t == box[0] && l == box[1] && h == box[2] && w == box[3],
                    "draw %d: (%d,%d,%d,%d) want torchvision's (%d,%d,%d,%d)", k, t, l, h, w,
                    box[0], box[1], box[2], box[3]);
    }
    free(box);
}

/* On the thin image the box is always the fallback, so every output is torchvision's
 * resized_crop of it, mirrored or not; about half must be mirrored. */
static void test_train_flip(void)
{
    mcnn_image src;
    if (!input_image(&src, "thin5x300")) return;
    size_t n1 = 0, n2 = 0;
    float *noflip = test_golden(golden, "train/thin/noflip", &n1);
    float *flip = test_golden(golden, "train/thin/flip", &n2);
    if (!noflip || !flip) return;
    mcnn_preprocess_config cfg = mcnn_preprocess_imagenet();
    cfg.crop = 16;
    mcnn_augment_config aug = mcnn_augment_default();
    mcnn_rng rng;
    mcnn_rng_seed(&rng, 2718);
    float out[3 * 16 * 16];
    TEST_ASSERT(n1 == 3 * 16 * 16 && n2 == n1, "train goldens have %zu, %zu values", n1, n2);
    const int draws = 400;
    int flips = 0, neither = 0;
    for (int k = 0; k < draws; k++) {
        TEST_OK(mcnn_preprocess_train(out, &src, &cfg, &aug, &rng));
        double d0 = 0, d1 = 0;
        for (int i = 0; i < 3 * 16 * 16; i++)
            d0 = fmax(d0, fabs(out[i] - noflip[i])), d1 = fmax(d1, fabs(out[i] - flip[i]));
        if (d1 <= 1e-6 && d0 > 1e-6) flips++;
        else if (!(d0 <= 1e-6)) neither++;
    }
    TEST_ASSERT(neither == 0, "%d outputs match neither torchvision's crop nor its mirror", neither);
    /* binomial(400, 0.5): sd 10, so 200 +- 50 is 5 sd */
    TEST_ASSERT(flips > 150 && flips < 250, "%d flips in %d draws", flips, draws);
    aug.flip_p = 0.0f;
    for (int k = 0; k < 20; k++) {
        TEST_OK(mcnn_preprocess_train(out, &src, &cfg, &aug, &rng));
        test_close_array("flip_p 0", out, noflip, 3 * 16 * 16, 0, 1e-6);
    }
    free(noflip), free(flip), free(src.pixels);
}

/* ---- errors ------------------------------------------------------------------------------------- */

#define EXPECT_ERR(expr, status, word)                                                        \
    do {                                                                                      \
        mcnn_clear_error();                                                                   \
        mcnn_status s_ = (expr);                                                              \
        TEST_ASSERT(s_ == (status), "%s: got %s (%s), want %s", #expr, mcnn_strerror(s_),     \
                    mcnn_last_error(), mcnn_strerror(status));                                \
        TEST_ASSERT(strstr(mcnn_last_error(), (word)) != NULL, "%s: message '%s' lacks '%s'", \
                    #expr, mcnn_last_error(), (word));                                        \
    } while (0)

static void test_errors(void)
{
    unsigned char px[4 * 3 * 3] = {0};
    mcnn_image ok = {4, 3, 3, px}, empty = {0, 3, 3, px}, nopx = {4, 3, 3, NULL};
    mcnn_image two = {4, 3, 2, px}, dst;
    EXPECT_ERR(mcnn_image_resize(&dst, &empty, 2, 2, MCNN_RESAMPLE_BILINEAR), MCNN_ERR_ARG, "empty");
    EXPECT_ERR(mcnn_image_resize(&dst, &nopx, 2, 2, MCNN_RESAMPLE_BILINEAR), MCNN_ERR_ARG, "empty");
    EXPECT_ERR(mcnn_image_resize(&dst, &two, 2, 2, MCNN_RESAMPLE_BILINEAR), MCNN_ERR_UNSUPPORTED,
               "2 channels");
    EXPECT_ERR(mcnn_image_resize(&dst, &ok, 0, 2, MCNN_RESAMPLE_BILINEAR), MCNN_ERR_ARG, "0x2");
    EXPECT_ERR(mcnn_image_resize(&dst, &ok, 2, -5, MCNN_RESAMPLE_BILINEAR), MCNN_ERR_ARG, "2x-5");
    EXPECT_ERR(mcnn_image_resize(&dst, &ok, 16385, 2, MCNN_RESAMPLE_BICUBIC), MCNN_ERR_ARG, "16384");
    EXPECT_ERR(mcnn_image_resize(&dst, &ok, 2, 2, (mcnn_resample)9), MCNN_ERR_ARG, "filter");
    TEST_ASSERT(dst.pixels == NULL && dst.width == 0, "dst not left empty on failure");
    EXPECT_ERR(mcnn_image_resize_shorter(&dst, &ok, 0, MCNN_RESAMPLE_BICUBIC), MCNN_ERR_ARG, "shorter");
    EXPECT_ERR(mcnn_image_center_crop(&dst, &ok, 0, 3), MCNN_ERR_ARG, "width");
    EXPECT_ERR(mcnn_image_center_crop(&dst, &ok, 3, 99999), MCNN_ERR_ARG, "height");
    EXPECT_ERR(mcnn_image_convert(&dst, &ok, 4), MCNN_ERR_ARG, "4 channels");
    mcnn_image same = ok; /* in place is refused, and src survives the refusal */
    EXPECT_ERR(mcnn_image_resize(&same, &same, 2, 2, MCNN_RESAMPLE_BILINEAR), MCNN_ERR_ARG, "same");
    EXPECT_ERR(mcnn_image_center_crop(&same, &same, 2, 2), MCNN_ERR_ARG, "same");
    TEST_ASSERT(same.pixels == px && same.width == 4, "src cleared by a refused in-place call");

    float out[3 * 8 * 8];
    mcnn_preprocess_config cfg = mcnn_preprocess_clip(8);
    EXPECT_ERR(mcnn_preprocess(out, &empty, &cfg), MCNN_ERR_ARG, "empty");
    EXPECT_ERR(mcnn_preprocess(out, &two, &cfg), MCNN_ERR_UNSUPPORTED, "channels");
    cfg.channels = 2;
    EXPECT_ERR(mcnn_preprocess(out, &ok, &cfg), MCNN_ERR_ARG, "output channels");
    cfg = mcnn_preprocess_clip(8), cfg.std[1] = 0;
    EXPECT_ERR(mcnn_preprocess(out, &ok, &cfg), MCNN_ERR_ARG, "std");
    cfg = mcnn_preprocess_clip(20000);
    EXPECT_ERR(mcnn_preprocess(out, &ok, &cfg), MCNN_ERR_ARG, "resize 20000");
    cfg = mcnn_preprocess_clip(8), cfg.crop = -1;
    EXPECT_ERR(mcnn_preprocess(out, &ok, &cfg), MCNN_ERR_ARG, "crop -1");
    /* 4x3 with the shorter side to 16000: the long side would be 21333 */
    cfg = mcnn_preprocess_clip(16000), cfg.crop = 0;
    int c, h, w;
    EXPECT_ERR(mcnn_preprocess_shape(&c, &h, &w, 4, 3, &cfg), MCNN_ERR_ARG, "21333");
    EXPECT_ERR(mcnn_preprocess(out, &ok, &cfg), MCNN_ERR_ARG, "21333");

    mcnn_rng rng;
    mcnn_rng_seed(&rng, 1);
    mcnn_augment_config aug = mcnn_augment_default();
    cfg = mcnn_preprocess_clip(8);
    aug.scale_min = 0;
    EXPECT_ERR(mcnn_preprocess_train(out, &ok, &cfg, &aug, &rng), MCNN_ERR_ARG, "scale");
    aug = mcnn_augment_default(), aug.ratio_min = 2, aug.ratio_max = 1;
    EXPECT_ERR(mcnn_preprocess_train(out, &ok, &cfg, &aug, &rng), MCNN_ERR_ARG, "ratio");
    aug = mcnn_augment_default(), aug.flip_p = 1.5f;
    EXPECT_ERR(mcnn_preprocess_train(out, &ok, &cfg, &aug, &rng), MCNN_ERR_ARG, "flip");
    aug = mcnn_augment_default(), cfg.crop = cfg.resize = 0;
    EXPECT_ERR(mcnn_preprocess_train(out, &ok, &cfg, &aug, &rng), MCNN_ERR_ARG, "output size");
    EXPECT_ERR(mcnn_preprocess_train(out, &empty, &cfg, &aug, &rng), MCNN_ERR_ARG, "empty");
}

int main(void)
{
    if (mcnn_safetensors_open(&golden, GOLDEN) != MCNN_OK) {
        fprintf(stderr, "%s\n", mcnn_last_error());
        return 1;
    }
    TEST_RUN(test_resize_pil);
    TEST_RUN(test_resize_flat);
    TEST_RUN(test_resize_shorter);
    TEST_RUN(test_center_crop);
    TEST_RUN(test_convert);
    TEST_RUN(test_clip_transform);
    TEST_RUN(test_imagenet_transform);
    TEST_RUN(test_clip_tiny_reference);
    TEST_RUN(test_random_resized_crop_stats);
    TEST_RUN(test_random_resized_crop_fallback);
    TEST_RUN(test_train_flip);
    TEST_RUN(test_errors);
    mcnn_safetensors_close(golden);
    return test_summary();
}
