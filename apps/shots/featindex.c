/* The index of a feature collection (DIR/index.tsv) and the samples a shot model reads from
 * it; see shots.h.  The index is text, one record a line, tab-separated:
 *   # key<TAB>value                 header: kind, dim, fps, max_frames, model
 *   shard<TAB>N<TAB>file            a shard, in order (features-00000.safetensors, ...)
 *   video<TAB>name                  a video whose shots are all in the shards (resume skips it)
 *   shot<TAB>key<TAB>N<TAB>row<TAB>frames
 *                                   a shot: its frames are rows row .. row+frames-1 of the
 *                                   "features" tensor of shard N */
#define _XOPEN_SOURCE 700
#include "shots.h"

#include "../common/args.h"
#include "../common/outfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void push_entry(feat_index *x, feat_entry e)
{
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 1024;
        x->e = realloc(x->e, (size_t)x->cap * sizeof *x->e);
        if (!x->e) app_error("out of memory"), exit(1);
    }
    x->e[x->n++] = e;
}

static void push_name(char ***v, int *n, const char *s)
{
    *v = realloc(*v, (size_t)(*n + 1) * sizeof **v);
    if (!*v) app_error("out of memory"), exit(1);
    (*v)[(*n)++] = shots_strdup(s);
}

int feat_index_read(feat_index *x, const char *dir, int may_be_absent, char *err, size_t errsize)
{
    memset(x, 0, sizeof *x);
    x->dir = shots_strdup(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/index.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (may_be_absent && errno == ENOENT) return 0;
        return fail_with(err, errsize, "%s: cannot open: %s (not a folder written by "
                         "mcnn-shots features?)", path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        char *field[6] = {0};
        int nf = 0;
        for (char *p = line, *tab; nf < 6; p = tab + 1) {
            field[nf++] = p;
            if (!(tab = strchr(p, '\t'))) break;
            *tab = '\0';
        }
        if (!line[0]) continue;
        if (!strcmp(field[0], "#") && nf == 1) continue;
        if (line[0] == '#' && nf == 2) {
            const char *k = field[0] + 1 + (field[0][1] == ' '), *v = field[1];
            if (!strcmp(k, "kind")) snprintf(x->kind, sizeof x->kind, "%s", v);
            else if (!strcmp(k, "model")) snprintf(x->model, sizeof x->model, "%s", v);
            else if (!strcmp(k, "dim")) x->dim = atoi(v);
            else if (!strcmp(k, "max_frames")) x->max_frames = atoi(v);
            else if (!strcmp(k, "fps")) x->fps = atof(v);
        } else if (line[0] == '#') {
            continue;
        } else if (!strcmp(field[0], "shard") && nf == 3 && atoi(field[1]) == x->nshards) {
            push_name(&x->shards, &x->nshards, field[2]);
        } else if (!strcmp(field[0], "video") && nf == 2) {
            push_name(&x->videos, &x->nvideos, field[1]);
        } else if (!strcmp(field[0], "shot") && nf == 5) {
            feat_entry e = {shots_strdup(field[1]), atoi(field[2]), atoll(field[3]), atoi(field[4])};
            push_entry(x, e);
            if (e.shard < 0 || e.shard >= x->nshards || e.row < 0 || e.frames < 1 ||
                (x->max_frames && e.frames > x->max_frames))
                rc = fail_with(err, errsize, "%s:%d: shot '%s' has a bad shard, row or frame count",
                               path, lineno, e.key);
        } else {
            rc = fail_with(err, errsize, "%s:%d: not an index line", path, lineno);
        }
    }
    free(line);
    fclose(f);
    if (rc == 0 && !(x->dim > 0 && x->max_frames > 0))
        rc = fail_with(err, errsize, "%s: the header lacks dim or max_frames", path);
    return rc;
}

int feat_index_write(const feat_index *x, char *err, size_t errsize)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/index.tsv", x->dir);
    outfile o;
    if (outfile_open(&o, path, err, errsize)) return -1;
    fprintf(o.f, "# mcnn-shots features: per-frame features of shots (docs/movieclip.md)\n"
                 "# kind\t%s\n# dim\t%d\n# fps\t%.9g\n# max_frames\t%d\n# model\t%s\n",
            x->kind, x->dim, x->fps, x->max_frames, x->model);
    for (int i = 0; i < x->nshards; i++) fprintf(o.f, "shard\t%d\t%s\n", i, x->shards[i]);
    for (int i = 0; i < x->nvideos; i++) fprintf(o.f, "video\t%s\n", x->videos[i]);
    for (int i = 0; i < x->n; i++)
        fprintf(o.f, "shot\t%s\t%d\t%lld\t%d\n", x->e[i].key, x->e[i].shard,
                (long long)x->e[i].row, x->e[i].frames);
    outfile_check(&o);
    return outfile_commit(&o, err, errsize);
}

