/* ViT against torchvision's VisionTransformer (tests/ref/gen_vit.py): a tiny configuration with
 * every parameter randomised.  Checks loading (torchvision, legacy torchvision and timm names),
 * logits and intermediates, the gradient of every parameter for cross-entropy and for BCE with
 * pos_weight, one AdamW step, eval mode, positional-embedding resampling, and bad checkpoints. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"
#include "loss_golden.h"

#include <unistd.h>

#define GOLDEN "tests/data/vit_tiny.safetensors"
enum { B = 3, K = 5, C = 32, T = 17 };

static mcnn_safetensors *golden;

static const char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 256, "/tmp/mcnn_test_vit_%d_%s", (int)getpid(), name);
    return p;
}

/* Write the golden's "w.*" tensors as a checkpoint, renaming keys with rename (may be NULL)
 * and leaving out the key named skip (may be NULL). */
static void write_checkpoint(const char *path, void (*rename)(char *name), const char *skip,
                             const char *extra)
{
    int n = mcnn_safetensors_count(golden), k = 0;
    mcnn_st_entry *e = calloc((size_t)n + 1, sizeof *e);
    char(*names)[128] = calloc((size_t)n + 1, 128);
    float **data = calloc((size_t)n + 1, sizeof *data);
    for (int i = 0; i < n; i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(golden, i);
        if (strncmp(t->name, "w.", 2) != 0) continue;
        if (skip && strcmp(t->name + 2, skip) == 0) continue;
        snprintf(names[k], 128, "%s", t->name + 2);
        if (rename) rename(names[k]);
        data[k] = test_golden(golden, t->name, NULL);
        e[k] = (mcnn_st_entry){.name = names[k], .dtype = MCNN_DTYPE_F32, .ndim = t->ndim,
                               .data = data[k]};
        memcpy(e[k].shape, t->shape, sizeof t->shape);
        k++;
    }
    if (extra) {
        snprintf(names[k], 128, "%s", extra);
        e[k] = (mcnn_st_entry){.name = names[k], .dtype = MCNN_DTYPE_F32, .ndim = 1,
                               .shape = {1}, .data = data[0]};
        k++;
    }
    TEST_OK(mcnn_safetensors_write(path, e, k, NULL, 0));
    for (int i = 0; i < k; i++) free(data[i]);
    free(data);
    free(names);
    free(e);
}

static mcnn_vit *load(const char *path, int image_size)
{
    mcnn_vit_load_options opt = {.heads = 2, .image_size = image_size};
    mcnn_vit *m = NULL;
    TEST_OK(mcnn_vit_load(&m, path, &opt));
    return m;
}

static void compare_logits(mcnn_vit *m, const char *images_key, const char *want_key, int n)
{
    float *images = test_golden(golden, images_key, NULL), *want = test_golden(golden, want_key, NULL);
    float logits[8 * K];
    if (m && images && want) {
        TEST_OK(mcnn_vit_forward(m, logits, images, n, 0));
        test_close_rel(want_key, logits, want, (size_t)n * K, 1e-4);
    }
    free(images);
    free(want);
}

static void test_vit_forward(void)
{
    const char *path = tmp_path("tv.safetensors");
    write_checkpoint(path, NULL, NULL, NULL);
    mcnn_vit *m = load(path, 0);
    if (!m) return;
    const mcnn_vit_config *c = mcnn_vit_get_config(m);
    TEST_ASSERT(c->image_size == 32 && c->patch_size == 8 && c->width == C && c->layers == 2 &&
                c->mlp_dim == 64 && c->num_classes == K, "config read off the shapes");
    float *images = test_golden(golden, "images", NULL);
    float logits[B * K];
    TEST_OK(mcnn_vit_forward(m, logits, images, B, 1));
    float *want = test_golden(golden, "logits", NULL);
    test_close_rel("logits (train mode)", logits, want, B * K, 1e-4);
    float *block0 = test_golden(golden, "inter.block0", NULL);
    test_close_rel("block 0 output", mcnn_vit_block_output(m, 0), block0, (size_t)B * T * C, 1e-4);
    float *feat = test_golden(golden, "inter.class_feature", NULL);
    test_close_rel("class feature", mcnn_vit_features(m), feat, (size_t)B * C, 1e-4);
    free(block0);
    free(feat);
    free(images);
    free(want);
    compare_logits(m, "images", "logits", B); /* eval mode: the same numbers */
    mcnn_vit_free(m);
    remove(path);
}

