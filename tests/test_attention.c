/* Scaled-dot-product attention on packed qkv, and the multi-head self-attention block
 * (lib/nn/mhsa.c), judged by torch.nn.MultiheadAttention (goldens) and finite differences;
 * plus accumulation, NULL gradients and thread-count independence.  The ragged variants
 * (attention and the transformer block over sequences of their own lengths packed as rows) are
 * judged by the same op run on each sequence alone, and by finite differences. */
#include "ops_check.h"

#include "nn/mhsa.h"
#include "nn/transformer_block.h"

/* ---- attention: PyTorch goldens --------------------------------------------------------------
 * The generator runs nn.MultiheadAttention with identity projections on (q, k, v) = the three
 * thirds of qkv, so PyTorch's own code computes exactly our op, probs per head included. */
static void test_attention_golden(void)
{
    if (!ops_golden_open()) return;
    for (int k = 0; k < 8; k++) {
        char kase[16], what[64];
        int d[5];
        snprintf(kase, sizeof kase, "att%d", k);
        if (!ops_dims(kase, d, 5)) continue;
        const int B = d[0], T = d[1], C = d[2], NH = d[3], causal = d[4];
        const size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
        const size_t nprobs = (size_t)B * NH * T * T;
        float *qkv = ops_get(kase, "qkv", nqkv), *dout = ops_get(kase, "dout", nout);
        float *out_want = ops_get(kase, "out", nout), *probs_want = ops_get(kase, "probs", nprobs);
        float *dqkv_want = ops_get(kase, "dqkv", nqkv);
        if (test_current_failed) return;

        float *out = ops_zeros(nout), *probs = ops_zeros(nprobs);
        float *ws = ops_zeros(mcnn_attention_workspace_floats(B, T, NH));
        mcnn_attention_forward(out, probs, qkv, B, T, C, NH, causal);
        snprintf(what, sizeof what, "%s out", kase);
        ops_close(what, out, out_want, nout);
        snprintf(what, sizeof what, "%s probs", kase);
        ops_close(what, probs, probs_want, nprobs);
        float *dqkv0 = ops_random(nqkv, 5, 1), *dqkv = ops_copy(dqkv0, nqkv);
        mcnn_attention_backward(dqkv, dout, qkv, probs, B, T, C, NH, causal, ws);
        snprintf(what, sizeof what, "%s dqkv", kase);
        ops_check_accumulated(what, dqkv, dqkv0, dqkv_want, nqkv);
        ops_free_all();
    }
}

/* ---- attention: finite differences ------------------------------------------------------------ */
typedef struct att_ctx {
    int B, T, C, NH, causal;
    float *qkv, *w, *out, *probs;
} att_ctx;

static double att_loss(void *p)
{
    att_ctx *c = p;
    mcnn_attention_forward(c->out, c->probs, c->qkv, c->B, c->T, c->C, c->NH, c->causal);
    return ops_dot(c->out, c->w, (size_t)c->B * c->T * c->C);
}

static void attention_fd(int B, int T, int C, int NH, int causal)
{
    const size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
    att_ctx c = {B, T, C, NH, causal, ops_random(nqkv, 1, 1.5f), ops_random(nout, 2, 1),
                 ops_zeros(nout), ops_zeros((size_t)B * NH * T * T)};
    float *dqkv = ops_zeros(nqkv), *ws = ops_zeros(mcnn_attention_workspace_floats(B, T, NH));
    att_loss(&c);
    mcnn_attention_backward(dqkv, c.w, c.qkv, c.probs, B, T, C, NH, causal, ws);
    char what[64];
    snprintf(what, sizeof what, "dqkv B%d T%d C%d NH%d causal%d", B, T, C, NH, causal);
    ops_fd_check(what, c.qkv, dqkv, nqkv, att_loss, &c, 1e-2f, 1e-2, 2e-4);
    ops_free_all();
}

static void test_attention_finite_differences(void)
{
    attention_fd(2, 5, 8, 2, 0);
    attention_fd(2, 5, 8, 2, 1);
    attention_fd(1, 7, 6, 3, 1);
    attention_fd(2, 1, 4, 1, 0); /* one token: probs = 1, out = v, dq = dk = 0 */
}

/* ---- the causal mask, checked directly: probs above the diagonal are exactly 0, and a
 * token's output does not change when a later token changes ------------------------------- */
