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
 *
 * Inference at bf16 (mcnn_attention_forward_bf16, lib/internal.h): the two forward products
 * run on the bf16 pair kernel (lib/kernels/gemm_bf16_act.c: Q, K, P, V rounded to bf16, fp32
 * sums) instead of mcnn_gemm; S is scaled by 1/√HS after its sum, and the softmax stays fp32.
 *
 * Ragged ("varlen"): S sequences of their own lengths packed as rows, sequence s in rows
 * starts[s] - starts[0] .. starts[s+1] - starts[0] - 1 of qkv, out and dqkv, and its NH (T_s, T_s)
 * probs one after the other.  Nothing padded is computed and no padded key is seen.  The (B, T)
 * functions are the case starts[s] = s·T: both run the same per-head code.
 * See docs/ops/attention.md. */
#include "internal.h"
#include "core/profile.h"
#include "kernels/lowp_internal.h"
#include "vmath.h"

#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The sequences: S of T rows each (starts NULL), or ragged, sequence s in rows
 * starts[s] - starts[0] .. starts[s+1] - starts[0] - 1. */
typedef struct seqs {
    int S, T;
    const int *starts;
} seqs;

static int seq_row(const seqs *q, int s)
{
    return q->starts ? q->starts[s] - q->starts[0] : s * q->T;
}

static int seq_len(const seqs *q, int s)
{
    return q->starts ? q->starts[s + 1] - q->starts[s] : q->T;
}

/* Where sequence s's probs begin: NH (T_s, T_s) blocks per sequence before it. */
static size_t seq_probs(const seqs *q, int s, int NH)
{
    if (!q->starts) return (size_t)s * NH * q->T * q->T;
    size_t n = 0;
    for (int i = 0; i < s; i++) n += (size_t)seq_len(q, i) * seq_len(q, i);
    return n * NH;
}

size_t mcnn_attention_workspace_floats(int B, int T, int NH)
{
    return (size_t)B * NH * T * T;
}

size_t mcnn_attention_ragged_floats(int S, const int *starts, int NH)
{
    const seqs q = {S, 0, starts};
    return seq_probs(&q, S, NH);
}

/* 1 when the (sequence, head) loop should be split across threads (see the file comment). */
static int split_heads(int S, int NH)
{
#ifdef _OPENMP
    return S * NH >= omp_get_max_threads() && omp_get_max_threads() > 1;
#else
    (void)S, (void)NH;
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

/* C = alpha · A · op(B) (mcnn_gemm(0, trans_b, ...) with beta 0): in bf16 on the pair kernel
 * bf16, or in fp32 (bf16 NULL, or the bf16 GEMM out of memory: the same product, exactly). */
static void product(const mcnn_lowp_kernel *bf16, int trans_b, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float *C, int ldc)
{
    if (bf16 && mcnn_gemm_bf16_act(bf16, trans_b, M, N, K, alpha, A, lda, B, ldb, C, ldc) ==
                    MCNN_OK)
        return;
    mcnn_gemm(0, trans_b, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc);
}

/* Head h of the sequence of T tokens whose first row is row0, its probs at P. */
static void head_forward(float *out, float *P, const float *qkv, int row0, int T, int h, int C,
                         int NH, int causal, const mcnn_lowp_kernel *bf16)
{
    const int HS = C / NH, C3 = 3 * C;
    const float *q = qkv + (size_t)row0 * C3 + (size_t)h * HS;  /* (T, HS), ld 3C */
    const float *k = q + C, *v = q + 2 * C;
    float *o = out + (size_t)row0 * C + (size_t)h * HS;         /* (T, HS), ld C */
    const float scale = 1.0f / sqrtf((float)HS);
    product(bf16, 1, T, T, HS, scale, q, C3, k, C3, P, T);      /* S = Q·Kᵀ/√HS  */
    softmax_rows(P, T, causal);                                 /* P = softmax(S) */
    product(bf16, 0, T, HS, T, 1.0f, P, T, v, C3, o, C);        /* O = P·V        */
}

/* Pair i = (sequence i / NH, head i % NH). */
static void pair_forward(float *out, float *probs, const float *qkv, const seqs *q, int i,
                         int C, int NH, int causal, const mcnn_lowp_kernel *bf16)
{
    const int s = i / NH, h = i % NH, T = seq_len(q, s);
    float *P = probs + seq_probs(q, s, NH) + (size_t)h * T * T;
    head_forward(out, P, qkv, seq_row(q, s), T, h, C, NH, causal, bf16);
}

static void attention_forward(float *out, float *probs, const float *qkv, const seqs *q, int C,
                              int NH, int causal, const mcnn_lowp_kernel *bf16)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ATTENTION);
    const int pairs = q->S * NH;
    if (split_heads(q->S, NH)) {
        #pragma omp parallel
        {
            single_threaded_gemm();
            #pragma omp for schedule(static)
            for (int i = 0; i < pairs; i++)
                pair_forward(out, probs, qkv, q, i, C, NH, causal, bf16);
        }
    } else {
        for (int i = 0; i < pairs; i++) pair_forward(out, probs, qkv, q, i, C, NH, causal, bf16);
    }
}

