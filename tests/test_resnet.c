/* ResNet against torchvision (tests/ref/gen_resnet.py): tiny models built from torchvision's own
 * Bottleneck and BasicBlock classes with every parameter and buffer randomised.  Checks the
 * config read off the shapes, logits in eval and train mode (two image sizes), stage outputs,
 * running statistics after a training forward, the gradient of every parameter for cross-entropy,
 * BCE with pos_weight and frozen batch norm, one AdamW step, the small-image BasicBlock variant,
 * loading variants (no num_batches_tracked, F64, a new head), bad checkpoints and arguments,
 * thread-count independence, the initialisation, a save/load round trip, and ResNet-18's
 * published parameter count.  MCNN_TEST_FULL=1 adds a full-size ResNet-50. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"
#include "loss_golden.h"
#include "nn/bottleneck_block.h"

#include <unistd.h>

#define GOLDEN "tests/data/resnet_tiny.safetensors"
#define GOLDEN_BASIC "tests/data/resnet_tiny_basic.safetensors"
enum { B = 3, K = 5, F = 64 };  /* the bottleneck golden: batch, classes, feature channels */
enum { BB = 2, BK = 7 };        /* the basic golden: batch, classes                       */

static mcnn_safetensors *golden, *golden_basic;

static const char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 256, "/tmp/mcnn_test_resnet_%d_%s", (int)getpid(), name);
    return p;
}

/* How write_checkpoint departs from the golden's "w.*" state_dict. */
typedef struct ckpt_edit {
    const char *skip;       /* leave out this key                                  */
    const char *extra;      /* add this key (a 1-element tensor)                   */
    const char *flatten;    /* write this key flat: a wrong shape                  */
    const char *rename_from, *rename_to;
    int drop_num_batches;   /* leave out every num_batches_tracked                 */
    int as_f64;             /* store the floats as F64                             */
} ckpt_edit;

static void write_checkpoint(mcnn_safetensors *g, const char *path, const ckpt_edit *edit)
{
    static const ckpt_edit none = {0};
    if (!edit) edit = &none;
    int n = mcnn_safetensors_count(g), k = 0;
    mcnn_st_entry *e = calloc((size_t)n + 1, sizeof *e);
    char(*names)[128] = calloc((size_t)n + 1, 128);
    void **data = calloc((size_t)n + 1, sizeof *data);
    for (int i = 0; i < n; i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(g, i);
        if (strncmp(t->name, "w.", 2) != 0) continue;
        const char *key = t->name + 2;
        if (edit->skip && strcmp(key, edit->skip) == 0) continue;
        const int nbt = strstr(key, "num_batches_tracked") != NULL;
        if (nbt && edit->drop_num_batches) continue;
        snprintf(names[k], 128, "%s",
                 edit->rename_from && strcmp(key, edit->rename_from) == 0 ? edit->rename_to : key);
        e[k] = (mcnn_st_entry){.name = names[k], .ndim = t->ndim};
        memcpy(e[k].shape, t->shape, sizeof t->shape);
        if (nbt) { /* an int64 scalar, as PyTorch writes it */
            int32_t *v = test_golden_i32(g, t->name, NULL);
            int64_t *v64 = malloc(sizeof *v64);
            *v64 = v ? v[0] : 0;
            free(v);
            data[k] = v64;
            e[k].dtype = MCNN_DTYPE_I64;
        } else if (edit->as_f64) {
            float *f = test_golden(g, t->name, NULL);
            double *d = malloc(t->numel * sizeof *d);
            for (size_t j = 0; f && j < t->numel; j++) d[j] = f[j];
            free(f);
            data[k] = d;
            e[k].dtype = MCNN_DTYPE_F64;
        } else {
            data[k] = test_golden(g, t->name, NULL);
            e[k].dtype = MCNN_DTYPE_F32;
        }
        if (edit->flatten && strcmp(key, edit->flatten) == 0) { /* (numel), or (1, numel) */
            e[k].ndim = t->ndim == 1 ? 2 : 1;
            e[k].shape[0] = t->ndim == 1 ? 1 : (int64_t)t->numel;
            e[k].shape[1] = (int64_t)t->numel;
        }
        e[k].data = data[k];
        k++;
    }
    if (edit->extra) {
        snprintf(names[k], 128, "%s", edit->extra);
        float *one = calloc(1, sizeof *one);
        data[k] = one;
        e[k] = (mcnn_st_entry){.name = names[k], .dtype = MCNN_DTYPE_F32, .ndim = 1,
                               .shape = {1}, .data = one};
        k++;
    }
    TEST_OK(mcnn_safetensors_write(path, e, k, NULL, 0));
    for (int i = 0; i < k; i++) free(data[i]);
    free(data);
    free(names);
    free(e);
}

static mcnn_resnet *load_golden(mcnn_safetensors *g, const ckpt_edit *edit,
                                const mcnn_resnet_load_options *opt)
{
    const char *path = tmp_path("load.safetensors");
    write_checkpoint(g, path, edit);
    mcnn_resnet *m = NULL;
    TEST_OK(mcnn_resnet_load(&m, path, opt));
    remove(path);
    return m;
}