static void test_attention_causal_mask(void)
{
    enum { B = 1, T = 6, C = 8, NH = 2 };
    float *qkv = ops_random(B * T * 3 * C, 3, 2), *out = ops_zeros(B * T * C);
    float *probs = ops_zeros(B * NH * T * T), *out2 = ops_zeros(B * T * C);
    mcnn_attention_forward(out, probs, qkv, B, T, C, NH, 1);
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++)
            for (int s = t + 1; s < T; s++)
                TEST_ASSERT(probs[(h * T + t) * T + s] == 0.0f, "head %d: probs[%d][%d] = %g", h,
                            t, s, probs[(h * T + t) * T + s]);
    for (int i = 0; i < 3 * C; i++) qkv[(T - 1) * 3 * C + i] += 1.0f; /* change the last token */
    mcnn_attention_forward(out2, probs, qkv, B, T, C, NH, 1);
    ops_check_same("tokens before the changed one", out, out2, (T - 1) * C);
    ops_free_all();
}

/* ---- attention: accumulation, NULL, threads ----------------------------------------------- */
static void test_attention_accumulate_and_null(void)
{
    enum { B = 2, T = 5, C = 8, NH = 2 };
    const size_t nqkv = B * T * 3 * C;
    float *qkv = ops_random(nqkv, 1, 1), *dout = ops_random(B * T * C, 2, 1);
    float *out = ops_zeros(B * T * C), *probs = ops_zeros(B * NH * T * T);
    float *ws = ops_zeros(mcnn_attention_workspace_floats(B, T, NH));
    float *d1 = ops_zeros(nqkv), *d2 = ops_zeros(nqkv);
    mcnn_attention_forward(out, probs, qkv, B, T, C, NH, 1);
    mcnn_attention_backward(d1, dout, qkv, probs, B, T, C, NH, 1, ws);
    mcnn_attention_backward(d2, dout, qkv, probs, B, T, C, NH, 1, ws);
    mcnn_attention_backward(d2, dout, qkv, probs, B, T, C, NH, 1, ws);
    mcnn_attention_backward(NULL, dout, qkv, probs, B, T, C, NH, 1, ws);
    for (size_t i = 0; i < nqkv; i++) TEST_CLOSE("dqkv twice", d2[i], 2.0 * d1[i], 1e-6, 1e-7);
    ops_free_all();
}

static float *block_ragged_dx(void);

/* 1 thread (plain loop), 2 threads with B·NH >= 2 (heads split across threads, GEMM on one
 * thread each) and 3 threads with B·NH = 2 (heads in turn, GEMM threaded): all bitwise equal.
 * Likewise the ragged block's backward, with 2 and 3 threads a lane of sequences per thread. */
static void test_attention_threads(void)
{
    float *block_dx[3];
    const int cfg[2][5] = {{2, 33, 32, 4, 1}, {1, 40, 24, 2, 0}}; /* B, T, C, NH, causal */
    const int saved = mcnn_get_threads();
    float *res[2][3][3]; /* config, thread count, {out, probs, dqkv} */
    for (int r = 0; r < 3; r++) {        /* thread counts only grow (see main) */
        mcnn_set_threads(r + 1);
        block_dx[r] = block_ragged_dx();
        for (int k = 0; k < 2; k++) {
            const int B = cfg[k][0], T = cfg[k][1], C = cfg[k][2], NH = cfg[k][3];
            const int causal = cfg[k][4];
            const size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
            float *qkv = ops_random(nqkv, 1, 2), *dout = ops_random(nout, 2, 1);
            float *out = ops_zeros(nout), *probs = ops_zeros((size_t)B * NH * T * T);
            float *dqkv = ops_zeros(nqkv);
            float *ws = ops_zeros(mcnn_attention_workspace_floats(B, T, NH));
            mcnn_attention_forward(out, probs, qkv, B, T, C, NH, causal);
            mcnn_attention_backward(dqkv, dout, qkv, probs, B, T, C, NH, causal, ws);
            res[k][r][0] = out, res[k][r][1] = probs, res[k][r][2] = dqkv;
        }
    }
    mcnn_set_threads(saved);
    for (int k = 0; k < 2; k++) {
        const int B = cfg[k][0], T = cfg[k][1], C = cfg[k][2], NH = cfg[k][3];
        const size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
        for (int r = 1; r < 3; r++) {
            ops_check_same("out", res[k][0][0], res[k][r][0], nout);
            ops_check_same("probs", res[k][0][1], res[k][r][1], (size_t)B * NH * T * T);
            ops_check_same("dqkv", res[k][0][2], res[k][r][2], nqkv);
        }
    }
    for (int r = 1; r < 3; r++)
        ops_check_same("ragged block dx", block_dx[0], block_dx[r], (size_t)20 * 8);
    ops_free_all();
}

