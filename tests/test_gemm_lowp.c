/* The reduced-precision GEMM (lib/kernels/gemm_packed.c, lowp_*.c; docs/precision.md).
 *
 * Quantizers against their definitions: bf16 round-to-nearest-even checked against a
 * double-precision nearest search over random bit patterns plus hand-picked ties, overflow to
 * inf, NaN kept quiet; int8 weight and uint8 activation rows against hand-worked rows (ties,
 * saturation, zero points, all-zero, tiny and non-finite rows; 7 and 8 bits) and the error
 * bound of the definition; every vector activation quantizer bit for bit against the
 * definition at its kernel's range (0..127 AVX2, 0..255 VNNI).
 * Kernels, for every ISA level this CPU runs (plain, avx2, ...):
 *   fp32  packed gives the same bits as mcnn_gemm + bias (as mcnn_linear_forward adds it);
 *   bf16  equals a double-precision sum of the bf16-rounded operands to within fp32
 *         summation's bound (one rounding per k, per K block, for beta and for the bias), and
 *         differs from the unrounded product (so the rounding happens); the pair kernel
 *         (vdpbf16ps) bit for bit against the instruction's definition on a C emulation, and
 *         its denormal behaviour (inputs and results flushed to zero) pinned down;
 *   int8  the same bits as the exact int64 sum of the quantizers' integers (at the kernel's
 *         activation range) put through the epilogue's definition; plain and AVX2 kernels the
 *         same bits, VNNI's 8-bit activations closer to fp32; the largest sums exact (AVX2's
 *         pairs 127 · ±127 twice, VNNI's groups 255 · ±127 four times, and K = 65536 of them;
 *         K = 65537 refused).
 * Odd shapes (1, 7, 33, K across several K blocks, 197 x 768 x 100), bias or not, beta 0 on a
 * NaN-filled y or 0.5; 1 vs 2 threads give the same bits; memory: bf16 2 bytes per value of
 * its padded panels (half of fp32 at the same tile), int8 about a quarter; MCNN_ISA refusals
 * explained. */
#define _POSIX_C_SOURCE 200112L /* setenv */
#include "mcnn_test.h"

#include "../lib/kernels/lowp_internal.h"

#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static uint32_t bits_of(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static float float_of(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* ---- quantizers -------------------------------------------------------------------------- */

/* The bf16 nearest to a finite x by search: the two candidates around it, compared in double. */
static uint16_t bf16_by_search(float x)
{
    uint32_t u = bits_of(x);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1); /* toward 0, away from 0 */
    double dlo = fabs((double)x - mcnn_bf16_to_float(lo));
    double dhi = (hi & 0x7fff) >= 0x7f80 ? INFINITY : fabs((double)x - mcnn_bf16_to_float(hi));
    if ((hi & 0x7fff) == 0x7f80) { /* the step to inf: it rounds there past max + half ulp */
        double half = ldexp(1.0, 127 - 8);
        double max = mcnn_bf16_to_float(0x7f7f);
        double ax = fabs((double)x);
        if (ax > max + half || (ax == max + half)) return (uint16_t)((u >> 16 & 0x8000) | 0x7f80);
        return lo;
    }
    if (dlo < dhi) return lo;
    if (dhi < dlo) return hi;
    return (lo & 1) ? hi : lo;
}

static void test_bf16_rounding(void)
{
    struct { uint32_t in; uint16_t want; } cases[] = {
        {0x3f800000, 0x3f80}, /* 1 */
        {0x3f808000, 0x3f80}, /* 1 + 2^-8: a tie, down to the even 0x3f80 */
        {0x3f818000, 0x3f82}, /* a tie above the odd 0x3f81: up to the even */
        {0x3f808001, 0x3f81}, /* just past the tie */
        {0x3f807fff, 0x3f80}, /* just short of it */
        {0xbf818000, 0xbf82}, /* negative tie */
        {0x7f7fffff, 0x7f80}, /* FLT_MAX rounds to inf */
        {0x7f7f7fff, 0x7f7f}, /* below the midpoint to inf */
        {0x7f800000, 0x7f80}, /* inf */
        {0xff800000, 0xff80}, /* -inf */
        {0x7fc00000, 0x7fc0}, /* quiet NaN */
        {0x7f800001, 0x7fc0}, /* signalling NaN with payload in the low bits: stays NaN, quiet */
        {0xff800001, 0xffc0}, /* negative signalling NaN keeps its sign */
        {0x7fffffff, 0x7fff}, /* NaN with all payload bits: no carry into the sign */
        {0x00008000, 0x0000}, /* subnormal tie to even 0 */
        {0x00018000, 0x0002}, /* subnormal tie to even 2 */
        {0x80000000, 0x8000}, /* -0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = mcnn_bf16_from_float(float_of(cases[i].in));
        TEST_ASSERT(got == cases[i].want, "bf16(0x%08x) = 0x%04x, want 0x%04x",
                    (unsigned)cases[i].in, got, cases[i].want);
    }
    unsigned long long s = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint32_t u = (uint32_t)s;
        if (i % 4 == 0) u = (u & 0xffff0000u) | 0x8000u; /* many exact ties */
        float x = float_of(u);
        if (isnan(x)) continue;
        uint16_t got = mcnn_bf16_from_float(x), want = bf16_by_search(x);
        TEST_ASSERT(got == want, "bf16(0x%08x) = 0x%04x, want 0x%04x", (unsigned)u, got, want);
    }
}

