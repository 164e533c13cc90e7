/* Convolution through a weight packed once (include/mcnn/lowp.h): the inference path of a
 * model whose precision was set.  The packed GEMM's rows are the output pixels; it runs on
 * both sides transposed (mcnn_gemm_packed_t), so a block of pixels (whole images when they
 * are small, else a range of output rows of one image) goes:
 *   col  (K, m)   im2col's columns = xᵀ (a pointwise conv's are the input planes, read in
 *                 place for one image), K = IC·KH·KW
 *   y (OC, P)     yᵀ = W · xᵀ written channels-first straight into y for one image; several
 *                 images go to (OC, m) first and are copied plane by plane
 * with no transposes.  Small maps are batched as mcnn_conv2d_forward batches them, so a wide
 * weight serves many pixels.  Each output is the same sequence of fused multiply-adds as
 * mcnn_conv2d_forward's (the same micro-kernel and K blocks; the bias enters as the GEMM's C
 * input in both), so fp32 packed gives its bits.  Internal (lib/ops/conv2d_packed.c). */
#ifndef MCNN_CONV2D_PACKED_H
#define MCNN_CONV2D_PACKED_H

#include "internal.h"

/* Workspace of the packed forward: a block's columns and its output (floats).  Also enough for
 * the fp32 fallback below when the caller sizes its workspace as the max of this and
 * mcnn_conv2d_lanes_workspace_floats. */
size_t mcnn_conv2d_packed_workspace_floats(const mcnn_conv2d_shape *s);

/* y = conv(x, w) + b through pk when pk is not NULL (groups 1 only); else, for groups > 1, or
 * when the packed GEMM cannot get its buffers, mcnn_conv2d_forward_lanes on w (w NULL:
 * released, inference only; then y is NaN, never a plausible wrong number). */
void mcnn_conv2d_forward_packed(float *y, const float *x, const float *w, const mcnn_packed_b *pk,
                                const float *b, const mcnn_conv2d_shape *s, float *workspace,
                                int lanes);

#endif
