/* Reading safetensors: validate the whole header first, then read tensors on demand.
 *
 * Layout:  [u64 LE: N] [N bytes of JSON, often space-padded] [data section]
 * The header maps each name to {"dtype", "shape", "data_offsets": [begin, end]}, offsets in
 * bytes from the start of the data section, plus an optional "__metadata__" string map.
 * Nothing in the header is trusted: see docs/safetensors.md for the list of checks. */
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The reference implementation refuses headers above 100 MB; so do we, before allocating. */
#define MAX_HEADER_BYTES 100000000ull
#define CHUNK_BYTES 65536 /* staging buffer for converting reads */

struct mcnn_safetensors {
    FILE *f;
    char *path;
    uint64_t data_start; /* 8 + N */
    uint64_t data_size;
    int n;
    mcnn_st_tensor *tensors; /* header order */
    const mcnn_st_tensor **by_name; /* sorted by name, for binary search */
    int nmeta;
    const char **meta;       /* key0, value0, key1, ... (point into doc) */
    mcnn_json_doc doc;       /* owns every name and metadata string */
};

static const char *const dtype_names[] = {"F32", "F16", "BF16", "F64", "I64",
                                          "I32", "I16", "I8",   "U8",  "BOOL"};
static const size_t dtype_sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
#define NDTYPES ((int)(sizeof dtype_sizes / sizeof dtype_sizes[0]))

const char *mcnn_dtype_name(mcnn_dtype t)
{
    return (int)t >= 0 && (int)t < NDTYPES ? dtype_names[t] : "?";
}

size_t mcnn_dtype_size(mcnn_dtype t)
{
    return (int)t >= 0 && (int)t < NDTYPES ? dtype_sizes[t] : 0;
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* "[10,768]" into buf */
static const char *shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* ---- header validation ------------------------------------------------------------------- */

/* A non-negative JSON integer; 0 when v is anything else. */
static int get_u64(const mcnn_json *v, uint64_t *out)
{
    if (!v || v->type != MCNN_JSON_NUMBER || !v->is_int || v->i < 0) return 0;
    *out = (uint64_t)v->i;
    return 1;
}

static mcnn_status parse_entry(mcnn_safetensors *st, const mcnn_json *e, mcnn_st_tensor *t)
{
    const char *path = st->path, *name = e->key;
    if (e->type != MCNN_JSON_OBJECT)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: tensor '%s' is a JSON %s, expected an object",
                              path, name, mcnn_json_type_name(e->type));
    const mcnn_json *dt = mcnn_json_get(e, "dtype"), *sh = mcnn_json_get(e, "shape"),
                    *off = mcnn_json_get(e, "data_offsets");
    if (!dt || !sh || !off)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: tensor '%s' has no \"%s\"", path, name,
                              !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    t->name = name;

    if (dt->type != MCNN_JSON_STRING)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: tensor '%s' has a non-string dtype", path, name);
    int d;
    for (d = 0; d < NDTYPES; d++)
        if (strcmp(dt->str, dtype_names[d]) == 0) break;
    if (d == NDTYPES)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: tensor '%s' has unknown dtype '%s'", path,
                              name, dt->str);
    t->dtype = (mcnn_dtype)d;

    if (sh->type != MCNN_JSON_ARRAY)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: tensor '%s' shape is not an array", path, name);
    if (sh->count > MCNN_ST_MAX_DIMS)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu dimensions (at most %d)",
                              path, name, sh->count, MCNN_ST_MAX_DIMS);
    t->ndim = (int)sh->count;
    int overflow = 0;
    size_t numel = 1;
    int k = 0;
    for (const mcnn_json *v = sh->child; v; v = v->next, k++) {
        uint64_t dim;
        if (!get_u64(v, &dim))
            return mcnn_set_error(MCNN_ERR_FORMAT,
                                  "%s: tensor '%s' shape[%d] is not a non-negative integer", path,
                                  name, k);
        if (dim > SIZE_MAX) overflow = 1;
        t->shape[k] = (int64_t)dim;
        numel = mcnn_mul_size(numel, (size_t)dim, &overflow);
    }
    size_t nbytes = mcnn_mul_size(numel, dtype_sizes[d], &overflow);
    char sbuf[160];
    if (overflow)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: tensor '%s' shape %s overflows the size type",
                              path, name, shape_str(sbuf, sizeof sbuf, t->ndim, t->shape));
    t->numel = numel;
    t->nbytes = nbytes;

    uint64_t b, en;
    if (off->type != MCNN_JSON_ARRAY || off->count != 2 || !get_u64(off->child, &b) ||
        !get_u64(off->child->next, &en))
        return mcnn_set_error(MCNN_ERR_FORMAT,
                              "%s: tensor '%s' data_offsets is not two non-negative integers", path,
                              name);
    if (en < b)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: tensor '%s' data_offsets [%llu, %llu] end before they begin",
                              path, name, (unsigned long long)b, (unsigned long long)en);
    if (en > st->data_size)
        return mcnn_set_error(MCNN_ERR_FORMAT,
                              "%s: tensor '%s' data_offsets [%llu, %llu] exceed the data section (%llu bytes)",
                              path, name, (unsigned long long)b, (unsigned long long)en,
                              (unsigned long long)st->data_size);
    if (en - b != nbytes)
        return mcnn_set_error(MCNN_ERR_FORMAT,
                              "%s: tensor '%s' is %s %s (%zu bytes) but data_offsets [%llu, %llu] span %llu bytes",
                              path, name, dtype_names[d], shape_str(sbuf, sizeof sbuf, t->ndim, t->shape),
                              nbytes, (unsigned long long)b, (unsigned long long)en,
                              (unsigned long long)(en - b));
    t->offset = (size_t)b; /* en <= data_size <= file size, so it fits */
    return MCNN_OK;
}

