/* The ViT's private layout: parameter views and the planned activations. */
#ifndef MCNN_VIT_INTERNAL_H
#define MCNN_VIT_INTERNAL_H

#include "mcnn.h"
#include "mcnn/vit.h"
#include "../nn/transformer_block.h"

/* Pointers to every parameter, by role.  Built twice from the table: once over the values,
 * once over the gradients. */
typedef struct vit_tensors {
    float *patch_w, *patch_b;   /* (C, IC·P·P) = conv_proj (C, IC, P, P) flattened, (C) */
    float *cls;                 /* (C)                                                    */
    float *pos;                 /* (T, C)                                                 */
    float *lnf_w, *lnf_b;       /* (C)                                                    */
    float *head_w, *head_b;     /* (K, C), (K)                                            */
    block_grads *blocks;        /* L; block_grads is the mutable twin of block_params      */
} vit_tensors;

/* Activations for one (batch, mode): carved from one arena. */
typedef struct vit_acts {
    int B, train;
    mcnn_arena arena;
    float *patches;             /* (B, P, IC·PS·PS)                           */
    float *tok;                 /* (B, P, C) patch tokens                     */
    float *x0;                  /* (B, T, C) class token + patch tokens       */
    float *x;                   /* (B, T, C) + positional embedding: block 0's input */
    block_acts *blocks;         /* L when training, else 1 reused             */
    float **out;                /* L block outputs (B, T, C); two when not training */
    float *cls;                 /* (B, C) class token rows of the last output */
    float *feat, *feat_mean, *feat_rstd; /* (B, C) (B) (B): final layer norm  */
    /* backward scratch */
    block_acts dblock;
    float *dx_a, *dx_b;         /* (B, T, C) ping-pong                        */
    float *dfeat, *dcls;        /* (B, C)                                     */
    float *dtok;                /* (B, P, C)                                  */
} vit_acts;

struct mcnn_vit {
    mcnn_vit_config cfg;
    int T, P;                   /* tokens (1 + patches), patches              */
    mcnn_params params;
    vit_tensors w, g;
    block_cfg block;
    vit_acts acts;
};

/* Check cfg and build the table for it (no allocation of values). */
mcnn_status mcnn_vit_build_table(mcnn_params *p, const mcnn_vit_config *cfg);
/* Point w and g at the values and gradients; allocate the per-block arrays. */
mcnn_status mcnn_vit_bind(mcnn_vit *m);

#endif
