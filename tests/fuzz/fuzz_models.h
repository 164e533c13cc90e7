/* What the checkpoint drivers share: the cost of one forward, estimated from a loaded model's
 * configuration, and one forward on zeros when that cost is small (FUZZ_MAX_FORWARD_MACS). */
#ifndef MCNN_FUZZ_MODELS_H
#define MCNN_FUZZ_MODELS_H

#include "fuzz.h"

#include <math.h> /* INFINITY */
#include <stdlib.h>

/* Transformer layers on T tokens of width W: the four linear maps (12 W² per token) and the
 * attention products (2 T² W). */
static inline double fuzz_transformer_macs(int layers, double T, double W)
{
    return layers * (12.0 * W * W * T + 2.0 * T * T * W);
}

static inline double fuzz_vit_macs(const mcnn_vit_config *c)
{
    if (c->patch_size <= 0) return INFINITY;
    const double grid = c->image_size / c->patch_size, T = grid * grid + 1;
    return fuzz_transformer_macs(c->layers, T, c->width) +
           T * c->patch_size * c->patch_size * c->in_channels * c->width;
}

/* A convolution weight is applied at most once per input position: parameters × H × W bounds
 * a ResNet's forward from above. */
static inline double fuzz_resnet_macs(mcnn_resnet *m, int H, int W)
{
    return (double)mcnn_resnet_params(m)->total * H * W;
}

/* zeros (n floats), or NULL */
static inline float *fuzz_zeros(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

#endif
