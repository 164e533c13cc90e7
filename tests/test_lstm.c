/* The LSTM op.  Judges: torch.nn.LSTM (2 layers, batch_first, lengths through
 * pack_padded_sequence) forward and every gradient (tests/ref/gen_lstm.py, float64), and central
 * finite differences of the forward for every input and parameter of a small layer. */
#include "mcnn_test.h"

#define GOLDEN "tests/data/lstm.safetensors"

/* A layer's inputs, outputs and saved activations, sized for (B, T, I, H). */
typedef struct layer {
    int B, T, I, H;
    float *w_ih, *w_hh, *b_ih, *b_hh;
    float *y, *h_n, *c_n, *gates, *cells;
} layer;

static void layer_alloc(layer *l, int B, int T, int I, int H)
{
    *l = (layer){.B = B, .T = T, .I = I, .H = H};
    l->y = calloc((size_t)B * T * H, sizeof(float));
    l->cells = calloc((size_t)B * T * H, sizeof(float));
    l->gates = calloc((size_t)B * T * 4 * H, sizeof(float));
    l->h_n = calloc((size_t)B * H, sizeof(float));
    l->c_n = calloc((size_t)B * H, sizeof(float));
}

static void layer_free(layer *l)
{
    free(l->y), free(l->cells), free(l->gates), free(l->h_n), free(l->c_n);
}

static void layer_forward(layer *l, const float *x, const float *h0, const float *c0,
                          const int32_t *lengths)
{
    mcnn_lstm_forward(l->y, l->h_n, l->c_n, l->gates, l->cells, x, h0, c0, lengths, l->w_ih,
                      l->w_hh, l->b_ih, l->b_hh, l->B, l->T, l->I, l->H);
}

