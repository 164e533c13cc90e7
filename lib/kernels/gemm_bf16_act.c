/* A bf16 GEMM of two activations, both rounded to bf16 on every call (neither is a weight
 * packed once): attention's S = Q·Kᵀ and O = P·V at bf16 on the pair kernel (lib/ops/
 * attention.c, docs/precision.md).
 *
 *   C (M, N) = alpha · A · op(B)     A (M, K) row-major, row stride lda;
 *                                    op(B) = Bᵀ for B (N, K) (trans_b), else B (K, N)
 *
 * Both sides are rounded (nearest even) and paired along k as the pair kernel reads them
 * (mcnn_bf16x2_micro_fn), with gemm_packed.c's packers: a side whose rows run along k (A, and
 * B when trans_b: attention's keys) is rounded row by row into pair words
 * (mcnn_bf16_pair_row) whose bits mcnn_gemm_pack_a then moves into panels as if floats; a
 * B (K, N) (attention's values) is paired straight from two of its rows at a time
 * (mcnn_bf16_pack_pairs_t's panels, with the kernel's NR as their width, here 16 lanes at
 * once).  B is packed whole (all
 * of K and N: attention's are T x HS, tens of KB), then each MR-row panel of A is packed and
 * run against every column panel of B.
 *
 * The whole K in one block: each element is the kernel's chain over k, then times alpha
 * (one rounding more).  Threads share out A's row panels, each computed alike, so the bits do
 * not depend on the thread count. */
#include "lowp_internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define TARGET __attribute__((target("avx512f,avx512bw")))

/* mcnn_bf16_from_float on 16 lanes, its bits (to nearest even; a NaN kept, made quiet) */
TARGET static inline __m512i bf16_of(__m512 x)
{
    const __m512i u = _mm512_castps_si512(x), top = _mm512_srli_epi32(u, 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(
        _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    const __m512i odd = _mm512_and_si512(top, _mm512_set1_epi32(1));
    const __m512i near = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd), 16);
    return _mm512_mask_or_epi32(near, nan, top, _mm512_set1_epi32(0x40));
}

/* mcnn_bf16_pack_pairs_t's panels of 32 columns for B (K, N), 16 columns a vector (the pair
 * kernel runs on AVX-512 only; the scalar packer, one call per value, cost as much as the
 * product P·V itself) */
TARGET static void pack_pairs_32(const float *B, int ldb, int N, int K, uint32_t *dst)
{
    const int kp = (K + 1) / 2;
    for (int q = 0; q * 32 < N; q++, dst += (size_t)kp * 32) {
        const int w = N - q * 32 < 32 ? N - q * 32 : 32;
        const __mmask16 m0 = w >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << w) - 1);
        const __mmask16 m1 = w >= 32 ? (__mmask16)0xffff
                             : w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0;
        for (int p = 0; p < kp; p++) {
            const float *lo = B + (size_t)(2 * p) * ldb + q * 32, *hi = lo + ldb;
            const int has_hi = 2 * p + 1 < K; /* an odd K's last k: paired with a zero */
            for (int v = 0; v < 2; v++) {
                const __mmask16 m = v ? m1 : m0;
                __m512i word = bf16_of(_mm512_maskz_loadu_ps(m, lo + 16 * v));
                if (has_hi)
                    word = _mm512_or_si512(word, _mm512_slli_epi32(
                        bf16_of(_mm512_maskz_loadu_ps(m, hi + 16 * v)), 16));
                _mm512_storeu_si512(dst + (size_t)p * 32 + 16 * v,
                                    _mm512_maskz_mov_epi32(m, word));
            }
        }
    }
}
#define HAVE_PACK_PAIRS_32 1
#endif

