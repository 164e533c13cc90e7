/* Learning for real with the shot models (issue 12, "Verified how"): shots made of Fashion-MNIST
 * frames whose labels need time, features from the committed demo ResNet, the three shot models
 * trained on the same shots and compared on held-out ones, per label group.
 *
 *   make build/bench/shot_learning && build/bench/shot_learning [--train N] [--test N]
 *        [--epochs E] [--seed S]
 *
 * A shot: 8-20 frames.  Two classes A then B, each a run of at least 4 frames (a cut between
 * them); in two thirds of the shots of 11+ frames a third class E appears once as a short event
 * of 2-3 frames inside.
 * A frame is an image of its class drawn from a pool; one frame in five is shifted by up to 3
 * pixels and noisy.  Frame features: the ResNet's 10 logits, standardised.  Labels (30):
 *   present.c  class c is in the shot (A, B or E)             -- the mean sees this
 *   first.c    class c opens the shot (c = A)                 -- needs order
 *   event.c    class c appears only as a short event (c = E)  -- needs the run lengths
 * Training shots use Fashion-MNIST's training images, held-out shots its test images.
 * docs/shot-models.md reports the figures.  tests/test_shot_learning.c runs a small version. */
#include "mcnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SL_CLASSES 10
#define SL_LABELS (3 * SL_CLASSES)
#define SL_K 20
#define SL_D 10
static const char *const sl_groups[3] = {"present", "first", "event"};

typedef struct sl_shots {
    int n;
    float *x;        /* (n, SL_K, SL_D)      */
    int32_t *len;    /* (n)                  */
    float *y;        /* (n, SL_LABELS) 0 / 1 */
} sl_shots;

/* Per-image features of an image pool: clean and corrupted (shifted + noise), (n, SL_D) each. */
typedef struct sl_pool {
    int n;
    float *clean, *noisy;
    int32_t *labels;
} sl_pool;

static void sl_shots_free(sl_shots *s) { free(s->x), free(s->len), free(s->y); }
static void sl_pool_free(sl_pool *p) { free(p->clean), free(p->noisy), free(p->labels); }

/* The ResNet's logits for the first n images of ds, clean and corrupted. */
static mcnn_status sl_pool_make(sl_pool *p, mcnn_classifier *net, const mcnn_dataset *ds, int n,
                                mcnn_rng *r)
{
    const mcnn_preprocess_config *pp = mcnn_classifier_get_preprocess(net);
    const int S = 28, CH = 64;
    p->n = n;
    p->clean = malloc(sizeof(float) * n * SL_D), p->noisy = malloc(sizeof(float) * n * SL_D);
    p->labels = malloc(sizeof(int32_t) * n);
    float *img = malloc(sizeof(float) * CH * S * S);
    unsigned char *shifted = malloc(S * S);
    if (!p->clean || !p->noisy || !p->labels || !img || !shifted) {
        free(img), free(shifted);
        return MCNN_ERR_NOMEM;
    }
    mcnn_status s = MCNN_OK;
    for (int i0 = 0; i0 < n && s == MCNN_OK; i0 += CH) {
        const int B = n - i0 < CH ? n - i0 : CH;
        for (int pass = 0; pass < 2 && s == MCNN_OK; pass++) {
            for (int b = 0; b < B; b++) {
                const unsigned char *src = ds->pixels + (size_t)(i0 + b) * S * S;
                if (pass) { /* shifted by up to 3 pixels, then Gaussian noise */
                    const int dx = (int)mcnn_rng_below(r, 7) - 3, dy = (int)mcnn_rng_below(r, 7) - 3;
                    for (int y = 0; y < S; y++)
                        for (int x = 0; x < S; x++) {
                            const int sy = y - dy, sx = x - dx;
                            shifted[y * S + x] = sy >= 0 && sy < S && sx >= 0 && sx < S ? src[sy * S + sx] : 0;
                        }
                    src = shifted;
                }
                for (int k = 0; k < S * S; k++) {
                    float v = src[k] / 255.0f;
                    if (pass) v += 0.25f * mcnn_rng_normal(r);
                    img[(size_t)b * S * S + k] = (v - pp->mean[0]) / pp->std[0];
                }
                p->labels[i0 + b] = ds->labels[i0 + b];
            }
            s = mcnn_classifier_forward(net, (pass ? p->noisy : p->clean) + (size_t)i0 * SL_D, img,
                                        B, 0);
        }
    }
    free(img), free(shifted);
    return s;
}