/* ---- MHSA block vs torch.nn.MultiheadAttention ---------------------------------------------- */
typedef struct mhsa_case {
    int B, T, C, NH, causal;
    float *x, *dout;
    mhsa_params p;
    mhsa_acts a, d;
    float *acts, *dacts; /* the blocks a and d are carved from */
} mhsa_case;

static void mhsa_case_alloc(mhsa_case *m)
{
    size_t n = mcnn_mhsa_acts_carve(&m->a, NULL, m->B, m->T, m->C, m->NH);
    m->acts = ops_zeros(n), m->dacts = ops_zeros(n);
    mcnn_mhsa_acts_carve(&m->a, m->acts, m->B, m->T, m->C, m->NH);
    mcnn_mhsa_acts_carve(&m->d, m->dacts, m->B, m->T, m->C, m->NH);
}

static void test_mhsa_golden(void)
{
    if (!ops_golden_open()) return;
    for (int k = 0; k < 18; k++) {
        char kase[16], what[64];
        int d[5];
        snprintf(kase, sizeof kase, "mhsa%d", k);
        if (!ops_dims(kase, d, 5)) continue;
        mhsa_case m = {.B = d[0], .T = d[1], .C = d[2], .NH = d[3], .causal = d[4]};
        const int C = m.C;
        const size_t nx = (size_t)m.B * m.T * C;
        m.x = ops_get(kase, "x", nx), m.dout = ops_get(kase, "dout", nx);
        m.p.in_proj_w = ops_get(kase, "in_proj_w", 3 * C * C);
        m.p.in_proj_b = ops_get(kase, "in_proj_b", 3 * C);
        m.p.out_proj_w = ops_get(kase, "out_proj_w", C * C);
        m.p.out_proj_b = ops_get(kase, "out_proj_b", C);
        float *out_want = ops_get(kase, "out", nx), *dx_want = ops_get(kase, "dx", nx);
        const char *gnames[4] = {"d_in_proj_w", "d_in_proj_b", "d_out_proj_w", "d_out_proj_b"};
        const size_t gsizes[4] = {3 * C * C, 3 * C, C * C, C};
        float *gwant[4], *g0[4], *g[4];
        for (int i = 0; i < 4; i++) {
            gwant[i] = ops_get(kase, gnames[i], gsizes[i]);
            g0[i] = ops_random(gsizes[i], 20 + i, 1); /* non-zero: the block must accumulate */
            g[i] = ops_copy(g0[i], gsizes[i]);
        }
        if (test_current_failed) return;
        mhsa_case_alloc(&m);

        float *out = ops_zeros(nx), *dx0 = ops_random(nx, 9, 1), *dx = ops_copy(dx0, nx);
        mcnn_mhsa_forward(out, &m.a, m.x, &m.p, m.B, m.T, C, m.NH, m.causal);
        snprintf(what, sizeof what, "%s out", kase);
        ops_close(what, out, out_want, nx);
        mhsa_grads grads = {g[0], g[1], g[2], g[3]};
        mcnn_mhsa_backward(dx, &grads, &m.d, m.dout, m.x, &m.a, &m.p, m.B, m.T, C, m.NH,
                           m.causal);
        snprintf(what, sizeof what, "%s dx", kase);
        ops_check_accumulated(what, dx, dx0, dx_want, nx);
        for (int i = 0; i < 4; i++) {
            snprintf(what, sizeof what, "%s %s", kase, gnames[i]);
            ops_check_accumulated(what, g[i], g0[i], gwant[i], gsizes[i]);
        }
        ops_free_all();
    }
}

/* ---- MHSA: finite differences of x and every parameter ---------------------------------------- */
typedef struct mhsa_fd_ctx {
    mhsa_case *m;
    float *w, *out;
} mhsa_fd_ctx;

