/* The int8 micro-kernels and their epilogue (docs/precision.md, "What the kernels do").
 *
 *   acc[i][j] = Σ_k qa[i][k] · qw[k][j]        qa uint8 0..127, qw int8 -127..127, exact int32
 *   y[i][j]   = (acc - z_i · Σ_k qw[k][j]) · (sx_i · sw_j) + bias_j  (+ beta · y)
 *
 * AVX2 has no instruction that multiplies bytes into int32 sums directly (that is VNNI's
 * vpdpbusd).  The fast way is vpmaddubsw: 32 uint8 × int8 products, adjacent pairs added into
 * 16 int16 (saturating), then vpmaddwd by ones adds adjacent int16 pairs into 8 int32, and
 * vpaddd accumulates: 32 multiply-adds in three instructions, twice vpmaddwd's 16 in two.  The
 * pair sum is exact only if it fits an int16: 7-bit activations make it so (2 · 127 · 127 =
 * 32258 <= 32767; see lowp_internal.h).  So one int32 lane sums a group of 4 k, and the
 * weight panels hold, per group of 4 k, the 4 bytes of each column together.
 *
 * The epilogue is done in the kernel, on the tile still in registers, with the float
 * operations of mcnn_int8_dequant in its order.  This file has no FMA contraction (ISO C
 * for GCC, and said again below for both compilers), so the plain and vector kernels and the
 * test's reference round alike: the plain and AVX2 kernels give the same bits. */
#include "lowp_internal.h"

#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

void mcnn_int8_epilogue_tile(const int32_t *acc, int nr, const mcnn_int8_epilogue *e, float *y,
                             size_t ldc, int m, int n)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float *yij = y + (size_t)i * ldc + j;
            float v = mcnn_int8_dequant(acc[i * nr + j], e->zx[i], e->qsum[j], e->sx[i], e->sw[j],
                                        e->bias ? e->bias[j] : 0.0f);
            if (e->beta != 0.0f) {
                float old = e->beta * *yij;
                v = v + old;
            }
            *yij = v;
        }
}

#define PLAIN_MR 6
#define PLAIN_NR 8
#define G MCNN_INT8_KGROUP

void mcnn_int8_micro_plain(int kq, const uint8_t *restrict a, size_t lda,
                           const int8_t *restrict b, const mcnn_int8_epilogue *e, float *y,
                           size_t ldc, int m, int n)
{
    int32_t acc[PLAIN_MR * PLAIN_NR] = {0};
    for (int i = 0; i < m; i++) {
        const uint8_t *ai = a + (size_t)i * lda;
        for (int g = 0; g < kq; g++)
            for (int j = 0; j < PLAIN_NR; j++)
                for (int t = 0; t < G; t++)
                    acc[i * PLAIN_NR + j] += ai[G * g + t] * b[(size_t)g * G * PLAIN_NR + G * j + t];
    }
    mcnn_int8_epilogue_tile(acc, PLAIN_NR, e, y, ldc, m, n);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

#define AVX2_MR 4
#define AVX2_NR 16

/* 4 x 16 tile: 8 int32 accumulators (6 x 16 would need 12: with the weights, the broadcast,
 * the ones and the products that is more than AVX2's 16 registers, and GCC spilled them); per group of 4 k two 32-byte weight loads (columns 0..7
 * and 8..15, 4 bytes each) and one broadcast of each row's 4 activation bytes.  Rows past m
 * read row m-1 again (their sums are dropped), so edge tiles need no padded copy of A. */
__attribute__((target("avx2"))) void mcnn_int8_micro_avx2(int kq, const uint8_t *restrict a,
                                                          size_t lda, const int8_t *restrict b,
                                                          const mcnn_int8_epilogue *e, float *y,
                                                          size_t ldc, int m, int n)
{
    const uint8_t *r0 = a, *r1 = a + (size_t)(m > 1) * lda, *r2 = a + (size_t)(m > 2 ? 2 : m - 1) * lda,
                  *r3 = a + (size_t)(m > 3 ? 3 : m - 1) * lda;
    const __m256i ones = _mm256_set1_epi16(1);
    /* named accumulators: in an array GCC kept some in memory */
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
            c30 = c00, c31 = c00;
#define INT8_ROW(r, ca, cb)                                                                    \
    do {                                                                                       \
        int32_t four;                                                                          \
        memcpy(&four, (r) + G * g, sizeof four);                                               \
        __m256i ai = _mm256_set1_epi32(four);                                                  \
        ca = _mm256_add_epi32(ca, _mm256_madd_epi16(_mm256_maddubs_epi16(ai, b0), ones));      \
        cb = _mm256_add_epi32(cb, _mm256_madd_epi16(_mm256_maddubs_epi16(ai, b1), ones));      \
    } while (0)
    for (int g = 0; g < kq; g++, b += G * AVX2_NR) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 32));
        INT8_ROW(r0, c00, c01);
        INT8_ROW(r1, c10, c11);
        INT8_ROW(r2, c20, c21);
        INT8_ROW(r3, c30, c31);
    }
#undef INT8_ROW
    __m256i acc[AVX2_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    if (n < AVX2_NR) { /* a right-edge tile: through memory, the plain epilogue */
        int32_t t[AVX2_MR * AVX2_NR];
        for (int i = 0; i < AVX2_MR; i++) {
            _mm256_storeu_si256((__m256i *)(t + i * AVX2_NR), acc[i][0]);
            _mm256_storeu_si256((__m256i *)(t + i * AVX2_NR + 8), acc[i][1]);
        }
        mcnn_int8_epilogue_tile(t, AVX2_NR, e, y, ldc, m, n);
        return;
    }
    /* mcnn_int8_dequant 8 at a time: (acc - z·Σqw) exact in int32, to float, · (sx·sw), + bias,
     * then + beta·y: the same operations in the same order */
    __m256i qs[2];
    __m256 sw[2], bias[2];
    for (int v = 0; v < 2; v++) {
        qs[v] = _mm256_loadu_si256((const __m256i *)(e->qsum + 8 * v));
        sw[v] = _mm256_loadu_ps(e->sw + 8 * v);
        bias[v] = e->bias ? _mm256_loadu_ps(e->bias + 8 * v) : _mm256_setzero_ps();
    }
    const __m256 beta = _mm256_set1_ps(e->beta);
    for (int i = 0; i < m; i++) {
        __m256i z = _mm256_set1_epi32(e->zx[i]);
        __m256 sx = _mm256_set1_ps(e->sx[i]);
        for (int v = 0; v < 2; v++) {
            __m256i exact = _mm256_sub_epi32(acc[i][v], _mm256_mullo_epi32(z, qs[v]));
            __m256 val = _mm256_mul_ps(_mm256_cvtepi32_ps(exact), _mm256_mul_ps(sx, sw[v]));
            val = _mm256_add_ps(val, bias[v]);
            float *yv = y + (size_t)i * ldc + 8 * v;
            if (e->beta != 0.0f) val = _mm256_add_ps(val, _mm256_mul_ps(beta, _mm256_loadu_ps(yv)));
            _mm256_storeu_ps(yv, val);
        }
    }
}
#endif