static int cmp_offset(const void *a, const void *b)
{
    const mcnn_st_tensor *x = *(const mcnn_st_tensor *const *)a, *y = *(const mcnn_st_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const mcnn_st_tensor *const *)a)->name, (*(const mcnn_st_tensor *const *)b)->name);
}

static mcnn_status parse_metadata(mcnn_safetensors *st, const mcnn_json *m)
{
    if (m->type != MCNN_JSON_OBJECT)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: __metadata__ is a JSON %s, expected an object",
                              st->path, mcnn_json_type_name(m->type));
    const mcnn_json *dup = mcnn_json_first_duplicate(m);
    if (dup)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: __metadata__ key '%s' appears twice", st->path,
                              dup->key);
    st->meta = malloc((m->count ? m->count : 1) * 2 * sizeof *st->meta);
    if (!st->meta) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", st->path);
    for (const mcnn_json *v = m->child; v; v = v->next) {
        if (v->type != MCNN_JSON_STRING)
            return mcnn_set_error(MCNN_ERR_FORMAT,
                                  "%s: __metadata__ value of '%s' is a JSON %s, expected a string",
                                  st->path, v->key, mcnn_json_type_name(v->type));
        if (strlen(v->key) != v->key_len || strlen(v->str) != v->len)
            return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: __metadata__ entry '%s' contains a NUL character",
                                  st->path, v->key);
        st->meta[2 * st->nmeta] = v->key;
        st->meta[2 * st->nmeta + 1] = v->str;
        st->nmeta++;
    }
    return MCNN_OK;
}

static mcnn_status parse_header(mcnn_safetensors *st)
{
    const mcnn_json *root = st->doc.root;
    if (root->type != MCNN_JSON_OBJECT)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: header is a JSON %s, expected an object", st->path,
                              mcnn_json_type_name(root->type));
    const mcnn_json *dup = mcnn_json_first_duplicate(root);
    if (dup)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", st->path,
                              dup->key);
    if (root->count > INT_MAX / 2)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: %zu header entries", st->path, root->count);
    size_t ntens = root->count;
    st->tensors = calloc(ntens ? ntens : 1, sizeof *st->tensors);
    st->by_name = malloc((ntens ? ntens : 1) * sizeof *st->by_name);
    if (!st->tensors || !st->by_name) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", st->path);
    for (const mcnn_json *e = root->child; e; e = e->next) {
        if (strcmp(e->key, "__metadata__") == 0) {
            MCNN_TRY(parse_metadata(st, e));
            continue;
        }
        if (strlen(e->key) != e->key_len)
            return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: a tensor name contains a NUL character",
                                  st->path);
        MCNN_TRY(parse_entry(st, e, &st->tensors[st->n]));
        st->n++;
    }

    /* no two tensors may share bytes: sort by offset and compare neighbours */
    const mcnn_st_tensor **ord = malloc((st->n ? st->n : 1) * sizeof *ord);
    if (!ord) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", st->path);
    for (int i = 0; i < st->n; i++) ord[i] = &st->tensors[i];
    qsort(ord, (size_t)st->n, sizeof *ord, cmp_offset);
    const mcnn_st_tensor *prev = NULL;
    for (int i = 0; i < st->n; i++) {
        const mcnn_st_tensor *t = ord[i];
        if (t->nbytes == 0) continue; /* empty tensors occupy nothing */
        if (prev && t->offset < prev->offset + prev->nbytes) {
            mcnn_status s = mcnn_set_error(
                MCNN_ERR_FORMAT, "%s: tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap", st->path,
                prev->name, prev->offset, prev->offset + prev->nbytes, t->name, t->offset,
                t->offset + t->nbytes);
            free(ord);
            return s;
        }
        prev = t;
    }
    free(ord);

    for (int i = 0; i < st->n; i++) st->by_name[i] = &st->tensors[i];
    qsort(st->by_name, (size_t)st->n, sizeof *st->by_name, cmp_name);
    return MCNN_OK;
}