/* ---- PyTorch goldens ----------------------------------------------------------------------- */
static void test_two_layers_against_torch(void)
{
    mcnn_safetensors *st = NULL;
    TEST_OK(mcnn_safetensors_open(&st, GOLDEN));
    if (!st) return;
    const mcnn_st_tensor *tx = mcnn_safetensors_find(st, "x"), *th = mcnn_safetensors_find(st, "h0");
    TEST_ASSERT(tx && th && tx->ndim == 3, "golden x, h0");
    if (!tx || !th) return mcnn_safetensors_close(st);
    const int B = (int)tx->shape[0], T = (int)tx->shape[1], I = (int)tx->shape[2];
    const int H = (int)th->shape[2];
    float *x = test_golden(st, "x", NULL), *h0 = test_golden(st, "h0", NULL);
    float *c0 = test_golden(st, "c0", NULL), *ry = test_golden(st, "ry", NULL);
    float *rh = test_golden(st, "rh", NULL), *rc = test_golden(st, "rc", NULL);
    int32_t *lengths = test_golden_i32(st, "lengths", NULL);
    layer l[2];
    char key[32];
    for (int k = 0; k < 2; k++) {
        layer_alloc(&l[k], B, T, k ? H : I, H);
        snprintf(key, sizeof key, "l%d_w_ih", k), l[k].w_ih = test_golden(st, key, NULL);
        snprintf(key, sizeof key, "l%d_w_hh", k), l[k].w_hh = test_golden(st, key, NULL);
        snprintf(key, sizeof key, "l%d_b_ih", k), l[k].b_ih = test_golden(st, key, NULL);
        snprintf(key, sizeof key, "l%d_b_hh", k), l[k].b_hh = test_golden(st, key, NULL);
    }
    const size_t BH = (size_t)B * H;
    layer_forward(&l[0], x, h0, c0, lengths);
    layer_forward(&l[1], l[0].y, h0 + BH, c0 + BH, lengths);

    float *want = test_golden(st, "y", NULL);
    test_close_rel("y", l[1].y, want, (size_t)B * T * H, 1e-5);
    free(want);
    float hn[2 * B * H], cn[2 * B * H];
    memcpy(hn, l[0].h_n, sizeof(float) * BH), memcpy(hn + BH, l[1].h_n, sizeof(float) * BH);
    memcpy(cn, l[0].c_n, sizeof(float) * BH), memcpy(cn + BH, l[1].c_n, sizeof(float) * BH);
    want = test_golden(st, "h_n", NULL), test_close_rel("h_n", hn, want, 2 * BH, 1e-5), free(want);
    want = test_golden(st, "c_n", NULL), test_close_rel("c_n", cn, want, 2 * BH, 1e-5), free(want);

    /* the loss sum(y·ry) + sum(h_n·rh) + sum(c_n·rc), backward from the top layer down */
    float *dx = calloc((size_t)B * T * I, sizeof(float)), *dy0 = calloc((size_t)B * T * H, sizeof(float));
    float dh0[2 * B * H], dc0[2 * B * H];
    memset(dh0, 0, sizeof dh0), memset(dc0, 0, sizeof dc0);
    float *dw[2][4];
    float *scratch = malloc(sizeof(float) * mcnn_lstm_backward_scratch(B, T, H));
    for (int k = 1; k >= 0; k--) {
        const int in = k ? H : I;
        dw[k][0] = calloc((size_t)4 * H * in, sizeof(float));
        dw[k][1] = calloc((size_t)4 * H * H, sizeof(float));
        dw[k][2] = calloc((size_t)4 * H, sizeof(float));
        dw[k][3] = calloc((size_t)4 * H, sizeof(float));
        mcnn_lstm_backward(k ? dy0 : dx, dh0 + k * BH, dc0 + k * BH, dw[k][0], dw[k][1],
                           dw[k][2], dw[k][3], scratch, k ? ry : dy0, rh + k * BH, rc + k * BH,
                           k ? l[0].y : x, h0 + k * BH, c0 + k * BH, lengths, l[k].y,
                           l[k].gates, l[k].cells, l[k].w_ih, l[k].w_hh, B, T, in, H);
    }
    want = test_golden(st, "dx", NULL), test_close_rel("dx", dx, want, (size_t)B * T * I, 1e-4), free(want);
    want = test_golden(st, "dh0", NULL), test_close_rel("dh0", dh0, want, 2 * BH, 1e-4), free(want);
    want = test_golden(st, "dc0", NULL), test_close_rel("dc0", dc0, want, 2 * BH, 1e-4), free(want);
    static const char *names[4] = {"dw_ih", "dw_hh", "db_ih", "db_hh"};
    for (int k = 0; k < 2; k++)
        for (int p = 0; p < 4; p++) {
            size_t n = 0;
            snprintf(key, sizeof key, "l%d_%s", k, names[p]);
            want = test_golden(st, key, &n);
            if (want) test_close_rel(key, dw[k][p], want, n, 1e-4);
            free(want), free(dw[k][p]);
        }
    for (int k = 0; k < 2; k++) {
        free(l[k].w_ih), free(l[k].w_hh), free(l[k].b_ih), free(l[k].b_hh);
        layer_free(&l[k]);
    }
    free(x), free(h0), free(c0), free(ry), free(rh), free(rc), free(lengths), free(dx), free(dy0);
    free(scratch);
    mcnn_safetensors_close(st);
}

/* ---- finite differences -------------------------------------------------------------------- */
enum { B = 3, T = 4, I = 3, H = 2, G = 4 * H };
static const int32_t lens[B] = {4, 2, 0}; /* full, cut short, empty */
static float x[B * T * I], h0[B * H], c0[B * H], w_ih[G * I], w_hh[G * H], b_ih[G], b_hh[G];
static float ry[B * T * H], rh[B * H], rc[B * H];