static void test_weight_quant(void)
{
    /* max 127 -> s = 1 exactly, so q = round(w) with ties to even */
    float w[] = {127, 2.5f, 3.5f, -2.5f, -0.5f, 0.49f, -127, 1.5f};
    int8_t want[] = {127, 2, 4, -2, 0, 0, -127, 2}, q[8];
    int32_t qsum;
    float s = mcnn_quant_weight_row(w, 8, q, &qsum);
    TEST_CLOSE("scale", s, 1.0, 0, 0);
    int32_t sum = 0;
    for (int k = 0; k < 8; k++) {
        TEST_ASSERT(q[k] == want[k], "w %g -> %d, want %d", w[k], q[k], want[k]);
        sum += want[k];
    }
    TEST_ASSERT(qsum == sum, "qsum %d, want %d", qsum, sum);

    float zero[5] = {0};
    s = mcnn_quant_weight_row(zero, 5, q, &qsum);
    TEST_ASSERT(s == 0.0f && qsum == 0 && q[0] == 0 && q[4] == 0, "all-zero row: s %g", s);

    float bad[3] = {1, INFINITY, 2}, nan_row[3] = {1, NAN, 2};
    s = mcnn_quant_weight_row(bad, 3, q, &qsum);
    TEST_ASSERT(isnan(s) && q[0] == 0 && q[2] == 0, "inf row: s %g", s);
    s = mcnn_quant_weight_row(nan_row, 3, q, &qsum);
    TEST_ASSERT(isnan(s), "NaN row: s %g", s);

    /* random rows: |w - s q| <= s / 2 (the definition's rounding), the max reaches +-127 */
    float r[300];
    int8_t qr[300];
    for (int t = 0; t < 20; t++) {
        test_fill_random(r, 300, 100 + t);
        for (int k = 0; k < 300; k++) r[k] *= (float)(t + 1) * 0.37f;
        s = mcnn_quant_weight_row(r, 300, qr, &qsum);
        int reached = 0;
        for (int k = 0; k < 300; k++) {
            TEST_ASSERT(fabs(r[k] - (double)s * qr[k]) <= 0.5001 * s, "w %g s %g q %d", r[k], s,
                        qr[k]);
            reached |= qr[k] == 127 || qr[k] == -127;
        }
        TEST_ASSERT(reached, "row %d: no element at +-127", t);
    }
}

static void test_act_quant(void)
{
    /* [-1, 3]: r = 127/4 = 31.75, s = 4/127, z = round(31.75) = 32; -1 -> -32 + 32 = 0,
     * 3 -> round(95.25) + 32 = 127, 1 -> round(31.75) + 32 = 64 */
    float x[] = {-1, 0, 3, 1};
    uint8_t q[8];
    int32_t z;
    float s = mcnn_quant_act_row(x, 4, q, &z);
    TEST_CLOSE("scale", s, 4.0f / 127.0f, 1e-7, 0);
    TEST_ASSERT(z == 32, "zero point %d, want 32", z);
    TEST_ASSERT(q[0] == 0 && q[1] == 32 && q[2] == 127 && q[3] == 64, "q = %d %d %d %d", q[0],
                q[1], q[2], q[3]);
    /* [0, 127]: r = 1, so q = round(x), ties to even */
    float ties[] = {127, 2.5f, 3.5f, 0.5f, 1.5f, 126.5f};
    uint8_t want_ties[] = {127, 2, 4, 0, 2, 126};
    s = mcnn_quant_act_row(ties, 6, q, &z);
    for (int k = 0; k < 6; k++)
        TEST_ASSERT(q[k] == want_ties[k], "tie %g -> %d, want %d", ties[k], q[k], want_ties[k]);

    float pos[] = {0.5f, 2, 1}; /* non-negative (after ReLU): z = 0, the max -> 127 */
    s = mcnn_quant_act_row(pos, 3, q, &z);
    TEST_ASSERT(z == 0 && q[1] == 127, "positive row: z %d q %d", z, q[1]);
    float neg[] = {-0.5f, -2, -1}; /* non-positive: z = 127, the min -> 0 */
    s = mcnn_quant_act_row(neg, 3, q, &z);
    TEST_ASSERT(z == 127 && q[1] == 0 && q[0] > 0, "negative row: z %d q %d", z, q[1]);

    float zero[4] = {0};
    s = mcnn_quant_act_row(zero, 4, q, &z);
    TEST_ASSERT(s == 1.0f && z == 0 && q[0] == 0 && q[3] == 0, "all-zero row");
    float tiny[] = {1e-38f, -1e-38f, 0}; /* 127 / range overflows: taken as all zero */
    s = mcnn_quant_act_row(tiny, 3, q, &z);
    TEST_ASSERT(s == 1.0f && z == 0 && q[0] == 0 && q[1] == 0, "tiny row: s %g z %d", s, z);
    float bad[3] = {1, -INFINITY, 2};
    s = mcnn_quant_act_row(bad, 3, q, &z);
    TEST_ASSERT(isnan(s) && z == 0 && q[0] == 0, "inf row: s %g z %d", s, z);

    /* 8 bits (VNNI): [-1, 3]: r = 255/4 = 63.75, s = 4/255, z = round(63.75) = 64;
     * -1 -> -64 + 64 = 0, 3 -> round(191.25) + 64 = 255, 1 -> round(63.75) + 64 = 128 */
    s = mcnn_quant_act_row_max(x, 4, 255, q, &z);
    TEST_CLOSE("8-bit scale", s, 4.0f / 255.0f, 1e-7, 0);
    TEST_ASSERT(z == 64 && q[0] == 0 && q[1] == 64 && q[2] == 255 && q[3] == 128,
                "8-bit: z %d q = %d %d %d %d", z, q[0], q[1], q[2], q[3]);
    /* [0, 255]: r = 1, ties to even, 255 the top (a 7-bit code would saturate at 127) */
    float ties8[] = {255, 2.5f, 128.5f, 129.5f, 254.5f, 127.5f};
    uint8_t want_ties8[] = {255, 2, 128, 130, 254, 128};
    s = mcnn_quant_act_row_max(ties8, 6, 255, q, &z);
    for (int k = 0; k < 6; k++)
        TEST_ASSERT(q[k] == want_ties8[k], "8-bit tie %g -> %d, want %d", ties8[k], q[k],
                    want_ties8[k]);
    s = mcnn_quant_act_row_max(neg, 3, 255, q, &z);
    TEST_ASSERT(z == 255 && q[1] == 0 && q[0] > 127, "8-bit negative row: z %d q %d %d", z,
                q[1], q[0]);
    s = mcnn_quant_act_row_max(tiny, 3, 255, q, &z);
    TEST_ASSERT(s == 1.0f && z == 0 && q[0] == 0, "8-bit tiny row: s %g z %d", s, z);
    s = mcnn_quant_act_row_max(bad, 3, 255, q, &z);
    TEST_ASSERT(isnan(s) && z == 0 && q[0] == 0, "8-bit inf row: s %g z %d", s, z);

    /* random rows: every x within s of s (q - z) (x's rounding and z's), 0 exactly at q = z,
     * nothing above 127 */
    float r[257];
    uint8_t qr[257];
    for (int t = 0; t < 40; t++) {
        const int A = t < 20 ? 127 : 255;
        test_fill_random(r, 257, 300 + t % 20);
        for (int k = 0; k < 257; k++) r[k] = r[k] * (t + 1) + (t % 3 - 1) * 0.6f * (t + 1);
        r[100] = 0;
        s = mcnn_quant_act_row_max(r, 257, A, qr, &z);
        TEST_ASSERT(z >= 0 && z <= A && qr[100] == z, "zero maps to the zero point");
        int top = 0;
        for (int k = 0; k < 257; k++) {
            TEST_ASSERT(qr[k] <= A, "q %d > %d", qr[k], A);
            TEST_ASSERT(fabs(r[k] - (double)s * (qr[k] - z)) <= 1.0001 * s, "x %g s %g q %d z %d",
                        r[k], s, qr[k], z);
            top |= qr[k] == A;
        }
        TEST_ASSERT(top || z == A, "row %d: the range's top not reached", t);
    }
}

