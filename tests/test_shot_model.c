/* The shot models (include/mcnn/shot_model.h).  Judges: a whole training step of each kind
 * against torch modules (tests/ref/gen_shot_models.py: logits, loss, every clipped gradient, the
 * weights after one AdamW step), central finite differences of the gradients over padded
 * shots, padding that holds NaN changing no bit, exact resume from a checkpoint, and the errors
 * for bad configurations and shapes. */
#include "mcnn_test.h"

#define GOLDEN "tests/data/shot_models.safetensors"

static const char *const kinds[3] = {"mean", "lstm", "transformer"};

static int golden_prefix(const char *name, char *buf, size_t size, void *ctx)
{
    snprintf(buf, size, "%s%s", (const char *)ctx, name);
    return 1;
}

/* The golden model of a kind: its config from the metadata, its weights from k.w.<name>. */
static mcnn_shot_model *golden_model(mcnn_safetensors *st, int kind)
{
    char key[64];
    snprintf(key, sizeof key, "%s.config", kinds[kind]);
    const char *conf = mcnn_safetensors_meta(st, key);
    mcnn_shot_config c = {.kind = (mcnn_shot_kind)kind};
    TEST_ASSERT(conf && sscanf(conf, "%d %d %d %d %d %d", &c.D, &c.K, &c.num_classes, &c.hidden,
                               &c.layers, &c.heads) == 6, "%s in the golden", key);
    mcnn_shot_model *m = NULL;
    TEST_OK(mcnn_shot_model_create(&m, &c, 4));
    if (!m) return NULL;
    snprintf(key, sizeof key, "%s.w.", kinds[kind]);
    TEST_OK(mcnn_params_load(mcnn_shot_model_params(m), st, golden_prefix, key, NULL));
    return m;
}

static float *golden_of(mcnn_safetensors *st, const char *kind, const char *what)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", kind, what);
    return test_golden(st, key, NULL);
}

static void test_training_step_against_torch(void)
{
    mcnn_safetensors *st = NULL;
    TEST_OK(mcnn_safetensors_open(&st, GOLDEN));
    if (!st) return;
    const double lr = atof(mcnn_safetensors_meta(st, "lr"));
    const double wd = atof(mcnn_safetensors_meta(st, "weight_decay"));
    for (int k = 0; k < 3; k++) {
        mcnn_shot_model *m = golden_model(st, k);
        if (!m) continue;
        const char *kn = kinds[k];
        char key[160];
        snprintf(key, sizeof key, "%s.lengths", kn);
        int32_t *lengths = test_golden_i32(st, key, NULL);
        float *x = golden_of(st, kn, "x"), *targets = golden_of(st, kn, "targets");
        float *pw = golden_of(st, kn, "pos_weight"), *want_logits = golden_of(st, kn, "logits");
        float *want_loss = golden_of(st, kn, "loss"), *clip = golden_of(st, kn, "clip");
        const int B = 4, NC = mcnn_shot_model_config(m)->num_classes;
        mcnn_shot_trainer tr;
        TEST_OK(mcnn_shot_trainer_init(&tr, m));
        tr.opt.lr = lr, tr.opt.weight_decay = wd;
        tr.schedule = (mcnn_lr_schedule){.kind = MCNN_LR_CONSTANT, .base_lr = lr};
        tr.clip_norm = clip[0];
        float loss = 0, logits[4 * 16];
        TEST_OK(mcnn_shot_train_step(m, &tr, x, lengths, targets, pw, B, &loss, logits));
        snprintf(key, sizeof key, "%s logits", kn);
        test_close_rel(key, logits, want_logits, (size_t)B * NC, 1e-4);
        snprintf(key, sizeof key, "%s loss", kn);
        test_close_rel(key, &loss, want_loss, 1, 1e-4);
        const mcnn_params *p = mcnn_shot_model_params(m);
        for (int i = 0; i < p->count; i++) {
            const mcnn_param *row = &p->table[i];
            char what[160];
            snprintf(what, sizeof what, "g.%s", row->name);
            float *want = golden_of(st, kn, what);
            snprintf(key, sizeof key, "%s grad %s", kn, row->name);
            if (want) test_close_rel(key, p->grad + row->offset, want, row->numel, 1e-4);
            free(want);
            snprintf(what, sizeof what, "u.%s", row->name);
            want = golden_of(st, kn, what);
            snprintf(key, sizeof key, "%s updated %s", kn, row->name);
            if (want && strstr(row->name, "attn.qkv.bias")) {
                /* The key bias has a true gradient of 0 (softmax ignores a constant added to
                 * every score of a row), so both sides hold rounding noise there and AdamW's
                 * first step, lr·g/(|g| + eps), turns it into anything within ±lr. */
                const size_t C = row->numel / 3;
                test_close_rel(key, p->data + row->offset, want, C, 1e-4);
                test_close_rel(key, p->data + row->offset + 2 * C, want + 2 * C, C, 1e-4);
                for (size_t j = C; j < 2 * C; j++)
                    TEST_ASSERT(fabs(p->data[row->offset + j] - want[j]) <= 1.01 * lr,
                                "%s [%zu]", key, j);
            } else if (want) {
                test_close_rel(key, p->data + row->offset, want, row->numel, 1e-4);
            }
            free(want);
        }
        mcnn_shot_trainer_free(&tr);
        mcnn_shot_model_free(m);
        free(lengths), free(x), free(targets), free(pw), free(want_logits), free(want_loss);
        free(clip);
    }
    mcnn_safetensors_close(st);
}

