/* The text-embedding cache; see text_cache.h. */
#define _XOPEN_SOURCE 700
#include "text_cache.h"

#include "args.h"
#include "mcnn.h"

#include <math.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fnv {
    uint64_t h;
} fnv;

static void fnv_bytes(fnv *f, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) f->h = (f->h ^ b[i]) * 0x100000001b3ull;
}

static void fnv_str(fnv *f, const char *s) { fnv_bytes(f, s, strlen(s) + 1); } /* with its NUL */

/* A file's identity: its absolute path, size and modification time. */
static void fnv_file(fnv *f, const char *path)
{
    char abs[PATH_MAX];
    fnv_str(f, realpath(path, abs) ? abs : path);
    struct stat st;
    if (stat(path, &st) == 0) {
        int64_t v[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec,
                        (int64_t)st.st_mtim.tv_nsec};
        fnv_bytes(f, v, sizeof v);
    }
}

void text_cache_init(text_cache *c, const char *model_path, const char *vocab_path,
                     const char *const *labels, int L, const char *const *templates, int T,
                     int dim, const char *precision)
{
    memset(c, 0, sizeof *c);
    fnv f = {0xcbf29ce484222325ull};
    fnv_str(&f, "mcnn text cache v1");
    fnv_file(&f, model_path);
    fnv_file(&f, vocab_path);
    int32_t sizes[3] = {L, T, dim};
    fnv_bytes(&f, sizes, sizeof sizes);
    for (int i = 0; i < L; i++) fnv_str(&f, labels[i]);
    for (int i = 0; i < T; i++) fnv_str(&f, templates[i]);
    if (precision && strcmp(precision, "fp32") != 0) fnv_str(&f, precision);
    snprintf(c->key, sizeof c->key, "%016llx", (unsigned long long)f.h);

    const char *slash = strrchr(model_path, '/');
    const int dirlen = slash ? (int)(slash - model_path) : 0;
    const char *base = slash ? slash + 1 : model_path;
    const char *dot = strrchr(base, '.');
    const int baselen = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    int n = snprintf(c->path, sizeof c->path, "%.*s%stext-cache/%.*s-%s.safetensors", dirlen,
                     model_path, slash ? "/" : "", baselen, base, c->key);
    if (n < 0 || (size_t)n >= sizeof c->path) c->path[0] = '\0';
}

/* Why the rows cannot be CLIP text embeddings (they are unit vectors), or NULL. */
static const char *bad_rows(const float *v, int L, int dim)
{
    for (int l = 0; l < L; l++) {
        double sq = 0;
        for (int d = 0; d < dim; d++) {
            if (!isfinite(v[(size_t)l * dim + d])) return "values that are not finite";
            sq += (double)v[(size_t)l * dim + d] * v[(size_t)l * dim + d];
        }
        if (fabs(sq - 1.0) > 1e-3) return "vectors that are not of length 1";
    }
    return NULL;
}

int text_cache_load(const text_cache *c, float *out, int L, int dim)
{
    struct stat sb;
    if (!c->path[0] || stat(c->path, &sb) != 0) return 0; /* no entry yet: the usual first run */
    char why[512] = "";
    mcnn_safetensors *st;
    if (mcnn_safetensors_open(&st, c->path) != MCNN_OK) {
        snprintf(why, sizeof why, "%s", mcnn_last_error());
    } else {
        const char *key = mcnn_safetensors_meta(st, "key");
        if (!key || strcmp(key, c->key) != 0)
            snprintf(why, sizeof why, "its key is not %s", c->key);
        else if (mcnn_safetensors_load_f32(st, "text_embeddings", out, 2,
                                           (const int64_t[]){L, dim}) != MCNN_OK)
            snprintf(why, sizeof why, "%s", mcnn_last_error());
        else if (bad_rows(out, L, dim))
            snprintf(why, sizeof why, "it holds %s", bad_rows(out, L, dim));
        mcnn_safetensors_close(st);
    }
    mcnn_clear_error();
    if (why[0])
        app_error("warning: text-embedding cache %s is not usable (%s): the embeddings are "
                  "computed again and the entry rewritten", c->path, why);
    return !why[0];
}

/* A folder is taken as read-only when access() says so or when it has no write bit at all:
 * root may write anywhere, but a folder without write bits was meant to stay as it is. */
static int writable(const char *dir)
{
    struct stat st;
    return stat(dir, &st) == 0 && (st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) &&
           access(dir, W_OK) == 0;
}

void text_cache_save(const text_cache *c, const float *emb, int L, int dim)
{
    if (!c->path[0]) return;
    char dir[sizeof c->path];
    snprintf(dir, sizeof dir, "%s", c->path);
    char *slash = strrchr(dir, '/'); /* <model folder>/text-cache/<file> */
    *slash = '\0';
    slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    if (!writable(slash ? dir : ".")) return;
    if (slash) *slash = '/';
    mkdir(dir, 0777); /* exists already, or cannot be made: the write below tells */
    mcnn_st_entry t = {"text_embeddings", MCNN_DTYPE_F32, 2, {L, dim}, emb};
    const char *meta[] = {"key", c->key, "note", "CLIP text embeddings cache (mcnn-classify)"};
    mcnn_safetensors_write(c->path, &t, 1, meta, 2);
    mcnn_clear_error();
}
