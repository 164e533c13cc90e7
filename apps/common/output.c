/* Writing the table, the JSON, the weak labels and the embeddings; see output.h. */
#include "output.h"

#include "args.h"
#include "escape.h"
#include "mcnn.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A JSON string literal straight to a file. */
static void put_json_string(FILE *f, const char *s)
{
    char *q = json_quote(s);
    fputs(q ? q : "\"\"", f);
    free(q);
}

/* A JSON number in format fmt, or null for NaN and infinities (JSON has neither). */
static void put_json_number(FILE *f, const char *fmt, double v)
{
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("null", f);
}

/* Text for the terminal or a line of text: control characters and invalid bytes escaped. */
static void put_display(FILE *f, const char *s)
{
    char *d = display_text(s, NULL);
    fputs(d ? d : "?", f);
    free(d);
}

void put_sampled_frames(FILE *f, const shot_out *s)
{
    if (!s->sampled) return;
    fputs(", \"sampled_frames\": [", f);
    for (int i = 0; i < s->nsampled; i++)
        fprintf(f, i ? ", %lld" : "%lld", (long long)s->sampled[i]);
    fputc(']', f);
}

void rank_labels(int *order, const float *scores, int L, int k)
{
    mcnn_topk(order, scores, L, k > L ? L : k); /* ties: the earlier label */
}

int outputs_open(outputs *o, const char *const *labels, int L, int top, int table,
                 const char *json_path, const char *weak_path, double weak_top1,
                 double weak_rest, char *err, size_t errsize)
{
    memset(o, 0, sizeof *o);
    o->labels = labels;
    o->L = L;
    o->top = top < L ? top : L;
    o->weak_top1 = weak_top1;
    o->weak_rest = weak_rest;
    o->id_width = 32;
    o->timed = 1;
    o->order = malloc((size_t)L * sizeof(int));
    if (!o->order) return fail_with(err, errsize, "out of memory");
    if (json_path && outfile_open(&o->json, json_path, err, errsize)) return free(o->order), -1;
    if (weak_path && outfile_open(&o->weak, weak_path, err, errsize)) {
        outfile_discard(&o->json);
        free(o->order);
        return -1;
    }
    o->table = table;
    if (table && outfile_open(&o->out, "-", err, errsize)) {
        outfile_discard(&o->json), outfile_discard(&o->weak);
        free(o->order);
        return -1;
    }
    if (o->json.f) fputc('{', o->json.f);
    return 0;
}

/* The header, before the first row (no header when nothing was classified). */
static void table_header(outputs *o)
{
    FILE *f = o->out.f;
    fprintf(f, "%-*s", o->id_width, "shot");
    if (o->timed) fprintf(f, " %7s %7s %9s %9s ", "first", "last", "start s", "end s");
    fprintf(f, " top %d (score)\n", o->top);
    o->header_done = 1;
}

static void table_row(outputs *o, const shot_out *s)
{
    FILE *f = o->out.f;
    if (!o->header_done) table_header(o);
    char *id = display_fit(s->id, o->id_width);
    fputs(id ? id : "?", f);
    free(id);
    if (o->timed && s->still) fprintf(f, " %7s %7s %9s %9s ", "-", "-", "-", "-");
    else if (o->timed)
        fprintf(f, " %7lld %7lld %9.3f %9.3f ", (long long)s->start_frame,
                (long long)s->end_frame, s->start_time, s->end_time);
    for (int k = 0; k < o->top; k++) {
        fputc(' ', f);
        put_display(f, o->labels[o->order[k]]);
        fprintf(f, " (%.4f)%s", s->scores[o->order[k]], k + 1 < o->top ? "," : "");
    }
}

static void json_shot(outputs *o, const shot_out *s)
{
    FILE *f = o->json.f;
    if (!o->json_video || strcmp(o->json_video, s->video) != 0) { /* a new video object */
        if (o->json_video) fputs("\n  }", f);
        fputs(o->json_videos++ ? ",\n  " : "\n  ", f);
        put_json_string(f, s->video);
        fputs(": {", f);
        free(o->json_video);
        size_t n = strlen(s->video) + 1;
        o->json_video = malloc(n);
        if (o->json_video) memcpy(o->json_video, s->video, n);
        o->json_shots = 0;
    }
    fputs(o->json_shots++ ? ",\n    " : "\n    ", f);
    put_json_string(f, s->key);
    fprintf(f, ": {\"start_frame\": %lld, \"end_frame\": %lld, \"start_time\": ",
            (long long)s->start_frame, (long long)s->end_frame);
    put_json_number(f, "%.3f", s->start_time);
    fputs(", \"end_time\": ", f);
    put_json_number(f, "%.3f", s->end_time);
    put_sampled_frames(f, s);
    if (o->precision) fprintf(f, ", \"precision\": \"%s\"", o->precision);
    fputs(", \"labels\": {", f);
    for (int k = 0; k < o->top; k++) {
        if (k) fputs(", ", f);
        put_json_string(f, o->labels[o->order[k]]);
        fputs(": ", f);
        put_json_number(f, "%.8g", s->scores[o->order[k]]);
    }
    fputs("}}", f);
}

