/* General matrix multiply, row-major, BLAS semantics:
 *   C = alpha * op(A) * op(B) + beta * C
 * op(A) is (M, K): A itself (M rows, leading dimension lda >= K) or, with trans_a, the
 * transpose of a (K, M) matrix (lda >= M).  Likewise op(B) is (K, N).  C is (M, N), ldc >= N.
 * beta == 0 overwrites C without reading it (so C may hold NaN garbage).
 * The result does not depend on the thread count: each thread owns whole tiles of C. */
#ifndef MCNN_GEMM_H
#define MCNN_GEMM_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

MCNN_API void mcnn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C,
                        int ldc);

/* The plain twin: a naive triple loop accumulating in double.  Slow; for tests and learners. */
MCNN_API void mcnn_gemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta,
                            float *C, int ldc);

/* Name of the micro-kernel picked for this CPU ("avx512", "avx2", "plain"). */
MCNN_API const char *mcnn_gemm_kernel_name(void);

#ifdef __cplusplus
}
#endif
#endif
