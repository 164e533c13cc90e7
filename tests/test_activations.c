/* GELU (exact erf), GELU (tanh), QuickGELU, softmax and log-softmax: PyTorch goldens (GELU
 * over [-10, 10], softmax rows with huge magnitudes), finite differences, accumulation and
 * NULL gradients, thread-count independence. */
#include "ops_check.h"
#include "ops/vmath.h"

typedef void (*act_fwd)(float *y, const float *x, size_t n);
typedef void (*act_bwd)(float *dx, const float *dy, const float *x, size_t n);
static const struct {
    const char *name;
    act_fwd fwd;
    act_bwd bwd;
} ACTS[3] = {
    {"gelu", mcnn_gelu_forward, mcnn_gelu_backward},
    {"gelu_tanh", mcnn_gelu_tanh_forward, mcnn_gelu_tanh_backward},
    {"quick_gelu", mcnn_quick_gelu_forward, mcnn_quick_gelu_backward},
};

typedef void (*row_fwd)(float *y, const float *x, int N, int C);
typedef void (*row_bwd)(float *dx, const float *dy, const float *y, int N, int C);
static const struct {
    const char *name;
    row_fwd fwd;
    row_bwd bwd;
} ROWS[2] = {
    {"softmax", mcnn_softmax_forward, mcnn_softmax_backward},
    {"log_softmax", mcnn_log_softmax_forward, mcnn_log_softmax_backward},
};

/* ---- PyTorch goldens ---------------------------------------------------------------------- */
static void test_gelu_golden(void)
{
    if (!ops_golden_open()) return;
    for (int a = 0; a < 3; a++) {
        const char *kase = ACTS[a].name;
        int d[1];
        if (!ops_dims(kase, d, 1)) continue;
        const size_t n = (size_t)d[0];
        float *x = ops_get(kase, "x", n), *dy = ops_get(kase, "dy", n);
        float *y_want = ops_get(kase, "y", n), *dx_want = ops_get(kase, "dx", n);
        if (test_current_failed) break;
        float *y = ops_zeros(n), *dx0 = ops_random(n, 7, 1), *dx = ops_copy(dx0, n);
        ACTS[a].fwd(y, x, n);
        ACTS[a].bwd(dx, dy, x, n);
        char what[64];
        snprintf(what, sizeof what, "%s y", kase);
        ops_close(what, y, y_want, n);
        snprintf(what, sizeof what, "%s dx", kase);
        ops_check_accumulated(what, dx, dx0, dx_want, n);
        /* the tails matter too (x down to -10): every element within 1e-4 of itself, not only
         * of the largest.  atol 1e-12: in float64, 1 + erf(x/√2) and 1 + tanh(u) cancel to 0
         * below ~1e-16, so PyTorch's own values are only that good in the far tail. */
        snprintf(what, sizeof what, "%s y elementwise", kase);
        test_close_array(what, y, y_want, n, 1e-4, 1e-12);
        snprintf(what, sizeof what, "%s dx elementwise", kase);
        for (size_t i = 0; i < n; i++) dx[i] -= dx0[i];
        test_close_array(what, dx, dx_want, n, 1e-3, 1e-6);
        ops_free_all();
    }
}

static void test_softmax_golden(void)
{
    if (!ops_golden_open()) return;
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 6; k++) {
            char kase[32], what[64];
            int d[2];
            snprintf(kase, sizeof kase, "%s%d", ROWS[r].name, k);
            if (!ops_dims(kase, d, 2)) continue;
            const int N = d[0], C = d[1];
            const size_t NC = (size_t)N * C;
            float *x = ops_get(kase, "x", NC), *dy = ops_get(kase, "dy", NC);
            float *y_want = ops_get(kase, "y", NC), *dx_want = ops_get(kase, "dx", NC);
            if (test_current_failed) return;
            float *y = ops_zeros(NC), *dx0 = ops_random(NC, 8, 1), *dx = ops_copy(dx0, NC);
            ROWS[r].fwd(y, x, N, C);
            ROWS[r].bwd(dx, dy, y, N, C);
            snprintf(what, sizeof what, "%s y", kase);
            ops_close(what, y, y_want, NC);
            snprintf(what, sizeof what, "%s dx", kase);
            ops_check_accumulated(what, dx, dx0, dx_want, NC);
            ops_free_all();
        }
}

/* ---- finite differences --------------------------------------------------------------------- */
typedef struct act_ctx {
    int a;         /* index into ACTS */
    size_t n;
    float *x, *w, *y;
} act_ctx;

static double act_loss(void *p)
{
    act_ctx *c = p;
    ACTS[c->a].fwd(c->y, c->x, c->n);
    return ops_dot(c->y, c->w, c->n);
}

static void test_gelu_finite_differences(void)
{
    enum { n = 41 };
    for (int a = 0; a < 3; a++) {
        act_ctx c = {a, n, ops_zeros(n), ops_random(n, 2, 1), ops_zeros(n)};
        for (int i = 0; i < n; i++) c.x[i] = -6.0f + 0.3f * i + 0.01f * i * i / n; /* -6 .. 6.4 */
        float *dx = ops_zeros(n);
        ACTS[a].bwd(dx, c.w, c.x, n);
        ops_fd_check(ACTS[a].name, c.x, dx, n, act_loss, &c, 1e-2f, 1e-3, 1e-4);
        ops_free_all();
    }
}

typedef struct row_ctx {
    int r, N, C;
    float *x, *w, *y;
} row_ctx;

static double row_loss(void *p)
{
    row_ctx *c = p;
    ROWS[c->r].fwd(c->y, c->x, c->N, c->C);
    return ops_dot(c->y, c->w, (size_t)c->N * c->C);
}

