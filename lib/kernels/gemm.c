/* The blocked GEMM: C = alpha * op(A) * op(B) + beta * C, row-major (BLAS semantics).
 *
 * The classic five loops of GotoBLAS / BLIS.  Each level keeps one operand in one cache level:
 *
 *   for jc in N by NC:              B panel kc x nc  -> L3, shared by the threads
 *     for pc in K by KC:            pack op(B)[pc.., jc..] into NR-wide panels
 *       for ic in M by MC:          pack op(A)[ic.., pc..] into MR-tall panels -> L2   (threads)
 *         for jr in nc by NR:       one B micro-panel kc x NR -> L1               (or threads)
 *           for ir in mc by MR:     micro-kernel: C[ic+ir.., jc+jr..] (MR x NR) += A panel * B panel
 *
 * Packing (gemm_pack.c) removes transposes and leading dimensions and zero-pads the edges, so
 * the micro-kernel (gemm_micro.c) only ever multiplies whole panels.  K is cut into KC blocks;
 * the first block applies the caller's beta, the later ones add (beta = 1).
 *
 * Threads: every thread owns whole MR x NR tiles of C, and each tile is computed the same way
 * whichever thread computes it (same K blocks, same kernel), so the result has the same bits
 * at any thread count.  Large M: threads split the ic loop, each packing its own A block.
 * Small M (few ic blocks): they pack one A block together and split the jr loop. */
#include "gemm_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- which micro-kernel -------------------------------------------------------------------- */
static _Atomic(const mcnn_gemm_kernel *) gemm_kernel; /* NULL until first use */

const mcnn_gemm_kernel *mcnn_gemm_current_kernel(void)
{
    const mcnn_gemm_kernel *k = atomic_load(&gemm_kernel);
    if (!k) { /* two threads may both get here; they pick the same kernel */
        const char *env = getenv("MCNN_GEMM");
        k = mcnn_gemm_pick_micro_kernel(env && strcmp(env, "plain") == 0);
        atomic_store(&gemm_kernel, k);
    }
    return k;
}

void mcnn_gemm_set_kernel(const mcnn_gemm_kernel *k)
{
    atomic_store(&gemm_kernel, k);
}

const char *mcnn_gemm_kernel_name(void)
{
    return mcnn_gemm_current_kernel()->name;
}

/* ---- packing buffers ------------------------------------------------------------------------
 * One growing buffer per calling thread, kept between calls: the packed panels of a large GEMM
 * take megabytes, and a fresh allocation would cost page faults on every call.  Thread-local,
 * so concurrent callers (for instance one GEMM per attention head on each thread) never share. */
static _Thread_local float *scratch;
static _Thread_local size_t scratch_floats;

static float *scratch_get(size_t floats)
{
    if (floats > scratch_floats) {
        mcnn_free(scratch);
        scratch = mcnn_alloc(floats * sizeof(float));
        scratch_floats = scratch ? floats : 0;
    }
    return scratch;
}

/* ---- helpers --------------------------------------------------------------------------------- */
static int ceil_div(int a, int b) { return (a + b - 1) / b; }
static int round_up(int a, int b) { return ceil_div(a, b) * b; }
static int min_int(int a, int b) { return a < b ? a : b; }

/* C = beta * C, the whole answer when alpha == 0 or K == 0 (A and B are not read). */
static void scale_c(int M, int N, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
    }
}

/* The two inner loops over one packed A block (mc x kc) and B panels [q0, q1) of a packed B
 * panel (kc x nc).  c points at C[ic][jc]. */
static void macro_kernel(const mcnn_gemm_kernel *kern, int kc, int mc, int nc, int q0, int q1,
                         const float *ap, const float *bp, float *c, int ldc, float alpha,
                         float beta)
{
    const int MR = kern->mr, NR = kern->nr;
    for (int q = q0; q < q1; q++) {                   /* jr: one B micro-panel, kept in L1 */
        int n = min_int(NR, nc - q * NR);
        const float *b = bp + (size_t)q * kc * NR;
        for (int r = 0; r * MR < mc; r++) {           /* ir: stream the A micro-panels */
            int m = min_int(MR, mc - r * MR);
            kern->fn(kc, ap + (size_t)r * kc * MR, b, c + (size_t)r * MR * ldc + q * NR, ldc, m,
                     n, alpha, beta);
        }
    }
}

