/* Reading mcnn-classify's tags JSON (MovieCLIP's format) into shots; its JSONL shards are
 * tags_jsonl.c's.  See shots.h. */
#define _XOPEN_SOURCE 700
#include "shots.h"

#include "../common/args.h"
#include "mcnn/json.h"

#include <stdlib.h>
#include <string.h>

/* A byte that would split or end a split-file line, or our escape character. */
static int needs_escape(unsigned char c) { return c <= 0x20 || c == 0x7f || c == '%'; }

static size_t escape_into(char *dst, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (needs_escape(*p)) {
            if (dst) dst[n] = '%', dst[n + 1] = hex[*p >> 4], dst[n + 2] = hex[*p & 15];
            n += 3;
        } else {
            if (dst) dst[n] = (char)*p;
            n++;
        }
    }
    return n;
}

char *name_escape(const char *s)
{
    const size_t n = escape_into(NULL, s);
    char *d = shots_xmalloc(n + 1);
    escape_into(d, s);
    d[n] = '\0';
    return d;
}

char *shot_key(const char *video, const char *shot)
{
    for (;;) { /* relative, as every path of a split file */
        if (video[0] == '/') video++;
        else if (video[0] == '.' && video[1] == '/') video += 2;
        else break;
    }
    const size_t a = escape_into(NULL, video), b = escape_into(NULL, shot);
    char *k = shots_xmalloc(a + b + 2);
    escape_into(k, video);
    k[a] = '/';
    escape_into(k + a + 1, shot);
    k[a + b + 1] = '\0';
    return k;
}

/* Highest score first; ties keep the file's order (an insertion sort: a shot has few labels). */
void tags_rank(tag_label *l, int n)
{
    for (int i = 1; i < n; i++) {
        const tag_label x = l[i];
        int j = i;
        for (; j > 0 && l[j - 1].score < x.score; j--) l[j] = l[j - 1];
        l[j] = x;
    }
}

static int number(const mcnn_json *o, const char *key, double *out)
{
    const mcnn_json *v = mcnn_json_get(o, key);
    if (!v || v->type != MCNN_JSON_NUMBER) return -1;
    *out = v->num;
    return 0;
}

int tags_video_seen(const tags *t, int before, const char *video)
{
    for (int i = 0; i < before; i++)
        if (strcmp(t->shots[i].video, video) == 0) return 1;
    return 0;
}

int tags_read(tags *t, const char *path, char *err, size_t errsize)
{
    unsigned char *text = NULL;
    size_t len = 0;
    if (mcnn_read_file_maybe_gzip(&text, &len, path) != MCNN_OK)
        return fail_with(err, errsize, "%s", mcnn_last_error());
    if (tags_is_jsonl(text, len)) {
        mcnn_free(text);
        return tags_read_jsonl(t, path, err, errsize);
    }
    mcnn_json_doc *doc = shots_xmalloc(sizeof *doc);
    mcnn_status st = mcnn_json_parse(doc, (const char *)text, len);
    mcnn_free(text);
    if (st != MCNN_OK) {
        free(doc);
        return fail_with(err, errsize, "%s: %s", path, mcnn_last_error());
    }
    /* the documents of earlier files stay alive: a list of them */
    void **docs = t->doc;
    int ndocs = 0;
    while (docs && docs[ndocs]) ndocs++;
    docs = realloc(docs, (size_t)(ndocs + 2) * sizeof *docs);
    if (!docs) app_error("out of memory"), exit(1);
    docs[ndocs] = doc, docs[ndocs + 1] = NULL;
    t->doc = docs;
    const mcnn_json *root = doc->root;
    if (root->type != MCNN_JSON_OBJECT)
        return fail_with(err, errsize, "%s: not a tags file (the top level is a %s, not an object "
                         "of videos)", path, mcnn_json_type_name(root->type));
    const int first_new = t->nshots;
    for (const mcnn_json *v = root->child; v; v = v->next) {
        if (v->type != MCNN_JSON_OBJECT)
            return fail_with(err, errsize, "%s: video '%s' is a %s, not an object of shots", path,
                             v->key, mcnn_json_type_name(v->type));
        if (tags_video_seen(t, first_new, v->key))
            return fail_with(err, errsize, "%s: video '%s' is also in an earlier tags file", path,
                             v->key);
        t->shots = realloc(t->shots, (size_t)(t->nshots + (int)v->count) * sizeof *t->shots);
        if (!t->shots && v->count) app_error("out of memory"), exit(1);
        for (const mcnn_json *s = v->child; s; s = s->next) {
            tag_shot *ts = &t->shots[t->nshots];
            memset(ts, 0, sizeof *ts);
            ts->video = v->key, ts->shot = s->key;
            double sf = 0, ef = 0;
            const mcnn_json *labels = mcnn_json_get(s, "labels");
            if (s->type != MCNN_JSON_OBJECT || number(s, "start_time", &ts->start_time) ||
                number(s, "end_time", &ts->end_time) || number(s, "start_frame", &sf) ||
                number(s, "end_frame", &ef) || !labels || labels->type != MCNN_JSON_OBJECT)
                return fail_with(err, errsize, "%s: shot '%s' of '%s' lacks start_frame, "
                                 "end_frame, start_time, end_time or labels", path, s->key, v->key);
            ts->start_frame = (int64_t)sf, ts->end_frame = (int64_t)ef;
            ts->labels = shots_xcalloc(labels->count, sizeof *ts->labels);
            for (const mcnn_json *l = labels->child; l; l = l->next) {
                if (l->type != MCNN_JSON_NUMBER) continue; /* null: a non-finite score */
                ts->labels[ts->nlabels++] = (tag_label){l->key, l->num};
            }
            tags_rank(ts->labels, ts->nlabels);
            ts->key = shot_key(v->key, s->key);
            t->nshots++;
        }
    }
    return 0;
}

void tags_free(tags *t)
{
    for (int i = 0; i < t->nshots; i++) free(t->shots[i].labels), free(t->shots[i].key);
    free(t->shots);
    void **docs = t->doc;
    for (int i = 0; docs && docs[i]; i++) {
        mcnn_json_free(docs[i]);
        free(docs[i]);
    }
    free(docs);
    tags_free_jsonl(t);
    memset(t, 0, sizeof *t);
}
