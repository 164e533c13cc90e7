/* One pre-norm transformer block, shared by ViT-B/16, the CLIP image tower and (causal,
 * QuickGELU) the CLIP text tower:
 *   h   = x + out_proj(attention(ln1(x)))          x, h, out: (B, T, C)
 *   out = h + fc2(act(fc1(ln2(h))))                 fc1: C -> F, fc2: F -> C (F = 4C usually)
 * Step k of the forward is undone by step k of the backward, which runs 10 -> 1. */
#ifndef MCNN_TRANSFORMER_BLOCK_H
#define MCNN_TRANSFORMER_BLOCK_H

#include "internal.h"
#include "mcnn/lowp.h"

typedef enum block_act { BLOCK_GELU, BLOCK_QUICK_GELU } block_act;

typedef struct block_cfg {
    int C, NH;      /* width, heads (head size C / NH)                   */
    int F;          /* MLP hidden width                                  */
    float eps;      /* layer-norm eps: 1e-6 ViT-B/16, 1e-5 CLIP          */
    int causal;     /* 1: token t attends to tokens <= t (CLIP text)     */
    block_act act;  /* exact GELU (ViT) or QuickGELU (CLIP)              */
} block_cfg;

/* The block's four weight matrices packed once for inference (include/mcnn/lowp.h), in one
 * precision; owned by the model, read-only, shared by its sessions. */
typedef struct block_packed {
    mcnn_packed_b *qkv, *proj, *fc1, *fc2;
} block_packed;

/* Views into a parameter block; the gradients use the same struct over the grad block. */
typedef struct block_params {
    const float *ln1_w, *ln1_b;   /* (C)            */
    const float *qkv_w, *qkv_b;   /* (3C, C), (3C)  */
    const float *proj_w, *proj_b; /* (C, C), (C)    */
    const float *ln2_w, *ln2_b;   /* (C)            */
    const float *fc1_w, *fc1_b;   /* (F, C), (F)    */
    const float *fc2_w, *fc2_b;   /* (C, F), (C)    */
    const block_packed *pk;       /* inference: the matrices above packed, or NULL (fp32
                                     read from the views above, as in training)          */
} block_params;

typedef struct block_grads {
    float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} block_grads;

/* The read-only view of a block's values from the same pointers. */
static inline block_params mcnn_block_params_view(const block_grads *v)
{
    block_params p = {v->ln1_w, v->ln1_b, v->qkv_w, v->qkv_b, v->proj_w, v->proj_b,
                      v->ln2_w, v->ln2_b, v->fc1_w, v->fc1_b, v->fc2_w, v->fc2_b, NULL};
    return p;
}

/* What the forward keeps for the backward.  The same struct over another block holds the
 * activation gradients during the backward. */
typedef struct block_acts {
    float *ln1, *ln1_mean, *ln1_rstd; /* (B,T,C) (B,T) (B,T)               */
    float *qkv;                       /* (B,T,3C)                          */
    float *probs;                     /* (B,NH,T,T) softmax(q·kᵀ/sqrt(HS)) */
    float *att;                       /* (B,T,C) heads side by side        */
    float *proj;                      /* (B,T,C) before its bias (added with the residual) */
    float *h;                         /* (B,T,C) first residual sum        */
    float *ln2, *ln2_mean, *ln2_rstd; /* (B,T,C) (B,T) (B,T)               */
    float *fc1, *act;                 /* (B,T,F)                           */
    float *fc2;                       /* (B,T,C) before its bias (likewise) */
} block_acts;

/* Size, then point: carve the arrays from c (a counting carver only sizes them); returns
 * the floats they take. */
size_t mcnn_block_acts_carve(block_acts *a, mcnn_carver *c, const block_cfg *cfg, int B, int T);

/* The same arrays from image b0 of the batch on (each is (B, ...), image after image): a
 * thread running images b0.. of a batch through the block uses this view. */
block_acts mcnn_block_acts_images(const block_acts *a, const block_cfg *cfg, int T, int b0);

void mcnn_block_forward(float *out, block_acts *a, const float *x, const block_params *p,
                        const block_cfg *cfg, int B, int T);
/* dx and g are accumulated into: zero them once per step.  d is scratch for the activation
 * gradients, carved like a (its probs array is the attention backward's workspace), zeroed here.
 * With an image per thread, the per-image part runs one share of the batch per thread. */
void mcnn_block_backward(float *dx, const block_grads *g, block_acts *d, const float *dout,
                         const float *x, const block_acts *a, const block_params *p,
                         const block_cfg *cfg, int B, int T);

/* The same block over S sequences of their own lengths packed as rows, no padding: sequence s
 * is rows starts[s] - starts[0] .. starts[s+1] - starts[0] - 1 of x, out, dx, dout and of a's
 * arrays (N = starts[S] - starts[0] rows), and attends to its own rows only (attention's ragged
 * variant, include/mcnn/ops.h).  Every per-token step runs over all N rows in one call.  a and
 * d carved for (B, T) hold any S <= B sequences of at most T tokens.  Each sequence gets what
 * mcnn_block_forward / _backward give it alone as a batch of one. */
void mcnn_block_forward_ragged(float *out, block_acts *a, const float *x, const block_params *p,
                               const block_cfg *cfg, int S, const int *starts);
void mcnn_block_backward_ragged(float *dx, const block_grads *g, block_acts *d,
                                const float *dout, const float *x, const block_acts *a,
                                const block_params *p, const block_cfg *cfg, int S,
                                const int *starts);

#endif