/* Eval-mode logits of n images under images_key against want_key. */
static void compare_logits(mcnn_safetensors *g, mcnn_resnet *m, const char *images_key,
                           const char *want_key, int n, int H, int W, int classes)
{
    float *images = test_golden(g, images_key, NULL), *want = test_golden(g, want_key, NULL);
    float logits[8 * 8];
    if (m && images && want) {
        TEST_OK(mcnn_resnet_forward(m, logits, images, n, H, W, MCNN_RESNET_EVAL));
        test_close_rel(want_key, logits, want, (size_t)n * classes, 1e-4);
    }
    free(images);
    free(want);
}

static void compare_golden(mcnn_safetensors *g, const char *key, const float *got, size_t n,
                           double tol)
{
    size_t numel = 0;
    float *want = test_golden(g, key, &numel);
    if (!want) return;
    TEST_ASSERT(numel == n, "%s: %zu values, golden has %zu", key, n, numel);
    if (got && numel == n) test_close_rel(key, got, want, n, tol);
    TEST_ASSERT(got != NULL, "%s: no values", key);
    free(want);
}

static void test_resnet_config_and_eval(void)
{
    mcnn_resnet *m = load_golden(golden, NULL, NULL);
    if (!m) return;
    const mcnn_resnet_config *c = mcnn_resnet_get_config(m);
    TEST_ASSERT(c->block == MCNN_RESNET_BOTTLENECK && c->stem == MCNN_RESNET_STEM_IMAGENET &&
                c->in_channels == 3 && c->stem_width == 8 && c->stages == 4 &&
                c->num_classes == K && mcnn_resnet_feature_dim(m) == F,
                "config read off the shapes");
    const int blocks[] = {2, 1, 2, 1}, widths[] = {2, 4, 8, 16};
    for (int s = 0; s < 4; s++)
        TEST_ASSERT(c->blocks[s] == blocks[s] && c->widths[s] == widths[s],
                    "stage %d: %d blocks of width %d", s + 1, c->blocks[s], c->widths[s]);
    compare_logits(golden, m, "images", "logits_eval", B, 48, 48, K);
    compare_golden(golden, "inter.features_eval", mcnn_resnet_features(m), (size_t)B * F, 1e-4);
    compare_logits(golden, m, "images2", "logits2_eval", 2, 32, 40, K); /* another plan */
    compare_logits(golden, m, "images", "logits_eval", B, 48, 48, K);   /* and back    */
    mcnn_resnet_free(m);
}

static void test_resnet_train_forward(void)
{
    mcnn_resnet *m = load_golden(golden, NULL, NULL);
    if (!m) return;
    float *images = test_golden(golden, "images", NULL), logits[B * K];
    TEST_OK(mcnn_resnet_forward(m, logits, images, B, 48, 48, MCNN_RESNET_TRAIN));
    compare_golden(golden, "logits_train", logits, B * K, 1e-4);
    int C, H, W;
    const float *stem = mcnn_resnet_stage_output(m, -1, &C, &H, &W);
    compare_golden(golden, "inter.stem", stem, (size_t)B * C * H * W, 1e-4);
    for (int s = 0; s < 4; s++) {
        char key[32];
        snprintf(key, sizeof key, "inter.layer%d", s + 1);
        const float *out = mcnn_resnet_stage_output(m, s, &C, &H, &W);
        compare_golden(golden, key, out, (size_t)B * C * H * W, 1e-4);
    }
    compare_golden(golden, "inter.features", mcnn_resnet_features(m), (size_t)B * F, 1e-4);
    /* running statistics after one update with momentum 0.1 */
    const mcnn_params *buf = mcnn_resnet_buffers(m);
    for (int i = 0; i < buf->count; i++) {
        char key[160];
        snprintf(key, sizeof key, "run.%s", buf->table[i].name);
        compare_golden(golden, key, buf->data + buf->table[i].offset, buf->table[i].numel, 1e-5);
    }
    free(images);
    mcnn_resnet_free(m);
}

typedef enum loss_kind { LOSS_CE, LOSS_BCE } loss_kind;

/* One training step: loss, every parameter's gradient and, when adamw, the parameters after
 * one AdamW step fed the golden gradients. */
