/* Inference only (docs/precision.md, "Memory"): the fp32 copies of the packed matrices
 * released, by mcnn_*_release_training_weights after set_precision or by the load option
 * inference_only while loading.
 *
 * - The outputs are bit-identical to the same precision's without release: the judge is the
 *   model that kept its fp32 weights (ViT, ResNet with bottlenecks and projection shortcuts,
 *   both CLIP towers; fp32, bf16 and int8; the model's calls and a session).
 * - An inference-only load gives the bits of load + set_precision (ViT through the classifier
 *   too, CLIP, ResNet); the load option precision without inference_only is set_precision.
 * - Everything that needs the fp32 weights fails with MCNN_ERR_ARG naming "inference-only":
 *   training forwards, backwards, save, set_precision to another precision; release without a
 *   precision set fails too; a bad precision value in the load options is refused.
 * - ResNet's fc goes with the convs: its pages read as zeros after release, after an
 *   inference-only load, and after one with a new fc (another class count: initialised, then
 *   packed), each with the bits of the model that kept its weights.
 * - Memory really goes (Linux, not under the sanitizers, whose allocator and shadow memory
 *   blur the resident set): releasing a random-weight ViT of width 512 drops VmRSS by at least
 *   the fp32 bytes of its matrices minus two pages each and 1 MB; an inference-only load, run
 *   in a fresh process (this program again), raises VmHWM by no more than the packed copies, two
 *   fp32 matrices, the other weights and 6 MB of slack (buffers, threads), which for bf16 and
 *   int8 is less than the fp32 matrices alone: load + set_precision raises it by the fp32
 *   weights and the packed copies together. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"

#include <stdint.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static const mcnn_precision precisions[3] = {MCNN_PRECISION_FP32, MCNN_PRECISION_BF16,
                                             MCNN_PRECISION_INT8};

static const char *tmp_path(const char *name)
{
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "/tmp/mcnn_test_release_%d_%s", (int)getpid(), name);
    return p[k];
}

static float *random_floats(size_t n, unsigned seed)
{
    float *x = malloc(n * sizeof(float));
    test_fill_random(x, n, seed);
    return x;
}

/* A line "Key:  N kB" of /proc/self/status, in bytes; -1 where there is none. */
static double proc_status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    double v = -1;
    const size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') v = atof(line + n + 1) * 1024.0;
    fclose(f);
    return v;
}

static void expect_inference_only(mcnn_status s, const char *what)
{
    TEST_ASSERT(s == MCNN_ERR_ARG && strstr(mcnn_last_error(), "inference-only"),
                "%s: got %s (%s), want MCNN_ERR_ARG naming inference-only", what,
                mcnn_strerror(s), mcnn_last_error());
}

static void expect_same(const float *got, const float *want, size_t n, const char *what)
{
    TEST_ASSERT(memcmp(got, want, n * sizeof(float)) == 0, "%s: not the same bits", what);
}

/* ---- ViT ------------------------------------------------------------------------------------ */
enum { VIT_W = 512, VIT_L = 3, VIT_F = 2048, VIT_S = 32, VIT_K = 10, VIT_B = 2 };

static mcnn_vit_config vit_cfg(void)
{
    return (mcnn_vit_config){.image_size = VIT_S, .patch_size = 8, .in_channels = 3,
                             .width = VIT_W, .layers = VIT_L, .heads = 8, .mlp_dim = VIT_F,
                             .num_classes = VIT_K, .ln_eps = 1e-6f};
}

/* The fp32 bytes of the ViT's block matrices. */
static double vit_matrix_bytes(void)
{
    return (double)VIT_L * (4.0 * VIT_W * VIT_W + 2.0 * VIT_W * VIT_F) * sizeof(float);
}

static void vit_logits(mcnn_vit *m, float *logits, const float *images)
{
    TEST_OK(mcnn_vit_forward(m, logits, images, VIT_B, 0));
}

