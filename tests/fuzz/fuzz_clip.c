/* Fuzz the CLIP checkpoint loader (lib/models/clip_load.c): load, then encode one zero image
 * and one short prompt when the towers are small. */
#include "fuzz_models.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    mcnn_clip *m;
    if (!path || mcnn_clip_load(&m, path, NULL) != MCNN_OK) return 0;
    const mcnn_clip_config *c = mcnn_clip_get_config(m);
    float *features = fuzz_zeros((size_t)c->embed_dim);
    const double grid = c->patch_size > 0 ? c->image_size / c->patch_size : 1e9;
    const double vision = fuzz_transformer_macs(c->vision_layers, grid * grid + 1, c->vision_width);
    if (features && vision <= FUZZ_MAX_FORWARD_MACS) {
        float *x = fuzz_zeros((size_t)3 * c->image_size * c->image_size);
        if (x) mcnn_clip_encode_image(m, features, x, 1);
        free(x);
    }
    const double text = fuzz_transformer_macs(c->text_layers, c->context_length, c->text_width);
    if (features && text <= FUZZ_MAX_FORWARD_MACS) {
        /* ids 1, 2, 3, then zeros: the pooled position (the largest id) is the third */
        int32_t *tokens = calloc((size_t)c->context_length, sizeof(int32_t));
        for (int i = 0; tokens && i < 3 && i < c->context_length; i++)
            tokens[i] = i + 1 < c->vocab_size ? i + 1 : 0;
        if (tokens) mcnn_clip_encode_text(m, features, tokens, 1);
        free(tokens);
    }
    free(features);
    mcnn_clip_free(m);
    return 0;
}
