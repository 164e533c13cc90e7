/* Helpers shared by the model loaders. */
#include "checkpoint.h"

#include <stdlib.h>
#include <string.h>

int mcnn_checkpoint_count_layers(const mcnn_safetensors *st, const char *prefix)
{
    const size_t n = strlen(prefix);
    int layers = 0;
    for (int i = 0; i < mcnn_safetensors_count(st); i++) {
        const char *name = mcnn_safetensors_at(st, i)->name;
        if (strncmp(name, prefix, n) != 0) continue;
        char *end;
        long index = strtol(name + n, &end, 10);
        if (end != name + n && *end == '.' && index >= 0 && index < 100000 && index + 1 > layers)
            layers = (int)index + 1;
    }
    return layers;
}

int mcnn_checkpoint_is_training_state(const char *name)
{
    return strncmp(name, "optimizer.", 10) == 0;
}
