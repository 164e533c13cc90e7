/* The machine's single-precision FMA peak, measured: the ceiling a GEMM is judged against.
 *
 * Each thread runs NACC independent accumulator chains of c = c * x + y (one FMA each, no
 * dependence between chains), long enough to hide the FMA latency.  GFLOP/s = 2 flops per lane.
 * Built, like the GEMM's micro-kernels, with GNU C vector extensions and a target attribute;
 * no -march=native.  Usage: build/bench/fma_peak [seconds-per-run, default 0.3]. */
#include "mcnn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* -std=c11 makes GCC keep c * x + y as a multiply and an add (ISO C forbids contraction by
 * default); this asks for the fused instruction, as the GEMM's micro-kernels do. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#elif defined(__clang__)
#pragma clang fp contract(fast)
#endif

#define NACC 12 /* > latency (4) x throughput (2 per cycle) chains */

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));

#define FMA_LOOP(vec, VL)                                                                    \
    vec c[NACC], x, y;                                                                       \
    for (int v = 0; v < VL; v++) x[v] = 0.999999f, y[v] = 1e-7f * seed;                     \
    for (int i = 0; i < NACC; i++) c[i] = x * (float)(i + 1);                                \
    for (long it = 0; it < iters; it++)                                                      \
        for (int i = 0; i < NACC; i++) c[i] = c[i] * x + y;                                  \
    float s = 0;                                                                             \
    for (int i = 0; i < NACC; i++)                                                           \
        for (int v = 0; v < VL; v++) s += c[i][v];                                           \
    return s;

__attribute__((target("avx512f"), noinline)) static float fma_avx512(long iters, float seed)
{
    FMA_LOOP(f32x16, 16)
}
__attribute__((target("avx2,fma"), noinline)) static float fma_avx2(long iters, float seed)
{
    FMA_LOOP(f32x8, 8)
}
#endif

typedef float (*fma_fn)(long, float);

/* Best-of-3 GFLOP/s of fn at the given thread count. */
static double measure(fma_fn fn, int vl, int threads, double seconds)
{
    long iters = 1000000;
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = mcnn_seconds();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
        {
            float s = fn(iters, (float)rep);
#ifdef _OPENMP
#pragma omp atomic
#endif
            sink += s;
        }
        double dt = mcnn_seconds() - t0;
        double gf = 2.0 * NACC * vl * (double)iters * threads / dt * 1e-9;
        if (gf > best) best = gf;
        if (dt < seconds) iters = (long)(iters * seconds / dt), rep--; /* too short: rescale */
    }
    (void)sink;
    return best;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.3;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    int maxt = mcnn_get_threads();
    for (int t = 1; t <= maxt && t <= 2; t++) {
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            printf("fma peak  avx2    %d thread%s: %7.1f GFLOP/s\n", t, t > 1 ? "s" : " ",
                   measure(fma_avx2, 8, t, seconds));
        if (__builtin_cpu_supports("avx512f"))
            printf("fma peak  avx512  %d thread%s: %7.1f GFLOP/s\n", t, t > 1 ? "s" : " ",
                   measure(fma_avx512, 16, t, seconds));
    }
#else
    (void)seconds;
    printf("fma peak: only measured on x86 with GNU C\n");
#endif
    return 0;
}
