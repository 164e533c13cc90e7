/* The AVX512_VNNI int8 micro-kernel and its 8-bit activation quantizer (docs/precision.md,
 * "What the kernels do").
 *
 *   acc[i][j] = Σ_k qa[i][k] · qw[k][j]        qa uint8 0..255, qw int8 -127..127, exact int32
 *   y[i][j]   = (acc - z_i · Σ_k qw[k][j]) · (sx_i · sw_j) + bias_j  (+ beta · y)
 *
 * vpdpbusd multiplies 64 uint8 by 64 int8 and adds each group of 4 products straight into one
 * of 16 int32 lanes: 64 multiply-adds in one instruction where AVX2 needs three for 32, and no
 * int16 pair sum to saturate, so the activations get their 8th bit (0..255, twice AVX2's
 * resolution).  The weight panels are lowp_int8.c's layout (per group of 4 k, the 4 bytes of
 * each column together), 32 columns wide: two zmm loads per group.
 *
 * The epilogue is done on the tile in registers with mcnn_int8_dequant's float operations in
 * its order; right-edge tiles use masked loads and stores instead of a copy.  No FMA
 * contraction in this file (target avx512f brings FMA with it): every kernel and the test's
 * reference round alike. */
#include "lowp_internal.h"

#include <math.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#include <immintrin.h>

/* CPUID leaf 7: EBX bit 30 AVX512BW, ECX bit 11 AVX512_VNNI (by number: clang 14's
 * __builtin_cpu_supports has no name for VNNI); avx512f also checks that the OS saves the
 * zmm registers. */
int mcnn_cpu_has_avx512_vnni(void)
{
    unsigned a, b, c, d;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 30 & 1u) && (c >> 11 & 1u);
}

#define MR MCNN_VNNI_MR /* the 8 named rows below */
#define NR MCNN_VNNI_NR
#define G MCNN_INT8_KGROUP

/* acc += the 4-byte dot products of a (uint8) and b (int8).  GCC 12 copies every accumulator
 * to another register and back around the intrinsic (32 extra moves per group of 4 k); the
 * same instruction as inline assembly keeps each accumulator in place. */
#if defined(__clang__)
#define DPBUSD(acc, a, b) ((acc) = _mm512_dpbusd_epi32((acc), (a), (b)))
#else
#define DPBUSD(acc, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
#endif

/* 8 x 32 tile: 16 zmm accumulators, two weight registers and the broadcast row, of AVX-512's
 * 32.  Per group of 4 k: two 64-byte weight loads, one 4-byte broadcast per row, 16 vpdpbusd.
 * Rows past m read row m-1 again (their sums are dropped), as the AVX2 kernel. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void
mcnn_int8_micro_avx512_vnni(int kq, const uint8_t *restrict a, size_t lda,
                            const int8_t *restrict b, const mcnn_int8_epilogue *e, float *y,
                            size_t ldc, int m, int n)
{
    const uint8_t *r[MR];
    for (int i = 0; i < MR; i++) r[i] = a + (size_t)(i < m ? i : m - 1) * lda;
    /* named accumulators: in an array GCC keeps them in memory around the assembly */
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
            c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00,
            c61 = c00, c70 = c00, c71 = c00;
#define VNNI_ROW(i, ca, cb)                                                                    \
    do {                                                                                       \
        int32_t four;                                                                          \
        memcpy(&four, r[i] + G * g, sizeof four);                                              \
        __m512i ai = _mm512_set1_epi32(four);                                                  \
        DPBUSD(ca, ai, b0);                                                                    \
        DPBUSD(cb, ai, b1);                                                                    \
    } while (0)
    for (int g = 0; g < kq; g++, b += G * NR) {
        __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 64);
        VNNI_ROW(0, c00, c01);
        VNNI_ROW(1, c10, c11);
        VNNI_ROW(2, c20, c21);
        VNNI_ROW(3, c30, c31);
        VNNI_ROW(4, c40, c41);
        VNNI_ROW(5, c50, c51);
        VNNI_ROW(6, c60, c61);
        VNNI_ROW(7, c70, c71);
    }
