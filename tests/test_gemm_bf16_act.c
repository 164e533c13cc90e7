/* The bf16 GEMM of two activations (lib/kernels/gemm_bf16_act.c) and attention's forward on it
 * (mcnn_attention_forward_bf16, lib/ops/attention.c; docs/precision.md).  Both need the pair
 * kernel (AVX512_BF16's vdpbf16ps): on a CPU without it they are skipped, saying so, since
 * inference then keeps attention in fp32.
 *
 * - the GEMM against a double-precision sum of the bf16-rounded operands times alpha, within
 *   fp32 summation's bound (one rounding per k, alpha's and the reference's), and farther from
 *   the unrounded product than that (so the operands were rounded); both B layouts (B (N, K)
 *   as attention's keys, B (K, N) as its values), odd sizes, sizes off the 12 x 32 tile,
 *   strides wider than a row (the 3C of packed q/k/v); columns past N of C never written; the
 *   same bits on 1 and 2 threads and when called inside another parallel region.
 * - attention: probs against a double-precision softmax of the double-precision scores of the
 *   rounded q and k (within the scores' bound carried through the softmax), out against the
 *   double-precision product of those probs rounded and the rounded v; causal rows zero past
 *   t; ragged sequences get the bits they get alone; the same bits on 1 and 2 threads (heads
 *   split across threads, or one head's GEMM split); the kernel NULL gives fp32's bits. */
#include "mcnn_test.h"

#include "../lib/kernels/lowp_internal.h"

#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define U_F32 (1.0 / 16777216.0) /* 2^-24 */

static double r16(float x) { return mcnn_bf16_to_float(mcnn_bf16_from_float(x)); }

static int same_bits(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof(float)) == 0;
}

/* The pair kernel this CPU runs, or NULL. */
static const mcnn_lowp_kernel *pair_kernel(void)
{
    int level;
    if (mcnn_lowp_isa(&level) != MCNN_OK) return NULL;
    for (const mcnn_lowp_kernel *k = mcnn_lowp_kernels; k->name; k++)
        if (k->bf16x2 && mcnn_lowp_kernel_usable(k, level)) return k;
    return NULL;
}

/* ---- the GEMM ------------------------------------------------------------------------------ */
typedef struct act_shape {
    int M, N, K, trans_b;
    float alpha;
} act_shape;