static void check_step(mcnn_safetensors *g, const char *prefix, loss_kind loss_kind,
                       mcnn_resnet_mode mode, int n, int H, int W, int classes, int adamw)
{
    mcnn_resnet *m = load_golden(g, NULL, NULL);
    if (!m) return;
    float *images = test_golden(g, "images", NULL);
    float logits[8 * 8], dlogits[8 * 8] = {0};
    TEST_OK(mcnn_resnet_forward(m, logits, images, n, H, W, mode));
    char key[160];
    test_loss_golden(g, prefix, loss_kind == LOSS_BCE, logits, dlogits, n, classes);

    mcnn_params *p = mcnn_resnet_params(m);
    mcnn_params_zero_grad(p);
    TEST_OK(mcnn_resnet_backward(m, dlogits));
    for (int i = 0; i < p->count; i++) {
        const mcnn_param *row = &p->table[i];
        snprintf(key, sizeof key, "%sgrad.%s", prefix, row->name);
        compare_golden(g, key, p->grad + row->offset, row->numel, 1e-4);
    }
    if (mode == MCNN_RESNET_FROZEN_BN) { /* the running statistics are constants here */
        const mcnn_params *buf = mcnn_resnet_buffers(m);
        for (int i = 0; i < buf->count; i++) {
            snprintf(key, sizeof key, "w.%s", buf->table[i].name);
            compare_golden(g, key, buf->data + buf->table[i].offset, buf->table[i].numel, 0);
        }
    }
    if (adamw) {
        for (int i = 0; i < p->count; i++) {
            const mcnn_param *row = &p->table[i];
            snprintf(key, sizeof key, "%sgrad.%s", prefix, row->name);
            float *want = test_golden(g, key, NULL);
            if (want) memcpy(p->grad + row->offset, want, row->numel * sizeof(float));
            free(want);
        }
        mcnn_optim opt;
        TEST_OK(mcnn_optim_init(&opt, MCNN_OPTIM_ADAMW, p->total));
        opt.lr = 1e-3, opt.weight_decay = 0.05, opt.beta1 = 0.9, opt.beta2 = 0.999, opt.eps = 1e-8;
        TEST_OK(mcnn_optim_step(&opt, p->data, p->grad, p->table, p->count));
        for (int i = 0; i < p->count; i++) {
            const mcnn_param *row = &p->table[i];
            snprintf(key, sizeof key, "%sadamw.%s", prefix, row->name);
            compare_golden(g, key, p->data + row->offset, row->numel, 1e-5);
        }
        mcnn_optim_free(&opt);
    }
    free(images);
    mcnn_resnet_free(m);
}

static void test_resnet_train_step_cross_entropy(void)
{
    check_step(golden, "", LOSS_CE, MCNN_RESNET_TRAIN, B, 48, 48, K, 1);
}

static void test_resnet_train_step_bce(void)
{
    check_step(golden, "bce.", LOSS_BCE, MCNN_RESNET_TRAIN, B, 48, 48, K, 0);
}

static void test_resnet_frozen_bn_step(void)
{
    check_step(golden, "frozen.", LOSS_CE, MCNN_RESNET_FROZEN_BN, B, 48, 48, K, 0);
}

/* A linear probe: after an eval forward only the fc gets gradients, the ones of frozen BN. */
static void test_resnet_backward_head(void)
{
    mcnn_resnet *m = load_golden(golden, NULL, NULL);
    if (!m) return;
    float *images = test_golden(golden, "images", NULL);
    int32_t *targets = test_golden_i32(golden, "targets", NULL);
    float logits[B * K], probs[B * K], dlogits[B * K] = {0};
    TEST_OK(mcnn_resnet_forward(m, logits, images, B, 48, 48, MCNN_RESNET_EVAL));
    mcnn_cross_entropy_forward(probs, logits, targets, B, K, 0.0f);
    mcnn_cross_entropy_backward(dlogits, probs, targets, B, K, 0.0f, 1.0f);
    mcnn_params *p = mcnn_resnet_params(m);
    mcnn_params_zero_grad(p);
    TEST_ASSERT(mcnn_resnet_backward(m, dlogits) == MCNN_ERR_ARG, "full backward after eval");
    TEST_OK(mcnn_resnet_backward_head(m, dlogits));
    compare_golden(golden, "frozen.grad.fc.weight", mcnn_params_grad(p, "fc.weight"), K * F, 1e-4);
    compare_golden(golden, "frozen.grad.fc.bias", mcnn_params_grad(p, "fc.bias"), K, 1e-4);
    const mcnn_param *fc = mcnn_params_find(p, "fc.weight");
    size_t nonzero = 0;
    for (size_t i = 0; i < fc->offset; i++) nonzero += p->grad[i] != 0.0f;
    TEST_ASSERT(nonzero == 0, "%zu backbone gradients touched by the head's backward", nonzero);
    free(images);
    free(targets);
    mcnn_resnet_free(m);
}

