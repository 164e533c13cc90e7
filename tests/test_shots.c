/* Shot detection: HSV against OpenCV's cvtColor (bit for bit), the ContentDetector score and
 * cuts against PySceneDetect's rule on a 70-frame sequence (tests/data/shots.safetensors, from
 * tests/ref/gen_shots.py), and flat colours whose scores follow from the HSV definition by hand. */
#include "mcnn_test.h"
#include "mcnn/shots.h"

static mcnn_safetensors *gold;

static unsigned char *golden_u8(const char *name, size_t *n)
{
    size_t k;
    float *f = test_golden(gold, name, &k);
    if (!f) return NULL;
    unsigned char *u = malloc(k);
    for (size_t i = 0; i < k; i++) u[i] = (unsigned char)f[i];
    free(f);
    *n = k;
    return u;
}

static void test_rgb_to_hsv_matches_opencv(void)
{
    size_t n, m;
    unsigned char *rgb = golden_u8("rgb", &n), *want = golden_u8("hsv", &m);
    if (!rgb || !want || n != m) {
        TEST_ASSERT(0, "goldens rgb/hsv unusable");
        free(rgb), free(want);
        return;
    }
    unsigned char *got = malloc(n);
    mcnn_rgb_to_hsv(got, rgb, n / 3);
    int bad = 0;
    for (size_t i = 0; i < n / 3; i++)
        if (memcmp(got + 3 * i, want + 3 * i, 3) && bad++ < 5)
            TEST_ASSERT(0, "rgb (%d,%d,%d): hsv (%d,%d,%d), OpenCV (%d,%d,%d)", rgb[3 * i],
                        rgb[3 * i + 1], rgb[3 * i + 2], got[3 * i], got[3 * i + 1], got[3 * i + 2],
                        want[3 * i], want[3 * i + 1], want[3 * i + 2]);
    TEST_ASSERT(bad == 0, "%d of %zu colours differ from OpenCV", bad, n / 3);
    free(rgb), free(want), free(got);
}

/* Score components of every frame against the previous one, and the cuts of the detector with
 * PySceneDetect's defaults. */
static void test_detector_matches_pyscenedetect(void)
{
    const mcnn_st_tensor *t = mcnn_safetensors_find(gold, "frames");
    size_t n;
    unsigned char *frames = golden_u8("frames", &n);
    float *comps = test_golden(gold, "components", NULL), *scores = test_golden(gold, "scores", NULL);
    int32_t *want_cuts = NULL;
    size_t ncuts = 0;
    want_cuts = test_golden_i32(gold, "cuts", &ncuts);
    if (!t || !frames || !comps || !scores || !want_cuts) goto done;
    const int F = (int)t->shape[0], H = (int)t->shape[1], W = (int)t->shape[2];
    mcnn_shot_detector d;
    TEST_OK(mcnn_shot_detector_init(&d, 27.0, 15));
    int cuts[16], nc = 0;
    for (int f = 0; f < F; f++) {
        mcnn_image img = {W, H, 3, frames + (size_t)f * H * W * 3};
        int cut;
        TEST_OK(mcnn_shot_detector_push(&d, &img, &cut));
        for (int c = 0; c < 3; c++) TEST_CLOSE("component", d.components[c], comps[f * 3 + c], 1e-6, 1e-6);
        TEST_CLOSE("score", d.score, scores[f], 1e-6, 1e-6);
        if (cut && nc < 16) cuts[nc++] = f;
    }
    TEST_ASSERT(nc == (int)ncuts, "%d cuts, PySceneDetect %zu", nc, ncuts);
    for (int i = 0; i < nc && i < (int)ncuts; i++)
        TEST_ASSERT(cuts[i] == want_cuts[i], "cut %d at frame %d, PySceneDetect %d", i, cuts[i],
                    want_cuts[i]);
    mcnn_shot_detector_free(&d);
done:
    free(frames), free(comps), free(scores), free(want_cuts);
}

static void fill(mcnn_image *img, unsigned char *px, int w, int h, int r, int g, int b)
{
    for (int i = 0; i < w * h; i++) px[3 * i] = r, px[3 * i + 1] = g, px[3 * i + 2] = b;
    *img = (mcnn_image){w, h, 3, px};
}

/* Pure red is H 0, S 255, V 255; pure blue is H 120 (240 degrees / 2); pure green H 60.  So
 * red -> blue scores (120 + 0 + 0) / 3 = 40 and red -> green 20: by the definition alone. */
