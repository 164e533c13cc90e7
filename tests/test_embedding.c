/* Token embedding (repeated ids), positional add, class token and patchify: PyTorch goldens
 * (patchify judged by a real stride = kernel conv in torch), finite differences, accumulation,
 * NULL gradients and thread-count independence. */
#include "ops_check.h"

/* ---- PyTorch goldens ---------------------------------------------------------------------- */
static void test_embedding_golden(void)
{
    if (!ops_golden_open()) return;
    int d[3];
    if (!ops_dims("emb", d, 3)) return;
    const int V = d[0], C = d[1], N = d[2];
    size_t nids = 0;
    int32_t *ids = test_golden_i32(ops_golden, "emb.ids", &nids);
    ops_track(ids);
    float *table = ops_get("emb", "table", (size_t)V * C), *dy = ops_get("emb", "dy", (size_t)N * C);
    float *y_want = ops_get("emb", "y", (size_t)N * C);
    float *dt_want = ops_get("emb", "dtable", (size_t)V * C);
    if (test_current_failed || (int)nids != N) return;
    float *y = ops_zeros((size_t)N * C), *dt0 = ops_random((size_t)V * C, 3, 1);
    float *dt = ops_copy(dt0, (size_t)V * C);
    mcnn_embedding_forward(y, ids, table, N, C);
    mcnn_embedding_backward(dt, dy, ids, N, C);
    ops_close("emb y", y, y_want, (size_t)N * C);
    ops_check_accumulated("emb dtable", dt, dt0, dt_want, (size_t)V * C);
    ops_free_all();
}

static void test_positional_golden(void)
{
    if (!ops_golden_open()) return;
    int d[3];
    if (!ops_dims("pos", d, 3)) return;
    const int B = d[0], T = d[1], C = d[2];
    const size_t n = (size_t)B * T * C;
    float *x = ops_get("pos", "x", n), *pos = ops_get("pos", "pos", (size_t)T * C);
    float *dy = ops_get("pos", "dy", n), *y_want = ops_get("pos", "y", n);
    float *dx_want = ops_get("pos", "dx", n), *dpos_want = ops_get("pos", "dpos", (size_t)T * C);
    if (test_current_failed) return;
    float *y = ops_zeros(n), *dx0 = ops_random(n, 1, 1), *dpos0 = ops_random((size_t)T * C, 2, 1);
    float *dx = ops_copy(dx0, n), *dpos = ops_copy(dpos0, (size_t)T * C);
    mcnn_add_positional_forward(y, x, pos, B, T, C);
    mcnn_add_positional_backward(dx, dpos, dy, B, T, C);
    ops_close("pos y", y, y_want, n);
    ops_check_accumulated("pos dx", dx, dx0, dx_want, n);
    ops_check_accumulated("pos dpos", dpos, dpos0, dpos_want, (size_t)T * C);
    ops_free_all();
}

static void test_class_token_golden(void)
{
    if (!ops_golden_open()) return;
    int d[3];
    if (!ops_dims("cls", d, 3)) return;
    const int B = d[0], P = d[1], C = d[2];
    const size_t nx = (size_t)B * P * C, ny = (size_t)B * (P + 1) * C;
    float *x = ops_get("cls", "x", nx), *cls = ops_get("cls", "cls", C);
    float *dy = ops_get("cls", "dy", ny), *y_want = ops_get("cls", "y", ny);
    float *dx_want = ops_get("cls", "dx", nx), *dcls_want = ops_get("cls", "dcls", C);
    if (test_current_failed) return;
    float *y = ops_zeros(ny), *dx0 = ops_random(nx, 1, 1), *dcls0 = ops_random(C, 2, 1);
    float *dx = ops_copy(dx0, nx), *dcls = ops_copy(dcls0, C);
    mcnn_class_token_forward(y, x, cls, B, P, C);
    mcnn_class_token_backward(dx, dcls, dy, B, P, C);
    ops_close("cls y", y, y_want, ny);
    ops_check_accumulated("cls dx", dx, dx0, dx_want, nx);
    ops_check_accumulated("cls dcls", dcls, dcls0, dcls_want, C);
    ops_free_all();
}