static double mhsa_loss(void *p)
{
    mhsa_fd_ctx *c = p;
    mhsa_case *m = c->m;
    mcnn_mhsa_forward(c->out, &m->a, m->x, &m->p, m->B, m->T, m->C, m->NH, m->causal);
    return ops_dot(c->out, c->w, (size_t)m->B * m->T * m->C);
}

static void test_mhsa_finite_differences(void)
{
    for (int causal = 0; causal < 2; causal++) {
        mhsa_case m = {.B = 2, .T = 4, .C = 6, .NH = 2, .causal = causal};
        const int C = m.C;
        const size_t nx = (size_t)m.B * m.T * C;
        float *params[4] = {ops_random(3 * C * C, 1, 0.5f), ops_random(3 * C, 2, 0.5f),
                            ops_random(C * C, 3, 0.5f), ops_random(C, 4, 0.5f)};
        const size_t sizes[4] = {3 * C * C, 3 * C, C * C, C};
        const char *names[4] = {"d_in_proj_w", "d_in_proj_b", "d_out_proj_w", "d_out_proj_b"};
        m.p = (mhsa_params){params[0], params[1], params[2], params[3]};
        m.x = ops_random(nx, 5, 1.5f);
        mhsa_case_alloc(&m);
        mhsa_fd_ctx c = {&m, ops_random(nx, 6, 1), ops_zeros(nx)};
        float *g[4], *dx = ops_zeros(nx);
        for (int i = 0; i < 4; i++) g[i] = ops_zeros(sizes[i]);
        mhsa_grads grads = {g[0], g[1], g[2], g[3]};
        mhsa_loss(&c);
        mcnn_mhsa_backward(dx, &grads, &m.d, c.w, m.x, &m.a, &m.p, m.B, m.T, C, m.NH, causal);
        ops_fd_check("dx", m.x, dx, nx, mhsa_loss, &c, 1e-2f, 1e-2, 2e-4);
        for (int i = 0; i < 4; i++)
            ops_fd_check(names[i], params[i], g[i], sizes[i], mhsa_loss, &c, 1e-2f, 1e-2, 2e-4);
        ops_free_all();
    }
}

/* ---- MHSA: NULL gradients give the same values for the ones wanted ------------------------------ */
static void test_mhsa_null_grads(void)
{
    mhsa_case m = {.B = 2, .T = 5, .C = 8, .NH = 4, .causal = 1};
    const int C = m.C;
    const size_t nx = (size_t)m.B * m.T * C;
    m.p = (mhsa_params){ops_random(3 * C * C, 1, 0.5f), ops_random(3 * C, 2, 0.5f),
                        ops_random(C * C, 3, 0.5f), ops_random(C, 4, 0.5f)};
    m.x = ops_random(nx, 5, 1), m.dout = ops_random(nx, 6, 1);
    mhsa_case_alloc(&m);
    float *out = ops_zeros(nx), *dx_all = ops_zeros(nx), *dx = ops_zeros(nx);
    float *wi_all = ops_zeros(3 * C * C), *bo_all = ops_zeros(C);
    float *wi = ops_zeros(3 * C * C), *bo = ops_zeros(C);
    float *bi_all = ops_zeros(3 * C), *wo_all = ops_zeros(C * C);
    mcnn_mhsa_forward(out, &m.a, m.x, &m.p, m.B, m.T, C, m.NH, m.causal);
    mhsa_grads all = {wi_all, bi_all, wo_all, bo_all};
    mcnn_mhsa_backward(dx_all, &all, &m.d, m.dout, m.x, &m.a, &m.p, m.B, m.T, C, m.NH, m.causal);
    mcnn_mhsa_backward(dx, NULL, &m.d, m.dout, m.x, &m.a, &m.p, m.B, m.T, C, m.NH, m.causal);
    mhsa_grads some = {wi, NULL, NULL, bo};
    mcnn_mhsa_backward(NULL, &some, &m.d, m.dout, m.x, &m.a, &m.p, m.B, m.T, C, m.NH, m.causal);
    ops_check_same("dx with no parameter grads", dx_all, dx, nx);
    ops_check_same("d_in_proj_w alone", wi_all, wi, 3 * C * C);
    ops_check_same("d_out_proj_b alone", bo_all, bo, C);
    ops_free_all();
}