/* The shot's true class against the ranking: "| truth Shirt: right" or "| truth Coat: WRONG
 * (rank 3)" at the end of its table row, and the tally for the summary. */
static void put_truth(outputs *o, const shot_out *s)
{
    char name[256];
    FILE *f = o->table ? o->out.f : NULL;
    const int t = truth_label(s->id, o->truth, o->labels, o->L, name, sizeof name);
    if (t < 0) {
        o->truth_unknown++;
        if (!o->truth_missing[0]) snprintf(o->truth_missing, sizeof o->truth_missing, "%s", name);
        if (f) fputs("  | truth '", f), put_display(f, name), fputs("': matches no label", f);
        return;
    }
    int rank = 1; /* as rank_labels orders them: higher scores, then earlier labels on a tie */
    for (int l = 0; l < o->L; l++)
        rank += s->scores[l] > s->scores[t] || (s->scores[l] == s->scores[t] && l < t);
    o->truth_n++;
    o->truth_top1 += rank == 1;
    o->truth_topk += rank <= o->top;
    if (!f) return;
    fputs("  | truth ", f);
    put_display(f, o->labels[t]);
    if (rank == 1) fputs(": right", f);
    else fprintf(f, ": WRONG (rank %d)", rank);
}

void outputs_shot(outputs *o, const shot_out *s)
{
    const int kweak = o->L < 5 ? o->L : 5; /* MovieCLIP looks at the top 5 */
    rank_labels(o->order, s->scores, o->L, o->top > kweak ? o->top : kweak);
    o->shots++;
    if (o->table && !o->out.error) {
        table_row(o, s);
        if (o->truth) put_truth(o, s);
        fputc('\n', o->out.f);
        fflush(o->out.f); /* a row as soon as its shot is done */
        outfile_check(&o->out);
    } else if (o->truth) {
        put_truth(o, s);
    }
    if (o->json.f) json_shot(o, s), outfile_check(&o->json);
    if (o->weak.f && s->scores[o->order[0]] >= o->weak_top1) {
        /* MovieCLIP's multi-label lines: top-1, then those of top-2..5 above the second bar */
        FILE *f = o->weak.f;
        put_display(f, s->id);
        fprintf(f, " %d", o->order[0]);
        for (int k = 1; k < kweak; k++)
            if (s->scores[o->order[k]] >= o->weak_rest) fprintf(f, " %d", o->order[k]);
        fputc('\n', f);
        outfile_check(&o->weak);
    }
}

/* Commit (or discard) one output file; the first error is kept in err. */
static int finish(outfile *f, int complete, int rc, char *err, size_t errsize)
{
    if (!f->f) return rc;
    if (!complete) return outfile_discard(f), rc;
    char msg[1024];
    if (outfile_commit(f, msg, sizeof msg) == 0) return rc;
    if (!rc) snprintf(err, errsize, "%s", msg);
    return -1;
}

int outputs_close(outputs *o, int complete, char *err, size_t errsize)
{
    int rc = 0;
    if (o->json.f) fputs(o->json_video ? "\n  }\n}\n" : "}\n", o->json.f);
    rc = finish(&o->json, complete, rc, err, errsize);
    rc = finish(&o->weak, complete, rc, err, errsize);
    if (complete && o->truth && o->truth_n) {
        FILE *f = o->table && !o->out.error ? o->out.f : stderr;
        fprintf(f, "truth: top-1 right for %lld of %lld (%.1f%%)", (long long)o->truth_top1,
                (long long)o->truth_n, 100.0 * (double)o->truth_top1 / (double)o->truth_n);
        if (o->top > 1)
            fprintf(f, ", top-%d for %lld (%.1f%%)", o->top, (long long)o->truth_topk,
                    100.0 * (double)o->truth_topk / (double)o->truth_n);
        fputc('\n', f);
    }
    if (complete && o->truth_unknown && !rc) {
        char *name = display_text(o->truth_missing, NULL);
        rc = fail_with(err, errsize, "%lld shot(s) have a true class that matches none of the "
                  "model's labels (the first: '%s')", (long long)o->truth_unknown,
                  name ? name : "?");
        free(name);
    }
    rc = finish(&o->out, 1, rc, err, errsize);
    free(o->json_video);
    free(o->order);
    memset(o, 0, sizeof *o);
    return rc ? -1 : 0;
}

