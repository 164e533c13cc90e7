/* Data sets on disk: an ImageNet-style folder and MovieCLIP split files; label lists; subsets,
 * held-out splits and label statistics.  IDX files are in idx.c, batches in batch.c. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"
#include "mcnn/data.h"
#include "text/unicode.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

void mcnn_free_label_list(char **names, int count)
{
    if (!names) return;
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}

void mcnn_dataset_free(mcnn_dataset *ds)
{
    if (!ds) return;
    mcnn_free_label_list(ds->class_names, ds->num_classes);
    if (ds->paths)
        for (int i = 0; i < ds->count; i++) free(ds->paths[i]);
    free(ds->paths);
    free(ds->lines);
    free(ds->labels);
    free(ds->targets);
    free(ds->pixels);
    free(ds->bad);
    memset(ds, 0, sizeof *ds);
}

/* A growing array of pointers. */
typedef struct ptr_list {
    void **items;
    int count, capacity;
} ptr_list;

static int list_push(ptr_list *l, void *p)
{
    if (l->count == l->capacity) {
        int cap = l->capacity ? 2 * l->capacity : 64;
        void **t = realloc(l->items, (size_t)cap * sizeof *t);
        if (!t) return -1;
        l->items = t, l->capacity = cap;
    }
    l->items[l->count++] = p;
    return 0;
}

static void list_free(ptr_list *l)
{
    for (int i = 0; i < l->count; i++) free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- label lists -------------------------------------------------------------------------- */
#define LABELS_MAX 100000                   /* ImageNet-21k has 21843 classes */
#define LABEL_MAX_BYTES 1024                /* a line, before trimming        */
#define LABEL_FILE_MAX ((size_t)16 << 20)   /* the file, inflated             */

/* What is wrong with one line's name s[0..n) (UTF-8, no NUL, no control character), written
 * into msg; 0 when nothing is. */
static int label_problem(char *msg, size_t size, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t bad = mcnn_utf8_check(u, n);
    if (bad < n) {
        snprintf(msg, size, "not valid UTF-8 (byte %zu of the line is 0x%02X)", bad + 1, u[bad]);
        return 1;
    }
    for (size_t i = 0; i < n;) {
        size_t at = i;
        uint32_t cp = mcnn_utf8_next(u, &i);
        if (cp == 0) {
            snprintf(msg, size, "a NUL byte (byte %zu of the line)", at + 1);
            return 1;
        }
        if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) {
            snprintf(msg, size, "a control character (U+%04X, byte %zu of the line)", (unsigned)cp,
                     at + 1);
            return 1;
        }
    }
    return 0;
}

/* The first repeated name (after trimming), as its two 1-based line numbers; 0 when none. */
static int first_repeat(char **v, int n, int *first, int *second)
{
    char **sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) return -1;
    memcpy(sorted, v, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i], sorted[i - 1]) == 0) dup = sorted[i];
    free(sorted);
    if (!dup) return 0;
    *first = *second = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(v[i], dup) == 0) {
            if (*first) {
                *second = i + 1;
                break;
            }
            *first = i + 1;
        }
    return 1;
}

