/* Micro-kernels of the reduced-precision GEMM (the tile loop of gemm_micro.c with other
 * element types; docs/precision.md).
 *
 *   bf16  acc[i][j] += a[k][i] * widen(b[k][j])   a: fp32 holding bf16 values, b: bf16 bits.
 *         Widening bf16 to fp32 is exact (append 16 zero bits), so on a CPU without
 *         AVX512_BF16 the products are those of the rounded operands and only the fp32
 *         summation rounds.  The AVX2 kernel is the fp32 6x16 loop with a widening load.
 *         With AVX512_BF16, vdpbf16ps takes k in pairs: lowp_bf16_avx512.c.
 *   int8  in lowp_int8.c (its epilogue must not be contracted into FMAs, these loops want them);
 *         listed in the table below.
 * Kernels are compiled with target attributes and picked at run time, as the fp32 ones. */
#include "lowp_internal.h"

#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#elif defined(__clang__)
/* clang: "on" fuses a*b+c written as one expression (llvm.fmuladd, chosen by the front end);
 * "fast" left it to the back end, which under -fsanitize=address fused some copies of the
 * loop and not others, so tiles' bits depended on which copy (edge or whole) ran them. */
#pragma clang fp contract(on)
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

#endif

/* Blocks: the fp32 kernels' (the tiles are the same shape); to be tuned with
 * bench/bench_gemm_lowp.c.  int8 keeps the whole K in one block (its int32 sums cannot be
 * split without a second pass): kc applies to bf16 only.  The AVX512_VNNI kernel (vpdpbusd:
 * the 4-byte groups into int32 in one instruction, no pair saturation, so 8-bit activations)
 * goes first, at level 2, with its own activation quantizer; the weight panels' layout is the
 * AVX2 kernel's, 32 columns wide. */
const mcnn_lowp_kernel mcnn_lowp_kernels[] = {
#ifdef HAVE_AVX2_KERNELS
    /* bf16 only: vdpbf16ps, k in pairs (lowp_bf16_avx512.c) */
    {.name = "avx512-bf16", .level = 2, .usable = mcnn_cpu_has_avx512_bf16,
     .bf16x2 = mcnn_bf16x2_micro_avx512, .kgroup = 2, .mr = MCNN_BF16X2_MR, .nr = 32,
     .kc = 768, .mc = 144, .nc = 2048},
    /* int8 only: vpdpbusd, 8-bit activations (lowp_int8_avx512.c) */
    {.name = "avx512-vnni", .level = 2, .usable = mcnn_cpu_has_avx512_vnni,
     .int8 = mcnn_int8_micro_avx512_vnni, .quant_act = mcnn_quant_act_row8_avx512,
     .mr = MCNN_VNNI_MR, .nr = MCNN_VNNI_NR, .mr8 = MCNN_VNNI_MR, .mc = 128, .nc = 2048,
     .a_max = MCNN_INT8_A_MAX_VNNI},
    {"avx2", 1, NULL, bf16_avx2, mcnn_int8_micro_avx2, mcnn_quant_act_row_avx2, AVX2_MR,
     AVX2_NR, 4, 256, 120, 2048, MCNN_INT8_A_MAX, 1, NULL},
#endif
    {"plain", 0, NULL, bf16_plain, mcnn_int8_micro_plain, mcnn_quant_act_row, PLAIN_MR,
     PLAIN_NR, PLAIN_MR, 256, 120, 2048, MCNN_INT8_A_MAX, 1, NULL},
    {0},
};
