/* The reduced-precision GEMM at model shapes: GFLOP/s (GOP/s for int8: 2 ops per multiply-add)
 * of mcnn_gemm (fp32, packing W on every call), mcnn_gemm_packed in fp32, bf16 and int8 (the
 * best int8 kernel here, and the AVX2 one beside it when that is another), on 1 and 2 threads;
 * the modes are timed in turn within every repetition (alternating, so a neighbour's load hits
 * them alike) and the best of the repetitions is kept.  Then the dot-product peak of each
 * path, measured as bench/fma_peak.c does: independent chains of one instruction (fp32 FMA;
 * int8 vpmaddubsw + vpmaddwd + vpaddd, the AVX2 int8 kernel's; vpmaddwd + vpaddd on 16-bit
 * operands, the kernel before it, for comparison; with AVX-512 the 512-bit FMA, with
 * AVX512_BF16 vdpbf16ps, the bf16 kernel's, and with AVX512_VNNI vpdpbusd, the int8
 * kernel's).  Hold the CPU lock for the whole run:
 *   flock /tmp/mcnn-cpu.lock build/bench/bench_gemm_lowp [reps, default 3] [-q: batch 1 only]
 *       [-p: the peaks only (bench/compare_lowp_baselines.py's % of peak)] */
#include "mcnn.h"

#include "../lib/kernels/lowp_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct shape { const char *what; int M, N, K; } shape;
static const shape shapes[] = {
    {"ViT-B/16 qkv-like   b1", 197, 768, 768},
    {"ViT-B/16 mlp fc1    b1", 197, 3072, 768},
    {"ViT-B/16 mlp fc2    b1", 197, 768, 3072},
    {"R50 layer1 1x1 64>64 b1", 3136, 64, 64},
    {"R50 layer1 3x3       b1", 3136, 64, 576},
    {"R50 layer3 1x1 >1024 b1", 196, 1024, 256},
    {"R50 layer4 3x3       b1", 49, 512, 4608},
    {"ViT-B/16 qkv-like   b16", 3152, 768, 768},
    {"ViT-B/16 mlp fc1    b16", 3152, 3072, 768},
    {"ViT-B/16 mlp fc2    b16", 3152, 768, 3072},
};

static void fill(float *x, size_t n, unsigned seed)
{
    unsigned long long s = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

#define MODES 5 /* fp32 gemm, fp32 packed, bf16, int8, int8 on AVX2 */

static void bench_shape(const shape *s, int reps, int threads)
{
    float *x = malloc(sizeof(float) * s->M * s->K), *w = malloc(sizeof(float) * s->N * s->K);
    float *y = malloc(sizeof(float) * s->M * s->N);
    fill(x, (size_t)s->M * s->K, 1), fill(w, (size_t)s->N * s->K, 2);
    mcnn_packed_b *p[MODES] = {0};
    mcnn_precision prec[MODES] = {MCNN_PRECISION_FP32, MCNN_PRECISION_FP32, MCNN_PRECISION_BF16,
                                  MCNN_PRECISION_INT8, MCNN_PRECISION_INT8};
    for (int m = 1; m < MODES; m++) {
        if (m == MODES - 1) mcnn_lowp_set_isa("avx2"); /* the packed weight keeps its kernel */
        mcnn_status st = mcnn_packed_b_create(&p[m], prec[m], w, s->N, s->K, s->K);
        mcnn_lowp_set_isa(NULL);
        if (st != MCNN_OK) {
            printf("%s: %s\n", s->what, mcnn_last_error());
            return;
        }
    }
    int modes = strcmp(mcnn_packed_b_kernel(p[3]), mcnn_packed_b_kernel(p[4])) ? MODES : 4;
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    double best[MODES] = {0}, flops = 2.0 * s->M * s->N * s->K;
    int inner = flops < 2e9 ? (int)(2e9 / flops) + 1 : 1; /* calls per timing: >= ~2 GFLOP */
    for (int r = 0; r < reps + 1; r++)      /* the first round warms up */
        for (int m = 0; m < modes; m++) {
            double t0 = mcnn_seconds();
            for (int i = 0; i < inner; i++) {
                if (m == 0) mcnn_gemm(0, 1, s->M, s->N, s->K, 1, x, s->K, w, s->K, 0, y, s->N);
                else mcnn_gemm_packed(s->M, x, s->K, p[m], NULL, 0, y, s->N);
            }
            double g = flops * inner / (mcnn_seconds() - t0) * 1e-9;
            if (r > 0 && g > best[m]) best[m] = g;
        }
    printf("| %-24s | %4d x %4d x %4d | %d |", s->what, s->M, s->N, s->K, threads);
    for (int m = 0; m < MODES; m++) printf(m < modes ? " %6.1f |" : " - |", best[m]);
    printf(" %.2fx | %.2fx |", best[2] / best[1], best[3] / best[1]);
    if (modes == MODES) printf(" %.2fx |", best[3] / best[4]);
    printf("\n");
    for (int m = 1; m < MODES; m++) mcnn_packed_b_free(p[m]);
    free(x), free(w), free(y);
}

/* ---- peaks -------------------------------------------------------------------------------- */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define NACC 12
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#elif defined(__clang__)
#pragma clang fp contract(fast)
#endif
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));

