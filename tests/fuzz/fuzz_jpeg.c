/* Fuzz the JPEG decoder (lib/io/jpeg*.c), then the same bytes through the
 * decoder chosen by magic (mcnn_image_decode). */
#include "fuzz_image_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode_and_use(mcnn_jpeg_decode, data, size);
    fuzz_decode_and_use(mcnn_image_decode, data, size);
    return 0;
}
