/* Sessions: one loaded model shared by threads, each with its own session.  Two threads, each
 * running both inputs (in opposite orders, so their arenas re-plan while the other runs), must
 * give the bits one thread gets doing both through the model's own calls.  For ViT, CLIP
 * (image and text), ResNet and the classifier (both architectures).  Also: what a session
 * returns is its own (another session's forward leaves it alone), the model's weights are not
 * written, and a session of another model type is refused.
 * Run it under SANITIZE=1 (ASan) and, without OpenMP, under ThreadSanitizer:
 *   make OPENMP=0 SANITIZE=thread build/noomp/tsan/tests/test_sessions */
#include "mcnn_test.h"

#include <pthread.h>

enum { ROUNDS = 3, JOBS = 2 };

#define TRY(expr)                                                                           \
    do {                                                                                    \
        mcnn_status st_ = (expr);                                                           \
        if (st_ != MCNN_OK) return st_;                                                     \
    } while (0)

/* One input: a batch of images (and, for CLIP, of texts). */
typedef struct job {
    const float *images;
    const int32_t *tokens;
    int B;
} job;

/* Everything one job gives, written into out (as many floats as the reference). */
typedef mcnn_status (*run_fn)(mcnn_session *s, const job *j, float *out);
typedef mcnn_status (*create_fn)(mcnn_session **s, const void *model);

typedef struct worker {
    const void *model;
    create_fn create;
    run_fn run;
    const job *jobs;
    float *const *want;
    const size_t *n;
    int first;          /* the job this thread starts with */
    int mismatches;
    mcnn_status status;
    char error[256];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    mcnn_session *s = NULL;
    w->status = w->create(&s, w->model);
    for (int r = 0; w->status == MCNN_OK && r < ROUNDS * JOBS; r++) {
        const int j = (w->first + r) % JOBS;
        float *out = malloc(w->n[j] * sizeof(float));
        w->status = out ? w->run(s, &w->jobs[j], out) : MCNN_ERR_NOMEM;
        if (w->status == MCNN_OK && memcmp(out, w->want[j], w->n[j] * sizeof(float)))
            w->mismatches++;
        free(out);
    }
    if (w->status != MCNN_OK) snprintf(w->error, sizeof w->error, "%s", mcnn_last_error());
    mcnn_session_free(s);
    return NULL;
}

