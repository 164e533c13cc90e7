/* mcnn-classify merge SHARD.jsonl... [--json FILE] [--weak-labels FILE] [--expect LIST]
 *
 * Joins the --out-jsonl files of a sharded (or resumed) run into MovieCLIP's JSON and weak
 * labels, written by the same code as a single run's (output.c), in the single run's order: by
 * the inputs' places on the command line, then the shots' places in their input.  So a
 * collection tagged in N shards and merged gives the files one process would have written.
 * Refused, with nothing written: files from runs with other settings, and a shot found twice
 * (the same record twice: overlapping shards; two different records: runs that disagree).
 * Reported, exit status 1, the rest still written: an input cut off mid-way (its shard must be
 * resumed), an input that had failures, an expected input that is missing. */
#define _XOPEN_SOURCE 700
#include "classify.h"
#include "jsonl.h"

#include "../common/escape.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct merge_options {
    arg_strings files;
    const char *json, *weak, *expect;
} merge_options;

static const char merge_usage[] =
    "usage: mcnn-classify merge SHARD.jsonl... [--json FILE] [--weak-labels FILE]\n"
    "                           [--expect LIST]\n"
    "\n"
    "Joins the --out-jsonl files of a sharded or resumed run into MovieCLIP's JSON and weak\n"
    "labels, exactly as one mcnn-classify process over all the inputs writes them.\n";

static const char merge_epilog[] =
    "A shot found in two files is refused (nothing is written); an input cut off mid-way (no\n"
    "end line: resume its shard), an input that had failures, and an input of LIST found in\n"
    "no file are named, the rest is written, and the exit status is 1.\n";

/* A shot line, with the file it came from. */
typedef struct shot_ref {
    const tag_record *t;
    int file;
} shot_ref;

static int by_video_key(const void *a, const void *b)
{
    const tag_record *x = ((const shot_ref *)a)->t, *y = ((const shot_ref *)b)->t;
    int c = strcmp(x->video, y->video);
    return c ? c : strcmp(x->key, y->key);
}

