/* The parameter table: size, then point.  Rows are added first (name, shape, decay), each
 * gets its offset in one block, and then one allocation holds them all. */
#include "internal.h"
#include "../nn/pack_list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: the name's slot in the index. */
static size_t name_hash(const char *name)
{
    size_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) h = (h ^ *c) * 16777619u;
    return h;
}

/* The slot holding name, or the empty slot where it would go (open addressing, linear probe;
 * the index is kept at most half full, so a probe always ends). */
static int *index_slot(const mcnn_params *p, const char *name)
{
    const size_t mask = (size_t)p->index_size - 1;
    for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
        int *slot = &p->index[i];
        if (*slot == 0 || strcmp(p->table[*slot - 1].name, name) == 0) return slot;
    }
}

/* Grow the index to keep it at most half full once row count + 1 is added. */
static mcnn_status index_reserve(mcnn_params *p, int rows)
{
    if (2 * rows <= p->index_size) return MCNN_OK;
    int size = p->index_size ? 2 * p->index_size : 128;
    while (2 * rows > size) size *= 2;
    int *index = calloc((size_t)size, sizeof *index);
    if (!index) return mcnn_set_error(MCNN_ERR_NOMEM, "params: out of memory");
    free(p->index);
    p->index = index;
    p->index_size = size;
    for (int r = 0; r < p->count; r++) *index_slot(p, p->table[r].name) = r + 1;
    return MCNN_OK;
}

mcnn_status mcnn_params_add(mcnn_params *p, const char *name, int ndim, const int64_t *shape,
                            int decay)
{
    if (p->data) return mcnn_set_error(MCNN_ERR_ARG, "params: '%s' added after allocation", name);
    if (ndim < 0 || ndim > MCNN_MAX_DIMS)
        return mcnn_set_error(MCNN_ERR_ARG, "params: '%s' has %d dims (at most %d)", name, ndim,
                              MCNN_MAX_DIMS);
    if (strlen(name) >= sizeof p->table[0].name)
        return mcnn_set_error(MCNN_ERR_ARG, "params: name '%s' is too long", name);
    MCNN_TRY(index_reserve(p, p->count + 1));
    int *slot = index_slot(p, name);
    if (*slot) return mcnn_set_error(MCNN_ERR_ARG, "params: '%s' added twice", name);
    if (p->count == p->capacity) {
        int cap = p->capacity ? 2 * p->capacity : 64;
        mcnn_param *t = realloc(p->table, (size_t)cap * sizeof *t);
        if (!t) return mcnn_set_error(MCNN_ERR_NOMEM, "params: out of memory");
        p->table = t;
        p->capacity = cap;
    }
    mcnn_param *row = &p->table[p->count];
    memset(row, 0, sizeof *row);
    snprintf(row->name, sizeof row->name, "%s", name);
    row->ndim = ndim;
    row->numel = 1;
    int overflow = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] <= 0)
            return mcnn_set_error(MCNN_ERR_ARG, "params: '%s' dim %d is %lld", name, d,
                                  (long long)shape[d]);
        row->shape[d] = shape[d];
        row->numel = mcnn_mul_size(row->numel, (size_t)shape[d], &overflow);
    }
    /* Round each tensor up to 16 floats so every one starts 64-byte aligned. */
    const size_t padded = (row->numel + 15) & ~(size_t)15;
    if (overflow || row->numel > SIZE_MAX / 8 || padded > SIZE_MAX / 8 - p->total)
        return mcnn_set_error(MCNN_ERR_ARG, "params: '%s' is too large", name);
    row->decay = decay;
    row->offset = p->total;
    p->total += padded;
    *slot = ++p->count;
    return MCNN_OK;
}

/* The gradient block stays zero until a backward writes into it.  calloc takes those zeros
 * from fresh pages of the OS without touching them, so a model that is only ever run forward
 * never makes its gradients resident (CLIP ViT-B/32: 600 MB), where zeroing them would.  The
 * values are allocated the same way: a page becomes resident when a weight is written to it,
 * so an inference-only load, which packs each matrix as it is read and gives its pages back,
 * never holds every fp32 matrix at once.  The block is aligned to 64 bytes by hand; the
 * pointer calloc returned sits just before it. */
