/* The GEMM micro-kernel: one MR x NR tile of C, accumulated in registers over kc steps.
 *
 *   for k < kc:                      a: packed A panel (kc, MR)   b: packed B panel (kc, NR)
 *       acc[i][j] += a[k][i] * b[k][j]      (an outer product per k: MR*NR multiply-adds)
 *   C[i][j] = alpha * acc[i][j] + beta * C[i][j]      (i < m, j < n; beta == 0: C not read)
 *
 * One loop, three builds, picked at run time:
 *   - micro_plain: portable C with `#pragma omp simd` along j.  The reference, and the
 *     fallback for any CPU; MCNN_GEMM=plain forces it.
 *   - the same loop with GNU C vector extensions (`vec` = 8 or 16 floats), compiled twice with
 *     __attribute__((target("avx2,fma"))) and target("avx512f").  Each acc[i][v] is one vector
 *     register and each step is acc += a[k][i] (broadcast) * b[k][v*VL ..] -- one FMA.
 * No intrinsics, no assembly, no -march=native: __builtin_cpu_supports chooses at run time.
 * Vectorising along j needs no reassociation, so no -ffast-math either; what -std=c11 does
 * turn off is contracting a*b+c into one FMA instruction, which the pragma below turns back on
 * for this file (every BLAS uses FMA; it rounds once instead of twice).
 *
 * MR, NR and the cache blocks (KC, MC, NC) were chosen by measurement with bench/bench_gemm.c
 * on a Zen 4 EPYC; the numbered variants at the end of the table are the candidates it times. */
#include "gemm_internal.h"

#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#elif defined(__clang__)
/* clang: "on" fuses a*b+c written as one expression (llvm.fmuladd, chosen by the front end);
 * "fast" left it to the back end, which under -fsanitize=address fused some copies of the
 * loop and not others, so tiles' bits depended on which copy (edge or whole) ran them. */
#pragma clang fp contract(on)
#endif

/* ---- the plain kernel ---------------------------------------------------------------------- */
#ifndef PLAIN_MR
#define PLAIN_MR 6
#endif
#ifndef PLAIN_NR
#define PLAIN_NR 8 /* two SSE registers per row: 6x8 accumulators fit the 16 SSE registers */
#endif

static void micro_plain(int kc, const float *restrict a, const float *restrict b, int ldb,
                        float *restrict c, int rsc, int csc, int m, int n, float alpha,
                        float beta)
{
    float acc[PLAIN_MR][PLAIN_NR] = {{0}};
    for (int k = 0; k < kc; k++, a += PLAIN_MR, b += ldb)
        for (int i = 0; i < PLAIN_MR; i++) {
            float aik = a[i];
#pragma omp simd /* vectorise along j: each lane is its own sum, nothing is reassociated */
            for (int j = 0; j < PLAIN_NR; j++) acc[i][j] += aik * b[j];
        }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float *cij = c + (size_t)i * rsc + (size_t)j * csc;
            *cij = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *cij;
        }
}

/* ---- the vector kernels ---------------------------------------------------------------------
 * The same loop, told the vector width: acc is MR x NV vectors of VL floats (NR = NV * VL).
 * Full tiles are written back a vector at a time; edge tiles (m < MR or n < NR, only at the
 * bottom and right of C) go through a scalar loop. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_VECTOR_KERNELS 1

typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));
/* The same, for loads and stores at any float address (as the compilers' own __m512_u). */
typedef float f32x8u __attribute__((vector_size(32), aligned(4), may_alias));
typedef float f32x16u __attribute__((vector_size(64), aligned(4), may_alias));

/* The loop for a sub-tile of MRC rows and NVC vectors of the MR x NR panels (MRC = MR and
 * NVC * VL = NR for a whole tile).  acc must never have its address taken, or the compiler
 * keeps it in memory instead of in registers: loads and stores go through the unaligned vector
 * types, one vector at a time. */