mcnn_status mcnn_safetensors_open(mcnn_safetensors **out, const char *path)
{
    *out = NULL;
    if (!path) return mcnn_set_error(MCNN_ERR_ARG, "safetensors: path is NULL");
    mcnn_safetensors *st = calloc(1, sizeof *st);
    char *hdr = NULL;
    mcnn_status s = MCNN_OK;
    if (!st || !(st->path = malloc(strlen(path) + 1))) {
        free(st);
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    }
    strcpy(st->path, path);
    st->f = fopen(path, "rb");
    if (!st->f) {
        s = mcnn_set_error(MCNN_ERR_IO, "%s: cannot open for reading: %s", path, strerror(errno));
        goto done;
    }
    /* file size (long is 64-bit on LP64 systems; see docs/safetensors.md) */
    long fsize;
    if (fseek(st->f, 0, SEEK_END) != 0 || (fsize = ftell(st->f)) < 0 || fseek(st->f, 0, SEEK_SET) != 0) {
        s = mcnn_set_error(MCNN_ERR_IO, "%s: cannot determine the file size", path);
        goto done;
    }
    unsigned char lenbuf[8];
    if (fread(lenbuf, 1, fsize < 8 ? (size_t)fsize : 8, st->f) != (fsize < 8 ? (size_t)fsize : 8)) {
        s = mcnn_set_error(MCNN_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
        goto done;
    }
    if (fsize < 8) {
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: file is %ld bytes, too short for the 8-byte header length",
                           path, fsize);
        goto done;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | lenbuf[i];
    if (n > (uint64_t)fsize - 8) {
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: header length %llu exceeds the file (%ld bytes)", path,
                           (unsigned long long)n, fsize);
        goto done;
    }
    if (n > MAX_HEADER_BYTES) {
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: header length %llu is over the 100 MB limit", path,
                           (unsigned long long)n);
        goto done;
    }
    if (n < 2) { /* the smallest header is "{}" */
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: header length %llu is too short for a JSON object", path,
                           (unsigned long long)n);
        goto done;
    }
    hdr = malloc((size_t)n);
    if (!hdr) {
        s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path,
                           (unsigned long long)n);
        goto done;
    }
    if (fread(hdr, 1, (size_t)n, st->f) != (size_t)n) {
        s = mcnn_set_error(MCNN_ERR_IO, "%s: cannot read the %llu-byte header", path, (unsigned long long)n);
        goto done;
    }
    st->data_start = 8 + n;
    st->data_size = (uint64_t)fsize - st->data_start;
    s = mcnn_json_parse(&st->doc, hdr, (size_t)n);
    if (s != MCNN_OK) {
        s = mcnn_wrap_error(s, "%s: header: ", path);
        goto done;
    }
    s = parse_header(st);
done:
    free(hdr);
    if (s != MCNN_OK) {
        mcnn_safetensors_close(st);
        return s;
    }
    *out = st;
    return MCNN_OK;
}

void mcnn_safetensors_close(mcnn_safetensors *st)
{
    if (!st) return;
    if (st->f) fclose(st->f);
    mcnn_json_free(&st->doc);
    free(st->tensors);
    free(st->by_name);
    free(st->meta);
    free(st->path);
    free(st);
}

const char *mcnn_safetensors_path(const mcnn_safetensors *st) { return st->path; }
int mcnn_safetensors_count(const mcnn_safetensors *st) { return st->n; }

const mcnn_st_tensor *mcnn_safetensors_at(const mcnn_safetensors *st, int i)
{
    return i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}