static void test_vit_release(void)
{
    const mcnn_vit_config cfg = vit_cfg();
    float *images = random_floats((size_t)VIT_B * 3 * VIT_S * VIT_S, 5);
    float want[VIT_B * VIT_K], got[VIT_B * VIT_K];
    for (int i = 0; i < 3; i++) {
        mcnn_vit *m;
        TEST_OK(mcnn_vit_create(&m, &cfg, 1));
        if (i == 0)
            TEST_ASSERT(mcnn_vit_release_training_weights(m) == MCNN_ERR_ARG,
                        "release without a precision set must fail");
        TEST_OK(mcnn_vit_set_precision(m, precisions[i]));
        vit_logits(m, want, images);
        const double before = proc_status_bytes("VmRSS");
        TEST_OK(mcnn_vit_release_training_weights(m));
        const double after = proc_status_bytes("VmRSS");
        vit_logits(m, got, images);
        expect_same(got, want, VIT_B * VIT_K, mcnn_precision_name(precisions[i]));
        mcnn_session *s;
        TEST_OK(mcnn_vit_session_create(&s, m));
        TEST_OK(mcnn_vit_session_forward(s, got, images, VIT_B));
        expect_same(got, want, VIT_B * VIT_K, "session");
        mcnn_session_free(s);
        /* two partial pages per matrix stay, and 1 MB for whatever else moves meanwhile */
        const double need = vit_matrix_bytes() - 4 * VIT_L * 2 * 4096.0 - 1e6;
        fprintf(stderr, "  %s: VmRSS fell by %.1f MB at release (fp32 matrices %.1f MB)\n",
                mcnn_precision_name(precisions[i]), (before - after) / 1e6,
                vit_matrix_bytes() / 1e6);
        if (before > 0 && !SANITIZED)
            TEST_ASSERT(before - after >= need, "VmRSS fell by %.0f bytes, want >= %.0f",
                        before - after, need);

        /* what needs the fp32 weights is refused, the outputs stay */
        expect_inference_only(mcnn_vit_forward(m, got, images, VIT_B, 1), "train forward");
        expect_inference_only(mcnn_vit_backward(m, got), "backward");
        expect_inference_only(mcnn_vit_save(m, tmp_path("never.safetensors")), "save");
        expect_inference_only(mcnn_vit_set_precision(m, precisions[(i + 1) % 3]),
                              "set_precision to another");
        TEST_OK(mcnn_vit_set_precision(m, precisions[i])); /* the same: nothing to do */
        TEST_OK(mcnn_vit_release_training_weights(m));     /* twice: nothing more to do */
        vit_logits(m, got, images);
        expect_same(got, want, VIT_B * VIT_K, "after the refused calls");
        mcnn_vit_free(m);
    }
    free(images);
}

/* The child: an inference-only load of path in precision p, printing VmHWM before and after. */
static int child_peak(const char *path, const char *precision)
{
    mcnn_precision p;
    if (mcnn_precision_parse(precision, &p) != MCNN_OK) return 2;
    const double before = proc_status_bytes("VmHWM");
    mcnn_vit *m;
    const mcnn_vit_load_options o = {.precision = p, .inference_only = 1};
    if (mcnn_vit_load(&m, path, &o) != MCNN_OK) return 3;
    printf("%.0f %.0f\n", before, proc_status_bytes("VmHWM"));
    mcnn_vit_free(m);
    return 0;
}