/* BasicBlock, small-image stem, one input channel, three stages, 28x28. */
static void test_resnet_basic_small_stem(void)
{
    mcnn_resnet *m = load_golden(golden_basic, NULL, NULL);
    if (!m) return;
    const mcnn_resnet_config *c = mcnn_resnet_get_config(m);
    TEST_ASSERT(c->block == MCNN_RESNET_BASIC && c->stem == MCNN_RESNET_STEM_SMALL &&
                c->in_channels == 1 && c->stem_width == 4 && c->stages == 3 &&
                c->blocks[0] == 2 && c->blocks[1] == 1 && c->blocks[2] == 1 &&
                c->widths[0] == 4 && c->widths[1] == 8 && c->widths[2] == 16 &&
                c->num_classes == BK && mcnn_resnet_feature_dim(m) == 16,
                "basic config read off the shapes");
    compare_logits(golden_basic, m, "images", "logits_eval", BB, 28, 28, BK);
    float *images = test_golden(golden_basic, "images", NULL), logits[BB * BK];
    TEST_OK(mcnn_resnet_forward(m, logits, images, BB, 28, 28, MCNN_RESNET_TRAIN));
    compare_golden(golden_basic, "logits_train", logits, BB * BK, 1e-4);
    for (int s = -1; s < 3; s++) {
        char key[32];
        int C, H, W;
        snprintf(key, sizeof key, s < 0 ? "inter.stem" : "inter.layer%d", s + 1);
        const float *out = mcnn_resnet_stage_output(m, s, &C, &H, &W);
        compare_golden(golden_basic, key, out, (size_t)BB * C * H * W, 1e-4);
    }
    const mcnn_params *buf = mcnn_resnet_buffers(m);
    for (int i = 0; i < buf->count; i++) {
        char key[160];
        snprintf(key, sizeof key, "run.%s", buf->table[i].name);
        compare_golden(golden_basic, key, buf->data + buf->table[i].offset, buf->table[i].numel,
                       1e-5);
    }
    free(images);
    mcnn_resnet_free(m);
    check_step(golden_basic, "", LOSS_CE, MCNN_RESNET_TRAIN, BB, 28, 28, BK, 0);
}

/* The same training step on 1 and on 2 threads gives the same bits (no float atomics, fixed
 * reduction orders), logits and every gradient.  4 images of 64x64, so that the element-wise
 * ops, batch norm and the GEMMs are large enough to be split across threads. */
static void test_resnet_thread_independence(void)
{
    enum { TN = 4, TH = 64 };
    mcnn_resnet *m = load_golden(golden_basic, NULL, NULL);
    if (!m) return;
    float *images = malloc(TN * TH * TH * sizeof(float));
    test_fill_random(images, TN * TH * TH, 8);
    mcnn_params *p = mcnn_resnet_params(m);
    float logits[2][TN * BK], dlogits[TN * BK], *grads[2];
    for (int i = 0; i < TN * BK; i++) dlogits[i] = (float)(i % 3) - 0.7f;
    const int before = mcnn_get_threads();
    for (int t = 0; t < 2; t++) {
        mcnn_set_threads(t + 1);
        mcnn_params_zero_grad(p);
        TEST_OK(mcnn_resnet_forward(m, logits[t], images, TN, TH, TH, MCNN_RESNET_TRAIN));
        TEST_OK(mcnn_resnet_backward(m, dlogits));
        grads[t] = malloc(p->total * sizeof(float));
        memcpy(grads[t], p->grad, p->total * sizeof(float));
    }
    mcnn_set_threads(before);
    test_close_array("logits, 1 vs 2 threads", logits[1], logits[0], TN * BK, 0, 0);
    test_close_array("gradients, 1 vs 2 threads", grads[1], grads[0], p->total, 0, 0);
    free(grads[0]);
    free(grads[1]);
    free(images);
    mcnn_resnet_free(m);
}

/* Eval on 2 threads runs each thread's share of the batch through the whole network (one lane
 * per thread); the logits and features must have the same bits as on 1 thread.  Batches of 3
 * (an uneven split) and 4, bottleneck and basic blocks. */
static void test_resnet_eval_lanes(void)
{
    enum { TH = 40 };
    mcnn_safetensors *models[2] = {golden, golden_basic};
    const int before = mcnn_get_threads();
    for (int k = 0; k < 2; k++) {
        mcnn_resnet *m = load_golden(models[k], NULL, NULL);
        if (!m) continue;
        const mcnn_resnet_config *c = mcnn_resnet_get_config(m);
        const int classes = c->num_classes, F = mcnn_resnet_feature_dim(m);
        const size_t image = (size_t)c->in_channels * TH * TH;
        for (int n = 3; n <= 4; n++) {
            float *images = malloc(n * image * sizeof(float)), *logits[2], *feat[2];
            test_fill_random(images, n * image, 9 + n);
            for (int t = 0; t < 2; t++) {
                mcnn_set_threads(t + 1);
                logits[t] = malloc((size_t)n * classes * sizeof(float));
                feat[t] = malloc((size_t)n * F * sizeof(float));
                TEST_OK(mcnn_resnet_forward(m, logits[t], images, n, TH, TH, MCNN_RESNET_EVAL));
                memcpy(feat[t], mcnn_resnet_features(m), (size_t)n * F * sizeof(float));
            }
            mcnn_set_threads(before);
            test_close_array("eval logits, 1 vs 2 threads", logits[1], logits[0],
                             (size_t)n * classes, 0, 0);
            test_close_array("eval features, 1 vs 2 threads", feat[1], feat[0], (size_t)n * F,
                             0, 0);
            for (int t = 0; t < 2; t++) free(logits[t]), free(feat[t]);
            free(images);
        }
        mcnn_resnet_free(m);
    }
}