/* Standardise every feature by the training pool's mean and deviation. */
static void sl_standardise(sl_pool *train, sl_pool *test)
{
    for (int d = 0; d < SL_D; d++) {
        double m = 0, v = 0;
        for (int i = 0; i < train->n; i++) m += train->clean[i * SL_D + d];
        m /= train->n;
        for (int i = 0; i < train->n; i++) v += pow(train->clean[i * SL_D + d] - m, 2);
        const double sd = sqrt(v / train->n) + 1e-6;
        sl_pool *ps[2] = {train, test};
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < ps[k]->n; i++) {
                ps[k]->clean[i * SL_D + d] = (float)((ps[k]->clean[i * SL_D + d] - m) / sd);
                ps[k]->noisy[i * SL_D + d] = (float)((ps[k]->noisy[i * SL_D + d] - m) / sd);
            }
    }
}

/* A frame of class c: a random pool image of that class, corrupted one time in five. */
static void sl_frame(float *f, const sl_pool *p, int c, mcnn_rng *r)
{
    int i;
    do i = (int)mcnn_rng_below(r, (uint32_t)p->n);
    while (p->labels[i] != c);
    const float *src = (mcnn_rng_uniform(r) < 0.2f ? p->noisy : p->clean) + (size_t)i * SL_D;
    memcpy(f, src, sizeof(float) * SL_D);
}

static int sl_shots_make(sl_shots *s, const sl_pool *p, int n, mcnn_rng *r)
{
    s->n = n;
    s->x = calloc((size_t)n * SL_K * SL_D, sizeof(float));
    s->len = malloc(sizeof(int32_t) * n);
    s->y = calloc((size_t)n * SL_LABELS, sizeof(float));
    if (!s->x || !s->len || !s->y) return -1;
    for (int i = 0; i < n; i++) {
        /* A and B each run at least 4 frames, so only the event is ever as short as 2-3 */
        const int L = 8 + (int)mcnn_rng_below(r, 13);
        const int A = (int)mcnn_rng_below(r, SL_CLASSES);
        int B, E = -1;
        do B = (int)mcnn_rng_below(r, SL_CLASSES);
        while (B == A);
        const int ev = L >= 11 && mcnn_rng_below(r, 3) ? 2 + (int)mcnn_rng_below(r, 2) : 0;
        if (ev)
            do E = (int)mcnn_rng_below(r, SL_CLASSES);
            while (E == A || E == B);
        const int M = L - ev;
        const int cut = 4 + (int)mcnn_rng_below(r, (uint32_t)(M - 7)); /* A frames: 4 .. M-4 */
        const int at = 1 + (int)mcnn_rng_below(r, (uint32_t)(M - 1));  /* the event's start */
        int classes[SL_K], t = 0;
        for (int k = 0; k < M; k++) {
            if (k == at)
                for (int e = 0; e < ev; e++) classes[t++] = E;
            classes[t++] = k < cut ? A : B;
        }
        s->len[i] = L;
        for (int k = 0; k < L; k++) sl_frame(s->x + ((size_t)i * SL_K + k) * SL_D, p, classes[k], r);
        float *y = s->y + (size_t)i * SL_LABELS;
        y[A] = y[B] = 1, y[SL_CLASSES + A] = 1;
        if (E >= 0) y[E] = 1, y[2 * SL_CLASSES + E] = 1;
    }
    return 0;
}

