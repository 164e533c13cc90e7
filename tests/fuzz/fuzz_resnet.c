/* Fuzz the ResNet checkpoint loader (lib/models/resnet_load.c): load with the checkpoint's own
 * configuration, then one forward of a 16 x 16 zero image when the model is small. */
#include "fuzz_models.h"

enum { SIDE = 16 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    mcnn_resnet *m;
    if (!path || mcnn_resnet_load(&m, path, NULL) != MCNN_OK) return 0;
    const mcnn_resnet_config *c = mcnn_resnet_get_config(m);
    if (fuzz_resnet_macs(m, SIDE, SIDE) <= FUZZ_MAX_FORWARD_MACS) {
        float *x = fuzz_zeros((size_t)c->in_channels * SIDE * SIDE);
        float *logits = fuzz_zeros((size_t)c->num_classes);
        if (x && logits) mcnn_resnet_forward(m, logits, x, 1, SIDE, SIDE, MCNN_RESNET_EVAL);
        free(x);
        free(logits);
    }
    mcnn_resnet_free(m);
    return 0;
}
