/* Fuzz the IDX data-set loader (lib/data/idx.c): an images file (N, H, W) and a labels file (N),
 * either gzipped, given as one input cut at FUZZ_SEPARATOR; then one batch of what loaded. */
#include "fuzz.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *im, *lb;
    size_t im_size, lb_size;
    if (!fuzz_split(data, size, &im, &im_size, &lb, &lb_size)) return 0;
    const char *im_path = fuzz_file(0, im, im_size), *lb_path = fuzz_file(1, lb, lb_size);
    mcnn_dataset ds;
    if (!im_path || !lb_path || mcnn_dataset_load_idx(&ds, im_path, lb_path) != MCNN_OK) return 0;
    /* the first and the last sample through the training batch path, at 8 x 8 */
    int idx[2] = {0, ds.count - 1};
    mcnn_transform tf = mcnn_transform_default(8, 1);
    float x[2 * 8 * 8];
    int32_t labels[2];
    if (mcnn_dataset_batch(&ds, idx, 2, &tf, 0, NULL, x, labels, NULL) == MCNN_OK)
        for (int i = 0; i < 2; i++)
            if (labels[i] < 0 || labels[i] >= ds.num_classes) abort();
    mcnn_dataset_free(&ds);
    return 0;
}