const mcnn_st_tensor *mcnn_safetensors_find(const mcnn_safetensors *st, const char *name)
{
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const mcnn_st_tensor *t = st->by_name[mid];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *mcnn_safetensors_meta(const mcnn_safetensors *st, const char *key)
{
    for (int i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
    return NULL;
}

/* ---- reading and converting -------------------------------------------------------------- */

/* IEEE half -> float, exact: every half (subnormals, inf, nan) is representable in float. */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = h >> 10 & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | man << 13; /* inf, or nan keeping its payload */
    } else if (exp != 0) {
        bits = sign | (exp + 112) << 23 | man << 13; /* rebias 15 -> 127 */
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal half: normalise (it is a normal float) */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3FF) << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* bfloat16 is the top half of a float32. */
static float bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Little-endian unsigned integer of k bytes. */
static uint64_t le_bits(const unsigned char *p, size_t k)
{
    uint64_t v = 0;
    for (size_t i = k; i-- > 0;) v = v << 8 | p[i];
    return v;
}

static double elem_as_double(mcnn_dtype dt, const unsigned char *p)
{
    uint64_t u = le_bits(p, dtype_sizes[dt]);
    switch (dt) {
    case MCNN_DTYPE_F32: { uint32_t b = (uint32_t)u; float f; memcpy(&f, &b, 4); return f; }
    case MCNN_DTYPE_F16: return f16_to_f32((uint16_t)u);
    case MCNN_DTYPE_BF16: return bf16_to_f32((uint16_t)u);
    case MCNN_DTYPE_F64: { double d; memcpy(&d, &u, 8); return d; }
    case MCNN_DTYPE_I64: return (double)(int64_t)u;
    case MCNN_DTYPE_I32: return (int32_t)(uint32_t)u;
    case MCNN_DTYPE_I16: return (int16_t)(uint16_t)u;
    case MCNN_DTYPE_I8: return (int8_t)(uint8_t)u;
    case MCNN_DTYPE_U8: return (uint8_t)u;
    case MCNN_DTYPE_BOOL: return u != 0;
    }
    return 0;
}

static mcnn_status check_tensor(const mcnn_safetensors *st, const mcnn_st_tensor *t)
{
    if (!st || !t || t < st->tensors || t >= st->tensors + st->n)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: tensor handle does not belong to this file",
                              st ? st->path : "safetensors");
    return MCNN_OK;
}

static mcnn_status seek_tensor(mcnn_safetensors *st, const mcnn_st_tensor *t)
{
    uint64_t at = st->data_start + t->offset;
    if (at > (uint64_t)LONG_MAX)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: tensor '%s' lies beyond what fseek can reach",
                              st->path, t->name);
    if (fseek(st->f, (long)at, SEEK_SET) != 0)
        return mcnn_set_error(MCNN_ERR_IO, "%s: cannot seek to tensor '%s'", st->path, t->name);
    return MCNN_OK;
}

static mcnn_status read_fail(const mcnn_safetensors *st, const mcnn_st_tensor *t)
{
    return mcnn_set_error(MCNN_ERR_IO, "%s: cannot read tensor '%s' (%zu bytes at data offset %zu): "
                                       "file truncated or unreadable",
                          st->path, t->name, t->nbytes, t->offset);
}

/* Read t in chunks, calling convert(chunk, first element, count). */
typedef mcnn_status (*convert_fn)(const mcnn_st_tensor *t, const unsigned char *src, size_t first,
                                  size_t count, void *dst);

static mcnn_status read_chunked(mcnn_safetensors *st, const mcnn_st_tensor *t, convert_fn fn, void *dst)
{
    MCNN_TRY(seek_tensor(st, t));
    size_t esz = dtype_sizes[t->dtype], per = CHUNK_BYTES / esz;
    unsigned char *buf = malloc(CHUNK_BYTES);
    if (!buf) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", st->path);
    mcnn_status s = MCNN_OK;
    for (size_t i = 0; i < t->numel && s == MCNN_OK; i += per) {
        size_t cnt = t->numel - i < per ? t->numel - i : per;
        if (fread(buf, esz, cnt, st->f) != cnt) s = read_fail(st, t);
        else s = fn(t, buf, i, cnt, dst);
    }
    free(buf);
    return s;
}

