/* The patch embedding of ViT-B/16 and of CLIP's image tower: images to the tokens a transformer
 * stack reads, forward 1..4 and backward 4..1.
 *   images (B, IC, H, H)
 *   1 patchify      -> patches (B, P, IC·PS·PS)    P = (H / PS)²
 *   2 linear        -> tok (B, P, C)               the stride = kernel = PS conv as a product
 *                                                  (bias: torchvision's conv_proj; CLIP: none)
 *   3 class token   -> x0 (B, T, C)                T = 1 + P
 *   4 + positions   -> x (B, T, C) */
#ifndef MCNN_PATCH_EMBED_H
#define MCNN_PATCH_EMBED_H

#include "internal.h"

typedef struct patch_embed_cfg {
    int IC, H, PS, C;              /* channels, image side, patch side, width */
} patch_embed_cfg;

/* Views of the parameters (the gradients use the same struct over the gradient block). */
typedef struct patch_embed_params {
    float *w, *b;                  /* (C, IC·PS·PS), (C) or NULL */
    float *cls;                    /* (C)                        */
    float *pos;                    /* (T, C)                     */
} patch_embed_params;

typedef struct patch_embed_acts {
    float *patches;                /* (B, P, IC·PS·PS)           */
    float *tok;                    /* (B, P, C)                  */
    float *x0, *x;                 /* (B, T, C)                  */
    float *dtok;                   /* (B, P, C) backward scratch, training only */
} patch_embed_acts;

void mcnn_patch_embed_carve(patch_embed_acts *a, mcnn_carver *c, const patch_embed_cfg *cfg,
                            int B, int train);
/* Images b0 .. b0+n-1 of the batch (one lane); images is the whole batch. */
void mcnn_patch_embed_forward(const patch_embed_acts *a, const patch_embed_params *p,
                              const patch_embed_cfg *cfg, const float *images, int b0, int n);
/* Accumulates the parameter gradients into g from dx (B, T, C), the gradient of x (which is
 * also the gradient of x0); no gradient for the images. */
void mcnn_patch_embed_backward(const patch_embed_params *g, const patch_embed_acts *a,
                               const float *dx, const patch_embed_params *p,
                               const patch_embed_cfg *cfg, int B);

#endif
