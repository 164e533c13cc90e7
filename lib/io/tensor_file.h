/* An open weights file, whatever its format: the tensor table every loader reads
 * (mcnn_safetensors_*), and where each tensor's bytes are.  safetensors_read.c opens
 * safetensors files and reads tensors of any format; torch_read.c fills the table from
 * PyTorch files.  Internal to lib/io. */
#ifndef MCNN_IO_TENSOR_FILE_H
#define MCNN_IO_TENSOR_FILE_H

#include "io/json.h"
#include "io/zip.h"

#include <stdio.h>

/* Where a tensor's bytes are.  safetensors: contiguous bytes at `at`.  PyTorch: a view of a
 * storage (its bytes at `at`, or in a deflated zip entry), element offset and strides. */
typedef struct mcnn_tensor_source {
    uint64_t at;                 /* file offset of the storage's first byte */
    uint64_t storage_bytes;      /* the storage's size (for safetensors: the tensor's) */
    const mcnn_zip_entry *entry; /* the zip entry holding the storage, or NULL */
    int contiguous;              /* row-major from offset: read straight from the file */
    int64_t offset;              /* elements */
    int64_t stride[MCNN_ST_MAX_DIMS];
} mcnn_tensor_source;

struct mcnn_safetensors {
    FILE *f;
    char *path;
    mcnn_weights_format format;
    uint64_t data_start; /* safetensors: 8 + N */
    uint64_t data_size;
    int n;
    mcnn_st_tensor *tensors;        /* file order */
    mcnn_tensor_source *sources;    /* one per tensor */
    const mcnn_st_tensor **by_name; /* sorted by name, for binary search */
    int nmeta;
    const char **meta; /* key0, value0, key1, ... (point into doc) */
    mcnn_json_doc doc; /* safetensors: owns every name and metadata string */
    mcnn_zip zip;      /* PyTorch zip archives */
    char *names;       /* PyTorch: every tensor name, one block */
};

/* Which PyTorch format the first bytes of a file announce (0 when none). */
mcnn_weights_format mcnn_torch_detect(const unsigned char *head, size_t n);

/* Fill st's tensor table from a PyTorch file of that format (st->f open, st->path set). */
mcnn_status mcnn_torch_open(mcnn_safetensors *st, mcnn_weights_format format, uint64_t size);

/* A tensor's bytes, row-major, delivered in pieces: straight from the file when they lie there
 * in order, else gathered once in memory (a strided view, a deflated entry).  A read that
 * covers a whole stored zip entry checks its CRC-32 at close. */
typedef struct mcnn_tensor_bytes {
    mcnn_safetensors *st;
    const mcnn_st_tensor *t;
    unsigned char *gathered; /* the whole tensor, or NULL when read from the file */
    size_t pos;              /* bytes delivered */
    int check_crc;
    uint32_t crc;
    struct mcnn_crc32_table *tab;
} mcnn_tensor_bytes;

mcnn_status mcnn_tensor_bytes_open(mcnn_tensor_bytes *r, mcnn_safetensors *st, const mcnn_st_tensor *t);
mcnn_status mcnn_tensor_bytes_next(mcnn_tensor_bytes *r, void *dst, size_t n);
mcnn_status mcnn_tensor_bytes_close(mcnn_tensor_bytes *r); /* the CRC verdict; frees */

/* Sort st->by_name and refuse duplicate names (both formats). */
mcnn_status mcnn_tensor_file_index(mcnn_safetensors *st);

#endif