static float *lazy_zeros(size_t n)
{
    if (n > (SIZE_MAX - 128) / sizeof(float)) return NULL;
    unsigned char *raw = calloc(1, n * sizeof(float) + 128);
    if (!raw) return NULL;
    unsigned char *p = raw + 64 - (uintptr_t)raw % 64;
    if (p - raw < (ptrdiff_t)sizeof(void *)) p += 64;
    memcpy(p - sizeof(void *), &raw, sizeof raw);
    return (float *)p;
}

static void lazy_zeros_free(float *p)
{
    if (!p) return;
    void *raw;
    memcpy(&raw, (unsigned char *)p - sizeof raw, sizeof raw);
    free(raw);
}

mcnn_status mcnn_params_alloc(mcnn_params *p, int with_grad)
{
    p->data = lazy_zeros(p->total ? p->total : 1);
    p->grad = with_grad ? lazy_zeros(p->total ? p->total : 1) : NULL;
    if (!p->data || (with_grad && !p->grad)) {
        const size_t total = p->total; /* mcnn_params_free zeroes it */
        mcnn_params_free(p);
        return mcnn_set_error(MCNN_ERR_NOMEM, "params: cannot allocate %zu floats (%.1f GB)%s",
                              total, (double)total * sizeof(float) * (with_grad ? 2 : 1) / 1e9,
                              with_grad ? " for the values and their gradients" : "");
    }
    return MCNN_OK;
}

void mcnn_params_free(mcnn_params *p)
{
    free(p->table);
    free(p->index);
    lazy_zeros_free(p->data);
    lazy_zeros_free(p->grad);
    memset(p, 0, sizeof *p);
}

const mcnn_param *mcnn_params_find(const mcnn_params *p, const char *name)
{
    if (!p->index_size) return NULL;
    const int row = *index_slot(p, name);
    return row ? &p->table[row - 1] : NULL;
}

float *mcnn_params_data(const mcnn_params *p, const char *name)
{
    const mcnn_param *row = mcnn_params_find(p, name);
    return row && p->data ? p->data + row->offset : NULL;
}

float *mcnn_params_grad(const mcnn_params *p, const char *name)
{
    const mcnn_param *row = mcnn_params_find(p, name);
    return row && p->grad ? p->grad + row->offset : NULL;
}

void mcnn_params_zero_grad(mcnn_params *p)
{
    if (p->grad) memset(p->grad, 0, p->total * sizeof(float));
}

/* The file's key for a row (written into key when mapped), or NULL: the file has none. */
static const char *file_key(const mcnn_param *row, mcnn_key_map_fn map, void *ctx, char *key,
                            size_t size)
{
    if (!map) return row->name;
    return map(row->name, key, size, ctx) ? key : NULL;
}

/* The order a load reads the rows in.  With a pack list, the rows it packs come first, the
 * largest first, then the rest in table order: each packed row is packed and its fp32 pages
 * released as soon as it is read, so the largest one (CLIP's token embedding, 101 MB) is
 * resident while little else is, and the load's peak stays near what remains resident at
 * the end (docs/precision.md "Memory").  Without a list, table order. */
typedef struct load_step {
    int packed;
    size_t numel;
    int row;
} load_step;

static int cmp_step(const void *a, const void *b)
{
    const load_step *x = a, *y = b;
    if (x->packed != y->packed) return y->packed - x->packed;
    if (x->packed && x->numel != y->numel) return x->numel < y->numel ? 1 : -1;
    return (x->row > y->row) - (x->row < y->row);
}

