/* The image drivers' shared check: whatever a decoder accepted must be a whole image that the
 * rest of the pipeline can take (gray -> RGB, the CLIP preprocessing on a small result). */
#ifndef MCNN_FUZZ_IMAGE_COMMON_H
#define MCNN_FUZZ_IMAGE_COMMON_H

#include "fuzz.h"

#include <stdlib.h>

/* Decoded images above this many pixels are not pushed through preprocessing (slow, and
 * preprocessing is not what these drivers fuzz). */
#define FUZZ_MAX_PREPROCESS_PIXELS (1 << 16)

typedef mcnn_status (*fuzz_decoder)(mcnn_image *img, const unsigned char *data, size_t size,
                                    const char *name);

static inline void fuzz_decode_and_use(fuzz_decoder decode, const uint8_t *data, size_t size)
{
    mcnn_image img = {0};
    if (decode(&img, data, size, "fuzz") != MCNN_OK) return;
    fuzz_touch(img.pixels, (size_t)img.width * img.height * img.channels);
    if ((int64_t)img.width * img.height <= FUZZ_MAX_PREPROCESS_PIXELS &&
        mcnn_image_to_rgb(&img) == MCNN_OK) {
        mcnn_preprocess_config cfg = mcnn_preprocess_clip(16);
        int C, H, W;
        if (mcnn_preprocess_shape(&C, &H, &W, img.width, img.height, &cfg) == MCNN_OK) {
            float *x = malloc(sizeof(float) * (size_t)C * H * W);
            if (x) mcnn_preprocess(x, &img, &cfg);
            free(x);
        }
    }
    mcnn_image_free(&img);
}

#endif
