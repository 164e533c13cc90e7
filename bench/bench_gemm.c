/* GEMM benchmark: GFLOP/s of mcnn_gemm next to OpenBLAS SGEMM, and of every numbered kernel.
 *
 *   build/bench/bench_gemm                 the table: square 256..2048 and the models' shapes,
 *                                          at 1 and 2 threads, ours vs OpenBLAS (when built in)
 *   build/bench/bench_gemm table vit       only the rows whose name contains "vit"
 *   build/bench/bench_gemm list            the numbered kernels: 0 naive, 1.. the micro-kernels
 *   build/bench/bench_gemm kernels [M N K [threads]]   every numbered kernel at one shape
 *   build/bench/bench_gemm tune k KC MC NC [M N K [threads]]   kernel k with other cache blocks
 *   options (before the command): -r ROUNDS (default 3), -t SECONDS per measurement (0.15),
 *   -c: time by CPU time instead of the wall clock (for 1 thread on a busy machine)
 *
 * This machine's speed drifts (shared cores, turbo), so each row is measured in ROUNDS rounds
 * that alternate ours and OpenBLAS, and the best of each is kept.  Between the two sides it
 * sleeps, so that the spinning idle threads of one library do not steal the other's cores.
 * For OpenBLAS 0.3.21 on Zen 4 run with OPENBLAS_CORETYPE=SkylakeX (it does not know Zen 4 and
 * otherwise falls back to slower kernels). */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include "mcnn.h"

#include "../lib/kernels/gemm_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef MCNN_BENCH_OPENBLAS
#include <cblas.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast") /* for the FMA peak loop below */
#elif defined(__clang__)
#pragma clang fp contract(fast)
#endif

static int rounds = 3;
static double min_seconds = 0.15;
static int cpu_time; /* -c: time by this process's CPU time, not the wall clock */

/* The clock measurements use.  CPU time ignores the time this process waits while others
 * run, so single-thread comparisons (tuning) stay fair on a busy machine; with threads it
 * adds up their time, so it is only meant for 1 thread. */
static double now(void)
{
    if (!cpu_time) return mcnn_seconds();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void pause_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the machine's FMA peak (as bench/fma_peak.c) ------------------------------------------ */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
typedef float f32x16 __attribute__((vector_size(64)));
__attribute__((target("avx512f"), noinline)) static float fma_chains(long iters)
{
    f32x16 c[12], x = {0}, y = {0};
    x += 0.999999f, y += 1e-7f;
    for (int i = 0; i < 12; i++) c[i] = x * (float)(i + 1);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) c[i] = c[i] * x + y;
    float s = 0;
    for (int i = 0; i < 12; i++) s += c[i][0];
    return s;
}

/* GFLOP/s of 12 independent FMA chains per thread, best of 3 */
static double fma_peak(int threads)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) return 0;
    long iters = 20000000;
    double best = 0;
    volatile float sink = 0;
    mcnn_set_threads(threads);
    for (int r = 0; r < 3; r++) {
        double t0 = now();
#ifdef _OPENMP
#pragma omp parallel
#endif
        {
            float s = fma_chains(iters);
#ifdef _OPENMP
#pragma omp atomic
#endif
            sink += s;
        }
        double gf = 2.0 * 12 * 16 * iters * threads / (now() - t0) * 1e-9;
        if (gf > best) best = gf;
    }
    (void)sink;
    return best;
}
#else
static double fma_peak(int threads)
{
    (void)threads;
    return 0;
}
#endif

/* ---- one problem ----------------------------------------------------------------------------- */
typedef struct problem {
    const char *name;
    int ta, tb, M, N, K, lda, ldb, ldc;
    float *A, *B, *C;
} problem;

