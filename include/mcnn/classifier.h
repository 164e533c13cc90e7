/* An image classifier behind one handle: a ResNet or a ViT, its class names, and the
 * preprocessing its inputs need -- what a trainer or an application wants without caring which
 * architecture is inside.
 *
 *   mcnn_classifier *c;
 *   mcnn_classifier_create(&c, &(mcnn_classifier_config){.arch = "resnet-small",
 *                                                        .num_classes = 10, .image_size = 28,
 *                                                        .in_channels = 1}, seed);
 *   mcnn_classifier_forward(c, logits, images, B, 1);  ... mcnn_classifier_backward(c, dlogits);
 *   mcnn_classifier_save(c, "model.safetensors");       // weights + "arch", "labels", ...
 *
 * Architectures by name:
 *   "resnet50"      torchvision's ResNet-50 (ImageNet stem), 224 x 224 by default
 *   "vit-b16"       torchvision's ViT-B/16, 224 x 224 by default
 *   "resnet-small"  basic blocks, 3x3 stem, three stages (width w, 2w, 4w): small images
 *   "vit-small"     a narrow, shallow ViT with small patches: small images
 * The small variants' sizes can be changed with the config's width/depth/patch fields.
 *
 * Checkpoints are safetensors with the model's own names (torchvision's) and metadata:
 *   "arch"       "resnet" or "vit"
 *   "config"     the model's configuration as JSON (ViT: also "heads")
 *   "labels"     the class names, a JSON array of strings
 *   "preprocess" JSON {"size", "resize", "channels", "mean": [..], "std": [..],
 *                "interpolation"}, and the same as flat keys "resize", "crop", "mean", "std"
 *                ("a,b,c"), "interpolation", for readers that want no JSON.
 *   "multilabel" "1" when trained with a sigmoid (BCE) head, else "0".
 * Loading accepts any ResNet or ViT checkpoint the model loaders accept (torchvision, timm),
 * finding the architecture from "arch" or else from the tensor names; tensors named
 * "optimizer.*" (a trainer's state) are ignored. */
#ifndef MCNN_CLASSIFIER_H
#define MCNN_CLASSIFIER_H

#include "core.h"
#include "lowp.h"
#include "params.h"
#include "session.h"
#include "preprocess.h"
#include "safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mcnn_arch { MCNN_ARCH_RESNET, MCNN_ARCH_VIT } mcnn_arch;

typedef struct mcnn_classifier_config {
    const char *arch;   /* "resnet50", "vit-b16", "resnet-small", "vit-small"                */
    int num_classes;
    int image_size;     /* 0: the architecture's default (224, or 28 for the small ones)     */
    int in_channels;    /* 0: 3                                                               */
    /* small variants only; 0: the default.  resnet-small: width = the first stage's width,
     * depth = blocks per stage.  vit-small: width, depth = layers, patch, heads. */
    int width, depth, patch, heads;
} mcnn_classifier_config;

typedef struct mcnn_classifier mcnn_classifier;

/* A new model (seeded initialisation), classes named "0", "1", ... and preprocessing defaults:
 * ImageNet's mean/std for 3 channels, Fashion-MNIST's for 1. */
MCNN_API mcnn_status mcnn_classifier_create(mcnn_classifier **out,
                                            const mcnn_classifier_config *cfg, uint64_t seed);

typedef struct mcnn_classifier_load_options {
    int num_classes;  /* a new head of this size (fine-tuning); 0: the checkpoint's          */
    int image_size;   /* ViT: resample the positional embedding; 0: the checkpoint's         */
    uint64_t seed;    /* for a new head                                                      */
    /* Inference precision and inference only: as mcnn_resnet_load_options /
     * mcnn_vit_load_options (the block weights packed as they are read, their fp32 copies
     * never kept: then save, training and backward fail with MCNN_ERR_ARG). */
    mcnn_precision precision;
    int inference_only;
} mcnn_classifier_load_options;

MCNN_API mcnn_status mcnn_classifier_load(mcnn_classifier **out, const char *path,
                                          const mcnn_classifier_load_options *opt);
MCNN_API mcnn_status mcnn_classifier_save(const mcnn_classifier *c, const char *path);
/* Save with more: extra tensors (n_extra) and metadata pairs (key, value; n_meta pairs) after
 * the classifier's own.  For trainers (optimizer state, progress). */
MCNN_API mcnn_status mcnn_classifier_save_with(const mcnn_classifier *c, const char *path,
                                               const mcnn_st_entry *extra, int n_extra,
                                               const char *const *meta, int n_meta);
MCNN_API void mcnn_classifier_free(mcnn_classifier *c);

