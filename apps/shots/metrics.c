/* Evaluation as MovieCLIP reports it: mAP and per-class AP, micro / macro F1 at a threshold,
 * top-k accuracy, and Cohen's kappa against human-verified labels; JSON and text.  The AP,
 * F1 and kappa arithmetic is the library's (mcnn_mean_average_precision, mcnn_f1_scores,
 * mcnn_cohen_kappa, tested against numpy and published examples in tests/test_train.c); this
 * file decides what is compared with what.
 *
 * Kappa against human labels.  A human-verified file has the split format: one line per shot,
 * "<video>/<shot> idx [idx ...]", the labels a rater accepted (MovieCLIP's
 * test_shots_human_verified_multi_labels_v1_complete.txt).  Each shot in it gives one pair of
 * categories: the model's top-1 label p, and the human label h = p when the rater accepted p,
 * else the rater's first label.  kappa = (p_o - p_e) / (1 - p_e) over those pairs (K
 * categories): p_o is the fraction of shots whose top-1 the rater accepted, and p_e the
 * agreement expected from the two label frequencies alone.  The weak labels' own kappa uses
 * their top-1 (the split line's first index) for p. */
#define _XOPEN_SOURCE 700
#include "shots.h"

#include "../common/args.h"
#include "../common/outfile.h"
#include "mcnn/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double kappa_of(const int32_t *a, const int32_t *b, int n, int K, double *p_o)
{
    int64_t *cm = shots_xcalloc((size_t)K * K, sizeof *cm), trace = 0;
    for (int i = 0; i < n; i++) cm[(size_t)a[i] * K + b[i]]++, trace += a[i] == b[i];
    const double kappa = n ? mcnn_cohen_kappa(cm, K) : NAN;
    if (p_o) *p_o = n ? (double)trace / n : NAN;
    free(cm);
    return kappa;
}

double topk_multilabel(const float *scores, const unsigned char *truth, int n, int K, int k)
{
    int hits = 0;
    for (int i = 0; i < n; i++) {
        const float *s = scores + (size_t)i * K;
        const unsigned char *t = truth + (size_t)i * K;
        /* a true label is in the top k when fewer than k labels rank above it (ties: the lower
         * index first, as mcnn_topk_accuracy) */
        int hit = 0;
        for (int c = 0; c < K && !hit; c++) {
            if (!t[c]) continue;
            int above = 0;
            for (int j = 0; j < K; j++) above += s[j] > s[c] || (s[j] == s[c] && j < c);
            hit = above < k;
        }
        hits += hit;
    }
    return n ? (double)hits / n : NAN;
}

static int argmax(const float *s, int K)
{
    int best = 0;
    for (int k = 1; k < K; k++) best = s[k] > s[best] ? k : best;
    return best;
}

/* human label of a shot for a prediction p: p when accepted, else the rater's first label */
static int32_t human_for(const split_set *h, int j, int p)
{
    return h->targets[(size_t)j * h->K + p] ? p : h->first[j];
}

int eval_compute(eval_report *r, const float *scores, const unsigned char *truth, int n, int K,
                 double threshold, char *const *keys, const split_set *human,
                 const int32_t *weak_first)
{
    memset(r, 0, sizeof *r);
    r->n = n, r->K = K, r->threshold = threshold;
    r->ap = shots_xmalloc((size_t)K * sizeof *r->ap);
    r->positives = shots_xcalloc((size_t)K, sizeof *r->positives);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < K; k++) r->positives[k] += truth[(size_t)i * K + k];
    r->map = mcnn_mean_average_precision(scores, truth, n, K, r->ap);
    mcnn_f1_scores(&r->f1_micro, &r->f1_macro, scores, truth, n, K, (float)threshold);
    static const int ks[] = {1, 3, 5};
    for (int i = 0; i < 3; i++)
        if (ks[i] <= K) {
            r->topk_k[r->ntopk] = ks[i];
            r->topk[r->ntopk++] = topk_multilabel(scores, truth, n, K, ks[i]);
        }
    int64_t bin[4] = {0}; /* pooled decisions against the truth: rows truth, columns decision */
    for (size_t i = 0; i < (size_t)n * K; i++) bin[truth[i] * 2 + (scores[i] > threshold)]++;
    r->kappa_pooled = mcnn_cohen_kappa(bin, 2);
    if (!human) return 0;
    int32_t *a = shots_xmalloc((size_t)n * 2 * sizeof *a), *b = a + n;
    for (int i = 0; i < n; i++) {
        const int j = split_find(human, keys[i]);
        if (j < 0) continue;
        const int p = argmax(scores + (size_t)i * K, K);
        a[r->human_n] = human_for(human, j, p), b[r->human_n++] = p;
    }
    r->kappa_human = kappa_of(a, b, r->human_n, K, &r->agree_human);
    if (weak_first) {
        for (int i = 0; i < n; i++) {
            const int j = split_find(human, keys[i]);
            if (j < 0) continue;
            a[r->weak_n] = human_for(human, j, weak_first[i]), b[r->weak_n++] = weak_first[i];
        }
        r->kappa_weak = kappa_of(a, b, r->weak_n, K, NULL);
    }
    free(a);
    return 0;
}