/* patchify + a matrix product with the conv weight seen as (OC, IC·PS·PS) must equal PyTorch's
 * conv2d(img, w, b, stride=PS) as tokens, and the backward must give the conv's dimg and dw.
 * The products use mcnn_gemm_ref, the plain double-accumulating loop, so only patchify's
 * layout is under test here. */
static void test_patchify_vs_conv(void)
{
    if (!ops_golden_open()) return;
    for (int k = 0; k < 3; k++) {
        char kase[16], what[64];
        int d[6];
        snprintf(kase, sizeof kase, "patch%d", k);
        if (!ops_dims(kase, d, 6)) continue;
        const int B = d[0], IC = d[1], H = d[2], W = d[3], PS = d[4], OC = d[5];
        const int P = (H / PS) * (W / PS), K = IC * PS * PS;
        const size_t nimg = (size_t)B * IC * H * W, ntok = (size_t)B * P * OC;
        float *img = ops_get(kase, "img", nimg), *w = ops_get(kase, "w", (size_t)OC * K);
        float *b = ops_get(kase, "b", OC), *dy = ops_get(kase, "dy", ntok);
        float *tok_want = ops_get(kase, "tokens", ntok), *dimg_want = ops_get(kase, "dimg", nimg);
        float *dw_want = ops_get(kase, "dw", (size_t)OC * K);
        if (test_current_failed) return;

        float *patches = ops_zeros((size_t)B * P * K), *tok = ops_zeros(ntok);
        mcnn_patchify_forward(patches, img, B, IC, H, W, PS);
        /* tokens (B·P, OC) = patches (B·P, K) · wᵀ (K, OC) + b */
        mcnn_gemm_ref(0, 1, B * P, OC, K, 1.0f, patches, K, w, K, 0.0f, tok, OC);
        for (int n = 0; n < B * P; n++)
            for (int o = 0; o < OC; o++) tok[(size_t)n * OC + o] += b[o];
        snprintf(what, sizeof what, "%s tokens", kase);
        ops_close(what, tok, tok_want, ntok);

        /* dpatches = dy · w;  dw = dyᵀ · patches;  dimg from patchify's backward */
        float *dpatches = ops_zeros((size_t)B * P * K), *dw = ops_zeros((size_t)OC * K);
        mcnn_gemm_ref(0, 0, B * P, K, OC, 1.0f, dy, OC, w, K, 0.0f, dpatches, K);
        mcnn_gemm_ref(1, 0, OC, K, B * P, 1.0f, dy, OC, patches, K, 0.0f, dw, K);
        float *dimg0 = ops_random(nimg, 4, 1), *dimg = ops_copy(dimg0, nimg);
        mcnn_patchify_backward(dimg, dpatches, B, IC, H, W, PS);
        snprintf(what, sizeof what, "%s dw", kase);
        ops_close(what, dw, dw_want, (size_t)OC * K);
        snprintf(what, sizeof what, "%s dimg", kase);
        ops_check_accumulated(what, dimg, dimg0, dimg_want, nimg);
        ops_free_all();
    }
}

/* ---- finite differences: y is linear in every input here, so the stencil is exact up to
 * round-off; what this catches is a gradient sent to the wrong place. ------------------------ */
typedef struct emb_ctx {
    int op; /* 0 embedding, 1 positional, 2 class token, 3 patchify */
    int B, T, C, V, IC, H, W, PS;
    const int32_t *ids;
    float *a, *b, *w, *y;
    size_t ny;
} emb_ctx;

static double emb_loss(void *p)
{
    emb_ctx *c = p;
    switch (c->op) {
    case 0: mcnn_embedding_forward(c->y, c->ids, c->a, c->B * c->T, c->C); break;
    case 1: mcnn_add_positional_forward(c->y, c->a, c->b, c->B, c->T, c->C); break;
    case 2: mcnn_class_token_forward(c->y, c->a, c->b, c->B, c->T, c->C); break;
    default: mcnn_patchify_forward(c->y, c->a, c->B, c->IC, c->H, c->W, c->PS); break;
    }
    return ops_dot(c->y, c->w, c->ny);
}

