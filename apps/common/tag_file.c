/* Reading --out-jsonl files; see tag_file.h. */
#define _XOPEN_SOURCE 700
#include "tag_file.h"

#include "args.h"

#include "mcnn/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int jsonl_labels_kept(int top, int L)
{
    const int k = top > 5 ? top : 5;
    return k < L ? k : L;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n), d[n] = '\0';
    return d;
}

/* ---- reading ------------------------------------------------------------------------------- */
typedef struct label_index {
    const char *name;
    int index;
} label_index;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const label_index *)a)->name, ((const label_index *)b)->name);
}

static int read_all(const char *path, char **text, size_t *len, char *err, size_t errsize)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fail_with(err, errsize, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *b = realloc(buf, 2 * cap + 1);
            if (!b) free(buf);
            buf = b, cap *= 2;
        }
    }
    const int bad = ferror(f);
    fclose(f);
    if (!buf) return fail_with(err, errsize, "%s: out of memory", path);
    if (bad) return free(buf), fail_with(err, errsize, "%s: cannot read", path);
    buf[n] = '\0';
    *text = buf, *len = n;
    return 0;
}

static int parse_header(tag_file *f, const char *line, size_t n, char *err, size_t errsize)
{
    mcnn_json_doc doc;
    if (mcnn_json_parse(&doc, line, n) != MCNN_OK)
        return fail_with(err, errsize, "%s line 1: %s", f->path, mcnn_last_error());
    const mcnn_json *r = doc.root, *labels = mcnn_json_get(r, "labels");
    const mcnn_json *top = mcnn_json_get(r, "top"), *w1 = mcnn_json_get(r, "weak_top1"),
                    *w2 = mcnn_json_get(r, "weak_rest");
    int rc = 0;
    if (!mcnn_json_get(r, "mcnn_classify_tags") || !labels || labels->type != MCNN_JSON_ARRAY ||
        !labels->count || !top || !top->is_int || top->i < 1 || !w1 || !w2 ||
        w1->type != MCNN_JSON_NUMBER || w2->type != MCNN_JSON_NUMBER) {
        rc = fail_with(err, errsize, "%s line 1: not the header of an mcnn-classify --out-jsonl "
                       "file", f->path);
    } else {
        f->L = (int)labels->count;
        f->top = top->i < f->L ? (int)top->i : f->L;
        f->weak_top1 = w1->num, f->weak_rest = w2->num;
        const mcnn_json *p = mcnn_json_get(r, "precision");
        snprintf(f->precision, sizeof f->precision, "%s",
                 p && p->type == MCNN_JSON_STRING ? p->str : "fp32");
        f->labels = calloc((size_t)f->L, sizeof *f->labels);
        int i = 0;
        for (const mcnn_json *l = labels->child; f->labels && l; l = l->next, i++)
            if (l->type != MCNN_JSON_STRING || !(f->labels[i] = dup_n(l->str, l->len))) break;
        if (!f->labels || i < f->L)
            rc = fail_with(err, errsize, "%s line 1: bad or unreadable labels", f->path);
    }
    mcnn_json_free(&doc);
    return rc;
}

static int64_t get_int(const mcnn_json *o, const char *key, int *bad)
{
    const mcnn_json *v = mcnn_json_get(o, key);
    if (!v || !v->is_int) return *bad = 1, 0;
    return v->i;
}

static double get_num(const mcnn_json *o, const char *key, int *bad)
{
    const mcnn_json *v = mcnn_json_get(o, key);
    if (!v || v->type != MCNN_JSON_NUMBER) return *bad = 1, 0;
    return v->num;
}

static char *get_str(const mcnn_json *o, const char *key, int *bad)
{
    const mcnn_json *v = mcnn_json_get(o, key);
    char *s = v && v->type == MCNN_JSON_STRING && strlen(v->str) == v->len ? dup_n(v->str, v->len)
                                                                           : NULL;
    if (!s) *bad = 1;
    return s;
}

