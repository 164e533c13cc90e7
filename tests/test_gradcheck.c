/* mcnn_gradcheck against gradients known exactly: it must pass a right gradient, find a wrong
 * one at the right place, and refuse bad arguments and non-finite losses.  Then the exercise of
 * docs/exercise-gradcheck.md as written there: layer norm's backward checked through the "fake
 * loss" L = sum(y · w), once right and once with a term dropped. */
#include "mcnn_test.h"

enum { N = 12 };

/* f(x) = sum_i w_i · sin(x_i) + (sum_i x_i)² / 2, so df/dx_i = w_i · cos(x_i) + sum x */
static const float w12[N] = {0.3f, -1.2f, 0.7f, 2.0f, -0.4f, 1.1f,
                             0.05f, -0.9f, 1.6f, -2.2f, 0.8f, 0.45f};

static double smooth(const float *x, void *ctx)
{
    (void)ctx;
    double f = 0.0, sum = 0.0;
    for (int i = 0; i < N; i++) f += w12[i] * sin(x[i]), sum += x[i];
    return f + 0.5 * sum * sum;
}

static void smooth_grad(float *g, const float *x)
{
    double sum = 0.0;
    for (int i = 0; i < N; i++) sum += x[i];
    for (int i = 0; i < N; i++) g[i] = (float)(w12[i] * cos(x[i]) + sum);
}

static void test_right_and_wrong_gradients(void)
{
    float x[N], g[N], keep[N];
    test_fill_random(x, N, 1);
    memcpy(keep, x, sizeof x);
    smooth_grad(g, x);
    mcnn_gradcheck_report r;
    TEST_OK(mcnn_gradcheck(&r, smooth, NULL, x, g, N, NULL));
    TEST_ASSERT(r.checked == N, "checked %zu of %d", r.checked, N);
    TEST_ASSERT(r.max_error < 1e-3, "a right gradient has error %g at %zu", r.max_error, r.worst);
    TEST_ASSERT(memcmp(x, keep, sizeof x) == 0, "x was not restored");

    g[7] *= 1.05f; /* 5 % off at one element */
    TEST_OK(mcnn_gradcheck(&r, smooth, NULL, x, g, N, NULL));
    TEST_ASSERT(r.worst == 7, "the wrong element is 7, the checker says %zu", r.worst);
    TEST_CLOSE("reported error", r.max_error, 0.05 / 1.05, 0.05, 0.0);
    TEST_CLOSE("reported analytic", r.analytic, g[7], 0.0, 0.0);
    TEST_CLOSE("reported numeric", r.numeric, g[7] / 1.05f, 1e-3, 0.0);

    const mcnn_gradcheck_options every_third = {.stride = 3};
    TEST_OK(mcnn_gradcheck(&r, smooth, NULL, x, g, N, &every_third));
    TEST_ASSERT(r.checked == 4 && r.max_error < 1e-3, "stride 3: %zu checked (7 skipped), "
                "error %g", r.checked, r.max_error);
}

static double not_finite(const float *x, void *ctx)
{
    (void)ctx;
    return x[2] > 0.5f ? NAN : 0.0; /* element 2 starts at 0.5 */
}

static void test_bad_input(void)
{
    float x[4] = {0, 0, 0.5f, 0}, g[4] = {0};
    mcnn_gradcheck_report r;
    TEST_ASSERT(mcnn_gradcheck(&r, smooth, NULL, x, g, 0, NULL) == MCNN_ERR_ARG, "n = 0");
    TEST_ASSERT(mcnn_gradcheck(&r, NULL, NULL, x, g, 4, NULL) == MCNN_ERR_ARG, "no function");
    TEST_ASSERT(mcnn_gradcheck(&r, not_finite, NULL, x, g, 4, NULL) == MCNN_ERR_FORMAT,
                "a NaN loss");
    TEST_ASSERT(strstr(mcnn_last_error(), "element 2") != NULL, "message: %s",
                mcnn_last_error());
    TEST_ASSERT(x[2] == 0.5f, "x[2] was not restored after the failure");
}

