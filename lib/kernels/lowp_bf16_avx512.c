/* The bf16 micro-kernel for CPUs with AVX512_BF16: vdpbf16ps, bf16 pairs into fp32
 * (docs/precision.md, "What the kernels do").
 *
 *   vdpbf16ps acc, a, b     per fp32 lane l of 16:
 *       acc[l] = (acc[l] + a.hi[l] * b.hi[l]) + a.lo[l] * b.lo[l]
 *   where each 32-bit lane holds two bf16, lo in bits 0-15 and hi in bits 16-31.  A product of
 *   two bf16 (8-bit significands) is exact in fp32; each of the two additions rounds to
 *   nearest even.  Denormal bf16 inputs count as zero and denormal results become zero,
 *   whatever MXCSR says.
 *
 * So one lane takes two consecutive k at once (kgroup 2): the weight panel holds per k pair p
 * and column j the word  w[2p][j] | w[2p+1][j] << 16  (NR words per pair, K padded to even
 * with a zero k), and A's panel per pair and row i the word  a[i][2p] | a[i][2p+1] << 16,
 * broadcast to all 16 lanes.  Per pair and row: two instructions for 32 columns, 64 multiply-
 * adds, where the fp32 kernel's two FMAs do 32.
 *
 *   acc[i][0..15] += a(i, pair p) * b(pair p, columns 0..15)      (vdpbf16ps, broadcast a)
 *   acc[i][16..31] += a(i, pair p) * b(pair p, columns 16..31)
 *
 * The tile is MR x 32 (2 zmm accumulators per row, MR x 2 of the 32 registers); an edge tile
 * with few rows runs a shorter copy of the loop (rows in steps of 4), and columns past n are
 * masked off in the write-back. */
#include "lowp_internal.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#include <immintrin.h>

/* CPUID leaf 7 sub-leaf 1, EAX bit 5 (sub-leaf 1 exists when leaf 7.0 EAX >= 1).  The level
 * (2) already made sure of AVX-512F and the OS's saving of the zmm state. */
int mcnn_cpu_has_avx512_bf16(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (int)(a >> 5 & 1u);
}

#define TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

/* ROWS accumulator rows (a constant after inlining, so acc stays in registers) of a tile
 * whose A panel has MCNN_BF16X2_MR rows per pair. */
TARGET static inline __attribute__((always_inline)) void
pairs_tile(const int ROWS, int kp, const uint32_t *restrict a, const uint32_t *restrict b,
           float *restrict c, int ldc, int m, int n, float beta)
{
    __m512 acc[MCNN_BF16X2_MR][2];
    for (int i = 0; i < ROWS; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++, a += MCNN_BF16X2_MR, b += 32) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 16);
        for (int i = 0; i < ROWS; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
    }
    /* columns [0, n) of the two vectors */
    __mmask16 k0 = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
    __mmask16 k1 = n >= 32 ? (__mmask16)0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
    __m512 vb = _mm512_set1_ps(beta);
    for (int i = 0; i < ROWS; i++) {
        if (i >= m) break;
        float *ci = c + (size_t)i * ldc;
        if (beta != 0.0f) {
            acc[i][0] = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(k0, ci), acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(k1, ci + 16), acc[i][1]);
        }
        _mm512_mask_storeu_ps(ci, k0, acc[i][0]);
        _mm512_mask_storeu_ps(ci + 16, k1, acc[i][1]);
    }
}

TARGET void mcnn_bf16x2_micro_avx512(int kp, const uint32_t *restrict a,
                                     const uint32_t *restrict b, float *restrict c, int ldc,
                                     int m, int n, float beta)
{
    if (m > 8) pairs_tile(MCNN_BF16X2_MR, kp, a, b, c, ldc, m, n, beta);
    else if (m > 4) pairs_tile(8, kp, a, b, c, ldc, m, n, beta);
    else pairs_tile(4, kp, a, b, c, ldc, m, n, beta);
}

#endif
