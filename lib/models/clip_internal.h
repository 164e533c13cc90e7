/* CLIP's private layout: parameter views for the two towers and their planned activations. */
#ifndef MCNN_CLIP_INTERNAL_H
#define MCNN_CLIP_INTERNAL_H

#include "mcnn.h"
#include "mcnn/clip.h"
#include "../nn/patch_embed.h"
#include "../nn/token_pool.h"
#include "../nn/transformer_stack.h"

/* Pointers to every parameter by role; built over the values and again over the gradients. */
typedef struct clip_tensors {
    /* image tower */
    float *conv1;               /* (W, 3·P·P): visual.conv1.weight (W, 3, P, P) flattened */
    float *class_emb;           /* (W)                                                     */
    float *vpos;                /* (T, W)                                                  */
    float *ln_pre_w, *ln_pre_b; /* (W)                                                     */
    float *ln_post_w, *ln_post_b;
    float *vproj;               /* (W, E): used as x @ proj                                */
    block_grads *vblocks;
    /* text tower */
    float *tok_emb;             /* (V, w)                                                  */
    float *tpos;                /* (context, w)                                            */
    float *ln_final_w, *ln_final_b;
    float *tproj;               /* (w, E)                                                  */
    block_grads *tblocks;
    float *logit_scale;         /* (1): the log of the scale                               */
} clip_tensors;

typedef struct clip_vision_acts {
    int B;                      /* the batch the arrays are carved for          */
    patch_embed_acts embed;     /* patches .. x (B, T, W): class token + patches, + positions */
    float *pre, *pre_mean, *pre_rstd; /* (B, T, W) (B·T) (B·T): ln_pre, the stack's input */
    stack_acts stack;           /* the blocks' activations and outputs          */
    token_pool_acts pool;       /* the class token rows, ln_post: y (B, W)       */
    float *dx;                  /* (B, T, W) backward scratch (training only)   */
} clip_vision_acts;

typedef struct clip_text_acts {
    int N, T;                   /* batch, positions computed (last EOT + 1)     */
    int32_t *ids;               /* (N, T) the computed positions' ids           */
    int32_t *eot;               /* (N) pooling position of each text            */
    float *x0, *x;              /* (N, T, w) token embeddings, + positions      */
    stack_acts stack;
    token_pool_acts pool;       /* the EOT rows of the last output, ln_final: y (N, w) */
} clip_text_acts;

/* Activations of the contrastive head, for the training step. */
typedef struct clip_head_acts {
    float *img_feat, *txt_feat;   /* (N, E) tower outputs                    */
    float *img_n, *txt_n;         /* (N, E) normalised                       */
    float *img_norm, *txt_norm;   /* (N)                                     */
    float *logits;                /* (N, N)                                  */
    float *probs_i, *probs_t;     /* (N, N)                                  */
    float *dimg_feat, *dtxt_feat, *dimg_n, *dtxt_n, *dlogits;
} clip_head_acts;

/* One arena per purpose, sized for a (batch, mode) and reused while those stay the same. */
typedef struct clip_plan {
    mcnn_arena arena;
    int batch, train;
    int32_t *ints;              /* ids and eot for the text tower               */
} clip_plan;

/* Both towers' activations and their arenas: everything a forward writes. */
typedef struct clip_acts {
    clip_vision_acts va;
    clip_text_acts ta;
    clip_plan vplan, tplan;
} clip_acts;

/* The layer norms' eps when the configuration leaves it 0: PyTorch's default, as OpenAI's
 * LayerNorm subclass keeps it. */
#define CLIP_DEFAULT_LN_EPS 1e-5f

struct mcnn_clip {
    mcnn_clip_config cfg;
    int vT, vP;                 /* image tokens (1 + patches), patches          */
    mcnn_params params;
    clip_tensors w, g;
    mcnn_precision precision;   /* of the packed blocks (mcnn_clip_set_precision)  */
    block_packed *vpacked, *tpacked; /* the towers' blocks packed once, or NULL (fp32 as trained) */
    mcnn_embedding_lowp *tok_lowp; /* the token embedding in bf16 / int8, or NULL (fp32) */
    mcnn_pack_list packing;     /* those: fp32 views and packed slots              */
    int inference_only;         /* their fp32 copies released (their views NULL)   */
    patch_embed_cfg vembed;
    stack_cfg vstack, tstack;   /* the towers' blocks: widths, heads, QuickGELU, eps, causal */
    clip_acts acts;             /* the model's own (the calls without a session) */
    clip_head_acts ha;
    clip_plan hplan;
    int trained_N;              /* batch of the last mcnn_clip_train_forward, 0 if none */
};

mcnn_status mcnn_clip_build_table(mcnn_params *p, const mcnn_clip_config *cfg);
mcnn_status mcnn_clip_new(mcnn_clip **out, const mcnn_clip_config *cfg);
/* Before an inference-only load: both towers' block matrices (and in bf16 / int8 the token
 * embedding) planned for packing in p as the load reads them (into &m->packing), their fp32
 * copies released then. */
mcnn_status mcnn_clip_plan_inference_only(mcnn_clip *m, mcnn_precision p);

/* Towers (clip_vision.c, clip_text.c): the forward into the activations a (the model is only
 * read); train = 1 keeps everything for the backward, which uses the model's own activations. */
mcnn_status mcnn_clip_vision_forward(const mcnn_clip *m, clip_acts *a, float *features,
                                     const float *images, int B, int train);
void mcnn_clip_vision_backward(mcnn_clip *m, const float *dfeatures);
mcnn_status mcnn_clip_text_forward(const mcnn_clip *m, clip_acts *a, float *features,
                                   const int32_t *tokens, int N, int train);
void mcnn_clip_text_backward(mcnn_clip *m, const float *dfeatures);

/* A tower's projection: features (N, E) = y (N, W) @ proj (W, E), as OpenAI's x @ proj; the
 * backward writes dy and accumulates dproj += yᵀ @ dfeatures. */
void mcnn_clip_project_forward(float *features, const float *y, const float *proj, int N, int W,
                               int E);
void mcnn_clip_project_backward(float *dy, float *dproj, const float *dfeatures, const float *y,
                                const float *proj, int N, int W, int E);

/* Activations: a new, empty set (sized by the first forward), and its release (clip.c). */
mcnn_status mcnn_clip_acts_init(clip_acts *a, const mcnn_clip *m);
void mcnn_clip_acts_free(clip_acts *a);
/* An intermediate of the last forward into a (see mcnn_clip_intermediate). */
const float *mcnn_clip_acts_intermediate(const mcnn_clip *m, const clip_acts *a,
                                         const char *name, int *T);

/* Make sure plan's arena holds `floats` floats and its ints `ints` int32s; reallocates only
 * when (batch, train) changed or the sizes grew. */
mcnn_status mcnn_clip_plan_reserve(clip_plan *plan, size_t floats, size_t ints, int batch,
                                   int train);

#endif
