/* PyTorch's own files as a tensor table: torch.save (zip since 1.6, and the legacy stream
 * before it) and TorchScript archives (torch.jit.save).  See docs/weights.md.
 *
 * Zip (torch.save >= 1.6, torch.jit.save):  one top folder NAME/ holding
 *   NAME/data.pkl       the pickled object; each tensor is _rebuild_tensor_v2 of a storage
 *                       named by a persistent id ('storage', torch.FloatStorage, KEY, device, n)
 *   NAME/data/KEY       the storage's raw little-endian bytes (stored, 64-byte aligned)
 *   NAME/version, NAME/byteorder ("little"), and for TorchScript NAME/code/..., constants.pkl
 * Legacy (_use_new_zipfile_serialization=False): five pickles in a row - a magic number, the
 *   protocol version 1001, a sys_info dict, the object, the sorted list of storage keys -
 *   then for each key in that order an int64 element count and the storage's bytes.
 *
 * The object is walked into dotted names: dict keys and TorchScript attributes joined by dots
 * ("visual.conv1.weight"), list items by their index.  A checkpoint dict with no tensor of its
 * own is unwrapped through its "state_dict", "model_state_dict", "model" or "module" entry.
 * TorchScript's code/ is never read. */
#include "io/pickle.h"
#include "io/tensor_file.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PICKLE_BYTES ((size_t)256 << 20)
#define MAX_DEPTH 64         /* nesting of dicts/objects/lists walked */
#define MAX_TENSORS (1 << 20)
#define MAX_NAME 1024

/* 0x1950a86a20f9469cfc6c, torch's legacy magic number, as LONG1 writes it */
static const unsigned char legacy_magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

mcnn_weights_format mcnn_torch_detect(const unsigned char *head, size_t n)
{
    if (n >= 4 && memcmp(head, "PK\x03\x04", 4) == 0) return MCNN_FORMAT_TORCH_ZIP;
    /* PROTO 2..5, [FRAME n], LONG1 10 magic */
    size_t k = 2;
    if (n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5) {
        if (n > k && head[k] == 0x95) k += 9;
        if (n >= k + 12 && head[k] == 0x8a && head[k + 1] == 10 && memcmp(head + k + 2, legacy_magic, 10) == 0)
            return MCNN_FORMAT_TORCH_LEGACY;
    }
    return MCNN_FORMAT_SAFETENSORS;
}

/* ---- the object into names ---------------------------------------------------------------- */

typedef struct named {
    size_t name; /* offset in the names pool */
    int tensor;  /* index into the pickle's tensor table */
} named;

typedef struct walker {
    const mcnn_pickle *p;
    const char *path;
    char name[MAX_NAME];
    size_t budget; /* values visited, against sharing blow-ups */
    named *found;
    int n, cap;
    char *pool;
    size_t npool, cappool;
} walker;

static mcnn_status add_tensor(walker *w, size_t len, int tensor)
{
    if (w->n == MAX_TENSORS) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: more than %d tensors", w->path, MAX_TENSORS);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        named *f = realloc(w->found, (size_t)cap * sizeof *f);
        if (!f) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", w->path);
        w->found = f, w->cap = cap;
    }
    if (len + 1 > w->cappool - w->npool) {
        size_t cap = w->cappool ? w->cappool : 4096;
        while (len + 1 > cap - w->npool) cap *= 2;
        char *q = realloc(w->pool, cap);
        if (!q) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", w->path);
        w->pool = q, w->cappool = cap;
    }
    memcpy(w->pool + w->npool, w->name, len + 1);
    w->found[w->n++] = (named){w->npool, tensor};
    w->npool += len + 1;
    return MCNN_OK;
}

static mcnn_status walk(walker *w, int v, size_t len, int depth);

/* name + "." + key (or just key at the top), then walk the value */
static mcnn_status walk_child(walker *w, const char *key, size_t klen, int v, size_t len, int depth)
{
    if (klen == 0 || memchr(key, 0, klen)) return MCNN_OK; /* not a usable name: skipped */
    size_t at = len ? len + 1 : 0;
    if (at + klen + 1 > MAX_NAME)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: a tensor name longer than %d bytes ('%.60s...')",
                              w->path, MAX_NAME - 1, w->name);
    if (len) w->name[len] = '.';
    memcpy(w->name + at, key, klen);
    w->name[at + klen] = 0;
    mcnn_status s = walk(w, v, at + klen, depth + 1);
    w->name[len] = 0;
    return s;
}

