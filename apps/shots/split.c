/* mcnn-shots split: tags -> MovieCLIP's weak labels -> train / val / test split files by video,
 * positive counts, pos_weight and a label-frequency report (docs/movieclip.md).
 *
 * MovieCLIP's rule (its split files "multi_label_thresh_0_4_0_1"): a shot is kept when its
 * top-1 score is >= 0.4; its labels are the top-1 and every label of ranks 2-5 scoring >= 0.1.
 * Names are then mapped into the label list (the seed's 150 labels, after merging
 * "interrogation room" into "room" and "phone booth" into "booth"); a name not in the list is
 * dropped, and a shot left without labels is dropped. */
#define _XOPEN_SOURCE 700
#include "shots.h"

#include "../common/args.h"
#include "../common/outfile.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct split_options {
    arg_strings tags, merges;
    const char *labels, *out;
    double top1, rest, val, test;
    int ranks, seed, no_merges, drop_empty;
} split_options;

static const char *const default_merges[] = {"interrogation room=room", "phone booth=booth"};

enum { TRAIN, VAL, TEST, NSPLIT };
static const char *const split_names[NSPLIT] = {"train", "val", "test"};

typedef struct kept_shot {
    const tag_shot *shot;
    int nlab;
    int lab[16];      /* label indices, top-1 first */
    int video;        /* index into the video list  */
} kept_shot;

static int find_label(char **names, int K, const char *name)
{
    for (int k = 0; k < K; k++)
        if (strcmp(names[k], name) == 0) return k;
    return -1;
}

/* The merge's target for name, or name. */
static const char *merged(const split_options *o, const char *name, char *buf, size_t size)
{
    const int n = o->no_merges ? 0 : o->merges.count ? o->merges.count : 2;
    for (int i = 0; i < n; i++) {
        const char *m = o->merges.count ? o->merges.items[i] : default_merges[i];
        const char *eq = strchr(m, '=');
        if (eq && strlen(name) == (size_t)(eq - m) && strncmp(m, name, (size_t)(eq - m)) == 0) {
            snprintf(buf, size, "%s", eq + 1);
            return buf;
        }
    }
    return name;
}

typedef struct dropped_name {
    const char *name;
    int64_t count;
} dropped_name;

typedef struct tally {
    int64_t no_labels, below_top1, not_in_list, kept;
    dropped_name *dropped;  /* tags whose name is not in the list, with their counts */
    int ndropped;
} tally;

static void count_dropped(tally *t, const char *name)
{
    for (int i = 0; i < t->ndropped; i++)
        if (strcmp(t->dropped[i].name, name) == 0) {
            t->dropped[i].count++;
            return;
        }
    t->dropped = realloc(t->dropped, (size_t)(t->ndropped + 1) * sizeof *t->dropped);
    if (!t->dropped) app_error("out of memory"), exit(1);
    t->dropped[t->ndropped++] = (dropped_name){name, 1};
}

