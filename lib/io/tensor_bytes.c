/* Reading one tensor's bytes in row-major order, whatever holds them.
 *
 * safetensors tensors, and PyTorch tensors that are contiguous views of a stored zip entry or
 * a legacy storage, are plain byte ranges of the file: read straight into the caller's buffer.
 * The rest is gathered in memory first: a strided view (a transpose, a slice, every other
 * column) reads the span of its storage between its first and last element and copies element
 * by element; a deflated zip entry is inflated whole (bounded by its declared size, CRC-32
 * checked). */
#include "io/inflate.h"
#include "io/tensor_file.h"

#include <stdlib.h>
#include <string.h>

static mcnn_status read_fail(const mcnn_safetensors *st, const mcnn_st_tensor *t)
{
    return mcnn_set_error(MCNN_ERR_IO, "%s: cannot read tensor '%s' (%zu bytes at data offset %zu): "
                                       "file truncated or unreadable",
                          st->path, t->name, t->nbytes, t->offset);
}

/* Copy t's elements from base (element `first` of the storage at base[0]) in row-major order. */
static void gather(unsigned char *dst, const unsigned char *base, int64_t first, const mcnn_st_tensor *t,
                   const mcnn_tensor_source *src, size_t esz)
{
    int64_t idx[MCNN_ST_MAX_DIMS] = {0};
    for (size_t i = 0; i < t->numel; i++) {
        int64_t at = src->offset - first;
        for (int d = 0; d < t->ndim; d++) at += idx[d] * src->stride[d];
        memcpy(dst + i * esz, base + (size_t)at * esz, esz);
        for (int d = t->ndim - 1; d >= 0; d--) { /* the odometer: last index fastest */
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}

/* The whole tensor into r->gathered. */
static mcnn_status gather_tensor(mcnn_tensor_bytes *r, const mcnn_tensor_source *src)
{
    mcnn_safetensors *st = r->st;
    const mcnn_st_tensor *t = r->t;
    size_t esz = mcnn_dtype_size(t->dtype);
    int64_t last = src->offset; /* the view's last element (bounds checked when opened) */
    for (int d = 0; d < t->ndim; d++) last += (t->shape[d] - 1) * src->stride[d];
    unsigned char *span = NULL, *whole = NULL;
    int64_t first = src->offset;
    mcnn_status s = MCNN_OK;
    if (src->entry && src->entry->method != 0) { /* deflated: the whole entry */
        size_t n;
        s = mcnn_zip_read(&whole, &n, st->f, src->entry, (size_t)src->entry->usize, st->path);
        first = 0;
        if (s == MCNN_OK && (uint64_t)(last + 1) * esz > n)
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: tensor '%s' reaches past its storage", st->path, t->name);
        span = whole;
    } else {
        size_t bytes = (size_t)(last - first + 1) * esz;
        span = malloc(bytes);
        if (!span) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory for tensor '%s'", st->path, t->name);
        s = mcnn_file_seek(st->f, src->at + (uint64_t)first * esz, st->path);
        if (s == MCNN_OK && fread(span, 1, bytes, st->f) != bytes) s = read_fail(st, t);
    }
    if (s == MCNN_OK && !(r->gathered = malloc(t->nbytes)))
        s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory for tensor '%s'", st->path, t->name);
    if (s == MCNN_OK) gather(r->gathered, span, first, t, src, esz);
    free(span);
    return s;
}

mcnn_status mcnn_tensor_bytes_open(mcnn_tensor_bytes *r, mcnn_safetensors *st, const mcnn_st_tensor *t)
{
    memset(r, 0, sizeof *r);
    r->st = st, r->t = t;
    const mcnn_tensor_source *src = &st->sources[t - st->tensors];
    if (t->numel == 0) return MCNN_OK;
    if (!src->contiguous || (src->entry && src->entry->method != 0)) return gather_tensor(r, src);
    const mcnn_zip_entry *e = src->entry;
    if (e && src->offset == 0 && t->nbytes == e->usize) {
        r->tab = malloc(sizeof *r->tab);
        if (!r->tab) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", st->path);
        mcnn_crc32_init(r->tab);
        r->check_crc = 1;
    }
    size_t esz = mcnn_dtype_size(t->dtype);
    return mcnn_file_seek(st->f, src->at + (uint64_t)src->offset * esz, st->path);
}

mcnn_status mcnn_tensor_bytes_next(mcnn_tensor_bytes *r, void *dst, size_t n)
{
    if (n > r->t->nbytes - r->pos)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: reading past the end of tensor '%s'", r->st->path, r->t->name);
    if (r->gathered) {
        memcpy(dst, r->gathered + r->pos, n);
    } else {
        if (fread(dst, 1, n, r->st->f) != n) return read_fail(r->st, r->t);
        if (r->check_crc) r->crc = mcnn_crc32(r->tab, r->crc, dst, n);
    }
    r->pos += n;
    return MCNN_OK;
}

mcnn_status mcnn_tensor_bytes_close(mcnn_tensor_bytes *r)
{
    mcnn_status s = MCNN_OK;
    const mcnn_zip_entry *e = r->st->sources[r->t - r->st->tensors].entry;
    if (r->check_crc && r->pos == r->t->nbytes && r->crc != e->crc)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: tensor '%s' is corrupt: zip entry '%s' has CRC-32 %08x, "
                           "expected %08x", r->st->path, r->t->name, e->name, (unsigned)r->crc, (unsigned)e->crc);
    free(r->gathered);
    free(r->tab);
    memset(r, 0, sizeof *r);
    return s;
}