static double fd_loss(void)
{
    layer l;
    layer_alloc(&l, B, T, I, H);
    l.w_ih = w_ih, l.w_hh = w_hh, l.b_ih = b_ih, l.b_hh = b_hh;
    layer_forward(&l, x, h0, c0, lens);
    double loss = 0.0;
    for (int k = 0; k < B * T * H; k++) loss += (double)l.y[k] * ry[k];
    for (int k = 0; k < B * H; k++) loss += (double)l.h_n[k] * rh[k] + (double)l.c_n[k] * rc[k];
    layer_free(&l);
    return loss;
}

static void check_fd(const char *what, float *v, const float *grad, int n, float start)
{
    const float h = 1e-2f;
    for (int i = 0; i < n; i++) {
        const float keep = v[i];
        v[i] = keep + h;
        const double up = fd_loss();
        v[i] = keep - h;
        const double dn = fd_loss();
        v[i] = keep;
        TEST_CLOSE(what, grad[i] - start, (up - dn) / (2 * h), 2e-3, 2e-4);
    }
}

static void test_finite_differences(void)
{
    float *all[] = {x, h0, c0, w_ih, w_hh, b_ih, b_hh, ry, rh, rc};
    const int sizes[] = {B * T * I, B * H, B * H, G * I, G * H, G, G, B * T * H, B * H, B * H};
    for (int k = 0; k < 10; k++) test_fill_random(all[k], sizes[k], 40 + k);
    for (int k = 0; k < G * I; k++) w_ih[k] *= 1.5f; /* gates away from the linear middle */

    layer l;
    layer_alloc(&l, B, T, I, H);
    l.w_ih = w_ih, l.w_hh = w_hh, l.b_ih = b_ih, l.b_hh = b_hh;
    layer_forward(&l, x, h0, c0, lens);
    const float start = 0.5f; /* the backward must add to what is there */
    float dx[B * T * I], dh0[B * H], dc0[B * H], dw_ih[G * I], dw_hh[G * H], db_ih[G], db_hh[G];
    float *grads[] = {dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh};
    for (int k = 0; k < 7; k++)
        for (int i = 0; i < sizes[k]; i++) grads[k][i] = start;
    float *scratch = malloc(sizeof(float) * mcnn_lstm_backward_scratch(B, T, H));
    mcnn_lstm_backward(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, scratch, ry, rh, rc, x, h0, c0,
                       lens, l.y, l.gates, l.cells, w_ih, w_hh, B, T, I, H);
    free(scratch);
    layer_free(&l);
    static const char *names[] = {"dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh"};
    for (int k = 0; k < 7; k++) check_fd(names[k], all[k], grads[k], sizes[k], start);
}

/* A sequence past its end: outputs 0, final state from its last step (the empty one: h0, c0). */
static void test_lengths(void)
{
    test_fill_random(x, B * T * I, 1), test_fill_random(h0, B * H, 2), test_fill_random(c0, B * H, 3);
    test_fill_random(w_ih, G * I, 4), test_fill_random(w_hh, G * H, 5);
    layer l;
    layer_alloc(&l, B, T, I, H);
    l.w_ih = w_ih, l.w_hh = w_hh;
    layer_forward(&l, x, h0, c0, lens);
    for (int t = 2; t < T; t++)
        for (int j = 0; j < H; j++) TEST_ASSERT(l.y[(1 * T + t) * H + j] == 0.0f, "y[1,%d] = 0", t);
    for (int j = 0; j < H; j++) {
        TEST_ASSERT(l.h_n[1 * H + j] == l.y[(1 * T + 1) * H + j], "h_n of a short sequence");
        TEST_ASSERT(l.h_n[2 * H + j] == h0[2 * H + j] && l.c_n[2 * H + j] == c0[2 * H + j],
                    "an empty sequence keeps its initial state");
    }
    layer_free(&l);
}

int main(void)
{
    TEST_RUN(test_two_layers_against_torch);
    TEST_RUN(test_finite_differences);
    TEST_RUN(test_lengths);
    return test_summary();
}