static void check_gemm(const mcnn_lowp_kernel *k, const act_shape *s, unsigned seed)
{
    const int lda = s->K + 3, ldb = (s->trans_b ? s->K : s->N) + 5, ldc = s->N + 2;
    const int brows = s->trans_b ? s->N : s->K;
    float *A = malloc(sizeof(float) * s->M * lda), *B = malloc(sizeof(float) * brows * ldb);
    float *C = malloc(sizeof(float) * s->M * ldc), *C1 = malloc(sizeof(float) * s->M * ldc);
    test_fill_random(A, (size_t)s->M * lda, seed);
    test_fill_random(B, (size_t)brows * ldb, seed + 1);
    /* n roundings of exact products: K (the pair chain's two additions per pair), alpha's,
     * the reference's own; γ_n Σ|terms| */
    const double n = s->K + 2, gamma = n * U_F32 / (1 - n * U_F32);
    int rounded = 0;
    for (int nt = 1; nt <= 2; nt++) {
        mcnn_set_threads(nt);
        for (size_t i = 0; i < (size_t)s->M * ldc; i++) C[i] = 777.0f;
        TEST_OK(mcnn_gemm_bf16_act(k, s->trans_b, s->M, s->N, s->K, s->alpha, A, lda, B, ldb,
                                   C, ldc));
        for (int i = 0; i < s->M; i++)
            for (int j = 0; j < ldc; j++) {
                const float got = C[(size_t)i * ldc + j];
                if (j >= s->N) {
                    TEST_ASSERT(got == 777.0f, "C written past N at %d,%d", i, j);
                    continue;
                }
                double acc = 0, sc = 0, raw = 0;
                for (int p = 0; p < s->K; p++) {
                    const float a = A[(size_t)i * lda + p];
                    const float b = s->trans_b ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                    acc += r16(a) * r16(b), sc += fabs(r16(a) * r16(b)), raw += (double)a * b;
                }
                const double want = s->alpha * acc, tol = gamma * fabs(s->alpha) * sc;
                TEST_ASSERT(fabs(got - want) <= tol, "%dx%dx%d trans_b %d (%d,%d): got %.9g want "
                            "%.9g", s->M, s->N, s->K, s->trans_b, i, j, got, want);
                rounded |= fabs(got - s->alpha * raw) > 2 * tol;
            }
        if (nt == 1) memcpy(C1, C, sizeof(float) * s->M * ldc);
        else
            TEST_ASSERT(same_bits(C1, C, (size_t)s->M * ldc), "%dx%dx%d: 1 and 2 threads differ",
                        s->M, s->N, s->K);
    }
    if (s->K > 4)
        TEST_ASSERT(rounded, "%dx%dx%d equals the unrounded product", s->M, s->N, s->K);
    /* inside another region, as attention calls it with its heads split across threads */
    float *C2 = malloc(sizeof(float) * s->M * ldc * 2);
    for (size_t i = 0; i < (size_t)s->M * ldc * 2; i++) C2[i] = 777.0f;
#ifdef _OPENMP
#pragma omp parallel num_threads(2)
#endif
    {
#ifdef _OPENMP
        const int t = omp_get_thread_num();
#else
        const int t = 0;
#endif
        mcnn_gemm_bf16_act(k, s->trans_b, s->M, s->N, s->K, s->alpha, A, lda, B, ldb,
                           C2 + (size_t)t * s->M * ldc, ldc);
    }
    TEST_ASSERT(same_bits(C1, C2, (size_t)s->M * ldc), "%dx%dx%d: not the same bits inside a "
                "parallel region", s->M, s->N, s->K);
#ifdef _OPENMP
    TEST_ASSERT(same_bits(C1, C2 + (size_t)s->M * ldc, (size_t)s->M * ldc),
                "%dx%dx%d: another region's thread 1 differs", s->M, s->N, s->K);
#endif
    free(A), free(B), free(C), free(C1), free(C2);
    mcnn_set_threads(2);
}

static void test_gemm_bf16_act(void)
{
    const mcnn_lowp_kernel *k = pair_kernel();
    if (!k) {
        TEST_SKIP("no bf16 pair kernel here (AVX512_BF16): attention stays fp32");
        return;
    }
    const act_shape shapes[] = {
        {1, 1, 1, 1, 1.0f},      {1, 1, 1, 0, 1.0f},      {7, 5, 3, 1, 0.5f},
        {7, 5, 3, 0, 1.0f},      {13, 33, 17, 1, 0.3f},   {13, 33, 17, 0, 1.0f},
        {197, 197, 64, 1, 0.125f}, /* ViT-B/16's S = Q·Kᵀ/√64 */
        {197, 64, 197, 0, 1.0f},   /* and O = P·V             */
        {77, 77, 63, 1, 0.126f},   {77, 63, 77, 0, 1.0f},   {25, 40, 801, 1, 1.0f},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_gemm(k, &shapes[i], 100 + (unsigned)i);
    TEST_ASSERT(mcnn_gemm_bf16_act(NULL, 1, 1, 1, 1, 1.0f, (float[]){1}, 1, (float[]){1}, 1,
                                   (float[]){0}, 1) == MCNN_ERR_ARG, "no kernel refused");
    for (const mcnn_lowp_kernel *w = mcnn_lowp_kernels; w->name; w++)
        if (!w->bf16x2)
            TEST_ASSERT(mcnn_gemm_bf16_act(w, 1, 1, 1, 1, 1.0f, (float[]){1}, 1, (float[]){1}, 1,
                                           (float[]){0}, 1) == MCNN_ERR_ARG,
                        "kernel %s without pairs refused", w->name);
}

/* B (K, N) and its transpose (N, K) reach the kernel as the same words: the same bits out,
 * over values that test the rounding (ties either way, overflow to inf, NaN, denormals), odd
 * K, and N off the 16-lane vectors of B (K, N)'s packer. */
static void test_both_layouts(void)
{
    const mcnn_lowp_kernel *k = pair_kernel();
    if (!k) {
        TEST_SKIP("no bf16 pair kernel here (AVX512_BF16): attention stays fp32");
        return;
    }
    const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x7f7fffffu, 0x7f800001u,
                                0xff800000u, 0x00000001u, 0x807fffffu, 0x3f807fffu, 0x00000000u};
    const int M = 13, N = 45, K = 9;
    float A[13 * 9], B[9 * 45], Bt[45 * 9], C0[13 * 45], C1[13 * 45];
    test_fill_random(A, sizeof A / sizeof A[0], 5);
    test_fill_random(B, sizeof B / sizeof B[0], 6);
    for (int i = 0; i < 10; i++) memcpy(&B[i * 41 % (K * N)], &special[i], 4);
    for (int p = 0; p < K; p++)
        for (int j = 0; j < N; j++) Bt[j * K + p] = B[p * N + j];
    TEST_OK(mcnn_gemm_bf16_act(k, 0, M, N, K, 1.0f, A, K, B, N, C0, N));
    TEST_OK(mcnn_gemm_bf16_act(k, 1, M, N, K, 1.0f, A, K, Bt, K, C1, N));
    TEST_ASSERT(same_bits(C0, C1, (size_t)M * N), "B (K, N) and B (N, K) packed differently");
}

