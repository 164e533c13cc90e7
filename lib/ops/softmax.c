/* Softmax and log-softmax over the last axis (torch.softmax / torch.log_softmax, dim=-1).
 *   softmax:      y_i = exp(x_i - m) / Σ_j exp(x_j - m),        m = max_j x_j
 *                 dx_i = y_i · (dy_i - Σ_j dy_j · y_j)
 *   log-softmax:  y_i = x_i - m - log Σ_j exp(x_j - m)
 *                 dx_i = dy_i - exp(y_i) · Σ_j dy_j
 * x, y, dx, dy: (N, C), one distribution per row.  Subtracting the row max changes nothing
 * mathematically (it cancels in the ratio) but keeps exp() from overflowing: the largest
 * term becomes exp(0) = 1, so the sum lies in [1, C].  Both backwards read the forward's
 * OUTPUT y, not x.  Backward accumulates (+=).  See docs/ops/softmax.md. */
#include "internal.h"
#include "core/profile.h"
#include "vmath.h"

#include <math.h>

#define PAR_MIN 4096 /* rows × columns below which threads cost more than they save */

/* One row, y = softmax(x) (y == x allowed).  The sum is in double, in SIMD lanes; exp is
 * vmath.h's, so the loop runs at the CPU's vector width (MCNN_SIMD_CLONES).  Attention calls
 * this for each row of its scores through mcnn_softmax_row below. */
MCNN_SIMD_CLONES static void softmax_row(float *y, const float *x, int n)
{
    float m8[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                   -INFINITY, -INFINITY, -INFINITY, -INFINITY}; /* 8 maxima: vector code */
    int c = 0;
    for (; c + 8 <= n; c += 8)
        for (int l = 0; l < 8; l++) m8[l] = x[c + l] > m8[l] ? x[c + l] : m8[l];
    float m = -INFINITY;
    for (int l = 0; l < 8; l++) m = m8[l] > m ? m8[l] : m;
    for (; c < n; c++) m = x[c] > m ? x[c] : m;
    double sum = 0.0;
    #pragma omp simd reduction(+ : sum)
    for (c = 0; c < n; c++) {
        y[c] = mcnn_vexpf(x[c] - m);
        sum += y[c];
    }
    const float inv = (float)(1.0 / sum);
    #pragma omp simd
    for (c = 0; c < n; c++) y[c] *= inv;
}

/* The clones stay static: clang 14 names a multiversioned function's dispatcher differently
 * from GCC, so a call from another file (attention.c) would not link. */
void mcnn_softmax_row(float *y, const float *x, int n)
{
    softmax_row(y, x, n);
}

void mcnn_softmax_forward(float *y, const float *x, int N, int C)
{
    MCNN_PROF_SCOPE(MCNN_PROF_SOFTMAX);
    #pragma omp parallel for if ((size_t)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) mcnn_softmax_row(y + (size_t)n * C, x + (size_t)n * C, C);
}

void mcnn_softmax_backward(float *dx, const float *dy, const float *y, int N, int C)
{
    MCNN_PROF_SCOPE(MCNN_PROF_SOFTMAX);
    if (!dx) return;
    #pragma omp parallel for if ((size_t)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *dy_n = dy + (size_t)n * C, *y_n = y + (size_t)n * C;
        float *dx_n = dx + (size_t)n * C;
        double dot = 0.0; /* Σ dy·y: how much the row's total moved */
        for (int c = 0; c < C; c++) dot += (double)dy_n[c] * y_n[c];
        for (int c = 0; c < C; c++) dx_n[c] += y_n[c] * (dy_n[c] - (float)dot);
    }
}

void mcnn_log_softmax_forward(float *y, const float *x, int N, int C)
{
    MCNN_PROF_SCOPE(MCNN_PROF_SOFTMAX);
    #pragma omp parallel for if ((size_t)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x_n = x + (size_t)n * C;
        float *y_n = y + (size_t)n * C;
        float m = -INFINITY;
        for (int c = 0; c < C; c++) m = x_n[c] > m ? x_n[c] : m;
        double sum = 0.0;
        for (int c = 0; c < C; c++) sum += expf(x_n[c] - m);
        /* log-sum-exp in double, then one float subtraction per element: never exp(big) */
        const double lse = (double)m + log(sum);
        for (int c = 0; c < C; c++) y_n[c] = (float)((double)x_n[c] - lse);
    }
}

void mcnn_log_softmax_backward(float *dx, const float *dy, const float *y, int N, int C)
{
    MCNN_PROF_SCOPE(MCNN_PROF_SOFTMAX);
    if (!dx) return;
    #pragma omp parallel for if ((size_t)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *dy_n = dy + (size_t)n * C, *y_n = y + (size_t)n * C;
        float *dx_n = dx + (size_t)n * C;
        double sum = 0.0;
        for (int c = 0; c < C; c++) sum += dy_n[c];
        for (int c = 0; c < C; c++) dx_n[c] += dy_n[c] - expf(y_n[c]) * (float)sum;
    }
}
