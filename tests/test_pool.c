/* Pooling, ReLU and the residual add against PyTorch goldens (F.max_pool2d with its indices,
 * including windows full of ties; F.avg_pool2d count_include_pad=True; adaptive average pool;
 * F.relu with exact zeros; tests/ref/gen_ops_cnn.py), central finite differences, the
 * accumulation contract, and the same bits with 1 and 2 threads. */
#include "ops_cnn_util.h"

static mcnn_pool2d_shape pool_shape(const int32_t *c)
{
    mcnn_pool2d_shape s = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]};
    return s;
}
static size_t px_size(const mcnn_pool2d_shape *s) { return (size_t)s->N * s->C * s->H * s->W; }
static size_t py_size(const mcnn_pool2d_shape *s)
{
    return (size_t)s->N * s->C * mcnn_pool2d_out_h(s) * mcnn_pool2d_out_w(s);
}

static void pool_golden_case(mcnn_safetensors *st, const char *cs, int is_max)
{
    int32_t *cfg = golden_i32(st, cs, "cfg");
    if (!cfg) return;
    const mcnn_pool2d_shape s = pool_shape(cfg);
    const size_t nx = px_size(&s), ny = py_size(&s);
    float *x = golden(st, cs, "x"), *dy = golden(st, cs, "dy");
    int32_t *want_idx = is_max ? golden_i32(st, cs, "idx") : NULL;
    float *y = zeros(ny), *dx = zeros(nx);
    int32_t *idx = calloc(ny, sizeof(int32_t));
    if (x && dy && (want_idx || !is_max)) {
        if (is_max) {
            mcnn_maxpool2d_forward(y, idx, x, &s);
            mcnn_maxpool2d_backward(dx, dy, idx, &s);
            int shown = 0; /* the index PyTorch took, exactly: ties must go to the first max */
            for (size_t i = 0; i < ny; i++)
                if (idx[i] != want_idx[i] && shown++ < 5)
                    TEST_ASSERT(0, "%s.idx[%zu]: got %d want %d", cs, i, idx[i], want_idx[i]);
        } else {
            mcnn_avgpool2d_forward(y, x, &s);
            mcnn_avgpool2d_backward(dx, dy, &s);
        }
        golden_check(st, cs, "y", y, ny, 1e-4);
        golden_check(st, cs, "dx", dx, nx, 1e-4);
    }
    free(cfg), free(x), free(dy), free(want_idx), free(y), free(dx), free(idx);
}

static void test_pool_golden(void)
{
    mcnn_safetensors *st = golden_open();
    if (!st) return;
    pool_golden_case(st, "maxpool_3x3_s2_p1", 1);
    pool_golden_case(st, "maxpool_2x2_s2", 1);
    pool_golden_case(st, "maxpool_ties", 1);
    pool_golden_case(st, "maxpool_rect", 1);
    pool_golden_case(st, "avgpool_3x3_s2_p1", 0);
    pool_golden_case(st, "avgpool_2x2_s2", 0);

    int32_t *cfg = golden_i32(st, "gap", "cfg");
    float *x = golden(st, "gap", "x"), *dy = golden(st, "gap", "dy");
    if (cfg && x && dy) {
        const int N = cfg[0], C = cfg[1], HW = cfg[2];
        float *y = zeros((size_t)N * C), *dx = zeros((size_t)N * C * HW);
        mcnn_global_avgpool_forward(y, x, N, C, HW);
        mcnn_global_avgpool_backward(dx, dy, N, C, HW);
        golden_check(st, "gap", "y", y, (size_t)N * C, 1e-4);
        golden_check(st, "gap", "dx", dx, (size_t)N * C * HW, 1e-4);
        free(y), free(dx);
    }
    free(cfg), free(x), free(dy);
    mcnn_safetensors_close(st);
}

static void test_relu_golden(void)
{
    mcnn_safetensors *st = golden_open();
    if (!st) return;
    int32_t *cfg = golden_i32(st, "relu", "cfg");
    float *x = golden(st, "relu", "x"), *dy = golden(st, "relu", "dy");
    if (cfg && x && dy) {
        const size_t n = (size_t)cfg[0];
        float *y = zeros(n), *dx = zeros(n);
        mcnn_relu_forward(y, x, n);
        mcnn_relu_backward(dx, dy, y, n);
        golden_check(st, "relu", "y", y, n, 0.0); /* exact: no arithmetic */
        golden_check(st, "relu", "dx", dx, n, 0.0);
        mcnn_relu_forward(x, x, n); /* in place gives the same */
        golden_check(st, "relu", "y", x, n, 0.0);
        free(y), free(dx);
    }
    free(cfg), free(x), free(dy);
    mcnn_safetensors_close(st);
}

