/* mcnn-shots eval: a model's scores on a split, as MovieCLIP reports them (metrics.c).
 * The scores come from one of:
 *   --model FILE      a shot model (train / probe) over the shots' features;
 *   --frame-scores    the features are a frame classifier's logits (features --output logits
 *                     with an mcnn-train model): a shot's score is the mean of its frames'
 *                     sigmoids (or softmaxes), as tagging averages frame scores;
 *   --scores FILE     precomputed: safetensors "scores" (N, L) in [0, 1], metadata "keys" (a
 *                     JSON array of the N shot keys): any other model's output. */
#define _XOPEN_SOURCE 700
#include "shots.h"

#include "../common/args.h"
#include "../common/check.h"
#include "mcnn/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct eval_options {
    const char *model, *scores, *features, *data, *labels, *human, *json, *text, *activation;
    int frame_scores, threads;
    double threshold;
} eval_options;

static int parse(eval_options *o, int argc, char **argv)
{
    *o = (eval_options){.threshold = 0.5, .activation = "sigmoid"};
    const arg_spec specs[] = {
        {ARG_STRING, "--model", 'm', &o->model, "FILE", .help = "a shot model (mcnn-shots train/probe)"},
        {ARG_FLAG, "--frame-scores", 0, &o->frame_scores, NULL,
         .help = "the features are frame logits: shot score = mean of the\nframes' --activation"},
        {ARG_STRING, "--activation", 0, &o->activation, "sigmoid|softmax",
         .help = "for --frame-scores (sigmoid)"},
        {ARG_STRING, "--scores", 0, &o->scores, "FILE",
         .help = "precomputed scores: \"scores\" (N, L), metadata \"keys\""},
        {ARG_STRING, "--features", 'f', &o->features, "DIR", .help = "written by mcnn-shots features"},
        {ARG_STRING, "--data", 'd', &o->data, "FILE", .help = "the shots and their labels (a split file)"},
        {ARG_STRING, "--labels", 'l', &o->labels, "FILE", .help = "the label list"},
        {ARG_STRING, "--human", 0, &o->human, "FILE",
         .help = "human-verified labels, '<video>/<shot> idx ...' a line: kappa"},
        {ARG_DOUBLE, "--threshold", 0, &o->threshold, "T", .help = "F1's decision threshold (0.5)",
         .min = 0, .max = 1},
        {ARG_STRING, "--json", 0, &o->json, "FILE|-", .help = "the report as JSON"},
        {ARG_STRING, "--text", 0, &o->text, "FILE|-", .help = "the report as text (default: stdout)"},
        {ARG_INT, "--threads", 't', &o->threads, "N", .help = "(all cores)", .min = 1, .max = 4096},
        {0}};
    if (shots_args(specs, argc, argv,
                   "usage: mcnn-shots eval (--model FILE | --frame-scores | --scores FILE)\n"
                  "         --features DIR --data FILE --labels FILE [--human FILE]\n\n"
                  "mAP, per-class AP, micro/macro F1, top-k accuracy, Cohen's kappa against\n"
                  "human-verified labels (docs/movieclip.md).\n"))
        return -1;
    if ((!!o->model + !!o->scores + !!o->frame_scores) != 1)
        return app_error("give one of --model, --frame-scores, --scores"), -1;
    if (!o->data || !o->labels || (!o->scores && !o->features))
        return app_error("needs --data, --labels and --features (try --help)"), -1;
    if (strcmp(o->activation, "sigmoid") && strcmp(o->activation, "softmax"))
        return app_error("--activation: '%s' is neither sigmoid nor softmax", o->activation), -1;
    if (!o->json && !o->text) o->text = "-";
    return 0;
}

/* Scores (n, L) of a split's keys from a precomputed file. */
static int read_scores(float *scores, const split_set *split, int L, const char *path)
{
    mcnn_safetensors *st;
    CHECK(mcnn_safetensors_open(&st, path));
    const mcnn_st_tensor *t = mcnn_safetensors_find(st, "scores");
    const char *keys = mcnn_safetensors_meta(st, "keys");
    if (!t || t->ndim != 2 || t->shape[1] != L || !keys)
        return app_error("%s: needs \"scores\" (N, %d) and metadata \"keys\"", path, L), -1;
    float *all = shots_xmalloc(t->numel * sizeof(float));
    CHECK(mcnn_safetensors_read_f32(st, t, all));
    mcnn_json_doc doc;
    if (mcnn_json_parse(&doc, keys, strlen(keys)) != MCNN_OK || doc.root->type != MCNN_JSON_ARRAY ||
        (int64_t)doc.root->count != t->shape[0])
        return app_error("%s: \"keys\" is not a JSON array of %lld names", path,
                         (long long)t->shape[0]), -1;
    int *found = shots_xcalloc((size_t)split->n, sizeof *found), i = 0, rc = 0;
    for (const mcnn_json *k = doc.root->child; k; k = k->next, i++) {
        const int j = k->type == MCNN_JSON_STRING ? split_find(split, k->str) : -1;
        if (j < 0) continue;
        memcpy(scores + (size_t)j * L, all + (size_t)i * L, (size_t)L * sizeof(float));
        found[j] = 1;
    }
    for (int j = 0; j < split->n && !rc; j++)
        if (!found[j]) rc = -1, app_error("%s: no scores for '%s'", path, split->keys[j]);
    mcnn_json_free(&doc);
    mcnn_safetensors_close(st);
    free(all), free(found);
    return rc;
}