static mcnn_status walk_dict(walker *w, const mcnn_pk_value *d, size_t len, int depth)
{
    for (uint32_t k = 0; k + 1 < d->n; k += 2) {
        const mcnn_pk_value *key = mcnn_pk(w->p, d->items[k]);
        char num[24];
        if (key->kind == MCNN_PK_STR) {
            MCNN_TRY(walk_child(w, w->p->text + key->text, key->len, d->items[k + 1], len, depth));
        } else if (key->kind == MCNN_PK_INT) {
            snprintf(num, sizeof num, "%lld", (long long)key->i);
            MCNN_TRY(walk_child(w, num, strlen(num), d->items[k + 1], len, depth));
        } /* other keys cannot name a tensor: skipped */
    }
    return MCNN_OK;
}

static mcnn_status walk(walker *w, int v, size_t len, int depth)
{
    mcnn_pk_value *val = &w->p->v[v];
    if (depth > MAX_DEPTH)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: the object is nested more than %d levels deep "
                              "(at '%.60s')", w->path, MAX_DEPTH, w->name);
    if (w->budget-- == 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: the object refers to its parts too many times over",
                              w->path);
    if (val->walking)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: the object contains itself (a cyclic reference at "
                              "'%.60s')", w->path, w->name);
    mcnn_status s = MCNN_OK;
    val->walking = 1;
    switch (val->kind) {
    case MCNN_PK_TENSOR:
        s = add_tensor(w, len, (int)val->i);
        break;
    case MCNN_PK_DICT: s = walk_dict(w, val, len, depth); break;
    case MCNN_PK_OBJECT: /* a TorchScript object: its state (a dict of attributes), same name */
        if (val->n) s = walk(w, val->items[0], len, depth + 1);
        break;
    case MCNN_PK_LIST:
    case MCNN_PK_TUPLE:
        for (uint32_t k = 0; k < val->n && s == MCNN_OK; k++) {
            char num[16];
            snprintf(num, sizeof num, "%u", k);
            s = walk_child(w, num, strlen(num), val->items[k], len, depth);
        }
        break;
    default: break; /* numbers, strings, None, dtypes: not tensors */
    }
    w->p->v[v].walking = 0;
    return s;
}

/* A dict entry by string key, or -1. */
static int dict_get(const mcnn_pickle *p, int d, const char *key)
{
    const mcnn_pk_value *v = mcnn_pk(p, d);
    for (uint32_t k = 0; k + 1 < v->n; k += 2) {
        const mcnn_pk_value *kv = mcnn_pk(p, v->items[k]);
        if (kv->kind == MCNN_PK_STR && strcmp(p->text + kv->text, key) == 0) return v->items[k + 1];
    }
    return -1;
}

/* Checkpoint dicts: {"state_dict": {...}, "epoch": 3, ...} and the like. */
static int unwrap(const mcnn_pickle *p, int v)
{
    static const char *const keys[] = {"state_dict", "model_state_dict", "model", "module"};
    for (int round = 0; round < 4; round++) {
        const mcnn_pk_value *d = mcnn_pk(p, v);
        if (d->kind != MCNN_PK_DICT) return v;
        for (uint32_t k = 1; k < d->n; k += 2)
            if (mcnn_pk(p, d->items[k])->kind == MCNN_PK_TENSOR) return v;
        int inner = -1;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0] && inner < 0; k++) {
            inner = dict_get(p, v, keys[k]);
            if (inner >= 0 && mcnn_pk(p, inner)->kind != MCNN_PK_DICT &&
                mcnn_pk(p, inner)->kind != MCNN_PK_OBJECT)
                inner = -1;
        }
        if (inner < 0) return v;
        v = inner;
    }
    return v;
}

/* ---- the tensor table ---------------------------------------------------------------------- */

/* Where storage KEY's bytes are: locate(ctx, key, needed bytes, source) fills at / entry /
 * storage_bytes. */
typedef mcnn_status (*locate_fn)(void *ctx, mcnn_safetensors *st, const char *key, uint64_t nbytes,
                                 mcnn_tensor_source *src);