/* The output size formula on ResNet's stem pool and the 2×2 pool of an odd plane. */
static void test_pool_out_size(void)
{
    mcnn_pool2d_shape stem = {1, 64, 112, 112, 3, 3, 2, 2, 1, 1};
    mcnn_pool2d_shape odd = {1, 1, 7, 5, 2, 2, 2, 2, 0, 0};
    TEST_ASSERT(mcnn_pool2d_out_h(&stem) == 56 && mcnn_pool2d_out_w(&stem) == 56, "stem pool");
    TEST_ASSERT(mcnn_pool2d_out_h(&odd) == 3 && mcnn_pool2d_out_w(&odd) == 2, "floor mode");
}

/* ---- finite differences ---------------------------------------------------------------- */
typedef struct {
    const mcnn_pool2d_shape *s;
    float *x, *b, *wl, *y;
    int32_t *idx;
    int op; /* 0 max, 1 avg, 2 global avg, 3 relu, 4 add */
    size_t n;
} pool_ctx;

static double pool_loss(void *p)
{
    pool_ctx *c = p;
    size_t ny = c->n;
    switch (c->op) {
    case 0: mcnn_maxpool2d_forward(c->y, c->idx, c->x, c->s), ny = py_size(c->s); break;
    case 1: mcnn_avgpool2d_forward(c->y, c->x, c->s), ny = py_size(c->s); break;
    case 2: mcnn_global_avgpool_forward(c->y, c->x, c->s->N, c->s->C, c->s->H * c->s->W);
            ny = (size_t)c->s->N * c->s->C; break;
    case 3: mcnn_relu_forward(c->y, c->x, c->n); break;
    default: mcnn_add_forward(c->y, c->x, c->b, c->n); break;
    }
    return dot(c->y, c->wl, ny);
}

/* Distinct values 0.1 apart in shuffled order: a nudge of h = 0.01 never changes which input a
 * max-pool window takes, nor the sign of a relu input. */
static void fill_distinct(float *x, size_t n, unsigned seed)
{
    float *r = random_floats(n, seed);
    for (size_t i = 0; i < n; i++) x[i] = 0.1f * (float)i - 0.05f * (float)n + 0.05f;
    for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates with the test's random numbers */
        size_t j = (size_t)((r[i] * 0.5f + 0.5f) * (float)(i + 1));
        if (j > i) j = i;
        float t = x[i];
        x[i] = x[j], x[j] = t;
    }
    free(r);
}

static void test_pool_finite_differences(void)
{
    mcnn_pool2d_shape s = {2, 2, 5, 6, 3, 3, 2, 2, 1, 1}; /* overlapping windows, padding */
    const size_t nx = px_size(&s), ny = py_size(&s);
    float *x = zeros(nx), *b = zeros(nx), *wl = random_floats(nx, 3), *y = zeros(nx);
    float *dx = zeros(nx), *db = zeros(nx);
    int32_t *idx = calloc(ny, sizeof(int32_t));
    fill_distinct(x, nx, 1);
    test_fill_random(b, nx, 2);
    pool_ctx c = {&s, x, b, wl, y, idx, 0, nx};

    /* max pool: piecewise linear, and no nudge crosses a kink, so the difference is exact */
    mcnn_maxpool2d_forward(y, idx, x, &s);
    mcnn_maxpool2d_backward(dx, wl, idx, &s);
    fd_check("maxpool dx", x, dx, nx, pool_loss, &c, 1e-2f, 2, 1e-4, 1e-5);

    c.op = 1, memset(dx, 0, nx * 4);
    mcnn_avgpool2d_backward(dx, wl, &s);
    fd_check("avgpool dx", x, dx, nx, pool_loss, &c, 0.5f, 2, 1e-4, 1e-5);

    mcnn_pool2d_shape s2 = {1, 4, 4, 3, 1, 1, 1, 1, 0, 0}; /* the plane sizes for global pool */
    c.op = 2, c.s = &s2, memset(dx, 0, nx * 4);
    mcnn_global_avgpool_backward(dx, wl, 1, 4, 12);
    fd_check("global avgpool dx", x, dx, 48, pool_loss, &c, 0.5f, 2, 1e-4, 1e-5);

    c.op = 3, memset(dx, 0, nx * 4);
    mcnn_relu_forward(y, x, nx);
    mcnn_relu_backward(dx, wl, y, nx);
    fd_check("relu dx", x, dx, nx, pool_loss, &c, 1e-2f, 2, 1e-4, 1e-5);

    c.op = 4, memset(dx, 0, nx * 4);
    mcnn_add_backward(dx, db, wl, nx);
    fd_check("add da", x, dx, nx, pool_loss, &c, 0.5f, 2, 1e-4, 1e-5);
    fd_check("add db", b, db, nx, pool_loss, &c, 0.5f, 2, 1e-4, 1e-5);
    free(x), free(b), free(wl), free(y), free(dx), free(db), free(idx);
}