/* The weak labels of one shot (0 when it is not kept). */
static int weak_labels(kept_shot *ks, const tag_shot *s, const split_options *o, char **names,
                       int K, tally *t)
{
    ks->shot = s, ks->nlab = 0;
    if (s->nlabels == 0) return t->no_labels++, 0;
    if (!(s->labels[0].score >= o->top1)) return t->below_top1++, 0;
    const int ranks = s->nlabels < o->ranks ? s->nlabels : o->ranks;
    for (int r = 0; r < ranks; r++) {
        if (r > 0 && !(s->labels[r].score >= o->rest)) continue;
        char buf[1024];
        const int k = find_label(names, K, merged(o, s->labels[r].name, buf, sizeof buf));
        if (k < 0) {
            count_dropped(t, s->labels[r].name);
            continue;
        }
        int dup = 0;
        for (int i = 0; i < ks->nlab; i++) dup |= ks->lab[i] == k;
        if (!dup && ks->nlab < 16) ks->lab[ks->nlab++] = k;
    }
    if (ks->nlab == 0) return t->not_in_list++, 0;
    t->kept++;
    return 1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Videos to splits: sorted by name, shuffled by the seed (Fisher-Yates), then the first
 * round(test · V) go to test, the next round(val · V) to val, the rest to train.  A fraction
 * above 0 gets at least one video when at least three exist; train always keeps one. */
static void assign_videos(int *split_of, const char **videos, int V, const split_options *o)
{
    const char **sorted = shots_xmalloc((size_t)V * sizeof *sorted);
    memcpy(sorted, videos, (size_t)V * sizeof *sorted);
    qsort(sorted, (size_t)V, sizeof *sorted, by_name);
    mcnn_rng rng;
    mcnn_rng_seed(&rng, (uint64_t)o->seed);
    for (int i = V - 1; i > 0; i--) {
        const int j = (int)mcnn_rng_below(&rng, (uint32_t)(i + 1));
        const char *x = sorted[i];
        sorted[i] = sorted[j], sorted[j] = x;
    }
    int nt = (int)floor(o->test * V + 0.5), nv = (int)floor(o->val * V + 0.5);
    if (o->test > 0 && nt == 0 && V >= 3) nt = 1;
    if (o->val > 0 && nv == 0 && V >= 3) nv = 1;
    while (nt + nv > V - 1 && (nt || nv)) {
        if (nv >= nt && nv) nv--;
        else nt--;
    }
    for (int i = 0; i < V; i++) {
        const int which = i < nt ? TEST : i < nt + nv ? VAL : TRAIN;
        for (int v = 0; v < V; v++)
            if (videos[v] == sorted[i]) split_of[v] = which;
    }
    free(sorted);
}

/* A growing text buffer. */
typedef struct text {
    char *s;
    size_t n, cap;
} text;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void addf(text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        const int n = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? t->cap - t->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (t->s && t->n + (size_t)n < t->cap) {
            t->n += (size_t)n;
            return;
        }
        t->cap = 2 * (t->cap + (size_t)n + 64);
        t->s = realloc(t->s, t->cap);
        if (!t->s) app_error("out of memory"), exit(1);
    }
}

static int save(const char *dir, const char *name, text *t)
{
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const int rc = shots_write_text(path, t->s ? t->s : "", t->n, err, sizeof err);
    if (rc) app_error("%s", err);
    free(t->s);
    memset(t, 0, sizeof *t);
    return rc;
}

static int parse(split_options *o, int argc, char **argv)
{
    *o = (split_options){.top1 = 0.4, .rest = 0.1, .ranks = 5, .val = 0.1, .test = 0.1, .seed = 1};
    const arg_spec specs[] = {
        {ARG_STRINGS, "--tags", 0, &o->tags, "FILE",
         .help = "mcnn-classify's --json or --out-jsonl shard (repeatable: one collection)"},
        {ARG_STRING, "--labels", 'l', &o->labels, "FILE",
         .help = "the label list, one a line: its order is the index order\n"
                 "(MovieCLIP: labels-150.txt)"},
        {ARG_STRING, "--out", 'o', &o->out, "DIR", .help = "where the files go (created)"},
        {ARG_DOUBLE, "--top1", 0, &o->top1, "T", .help = "keep a shot whose top-1 score >= T (0.4)",
         .min = 0, .max = 1},
        {ARG_DOUBLE, "--rest", 0, &o->rest, "T",
         .help = "add each label of ranks 2..--ranks scoring >= T (0.1)", .min = 0, .max = 1},
        {ARG_INT, "--ranks", 0, &o->ranks, "R", .help = "ranks considered (5)", .min = 1, .max = 16},
        {ARG_STRINGS, "--merge", 0, &o->merges, "FROM=TO",
         .help = "count tag FROM as label TO (repeatable; default: MovieCLIP's\n"
                 "'interrogation room=room' and 'phone booth=booth')"},
        {ARG_FLAG, "--no-merges", 0, &o->no_merges, NULL, .help = "no merges at all"},
        {ARG_FLAG, "--drop-empty", 0, &o->drop_empty, NULL,
         .help = "leave out of labels.txt the labels no kept shot has (indices\n"
                 "renumbered): MovieCLIP's 179 -> 150 step on your own tags"},
        {ARG_DOUBLE, "--val", 0, &o->val, "F", .help = "fraction of the videos held out for\n"
         "validation (0.1)", .min = 0, .max = 1},
        {ARG_DOUBLE, "--test", 0, &o->test, "F", .help = "fraction of the videos for test (0.1)",
         .min = 0, .max = 1},
        {ARG_INT, "--seed", 0, &o->seed, "S", .help = "the shuffle of the videos (1)", .min = 0,
         .max = 2147483647},
        {0}};
    if (shots_args(specs, argc, argv,
                   "usage: mcnn-shots split --tags tags.json --labels labels-150.txt "
                  "--out DIR [options]\n\nWeak labels from tags (MovieCLIP's thresholds), split "
                  "by video into train.txt,\nval.txt, test.txt, with labels.txt, counts.tsv, "
                  "pos_weight.txt, videos.tsv\nand report.txt in DIR.\n"))
        return -1;
    if (!o->tags.count || !o->labels || !o->out)
        return app_error("split needs --tags, --labels and --out (try --help)"), -1;
    if (o->val + o->test >= 1) return app_error("--val + --test must stay below 1"), -1;
    for (int i = 0; i < o->merges.count; i++) {
        const char *eq = strchr(o->merges.items[i], '=');
        if (!eq || eq == o->merges.items[i] || !eq[1])
            return app_error("--merge: '%s' is not FROM=TO", o->merges.items[i]), -1;
    }
    return 0;
}