static mcnn_status build_table(mcnn_safetensors *st, mcnn_pickle *p, locate_fn locate, void *ctx)
{
    walker w = {.p = p, .path = st->path};
    w.budget = (size_t)p->nv + 1024; /* a tree is walked once per edge: values + items */
    for (int i = 0; i < p->nv; i++) w.budget += p->v[i].n;
    mcnn_status s = walk(&w, unwrap(p, p->root), 0, 0);
    if (s == MCNN_OK && w.n == 0)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: the file holds no tensors", st->path);
    if (s == MCNN_OK) {
        st->tensors = calloc((size_t)w.n, sizeof *st->tensors);
        st->sources = calloc((size_t)w.n, sizeof *st->sources);
        st->by_name = malloc((size_t)w.n * sizeof *st->by_name);
        if (!st->tensors || !st->sources || !st->by_name) s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", st->path);
    }
    st->names = w.pool;
    for (int i = 0; i < w.n && s == MCNN_OK; i++) {
        const mcnn_pk_tensor *pt = &p->tensors[w.found[i].tensor];
        const mcnn_pk_value *sv = mcnn_pk(p, pt->storage);
        mcnn_st_tensor *t = &st->tensors[i];
        mcnn_tensor_source *src = &st->sources[i];
        t->name = st->names + w.found[i].name;
        t->dtype = (mcnn_dtype)sv->dtype;
        t->ndim = pt->ndim;
        size_t esz = mcnn_dtype_size(t->dtype), numel = 1;
        int overflow = 0;
        int64_t expect = 1;
        src->contiguous = 1;
        for (int d = pt->ndim - 1; d >= 0; d--) { /* row-major strides, size-1 dimensions aside */
            t->shape[d] = pt->size[d];
            src->stride[d] = pt->stride[d];
            numel = mcnn_mul_size(numel, (size_t)pt->size[d], &overflow);
            if (pt->size[d] != 1 && pt->stride[d] != expect) src->contiguous = 0;
            expect *= pt->size[d] ? pt->size[d] : 1;
        }
        uint64_t storage_bytes = mcnn_mul_size((size_t)sv->i, esz, &overflow);
        t->numel = numel;
        t->nbytes = mcnn_mul_size(numel, esz, &overflow);
        t->offset = (size_t)pt->offset * esz; /* bytes into the storage (< its size, checked) */
        src->offset = pt->offset;
        if (overflow) s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: tensor '%s' is too large", st->path, t->name);
        else s = locate(ctx, st, p->text + sv->text, storage_bytes, src);
        if (s == MCNN_OK) st->n++;
    }
    free(w.found);
    return s == MCNN_OK ? mcnn_tensor_file_index(st) : s;
}

/* ---- zip archives ------------------------------------------------------------------------- */

typedef struct zip_ctx {
    char prefix[256]; /* "NAME/" */
} zip_ctx;

static mcnn_status zip_locate(void *vctx, mcnn_safetensors *st, const char *key, uint64_t nbytes,
                              mcnn_tensor_source *src)
{
    const zip_ctx *c = vctx;
    char name[400];
    snprintf(name, sizeof name, "%sdata/%s", c->prefix, key);
    const mcnn_zip_entry *e = mcnn_zip_find(&st->zip, name);
    if (!e) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: storage '%s' has no entry '%s' in the archive",
                                  st->path, key, name);
    if (e->usize < nbytes)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: storage '%s' should hold %llu bytes but '%s' has %llu",
                              st->path, key, (unsigned long long)nbytes, name, (unsigned long long)e->usize);
    src->at = e->data_at;
    src->storage_bytes = e->usize;
    src->entry = e;
    return MCNN_OK;
}

/* The archive's one top folder holding data.pkl. */
static mcnn_status find_data_pkl(const mcnn_safetensors *st, zip_ctx *c, const mcnn_zip_entry **pkl)
{
    *pkl = NULL;
    for (int i = 0; i < st->zip.n; i++) {
        const char *n = st->zip.entries[i].name, *slash = strchr(n, '/');
        if (slash && strcmp(slash, "/model.json") == 0)
            return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: a TorchScript archive from PyTorch < 1.4 "
                                  "(model.json) is not read; save it again with a newer PyTorch", st->path);
        if (!slash || strcmp(slash, "/data.pkl") != 0) continue;
        if (*pkl) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: two data.pkl in one archive", st->path);
        if ((size_t)(slash - n) + 2 > sizeof c->prefix)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: an over-long folder name", st->path);
        memcpy(c->prefix, n, (size_t)(slash - n) + 1);
        c->prefix[slash - n + 1] = 0;
        *pkl = &st->zip.entries[i];
    }
    if (!*pkl)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: a zip archive, but not PyTorch's (no */data.pkl)", st->path);
    return MCNN_OK;
}