static void test_softmax_finite_differences(void)
{
    const int shapes[3][2] = {{3, 1}, {4, 7}, {2, 33}};
    for (int r = 0; r < 2; r++)
        for (int s = 0; s < 3; s++) {
            const int N = shapes[s][0], C = shapes[s][1];
            const size_t NC = (size_t)N * C;
            row_ctx c = {r, N, C, ops_random(NC, 1, 3), ops_random(NC, 2, 1), ops_zeros(NC)};
            float *dx = ops_zeros(NC);
            row_loss(&c);
            ROWS[r].bwd(dx, c.w, c.y, N, C);
            ops_fd_check(ROWS[r].name, c.x, dx, NC, row_loss, &c, 1e-2f, 1e-3, 1e-4);
            ops_free_all();
        }
}

/* ---- accumulation, NULL gradients, thread-count independence ------------------------------- */
static void test_activations_accumulate_and_null(void)
{
    enum { n = 37, N = 3, C = 9 };
    for (int a = 0; a < 3; a++) {
        float *x = ops_random(n, 1, 4), *dy = ops_random(n, 2, 1);
        float *d1 = ops_zeros(n), *d2 = ops_zeros(n);
        ACTS[a].bwd(d1, dy, x, n);
        ACTS[a].bwd(d2, dy, x, n);
        ACTS[a].bwd(d2, dy, x, n);
        ACTS[a].bwd(NULL, dy, x, n); /* nothing wanted: must not crash */
        for (int i = 0; i < n; i++) TEST_CLOSE(ACTS[a].name, d2[i], 2.0 * d1[i], 1e-6, 1e-7);
        ops_free_all();
    }
    for (int r = 0; r < 2; r++) {
        float *x = ops_random(N * C, 1, 4), *dy = ops_random(N * C, 2, 1), *y = ops_zeros(N * C);
        float *d1 = ops_zeros(N * C), *d2 = ops_zeros(N * C);
        ROWS[r].fwd(y, x, N, C);
        ROWS[r].bwd(d1, dy, y, N, C);
        ROWS[r].bwd(d2, dy, y, N, C);
        ROWS[r].bwd(d2, dy, y, N, C);
        ROWS[r].bwd(NULL, dy, y, N, C);
        for (int i = 0; i < N * C; i++) TEST_CLOSE(ROWS[r].name, d2[i], 2.0 * d1[i], 1e-6, 1e-7);
        ops_free_all();
    }
}

static void test_activations_threads(void)
{
    enum { N = 300, C = 200 }; /* 60000 elements: above every parallel threshold */
    const size_t n = (size_t)N * C;
    const int saved = mcnn_get_threads();
    float *x = ops_random(n, 1, 8), *dy = ops_random(n, 2, 1);
    for (int a = 0; a < 3 + 2; a++) {
        float *y[2], *dx[2];
        for (int t = 0; t < 2; t++) {
            mcnn_set_threads(t ? 3 : 1);
            y[t] = ops_zeros(n), dx[t] = ops_zeros(n);
            if (a < 3) {
                ACTS[a].fwd(y[t], x, n);
                ACTS[a].bwd(dx[t], dy, x, n);
            } else {
                ROWS[a - 3].fwd(y[t], x, N, C);
                ROWS[a - 3].bwd(dx[t], dy, y[t], N, C);
            }
        }
        const char *name = a < 3 ? ACTS[a].name : ROWS[a - 3].name;
        ops_check_same(name, y[0], y[1], n);
        ops_check_same(name, dx[0], dx[1], n);
    }
    mcnn_set_threads(saved);
    ops_free_all();
}

/* The transformer block's fused bias + activation (lib/ops/gelu.c) against its plain twin,
 * the bias added first and then mcnn_gelu_forward / mcnn_quick_gelu_forward: the same bits,
 * for the pre-activation it keeps and the activation; with and without a bias. */
static void test_bias_act_fused(void)
{
    enum { N = 37, F = 3000 }; /* large enough for threads, rows not a multiple of 8 */
    float *x = malloc(N * F * sizeof(float)), *b = malloc(F * sizeof(float));
    float *x1 = malloc(N * F * sizeof(float)), *x2 = malloc(N * F * sizeof(float));
    float *y1 = malloc(N * F * sizeof(float)), *y2 = malloc(N * F * sizeof(float));
    test_fill_random(x, N * F, 41);
    test_fill_random(b, F, 42);
    for (int quick = 0; quick < 2; quick++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            memcpy(x1, x, N * F * sizeof(float));
            memcpy(x2, x, N * F * sizeof(float));
            mcnn_bias_act_forward(y1, x1, with_bias ? b : NULL, N, F, quick);
            if (with_bias)
                for (int n = 0; n < N; n++)
                    for (int f = 0; f < F; f++) x2[n * F + f] += b[f];
            ACTS[quick ? 2 : 0].fwd(y2, x2, (size_t)N * F);
            char what[64];
            snprintf(what, sizeof what, "%s, bias %d: pre-activation", ACTS[quick ? 2 : 0].name,
                     with_bias);
            test_close_array(what, x1, x2, (size_t)N * F, 0, 0);
            snprintf(what, sizeof what, "%s, bias %d: activation", ACTS[quick ? 2 : 0].name,
                     with_bias);
            test_close_array(what, y1, y2, (size_t)N * F, 0, 0);
        }
    free(x), free(b), free(x1), free(x2), free(y1), free(y2);
}

int main(void)
{
    TEST_RUN(test_gelu_golden);
    TEST_RUN(test_softmax_golden);
    TEST_RUN(test_gelu_finite_differences);
    TEST_RUN(test_softmax_finite_differences);
    TEST_RUN(test_activations_accumulate_and_null);
    TEST_RUN(test_activations_threads);
    TEST_RUN(test_bias_act_fused);
    ops_golden_close();
    return test_summary();
}