static uint64_t hash_floats(const float *x, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *p = (const unsigned char *)x;
    for (size_t i = 0; i < n * sizeof(float); i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* Two threads on one model, each with its own session, against the references; the weights
 * (params, n_params floats) must be the same afterwards. */
static void two_threads(const char *what, const void *model, create_fn create, run_fn run,
                        const job *jobs, float *const *want, const size_t *n,
                        const float *params, size_t n_params)
{
    const uint64_t before = hash_floats(params, n_params);
    worker w[2];
    pthread_t th[2];
    for (int t = 0; t < 2; t++) {
        w[t] = (worker){model, create, run, jobs, want, n, t, 0, MCNN_OK, ""};
        TEST_ASSERT(pthread_create(&th[t], NULL, work, &w[t]) == 0, "%s: pthread_create", what);
    }
    for (int t = 0; t < 2; t++) {
        pthread_join(th[t], NULL);
        TEST_ASSERT(w[t].status == MCNN_OK, "%s thread %d: %s", what, t, w[t].error);
        TEST_ASSERT(w[t].mismatches == 0, "%s thread %d: %d of %d results differ from one thread's",
                    what, t, w[t].mismatches, ROUNDS * JOBS);
    }
    TEST_ASSERT(hash_floats(params, n_params) == before, "%s: the weights changed", what);
}

static float *random_floats(size_t n, uint64_t seed)
{
    mcnn_rng r;
    mcnn_rng_seed(&r, seed);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; x && i < n; i++) x[i] = mcnn_rng_normal(&r);
    return x;
}

/* ---- ViT ----------------------------------------------------------------------------------- */
static const mcnn_vit_config vit_cfg = {.image_size = 28, .patch_size = 7, .in_channels = 1,
                                        .width = 32, .layers = 3, .heads = 4, .mlp_dim = 64,
                                        .num_classes = 5, .ln_eps = 1e-6f};

static mcnn_status vit_create(mcnn_session **s, const void *m)
{
    return mcnn_vit_session_create(s, m);
}

/* logits (B, K), then the features (B, C) */
static mcnn_status vit_run(mcnn_session *s, const job *j, float *out)
{
    TRY(mcnn_vit_session_forward(s, out, j->images, j->B));
    const float *f = mcnn_vit_session_features(s);
    if (!f) return MCNN_ERR_ARG;
    memcpy(out + j->B * vit_cfg.num_classes, f, (size_t)j->B * vit_cfg.width * sizeof(float));
    return MCNN_OK;
}

static void test_vit_sessions(void)
{
    mcnn_vit *m;
    TEST_OK(mcnn_vit_create(&m, &vit_cfg, 3));
    const int K = vit_cfg.num_classes, C = vit_cfg.width, S = 28 * 28;
    float *images = random_floats(5 * S, 1);
    const job jobs[JOBS] = {{images, NULL, 3}, {images + 3 * S, NULL, 2}};
    float *want[JOBS];
    size_t n[JOBS];
    for (int j = 0; j < JOBS; j++) {   /* one thread, the model's own calls */
        n[j] = (size_t)jobs[j].B * (K + C);
        want[j] = malloc(n[j] * sizeof(float));
        TEST_OK(mcnn_vit_forward(m, want[j], jobs[j].images, jobs[j].B, 0));
        memcpy(want[j] + jobs[j].B * K, mcnn_vit_features(m), (size_t)jobs[j].B * C * sizeof(float));
    }
    const mcnn_params *p = mcnn_vit_params(m);
    two_threads("vit", m, vit_create, vit_run, jobs, want, n, p->data, p->total);

    /* a session's features are its own: another session's forward leaves them alone */
    mcnn_session *s1, *s2;
    float logits[5 * 5];
    TEST_OK(mcnn_vit_session_create(&s1, m));
    TEST_OK(mcnn_vit_session_create(&s2, m));
    TEST_ASSERT(mcnn_vit_session_features(s1) == NULL, "features before any forward");
    TEST_OK(mcnn_vit_session_forward(s1, logits, jobs[0].images, 3));
    const float *f1 = mcnn_vit_session_features(s1);
    TEST_OK(mcnn_vit_session_forward(s2, logits, jobs[1].images, 2));
    TEST_OK(mcnn_vit_forward(m, logits, jobs[1].images, 2, 0));
    TEST_ASSERT(f1 && memcmp(f1, want[0] + 3 * K, (size_t)3 * C * sizeof(float)) == 0,
                "session 1's features changed under another session's forward");
    /* the wrong kind of session is refused, naming both kinds */
    TEST_ASSERT(mcnn_resnet_session_forward(s1, logits, images, 1, 28, 28) == MCNN_ERR_ARG,
                "a ViT session accepted by ResNet");
    TEST_ASSERT(strstr(mcnn_last_error(), "vit session"), "error: %s", mcnn_last_error());
    TEST_ASSERT(mcnn_resnet_session_features(s1) == NULL, "ResNet features of a ViT session");
    TEST_ASSERT(mcnn_vit_session_forward(NULL, logits, images, 1) == MCNN_ERR_ARG, "NULL session");
    mcnn_session_free(s1);
    mcnn_session_free(s2);
    mcnn_session_free(NULL);
    for (int j = 0; j < JOBS; j++) free(want[j]);
    free(images);
    mcnn_vit_free(m);
}

/* ---- CLIP ---------------------------------------------------------------------------------- */
static const mcnn_clip_config clip_cfg = {.embed_dim = 16, .image_size = 32, .patch_size = 8,
                                          .vision_width = 32, .vision_layers = 2,
                                          .vision_heads = 2, .context_length = 12,
                                          .vocab_size = 100, .text_width = 24, .text_layers = 2,
                                          .text_heads = 3};

static mcnn_status clip_create(mcnn_session **s, const void *m)
{
    return mcnn_clip_session_create(s, m);
}

/* image features (B, E), text features (B, E), ln_post (B, W), ln_final (B, w) */
static mcnn_status clip_run(mcnn_session *s, const job *j, float *out)
{
    const int B = j->B, E = clip_cfg.embed_dim;
    TRY(mcnn_clip_session_encode_image(s, out, j->images, B));
    TRY(mcnn_clip_session_encode_text(s, out + B * E, j->tokens, B));
    const float *post = mcnn_clip_session_intermediate(s, "visual.ln_post", NULL);
    const float *fin = mcnn_clip_session_intermediate(s, "text.ln_final", NULL);
    if (!post || !fin) return MCNN_ERR_ARG;
    memcpy(out + 2 * B * E, post, (size_t)B * clip_cfg.vision_width * sizeof(float));
    memcpy(out + 2 * B * E + B * clip_cfg.vision_width, fin,
           (size_t)B * clip_cfg.text_width * sizeof(float));
    return MCNN_OK;
}

static void test_clip_sessions(void)
{
    mcnn_clip *m;
    TEST_OK(mcnn_clip_create(&m, &clip_cfg, 9));
    const int E = clip_cfg.embed_dim, W = clip_cfg.vision_width, w = clip_cfg.text_width;
    const int S = 3 * 32 * 32, ctx = clip_cfg.context_length;
    float *images = random_floats(5 * S, 2);
    int32_t tokens[5 * 12] = {0};
    for (int t = 0; t < 5; t++) {   /* start, a few ids, end (the highest id), zeros */
        int32_t *row = tokens + t * ctx;
        row[0] = 98;
        for (int i = 1; i <= 2 + 2 * t && i < ctx - 1; i++) row[i] = 3 + (7 * i + 5 * t) % 90;
        row[t == 4 ? ctx - 1 : 3 + 2 * t] = 99;
    }
    const job jobs[JOBS] = {{images, tokens, 3}, {images + 3 * S, tokens + 3 * ctx, 2}};
    float *want[JOBS];
    size_t n[JOBS];
    for (int j = 0; j < JOBS; j++) {
        const int B = jobs[j].B;
        n[j] = (size_t)B * (2 * E + W + w);
        want[j] = malloc(n[j] * sizeof(float));
        TEST_OK(mcnn_clip_encode_image(m, want[j], jobs[j].images, B));
        TEST_OK(mcnn_clip_encode_text(m, want[j] + B * E, jobs[j].tokens, B));
        memcpy(want[j] + 2 * B * E, mcnn_clip_intermediate(m, "visual.ln_post", NULL),
               (size_t)B * W * sizeof(float));
        memcpy(want[j] + 2 * B * E + B * W, mcnn_clip_intermediate(m, "text.ln_final", NULL),
               (size_t)B * w * sizeof(float));
    }
    const mcnn_params *p = mcnn_clip_params(m);
    two_threads("clip", m, clip_create, clip_run, jobs, want, n, p->data, p->total);
    mcnn_session *s;
    TEST_OK(mcnn_clip_session_create(&s, m));
    TEST_ASSERT(mcnn_clip_session_intermediate(s, "visual.ln_post", NULL) == NULL,
                "an intermediate before any forward");
    TEST_ASSERT(mcnn_vit_session_forward(s, want[0], images, 1) == MCNN_ERR_ARG,
                "a CLIP session accepted by ViT");
    mcnn_session_free(s);
    for (int j = 0; j < JOBS; j++) free(want[j]);
    free(images);
    mcnn_clip_free(m);
}

/* ---- ResNet -------------------------------------------------------------------------------- */
static mcnn_resnet_config resnet_cfg(void)
{
    mcnn_resnet_config c = mcnn_resnet_config_standard(18, 4);
    c.stem = MCNN_RESNET_STEM_SMALL;
    c.in_channels = 1;
    c.stages = 2;
    c.blocks[0] = c.blocks[1] = 1;
    c.widths[0] = 8;
    c.widths[1] = 16;
    return c;
}

static mcnn_status resnet_create(mcnn_session **s, const void *m)
{
    return mcnn_resnet_session_create(s, m);
}

/* logits (B, 4), then the features (B, 16) */
static mcnn_status resnet_run(mcnn_session *s, const job *j, float *out)
{
    TRY(mcnn_resnet_session_forward(s, out, j->images, j->B, 28, 28));
    const float *f = mcnn_resnet_session_features(s);
    if (!f) return MCNN_ERR_ARG;
    memcpy(out + j->B * 4, f, (size_t)j->B * 16 * sizeof(float));
    return MCNN_OK;
}

static void test_resnet_sessions(void)
{
    const mcnn_resnet_config cfg = resnet_cfg();
    mcnn_resnet *m;
    TEST_OK(mcnn_resnet_create(&m, &cfg, 4));
    const int S = 28 * 28;
    float *images = random_floats(5 * S, 3), logits[5 * 4];
    /* batch-norm running statistics that are not 0 and 1, from a few training forwards */
    for (int i = 0; i < 3; i++)
        TEST_OK(mcnn_resnet_forward(m, logits, images, 5, 28, 28, MCNN_RESNET_TRAIN));
    const job jobs[JOBS] = {{images, NULL, 3}, {images + 3 * S, NULL, 2}};
    float *want[JOBS];
    size_t n[JOBS];
    for (int j = 0; j < JOBS; j++) {
        n[j] = (size_t)jobs[j].B * (4 + 16);
        want[j] = malloc(n[j] * sizeof(float));
        TEST_OK(mcnn_resnet_forward(m, want[j], jobs[j].images, jobs[j].B, 28, 28,
                                    MCNN_RESNET_EVAL));
        memcpy(want[j] + jobs[j].B * 4, mcnn_resnet_features(m), (size_t)jobs[j].B * 16 * 4);
    }
    const mcnn_params *p = mcnn_resnet_params(m), *bn = mcnn_resnet_buffers(m);
    const uint64_t stats = hash_floats(bn->data, bn->total);
    two_threads("resnet", m, resnet_create, resnet_run, jobs, want, n, p->data, p->total);
    TEST_ASSERT(hash_floats(bn->data, bn->total) == stats, "resnet: running statistics changed");
    for (int j = 0; j < JOBS; j++) free(want[j]);
    free(images);
    mcnn_resnet_free(m);
}

/* ---- classifier ---------------------------------------------------------------------------- */
static mcnn_status classifier_create(mcnn_session **s, const void *c)
{
    return mcnn_classifier_session_create(s, c);
}

static mcnn_status classifier_run(mcnn_session *s, const job *j, float *out)
{
    return mcnn_classifier_session_forward(s, out, j->images, j->B);
}

static void classifier_case(const char *arch)
{
    mcnn_classifier *c;
    const mcnn_classifier_config cfg = {.arch = arch, .num_classes = 6, .image_size = 28,
                                        .in_channels = 1, .width = 16, .depth = 1, .patch = 7,
                                        .heads = 2};
    TEST_OK(mcnn_classifier_create(&c, &cfg, 5));
    if (!c) return;
    const int S = 28 * 28;
    float *images = random_floats(5 * S, 4);
    const job jobs[JOBS] = {{images, NULL, 3}, {images + 3 * S, NULL, 2}};
    float *want[JOBS];
    size_t n[JOBS];
    for (int j = 0; j < JOBS; j++) {
        n[j] = (size_t)jobs[j].B * 6;
        want[j] = malloc(n[j] * sizeof(float));
        TEST_OK(mcnn_classifier_forward(c, want[j], jobs[j].images, jobs[j].B, 0));
    }
    const mcnn_params *p = mcnn_classifier_params(c);
    two_threads(arch, c, classifier_create, classifier_run, jobs, want, n, p->data, p->total);
    mcnn_session *s;
    TEST_OK(mcnn_classifier_session_create(&s, c));
    TEST_ASSERT(mcnn_vit_session_forward(s, want[0], images, 1) == MCNN_ERR_ARG,
                "a classifier session accepted by ViT");
    mcnn_session_free(s);
    for (int j = 0; j < JOBS; j++) free(want[j]);
    free(images);
    mcnn_classifier_free(c);
}

static void test_classifier_sessions(void)
{
    classifier_case("resnet-small");
    classifier_case("vit-small");
}

int main(void)
{
    TEST_RUN(test_vit_sessions);
    TEST_RUN(test_clip_sessions);
    TEST_RUN(test_resnet_sessions);
    TEST_RUN(test_classifier_sessions);
    return test_summary();
}
