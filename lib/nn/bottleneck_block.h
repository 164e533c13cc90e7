/* ResNet's residual blocks, as torchvision's Bottleneck (v1.5) and BasicBlock:
 *   bottleneck  out = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))) + shortcut(x))
 *               conv1 1×1 IC -> width, conv2 3×3 stride s width -> width, conv3 1×1 width -> 4·width
 *   basic       out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
 *               conv1 3×3 stride s IC -> width, conv2 3×3 width -> width
 *   shortcut(x) = x, or bn_d(conv_d(x)) with conv_d 1×1 stride s (torchvision's downsample.0/1)
 *               when the stride is not 1 or IC is not the output width.
 * x (N, IC, H, W), out (N, OC, OH, OW), OH = (H - 1) / s + 1.
 * Step k of the forward is undone by step k of the backward, which runs backwards. */
#ifndef MCNN_BOTTLENECK_BLOCK_H
#define MCNN_BOTTLENECK_BLOCK_H

#include "internal.h"

typedef enum resblock_kind { RESBLOCK_BOTTLENECK, RESBLOCK_BASIC } resblock_kind;

/* How batch norm runs: with the batch's statistics (training; the running statistics are
 * updated), or with the running statistics as constants (eval, and frozen-BN fine-tuning,
 * whose backward treats BN as the fixed affine map it then is). */
typedef enum resblock_bn { RESBLOCK_BN_BATCH, RESBLOCK_BN_RUNNING } resblock_bn;

/* One block at one input shape: everything its forward and backward need to know. */
typedef struct resblock_cfg {
    resblock_kind kind;
    int N, IC, H, W;            /* input                                                    */
    int width, OC, OH, OW;      /* inner channels, output (OC = 4·width or width)           */
    int stride;                 /* on the 3×3 conv (bottleneck) / the first conv (basic)    */
    int downsample;             /* 1: projection shortcut                                   */
    mcnn_conv2d_shape conv1, conv2, conv3, down; /* conv3: bottleneck only; down: if used   */
    float eps, momentum;        /* batch norm: 1e-5, 0.1                                    */
    int lanes;                  /* threads splitting each conv's batch (conv2d_lanes.h); 1:
                                 * the convs multithread their own GEMMs (init sets 1)       */
} resblock_cfg;

void mcnn_resblock_cfg_init(resblock_cfg *c, resblock_kind kind, int N, int IC, int H, int W,
                            int width, int stride, float eps, float momentum);
/* Largest im2col workspace (floats) any of the block's convs needs, for c->lanes lanes, packed
 * or not. */
size_t mcnn_resblock_workspace_floats(const resblock_cfg *c);

/* One batch norm's tensors, all (C): gain and bias are parameters, the running statistics
 * buffers, and the batch statistics are what a training forward keeps for its backward. */
typedef struct bn_affine { float *w, *b; } bn_affine;
typedef struct bn_running { float *mean, *var; } bn_running;
typedef struct bn_saved { float *mean, *rstd; } bn_saved;

/* Views of the block's parameters (over the values, or over the gradients): conv weights
 * (out, in, KH, KW) and the BN gains and biases.  Absent parts are NULL.  An inference copy
 * may carry the conv weights packed once (include/mcnn/lowp.h); the forward then multiplies
 * by those (lib/ops/conv2d_packed.h), and the backward never reads them. */
typedef struct resblock_params {
    float *conv1_w, *conv2_w, *conv3_w, *down_w; /* conv3: bottleneck; down: projection only */
    bn_affine bn1, bn2, bn3, downbn;
    const mcnn_packed_b *conv1_pk, *conv2_pk, *conv3_pk, *down_pk; /* or NULL: fp32 on *_w */
} resblock_params;

/* The BN running statistics (buffers), in the same order. */
typedef struct resblock_stats {
    bn_running bn1, bn2, bn3, downbn;
} resblock_stats;

