/* Reading and writing safetensors files (https://huggingface.co/docs/safetensors):
 *   8 bytes little-endian header length N, N bytes of JSON, then the raw tensor data.
 * The reader validates everything before trusting it (header length, JSON, dtypes, shapes
 * against offsets, offsets inside the file, overlaps) and reads tensors on demand, so a
 * large checkpoint is never held twice in memory.  Writes are atomic: a temporary file is
 * written, flushed and renamed over the target, so an interrupted save never destroys the
 * previous file. */
#ifndef MCNN_SAFETENSORS_H
#define MCNN_SAFETENSORS_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mcnn_dtype {
    MCNN_DTYPE_F32,
    MCNN_DTYPE_F16,
    MCNN_DTYPE_BF16,
    MCNN_DTYPE_F64,
    MCNN_DTYPE_I64,
    MCNN_DTYPE_I32,
    MCNN_DTYPE_I16,
    MCNN_DTYPE_I8,
    MCNN_DTYPE_U8,
    MCNN_DTYPE_BOOL
} mcnn_dtype;

MCNN_API const char *mcnn_dtype_name(mcnn_dtype t); /* "F32", "BF16", ... as in the format */
MCNN_API size_t mcnn_dtype_size(mcnn_dtype t);      /* bytes per element                 */

#define MCNN_ST_MAX_DIMS 8
typedef struct mcnn_st_tensor {
    const char *name;
    mcnn_dtype dtype;
    int ndim;                          /* 0 for a scalar */
    int64_t shape[MCNN_ST_MAX_DIMS];
    size_t numel;
    size_t offset;                     /* bytes, from the start of the data section */
    size_t nbytes;
} mcnn_st_tensor;

typedef struct mcnn_safetensors mcnn_safetensors; /* an open file: its parsed header */

MCNN_API mcnn_status mcnn_safetensors_open(mcnn_safetensors **out, const char *path);
MCNN_API void mcnn_safetensors_close(mcnn_safetensors *st);
MCNN_API const char *mcnn_safetensors_path(const mcnn_safetensors *st);
MCNN_API int mcnn_safetensors_count(const mcnn_safetensors *st);
MCNN_API const mcnn_st_tensor *mcnn_safetensors_at(const mcnn_safetensors *st, int i);
/* NULL when the file has no tensor of that name. */
MCNN_API const mcnn_st_tensor *mcnn_safetensors_find(const mcnn_safetensors *st,
                                                     const char *name);
/* A value of the "__metadata__" object, or NULL. */
MCNN_API const char *mcnn_safetensors_meta(const mcnn_safetensors *st, const char *key);

/* Read a whole tensor, converting any float or integer dtype to float32 (or to int32, with a
 * range check): dst holds t->numel elements. */
MCNN_API mcnn_status mcnn_safetensors_read_f32(mcnn_safetensors *st, const mcnn_st_tensor *t,
                                               float *dst);
MCNN_API mcnn_status mcnn_safetensors_read_i32(mcnn_safetensors *st, const mcnn_st_tensor *t,
                                               int32_t *dst);
/* Find by name and check the shape (ndim, shape) without reading: the checks and messages of
 * mcnn_safetensors_load_f32.  *out (may be NULL) receives the tensor, or NULL when missing. */
MCNN_API mcnn_status mcnn_safetensors_expect(const mcnn_safetensors *st, const char *name, int ndim,
                                             const int64_t *shape, const mcnn_st_tensor **out);
/* Find by name, check the shape (ndim, shape), then read as float32.  The errors name the file,
 * the tensor and both shapes:  "vit.safetensors: 'head.weight' is [10,768], expected [1000,768]" */
MCNN_API mcnn_status mcnn_safetensors_load_f32(mcnn_safetensors *st, const char *name,
                                               float *dst, int ndim, const int64_t *shape);

/* One tensor to write.  data points at numel elements of dtype (F32, I32 and I64 are the
 * usual ones; any dtype is written as raw little-endian bytes). */
typedef struct mcnn_st_entry {
    const char *name;
    mcnn_dtype dtype;
    int ndim;
    int64_t shape[MCNN_ST_MAX_DIMS];
    const void *data;
} mcnn_st_entry;

/* meta: nmeta (key, value) string pairs for "__metadata__", laid out as
 * meta[0] = key0, meta[1] = value0, ...; may be NULL when nmeta == 0. */
MCNN_API mcnn_status mcnn_safetensors_write(const char *path, const mcnn_st_entry *tensors,
                                            int n, const char *const *meta, int nmeta);

#ifdef __cplusplus
}
#endif
#endif