/* One training step: loss, every parameter's gradient, and the parameters after AdamW. */
static void check_step(const char *prefix, int bce)
{
    const char *path = tmp_path("step.safetensors");
    write_checkpoint(path, NULL, NULL, NULL);
    mcnn_vit *m = load(path, 0);
    remove(path);
    if (!m) return;
    float *images = test_golden(golden, "images", NULL);
    float logits[B * K], dlogits[B * K] = {0};
    TEST_OK(mcnn_vit_forward(m, logits, images, B, 1));
    char key[160];
    test_loss_golden(golden, prefix, bce, logits, dlogits, B, K);

    mcnn_params *p = mcnn_vit_params(m);
    mcnn_params_zero_grad(p);
    TEST_OK(mcnn_vit_backward(m, dlogits));
    for (int i = 0; i < p->count; i++) {
        const mcnn_param *row = &p->table[i];
        snprintf(key, sizeof key, "%sgrad.%s", prefix, row->name);
        float *want = test_golden(golden, key, NULL);
        if (want) test_close_rel(key, p->grad + row->offset, want, row->numel, 1e-4);
        free(want);
    }
    /* AdamW as the generator ran it: decay 0.05 on the rows the table marks, 0 elsewhere.  It
     * is fed the golden gradients: the key bias's gradient is analytically zero, so ours and
     * PyTorch's are both rounding noise, and Adam's first step turns noise into ±lr. */
    for (int i = 0; i < p->count; i++) {
        const mcnn_param *row = &p->table[i];
        snprintf(key, sizeof key, "%sgrad.%s", prefix, row->name);
        float *want = test_golden(golden, key, NULL);
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
        float *want = test_golden(golden, key, NULL);
        if (want) test_close_rel(key, p->data + row->offset, want, row->numel, 1e-5);
        free(want);
    }
    mcnn_optim_free(&opt);
    free(images);
    mcnn_vit_free(m);
}

static void test_vit_train_step_cross_entropy(void)
{
    check_step("", 0);
}

static void test_vit_train_step_bce(void)
{
    check_step("bce.", 1);
}

/* timm's names for the same tensors. */
static void to_timm(char *name)
{
    static const char *whole[][2] = {
        {"conv_proj.weight", "patch_embed.proj.weight"}, {"conv_proj.bias", "patch_embed.proj.bias"},
        {"class_token", "cls_token"}, {"encoder.pos_embedding", "pos_embed"},
        {"encoder.ln.weight", "norm.weight"}, {"encoder.ln.bias", "norm.bias"},
        {"heads.head.weight", "head.weight"}, {"heads.head.bias", "head.bias"}};
    static const char *part[][2] = {
        {"ln_1.", "norm1."}, {"ln_2.", "norm2."}, {"self_attention.in_proj_weight", "attn.qkv.weight"},
        {"self_attention.in_proj_bias", "attn.qkv.bias"}, {"self_attention.out_proj.", "attn.proj."},
        {"mlp.0.", "mlp.fc1."}, {"mlp.3.", "mlp.fc2."}};
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        if (strcmp(name, whole[i][0]) == 0) {
            strcpy(name, whole[i][1]);
            return;
        }
    int layer, n = 0;
    if (sscanf(name, "encoder.layers.encoder_layer_%d.%n", &layer, &n) != 1 || !n) return;
    char rest[128];
    snprintf(rest, sizeof rest, "%s", name + n);
    for (size_t i = 0; i < sizeof part / sizeof part[0]; i++) {
        size_t len = strlen(part[i][0]);
        if (strncmp(rest, part[i][0], len) == 0) {
            snprintf(name, 128, "blocks.%d.%s%s", layer, part[i][1], rest + len);
            return;
        }
    }
}

static void to_legacy(char *name)
{
    char *p = strstr(name, ".mlp.0.");
    if (!p) p = strstr(name, ".mlp.3.");
    if (!p) return;
    char rest[128];
    snprintf(rest, sizeof rest, "%s", p + 7);
    sprintf(p, ".mlp.linear_%c.%s", p[5] == '0' ? '1' : '2', rest);
}

static void test_vit_timm_and_legacy_names(void)
{
    const char *timm = tmp_path("timm.safetensors"), *legacy = tmp_path("legacy.safetensors");
    write_checkpoint(timm, to_timm, NULL, NULL);
    write_checkpoint(legacy, to_legacy, NULL, NULL);
    mcnn_vit *a = load(timm, 0), *b = load(legacy, 0);
    compare_logits(a, "images", "logits", B);
    compare_logits(b, "images", "logits", B);
    mcnn_vit_free(a);
    mcnn_vit_free(b);
    remove(timm);
    remove(legacy);
}