mcnn_status mcnn_read_label_list(char ***names, int *count, const char *path)
{
    *names = NULL, *count = 0;
    unsigned char *text;
    size_t len, i = 0;
    MCNN_TRY(mcnn_read_file_maybe_gzip_max(&text, &len, path, LABEL_FILE_MAX));
    if (len >= 3 && text[0] == 0xEF && text[1] == 0xBB && text[2] == 0xBF) i = 3; /* a BOM */
    ptr_list l = {0};
    int lineno = 0, last_nonblank = 0;
    mcnn_status s = MCNN_OK;
    char why[96], ex[MCNN_EXCERPT_SIZE];
    while (i < len && s == MCNN_OK) {
        const unsigned char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len, a = i, b = end;
        i = end + 1;
        if (++lineno > LABELS_MAX) {
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: more than %d lines", path, LABELS_MAX);
            break;
        }
        if (b - a > LABEL_MAX_BYTES) {
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%d: a line longer than %d bytes", path, lineno,
                               LABEL_MAX_BYTES);
            break;
        }
        if (b > a && text[b - 1] == '\r') b--; /* CRLF */
        while (a < b && (text[a] == ' ' || text[a] == '\t')) a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t')) b--;
        if (label_problem(why, sizeof why, (const char *)text + a, b - a)) {
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%d: %s in '%s'", path, lineno, why,
                               mcnn_utf8_excerpt(ex, (const char *)text + a, b - a));
            break;
        }
        if (b > a) last_nonblank = lineno;
        char *copy = malloc(b - a + 1);
        if (!copy || list_push(&l, copy)) {
            free(copy);
            s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        memcpy(copy, text + a, b - a);
        copy[b - a] = '\0';
    }
    free(text);
    /* trailing blank lines are not labels; blank lines in between are an error (a shifted list) */
    while (s == MCNN_OK && l.count > last_nonblank) free(l.items[--l.count]);
    for (int k = 0; s == MCNN_OK && k < l.count; k++)
        if (!((char *)l.items[k])[0])
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%d: blank label name", path, k + 1);
    if (s == MCNN_OK && l.count == 0) s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: no labels", path);
    int first, second, rep = s == MCNN_OK ? first_repeat((char **)l.items, l.count, &first, &second) : 0;
    if (rep < 0) s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    if (rep > 0)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%d: label '%s' repeats line %d", path, second,
                           mcnn_utf8_excerpt(ex, l.items[second - 1], strlen(l.items[second - 1])),
                           first);
    if (s != MCNN_OK) {
        list_free(&l);
        return s;
    }
    *names = (char **)l.items, *count = l.count;
    return MCNN_OK;
}

mcnn_status mcnn_dataset_set_class_names(mcnn_dataset *ds, const char *const *names, int count)
{
    if (count != ds->num_classes)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: %d class names for %d classes", ds->source,
                              count, ds->num_classes);
    char **copy = calloc((size_t)count, sizeof *copy);
    if (!copy) return mcnn_set_error(MCNN_ERR_NOMEM, "out of memory");
    for (int k = 0; k < count; k++)
        if (!(copy[k] = dup_str(names[k]))) {
            mcnn_free_label_list(copy, count);
            return mcnn_set_error(MCNN_ERR_NOMEM, "out of memory");
        }
    mcnn_free_label_list(ds->class_names, ds->num_classes);
    ds->class_names = copy;
    return MCNN_OK;
}

/* ---- an ImageNet-style folder ------------------------------------------------------------- */