/* ---- accumulation and NULL ---------------------------------------------------------------- */
static void test_pool_accumulates(void)
{
    mcnn_pool2d_shape s = {2, 3, 7, 6, 3, 3, 2, 2, 1, 1};
    const size_t nx = px_size(&s), ny = py_size(&s);
    float *x = random_floats(nx, 1), *y = zeros(nx), *dy = random_floats(nx, 2);
    float *g0 = random_floats(nx, 3), *g0b = random_floats(nx, 4), *delta = zeros(nx);
    float *g = zeros(nx), *gb = zeros(nx), *delta_b = zeros(nx);
    int32_t *idx = calloc(ny, sizeof(int32_t));
    mcnn_maxpool2d_forward(y, idx, x, &s);
    for (int op = 0; op < 5; op++) {
        static const char *names[5] = {"maxpool", "avgpool", "global avgpool", "relu", "add"};
#define ONE_BACKWARD(d_, d2_)                                                                  \
    do {                                                                                       \
        if (op == 0) mcnn_maxpool2d_backward(d_, dy, idx, &s);                                 \
        else if (op == 1) mcnn_avgpool2d_backward(d_, dy, &s);                                 \
        else if (op == 2) mcnn_global_avgpool_backward(d_, dy, 2, 3, 42);                      \
        else if (op == 3) mcnn_relu_backward(d_, dy, x, nx);                                   \
        else mcnn_add_backward(d_, d2_, dy, nx);                                               \
    } while (0)
        memset(delta, 0, nx * 4), memset(delta_b, 0, nx * 4);
        ONE_BACKWARD(delta, delta_b);
        memcpy(g, g0, nx * 4), memcpy(gb, g0b, nx * 4);
        ONE_BACKWARD(g, gb);
        ONE_BACKWARD(g, gb);
        check_accumulated(names[op], g, g0, delta, nx);
        if (op == 4) check_accumulated("add db", gb, g0b, delta_b, nx);
        ONE_BACKWARD(NULL, NULL); /* nothing wanted: nothing done, nothing crashes */
        if (op == 4) { /* one side only */
            memset(g, 0, nx * 4);
            ONE_BACKWARD(NULL, g);
            TEST_ASSERT(memcmp(g, delta_b, nx * 4) == 0, "add: db alone differs");
        }
#undef ONE_BACKWARD
    }
    free(x), free(y), free(dy), free(g0), free(g0b), free(delta), free(g), free(gb);
    free(delta_b), free(idx);
}

/* ---- thread-count independence ------------------------------------------------------------ */
static void test_pool_threads(void)
{
    mcnn_pool2d_shape s = {2, 32, 40, 40, 3, 3, 2, 2, 1, 1};
    const size_t nx = px_size(&s), ny = py_size(&s);
    float *x = random_floats(nx, 1), *dy = random_floats(ny, 2);
    float *res[2][4];
    int32_t *idx = calloc(ny, sizeof(int32_t));
    const int saved = mcnn_get_threads();
    for (int t = 0; t < 2; t++) {
        mcnn_set_threads(t + 1);
        float *ym = zeros(ny), *dxm = zeros(nx), *ya = zeros(ny), *dxa = zeros(nx);
        mcnn_maxpool2d_forward(ym, idx, x, &s);
        mcnn_maxpool2d_backward(dxm, dy, idx, &s);
        mcnn_avgpool2d_forward(ya, x, &s);
        mcnn_avgpool2d_backward(dxa, dy, &s);
        res[t][0] = ym, res[t][1] = dxm, res[t][2] = ya, res[t][3] = dxa;
    }
    mcnn_set_threads(saved);
    const char *names[4] = {"maxpool y", "maxpool dx", "avgpool y", "avgpool dx"};
    for (int k = 0; k < 4; k++) {
        check_same_bits(names[k], res[0][k], res[1][k], k % 2 ? nx : ny);
        free(res[0][k]), free(res[1][k]);
    }
    free(x), free(dy), free(idx);
}