static void test_embedding_finite_differences(void)
{
    enum { B = 2, T = 4, C = 5, V = 6 };
    const int32_t ids[B * T] = {1, 4, 1, 0, 5, 1, 4, 1}; /* repeats: their grads must add */
    /* embedding */
    emb_ctx c = {.op = 0, .B = B, .T = T, .C = C, .ids = ids, .a = ops_random(V * C, 1, 1),
                 .w = ops_random(B * T * C, 2, 1), .y = ops_zeros(B * T * C), .ny = B * T * C};
    float *dt = ops_zeros(V * C);
    mcnn_embedding_backward(dt, c.w, ids, B * T, C);
    ops_fd_check("dtable", c.a, dt, V * C, emb_loss, &c, 1e-2f, 1e-3, 1e-4);
    /* positional */
    c = (emb_ctx){.op = 1, .B = B, .T = T, .C = C, .a = ops_random(B * T * C, 3, 1),
                  .b = ops_random(T * C, 4, 1), .w = c.w, .y = c.y, .ny = B * T * C};
    float *dx = ops_zeros(B * T * C), *dpos = ops_zeros(T * C);
    mcnn_add_positional_backward(dx, dpos, c.w, B, T, C);
    ops_fd_check("pos dx", c.a, dx, B * T * C, emb_loss, &c, 1e-2f, 1e-3, 1e-4);
    ops_fd_check("dpos", c.b, dpos, T * C, emb_loss, &c, 1e-2f, 1e-3, 1e-4);
    /* class token: x (B, T, C) -> y (B, 1+T, C) */
    c = (emb_ctx){.op = 2, .B = B, .T = T, .C = C, .a = ops_random(B * T * C, 5, 1),
                  .b = ops_random(C, 6, 1), .w = ops_random(B * (T + 1) * C, 7, 1),
                  .y = ops_zeros(B * (T + 1) * C), .ny = B * (T + 1) * C};
    float *dxc = ops_zeros(B * T * C), *dcls = ops_zeros(C);
    mcnn_class_token_backward(dxc, dcls, c.w, B, T, C);
    ops_fd_check("cls dx", c.a, dxc, B * T * C, emb_loss, &c, 1e-2f, 1e-3, 1e-4);
    ops_fd_check("dcls", c.b, dcls, C, emb_loss, &c, 1e-2f, 1e-3, 1e-4);
    /* patchify: B=2, IC=2, 7x5 image, PS=2 -> 3x2 grid, leftovers get no gradient */
    const int IC = 2, H = 7, W = 5, PS = 2, P = (H / PS) * (W / PS), K = IC * PS * PS;
    c = (emb_ctx){.op = 3, .B = B, .IC = IC, .H = H, .W = W, .PS = PS,
                  .a = ops_random(B * IC * H * W, 8, 1), .w = ops_random(B * P * K, 9, 1),
                  .y = ops_zeros(B * P * K), .ny = (size_t)B * P * K};
    float *dimg = ops_zeros(B * IC * H * W);
    mcnn_patchify_backward(dimg, c.w, B, IC, H, W, PS);
    ops_fd_check("dimg", c.a, dimg, B * IC * H * W, emb_loss, &c, 1e-2f, 1e-3, 1e-4);
    ops_free_all();
}