static problem make_problem(const char *name, int ta, int tb, int M, int N, int K, int lda,
                            int ldb)
{
    problem p = {name, ta, tb, M, N, K, lda, ldb, N, NULL, NULL, NULL};
    if (!p.lda) p.lda = ta ? M : K;
    if (!p.ldb) p.ldb = tb ? K : N;
    size_t na = (size_t)(ta ? K : M) * p.lda, nb = (size_t)(tb ? N : K) * p.ldb;
    p.A = mcnn_alloc(na * sizeof(float));
    p.B = mcnn_alloc(nb * sizeof(float));
    p.C = mcnn_alloc((size_t)M * N * sizeof(float));
    mcnn_rng r;
    mcnn_rng_seed(&r, 1);
    for (size_t i = 0; i < na; i++) p.A[i] = mcnn_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < nb; i++) p.B[i] = mcnn_rng_uniform(&r) - 0.5f;
    memset(p.C, 0, (size_t)M * N * sizeof(float));
    return p;
}

static void free_problem(problem *p)
{
    mcnn_free(p->A), mcnn_free(p->B), mcnn_free(p->C);
}

/* who computes: -1 naive reference, -2 OpenBLAS, -3 mcnn_gemm, else a kernel (and blocks) */
typedef struct engine {
    int kind;
    mcnn_gemm_kernel k;
} engine;

static void run(const engine *e, problem *p)
{
    switch (e->kind) {
    case -1:
        mcnn_gemm_ref(p->ta, p->tb, p->M, p->N, p->K, 1.0f, p->A, p->lda, p->B, p->ldb, 0.0f, p->C,
                      p->ldc);
        break;
    case -2:
#ifdef MCNN_BENCH_OPENBLAS
        cblas_sgemm(CblasRowMajor, p->ta ? CblasTrans : CblasNoTrans,
                    p->tb ? CblasTrans : CblasNoTrans, p->M, p->N, p->K, 1.0f, p->A, p->lda, p->B,
                    p->ldb, 0.0f, p->C, p->ldc);
#endif
        break;
    case -3:
        mcnn_gemm(p->ta, p->tb, p->M, p->N, p->K, 1.0f, p->A, p->lda, p->B, p->ldb, 0.0f, p->C,
                  p->ldc);
        break;
    default:
        mcnn_gemm_with(&e->k, p->ta, p->tb, p->M, p->N, p->K, 1.0f, p->A, p->lda, p->B, p->ldb,
                       0.0f, p->C, p->ldc);
    }
}

static void set_threads(const engine *e, int threads)
{
#ifdef MCNN_BENCH_OPENBLAS
    if (e->kind == -2) {
        openblas_set_num_threads(threads);
        return;
    }
#endif
    (void)e;
    mcnn_set_threads(threads);
}

/* GFLOP/s of one measurement: one warm-up call, then repeat for at least min_seconds. */
static double measure(const engine *e, problem *p, int threads)
{
    set_threads(e, threads);
    run(e, p);
    double flops = 2.0 * p->M * p->N * p->K, t0 = now(), dt;
    long reps = 0;
    do {
        run(e, p);
        reps++;
        dt = now() - t0;
    } while (dt < min_seconds);
    return flops * reps / dt * 1e-9;
}

/* Best-of-rounds GFLOP/s for engines e[0..n), alternating them within each round. */
static void compare(const engine *e, int n, problem *p, int threads, double *best)
{
    for (int i = 0; i < n; i++) best[i] = 0;
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++) {
            double g = measure(&e[i], p, threads);
            if (g > best[i]) best[i] = g;
            if (n > 1) pause_ms(100);
        }
}