/* A small model of each kind and a padded batch for the tests below. */
#define TB 3
#define TK 5
#define TD 4
#define TNC 3
static const int32_t test_lengths[TB] = {5, 2, 1};

static mcnn_shot_model *small_model(int kind)
{
    mcnn_shot_config c = {.kind = (mcnn_shot_kind)kind, .D = TD, .K = TK, .num_classes = TNC,
                          .hidden = kind == 2 ? 8 : 6, .layers = 2, .heads = 2, .seed = 5};
    mcnn_shot_model *m = NULL;
    TEST_OK(mcnn_shot_model_create(&m, &c, TB));
    return m;
}

typedef struct fd_ctx {
    mcnn_shot_model *m;
    const float *x, *w; /* input, loss weights (TB, TNC) */
} fd_ctx;

/* L = sum(logits · w): its gradient with respect to the logits is w. */
static double fd_loss(const float *params, void *ctx)
{
    (void)params; /* the checker moves the model's own value block */
    fd_ctx *c = ctx;
    float logits[TB * TNC];
    if (mcnn_shot_model_forward(c->m, logits, c->x, test_lengths, TB) != MCNN_OK) return NAN;
    double l = 0;
    for (int i = 0; i < TB * TNC; i++) l += (double)logits[i] * c->w[i];
    return l;
}

static void test_finite_differences(void)
{
    for (int k = 0; k < 3; k++) {
        mcnn_shot_model *m = small_model(k);
        if (!m) continue;
        float x[TB * TK * TD], w[TB * TNC], logits[TB * TNC];
        /* inputs that keep the MLP's ReLU inputs further than a step from 0 (seed 31 puts one
         * within 1e-3 of its kink, where a finite difference measures the kink, not the slope) */
        test_fill_random(x, TB * TK * TD, 33), test_fill_random(w, TB * TNC, 32);
        mcnn_params *p = mcnn_shot_model_params(m);
        mcnn_params_zero_grad(p);
        TEST_OK(mcnn_shot_model_forward(m, logits, x, test_lengths, TB));
        TEST_OK(mcnn_shot_model_backward(m, w));
        fd_ctx ctx = {m, x, w};
        mcnn_gradcheck_report r;
        const mcnn_gradcheck_options opt = {.step = 1e-3, .floor = 1e-2};
        TEST_OK(mcnn_gradcheck(&r, fd_loss, &ctx, p->data, p->grad, p->total, &opt));
        TEST_ASSERT(r.max_error < 2e-2, "%s: finite differences off by %.3g at %zu (%g vs %g)",
                    kinds[k], r.max_error, r.worst, r.analytic, r.numeric);
        mcnn_shot_model_free(m);
    }
}

