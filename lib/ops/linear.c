/* Fully connected layer (torch.nn.Linear):
 *   forward   y  = x·Wᵀ + b                 x (N, IN), w (OUT, IN), b (OUT) or NULL, y (N, OUT)
 *   backward  dx += dy·W                    (N, OUT)·(OUT, IN) -> (N, IN)
 *             dW += dyᵀ·x                   (OUT, N)·(N, IN)   -> (OUT, IN)
 *             db += sum over rows n of dy   (OUT)
 * All three products are one mcnn_gemm call each; the weight keeps PyTorch's (OUT, IN) layout
 * and the transposes are GEMM flags, never copies.  Backward accumulates (beta = 1). */
#include "internal.h"
#include "core/profile.h"

#include <math.h>

void mcnn_linear_forward(float *y, const float *x, const float *w, const float *b, int N,
                         int IN, int OUT)
{
    MCNN_PROF_SCOPE(MCNN_PROF_LINEAR);
    /* y (N, OUT) = x (N, IN) · wᵀ (IN, OUT) */
    mcnn_gemm(0, 1, N, OUT, IN, 1.0f, x, IN, w, IN, 0.0f, y, OUT);
    if (!b) return;
    #pragma omp parallel for if ((size_t)N * OUT > 32768)
    for (int n = 0; n < N; n++) {
        float *y_n = y + (size_t)n * OUT;
        for (int o = 0; o < OUT; o++) y_n[o] += b[o];
    }
}

void mcnn_linear_forward_packed(float *y, const float *x, const float *w,
                                const mcnn_packed_b *pk, const float *b, int N, int IN, int OUT)
{
    if (pk) {
        MCNN_PROF_SCOPE(MCNN_PROF_LINEAR);
        if (mcnn_gemm_packed(N, x, IN, pk, b, 0.0f, y, OUT) == MCNN_OK) return;
        if (!w) { /* released (inference only): NaN, never a plausible wrong number */
            for (size_t i = 0; i < (size_t)N * OUT; i++) y[i] = NAN;
            return;
        }
    }
    mcnn_linear_forward(y, x, w, b, N, IN, OUT);
}

/* Columns handled together by one thread in the bias gradient: a row segment of dy is read
 * contiguously, while each column's sum still runs over n in one fixed order. */
#define LINEAR_DB_BLOCK 64

void mcnn_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, int N, int IN, int OUT)
{
    MCNN_PROF_SCOPE(MCNN_PROF_LINEAR);
    if (dx) /* dx (N, IN) += dy (N, OUT) · w (OUT, IN) */
        mcnn_gemm(0, 0, N, IN, OUT, 1.0f, dy, OUT, w, IN, 1.0f, dx, IN);
    if (dw) /* dw (OUT, IN) += dyᵀ (OUT, N) · x (N, IN) */
        mcnn_gemm(1, 0, OUT, IN, N, 1.0f, dy, OUT, x, IN, 1.0f, dw, IN);
    if (db) {
        /* split columns (output elements) across threads: no two threads touch one db[o],
         * and each sum has the same order whatever the thread count */
        int nblocks = (OUT + LINEAR_DB_BLOCK - 1) / LINEAR_DB_BLOCK;
        #pragma omp parallel for if ((size_t)N * OUT > 32768)
        for (int blk = 0; blk < nblocks; blk++) {
            int o0 = blk * LINEAR_DB_BLOCK;
            int o1 = o0 + LINEAR_DB_BLOCK < OUT ? o0 + LINEAR_DB_BLOCK : OUT;
            double acc[LINEAR_DB_BLOCK] = {0}; /* double: N can be thousands of tokens */
            for (int n = 0; n < N; n++) {
                const float *dy_n = dy + (size_t)n * OUT;
                for (int o = o0; o < o1; o++) acc[o - o0] += dy_n[o];
            }
            for (int o = o0; o < o1; o++) db[o] += (float)acc[o - o0];
        }
    }
}