/* ---- attention ----------------------------------------------------------------------------- */
/* One sequence's head h against the rounded operands in double: probs within the scores'
 * bound carried through the softmax, out against the product of its own probs (rounded). */
static void check_head(const float *qkv, const float *out, const float *P, int T, int C, int NH,
                       int h, int causal, int *rounded)
{
    const int HS = C / NH, C3 = 3 * C;
    const double scale = 1.0 / sqrt((double)HS);
    const double gs = (HS + 2) * U_F32 / (1 - (HS + 2) * U_F32);
    const double go = (T + 1) * U_F32 / (1 - (T + 1) * U_F32);
    double *s = malloc(sizeof(double) * T), *raw = malloc(sizeof(double) * T);
    for (int t = 0; t < T; t++) {
        const int ns = causal ? t + 1 : T;
        double mx = -INFINITY, sum = 0, emax = 0, rsum = 0;
        for (int u = 0; u < ns; u++) {
            double acc = 0, sc = 0, r = 0;
            for (int d = 0; d < HS; d++) {
                const float a = qkv[(size_t)t * C3 + h * HS + d];
                const float b = qkv[(size_t)u * C3 + C + h * HS + d];
                acc += r16(a) * r16(b), sc += fabs(r16(a) * r16(b)), r += (double)a * b;
            }
            s[u] = acc * scale, raw[u] = r * scale;
            if (s[u] > mx) mx = s[u];
            if (gs * sc * scale > emax) emax = gs * sc * scale;
        }
        for (int u = 0; u < ns; u++) sum += exp(s[u] - mx), rsum += exp(raw[u] - mx);
        for (int u = 0; u < T; u++) {
            const float got = P[(size_t)t * T + u];
            if (u >= ns) {
                TEST_ASSERT(got == 0.0f, "causal P[%d][%d] = %g", t, u, got);
                continue;
            }
            /* scores off by at most emax each move P by a factor within exp(±2 emax); fp32's
             * exp and sum add a few ulps */
            const double want = exp(s[u] - mx) / sum;
            const double tol = want * (expm1(2 * emax) + 64 * U_F32) + 1e-9;
            TEST_ASSERT(fabs(got - want) <= tol, "T %d head %d P[%d][%d]: got %.9g want %.9g",
                        T, h, t, u, got, want);
            *rounded |= fabs(got - exp(raw[u] - mx) / rsum) > 2 * tol; /* the unrounded's */
        }
        for (int d = 0; d < HS; d++) {
            double acc = 0, sc = 0;
            for (int u = 0; u < T; u++) {
                const double p = r16(P[(size_t)t * T + u]) * r16(qkv[(size_t)u * C3 + 2 * C + h * HS + d]);
                acc += p, sc += fabs(p);
            }
            const float got = out[(size_t)t * C + h * HS + d];
            TEST_ASSERT(fabs(got - acc) <= go * sc, "T %d head %d out[%d][%d]: got %.9g want "
                        "%.9g", T, h, t, d, got, acc);
        }
    }
    free(s), free(raw);
}