static int is_image_name(const char *name)
{
    static const char *const ext[] = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm"};
    const char *dot = strrchr(name, '.');
    if (!dot || name[0] == '.') return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t k = 0;
        while (dot[k] && ext[i][k] && tolower((unsigned char)dot[k]) == ext[i][k]) k++;
        if (!dot[k] && !ext[i][k]) return 1;
    }
    return 0;
}

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* The sub-folders (want_dirs) or the image files of dir, by name, sorted; hidden ones skipped. */
static mcnn_status list_dir(ptr_list *out, const char *dir, int want_dirs)
{
    DIR *d = opendir(dir);
    if (!d) return mcnn_set_error(MCNN_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    mcnn_status s = MCNN_OK;
    while (s == MCNN_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *full = join_path(dir, e->d_name);
        struct stat sb;
        if (!full) {
            s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        int keep = stat(full, &sb) == 0 && (want_dirs ? S_ISDIR(sb.st_mode)
                                                       : S_ISREG(sb.st_mode) &&
                                                             is_image_name(e->d_name));
        free(full);
        if (!keep) continue;
        char *name = dup_str(e->d_name);
        if (!name || list_push(out, name)) {
            free(name);
            s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", dir);
        }
    }
    closedir(d);
    if (s == MCNN_OK && out->count > 1)
        qsort(out->items, (size_t)out->count, sizeof(void *), cmp_str);
    return s;
}

mcnn_status mcnn_dataset_load_folder(mcnn_dataset *ds, const char *root)
{
    memset(ds, 0, sizeof *ds);
    snprintf(ds->source, sizeof ds->source, "%s", root);
    ptr_list classes = {0}, paths = {0};
    int32_t *lab = NULL; /* parallel to paths */
    size_t lab_cap = 0;
    mcnn_status s = list_dir(&classes, root, 1);
    if (s == MCNN_OK && classes.count == 0)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: no class folders (expected one sub-folder per "
                           "class)", root);
    for (int k = 0; s == MCNN_OK && k < classes.count; k++) {
        char *dir = join_path(root, classes.items[k]);
        ptr_list files = {0};
        if (!dir) s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", root);
        if (s == MCNN_OK) s = list_dir(&files, dir, 0);
        if (s == MCNN_OK && files.count == 0)
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: class folder without images (.png .jpg "
                               ".jpeg .ppm .pgm .pnm)", dir);
        for (int i = 0; s == MCNN_OK && i < files.count; i++) {
            char *full = join_path(dir, files.items[i]);
            if ((size_t)paths.count == lab_cap) {
                lab_cap = lab_cap ? 2 * lab_cap : 256;
                int32_t *t = realloc(lab, lab_cap * sizeof *t);
                if (!t) {
                    free(full);
                    s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", root);
                    break;
                }
                lab = t;
            }
            if (!full || list_push(&paths, full)) {
                free(full);
                s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", root);
                break;
            }
            lab[paths.count - 1] = k;
        }
        list_free(&files);
        free(dir);
    }
    if (s == MCNN_OK) {
        ds->count = paths.count;
        ds->num_classes = classes.count;
        ds->class_names = (char **)classes.items;
        ds->paths = (char **)paths.items;
        ds->labels = lab;
        ds->lines = calloc((size_t)paths.count, sizeof(int));
        classes = (ptr_list){0}, paths = (ptr_list){0}, lab = NULL;
        if (!ds->lines) s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", root);
    }
    list_free(&classes);
    list_free(&paths);
    free(lab);
    if (s != MCNN_OK) mcnn_dataset_free(ds);
    return s;
}

/* ---- MovieCLIP split files ---------------------------------------------------------------- */

/* The folder part of a path ("." when none). */
static void dir_of(char *out, size_t size, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, size, ".");
    else if (slash == path) snprintf(out, size, "/");
    else snprintf(out, size, "%.*s", (int)(slash - path), path);
}

mcnn_status mcnn_dataset_load_split(mcnn_dataset *ds, const char *split_path, const char *root,
                                    const char *labels_path)
{
    memset(ds, 0, sizeof *ds);
    snprintf(ds->source, sizeof ds->source, "%s", split_path);
    char **names;
    int K;
    MCNN_TRY(mcnn_read_label_list(&names, &K, labels_path));
    char rootbuf[1024];
    if (!root || !*root) {
        dir_of(rootbuf, sizeof rootbuf, split_path);
        root = rootbuf;
    }
    FILE *f = fopen(split_path, "rb");
    if (!f) {
        mcnn_free_label_list(names, K);
        return mcnn_set_error(MCNN_ERR_IO, "%s: cannot open: %s", split_path, strerror(errno));
    }
    ptr_list paths = {0};
    int *lines = NULL;
    unsigned char *targets = NULL;
    size_t cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t n;
    int lineno = 0, multi = 0;
    mcnn_status s = MCNN_OK;
    while (s == MCNN_OK && (n = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        if ((size_t)n != strlen(line)) {
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%d: NUL byte in the line", split_path, lineno);
            break;
        }
        char *save = NULL, *path = strtok_r(line, " \t\r\n", &save);
        if (!path || path[0] == '#') continue;
        if ((size_t)paths.count == cap) {
            size_t c2 = cap ? 2 * cap : 1024;
            int *l2 = realloc(lines, c2 * sizeof *l2);
            if (l2) lines = l2;
            unsigned char *t2 = l2 ? realloc(targets, c2 * (size_t)K) : NULL;
            if (t2) targets = t2;
            if (!l2 || !t2) {
                s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", split_path);
                break;
            }
            cap = c2;
        }
        unsigned char *t = targets + (size_t)paths.count * K;
        memset(t, 0, (size_t)K);
        int nlab = 0;
        for (char *tok; (tok = strtok_r(NULL, " \t\r\n", &save));) {
            char *end;
            errno = 0;
            long v = strtol(tok, &end, 10);
            if (*end || end == tok || errno) {
                s = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%d: '%s' is not a label index",
                                   split_path, lineno, tok);
                break;
            }
            if (v < 0 || v >= K) {
                s = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%d: label index %ld is out of range "
                                   "(%s has %d labels: 0 to %d)", split_path, lineno, v,
                                   labels_path, K, K - 1);
                break;
            }
            if (!t[v]) nlab++;
            t[v] = 1;
        }
        if (s != MCNN_OK) break;
        if (nlab == 0) {
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s:%d: '%s' has no label index", split_path,
                               lineno, path);
            break;
        }
        multi |= nlab > 1;
        char *full = path[0] == '/' ? dup_str(path) : join_path(root, path);
        struct stat sb;
        if (!full || list_push(&paths, full)) {
            free(full);
            s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", split_path);
        } else if (stat(full, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            s = mcnn_set_error(MCNN_ERR_NOT_FOUND, "%s:%d: image '%s' not found (%s: %s)",
                               split_path, lineno, path, full,
                               stat(full, &sb) ? strerror(errno) : "not a regular file");
        } else {
            lines[paths.count - 1] = lineno;
        }
    }
    if (s == MCNN_OK && ferror(f)) s = mcnn_set_error(MCNN_ERR_IO, "%s: read error", split_path);
    fclose(f);
    free(line);
    if (s == MCNN_OK && paths.count == 0)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: empty split (no '<path> <label index>' lines)",
                           split_path);
    if (s == MCNN_OK) {
        ds->count = paths.count;
        ds->num_classes = K;
        ds->class_names = names, names = NULL;
        ds->paths = (char **)paths.items, paths = (ptr_list){0};
        ds->lines = lines, lines = NULL;
        ds->multi_label = multi;
        ds->labels = malloc((size_t)ds->count * sizeof(int32_t));
        if (!ds->labels) s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", split_path);
        for (int i = 0; s == MCNN_OK && i < ds->count; i++) {
            const unsigned char *t = targets + (size_t)i * K;
            int k = 0;
            while (!t[k]) k++;
            ds->labels[i] = k;
        }
        if (multi) ds->targets = targets, targets = NULL;
    }
    mcnn_free_label_list(names, K);
    list_free(&paths);
    free(lines);
    free(targets);
    if (s != MCNN_OK) mcnn_dataset_free(ds);
    return s;
}

