/* Fuzz the frame-stream reader (lib/io/ppm_stream.c): the bytes as stdin would bring them,
 * frames read until the clean end or the first error. */
#define _GNU_SOURCE /* fmemopen */
#include "fuzz.h"

#include <stdio.h>

/* Enough frames to go past the first few; a corpus input rarely holds more. */
#define MAX_FRAMES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0; /* fmemopen refuses a zero-size buffer */
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f) return 0;
    mcnn_ppm_stream s;
    mcnn_ppm_stream_init(&s, f, "fuzz");
    for (int i = 0; i < MAX_FRAMES; i++) {
        mcnn_image img = {0};
        int got = 0;
        if (mcnn_ppm_stream_next(&s, &img, &got) != MCNN_OK || !got) break;
        fuzz_touch(img.pixels, (size_t)img.width * img.height * img.channels);
        mcnn_image_free(&img);
    }
    fclose(f);
    return 0;
}
