/* Per-frame features from an image model: see extract.c. */
#ifndef MCNN_APPS_SHOTS_EXTRACT_H
#define MCNN_APPS_SHOTS_EXTRACT_H

#include "shots.h"

typedef struct extractor {
    char kind[64];              /* "clip-image-embedding", "vit-pre-logits", "resnet-pooled",
                                   "classifier-logits"                                        */
    int dim;                    /* features per frame                                         */
    int size, channels;         /* model input                                                */
    mcnn_clip *clip;
    mcnn_classifier *cls;
    int logits;                 /* classifier: its logits instead of the pre-logit features   */
    mcnn_preprocess_config pp;
    float *images, *out;        /* (batch, C, S, S), (batch, max(dim, classes))               */
    int batch;
} extractor;

/* output: "features" (CLIP: the L2-normalised image embedding; ViT: the class token after
 * the final LayerNorm, what the head reads, MovieCLIP's "pre_logits"; ResNet: the pooled
 * features) or "logits" (a classifier's logits: frame models' scores for `eval`). */
int extractor_load(extractor *e, const char *model_path, const char *output, int batch);
/* features (n, dim) of n decoded frames (n <= batch).  Returns 0, or -1 with a message. */
int extractor_run(extractor *e, float *features, const mcnn_image *frames, int n, char *err,
                  size_t errsize);
void extractor_free(extractor *e);

#endif