/* ---- subsets and held-out splits ---------------------------------------------------------- */

mcnn_status mcnn_dataset_subset(mcnn_dataset *dst, const mcnn_dataset *src, const int *indices,
                                int n)
{
    memset(dst, 0, sizeof *dst);
    if (n <= 0) return mcnn_set_error(MCNN_ERR_ARG, "%s: empty subset", src->source);
    for (int i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= src->count)
            return mcnn_set_error(MCNN_ERR_ARG, "%s: sample %d of %d does not exist", src->source,
                                  indices[i], src->count);
    const int K = src->num_classes;
    dst->count = n;
    dst->num_classes = K;
    dst->multi_label = src->multi_label;
    dst->channels = src->channels, dst->height = src->height, dst->width = src->width;
    dst->skip_corrupt = src->skip_corrupt, dst->warn = src->warn, dst->warn_ctx = src->warn_ctx;
    snprintf(dst->source, sizeof dst->source, "%s", src->source);
    mcnn_status s = mcnn_dataset_set_class_names(dst, (const char *const *)src->class_names, K);
    if (s != MCNN_OK) {
        dst->num_classes = 0;
        mcnn_dataset_free(dst);
        return s;
    }
    const size_t img = (size_t)src->channels * src->height * src->width;
    int ok = (dst->labels = malloc((size_t)n * sizeof(int32_t))) != NULL;
    if (src->targets) ok = ok && (dst->targets = malloc((size_t)n * K)) != NULL;
    if (src->pixels) ok = ok && (dst->pixels = malloc((size_t)n * img)) != NULL;
    if (src->paths) ok = ok && (dst->paths = calloc((size_t)n, sizeof(char *))) != NULL;
    if (src->lines) ok = ok && (dst->lines = malloc((size_t)n * sizeof(int))) != NULL;
    if (src->bad) ok = ok && (dst->bad = malloc((size_t)n)) != NULL;
    for (int i = 0; ok && i < n; i++) {
        const int j = indices[i];
        dst->labels[i] = src->labels[j];
        if (src->targets) memcpy(dst->targets + (size_t)i * K, src->targets + (size_t)j * K, K);
        if (src->pixels) memcpy(dst->pixels + i * img, src->pixels + j * img, img);
        if (src->paths) ok = (dst->paths[i] = dup_str(src->paths[j])) != NULL;
        if (src->lines) dst->lines[i] = src->lines[j];
        if (src->bad) dst->bad[i] = src->bad[j];
    }
    if (!ok) {
        mcnn_dataset_free(dst);
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", src->source);
    }
    return MCNN_OK;
}

