/* The quantizers of the reduced-precision GEMM: fp32 -> bf16, and fp32 -> int8 / uint8 with a
 * scale (and a zero point), exactly as defined in lowp_internal.h and docs/precision.md, in
 * plain C; and the activation quantizer's AVX2 twin (it runs on every row of every int8 GEMM:
 * at K = 64 a scalar one cost as much as the multiply-adds). */
#include "lowp_internal.h"
#include "ops/vmath.h" /* MCNN_SIMD_CLONES */

#include <float.h>
#include <math.h>
#include <string.h>

uint16_t mcnn_bf16_from_float(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)           /* NaN: keep the sign, set the quiet bit */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);                 /* to nearest; a tie goes to the even one */
    return (uint16_t)(u >> 16);                      /* (the largest floats round up to inf)   */
}

void mcnn_bf16_round(const float *x, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = mcnn_bf16_to_float(mcnn_bf16_from_float(x[i]));
}

/* Runs on every row of x of every bf16 GEMM on the pair kernel: cloned for AVX-512 / AVX2
 * (static: clang 14 leaves an exported clone's symbol undefined in the shared library). */
static MCNN_SIMD_CLONES void pair_row(const float *x, int kc, uint32_t *dst)
{
    for (int p = 0; p < kc / 2; p++)
        dst[p] = (uint32_t)mcnn_bf16_from_float(x[2 * p]) |
                 (uint32_t)mcnn_bf16_from_float(x[2 * p + 1]) << 16;
    if (kc % 2) dst[kc / 2] = mcnn_bf16_from_float(x[kc - 1]);
}

void mcnn_bf16_pair_row(const float *x, int kc, uint32_t *dst) { pair_row(x, kc, dst); }

void mcnn_bf16_pack_pairs_t(const float *xt, int ldx, int i0, int mc, int p0, int kc, int mr,
                            uint32_t *dst)
{
    const int kp = (kc + 1) / 2;
    for (int r = 0; r * mr < mc; r++, dst += (size_t)kp * mr) {
        const int row = i0 + r * mr, h = mc - r * mr < mr ? mc - r * mr : mr;
        for (int p = 0; p < kp; p++) {
            const float *lo = xt + (size_t)(p0 + 2 * p) * ldx + row, *hi = lo + ldx;
            uint32_t *d = dst + (size_t)p * mr;
            if (2 * p + 1 < kc)
                for (int i = 0; i < h; i++)
                    d[i] = (uint32_t)mcnn_bf16_from_float(lo[i]) |
                           (uint32_t)mcnn_bf16_from_float(hi[i]) << 16;
            else /* an odd K's last k: paired with the padding's zero */
                for (int i = 0; i < h; i++) d[i] = mcnn_bf16_from_float(lo[i]);
            for (int i = h; i < mr; i++) d[i] = 0;
        }
    }
}

float mcnn_quant_weight_row(const float *w, int K, int8_t *q, int32_t *qsum)
{
    float amax = 0.0f;
    int finite = 1;
    for (int k = 0; k < K; k++) {
        if (!isfinite(w[k])) finite = 0;
        else if (fabsf(w[k]) > amax) amax = fabsf(w[k]);
    }
    *qsum = 0;
    if (!finite || amax == 0.0f) {
        for (int k = 0; k < K; k++) q[k] = 0;
        return finite ? 0.0f : NAN;
    }
    float s = amax / 127.0f;
    for (int k = 0; k < K; k++) {
        float r = nearbyintf(w[k] / s);             /* |w / s| <= 127 up to rounding of s */
        r = r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
        q[k] = (int8_t)r;
        *qsum += q[k];
    }
    return s;
}

float mcnn_quant_act_scale(float lo, float hi, int a_max, float *r, float *z)
{
    const float qmax = (float)a_max;
    *r = qmax / (hi - lo), *z = 0.0f;
    if (hi == lo || !(*r <= FLT_MAX)) {              /* all zero, or a range below 3.7e-37 */
        *r = 0.0f;
        return 1.0f;
    }
    float zr = nearbyintf(-lo * *r);
    *z = zr > qmax ? qmax : zr < 0.0f ? 0.0f : zr;
    return (hi - lo) / qmax;
}

float mcnn_quant_act_row_max(const float *x, int K, int a_max, uint8_t *q, int32_t *zero)
{
    float lo = 0.0f, hi = 0.0f;
    int finite = 1;
    for (int k = 0; k < K; k++) {
        if (!isfinite(x[k])) finite = 0;
        else if (x[k] < lo) lo = x[k];
        else if (x[k] > hi) hi = x[k];
    }
    float r, z, s = mcnn_quant_act_scale(lo, hi, a_max, &r, &z);
    *zero = (int32_t)z;
    if (!finite) {
        memset(q, 0, (size_t)K);
        *zero = 0;
        return NAN;
    }
    const float qmax = (float)a_max;
    for (int k = 0; k < K; k++) {
        float v = nearbyintf(x[k] * r) + z;
        q[k] = (uint8_t)(v > qmax ? qmax : v < 0.0f ? 0.0f : v);
    }
    return s;
}