/* The max pool by its definition, one window at a time in row-major order: a NaN wins, ties
 * keep the first maximum (PyTorch's CPU kernel). */
static void maxpool_plain(float *y, int32_t *argmax, const float *x, const mcnn_pool2d_shape *s)
{
    const int H = s->H, W = s->W, OH = mcnn_pool2d_out_h(s), OW = mcnn_pool2d_out_w(s);
    for (int pl = 0; pl < s->N * s->C; pl++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const int h0 = oh * s->stride_h - s->pad_h, w0 = ow * s->stride_w - s->pad_w;
                const int ih0 = h0 < 0 ? 0 : h0, iw0 = w0 < 0 ? 0 : w0;
                const int ih1 = h0 + s->KH < H ? h0 + s->KH : H;
                const int iw1 = w0 + s->KW < W ? w0 + s->KW : W;
                float best = -INFINITY;
                int32_t best_i = ih0 * W + iw0;
                for (int ih = ih0; ih < ih1; ih++)
                    for (int iw = iw0; iw < iw1; iw++) {
                        float v = x[(size_t)pl * H * W + ih * W + iw];
                        if (v > best || isnan(v)) best = v, best_i = ih * W + iw;
                    }
                y[((size_t)pl * OH + oh) * OW + ow] = best;
                argmax[((size_t)pl * OH + oh) * OW + ow] = best_i;
            }
}

/* Equal as bits (+0 and -0 differ), or both NaN. */
static int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

/* The op against the definition: the same values and indices (bits), with and without argmax,
 * on inputs full of ties (values from a set of 5, +0 and -0), NaNs and -inf, for strides, pads and odd
 * sizes.  (The goldens have no NaN.) */
static void test_maxpool_plain_twin(void)
{
    const int cfgs[][10] = {
        /* N C H W KH KW sh sw ph pw */
        {2, 3, 13, 11, 3, 3, 2, 2, 1, 1}, {1, 2, 8, 9, 2, 2, 2, 2, 0, 0},
        {1, 2, 7, 10, 3, 3, 1, 1, 1, 1}, {2, 1, 12, 12, 3, 2, 3, 1, 1, 0},
        {1, 1, 5, 5, 5, 5, 1, 1, 2, 2}};
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        const int *c = cfgs[k];
        mcnn_pool2d_shape s = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]};
        const size_t nx = px_size(&s), ny = py_size(&s);
        float *x = zeros(nx), *y1 = zeros(ny), *y2 = zeros(ny);
        int32_t *a1 = calloc(ny, sizeof(int32_t)), *a2 = calloc(ny, sizeof(int32_t));
        uint32_t r = 12345u + (uint32_t)k;
        for (size_t i = 0; i < nx; i++) {
            r = r * 1664525u + 1013904223u;
            const uint32_t v = (r >> 24) % 40;
            x[i] = v == 0 ? NAN : v == 1 ? -INFINITY : v == 2 ? -0.0f : (float)(v % 5);
        }
        float *y3 = zeros(ny);
        mcnn_maxpool2d_forward(y1, a1, x, &s);
        mcnn_maxpool2d_forward(y3, NULL, x, &s); /* values only */
        maxpool_plain(y2, a2, x, &s);
        int shown = 0;
        for (size_t i = 0; i < ny; i++) {
            const int same = a1[i] == a2[i] && same_bits(y1[i], y2[i]) &&
                             same_bits(y3[i], y2[i]);
            if (!same && shown++ < 3)
                TEST_ASSERT(0, "case %zu output %zu: got %g at %d (values only %g), plain %g "
                            "at %d", k, i, (double)y1[i], a1[i], (double)y3[i], (double)y2[i],
                            a2[i]);
        }
        free(x), free(y1), free(y2), free(y3), free(a1), free(a2);
    }
}

int main(void)
{
    TEST_RUN(test_pool_golden);
    TEST_RUN(test_relu_golden);
    TEST_RUN(test_pool_out_size);
    TEST_RUN(test_pool_finite_differences);
    TEST_RUN(test_pool_accumulates);
    TEST_RUN(test_pool_threads);
    TEST_RUN(test_maxpool_plain_twin);
    return test_summary();
}
