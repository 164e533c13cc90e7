/* Helpers shared by the transformer-op tests (test_layernorm, test_activations, test_attention,
 * test_embedding): golden tensors by case name, finite differences, and buffers that are
 * freed together.  Two judges, both independent of the code under test:
 *   - PyTorch goldens in tests/data/ops_transformer.safetensors (tests/ref/gen_ops_transformer.py)
 *   - central finite differences of a "fake loss" L = Σ y·w, so dL/dy = w. */
#ifndef OPS_CHECK_H
#define OPS_CHECK_H

#include "mcnn_test.h"

#define OPS_GOLDEN_PATH "tests/data/ops_transformer.safetensors"
#define OPS_TOL 1e-4 /* relative error of a golden comparison (docs/conventions.md) */

static mcnn_safetensors *ops_golden;

/* ---- buffers: everything a test allocates is freed by one ops_free_all() -------------------- */
static void *ops_bufs[256];
static int ops_nbufs;

static inline void *ops_track(void *p)
{
    if (p && ops_nbufs < (int)(sizeof ops_bufs / sizeof ops_bufs[0])) ops_bufs[ops_nbufs++] = p;
    else if (p) TEST_ASSERT(0, "ops_track: too many buffers");
    return p;
}

static inline void ops_free_all(void)
{
    while (ops_nbufs) free(ops_bufs[--ops_nbufs]);
}

static inline float *ops_zeros(size_t n) { return ops_track(calloc(n ? n : 1, sizeof(float))); }

static inline float *ops_random(size_t n, unsigned seed, float scale)
{
    float *p = ops_zeros(n);
    test_fill_random(p, n, seed);
    for (size_t i = 0; i < n; i++) p[i] *= scale;
    return p;
}

static inline float *ops_copy(const float *src, size_t n)
{
    float *p = ops_zeros(n);
    memcpy(p, src, n * sizeof(float));
    return p;
}

/* ---- goldens ----------------------------------------------------------------------------------- */
static inline int ops_golden_open(void)
{
    if (ops_golden) return 1;
    mcnn_status s = mcnn_safetensors_open(&ops_golden, OPS_GOLDEN_PATH);
    TEST_ASSERT(s == MCNN_OK, "%s (run from the repository root; regenerate with "
                "/usr/bin/python3 tests/ref/gen_ops_transformer.py)", mcnn_last_error());
    return s == MCNN_OK;
}

static inline void ops_golden_close(void)
{
    if (ops_golden) mcnn_safetensors_close(ops_golden);
    ops_golden = NULL;
}

/* "<kase>.<name>" as float32, tracked; want_numel (if nonzero) is checked. */
static inline float *ops_get(const char *kase, const char *name, size_t want_numel)
{
    char key[128];
    size_t n = 0;
    snprintf(key, sizeof key, "%s.%s", kase, name);
    float *p = ops_track(test_golden(ops_golden, key, &n));
    if (p && want_numel && n != want_numel) {
        TEST_ASSERT(0, "%s: %zu elements, expected %zu", key, n, want_numel);
        return NULL;
    }
    return p;
}

/* The case's sizes ("<kase>.dims", int32) into d[0..n); returns 0 when missing. */
static inline int ops_dims(const char *kase, int *d, int n)
{
    char key[128];
    size_t got = 0;
    snprintf(key, sizeof key, "%s.dims", kase);
    int32_t *p = test_golden_i32(ops_golden, key, &got);
    if (!p) return 0;
    int ok = (int)got == n;
    TEST_ASSERT(ok, "%s: %zu dims, expected %d", key, got, n);
    for (int i = 0; ok && i < n; i++) d[i] = p[i];
    free(p);
    return ok;
}

/* test_close_rel at OPS_TOL, except for a tensor that is zero up to round-off (max |want| below
 * 1e-6, e.g. layer norm's dgamma at C = 1 or the gradient of a saturated softmax, where PyTorch
 * gives float64 noise like 1e-14): relative error is meaningless there, so it must be within
 * 1e-6 absolutely. */
static inline void ops_close(const char *what, const float *got, const float *want, size_t n)
{
    double maxref = 0.0;
    for (size_t i = 0; i < n; i++) maxref = fabs(want[i]) > maxref ? fabs(want[i]) : maxref;
    if (maxref >= 1e-6) {
        test_close_rel(what, got, want, n, OPS_TOL);
        return;
    }
    int shown = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= 1e-6)) {
            if (shown++ < 3)
                fprintf(stderr, "  %s[%zu]: got %.8g want %.8g (a zero tensor)\n", what, i,
                        got[i], want[i]);
            test_current_failed++;
        }
}

/* Compare an accumulated gradient with the golden: got started at base (non-zero, so that
 * "+=" is checked, not "="), so the op's contribution is got - base. */
static inline void ops_check_accumulated(const char *what, const float *got, const float *base,
                                  const float *want, size_t n)
{
    float *diff = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) diff[i] = got[i] - base[i];
    ops_close(what, diff, want, n);
    free(diff);
}

/* ---- finite differences -------------------------------------------------------------------------
 * f(ctx) evaluates the op's forward and returns L = Σ y·w in double.  For each element of
 * param, the fourth-order central stencil
 *   dL/dp ≈ (-L(p+2h) + 8 L(p+h) - 8 L(p-h) + L(p-2h)) / 12h
 * is compared with the analytic grad: |grad - fd| <= atol + rtol·|fd|.  The forward runs in
 * float, so h cannot be tiny (round-off ~ 1e-7·|L| / h); the fourth-order stencil lets h be
 * large enough while its truncation error (h⁴) stays negligible. */
typedef double (*ops_loss_fn)(void *ctx);

static inline void ops_fd_check(const char *what, float *param, const float *grad, size_t n,
                         ops_loss_fn f, void *ctx, float h, double rtol, double atol)
{
    int shown = 0;
    for (size_t i = 0; i < n; i++) {
        const float keep = param[i];
        double L[4];
        const float steps[4] = {2 * h, h, -h, -2 * h};
        for (int s = 0; s < 4; s++) {
            param[i] = keep + steps[s];
            L[s] = f(ctx);
        }
        param[i] = keep;
        /* the step actually taken in float, not the nominal h */
        const double hh = ((double)(keep + h) - (double)(keep - h)) / 2.0;
        const double fd = (-L[0] + 8 * L[1] - 8 * L[2] + L[3]) / (12.0 * hh);
        if (!(fabs(grad[i] - fd) <= atol + rtol * fabs(fd))) {
            if (shown++ < 5)
                fprintf(stderr, "  %s[%zu]: analytic %.8g, finite difference %.8g\n", what, i,
                        grad[i], fd);
            test_current_failed++;
        }
    }
}

/* L = Σ y·w in double */
static inline double ops_dot(const float *y, const float *w, size_t n)
{
    double L = 0.0;
    for (size_t i = 0; i < n; i++) L += (double)y[i] * w[i];
    return L;
}

/* Bitwise equality: the thread-count tests demand identical results, not close ones. */
static inline void ops_check_same(const char *what, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            TEST_ASSERT(0, "%s[%zu]: %.9g with one thread, %.9g with several", what, i, a[i],
                        b[i]);
            return;
        }
}

#endif