/* op(B) -> ceil(N / NR) panels of kp x NR pair words; rows: NR x kp words of scratch */
static void pack_b(int trans_b, int N, int K, const float *B, int ldb, int NR, uint32_t *dst,
                   uint32_t *rows)
{
    const int kp = (K + 1) / 2;
#ifdef HAVE_PACK_PAIRS_32
    if (!trans_b && NR == 32) {
        pack_pairs_32(B, ldb, N, K, dst);
        return;
    }
#endif
    if (!trans_b) {
        mcnn_bf16_pack_pairs_t(B, ldb, 0, N, 0, K, NR, dst);
        return;
    }
    for (int q = 0; q * NR < N; q++) {
        const int w = N - q * NR < NR ? N - q * NR : NR;
        for (int j = 0; j < w; j++)
            mcnn_bf16_pair_row(B + (size_t)(q * NR + j) * ldb, K, rows + (size_t)j * kp);
        mcnn_gemm_pack_a(0, (const float *)rows, kp, 0, w, 0, kp, NR, 0, 1,
                         (float *)(dst + (size_t)q * kp * NR), 1);
    }
}

/* Row panel r of C: A's rows packed into panel (rows: MR x kp words of scratch), then one
 * kernel call per column panel, then alpha. */
static void row_panel(const mcnn_lowp_kernel *k, int r, int M, int N, int K, float alpha,
                      const float *A, int lda, const uint32_t *bp, float *C, int ldc,
                      uint32_t *rows, uint32_t *panel)
{
    const int MR = MCNN_BF16X2_MR, NR = k->nr, kp = (K + 1) / 2;
    const int h = M - r * MR < MR ? M - r * MR : MR;
    for (int i = 0; i < h; i++)
        mcnn_bf16_pair_row(A + (size_t)(r * MR + i) * lda, K, rows + (size_t)i * kp);
    mcnn_gemm_pack_a(0, (const float *)rows, kp, 0, h, 0, kp, MR, 0, 1, (float *)panel, 1);
    float *c = C + (size_t)r * MR * ldc;
    for (int q = 0; q * NR < N; q++) {
        const int w = N - q * NR < NR ? N - q * NR : NR;
        k->bf16x2(kp, panel, bp + (size_t)q * kp * NR, c + q * NR, ldc, h, w, 0.0f);
    }
    if (alpha != 1.0f)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < N; j++) c[(size_t)i * ldc + j] *= alpha;
}

mcnn_status mcnn_gemm_bf16_act(const mcnn_lowp_kernel *k, int trans_b, int M, int N, int K,
                               float alpha, const float *A, int lda, const float *B, int ldb,
                               float *C, int ldc)
{
    if (!k || !k->bf16x2)
        return mcnn_set_error(MCNN_ERR_ARG, "bf16 activation GEMM: kernel %s sums no k pairs",
                              k ? k->name : "(none)");
    if (M < 0 || N < 0 || K <= 0 || lda < K || ldc < N || ldb < (trans_b ? K : N))
        return mcnn_set_error(MCNN_ERR_ARG, "bf16 activation GEMM: M %d N %d K %d, lda %d "
                              "ldb %d ldc %d", M, N, K, lda, ldb, ldc);
    if (M == 0 || N == 0) return MCNN_OK;
    const int MR = MCNN_BF16X2_MR, NR = k->nr, kp = (K + 1) / 2;
    const int nt = mcnn_lowp_want_threads((double)M * N * K), panels = ceil_div(M, MR);
    /* scratch: B's panels, then per thread A's rows and panel (B's rows borrow thread 0's,
     * which NR x kp words hold) */
    const size_t bwords = (size_t)ceil_div(N, NR) * kp * NR;
    const size_t awords = (size_t)(MR > NR ? MR : NR) * kp + (size_t)MR * kp;
    uint32_t *buf = (uint32_t *)mcnn_gemm_scratch(bwords + (size_t)nt * awords);
    if (!buf)
        return mcnn_set_error(MCNN_ERR_NOMEM, "bf16 activation GEMM: packing %d x %d x %d",
                              M, N, K);
    uint32_t *bp = buf, *own = buf + bwords;
    pack_b(trans_b, N, K, B, ldb, NR, bp, own);
    const size_t rows_words = (size_t)(MR > NR ? MR : NR) * kp;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (int r = 0; r < panels; r++) {
        /* one thread may be a member of the caller's region: its number is not ours */
        uint32_t *mine = own + (size_t)(nt > 1 ? thread_id() : 0) * awords;
        row_panel(k, r, M, N, K, alpha, A, lda, bp, C, ldc, mine, mine + rows_words);
    }
    return MCNN_OK;
}
