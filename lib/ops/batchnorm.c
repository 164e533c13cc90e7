/* Batch norm over (N, H, W) per channel (torch.nn.BatchNorm2d, affine, track_running_stats).
 * x, y, dy, dx (N, C, HW); gamma, beta, mean, rstd, running_mean, running_var (C);
 * M = N·HW values per channel.
 *   training  mean = sum(x) / M,  var = sum((x - mean)²) / M       (biased: used to normalise)
 *             xhat = (x - mean) · rstd,  rstd = 1 / sqrt(var + eps),  y = gamma · xhat + beta
 *             running_mean = (1 - momentum) · running_mean + momentum · mean
 *             running_var  = (1 - momentum) · running_var  + momentum · var · M / (M - 1)
 *   eval      y = gamma · (x - running_mean) / sqrt(running_var + eps) + beta
 *   backward (training; every xhat depends on every x of its channel through mean and var)
 *             dbeta = sum(dy),  dgamma = sum(dy · xhat)
 *             dx = gamma · rstd · (dy - dbeta / M - xhat · dgamma / M)
 * PyTorch's defaults are momentum 0.1 and eps 1e-5.  Derivation: docs/ops/batchnorm.md.
 * Every channel is independent, so channels are split across threads: each channel's sums run
 * in one fixed order, in double (M = 16·112·112 = 200k values in ResNet's first layer). */
#include "internal.h"
#include "core/profile.h"

#include <math.h>

/* The per-channel sums keep LANES partial sums in double, combined in a fixed order at the end:
 * a single running double sum is one long dependency chain (about 4 cycles per value), which
 * made these passes as slow as the convolutions around them.  LANES independent chains
 * vectorise, and the order, hence the result, is still fixed for any thread count. */
#define LANES 8

static double sum_lanes(const double *acc)
{
    double s = 0.0;
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

/* sum(x) over one row of HW values, into the lanes */
static void row_sum(double *acc, const float *x, int HW)
{
    int i = 0;
    for (; i + LANES <= HW; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += x[i + l];
    for (; i < HW; i++) acc[i % LANES] += x[i];
}

/* sum((x - m)²) */
static void row_sumsq(double *acc, const float *x, double m, int HW)
{
    int i = 0;
    for (; i + LANES <= HW; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += (x[i + l] - m) * (x[i + l] - m);
    for (; i < HW; i++) acc[i % LANES] += (x[i] - m) * (x[i] - m);
}

/* sum(dy), sum(dy · (x - m)) and sum(x - m) in one pass (restrict: three distinct arrays of
 * lanes, so the compiler may vectorise; without it this pass ran 1.6x slower) */
static void row_sums3(double *restrict a_dy, double *restrict a_dyx, double *restrict a_x,
                      const float *dy, const float *x, double m, int HW)
{
    int i = 0;
    for (; i + LANES <= HW; i += LANES)
        for (int l = 0; l < LANES; l++) {
            double xc = x[i + l] - m;
            a_dy[l] += dy[i + l];
            a_dyx[l] += dy[i + l] * xc;
            a_x[l] += xc;
        }
    for (; i < HW; i++) {
        double xc = x[i] - m;
        a_dy[i % LANES] += dy[i];
        a_dyx[i % LANES] += dy[i] * xc;
        a_x[i % LANES] += xc;
    }
}

void mcnn_batchnorm2d_forward_train(float *y, float *mean, float *rstd, float *running_mean,
                                    float *running_var, const float *x, const float *gamma,
                                    const float *beta, int N, int C, int HW, float momentum,
                                    float eps)
{
    MCNN_PROF_SCOPE(MCNN_PROF_BN);
    const size_t M = (size_t)N * HW;
    #pragma omp parallel for if (M * C > 32768)
    for (int c = 0; c < C; c++) {
        double acc[LANES] = {0};
        for (int n = 0; n < N; n++) row_sum(acc, x + ((size_t)n * C + c) * HW, HW);
        const double m = sum_lanes(acc) / (double)M;
        /* a second pass around the mean: no cancellation when |mean| >> std */
        double acc2[LANES] = {0};
        for (int n = 0; n < N; n++) row_sumsq(acc2, x + ((size_t)n * C + c) * HW, m, HW);
        const double var = sum_lanes(acc2) / (double)M;
        const double r = 1.0 / sqrt(var + eps);
        /* y = x · scale + shift, in double so the shift does not cancel digits away */
        const double scale = gamma[c] * r, shift = beta[c] - m * scale;
        for (int n = 0; n < N; n++) {
            const float *x_nc = x + ((size_t)n * C + c) * HW;
            float *y_nc = y + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) y_nc[i] = (float)(x_nc[i] * scale + shift);
        }
        mean[c] = (float)m;
        rstd[c] = (float)r;
        if (running_mean)
            running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * m);
        if (running_var) { /* unbiased, as PyTorch (which refuses M = 1; we keep the biased 0) */
            double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
            running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
        }
    }
}

void mcnn_batchnorm2d_forward_eval(float *y, const float *x, const float *gamma,
                                   const float *beta, const float *running_mean,
                                   const float *running_var, int N, int C, int HW, float eps)
{
    MCNN_PROF_SCOPE(MCNN_PROF_BN);
    #pragma omp parallel for if ((size_t)N * HW * C > 32768)
    for (int c = 0; c < C; c++) {
        const double scale = gamma[c] / sqrt((double)running_var[c] + eps);
        const double shift = beta[c] - running_mean[c] * scale;
        for (int n = 0; n < N; n++) {
            const float *x_nc = x + ((size_t)n * C + c) * HW;
            float *y_nc = y + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++) y_nc[i] = (float)(x_nc[i] * scale + shift);
        }
    }
}

