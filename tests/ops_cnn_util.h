/* Helpers shared by the CNN op tests (test_linear.c, test_conv2d.c, test_batchnorm.c,
 * test_pool.c): the golden file, the finite-difference judge, small allocation helpers. */
#ifndef OPS_CNN_UTIL_H
#define OPS_CNN_UTIL_H

#include "mcnn_test.h"

/* Written by tests/ref/gen_ops_cnn.py; the tests run from the repository root. */
#define OPS_CNN_GOLDEN "tests/data/ops_cnn.safetensors"

static inline mcnn_safetensors *golden_open(void)
{
    mcnn_safetensors *st = NULL;
    mcnn_status s = mcnn_safetensors_open(&st, OPS_CNN_GOLDEN);
    TEST_ASSERT(s == MCNN_OK, "open %s: %s (run from the repository root)", OPS_CNN_GOLDEN,
                mcnn_last_error());
    return s == MCNN_OK ? st : NULL;
}

/* "<case>.<field>" as float32 (free with free()); NULL and a failure when it is missing. */
static inline float *golden(mcnn_safetensors *st, const char *cs, const char *field)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", cs, field);
    return test_golden(st, name, NULL);
}

static inline int golden_has(mcnn_safetensors *st, const char *cs, const char *field)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", cs, field);
    return mcnn_safetensors_find(st, name) != NULL;
}

static inline int32_t *golden_i32(mcnn_safetensors *st, const char *cs, const char *field)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", cs, field);
    return test_golden_i32(st, name, NULL);
}

/* Compare a whole tensor against its golden "<case>.<field>" with test_close_rel. */
static inline void golden_check(mcnn_safetensors *st, const char *cs, const char *field,
                                const float *got, size_t n, double tol)
{
    char what[128];
    size_t want_n = 0;
    snprintf(what, sizeof what, "%s.%s", cs, field);
    float *want = test_golden(st, what, &want_n);
    if (!want) return;
    TEST_ASSERT(want_n == n, "%s: golden has %zu values, the op %zu", what, want_n, n);
    if (want_n == n) test_close_rel(what, got, want, n, tol);
    free(want);
}

static inline float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static inline float *random_floats(size_t n, unsigned seed)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    test_fill_random(p, n, seed);
    return p;
}

static inline double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* The finite-difference judge.  loss(ctx) runs the op's forward and returns the fake loss
 * L = sum(y · w), whose gradient wrt y is w: so backward, given dy = w, must return dL/dparam.
 * Every element of param is nudged in turn and the slope compared with grad[i]:
 *   order 2: (L(+h) - L(-h)) / 2h                   exact for ops linear in param (any h)
 *   order 4: (-L(+2h) + 8 L(+h) - 8 L(-h) + L(-2h)) / 12h   error O(h⁴) for smooth ops
 * The forward runs in float, so h cannot be tiny: see each caller's choice. */
typedef double (*fd_loss_fn)(void *ctx);

static inline void fd_check(const char *what, float *param, const float *grad, size_t n,
                            fd_loss_fn loss, void *ctx, float h, int order, double rtol,
                            double atol)
{
    for (size_t i = 0; i < n; i++) {
        const float keep = param[i];
        double slope;
        param[i] = keep + h; double up = loss(ctx);
        param[i] = keep - h; double dn = loss(ctx);
        if (order == 4) {
            param[i] = keep + 2 * h; double up2 = loss(ctx);
            param[i] = keep - 2 * h; double dn2 = loss(ctx);
            slope = (-up2 + 8.0 * up - 8.0 * dn + dn2) / (12.0 * h);
        } else {
            slope = (up - dn) / (2.0 * h);
        }
        param[i] = keep;
        if (!(fabs(grad[i] - slope) <= atol + rtol * fabs(slope))) {
            if (test_current_failed++ < 5)
                fprintf(stderr, "  %s[%zu]: backward %.8g, finite difference %.8g\n", what, i,
                        grad[i], slope);
        }
    }
}

/* Backward accumulates: starting from g0, two calls must give g0 + 2·delta, where delta is what
 * one call adds to zeros.  got = after two calls from g0. */
static inline void check_accumulated(const char *what, const float *got, const float *g0,
                                     const float *delta, size_t n)
{
    int shown = 0;
    for (size_t i = 0; i < n; i++) {
        double want = (double)g0[i] + 2.0 * delta[i];
        if (!(fabs(got[i] - want) <= 1e-5 * (fabs(g0[i]) + 2.0 * fabs(delta[i])) + 1e-6)) {
            if (shown++ < 5)
                fprintf(stderr, "  %s[%zu]: after two calls %.8g, want g0 + 2·delta = %.8g\n",
                        what, i, got[i], want);
            test_current_failed++;
        }
    }
}

/* Bitwise equality, for the thread-count tests. */
static inline void check_same_bits(const char *what, const float *a, const float *b, size_t n)
{
    if (memcmp(a, b, n * sizeof(float)) != 0) {
        size_t i = 0;
        while (i < n && memcmp(&a[i], &b[i], sizeof(float)) == 0) i++;
        TEST_ASSERT(0, "%s: 1 thread and 2 threads differ at [%zu]: %.9g vs %.9g", what, i,
                    a[i], b[i]);
    }
}

#endif