float mcnn_quant_act_row(const float *x, int K, uint8_t *q, int32_t *zero)
{
    return mcnn_quant_act_row_max(x, K, MCNN_INT8_A_MAX, q, zero);
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

/* The same with AVX2, 8 at a time (the tail as above): the same float operations in the same
 * order, so the same bits.  vminps/vmaxps skip the NaN test, done apart: x - x is 0 for a
 * finite x and NaN for inf or NaN, and NaN sticks in a sum.  No FMA (target avx2 only). */
__attribute__((target("avx2"))) float mcnn_quant_act_row_avx2(const float *x, int K, uint8_t *q,
                                                              int32_t *zero)
{
    __m256 vlo = _mm256_setzero_ps(), vhi = vlo, bad = vlo;
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 v = _mm256_loadu_ps(x + k);
        bad = _mm256_add_ps(bad, _mm256_sub_ps(v, v));
        vlo = _mm256_min_ps(vlo, v), vhi = _mm256_max_ps(vhi, v);
    }
    /* across the 8 lanes: halves, then pairs, then neighbours; a lane may hold -0 (vminps
     * keeps its second operand when both compare equal), made 0 below */
    __m128 l4 = _mm_min_ps(_mm256_castps256_ps128(vlo), _mm256_extractf128_ps(vlo, 1));
    __m128 h4 = _mm_max_ps(_mm256_castps256_ps128(vhi), _mm256_extractf128_ps(vhi, 1));
    __m128 b4 = _mm_add_ps(_mm256_castps256_ps128(bad), _mm256_extractf128_ps(bad, 1));
    l4 = _mm_min_ps(l4, _mm_movehl_ps(l4, l4)), h4 = _mm_max_ps(h4, _mm_movehl_ps(h4, h4));
    b4 = _mm_add_ps(b4, _mm_movehl_ps(b4, b4));
    l4 = _mm_min_ss(l4, _mm_shuffle_ps(l4, l4, 1)), h4 = _mm_max_ss(h4, _mm_shuffle_ps(h4, h4, 1));
    b4 = _mm_add_ss(b4, _mm_shuffle_ps(b4, b4, 1));
    float lo = _mm_cvtss_f32(l4), hi = _mm_cvtss_f32(h4);
    lo = lo < 0.0f ? lo : 0.0f, hi = hi > 0.0f ? hi : 0.0f; /* -0 -> 0, as the definition */
    int finite = !isnan(_mm_cvtss_f32(b4));
    for (int t = k; t < K; t++) {
        if (!isfinite(x[t])) finite = 0;
        else if (x[t] < lo) lo = x[t];
        else if (x[t] > hi) hi = x[t];
    }
    if (!finite) {
        memset(q, 0, (size_t)K);
        *zero = 0;
        return NAN;
    }
    float r, z, s = mcnn_quant_act_scale(lo, hi, MCNN_INT8_A_MAX, &r, &z);
    *zero = (int32_t)z;
    const float qmax = (float)MCNN_INT8_A_MAX;
    /* In integers: vcvtps2dq rounds as nearbyintf does (the current mode, to nearest even),
     * |x · r| <= 127 or so, and the clamp to [0, 127] is the saturating pack to uint8 (below 0)
     * and a byte minimum (above 127): the same integers as rounding, adding and clamping in
     * float. */
    const __m256 vr = _mm256_set1_ps(r);
    const __m256i vz = _mm256_set1_epi32((int32_t)z), vmax = _mm256_set1_epi8((char)qmax);
    k = 0;
    for (; k + 32 <= K; k += 32) {
        __m256i i32[4];
        for (int u = 0; u < 4; u++)
            i32[u] = _mm256_add_epi32(
                _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 8 * u), vr)), vz);
        /* 32 -> 16 -> 8 bits; the packs interleave 128-bit lanes, the permute puts them back */
        __m256i w = _mm256_packus_epi16(_mm256_packs_epi32(i32[0], i32[1]),
                                        _mm256_packs_epi32(i32[2], i32[3]));
        w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + k), _mm256_min_epu8(w, vmax));
    }
    for (; k < K; k++) {
        float v = nearbyintf(x[k] * r) + z;
        q[k] = (uint8_t)(v > qmax ? qmax : v < 0.0f ? 0.0f : v);
    }
    return s;
}
#endif