/* The blocks' fused batch norm (y = relu?(bn(x) + res?) in one pass when the statistics are
 * constants) against its plain twin, the ops one after another: the same bits, in both modes,
 * with and without the residual and the ReLU; the same running statistics after a training
 * forward.  Large enough (40000 values) for the ops to use threads. */
static void test_resnet_fused_bn(void)
{
    enum { N = 2, C = 8, HW = 2500, NX = N * C * HW };
    float *x = malloc(NX * sizeof(float)), *res = malloc(NX * sizeof(float));
    float *y1 = malloc(NX * sizeof(float)), *y2 = malloc(NX * sizeof(float));
    float w[C], b[C], mean0[C], var0[C], rm[2][C], rv[2][C], sm[2][C], sr[2][C];
    test_fill_random(x, NX, 31);
    test_fill_random(res, NX, 32);
    test_fill_random(w, C, 33);
    test_fill_random(b, C, 34);
    test_fill_random(mean0, C, 35);
    test_fill_random(var0, C, 36);
    for (int c = 0; c < C; c++) var0[c] = 0.5f + fabsf(var0[c]);
    for (int mode = 0; mode < 2; mode++)
        for (int k = 0; k < 4; k++) {
            const resblock_bn bn = mode ? RESBLOCK_BN_RUNNING : RESBLOCK_BN_BATCH;
            const float *r = k & 1 ? res : NULL;
            const int relu = k >> 1;
            for (int t = 0; t < 2; t++) {
                memcpy(rm[t], mean0, sizeof mean0);
                memcpy(rv[t], var0, sizeof var0);
            }
            mcnn_resnet_bn_forward(y1, (bn_saved){sm[0], sr[0]}, x, r, relu, (bn_affine){w, b},
                                   (bn_running){rm[0], rv[0]}, N, C, HW, 0.1f, 1e-5f, bn);
            if (bn == RESBLOCK_BN_BATCH)
                mcnn_batchnorm2d_forward_train(y2, sm[1], sr[1], rm[1], rv[1], x, w, b, N, C, HW,
                                               0.1f, 1e-5f);
            else
                mcnn_batchnorm2d_forward_eval(y2, x, w, b, rm[1], rv[1], N, C, HW, 1e-5f);
            if (r) mcnn_add_forward(y2, y2, r, NX);
            if (relu) mcnn_relu_forward(y2, y2, NX);
            char what[64];
            snprintf(what, sizeof what, "fused bn (%s, res %d, relu %d)",
                     mode ? "running" : "batch", k & 1, relu);
            test_close_array(what, y1, y2, NX, 0, 0);
            test_close_array("running mean", rm[0], rm[1], C, 0, 0);
            test_close_array("running var", rv[0], rv[1], C, 0, 0);
        }
    free(x);
    free(res);
    free(y1);
    free(y2);
}

static void test_resnet_load_variants(void)
{
    /* timm and torchvision share the names; older files lack num_batches_tracked; any float
     * dtype converts */
    ckpt_edit no_nbt = {.drop_num_batches = 1}, f64 = {.as_f64 = 1};
    mcnn_resnet *a = load_golden(golden, &no_nbt, NULL), *b = load_golden(golden, &f64, NULL);
    if (a) compare_logits(golden, a, "images", "logits_eval", B, 48, 48, K);
    if (b) compare_logits(golden, b, "images", "logits_eval", B, 48, 48, K);
    mcnn_resnet_free(a);
    mcnn_resnet_free(b);

    /* fine-tuning: a new head of another size over the same backbone */
    mcnn_resnet_load_options opt = {.num_classes = 3, .seed = 9};
    mcnn_resnet *m = load_golden(golden, NULL, &opt);
    if (!m) return;
    mcnn_params *p = mcnn_resnet_params(m);
    const mcnn_param *fc = mcnn_params_find(p, "fc.weight");
    TEST_ASSERT(mcnn_resnet_get_config(m)->num_classes == 3 && fc && fc->shape[0] == 3 &&
                fc->shape[1] == F, "new head (3, %d)", F);
    float *images = test_golden(golden, "images", NULL), logits[B * 3];
    TEST_OK(mcnn_resnet_forward(m, logits, images, B, 48, 48, MCNN_RESNET_EVAL));
    compare_golden(golden, "inter.features_eval", mcnn_resnet_features(m), (size_t)B * F, 1e-4);
    const float bound = 1.0f / sqrtf((float)F); /* nn.Linear's default initialisation */
    const float *w = mcnn_params_data(p, "fc.weight");
    int inside = 1;
    for (int i = 0; i < 3 * F; i++) inside &= fabsf(w[i]) <= bound;
    TEST_ASSERT(inside, "new fc within U(±1/sqrt(%d))", F);
    free(images);
    mcnn_resnet_free(m);
}

static void expect_load_error(const char *path, const char *needle)
{
    mcnn_resnet *m = NULL;
    mcnn_status s = mcnn_resnet_load(&m, path, NULL);
    TEST_ASSERT(s != MCNN_OK && m == NULL, "%s: loaded a bad checkpoint (%s)", path, needle);
    TEST_ASSERT(strstr(mcnn_last_error(), needle) && strstr(mcnn_last_error(), path),
                "message '%s' should name the file and '%s'", mcnn_last_error(), needle);
}

