/* Fuzz the classifier checkpoint loader (lib/models/classifier.c, what mcnn-classify and
 * mcnn-train --resume read): load, read labels and preprocessing, then one forward of a zero
 * image at the checkpoint's size when the model is small. */
#include "fuzz_models.h"

static double forward_macs(mcnn_classifier *c)
{
    const int S = mcnn_classifier_image_size(c);
    if (mcnn_classifier_arch(c) == MCNN_ARCH_VIT)
        return fuzz_vit_macs(mcnn_vit_get_config(mcnn_classifier_model(c)));
    return fuzz_resnet_macs(mcnn_classifier_model(c), S, S);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    mcnn_classifier *c;
    if (!path || mcnn_classifier_load(&c, path, NULL) != MCNN_OK) return 0;
    const int K = mcnn_classifier_num_classes(c), S = mcnn_classifier_image_size(c);
    for (int k = 0; k < K; k++)
        if (!mcnn_classifier_label(c, k)) abort();
    const mcnn_preprocess_config *p = mcnn_classifier_get_preprocess(c);
    if (p->crop != S || p->channels != mcnn_classifier_in_channels(c)) abort();
    if (forward_macs(c) <= FUZZ_MAX_FORWARD_MACS) {
        float *x = fuzz_zeros((size_t)mcnn_classifier_in_channels(c) * S * S);
        float *logits = fuzz_zeros((size_t)K);
        if (x && logits) mcnn_classifier_forward(c, logits, x, 1, 0);
        free(x);
        free(logits);
    }
    mcnn_classifier_free(c);
    return 0;
}
