/* exp and erfc for element-wise loops that the compiler can vectorise.
 *
 * libm's expf and erfcf are calls, so a loop over them runs one element at a time (about 10 ns
 * each: 10% of a ViT-B/16 forward went to GELU's erfcf).  These are the classic formulas written
 * as straight-line float arithmetic, no calls, no branches, so `#pragma omp simd` turns a loop
 * of them into vector code:
 *
 *   e^x:     x = n·ln2 + r, |r| <= ln2/2 (n rounded with the 1.5·2^23 trick, ln2 in two parts
 *            so that n·ln2 is exact: Cody and Waite), e^r by Cephes' expf polynomial
 *            1 + r + r²·P(r), then times 2^n built in the exponent bits.  2^n is applied as
 *            2^(n/2)·2^(n - n/2), so results down to the smallest subnormal round correctly.
 *   erfc(z): for z >= 0, t = 1/(1 + z/2) and erfc(z) = t·exp(-z² + Q(t)), Q a degree-9
 *            Chebyshev fit (Numerical Recipes' erfcc, relative error < 1.2e-7 for every
 *            z >= 0: the tail keeps full relative precision); erfc(-z) = 2 - erfc(z).
 *
 * Accuracy (tests/test_vmath.c, against libm's double exp and erfc): e^x within 1 ulp of the
 * correctly rounded value over the whole float range; erfc within 1e-5 relative where it is
 * above 1e-30, 8e-6 at worst near z = 8, where -z² ≈ -65 is rounded to float (half an ulp,
 * 2e-6, of the exponent).  The float rounding of z itself costs as much in any float erfc:
 * GELU's erfcf(-x/√2) had that error already.  No fused multiply-adds (ISO C does not contract), so every target gives
 * the same bits, vector or scalar.  Inf, -inf and NaN behave as in libm.
 *
 * MCNN_SIMD_CLONES on a function compiles it for AVX-512, AVX2 and the baseline, picked when
 * the program loads (GCC/clang target_clones): the rest of the library is built for the
 * baseline x86-64, whose vectors are 4 floats wide.  GCC vectorises the range checks below for
 * AVX2 and the baseline only with -fno-trapping-math (the Makefile sets it): otherwise the
 * clamped path folds to a constant that overflows, "could trap", and only the AVX-512 clone
 * (masked) was vector code. */
#ifndef MCNN_VMATH_H
#define MCNN_VMATH_H

#include <stdint.h>

/* Not under the sanitizers: their instrumented ifunc resolvers run before the runtime is up
 * (ThreadSanitizer: a crash in gelu_bwd's resolver while the program loads). */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define MCNN_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MCNN_SIMD_CLONES
#endif

typedef union mcnn_f32_bits { float f; int32_t i; } mcnn_f32_bits;

/* 2^k for integer k in [-126, 127], built in the exponent bits (unsigned arithmetic: a k out
 * of range gives garbage bits, never signed overflow). */
static inline float mcnn_pow2i(int32_t k)
{
    union { float f; uint32_t u; } b;
    b.u = ((uint32_t)k + 127u) << 23;
    return b.f;
}

static inline float mcnn_vexpf(float x)
{
    const float log2e = 1.44269504088896341f, shift = 12582912.0f; /* 1.5·2^23 */
    const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;   /* ln2_hi has 9 bits */
    float xc = x < -104.0f ? -104.0f : x;         /* e^-104 rounds to 0, e^89 to inf;  */
    xc = xc > 89.0f ? 89.0f : xc;                 /* NaN passes both tests unchanged,  */
    xc = xc == xc ? xc : 0.0f;                    /* so compute e^0 for it (no int UB) */
    mcnn_f32_bits t = {xc * log2e + shift};       /* round to nearest: n in the low bits */
    const float n = t.f - shift;
    const int32_t ni = t.i - 0x4b400000;           /* the bits of 1.5·2^23 */
    const float r = (xc - n * ln2_hi) - n * ln2_lo; /* exact n·ln2_hi: |r| <= ln2/2 */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    const int32_t h = ni / 2;                        /* both halves stay normal */
    const float y = p * mcnn_pow2i(h) * mcnn_pow2i(ni - h);
    return x != x ? x : y;
}

static inline float mcnn_verfcf(float x)
{
    const float z = x < 0.0f ? -x : x;
    const float t = 1.0f / (1.0f + 0.5f * z);
    float q = 0.17087277f;
    q = q * t - 0.82215223f;
    q = q * t + 1.48851587f;
    q = q * t - 1.13520398f;
    q = q * t + 0.27886807f;
    q = q * t - 0.18628806f;
    q = q * t + 0.09678418f;
    q = q * t + 0.37409196f;
    q = q * t + 1.00002368f;
    q = q * t - 1.26551223f;
    const float e = t * mcnn_vexpf(q - z * z);     /* erfc(|x|) */
    return x < 0.0f ? 2.0f - e : e;                /* NaN: e is NaN */
}

/* Row kernels built on these (softmax.c, gelu.c). */
void mcnn_softmax_row(float *y, const float *x, int n); /* y = softmax(x), y == x allowed */
/* x (N, F) += b (NULL: nothing), then y = GELU(x), or QuickGELU(x) if quick */
void mcnn_bias_act_forward(float *y, float *x, const float *b, int N, int F, int quick);

#endif