static void test_resnet_bad_checkpoints(void)
{
    const char *path = tmp_path("bad.safetensors");
    static const struct { ckpt_edit edit; const char *needle; } cases[] = {
        {{.skip = "layer3.1.bn2.running_var"}, "layer3.1.bn2.running_var"},
        {{.skip = "layer2.0.downsample.0.weight"}, "layer2.0.downsample.0.weight"},
        {{.skip = "fc.bias"}, "fc.bias"},
        {{.extra = "layer4.0.conv4.weight"}, "layer4.0.conv4.weight"},
        {{.extra = "layer1.1.downsample.0.weight"}, "layer1.1.downsample.0.weight"},
        {{.extra = "layer1.0.bn9.num_batches_tracked"}, "layer1.0.bn9.num_batches_tracked"},
        {{.flatten = "layer2.0.conv2.weight"}, "layer2.0.conv2.weight"},
        {{.flatten = "layer4.0.bn3.running_mean"}, "layer4.0.bn3.running_mean"},
        {{.skip = "layer3.0.conv1.weight"}, "layer3.0.conv1.weight"},
        {{.skip = "conv1.weight"}, "not a ResNet"},
        {{.rename_from = "conv1.weight", .rename_to = "conv1.0.weight"}, "deep 3-conv stem"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_checkpoint(golden, path, &cases[i].edit);
        expect_load_error(path, cases[i].needle);
    }
    expect_load_error("/nonexistent/resnet.safetensors", "resnet.safetensors");
    remove(path);

    mcnn_resnet *m = NULL;
    mcnn_resnet_config cfg = mcnn_resnet_config_standard(50, 10);
    cfg.widths[2] = 0;
    TEST_ASSERT(mcnn_resnet_create(&m, &cfg, 1) == MCNN_ERR_ARG && !m, "width 0 refused");
    cfg = mcnn_resnet_config_standard(51, 10);
    TEST_ASSERT(mcnn_resnet_create(&m, &cfg, 1) == MCNN_ERR_ARG && !m, "ResNet-51 refused");
    cfg = mcnn_resnet_config_standard(18, 0);
    TEST_ASSERT(mcnn_resnet_create(&m, &cfg, 1) == MCNN_ERR_ARG && !m, "0 classes refused");
}

static void test_resnet_bad_arguments(void)
{
    mcnn_resnet *m = load_golden(golden, NULL, NULL);
    if (!m) return;
    float *images = test_golden(golden, "images", NULL), logits[B * K] = {0};
    TEST_ASSERT(mcnn_resnet_backward(m, logits) == MCNN_ERR_ARG, "backward before any forward");
    TEST_ASSERT(mcnn_resnet_forward(m, logits, images, 0, 32, 32, MCNN_RESNET_EVAL) ==
                MCNN_ERR_ARG, "batch 0");
    TEST_ASSERT(mcnn_resnet_forward(m, logits, NULL, 1, 32, 32, MCNN_RESNET_EVAL) ==
                MCNN_ERR_ARG, "no images");
    TEST_ASSERT(mcnn_resnet_forward(m, logits, images, 1, 32, 32, (mcnn_resnet_mode)7) ==
                MCNN_ERR_ARG, "unknown mode");
    /* one image at 32x32 leaves 1x1 at the last stage: batch statistics of one value */
    TEST_ASSERT(mcnn_resnet_forward(m, logits, images, 1, 32, 32, MCNN_RESNET_TRAIN) ==
                MCNN_ERR_ARG && strstr(mcnn_last_error(), "one value per channel"),
                "training on one value per channel: %s", mcnn_last_error());
    TEST_OK(mcnn_resnet_forward(m, logits, images, 1, 32, 32, MCNN_RESNET_FROZEN_BN));
    TEST_OK(mcnn_resnet_forward(m, logits, images, 1, 32, 32, MCNN_RESNET_EVAL));
    TEST_ASSERT(mcnn_resnet_backward(m, logits) == MCNN_ERR_ARG, "backward after eval forward");
    free(images);
    mcnn_resnet_free(m);
}

/* torchvision's initialisation, zero_init_residual, and a save/load round trip that carries the
 * running statistics. */
static void test_resnet_create_save_roundtrip(void)
{
    mcnn_resnet_config cfg = {.block = MCNN_RESNET_BASIC, .stem = MCNN_RESNET_STEM_SMALL,
                              .in_channels = 1, .stem_width = 8, .stages = 3,
                              .blocks = {1, 2, 1}, .widths = {8, 16, 32}, .num_classes = 10,
                              .bn_eps = 1e-5f, .bn_momentum = 0.1f, .zero_init_residual = 1};
    mcnn_resnet *a = NULL, *b = NULL;
    TEST_OK(mcnn_resnet_create(&a, &cfg, 5));
    if (!a) return;
    mcnn_params *p = mcnn_resnet_params(a);
    /* kaiming_normal_(fan_out, relu): std sqrt(2 / (OC·3·3)) = 1/12 for layer3.0.conv2 */
    const mcnn_param *w = mcnn_params_find(p, "layer3.0.conv2.weight");
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < w->numel; i++) {
        double v = p->data[w->offset + i];
        sum += v, sum2 += v * v;
    }
    const double mean = sum / w->numel, std = sqrt(sum2 / w->numel - mean * mean);
    TEST_CLOSE("conv std", std, sqrt(2.0 / (32 * 9)), 0.05, 0);
    TEST_CLOSE("conv mean", mean, 0.0, 0, 3 * sqrt(2.0 / (32 * 9)) / sqrt((double)w->numel));
    const float *g1 = mcnn_params_data(p, "layer2.1.bn1.weight");
    const float *g2 = mcnn_params_data(p, "layer2.1.bn2.weight");
    const float *var = mcnn_params_data(mcnn_resnet_buffers(a), "layer2.1.bn2.running_var");
    for (int i = 0; i < 16; i++) {
        TEST_CLOSE("bn1 gain", g1[i], 1.0, 0, 0);
        TEST_CLOSE("zero-init bn2 gain", g2[i], 0.0, 0, 0);
        TEST_CLOSE("running var", var[i], 1.0, 0, 0);
    }
    TEST_ASSERT(mcnn_params_find(p, "layer1.0.downsample.0.weight") == NULL &&
                mcnn_params_find(p, "layer2.0.downsample.0.weight") != NULL,
                "downsample only where the shape changes");
    /* a training forward moves the running statistics; they must survive the round trip */
    float x[4 * 20 * 20], la[40], lb[40];
    test_fill_random(x, sizeof x / sizeof x[0], 3);
    TEST_OK(mcnn_resnet_forward(a, la, x, 4, 20, 20, MCNN_RESNET_TRAIN));
    const char *path = tmp_path("rt.safetensors");
    TEST_OK(mcnn_resnet_save(a, path));
    TEST_OK(mcnn_resnet_load(&b, path, NULL));
    if (b) {
        const mcnn_params *pa = mcnn_resnet_params(a), *pb = mcnn_resnet_params(b);
        const mcnn_params *ba = mcnn_resnet_buffers(a), *bb = mcnn_resnet_buffers(b);
        TEST_ASSERT(pa->total == pb->total && ba->total == bb->total, "same tables");
        if (pa->total == pb->total && ba->total == bb->total) {
            test_close_array("params", pb->data, pa->data, pa->total, 0, 0);
            test_close_array("buffers", bb->data, ba->data, ba->total, 0, 0);
        }
        TEST_ASSERT(mcnn_resnet_get_config(b)->stem == MCNN_RESNET_STEM_SMALL &&
                    mcnn_resnet_get_config(b)->block == MCNN_RESNET_BASIC, "config round trip");
        TEST_OK(mcnn_resnet_forward(a, la, x, 4, 20, 20, MCNN_RESNET_EVAL));
        TEST_OK(mcnn_resnet_forward(b, lb, x, 4, 20, 20, MCNN_RESNET_EVAL));
        test_close_array("roundtrip logits", lb, la, 40, 0, 0);
    }
    /* PyTorch's third BN buffer is written, as an int64 count of training forwards */
    mcnn_safetensors *st = NULL;
    TEST_OK(mcnn_safetensors_open(&st, path));
    if (st) {
        const mcnn_st_tensor *t = mcnn_safetensors_find(st, "layer3.0.downsample.1.num_batches_tracked");
        int32_t v = -1;
        TEST_ASSERT(t && t->dtype == MCNN_DTYPE_I64 && t->ndim == 0 &&
                    mcnn_safetensors_read_i32(st, t, &v) == MCNN_OK && v == 1,
                    "num_batches_tracked written (%d)", v);
        mcnn_safetensors_close(st);
    }
    mcnn_resnet_free(a);
    mcnn_resnet_free(b);
    remove(path);
}