static void test_attention_bf16(void)
{
    const mcnn_lowp_kernel *k = pair_kernel();
    if (!k) {
        TEST_SKIP("no bf16 pair kernel here (AVX512_BF16): attention stays fp32");
        return;
    }
    /* (B, T, C, NH): B·NH >= 2 splits the heads across 2 threads, 1 x 1 splits the GEMM */
    const int cases[][4] = {{2, 13, 32, 4}, {1, 197, 128, 1}, {1, 50, 64, 2}, {3, 33, 48, 3}};
    for (int c = 0; c < 4; c++)
        for (int causal = 0; causal <= 1; causal++) {
            const int B = cases[c][0], T = cases[c][1], C = cases[c][2], NH = cases[c][3];
            const size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
            const size_t np = (size_t)B * NH * T * T;
            float *qkv = malloc(sizeof(float) * nqkv);
            float *out[2], *P[2], *o32 = malloc(sizeof(float) * nout);
            float *p32 = malloc(sizeof(float) * np), *o0 = malloc(sizeof(float) * nout);
            test_fill_random(qkv, nqkv, 40 + c);
            for (size_t i = 0; i < nqkv; i++) qkv[i] *= 3.0f; /* scores of a few units */
            for (int nt = 1; nt <= 2; nt++) {
                mcnn_set_threads(nt);
                out[nt - 1] = malloc(sizeof(float) * nout), P[nt - 1] = malloc(sizeof(float) * np);
                mcnn_attention_forward_bf16(out[nt - 1], P[nt - 1], qkv, B, T, NULL, C, NH, causal,
                                            k);
            }
            TEST_ASSERT(same_bits(out[0], out[1], nout) && same_bits(P[0], P[1], np),
                        "(%d, %d, %d, %d): 1 and 2 threads differ", B, T, C, NH);
            int rounded = 0;
            for (int b = 0; b < B; b++)
                for (int h = 0; h < NH; h++)
                    check_head(qkv + (size_t)b * T * 3 * C, out[0] + (size_t)b * T * C,
                               P[0] + ((size_t)b * NH + h) * T * T, T, C, NH, h, causal, &rounded);
            TEST_ASSERT(rounded, "(%d, %d, %d, %d): the probs of unrounded q and k", B, T, C, NH);
            /* no kernel: fp32's bits */
            mcnn_attention_forward(o32, p32, qkv, B, T, C, NH, causal);
            mcnn_attention_forward_bf16(o0, P[1], qkv, B, T, NULL, C, NH, causal, NULL);
            TEST_ASSERT(same_bits(o0, o32, nout) && same_bits(P[1], p32, np),
                        "kernel NULL is not fp32's forward");
            free(qkv), free(o32), free(p32), free(o0);
            for (int i = 0; i < 2; i++) free(out[i]), free(P[i]);
        }
    /* ragged: each sequence the bits it gets alone */
    const int starts[] = {0, 5, 18, 19}, C = 32, NH = 2, S = 3, N = 19;
    float *qkv = malloc(sizeof(float) * N * 3 * C), *out = malloc(sizeof(float) * N * C);
    float *P = malloc(sizeof(float) * NH * (25 + 169 + 1)), *o1 = malloc(sizeof(float) * N * C);
    float *P1 = malloc(sizeof(float) * NH * 169);
    test_fill_random(qkv, (size_t)N * 3 * C, 77);
    mcnn_attention_forward_bf16(out, P, qkv, S, 0, starts, C, NH, 0, k);
    size_t at = 0;
    for (int s = 0; s < S; s++) {
        const int T = starts[s + 1] - starts[s];
        mcnn_attention_forward_bf16(o1, P1, qkv + (size_t)starts[s] * 3 * C, 1, T, NULL, C, NH, 0,
                                    k);
        TEST_ASSERT(same_bits(o1, out + (size_t)starts[s] * C, (size_t)T * C) &&
                        same_bits(P1, P + at, (size_t)NH * T * T),
                    "ragged sequence %d differs from itself alone", s);
        at += (size_t)NH * T * T;
    }
    free(qkv), free(out), free(P), free(o1), free(P1);
    mcnn_set_threads(2);
}

int main(void)
{
    TEST_RUN(test_gemm_bf16_act);
    TEST_RUN(test_both_layouts);
    TEST_RUN(test_attention_bf16);
    return test_summary();
}