/* What the forward keeps for the backward.  The ReLUs run in place (their backward reads their
 * output), so a1 holds bn1's output and then the ReLU's.  The block's output is not in here:
 * the caller passes it (it is the next block's input).
 * The same struct over scratch memory holds the activation gradients during the backward; the
 * BN outputs before their ReLU (b1, b2, b3) and the pre-ReLU sum only exist as gradients. */
typedef struct resblock_acts {
    float *c1, *a1;             /* conv1 out, relu(bn1)                                     */
    float *c2, *a2;             /* conv2 out, relu(bn2) (bottleneck)                        */
    float *c3;                  /* conv3 out (bottleneck) (N, OC, OH, OW)                   */
    float *cd, *sc;             /* downsample conv out, its BN: the shortcut (N, OC, OH, OW) */
    bn_saved s1, s2, s3, sd;    /* batch statistics of bn1, bn2, bn3, the downsample BN     */
    float *b1, *b2, *b3, *sum;  /* gradients only: of bn1, bn2, bn3's outputs and of the sum */
} resblock_acts;

/* Float counts of each array of resblock_acts, so a caller can take maxima over blocks. */
typedef struct resblock_sizes {
    size_t c1, a1, c2, a2, c3, cd, sc, s1, s2, s3, sd, b1, b2, b3, sum; /* s*: channels */
} resblock_sizes;

resblock_sizes mcnn_resblock_sizes(const resblock_cfg *c, int grads);
void mcnn_resblock_sizes_max(resblock_sizes *acc, const resblock_sizes *s);
/* Size, then point: carve the arrays of the given sizes (0: not carved, NULL). */
void mcnn_resblock_acts_carve(resblock_acts *a, mcnn_carver *c, const resblock_sizes *s);

/* bn: BATCH normalises with batch statistics and updates the running ones in st; RUNNING uses
 * st as constants.  workspace: mcnn_resblock_workspace_floats() floats. */
void mcnn_bottleneck_forward(float *out, resblock_acts *a, const float *x,
                             const resblock_params *p, const resblock_stats *st,
                             const resblock_cfg *cfg, resblock_bn bn, float *workspace);
/* dx (may be NULL), g and d are accumulated into: d is scratch for the activation gradients,
 * zeroed here.  dout is the gradient of out; out, x, a, p, st as the forward left them. */
void mcnn_bottleneck_backward(float *dx, const resblock_params *g, resblock_acts *d,
                              const float *dout, const float *out, const float *x,
                              const resblock_acts *a, const resblock_params *p,
                              const resblock_stats *st, const resblock_cfg *cfg, resblock_bn bn,
                              float *workspace);
void mcnn_basic_block_forward(float *out, resblock_acts *a, const float *x,
                              const resblock_params *p, const resblock_stats *st,
                              const resblock_cfg *cfg, resblock_bn bn, float *workspace);
void mcnn_basic_block_backward(float *dx, const resblock_params *g, resblock_acts *d,
                               const float *dout, const float *out, const float *x,
                               const resblock_acts *a, const resblock_params *p,
                               const resblock_stats *st, const resblock_cfg *cfg, resblock_bn bn,
                               float *workspace);

/* Batch norm in either mode, as one call: what the blocks and the stem use.  x, y, res
 * (N, C, HW).  The forward also adds res (NULL: nothing) and applies a ReLU (relu = 1), in the
 * same pass when the statistics are constants: y = relu?(bn(x) + res?). */
void mcnn_resnet_bn_forward(float *y, bn_saved saved, const float *x, const float *res, int relu,
                            bn_affine p, bn_running run, int N, int C, int HW, float momentum,
                            float eps, resblock_bn bn);
void mcnn_resnet_bn_backward(float *dx, bn_affine g, const float *dy, const float *x,
                             bn_affine p, bn_saved saved, bn_running run, int N, int C, int HW,
                             float eps, resblock_bn bn);

#endif