/* Published parameter counts (torchvision's model documentation). */
static void check_param_count(int depth, size_t want)
{
    mcnn_resnet_config cfg = mcnn_resnet_config_standard(depth, 1000);
    mcnn_resnet *m = NULL;
    TEST_OK(mcnn_resnet_create(&m, &cfg, 1));
    if (!m) return;
    const mcnn_params *p = mcnn_resnet_params(m);
    size_t n = 0;
    for (int i = 0; i < p->count; i++) n += p->table[i].numel;
    TEST_ASSERT(n == want, "resnet%d: %zu parameters, torchvision has %zu", depth, n, want);
    mcnn_resnet_free(m);
}

static void test_resnet18_parameter_count(void)
{
    check_param_count(18, 11689512);
}

/* MCNN_TEST_FULL=1: a full-size ResNet-50, created, saved, loaded and run at 224x224. */
static void test_resnet50_full(void)
{
    const char *full = getenv("MCNN_TEST_FULL");
    if (!full || strcmp(full, "1") != 0) {
        TEST_SKIP("set MCNN_TEST_FULL=1 for the full-size ResNet-50");
        return;
    }
    check_param_count(50, 25557032);
    mcnn_resnet_config cfg = mcnn_resnet_config_standard(50, 1000);
    mcnn_resnet *a = NULL, *b = NULL;
    TEST_OK(mcnn_resnet_create(&a, &cfg, 2));
    const char *path = tmp_path("r50.safetensors");
    if (a) TEST_OK(mcnn_resnet_save(a, path));
    TEST_OK(mcnn_resnet_load(&b, path, NULL));
    remove(path);
    if (a && b) {
        const size_t n = 3 * 224 * 224;
        float *x = malloc(2 * n * sizeof *x), la[2000], lb[2000], dl[2000];
        test_fill_random(x, 2 * n, 4);
        TEST_OK(mcnn_resnet_forward(a, la, x, 1, 224, 224, MCNN_RESNET_EVAL));
        TEST_OK(mcnn_resnet_forward(b, lb, x, 1, 224, 224, MCNN_RESNET_EVAL));
        int finite = 1;
        for (int i = 0; i < 1000; i++) finite &= isfinite(la[i]);
        TEST_ASSERT(finite, "finite logits");
        test_close_array("loaded = created", lb, la, 1000, 0, 0);
        TEST_ASSERT(mcnn_resnet_feature_dim(b) == 2048, "2048 features");
        /* one training step at batch 2: every gradient finite */
        TEST_OK(mcnn_resnet_forward(b, lb, x, 2, 224, 224, MCNN_RESNET_TRAIN));
        for (int i = 0; i < 2000; i++) dl[i] = (i % 1000 == 7 ? -1.0f : 0.0f) + 1e-3f;
        mcnn_params *p = mcnn_resnet_params(b);
        mcnn_params_zero_grad(p);
        TEST_OK(mcnn_resnet_backward(b, dl));
        for (size_t i = 0; i < p->total; i++) finite &= isfinite(p->grad[i]);
        TEST_ASSERT(finite, "finite gradients");
        free(x);
    }
    mcnn_resnet_free(a);
    mcnn_resnet_free(b);
}