mcnn_status mcnn_params_load_then(mcnn_params *p, mcnn_safetensors *st, mcnn_key_map_fn map,
                                  void *ctx, unsigned char *used, mcnn_pack_list *then)
{
    load_step *order = malloc(((size_t)p->count + 1) * sizeof *order);
    if (!order) return mcnn_set_error(MCNN_ERR_NOMEM, "loading %s: out of memory",
                                      mcnn_safetensors_path(st));
    for (int i = 0; i < p->count; i++)
        order[i] = (load_step){then && mcnn_pack_list_has(then, p->data + p->table[i].offset),
                               p->table[i].numel, i};
    qsort(order, (size_t)p->count, sizeof *order, cmp_step);
    char key[256];
    mcnn_status s = MCNN_OK;
    for (int i = 0; i < p->count && s == MCNN_OK; i++) {
        const mcnn_param *row = &p->table[order[i].row];
        const char *name = file_key(row, map, ctx, key, sizeof key);
        if (!name) continue;
        s = mcnn_safetensors_load_f32(st, name, p->data + row->offset, row->ndim, row->shape);
        if (s == MCNN_OK && used) {
            const mcnn_st_tensor *t = mcnn_safetensors_find(st, name);
            used[t - mcnn_safetensors_at(st, 0)] = 1;
        }
        if (s == MCNN_OK && then) s = mcnn_pack_list_loaded(then, p->data + row->offset);
    }
    free(order);
    return s;
}

mcnn_status mcnn_params_load(mcnn_params *p, mcnn_safetensors *st, mcnn_key_map_fn map, void *ctx,
                             unsigned char *used)
{
    return mcnn_params_load_then(p, st, map, ctx, used, NULL);
}

mcnn_status mcnn_params_check_file(const mcnn_params *p, const mcnn_safetensors *st,
                                   mcnn_key_map_fn map, void *ctx)
{
    char key[256];
    for (int i = 0; i < p->count; i++) {
        const mcnn_param *row = &p->table[i];
        const char *name = file_key(row, map, ctx, key, sizeof key);
        if (name) MCNN_TRY(mcnn_safetensors_expect(st, name, row->ndim, row->shape, NULL));
    }
    return MCNN_OK;
}

mcnn_status mcnn_params_check_unused(mcnn_safetensors *st, const unsigned char *used,
                                     int (*ignore)(const char *name))
{
    for (int i = 0; i < mcnn_safetensors_count(st); i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
        if (!used[i] && !(ignore && ignore(t->name)))
            return mcnn_set_error(MCNN_ERR_FORMAT,
                                  "%s: unexpected tensor '%s' (not part of this model)",
                                  mcnn_safetensors_path(st), t->name);
    }
    return MCNN_OK;
}

int mcnn_params_entries(const mcnn_params *p, int grads, const char *prefix, mcnn_st_entry *out,
                        char *names)
{
    const float *block = grads ? p->grad : p->data;
    for (int i = 0; i < p->count; i++) {
        const mcnn_param *row = &p->table[i];
        char *name = names + (size_t)i * 128;
        snprintf(name, 128, "%s%s", prefix, row->name);
        out[i].name = name;
        out[i].dtype = MCNN_DTYPE_F32;
        out[i].ndim = row->ndim;
        for (int d = 0; d < row->ndim; d++) out[i].shape[d] = row->shape[d];
        out[i].data = block + row->offset;
    }
    return p->count;
}

mcnn_status mcnn_params_save(const char *path, const mcnn_params *const *tables, int ntables,
                             const char *const *meta, int nmeta)
{
    int total = 0;
    for (int t = 0; t < ntables; t++) total += tables[t]->count;
    mcnn_st_entry *entries = calloc((size_t)total + 1, sizeof *entries);
    char *names = malloc(((size_t)total + 1) * 128);
    if (!entries || !names) {
        free(entries);
        free(names);
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    }
    int n = 0;
    for (int t = 0; t < ntables; t++)
        n += mcnn_params_entries(tables[t], 0, "", entries + n, names + (size_t)n * 128);
    mcnn_status s = mcnn_safetensors_write(path, entries, n, meta, nmeta);
    free(entries);
    free(names);
    return s;
}
