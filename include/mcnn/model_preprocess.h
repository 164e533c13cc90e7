/* A model knows its preprocessing: from a decoded mcnn_image to the normalised input its forward
 * takes, and from its outputs to the scores its checkpoint means.
 *
 *   mcnn_classifier *c;   mcnn_image img;   int C, H, W;
 *   mcnn_classifier_load(&c, "model.safetensors", NULL);
 *   mcnn_image_load(&img, "cat.jpg");
 *   mcnn_classifier_input_shape(c, &C, &H, &W);               // one image: C * H * W floats
 *   mcnn_classifier_preprocess_image(c, &img, input);
 *   mcnn_classifier_forward(c, logits, input, 1, 0);
 *   mcnn_classifier_scores(c, logits, scores, 1);              // softmax, or sigmoid if multi-label
 *   mcnn_topk(best, scores, K, 5);                             // data.h: the 5 best classes
 *
 * The settings are the model's mcnn_preprocess_config (preprocess.h; a classifier's come from its
 * checkpoint's "preprocess" metadata, CLIP's are clip._transform(image_size)), so the result is
 * bit for bit mcnn_preprocess() with them: mcnn_classifier_get_preprocess(c) and
 * mcnn_clip_preprocess_config(m) give them, for callers that batch or change them.
 * Thread safety: all of them only read the model; out / scores are the caller's. */
#ifndef MCNN_MODEL_PREPROCESS_H
#define MCNN_MODEL_PREPROCESS_H

#include "classifier.h"
#include "clip.h"
#include "image.h"
#include "preprocess.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- classifier (ResNet or ViT, with its checkpoint's settings) -------------------------- */
/* The input one image becomes: (C, H, W) = (channels, size, size). */
MCNN_API void mcnn_classifier_input_shape(const mcnn_classifier *c, int *channels, int *height,
                                          int *width);
/* resize -> center crop -> convert -> normalise, into out (C, H, W) as input_shape gives; any
 * image size and 1 or 3 channels.  The classifier's settings must crop to its size (a settings
 * change through mcnn_classifier_set_preprocess that does not is refused: MCNN_ERR_SHAPE). */
MCNN_API mcnn_status mcnn_classifier_preprocess_image(const mcnn_classifier *c,
                                                      const mcnn_image *img, float *out);
/* scores (N, K) from logits (N, K), K = num_classes: a sigmoid per class when the checkpoint is
 * multi-label (metadata "multilabel" "1"), else the softmax over the row.  scores may be
 * logits (in place). */
MCNN_API mcnn_status mcnn_classifier_scores(const mcnn_classifier *c, const float *logits,
                                            float *scores, int N);

/* ---- CLIP ---------------------------------------------------------------------------------- */
/* clip._transform(image_size): what mcnn_clip_encode_image / mcnn_clip_image_embeddings take. */
MCNN_API mcnn_preprocess_config mcnn_clip_preprocess_config(const mcnn_clip *m);
MCNN_API void mcnn_clip_input_shape(const mcnn_clip *m, int *channels, int *height, int *width);
/* into out (3, R, R), R = image_size. */
MCNN_API mcnn_status mcnn_clip_preprocess_image(const mcnn_clip *m, const mcnn_image *img,
                                                float *out);

#ifdef __cplusplus
}
#endif
#endif