#define MICRO_VECTOR_BODY(vec, vecu, VL, MRC, NVC, MR, NR)                                   \
    {                                                                                        \
        vec acc[MRC][NVC];                                                                   \
        for (int i = 0; i < (MRC); i++)                                                      \
            for (int v = 0; v < (NVC); v++) acc[i][v] = (vec){0};                            \
        if (csc == 1) /* ask for the C tile now, it is needed after the loop */              \
            for (int i = 0; i < (MRC); i++)                                                  \
                for (int j = 0; j < (NVC) * (VL); j += 16)                                   \
                    __builtin_prefetch(c + (size_t)i * rsc + j, 1);                          \
        for (int k = 0; k < kc; k++, a += (MR), b += ldb) {                                  \
            vec bk[NVC];                          /* row k of the B panel: NVC vectors */    \
            for (int v = 0; v < (NVC); v++) bk[v] = *(const vecu *)(b + v * (VL));           \
            for (int i = 0; i < (MRC); i++)                                                  \
                for (int v = 0; v < (NVC); v++)                                              \
                    acc[i][v] += a[i] * bk[v];    /* broadcast * vector: one FMA */          \
        }                                                                                    \
        if (m == (MRC) && n == (NVC) * (VL) && csc == 1) {                                   \
            for (int i = 0; i < (MRC); i++)                                                  \
                for (int v = 0; v < (NVC); v++) {                                            \
                    vecu *cv = (vecu *)(c + (size_t)i * rsc + v * (VL));                     \
                    *cv = beta == 0.0f ? alpha * acc[i][v] : alpha * acc[i][v] + beta * *cv; \
                }                                                                            \
        } else {                                                                             \
            float t[MRC][(NVC) * (VL)];                                                      \
            for (int i = 0; i < (MRC); i++)                                                  \
                for (int v = 0; v < (NVC); v++) *(vecu *)&t[i][v * (VL)] = acc[i][v];        \
            for (int i = 0; i < m; i++)                                                      \
                for (int j = 0; j < n; j++) {                                                \
                    float *cij = c + (size_t)i * rsc + (size_t)j * csc;                      \
                    *cij = beta == 0.0f ? alpha * t[i][j] : alpha * t[i][j] + beta * *cij;   \
                }                                                                            \
        }                                                                                    \
    }

#define MICRO_ARGS                                                                           \
    int kc, const float *restrict a, const float *restrict b, int ldb, float *restrict c,   \
        int rsc, int csc, int m, int n, float alpha, float beta

