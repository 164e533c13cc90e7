/* Internals of the reduced-precision GEMM (gemm_packed.c, lowp_quant.c, lowp_micro.c), shared
 * with its test and benchmark.  See docs/precision.md. */
#ifndef MCNN_LOWP_INTERNAL_H
#define MCNN_LOWP_INTERNAL_H

#include "gemm_internal.h"

#include <stdint.h>

/* ---- quantizers (lowp_quant.c), each the definition the kernels are tested against --------- */

/* fp32 -> bf16: the top 16 bits after rounding the low 16 to nearest, ties to even.  A NaN
 * stays a NaN of the same sign, made quiet (a signalling NaN's payload could round to inf). */
uint16_t mcnn_bf16_from_float(float x);
static inline float mcnn_bf16_to_float(uint16_t b)
{
    union { uint32_t u; float f; } v = {(uint32_t)b << 16};
    return v.f;
}
/* x rounded to the nearest bf16, kept as a float (n values, in place allowed). */
void mcnn_bf16_round(const float *x, float *out, size_t n);

/* One weight row (per output channel), symmetric: s = max|w| / 127, q = round(w / s) in
 * [-127, 127] (ties to even).  Returns s; an all-zero row gives s = 0 and q = 0.  A row holding
 * NaN or inf gives s = NaN (its outputs become NaN, as in fp32) and q = 0.  Returns the sum of q
 * in *qsum. */
float mcnn_quant_weight_row(const float *w, int K, int8_t *q, int32_t *qsum);

/* One activation row, asymmetric: the range [lo, hi] = [min(0, min x), max(0, max x)] (so 0 is
 * exact), s = (hi - lo) / 255, zero point z = round(-lo / s), q = clamp(round(x / s) + z, 0, 255).
 * x ≈ s * (q - z).  An all-zero row: s = 1, z = 0, q = 0.  A row holding NaN or inf: s = NaN,
 * z = 0, q = 0.  Returns s, the zero point in *zero. */
float mcnn_quant_act_row(const float *x, int K, uint8_t *q, int32_t *zero);

/* The int8 epilogue, one element: the integer sum  acc = Σ qx·qw,  corrected for the zero point
 * and scaled back:  (acc - z·Σqw) · (sx · sw) + bias  (+ beta · y).  Exact integer work, then
 * float operations in this order (no FMA contraction: gemm_packed.c is compiled as ISO C), so
 * every kernel and the test give the same bits. */
static inline float mcnn_int8_dequant(int32_t acc, int32_t zero, int32_t qsum, float sx,
                                      float sw, float bias)
{
    int64_t exact = (int64_t)acc - (int64_t)zero * qsum;
    float prod = (float)exact * (sx * sw);
    return prod + bias;
}

/* ---- micro-kernels (lowp_micro.c) ----------------------------------------------------------
 * bf16: as mcnn_gemm_micro_fn, but the B panel holds bf16 (uint16), widened to fp32 as it is
 *       loaded; the A panel holds floats already rounded to bf16.
 * int8: acc[i*nr + j] = Σ_p  a[p*mr + i] · b[p][j]  over kp pairs of k, where a holds, per
 *       row, the pair (qx[2p], qx[2p+1]) as two int16 in one uint32, and b holds the pair
 *       (qw[2p][j], qw[2p+1][j]) as two int8: 2*nr bytes per p.  Exact int32 sums. */
typedef void (*mcnn_bf16_micro_fn)(int kc, const float *a, const uint16_t *b, float *c, int ldc,
                                   int m, int n, float beta);
typedef void (*mcnn_int8_micro_fn)(int kp, const uint32_t *a, const int8_t *b, int32_t *acc);

typedef struct mcnn_lowp_kernel {
    const char *name;  /* "avx2", "plain" */
    int level;         /* the MCNN_ISA level it needs: 0 plain, 1 avx2, 2 avx512, 3 amx */
    mcnn_bf16_micro_fn bf16;
    mcnn_int8_micro_fn int8;
    int mr, nr;
    int kc, mc, nc;    /* blocks; int8 sums the whole K at once (kc is bf16's only) */
} mcnn_lowp_kernel;

/* zero-terminated, best first */
extern const mcnn_lowp_kernel mcnn_lowp_kernels[];

/* ---- which kernels (gemm_packed.c) --------------------------------------------------------
 * The ISA level the reduced-precision kernels may use: the best this CPU has, or the one named
 * by MCNN_ISA=plain|avx2|avx512|amx in the environment, or by mcnn_lowp_set_isa (tests and
 * benchmarks; NULL goes back to the environment).  A level this CPU lacks, or an unknown name,
 * is an MCNN_ERR_ARG saying which levels it has.  Kernels for a level with none of its own
 * (no AVX-512 bf16/int8 or AMX kernels exist yet) use the best lower one. */
mcnn_status mcnn_lowp_isa(int *level);
void mcnn_lowp_set_isa(const char *name);
/* Highest level this CPU supports. */
int mcnn_lowp_cpu_level(void);

#endif
