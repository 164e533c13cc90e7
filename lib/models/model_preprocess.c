/* A model's preprocessing and scores; see include/mcnn/model_preprocess.h.  Thin on purpose: the
 * settings live with the model (classifier.c reads them from the checkpoint), the pixels are
 * lib/io/preprocess.c's. */
#include "internal.h"

#include <math.h>

void mcnn_classifier_input_shape(const mcnn_classifier *c, int *channels, int *height, int *width)
{
    const int size = mcnn_classifier_image_size(c);
    *channels = mcnn_classifier_in_channels(c);
    *height = size;
    *width = size;
}

mcnn_status mcnn_classifier_preprocess_image(const mcnn_classifier *c, const mcnn_image *img,
                                             float *out)
{
    if (!c || !img || !out)
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_classifier_preprocess_image: NULL argument");
    const mcnn_preprocess_config *p = mcnn_classifier_get_preprocess(c);
    const int size = mcnn_classifier_image_size(c), channels = mcnn_classifier_in_channels(c);
    if (p->crop != size || p->channels != channels)
        return mcnn_set_error(MCNN_ERR_SHAPE, "mcnn_classifier_preprocess_image: the settings "
                              "give %d x %d x %d, the model takes %d x %d x %d", p->channels,
                              p->crop, p->crop, channels, size, size);
    return mcnn_preprocess(out, img, p);
}

mcnn_status mcnn_classifier_scores(const mcnn_classifier *c, const float *logits, float *scores,
                                   int N)
{
    if (!c || !logits || !scores || N < 0)
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_classifier_scores: NULL argument or N < 0");
    const int K = mcnn_classifier_num_classes(c);
    if (mcnn_classifier_multilabel(c))
        for (size_t k = 0; k < (size_t)N * K; k++) scores[k] = 1.0f / (1.0f + expf(-logits[k]));
    else
        mcnn_softmax_forward(scores, logits, N, K);
    return MCNN_OK;
}

mcnn_preprocess_config mcnn_clip_preprocess_config(const mcnn_clip *m)
{
    return mcnn_preprocess_clip(mcnn_clip_get_config(m)->image_size);
}

void mcnn_clip_input_shape(const mcnn_clip *m, int *channels, int *height, int *width)
{
    *channels = 3;
    *height = *width = mcnn_clip_get_config(m)->image_size;
}

mcnn_status mcnn_clip_preprocess_image(const mcnn_clip *m, const mcnn_image *img, float *out)
{
    if (!m || !img || !out)
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_clip_preprocess_image: NULL argument");
    const mcnn_preprocess_config p = mcnn_clip_preprocess_config(m);
    return mcnn_preprocess(out, img, &p);
}
