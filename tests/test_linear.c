/* mcnn_linear_forward / _backward against three judges: PyTorch goldens (F.linear and autograd,
 * tests/ref/gen_ops_cnn.py), central finite differences, and the accumulation contract.
 * Plus: the same bits with 1 and 2 threads. */
#include "ops_cnn_util.h"

static void linear_golden_case(mcnn_safetensors *st, const char *cs)
{
    int32_t *cfg = golden_i32(st, cs, "cfg");
    if (!cfg) return;
    const int N = cfg[0], IN = cfg[1], OUT = cfg[2], has_bias = cfg[3];
    float *x = golden(st, cs, "x"), *w = golden(st, cs, "w"), *dy = golden(st, cs, "dy");
    float *b = has_bias ? golden(st, cs, "b") : NULL;
    float *y = zeros((size_t)N * OUT), *dx = zeros((size_t)N * IN), *dw = zeros((size_t)OUT * IN);
    float *db = zeros(OUT);
    if (x && w && dy && (b || !has_bias)) {
        mcnn_linear_forward(y, x, w, b, N, IN, OUT);
        mcnn_linear_backward(dx, dw, has_bias ? db : NULL, dy, x, w, N, IN, OUT);
        golden_check(st, cs, "y", y, (size_t)N * OUT, 1e-4);
        golden_check(st, cs, "dx", dx, (size_t)N * IN, 1e-4);
        golden_check(st, cs, "dw", dw, (size_t)OUT * IN, 1e-4);
        if (has_bias) golden_check(st, cs, "db", db, OUT, 1e-4);
    }
    free(cfg), free(x), free(w), free(dy), free(b), free(y), free(dx), free(dw), free(db);
}

static void test_linear_golden(void)
{
    mcnn_safetensors *st = golden_open();
    if (!st) return;
    const char *cases[] = {"linear_bias", "linear_nobias", "linear_odd"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) linear_golden_case(st, cases[i]);
    mcnn_safetensors_close(st);
}

/* ---- finite differences ---------------------------------------------------------------- */
enum { N = 3, IN = 5, OUT = 4 };

typedef struct {
    float *x, *w, *b, *wl; /* wl: the fake loss's weights, L = sum(y · wl) */
} linear_ctx;

static double linear_loss(void *p)
{
    linear_ctx *c = p;
    float y[N * OUT];
    mcnn_linear_forward(y, c->x, c->w, c->b, N, IN, OUT);
    return dot(y, c->wl, N * OUT);
}

static void test_linear_finite_differences(void)
{
    float x[N * IN], w[OUT * IN], b[OUT], wl[N * OUT];
    float dx[N * IN] = {0}, dw[OUT * IN] = {0}, db[OUT] = {0};
    test_fill_random(x, N * IN, 1), test_fill_random(w, OUT * IN, 2);
    test_fill_random(b, OUT, 3), test_fill_random(wl, N * OUT, 4);
    linear_ctx c = {x, w, b, wl};
    mcnn_linear_backward(dx, dw, db, wl, x, w, N, IN, OUT);
    /* L is linear in each of x, w, b, so the central difference is exact for any step: a large
     * one keeps float rounding in the forward out of the slope. */
    fd_check("dx", x, dx, N * IN, linear_loss, &c, 0.5f, 2, 1e-4, 1e-5);
    fd_check("dw", w, dw, OUT * IN, linear_loss, &c, 0.5f, 2, 1e-4, 1e-5);
    fd_check("db", b, db, OUT, linear_loss, &c, 0.5f, 2, 1e-4, 1e-5);
}

/* ---- accumulation and NULL ---------------------------------------------------------------- */
static void test_linear_accumulates(void)
{
    float x[N * IN], w[OUT * IN], dy[N * OUT];
    float d_dx[N * IN] = {0}, d_dw[OUT * IN] = {0}, d_db[OUT] = {0}; /* one call from zeros */
    float g0x[N * IN], g0w[OUT * IN], g0b[OUT], dx[N * IN], dw[OUT * IN], db[OUT];
    test_fill_random(x, N * IN, 5), test_fill_random(w, OUT * IN, 6);
    test_fill_random(dy, N * OUT, 7);
    test_fill_random(g0x, N * IN, 8), test_fill_random(g0w, OUT * IN, 9);
    test_fill_random(g0b, OUT, 10);
    mcnn_linear_backward(d_dx, d_dw, d_db, dy, x, w, N, IN, OUT);

    memcpy(dx, g0x, sizeof dx), memcpy(dw, g0w, sizeof dw), memcpy(db, g0b, sizeof db);
    mcnn_linear_backward(dx, dw, db, dy, x, w, N, IN, OUT);
    mcnn_linear_backward(dx, dw, db, dy, x, w, N, IN, OUT);
    check_accumulated("dx", dx, g0x, d_dx, N * IN);
    check_accumulated("dw", dw, g0w, d_dw, OUT * IN);
    check_accumulated("db", db, g0b, d_db, OUT);

    /* NULL: skip that gradient, leave the others exactly as a full call gives them */
    float dw_only[OUT * IN] = {0}, dx_only[N * IN] = {0}, db_only[OUT] = {0};
    mcnn_linear_backward(NULL, dw_only, NULL, dy, x, w, N, IN, OUT);
    mcnn_linear_backward(dx_only, NULL, NULL, dy, x, w, N, IN, OUT);
    mcnn_linear_backward(NULL, NULL, db_only, dy, x, w, N, IN, OUT);
    mcnn_linear_backward(NULL, NULL, NULL, dy, x, w, N, IN, OUT);
    TEST_ASSERT(memcmp(dw_only, d_dw, sizeof dw_only) == 0, "dw alone differs");
    TEST_ASSERT(memcmp(dx_only, d_dx, sizeof dx_only) == 0, "dx alone differs");
    TEST_ASSERT(memcmp(db_only, d_db, sizeof db_only) == 0, "db alone differs");
}

/* ---- thread-count independence ------------------------------------------------------------ */
static void test_linear_threads(void)
{
    const int n = 197, in = 96, out = 200; /* big enough to take the parallel paths */
    float *x = random_floats((size_t)n * in, 11), *w = random_floats((size_t)out * in, 12);
    float *b = random_floats(out, 13), *dy = random_floats((size_t)n * out, 14);
    float *res[2][4];
    const int saved = mcnn_get_threads();
    for (int t = 0; t < 2; t++) {
        mcnn_set_threads(t + 1);
        float *y = zeros((size_t)n * out), *dx = zeros((size_t)n * in);
        float *dw = zeros((size_t)out * in), *db = zeros(out);
        mcnn_linear_forward(y, x, w, b, n, in, out);
        mcnn_linear_backward(dx, dw, db, dy, x, w, n, in, out);
        res[t][0] = y, res[t][1] = dx, res[t][2] = dw, res[t][3] = db;
    }
    mcnn_set_threads(saved);
    check_same_bits("y", res[0][0], res[1][0], (size_t)n * out);
    check_same_bits("dx", res[0][1], res[1][1], (size_t)n * in);
    check_same_bits("dw", res[0][2], res[1][2], (size_t)out * in);
    check_same_bits("db", res[0][3], res[1][3], out);
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 4; k++) free(res[t][k]);
    free(x), free(w), free(b), free(dy);
}

int main(void)
{
    TEST_RUN(test_linear_golden);
    TEST_RUN(test_linear_finite_differences);
    TEST_RUN(test_linear_accumulates);
    TEST_RUN(test_linear_threads);
    return test_summary();
}
