/* mcnn_batchnorm2d_* against PyTorch goldens (F.batch_norm in training and eval mode, with the
 * running statistics it updates; one case with mean 500 and spread 0.1, where float sums or a
 * float-rounded mean would lose digits; tests/ref/gen_ops_cnn.py), central finite differences
 * of both backwards, the accumulation contract, and the same bits with 1 and 2 threads. */
#include "ops_cnn_util.h"

static void bn_golden_case(mcnn_safetensors *st, const char *cs)
{
    int32_t *cfg = golden_i32(st, cs, "cfg");
    float *hyper = golden(st, cs, "hyper");
    if (!cfg || !hyper) {
        free(cfg), free(hyper);
        return;
    }
    const int N = cfg[0], C = cfg[1], HW = cfg[2];
    const float momentum = hyper[0], eps = hyper[1];
    const size_t n = (size_t)N * C * HW;
    float *x = golden(st, cs, "x"), *gamma = golden(st, cs, "gamma");
    float *beta = golden(st, cs, "beta");
    float *rm = golden(st, cs, "running_mean_in"), *rv = golden(st, cs, "running_var_in");
    float *rm0 = golden(st, cs, "running_mean_in"), *rv0 = golden(st, cs, "running_var_in");
    float *dy = golden(st, cs, "dy");
    float *y = zeros(n), *mean = zeros(C), *rstd = zeros(C);
    float *dx = zeros(n), *dgamma = zeros(C), *dbeta = zeros(C);
    if (x && gamma && beta && rm && rv && rm0 && rv0 && dy) {
        /* training mode: batch statistics, running statistics updated in place */
        mcnn_batchnorm2d_forward_train(y, mean, rstd, rm, rv, x, gamma, beta, N, C, HW, momentum,
                                       eps);
        mcnn_batchnorm2d_backward(dx, dgamma, dbeta, dy, x, gamma, mean, rstd, N, C, HW);
        golden_check(st, cs, "y", y, n, 1e-4);
        golden_check(st, cs, "running_mean", rm, C, 1e-4);
        golden_check(st, cs, "running_var", rv, C, 1e-4);
        golden_check(st, cs, "dx", dx, n, 1e-4);
        golden_check(st, cs, "dgamma", dgamma, C, 1e-4);
        golden_check(st, cs, "dbeta", dbeta, C, 1e-4);

        /* eval mode with the statistics as they were before the training step */
        memset(dx, 0, n * 4), memset(dgamma, 0, C * 4), memset(dbeta, 0, C * 4);
        mcnn_batchnorm2d_forward_eval(y, x, gamma, beta, rm0, rv0, N, C, HW, eps);
        mcnn_batchnorm2d_backward_eval(dx, dgamma, dbeta, dy, x, gamma, rm0, rv0, N, C, HW, eps);
        golden_check(st, cs, "eval_y", y, n, 1e-4);
        golden_check(st, cs, "eval_dx", dx, n, 1e-4);
        golden_check(st, cs, "eval_dgamma", dgamma, C, 1e-4);
        golden_check(st, cs, "eval_dbeta", dbeta, C, 1e-4);
    }
    free(cfg), free(hyper), free(x), free(gamma), free(beta), free(rm), free(rv), free(rm0);
    free(rv0), free(dy), free(y), free(mean), free(rstd), free(dx), free(dgamma), free(dbeta);
}

static void test_batchnorm_golden(void)
{
    mcnn_safetensors *st = golden_open();
    if (!st) return;
    bn_golden_case(st, "bn");
    bn_golden_case(st, "bn_shift");
    bn_golden_case(st, "bn_shift_far");
    mcnn_safetensors_close(st);
}

/* ---- finite differences ---------------------------------------------------------------- */
enum { N = 2, C = 3, HW = 5, NX = N * C * HW };

typedef struct {
    float *x, *gamma, *beta, *rm, *rv, *wl;
    int eval;
} bn_ctx;