/* ---- the table ------------------------------------------------------------------------------- */
static void table(const char *filter)
{
    /* twice each, the better kept: one measurement can catch the host throttling a core */
    double peak1 = fma_peak(1), peak2 = cpu_time ? 0 : fma_peak(2);
    double again1 = fma_peak(1), again2 = cpu_time ? 0 : fma_peak(2);
    peak1 = again1 > peak1 ? again1 : peak1, peak2 = again2 > peak2 ? again2 : peak2;
    printf("kernel %s; FMA peak %.0f GFLOP/s (1 thread), %.0f (2 threads)\n",
           mcnn_gemm_kernel_name(), peak1, peak2);
#ifdef MCNN_BENCH_OPENBLAS
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("OpenBLAS %s, core %s (OPENBLAS_CORETYPE=%s)\n", openblas_get_config(),
           openblas_get_corename(), core ? core : "unset");
    engine e[2] = {{-3, {0}}, {-2, {0}}};
    int ne = 2;
#else
    engine e[1] = {{-3, {0}}};
    int ne = 1;
#endif
    struct {
        const char *name;
        int ta, tb, M, N, K, lda, ldb;
    } shapes[] = {
        {"square 256", 0, 0, 256, 256, 256, 0, 0},
        {"square 512", 0, 0, 512, 512, 512, 0, 0},
        {"square 1024", 0, 0, 1024, 1024, 1024, 0, 0},
        {"square 1536", 0, 0, 1536, 1536, 1536, 0, 0},
        {"square 2048", 0, 0, 2048, 2048, 2048, 0, 0},
        {"vit qkv x.W^T", 0, 1, 197, 2304, 768, 0, 0},
        {"vit fc1 x.W^T", 0, 1, 197, 3072, 768, 0, 0},
        {"vit fc2 x.W^T", 0, 1, 197, 768, 3072, 0, 0},
        {"vit attn q.k^T", 0, 1, 197, 197, 64, 2304, 2304},
        {"vit attn p.v", 0, 0, 197, 64, 197, 0, 2304},
        {"rn50 3x3 c64", 0, 0, 64, 3136, 576, 0, 0},
        {"rn50 1x1 c64", 0, 0, 256, 3136, 64, 0, 0},
        {"rn50 3x3 c512", 0, 0, 512, 49, 4608, 0, 0},
    };
    printf("%-16s %5s %5s %5s %3s %9s %9s %6s %7s\n", "shape", "M", "N", "K", "thr", "mcnn",
           "openblas", "ratio", "%peak");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        if (filter && !strstr(shapes[s].name, filter)) continue;
        problem p = make_problem(shapes[s].name, shapes[s].ta, shapes[s].tb, shapes[s].M,
                                 shapes[s].N, shapes[s].K, shapes[s].lda, shapes[s].ldb);
        for (int t = 1; t <= (cpu_time ? 1 : 2); t++) { /* CPU time: 1 thread only */
            double best[2] = {0, 0};
            compare(e, ne, &p, t, best);
            printf("%-16s %5d %5d %5d %3d %9.1f %9.1f %6.2f %6.0f%%\n", p.name, p.M, p.N, p.K, t,
                   best[0], best[1], best[1] > 0 ? best[0] / best[1] : 0.0,
                   100.0 * best[0] / (t == 1 ? peak1 : peak2));
            fflush(stdout);
        }
        free_problem(&p);
    }
    double end1 = fma_peak(1), end2 = cpu_time ? 0 : fma_peak(2);
    printf("FMA peak again at the end: %.0f (1 thread), %.0f (2 threads); %%peak above uses the "
           "start\n", end1, end2);
}

/* ---- the numbered kernels -------------------------------------------------------------------- */
static int kernel_count(void)
{
    int n = 0;
    while (mcnn_gemm_kernels[n].fn) n++;
    return n;
}

static void list(void)
{
    printf(" 0  naive       mcnn_gemm_ref: one double dot product per element\n");
    for (int i = 0; i < kernel_count(); i++) {
        const mcnn_gemm_kernel *k = &mcnn_gemm_kernels[i];
        printf("%2d  %-12s MR=%-2d NR=%-2d KC=%-4d MC=%-4d NC=%-5d %s\n", i + 1, k->name, k->mr,
               k->nr, k->kc, k->mc, k->nc,
               mcnn_gemm_kernel_supported(k) ? "" : "(not on this CPU)");
    }
}