/* A shot's score from its frames' logits: the mean of their sigmoids or softmaxes. */
static void frame_means(float *scores, const shot_samples *s, int softmax)
{
    const int L = s->L;
    float *p = shots_xmalloc((size_t)L * sizeof *p);
    for (int i = 0; i < s->n; i++) {
        double *sum = shots_xcalloc((size_t)L, sizeof *sum);
        for (int f = 0; f < s->lengths[i]; f++) {
            const float *z = s->x + ((size_t)i * s->K + f) * s->D;
            if (softmax) mcnn_softmax_forward(p, z, 1, L);
            else
                for (int k = 0; k < L; k++) p[k] = 1.0f / (1.0f + expf(-z[k]));
            for (int k = 0; k < L; k++) sum[k] += p[k];
        }
        for (int k = 0; k < L; k++) scores[(size_t)i * L + k] = (float)(sum[k] / s->lengths[i]);
        free(sum);
    }
    free(p);
}

int shots_eval_main(int argc, char **argv)
{
    eval_options o;
    if (parse(&o, argc, argv)) exit(2);
    if (o.threads) mcnn_set_threads(o.threads);
    char err[2048];
    char **labels;
    int L;
    if (shots_read_labels(&labels, &L, o.labels)) exit(1);
    split_set split = {0}, human = {0};
    if (o.human && split_read(&human, o.human, L, err, sizeof err)) app_error("%s", err), exit(1);
    eval_report r;
    int rc = 0;
    if (o.scores) {
        if (split_read(&split, o.data, L, err, sizeof err)) app_error("%s", err), exit(1);
        float *scores = shots_xmalloc((size_t)split.n * L * sizeof(float));
        if (read_scores(scores, &split, L, o.scores)) exit(1);
        eval_compute(&r, scores, split.targets, split.n, L, o.threshold, split.keys,
                     o.human ? &human : NULL, split.first);
        free(scores);
    } else {
        feat_index x;
        if (feat_index_read(&x, o.features, 0, err, sizeof err)) app_error("%s", err), exit(1);
        feat_index_sort(&x);
        shot_samples s;
        if (shots_load_set(&s, &split, &x, o.data, L)) exit(1);
        if (o.frame_scores) {
            if (x.dim != L)
                app_error("--frame-scores: %s holds %d values per frame, not one per label "
                                 "(%d): export them with features --output logits", o.features,
                                 x.dim, L), exit(1);
            float *scores = shots_xmalloc((size_t)s.n * L * sizeof(float));
            frame_means(scores, &s, strcmp(o.activation, "softmax") == 0);
            eval_compute(&r, scores, split.targets, s.n, L, o.threshold, split.keys,
                         o.human ? &human : NULL, split.first);
            free(scores);
        } else {
            mcnn_shot_model *m;
            CHECK(mcnn_shot_model_load(&m, NULL, o.model, 32));
            const mcnn_shot_config *c = mcnn_shot_model_config(m);
            if (c->D != x.dim || c->num_classes != L || s.K > c->K)
                return app_error("%s: a model of %d features, %d frames, %d labels; the data has "
                                 "%d, up to %d, %d", o.model, c->D, c->K, c->num_classes, x.dim,
                                 s.K, L), 1;
            shots_widen(&s, c->K);
            shots_eval_samples(m, &s, 32, o.threshold, &split, o.human ? &human : NULL, &r);
            mcnn_shot_model_free(m);
        }
        shot_samples_free(&s);
        feat_index_free(&x);
    }
    if (eval_write(&r, (const char *const *)labels, o.json, o.text, err, sizeof err))
        app_error("%s", err), rc = 1;
    if (o.human && r.human_n == 0) app_error("note: no shot of %s is in %s: no kappa", o.data, o.human);
    eval_free(&r);
    split_free(&split), split_free(&human);
    mcnn_free_label_list(labels, L);
    return rc;
}