/* A kernel that always computes the whole MR x NR tile. */
#define DEFINE_MICRO(name, isa, vec, VL, MR, NR)                                             \
    __attribute__((target(isa))) static void name(MICRO_ARGS)                                \
    MICRO_VECTOR_BODY(vec, vec##u, VL, MR, (NR) / (VL), MR, NR)

/* The same with cheaper edges: a tile at the bottom or right of C that has only some of the
 * rows, or half the columns, runs a smaller copy of the loop, computing its rows in steps of
 * STEP (MR = 2 or 3 STEPs).  M = 197 rows in tiles of 12 leave 5 for the last one: 8 rows
 * computed instead of 12.  (NR is two vectors.) */
#define MICRO_EDGE_ROWS(vec, VL, MR, NR, STEP, NVC)                                          \
    if (m > 2 * (STEP)) MICRO_VECTOR_BODY(vec, vec##u, VL, MR, NVC, MR, NR)                  \
    else if (m > (STEP)) MICRO_VECTOR_BODY(vec, vec##u, VL, 2 * (STEP), NVC, MR, NR)         \
    else MICRO_VECTOR_BODY(vec, vec##u, VL, STEP, NVC, MR, NR)

#define DEFINE_MICRO_EDGES(name, isa, vec, VL, MR, NR, STEP)                                 \
    __attribute__((target(isa))) static void name(MICRO_ARGS)                                \
    {                                                                                        \
        if (n > (VL)) {                                                                      \
            MICRO_EDGE_ROWS(vec, VL, MR, NR, STEP, 2)                                        \
        } else {                                                                             \
            MICRO_EDGE_ROWS(vec, VL, MR, NR, STEP, 1)                                        \
        }                                                                                    \
    }

/* the tuned ones */
DEFINE_MICRO_EDGES(micro_avx512_12x32, "avx512f", f32x16, 16, 12, 32, 4)
DEFINE_MICRO_EDGES(micro_avx2_6x16, "avx2,fma", f32x8, 8, 6, 16, 2)
DEFINE_MICRO_EDGES(micro_avx512_8x32e, "avx512f", f32x16, 16, 8, 32, 4)
/* candidates for bench/bench_gemm.c */
DEFINE_MICRO(micro_avx512_12x32_whole, "avx512f", f32x16, 16, 12, 32)
DEFINE_MICRO(micro_avx512_8x32, "avx512f", f32x16, 16, 8, 32)
DEFINE_MICRO(micro_avx512_14x32, "avx512f", f32x16, 16, 14, 32)
DEFINE_MICRO(micro_avx512_6x64, "avx512f", f32x16, 16, 6, 64)
DEFINE_MICRO(micro_avx512_8x48, "avx512f", f32x16, 16, 8, 48)
DEFINE_MICRO(micro_avx512_4x64, "avx512f", f32x16, 16, 4, 64)
DEFINE_MICRO(micro_avx2_4x24, "avx2,fma", f32x8, 8, 4, 24)
#endif

/* Tuned kernels first, one per ISA, best first; then the variants (their names carry the tile,
 * "avx512-8x48", and are never picked automatically). */
const mcnn_gemm_kernel mcnn_gemm_kernels[] = {
#ifdef HAVE_VECTOR_KERNELS
    {"avx512", "avx512f", micro_avx512_12x32, 12, 32, 512, 288, 2048, 4, 16},
    {"avx2", "avx2", micro_avx2_6x16, 6, 16, 256, 120, 2048, 2, 8},
#endif
    {"plain", "", micro_plain, PLAIN_MR, PLAIN_NR, 256, 120, 2048, PLAIN_MR, PLAIN_NR},
#ifdef HAVE_VECTOR_KERNELS
    {"avx512-12x32w", "avx512f", micro_avx512_12x32_whole, 12, 32, 512, 288, 2048, 12, 32},
    {"avx512-8x32e", "avx512f", micro_avx512_8x32e, 8, 32, 512, 288, 2048, 4, 16},
    {"avx512-8x32", "avx512f", micro_avx512_8x32, 8, 32, 512, 288, 2048, 8, 32},
    {"avx512-14x32", "avx512f", micro_avx512_14x32, 14, 32, 512, 280, 2048, 14, 32},
    {"avx512-6x64", "avx512f", micro_avx512_6x64, 6, 64, 512, 288, 2048, 6, 64},
    {"avx512-8x48", "avx512f", micro_avx512_8x48, 8, 48, 512, 288, 2016, 8, 48},
    {"avx512-4x64", "avx512f", micro_avx512_4x64, 4, 64, 512, 288, 2048, 4, 64},
    {"avx2-4x24", "avx2", micro_avx2_4x24, 4, 24, 256, 120, 2040, 4, 24},
#endif
    {0},
};

int mcnn_gemm_kernel_supported(const mcnn_gemm_kernel *k)
{
#ifdef HAVE_VECTOR_KERNELS
    __builtin_cpu_init();
    if (strcmp(k->isa, "avx512f") == 0) return __builtin_cpu_supports("avx512f");
    if (strcmp(k->isa, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return k->isa[0] == '\0';
}

const mcnn_gemm_kernel *mcnn_gemm_pick_micro_kernel(int force_plain)
{
    for (const mcnn_gemm_kernel *k = mcnn_gemm_kernels; k->fn; k++) {
        if (strchr(k->name, '-')) continue; /* a variant */
        if (force_plain && strcmp(k->name, "plain") != 0) continue;
        if (mcnn_gemm_kernel_supported(k)) return k;
    }
    return NULL; /* unreachable: "plain" is always there and always supported */
}
