/* The plain twin of mcnn_gemm: one dot product per output element, accumulated in double.
 * Every fast GEMM path is tested against this. */
#include "internal.h"

void mcnn_gemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                double a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}