/* Each kernel's activation quantizer (a vector twin) gives the definition's bits: lengths
 * around the vector widths, ties, zeros, one-sided, tiny and non-finite rows. */
static void test_act_quant_twins(void)
{
    float x[300];
    uint8_t want[300], got[300];
    int lens[] = {1, 7, 8, 9, 31, 32, 33, 64, 100, 257, 300}, checked = 0;
    for (const mcnn_lowp_kernel *k = mcnn_lowp_kernels; k->name; k++) {
        if (!mcnn_lowp_kernel_usable(k, mcnn_lowp_cpu_level()) || !k->quant_act ||
            k->quant_act == mcnn_quant_act_row)
            continue;
        for (int t = 0; t < 400; t++) {
            int K = lens[t % 11];
            test_fill_random(x, (size_t)K, 900 + t);
            int kind = t / 11 % 8;
            for (int i = 0; i < K; i++) {
                if (kind == 1) x[i] = fabsf(x[i]);                     /* one-sided */
                if (kind == 2) x[i] = -fabsf(x[i]) * 1e-3f;
                if (kind == 3) x[i] = (float)((i * 7) % 255) * 0.5f;   /* ties: r = 1 */
                if (kind == 4) x[i] = 0.0f;
                if (kind == 5) x[i] *= 1e-38f;                         /* tiny range */
            }
            if (kind == 3) x[0] = (float)k->a_max, x[K > 1] = 0.0f;
            if (kind == 6) x[t % K] = t % 2 ? NAN : -INFINITY;
            if (kind == 7) x[t % K] = 3e38f;
            int32_t zw = -1, zg = -2;
            memset(want, 0xaa, sizeof want), memset(got, 0x55, sizeof got);
            float sw = mcnn_quant_act_row_max(x, K, k->a_max, want, &zw);
            float sg = k->quant_act(x, K, got, &zg);
            TEST_ASSERT(bits_of(sw) == bits_of(sg) && zw == zg && memcmp(want, got, (size_t)K) == 0,
                        "%s activation quantizer (0..%d), K %d kind %d: s %g / %g, z %d / %d",
                        k->name, k->a_max, K, kind, sw, sg, zw, zg);
            checked++;
        }
    }
    if (!checked) TEST_SKIP("no vector activation quantizer on this CPU");
}