void eval_free(eval_report *r)
{
    free(r->ap), free(r->positives);
    memset(r, 0, sizeof *r);
}

/* a number for JSON: null when not finite */
static void jnum(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}

static void jstr(FILE *f, const char *s)
{
    const size_t n = mcnn_json_escape(NULL, s, strlen(s));
    char *buf = shots_xmalloc(n + 1);
    mcnn_json_escape(buf, s, strlen(s));
    fwrite(buf, 1, n, f);
    free(buf);
}

static void write_json(FILE *f, const eval_report *r, const char *const *labels)
{
    fprintf(f, "{\n  \"shots\": %d,\n  \"labels\": %d,\n  \"mAP\": ", r->n, r->K);
    jnum(f, r->map);
    fputs(",\n  \"f1_micro\": ", f), jnum(f, r->f1_micro);
    fputs(",\n  \"f1_macro\": ", f), jnum(f, r->f1_macro);
    fputs(",\n  \"threshold\": ", f), jnum(f, r->threshold);
    fputs(",\n  \"kappa_pooled\": ", f), jnum(f, r->kappa_pooled);
    fputs(",\n  \"top_k\": {", f);
    for (int i = 0; i < r->ntopk; i++) {
        fprintf(f, "%s\"%d\": ", i ? ", " : "", r->topk_k[i]);
        jnum(f, r->topk[i]);
    }
    fputs("}", f);
    if (r->human_n || r->weak_n) {
        fprintf(f, ",\n  \"human\": {\"shots\": %d, \"kappa\": ", r->human_n);
        jnum(f, r->kappa_human);
        fputs(", \"agreement\": ", f), jnum(f, r->agree_human);
        fprintf(f, ", \"weak_shots\": %d, \"weak_kappa\": ", r->weak_n);
        jnum(f, r->kappa_weak);
        fputs("}", f);
    }
    fputs(",\n  \"per_class\": [", f);
    for (int k = 0; k < r->K; k++) {
        fprintf(f, "%s\n    {\"index\": %d, \"label\": ", k ? "," : "", k);
        jstr(f, labels[k]);
        fprintf(f, ", \"positives\": %lld, \"ap\": ", (long long)r->positives[k]);
        jnum(f, r->ap[k]);
        fputs("}", f);
    }
    fputs("\n  ]\n}\n", f);
}

static void write_text(FILE *f, const eval_report *r, const char *const *labels)
{
    int present = 0;
    for (int k = 0; k < r->K; k++) present += r->positives[k] > 0;
    fprintf(f, "shots %d, labels %d (%d with a positive)\n", r->n, r->K, present);
    fprintf(f, "mAP            %.4f   (mean AP over the labels with a positive)\n", r->map);
    fprintf(f, "F1 micro       %.4f   at threshold %g\n", r->f1_micro, r->threshold);
    fprintf(f, "F1 macro       %.4f   (all %d labels; a label never true nor predicted counts 0)\n",
            r->f1_macro, r->K);
    for (int i = 0; i < r->ntopk; i++)
        fprintf(f, "top-%d accuracy %.4f   (one of the %d best labels is true)\n", r->topk_k[i],
                r->topk[i], r->topk_k[i]);
    fprintf(f, "kappa (pooled) %.4f   (every label's decision against the truth)\n", r->kappa_pooled);
    if (r->human_n)
        fprintf(f, "kappa vs human %.4f   (top-1 against the verified labels, %d shots; "
                "agreement %.4f)\n", r->kappa_human, r->human_n, r->agree_human);
    if (r->weak_n)
        fprintf(f, "weak vs human  %.4f   (the weak labels' top-1, %d shots)\n", r->kappa_weak,
                r->weak_n);
    fprintf(f, "\n%5s  %-28s %9s %8s\n", "index", "label", "positives", "AP");
    int *order = shots_xmalloc((size_t)r->K * sizeof *order), m = 0;
    for (int k = 0; k < r->K; k++)
        if (r->positives[k]) order[m++] = k;
    for (int i = 1; i < m; i++) { /* by AP, best first */
        const int x = order[i];
        int j = i;
        for (; j > 0 && r->ap[order[j - 1]] < r->ap[x]; j--) order[j] = order[j - 1];
        order[j] = x;
    }
    for (int i = 0; i < m; i++)
        fprintf(f, "%5d  %-28s %9lld %8.4f\n", order[i], labels[order[i]],
                (long long)r->positives[order[i]], r->ap[order[i]]);
    free(order);
}

int eval_write(const eval_report *r, const char *const *labels, const char *json_path,
               const char *text_path, char *err, size_t errsize)
{
    if (json_path) {
        outfile o;
        if (outfile_open(&o, json_path, err, errsize)) return -1;
        write_json(o.f, r, labels);
        outfile_check(&o);
        if (outfile_commit(&o, err, errsize)) return -1;
    }
    if (text_path) {
        outfile o;
        if (outfile_open(&o, text_path, err, errsize)) return -1;
        write_text(o.f, r, labels);
        outfile_check(&o);
        if (outfile_commit(&o, err, errsize)) return -1;
    }
    return 0;
}