/* ---- ragged attention: sequence s of a ragged call gets exactly what a (1, T_s) call on it
 * alone gives (out, probs, dqkv), causal or not; starts[s] = s·T gives the (B, T) call's bits;
 * a call on some of the sequences (starts[0] != 0, as a thread's share) gives their part ---- */
enum { RS = 5, RC = 8, RNH = 2 };
static const int ragged_len[RS] = {5, 1, 7, 3, 4};

static void ragged_starts(int *starts, const int *len, int S)
{
    starts[0] = 0;
    for (int s = 0; s < S; s++) starts[s + 1] = starts[s] + len[s];
}

static void test_attention_ragged(void)
{
    int starts[RS + 1];
    ragged_starts(starts, ragged_len, RS);
    const int N = starts[RS], C3 = 3 * RC;
    const size_t np = mcnn_attention_ragged_floats(RS, starts, RNH);
    TEST_ASSERT(np == (size_t)RNH * (25 + 1 + 49 + 9 + 16), "probs floats %zu", np);
    for (int causal = 0; causal < 2; causal++) {
        float *qkv = ops_random((size_t)N * C3, 1, 1.5f), *dout = ops_random((size_t)N * RC, 2, 1);
        float *out = ops_zeros((size_t)N * RC), *probs = ops_zeros(np), *ws = ops_zeros(np);
        float *dqkv0 = ops_random((size_t)N * C3, 3, 1), *dqkv = ops_copy(dqkv0, (size_t)N * C3);
        mcnn_attention_forward_ragged(out, probs, qkv, RS, starts, RC, RNH, causal);
        mcnn_attention_backward_ragged(dqkv, dout, qkv, probs, RS, starts, RC, RNH, causal, ws);
        size_t p0 = 0;
        for (int s = 0; s < RS; s++) {
            const int T = ragged_len[s], r = starts[s];
            const size_t nP = (size_t)RNH * T * T;
            float *o1 = ops_zeros((size_t)T * RC), *P1 = ops_zeros(nP), *w1 = ops_zeros(nP);
            float *d1 = ops_copy(dqkv0 + (size_t)r * C3, (size_t)T * C3);
            mcnn_attention_forward(o1, P1, qkv + (size_t)r * C3, 1, T, RC, RNH, causal);
            mcnn_attention_backward(d1, dout + (size_t)r * RC, qkv + (size_t)r * C3, P1, 1, T, RC,
                                    RNH, causal, w1);
            ops_check_same("ragged out = alone", out + (size_t)r * RC, o1, (size_t)T * RC);
            ops_check_same("ragged probs = alone", probs + p0, P1, nP);
            ops_check_same("ragged dqkv = alone", dqkv + (size_t)r * C3, d1, (size_t)T * C3);
            p0 += nP;
        }
        /* sequences 2..4 alone, their rows and probs from their own first row on */
        const int r2 = starts[2];
        const size_t pr2 = mcnn_attention_ragged_floats(2, starts, RNH);
        float *o3 = ops_zeros((size_t)(N - r2) * RC), *P3 = ops_zeros(np - pr2);
        mcnn_attention_forward_ragged(o3, P3, qkv + (size_t)r2 * C3, 3, starts + 2, RC, RNH, causal);
        ops_check_same("a share of the sequences", out + (size_t)r2 * RC, o3, (size_t)(N - r2) * RC);
        ops_check_same("a share's probs", probs + pr2, P3, np - pr2);
    }
    /* uniform lengths: the (B, T) functions' bits */
    enum { B = 3, T = 6 };
    int ustarts[B + 1];
    for (int b = 0; b <= B; b++) ustarts[b] = b * T;
    const size_t nq = (size_t)B * T * C3, nP = (size_t)B * RNH * T * T;
    float *qkv = ops_random(nq, 4, 1), *dout = ops_random((size_t)B * T * RC, 5, 1);
    float *o1 = ops_zeros((size_t)B * T * RC), *o2 = ops_zeros((size_t)B * T * RC);
    float *P1 = ops_zeros(nP), *P2 = ops_zeros(nP), *w = ops_zeros(nP);
    float *d1 = ops_zeros(nq), *d2 = ops_zeros(nq);
    mcnn_attention_forward(o1, P1, qkv, B, T, RC, RNH, 0);
    mcnn_attention_backward(d1, dout, qkv, P1, B, T, RC, RNH, 0, w);
    mcnn_attention_forward_ragged(o2, P2, qkv, B, ustarts, RC, RNH, 0);
    mcnn_attention_backward_ragged(d2, dout, qkv, P2, B, ustarts, RC, RNH, 0, w);
    ops_check_same("uniform out", o1, o2, (size_t)B * T * RC);
    ops_check_same("uniform probs", P1, P2, nP);
    ops_check_same("uniform dqkv", d1, d2, nq);
    ops_free_all();
}

