/* Scaled dot-product attention on packed q/k/v, heads side by side (the core of
 * torch.nn.MultiheadAttention, between in_proj and out_proj).
 *
 * qkv (B, T, 3C) = [q | k | v] along the last axis; head h of q is columns h·HS .. h·HS+HS-1,
 * HS = C / NH (likewise for k at offset C and v at offset 2C).  Per batch b and head h, with
 * Q, K, V the (T, HS) slices:
 *   forward:   S = Q·Kᵀ / √HS            (T, T)  scores; causal: S[t][s] = -inf for s > t
 *              P = softmax_rows(S)       (T, T)  saved in probs (B, NH, T, T)
 *              O = P·V                   (T, HS) written to out (B, T, C) at columns h·HS
 *   backward:  dP = dO·Vᵀ,   dV += Pᵀ·dO
 *              dS = P ⊙ (dP - rowsum(dP ⊙ P))          (softmax backward, row by row)
 *              dQ += dS·K / √HS,   dK += dSᵀ·Q / √HS
 * Each product is one mcnn_gemm on strided views: q, k, v keep leading dimension 3C and out
 * leading dimension C, so nothing is copied or transposed.
 *
 * Threads: the (b, h) pairs are independent and each writes its own columns of out / dqkv, so
 * when there are at least as many pairs as threads they are split across threads and each
 * thread calls GEMM single-threaded (omp_set_num_threads(1) inside the region: nthreads-var is a
 * per-task setting, so this holds even if the user enabled nested parallelism, and it ends with
 * the region).  With fewer pairs than threads (B = NH = 1 at inference) the pairs run in turn
 * and GEMM uses all threads instead.  Either way no parallel region is nested in another, and
 * since GEMM's result does not depend on its thread count, neither does ours.
 * See docs/ops/attention.md. */
#include "internal.h"
#include "core/profile.h"
#include "vmath.h"

#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

size_t mcnn_attention_workspace_floats(int B, int T, int NH)
{
    return (size_t)B * NH * T * T;
}

/* 1 when the (b, h) loop should be split across threads (see the file comment). */
static int split_heads(int B, int NH)
{
#ifdef _OPENMP
    return B * NH >= omp_get_max_threads() && omp_get_max_threads() > 1;
#else
    (void)B, (void)NH;
    return 0;
#endif
}

static void single_threaded_gemm(void)
{
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
}

/* Rows of S -> rows of P, in place.  Causal rows use only s <= t; the rest become exactly 0,
 * which is what lets P·V and the backward ignore the mask. */
static void softmax_rows(float *P, int T, int causal)
{
    for (int t = 0; t < T; t++) {
        float *p = P + (size_t)t * T;
        const int ns = causal ? t + 1 : T; /* number of keys token t may see */
        mcnn_softmax_row(p, p, ns);
        for (int s = ns; s < T; s++) p[s] = 0.0f;
    }
}

static void head_forward(float *out, float *probs, const float *qkv, int b, int h, int T, int C,
                         int NH, int causal)
{
    const int HS = C / NH, C3 = 3 * C;
    const float *q = qkv + (size_t)b * T * C3 + (size_t)h * HS;  /* (T, HS), ld 3C */
    const float *k = q + C, *v = q + 2 * C;
    float *P = probs + ((size_t)b * NH + h) * T * T;             /* (T, T)        */
    float *o = out + (size_t)b * T * C + (size_t)h * HS;         /* (T, HS), ld C */
    const float scale = 1.0f / sqrtf((float)HS);
    mcnn_gemm(0, 1, T, T, HS, scale, q, C3, k, C3, 0.0f, P, T);  /* S = Q·Kᵀ/√HS  */
    softmax_rows(P, T, causal);                                  /* P = softmax(S) */
    mcnn_gemm(0, 0, T, HS, T, 1.0f, P, T, v, C3, 0.0f, o, C);    /* O = P·V        */
}

void mcnn_attention_forward(float *out, float *probs, const float *qkv, int B, int T, int C,
                            int NH, int causal)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ATTENTION);
    if (split_heads(B, NH)) {
        #pragma omp parallel
        {
            single_threaded_gemm();
            #pragma omp for schedule(static)
            for (int bh = 0; bh < B * NH; bh++)
                head_forward(out, probs, qkv, bh / NH, bh % NH, T, C, NH, causal);
        }
    } else {
        for (int bh = 0; bh < B * NH; bh++)
            head_forward(out, probs, qkv, bh / NH, bh % NH, T, C, NH, causal);
    }
}

static void head_backward(float *dqkv, float *workspace, const float *dout, const float *qkv,
                          const float *probs, int b, int h, int T, int C, int NH, int causal)
{
    const int HS = C / NH, C3 = 3 * C;
    const size_t qoff = (size_t)b * T * C3 + (size_t)h * HS;
    const float *q = qkv + qoff, *k = q + C, *v = q + 2 * C;     /* (T, HS), ld 3C */
    float *dq = dqkv + qoff, *dk = dq + C, *dv = dq + 2 * C;     /* (T, HS), ld 3C */
    const float *P = probs + ((size_t)b * NH + h) * T * T;       /* (T, T)         */
    float *dS = workspace + ((size_t)b * NH + h) * T * T;        /* (T, T)         */
    const float *dO = dout + (size_t)b * T * C + (size_t)h * HS; /* (T, HS), ld C  */
    const float scale = 1.0f / sqrtf((float)HS);

    /* in the forward pass this was O = P·V, so now we have: */
    mcnn_gemm(0, 1, T, T, HS, 1.0f, dO, C, v, C3, 0.0f, dS, T);   /* dP  = dO·Vᵀ  */
    mcnn_gemm(1, 0, T, HS, T, 1.0f, P, T, dO, C, 1.0f, dv, C3);   /* dV += Pᵀ·dO  */
    /* in the forward pass this was P = softmax(S) row by row, so now we have: */
    for (int t = 0; t < T; t++) {
        const float *p = P + (size_t)t * T;
        float *d = dS + (size_t)t * T;
        const int ns = causal ? t + 1 : T;
        double dot = 0.0;
        #pragma omp simd reduction(+ : dot)
        for (int s = 0; s < ns; s++) dot += (double)d[s] * p[s];
        #pragma omp simd
        for (int s = 0; s < ns; s++) d[s] = p[s] * (d[s] - (float)dot);
        for (int s = ns; s < T; s++) d[s] = 0.0f;  /* masked scores had no effect on L */
    }
    /* in the forward pass this was S = Q·Kᵀ/√HS, so now we have: */
    mcnn_gemm(0, 0, T, HS, T, scale, dS, T, k, C3, 1.0f, dq, C3); /* dQ += dS·K/√HS  */
    mcnn_gemm(1, 0, T, HS, T, scale, dS, T, q, C3, 1.0f, dk, C3); /* dK += dSᵀ·Q/√HS */
}

void mcnn_attention_backward(float *dqkv, const float *dout, const float *qkv,
                             const float *probs, int B, int T, int C, int NH, int causal,
                             float *workspace)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ATTENTION);
    if (!dqkv) return;
    if (split_heads(B, NH)) {
        #pragma omp parallel
        {
            single_threaded_gemm();
            #pragma omp for schedule(static)
            for (int bh = 0; bh < B * NH; bh++)
                head_backward(dqkv, workspace, dout, qkv, probs, bh / NH, bh % NH, T, C, NH,
                              causal);
        }
    } else {
        for (int bh = 0; bh < B * NH; bh++)
            head_backward(dqkv, workspace, dout, qkv, probs, bh / NH, bh % NH, T, C, NH, causal);
    }
}
