/* Multi-head self-attention as one reusable block, exactly torch.nn.MultiheadAttention(C, NH,
 * batch_first=True) called as mha(x, x, x, need_weights=False[, attn_mask=causal]):
 *   qkv = x·in_projᵀ + in_proj_b       (B, T, 3C)   step 1
 *   att = attention(qkv)               (B, T, C)    step 2  (softmax(q·kᵀ/√HS)·v per head)
 *   out = att·out_projᵀ + out_proj_b   (B, T, C)    step 3
 * Step k of the forward is undone by step k of the backward, which runs 3 -> 1.
 * Internal for now (not exported): the transformer block inlines the same three calls. */
#ifndef MCNN_MHSA_H
#define MCNN_MHSA_H

#include "mcnn.h"

/* Views into a parameter block, PyTorch's names and layouts. */
typedef struct mhsa_params {
    const float *in_proj_w;   /* (3C, C): rows [q | k | v] */
    const float *in_proj_b;   /* (3C)                      */
    const float *out_proj_w;  /* (C, C)                    */
    const float *out_proj_b;  /* (C)                       */
} mhsa_params;

/* The same layout over a gradient block; any member may be NULL (not wanted). */
typedef struct mhsa_grads {
    float *in_proj_w, *in_proj_b, *out_proj_w, *out_proj_b;
} mhsa_grads;

/* What the forward keeps for the backward.  The same struct over another block is the
 * backward's scratch: d->qkv, d->att hold the activation gradients, d->probs is the attention
 * backward's workspace. */
typedef struct mhsa_acts {
    float *qkv;    /* (B, T, 3C)                            */
    float *probs;  /* (B, NH, T, T) softmax(q·kᵀ/√HS)       */
    float *att;    /* (B, T, C) heads side by side          */
} mhsa_acts;

/* Size, then point: with base == NULL only counts; returns the floats the acts take (each
 * array rounded up to 16 floats, so a 64-byte aligned base keeps them all aligned). */
size_t mcnn_mhsa_acts_carve(mhsa_acts *a, float *base, int B, int T, int C, int NH);

void mcnn_mhsa_forward(float *out, mhsa_acts *a, const float *x, const mhsa_params *p, int B,
                       int T, int C, int NH, int causal);
/* dx and g are accumulated into (zero them once per step); either may be NULL, and so may any
 * member of g.  d is scratch, carved like a: the backward overwrites it. */
void mcnn_mhsa_backward(float *dx, const mhsa_grads *g, mhsa_acts *d, const float *dout,
                        const float *x, const mhsa_acts *a, const mhsa_params *p, int B, int T,
                        int C, int NH, int causal);

#endif