typedef struct ragged_ctx {
    const int *starts;
    int causal;
    float *qkv, *w, *out, *probs;
} ragged_ctx;

static double ragged_loss(void *p)
{
    ragged_ctx *c = p;
    mcnn_attention_forward_ragged(c->out, c->probs, c->qkv, RS, c->starts, RC, RNH, c->causal);
    return ops_dot(c->out, c->w, (size_t)c->starts[RS] * RC);
}

static void test_attention_ragged_finite_differences(void)
{
    int starts[RS + 1];
    ragged_starts(starts, ragged_len, RS);
    const int N = starts[RS];
    const size_t np = mcnn_attention_ragged_floats(RS, starts, RNH), nq = (size_t)N * 3 * RC;
    for (int causal = 0; causal < 2; causal++) {
        ragged_ctx c = {starts, causal, ops_random(nq, 6, 1.5f), ops_random((size_t)N * RC, 7, 1),
                        ops_zeros((size_t)N * RC), ops_zeros(np)};
        float *dqkv = ops_zeros(nq), *ws = ops_zeros(np);
        ragged_loss(&c);
        mcnn_attention_backward_ragged(dqkv, c.w, c.qkv, c.probs, RS, starts, RC, RNH, causal, ws);
        ops_fd_check(causal ? "ragged dqkv causal" : "ragged dqkv", c.qkv, dqkv, nq, ragged_loss,
                     &c, 1e-2f, 1e-2, 2e-4);
        ops_free_all();
    }
}

/* ---- the transformer block over ragged sequences: each sequence's output and input gradient
 * are what the block gives it alone (B = 1), the parameter gradients the sum over the
 * sequences run alone; the backward's bits do not depend on the thread count ------------------ */
typedef struct block_case {
    block_cfg cfg;
    block_params p;
    float *w[12];
} block_case;

static block_case block_case_make(void)
{
    enum { C = RC, F = 4 * RC };
    block_case b = {.cfg = {.C = C, .NH = RNH, .F = F, .eps = 1e-5f, .causal = 0, .act = BLOCK_GELU}};
    const size_t n[12] = {C, C, 3 * C * C, 3 * C, C * C, C, C, C, F * C, F, C * F, C};
    for (int i = 0; i < 12; i++) b.w[i] = ops_random(n[i], 40 + i, 0.4f);
    for (int i = 0; i < C; i++) b.w[0][i] += 1.0f, b.w[6][i] += 1.0f; /* layer-norm gains ~1 */
    block_grads v = {b.w[0], b.w[1], b.w[2], b.w[3], b.w[4], b.w[5],
                     b.w[6], b.w[7], b.w[8], b.w[9], b.w[10], b.w[11]};
    b.p = mcnn_block_params_view(&v);
    return b;
}

static block_acts block_acts_make(const block_cfg *cfg, int B, int T)
{
    block_acts a;
    mcnn_carver c = {NULL, 0};
    mcnn_block_acts_carve(&a, &c, cfg, B, T);
    c = (mcnn_carver){ops_zeros(c.used), 0};
    mcnn_block_acts_carve(&a, &c, cfg, B, T);
    return a;
}

static float **block_grads_make(block_grads *g)
{
    enum { C = RC, F = 4 * RC };
    const size_t n[12] = {C, C, 3 * C * C, 3 * C, C * C, C, C, C, F * C, F, C * F, C};
    float **d = ops_track(calloc(12, sizeof *d));
    for (int i = 0; i < 12; i++) d[i] = ops_zeros(n[i]);
    *g = (block_grads){d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11]};
    return d;
}

