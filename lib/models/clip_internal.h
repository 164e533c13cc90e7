/* CLIP's private layout: parameter views for the two towers and their planned activations. */
#ifndef MCNN_CLIP_INTERNAL_H
#define MCNN_CLIP_INTERNAL_H

#include "mcnn.h"
#include "mcnn/clip.h"
#include "../nn/transformer_block.h"

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
    float *patches;             /* (B, P, 3·PS·PS)                              */
    float *tok;                 /* (B, P, W)                                    */
    float *x0, *x;              /* (B, T, W) class token + patches, + positions */
    float *pre, *pre_mean, *pre_rstd; /* (B, T, W) (B·T) (B·T): ln_pre, block 0's input */
    block_acts *blocks;         /* layers when training, else 1 reused          */
    float **out;                /* block outputs (B, T, W); 2 when not training */
    float *cls;                 /* (B, W) class token of the last output        */
    float *post, *post_mean, *post_rstd; /* (B, W) (B) (B): ln_post             */
    /* backward scratch (training only) */
    block_acts dblock;
    float *dx_a, *dx_b;         /* (B, T, W)                                    */
    float *dpre, *dx;           /* (B, T, W)                                    */
    float *dpost, *dcls;        /* (B, W)                                       */
    float *dtok;                /* (B, P, W)                                    */
} clip_vision_acts;

typedef struct clip_text_acts {
    int N, T;                   /* batch, positions computed (last EOT + 1)     */
    int32_t *ids;               /* (N, T) the computed positions' ids           */
    int32_t *eot;               /* (N) pooling position of each text            */
    float *x0, *x;              /* (N, T, w) token embeddings, + positions      */
    block_acts *blocks;
    float **out;                /* (N, T, w)                                    */
    float *pooled;              /* (N, w) the EOT rows of the last output       */
    float *fin, *fin_mean, *fin_rstd; /* (N, w) (N) (N): ln_final               */
    block_acts dblock;
    float *dx_a, *dx_b;         /* (N, T, w)                                    */
    float *dfin, *dpooled;      /* (N, w)                                       */
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

struct mcnn_clip {
    mcnn_clip_config cfg;
    int vT, vP;                 /* image tokens (1 + patches), patches          */
    mcnn_params params;
    clip_tensors w, g;
    block_cfg vblock, tblock;
    clip_vision_acts va;
    clip_text_acts ta;
    clip_head_acts ha;
    clip_plan vplan, tplan, hplan;
    int trained_N;              /* batch of the last mcnn_clip_train_forward, 0 if none */
};

mcnn_status mcnn_clip_build_table(mcnn_params *p, const mcnn_clip_config *cfg);
mcnn_status mcnn_clip_new(mcnn_clip **out, const mcnn_clip_config *cfg);

/* Towers (clip_vision.c, clip_text.c).  train = 1 keeps everything for the backward. */
mcnn_status mcnn_clip_vision_forward(mcnn_clip *m, float *features, const float *images, int B,
                                     int train);
void mcnn_clip_vision_backward(mcnn_clip *m, const float *dfeatures);
mcnn_status mcnn_clip_text_forward(mcnn_clip *m, float *features, const int32_t *tokens, int N,
                                   int train);
void mcnn_clip_text_backward(mcnn_clip *m, const float *dfeatures);

/* Make sure plan's arena holds `floats` floats and its ints `ints` int32s; reallocates only
 * when (batch, train) changed or the sizes grew. */
mcnn_status mcnn_clip_plan_reserve(clip_plan *plan, size_t floats, size_t ints, int batch,
                                   int train);

#endif