int shots_split_main(int argc, char **argv)
{
    split_options o;
    if (parse(&o, argc, argv)) exit(2);
    char err[1024];
    char **names;
    int K;
    if (shots_read_labels(&names, &K, o.labels)) exit(1);
    tags t = {0};
    for (int i = 0; i < o.tags.count; i++)
        if (tags_read(&t, o.tags.items[i], err, sizeof err)) {
            app_error("%s", err);
            exit(1);
        }
    if (shots_mkdirs(o.out, err, sizeof err)) app_error("%s", err), exit(1);

    /* weak labels */
    kept_shot *kept = shots_xcalloc((size_t)t.nshots + 1, sizeof *kept);
    tally ty = {0};
    int nk = 0, few_ranks = 0;
    for (int i = 0; i < t.nshots; i++) {
        few_ranks |= t.shots[i].nlabels < o.ranks && t.shots[i].nlabels > 0;
        nk += weak_labels(&kept[nk], &t.shots[i], &o, names, K, &ty);
    }
    if (few_ranks)
        app_error("note: some shots have fewer than %d labels in the tags (mcnn-classify --top): "
                  "ranks beyond them are not known", o.ranks);

    /* videos and their splits */
    const char **videos = shots_xmalloc(((size_t)nk + 1) * sizeof *videos);
    int V = 0;
    for (int i = 0; i < nk; i++) {
        const char *v = kept[i].shot->video;
        if (V == 0 || strcmp(videos[V - 1], v) != 0) videos[V++] = v; /* a video's shots are together */
        kept[i].video = V - 1;
    }
    int *split_of = shots_xcalloc((size_t)V + 1, sizeof *split_of);
    assign_videos(split_of, videos, V, &o);

    /* labels: all, or those with a kept shot (--drop-empty), renumbered */
    int64_t (*pos)[NSPLIT + 1] = shots_xcalloc((size_t)K, sizeof *pos);
    int64_t nsplit[NSPLIT] = {0};
    for (int i = 0; i < nk; i++) {
        const int s = split_of[kept[i].video];
        nsplit[s]++;
        for (int j = 0; j < kept[i].nlab; j++) pos[kept[i].lab[j]][s]++, pos[kept[i].lab[j]][NSPLIT]++;
    }
    int *newidx = shots_xmalloc((size_t)K * sizeof *newidx), K2 = 0;
    for (int k = 0; k < K; k++) newidx[k] = !o.drop_empty || pos[k][NSPLIT] ? K2++ : -1;

    text files[NSPLIT] = {{0}}, all = {0}, lab = {0}, counts = {0}, pw = {0}, vids = {0}, rep = {0};
    for (int i = 0; i < nk; i++) {
        text *f = &files[split_of[kept[i].video]];
        addf(f, "%s", kept[i].shot->key);
        addf(&all, "%s", kept[i].shot->key);
        for (int j = 0; j < kept[i].nlab; j++) {
            addf(f, " %d", newidx[kept[i].lab[j]]);
            addf(&all, " %d", newidx[kept[i].lab[j]]);
        }
        addf(f, "\n"), addf(&all, "\n");
    }
    addf(&counts, "index\tlabel\ttrain\tval\ttest\tall\n");
    for (int k = 0; k < K; k++) {
        if (newidx[k] < 0) continue;
        addf(&lab, "%s\n", names[k]);
        addf(&counts, "%d\t%s\t%lld\t%lld\t%lld\t%lld\n", newidx[k], names[k],
             (long long)pos[k][TRAIN], (long long)pos[k][VAL], (long long)pos[k][TEST],
             (long long)pos[k][NSPLIT]);
        /* BCE's pos_weight: negatives / positives in the training split (1 without positives) */
        const int64_t p = pos[k][TRAIN];
        addf(&pw, "%.9g\n", p ? (double)(nsplit[TRAIN] - p) / (double)p : 1.0);
    }
    addf(&vids, "split\tvideo\n");
    for (int v = 0; v < V; v++) addf(&vids, "%s\t%s\n", split_names[split_of[v]], videos[v]);

    /* the report: what was kept and why the rest was not, then the labels by frequency */
    int vcount[NSPLIT] = {0};
    for (int v = 0; v < V; v++) vcount[split_of[v]]++;
    addf(&rep, "weak labels: top-1 >= %g, ranks 2-%d >= %g\n", o.top1, o.ranks, o.rest);
    addf(&rep, "shots tagged      %d\n", t.nshots);
    addf(&rep, "shots kept        %lld (%.1f%%)\n", (long long)ty.kept,
         t.nshots ? 100.0 * (double)ty.kept / t.nshots : 0.0);
    addf(&rep, "  below top-1     %lld\n", (long long)ty.below_top1);
    addf(&rep, "  no label listed %lld (their labels are not in %s)\n", (long long)ty.not_in_list,
         o.labels);
    addf(&rep, "  without labels  %lld\n", (long long)ty.no_labels);
    addf(&rep, "videos            %d: train %d, val %d, test %d (seed %d)\n", V, vcount[TRAIN],
         vcount[VAL], vcount[TEST], o.seed);
    addf(&rep, "shots per split   train %lld, val %lld, test %lld\n", (long long)nsplit[TRAIN],
         (long long)nsplit[VAL], (long long)nsplit[TEST]);
    int used = 0;
    for (int k = 0; k < K; k++) used += pos[k][NSPLIT] > 0;
    addf(&rep, "labels            %d of %d have a kept shot; labels.txt lists %d\n", used, K, K2);
    if (ty.ndropped) {
        addf(&rep, "tags not in the label list (dropped):");
        for (int i = 0; i < ty.ndropped; i++)
            addf(&rep, "%s '%s' x%lld", i ? "," : "", ty.dropped[i].name,
                 (long long)ty.dropped[i].count);
        addf(&rep, "\n");
    }
    const size_t summary_len = rep.n; /* stdout gets the summary, report.txt the table too */
    addf(&rep, "\n%5s  %-28s %8s %7s %7s %7s %9s\n", "index", "label", "shots", "train", "val",
         "test", "of kept");
    int *order = shots_xmalloc((size_t)K * sizeof *order);
    for (int k = 0; k < K; k++) order[k] = k;
    for (int i = 1; i < K; i++) { /* by frequency, then index: a stable insertion sort */
        const int x = order[i];
        int j = i;
        for (; j > 0 && pos[order[j - 1]][NSPLIT] < pos[x][NSPLIT]; j--) order[j] = order[j - 1];
        order[j] = x;
    }
    for (int i = 0; i < K; i++) {
        const int k = order[i];
        if (newidx[k] < 0) continue;
        addf(&rep, "%5d  %-28s %8lld %7lld %7lld %7lld %8.2f%%\n", newidx[k], names[k],
             (long long)pos[k][NSPLIT], (long long)pos[k][TRAIN], (long long)pos[k][VAL],
             (long long)pos[k][TEST], ty.kept ? 100.0 * (double)pos[k][NSPLIT] / (double)ty.kept : 0.0);
    }
    int rc = 0;
    for (int s = 0; s < NSPLIT; s++) {
        char name[32];
        snprintf(name, sizeof name, "%s.txt", split_names[s]);
        rc |= save(o.out, name, &files[s]);
    }
    rc |= save(o.out, "all.txt", &all);
    rc |= save(o.out, "labels.txt", &lab);
    rc |= save(o.out, "counts.tsv", &counts);
    rc |= save(o.out, "pos_weight.txt", &pw);
    rc |= save(o.out, "videos.tsv", &vids);
    fwrite(rep.s, 1, summary_len, stdout);
    printf("(the labels' frequencies: %s/report.txt)\n", o.out);
    rc |= save(o.out, "report.txt", &rep);
    if (ty.kept == 0)
        app_error("no shot met the thresholds (top-1 >= %g): the split files are empty", o.top1), rc = 1;

    free(order), free(pos), free(newidx), free(split_of), free(videos), free(kept), free(ty.dropped);
    tags_free(&t);
    mcnn_free_label_list(names, K);
    args_strings_free(&o.tags), args_strings_free(&o.merges);
    return rc ? 1 : 0;
}
