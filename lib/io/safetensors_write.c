/* Writing safetensors atomically.
 *
 * The file is first written in full to "<path>.tmp.<pid>" in the same directory, flushed to
 * the disk (fflush + fsync), then renamed over <path>.  rename() within one file system is
 * atomic in POSIX, so a reader (or a crash) sees either the old file or the complete new one,
 * never half of each.  On any failure the temporary file is removed and <path> is untouched.
 * fsync, fileno and getpid are POSIX, hence the feature macro for this file only. */
#define _POSIX_C_SOURCE 200809L

#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a growable text buffer for the header ------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
} sbuf;

static char *sb_reserve(sbuf *b, size_t extra)
{
    if (b->failed) return NULL;
    if (extra > SIZE_MAX - b->len - 1) {
        b->failed = 1;
        return NULL;
    }
    if (b->len + extra + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + extra + 1) cap = cap > SIZE_MAX / 2 ? b->len + extra + 1 : cap * 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->failed = 1;
            return NULL;
        }
        b->p = q;
        b->cap = cap;
    }
    return b->p + b->len;
}

static void sb_put(sbuf *b, const char *s)
{
    size_t k = strlen(s);
    char *d = sb_reserve(b, k);
    if (!d) return;
    memcpy(d, s, k);
    b->len += k;
}

static void sb_put_u64(sbuf *b, unsigned long long v)
{
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%llu", v);
    sb_put(b, tmp);
}

static void sb_put_json_string(sbuf *b, const char *s)
{
    size_t n = strlen(s), k = mcnn_json_escape(NULL, s, n);
    char *d = sb_reserve(b, k);
    if (!d) return;
    mcnn_json_escape(d, s, n);
    b->len += k;
}

/* ---- validation ------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first string that occurs twice among v[0], v[step], v[2*step], ..., or NULL. */
static const char *find_duplicate(const char *const *v, int n, int step, mcnn_status *s)
{
    const char **sorted = malloc((size_t)(n ? n : 1) * sizeof *sorted);
    if (!sorted) {
        *s = MCNN_ERR_NOMEM;
        return NULL;
    }
    for (int i = 0; i < n; i++) sorted[i] = v[(size_t)i * (size_t)step];
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i], sorted[i - 1]) == 0) dup = sorted[i];
    free(sorted);
    return dup;
}

static mcnn_status check_entry(const char *path, const mcnn_st_entry *e, size_t *nbytes)
{
    if (!e->name || !e->name[0])
        return mcnn_set_error(MCNN_ERR_ARG, "%s: a tensor has an empty name", path);
    if (strcmp(e->name, "__metadata__") == 0)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: '__metadata__' is reserved, not a tensor name", path);
    if (!mcnn_utf8_valid(e->name, strlen(e->name)))
        return mcnn_set_error(MCNN_ERR_ARG, "%s: tensor name '%s' is not valid UTF-8", path, e->name);
    size_t esz = mcnn_dtype_size(e->dtype);
    if (esz == 0)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: tensor '%s' has an invalid dtype (%d)", path, e->name,
                              (int)e->dtype);
    if (e->ndim < 0 || e->ndim > MCNN_ST_MAX_DIMS)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: tensor '%s' has ndim %d (0 to %d)", path, e->name,
                              e->ndim, MCNN_ST_MAX_DIMS);
    int overflow = 0;
    size_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
        if (e->shape[d] < 0)
            return mcnn_set_error(MCNN_ERR_ARG, "%s: tensor '%s' shape[%d] is %lld", path, e->name, d,
                                  (long long)e->shape[d]);
        if ((uint64_t)e->shape[d] > SIZE_MAX) overflow = 1;
        numel = mcnn_mul_size(numel, (size_t)e->shape[d], &overflow);
    }
    *nbytes = mcnn_mul_size(numel, esz, &overflow);
    if (overflow)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: tensor '%s' is too large", path, e->name);
    if (*nbytes && !e->data)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: tensor '%s' has no data", path, e->name);
    return MCNN_OK;
}

static mcnn_status check_args(const char *path, const mcnn_st_entry *tensors, int n,
                              const char *const *meta, int nmeta)
{
    /* The write renames a new file over path: over a device (run as root, /dev/null) or a
     * folder that would replace it, so only a regular file or nothing may be there. */
    struct stat sb;
    if (path && stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return mcnn_set_error(MCNN_ERR_IO, "%s: not a regular file (a %s): a checkpoint is "
                              "written to a new file renamed over it", path,
                              S_ISDIR(sb.st_mode) ? "directory" : "device, pipe or socket");
    if (n < 0 || (n > 0 && !tensors) || nmeta < 0 || (nmeta > 0 && !meta))
        return mcnn_set_error(MCNN_ERR_ARG, "%s: bad tensor or metadata list (n %d, nmeta %d)", path, n,
                              nmeta);
    for (int i = 0; i < 2 * nmeta; i++) {
        if (!meta[i])
            return mcnn_set_error(MCNN_ERR_ARG, "%s: metadata %s %d is NULL", path,
                                  i % 2 ? "value" : "key", i / 2);
        if (!mcnn_utf8_valid(meta[i], strlen(meta[i])))
            return mcnn_set_error(MCNN_ERR_ARG, "%s: metadata string '%s' is not valid UTF-8", path,
                                  meta[i]);
    }
    mcnn_status s = MCNN_OK;
    const char *dup = nmeta ? find_duplicate(meta, nmeta, 2, &s) : NULL;
    if (s != MCNN_OK) return mcnn_set_error(s, "%s: out of memory", path);
    if (dup) return mcnn_set_error(MCNN_ERR_ARG, "%s: metadata key '%s' given twice", path, dup);
    /* tensor names: collect them to look for duplicates */
    const char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
    if (!names) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < n && s == MCNN_OK; i++) {
        size_t nbytes;
        s = check_entry(path, &tensors[i], &nbytes);
        names[i] = tensors[i].name;
    }
    if (s == MCNN_OK) {
        dup = find_duplicate(names, n, 1, &s);
        if (s != MCNN_OK) s = mcnn_set_error(s, "%s: out of memory", path);
        else if (dup) s = mcnn_set_error(MCNN_ERR_ARG, "%s: tensor '%s' given twice", path, dup);
    }
    free(names);
    return s;
}