/* One line after the header into a record; a message says what is wrong with it. */
static int parse_record(tag_record *t, const tag_file *f, const label_index *by, const char *line,
                        size_t n, char *why, size_t whysize)
{
    memset(t, 0, sizeof *t);
    mcnn_json_doc doc;
    if (mcnn_json_parse(&doc, line, n) != MCNN_OK)
        return snprintf(why, whysize, "%s", mcnn_last_error()), -1;
    const mcnn_json *r = doc.root;
    int bad = r->type != MCNN_JSON_OBJECT;
    t->video = get_str(r, "video", &bad);
    const int64_t input = get_int(r, "input", &bad);
    t->input = input >= 0 && input <= 1000000000 ? (int)input : (bad = 1, 0);
    const mcnn_json *done = mcnn_json_get(r, "done");
    if (done) {
        t->done = 1;
        t->shots = get_int(r, "shots", &bad);
        t->failed = get_int(r, "failed", &bad);
        bad |= done->type != MCNN_JSON_BOOL || !done->boolean;
    } else {
        t->key = get_str(r, "shot", &bad);
        t->id = get_str(r, "id", &bad);
        t->n = get_int(r, "n", &bad);
        t->start_frame = get_int(r, "start_frame", &bad);
        t->end_frame = get_int(r, "end_frame", &bad);
        t->start_time = get_num(r, "start_time", &bad);
        t->end_time = get_num(r, "end_time", &bad);
        const int64_t frames = get_int(r, "frames", &bad);
        t->frames = frames >= 0 && frames <= 1000000000 ? (int)frames : (bad = 1, 0);
        const mcnn_json *sm = mcnn_json_get(r, "sampled_frames"), *lab = mcnn_json_get(r, "labels");
        if (sm && sm->type == MCNN_JSON_ARRAY) {
            t->sampled = malloc((sm->count ? sm->count : 1) * sizeof *t->sampled);
            bad |= !t->sampled;
            for (const mcnn_json *e = sm->child; t->sampled && e; e = e->next) {
                bad |= !e->is_int;
                t->sampled[t->nsampled++] = e->i;
            }
        } else if (sm) {
            bad = 1;
        }
        const int want = jsonl_labels_kept(f->top, f->L);
        if (!lab || lab->type != MCNN_JSON_OBJECT || (int)lab->count != want) {
            bad = 1;
        } else {
            t->label = malloc((size_t)want * sizeof *t->label);
            t->score = malloc((size_t)want * sizeof *t->score);
            bad |= !t->label || !t->score;
            for (const mcnn_json *e = lab->child; !bad && e; e = e->next) {
                label_index key = {e->key, 0};
                const label_index *hit = bsearch(&key, by, (size_t)f->L, sizeof *by, by_name);
                if (!hit || e->type != MCNN_JSON_NUMBER) {
                    snprintf(why, whysize, "label '%s' is not one of the header's", e->key);
                    mcnn_json_free(&doc);
                    return -1;
                }
                t->label[t->ntop] = hit->index;
                t->score[t->ntop++] = (float)e->num;
            }
        }
    }
    mcnn_json_free(&doc);
    if (bad) return snprintf(why, whysize, "a field is missing or has the wrong type"), -1;
    t->line = dup_n(line, n);
    if (!t->line) return snprintf(why, whysize, "out of memory"), -1;
    return 0;
}

static void record_free(tag_record *t)
{
    free(t->video), free(t->key), free(t->id), free(t->sampled), free(t->label), free(t->score);
    free(t->line);
}

int tag_file_read(tag_file *f, const char *path, char *err, size_t errsize)
{
    memset(f, 0, sizeof *f);
    char *text = NULL;
    size_t len = 0;
    f->path = dup_n(path, strlen(path));
    if (!f->path) return fail_with(err, errsize, "out of memory");
    if (read_all(path, &text, &len, err, errsize)) return -1;
    const char *end = text + len, *nl = memchr(text, '\n', len);
    if (!nl) { /* empty, or a header cut off while it was written */
        f->truncated = len > 0;
        free(text);
        return 0;
    }
    int rc = parse_header(f, text, (size_t)(nl - text), err, errsize);
    if (!rc && !(f->header = dup_n(text, (size_t)(nl - text))))
        rc = fail_with(err, errsize, "out of memory");
    label_index *by = rc ? NULL : malloc((size_t)f->L * sizeof *by);
    if (!rc && !by) rc = fail_with(err, errsize, "out of memory");
    for (int i = 0; !rc && i < f->L; i++) by[i] = (label_index){f->labels[i], i};
    if (!rc) qsort(by, (size_t)f->L, sizeof *by, by_name);
    int64_t cap = 0, lineno = 1;
    for (const char *p = nl + 1; !rc && p < end; lineno++) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) { /* the line a killed run was writing */
            f->truncated = 1;
            break;
        }
        if (f->nrec == cap) {
            cap = cap ? 2 * cap : 1024;
            tag_record *r = realloc(f->rec, (size_t)cap * sizeof *r);
            if (!r) {
                rc = fail_with(err, errsize, "%s: out of memory", path);
                break;
            }
            f->rec = r;
        }
        char why[512];
        if (parse_record(&f->rec[f->nrec], f, by, p, (size_t)(e - p), why, sizeof why)) {
            record_free(&f->rec[f->nrec]);
            rc = fail_with(err, errsize, "%s line %lld: %s (the file is damaged: only a cut-off "
                           "last line is expected after a crash)", path, (long long)lineno + 1,
                           why);
            break;
        }
        f->nrec++;
        p = e + 1;
    }
    free(by);
    free(text);
    if (rc) tag_file_free(f);
    return rc;
}

void tag_file_free(tag_file *f)
{
    for (int64_t i = 0; i < f->nrec; i++) record_free(&f->rec[i]);
    for (int i = 0; f->labels && i < f->L; i++) free(f->labels[i]);
    free(f->labels), free(f->rec), free(f->header), free(f->path);
    memset(f, 0, sizeof *f);
}

int tag_headers_match(const char *a, const char *b, char *what, size_t whatsize)
{
    if (strcmp(a, b) == 0) return 0;
    mcnn_json_doc da, db;
    snprintf(what, whatsize, "the header");
    if (mcnn_json_parse(&da, a, strlen(a)) != MCNN_OK) return -1;
    if (mcnn_json_parse(&db, b, strlen(b)) != MCNN_OK) return mcnn_json_free(&da), -1;
    for (const mcnn_json *x = da.root->child; x; x = x->next) {
        const mcnn_json *y = mcnn_json_get(db.root, x->key);
        const size_t xn = (x->next ? x->next->pos : strlen(a)) - x->pos;
        const size_t yn = y ? (y->next ? y->next->pos : strlen(b)) - y->pos : 0;
        /* the value's text up to the next member (or the end): equal text, equal value */
        if (!y || xn != yn || memcmp(a + x->pos, b + y->pos, xn) != 0) {
            snprintf(what, whatsize, "\"%s\"", x->key);
            break;
        }
    }
    mcnn_json_free(&da), mcnn_json_free(&db);
    return -1;
}