/* ---- kernels ------------------------------------------------------------------------------ */
typedef struct shape { int M, N, K; } shape;
static const shape shapes[] = {
    {1, 1, 1}, {1, 7, 33}, {7, 33, 1}, {33, 7, 100}, {2, 16, 5}, {13, 50, 600},
    {300, 20, 45}, {64, 300, 700}, {197, 768, 100},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

typedef struct data { float *x, *w, *bias, *y, *want; int lda, ldw, ldc; } data;

static data make(const shape *s, unsigned seed)
{
    data d;
    d.lda = s->K + 3, d.ldw = s->K + 1, d.ldc = s->N + 2;
    d.x = malloc(sizeof(float) * s->M * d.lda);
    d.w = malloc(sizeof(float) * s->N * d.ldw);
    d.bias = malloc(sizeof(float) * s->N);
    d.y = malloc(sizeof(float) * s->M * d.ldc);
    d.want = malloc(sizeof(float) * s->M * d.ldc);
    test_fill_random(d.x, (size_t)s->M * d.lda, seed);
    test_fill_random(d.w, (size_t)s->N * d.ldw, seed + 1);
    test_fill_random(d.bias, s->N, seed + 2);
    return d;
}

static void unmake(data *d) { free(d->x), free(d->w), free(d->bias), free(d->y), free(d->want); }

/* y and want: NaN (beta = 0 must not read it) or the same random values; padding sentinel */
static void fill_y(const shape *s, data *d, float beta, unsigned seed)
{
    test_fill_random(d->y, (size_t)s->M * d->ldc, seed);
    for (int i = 0; i < s->M; i++)
        for (int j = 0; j < d->ldc; j++)
            if (j >= s->N) d->y[(size_t)i * d->ldc + j] = 777.0f;
            else if (beta == 0.0f) d->y[(size_t)i * d->ldc + j] = NAN;
    memcpy(d->want, d->y, sizeof(float) * s->M * d->ldc);
}

static int same_bits(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static void set_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static int cpu_level(void) { return mcnn_lowp_cpu_level(); }
static const char *level_name(int l)
{
    static const char *n[] = {"plain", "avx2", "avx512", "amx"};
    return n[l];
}

/* The reduced-precision kernel table's entry with this name */
static const mcnn_lowp_kernel *lowp_kernel(const char *name)
{
    for (const mcnn_lowp_kernel *k = mcnn_lowp_kernels; k->name; k++)
        if (strcmp(k->name, name) == 0) return k;
    return NULL;
}

/* mcnn_gemm's kernel with this name */
static const mcnn_gemm_kernel *fp32_kernel(const char *name)
{
    for (const mcnn_gemm_kernel *k = mcnn_gemm_kernels; k->fn; k++)
        if (strcmp(k->name, name) == 0) return k;
    return NULL;
}

static void test_fp32_packed_bits(void)
{
    for (int l = 0; l <= cpu_level() && l <= 2; l++) {
        mcnn_lowp_set_isa(level_name(l));
        for (int t = 0; t < NSHAPES; t++) {
            const shape *s = &shapes[t];
            data d = make(s, 10 + t);
            mcnn_packed_b *p = NULL;
            TEST_OK(mcnn_packed_b_create(&p, MCNN_PRECISION_FP32, d.w, s->N, s->K, d.ldw));
            if (!p) { unmake(&d); continue; }
            const mcnn_gemm_kernel *k = fp32_kernel(mcnn_packed_b_kernel(p));
            TEST_ASSERT(k != NULL, "kernel %s", mcnn_packed_b_kernel(p));
            mcnn_gemm_set_kernel(k);
            TEST_ASSERT(mcnn_packed_b_bytes(p) ==
                        (size_t)((s->N + k->nr - 1) / k->nr * k->nr) * s->K * sizeof(float),
                        "fp32 bytes %zu", mcnn_packed_b_bytes(p));
            for (int v = 0; v < 4; v++) {
                float beta = v & 1 ? 0.5f : 0.0f;
                const float *bias = v & 2 ? d.bias : NULL;
                for (int nt = 1; nt <= 2; nt++) {
                    set_threads(nt);
                    fill_y(s, &d, beta, 50 + v);
                    mcnn_gemm(0, 1, s->M, s->N, s->K, 1.0f, d.x, d.lda, d.w, d.ldw, beta, d.want,
                              d.ldc);
                    if (bias)
                        for (int i = 0; i < s->M; i++)
                            for (int j = 0; j < s->N; j++) d.want[(size_t)i * d.ldc + j] += bias[j];
                    TEST_OK(mcnn_gemm_packed(s->M, d.x, d.lda, p, bias, beta, d.y, d.ldc));
                    TEST_ASSERT(same_bits(d.y, d.want, (size_t)s->M * d.ldc),
                                "%s %dx%dx%d beta %g bias %d threads %d: not mcnn_gemm's bits",
                                k->name, s->M, s->N, s->K, beta, bias != NULL, nt);
                }
            }
            mcnn_packed_b_free(p);
            unmake(&d);
        }
    }
    mcnn_gemm_set_kernel(NULL);
    mcnn_lowp_set_isa(NULL);
    set_threads(2);
}

/* want = Σ bf16(x) bf16(w) in double (+ bias, + beta y); scale = Σ |x w| for the tolerance */
static void bf16_reference(const shape *s, const data *d, const float *bias, float beta,
                           float *want, double *scale, double *unrounded)
{
    for (int i = 0; i < s->M; i++)
        for (int j = 0; j < s->N; j++) {
            double acc = 0, sc = 0, raw = 0;
            for (int k = 0; k < s->K; k++) {
                float a = d->x[(size_t)i * d->lda + k], b = d->w[(size_t)j * d->ldw + k];
                double ar = mcnn_bf16_to_float(mcnn_bf16_from_float(a));
                double br = mcnn_bf16_to_float(mcnn_bf16_from_float(b));
                acc += ar * br, sc += fabs(ar * br), raw += (double)a * b;
            }
            size_t o = (size_t)i * d->ldc + j;
            double b = bias ? bias[j] : 0, old = beta != 0.0f ? beta * (double)want[o] : 0;
            double extra = b + old;
            sc += fabs(b) + fabs(old); /* terms, not their (cancelling) sum */
            want[o] = (float)(acc + extra), scale[o] = sc, unrounded[o] = raw + extra;
        }
}

static void test_bf16_kernels(void)
{
    for (int l = 0; l <= cpu_level() && l <= 2; l++) {
        mcnn_lowp_set_isa(level_name(l));
        for (int t = 0; t < NSHAPES; t++) {
            const shape *s = &shapes[t];
            data d = make(s, 20 + t);
            mcnn_packed_b *p = NULL, *pf = NULL;
            TEST_OK(mcnn_packed_b_create(&p, MCNN_PRECISION_BF16, d.w, s->N, s->K, d.ldw));
            TEST_OK(mcnn_packed_b_create(&pf, MCNN_PRECISION_FP32, d.w, s->N, s->K, d.ldw));
            if (!p || !pf) { unmake(&d); continue; }
            /* 2 bytes per value of the padded panels: N up to the tile's columns, K up to
             * the kernel's k per lane (the fp32 kernel may have another tile: on AVX-512 its
             * nr is 32, AVX2's bf16 16) */
            const mcnn_lowp_kernel *k = lowp_kernel(mcnn_packed_b_kernel(p));
            TEST_ASSERT(k != NULL, "bf16 kernel %s not in the table", mcnn_packed_b_kernel(p));
            if (!k) {
                mcnn_packed_b_free(p), mcnn_packed_b_free(pf);
                unmake(&d);
                continue;
            }
            int kg = k->kgroup > 1 ? k->kgroup : 1;
            size_t npad = (size_t)(s->N + k->nr - 1) / k->nr * k->nr;
            size_t kpad = (size_t)(s->K + kg - 1) / kg * kg;
            TEST_ASSERT(mcnn_packed_b_bytes(p) == 2 * npad * kpad, "bf16 %s %dx%d: %zu bytes, "
                        "want 2 x %zu x %zu", k->name, s->N, s->K, mcnn_packed_b_bytes(p), npad,
                        kpad);
            /* the bound on fp32 summation: n roundings (one per k: an FMA, or one of the pair
             * kernel's two additions, each of an exact product; one per later K block
             * added to y; beta's product and sum; the bias's; the reference's own rounding
             * to float) give |error| <= γ_n Σ|terms|, γ_n = nu/(1-nu), u = 2^-24; plus 2^-126
             * per rounding for results flushed to zero (the pair kernel's FTZ; not reached
             * by these values) */
            int blocks = (s->K + k->kc - 1) / k->kc;
            double n_round = s->K + blocks + 3, u = ldexp(1.0, -24);
            double gamma = n_round * u / (1 - n_round * u), ftz = n_round * ldexp(1.0, -126);
            size_t n = (size_t)s->M * d.ldc;
            double *scale = calloc(n, sizeof(double)), *raw = calloc(n, sizeof(double));
            float *first = malloc(n * sizeof(float));
            int rounded_somewhere = 0;
            for (int v = 0; v < 4; v++) {
                float beta = v & 1 ? 0.5f : 0.0f;
                const float *bias = v & 2 ? d.bias : NULL;
                for (int nt = 1; nt <= 2; nt++) {
                    set_threads(nt);
                    fill_y(s, &d, beta, 60 + v);
                    bf16_reference(s, &d, bias, beta, d.want, scale, raw);
                    TEST_OK(mcnn_gemm_packed(s->M, d.x, d.lda, p, bias, beta, d.y, d.ldc));
                    for (int i = 0; i < s->M; i++)
                        for (int j = 0; j < d.ldc; j++) {
                            size_t o = (size_t)i * d.ldc + j;
                            if (j >= s->N) {
                                TEST_ASSERT(d.y[o] == 777.0f, "padding written at %d,%d", i, j);
                                continue;
                            }
                            double tol = gamma * scale[o] + ftz;
                            TEST_ASSERT(fabs(d.y[o] - d.want[o]) <= tol,
                                        "%s bf16 %dx%dx%d (%d,%d) beta %g bias %d: got %.9g "
                                        "want %.9g", mcnn_packed_b_kernel(p), s->M, s->N, s->K,
                                        i, j, beta, bias != NULL, d.y[o], d.want[o]);
                            /* farther from the unrounded sum than summation explains */
                            rounded_somewhere |= fabs(d.y[o] - raw[o]) > 2 * tol;
                        }
                    if (nt == 1) memcpy(first, d.y, n * sizeof(float));
                    else
                        TEST_ASSERT(same_bits(first, d.y, n), "bf16 %dx%dx%d: 1 and 2 threads differ",
                                    s->M, s->N, s->K);
                }
            }
            if (s->K > 4)
                TEST_ASSERT(rounded_somewhere, "bf16 %dx%dx%d equals the unrounded product",
                            s->M, s->N, s->K);
            free(scale), free(raw), free(first);
            mcnn_packed_b_free(p), mcnn_packed_b_free(pf);
            unmake(&d);
        }
    }
    mcnn_lowp_set_isa(NULL);
    set_threads(2);
}

/* vdpbf16ps by its definition, one fp32 lane: acc + hi·hi, rounded, + lo·lo, rounded (each
 * product of two bf16 is exact in fp32, so float arithmetic rounds where the instruction
 * does); denormal inputs count as zero, denormal sums become zero. */
static float flush(float x) { return fabsf(x) < 0x1p-126f ? copysignf(0.0f, x) : x; }
static float dpbf16_lane(float acc, uint16_t a_lo, uint16_t a_hi, uint16_t b_lo, uint16_t b_hi)
{
    float al = flush(mcnn_bf16_to_float(a_lo)), ah = flush(mcnn_bf16_to_float(a_hi));
    float bl = flush(mcnn_bf16_to_float(b_lo)), bh = flush(mcnn_bf16_to_float(b_hi));
    acc = flush(acc + ah * bh);
    return flush(acc + al * bl);
}

/* The pair kernel's outputs are the instruction's, bit for bit: y (beta 0, no bias, K in one
 * block) against the emulated chain of vdpbf16ps over the pairs (2p, 2p+1) of the rounded
 * operands, an odd K's last pair (K-1, 0).  An order of the two products other than the
 * definition's, or one rounding instead of two, shows here. */
static void test_bf16_pair_definition(void)
{
    mcnn_lowp_set_isa("avx512");
    float w1 = 1;
    mcnn_packed_b *probe = NULL;
    if (cpu_level() < 2 ||
        mcnn_packed_b_create(&probe, MCNN_PRECISION_BF16, &w1, 1, 1, 1) != MCNN_OK ||
        lowp_kernel(mcnn_packed_b_kernel(probe))->kgroup != 2) {
        mcnn_packed_b_free(probe);
        mcnn_lowp_set_isa(NULL);
        TEST_SKIP("no pair (AVX512_BF16) kernel on this CPU");
        return;
    }
    const mcnn_lowp_kernel *k = lowp_kernel(mcnn_packed_b_kernel(probe));
    mcnn_packed_b_free(probe);
    const shape cases[] = {{1, 1, 1}, {7, 33, 5}, {13, 50, 100}, {30, 70, 301}, {12, 32, 2}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const shape *s = &cases[t];
        TEST_ASSERT(s->K <= k->kc, "K %d must be one block", s->K);
        data d = make(s, 200 + (unsigned)t);
        mcnn_packed_b *p = NULL;
        TEST_OK(mcnn_packed_b_create(&p, MCNN_PRECISION_BF16, d.w, s->N, s->K, d.ldw));
        if (!p) { unmake(&d); continue; }
        fill_y(s, &d, 0, 5);
        TEST_OK(mcnn_gemm_packed(s->M, d.x, d.lda, p, NULL, 0, d.y, d.ldc));
        int same = 1;
        for (int i = 0; i < s->M; i++)
            for (int j = 0; j < s->N; j++) {
                const float *xi = d.x + (size_t)i * d.lda, *wj = d.w + (size_t)j * d.ldw;
                float acc = 0;
                for (int q = 0; 2 * q < s->K; q++) {
                    int hi = 2 * q + 1 < s->K;
                    acc = dpbf16_lane(acc, mcnn_bf16_from_float(xi[2 * q]),
                                      hi ? mcnn_bf16_from_float(xi[2 * q + 1]) : 0,
                                      mcnn_bf16_from_float(wj[2 * q]),
                                      hi ? mcnn_bf16_from_float(wj[2 * q + 1]) : 0);
                }
                float got = d.y[(size_t)i * d.ldc + j];
                if (bits_of(got) != bits_of(acc) && same)
                    TEST_ASSERT(0, "%s %dx%dx%d (%d,%d): %.9g, vdpbf16ps's definition %.9g",
                                k->name, s->M, s->N, s->K, i, j, got, acc);
                same &= bits_of(got) == bits_of(acc);
            }
        mcnn_packed_b_free(p);
        unmake(&d);
    }
    mcnn_lowp_set_isa(NULL);
}

/* What each bf16 kernel does with values below fp32's normal range (2^-126), documented:
 *   input 2^-130 (a denormal, exactly a bf16) times 1, twice:  FMA on widened bf16 keeps it
 *     (MXCSR's default: no DAZ), y = 2^-129; vdpbf16ps reads it as 0, y = 0.
 *   2^-70 times 2^-70 (normal inputs, a denormal product 2^-140):  FMA keeps 2^-140;
 *     vdpbf16ps flushes the result to 0.
 * Such values are far below anything a network's activations and weights hold (the tests'
 * random operands never come near them). */
static void test_bf16_denormals(void)
{
    const float x[2][2] = {{0x1p-130f, 0x1p-130f}, {0x1p-70f, 0}};
    const float w[2][2] = {{1, 1}, {0x1p-70f, 0}};
    for (int l = 0; l <= cpu_level() && l <= 2; l++) {
        mcnn_lowp_set_isa(level_name(l));
        for (int c = 0; c < 2; c++) {
            mcnn_packed_b *p = NULL;
            TEST_OK(mcnn_packed_b_create(&p, MCNN_PRECISION_BF16, w[c], 1, 2, 2));
            if (!p) continue;
            const mcnn_lowp_kernel *k = lowp_kernel(mcnn_packed_b_kernel(p));
            float y = -1;
            TEST_OK(mcnn_gemm_packed(1, x[c], 2, p, NULL, 0, &y, 1));
            float want = k && k->kgroup == 2 ? 0.0f : c == 0 ? 0x1p-129f : 0x1p-140f;
            TEST_ASSERT(y == want, "%s: %s: y = %a, want %a", mcnn_packed_b_kernel(p),
                        c == 0 ? "denormal inputs" : "denormal product", y, want);
            fprintf(stderr, "  %-12s %s -> %a\n", mcnn_packed_b_kernel(p),
                    c == 0 ? "2 x (2^-130 x 1)  " : "2^-70 x 2^-70     ", y);
            mcnn_packed_b_free(p);
        }
    }
    mcnn_lowp_set_isa(NULL);
}

/* The int8 product by definition: the quantizers' integers (activations 0..a_max), an exact
 * int64 sum, the epilogue. */
static void int8_reference(const shape *s, const data *d, int a_max, const float *bias,
                           float beta, float *want)
{
    int8_t *qw = malloc((size_t)s->N * s->K);
    uint8_t *qx = malloc((size_t)s->M * s->K);
    float *sw = malloc(sizeof(float) * s->N), *sx = malloc(sizeof(float) * s->M);
    int32_t *qsum = malloc(sizeof(int32_t) * s->N), *zx = malloc(sizeof(int32_t) * s->M);
    for (int j = 0; j < s->N; j++)
        sw[j] = mcnn_quant_weight_row(d->w + (size_t)j * d->ldw, s->K, qw + (size_t)j * s->K,
                                      &qsum[j]);
    for (int i = 0; i < s->M; i++)
        sx[i] = mcnn_quant_act_row_max(d->x + (size_t)i * d->lda, s->K, a_max,
                                       qx + (size_t)i * s->K, &zx[i]);
    for (int i = 0; i < s->M; i++)
        for (int j = 0; j < s->N; j++) {
            int64_t acc = 0;
            for (int k = 0; k < s->K; k++)
                acc += (int64_t)qx[(size_t)i * s->K + k] * qw[(size_t)j * s->K + k];
            size_t o = (size_t)i * d->ldc + j;
            float v = mcnn_int8_dequant((int32_t)acc, zx[i], qsum[j], sx[i], sw[j],
                                        bias ? bias[j] : 0.0f);
            if (beta != 0.0f) {
                float old = beta * want[o]; /* two roundings, never a fused multiply-add */
                v = v + old;
            }
            want[o] = v;
        }
    free(qw), free(qx), free(sw), free(sx), free(qsum), free(zx);
}

static void test_int8_kernels(void)
{
    float *plain_out[NSHAPES] = {0};
    double err7[NSHAPES] = {0};
    for (int l = 0; l <= cpu_level() && l <= 2; l++) {
        mcnn_lowp_set_isa(level_name(l));
        for (int t = 0; t < NSHAPES; t++) {
            const shape *s = &shapes[t];
            data d = make(s, 30 + t);
            mcnn_packed_b *p = NULL;
            TEST_OK(mcnn_packed_b_create(&p, MCNN_PRECISION_INT8, d.w, s->N, s->K, d.ldw));
            if (!p) { unmake(&d); continue; }
            const mcnn_lowp_kernel *k = lowp_kernel(mcnn_packed_b_kernel(p));
            int NR = k->nr;
            size_t npad = (size_t)(s->N + NR - 1) / NR * NR;
            TEST_ASSERT(mcnn_packed_b_bytes(p) == npad * (size_t)((s->K + 3) / 4 * 4) + 8u * s->N,
                        "int8 bytes %zu", mcnn_packed_b_bytes(p));
            size_t n = (size_t)s->M * d.ldc;
            for (int v = 0; v < 4; v++) {
                float beta = v & 1 ? 0.5f : 0.0f;
                const float *bias = v & 2 ? d.bias : NULL;
                for (int nt = 1; nt <= 2; nt++) {
                    set_threads(nt);
                    fill_y(s, &d, beta, 70 + v);
                    int8_reference(s, &d, k->a_max, bias, beta, d.want);
                    TEST_OK(mcnn_gemm_packed(s->M, d.x, d.lda, p, bias, beta, d.y, d.ldc));
                    TEST_ASSERT(same_bits(d.y, d.want, n), "%s int8 %dx%dx%d beta %g threads %d: "
                                "not the exact integer sum's bits", mcnn_packed_b_kernel(p),
                                s->M, s->N, s->K, beta, nt);
                }
            }
            /* the last variant (bias, beta 0.5): plain and vector kernels with the same
             * activation range the same bits */
            if (l == 0) {
                plain_out[t] = malloc(n * sizeof(float));
                memcpy(plain_out[t], d.y, n * sizeof(float));
            } else if (plain_out[t] && k->a_max == MCNN_INT8_A_MAX) {
                TEST_ASSERT(same_bits(plain_out[t], d.y, n), "int8 %s and plain differ",
                            mcnn_packed_b_kernel(p));
            }
            /* and close to fp32: per-row quantization keeps the relative error small */
            if (s->K >= 33) {
                double err = 0, ref = 0;
                fill_y(s, &d, 0, 1);
                mcnn_gemm_packed(s->M, d.x, d.lda, p, NULL, 0, d.y, d.ldc);
                mcnn_gemm_ref(0, 1, s->M, s->N, s->K, 1, d.x, d.lda, d.w, d.ldw, 0, d.want, d.ldc);
                for (int i = 0; i < s->M; i++)
                    for (int j = 0; j < s->N; j++) {
                        double e = d.y[(size_t)i * d.ldc + j] - d.want[(size_t)i * d.ldc + j];
                        err += e * e, ref += d.want[(size_t)i * d.ldc + j] * (double)d.want[(size_t)i * d.ldc + j];
                    }
                TEST_ASSERT(sqrt(err / ref) < 0.02, "%s int8 %dx%dx%d: relative error %.4f vs fp32",
                            k->name, s->M, s->N, s->K, sqrt(err / ref));
                /* 8-bit activations: half the step of 7, so a smaller error (the weights'
                 * rounding, the same in both, remains) */
                if (k->a_max == MCNN_INT8_A_MAX) err7[t] = sqrt(err / ref);
                else
                    TEST_ASSERT(sqrt(err / ref) < 0.85 * err7[t],
                                "%s int8 %dx%dx%d: relative error %.4f, 7 bits %.4f", k->name,
                                s->M, s->N, s->K, sqrt(err / ref), err7[t]);
            }
            mcnn_packed_b_free(p);
            unmake(&d);
        }
    }
    for (int t = 0; t < NSHAPES; t++) free(plain_out[t]);
    mcnn_lowp_set_isa(NULL);
    set_threads(2);
}

/* mcnn_gemm_packed_t (x given as xᵀ, y written as yᵀ: the packed convolution's form) gives
 * mcnn_gemm_packed's bits at every precision, whose own bits the tests above pin down: the
 * same panels, the same quantized rows (int8 gathers each row of x out of xᵀ), the same
 * kernels; beta 0.5 checks that yᵀ is read where it is. */
static void test_transposed_sides(void)
{
    const mcnn_precision precs[] = {MCNN_PRECISION_FP32, MCNN_PRECISION_BF16,
                                    MCNN_PRECISION_INT8};
    for (int l = 0; l <= cpu_level() && l <= 2; l++) {
        mcnn_lowp_set_isa(level_name(l));
        for (int t = 0; t < NSHAPES; t++) {
            const shape *s = &shapes[t];
            data d = make(s, 90 + t);
            const int ldx = s->M + 5, ldy = s->M + 2;
            float *xt = malloc((size_t)s->K * ldx * sizeof(float));
            float *yt = malloc((size_t)s->N * ldy * sizeof(float));
            for (int i = 0; i < s->M; i++)
                for (int k = 0; k < s->K; k++) xt[(size_t)k * ldx + i] = d.x[(size_t)i * d.lda + k];
            for (int pr = 0; pr < 3; pr++) {
                mcnn_packed_b *p = NULL;
                TEST_OK(mcnn_packed_b_create(&p, precs[pr], d.w, s->N, s->K, d.ldw));
                if (!p) continue;
                for (int v = 0; v < 2; v++) {
                    float beta = v ? 0.5f : 0.0f;
                    fill_y(s, &d, beta, 110 + v);
                    for (int i = 0; i < s->M; i++)
                        for (int j = 0; j < s->N; j++)
                            yt[(size_t)j * ldy + i] = d.y[(size_t)i * d.ldc + j];
                    TEST_OK(mcnn_gemm_packed(s->M, d.x, d.lda, p, NULL, beta, d.y, d.ldc));
                    TEST_OK(mcnn_gemm_packed_t(s->M, xt, ldx, p, beta, yt, ldy));
                    int same = 1;
                    for (int i = 0; i < s->M; i++)
                        for (int j = 0; j < s->N; j++)
                            same &= bits_of(yt[(size_t)j * ldy + i]) ==
                                    bits_of(d.y[(size_t)i * d.ldc + j]);
                    TEST_ASSERT(same, "%s %s %dx%dx%d beta %g: transposed sides differ",
                                mcnn_precision_name(precs[pr]), mcnn_packed_b_kernel(p), s->M,
                                s->N, s->K, beta);
                }
                mcnn_packed_b_free(p);
            }
            free(xt);
            free(yt);
            unmake(&d);
        }
    }
    mcnn_lowp_set_isa(NULL);
}

/* The largest products: x rows at the top of their range (q = 127, VNNI 255) against weight
 * rows at ±127, so every pair sum in the AVX2 kernel is ±2 · 127 · 127 = ±32258, just inside
 * int16 (with 8-bit activations it would saturate at 32767 and this would fail), and VNNI's
 * groups of 4 are ±4 · 255 · 127 = ±129540, beyond it.  Then the longest K: 65536 of them
 * sum to ±2,122,317,824, just inside int32; K = 65537 is refused. */
static void test_int8_extremes(void)
{
    shape s = {7, 33, 64};
    data d = make(&s, 9);
    for (int i = 0; i < s.M; i++)
        for (int k = 0; k < s.K; k++) d.x[(size_t)i * d.lda + k] = i % 2 ? 2.0f : 0.5f;
    for (int j = 0; j < s.N; j++)
        for (int k = 0; k < s.K; k++) d.w[(size_t)j * d.ldw + k] = j % 3 == 0 ? 1.0f : -3.0f;
    for (int l = 0; l <= cpu_level() && l <= 2; l++) {
        mcnn_lowp_set_isa(level_name(l));
        mcnn_packed_b *p = NULL;
        TEST_OK(mcnn_packed_b_create(&p, MCNN_PRECISION_INT8, d.w, s.N, s.K, d.ldw));
        if (!p) continue;
        fill_y(&s, &d, 0, 4);
        int8_reference(&s, &d, lowp_kernel(mcnn_packed_b_kernel(p))->a_max, NULL, 0, d.want);
        TEST_OK(mcnn_gemm_packed(s.M, d.x, d.lda, p, NULL, 0, d.y, d.ldc));
        TEST_ASSERT(same_bits(d.y, d.want, (size_t)s.M * d.ldc), "%s int8 at the extremes",
                    mcnn_packed_b_kernel(p));
        /* and these products are exact: 64 · 2 · (-3) = -384, 64 · 0.5 · 1 = 32 */
        TEST_CLOSE("extreme y[1][1]", d.y[d.ldc + 1], -384.0, 1e-4, 0);
        TEST_CLOSE("extreme y[0][0]", d.y[0], 32.0, 1e-4, 0);
        mcnn_packed_b_free(p);
    }
    unmake(&d);

    shape big = {3, 2, 65536};
    data e = make(&big, 8);
    for (int i = 0; i < big.M; i++)
        for (int k = 0; k < big.K; k++) e.x[(size_t)i * e.lda + k] = i == 1 ? -1.0f : 1.0f;
    for (int j = 0; j < big.N; j++)
        for (int k = 0; k < big.K; k++) e.w[(size_t)j * e.ldw + k] = j ? -1.0f : 1.0f;
    for (int l = 0; l <= cpu_level() && l <= 2; l++) {
        mcnn_lowp_set_isa(level_name(l));
        mcnn_packed_b *p = NULL;
        TEST_OK(mcnn_packed_b_create(&p, MCNN_PRECISION_INT8, e.w, big.N, big.K, e.ldw));
        if (!p) continue;
        fill_y(&big, &e, 0, 4);
        TEST_OK(mcnn_gemm_packed(big.M, e.x, e.lda, p, NULL, 0, e.y, e.ldc));
        for (int i = 0; i < big.M; i++)
            for (int j = 0; j < big.N; j++) {
                float want = (i == 1 ? -1.0f : 1.0f) * (j ? -1.0f : 1.0f) * 65536.0f;
                TEST_ASSERT(fabsf(e.y[(size_t)i * e.ldc + j] - want) <= 0.05f,
                            "%s K = 65536: y[%d][%d] = %.9g",
                            mcnn_packed_b_kernel(p), i, j, e.y[(size_t)i * e.ldc + j]);
            }
        mcnn_packed_b_free(p);
        TEST_ASSERT(mcnn_packed_b_create(&p, MCNN_PRECISION_INT8, e.w, big.N, big.K + 1,
                                         big.K + 1) == MCNN_ERR_ARG && !p,
                    "K = 65537 accepted");
    }
    mcnn_lowp_set_isa(NULL);
    unmake(&e);
}

/* A row of x with a NaN or inf: that row of y is NaN (as in fp32), the others unaffected. */
static void test_int8_nonfinite(void)
{
    shape s = {3, 5, 9};
    data d = make(&s, 5);
    mcnn_packed_b *p = NULL;
    TEST_OK(mcnn_packed_b_create(&p, MCNN_PRECISION_INT8, d.w, s.N, s.K, d.ldw));
    d.x[1 * d.lda + 4] = INFINITY;
    fill_y(&s, &d, 0, 3);
    TEST_OK(mcnn_gemm_packed(s.M, d.x, d.lda, p, d.bias, 0, d.y, d.ldc));
    for (int j = 0; j < s.N; j++) {
        TEST_ASSERT(isnan(d.y[1 * d.ldc + j]), "row with inf: y[1][%d] = %g", j, d.y[d.ldc + j]);
        TEST_ASSERT(isfinite(d.y[j]) && isfinite(d.y[2 * d.ldc + j]), "finite rows stay finite");
    }
    mcnn_packed_b_free(p);
    unmake(&d);
}

static int has_vnni(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    return mcnn_cpu_has_avx512_vnni();
#else
    return 0;
#endif
}

static void test_isa_override(void)
{
    float w[4] = {1, 2, 3, 4};
    mcnn_packed_b *p = NULL;
    setenv("MCNN_ISA", "sse9", 1);
    mcnn_status st = mcnn_packed_b_create(&p, MCNN_PRECISION_INT8, w, 2, 2, 2);
    TEST_ASSERT(st == MCNN_ERR_ARG && strstr(mcnn_last_error(), "unknown"),
                "MCNN_ISA=sse9: %s", mcnn_last_error());
    for (int l = 0; l < 4; l++) {
        setenv("MCNN_ISA", level_name(l), 1);
        st = mcnn_packed_b_create(&p, MCNN_PRECISION_BF16, w, 2, 2, 2);
        if (l <= cpu_level()) {
            TEST_ASSERT(st == MCNN_OK, "MCNN_ISA=%s refused: %s", level_name(l), mcnn_last_error());
            if (st == MCNN_OK && l <= 1)
                TEST_ASSERT(strcmp(mcnn_packed_b_kernel(p), level_name(l)) == 0,
                            "MCNN_ISA=%s gave %s", level_name(l), mcnn_packed_b_kernel(p));
            mcnn_packed_b_free(p);
            /* int8: AVX2 stays AVX2 on a VNNI CPU (7 bits); avx512 takes VNNI where it is */
            const char *want8 = l == 0 ? "plain" : l == 1 || !has_vnni()
                                                      ? "avx2" : "avx512-vnni";
            TEST_OK(mcnn_packed_b_create(&p, MCNN_PRECISION_INT8, w, 2, 2, 2));
            if (p)
                TEST_ASSERT(strcmp(mcnn_packed_b_kernel(p), want8) == 0,
                            "MCNN_ISA=%s: int8 on %s, want %s", level_name(l),
                            mcnn_packed_b_kernel(p), want8);
            mcnn_packed_b_free(p);
        } else {
            TEST_ASSERT(st == MCNN_ERR_ARG && strstr(mcnn_last_error(), "lacks"),
                        "MCNN_ISA=%s on a CPU without it: %s", level_name(l), mcnn_last_error());
            fprintf(stderr, "  (as expected here) %s\n", mcnn_last_error());
        }
    }
    unsetenv("MCNN_ISA");
    TEST_OK(mcnn_packed_b_create(&p, MCNN_PRECISION_FP32, w, 2, 2, 2));
    if (p) TEST_ASSERT(strcmp(mcnn_packed_b_kernel(p), mcnn_gemm_kernel_name()) == 0,
                       "fp32 without MCNN_ISA: %s, mcnn_gemm uses %s", mcnn_packed_b_kernel(p),
                       mcnn_gemm_kernel_name());
    mcnn_packed_b_free(p);
    TEST_ASSERT(mcnn_packed_b_create(&p, MCNN_PRECISION_INT8, w, 0, 2, 2) == MCNN_ERR_ARG,
                "N = 0 accepted");
}

/* Which kernels ran here (the tests above run every level up to avx512 that this CPU has),
 * and which the table holds that this CPU cannot run: skipped, saying why. */
static void test_absent_isas(void)
{
    char ran[256] = "", absent[256] = "";
    for (const mcnn_lowp_kernel *k = mcnn_lowp_kernels; k->name; k++) {
        int here = mcnn_lowp_kernel_usable(k, cpu_level()) && k->level <= 2;
        char *dst = here ? ran : absent;
        snprintf(dst + strlen(dst), sizeof ran - strlen(dst), " %s (%s%s%s)", k->name,
                 k->bf16 || k->bf16x2 ? "bf16" : "", k->int8 && (k->bf16 || k->bf16x2) ? ", " : "",
                 k->int8 ? "int8" : "");
    }
    fprintf(stderr, "  kernels run here:%s\n", ran);
    if (absent[0]) TEST_SKIP("this CPU lacks what these need:%s; and no AMX kernels exist", absent);
    else if (cpu_level() < 3) TEST_SKIP("no AMX on this CPU (and no AMX kernels exist yet)");
    else TEST_SKIP("no AMX kernels exist yet, though this CPU has AMX");
}

int main(void)
{
    TEST_RUN(test_bf16_rounding);
    TEST_RUN(test_weight_quant);
    TEST_RUN(test_act_quant);
    TEST_RUN(test_act_quant_twins);
    TEST_RUN(test_isa_override);
    TEST_RUN(test_fp32_packed_bits);
    TEST_RUN(test_bf16_kernels);
    TEST_RUN(test_bf16_pair_definition);
    TEST_RUN(test_bf16_denormals);
    TEST_RUN(test_int8_kernels);
    TEST_RUN(test_transposed_sides);
    TEST_RUN(test_int8_extremes);
    TEST_RUN(test_int8_nonfinite);
    TEST_RUN(test_absent_isas);
    return test_summary();
}
