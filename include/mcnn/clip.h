/* CLIP (Radford et al., 2021) exactly as OpenAI's clip/model.py, ViT image tower:
 *   image: patches -> linear (conv1, no bias) -> class embedding -> + positions -> ln_pre
 *          -> L pre-norm blocks (QuickGELU; layer norms' eps: ln_eps) -> ln_post(class token) -> @ proj
 *   text:  token embedding + positions -> L causal blocks -> ln_final -> the end-of-text
 *          token's feature (the position of the highest id) -> @ text_projection
 *   logits_per_image = exp(logit_scale) · norm(image) · norm(text)ᵀ
 * The configuration is read off the checkpoint's shapes, so ViT-B/32, B/16 and L/14 load alike.
 * Keys may be OpenAI's (visual.conv1.weight, transformer.resblocks.N..., as in OpenCLIP's
 * open_clip_model.safetensors for the openai weights) or Hugging Face CLIPModel's
 * (vision_model.*, text_model.*, separate q/k/v projections). */
#ifndef MCNN_CLIP_H
#define MCNN_CLIP_H

#include "core.h"
#include "lowp.h"
#include "params.h"
#include "session.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcnn_clip_config {
    int embed_dim;
    int image_size, patch_size, vision_width, vision_layers, vision_heads;
    int context_length, vocab_size, text_width, text_layers, text_heads;
    /* Every layer norm of both towers (ln_pre, the blocks' two, ln_post, ln_final) uses this
     * eps.  0 means 1e-5, PyTorch's default that OpenAI's LayerNorm keeps, and what
     * mcnn_clip_load sets (no released CLIP differs; the file does not carry it);
     * mcnn_clip_get_config reports the value in use. */
    float ln_eps;
} mcnn_clip_config;

typedef struct mcnn_clip mcnn_clip;

/* Head counts cannot be read from shapes.  Taken, in order, from these options (when not 0),
 * from the checkpoint's metadata ("vision_heads"; "config" JSON with transformer_heads for the
 * text tower), or as width / 64 (OpenAI's rule for every released model).  As for ViT, block
 * indices must run from 0 without gaps (at most 1024 per tower) and every tensor of the
 * configuration must be in the file with its shape before anything is allocated. */
typedef struct mcnn_clip_load_options {
    int vision_heads, text_heads;
    /* Inference precision (mcnn_clip_set_precision).  With inference_only = 1 every block
     * matrix of both towers is packed in `precision` (FP32 too) as soon as it is read and its
     * fp32 copy is never kept (as mcnn_clip_release_training_weights), so neither the model
     * nor the load's peak ever holds all of them in fp32; text and image embeddings are then
     * both computed in that precision.  Without inference_only, BF16 or INT8 packs after the
     * load as mcnn_clip_set_precision does (FP32, 0: the default, unpacked). */
    mcnn_precision precision;
    int inference_only;
} mcnn_clip_load_options;

MCNN_API mcnn_status mcnn_clip_load(mcnn_clip **out, const char *path,
                                    const mcnn_clip_load_options *opt);
/* A new model with OpenAI's initialisation (seeded), for tests and training from scratch. */
MCNN_API mcnn_status mcnn_clip_create(mcnn_clip **out, const mcnn_clip_config *cfg,
                                      uint64_t seed);
/* Save with OpenAI's names and the config in the metadata. */
MCNN_API mcnn_status mcnn_clip_save(const mcnn_clip *m, const char *path);
MCNN_API void mcnn_clip_free(mcnn_clip *m);
MCNN_API const mcnn_clip_config *mcnn_clip_get_config(const mcnn_clip *m);
MCNN_API mcnn_params *mcnn_clip_params(mcnn_clip *m);
MCNN_API float mcnn_clip_logit_scale(const mcnn_clip *m); /* exp(logit_scale) */

/* Inference precision (docs/precision.md): every transformer block's four matrices (attention
 * in/out projections, MLP fc1/fc2) of both towers are packed once, by this call, into the
 * read-only model, and every inference forward and session uses them: FP32 packed gives the
 * same bits as the default, BF16 and INT8 approximate it.  BF16 and INT8 also store the token
 * embedding's rows that way (bf16 values; int8 with a scale per row), and the text lookup
 * widens them back.  The patch embedding, the positional embeddings, layer norms, softmax,
 * QuickGELU, residuals and the two final projections stay fp32.  Training forwards ignore the
 * packed copies.  Call it before the first
 * forward (not while sessions run) and again after the weights change (training, loading): it
 * packs the weights as they are now.  Until then the model runs fp32 unpacked (the default;
 * mcnn_clip_precision reports FP32). */
MCNN_API mcnn_status mcnn_clip_set_precision(mcnn_clip *m, mcnn_precision p);
MCNN_API mcnn_precision mcnn_clip_precision(const mcnn_clip *m);
/* Inference only, after mcnn_clip_set_precision: the fp32 copies of the packed matrices (and
 * in BF16 / INT8 of the token embedding) are released (their memory goes back to the OS), so a
 * BF16 model holds half and an INT8 model a quarter of their bytes; the other embeddings,
 * layer norms, biases and projections stay fp32.  From then on the model only encodes: the
 * training step, save, or set_precision to another precision fail with MCNN_ERR_ARG (the
 * embeddings are unchanged, bit for bit).  The released
 * rows of mcnn_clip_params(m)->data no longer hold the weights.  MCNN_ERR_ARG before any
 * set_precision.  The load option inference_only does the same while loading. */
MCNN_API mcnn_status mcnn_clip_release_training_weights(mcnn_clip *m);

