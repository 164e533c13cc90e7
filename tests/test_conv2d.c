/* mcnn_conv2d_forward / _backward against PyTorch goldens (F.conv2d and autograd, 14 cases:
 * 1×1 without im2col and with it (strides 2 and 2×1), 3×3, 3×3 stride 2, 7×7 stride 2,
 * dilation, groups, depthwise, non-square kernels/strides/inputs, odd channel counts, maps
 * small enough to be batched several images per GEMM and large enough to go one by one;
 * tests/ref/gen_ops_cnn.py), central finite differences, the accumulation contract, and the
 * same bits with 1 and 2 threads. */
#include "ops_cnn_util.h"
#include "ops/conv2d_lanes.h"

static size_t x_size(const mcnn_conv2d_shape *s) { return (size_t)s->N * s->IC * s->H * s->W; }
static size_t w_size(const mcnn_conv2d_shape *s)
{
    return (size_t)s->OC * (s->IC / s->groups) * s->KH * s->KW;
}
static size_t y_size(const mcnn_conv2d_shape *s)
{
    return (size_t)s->N * s->OC * mcnn_conv2d_out_h(s) * mcnn_conv2d_out_w(s);
}

static void conv_golden_case(mcnn_safetensors *st, const char *cs)
{
    int32_t *c = golden_i32(st, cs, "cfg");
    if (!c) return;
    const mcnn_conv2d_shape s = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
                                 c[8], c[9], c[10], c[11], c[12], c[13]};
    const int has_bias = c[14];
    float *x = golden(st, cs, "x"), *w = golden(st, cs, "w"), *dy = golden(st, cs, "dy");
    float *b = has_bias ? golden(st, cs, "b") : NULL;
    float *y = zeros(y_size(&s)), *dx = zeros(x_size(&s)), *dw = zeros(w_size(&s));
    float *db = zeros(s.OC), *ws = zeros(mcnn_conv2d_workspace_floats(&s));
    if (x && w && dy && (b || !has_bias)) {
        mcnn_conv2d_forward(y, x, w, b, &s, ws);
        mcnn_conv2d_backward(dx, dw, has_bias ? db : NULL, dy, x, w, &s, ws);
        golden_check(st, cs, "y", y, y_size(&s), 1e-4);
        golden_check(st, cs, "dx", dx, x_size(&s), 1e-4);
        golden_check(st, cs, "dw", dw, w_size(&s), 1e-4);
        if (has_bias) golden_check(st, cs, "db", db, s.OC, 1e-4);
    }
    free(c), free(x), free(w), free(dy), free(b), free(y), free(dx), free(dw), free(db), free(ws);
}

static void test_conv2d_golden(void)
{
    mcnn_safetensors *st = golden_open();
    if (!st) return;
    const char *cases[] = {"conv_1x1",       "conv_1x1_s2",       "conv_1x1_g2",
                           "conv_1x1_s2x1",  "conv_3x3_p1",       "conv_3x3_s2",
                           "conv_7x7_s2_p3", "conv_dil2",         "conv_groups2",
                           "conv_depthwise", "conv_depthwise_x2", "conv_asym",
                           "conv_3x3_big",   "conv_1x1_big"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) conv_golden_case(st, cases[i]);
    mcnn_safetensors_close(st);
}

/* The output size formula on the shapes ResNet-50 uses (values from torchvision's summary). */
static void test_conv2d_out_size(void)
{
    mcnn_conv2d_shape stem = {1, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3, 1, 1, 1};
    mcnn_conv2d_shape down = {1, 256, 56, 56, 512, 1, 1, 2, 2, 0, 0, 1, 1, 1};
    mcnn_conv2d_shape c3 = {1, 128, 56, 56, 128, 3, 3, 2, 2, 1, 1, 1, 1, 1};
    TEST_ASSERT(mcnn_conv2d_out_h(&stem) == 112 && mcnn_conv2d_out_w(&stem) == 112, "stem");
    TEST_ASSERT(mcnn_conv2d_out_h(&down) == 28 && mcnn_conv2d_out_w(&down) == 28, "downsample");
    TEST_ASSERT(mcnn_conv2d_out_h(&c3) == 28, "3x3 stride 2");
    TEST_ASSERT(mcnn_conv2d_workspace_floats(&stem) == (size_t)3 * 49 * 112 * 112, "stem ws");
    mcnn_conv2d_shape pw = {4, 64, 56, 56, 256, 1, 1, 1, 1, 0, 0, 1, 1, 1};
    TEST_ASSERT(mcnn_conv2d_workspace_floats(&pw) == 0, "1x1 stride 1 needs no workspace");
}

