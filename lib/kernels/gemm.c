/* The blocked GEMM: C = alpha * op(A) * op(B) + beta * C, row-major (BLAS semantics).
 *
 * The classic five loops of GotoBLAS / BLIS.  Each level keeps one operand in one cache level:
 *
 *   for jc in N by NC:              B panel kc x nc -> L3
 *     for pc in K by KC:            pack op(B)[pc.., jc..] into NR-wide panels
 *       for ic in M by MC:          pack op(A)[ic.., pc..] into MR-tall panels -> L2
 *         for jr in nc by NR:       one B micro-panel kc x NR -> L1 / L2
 *           for ir in mc by MR:     micro-kernel: C[ic+ir.., jc+jr..] (MR x NR) += A * B panels
 *
 * Packing (gemm_pack.c) removes transposes and leading dimensions and zero-pads the edges, so
 * the micro-kernel (gemm_micro.c) only ever multiplies whole panels.  K is cut into even KC
 * blocks; the first applies the caller's beta, the later ones add (beta = 1).  Two shortcuts,
 * both measured: with few rows an untransposed B is read in place rather than packed, and a
 * tall narrow product (N = 49 columns, M = 512 rows) is computed transposed, C^T = B^T A^T,
 * when that fills the register tiles clearly better.
 *
 * Threads: C is cut into rectangles of whole MR x NR tiles (along N for the wide products of a
 * transformer, along M for tall ones), one to four per thread, handed out as threads become
 * free; a thread runs the loops above on its rectangle with its own packing buffers.  No
 * barriers: the threads only meet at the end.  The price is that the operand along the cut is
 * packed once per rectangle, which costs little next to the multiply.  Each tile is computed
 * the same way whichever thread computes it (same K blocks, same kernel), so the result has
 * the same bits at any thread count. */
#include "gemm_internal.h"

#include <math.h>
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
 * so concurrent callers (for instance one GEMM per attention head on each thread) never share.
 * A thread that exits frees its buffer through a C11 thread-specific-storage destructor (OpenMP
 * retires worker threads when a team shrinks); where <threads.h> is missing, it stays behind. */
static _Thread_local float *scratch;
static _Thread_local size_t scratch_floats;

#if !defined(__STDC_NO_THREADS__)
#include <threads.h>
static tss_t scratch_key; /* its value: this thread's buffer, freed when the thread exits */
static int scratch_key_ok;
static once_flag scratch_once = ONCE_FLAG_INIT;

static void scratch_free(void *p)
{
    mcnn_free(p);
}

static void scratch_key_create(void)
{
    scratch_key_ok = tss_create(&scratch_key, scratch_free) == thrd_success;
}
#endif

static float *scratch_get(size_t floats)
{
    if (floats > scratch_floats) {
        mcnn_free(scratch);
        scratch = mcnn_alloc(floats * sizeof(float));
        scratch_floats = scratch ? floats : 0;
#if !defined(__STDC_NO_THREADS__)
        call_once(&scratch_once, scratch_key_create);
        if (scratch_key_ok) tss_set(scratch_key, scratch);
#endif
    }
    return scratch;
}