static int by_output_order(const void *a, const void *b)
{
    const tag_record *x = ((const shot_ref *)a)->t, *y = ((const shot_ref *)b)->t;
    if (x->input != y->input) return x->input < y->input ? -1 : 1;
    int c = strcmp(x->video, y->video);
    if (c) return c;
    if (x->n != y->n) return x->n < y->n ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The shots of file f whose input has its end line (the others are reported); the end lines
 * of complete inputs go to done[]. */
static int collect(const tag_file *f, int fi, shot_ref *out, int64_t *nout, const char **done,
                   int64_t *ndone)
{
    int bad = 0;
    int64_t start = 0; /* the open input's first line */
    for (int64_t i = 0; i <= f->nrec; i++) {
        const tag_record *t = i < f->nrec ? &f->rec[i] : NULL;
        const tag_record *open = start < i ? &f->rec[start] : NULL;
        if (open && (!t || strcmp(t->video, open->video))) { /* ended without its end line */
            char *name = display_text(open->video, NULL);
            app_error("%s: %s was cut off mid-way (%lld shot%s, no end line): resume its shard "
                      "(--resume) and merge again", f->path, name ? name : "?",
                      (long long)(i - start), i - start == 1 ? "" : "s");
            free(name);
            bad = 1;
            start = i;
        }
        if (!t || !t->done) continue;
        if (t->failed) {
            char *name = display_text(t->video, NULL);
            app_error("%s: %s had %lld failure%s when it was tagged (its run named them); the "
                      "shots that were read are kept", f->path, name ? name : "?",
                      (long long)t->failed, t->failed == 1 ? "" : "s");
            free(name);
            bad = 1;
        }
        for (int64_t k = start; k < i; k++) out[(*nout)++] = (shot_ref){&f->rec[k], fi};
        done[(*ndone)++] = t->video;
        start = i + 1;
    }
    return bad;
}

/* A shot in two files (or twice in one): refused.  Conflicting records (and one input at two
 * places) are named first, up to 10, then up to 10 plain duplicates. */
static int find_duplicates(shot_ref *s, int64_t n, const tag_file *files)
{
    qsort(s, (size_t)n, sizeof *s, by_video_key);
    int64_t found[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 1; i < n; i++) {
            const tag_record *a = s[i - 1].t, *b = s[i].t;
            if (strcmp(a->video, b->video)) continue;
            const int same_shot = !strcmp(a->key, b->key), moved = a->input != b->input;
            if (!same_shot && !moved) continue;
            const int duplicate = same_shot && !strcmp(a->line, b->line);
            if (duplicate != pass || found[pass]++ >= 10) continue;
            const char *fa = files[s[i - 1].file].path, *fb = files[s[i].file].path;
            char *v = display_text(a->video, NULL), *k = display_text(a->key, NULL);
            if (!same_shot)
                app_error("%s is input %d in %s and input %d in %s: the shards were given "
                          "different input lists", v ? v : "?", a->input, fa, b->input, fb);
            else if (duplicate)
                app_error("%s shot %s: duplicate records in %s and %s (the same input tagged "
                          "twice: overlapping shards?)", v ? v : "?", k ? k : "?", fa, fb);
            else
                app_error("%s shot %s: conflicting records in %s and %s (runs that disagree)",
                          v ? v : "?", k ? k : "?", fa, fb);
            free(v), free(k);
        }
    if (found[0] + found[1] > 10)
        app_error("%lld conflicting and %lld duplicate records in all", (long long)found[0],
                  (long long)found[1]);
    return found[0] + found[1] ? -1 : 0;
}

/* The inputs of LIST (one per line, as the JSON names them) found complete in no file; done is
 * sorted. */
static int report_missing(const char *list, const char **done, int64_t ndone)
{
    FILE *f = fopen(list, "r");
    if (!f) {
        app_error("--expect %s: cannot open", list);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t expected = 0, missing = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (!len) continue;
        expected++;
        char *name = utf8_from_name(line); /* as the files hold it */
        const char *key = name ? name : line;
        if (!bsearch(&key, done, (size_t)ndone, sizeof *done, by_string) && missing++ < 20) {
            char *d = display_text(line, NULL);
            app_error("missing: %s", d ? d : "?");
            free(d);
        }
        free(name);
    }
    free(line);
    fclose(f);
    if (missing)
        app_error("%lld of the %lld inputs of %s are missing%s", (long long)missing,
                  (long long)expected, list, missing > 20 ? " (the first 20 named)" : "");
    return missing ? -1 : 0;
}

/* The shots through the single run's writers. */
static int write_outputs(const merge_options *mo, const tag_file *h, const shot_ref *s, int64_t n)
{
    outputs out;
    char err[1024];
    if (outputs_open(&out, (const char *const *)h->labels, h->L, h->top, 0, mo->json, mo->weak,
                     h->weak_top1, h->weak_rest, err, sizeof err)) {
        app_error("%s", err);
        return -1;
    }
    /* as the single run: reduced-precision scores say so in every shot */
    if (strcmp(h->precision, "fp32") != 0) out.precision = h->precision;
    float *scores = malloc((size_t)h->L * sizeof *scores);
    if (!scores) {
        outputs_close(&out, 0, err, sizeof err);
        app_error("out of memory");
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        const tag_record *t = s[i].t;
        /* the labels not kept rank below every kept one, so the ranking is the run's */
        for (int l = 0; l < h->L; l++) scores[l] = -INFINITY;
        for (int k = 0; k < t->ntop; k++) scores[t->label[k]] = t->score[k];
        shot_out so = {t->video, t->key, t->id, t->start_frame, t->end_frame, t->start_time,
                       t->end_time, t->frames, 0, scores, t->sampled, t->nsampled, t->n, -1};
        outputs_shot(&out, &so);
    }
    free(scores);
    if (outputs_close(&out, 1, err, sizeof err)) {
        app_error("%s", err);
        return -1;
    }
    return 0;
}

int merge_main(int argc, char **argv)
{
    app_name = "mcnn-classify merge";
    merge_options mo = {0};
    const arg_spec specs[] = {
        {ARG_STRING, "--json", 0, &mo.json, "FILE|-",
         .help = "MovieCLIP's JSON, as mcnn-classify --json writes it"},
        {ARG_STRING, "--weak-labels", 0, &mo.weak, "FILE|-",
         .help = "the weak labels, as mcnn-classify --weak-labels writes them (the\n"
                 "thresholds are the run's)"},
        {ARG_STRING, "--expect", 0, &mo.expect, "LIST",
         .help = "a file naming every input expected, one per line as the JSON names\n"
                 "them (the paths given to mcnn-classify): the missing are reported"},
        {0}};
    int r = args_parse(specs, argc, argv, &mo.files);
    if (r == ARGS_HELP) {
        args_help(stdout, merge_usage, specs, merge_epilog);
        return app_close_stdout() ? 1 : 0;
    }
    if (r == ARGS_ERROR || !mo.files.count) {
        if (r != ARGS_ERROR) app_error("no file to merge (try --help)");
        args_strings_free(&mo.files);
        return 2;
    }
    if (mo.json && mo.weak && !strcmp(mo.json, "-") && !strcmp(mo.weak, "-")) {
        app_error("--json and --weak-labels cannot both go to stdout ('-')");
        args_strings_free(&mo.files);
        return 2;
    }
    const int nf = mo.files.count;
    tag_file *files = calloc((size_t)nf, sizeof *files);
    int rc = files ? 0 : (app_error("out of memory"), 1), bad = 0, first = -1;
    int64_t total = 0, nshots = 0, ndone = 0;
    char err[1024], what[128];
    for (int i = 0; !rc && i < nf; i++) {
        if (tag_file_read(&files[i], mo.files.items[i], err, sizeof err)) {
            app_error("%s", err);
            rc = 1;
        } else if (!files[i].header) {
            app_error("%s: empty (its run stopped before it began): run that shard again",
                      mo.files.items[i]);
            bad = 1;
        } else if (first < 0) {
            first = i;
        } else if (tag_headers_match(files[first].header, files[i].header, what, sizeof what)) {
            app_error("%s and %s come from runs with other settings (%s differs)",
                      mo.files.items[first], mo.files.items[i], what);
            rc = 1;
        }
        total += files[i].nrec;
    }
    shot_ref *shots = rc ? NULL : malloc((size_t)(total ? total : 1) * sizeof *shots);
    const char **done = rc ? NULL : malloc((size_t)(total ? total : 1) * sizeof *done);
    if (!rc && (!shots || !done)) app_error("out of memory"), rc = 1;
    for (int i = 0; !rc && i < nf; i++) bad |= collect(&files[i], i, shots, &nshots, done, &ndone);
    if (!rc && find_duplicates(shots, nshots, files)) {
        app_error("nothing written: the files disagree");
        rc = 1;
    }
    if (!rc && first < 0) {
        app_error("nothing to merge: no file has its header line");
        rc = 1;
    }
    if (!rc) {
        qsort(shots, (size_t)nshots, sizeof *shots, by_output_order);
        qsort(done, (size_t)ndone, sizeof *done, by_string); /* a folder may end in each shard */
        int64_t unique = 0;
        for (int64_t i = 0; i < ndone; i++)
            if (!unique || strcmp(done[unique - 1], done[i])) done[unique++] = done[i];
        ndone = unique;
        if (mo.expect && report_missing(mo.expect, done, ndone)) bad = 1;
        if (write_outputs(&mo, &files[first], shots, nshots)) rc = 1;
        else
            fprintf(stderr, "%s: %lld shot%s of %lld input%s from %d file%s\n", app_name,
                    (long long)nshots, nshots == 1 ? "" : "s", (long long)ndone,
                    ndone == 1 ? "" : "s", nf, nf == 1 ? "" : "s");
    }
    free(shots), free(done);
    for (int i = 0; files && i < nf; i++) tag_file_free(&files[i]);
    free(files);
    args_strings_free(&mo.files);
    if (app_close_stdout()) rc = 1;
    return rc || bad ? 1 : 0;
}
