/* The ViT's private layout: parameter views and the planned activations. */
#ifndef MCNN_VIT_INTERNAL_H
#define MCNN_VIT_INTERNAL_H

#include "mcnn.h"
#include "mcnn/vit.h"
#include "../nn/patch_embed.h"
#include "../nn/token_pool.h"
#include "../nn/transformer_stack.h"

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
    patch_embed_acts embed;     /* patches .. x (B, T, C): the stack's input  */
    stack_acts stack;           /* the blocks' activations and outputs        */
    token_pool_acts pool;       /* the class token rows, their layer norm: y = features (B, C) */
} vit_acts;

struct mcnn_vit {
    mcnn_vit_config cfg;
    int T, P;                   /* tokens (1 + patches), patches              */
    mcnn_params params;
    vit_tensors w, g;
    mcnn_precision precision;   /* of the packed blocks (mcnn_vit_set_precision)   */
    block_packed *packed;       /* the blocks' matrices packed once, or NULL (fp32 as trained) */
    mcnn_pack_list packing;     /* those matrices: fp32 views and packed slots      */
    int inference_only;         /* their fp32 copies released (w.blocks' views NULL) */
    patch_embed_cfg embed;
    stack_cfg stack;            /* the encoder: layers, width, heads, MLP, GELU, eps */
    vit_acts acts;
};

/* Check cfg and build the table for it (no allocation of values). */
mcnn_status mcnn_vit_build_table(mcnn_params *p, const mcnn_vit_config *cfg);
/* A model with its table allocated and bound, values zero (not yet resident). */
mcnn_status mcnn_vit_new(mcnn_vit **out, const mcnn_vit_config *cfg);
/* Before an inference-only load: the blocks' matrices planned for packing in p as the load
 * reads them (mcnn_params_load_then with &m->packing), their fp32 copies released then. */
mcnn_status mcnn_vit_plan_inference_only(mcnn_vit *m, mcnn_precision p);
/* Point w and g at the values and gradients; allocate the per-block arrays. */
mcnn_status mcnn_vit_bind(mcnn_vit *m);

/* Activations (vit_run.c): a new, empty set (sized by the first forward), and its release. */
mcnn_status mcnn_vit_acts_init(vit_acts *a, const mcnn_vit *m);
void mcnn_vit_acts_free(vit_acts *a);
/* The head's gradients alone (a linear probe), after a forward in either mode. */
mcnn_status mcnn_vit_backward_head(mcnn_vit *m, const float *dlogits);
/* The forward into the activations a (the model is only read). */
mcnn_status mcnn_vit_run_forward(const mcnn_vit *m, vit_acts *a, float *logits,
                                 const float *images, int B, int train);

#endif