static void test_vit_load_inference_only(void)
{
    const mcnn_vit_config cfg = vit_cfg();
    const char *path = tmp_path("vit.safetensors");
    mcnn_vit *src;
    TEST_OK(mcnn_vit_create(&src, &cfg, 3));
    TEST_OK(mcnn_vit_save(src, path));
    mcnn_vit_free(src);
    float *images = random_floats((size_t)VIT_B * 3 * VIT_S * VIT_S, 6);
    float want[VIT_B * VIT_K], got[VIT_B * VIT_K];
    for (int i = 0; i < 3; i++) {
        mcnn_vit *ref, *m, *packed;
        TEST_OK(mcnn_vit_load(&ref, path, NULL));
        TEST_OK(mcnn_vit_set_precision(ref, precisions[i]));
        vit_logits(ref, want, images);
        mcnn_vit_free(ref);
        const mcnn_vit_load_options o = {.precision = precisions[i], .inference_only = 1};
        TEST_OK(mcnn_vit_load(&m, path, &o));
        TEST_ASSERT(mcnn_vit_precision(m) == precisions[i], "precision");
        vit_logits(m, got, images);
        expect_same(got, want, VIT_B * VIT_K, "inference-only load");
        expect_inference_only(mcnn_vit_forward(m, got, images, VIT_B, 1), "train forward");
        mcnn_vit_free(m);
        /* precision without inference_only: set_precision after the load, weights kept */
        const mcnn_vit_load_options q = {.precision = precisions[i]};
        TEST_OK(mcnn_vit_load(&packed, path, &q));
        vit_logits(packed, got, images);
        if (precisions[i] != MCNN_PRECISION_FP32)
            expect_same(got, want, VIT_B * VIT_K, "load option precision");
        TEST_OK(mcnn_vit_forward(packed, got, images, VIT_B, 1));
        mcnn_vit_free(packed);
        /* the classifier passes the options on */
        mcnn_classifier *c;
        const mcnn_classifier_load_options co = {.precision = precisions[i],
                                                 .inference_only = 1};
        TEST_OK(mcnn_classifier_load(&c, path, &co));
        TEST_OK(mcnn_classifier_forward(c, got, images, VIT_B, 0));
        expect_same(got, want, VIT_B * VIT_K, "classifier inference-only load");
        expect_inference_only(mcnn_classifier_save(c, tmp_path("never.safetensors")),
                              "classifier save");
        expect_inference_only(mcnn_classifier_forward(c, got, images, VIT_B, 1),
                              "classifier train forward");
        mcnn_classifier_freeze_backbone(c, 1); /* a linear probe: an eval forward, then */
        TEST_OK(mcnn_classifier_forward(c, got, images, VIT_B, 1));
        expect_same(got, want, VIT_B * VIT_K, "classifier, frozen backbone");
        expect_inference_only(mcnn_classifier_backward(c, got), "classifier head backward");
        mcnn_classifier_free(c);
    }
    const mcnn_vit_load_options bad = {.precision = (mcnn_precision)7, .inference_only = 1};
    mcnn_vit *m = NULL;
    TEST_ASSERT(mcnn_vit_load(&m, path, &bad) == MCNN_ERR_ARG && !m, "precision 7 accepted");

    /* the peak of an inference-only load, in a fresh process */
    if (SANITIZED || proc_status_bytes("VmHWM") < 0) {
        fprintf(stderr, "  the load's peak not measured (%s)\n",
                SANITIZED ? "sanitizer build" : "no /proc/self/status");
    } else {
        static const double share[3] = {1.0, 0.5, 0.27}; /* packed / fp32, scales included */
        const double largest = (double)VIT_W * VIT_F * sizeof(float);
        const double other = (double)(VIT_K + 64) * VIT_W * sizeof(float) * 4; /* generous */
        for (int i = 0; i < 3; i++) {
            char cmd[512];
            snprintf(cmd, sizeof cmd, "/proc/%d/exe --peak %s %s", (int)getpid(), path,
                     mcnn_precision_name(precisions[i]));
            FILE *f = popen(cmd, "r");
            double before = 0, after = 0;
            const int got_line = f && fscanf(f, "%lf %lf", &before, &after) == 2;
            const int rc = f ? pclose(f) : -1;
            TEST_ASSERT(got_line && rc == 0, "%s failed", cmd);
            const double bound = share[i] * vit_matrix_bytes() + 2 * largest + other + 6e6;
            fprintf(stderr, "  %s inference-only load: VmHWM +%.1f MB (bound %.1f MB; fp32 "
                    "matrices %.1f MB)\n", mcnn_precision_name(precisions[i]),
                    (after - before) / 1e6, bound / 1e6, vit_matrix_bytes() / 1e6);
            TEST_ASSERT(after - before <= bound, "%s: peak +%.0f bytes > %.0f",
                        mcnn_precision_name(precisions[i]), after - before, bound);
        }
    }
    free(images);
    remove(path);
}

/* ---- ResNet ---------------------------------------------------------------------------------- */
/* A small bottleneck ResNet (projection shortcuts) of random weights saved to tmp_path(name). */
static const char *saved_resnet(const char *name, int first_blocks, int classes, uint64_t seed)
{
    const mcnn_resnet_config cfg = {.block = MCNN_RESNET_BOTTLENECK,
                                    .stem = MCNN_RESNET_STEM_SMALL, .in_channels = 3,
                                    .stem_width = 16, .stages = 2, .blocks = {first_blocks, 1},
                                    .widths = {8, 16}, .num_classes = classes, .bn_eps = 1e-5f,
                                    .bn_momentum = 0.1f};
    const char *path = tmp_path(name);
    mcnn_resnet *src;
    TEST_OK(mcnn_resnet_create(&src, &cfg, seed));
    TEST_OK(mcnn_resnet_save(src, path));
    mcnn_resnet_free(src);
    return path;
}

