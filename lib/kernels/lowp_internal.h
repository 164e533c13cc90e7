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

/* The integer ranges of int8 (docs/precision.md).  AVX2's vpmaddubsw multiplies uint8 by int8
 * and adds each pair of products into a *saturating* int16: exact only while
 * 2 * A_MAX * W_MAX <= 32767.  With 8-bit weights (±127) that leaves activations 7 bits
 * (0..127): 2 * 127 * 127 = 32258.  The weights keep their 8 bits, so a kernel without the
 * pair limit (VNNI's vpdpbusd: 4 products straight into an int32) uses the same packed weights
 * with 8-bit activations (0..255): each kernel says which (mcnn_lowp_kernel.a_max). */
#define MCNN_INT8_W_MAX 127
#define MCNN_INT8_A_MAX 127
#define MCNN_INT8_A_MAX_VNNI 255
/* k is taken in groups of 4: one int32 lane sums 4 products (vpmaddubsw + vpmaddwd here,
 * vpdpbusd with VNNI).  Rows of quantized activations and weight panels are padded to it. */
#define MCNN_INT8_KGROUP 4

/* One activation row, asymmetric, to the codes 0..A (A = a_max: 127, 7 bits, or 255, 8 bits):
 * the range [lo, hi] = [min(0, min x), max(0, max x)] (so 0 is exact), r = A / (hi - lo) and
 * s = (hi - lo) / A in float, zero point z = clamp(round(-lo · r), 0, A),
 * q = clamp(round(x · r) + z, 0, A), rounding to nearest even.  x ≈ s * (q - z).  An all-zero
 * row, or one whose range is so small that r overflows (hi - lo < 3.7e-37 for A = 127):
 * s = 1, z = 0, q = 0.  A row holding NaN or inf: s = NaN, z = 0, q = 0.  Returns s, the zero
 * point in *zero.  This is the definition; kernels may bring a vector twin
 * (mcnn_lowp_kernel.quant_act) that must give the same bits.  mcnn_quant_act_row is A = 127. */
float mcnn_quant_act_row_max(const float *x, int K, int a_max, uint8_t *q, int32_t *zero);
float mcnn_quant_act_row(const float *x, int K, uint8_t *q, int32_t *zero);
/* The definition's scale of a row whose finite range is [lo, hi] (lo <= 0 <= hi): r, z as
 * above (r = 0, z = 0 and s = 1 when the row counts as all zero), for the twins. */
float mcnn_quant_act_scale(float lo, float hi, int a_max, float *r, float *z);

/* The int8 epilogue, one element: the integer sum  acc = Σ qx·qw,  corrected for the zero point
 * and scaled back:  (acc - z·Σqw) · (sx · sw) + bias  (+ beta · y).  Exact integer work (it
 * fits an int32: |acc|, |z·Σqw| and |Σ (qx - z) qw| are at most A · 127 · K, < 2^31 for
 * K <= 65536 with 8-bit activations too: 255 · 127 · 65536 = 2,122,317,824), then float
 * operations in this order and without fused multiply-adds, so every kernel and the test give
 * the same bits. */
static inline float mcnn_int8_dequant(int32_t acc, int32_t zero, int32_t qsum, float sx,
                                      float sw, float bias)
{
    int64_t exact = (int64_t)acc - (int64_t)zero * qsum;
    float prod = (float)exact * (sx * sw);
    return prod + bias;
}

/* What the int8 micro-kernel needs to finish its tile, each pointer at the tile's first row or
 * column: y[i][j] = dequant(acc[i][j], zx[i], qsum[j], sx[i], sw[j], bias ? bias[j] : 0)
 * (+ beta · y[i][j] when beta != 0; y is not read when beta == 0). */
typedef struct mcnn_int8_epilogue {
    const int32_t *zx;   /* per row: zero point */
    const float *sx;     /* per row: scale */
    const int32_t *qsum; /* per column: Σ_k qw */
    const float *sw;     /* per column: scale */
    const float *bias;   /* per column, or NULL */
    float beta;
} mcnn_int8_epilogue;