/* mAP of the label columns g0 .. g1-1. */
static double sl_group_map(const float *scores, const float *y, int n, int g0, int g1)
{
    const int G = g1 - g0;
    float *sc = malloc(sizeof(float) * n * G);
    unsigned char *t = malloc((size_t)n * G);
    for (int i = 0; i < n; i++)
        for (int g = 0; g < G; g++) {
            sc[i * G + g] = scores[i * SL_LABELS + g0 + g];
            t[i * G + g] = y[i * SL_LABELS + g0 + g] > 0.5f;
        }
    const double m = mcnn_mean_average_precision(sc, t, n, G, NULL);
    free(sc), free(t);
    return m;
}

typedef struct sl_result {
    double map, group[3], seconds, shots_per_s;
} sl_result;

/* Train one kind on `train` for `epochs` and evaluate it on `test`. */
static mcnn_status sl_run(sl_result *res, mcnn_shot_kind kind, const sl_shots *train,
                          const sl_shots *test, int epochs, uint64_t seed)
{
    enum { BATCH = 32 };
    mcnn_shot_config cfg = {.kind = kind, .D = SL_D, .K = SL_K, .num_classes = SL_LABELS,
                            .seed = seed};
    cfg.hidden = kind == MCNN_SHOT_TRANSFORMER ? 64 : 128;
    cfg.layers = 2, cfg.heads = 4;
    mcnn_shot_model *m = NULL;
    mcnn_status s = mcnn_shot_model_create(&m, &cfg, BATCH);
    if (s != MCNN_OK) return s;
    mcnn_shot_trainer t;
    s = mcnn_shot_trainer_init(&t, m);
    if (s != MCNN_OK) return mcnn_shot_model_free(m), s;
    const int steps_per_epoch = train->n / BATCH;
    t.schedule = (mcnn_lr_schedule){.kind = MCNN_LR_COSINE, .base_lr = 3e-3,
                                    .warmup_steps = steps_per_epoch / 2,
                                    .total_steps = (int64_t)epochs * steps_per_epoch,
                                    .min_lr = 3e-5};
    t.clip_norm = 1.0f;
    /* pos_weight = negatives / positives per label, as MovieCLIP weights its rare labels */
    float pw[SL_LABELS];
    for (int c = 0; c < SL_LABELS; c++) {
        double pos = 0;
        for (int i = 0; i < train->n; i++) pos += train->y[i * SL_LABELS + c];
        pw[c] = pos > 0 ? (float)((train->n - pos) / pos) : 1.0f;
    }
    int *order = malloc(sizeof(int) * train->n);
    float *x = malloc(sizeof(float) * BATCH * SL_K * SL_D), *y = malloc(sizeof(float) * BATCH * SL_LABELS);
    int32_t len[BATCH];
    mcnn_rng r;
    mcnn_rng_seed(&r, seed + 1);
    for (int i = 0; i < train->n; i++) order[i] = i;
    const double t0 = mcnn_seconds();
    for (int e = 0; e < epochs && s == MCNN_OK; e++) {
        for (int i = train->n - 1; i > 0; i--) {
            const int j = (int)mcnn_rng_below(&r, (uint32_t)i + 1), k = order[i];
            order[i] = order[j], order[j] = k;
        }
        for (int st = 0; st < steps_per_epoch && s == MCNN_OK; st++) {
            for (int b = 0; b < BATCH; b++) {
                const int i = order[st * BATCH + b];
                memcpy(x + (size_t)b * SL_K * SL_D, train->x + (size_t)i * SL_K * SL_D, sizeof(float) * SL_K * SL_D);
                memcpy(y + (size_t)b * SL_LABELS, train->y + (size_t)i * SL_LABELS, sizeof(float) * SL_LABELS);
                len[b] = train->len[i];
            }
            s = mcnn_shot_train_step(m, &t, x, len, y, pw, BATCH, NULL, NULL);
        }
    }
    res->seconds = mcnn_seconds() - t0;
    res->shots_per_s = (double)epochs * steps_per_epoch * BATCH / res->seconds;
    float *scores = malloc(sizeof(float) * test->n * SL_LABELS);
    for (int i0 = 0; i0 < test->n && s == MCNN_OK; i0 += BATCH) {
        const int B = test->n - i0 < BATCH ? test->n - i0 : BATCH;
        s = mcnn_shot_model_forward(m, scores + (size_t)i0 * SL_LABELS,
                                    test->x + (size_t)i0 * SL_K * SL_D, test->len + i0, B);
    }
    if (s == MCNN_OK) {
        res->map = sl_group_map(scores, test->y, test->n, 0, SL_LABELS);
        for (int g = 0; g < 3; g++)
            res->group[g] = sl_group_map(scores, test->y, test->n, g * SL_CLASSES, (g + 1) * SL_CLASSES);
    }
    free(scores), free(order), free(x), free(y);
    mcnn_shot_trainer_free(&t);
    mcnn_shot_model_free(m);
    return s;
}