/* ---- inference ------------------------------------------------------------------------------
 * Threads: the calls here that take the model use its own session (one thread at a time; not
 * while anything trains the model).  For several threads on one model, give each its own
 * session (mcnn_clip_session_*, below): the encoders only read the model.
 *
 * features (B, embed_dim), as encode_image: NOT normalised.  images (B, 3, R, R) normalised with
 * CLIP's mean and std, R = image_size. */
MCNN_API mcnn_status mcnn_clip_encode_image(mcnn_clip *m, float *features, const float *images,
                                            int B);
/* features (N, embed_dim), as encode_text: NOT normalised.  tokens (N, context_length), as
 * clip.tokenize gives them.  Positions after the last end-of-text token in the batch are never
 * computed: under the causal mask they cannot change the pooled feature. */
MCNN_API mcnn_status mcnn_clip_encode_text(mcnn_clip *m, float *features, const int32_t *tokens,
                                           int N);

/* ---- training: the symmetric contrastive loss on N (image, text) pairs ---------------------
 * loss = (CE(logits_per_image, arange) + CE(logits_per_text, arange)) / 2.
 * logits_per_image (N, N) may be NULL.  Keeps what the backward needs. */
MCNN_API mcnn_status mcnn_clip_train_forward(mcnn_clip *m, float *loss, float *logits_per_image,
                                             const float *images, const int32_t *tokens, int N);
/* Accumulates d(loss · dloss)/d(every parameter) into mcnn_clip_params(m)->grad. */
MCNN_API mcnn_status mcnn_clip_train_backward(mcnn_clip *m, float dloss);

/* Intermediates of the last forward, for tests and for finding where a mismatch starts.
 * *T (may be NULL) receives the positions per row, 0 for a pooled (one row per item) result:
 * "visual.ln_pre" (B, T, W), "visual.block0" (B, T, W) (training only), "visual.ln_post" (B, W)
 * with *T = 0, "text.embed" (N, T', w) and "text.block0" (N, T', w) (training only) with T' the
 * positions computed, "text.ln_final" (N, w) with *T = 0: ln_final applied to each text's
 * end-of-text row only (what encode_text multiplies by text_projection).  NULL when not kept.
 * Owned by the model: valid until the next forward of the same tower (encode_image for
 * "visual.*", encode_text for "text.*", a training forward for both) or mcnn_clip_free; the
 * arrays move when the batch size or the mode changes. */
MCNN_API const float *mcnn_clip_intermediate(const mcnn_clip *m, const char *name, int *T);

/* ---- sessions: one per thread on a shared model (inference) -------------------------------
 * A session for m with its own activations for both towers, nothing allocated until the first
 * forward.  m must outlive it and not change while it runs. */
MCNN_API mcnn_status mcnn_clip_session_create(mcnn_session **out, const mcnn_clip *m);
/* mcnn_clip_encode_image / _encode_text into the session: the same bits. */
MCNN_API mcnn_status mcnn_clip_session_encode_image(mcnn_session *s, float *features,
                                                    const float *images, int B);
MCNN_API mcnn_status mcnn_clip_session_encode_text(mcnn_session *s, float *features,
                                                   const int32_t *tokens, int N);
/* mcnn_clip_intermediate of the session's last forwards ("visual.ln_pre", "visual.ln_post",
 * "text.embed", "text.ln_final"); owned by the session, valid until its next forward of the
 * same tower or mcnn_session_free. */
MCNN_API const float *mcnn_clip_session_intermediate(const mcnn_session *s, const char *name,
                                                     int *T);


/* ---- zero-shot classification: prompt ensembling and MovieCLIP's scores ---------------------
 * As in OpenAI's zero-shot notebook: every label is put into each template, the prompts are
 * tokenized (clip.tokenize, no truncation) and encoded, each embedding is normalised, the
 * normalised embeddings of one label are averaged over the templates and the mean is
 * normalised again.  With one template this is just the normalised text feature.  MovieCLIP
 * tags a frame with softmax(100 · cos(image, text)) over its 179 labels.  The two embedding
 * calls run the model's own encoders (its own session): one thread at a time per model. */
struct mcnn_tokenizer;

/* template with every "{label}" (and every Python-style "{}") replaced by label, into dst of
 * size bytes.  MCNN_ERR_ARG when the result does not fit or the template has no placeholder. */
MCNN_API mcnn_status mcnn_clip_format_prompt(char *dst, size_t size, const char *tmpl,
                                             const char *label);
/* out (L, embed_dim): the normalised, template-averaged text embedding of each label.  A prompt
 * too long for the context fails naming the prompt.  Prompts are encoded in batches. */
MCNN_API mcnn_status mcnn_clip_text_embeddings(mcnn_clip *m, const struct mcnn_tokenizer *tok,
                                               float *out, const char *const *labels, int L,
                                               const char *const *templates, int T);
/* out (B, embed_dim): encode_image of normalised images (B, 3, R, R), each row L2-normalised. */
MCNN_API mcnn_status mcnn_clip_image_embeddings(mcnn_clip *m, float *out, const float *images,
                                                int B);
/* scores (B, L) = softmax over the labels of scale · img (B, E) · txtᵀ (L, E), both normalised
 * (cosine similarities); scale 100 for MovieCLIP and OpenAI's zero-shot evaluation. */
MCNN_API void mcnn_clip_zeroshot_scores(float *scores, const float *img, const float *txt, int B,
                                        int L, int E, float scale);

#ifdef __cplusplus
}
#endif
#endif