/* fp32 FMA on VL floats: 2 VL flops per instruction (ymm 16, zmm 32) */
#define DEFINE_PEAK_FMA(name, isa, vec, VL)                                                  \
    __attribute__((target(isa), noinline)) static double name(long iters, int seed)         \
    {                                                                                        \
        vec c[NACC], xv, yv;                                                                 \
        for (int v = 0; v < (VL); v++) xv[v] = 0.999999f, yv[v] = 1e-7f * seed;             \
        for (int i = 0; i < NACC; i++) c[i] = xv * (float)(i + 1);                          \
        for (long it = 0; it < iters; it++)                                                  \
            for (int i = 0; i < NACC; i++) c[i] = c[i] * xv + yv;                           \
        double s = 0;                                                                        \
        for (int i = 0; i < NACC; i++) s += c[i][0];                                         \
        return s;                                                                            \
    }
DEFINE_PEAK_FMA(peak_fma, "avx2,fma", f32x8, 8)
DEFINE_PEAK_FMA(peak_fma512, "avx512f", f32x16, 16)

/* int8 widened to 16 bits (the kernel before lowp_int8.c's): vpmaddwd (16 multiply-adds) +
 * vpaddd: 32 ops per pair */
__attribute__((target("avx2"), noinline)) static double peak_maddwd(long iters, int seed)
{
    __m256i c[NACC], a = _mm256_set1_epi16((short)(seed + 3)), b = _mm256_set1_epi16(7);
    for (int i = 0; i < NACC; i++) c[i] = _mm256_set1_epi32(i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < NACC; i++) c[i] = _mm256_add_epi32(c[i], _mm256_madd_epi16(a, b));
    long s = 0;
    for (int i = 0; i < NACC; i++) s += _mm256_extract_epi32(c[i], 0);
    return (double)s;
}

/* the AVX2 int8 kernel's u8 x s8 path: vpmaddubsw (32 multiply-adds into int16 pairs, exact
 * with 7-bit activations) + vpmaddwd by ones + vpaddd: 64 ops per three instructions */
__attribute__((target("avx2"), noinline)) static double peak_maddubsw(long iters, int seed)
{
    __m256i c[NACC], a = _mm256_set1_epi8((char)(seed + 3)), b = _mm256_set1_epi8(7),
                     ones = _mm256_set1_epi16(1);
    for (int i = 0; i < NACC; i++) c[i] = _mm256_set1_epi32(i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < NACC; i++)
            c[i] = _mm256_add_epi32(c[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
    long s = 0;
    for (int i = 0; i < NACC; i++) s += _mm256_extract_epi32(c[i], 0);
    return (double)s;
}

/* AVX512_VNNI: vpdpbusd on zmm, 64 uint8 x int8 multiply-adds into 16 int32: 128 ops per
 * instruction (the VNNI int8 kernel's only arithmetic) */
__attribute__((target("avx512f,avx512vnni"), noinline)) static double peak_vnni(long iters,
                                                                               int seed)
{
    __m512i c[NACC], a = _mm512_set1_epi8((char)(seed + 3)), b = _mm512_set1_epi8(7);
    for (int i = 0; i < NACC; i++) c[i] = _mm512_set1_epi32(i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < NACC; i++) c[i] = _mm512_dpbusd_epi32(c[i], a, b);
    long s = 0;
    for (int i = 0; i < NACC; i++) s += _mm512_cvtsi512_si32(c[i]);
    return (double)s;
}

/* vdpbf16ps on zmm: 16 lanes x 2 multiply-adds = 64 flops per instruction */
__attribute__((target("avx512f,avx512bw,avx512bf16"), noinline)) static double
peak_dpbf16(long iters, int seed)
{
    __m512 c[NACC];
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80 + seed);
    __m512bh b = (__m512bh)_mm512_set1_epi32(0x3a003a00);
    for (int i = 0; i < NACC; i++) c[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < NACC; i++) c[i] = _mm512_dpbf16_ps(c[i], a, b);
    double s = 0;
    for (int i = 0; i < NACC; i++) s += _mm512_reduce_add_ps(c[i]);
    return s;
}

static double peak(double (*fn)(long, int), double ops_per_iter, int threads)
{
    long iters = 1000000;
    double best = 0;
    volatile double sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = mcnn_seconds();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
        {
            double s = fn(iters, rep);
#ifdef _OPENMP
#pragma omp atomic
#endif
            sink += s;
        }
        double dt = mcnn_seconds() - t0, g = ops_per_iter * iters * threads / dt * 1e-9;
        if (g > best) best = g;
        if (dt < 0.3) iters = (long)(iters * 0.3 / dt), rep--;
    }
    (void)sink;
    return best;
}
#endif

