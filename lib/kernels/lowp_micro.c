/* Micro-kernels of the reduced-precision GEMM (the tile loop of gemm_micro.c with other
 * element types; docs/precision.md).
 *
 *   bf16  acc[i][j] += a[k][i] * widen(b[k][j])   a: fp32 holding bf16 values, b: bf16 bits.
 *         Widening bf16 to fp32 is exact (append 16 zero bits), so on a CPU without
 *         AVX512_BF16 the products are those of the rounded operands and only the fp32
 *         summation rounds.  The AVX2 kernel is the fp32 6x16 loop with a widening load.
 *   int8  acc[i][j] += qa[i][2p] * qw[2p][j] + qa[i][2p+1] * qw[2p+1][j]: k in pairs, because
 *         AVX2's vpmaddwd multiplies 16-bit pairs and adds each pair into one int32 lane.  The
 *         weights are stored as int8 and sign-extended to 16 bits as they are loaded
 *         (vpmovsxbw), the activations (uint8, 0..255) as 16-bit pairs, so no product or pair sum
 *         can saturate (vpmaddubsw, u8 x s8 summed into int16, could: 2 * 255 * 127 > 32767).
 *         Integer sums are exact, so the plain and AVX2 kernels give the same bits.
 * The integer kernel needs <immintrin.h>: GNU C vector extensions have no pairwise
 * multiply-add.  Kernels are compiled with target attributes and picked at run time, as the
 * fp32 ones. */
#include "lowp_internal.h"

#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#elif defined(__clang__)
#pragma clang fp contract(fast)
#endif

/* ---- plain twins ----------------------------------------------------------------------------- */
#define PLAIN_MR 6
#define PLAIN_NR 8

static void bf16_plain(int kc, const float *restrict a, const uint16_t *restrict b,
                       float *restrict c, int ldc, int m, int n, float beta)
{
    float acc[PLAIN_MR][PLAIN_NR] = {{0}};
    for (int k = 0; k < kc; k++, a += PLAIN_MR, b += PLAIN_NR) {
        float bk[PLAIN_NR];
        for (int j = 0; j < PLAIN_NR; j++) bk[j] = mcnn_bf16_to_float(b[j]);
        for (int i = 0; i < PLAIN_MR; i++)
#pragma omp simd
            for (int j = 0; j < PLAIN_NR; j++) acc[i][j] += a[i] * bk[j];
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float *cij = c + (size_t)i * ldc + j;
            *cij = beta == 0.0f ? acc[i][j] : acc[i][j] + beta * *cij;
        }
}

static void int8_plain(int kp, const uint32_t *restrict a, const int8_t *restrict b,
                       int32_t *restrict acc)
{
    memset(acc, 0, sizeof(int32_t) * PLAIN_MR * PLAIN_NR);
    for (int p = 0; p < kp; p++, a += PLAIN_MR, b += 2 * PLAIN_NR)
        for (int i = 0; i < PLAIN_MR; i++) {
            int32_t a0 = (int32_t)(a[i] & 0xffffu), a1 = (int32_t)(a[i] >> 16);
            for (int j = 0; j < PLAIN_NR; j++)
                acc[i * PLAIN_NR + j] += a0 * b[2 * j] + a1 * b[2 * j + 1];
        }
}

/* ---- AVX2 ------------------------------------------------------------------------------------- */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_AVX2_KERNELS 1
#include <immintrin.h>

typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x8u __attribute__((vector_size(32), aligned(4), may_alias));
typedef uint16_t u16x8u __attribute__((vector_size(16), aligned(2), may_alias));
typedef uint32_t u32x8 __attribute__((vector_size(32)));

#define AVX2_MR 6
#define AVX2_NR 16

/* 8 bf16 at p as 8 floats: zero-extend to 32 bits, shift into the high half (vpmovzxwd, vpslld). */
#define WIDEN_BF16(p) ((f32x8)(__builtin_convertvector(*(const u16x8u *)(p), u32x8) << 16))

__attribute__((target("avx2,fma"))) static void bf16_avx2(int kc, const float *restrict a,
                                                           const uint16_t *restrict b,
                                                           float *restrict c, int ldc, int m,
                                                           int n, float beta)
{
    f32x8 acc[AVX2_MR][2];
    for (int i = 0; i < AVX2_MR; i++) acc[i][0] = acc[i][1] = (f32x8){0};
    for (int k = 0; k < kc; k++, a += AVX2_MR, b += AVX2_NR) {
        f32x8 b0 = WIDEN_BF16(b), b1 = WIDEN_BF16(b + 8);
        for (int i = 0; i < AVX2_MR; i++) {
            acc[i][0] += a[i] * b0; /* broadcast * vector: one FMA */
            acc[i][1] += a[i] * b1;
        }
    }
    if (m == AVX2_MR && n == AVX2_NR) {
        for (int i = 0; i < AVX2_MR; i++)
            for (int v = 0; v < 2; v++) {
                f32x8u *cv = (f32x8u *)(c + (size_t)i * ldc + 8 * v);
                *cv = beta == 0.0f ? acc[i][v] : acc[i][v] + beta * *cv;
            }
        return;
    }
    float t[AVX2_MR][AVX2_NR];
    for (int i = 0; i < AVX2_MR; i++)
        for (int v = 0; v < 2; v++) *(f32x8u *)&t[i][8 * v] = acc[i][v];
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float *cij = c + (size_t)i * ldc + j;
            *cij = beta == 0.0f ? t[i][j] : t[i][j] + beta * *cij;
        }
}

__attribute__((target("avx2"))) static void int8_avx2(int kp, const uint32_t *restrict a,
                                                      const int8_t *restrict b,
                                                      int32_t *restrict acc_out)
{
    __m256i acc[AVX2_MR][2];
    for (int i = 0; i < AVX2_MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    for (int p = 0; p < kp; p++, a += AVX2_MR, b += 2 * AVX2_NR) {
        /* columns 0..7 and 8..15, each lane a (k, k+1) pair of int16 */
        __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b));
        __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 16)));
        for (int i = 0; i < AVX2_MR; i++) {
            __m256i ai = _mm256_set1_epi32((int)a[i]);
            acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(ai, b0));
            acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(ai, b1));
        }
    }
    for (int i = 0; i < AVX2_MR; i++) {
        _mm256_storeu_si256((__m256i *)(acc_out + i * AVX2_NR), acc[i][0]);
        _mm256_storeu_si256((__m256i *)(acc_out + i * AVX2_NR + 8), acc[i][1]);
    }
}
#endif

/* Blocks: the fp32 kernels' (the tiles are the same shape); to be tuned with
 * bench/bench_gemm_lowp.c.  int8 keeps the whole K in one block (its int32 sums cannot be
 * split without a second pass): kc applies to bf16 only. */
const mcnn_lowp_kernel mcnn_lowp_kernels[] = {
#ifdef HAVE_AVX2_KERNELS
    {"avx2", 1, bf16_avx2, int8_avx2, AVX2_MR, AVX2_NR, 256, 120, 2048},
#endif
    {"plain", 0, bf16_plain, int8_plain, PLAIN_MR, PLAIN_NR, 256, 120, 2048},
    {0},
};