/* ---- micro-kernels (lowp_micro.c) ----------------------------------------------------------
 * bf16: as mcnn_gemm_micro_fn, but the B panel holds bf16 (uint16), widened to fp32 as it is
 *       loaded; the A panel holds floats already rounded to bf16.
 * int8: y[i][j] for i < m, j < n (m <= mr, n <= nr) of the tile: the exact int32 sums
 *       Σ_k qa[i][k] · qw[k][j] over kq groups of 4 k, through the epilogue e.  a holds
 *       quantized rows (uint8, 0..a_max) at a + i * lda, each 4 kq long (zero-padded); b the
 *       panel: per group g and column j the 4 int8 (qw[4g..4g+3][j]), 4 nr bytes per g. */
typedef void (*mcnn_bf16_micro_fn)(int kc, const float *a, const uint16_t *b, float *c, int ldc,
                                   int m, int n, float beta);
/* bf16 in pairs (kgroup 2: AVX512_BF16's vdpbf16ps sums two k per fp32 lane): as
 * mcnn_bf16_micro_fn over kp pairs of k, with the panels holding 32-bit words of two bf16,
 * the lower k in the low half:
 *   a[p * MR + i] = bf16(a[i][2p]) | bf16(a[i][2p+1]) << 16     (MR = MCNN_BF16X2_MR)
 *   b[p * NR + j] = bf16(w[2p][j]) | bf16(w[2p+1][j]) << 16     (NR = the kernel's nr)
 * an odd K padded with a zero k (lowp_quant.c's pair packers make A's panels). */
typedef void (*mcnn_bf16x2_micro_fn)(int kp, const uint32_t *a, const uint32_t *b, float *c,
                                     int ldc, int m, int n, float beta);
#define MCNN_BF16X2_MR 12
typedef void (*mcnn_int8_micro_fn)(int kq, const uint8_t *a, size_t lda, const int8_t *b,
                                   const mcnn_int8_epilogue *e, float *y, size_t ldc, int m,
                                   int n);
/* An activation row quantizer: mcnn_quant_act_row_max's bits at its kernel's a_max. */
typedef float (*mcnn_quant_act_fn)(const float *x, int K, uint8_t *q, int32_t *zero);

/* The plain epilogue of one int32 tile (row stride nr), shared by the kernels' edge cases. */
void mcnn_int8_epilogue_tile(const int32_t *acc, int nr, const mcnn_int8_epilogue *e, float *y,
                             size_t ldc, int m, int n);
/* The int8 kernels (lowp_int8.c): plain 6 x 8, AVX2 4 x 16. */
void mcnn_int8_micro_plain(int kq, const uint8_t *a, size_t lda, const int8_t *b,
                           const mcnn_int8_epilogue *e, float *y, size_t ldc, int m, int n);
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
void mcnn_int8_micro_avx2(int kq, const uint8_t *a, size_t lda, const int8_t *b,
                          const mcnn_int8_epilogue *e, float *y, size_t ldc, int m, int n);
float mcnn_quant_act_row_avx2(const float *x, int K, uint8_t *q, int32_t *zero);
/* AVX512_VNNI (lowp_int8_avx512.c): 8 x 32 tiles of vpdpbusd, 8-bit activations */
void mcnn_int8_micro_avx512_vnni(int kq, const uint8_t *a, size_t lda, const int8_t *b,
                                 const mcnn_int8_epilogue *e, float *y, size_t ldc, int m, int n);
float mcnn_quant_act_row8_avx512(const float *x, int K, uint8_t *q, int32_t *zero);
int mcnn_cpu_has_avx512_vnni(void);
#define MCNN_VNNI_MR 8
#define MCNN_VNNI_NR 32
/* The vdpbf16ps kernel (lowp_bf16_avx512.c), and whether this CPU has AVX512_BF16. */
void mcnn_bf16x2_micro_avx512(int kp, const uint32_t *a, const uint32_t *b, float *c, int ldc,
                              int m, int n, float beta);
int mcnn_cpu_has_avx512_bf16(void);
#endif

/* The pair kernel's A (mcnn_bf16x2_micro_fn): one row's kc values -> ceil(kc/2) pair words,
 * (x[2p], x[2p+1]) rounded, an odd K's last with 0 above it; mcnn_gemm_pack_a then moves the
 * words of mr rows into a panel as it would floats. */
void mcnn_bf16_pair_row(const float *x, int kc, uint32_t *dst);
/* The panels straight from xᵀ (K, M), row stride ldx (mcnn_gemm_packed_t's x: a
 * convolution's columns): rows [i0, i0+mc) of x, k in [p0, p0+kc), panels of mr rows (the
 * last zero-padded); one pass, each pair of k two rows of xᵀ read along i. */