MCNN_API mcnn_arch mcnn_classifier_arch(const mcnn_classifier *c);
MCNN_API const char *mcnn_classifier_arch_name(const mcnn_classifier *c); /* "resnet", "vit" */
MCNN_API int mcnn_classifier_num_classes(const mcnn_classifier *c);
MCNN_API int mcnn_classifier_image_size(const mcnn_classifier *c);
MCNN_API int mcnn_classifier_in_channels(const mcnn_classifier *c);
/* The underlying model (mcnn_resnet * or mcnn_vit *), for what this API does not cover. */
MCNN_API void *mcnn_classifier_model(mcnn_classifier *c);

/* Class names: count must be num_classes; copied. */
MCNN_API mcnn_status mcnn_classifier_set_labels(mcnn_classifier *c, const char *const *names,
                                                int count);
MCNN_API const char *mcnn_classifier_label(const mcnn_classifier *c, int k);
/* The preprocessing the inputs need (preprocess.h's one settings type): ToTensor + Normalize of
 * a crop x crop image, crop = the model's image size, after resizing the shorter side to resize
 * for images of another size.  mcnn_classifier_preprocess_image (model_preprocess.h) applies
 * it; set_preprocess copies p (its crop and channels must stay the model's for that call). */
MCNN_API const mcnn_preprocess_config *mcnn_classifier_get_preprocess(const mcnn_classifier *c);
MCNN_API void mcnn_classifier_set_preprocess(mcnn_classifier *c, const mcnn_preprocess_config *p);
/* Scores are sigmoids (multi-label, BCE) rather than a softmax; saved as "multilabel". */
MCNN_API void mcnn_classifier_set_multilabel(mcnn_classifier *c, int multilabel);
MCNN_API int mcnn_classifier_multilabel(const mcnn_classifier *c);

/* The trained parameters (values and gradients) and, for ResNet, the BN running statistics
 * (NULL for ViT). */
MCNN_API mcnn_params *mcnn_classifier_params(mcnn_classifier *c);
MCNN_API mcnn_params *mcnn_classifier_buffers(mcnn_classifier *c);

/* Inference precision of the network inside: mcnn_resnet_set_precision or
 * mcnn_vit_set_precision (the same rules: call it after loading, before the first forward). */
MCNN_API mcnn_status mcnn_classifier_set_precision(mcnn_classifier *c, mcnn_precision p);
MCNN_API mcnn_precision mcnn_classifier_precision(const mcnn_classifier *c);
/* mcnn_resnet_release_training_weights or mcnn_vit_release_training_weights: after
 * set_precision, the fp32 copies of the packed weights are released; the classifier then
 * evaluates only (save, a training forward and backward fail with MCNN_ERR_ARG). */
MCNN_API mcnn_status mcnn_classifier_release_training_weights(mcnn_classifier *c);

/* A linear probe: with freeze = 1 the backbone is fixed (ResNet's BN uses and keeps its running
 * statistics), the forward keeps nothing for a backward through it, and backward fills only the
 * head's gradients.  mcnn_classifier_trainable gives the rows the optimizer should update: the
 * whole table, or only the head's (they are the table's last rows). */
MCNN_API void mcnn_classifier_freeze_backbone(mcnn_classifier *c, int freeze);
MCNN_API int mcnn_classifier_trainable(const mcnn_classifier *c, const mcnn_param **rows);

/* Threads: the calls that take the classifier itself use the network's own session and its
 * gradients: one thread at a time.  Label, preprocess and config getters only read; their
 * strings and structs live as long as the classifier (or until set_labels / set_preprocess).
 * For several threads on one classifier, give each its own session (below).
 *
 * logits (B, num_classes) from images (B, in_channels, S, S), normalised as the preprocess
 * says.  train = 1: batch statistics and everything kept for backward; 0: evaluation. */
MCNN_API mcnn_status mcnn_classifier_forward(mcnn_classifier *c, float *logits,
                                             const float *images, int B, int train);
/* Accumulates into the parameter gradients, for the last forward with train = 1. */
MCNN_API mcnn_status mcnn_classifier_backward(mcnn_classifier *c, const float *dlogits);

/* ---- sessions: one per thread on a shared classifier (evaluation) -------------------------
 * A session for c (over its ResNet or ViT), nothing allocated until the first forward.  c must
 * outlive it and not change while it runs. */
MCNN_API mcnn_status mcnn_classifier_session_create(mcnn_session **out,
                                                    const mcnn_classifier *c);
/* mcnn_classifier_forward with train = 0, into the session: the same bits. */
MCNN_API mcnn_status mcnn_classifier_session_forward(mcnn_session *s, float *logits,
                                                     const float *images, int B);

#ifdef __cplusplus
}
#endif
#endif