int main(int argc, char **argv)
{
    int reps = argc > 1 && argv[1][0] != '-' ? atoi(argv[1]) : 3, quick = 0, peaks_only = 0;
    for (int i = 1; i < argc; i++) {
        quick |= strcmp(argv[i], "-q") == 0;
        peaks_only |= strcmp(argv[i], "-p") == 0;
    }
    int level, maxt = mcnn_get_threads(); /* before the shapes set the count */
    if (mcnn_lowp_isa(&level) != MCNN_OK) {
        fprintf(stderr, "%s\n", mcnn_last_error());
        return 1;
    }
    printf("mcnn_gemm kernel %s; MCNN_ISA level %d\n", mcnn_gemm_kernel_name(), level);
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if (level >= 1)
        for (int t = 1; t <= 2 && t <= maxt; t++)
            printf("peak %d thread%s: fp32 FMA %.1f GFLOP/s, int8 vpmaddwd %.1f GOP/s, "
                   "int8 vpmaddubsw (the kernel's) %.1f GOP/s\n", t, t > 1 ? "s" : "",
                   peak(peak_fma, NACC * 16.0, t), peak(peak_maddwd, NACC * 32.0, t),
                   peak(peak_maddubsw, NACC * 64.0, t));
    if (level >= 2)
        for (int t = 1; t <= 2 && t <= maxt; t++) {
            printf("peak %d thread%s: fp32 FMA zmm %.1f GFLOP/s", t, t > 1 ? "s" : "",
                   peak(peak_fma512, NACC * 32.0, t));
            if (mcnn_cpu_has_avx512_bf16())
                printf(", bf16 vdpbf16ps zmm %.1f GFLOP/s", peak(peak_dpbf16, NACC * 64.0, t));
            if (mcnn_cpu_has_avx512_vnni())
                printf(", int8 vpdpbusd zmm (the VNNI kernel's) %.1f GOP/s",
                       peak(peak_vnni, NACC * 128.0, t));
            printf("\n");
        }
#endif
    if (peaks_only) return 0;
    {   /* bytes of one packed ViT-B/16 MLP weight (3072 x 768) */
        size_t n = 3072, k = 768;
        float *w = malloc(sizeof(float) * n * k);
        fill(w, n * k, 3);
        printf("packed 3072 x 768 weight (fp32 as stored: %zu bytes):", n * k * 4);
        for (int m = 0; m < 3; m++) {
            mcnn_packed_b *p;
            if (mcnn_packed_b_create(&p, (mcnn_precision)m, w, (int)n, (int)k, (int)k) != MCNN_OK)
                continue;
            printf(" %s %zu (%.3fx)", mcnn_precision_name((mcnn_precision)m),
                   mcnn_packed_b_bytes(p), mcnn_packed_b_bytes(p) / (4.0 * n * k));
            mcnn_packed_b_free(p);
        }
        printf("\n");
        free(w);
    }
    printf("| shape | M x N x K | threads | fp32 gemm | fp32 packed | bf16 | int8 (GOP/s) | "
           "int8 AVX2 | bf16 / packed | int8 / packed | int8 / int8 AVX2 |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        if (quick && strstr(shapes[i].what, "b16")) continue;
        for (int t = 1; t <= 2 && t <= maxt; t++) bench_shape(&shapes[i], reps, t);
    }
    return 0;
}