float *mcnn_gemm_scratch(size_t floats)
{
    return scratch_get(floats);
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

/* The two inner loops over one packed A block (mc x kc) and the B panels of columns
 * [0, nc): panels q < q_direct are read in place from bd (row stride ldbd), the others from the
 * packed panel bp.  c points at C[ic][jc]; C[i][j] is c[i*rsc + j*csc]. */
static void macro_kernel(const mcnn_gemm_kernel *kern, int kc, int mc, int nc, const float *ap,
                         const float *bd, int ldbd, int q_direct, const float *bp, float *c,
                         int rsc, int csc, float alpha, float beta)
{
    const int MR = kern->mr, NR = kern->nr;
    for (int q = 0; q * NR < nc; q++) {               /* jr: one B micro-panel, kept in L1 */
        int n = min_int(NR, nc - q * NR);
        const float *b = q < q_direct ? bd + (size_t)q * NR : bp + (size_t)(q - q_direct) * kc * NR;
        int ldb = q < q_direct ? ldbd : NR;
        for (int r = 0; r * MR < mc; r++) {           /* ir: stream the A micro-panels */
            int m = min_int(MR, mc - r * MR);
            kern->fn(kc, ap + (size_t)r * kc * MR, b, ldb,
                     c + (size_t)r * MR * rsc + (size_t)q * NR * csc, rsc, csc, m, n, alpha, beta);
        }
    }
}

/* Up to this many rows (per thread), an untransposed B is read in place instead of packed.
 * Measured (bench/bench_gemm.c): +20% at M = 64 (ResNet's first stage), +10% at 128, a loss
 * from about 256 rows, where the copy is shared by enough tiles to pay for itself. */
#define DIRECT_B_MAX_M 160

/* One call's arguments, as mcnn_gemm received them, and its block sizes. */
typedef struct gemm_call {
    const mcnn_gemm_kernel *kern;
    int trans_a, trans_b, M, N, K, lda, ldb;
    int rsc, csc;               /* C[i][j] is C[i*rsc + j*csc] */
    float alpha, beta;
    const float *A, *B;
    float *C;
    int kc_blk, mc_blk, nc_blk; /* even cuts of K, and the most rows / columns per block */
    int vec;                    /* packing may use AVX2 shuffles */
} gemm_call;

/* C[i0 : i0+m, j0 : j0+n] one dot product at a time: only when the packing buffers cannot be
 * allocated. */
static void rect_naive(const gemm_call *g, int i0, int m, int j0, int n)
{
    for (int i = i0; i < i0 + m; i++)
        for (int j = j0; j < j0 + n; j++) {
            double acc = 0.0;
            for (int k = 0; k < g->K; k++) {
                double a = g->trans_a ? g->A[(size_t)k * g->lda + i] : g->A[(size_t)i * g->lda + k];
                double b = g->trans_b ? g->B[(size_t)j * g->ldb + k] : g->B[(size_t)k * g->ldb + j];
                acc += a * b;
            }
            float *c = g->C + (size_t)i * g->rsc + (size_t)j * g->csc;
            *c = (float)(g->alpha * acc + (g->beta == 0.0f ? 0.0 : (double)g->beta * *c));
        }
}

/* The serial blocked algorithm on the rectangle C[i0 : i0+m, j0 : j0+n] (the whole of K), with
 * packing buffers from the calling thread.  i0 is a multiple of MR and j0 of NR, so the tiles
 * are the same ones a single thread would compute. */
static void gemm_rect(const gemm_call *g, int i0, int m, int j0, int n)
{
    const mcnn_gemm_kernel *kern = g->kern;
    const int MR = kern->mr, NR = kern->nr;
    int mc_blk = round_up(ceil_div(m, ceil_div(m, g->mc_blk)), MR); /* even row blocks */
    size_t b_size = (size_t)g->kc_blk * round_up(min_int(n, g->nc_blk), NR); /* (kc, nc) */
    float *bp = scratch_get(b_size + (size_t)g->kc_blk * mc_blk);
    if (!bp) { /* out of memory: still the right answer, slowly */
        rect_naive(g, i0, m, j0, n);
        return;
    }
    float *ap = bp + b_size; /* (mc, kc) */

    for (int jc = j0; jc < j0 + n; jc += g->nc_blk) {                 /* B panel -> L3 */
        int nc = min_int(g->nc_blk, j0 + n - jc), panels_b = ceil_div(nc, NR);
        /* Few rows: each B panel serves only a few tiles, and copying it would cost more
         * than reading an untransposed B in place.  The ragged last panel is still packed. */
        int q_direct = !g->trans_b && m <= DIRECT_B_MAX_M ? nc / NR : 0;
        for (int pc = 0; pc < g->K; pc += g->kc_blk) {
            int kc = min_int(g->kc_blk, g->K - pc);
            float beta = pc == 0 ? g->beta : 1.0f; /* later K blocks add to C */
            mcnn_gemm_pack_b(g->trans_b, g->B, g->ldb, pc, kc, jc + q_direct * NR,
                             nc - q_direct * NR, NR, 0, panels_b - q_direct, bp, g->vec);
            for (int ic = i0; ic < i0 + m; ic += mc_blk) {             /* A block -> L2 */
                int mc = min_int(mc_blk, i0 + m - ic);
                mcnn_gemm_pack_a(g->trans_a, g->A, g->lda, ic, mc, pc, kc, MR, 0,
                                 ceil_div(mc, MR), ap, g->vec);
                macro_kernel(kern, kc, mc, nc, ap, g->B + (size_t)pc * g->ldb + jc, g->ldb,
                             q_direct, bp, g->C + (size_t)ic * g->rsc + (size_t)jc * g->csc,
                             g->rsc, g->csc, g->alpha, beta);
            }
        }
    }
}

/* Fraction of the threads' time spent working when `tiles` tiles are cut into `parts` even
 * runs: 1 when they divide evenly. */
static double balance(int tiles, int parts)
{
    return (double)tiles / ((double)parts * ceil_div(tiles, parts));
}

/* The share of the computed tiles that lands in an M x N product: edge tiles compute their
 * rows and columns in steps of mr_edge and nr_edge. */
static double tile_fill(const mcnn_gemm_kernel *k, int M, int N)
{
    int rows = M / k->mr * k->mr + round_up(M % k->mr, k->mr_edge);
    int cols = N / k->nr * k->nr + round_up(N % k->nr, k->nr_edge);
    return (double)M * N / ((double)rows * cols);
}

static void run(gemm_call *g);


#define MAX_THREADS 256 /* more are not used */

/* Below this many multiply-adds a second thread costs more to wake than it saves. */
#define PARALLEL_MIN_WORK (64.0 * 64.0 * 64.0)

/* How late the other threads start a parallel call, smoothed (seconds).  On a quiet machine a
 * few microseconds.  When other processes hold the cores, a thread waits for a time slice:
 * milliseconds, during which the thread that did start waits at the end of the region, and a
 * small product takes longer on two threads than on one (measured: 64^3 at 0.05 GFLOP/s).
 * The same when a thread starts on time but shares its core (see note_team_delay).  So a call
 * goes parallel only when its work dwarfs that delay; every 50 ms one call goes parallel
 * anyway, to notice when the machine is free again.  The result does not depend on
 * the choice, only the time. */
static _Atomic double team_delay, team_probe_time;
static _Atomic int team_always; /* tests: go parallel whatever the delay */

void mcnn_gemm_always_parallel(int on)
{
    atomic_store(&team_always, on);
}

static int want_threads(double macs)
{
#ifdef _OPENMP
    if (omp_in_parallel() || macs < PARALLEL_MIN_WORK) return 1;
    double serial_seconds = macs / 50e9; /* a low guess of one core's speed */
    if (!atomic_load(&team_always) && serial_seconds < 8.0 * atomic_load(&team_delay) &&
        mcnn_seconds() - atomic_load(&team_probe_time) < 0.05)
        return 1;
    return min_int(omp_get_max_threads(), MAX_THREADS);
#else
    (void)macs;
    return 1;
#endif
}

/* After a parallel call: fold in how late its threads started (late[t], seconds), or the
 * whole call when it took about as long as one thread would have (serial: the work over the
 * fastest thread's speed) -- a thread that started on time but shared its core with another
 * process helped no more than one that never started. */
static void note_team_delay(const double *late, int nt, double region, double serial)
{
    double worst = 0;
    for (int t = 0; t < nt; t++) worst = late[t] > worst ? late[t] : worst;
    if (region > 0.9 * serial && region > worst) worst = region;
    double old = atomic_load(&team_delay); /* good news at once, bad news smoothed */
    atomic_store(&team_delay, worst < old ? worst : 0.5 * old + 0.5 * worst);
    atomic_store(&team_probe_time, mcnn_seconds());
}

void mcnn_gemm_with(const mcnn_gemm_kernel *kern, int trans_a, int trans_b, int M, int N, int K,
                    float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                    float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    /* Few columns and many rows (ResNet's last stage: M = 512, N = 49): compute the transposed
     * product C^T = op(B)^T op(A)^T instead, written into C column by column, when that wastes
     * clearly less of the tiles (49 columns fill 64 of a 32-wide tile, 49 rows fill 52). */
    if (tile_fill(kern, N, M) > 1.1 * tile_fill(kern, M, N)) {
        gemm_call g = {kern, !trans_b, !trans_a, N, M, K, ldb, lda, 1, ldc, alpha, beta, B, A, C,
                       0, 0, 0, 0};
        run(&g);
        return;
    }
    gemm_call g = {kern, trans_a, trans_b, M, N, K, lda, ldb, ldc, 1, alpha, beta, A, B, C,
                   0, 0, 0, 0};
    run(&g);
}

/* ---- threads sharing the packed B ------------------------------------------------------------
 * A product cut along M (square, or a weight gradient dY^T X with more outputs than inputs)
 * gives each thread a band of rows and all of B, so with independent rectangles every thread
 * would pack all of B again: at 1024^3 on two threads that copying cost about 8% of the time.
 * Here the team packs each B panel together -- every thread a share of its NR-wide column
 * panels -- then each multiplies its band of rows by the whole panel.  Two panel buffers
 * alternate, so one barrier per panel is enough: a thread reaches the packing of panel i + 2
 * (into the buffer of panel i) only after every thread has passed the barrier of panel i + 1,
 * that is, finished multiplying panel i.  The bands are fixed, so a thread slowed by another
 * process holds the others up at each barrier: used only when the threads have been starting
 * on time.  Each tile is computed as before (same K blocks, same kernel): the same bits. */
static int shared_b_pays(const gemm_call *g)
{
    if ((double)g->K * g->N < 64.0 * 64.0) return 0; /* B too small to be worth a barrier */
    double serial_seconds = (double)g->M * g->N * g->K / 50e9;
    return atomic_load(&team_always) || atomic_load(&team_delay) < 0.02 * serial_seconds;
}

static void run_shared_b(const gemm_call *g, int nt, int tiles_m)
{
    const mcnn_gemm_kernel *kern = g->kern;
    const int MR = kern->mr, NR = kern->nr;
    size_t a_size = (size_t)g->kc_blk * round_up(g->mc_blk, MR);
    size_t panel_size = (size_t)g->kc_blk * round_up(min_int(g->N, g->nc_blk), NR);
    /* One buffer from the calling thread holds the two shared B panels, then each thread's
     * A block: nothing to allocate (or fail) inside the region. */
    float *panels = scratch_get(2 * panel_size + nt * a_size);
    if (!panels) {
        rect_naive(g, 0, g->M, 0, g->N);
        return;
    }
    double late[MAX_THREADS], fork_time = mcnn_seconds();
    for (int t = 0; t < nt; t++) late[t] = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
#ifdef _OPENMP
        int t = omp_get_thread_num(), team = omp_get_num_threads();
#else
        int t = 0, team = 1;
#endif
        late[t] = mcnn_seconds() - fork_time;
        float *ap = panels + 2 * panel_size + (size_t)t * a_size;
        int i0 = tiles_m * t / team * MR, i1 = min_int(tiles_m * (t + 1) / team * MR, g->M);
        int m = i1 - i0, mc_blk = m > 0 ? round_up(ceil_div(m, ceil_div(m, g->mc_blk)), MR) : MR;
        int step = 0;
        for (int jc = 0; jc < g->N; jc += g->nc_blk) {
            int nc = min_int(g->nc_blk, g->N - jc), panels_b = ceil_div(nc, NR);
            for (int pc = 0; pc < g->K; pc += g->kc_blk, step++) {
                int kc = min_int(g->kc_blk, g->K - pc);
                float beta = pc == 0 ? g->beta : 1.0f;
                float *bp = panels + (size_t)(step & 1) * panel_size;
                mcnn_gemm_pack_b(g->trans_b, g->B, g->ldb, pc, kc, jc, nc, NR,
                                 panels_b * t / team, panels_b * (t + 1) / team, bp, g->vec);
#ifdef _OPENMP
#pragma omp barrier
#endif
                for (int ic = i0; ic < i1; ic += mc_blk) {
                    int mc = min_int(mc_blk, i1 - ic);
                    mcnn_gemm_pack_a(g->trans_a, g->A, g->lda, ic, mc, pc, kc, MR, 0,
                                     ceil_div(mc, MR), ap, g->vec);
                    macro_kernel(kern, kc, mc, nc, ap, NULL, 0, 0, bp,
                                 g->C + (size_t)ic * g->rsc + (size_t)jc * g->csc, g->rsc,
                                 g->csc, g->alpha, beta);
                }
            }
        }
    }
    /* how late the threads started (the slow-thread test of the pieces path needs per-thread
     * rates, which fixed bands do not give: skipped with an infinite serial time) */
    note_team_delay(late, nt, mcnn_seconds() - fork_time, HUGE_VAL);
}

