/* libFuzzer driver: any bytes as a weights file (PyTorch zip, legacy pickle stream, TorchScript
 * archive or safetensors - the reader tells them apart by content), opened, every tensor read
 * as float32 and raw.  It must refuse or read, never crash, leak or hang.  Seeds: the files in
 * tests/data/torch/ (good and hostile).  The library reads paths, so each input is written to
 * a per-process temporary file first. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/mcnn_fuzz_torch_%d.pt", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t wrote = fwrite(data, 1, size, f);
    fclose(f);
    if (wrote != size) return 0;
    mcnn_safetensors *st;
    if (mcnn_safetensors_open(&st, path) != MCNN_OK) return 0;
    for (int i = 0; i < mcnn_safetensors_count(st); i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
        if (t->nbytes > ((size_t)16 << 20)) continue; /* a legal but huge tensor: not the point */
        void *buf = malloc(t->numel * sizeof(float) + t->nbytes + 1);
        if (!buf) continue;
        mcnn_safetensors_read_f32(st, t, buf);
        mcnn_safetensors_read_raw(st, t, buf);
        free(buf);
    }
    mcnn_safetensors_close(st);
    return 0;
}
