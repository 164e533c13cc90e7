/* im2col and its adjoint col2im: the data movement that turns a convolution into one GEMM.
 * Internal to lib/ops (conv2d.c); see docs/ops/conv2d.md for the pictures.
 *
 * For one image x (IC, H, W) and an output grid (OH, OW):
 *   col (IC·KH·KW, OH·OW),  col[(c·KH + kh)·KW + kw][oh·OW + ow] = x[c][ih][iw]
 *   with ih = oh·stride_h - pad_h + kh·dil_h,  iw = ow·stride_w - pad_w + kw·dil_w,
 *   and 0 where (ih, iw) falls in the padding.
 * The row order (c, kh, kw) is the order PyTorch's weight (OC, IC/groups, KH, KW) flattens in,
 * so W viewed as (OC, IC·KH·KW) times col is the convolution.  Group g uses the contiguous
 * block of rows g·(IC/groups)·KH·KW onwards. */
#ifndef MCNN_IM2COL_H
#define MCNN_IM2COL_H

#include "internal.h"

/* col (IC·KH·KW, OH·OW) <- x (IC, H, W); uses s->IC, H, W, KH, KW, strides, pads, dilations.
 * ld: distance between rows of col in floats (OH·OW, or more when several images' columns sit
 * side by side in one matrix). */
void mcnn_im2col(float *col, int ld, const float *x, const mcnn_conv2d_shape *s, int OH, int OW);

/* Rows r0 .. r1-1 of the same col, written from col on (row r at col + (r - r0)·ld), on the
 * calling thread: a thread computing only some columns of a weight gradient needs only these. */
void mcnn_im2col_rows(float *col, int ld, const float *x, const mcnn_conv2d_shape *s, int OH,
                      int OW, int r0, int r1);

/* The columns of output rows oh_a .. oh_b-1 only: col (IC·KH·KW, (oh_b - oh_a)·OW), on the
 * calling thread.  A lane convolving a large map a block of output rows at a time keeps its
 * columns in the L2 cache instead of streaming a whole image's through memory. */
void mcnn_im2col_out_rows(float *col, int ld, const float *x, const mcnn_conv2d_shape *s, int OH,
                          int OW, int oh_a, int oh_b);

/* dx (IC, H, W) += col2im(dcol): every column entry is added back to the input pixel it was
 * copied from (entries that came from padding are dropped).  Exactly the transpose of im2col. */
void mcnn_col2im_add(float *dx, const float *dcol, int ld, const mcnn_conv2d_shape *s, int OH,
                     int OW);

#endif