/* ---- the exercise: layer norm's backward, checked as docs/exercise-gradcheck.md does ---- */
enum { ROWS = 3, C = 8 };

typedef struct ln_problem {
    float x[ROWS * C], gamma[C], beta[C], w[ROWS * C];
} ln_problem;

/* L = sum(y · w): a scalar whose gradient with respect to y is w */
static double ln_loss(const float *x, void *ctx)
{
    const ln_problem *p = ctx;
    float y[ROWS * C], mean[ROWS], rstd[ROWS];
    mcnn_layernorm_forward(y, mean, rstd, x, p->gamma, p->beta, ROWS, C, 1e-5f);
    double L = 0.0;
    for (int i = 0; i < ROWS * C; i++) L += (double)y[i] * p->w[i];
    return L;
}

/* A learner's backward for dx, written from the derivation; drop_term removes the third term
 * (xhat · mean(g · xhat)), the classic mistake. */
static void my_layernorm_dx(float *dx, const ln_problem *p, int drop_term)
{
    for (int n = 0; n < ROWS; n++) {
        const float *x = p->x + n * C, *dy = p->w + n * C;
        double m = 0, v = 0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        const double rstd = 1.0 / sqrt(v / C + 1e-5);
        double g_mean = 0, gx_mean = 0;
        for (int i = 0; i < C; i++) {
            const double xhat = (x[i] - m) * rstd, g = dy[i] * p->gamma[i];
            g_mean += g / C, gx_mean += g * xhat / C;
        }
        for (int i = 0; i < C; i++) {
            const double xhat = (x[i] - m) * rstd, g = dy[i] * p->gamma[i];
            dx[n * C + i] = (float)(rstd * (g - g_mean - (drop_term ? 0.0 : xhat * gx_mean)));
        }
    }
}

static void test_exercise_layernorm(void)
{
    ln_problem p;
    test_fill_random(p.x, ROWS * C, 1), test_fill_random(p.gamma, C, 2);
    test_fill_random(p.beta, C, 3), test_fill_random(p.w, ROWS * C, 4);
    float dx[ROWS * C];
    mcnn_gradcheck_report r;
    const mcnn_gradcheck_options opt = {.step = 1e-2};

    my_layernorm_dx(dx, &p, 0);
    TEST_OK(mcnn_gradcheck(&r, ln_loss, &p, p.x, dx, ROWS * C, &opt));
    TEST_ASSERT(r.max_error < 1e-2, "right backward: error %g at %zu (%g vs %g)", r.max_error,
                r.worst, r.analytic, r.numeric);
    fprintf(stderr, "  right backward: worst error %.1e\n", r.max_error);

    my_layernorm_dx(dx, &p, 1);
    TEST_OK(mcnn_gradcheck(&r, ln_loss, &p, p.x, dx, ROWS * C, &opt));
    TEST_ASSERT(r.max_error > 0.1, "a backward without its third term passes: error %g",
                r.max_error);
    fprintf(stderr, "  without term 3: worst error %.2f\n", r.max_error);

    /* the library's own backward, the same way */
    float y[ROWS * C], mean[ROWS], rstd[ROWS], dlib[ROWS * C] = {0};
    mcnn_layernorm_forward(y, mean, rstd, p.x, p.gamma, p.beta, ROWS, C, 1e-5f);
    mcnn_layernorm_backward(dlib, NULL, NULL, p.w, p.x, p.gamma, mean, rstd, ROWS, C);
    TEST_OK(mcnn_gradcheck(&r, ln_loss, &p, p.x, dlib, ROWS * C, &opt));
    TEST_ASSERT(r.max_error < 1e-2, "mcnn_layernorm_backward: error %g", r.max_error);
}

int main(void)
{
    TEST_RUN(test_right_and_wrong_gradients);
    TEST_RUN(test_bad_input);
    TEST_RUN(test_exercise_layernorm);
    return test_summary();
}
