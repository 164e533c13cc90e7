/* Losses: cross-entropy with label smoothing and BCE with logits and pos_weight.
 * Judges: PyTorch goldens (tests/ref/gen_losses.py: F.cross_entropy, nn.BCEWithLogitsLoss, in
 * float64) including logits of ±50, and central finite differences of each forward. */
#include "mcnn_test.h"

#define GOLDEN "tests/data/losses.safetensors"

/* ---- finite differences -------------------------------------------------------------------- */
enum { N = 5, C = 7 };
static const float h = 1e-2f; /* the forward returns float: a large step keeps rounding small */

static float ce_loss(const float *x, const int32_t *y, float eps)
{
    float probs[N * C];
    return mcnn_cross_entropy_forward(probs, x, y, N, C, eps);
}

static void test_cross_entropy_grads(void)
{
    float x[N * C], probs[N * C], dx[N * C];
    const int32_t y[N] = {0, 6, 3, 3, 1};
    test_fill_random(x, N * C, 1);
    for (int i = 0; i < N * C; i++) x[i] *= 3.0f;
    x[0] = 40.0f, x[8] = -40.0f; /* a confident right and a confidently wrong row */
    const float dloss = 0.7f, start = 0.25f;
    for (int k = 0; k < 2; k++) {
        float eps = k ? 0.1f : 0.0f;
        for (int i = 0; i < N * C; i++) dx[i] = start; /* backward must add, not overwrite */
        mcnn_cross_entropy_forward(probs, x, y, N, C, eps);
        mcnn_cross_entropy_backward(dx, probs, y, N, C, eps, dloss);
        for (int i = 0; i < N * C; i++) {
            float keep = x[i];
            x[i] = keep + h; double up = ce_loss(x, y, eps);
            x[i] = keep - h; double dn = ce_loss(x, y, eps);
            x[i] = keep;
            TEST_CLOSE(k ? "dx (eps 0.1)" : "dx", dx[i] - start, dloss * (up - dn) / (2 * h),
                       1e-3, 5e-5);
        }
    }
}

static void test_bce_grads(void)
{
    float x[N * C], y[N * C], pw[C], dx[N * C];
    test_fill_random(x, N * C, 2);
    test_fill_random(y, N * C, 3);
    test_fill_random(pw, C, 4);
    for (int i = 0; i < N * C; i++) x[i] *= 4.0f, y[i] = i % 3 ? (y[i] > 0) : 0.5f * (y[i] + 1);
    for (int c = 0; c < C; c++) pw[c] = 1.5f + pw[c];
    x[0] = 50.0f, x[1] = -50.0f, y[0] = 0.0f, y[1] = 1.0f; /* the far tails */
    const float dloss = 1.3f, start = -0.5f;
    for (int k = 0; k < 2; k++) {
        const float *w = k ? pw : NULL;
        for (int i = 0; i < N * C; i++) dx[i] = start;
        mcnn_bce_logits_backward(dx, x, y, w, N, C, dloss);
        for (int i = 0; i < N * C; i++) {
            float keep = x[i];
            x[i] = keep + h; double up = mcnn_bce_logits_forward(x, y, w, N, C);
            x[i] = keep - h; double dn = mcnn_bce_logits_forward(x, y, w, N, C);
            x[i] = keep;
            TEST_CLOSE(k ? "dx (pos_weight)" : "dx", dx[i] - start, dloss * (up - dn) / (2 * h),
                       1e-3, 5e-5);
        }
    }
}

/* ---- PyTorch goldens ----------------------------------------------------------------------- */
static mcnn_safetensors *open_golden(void)
{
    mcnn_safetensors *st = NULL;
    mcnn_status s = mcnn_safetensors_open(&st, GOLDEN);
    TEST_ASSERT(s == MCNN_OK, "%s", mcnn_last_error());
    return s == MCNN_OK ? st : NULL;
}

static void golden_cross_entropy(mcnn_safetensors *st, const char *name)
{
    char key[64];
    size_t n = 0, rows = 0;
    snprintf(key, sizeof key, "ce_%s_x", name);
    float *x = test_golden(st, key, &n);
    snprintf(key, sizeof key, "ce_%s_y", name);
    int32_t *y = test_golden_i32(st, key, &rows);
    if (x && y) {
        int NN = (int)rows, CC = (int)(n / rows);
        float *probs = malloc(n * sizeof(float)), *dx = malloc(n * sizeof(float));
        for (int k = 0; k < 2; k++) {
            float eps = k ? 0.1f : 0.0f;
            snprintf(key, sizeof key, "ce_%s_eps%d_loss", name, k);
            float *loss = test_golden(st, key, NULL);
            snprintf(key, sizeof key, "ce_%s_eps%d_dx", name, k);
            float *want = test_golden(st, key, NULL);
            float got = mcnn_cross_entropy_forward(probs, x, y, NN, CC, eps);
            memset(dx, 0, n * sizeof(float));
            mcnn_cross_entropy_backward(dx, probs, y, NN, CC, eps, 1.0f);
            if (loss) TEST_CLOSE(key, got, loss[0], 1e-6, 0);
            if (want) test_close_rel(key, dx, want, n, 1e-6);
            free(loss), free(want);
        }
        free(probs), free(dx);
    }
    free(x), free(y);
}

static void test_cross_entropy_golden(void)
{
    mcnn_safetensors *st = open_golden();
    if (!st) return;
    golden_cross_entropy(st, "small");
    golden_cross_entropy(st, "wide");
    golden_cross_entropy(st, "extreme");
    mcnn_safetensors_close(st);
}

static void golden_bce(mcnn_safetensors *st, const char *name)
{
    char key[64];
    size_t n = 0, nc = 0;
    snprintf(key, sizeof key, "bce_%s_x", name);
    float *x = test_golden(st, key, &n);
    snprintf(key, sizeof key, "bce_%s_y", name);
    float *y = test_golden(st, key, NULL);
    snprintf(key, sizeof key, "bce_%s_pw", name);
    float *pw = test_golden(st, key, &nc);
    if (x && y && pw) {
        int CC = (int)nc, NN = (int)(n / nc);
        float *dx = malloc(n * sizeof(float));
        for (int k = 0; k < 2; k++) {
            const char *tag = k ? "nopw" : "pw";
            snprintf(key, sizeof key, "bce_%s_%s_loss", name, tag);
            float *loss = test_golden(st, key, NULL);
            snprintf(key, sizeof key, "bce_%s_%s_dx", name, tag);
            float *want = test_golden(st, key, NULL);
            const float *w = k ? NULL : pw;
            float got = mcnn_bce_logits_forward(x, y, w, NN, CC);
            memset(dx, 0, n * sizeof(float));
            mcnn_bce_logits_backward(dx, x, y, w, NN, CC, 1.0f);
            if (loss) TEST_CLOSE(key, got, loss[0], 1e-6, 0);
            if (want) test_close_rel(key, dx, want, n, 1e-6);
            free(loss), free(want);
        }
        free(dx);
    }
    free(x), free(y), free(pw);
}

static void test_bce_golden(void)
{
    mcnn_safetensors *st = open_golden();
    if (!st) return;
    golden_bce(st, "small");
    golden_bce(st, "extreme");
    mcnn_safetensors_close(st);
}

int main(void)
{
    TEST_RUN(test_cross_entropy_grads);
    TEST_RUN(test_bce_grads);
    TEST_RUN(test_cross_entropy_golden);
    TEST_RUN(test_bce_golden);
    return test_summary();
}