void mcnn_batchnorm2d_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *x, const float *gamma, const float *mean,
                               const float *rstd, int N, int C, int HW)
{
    MCNN_PROF_SCOPE(MCNN_PROF_BN);
    const size_t M = (size_t)N * HW;
    #pragma omp parallel for if (M * C > 32768)
    for (int c = 0; c < C; c++) {
        /* mean[c] was rounded to float when saved.  Summing x - mean as well measures that
         * rounding (d = the true mean minus the saved one) in the same pass, so the sums below
         * are taken around the exact batch mean even when |mean| >> std. */
        const double m = mean[c], r = rstd[c];
        double a_dy[LANES] = {0}, a_dyx[LANES] = {0}, a_x[LANES] = {0};
        for (int n = 0; n < N; n++)
            row_sums3(a_dy, a_dyx, a_x, dy + ((size_t)n * C + c) * HW,
                      x + ((size_t)n * C + c) * HW, m, HW);
        const double sdy = sum_lanes(a_dy), sdyx = sum_lanes(a_dyx), sx = sum_lanes(a_x);
        const double d = sx / (double)M;
        const double sum_dy = sdy;                      /* = dbeta                   */
        const double sum_dy_xhat = (sdyx - d * sdy) * r; /* = dgamma: sum dy · xhat   */
        if (dbeta) dbeta[c] += (float)sum_dy;
        if (dgamma) dgamma[c] += (float)sum_dy_xhat;
        if (!dx) continue;
        /* dx = gamma·rstd·dy - gamma·rstd·sum_dy/M - gamma·rstd²·(x - mean)·sum_dy_xhat/M */
        const double k_dy = gamma[c] * r;
        const double k_0 = -k_dy * sum_dy / (double)M;
        const double k_x = -k_dy * r * sum_dy_xhat / (double)M;
        const double m_exact = m + d;
        for (int n = 0; n < N; n++) {
            const float *x_nc = x + ((size_t)n * C + c) * HW;
            const float *dy_nc = dy + ((size_t)n * C + c) * HW;
            float *dx_nc = dx + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++)
                dx_nc[i] += (float)(k_dy * dy_nc[i] + k_x * (x_nc[i] - m_exact) + k_0);
        }
    }
}

void mcnn_batchnorm2d_backward_eval(float *dx, float *dgamma, float *dbeta, const float *dy,
                                    const float *x, const float *gamma,
                                    const float *running_mean, const float *running_var, int N,
                                    int C, int HW, float eps)
{
    MCNN_PROF_SCOPE(MCNN_PROF_BN);
    /* the statistics are constants here, so y is affine in x: dx = gamma · rstd · dy */
    #pragma omp parallel for if ((size_t)N * HW * C > 32768)
    for (int c = 0; c < C; c++) {
        const double r = 1.0 / sqrt((double)running_var[c] + eps), m = running_mean[c];
        const float k = (float)(gamma[c] * r);
        double a_dy[LANES] = {0}, a_dyx[LANES] = {0}, a_x[LANES] = {0};
        for (int n = 0; n < N; n++) {
            const float *x_nc = x + ((size_t)n * C + c) * HW;
            const float *dy_nc = dy + ((size_t)n * C + c) * HW;
            if (dgamma || dbeta) row_sums3(a_dy, a_dyx, a_x, dy_nc, x_nc, m, HW);
            if (dx) {
                float *dx_nc = dx + ((size_t)n * C + c) * HW;
                for (int i = 0; i < HW; i++) dx_nc[i] += k * dy_nc[i];
            }
        }
        if (dbeta) dbeta[c] += (float)sum_lanes(a_dy);
        if (dgamma) dgamma[c] += (float)(sum_lanes(a_dyx) * r);
    }
}