static void test_detector_flat_colours(void)
{
    static unsigned char px[8 * 6 * 3];
    mcnn_image img;
    const struct { double thr; int min_len; int want_cut; double score; int second; } cases[] = {
        {27, 5, 1, 40, 'b'},  /* blue after 10 red: a cut                 */
        {40, 5, 1, 40, 'b'},  /* the threshold is inclusive (>=)           */
        {40.5, 5, 0, 40, 'b'},
        {27, 11, 0, 40, 'b'}, /* the red shot has 10 frames: too short     */
        {27, 10, 1, 40, 'b'}, /* exactly min_len frames: allowed           */
        {27, 5, 0, 20, 'g'},  /* red -> green scores 20 < 27                */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        mcnn_shot_detector d;
        TEST_OK(mcnn_shot_detector_init(&d, cases[k].thr, cases[k].min_len));
        int cut = 0, ncut = 0;
        for (int f = 0; f < 20; f++) {
            if (f < 10) fill(&img, px, 8, 6, 255, 0, 0);
            else if (cases[k].second == 'b') fill(&img, px, 8, 6, 0, 0, 255);
            else fill(&img, px, 8, 6, 0, 255, 0);
            TEST_OK(mcnn_shot_detector_push(&d, &img, &cut));
            if (f == 10) TEST_CLOSE("score at the change", d.score, cases[k].score, 0, 1e-12);
            if (cut) {
                ncut++;
                TEST_ASSERT(f == 10, "case %zu: cut at frame %d", k, f);
            }
        }
        TEST_ASSERT(ncut == cases[k].want_cut, "case %zu: %d cuts, want %d", k, ncut,
                    cases[k].want_cut);
        mcnn_shot_detector_free(&d);
    }
}

/* Gray frames have no hue or saturation: black -> white scores (0 + 0 + 255) / 3 = 85; a frame
 * of another size always starts a shot. */
static void test_detector_gray_and_size_change(void)
{
    unsigned char black[16] = {0}, white[16], rgb[4 * 4 * 3] = {0};
    memset(white, 255, sizeof white);
    mcnn_shot_detector d;
    TEST_OK(mcnn_shot_detector_init(&d, 27, 1));
    int cut;
    mcnn_image g0 = {4, 4, 1, black}, g1 = {4, 4, 1, white}, c = {4, 4, 3, rgb}, small = {2, 2, 1, black};
    TEST_OK(mcnn_shot_detector_push(&d, &g0, &cut));
    TEST_ASSERT(!cut, "the first frame is never a cut");
    TEST_OK(mcnn_shot_detector_push(&d, &g1, &cut));
    TEST_ASSERT(cut, "black -> white is a cut");
    TEST_CLOSE("gray score", d.score, 85.0, 0, 1e-12);
    TEST_OK(mcnn_shot_detector_push(&d, &c, &cut)); /* white gray -> black RGB: 85 again */
    TEST_CLOSE("gray vs rgb score", d.score, 85.0, 0, 1e-12);
    TEST_OK(mcnn_shot_detector_push(&d, &small, &cut));
    TEST_ASSERT(cut && d.score == 255.0, "a size change starts a shot");
    TEST_OK(mcnn_shot_detector_push(&d, &small, &cut));
    TEST_ASSERT(!cut && d.score == 0.0, "same frame again: score 0, no cut");
    TEST_ASSERT(d.frames == 5 && d.shot_start == 3, "frames %lld, shot start %lld",
                (long long)d.frames, (long long)d.shot_start);
    mcnn_shot_detector_free(&d);
}

static void test_detector_bad_arguments(void)
{
    mcnn_shot_detector d;
    TEST_ASSERT(mcnn_shot_detector_init(&d, -1, 15) == MCNN_ERR_ARG, "negative threshold refused");
    TEST_ASSERT(mcnn_shot_detector_init(&d, 27, 0) == MCNN_ERR_ARG, "min_len 0 refused");
    TEST_OK(mcnn_shot_detector_init(&d, 27, 15));
    unsigned char px[4] = {0};
    mcnn_image two = {2, 1, 2, px}, empty = {0, 0, 3, NULL};
    int cut;
    TEST_ASSERT(mcnn_shot_detector_push(&d, &two, &cut) == MCNN_ERR_ARG, "2 channels refused");
    TEST_ASSERT(mcnn_shot_detector_push(&d, &empty, &cut) == MCNN_ERR_ARG, "empty frame refused");
    mcnn_shot_detector_free(&d);
}

int main(void)
{
    if (mcnn_safetensors_open(&gold, "tests/data/shots.safetensors") != MCNN_OK) {
        fprintf(stderr, "%s\n", mcnn_last_error());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    TEST_RUN(test_rgb_to_hsv_matches_opencv);
    TEST_RUN(test_detector_matches_pyscenedetect);
    TEST_RUN(test_detector_flat_colours);
    TEST_RUN(test_detector_gray_and_size_change);
    TEST_RUN(test_detector_bad_arguments);
    mcnn_safetensors_close(gold);
    return test_summary();
}