#undef VNNI_ROW
    __m512i c[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                        {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    /* mcnn_int8_dequant 16 at a time: (acc - z·Σqw) exact in int32, to float, · (sx·sw),
     * + bias, then + beta·y; columns past n masked off (never loaded, never stored) */
    __mmask16 keep[2] = {n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1),
                         n >= 32 ? 0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0};
    __m512i qs[2];
    __m512 sw[2], bias[2];
    for (int v = 0; v < 2; v++) {
        qs[v] = _mm512_maskz_loadu_epi32(keep[v], e->qsum + 16 * v);
        sw[v] = _mm512_maskz_loadu_ps(keep[v], e->sw + 16 * v);
        bias[v] = e->bias ? _mm512_maskz_loadu_ps(keep[v], e->bias + 16 * v)
                          : _mm512_setzero_ps();
    }
    const __m512 beta = _mm512_set1_ps(e->beta);
    for (int i = 0; i < MR && i < m; i++) {
        __m512i z = _mm512_set1_epi32(e->zx[i]);
        __m512 sx = _mm512_set1_ps(e->sx[i]);
        for (int v = 0; v < 2; v++) {
            __m512i exact = _mm512_sub_epi32(c[i][v], _mm512_mullo_epi32(z, qs[v]));
            __m512 val = _mm512_mul_ps(_mm512_cvtepi32_ps(exact), _mm512_mul_ps(sx, sw[v]));
            val = _mm512_add_ps(val, bias[v]);
            float *yv = y + (size_t)i * ldc + 16 * v;
            if (e->beta != 0.0f)
                val = _mm512_add_ps(val, _mm512_mul_ps(beta, _mm512_maskz_loadu_ps(keep[v], yv)));
            _mm512_mask_storeu_ps(yv, keep[v], val);
        }
    }
}

/* mcnn_quant_act_row_max with AVX-512, 16 at a time (the tail masked): the same float
 * operations in the same order, so the same bits.  The range: vminps/vmaxps, reduced across
 * lanes (min and max are exact, so the order does not matter; a -0 is made 0 below); NaN and
 * inf by x - x, which is NaN for them and sticks in a sum.  Then in integers: vcvtps2dq rounds
 * as nearbyintf does (the current mode, to nearest even), |x · r| <= a_max or so, and the
 * clamp to [0, a_max] is exact in int32: the same codes as rounding, adding and clamping in
 * float. */
__attribute__((target("avx512f,avx512bw"))) static float quant_act_avx512(const float *x, int K,
                                                                          int a_max, uint8_t *q,
                                                                          int32_t *zero)
{
    __m512 vlo = _mm512_setzero_ps(), vhi = vlo, bad = vlo;
    for (int k = 0; k < K; k += 16) {
        __mmask16 in = K - k >= 16 ? 0xffff : (__mmask16)((1u << (K - k)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(in, x + k); /* past K: 0, inside the range */
        bad = _mm512_add_ps(bad, _mm512_sub_ps(v, v));
        vlo = _mm512_min_ps(vlo, v), vhi = _mm512_max_ps(vhi, v);
    }
    if (isnan(_mm512_reduce_add_ps(bad))) {
        memset(q, 0, (size_t)K);
        *zero = 0;
        return NAN;
    }
    float lo = _mm512_reduce_min_ps(vlo), hi = _mm512_reduce_max_ps(vhi);
    lo = lo < 0.0f ? lo : 0.0f, hi = hi > 0.0f ? hi : 0.0f; /* -0 -> 0, as the definition */
    float r, z, s = mcnn_quant_act_scale(lo, hi, a_max, &r, &z);
    *zero = (int32_t)z;
    const __m512 vr = _mm512_set1_ps(r);
    const __m512i vz = _mm512_set1_epi32((int32_t)z), vmax = _mm512_set1_epi32(a_max),
                  v0 = _mm512_setzero_si512();
    for (int k = 0; k < K; k += 16) {
        __mmask16 in = K - k >= 16 ? 0xffff : (__mmask16)((1u << (K - k)) - 1);
        __m512i i32 = _mm512_add_epi32(
            _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(in, x + k), vr)), vz);
        i32 = _mm512_min_epi32(_mm512_max_epi32(i32, v0), vmax);
        _mm512_mask_cvtepi32_storeu_epi8(q + k, in, i32);
    }
    return s;
}

float mcnn_quant_act_row8_avx512(const float *x, int K, uint8_t *q, int32_t *zero)
{
    return quant_act_avx512(x, K, MCNN_INT8_A_MAX_VNNI, q, zero);
}
#endif