static void kernels(int M, int N, int K, int threads)
{
    problem p = make_problem("kernels", 0, 0, M, N, K, 0, 0);
    printf("%dx%dx%d NN, %d thread(s), best of %d\n", M, N, K, threads, rounds);
    int n = kernel_count();
    engine *e = calloc((size_t)n + 1, sizeof *e);
    int ne = 0;
    if ((double)M * N * K <= 512.0 * 512 * 512) e[ne++].kind = -1;
    for (int i = 0; i < n; i++)
        if (mcnn_gemm_kernel_supported(&mcnn_gemm_kernels[i]))
            e[ne].kind = i + 1, e[ne++].k = mcnn_gemm_kernels[i];
    double *best = calloc((size_t)ne, sizeof *best);
    compare(e, ne, &p, threads, best);
    for (int i = 0; i < ne; i++)
        printf("%2d  %-14s %7.1f GFLOP/s\n", e[i].kind < 0 ? 0 : e[i].kind,
               e[i].kind < 0 ? "naive" : e[i].k.name, best[i]);
    free(best), free(e);
    free_problem(&p);
}

static void tune(int k, int kc, int mc, int nc, int M, int N, int K, int threads, int tb)
{
    if (k < 1 || k > kernel_count() || !mcnn_gemm_kernel_supported(&mcnn_gemm_kernels[k - 1])) {
        fprintf(stderr, "kernel %d is not available here (see 'list')\n", k);
        return;
    }
    engine e = {k, mcnn_gemm_kernels[k - 1]};
    e.k.kc = kc, e.k.mc = mc, e.k.nc = nc;
    problem p = make_problem("tune", 0, tb, M, N, K, 0, 0);
    double best;
    compare(&e, 1, &p, threads, &best);
    printf("%-14s KC=%-4d MC=%-4d NC=%-5d %dx%dx%d %s %dt: %7.1f GFLOP/s\n", e.k.name, kc, mc, nc,
           M, N, K, tb ? "NT" : "NN", threads, best);
    free_problem(&p);
}

int main(int argc, char **argv)
{
    int a = 1;
    for (; a < argc && argv[a][0] == '-'; a += 2) {
        if (strcmp(argv[a], "-c") == 0) {
            cpu_time = 1, a--;
            continue;
        }
        if (a + 1 >= argc) break;
        if (strcmp(argv[a], "-r") == 0) rounds = atoi(argv[a + 1]);
        if (strcmp(argv[a], "-t") == 0) min_seconds = atof(argv[a + 1]);
    }
    const char *cmd = a < argc ? argv[a++] : "table";
    int rest = argc - a;
    if (strcmp(cmd, "table") == 0) table(rest >= 1 ? argv[a] : NULL);
    else if (strcmp(cmd, "list") == 0) list();
    else if (strcmp(cmd, "kernels") == 0)
        kernels(rest >= 3 ? atoi(argv[a]) : 1024, rest >= 3 ? atoi(argv[a + 1]) : 1024,
                rest >= 3 ? atoi(argv[a + 2]) : 1024, rest >= 4 ? atoi(argv[a + 3]) : 1);
    else if (strcmp(cmd, "tune") == 0 && rest >= 4)
        tune(atoi(argv[a]), atoi(argv[a + 1]), atoi(argv[a + 2]), atoi(argv[a + 3]),
             rest >= 7 ? atoi(argv[a + 4]) : 1024, rest >= 7 ? atoi(argv[a + 5]) : 1024,
             rest >= 7 ? atoi(argv[a + 6]) : 1024, rest >= 8 ? atoi(argv[a + 7]) : 1,
             rest >= 9 ? atoi(argv[a + 8]) : 0);
    else {
        fprintf(stderr, "usage: bench_gemm [-c] [-r rounds] [-t seconds] [table [filter] | list | "
                        "kernels [M N K [threads]] | tune k KC MC NC [M N K [threads "
                        "[transB]]]]\n");
        return 1;
    }
    return 0;
}