/* Whatever padded frames hold (here NaN and huge values), logits and gradients keep every bit. */
static void test_padding_is_ignored(void)
{
    for (int k = 0; k < 3; k++) {
        mcnn_shot_model *m = small_model(k);
        if (!m) continue;
        float x[TB * TK * TD], w[TB * TNC], a[TB * TNC], b[TB * TNC];
        test_fill_random(x, TB * TK * TD, 41), test_fill_random(w, TB * TNC, 42);
        mcnn_params *p = mcnn_shot_model_params(m);
        float *grad = malloc(sizeof(float) * p->total);
        mcnn_params_zero_grad(p);
        TEST_OK(mcnn_shot_model_forward(m, a, x, test_lengths, TB));
        TEST_OK(mcnn_shot_model_backward(m, w));
        memcpy(grad, p->grad, sizeof(float) * p->total);
        for (int s = 0; s < TB; s++)
            for (int f = test_lengths[s]; f < TK; f++)
                for (int d = 0; d < TD; d++)
                    x[(s * TK + f) * TD + d] = (f + d) % 2 ? NAN : 1e30f;
        mcnn_params_zero_grad(p);
        TEST_OK(mcnn_shot_model_forward(m, b, x, test_lengths, TB));
        TEST_OK(mcnn_shot_model_backward(m, w));
        TEST_ASSERT(memcmp(a, b, sizeof a) == 0, "%s: padding changed the logits", kinds[k]);
        TEST_ASSERT(memcmp(grad, p->grad, sizeof(float) * p->total) == 0,
                    "%s: padding changed the gradients", kinds[k]);
        /* and a valid frame does change them: the test can fail */
        x[(1 * TK + 1) * TD] += 1.0f;
        TEST_OK(mcnn_shot_model_forward(m, b, x, test_lengths, TB));
        TEST_ASSERT(memcmp(a, b, sizeof a) != 0, "%s: a valid frame changed nothing", kinds[k]);
        free(grad);
        mcnn_shot_model_free(m);
    }
}

/* Six steps in one run and three + save + load + three give the same bits. */
static void train_steps(mcnn_shot_model *m, mcnn_shot_trainer *t, int from, int to)
{
    float x[TB * TK * TD], y[TB * TNC];
    const float pw[TNC] = {2.0f, 0.5f, 1.0f};
    for (int s = from; s < to; s++) {
        test_fill_random(x, TB * TK * TD, 100 + s);
        for (int i = 0; i < TB * TNC; i++) y[i] = (float)((i + s) % 2);
        TEST_OK(mcnn_shot_train_step(m, t, x, test_lengths, y, pw, TB, NULL, NULL));
    }
}

static void trainer_settings(mcnn_shot_trainer *t)
{
    t->schedule = (mcnn_lr_schedule){.kind = MCNN_LR_COSINE, .base_lr = 1e-2, .total_steps = 6,
                                     .warmup_steps = 1};
    t->clip_norm = 0.5f;
}

static void test_exact_resume(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/test_shot_resume.safetensors",
             getenv("MCNN_BUILD") ? getenv("MCNN_BUILD") : "build");
    for (int k = 0; k < 3; k++) {
        mcnn_shot_model *a = small_model(k), *b = small_model(k), *c = NULL;
        if (!a || !b) continue;
        mcnn_shot_trainer ta, tb, tc;
        TEST_OK(mcnn_shot_trainer_init(&ta, a));
        trainer_settings(&ta);
        TEST_OK(mcnn_shot_trainer_init(&tb, b));
        trainer_settings(&tb);
        train_steps(a, &ta, 0, 6);
        train_steps(b, &tb, 0, 3);
        TEST_OK(mcnn_shot_model_save(b, &tb, path));
        TEST_OK(mcnn_shot_model_load(&c, &tc, path, TB));
        if (c) {
            trainer_settings(&tc);
            train_steps(c, &tc, 3, 6);
            const mcnn_params *pa = mcnn_shot_model_params(a), *pc = mcnn_shot_model_params(c);
            TEST_ASSERT(pa->total == pc->total &&
                            memcmp(pa->data, pc->data, sizeof(float) * pa->total) == 0,
                        "%s: resumed weights differ from an uninterrupted run", kinds[k]);
            TEST_ASSERT(memcmp(ta.opt.v, tc.opt.v, sizeof(float) * pa->total) == 0,
                        "%s: resumed optimizer state differs", kinds[k]);
            TEST_ASSERT(mcnn_shot_model_config(c)->kind == (mcnn_shot_kind)k, "kind read back");
            mcnn_shot_trainer_free(&tc);
            mcnn_shot_model_free(c);
        }
        /* a plain model file (no trainer) loads as a model, not for resuming */
        TEST_OK(mcnn_shot_model_save(a, NULL, path));
        TEST_ASSERT(mcnn_shot_model_load(&c, &tc, path, TB) == MCNN_ERR_NOT_FOUND ||
                        mcnn_last_error()[0], "resume from a file without optimizer state fails");
        mcnn_shot_model_free(c), c = NULL;
        TEST_OK(mcnn_shot_model_load(&c, NULL, path, TB));
        mcnn_shot_model_free(c);
        mcnn_shot_trainer_free(&ta), mcnn_shot_trainer_free(&tb);
        mcnn_shot_model_free(a), mcnn_shot_model_free(b);
    }
    remove(path);
}

