/* lib/ops/vmath.h, the vectorisable exp and erfc, against their plain twins: libm's exp and
 * erfc in double.  Sweeps of the float range, the special values, and the vector loop (as the
 * ops run it, AVX-512/AVX2/baseline picked at load time) against the same function called one
 * element at a time: the same bits. */
#include "mcnn_test.h"
#include "ops/vmath.h"

#include <float.h>

static int32_t bits(float f)
{
    mcnn_f32_bits b = {f};
    return b.i;
}

/* Distance in units in the last place between two non-negative floats. */
static long ulps(float a, float b)
{
    long d = (long)bits(a) - (long)bits(b);
    return d < 0 ? -d : d;
}

static void test_vexpf_sweep(void)
{
    long worst = 0;
    float worst_x = 0.0f;
    /* every 61st float from -104 to 89: 1.7 million values, both signs, all exponents */
    for (int sign = 0; sign < 2; sign++) {
        const float end = sign ? 104.0f : 89.0f;
        for (int32_t i = 0; i <= bits(end); i += 61) {
            mcnn_f32_bits b = {.i = i};
            const float x = sign ? -b.f : b.f;
            const float got = mcnn_vexpf(x), want = (float)exp((double)x);
            const long d = ulps(got, want);
            if (d > worst) worst = d, worst_x = x;
        }
    }
    TEST_ASSERT(worst <= 2, "e^x: %ld ulp at x = %.9g (got %.9g, libm %.9g)", worst,
                (double)worst_x, (double)mcnn_vexpf(worst_x), exp((double)worst_x));
    fprintf(stderr, "  e^x: at most %ld ulp from the correctly rounded value\n", worst);
}

static void test_vexpf_special(void)
{
    TEST_ASSERT(mcnn_vexpf(0.0f) == 1.0f, "e^0 = %g", (double)mcnn_vexpf(0.0f));
    TEST_ASSERT(mcnn_vexpf(-0.0f) == 1.0f, "e^-0");
    TEST_ASSERT(isinf(mcnn_vexpf(INFINITY)), "e^inf");
    TEST_ASSERT(mcnn_vexpf(-INFINITY) == 0.0f, "e^-inf");
    TEST_ASSERT(isnan(mcnn_vexpf(NAN)), "e^nan");
    TEST_ASSERT(isinf(mcnn_vexpf(88.73f)) && isfinite(mcnn_vexpf(88.72f)), "overflow at ln FLT_MAX");
    TEST_ASSERT(mcnn_vexpf(-103.0f) > 0.0f && mcnn_vexpf(-103.0f) < FLT_MIN, "subnormal results");
    TEST_ASSERT(mcnn_vexpf(-104.0f) == 0.0f && mcnn_vexpf(-1000.0f) == 0.0f, "underflow to 0");
    TEST_ASSERT(mcnn_vexpf(1.0f) == (float)exp(1.0), "e^1 correctly rounded");
}

/* A NaN in a softmax row makes the whole row NaN, as torch.softmax does; on the way it went
 * through e^NaN, whose exponent bits once overflowed a signed int (clang's UBSan caught it). */
static void test_softmax_nan_row(void)
{
    float x[2][4] = {{1.0f, NAN, 2.0f, 3.0f}, {1.0f, 2.0f, 3.0f, 4.0f}}, y[2][4];
    mcnn_softmax_forward(&y[0][0], &x[0][0], 2, 4);
    for (int c = 0; c < 4; c++) TEST_ASSERT(isnan(y[0][c]), "row with NaN: y[%d] = %g", c, y[0][c]);
    double sum = 0;
    for (int c = 0; c < 4; c++) sum += y[1][c];
    TEST_CLOSE("finite row sums to 1", sum, 1.0, 1e-6, 0);
}

static void test_verfcf_sweep(void)
{
    double worst = 0.0;
    float worst_x = 0.0f;
    for (int i = -200000; i <= 200000; i++) { /* [-10, 10] in steps of 5e-5 */
        const float x = (float)i * 5e-5f;
        const double want = erfc((double)x);
        if (want < 1e-30) continue; /* below: e^-x² itself is subnormal */
        const double rel = fabs((double)mcnn_verfcf(x) - want) / want;
        if (rel > worst) worst = rel, worst_x = x;
    }
    TEST_ASSERT(worst <= 1e-5, "erfc: relative error %.3g at x = %.9g", worst, (double)worst_x);
    fprintf(stderr, "  erfc: relative error at most %.2g on [-10, 10]\n", worst);
    TEST_ASSERT(mcnn_verfcf(INFINITY) == 0.0f && mcnn_verfcf(-INFINITY) == 2.0f, "erfc(+-inf)");
    TEST_ASSERT(isnan(mcnn_verfcf(NAN)), "erfc(nan)");
    TEST_ASSERT(mcnn_verfcf(0.0f) == 1.0f, "erfc(0) = %.9g", (double)mcnn_verfcf(0.0f));
}

/* The same functions in a vector loop, compiled like the ops' loops. */
MCNN_SIMD_CLONES static void vector_loop(float *e, float *c, const float *x, int n)
{
#pragma omp simd
    for (int i = 0; i < n; i++) {
        e[i] = mcnn_vexpf(x[i]);
        c[i] = mcnn_verfcf(x[i]);
    }
}

__attribute__((noinline)) static float one_exp(float x) { return mcnn_vexpf(x); }
__attribute__((noinline)) static float one_erfc(float x) { return mcnn_verfcf(x); }

static void test_vector_equals_scalar(void)
{
    enum { N = 4099 }; /* not a multiple of any vector width */
    static float x[N], e[N], c[N];
    for (int i = 0; i < N; i++) x[i] = -110.0f + 200.0f * (float)i / N;
    x[7] = NAN, x[8] = INFINITY, x[9] = -INFINITY, x[10] = 0.0f;
    vector_loop(e, c, x, N);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        const float se = one_exp(x[i]), sc = one_erfc(x[i]);
        const int same = (bits(se) == bits(e[i]) || (isnan(se) && isnan(e[i]))) &&
                         (bits(sc) == bits(c[i]) || (isnan(sc) && isnan(c[i])));
        if (!same && bad++ < 3)
            TEST_ASSERT(0, "x = %g: vector %g %g, scalar %g %g", (double)x[i], (double)e[i],
                        (double)c[i], (double)se, (double)sc);
    }
}

int main(void)
{
    TEST_RUN(test_vexpf_sweep);
    TEST_RUN(test_vexpf_special);
    TEST_RUN(test_softmax_nan_row);
    TEST_RUN(test_verfcf_sweep);
    TEST_RUN(test_vector_equals_scalar);
    return test_summary();
}
