/* Reduced precision for inference: a weight matrix packed once, in fp32, bf16 or int8, and the
 * GEMM that multiplies activations by it (docs/precision.md).
 *
 *   y (M, N) = x (M, K) · Wᵀ + bias + beta · y        W (N, K) as torch stores a Linear weight
 *
 * fp32  the same bits as mcnn_gemm(0, 1, ...) followed by adding the bias (mcnn_linear_forward).
 * bf16  W rounded to bf16 (round to nearest even) when packed, x rounded while packing A,
 *       products summed in fp32.  Packed weights: half of fp32.
 * int8  W per output channel, symmetric: q = round(w / s), s = max|w_row| / 127; x per row,
 *       asymmetric 7-bit (0..127) with a zero point; int32 sums, dequantized (+ bias) at the
 *       end.
 *       Packed weights: a quarter of fp32, plus a scale and a column sum per output.
 * Training stays fp32: these are forward-only. */
#ifndef MCNN_LOWP_H
#define MCNN_LOWP_H

#include "core.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mcnn_precision {
    MCNN_PRECISION_FP32 = 0,
    MCNN_PRECISION_BF16,
    MCNN_PRECISION_INT8
} mcnn_precision;

/* "fp32", "bf16", "int8". */
MCNN_API const char *mcnn_precision_name(mcnn_precision p);
/* The inverse ("--precision NAME" in the apps): MCNN_ERR_ARG naming the choices otherwise. */
MCNN_API mcnn_status mcnn_precision_parse(const char *name, mcnn_precision *out);

/* A weight packed for one precision and one micro-kernel (chosen when packed: see
 * mcnn_lowp_isa).  Read-only after creation, so any number of threads may share it. */
typedef struct mcnn_packed_b mcnn_packed_b;

/* Pack W (N, K), row stride ldw >= K.  Fails with MCNN_ERR_ARG on bad sizes or an MCNN_ISA
 * value this CPU cannot honour (the message says why), MCNN_ERR_NOMEM when out of memory. */
MCNN_API mcnn_status mcnn_packed_b_create(mcnn_packed_b **out, mcnn_precision precision,
                                          const float *W, int N, int K, int ldw);
MCNN_API void mcnn_packed_b_free(mcnn_packed_b *p);
/* Bytes the packed weight holds (panels, scales and sums; not the small header). */
MCNN_API size_t mcnn_packed_b_bytes(const mcnn_packed_b *p);
/* The micro-kernel it was packed for: "avx2", "plain", ... */
MCNN_API const char *mcnn_packed_b_kernel(const mcnn_packed_b *p);

/* y = x · Wᵀ (+ bias) + beta · y.  x (M, K) with row stride lda, y (M, N) with ldc; bias (N)
 * or NULL; beta == 0 does not read y.  The result does not depend on the thread count.
 * MCNN_ERR_NOMEM when the int8 path cannot allocate its quantized copy of x. */
MCNN_API mcnn_status mcnn_gemm_packed(int M, const float *x, int lda, const mcnn_packed_b *p,
                                      const float *bias, float beta, float *y, int ldc);

#ifdef __cplusplus
}
#endif
#endif
