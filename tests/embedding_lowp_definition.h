/* The reduced-precision embedding rows' definition (docs/precision.md), computed in double
 * apart from the library: what a bf16 or int8 table lookup must give (test_embedding_lowp.c
 * on the unit, test_precision.c on CLIP's token embedding).
 *   bf16  x rounded to 8 significant bits (7 stored), to nearest, ties to even, with bf16's
 *         subnormal spacing 2^-133 and overflow to inf past the largest bf16 plus half its
 *         spacing; NaN stays NaN.
 *   int8  per row s = max|x| / 127 (rounded to fp32), q = x / s (rounded to fp32) rounded to
 *         the nearest integer, ties to even, saturated to ±127; the value q · s rounded to
 *         fp32.  An all-zero row gives zeros, a row with inf or NaN NaN. */
#ifndef MCNN_EMBEDDING_LOWP_DEFINITION_H
#define MCNN_EMBEDDING_LOWP_DEFINITION_H

#include <math.h>

/* bf16's value nearest to x, ties to even. */
static inline double bf16_definition(float x)
{
    if (isnan(x) || isinf(x) || x == 0) return x;
    int e;
    frexp((double)x, &e);                    /* |x| = m · 2^e, m in [0.5, 1) */
    double step = ldexp(1.0, e - 8);         /* 8 significant bits */
    if (step < ldexp(1.0, -133)) step = ldexp(1.0, -133);
    const double r = nearbyint((double)x / step) * step; /* the quotient is exact */
    const double max = ldexp(255.0, 127 - 7);             /* 0x7f7f: (2 - 2^-7) · 2^127 */
    if (fabs(r) > max) return x > 0 ? INFINITY : -INFINITY;
    return r;
}

/* A row of C values: the int8 definition's dequantized values into out. */
static inline void int8_definition(const float *x, int C, double *out)
{
    double amax = 0;
    int finite = 1;
    for (int c = 0; c < C; c++) {
        if (!isfinite(x[c])) finite = 0;
        else if (fabs((double)x[c]) > amax) amax = fabs((double)x[c]);
    }
    const float s = (float)(amax / 127.0);
    for (int c = 0; c < C; c++) {
        if (!finite) {
            out[c] = NAN;
            continue;
        }
        if (amax == 0) {
            out[c] = 0;
            continue;
        }
        double q = nearbyint((double)(float)((double)x[c] / s));
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        q += 0.0; /* an integer: -0 is 0 */
        out[c] = (float)(q * s);
    }
}

#endif
