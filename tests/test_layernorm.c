/* Layer norm: PyTorch goldens (odd widths, eps 1e-5 and 1e-6, |mean| >> std), finite
 * differences for every gradient, accumulation and NULL gradients, thread-count independence. */
#include "ops_check.h"

/* ---- PyTorch goldens ---------------------------------------------------------------------- */
static void test_layernorm_golden(void)
{
    if (!ops_golden_open()) return;
    for (int k = 0; k < 5; k++) {
        char kase[16];
        int d[2];
        snprintf(kase, sizeof kase, "ln%d", k);
        if (!ops_dims(kase, d, 2)) continue;
        const int N = d[0], C = d[1];
        const size_t NC = (size_t)N * C;
        float *eps = ops_get(kase, "eps", 1), *x = ops_get(kase, "x", NC);
        float *gamma = ops_get(kase, "gamma", C), *beta = ops_get(kase, "beta", C);
        float *dy = ops_get(kase, "dy", NC), *y_want = ops_get(kase, "y", NC);
        float *mean_want = ops_get(kase, "mean", N), *rstd_want = ops_get(kase, "rstd", N);
        float *dx_want = ops_get(kase, "dx", NC), *dg_want = ops_get(kase, "dgamma", C);
        float *db_want = ops_get(kase, "dbeta", C);
        if (test_current_failed) break;

        float *y = ops_zeros(NC), *mean = ops_zeros(N), *rstd = ops_zeros(N);
        mcnn_layernorm_forward(y, mean, rstd, x, gamma, beta, N, C, eps[0]);
        char what[64];
        snprintf(what, sizeof what, "%s y", kase);
        ops_close(what, y, y_want, NC);
        snprintf(what, sizeof what, "%s mean", kase);
        ops_close(what, mean, mean_want, N);
        snprintf(what, sizeof what, "%s rstd", kase);
        ops_close(what, rstd, rstd_want, N);

        /* gradients start non-zero: the op must add to them */
        float *dx0 = ops_random(NC, 10, 1), *dg0 = ops_random(C, 11, 1), *db0 = ops_random(C, 12, 1);
        float *dx = ops_copy(dx0, NC), *dg = ops_copy(dg0, C), *db = ops_copy(db0, C);
        mcnn_layernorm_backward(dx, dg, db, dy, x, gamma, mean, rstd, N, C);
        snprintf(what, sizeof what, "%s dx", kase);
        ops_check_accumulated(what, dx, dx0, dx_want, NC);
        snprintf(what, sizeof what, "%s dgamma", kase);
        ops_check_accumulated(what, dg, dg0, dg_want, C);
        snprintf(what, sizeof what, "%s dbeta", kase);
        ops_check_accumulated(what, db, db0, db_want, C);
        ops_free_all();
    }
    ops_free_all();
}

/* ---- finite differences --------------------------------------------------------------------- */
typedef struct ln_ctx {
    int N, C;
    float eps;
    float *x, *gamma, *beta, *w, *y, *mean, *rstd;
} ln_ctx;

static double ln_loss(void *p)
{
    ln_ctx *c = p;
    mcnn_layernorm_forward(c->y, c->mean, c->rstd, c->x, c->gamma, c->beta, c->N, c->C, c->eps);
    return ops_dot(c->y, c->w, (size_t)c->N * c->C);
}

static void layernorm_fd(int N, int C, float eps)
{
    const size_t NC = (size_t)N * C;
    ln_ctx c = {N, C, eps, ops_random(NC, 1, 1.5f), ops_random(C, 2, 1), ops_random(C, 3, 1),
                ops_random(NC, 4, 1), ops_zeros(NC), ops_zeros(N), ops_zeros(N)};
    float *dx = ops_zeros(NC), *dg = ops_zeros(C), *db = ops_zeros(C);
    ln_loss(&c);
    mcnn_layernorm_backward(dx, dg, db, c.w, c.x, c.gamma, c.mean, c.rstd, N, C);
    ops_fd_check("dx", c.x, dx, NC, ln_loss, &c, 1e-2f, 1e-2, 1e-3);
    ops_fd_check("dgamma", c.gamma, dg, C, ln_loss, &c, 1e-2f, 1e-2, 1e-3);
    ops_fd_check("dbeta", c.beta, db, C, ln_loss, &c, 1e-2f, 1e-2, 1e-3);
    ops_free_all();
}

static void test_layernorm_finite_differences(void)
{
    layernorm_fd(3, 8, 1e-5f);
    layernorm_fd(2, 33, 1e-6f);
    layernorm_fd(4, 1, 1e-5f); /* one channel: y = beta whatever x is, so dx must be 0 */
}