void mcnn_attention_forward(float *out, float *probs, const float *qkv, int B, int T, int C,
                            int NH, int causal)
{
    const seqs q = {B, T, NULL};
    attention_forward(out, probs, qkv, &q, C, NH, causal, NULL);
}

void mcnn_attention_forward_ragged(float *out, float *probs, const float *qkv, int S,
                                   const int *starts, int C, int NH, int causal)
{
    const seqs q = {S, 0, starts};
    attention_forward(out, probs, qkv, &q, C, NH, causal, NULL);
}

void mcnn_attention_forward_bf16(float *out, float *probs, const float *qkv, int S, int T,
                                 const int *starts, int C, int NH, int causal,
                                 const mcnn_lowp_kernel *bf16)
{
    const seqs q = {S, starts ? 0 : T, starts};
    attention_forward(out, probs, qkv, &q, C, NH, causal, bf16);
}

/* The backward of head_forward; dS (T, T) is workspace. */
static void head_backward(float *dqkv, float *dS, const float *dout, const float *qkv,
                          const float *P, int row0, int T, int h, int C, int NH, int causal)
{
    const int HS = C / NH, C3 = 3 * C;
    const size_t qoff = (size_t)row0 * C3 + (size_t)h * HS;
    const float *q = qkv + qoff, *k = q + C, *v = q + 2 * C;     /* (T, HS), ld 3C */
    float *dq = dqkv + qoff, *dk = dq + C, *dv = dq + 2 * C;     /* (T, HS), ld 3C */
    const float *dO = dout + (size_t)row0 * C + (size_t)h * HS;  /* (T, HS), ld C  */
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

static void pair_backward(float *dqkv, float *workspace, const float *dout, const float *qkv,
                          const float *probs, const seqs *q, int i, int C, int NH, int causal)
{
    const int s = i / NH, h = i % NH, T = seq_len(q, s);
    const size_t at = seq_probs(q, s, NH) + (size_t)h * T * T;
    head_backward(dqkv, workspace + at, dout, qkv, probs + at, seq_row(q, s), T, h, C, NH,
                  causal);
}

static void attention_backward(float *dqkv, const float *dout, const float *qkv,
                               const float *probs, const seqs *q, int C, int NH, int causal,
                               float *workspace)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ATTENTION);
    if (!dqkv) return;
    const int pairs = q->S * NH;
    if (split_heads(q->S, NH)) {
        #pragma omp parallel
        {
            single_threaded_gemm();
            #pragma omp for schedule(static)
            for (int i = 0; i < pairs; i++)
                pair_backward(dqkv, workspace, dout, qkv, probs, q, i, C, NH, causal);
        }
    } else {
        for (int i = 0; i < pairs; i++)
            pair_backward(dqkv, workspace, dout, qkv, probs, q, i, C, NH, causal);
    }
}

void mcnn_attention_backward(float *dqkv, const float *dout, const float *qkv,
                             const float *probs, int B, int T, int C, int NH, int causal,
                             float *workspace)
{
    const seqs q = {B, T, NULL};
    attention_backward(dqkv, dout, qkv, probs, &q, C, NH, causal, workspace);
}

void mcnn_attention_backward_ragged(float *dqkv, const float *dout, const float *qkv,
                                    const float *probs, int S, const int *starts, int C, int NH,
                                    int causal, float *workspace)
{
    const seqs q = {S, 0, starts};
    attention_backward(dqkv, dout, qkv, probs, &q, C, NH, causal, workspace);
}