/* make test-full: torchvision's own resnet50 (random weights and running statistics, written by
 * tests/ref/gen_full_size.py) against PyTorch's logits. */
static void test_resnet50_vs_torchvision_full(void)
{
    const char *full = getenv("MCNN_TEST_FULL"), *dir = getenv("MCNN_FULL_DIR");
    char path[1024], refpath[1024];
    snprintf(path, sizeof path, "%s/resnet50.safetensors", dir ? dir : "build/full");
    snprintf(refpath, sizeof refpath, "%s/full_size_ref.safetensors", dir ? dir : "build/full");
    mcnn_safetensors *ref = NULL;
    if (!full || strcmp(full, "1") != 0 || mcnn_safetensors_open(&ref, refpath) != MCNN_OK) {
        TEST_SKIP("needs MCNN_TEST_FULL=1 and %s (make test-full writes it)", refpath);
        return;
    }
    mcnn_resnet *m = NULL;
    TEST_OK(mcnn_resnet_load(&m, path, NULL));
    if (m) {
        float *x = test_golden(ref, "images", NULL), *want = test_golden(ref, "resnet50.logits", NULL);
        float *logits = malloc(2000 * sizeof(float));
        TEST_OK(mcnn_resnet_forward(m, logits, x, 2, 224, 224, MCNN_RESNET_EVAL));
        if (want) test_close_rel("resnet50 full-size logits", logits, want, 2000, 1e-3);
        free(x);
        free(want);
        free(logits);
    }
    mcnn_resnet_free(m);
    mcnn_safetensors_close(ref);
}

int main(void)
{
    if (mcnn_safetensors_open(&golden, GOLDEN) != MCNN_OK ||
        mcnn_safetensors_open(&golden_basic, GOLDEN_BASIC) != MCNN_OK) {
        fprintf(stderr, "cannot open the goldens: %s\n", mcnn_last_error());
        return 1;
    }
    TEST_RUN(test_resnet_config_and_eval);
    TEST_RUN(test_resnet_train_forward);
    TEST_RUN(test_resnet_train_step_cross_entropy);
    TEST_RUN(test_resnet_train_step_bce);
    TEST_RUN(test_resnet_frozen_bn_step);
    TEST_RUN(test_resnet_backward_head);
    TEST_RUN(test_resnet_basic_small_stem);
    TEST_RUN(test_resnet_thread_independence);
    TEST_RUN(test_resnet_eval_lanes);
    TEST_RUN(test_resnet_fused_bn);
    TEST_RUN(test_resnet_load_variants);
    TEST_RUN(test_resnet_bad_checkpoints);
    TEST_RUN(test_resnet_bad_arguments);
    TEST_RUN(test_resnet_create_save_roundtrip);
    TEST_RUN(test_resnet18_parameter_count);
    TEST_RUN(test_resnet50_full);
    TEST_RUN(test_resnet50_vs_torchvision_full);
    mcnn_safetensors_close(golden);
    mcnn_safetensors_close(golden_basic);
    return test_summary();
}
