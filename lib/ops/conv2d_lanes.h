/* Convolution over a batch split across threads ("lanes"), for the training step of a CNN:
 * the plain mcnn_conv2d_forward / _backward (ops.h) multithread every GEMM of every image, and
 * the threads meet several times per image; here each thread takes a share of the images (of
 * the weight gradient's columns, for dw) with single-threaded GEMMs, and they meet once per
 * call.  Same arguments and the same bits as the plain functions (tests/test_conv2d.c).
 * workspace: mcnn_conv2d_lanes_workspace_floats(s, lanes) floats.  lanes < 2 is the plain op;
 * lanes above mcnn_get_threads() run as that many.
 * Internal (lib/ops/conv2d.c). */
#ifndef MCNN_CONV2D_LANES_H
#define MCNN_CONV2D_LANES_H

#include "internal.h"

size_t mcnn_conv2d_lanes_workspace_floats(const mcnn_conv2d_shape *s, int lanes);
void mcnn_conv2d_forward_lanes(float *y, const float *x, const float *w, const float *b,
                               const mcnn_conv2d_shape *s, float *workspace, int lanes);
void mcnn_conv2d_backward_lanes(float *dx, float *dw, float *db, const float *dy, const float *x,
                                const float *w, const mcnn_conv2d_shape *s, float *workspace,
                                int lanes);

#endif