/* ---- the header --------------------------------------------------------------------------
 * {"__metadata__":{"k":"v",...},"name":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},...}
 * padded with spaces to a multiple of 8, so the data section starts 8-byte aligned. */
static mcnn_status build_header(sbuf *b, const char *path, const mcnn_st_entry *tensors, int n,
                                const char *const *meta, int nmeta, uint64_t *data_bytes)
{
    uint64_t off = 0;
    sb_put(b, "{");
    if (nmeta > 0) {
        sb_put(b, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) sb_put(b, ",");
            sb_put_json_string(b, meta[2 * i]);
            sb_put(b, ":");
            sb_put_json_string(b, meta[2 * i + 1]);
        }
        sb_put(b, "}");
    }
    for (int i = 0; i < n; i++) {
        const mcnn_st_entry *e = &tensors[i];
        size_t nbytes = mcnn_dtype_size(e->dtype);
        for (int d = 0; d < e->ndim; d++) nbytes *= (size_t)e->shape[d]; /* checked before */
        if (nbytes > UINT64_MAX - off)
            return mcnn_set_error(MCNN_ERR_ARG, "%s: tensors too large in total", path);
        if (i || nmeta > 0) sb_put(b, ",");
        sb_put_json_string(b, e->name);
        sb_put(b, ":{\"dtype\":\"");
        sb_put(b, mcnn_dtype_name(e->dtype));
        sb_put(b, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) sb_put(b, ",");
            sb_put_u64(b, (unsigned long long)e->shape[d]);
        }
        sb_put(b, "],\"data_offsets\":[");
        sb_put_u64(b, (unsigned long long)off);
        sb_put(b, ",");
        off += nbytes;
        sb_put_u64(b, (unsigned long long)off);
        sb_put(b, "]}");
    }
    sb_put(b, "}");
    while (!b->failed && b->len % 8) sb_put(b, " ");
    if (b->failed) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory for the header", path);
    *data_bytes = off;
    return MCNN_OK;
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

/* Raw little-endian bytes of one tensor. */
static int write_data(FILE *f, const mcnn_st_entry *e, size_t nbytes)
{
    if (nbytes == 0) return 1;
    size_t esz = mcnn_dtype_size(e->dtype);
    if (esz == 1 || host_is_little_endian()) return fwrite(e->data, 1, nbytes, f) == nbytes;
    unsigned char buf[4096]; /* big-endian host: swap each element */
    const unsigned char *src = e->data;
    for (size_t i = 0; i < nbytes; i += sizeof buf) {
        size_t k = nbytes - i < sizeof buf ? nbytes - i : sizeof buf;
        for (size_t j = 0; j < k; j += esz)
            for (size_t b = 0; b < esz; b++) buf[j + b] = src[i + j + esz - 1 - b];
        if (fwrite(buf, 1, k, f) != k) return 0;
    }
    return 1;
}

mcnn_status mcnn_safetensors_write(const char *path, const mcnn_st_entry *tensors, int n,
                                   const char *const *meta, int nmeta)
{
    if (!path || !path[0]) return mcnn_set_error(MCNN_ERR_ARG, "safetensors: empty output path");
    MCNN_TRY(check_args(path, tensors, n, meta, nmeta));
    sbuf hdr = {0};
    uint64_t data_bytes = 0;
    mcnn_status s = build_header(&hdr, path, tensors, n, meta, nmeta, &data_bytes);
    if (s != MCNN_OK) {
        free(hdr.p);
        return s;
    }

    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(hdr.p);
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        s = mcnn_set_error(MCNN_ERR_IO, "%s: cannot create the temporary file %s: %s", path, tmp,
                           strerror(errno));
        free(tmp);
        free(hdr.p);
        return s;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hdr.p, 1, hdr.len, f) == hdr.len;
    for (int i = 0; ok && i < n; i++) {
        size_t nbytes = mcnn_dtype_size(tensors[i].dtype);
        for (int d = 0; d < tensors[i].ndim; d++) nbytes *= (size_t)tensors[i].shape[d];
        ok = write_data(f, &tensors[i], nbytes);
    }
    if (ok) ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    int err = errno;
    if (fclose(f) != 0 && ok) ok = 0, err = errno;
    if (ok && rename(tmp, path) != 0) ok = 0, err = errno;
    if (!ok) {
        remove(tmp);
        s = mcnn_set_error(MCNN_ERR_IO, "%s: writing %llu bytes failed (%s); the previous file, if any, "
                                        "is unchanged", path,
                           (unsigned long long)(8 + hdr.len + data_bytes), strerror(err));
    }
    free(tmp);
    free(hdr.p);
    return s;
}