/* Fill in the blocks and share the work out. */
static void run(gemm_call *g)
{
    const mcnn_gemm_kernel *kern = g->kern;
    const int MR = kern->mr, NR = kern->nr;
    int M = g->M, N = g->N, K = g->K;
    g->kc_blk = ceil_div(K, ceil_div(K, kern->kc)); /* even: K = 576, KC = 384 -> 2 x 288 */
    g->mc_blk = kern->mc;
    g->nc_blk = round_up(ceil_div(N, ceil_div(N, kern->nc)), NR);
    g->vec = kern->isa[0] != '\0'; /* every vector kernel's CPU also has AVX2 */

    int nt = want_threads((double)M * N * K);
    if (nt == 1) {
        gemm_rect(g, 0, M, 0, N);
        return;
    }

    /* Cut C into pm x pn rectangles, first one per thread, on tile boundaries; pick the grid
     * that keeps the threads busiest, and on a near tie cut the longer side (the operand
     * packed again for every rectangle is then the smaller one). */
    int tiles_m = ceil_div(M, MR), tiles_n = ceil_div(N, NR), pm = 1, pn = nt;
    double best = -1;
    for (int p = 1; p <= nt; p++) {
        if (nt % p) continue;
        double b = balance(tiles_m, p) * balance(tiles_n, nt / p);
        if (M >= N ? p > 1 : p == 1) b *= 1.02; /* the tie-break */
        if (b > best) best = b, pm = p, pn = nt / p;
    }

    if (pn == 1 && shared_b_pays(g)) {
        run_shared_b(g, nt, tiles_m);
        return;
    }

    /* A few pieces per thread along the cut, handed out as threads become free: a thread
     * slowed by another process on its core then does less of the work.  Each piece packs the
     * operand along the cut again (for a cut along N, all of A), so only as many as keep that
     * extra copying near 3% of the multiply: about one more per 400 columns (rows) per thread.
     * Whichever thread takes a piece, its tiles are computed the same way. */
    int per = 1 + (pn >= pm ? N : M) / (400 * nt);
    per = per > 4 ? 4 : per;
    if (pn >= pm) pn *= per;
    else pm *= per;
    int pieces = pm * pn;

    double late[MAX_THREADS], busy[MAX_THREADS], work[MAX_THREADS];
    for (int t = 0; t < nt; t++) late[t] = -1, busy[t] = work[t] = 0;
    double fork_time = mcnn_seconds();
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
#endif
    for (int p = 0; p < pieces; p++) { /* nothing shared but A and B */
#ifdef _OPENMP
        int t = omp_get_thread_num();
#else
        int t = 0;
#endif
        double start = mcnn_seconds();
        if (late[t] < 0) late[t] = start - fork_time;
        int pi = p / pn, pj = p % pn;
        int r0 = tiles_m * pi / pm, r1 = tiles_m * (pi + 1) / pm; /* tile rows [r0, r1) */
        int c0 = tiles_n * pj / pn, c1 = tiles_n * (pj + 1) / pn; /* tile cols [c0, c1) */
        int i0 = r0 * MR, j0 = c0 * NR;
        int m = min_int(r1 * MR, M) - i0, n = min_int(c1 * NR, N) - j0;
        if (m > 0 && n > 0) gemm_rect(g, i0, m, j0, n);
        busy[t] += mcnn_seconds() - start, work[t] += (double)(m > 0 ? m : 0) * (n > 0 ? n : 0);
    }
    double region = mcnn_seconds() - fork_time, rate = 0, total = 0;
    for (int t = 0; t < nt; t++) {
        if (late[t] < 0) late[t] = region; /* found no piece left: at least that late */
        if (busy[t] > 0 && work[t] / busy[t] > rate) rate = work[t] / busy[t];
        total += work[t];
    }
    note_team_delay(late, nt, region, rate > 0 ? total / rate : 0);
}

void mcnn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    mcnn_gemm_with(mcnn_gemm_current_kernel(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                   beta, C, ldc);
}