/* ---- accumulation and NULL gradients ---------------------------------------------------------- */
static void test_embedding_accumulate_and_null(void)
{
    enum { B = 2, T = 3, C = 4 };
    float *dy = ops_random(B * (T + 1) * C, 1, 1);
    const int32_t ids[B * T] = {0, 2, 0, 1, 2, 2};
    float *d1 = ops_zeros(3 * C), *d2 = ops_zeros(3 * C);
    mcnn_embedding_backward(d1, dy, ids, B * T, C);
    mcnn_embedding_backward(d2, dy, ids, B * T, C);
    mcnn_embedding_backward(d2, dy, ids, B * T, C);
    mcnn_embedding_backward(NULL, dy, ids, B * T, C);
    for (int i = 0; i < 3 * C; i++) TEST_CLOSE("dtable twice", d2[i], 2.0 * d1[i], 1e-6, 1e-7);

    float *dx1 = ops_zeros(B * T * C), *dp1 = ops_zeros(T * C);
    float *dx = ops_zeros(B * T * C), *dp = ops_zeros(T * C);
    mcnn_add_positional_backward(dx1, dp1, dy, B, T, C);
    mcnn_add_positional_backward(dx, NULL, dy, B, T, C);
    mcnn_add_positional_backward(NULL, dp, dy, B, T, C);
    ops_check_same("positional dx alone", dx1, dx, B * T * C);
    ops_check_same("dpos alone", dp1, dp, T * C);

    float *cx1 = ops_zeros(B * T * C), *cc1 = ops_zeros(C), *cx = ops_zeros(B * T * C);
    float *cc = ops_zeros(C);
    mcnn_class_token_backward(cx1, cc1, dy, B, T, C);
    mcnn_class_token_backward(cx, NULL, dy, B, T, C);
    mcnn_class_token_backward(NULL, cc, dy, B, T, C);
    ops_check_same("class-token dx alone", cx1, cx, B * T * C);
    ops_check_same("dcls alone", cc1, cc, C);
    mcnn_patchify_backward(NULL, dy, 1, 1, 4, 4, 2);
    ops_free_all();
}

/* ---- thread-count independence, with many repeated ids -------------------------------------- */
static void test_embedding_threads(void)
{
    enum { B = 4, T = 77, C = 96, V = 50, IC = 3, H = 64, W = 64, PS = 16 };
    const int saved = mcnn_get_threads();
    int32_t ids[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (i * 7 + i / 5) % V;
    float *table = ops_random(V * C, 1, 1), *dy = ops_random(B * (T + 1) * C, 2, 1);
    float *pos = ops_random(T * C, 3, 1), *img = ops_random(B * IC * H * W, 4, 1);
    float *dpatch = ops_random(B * IC * H * W, 5, 1);
    float *r[2][7];
    for (int t = 0; t < 2; t++) {
        mcnn_set_threads(t ? 3 : 1);
        float *y = ops_zeros(B * T * C), *dt = ops_zeros(V * C), *py = ops_zeros(B * T * C);
        float *dpos = ops_zeros(T * C), *dcls = ops_zeros(C), *patches = ops_zeros(B * IC * H * W);
        float *dimg = ops_zeros(B * IC * H * W);
        mcnn_embedding_forward(y, ids, table, B * T, C);
        mcnn_embedding_backward(dt, dy, ids, B * T, C);
        mcnn_add_positional_forward(py, y, pos, B, T, C);
        mcnn_add_positional_backward(NULL, dpos, dy, B, T, C);
        mcnn_class_token_backward(NULL, dcls, dy, B, T, C);
        mcnn_patchify_forward(patches, img, B, IC, H, W, PS);
        mcnn_patchify_backward(dimg, dpatch, B, IC, H, W, PS);
        float *o[7] = {y, dt, py, dpos, dcls, patches, dimg};
        memcpy(r[t], o, sizeof o);
    }
    mcnn_set_threads(saved);
    const char *names[7] = {"embedding", "dtable", "positional", "dpos", "dcls", "patches", "dimg"};
    const size_t sizes[7] = {B * T * C, V * C, B * T * C, T * C, C, B * IC * H * W,
                             B * IC * H * W};
    for (int i = 0; i < 7; i++) ops_check_same(names[i], r[0][i], r[1][i], sizes[i]);
    ops_free_all();
}

int main(void)
{
    TEST_RUN(test_embedding_golden);
    TEST_RUN(test_positional_golden);
    TEST_RUN(test_class_token_golden);
    TEST_RUN(test_patchify_vs_conv);
    TEST_RUN(test_embedding_finite_differences);
    TEST_RUN(test_embedding_accumulate_and_null);
    TEST_RUN(test_embedding_threads);
    ops_golden_close();
    return test_summary();
}