static double bn_loss(void *p)
{
    bn_ctx *c = p;
    float y[NX], mean[C], rstd[C];
    if (c->eval)
        mcnn_batchnorm2d_forward_eval(y, c->x, c->gamma, c->beta, c->rm, c->rv, N, C, HW, 1e-5f);
    else /* NULL running statistics: not tracked, so the probes leave no trace */
        mcnn_batchnorm2d_forward_train(y, mean, rstd, NULL, NULL, c->x, c->gamma, c->beta, N, C,
                                       HW, 0.1f, 1e-5f);
    return dot(y, c->wl, NX);
}

static void test_batchnorm_finite_differences(void)
{
    float x[NX], gamma[C], beta[C], rm[C], rv[C], wl[NX], y[NX], mean[C], rstd[C];
    float dx[NX] = {0}, dgamma[C] = {0}, dbeta[C] = {0};
    test_fill_random(x, NX, 1), test_fill_random(gamma, C, 2), test_fill_random(beta, C, 3);
    test_fill_random(rm, C, 4), test_fill_random(rv, C, 5), test_fill_random(wl, NX, 6);
    for (int c = 0; c < C; c++) rv[c] = 0.5f + fabsf(rv[c]);
    bn_ctx ctx = {x, gamma, beta, rm, rv, wl, 0};

    /* training: y is not linear in x (x enters mean and var), so the 4th-order stencil; a step of
     * 1e-2 balances its h⁴ error against float rounding in the forward divided by h. */
    mcnn_batchnorm2d_forward_train(y, mean, rstd, NULL, NULL, x, gamma, beta, N, C, HW, 0.1f,
                                   1e-5f);
    mcnn_batchnorm2d_backward(dx, dgamma, dbeta, wl, x, gamma, mean, rstd, N, C, HW);
    fd_check("train dx", x, dx, NX, bn_loss, &ctx, 1e-2f, 4, 1e-3, 1e-4);
    fd_check("train dgamma", gamma, dgamma, C, bn_loss, &ctx, 0.5f, 2, 1e-4, 1e-5); /* linear */
    fd_check("train dbeta", beta, dbeta, C, bn_loss, &ctx, 0.5f, 2, 1e-4, 1e-5);

    /* eval: affine in x, gamma and beta, so the plain central difference is exact */
    ctx.eval = 1;
    memset(dx, 0, sizeof dx), memset(dgamma, 0, sizeof dgamma), memset(dbeta, 0, sizeof dbeta);
    mcnn_batchnorm2d_backward_eval(dx, dgamma, dbeta, wl, x, gamma, rm, rv, N, C, HW, 1e-5f);
    fd_check("eval dx", x, dx, NX, bn_loss, &ctx, 0.5f, 2, 1e-4, 1e-5);
    fd_check("eval dgamma", gamma, dgamma, C, bn_loss, &ctx, 0.5f, 2, 1e-4, 1e-5);
    fd_check("eval dbeta", beta, dbeta, C, bn_loss, &ctx, 0.5f, 2, 1e-4, 1e-5);
}

