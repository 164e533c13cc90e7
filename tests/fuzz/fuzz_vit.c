/* Fuzz the ViT checkpoint loader (lib/models/vit_load.c): load with the checkpoint's own
 * configuration, then one forward of a zero image when the model is small. */
#include "fuzz_models.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    mcnn_vit *m;
    if (!path || mcnn_vit_load(&m, path, NULL) != MCNN_OK) return 0;
    const mcnn_vit_config *c = mcnn_vit_get_config(m);
    if (fuzz_vit_macs(c) <= FUZZ_MAX_FORWARD_MACS) {
        float *x = fuzz_zeros((size_t)c->in_channels * c->image_size * c->image_size);
        float *logits = fuzz_zeros((size_t)c->num_classes);
        if (x && logits) mcnn_vit_forward(m, logits, x, 1, 0);
        free(x);
        free(logits);
    }
    mcnn_vit_free(m);
    return 0;
}
