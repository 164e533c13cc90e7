/* Internals of the blocked GEMM, shared by gemm.c, gemm_pack.c and gemm_micro.c, and by the
 * GEMM test and benchmark (which link the static library and may call these directly).
 * See docs/gemm.md for the loop nest these pieces make up. */
#ifndef MCNN_GEMM_INTERNAL_H
#define MCNN_GEMM_INTERNAL_H

#include "internal.h"

/* A micro-kernel computes one MR x NR tile of C from two panels:
 *   acc[MR][NR] = sum over k < kc of  a[k*MR + i] * b[k*ldb + j]     (a: kc x MR, b: kc x NR)
 *   C[i*rsc + j*csc] = alpha * acc[i][j] + beta * C[i*rsc + j*csc]   (i < m <= MR, j < n <= NR)
 * a is packed; b is packed (ldb = NR) or, for a whole panel of an untransposed B, read in place
 * (ldb = the caller's).  C is row-major (rsc = ldc, csc = 1), or column-major when the driver
 * computes the transposed product (rsc = 1, csc = ldc).  beta == 0 writes C without reading
 * it.  The panels are zero-padded, so the loops never see an edge; only the write-back looks
 * at m and n. */
typedef void (*mcnn_gemm_micro_fn)(int kc, const float *a, const float *b, int ldb, float *c,
                                   int rsc, int csc, int m, int n, float alpha, float beta);

/* A micro-kernel and the block sizes it was tuned with (by bench/bench_gemm.c). */
typedef struct mcnn_gemm_kernel {
    const char *name;     /* "avx512", "avx2", "plain"; variants add their tile: "avx512-8x48" */
    const char *isa;      /* what __builtin_cpu_supports must report: "avx512f", "avx2", ""   */
    mcnn_gemm_micro_fn fn;
    int mr, nr;           /* tile of C held in registers                                      */
    int kc, mc, nc;       /* cache blocks: A block mc x kc (L2), B panel kc x nc (L3)         */
    int mr_edge, nr_edge; /* an edge tile computes its rows / columns in steps of these       */
} mcnn_gemm_kernel;

/* Every kernel this build has (the tuned one per ISA first, then numbered variants for the
 * benchmark), terminated by a zeroed entry. */
extern const mcnn_gemm_kernel mcnn_gemm_kernels[];

/* Does this CPU run kernel k? */
int mcnn_gemm_kernel_supported(const mcnn_gemm_kernel *k);

/* The best kernel this CPU supports; force_plain picks the portable C one. */
const mcnn_gemm_kernel *mcnn_gemm_pick_micro_kernel(int force_plain);

/* The kernel mcnn_gemm uses: picked on first use (MCNN_GEMM=plain in the environment forces
 * the plain kernel).  mcnn_gemm_set_kernel overrides it for tests and benchmarks; NULL goes
 * back to the automatic choice.  Not to be called while another thread is inside mcnn_gemm. */
const mcnn_gemm_kernel *mcnn_gemm_current_kernel(void);
void mcnn_gemm_set_kernel(const mcnn_gemm_kernel *k);

/* mcnn_gemm goes parallel only when the work dwarfs how late threads have been starting
 * (they start late when other processes hold the cores).  on = 1: whenever the size allows,
 * so that tests exercise the parallel path. */
void mcnn_gemm_always_parallel(int on);

/* The calling thread's packing buffer, grown to at least `floats` (NULL when out of memory);
 * kept between calls and shared by every GEMM that thread runs, so valid until its next GEMM. */
float *mcnn_gemm_scratch(size_t floats);

/* mcnn_gemm with an explicit kernel (and its block sizes). */
void mcnn_gemm_with(const mcnn_gemm_kernel *k, int trans_a, int trans_b, int M, int N, int K,
                    float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc);

/* Packing (gemm_pack.c).  op(A) is (M, K), op(B) is (K, N) as in mcnn_gemm.
 * pack_a: rows [i0, i0+mc) x cols [p0, p0+kc) of op(A) -> ceil(mc/mr) panels of kc x mr,
 *         panel r holding rows i0 + r*mr ...; rows past mc are zero.
 * pack_b: rows [p0, p0+kc) x cols [j0, j0+nc) of op(B) -> ceil(nc/nr) panels of kc x nr;
 *         columns past nc are zero.
 * Each packs the panels [first, last) only, so threads can share the work.  vec: the CPU has
 * AVX2, so transposing copies may use vector shuffles (0 keeps the plain path plain). */
void mcnn_gemm_pack_a(int trans_a, const float *A, int lda, int i0, int mc, int p0, int kc,
                      int mr, int first, int last, float *dst, int vec);
void mcnn_gemm_pack_b(int trans_b, const float *B, int ldb, int p0, int kc, int j0, int nc,
                      int nr, int first, int last, float *dst, int vec);

#endif