/* Below this many multiply-adds a second thread costs more to wake than it saves. */
#define PARALLEL_MIN_WORK (64.0 * 64.0 * 64.0)

void mcnn_gemm_with(const mcnn_gemm_kernel *kern, int trans_a, int trans_b, int M, int N, int K,
                    float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    const int MR = kern->mr, NR = kern->nr;

    /* Even blocks: K = 576 with KC = 384 becomes 2 x 288 rather than 384 + 192.  They depend
     * only on the shapes, never on the thread count. */
    int kc_blk = ceil_div(K, ceil_div(K, kern->kc));
    int nc_blk = round_up(ceil_div(N, ceil_div(N, kern->nc)), NR);

    int nt = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && (double)M * N * K >= PARALLEL_MIN_WORK) nt = omp_get_max_threads();
#endif

    /* Split ic when M gives every thread a fair share of MR-row tiles; otherwise split jr. */
    int tiles_m = ceil_div(M, MR), tiles_n = ceil_div(min_int(N, nc_blk), NR);
    double share_ic = (double)tiles_m / (nt * ceil_div(tiles_m, nt));
    double share_jr = (double)tiles_n / (nt * ceil_div(tiles_n, nt));
    int split_ic = nt == 1 || share_ic >= share_jr;

    int nb_m = ceil_div(M, kern->mc);                  /* number of ic blocks */
    if (split_ic) nb_m = round_up(nb_m, nt);           /* ... a multiple of the threads */
    nb_m = min_int(nb_m, tiles_m);
    int mc_blk = round_up(ceil_div(M, nb_m), MR);
    nb_m = ceil_div(M, mc_blk);

    size_t b_size = (size_t)kc_blk * nc_blk;           /* packed B panel (kc, nc)        */
    size_t a_size = (size_t)kc_blk * mc_blk;           /* packed A block (mc, kc), each  */
    float *buf = scratch_get(b_size + a_size * (split_ic ? nt : 1));
    if (!buf) { /* out of memory: still give the right answer, slowly */
        mcnn_gemm_ref(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }

#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
#ifdef _OPENMP
        int tid = omp_get_thread_num();
#else
        int tid = 0;
#endif
        float *bp = buf;                                          /* shared */
        float *ap = buf + b_size + (split_ic ? tid * a_size : 0); /* own, or shared */

        for (int jc = 0; jc < N; jc += nc_blk) {
            int nc = min_int(nc_blk, N - jc), panels_b = ceil_div(nc, NR);
            for (int pc = 0; pc < K; pc += kc_blk) {
                int kc = min_int(kc_blk, K - pc);
                float beta_k = pc == 0 ? beta : 1.0f; /* later K blocks add to C */

#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
                for (int q = 0; q < panels_b; q++)
                    mcnn_gemm_pack_b(trans_b, B, ldb, pc, kc, jc, nc, NR, q, q + 1, bp);
                /* (implied barrier: B is packed before anyone reads it) */

                if (split_ic) {
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
                    for (int ib = 0; ib < nb_m; ib++) {
                        int ic = ib * mc_blk, mc = min_int(mc_blk, M - ic);
                        mcnn_gemm_pack_a(trans_a, A, lda, ic, mc, pc, kc, MR, 0,
                                         ceil_div(mc, MR), ap);
                        macro_kernel(kern, kc, mc, nc, 0, panels_b, ap, bp,
                                     C + (size_t)ic * ldc + jc, ldc, alpha, beta_k);
                    }
                } else {
                    for (int ib = 0; ib < nb_m; ib++) {
                        int ic = ib * mc_blk, mc = min_int(mc_blk, M - ic);
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
                        for (int r = 0; r < ceil_div(mc, MR); r++)
                            mcnn_gemm_pack_a(trans_a, A, lda, ic, mc, pc, kc, MR, r, r + 1, ap);
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
                        for (int q = 0; q < panels_b; q++)
                            macro_kernel(kern, kc, mc, nc, q, q + 1, ap, bp,
                                         C + (size_t)ic * ldc + jc, ldc, alpha, beta_k);
                    }
                }
            }
        }
    }
}

void mcnn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    mcnn_gemm_with(mcnn_gemm_current_kernel(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                   beta, C, ldc);
}
