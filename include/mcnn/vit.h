/* Vision Transformer (Dosovitskiy et al., 2020) as torchvision's VisionTransformer / vit_b_16:
 *   patches -> linear (the stride = kernel = patch conv) -> class token -> + positional embedding
 *   -> L pre-norm blocks (exact GELU, layer norm eps 1e-6) -> layer norm -> class token -> head.
 * Loads torchvision names (conv_proj, class_token, encoder.pos_embedding,
 * encoder.layers.encoder_layer_N.*, encoder.ln, heads.head) and timm names (patch_embed.proj,
 * cls_token, pos_embed, blocks.N.*, norm, head); other image sizes resample the positional
 * embedding's grid (bicubic, as torchvision's interpolate_embeddings). */
#ifndef MCNN_VIT_H
#define MCNN_VIT_H

#include "core.h"
#include "lowp.h"
#include "params.h"
#include "session.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcnn_vit_config {
    int image_size, patch_size, in_channels;
    int width, layers, heads, mlp_dim;
    int num_classes;
    float ln_eps;
} mcnn_vit_config;

/* ViT-B/16: 224², patch 16, width 768, 12 layers, 12 heads, MLP 3072, eps 1e-6. */
MCNN_API mcnn_vit_config mcnn_vit_b16_config(int num_classes);

typedef struct mcnn_vit mcnn_vit;

/* A new model with torchvision's initialisation (seeded). */
MCNN_API mcnn_status mcnn_vit_create(mcnn_vit **out, const mcnn_vit_config *cfg, uint64_t seed);

/* Options for loading; zero means "as in the checkpoint". */
typedef struct mcnn_vit_load_options {
    int image_size;   /* resample the positional embedding to this size               */
    int num_classes;  /* a new, zero-initialised head of this size (fine-tuning)      */
    int heads;        /* the head count; wins over anything the file says (below)     */
    /* Inference precision (mcnn_vit_set_precision).  With inference_only = 1 every block
     * matrix is packed in `precision` (FP32 too) as soon as it is read and its fp32 copy is
     * never kept (as mcnn_vit_release_training_weights), so neither the model nor the load's
     * peak ever holds all of them in fp32.  Without inference_only, BF16 or INT8 packs after
     * the load as mcnn_vit_set_precision does (FP32, 0: the default, unpacked). */
    mcnn_precision precision;
    int inference_only;
} mcnn_vit_load_options;

/* The head count cannot be read from the shapes.  It is, in order: opt->heads when not 0; the
 * metadata's "heads" (what mcnn_vit_save writes), or "num_heads" (torchvision's
 * VisionTransformer argument), as a key of its own or inside the "config" JSON; else the guess
 * width / 64, true of ViT-Ti/S/B/L/H.  A guess that divides the width but is wrong cannot be
 * detected (the shapes are the same): give heads for other models.  When width is no multiple
 * of 64 and nothing says, the load fails saying so.  A metadata value that is no positive
 * divisor of the width fails naming the key.
 * The file is untrusted: block indices must run from 0 without gaps (at most 1024 blocks),
 * every tensor of the configuration read off the shapes must be there with its shape before
 * anything is allocated, and nothing else may be (optimizer state aside). */
MCNN_API mcnn_status mcnn_vit_load(mcnn_vit **out, const char *path,
                                   const mcnn_vit_load_options *opt);
/* Save as safetensors with torchvision names and the config in the metadata. */
MCNN_API mcnn_status mcnn_vit_save(const mcnn_vit *m, const char *path);
MCNN_API void mcnn_vit_free(mcnn_vit *m);

MCNN_API const mcnn_vit_config *mcnn_vit_get_config(const mcnn_vit *m);
MCNN_API mcnn_params *mcnn_vit_params(mcnn_vit *m);

/* Inference precision (docs/precision.md): every transformer block's four matrices (attention
 * in/out projections, MLP fc1/fc2) are packed once, by this call, into the read-only model, and
 * every inference forward and session uses them: FP32 packed gives the same bits as the
 * default, BF16 and INT8 approximate it.  The patch embedding, layer norms, softmax, GELU,
 * residuals and the head stay fp32.  Training forwards ignore the packed copy.  Call it
 * before the first forward (not while sessions run) and again after the weights change
 * (training, loading): it packs the weights as they are now.  Until then the model runs fp32
 * unpacked (the default; mcnn_vit_precision reports FP32). */
MCNN_API mcnn_status mcnn_vit_set_precision(mcnn_vit *m, mcnn_precision p);
MCNN_API mcnn_precision mcnn_vit_precision(const mcnn_vit *m);
/* Inference only, after mcnn_vit_set_precision: the fp32 copies of the packed matrices are
 * released (their memory goes back to the OS), so a BF16 model holds half and an INT8 model a
 * quarter of their bytes.  The layer norms, biases, embeddings and the head stay fp32.  From
 * then on the model runs inference forwards only: a training forward, a backward, save, or
 * set_precision to another precision fail with MCNN_ERR_ARG (the outputs are unchanged, bit
 * for bit).  The released rows of mcnn_vit_params(m)->data no longer hold the weights.
 * MCNN_ERR_ARG before any set_precision.  The load option inference_only does the same while
 * loading. */
MCNN_API mcnn_status mcnn_vit_release_training_weights(mcnn_vit *m);

/* Threads: the weights (mcnn_vit_params(m)->data) are read-only during any forward.  For
 * several threads on one model, give each its own session (below, and mcnn/session.h).  The
 * calls below that take the model itself use the model's own session and its gradients: one
 * thread at a time, and never while sessions of the model run if they train (the optimizer
 * writes the weights).
 *
 * logits (B, num_classes) from images (B, in_channels, image_size, image_size), normalised.
 * train = 1 keeps every block's activations for mcnn_vit_backward (memory grows with the
 * layers); train = 0 reuses one set.  The activation arena is sized on the first call for a
 * batch size and resized only when B or the mode changes. */
MCNN_API mcnn_status mcnn_vit_forward(mcnn_vit *m, float *logits, const float *images, int B,
                                      int train);
/* Accumulates into the parameter gradients (mcnn_vit_params(m)->grad) from dlogits (B, K),
 * for the batch of the last mcnn_vit_forward with train = 1. */
MCNN_API mcnn_status mcnn_vit_backward(mcnn_vit *m, const float *dlogits);

/* The class token's final feature (B, width) of the last mcnn_vit_forward: what the head reads.
 * Owned by the model; valid until its next forward or mcnn_vit_free (NULL before the first). */
MCNN_API const float *mcnn_vit_features(const mcnn_vit *m);
/* Output of block l (B, T, width) of the last forward with train = 1 (else NULL); for tests.
 * Same lifetime as mcnn_vit_features. */
MCNN_API const float *mcnn_vit_block_output(const mcnn_vit *m, int l);

/* ---- sessions: one per thread on a shared model (inference) ------------------------------
 * A session for m: its own activations, nothing allocated until the first forward.  m must
 * outlive it and not change while it runs. */
MCNN_API mcnn_status mcnn_vit_session_create(mcnn_session **out, const mcnn_vit *m);
/* mcnn_vit_forward with train = 0, into the session: the same bits. */
MCNN_API mcnn_status mcnn_vit_session_forward(mcnn_session *s, float *logits,
                                              const float *images, int B);
/* The class token features (B, width) of the session's last forward; owned by the session,
 * valid until its next forward or mcnn_session_free.  NULL before the first forward or for a
 * session of another model type. */
MCNN_API const float *mcnn_vit_session_features(const mcnn_session *s);

#ifdef __cplusplus
}
#endif
#endif