/* ---- finite differences ---------------------------------------------------------------- */
typedef struct {
    const mcnn_conv2d_shape *s;
    float *x, *w, *b, *wl, *ws, *y;
} conv_ctx;

static double conv_loss(void *p)
{
    conv_ctx *c = p;
    mcnn_conv2d_forward(c->y, c->x, c->w, c->b, c->s, c->ws);
    return dot(c->y, c->wl, y_size(c->s));
}

static void conv_fd_case(const char *name, const mcnn_conv2d_shape *s, unsigned seed)
{
    const size_t nx = x_size(s), nw = w_size(s), ny = y_size(s);
    float *x = random_floats(nx, seed), *w = random_floats(nw, seed + 1);
    float *b = random_floats(s->OC, seed + 2), *wl = random_floats(ny, seed + 3);
    float *dx = zeros(nx), *dw = zeros(nw), *db = zeros(s->OC), *y = zeros(ny);
    float *ws = zeros(mcnn_conv2d_workspace_floats(s));
    conv_ctx c = {s, x, w, b, wl, ws, y};
    mcnn_conv2d_backward(dx, dw, db, wl, x, w, s, ws);
    char what[64];
    /* linear in each of x, w, b: the central difference is exact, so a large step */
    snprintf(what, sizeof what, "%s dx", name);
    fd_check(what, x, dx, nx, conv_loss, &c, 0.5f, 2, 1e-4, 1e-5);
    snprintf(what, sizeof what, "%s dw", name);
    fd_check(what, w, dw, nw, conv_loss, &c, 0.5f, 2, 1e-4, 1e-5);
    snprintf(what, sizeof what, "%s db", name);
    fd_check(what, b, db, s->OC, conv_loss, &c, 0.5f, 2, 1e-4, 1e-5);
    free(x), free(w), free(b), free(wl), free(dx), free(dw), free(db), free(y), free(ws);
}

static void test_conv2d_finite_differences(void)
{
    /*                      N IC H W OC KH KW sh sw ph pw dh dw groups */
    mcnn_conv2d_shape a = {2, 3, 5, 4, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1};
    mcnn_conv2d_shape b = {1, 4, 5, 6, 4, 2, 3, 1, 2, 1, 1, 2, 1, 2};
    mcnn_conv2d_shape c = {2, 4, 3, 2, 6, 1, 1, 1, 1, 0, 0, 1, 1, 2}; /* no im2col */
    mcnn_conv2d_shape d = {2, 1, 16, 17, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1}; /* one image per GEMM */
    mcnn_conv2d_shape e = {3, 2, 16, 16, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1}; /* ... and no im2col */
    conv_fd_case("3x3 s2 p1", &a, 21);
    conv_fd_case("2x3 dilated grouped", &b, 31);
    conv_fd_case("1x1 grouped", &c, 41);
    conv_fd_case("3x3 16x17", &d, 91);
    conv_fd_case("1x1 16x16", &e, 101);
}

/* ---- accumulation and NULL ---------------------------------------------------------------- */
static void conv_accumulate_case(const mcnn_conv2d_shape *s, unsigned seed)
{
    const size_t nx = x_size(s), nw = w_size(s), ny = y_size(s);
    float *x = random_floats(nx, seed), *w = random_floats(nw, seed + 1);
    float *dy = random_floats(ny, seed + 2), *ws = zeros(mcnn_conv2d_workspace_floats(s));
    float *g0x = random_floats(nx, seed + 3), *g0w = random_floats(nw, seed + 4);
    float *g0b = random_floats(s->OC, seed + 5);
    float *d_dx = zeros(nx), *d_dw = zeros(nw), *d_db = zeros(s->OC);
    float *dx = malloc(nx * 4), *dw = malloc(nw * 4), *db = malloc(s->OC * 4);
    mcnn_conv2d_backward(d_dx, d_dw, d_db, dy, x, w, s, ws);
    memcpy(dx, g0x, nx * 4), memcpy(dw, g0w, nw * 4), memcpy(db, g0b, s->OC * 4);
    mcnn_conv2d_backward(dx, dw, db, dy, x, w, s, ws);
    mcnn_conv2d_backward(dx, dw, db, dy, x, w, s, ws);
    check_accumulated("dx", dx, g0x, d_dx, nx);
    check_accumulated("dw", dw, g0w, d_dw, nw);
    check_accumulated("db", db, g0b, d_db, s->OC);

    float *only = zeros(nx > nw ? nx : nw);
    mcnn_conv2d_backward(NULL, only, NULL, dy, x, w, s, ws);
    TEST_ASSERT(memcmp(only, d_dw, nw * 4) == 0, "dw alone differs");
    memset(only, 0, nx * 4);
    mcnn_conv2d_backward(only, NULL, NULL, dy, x, w, s, ws);
    TEST_ASSERT(memcmp(only, d_dx, nx * 4) == 0, "dx alone differs");
    memset(only, 0, s->OC * 4);
    mcnn_conv2d_backward(NULL, NULL, only, dy, x, w, s, ws);
    TEST_ASSERT(memcmp(only, d_db, s->OC * 4) == 0, "db alone differs");
    mcnn_conv2d_backward(NULL, NULL, NULL, dy, x, w, s, ws);
    free(x), free(w), free(dy), free(ws), free(g0x), free(g0w), free(g0b), free(d_dx);
    free(d_dw), free(d_db), free(dx), free(dw), free(db), free(only);
}

