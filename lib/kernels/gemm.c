/* Placeholder GEMM: forwards to the reference loop until the blocked kernel lands. */
#include "internal.h"

void mcnn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    mcnn_gemm_ref(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

const char *mcnn_gemm_kernel_name(void)
{
    return "reference";
}