static void test_vit_other_image_size(void)
{
    const char *path = tmp_path("tv48.safetensors");
    write_checkpoint(path, NULL, NULL, NULL);
    mcnn_vit *m = load(path, 48);
    remove(path);
    if (!m) return;
    float *pos = test_golden(golden, "pos_embedding48", NULL);
    test_close_rel("resampled positions", mcnn_params_data(mcnn_vit_params(m), "encoder.pos_embedding"),
                   pos, 37 * C, 1e-5);
    free(pos);
    compare_logits(m, "images48", "logits48", 2);
    mcnn_vit_free(m);
}

static void expect_load_error(const char *path, const char *needle)
{
    mcnn_vit *m = NULL;
    mcnn_vit_load_options opt = {.heads = 2};
    mcnn_status s = mcnn_vit_load(&m, path, &opt);
    TEST_ASSERT(s != MCNN_OK && m == NULL, "%s: loaded a bad checkpoint", path);
    TEST_ASSERT(strstr(mcnn_last_error(), needle) && strstr(mcnn_last_error(), path),
                "message '%s' should name the file and '%s'", mcnn_last_error(), needle);
}

static void test_vit_bad_checkpoints(void)
{
    const char *path = tmp_path("bad.safetensors");
    write_checkpoint(path, NULL, "encoder.layers.encoder_layer_1.mlp.3.bias", NULL);
    expect_load_error(path, "encoder.layers.encoder_layer_1.mlp.3.bias");
    write_checkpoint(path, NULL, NULL, "encoder.extra.weight");
    expect_load_error(path, "encoder.extra.weight");
    write_checkpoint(path, NULL, "conv_proj.weight", NULL);
    expect_load_error(path, "not a ViT");
    expect_load_error("/nonexistent/vit.safetensors", "vit.safetensors");
    remove(path);

    mcnn_vit *m = NULL;
    mcnn_vit_config cfg = mcnn_vit_b16_config(10);
    cfg.image_size = 100; /* not a multiple of 16 */
    TEST_ASSERT(mcnn_vit_create(&m, &cfg, 1) == MCNN_ERR_ARG && !m, "bad image size refused");
}

/* A model saved and loaded again is the same model. */
static void test_vit_save_roundtrip(void)
{
    mcnn_vit_config cfg = {.image_size = 16, .patch_size = 4, .in_channels = 1, .width = 24,
                           .layers = 2, .heads = 3, .mlp_dim = 40, .num_classes = 4, .ln_eps = 1e-6f};
    mcnn_vit *a = NULL, *b = NULL;
    TEST_OK(mcnn_vit_create(&a, &cfg, 5));
    const char *path = tmp_path("rt.safetensors");
    TEST_OK(mcnn_vit_save(a, path));
    TEST_OK(mcnn_vit_load(&b, path, NULL)); /* heads come from the metadata */
    if (a && b) {
        float x[2 * 16 * 16], la[8], lb[8];
        test_fill_random(x, sizeof x / sizeof x[0], 3);
        TEST_OK(mcnn_vit_forward(a, la, x, 2, 0));
        TEST_OK(mcnn_vit_forward(b, lb, x, 2, 0));
        test_close_array("roundtrip logits", lb, la, 8, 0, 0);
        TEST_ASSERT(mcnn_vit_get_config(b)->heads == 3, "heads from metadata");
    }
    mcnn_vit_free(a);
    mcnn_vit_free(b);
    remove(path);
}

/* make test-full: torchvision's full vit_b_16 (random weights, official names, written by
 * tests/ref/gen_full_size.py) against PyTorch's logits. */
