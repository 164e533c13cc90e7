/* A model's parameters: one table (mcnn_param rows) and one contiguous block each for the
 * values and the gradients.  The table is the single source of truth: it sizes the blocks,
 * names the checkpoint keys, tells the optimizer which tensors get weight decay, and lets the
 * tests compare every gradient by name.  Buffers that are saved but not trained (batch-norm
 * running statistics) live in a second mcnn_params of the same model, without gradients.
 *
 *   mcnn_params p = {0};
 *   mcnn_params_add(&p, "fc.weight", 2, (int64_t[]){10, 64}, 1);    size ...
 *   mcnn_params_add(&p, "fc.bias", 1, (int64_t[]){10}, 0);
 *   mcnn_params_alloc(&p, 1);                                        ... then point
 *   float *w = mcnn_params_data(&p, "fc.weight");                    */
#ifndef MCNN_PARAMS_H
#define MCNN_PARAMS_H

#include "core.h"
#include "safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcnn_params {
    mcnn_param *table;  /* count rows, in the order they were added */
    int count, capacity;
    size_t total;       /* floats in each block */
    float *data;        /* total floats: the values                      */
    float *grad;        /* total floats: the gradients, or NULL (buffers) */
    int *index;         /* index_size slots (a power of 2, or 0): row + 1 by name hash, 0 empty */
    int index_size;
} mcnn_params;

/* Append a row (before mcnn_params_alloc).  decay: 1 when weight decay applies.  A name
 * already in the table is refused. */
MCNN_API mcnn_status mcnn_params_add(mcnn_params *p, const char *name, int ndim,
                                     const int64_t *shape, int decay);
/* Allocate the value block (zeroed) and, when with_grad, the gradient block (zeroed). */
MCNN_API mcnn_status mcnn_params_alloc(mcnn_params *p, int with_grad);
MCNN_API void mcnn_params_free(mcnn_params *p);

/* The row of that name, or NULL; a hash lookup, so binding every row of a model by name is
 * linear in the number of rows. */
MCNN_API const mcnn_param *mcnn_params_find(const mcnn_params *p, const char *name);
/* Pointers into the blocks by name; NULL when there is no such parameter. */
MCNN_API float *mcnn_params_data(const mcnn_params *p, const char *name);
MCNN_API float *mcnn_params_grad(const mcnn_params *p, const char *name);
MCNN_API void mcnn_params_zero_grad(mcnn_params *p);

/* How a checkpoint names a parameter: write the file's key for our name into buf and return
 * 1, or return 0 to say the checkpoint has no such key (the parameter keeps its value). */
typedef int (*mcnn_key_map_fn)(const char *name, char *buf, size_t size, void *ctx);

/* Load every row from an open checkpoint, converting dtypes, checking each shape.  A missing
 * tensor or a wrong shape fails with a message naming the file and the tensor.  map may be
 * NULL (keys are the names).  used[i] (when not NULL) is set for every file tensor i read, so a
 * caller can reject extra tensors after loading all its tables. */
MCNN_API mcnn_status mcnn_params_load(mcnn_params *p, mcnn_safetensors *st, mcnn_key_map_fn map,
                                      void *ctx, unsigned char *used);
/* The checks of mcnn_params_load without reading or needing the blocks: every row is in the
 * file with its shape.  A loader calls it on the table of the configuration it read off the
 * file before allocating, so what it allocates is bounded by what the file holds. */
MCNN_API mcnn_status mcnn_params_check_file(const mcnn_params *p, const mcnn_safetensors *st,
                                            mcnn_key_map_fn map, void *ctx);
/* Fail naming the first tensor of st that no table read (used[i] == 0), skipping names for
 * which ignore(name) returns 1 (e.g. BatchNorm's num_batches_tracked). */
MCNN_API mcnn_status mcnn_params_check_unused(mcnn_safetensors *st, const unsigned char *used,
                                              int (*ignore)(const char *name));

/* Append every row of p (values, or gradients with grads=1) as F32 entries to out, which has
 * room for p->count more; prefix is put before each name (may be ""), written into names,
 * which must have room for p->count * 128 chars.  For building mcnn_safetensors_write calls. */
MCNN_API int mcnn_params_entries(const mcnn_params *p, int grads, const char *prefix,
                                 mcnn_st_entry *out, char *names);

/* Write the values of every row of ntables tables (a model's parameters, then e.g. its batch-norm
 * buffers) as F32 tensors, atomically, with nmeta (key, value) metadata pairs. */
MCNN_API mcnn_status mcnn_params_save(const char *path, const mcnn_params *const *tables,
                                      int ntables, const char *const *meta, int nmeta);

#ifdef __cplusplus
}
#endif
#endif
