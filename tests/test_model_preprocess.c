/* The model-bound preprocessing contract (include/mcnn/model_preprocess.h): a model's own
 * preprocess call gives the bits of mcnn_preprocess with its settings, refuses settings that do
 * not fit the model, scores are the softmax or the per-class sigmoid the checkpoint says
 * (judged in double precision), and mcnn_topk orders as torch.topk with ties to the lower
 * index.  Small fresh models and synthetic images: no file needed except the tiny CLIP. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"

#include <math.h>
#include <unistd.h>

/* A W x H RGB image with a pattern that resizing cannot leave unchanged by accident. */
static mcnn_image pattern_image(int W, int H)
{
    mcnn_image img = {.width = W, .height = H, .channels = 3,
                      .pixels = malloc((size_t)W * H * 3)};
    for (int i = 0; i < W * H * 3; i++) img.pixels[i] = (unsigned char)(i * 37 % 251);
    return img;
}

static mcnn_classifier *small_classifier(int multilabel)
{
    mcnn_classifier_config cfg = {.arch = "resnet-small", .num_classes = 5, .image_size = 16,
                                  .in_channels = 3, .width = 4};
    mcnn_classifier *c = NULL;
    TEST_OK(mcnn_classifier_create(&c, &cfg, 7));
    if (c) mcnn_classifier_set_multilabel(c, multilabel);
    return c;
}

static void test_classifier_preprocess_image(void)
{
    mcnn_classifier *c = small_classifier(0);
    if (!c) return;
    mcnn_preprocess_config p = *mcnn_classifier_get_preprocess(c);
    p.filter = MCNN_RESAMPLE_BICUBIC, p.resize = 20, p.mean[1] = 0.25f, p.std[2] = 0.5f;
    mcnn_classifier_set_preprocess(c, &p); /* the call must use these, not the defaults */
    int C, H, W;
    mcnn_classifier_input_shape(c, &C, &H, &W);
    TEST_ASSERT(C == 3 && H == 16 && W == 16, "input shape %d x %d x %d", C, H, W);
    mcnn_image img = pattern_image(37, 23);
    float got[3 * 16 * 16], want[3 * 16 * 16];
    TEST_OK(mcnn_classifier_preprocess_image(c, &img, got));
    TEST_OK(mcnn_preprocess(want, &img, &p));
    TEST_ASSERT(memcmp(got, want, sizeof got) == 0, "not mcnn_preprocess's bits");
    /* settings that give another input than the model's are refused, naming both */
    p.crop = 12;
    mcnn_classifier_set_preprocess(c, &p);
    const mcnn_status s = mcnn_classifier_preprocess_image(c, &img, got);
    TEST_ASSERT(s == MCNN_ERR_SHAPE && strstr(mcnn_last_error(), "12 x 12") &&
                    strstr(mcnn_last_error(), "16 x 16"),
                "crop 12 for a 16 x 16 model: %d %s", (int)s, mcnn_last_error());
    TEST_ASSERT(mcnn_classifier_preprocess_image(c, NULL, got) == MCNN_ERR_ARG, "NULL image");
    mcnn_image_free(&img);
    mcnn_classifier_free(c);
}

static void test_classifier_scores(void)
{
    const float logits[2 * 5] = {1.5f, -2.0f, 0.25f, 3.0f, -0.5f, 0, 0, 10.0f, -10.0f, 1e-3f};
    for (int multilabel = 0; multilabel < 2; multilabel++) {
        mcnn_classifier *c = small_classifier(multilabel);
        if (!c) return;
        float scores[10], in_place[10];
        TEST_OK(mcnn_classifier_scores(c, logits, scores, 2));
        memcpy(in_place, logits, sizeof in_place);
        TEST_OK(mcnn_classifier_scores(c, in_place, in_place, 2));
        TEST_ASSERT(memcmp(scores, in_place, sizeof scores) == 0, "in place differs");
        for (int n = 0; n < 2; n++) {
            double sum = 0;
            for (int k = 0; k < 5; k++) sum += exp(logits[n * 5 + k]);
            for (int k = 0; k < 5; k++) {
                const double x = logits[n * 5 + k];
                const double want = multilabel ? 1 / (1 + exp(-x)) : exp(x) / sum;
                TEST_CLOSE(multilabel ? "sigmoid" : "softmax", scores[n * 5 + k], want, 1e-6,
                           1e-7);
            }
        }
        TEST_ASSERT(mcnn_classifier_scores(c, logits, scores, -1) == MCNN_ERR_ARG, "N < 0");
        mcnn_classifier_free(c);
    }
}

static void test_topk(void)
{
    const float s[6] = {0.1f, 0.5f, 0.5f, 0.2f, 0.5f, -1.0f};
    int top[6];
    mcnn_topk(top, s, 6, 6);
    const int want[6] = {1, 2, 4, 3, 0, 5}; /* ties: the lower index first */
    for (int i = 0; i < 6; i++) TEST_ASSERT(top[i] == want[i], "rank %d: %d, not %d", i, top[i], want[i]);
    mcnn_topk(top, s, 6, 2);
    TEST_ASSERT(top[0] == 1 && top[1] == 2, "top-2 %d %d", top[0], top[1]);
    /* what mcnn_topk_accuracy counts: the label ranked within k */
    const int32_t label[1] = {4};
    TEST_ASSERT(mcnn_topk_accuracy(s, label, 1, 6, 2) == 0.0 &&
                    mcnn_topk_accuracy(s, label, 1, 6, 3) == 1.0,
                "top-k accuracy disagrees with mcnn_topk's order");
}

static void test_clip_preprocess_image(void)
{
    const char *path = test_shared_path("ref/clip_tiny.safetensors");
    if (access(path, R_OK) != 0) {
        TEST_SKIP("%s is absent", path);
        return;
    }
    mcnn_clip *m = NULL;
    TEST_OK(mcnn_clip_load(&m, path, NULL));
    if (!m) return;
    int C, H, W;
    mcnn_clip_input_shape(m, &C, &H, &W);
    const int R = mcnn_clip_get_config(m)->image_size;
    TEST_ASSERT(C == 3 && H == R && W == R, "input shape %d x %d x %d, image size %d", C, H, W, R);
    mcnn_image img = pattern_image(2 * R + 3, R + 5);
    float *got = malloc(sizeof(float) * 3 * R * R), *want = malloc(sizeof(float) * 3 * R * R);
    const mcnn_preprocess_config p = mcnn_preprocess_clip(R); /* clip._transform(R) */
    TEST_OK(mcnn_clip_preprocess_image(m, &img, got));
    TEST_OK(mcnn_preprocess(want, &img, &p));
    TEST_ASSERT(memcmp(got, want, sizeof(float) * 3 * R * R) == 0, "not clip._transform's bits");
    free(got), free(want);
    mcnn_image_free(&img);
    mcnn_clip_free(m);
}

int main(void)
{
    TEST_RUN(test_classifier_preprocess_image);
    TEST_RUN(test_classifier_scores);
    TEST_RUN(test_topk);
    TEST_RUN(test_clip_preprocess_image);
    return test_summary();
}