static void test_resnet_release(void)
{
    enum { B = 2, S = 20, K = 5 };
    const char *path = saved_resnet("resnet.safetensors", 2, K, 4);
    float *images = random_floats((size_t)B * 3 * S * S, 7);
    float want[B * K], got[B * K];
    for (int i = 0; i < 3; i++) {
        mcnn_resnet *m, *l;
        TEST_OK(mcnn_resnet_load(&m, path, NULL));
        TEST_OK(mcnn_resnet_set_precision(m, precisions[i]));
        TEST_OK(mcnn_resnet_forward(m, want, images, B, S, S, MCNN_RESNET_EVAL));
        TEST_OK(mcnn_resnet_release_training_weights(m));
        TEST_OK(mcnn_resnet_forward(m, got, images, B, S, S, MCNN_RESNET_EVAL));
        expect_same(got, want, B * K, "resnet after release");
        expect_inference_only(mcnn_resnet_forward(m, got, images, B, S, S, MCNN_RESNET_TRAIN),
                              "resnet TRAIN forward");
        expect_inference_only(mcnn_resnet_forward(m, got, images, B, S, S,
                                                  MCNN_RESNET_FROZEN_BN), "resnet FROZEN_BN");
        expect_inference_only(mcnn_resnet_backward(m, got), "resnet backward");
        expect_inference_only(mcnn_resnet_backward_head(m, got), "resnet backward_head");
        expect_inference_only(mcnn_resnet_save(m, tmp_path("never.safetensors")), "resnet save");
        expect_inference_only(mcnn_resnet_set_precision(m, precisions[(i + 2) % 3]),
                              "resnet set_precision to another");
        mcnn_resnet_free(m);
        const mcnn_resnet_load_options o = {.precision = precisions[i], .inference_only = 1};
        TEST_OK(mcnn_resnet_load(&l, path, &o));
        mcnn_session *s;
        TEST_OK(mcnn_resnet_session_create(&s, l));
        TEST_OK(mcnn_resnet_session_forward(s, got, images, B, S, S));
        expect_same(got, want, B * K, "resnet inference-only load (session)");
        mcnn_session_free(s);
        mcnn_resnet_free(l);
    }
    free(images);
    remove(path);
}

/* ResNet's fc is packed with the convs, so it is released too: whole pages of its fp32 weight
 * read as zeros afterwards (Linux: madvise), whichever way the model became inference-only:
 * release after set_precision, an inference-only load of the file's fc, and one of a new fc
 * (another class count: initialised from the seed, then packed).  Each gives the bits of the
 * same model with its fp32 weights kept. */
static void expect_fc_released(mcnn_resnet *m, const char *what)
{
#ifdef __linux__
    const mcnn_params *p = mcnn_resnet_params(m);
    const mcnn_param *row = mcnn_params_find(p, "fc.weight");
    const long page = sysconf(_SC_PAGESIZE);
    size_t nonzero = 0;
    for (size_t i = 0; i < row->numel; i++) nonzero += p->data[row->offset + i] != 0.0f;
    /* only the partial pages at its two ends may stay */
    TEST_ASSERT(nonzero <= 2 * (size_t)page / sizeof(float), "%s: %zu of the fc's %zu weights "
                "still there (not released)", what, nonzero, (size_t)row->numel);
#else
    (void)m, (void)what;
#endif
}

static void test_resnet_fc_released(void)
{
    enum { B = 2, S = 16, KFILE = 100, KMAX = 120 };
    const char *path = saved_resnet("resnet_fc.safetensors", 1, KFILE, 6);
    float *images = random_floats((size_t)B * 3 * S * S, 9);
    float want[B * KMAX], got[B * KMAX];
    const int classes[2] = {0, KMAX}; /* the file's fc (100 classes), a new one */
    for (int i = 0; i < 3; i++)
        for (int h = 0; h < 2; h++) {
            const int K = h ? KMAX : KFILE;
            mcnn_resnet_load_options o = {.num_classes = classes[h], .seed = 11};
            mcnn_resnet *m, *l;
            TEST_OK(mcnn_resnet_load(&m, path, &o));
            TEST_OK(mcnn_resnet_set_precision(m, precisions[i]));
            TEST_OK(mcnn_resnet_forward(m, want, images, B, S, S, MCNN_RESNET_EVAL));
            TEST_OK(mcnn_resnet_release_training_weights(m));
            expect_fc_released(m, "resnet release");
            TEST_OK(mcnn_resnet_forward(m, got, images, B, S, S, MCNN_RESNET_EVAL));
            expect_same(got, want, (size_t)B * K, "resnet fc after release");
            mcnn_resnet_free(m);
            o.precision = precisions[i], o.inference_only = 1;
            TEST_OK(mcnn_resnet_load(&l, path, &o));
            if (!l) continue;
            expect_fc_released(l, h ? "resnet inference-only load, new fc"
                                    : "resnet inference-only load");
            TEST_OK(mcnn_resnet_forward(l, got, images, B, S, S, MCNN_RESNET_EVAL));
            expect_same(got, want, (size_t)B * K, h ? "resnet inference-only load, new fc"
                                                    : "resnet inference-only load, fc");
            mcnn_resnet_free(l);
        }
    free(images);
    remove(path);
}