/* ---- accumulation and NULL ---------------------------------------------------------------- */
static void test_batchnorm_accumulates(void)
{
    float x[NX], gamma[C], beta[C], rm[C], rv[C], dy[NX], y[NX], mean[C], rstd[C];
    test_fill_random(x, NX, 7), test_fill_random(gamma, C, 8), test_fill_random(beta, C, 9);
    test_fill_random(rm, C, 10), test_fill_random(rv, C, 11), test_fill_random(dy, NX, 12);
    for (int c = 0; c < C; c++) rv[c] = 0.5f + fabsf(rv[c]);
    mcnn_batchnorm2d_forward_train(y, mean, rstd, NULL, NULL, x, gamma, beta, N, C, HW, 0.1f,
                                   1e-5f);
    for (int eval = 0; eval < 2; eval++) {
#define BN_BACKWARD(dx_, dg_, db_)                                                            \
    (eval ? mcnn_batchnorm2d_backward_eval(dx_, dg_, db_, dy, x, gamma, rm, rv, N, C, HW, 1e-5f) \
          : mcnn_batchnorm2d_backward(dx_, dg_, db_, dy, x, gamma, mean, rstd, N, C, HW))
        float d_dx[NX] = {0}, d_dg[C] = {0}, d_db[C] = {0};
        float g0x[NX], g0g[C], g0b[C], dx[NX], dg[C], db[C];
        test_fill_random(g0x, NX, 13), test_fill_random(g0g, C, 14), test_fill_random(g0b, C, 15);
        BN_BACKWARD(d_dx, d_dg, d_db);
        memcpy(dx, g0x, sizeof dx), memcpy(dg, g0g, sizeof dg), memcpy(db, g0b, sizeof db);
        BN_BACKWARD(dx, dg, db);
        BN_BACKWARD(dx, dg, db);
        check_accumulated(eval ? "eval dx" : "dx", dx, g0x, d_dx, NX);
        check_accumulated(eval ? "eval dgamma" : "dgamma", dg, g0g, d_dg, C);
        check_accumulated(eval ? "eval dbeta" : "dbeta", db, g0b, d_db, C);

        float ox[NX] = {0}, og[C] = {0}, ob[C] = {0};
        BN_BACKWARD(ox, NULL, NULL);
        BN_BACKWARD(NULL, og, NULL);
        BN_BACKWARD(NULL, NULL, ob);
        BN_BACKWARD(NULL, NULL, NULL);
        const char *mode = eval ? "eval" : "train";
        TEST_ASSERT(memcmp(ox, d_dx, sizeof ox) == 0, "%s: dx alone differs", mode);
        TEST_ASSERT(memcmp(og, d_dg, sizeof og) == 0, "%s: dgamma alone differs", mode);
        TEST_ASSERT(memcmp(ob, d_db, sizeof ob) == 0, "%s: dbeta alone differs", mode);
#undef BN_BACKWARD
    }
}

/* ---- thread-count independence ------------------------------------------------------------ */
static void test_batchnorm_threads(void)
{
    const int n = 4, c = 16, hw = 33 * 31; /* big enough for the parallel paths */
    const size_t nx = (size_t)n * c * hw;
    float *x = random_floats(nx, 21), *dy = random_floats(nx, 22);
    float *gamma = random_floats(c, 23), *beta = random_floats(c, 24);
    float *res[2][7];
    const int saved = mcnn_get_threads();
    for (int t = 0; t < 2; t++) {
        mcnn_set_threads(t + 1);
        float *y = zeros(nx), *mean = zeros(c), *rstd = zeros(c), *dx = zeros(nx);
        float *dg = zeros(c), *db = zeros(c), *rv = zeros(c);
        float *rm = random_floats(c, 25);
        for (int i = 0; i < c; i++) rv[i] = 1.0f;
        mcnn_batchnorm2d_forward_train(y, mean, rstd, rm, rv, x, gamma, beta, n, c, hw, 0.1f,
                                       1e-5f);
        mcnn_batchnorm2d_backward(dx, dg, db, dy, x, gamma, mean, rstd, n, c, hw);
        free(rv);
        res[t][0] = y, res[t][1] = mean, res[t][2] = rstd, res[t][3] = dx;
        res[t][4] = dg, res[t][5] = db, res[t][6] = rm;
    }
    mcnn_set_threads(saved);
    const char *names[7] = {"y", "mean", "rstd", "dx", "dgamma", "dbeta", "running_mean"};
    for (int k = 0; k < 7; k++) {
        check_same_bits(names[k], res[0][k], res[1][k], (k == 0 || k == 3) ? nx : (size_t)c);
        free(res[0][k]), free(res[1][k]);
    }
    free(x), free(dy), free(gamma), free(beta);
}

int main(void)
{
    TEST_RUN(test_batchnorm_golden);
    TEST_RUN(test_batchnorm_finite_differences);
    TEST_RUN(test_batchnorm_accumulates);
    TEST_RUN(test_batchnorm_threads);
    return test_summary();
}