static mcnn_status conv_f32(const mcnn_st_tensor *t, const unsigned char *src, size_t first,
                            size_t count, void *dst)
{
    float *y = (float *)dst + first;
    size_t esz = dtype_sizes[t->dtype];
    switch (t->dtype) { /* the common cases get their own loops */
    case MCNN_DTYPE_F16:
        for (size_t i = 0; i < count; i++) y[i] = f16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        break;
    case MCNN_DTYPE_BF16:
        for (size_t i = 0; i < count; i++) y[i] = bf16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        break;
    case MCNN_DTYPE_I64: /* straight to float: through double would round twice */
        for (size_t i = 0; i < count; i++) y[i] = (float)(int64_t)le_bits(src + 8 * i, 8);
        break;
    default: /* F64 rounds once; the narrower integers are exact in double */
        for (size_t i = 0; i < count; i++) y[i] = (float)elem_as_double(t->dtype, src + i * esz);
    }
    return MCNN_OK;
}

mcnn_status mcnn_safetensors_read_f32(mcnn_safetensors *st, const mcnn_st_tensor *t, float *dst)
{
    MCNN_TRY(check_tensor(st, t));
    if (t->numel == 0) return MCNN_OK;
    if (t->dtype == MCNN_DTYPE_F32 && host_is_little_endian()) { /* straight into dst */
        MCNN_TRY(seek_tensor(st, t));
        if (fread(dst, 4, t->numel, st->f) != t->numel) return read_fail(st, t);
        return MCNN_OK;
    }
    return read_chunked(st, t, conv_f32, dst);
}

static mcnn_status conv_i32(const mcnn_st_tensor *t, const unsigned char *src, size_t first,
                            size_t count, void *dst)
{
    int32_t *y = (int32_t *)dst + first;
    size_t esz = dtype_sizes[t->dtype];
    for (size_t i = 0; i < count; i++) {
        const unsigned char *p = src + i * esz;
        switch (t->dtype) {
        case MCNN_DTYPE_I64: {
            int64_t v = (int64_t)le_bits(p, 8);
            if (v < INT32_MIN || v > INT32_MAX)
                return mcnn_set_error(MCNN_ERR_FORMAT,
                                      "tensor '%s' element %zu (%lld) does not fit in int32", t->name,
                                      first + i, (long long)v);
            y[i] = (int32_t)v;
            break;
        }
        case MCNN_DTYPE_F32:
        case MCNN_DTYPE_F16:
        case MCNN_DTYPE_BF16:
        case MCNN_DTYPE_F64: { /* floats are accepted when they hold whole numbers in range */
            double v = elem_as_double(t->dtype, p);
            if (!(v >= INT32_MIN && v <= INT32_MAX) || v != (double)(int32_t)v)
                return mcnn_set_error(MCNN_ERR_FORMAT,
                                      "tensor '%s' element %zu (%g) is not an int32 value", t->name,
                                      first + i, v);
            y[i] = (int32_t)v;
            break;
        }
        default: y[i] = (int32_t)elem_as_double(t->dtype, p); /* I32 and narrower: exact */
        }
    }
    return MCNN_OK;
}

mcnn_status mcnn_safetensors_read_i32(mcnn_safetensors *st, const mcnn_st_tensor *t, int32_t *dst)
{
    MCNN_TRY(check_tensor(st, t));
    if (t->numel == 0) return MCNN_OK;
    mcnn_status s = read_chunked(st, t, conv_i32, dst);
    if (s == MCNN_ERR_FORMAT) return mcnn_wrap_error(s, "%s: ", st->path);
    return s;
}

mcnn_status mcnn_safetensors_expect(const mcnn_safetensors *st, const char *name, int ndim,
                                    const int64_t *shape, const mcnn_st_tensor **out)
{
    const mcnn_st_tensor *t = mcnn_safetensors_find(st, name);
    if (out) *out = t;
    if (!t) return mcnn_set_error(MCNN_ERR_NOT_FOUND, "%s: tensor '%s' is missing", st->path, name);
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char a[160], b[160];
        return mcnn_set_error(MCNN_ERR_SHAPE, "%s: '%s' is %s, expected %s", st->path, name,
                              shape_str(a, sizeof a, t->ndim, t->shape),
                              shape_str(b, sizeof b, ndim < 0 ? 0 : ndim > MCNN_ST_MAX_DIMS ? MCNN_ST_MAX_DIMS : ndim, shape));
    }
    return MCNN_OK;
}

mcnn_status mcnn_safetensors_load_f32(mcnn_safetensors *st, const char *name, float *dst, int ndim,
                                      const int64_t *shape)
{
    const mcnn_st_tensor *t;
    MCNN_TRY(mcnn_safetensors_expect(st, name, ndim, shape, &t));
    return mcnn_safetensors_read_f32(st, t, dst);
}
