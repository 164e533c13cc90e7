/* Fuzz the safetensors reader (lib/io/safetensors_read.c): open, look every tensor up by name,
 * read the small ones as float32 and as int32, read the metadata. */
#include "fuzz.h"

#include <stdlib.h>

/* Tensors above this many elements are not read (the reader's loop is the same for any size). */
#define MAX_READ_ELEMENTS (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    mcnn_safetensors *st;
    if (!path || mcnn_safetensors_open(&st, path) != MCNN_OK) return 0;
    mcnn_safetensors_meta(st, "format");
    for (int i = 0; i < mcnn_safetensors_count(st); i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
        if (mcnn_safetensors_find(st, t->name) != t) abort(); /* names are unique */
        if (t->numel > MAX_READ_ELEMENTS) continue;
        float *f = malloc(sizeof(float) * (t->numel ? t->numel : 1));
        int32_t *k = malloc(sizeof(int32_t) * (t->numel ? t->numel : 1));
        if (f) mcnn_safetensors_read_f32(st, t, f);
        if (k) mcnn_safetensors_read_i32(st, t, k);
        if (f && t->ndim <= MCNN_ST_MAX_DIMS)
            mcnn_safetensors_load_f32(st, t->name, f, t->ndim, t->shape);
        free(f);
        free(k);
    }
    mcnn_safetensors_close(st);
    return 0;
}