static mcnn_status open_zip(mcnn_safetensors *st, uint64_t size)
{
    MCNN_TRY(mcnn_zip_open(&st->zip, st->f, size, st->path));
    zip_ctx c;
    const mcnn_zip_entry *pkl;
    MCNN_TRY(find_data_pkl(st, &c, &pkl));
    char name[300];
    snprintf(name, sizeof name, "%sbyteorder", c.prefix);
    const mcnn_zip_entry *order = mcnn_zip_find(&st->zip, name);
    unsigned char *data;
    size_t n;
    if (order) {
        MCNN_TRY(mcnn_zip_read(&data, &n, st->f, order, 16, st->path));
        int little = n == 6 && memcmp(data, "little", 6) == 0;
        free(data);
        if (!little) return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: a big-endian archive is not read", st->path);
    }
    snprintf(name, sizeof name, "%sconstants.pkl", c.prefix);
    if (mcnn_zip_find(&st->zip, name)) st->format = MCNN_FORMAT_TORCHSCRIPT;
    MCNN_TRY(mcnn_zip_read(&data, &n, st->f, pkl, MAX_PICKLE_BYTES, st->path));
    mcnn_pickle p;
    size_t used;
    snprintf(name, sizeof name, "%s: %s", st->path, pkl->name);
    mcnn_status s = mcnn_pickle_load(&p, data, n, &used, name);
    free(data);
    if (s != MCNN_OK) return s;
    s = build_table(st, &p, zip_locate, &c);
    mcnn_pickle_free(&p);
    return s;
}

/* ---- the legacy stream -------------------------------------------------------------------- */

typedef struct legacy_storage {
    const char *key;
    uint64_t at, bytes; /* where its bytes are in the file */
    size_t esz;         /* element size, from the object's persistent ids */
} legacy_storage;

typedef struct legacy_ctx {
    int n;
    legacy_storage *s; /* sorted by key */
} legacy_ctx;

static int cmp_key(const void *a, const void *b)
{
    return strcmp(((const legacy_storage *)a)->key, ((const legacy_storage *)b)->key);
}

static legacy_storage *legacy_find(const legacy_ctx *c, const char *key)
{
    legacy_storage want = {.key = key};
    return c->n ? bsearch(&want, c->s, (size_t)c->n, sizeof want, cmp_key) : NULL;
}

static mcnn_status legacy_locate(void *vctx, mcnn_safetensors *st, const char *key, uint64_t nbytes,
                                 mcnn_tensor_source *src)
{
    const legacy_storage *e = legacy_find(vctx, key);
    if (!e || !e->at)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: storage '%s' is not in the file's list of storages",
                              st->path, key);
    if (e->bytes < nbytes)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: storage '%s' holds %llu bytes, %llu are used", st->path,
                              key, (unsigned long long)e->bytes, (unsigned long long)nbytes);
    src->at = e->at;
    src->storage_bytes = e->bytes;
    return MCNN_OK;
}

/* Read the first `want` bytes of the file (fewer when it is shorter). */
static mcnn_status read_head(mcnn_safetensors *st, uint64_t size, size_t want, unsigned char **buf, size_t *n)
{
    *n = size < want ? (size_t)size : want;
    free(*buf);
    *buf = malloc(*n + 1);
    if (!*buf) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", st->path);
    MCNN_TRY(mcnn_file_seek(st->f, 0, st->path));
    if (fread(*buf, 1, *n, st->f) != *n) return mcnn_set_error(MCNN_ERR_IO, "%s: cannot read", st->path);
    return MCNN_OK;
}

/* The five pickles; on success p[3] is the object, p[4] the key list, *end where data starts. */
static mcnn_status legacy_pickles(mcnn_safetensors *st, uint64_t size, mcnn_pickle p[5], size_t *end)
{
    static const char *const what[5] = {"magic number", "protocol version", "system info", "object", "storage keys"};
    unsigned char *buf = NULL;
    size_t want = (size_t)1 << 20, n = 0;
    mcnn_status s;
    for (;;) { /* parse from the head of the file; read more when a pickle runs past it */
        s = read_head(st, size, want, &buf, &n);
        size_t pos = 0, used = 0;
        int k;
        for (k = 0; k < 5 && s == MCNN_OK; k++) {
            char label[300];
            snprintf(label, sizeof label, "%s: %s pickle", st->path, what[k]);
            s = mcnn_pickle_load(&p[k], buf + pos, n - pos, &used, label);
            if (s == MCNN_OK) pos += used;
        }
        if (s == MCNN_OK) {
            *end = pos;
            break;
        }
        for (int j = 0; j < k - 1; j++) mcnn_pickle_free(&p[j]);
        if (used <= n - pos || n == size || want >= MAX_PICKLE_BYTES) break; /* a real error */
        want *= 4;
    }
    free(buf);
    return s;
}

