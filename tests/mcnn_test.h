/* The test harness: a few macros, no framework.
 * Each test binary runs its TEST_RUN()s and ends with test_summary(), which prints
 * "N passed, N failed" and returns non-zero on any failure.  Goldens are read with the
 * library's own safetensors loader. */
#ifndef MCNN_TEST_H
#define MCNN_TEST_H

#include "mcnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed, test_failed, test_skipped, test_current_failed, test_current_skipped;

/* |got - want| <= atol + rtol * |want|, reporting the first few misses with their location */
#define TEST_CLOSE(what, got, want, rtol, atol)                                             \
    do {                                                                                    \
        double g_ = (got), w_ = (want);                                                     \
        if (!(fabs(g_ - w_) <= (atol) + (rtol) * fabs(w_))) {                               \
            if (test_current_failed++ < 5)                                                  \
                fprintf(stderr, "  %s:%d %s: got %.8g want %.8g\n", __FILE__, __LINE__,     \
                        (what), g_, w_);                                                    \
        }                                                                                   \
    } while (0)

#define TEST_ASSERT(cond, ...)                                                              \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            if (test_current_failed++ < 5) {                                                \
                fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                           \
                fprintf(stderr, __VA_ARGS__);                                               \
                fprintf(stderr, "\n");                                                      \
            }                                                                               \
        }                                                                                   \
    } while (0)

/* Check a library call succeeded; on failure report mcnn_last_error(). */
#define TEST_OK(expr)                                                                       \
    do {                                                                                    \
        mcnn_status s_ = (expr);                                                            \
        TEST_ASSERT(s_ == MCNN_OK, "%s -> %s: %s", #expr, mcnn_strerror(s_),                \
                    mcnn_last_error());                                                     \
    } while (0)

#define TEST_RUN(fn)                                                                        \
    do {                                                                                    \
        test_current_failed = 0;                                                            \
        test_current_skipped = 0;                                                           \
        fn();                                                                               \
        if (test_current_failed) {                                                          \
            test_failed++;                                                                  \
            fprintf(stderr, "FAIL %s\n", #fn);                                              \
        } else if (test_current_skipped) {                                                  \
            test_skipped++;                                                                 \
            fprintf(stderr, "skip %s\n", #fn);                                              \
        } else {                                                                            \
            test_passed++;                                                                  \
            fprintf(stderr, "ok   %s\n", #fn);                                              \
        }                                                                                   \
    } while (0)

/* Mark the current test skipped (data absent), saying why. */
#define TEST_SKIP(...)                                                                      \
    do {                                                                                    \
        fprintf(stderr, "  skipped: ");                                                     \
        fprintf(stderr, __VA_ARGS__);                                                       \
        fprintf(stderr, "\n");                                                              \
        test_current_skipped = 1;                                                           \
    } while (0)

static inline int test_summary(void)
{
    if (test_skipped)
        printf("%d passed, %d failed, %d skipped\n", test_passed, test_failed, test_skipped);
    else
        printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0; /* CI must be able to see a failure */
}

/* Deterministic values in [-1, 1) from a seed, independent of the library's RNG. */
static inline void test_fill_random(float *x, size_t n, unsigned seed)
{
    unsigned long long s = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

/* Compare two arrays element by element; report the first misses with their index. */
static inline void test_close_array(const char *what, const float *got, const float *want, size_t n,
                             double rtol, double atol)
{
    int shown = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (!(fabs(g - w) <= atol + rtol * fabs(w))) {
            if (shown++ < 5)
                fprintf(stderr, "  %s[%zu]: got %.8g want %.8g\n", what, i, g, w);
            test_current_failed++;
        }
    }
}

/* Relative error of a whole tensor: max |got - want| / max |want|, the measure the goldens'
 * tolerances are stated in.  Fails when above tol. */
static inline double test_close_rel(const char *what, const float *got, const float *want, size_t n,
                             double tol)
{
    double maxdiff = 0.0, maxref = 0.0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= maxdiff)) maxdiff = d, worst = i; /* also catches NaN */
        if (fabs(want[i]) > maxref) maxref = fabs(want[i]);
    }
    double rel = maxref > 0 ? maxdiff / maxref : maxdiff;
    if (!(rel <= tol)) {
        fprintf(stderr, "  %s: relative error %.3g > %.3g (worst [%zu]: got %.8g want %.8g)\n",
                what, rel, tol, worst, n ? got[worst] : 0.0, n ? want[worst] : 0.0);
        test_current_failed++;
    }
    return rel;
}

/* Path of a file in the shared data folder ($MCNN_SHARED, default ../shared). */
static inline const char *test_shared_path(const char *rel)
{
    /* a few buffers in turn: f(test_shared_path(a), g()) where g calls it too must not see its
     * first result overwritten (clang evaluates arguments left to right, gcc right to left) */
    static char buf[8][1024];
    static int k;
    k = (k + 1) % 8;
    const char *root = getenv("MCNN_SHARED");
    snprintf(buf[k], sizeof buf[k], "%s/%s", root && *root ? root : "../shared", rel);
    return buf[k];
}

/* Read a whole tensor from a golden file as float32 into a fresh buffer (free with free()).
 * Returns NULL and fails the current test when the tensor is missing. */
static inline float *test_golden(mcnn_safetensors *st, const char *name, size_t *numel)
{
    const mcnn_st_tensor *t = mcnn_safetensors_find(st, name);
    if (!t) {
        TEST_ASSERT(0, "%s: golden tensor '%s' missing", mcnn_safetensors_path(st), name);
        return NULL;
    }
    float *p = malloc((t->numel ? t->numel : 1) * sizeof(float));
    if (mcnn_safetensors_read_f32(st, t, p) != MCNN_OK) {
        TEST_ASSERT(0, "%s", mcnn_last_error());
        free(p);
        return NULL;
    }
    if (numel) *numel = t->numel;
    return p;
}

static inline int32_t *test_golden_i32(mcnn_safetensors *st, const char *name, size_t *numel)
{
    const mcnn_st_tensor *t = mcnn_safetensors_find(st, name);
    if (!t) {
        TEST_ASSERT(0, "%s: golden tensor '%s' missing", mcnn_safetensors_path(st), name);
        return NULL;
    }
    int32_t *p = malloc((t->numel ? t->numel : 1) * sizeof(int32_t));
    if (mcnn_safetensors_read_i32(st, t, p) != MCNN_OK) {
        TEST_ASSERT(0, "%s", mcnn_last_error());
        free(p);
        return NULL;
    }
    if (numel) *numel = t->numel;
    return p;
}

#endif
