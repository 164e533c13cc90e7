/* Fuzz the PPM/PGM decoder (lib/io/ppm.c: P2, P3, P5, P6, any maxval). */
#include "fuzz_image_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode_and_use(mcnn_ppm_decode, data, size);
    return 0;
}