/* ---- embeddings ---------------------------------------------------------------------------- */
void embeddings_init(embeddings *e, int dim, int L)
{
    memset(e, 0, sizeof *e);
    e->dim = dim;
    e->L = L;
}

int embeddings_add(embeddings *e, const float *vec, const float *scores, int64_t frame,
                   int64_t shot, const char *name)
{
    if (e->n == e->cap) {
        int64_t cap = e->cap ? 2 * e->cap : 256;
        float *v = realloc(e->vec, (size_t)cap * e->dim * sizeof(float));
        if (v) e->vec = v;
        float *s = v ? realloc(e->scores, (size_t)cap * e->L * sizeof(float)) : NULL;
        if (s) e->scores = s;
        int64_t *f = s ? realloc(e->frame, (size_t)cap * sizeof(int64_t)) : NULL;
        if (f) e->frame = f;
        int64_t *sh = f ? realloc(e->shot, (size_t)cap * sizeof(int64_t)) : NULL;
        if (sh) e->shot = sh;
        char **nm = sh ? realloc(e->names, (size_t)cap * sizeof(char *)) : NULL;
        if (nm) e->names = nm;
        if (!nm) return -1;
        e->cap = cap;
    }
    size_t len = strlen(name) + 1;
    char *copy = malloc(len);
    if (!copy) return -1;
    memcpy(copy, name, len);
    memcpy(e->vec + e->n * e->dim, vec, (size_t)e->dim * sizeof(float));
    memcpy(e->scores + e->n * e->L, scores, (size_t)e->L * sizeof(float));
    e->frame[e->n] = frame;
    e->shot[e->n] = shot;
    e->names[e->n] = copy;
    e->n++;
    return 0;
}

/* A JSON array of strings (each as valid UTF-8: escape.h), malloc'ed. */
static char *json_array(const char *const *s, int64_t n)
{
    size_t len = 3, used = 1;
    char *a = malloc(len);
    if (a) a[0] = '[';
    for (int64_t i = 0; i < n && a; i++) {
        char *q = json_quote(s[i]);
        size_t k = q ? strlen(q) : 0;
        char *b = q ? realloc(a, len + k + 1) : NULL;
        if (!b) {
            free(q), free(a);
            return NULL;
        }
        a = b, len += k + 1;
        if (i) a[used++] = ',';
        memcpy(a + used, q, k);
        used += k;
        free(q);
    }
    if (a) a[used++] = ']', a[used] = '\0';
    return a;
}

int embeddings_save(const embeddings *e, const char *path, const char *tensor_name,
                    const char *kind, const char *model_path, const char *const *labels,
                    char *err, size_t errsize)
{
    char *names = json_array((const char *const *)e->names, e->n);
    char *labs = json_array(labels, e->L), *model = utf8_from_name(model_path);
    if (!names || !labs || !model) {
        free(names), free(labs), free(model);
        return fail_with(err, errsize, "%s: out of memory", path);
    }
    static const float none = 0;
    static const int64_t none_i = 0;
    mcnn_st_entry t[4] = {
        {tensor_name, MCNN_DTYPE_F32, 2, {e->n, e->dim}, e->n ? (const void *)e->vec : &none},
        {"scores", MCNN_DTYPE_F32, 2, {e->n, e->L}, e->n ? (const void *)e->scores : &none},
        {"frame_index", MCNN_DTYPE_I64, 1, {e->n}, e->n ? (const void *)e->frame : &none_i},
        {"shot_index", MCNN_DTYPE_I64, 1, {e->n}, e->n ? (const void *)e->shot : &none_i},
    };
    const char *meta[] = {"kind", kind, "model", model, "labels", labs, "names", names};
    mcnn_status s = mcnn_safetensors_write(path, t, 4, meta, 4);
    free(names), free(labs), free(model);
    return s == MCNN_OK ? 0 : fail_with(err, errsize, "%s", mcnn_last_error());
}

void embeddings_free(embeddings *e)
{
    for (int64_t i = 0; i < e->n; i++) free(e->names[i]);
    free(e->names);
    free(e->vec);
    free(e->scores);
    free(e->frame);
    free(e->shot);
    memset(e, 0, sizeof *e);
}
