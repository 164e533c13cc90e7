/* Convolution through a weight packed once (include/mcnn/lowp.h): the inference path of a
 * model whose precision was set.  The GEMM's rows are the output pixels, so the columns are
 * built the other way round ("im2row"):
 *   rows (R, K) = one row of K = IC·KH·KW inputs per output pixel, R pixels at a time
 *   out  (R, OC) = rows · Wᵀ  (mcnn_gemm_packed; W (OC, K) is torch's weight as a matrix)
 *   y[n, oc, p]  = out[r, oc] (+ b[oc])     r = the pixel (n, p): a transposing scatter
 * Pixels run across images, so small maps are batched as mcnn_conv2d_forward batches them.
 * Each output is the same sequence of fused multiply-adds as mcnn_conv2d_forward's (the same
 * micro-kernel and K blocks; the bias enters as the GEMM's C input in both), so fp32 packed
 * gives its bits.  Internal (lib/ops/conv2d_packed.c). */
#ifndef MCNN_CONV2D_PACKED_H
#define MCNN_CONV2D_PACKED_H

#include "internal.h"

/* Workspace of the packed forward: a block of rows and its output (floats).  Also enough for
 * the fp32 fallback below when the caller sizes its workspace as the max of this and
 * mcnn_conv2d_lanes_workspace_floats. */
size_t mcnn_conv2d_packed_workspace_floats(const mcnn_conv2d_shape *s);

/* y = conv(x, w) + b through pk when pk is not NULL (groups 1 only); else, for groups > 1, or
 * when the packed GEMM cannot get its buffers, mcnn_conv2d_forward_lanes on w. */
void mcnn_conv2d_forward_packed(float *y, const float *x, const float *w, const mcnn_packed_b *pk,
                                const float *b, const mcnn_conv2d_shape *s, float *workspace,
                                int lanes);

#endif