static const feat_index *sort_index; /* qsort has no context argument */

static int by_entry_key(const void *a, const void *b)
{
    return strcmp(sort_index->e[*(const int *)a].key, sort_index->e[*(const int *)b].key);
}

void feat_index_sort(feat_index *x)
{
    free(x->order);
    x->order = shots_xmalloc((size_t)x->n * sizeof *x->order);
    for (int i = 0; i < x->n; i++) x->order[i] = i;
    sort_index = x;
    qsort(x->order, (size_t)x->n, sizeof *x->order, by_entry_key);
}

int feat_index_lower_bound(const feat_index *x, const char *prefix)
{
    int lo = 0, hi = x->n;
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (strcmp(x->e[x->order[mid]].key, prefix) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo; /* a position in order[] */
}

int feat_index_find(const feat_index *x, const char *key)
{
    const int p = feat_index_lower_bound(x, key);
    return p < x->n && strcmp(x->e[x->order[p]].key, key) == 0 ? x->order[p] : -1;
}

void feat_index_free(feat_index *x)
{
    for (int i = 0; i < x->n; i++) free(x->e[i].key);
    for (int i = 0; i < x->nshards; i++) free(x->shards[i]);
    for (int i = 0; i < x->nvideos; i++) free(x->videos[i]);
    free(x->e), free(x->shards), free(x->videos), free(x->order), free(x->dir);
    memset(x, 0, sizeof *x);
}

/* ---- samples ------------------------------------------------------------------------------ */
/* A shard's "features" (rows, D), read once. */
static float *shard_features(float **cache, int64_t *rows, const feat_index *x, int shard,
                             char *err, size_t errsize)
{
    if (cache[shard]) return cache[shard];
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", x->dir, x->shards[shard]);
    mcnn_safetensors *st;
    if (mcnn_safetensors_open(&st, path) != MCNN_OK)
        return fail_with(err, errsize, "%s", mcnn_last_error()), NULL;
    const mcnn_st_tensor *t = mcnn_safetensors_find(st, "features");
    if (!t || t->ndim != 2 || t->shape[1] != x->dim) {
        fail_with(err, errsize, "%s: no 'features' tensor of %d columns", path, x->dim);
        mcnn_safetensors_close(st);
        return NULL;
    }
    float *f = shots_xmalloc(t->numel * sizeof(float));
    if (mcnn_safetensors_read_f32(st, t, f) != MCNN_OK) {
        fail_with(err, errsize, "%s", mcnn_last_error());
        free(f), f = NULL;
    }
    rows[shard] = t->shape[0];
    mcnn_safetensors_close(st);
    return cache[shard] = f;
}

/* A shot's frames (frames, D) in the index, checked against its shard. */
static const float *entry_frames(float **cache, int64_t *rows, const feat_index *x,
                                 const feat_entry *e, char *err, size_t errsize)
{
    const float *f = shard_features(cache, rows, x, e->shard, err, errsize);
    if (!f) return NULL;
    if (e->row + e->frames > rows[e->shard])
        return fail_with(err, errsize, "%s/%s: shot '%s' lies past the shard's %lld rows", x->dir,
                         x->shards[e->shard], e->key, (long long)rows[e->shard]), NULL;
    return f + (size_t)e->row * x->dim;
}

static int by_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

int shot_samples_load(shot_samples *s, const feat_index *x, const split_set *split, char *err,
                      size_t errsize)
{
    memset(s, 0, sizeof *s);
    const int D = x->dim, n = split->n;
    /* each key: a shot (an entry), or a video (a run of entries "<key>/...") */
    int *first = shots_xmalloc((size_t)n * sizeof *first), *count = shots_xmalloc((size_t)n * sizeof *count);
    int K = 0, rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const int e = feat_index_find(x, split->keys[i]);
        if (e >= 0) {
            first[i] = -1 - e, count[i] = x->e[e].frames;
        } else {
            char *prefix = shots_xmalloc(strlen(split->keys[i]) + 2);
            sprintf(prefix, "%s/", split->keys[i]);
            const size_t plen = strlen(prefix);
            int p = feat_index_lower_bound(x, prefix), c = 0;
            while (p + c < x->n && strncmp(x->e[x->order[p + c]].key, prefix, plen) == 0) c++;
            free(prefix);
            if (!c)
                rc = fail_with(err, errsize, "'%s' is neither a shot nor a video of the features "
                               "in %s (run mcnn-shots features on its tags)", split->keys[i], x->dir);
            first[i] = p, count[i] = c;
        }
        if (count[i] > K) K = count[i];
    }
    if (rc == 0) {
        s->n = n, s->K = K, s->D = D, s->L = split->K;
        s->x = shots_xcalloc((size_t)n * K * D, sizeof(float));
        s->lengths = shots_xmalloc((size_t)n * sizeof(int32_t));
        s->targets = shots_xmalloc((size_t)n * split->K * sizeof(float));
        s->keys = split->keys;
    }
    float **cache = shots_xcalloc((size_t)x->nshards, sizeof *cache);
    int64_t *rows = shots_xcalloc((size_t)x->nshards, sizeof *rows);
    for (int i = 0; i < n && rc == 0; i++) {
        float *dst = s->x + (size_t)i * K * D;
        s->lengths[i] = count[i];
        for (int k = 0; k < split->K; k++)
            s->targets[(size_t)i * split->K + k] = split->targets[(size_t)i * split->K + k];
        if (first[i] < 0) { /* a shot: its frames */
            const feat_entry *e = &x->e[-1 - first[i]];
            const float *src = entry_frames(cache, rows, x, e, err, errsize);
            if (!src) rc = -1;
            else memcpy(dst, src, (size_t)e->frames * D * sizeof(float));
            continue;
        }
        /* a video: its shots' means, in the index's order (the tags' order) */
        int *run = shots_xmalloc((size_t)count[i] * sizeof *run);
        for (int c = 0; c < count[i]; c++) run[c] = x->order[first[i] + c];
        qsort(run, (size_t)count[i], sizeof *run, by_int);
        for (int c = 0; c < count[i] && rc == 0; c++) {
            const feat_entry *e = &x->e[run[c]];
            const float *src = entry_frames(cache, rows, x, e, err, errsize);
            if (!src) {
                rc = -1;
                break;
            }
            for (int d = 0; d < D; d++) {
                double sum = 0;
                for (int f = 0; f < e->frames; f++) sum += src[(size_t)f * D + d];
                dst[(size_t)c * D + d] = (float)(sum / e->frames);
            }
        }
        free(run);
    }
    for (int i = 0; i < x->nshards; i++) free(cache[i]);
    free(cache), free(rows), free(first), free(count);
    if (rc) shot_samples_free(s);
    return rc;
}

void shot_samples_free(shot_samples *s)
{
    free(s->x), free(s->lengths), free(s->targets);
    memset(s, 0, sizeof *s);
}