/* The data: pools of pool_train / pool_test images, then the shots. */
static mcnn_status sl_data(sl_shots *train, sl_shots *test, const char *weights, int ntrain,
                           int ntest, int pool_train, int pool_test, uint64_t seed)
{
    mcnn_dataset dtr = {0}, dte = {0};
    mcnn_classifier *net = NULL;
    sl_pool ptr = {0}, pte = {0};
    mcnn_rng r;
    mcnn_rng_seed(&r, seed);
    mcnn_status s = mcnn_classifier_load(&net, weights, NULL);
    if (s == MCNN_OK) s = mcnn_dataset_load_fashion_mnist(&dtr, MCNN_FASHION_MNIST_DIR, 1);
    if (s == MCNN_OK) s = mcnn_dataset_load_fashion_mnist(&dte, MCNN_FASHION_MNIST_DIR, 0);
    if (s == MCNN_OK) s = sl_pool_make(&ptr, net, &dtr, pool_train, &r);
    if (s == MCNN_OK) s = sl_pool_make(&pte, net, &dte, pool_test, &r);
    if (s == MCNN_OK) {
        sl_standardise(&ptr, &pte);
        if (sl_shots_make(train, &ptr, ntrain, &r) || sl_shots_make(test, &pte, ntest, &r))
            s = MCNN_ERR_NOMEM;
    }
    sl_pool_free(&ptr), sl_pool_free(&pte);
    mcnn_dataset_free(&dtr), mcnn_dataset_free(&dte);
    mcnn_classifier_free(net);
    return s;
}

#ifndef SHOT_LEARNING_NO_MAIN
int main(int argc, char **argv)
{
    int ntrain = 3008, ntest = 1000, epochs = 15;
    uint64_t seed = 1;
    const char *weights = "weights/demo-fashion-resnet.safetensors";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--train")) ntrain = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--test")) ntest = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--epochs")) epochs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--weights")) weights = argv[i + 1];
        else return fprintf(stderr, "shot_learning: unknown option %s\n", argv[i]), 2;
    }
    if (ntrain < 32 || ntest < 1 || epochs < 1)
        return fprintf(stderr, "shot_learning: need --train >= 32, --test >= 1, --epochs >= 1\n"), 2;
    sl_shots train = {0}, test = {0};
    mcnn_status s = sl_data(&train, &test, weights, ntrain, ntest, 6000, 2000, seed);
    if (s != MCNN_OK) return fprintf(stderr, "shot_learning: %s\n", mcnn_last_error()), 1;
    printf("%d training shots, %d held-out shots, %d epochs, batch 32\n", ntrain, ntest, epochs);
    printf("%-12s %8s %8s %8s %8s %10s\n", "model", "mAP", sl_groups[0], sl_groups[1], sl_groups[2],
           "shots/s");
    for (int k = 0; k < 3 && s == MCNN_OK; k++) {
        sl_result r;
        s = sl_run(&r, (mcnn_shot_kind)k, &train, &test, epochs, seed);
        if (s == MCNN_OK)
            printf("%-12s %8.4f %8.4f %8.4f %8.4f %10.0f\n", mcnn_shot_kind_name((mcnn_shot_kind)k),
                   r.map, r.group[0], r.group[1], r.group[2], r.shots_per_s);
        fflush(stdout);
    }
    sl_shots_free(&train), sl_shots_free(&test);
    if (s != MCNN_OK) return fprintf(stderr, "shot_learning: %s\n", mcnn_last_error()), 1;
    return 0;
}
#endif