mcnn_status mcnn_dataset_split(mcnn_dataset *train, mcnn_dataset *val, const mcnn_dataset *src,
                               double fraction, uint64_t seed)
{
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    const int N = src->count;
    const int nval = (int)(fraction * N + 0.5);
    if (!(fraction > 0 && fraction < 1) || nval < 1 || nval >= N)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: a held-out fraction of %g of %d samples leaves "
                              "an empty side", src->source, fraction, N);
    int *perm = malloc((size_t)N * sizeof *perm);
    unsigned char *in_val = calloc((size_t)N, 1);
    if (!perm || !in_val) {
        free(perm);
        free(in_val);
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", src->source);
    }
    mcnn_rng r;
    mcnn_rng_seed(&r, seed);
    for (int i = 0; i < N; i++) perm[i] = i;
    for (int i = N - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)mcnn_rng_below(&r, (uint32_t)i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (int i = 0; i < nval; i++) in_val[perm[i]] = 1;
    int a = 0, b = 0; /* back into the source's order: val first in perm, train after it */
    for (int i = 0; i < N; i++) {
        if (in_val[i]) perm[b++] = i;
    }
    for (int i = 0; i < N; i++) {
        if (!in_val[i]) perm[nval + a++] = i;
    }
    mcnn_status s = mcnn_dataset_subset(val, src, perm, nval);
    if (s == MCNN_OK) s = mcnn_dataset_subset(train, src, perm + nval, N - nval);
    if (s != MCNN_OK) mcnn_dataset_free(val);
    free(perm);
    free(in_val);
    return s;
}

/* ---- label statistics --------------------------------------------------------------------- */

void mcnn_dataset_class_counts(const mcnn_dataset *ds, int64_t *counts)
{
    const int K = ds->num_classes;
    for (int k = 0; k < K; k++) counts[k] = 0;
    for (int i = 0; i < ds->count; i++) {
        if (ds->targets) {
            for (int k = 0; k < K; k++) counts[k] += ds->targets[(size_t)i * K + k];
        } else {
            counts[ds->labels[i]]++;
        }
    }
}

void mcnn_dataset_pos_weight(const mcnn_dataset *ds, float *pos_weight)
{
    const int K = ds->num_classes;
    int64_t *pos = malloc((size_t)K * sizeof *pos);
    if (!pos) { /* no memory for K counts: unweighted is the safe answer */
        for (int k = 0; k < K; k++) pos_weight[k] = 1.0f;
        return;
    }
    mcnn_dataset_class_counts(ds, pos);
    for (int k = 0; k < K; k++)
        pos_weight[k] = pos[k] ? (float)((double)(ds->count - pos[k]) / (double)pos[k]) : 1.0f;
    free(pos);
}