static void test_vit_b16_full_size(void)
{
    const char *dir = getenv("MCNN_FULL_DIR");
    char path[1024], refpath[1024];
    snprintf(path, sizeof path, "%s/vit_b_16.safetensors", dir ? dir : "build/full");
    snprintf(refpath, sizeof refpath, "%s/full_size_ref.safetensors", dir ? dir : "build/full");
    mcnn_vit *m = NULL;
    mcnn_safetensors *ref = NULL;
    if (mcnn_safetensors_open(&ref, refpath) != MCNN_OK) {
        TEST_SKIP("%s is absent (run tests/ref/gen_full_size.py, or make test-full)", refpath);
        return;
    }
    TEST_OK(mcnn_vit_load(&m, path, NULL)); /* heads = 768 / 64 = 12, the official rule */
    if (m) {
        const mcnn_vit_config *c = mcnn_vit_get_config(m);
        TEST_ASSERT(c->width == 768 && c->layers == 12 && c->heads == 12 && c->mlp_dim == 3072 &&
                    c->image_size == 224 && c->num_classes == 1000, "ViT-B/16 config");
        float *x = test_golden(ref, "images", NULL), *want = test_golden(ref, "vit_b_16.logits", NULL);
        float *logits = malloc(2 * 1000 * sizeof(float));
        TEST_OK(mcnn_vit_forward(m, logits, x, 2, 0));
        int finite = 1;
        for (int i = 0; i < 2000; i++) finite &= isfinite(logits[i]);
        TEST_ASSERT(finite, "finite logits");
        if (want) test_close_rel("vit_b_16 full-size logits", logits, want, 2000, 1e-3);
        free(x);
        free(want);
        free(logits);
    }
    mcnn_vit_free(m);
    mcnn_safetensors_close(ref);
}

/* On 2 threads each thread runs its share of the batch through every block (one lane per
 * thread): the logits and features have the same bits as on 1 thread, for an even (4) and an
 * uneven (3) split, the eval logits equal the training forward's, and a training step gives
 * every gradient the same bits on 1 and 2 threads. */
static void test_vit_eval_lanes(void)
{
    const char *path = tmp_path("lanes.safetensors");
    write_checkpoint(path, NULL, NULL, NULL);
    mcnn_vit *m = load(path, 0);
    remove(path);
    if (!m) return;
    const int before = mcnn_get_threads();
    for (int n = 3; n <= 4; n++) {
        float images[4 * 3 * 32 * 32], logits[3][4 * K], feat[2][4 * C];
        test_fill_random(images, (size_t)n * 3 * 32 * 32, 20 + n);
        for (int t = 0; t < 2; t++) {
            mcnn_set_threads(t + 1);
            TEST_OK(mcnn_vit_forward(m, logits[t], images, n, 0));
            memcpy(feat[t], mcnn_vit_features(m), (size_t)n * C * sizeof(float));
        }
        TEST_OK(mcnn_vit_forward(m, logits[2], images, n, 1));
        mcnn_set_threads(before);
        test_close_array("eval logits, 1 vs 2 threads", logits[1], logits[0], (size_t)n * K, 0, 0);
        test_close_array("eval features, 1 vs 2 threads", feat[1], feat[0], (size_t)n * C, 0, 0);
        test_close_array("eval vs train logits", logits[0], logits[2], (size_t)n * K, 0, 0);
        /* a training step: every gradient the same bits on 1 and 2 threads */
        mcnn_params *p = mcnn_vit_params(m);
        float dlogits[4 * K], *grads[2];
        for (int i = 0; i < n * K; i++) dlogits[i] = (float)(i % 5) - 1.7f;
        for (int t = 0; t < 2; t++) {
            mcnn_set_threads(t + 1);
            mcnn_params_zero_grad(p);
            TEST_OK(mcnn_vit_forward(m, logits[t], images, n, 1));
            TEST_OK(mcnn_vit_backward(m, dlogits));
            grads[t] = malloc(p->total * sizeof(float));
            memcpy(grads[t], p->grad, p->total * sizeof(float));
        }
        mcnn_set_threads(before);
        test_close_array("training gradients, 1 vs 2 threads", grads[1], grads[0], p->total, 0,
                         0);
        free(grads[0]);
        free(grads[1]);
    }
    mcnn_vit_free(m);
}

int main(void)
{
    mcnn_status s = mcnn_safetensors_open(&golden, GOLDEN);
    if (s != MCNN_OK) {
        fprintf(stderr, "cannot open %s: %s\n", GOLDEN, mcnn_last_error());
        return 1;
    }
    TEST_RUN(test_vit_forward);
    TEST_RUN(test_vit_train_step_cross_entropy);
    TEST_RUN(test_vit_train_step_bce);
    TEST_RUN(test_vit_timm_and_legacy_names);
    TEST_RUN(test_vit_other_image_size);
    TEST_RUN(test_vit_bad_checkpoints);
    TEST_RUN(test_vit_save_roundtrip);
    TEST_RUN(test_vit_eval_lanes);
    if (getenv("MCNN_TEST_FULL")) TEST_RUN(test_vit_b16_full_size);
    mcnn_safetensors_close(golden);
    return test_summary();
}