/* ---- CLIP ------------------------------------------------------------------------------------ */
/* In bf16 and int8 the token embedding is compressed too, and its fp32 table released like a
 * matrix: its middle (well inside whole pages) reads 0 once released (Linux's madvise; not
 * under the sanitizers).  In fp32 the lookup reads the table: it stays. */
static void expect_token_table(mcnn_clip *m, mcnn_precision p, const char *what)
{
#ifdef __linux__
    if (SANITIZED) return;
    mcnn_params *params = mcnn_clip_params(m);
    const mcnn_param *row = mcnn_params_find(params, "token_embedding.weight");
    const float mid = params->data[row->offset + row->numel / 2];
    if (p == MCNN_PRECISION_FP32)
        TEST_ASSERT(mid != 0, "%s: the fp32 token table was released", what);
    else
        TEST_ASSERT(mid == 0, "%s: the %s model's fp32 token table is still there (%g)", what,
                    mcnn_precision_name(p), mid);
#else
    (void)m, (void)p, (void)what;
#endif
}

static void test_clip_release(void)
{
    const mcnn_clip_config cfg = {.embed_dim = 32, .image_size = 32, .patch_size = 8,
                                  .vision_width = 64, .vision_layers = 2, .vision_heads = 2,
                                  .context_length = 16, .vocab_size = 100, .text_width = 64,
                                  .text_layers = 2, .text_heads = 2};
    enum { B = 2, E = 32, T = 16 };
    const char *path = tmp_path("clip.safetensors");
    mcnn_clip *src;
    TEST_OK(mcnn_clip_create(&src, &cfg, 8));
    TEST_OK(mcnn_clip_save(src, path));
    mcnn_clip_free(src);
    float *images = random_floats((size_t)B * 3 * 32 * 32, 9);
    int32_t tokens[B * T] = {0};
    for (int b = 0; b < B; b++)
        for (int t = 0; t < 5 + b; t++) tokens[b * T + t] = t ? 3 + 7 * t + b : 98;
    for (int b = 0; b < B; b++) tokens[b * T + 5 + b] = 99; /* end of text: the largest id */
    float wi[B * E], wt[B * E], gi[B * E], gt[B * E], loss;
    for (int i = 0; i < 3; i++) {
        mcnn_clip *m, *l;
        TEST_OK(mcnn_clip_load(&m, path, NULL));
        TEST_OK(mcnn_clip_set_precision(m, precisions[i]));
        TEST_OK(mcnn_clip_encode_image(m, wi, images, B));
        TEST_OK(mcnn_clip_encode_text(m, wt, tokens, B));
        TEST_OK(mcnn_clip_release_training_weights(m));
        expect_token_table(m, precisions[i], "clip after release");
        TEST_OK(mcnn_clip_encode_image(m, gi, images, B));
        TEST_OK(mcnn_clip_encode_text(m, gt, tokens, B));
        expect_same(gi, wi, B * E, "clip image after release");
        expect_same(gt, wt, B * E, "clip text after release");
        expect_inference_only(mcnn_clip_train_forward(m, &loss, NULL, images, tokens, B),
                              "clip train forward");
        expect_inference_only(mcnn_clip_train_backward(m, 1.0f), "clip train backward");
        expect_inference_only(mcnn_clip_save(m, tmp_path("never.safetensors")), "clip save");
        expect_inference_only(mcnn_clip_set_precision(m, precisions[(i + 1) % 3]),
                              "clip set_precision to another");
        mcnn_clip_free(m);
        const mcnn_clip_load_options o = {.precision = precisions[i], .inference_only = 1};
        TEST_OK(mcnn_clip_load(&l, path, &o));
        expect_token_table(l, precisions[i], "clip inference-only load");
        TEST_OK(mcnn_clip_encode_image(l, gi, images, B));
        TEST_OK(mcnn_clip_encode_text(l, gt, tokens, B));
        expect_same(gi, wi, B * E, "clip image, inference-only load");
        expect_same(gt, wt, B * E, "clip text, inference-only load");
        mcnn_clip_free(l);
    }
    free(images);
    remove(path);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--peak") == 0) return child_peak(argv[2], argv[3]);
    TEST_RUN(test_vit_release);
    TEST_RUN(test_vit_load_inference_only);
    TEST_RUN(test_resnet_release);
    TEST_RUN(test_resnet_fc_released);
    TEST_RUN(test_clip_release);
    return test_summary();
}
