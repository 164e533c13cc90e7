/* Layer norm over the last axis (torch.nn.LayerNorm(C, eps), elementwise_affine=True).
 *   forward:  mean = mean_c(x),  var = mean_c((x - mean)²)  (biased),  rstd = 1 / sqrt(var + eps)
 *             xhat = (x - mean) · rstd,   y = xhat · gamma + beta
 *   backward: with g = dy · gamma,
 *             dx     = rstd · (g - mean_c(g) - xhat · mean_c(g · xhat))
 *             dgamma = sum_n dy · xhat,   dbeta = sum_n dy
 * x, y, dx, dy: (N, C) with N = B·T tokens;  gamma, beta: (C);  mean, rstd: (N), saved by the
 * forward for the backward.  eps: 1e-5 in PyTorch's default and CLIP, 1e-6 in timm's ViT.
 * Backward accumulates (+=); any gradient pointer may be NULL.  See docs/ops/layernorm.md. */
#include "internal.h"
#include "core/profile.h"

#include <math.h>

void mcnn_layernorm_forward(float *y, float *mean, float *rstd, const float *x,
                            const float *gamma, const float *beta, int N, int C, float eps)
{
    MCNN_PROF_SCOPE(MCNN_PROF_LAYERNORM);
    #pragma omp parallel for if ((size_t)N * C > 4096)
    for (int n = 0; n < N; n++) {
        const float *x_n = x + (size_t)n * C;
        float *y_n = y + (size_t)n * C;
        /* double: C can be 1024+, and two passes (mean, then squared deviations) keep the
         * variance exact even when |mean| >> std, where sum(x²) - sum(x)² would cancel */
        double sum = 0.0;
        #pragma omp simd reduction(+ : sum) /* the sums in vector lanes, a fixed order */
        for (int c = 0; c < C; c++) sum += x_n[c];
        double m = sum / C, sumsq = 0.0;
        #pragma omp simd reduction(+ : sumsq)
        for (int c = 0; c < C; c++) sumsq += (x_n[c] - m) * (x_n[c] - m);
        double s = 1.0 / sqrt(sumsq / C + (double)eps);
        for (int c = 0; c < C; c++)
            y_n[c] = (float)((x_n[c] - m) * s) * gamma[c] + beta[c];
        mean[n] = (float)m;
        rstd[n] = (float)s;
    }
}

void mcnn_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                             const float *x, const float *gamma, const float *mean,
                             const float *rstd, int N, int C)
{
    MCNN_PROF_SCOPE(MCNN_PROF_LAYERNORM);
    /* pass 1: dx.  Rows are independent -> split rows across threads. */
    if (dx) {
        #pragma omp parallel for if ((size_t)N * C > 4096)
        for (int n = 0; n < N; n++) {
            const float *x_n = x + (size_t)n * C, *dy_n = dy + (size_t)n * C;
            float *dx_n = dx + (size_t)n * C;
            const float m = mean[n], s = rstd[n];
            double g_sum = 0.0, gx_sum = 0.0;   /* the two row means the formula needs */
            #pragma omp simd reduction(+ : g_sum, gx_sum)
            for (int c = 0; c < C; c++) {
                float xhat = (x_n[c] - m) * s;
                float g = dy_n[c] * gamma[c];
                g_sum += g;
                gx_sum += (double)g * xhat;
            }
            const float g_mean = (float)(g_sum / C), gx_mean = (float)(gx_sum / C);
            for (int c = 0; c < C; c++) {
                float xhat = (x_n[c] - m) * s;
                dx_n[c] += s * (dy_n[c] * gamma[c] - g_mean - xhat * gx_mean);
            }
        }
    }
    /* pass 2: dgamma, dbeta sum over rows.  Split channels across threads, so no two threads
     * write the same element and the sum order (n = 0, 1, ...) does not depend on the thread
     * count: results are bitwise identical for any number of threads. */
    if (dgamma || dbeta) {
        enum { CB = 64 };                       /* channels per block: one cache-friendly strip */
        const int nblocks = (C + CB - 1) / CB;
        #pragma omp parallel for if ((size_t)N * C > 4096)
        for (int blk = 0; blk < nblocks; blk++) {
            const int c0 = blk * CB, cn = C - c0 < CB ? C - c0 : CB;
            double sg[CB] = {0}, sb[CB] = {0};
            for (int n = 0; n < N; n++) {       /* rows in order: walk memory forwards */
                const float *x_n = x + (size_t)n * C + c0, *dy_n = dy + (size_t)n * C + c0;
                const float m = mean[n], s = rstd[n];
                for (int c = 0; c < cn; c++) {
                    sg[c] += (double)dy_n[c] * ((x_n[c] - m) * s);
                    sb[c] += dy_n[c];
                }
            }
            for (int c = 0; c < cn; c++) {
                if (dgamma) dgamma[c0 + c] += (float)sg[c];
                if (dbeta) dbeta[c0 + c] += (float)sb[c];
            }
        }
    }
}