static mcnn_status check_legacy_header(mcnn_safetensors *st, const mcnn_pickle p[5])
{
    const mcnn_pk_value *magic = mcnn_pk(&p[0], p[0].root), *version = mcnn_pk(&p[1], p[1].root);
    if (magic->kind != MCNN_PK_BIGINT || magic->len != 10 || memcmp(p[0].text + magic->text, legacy_magic, 10) != 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: not a PyTorch file (wrong magic number)", st->path);
    if (version->kind != MCNN_PK_INT || version->i != 1001)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: legacy PyTorch format version %lld (1001 is read)",
                              st->path, (long long)version->i);
    if (mcnn_pk(&p[2], p[2].root)->kind == MCNN_PK_DICT) {
        int le = dict_get(&p[2], p[2].root, "little_endian");
        if (le >= 0 && mcnn_pk(&p[2], le)->i == 0)
            return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: a big-endian file is not read", st->path);
    }
    return MCNN_OK;
}

/* The storages the object uses (key and element size), sorted by key. */
static mcnn_status legacy_storages(mcnn_safetensors *st, const mcnn_pickle *obj, legacy_ctx *c)
{
    c->s = calloc((size_t)obj->nv + 1, sizeof *c->s);
    if (!c->s) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", st->path);
    for (int v = 0; v < obj->nv; v++)
        if (obj->v[v].kind == MCNN_PK_STORAGE)
            c->s[c->n++] = (legacy_storage){.key = obj->text + obj->v[v].text,
                                            .esz = mcnn_dtype_size((mcnn_dtype)obj->v[v].dtype)};
    qsort(c->s, (size_t)c->n, sizeof *c->s, cmp_key);
    int k = 0; /* one per key: the largest element size (a key seen with two dtypes is checked later) */
    for (int i = 0; i < c->n; i++) {
        if (k && strcmp(c->s[k - 1].key, c->s[i].key) == 0) {
            if (c->s[i].esz > c->s[k - 1].esz) c->s[k - 1].esz = c->s[i].esz;
        } else {
            c->s[k++] = c->s[i];
        }
    }
    c->n = k;
    return MCNN_OK;
}

/* For each key of the list, in order: [int64 element count][count * element size bytes]. */
static mcnn_status legacy_layout(mcnn_safetensors *st, const mcnn_pickle p[5], uint64_t at, uint64_t size,
                                 legacy_ctx *c)
{
    const mcnn_pk_value *list = mcnn_pk(&p[4], p[4].root);
    if (list->kind != MCNN_PK_LIST)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: the storage key list is not a list", st->path);
    MCNN_TRY(legacy_storages(st, &p[3], c));
    for (uint32_t i = 0; i < list->n; i++) {
        const mcnn_pk_value *k = mcnn_pk(&p[4], list->items[i]);
        if (k->kind != MCNN_PK_STR) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: a storage key is not a string", st->path);
        const char *key = p[4].text + k->text;
        legacy_storage *e = legacy_find(c, key);
        if (!e) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: storage '%s' is listed but never used", st->path, key);
        if (e->bytes || e->at) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: storage '%s' is listed twice", st->path, key);
        unsigned char b[8];
        if (at > size || size - at < 8)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: storage '%s' lies past the end of the file (truncated)",
                                  st->path, key);
        MCNN_TRY(mcnn_file_seek(st->f, at, st->path));
        if (fread(b, 1, 8, st->f) != 8) return mcnn_set_error(MCNN_ERR_IO, "%s: cannot read", st->path);
        uint64_t count = 0;
        for (int j = 7; j >= 0; j--) count = count << 8 | b[j];
        if (count > (size - at - 8) / e->esz)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: storage '%s' claims %llu elements, more than the file "
                                  "holds (truncated?)", st->path, key, (unsigned long long)count);
        e->at = at + 8;
        e->bytes = count * e->esz;
        at += 8 + count * e->esz;
    }
    return MCNN_OK;
}

static mcnn_status open_legacy(mcnn_safetensors *st, uint64_t size)
{
    mcnn_pickle p[5];
    size_t end;
    MCNN_TRY(legacy_pickles(st, size, p, &end));
    legacy_ctx c = {0};
    mcnn_status s = check_legacy_header(st, p);
    if (s == MCNN_OK) s = legacy_layout(st, p, end, size, &c);
    if (s == MCNN_OK) s = build_table(st, &p[3], legacy_locate, &c);
    free(c.s);
    for (int k = 0; k < 5; k++) mcnn_pickle_free(&p[k]);
    return s;
}

mcnn_status mcnn_torch_open(mcnn_safetensors *st, mcnn_weights_format format, uint64_t size)
{
    st->format = format;
    return format == MCNN_FORMAT_TORCH_LEGACY ? open_legacy(st, size) : open_zip(st, size);
}