void mcnn_bf16_pack_pairs_t(const float *xt, int ldx, int i0, int mc, int p0, int kc, int mr,
                            uint32_t *dst);

typedef struct mcnn_lowp_kernel {
    const char *name;  /* "avx2", "plain" */
    int level;         /* the MCNN_ISA level it needs: 0 plain, 1 avx2, 2 avx512, 3 amx */
    int (*usable)(void); /* the CPU features beyond the level (AVX512_BF16, VNNI), or NULL  */
    mcnn_bf16_micro_fn bf16; /* either may be NULL: an entry for one precision only         */
    mcnn_int8_micro_fn int8;
    mcnn_quant_act_fn quant_act;
    int mr, nr;        /* the tile (bf16) */
    int mr8;           /* int8's tile rows (its columns: nr) */
    int kc, mc, nc;    /* blocks; int8 sums the whole K at once (kc is bf16's only) */
    int a_max;         /* int8: the activations' top code, 127 (7 bits) or 255 (8 bits) */
    /* bf16's k per fp32 lane: 1, one k (bf16 above, FMAs on widened bf16); 2, pairs
     * (bf16x2 instead of bf16: its panels in pairs, K blocks even) */
    int kgroup;
    mcnn_bf16x2_micro_fn bf16x2;
} mcnn_lowp_kernel;

/* zero-terminated, best first; each precision takes the first entry that has a kernel for it
 * and that mcnn_lowp_kernel_usable at the ISA level in force */
extern const mcnn_lowp_kernel mcnn_lowp_kernels[];
/* 1 when k can run here at MCNN_ISA level `level`: k->level <= level and its features. */
int mcnn_lowp_kernel_usable(const mcnn_lowp_kernel *k, int level);

/* mcnn_gemm_packed (no bias) with both sides transposed: yᵀ = W · xᵀ (+ beta · yᵀ), xᵀ (K, M)
 * with row stride ldx, yᵀ (N, M) with row stride ldy.  A convolution's im2col columns are xᵀ
 * and its channels-first output is yᵀ, so it needs no transposes (lib/ops/conv2d_packed.c).
 * The same bits as mcnn_gemm_packed on x and y transposed: the same packed panels (fp32,
 * bf16), the same quantized rows (int8: each row of x, i.e. column of xᵀ, is one row). */
mcnn_status mcnn_gemm_packed_t(int M, const float *xt, int ldx, const mcnn_packed_b *p,
                               float beta, float *yt, int ldy);

/* Threads for a reduced-precision GEMM of macs multiply-adds: 1 inside a parallel region or
 * for a small one, else all (gemm_packed.c). */
int mcnn_lowp_want_threads(double macs);

/* A bf16 GEMM of two activations on pair kernel k (k->bf16x2), both rounded per call
 * (gemm_bf16_act.c): C (M, N) = alpha · A · op(B), A (M, K) row stride lda, op(B) = Bᵀ for
 * B (N, K) when trans_b, else B (K, N); C written, not read.  The bits do not depend on the
 * thread count.  MCNN_ERR_ARG for a kernel without pairs or bad sizes, MCNN_ERR_NOMEM. */
mcnn_status mcnn_gemm_bf16_act(const mcnn_lowp_kernel *k, int trans_b, int M, int N, int K,
                               float alpha, const float *A, int lda, const float *B, int ldb,
                               float *C, int ldc);

/* ---- which kernels (gemm_packed.c) --------------------------------------------------------
 * The ISA level the reduced-precision kernels may use: the best this CPU has, or the one named
 * by MCNN_ISA=plain|avx2|avx512|amx in the environment, or by mcnn_lowp_set_isa (tests and
 * benchmarks; NULL goes back to the environment).  A level this CPU lacks, or an unknown name,
 * is an MCNN_ERR_ARG saying which levels it has.  Kernels for a level with none of its own
 * (AMX: no AMX kernels exist yet; for int8, AVX-512 without VNNI) use the best lower one. */
mcnn_status mcnn_lowp_isa(int *level);
void mcnn_lowp_set_isa(const char *name);
/* Highest level this CPU supports. */
int mcnn_lowp_cpu_level(void);

#endif