static void test_bad_configs_and_shapes(void)
{
    mcnn_shot_model *m = NULL;
    mcnn_shot_config c = {.kind = MCNN_SHOT_TRANSFORMER, .D = 4, .K = 5, .num_classes = 3,
                          .hidden = 10, .heads = 4};
    TEST_ASSERT(mcnn_shot_model_create(&m, &c, 2) == MCNN_ERR_ARG && !m &&
                    strstr(mcnn_last_error(), "heads"), "width not a multiple of heads");
    c = (mcnn_shot_config){.kind = MCNN_SHOT_LSTM, .D = 0, .K = 5, .num_classes = 3};
    TEST_ASSERT(mcnn_shot_model_create(&m, &c, 2) == MCNN_ERR_ARG &&
                    strstr(mcnn_last_error(), "D (features"), "D = 0 refused naming D");
    c.D = 4, c.kind = (mcnn_shot_kind)7;
    TEST_ASSERT(mcnn_shot_model_create(&m, &c, 2) == MCNN_ERR_ARG, "unknown kind");
    c.kind = MCNN_SHOT_LSTM;
    TEST_ASSERT(mcnn_shot_model_create(&m, &c, 0) == MCNN_ERR_ARG, "max_batch 0");
    c.hidden = 8;
    TEST_OK(mcnn_shot_model_create(&m, &c, 2));
    TEST_ASSERT(mcnn_shot_model_config(m)->layers == 2, "2 layers by default");
    float x[2 * 5 * 4] = {0}, logits[6], dl[6] = {0};
    TEST_ASSERT(mcnn_shot_model_backward(m, dl) == MCNN_ERR_ARG, "backward before forward");
    int32_t lengths[2] = {5, 6};
    TEST_ASSERT(mcnn_shot_model_forward(m, logits, x, lengths, 2) == MCNN_ERR_SHAPE &&
                    strstr(mcnn_last_error(), "shot 1 has 6 frames"), "length above K");
    lengths[1] = 0;
    TEST_ASSERT(mcnn_shot_model_forward(m, logits, x, lengths, 2) == MCNN_ERR_SHAPE, "length 0");
    lengths[1] = 3;
    TEST_ASSERT(mcnn_shot_model_forward(m, logits, x, lengths, 3) == MCNN_ERR_SHAPE,
                "more shots than max_batch");
    TEST_OK(mcnn_shot_model_forward(m, logits, x, lengths, 2));
    mcnn_shot_kind kind;
    TEST_ASSERT(mcnn_shot_kind_parse(&kind, "gru") == MCNN_ERR_ARG, "unknown kind name");
    TEST_OK(mcnn_shot_kind_parse(&kind, "transformer"));
    TEST_ASSERT(kind == MCNN_SHOT_TRANSFORMER, "kind parsed");
    mcnn_shot_model_free(m);
}

int main(void)
{
    TEST_RUN(test_training_step_against_torch);
    TEST_RUN(test_finite_differences);
    TEST_RUN(test_padding_is_ignored);
    TEST_RUN(test_exact_resume);
    TEST_RUN(test_bad_configs_and_shapes);
    return test_summary();
}