static void test_conv2d_accumulates(void)
{
    mcnn_conv2d_shape a = {2, 3, 6, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    mcnn_conv2d_shape pw = {2, 4, 3, 5, 6, 1, 1, 1, 1, 0, 0, 1, 1, 1};
    mcnn_conv2d_shape big = {2, 2, 16, 16, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    mcnn_conv2d_shape bigpw = {2, 2, 16, 16, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1};
    conv_accumulate_case(&a, 51);
    conv_accumulate_case(&pw, 61);
    conv_accumulate_case(&big, 111);
    conv_accumulate_case(&bigpw, 121);
}

/* ---- thread-count independence ------------------------------------------------------------ */
static void conv_threads_case(const char *name, const mcnn_conv2d_shape *s, unsigned seed)
{
    const size_t nx = x_size(s), nw = w_size(s), ny = y_size(s);
    float *x = random_floats(nx, seed), *w = random_floats(nw, seed + 1);
    float *b = random_floats(s->OC, seed + 2), *dy = random_floats(ny, seed + 3);
    float *ws = zeros(mcnn_conv2d_workspace_floats(s));
    float *res[2][4];
    const int saved = mcnn_get_threads();
    for (int t = 0; t < 2; t++) {
        mcnn_set_threads(t + 1);
        float *y = zeros(ny), *dx = zeros(nx), *dw = zeros(nw), *db = zeros(s->OC);
        mcnn_conv2d_forward(y, x, w, b, s, ws);
        mcnn_conv2d_backward(dx, dw, db, dy, x, w, s, ws);
        res[t][0] = y, res[t][1] = dx, res[t][2] = dw, res[t][3] = db;
    }
    mcnn_set_threads(saved);
    char what[64];
    const size_t n[4] = {ny, nx, nw, (size_t)s->OC};
    const char *names[4] = {"y", "dx", "dw", "db"};
    for (int k = 0; k < 4; k++) {
        snprintf(what, sizeof what, "%s %s", name, names[k]);
        check_same_bits(what, res[0][k], res[1][k], n[k]);
        free(res[0][k]), free(res[1][k]);
    }
    free(x), free(w), free(b), free(dy), free(ws);
}

static void test_conv2d_threads(void)
{
    /* big enough that im2col, col2im and the bias sums take their parallel paths */
    mcnn_conv2d_shape a = {3, 16, 24, 24, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    mcnn_conv2d_shape pw = {3, 32, 24, 24, 64, 1, 1, 1, 1, 0, 0, 1, 1, 1};
    /* 7×7 maps: 6 images per GEMM, then 2 */
    mcnn_conv2d_shape small = {8, 32, 7, 7, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    conv_threads_case("3x3", &a, 71);
    conv_threads_case("1x1", &pw, 81);
    conv_threads_case("3x3 7x7 batched", &small, 131);
}

/* ---- the batch split across threads (lib/ops/conv2d_lanes.h) --------------------------------
 * Against its plain twin, the ops above: the same bits for y, dx, dw and db (both accumulating
 * onto the same random values), with one lane per thread (2 here: more lanes than threads run
 * as that many), even and uneven splits of the images (3, 5, 7) and of dw's columns (144, 147,
 * 288), pointwise, strided and padded kernels, small maps whose images are batched into one
 * GEMM, and large ones a lane convolves a block of output rows at a time. */
static void conv_lanes_case(const char *name, const mcnn_conv2d_shape *s, unsigned seed)
{
    const size_t nx = x_size(s), nw = w_size(s), ny = y_size(s);
    float *x = random_floats(nx, seed), *w = random_floats(nw, seed + 1);
    float *b = random_floats(s->OC, seed + 2), *dy = random_floats(ny, seed + 3);
    float *dx0 = random_floats(nx, seed + 4), *dw0 = random_floats(nw, seed + 5);
    const int lanes = mcnn_get_threads() > 1 ? mcnn_get_threads() : 2;
    {
        float *res[2][4];
        for (int k = 0; k < 2; k++) {
            float *y = zeros(ny), *dx = zeros(nx), *dw = zeros(nw), *db = zeros(s->OC);
            memcpy(dx, dx0, nx * sizeof(float));
            memcpy(dw, dw0, nw * sizeof(float));
            float *ws = zeros(mcnn_conv2d_lanes_workspace_floats(s, lanes));
            if (k == 0) {
                mcnn_conv2d_forward(y, x, w, b, s, ws);
                mcnn_conv2d_backward(dx, dw, db, dy, x, w, s, ws);
            } else {
                mcnn_conv2d_forward_lanes(y, x, w, b, s, ws, lanes);
                mcnn_conv2d_backward_lanes(dx, dw, db, dy, x, w, s, ws, lanes);
            }
            res[k][0] = y, res[k][1] = dx, res[k][2] = dw, res[k][3] = db;
            free(ws);
        }
        char what[64];
        const size_t n[4] = {ny, nx, nw, (size_t)s->OC};
        const char *names[4] = {"y", "dx", "dw", "db"};
        for (int k = 0; k < 4; k++) {
            snprintf(what, sizeof what, "%s, %d lanes: %s", name, lanes, names[k]);
            check_same_bits(what, res[1][k], res[0][k], n[k]);
            free(res[0][k]), free(res[1][k]);
        }
    }
    free(x), free(w), free(b), free(dy), free(dx0), free(dw0);
}

static void test_conv2d_lanes(void)
{
    /* N IC H W OC KH KW sh sw ph pw dh dw groups */
    mcnn_conv2d_shape a = {3, 16, 24, 24, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    mcnn_conv2d_shape pw = {4, 32, 20, 20, 24, 1, 1, 1, 1, 0, 0, 1, 1, 1};
    mcnn_conv2d_shape down = {5, 16, 20, 20, 32, 1, 1, 2, 2, 0, 0, 1, 1, 1};
    mcnn_conv2d_shape stem = {3, 3, 30, 30, 8, 7, 7, 2, 2, 3, 3, 1, 1, 1};
    mcnn_conv2d_shape small = {8, 32, 7, 7, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1};  /* 6 per GEMM */
    mcnn_conv2d_shape smallpw = {7, 40, 7, 7, 24, 1, 1, 1, 1, 0, 0, 1, 1, 1};
    conv_lanes_case("3x3", &a, 141);
    conv_lanes_case("1x1", &pw, 151);
    conv_lanes_case("1x1 stride 2", &down, 161);
    conv_lanes_case("7x7 stride 2", &stem, 171);
    conv_lanes_case("3x3 7x7 batched", &small, 181);
    conv_lanes_case("1x1 7x7 batched", &smallpw, 191);
    /* Large enough that a lane builds its columns a block of output rows at a time (conv2d.c's
     * conv_row_block): blocks of 7 rows of 32 (the last of 4), of 13 rows with stride 2 and
     * padding crossing block edges, of 5 rows with dilation 2. */
    mcnn_conv2d_shape rows = {3, 64, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    mcnn_conv2d_shape rows_s2 = {2, 32, 66, 66, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1};
    mcnn_conv2d_shape rows_dil = {2, 64, 40, 40, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1};
    conv_lanes_case("3x3 row blocks", &rows, 201);
    conv_lanes_case("3x3 stride 2 row blocks", &rows_s2, 211);
    conv_lanes_case("3x3 dilation 2 row blocks", &rows_dil, 221);
}

int main(void)
{
    TEST_RUN(test_conv2d_golden);
    TEST_RUN(test_conv2d_out_size);
    TEST_RUN(test_conv2d_finite_differences);
    TEST_RUN(test_conv2d_accumulates);
    TEST_RUN(test_conv2d_threads);
    TEST_RUN(test_conv2d_lanes);
    return test_summary();
}
