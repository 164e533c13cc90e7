/* Fuzz the PyTorch readers (lib/io/zip.c, pickle.c, torch_read.c) through the one entry every
 * loader uses: any bytes as a weights file (torch.save zip, legacy pickle stream, TorchScript
 * archive or safetensors: the reader tells them apart by content), opened, every tensor read as
 * float32 and raw.  It must refuse or read, never crash, leak, hang or run anything.  Seeds:
 * tests/data/torch/ (good and hostile files made by tests/ref/gen_torch_files.py). */
#include "fuzz.h"

#include <stdlib.h>

/* Tensors above this many bytes are not read (the gather loop is the same for any size). */
#define MAX_READ_BYTES ((size_t)16 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    mcnn_safetensors *st;
    if (!path || mcnn_safetensors_open(&st, path) != MCNN_OK) return 0;
    for (int i = 0; i < mcnn_safetensors_count(st); i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
        if (t->nbytes > MAX_READ_BYTES || t->numel > MAX_READ_BYTES) continue;
        void *buf = malloc(t->numel * sizeof(float) + t->nbytes + 1);
        if (!buf) continue;
        if (mcnn_safetensors_read_raw(st, t, buf) == MCNN_OK) fuzz_touch(buf, t->nbytes);
        mcnn_safetensors_read_f32(st, t, buf);
        free(buf);
    }
    mcnn_safetensors_close(st);
    return 0;
}