static void test_block_ragged(void)
{
    enum { C = RC, F = 4 * RC, TMAX = 7 };
    const size_t n[12] = {C, C, 3 * C * C, 3 * C, C * C, C, C, C, F * C, F, C * F, C};
    int starts[RS + 1];
    ragged_starts(starts, ragged_len, RS);
    const int N = starts[RS];
    block_case b = block_case_make();
    float *x = ops_random((size_t)N * C, 8, 1), *dout = ops_random((size_t)N * C, 9, 1);
    float *out = ops_zeros((size_t)N * C), *dx = ops_zeros((size_t)N * C);
    block_acts a = block_acts_make(&b.cfg, RS, TMAX), d = block_acts_make(&b.cfg, RS, TMAX);
    block_grads g, g1;
    float **gr = block_grads_make(&g), *gsum[12];
    for (int i = 0; i < 12; i++) gsum[i] = ops_zeros(n[i]);
    mcnn_block_forward_ragged(out, &a, x, &b.p, &b.cfg, RS, starts);
    mcnn_block_backward_ragged(dx, &g, &d, dout, x, &a, &b.p, &b.cfg, RS, starts);
    for (int s = 0; s < RS; s++) {
        const int T = ragged_len[s];
        const size_t o = (size_t)starts[s] * C;
        float *o1 = ops_zeros((size_t)T * C), *dx1 = ops_zeros((size_t)T * C);
        block_acts a1 = block_acts_make(&b.cfg, 1, T), d1 = block_acts_make(&b.cfg, 1, T);
        float **g1d = block_grads_make(&g1);
        mcnn_block_forward(o1, &a1, x + o, &b.p, &b.cfg, 1, T);
        mcnn_block_backward(dx1, &g1, &d1, dout + o, x + o, &a1, &b.p, &b.cfg, 1, T);
        for (size_t i = 0; i < (size_t)T * C; i++) {
            TEST_CLOSE("block out = alone", out[o + i], o1[i], 1e-5, 1e-6);
            TEST_CLOSE("block dx = alone", dx[o + i], dx1[i], 1e-5, 1e-6);
        }
        for (int k = 0; k < 12; k++)
            for (size_t i = 0; i < n[k]; i++) gsum[k][i] += g1d[k][i];
    }
    for (int k = 0; k < 12; k++)
        for (size_t i = 0; i < n[k]; i++)
            TEST_CLOSE("block param grad = sum alone", gr[k][i], gsum[k][i], 1e-4, 1e-5);
    ops_free_all();
}

/* The ragged block's backward input gradient, for the thread-count test. */
static float *block_ragged_dx(void)
{
    int starts[RS + 1];
    ragged_starts(starts, ragged_len, RS);
    const int N = starts[RS], C = RC;
    block_case b = block_case_make();
    float *x = ops_random((size_t)N * C, 8, 1), *dout = ops_random((size_t)N * C, 9, 1);
    float *out = ops_zeros((size_t)N * C), *dx = ops_zeros((size_t)N * C);
    block_acts a = block_acts_make(&b.cfg, RS, 7), d = block_acts_make(&b.cfg, RS, 7);
    block_grads g;
    block_grads_make(&g);
    mcnn_block_forward_ragged(out, &a, x, &b.p, &b.cfg, RS, starts);
    mcnn_block_backward_ragged(dx, &g, &d, dout, x, &a, &b.p, &b.cfg, RS, starts);
    return dx;
}

int main(void)
{
    TEST_RUN(test_attention_golden);
    TEST_RUN(test_attention_finite_differences);
    TEST_RUN(test_attention_causal_mask);
    TEST_RUN(test_attention_accumulate_and_null);
    TEST_RUN(test_mhsa_golden);
    TEST_RUN(test_mhsa_finite_differences);
    TEST_RUN(test_mhsa_null_grads);
    TEST_RUN(test_attention_ragged);
    TEST_RUN(test_attention_ragged_finite_differences);
    TEST_RUN(test_block_ragged);
    /* Last, with thread counts that only grow: when a parallel region has fewer threads than
     * the one before, libgomp ends the surplus workers, and (as of f1c4ba6) the GEMM's
     * per-thread packing buffer in each of them is leaked (SANITIZE=1 reports it). */
    TEST_RUN(test_attention_threads);
    ops_golden_close();
    return test_summary();
}