/* ---- accumulation and NULL gradients ---------------------------------------------------------- */
static void test_layernorm_accumulate_and_null(void)
{
    enum { N = 5, C = 7 };
    float *x = ops_random(N * C, 1, 2), *gamma = ops_random(C, 2, 1), *beta = ops_random(C, 3, 1);
    float *dy = ops_random(N * C, 4, 1);
    float *y = ops_zeros(N * C), *mean = ops_zeros(N), *rstd = ops_zeros(N);
    mcnn_layernorm_forward(y, mean, rstd, x, gamma, beta, N, C, 1e-5f);
    float *dx1 = ops_zeros(N * C), *dg1 = ops_zeros(C), *db1 = ops_zeros(C);
    mcnn_layernorm_backward(dx1, dg1, db1, dy, x, gamma, mean, rstd, N, C);
    /* twice into the same buffers = twice the gradient */
    float *dx2 = ops_zeros(N * C), *dg2 = ops_zeros(C), *db2 = ops_zeros(C);
    mcnn_layernorm_backward(dx2, dg2, db2, dy, x, gamma, mean, rstd, N, C);
    mcnn_layernorm_backward(dx2, dg2, db2, dy, x, gamma, mean, rstd, N, C);
    for (int i = 0; i < N * C; i++) TEST_CLOSE("dx twice", dx2[i], 2.0 * dx1[i], 1e-6, 1e-7);
    for (int i = 0; i < C; i++) TEST_CLOSE("dgamma twice", dg2[i], 2.0 * dg1[i], 1e-6, 1e-7);
    for (int i = 0; i < C; i++) TEST_CLOSE("dbeta twice", db2[i], 2.0 * db1[i], 1e-6, 1e-7);
    /* each gradient alone (others NULL) is the same as with all of them */
    float *dx = ops_zeros(N * C), *dg = ops_zeros(C), *db = ops_zeros(C);
    mcnn_layernorm_backward(dx, NULL, NULL, dy, x, gamma, mean, rstd, N, C);
    mcnn_layernorm_backward(NULL, dg, NULL, dy, x, gamma, mean, rstd, N, C);
    mcnn_layernorm_backward(NULL, NULL, db, dy, x, gamma, mean, rstd, N, C);
    mcnn_layernorm_backward(NULL, NULL, NULL, dy, x, gamma, mean, rstd, N, C);
    ops_check_same("dx alone", dx1, dx, N * C);
    ops_check_same("dgamma alone", dg1, dg, C);
    ops_check_same("dbeta alone", db1, db, C);
    ops_free_all();
}

/* ---- thread-count independence: bitwise the same on 1 and 3 threads ------------------------------ */
static void test_layernorm_threads(void)
{
    enum { N = 130, C = 77 }; /* above the size where the loops go parallel */
    const int saved = mcnn_get_threads();
    float *x = ops_random(N * C, 1, 3), *gamma = ops_random(C, 2, 1), *beta = ops_random(C, 3, 1);
    float *dy = ops_random(N * C, 4, 1);
    float *out[2][6];
    const int threads[2] = {1, 3};
    for (int r = 0; r < 2; r++) {
        mcnn_set_threads(threads[r]);
        float *y = ops_zeros(N * C), *mean = ops_zeros(N), *rstd = ops_zeros(N);
        float *dx = ops_zeros(N * C), *dg = ops_zeros(C), *db = ops_zeros(C);
        mcnn_layernorm_forward(y, mean, rstd, x, gamma, beta, N, C, 1e-6f);
        mcnn_layernorm_backward(dx, dg, db, dy, x, gamma, mean, rstd, N, C);
        float *o[6] = {y, mean, rstd, dx, dg, db};
        memcpy(out[r], o, sizeof o);
    }
    mcnn_set_threads(saved);
    const char *names[6] = {"y", "mean", "rstd", "dx", "dgamma", "dbeta"};
    const size_t sizes[6] = {N * C, N, N, N * C, C, C};
    for (int i = 0; i < 6; i++) ops_check_same(names[i], out[0][i], out[1][i], sizes[i]);
    ops_free_all();
}

int main(void)
{
    TEST_RUN(test_layernorm_golden);
    TEST_RUN(test_layernorm_finite_differences);
    TEST_RUN(test_layernorm_accumulate_and_null);
    TEST_RUN(test_layernorm_threads);
    ops_golden_close();
    return test_summary();
}
