/* Helpers shared by the model loaders. */
#include "internal.h"
#include "checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The index N of "<prefix>N.<...>" (plain decimal, no sign or leading zero), or -1; values past
 * 10^9 come back as 10^9 so the caller can still name them as too large. */
static long layer_index(const char *name, const char *prefix, size_t n)
{
    if (strncmp(name, prefix, n) != 0) return -1;
    const char *d = name + n;
    if (d[0] < '0' || d[0] > '9' || (d[0] == '0' && d[1] != '.')) return -1;
    long v = 0;
    for (; *d >= '0' && *d <= '9'; d++) v = v < 100000000 ? 10 * v + (*d - '0') : 1000000000;
    return *d == '.' ? v : -1;
}

mcnn_status mcnn_checkpoint_count(int *count, const mcnn_safetensors *st, const char *prefix,
                                  int first, int max, const char *what)
{
    const char *path = mcnn_safetensors_path(st);
    const size_t n = strlen(prefix);
    *count = 0;
    unsigned char *seen = calloc((size_t)max, 1);
    if (!seen) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    const char *last = NULL; /* the tensor with the largest index */
    long top = -1;
    for (int i = 0; i < mcnn_safetensors_count(st); i++) {
        const char *name = mcnn_safetensors_at(st, i)->name;
        const long index = layer_index(name, prefix, n);
        if (index < 0) continue;
        if (index < first || index - first >= max) {
            free(seen);
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: tensor '%s' is %s %ld; %ss are numbered "
                                  "%d to %d", path, name, what, index, what, first,
                                  first + max - 1);
        }
        seen[index - first] = 1;
        if (index > top) top = index, last = name;
    }
    const int groups = (int)(top - first + 1);
    for (int g = 0; g < groups; g++)
        if (!seen[g]) {
            free(seen);
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: tensor '%s' is %s %ld, but no tensor of "
                                  "%s %d is there (%ss are numbered from %d without gaps)", path,
                                  last, what, top, what, g + first, what, first);
        }
    free(seen);
    *count = groups > 0 ? groups : 0;
    return MCNN_OK;
}

mcnn_status mcnn_checkpoint_need(const mcnn_st_tensor **t, const mcnn_safetensors *st,
                                 const char *name, int ndim)
{
    const char *path = mcnn_safetensors_path(st);
    *t = mcnn_safetensors_find(st, name);
    if (!*t) return mcnn_set_error(MCNN_ERR_NOT_FOUND, "%s: tensor '%s' is missing", path, name);
    if ((*t)->ndim != ndim)
        return mcnn_set_error(MCNN_ERR_SHAPE, "%s: '%s' has %d dimensions, expected %d", path,
                              name, (*t)->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        if ((*t)->shape[d] < 1 || (*t)->shape[d] > MCNN_CHECKPOINT_MAX_DIM)
            return mcnn_set_error(MCNN_ERR_SHAPE, "%s: '%s' has a dimension of %lld (each must be "
                                  "1 to %d)", path, name, (long long)(*t)->shape[d],
                                  MCNN_CHECKPOINT_MAX_DIM);
    return MCNN_OK;
}

int mcnn_checkpoint_grid(int64_t positions)
{
    const int64_t cells = positions - 1;
    if (cells < 1 || cells > (int64_t)MCNN_CHECKPOINT_MAX_IMAGE * MCNN_CHECKPOINT_MAX_IMAGE)
        return -1;
    int64_t g = 1;
    while ((g + 1) * (g + 1) <= cells) g++; /* at most MAX_IMAGE steps */
    return g * g == cells ? (int)g : -1;
}

int mcnn_checkpoint_is_training_state(const char *name)
{
    return strncmp(name, "optimizer.", 10) == 0;
}
