/* mcnn-shots: the MovieCLIP pipeline after tagging (docs/movieclip.md).
 *
 *   tags JSON (mcnn-classify --json)
 *     -> split      weak labels, train/val/test split files by video, pos_weight, a report
 *     -> features   per-frame features of every shot (ViT-B/16, ResNet-50, CLIP, or a
 *                   classifier's logits) as safetensors shards with an index
 *     -> frames     the same sampled frames as image files, one folder per shot (mcnn-train)
 *     -> train      a temporal shot model (mean-pool MLP, LSTM, transformer) on the features
 *     -> eval       mAP, per-class AP, F1, top-k, Cohen's kappa against human labels
 *     -> probe      a linear / MLP probe on the features for the user's own labels
 *
 * Each subcommand is one file of apps/shots/; this header holds what they share.  Apps only:
 * messages go to stderr through app_error, failures exit (CHECK) or return -1. */
#ifndef MCNN_APPS_SHOTS_H
#define MCNN_APPS_SHOTS_H

#include "mcnn.h"

#include <stdint.h>
#include <stdio.h>

int shots_split_main(int argc, char **argv);
int shots_features_main(int argc, char **argv);
int shots_frames_main(int argc, char **argv);
int shots_train_main(int argc, char **argv);
int shots_probe_main(int argc, char **argv);
int shots_eval_main(int argc, char **argv);

/* ---- tags: mcnn-classify's JSON {video: {shot: {start_frame, end_frame, start_time,
 * end_time, labels: {label: score}}}} ------------------------------------------------------- */
typedef struct tag_label {
    const char *name;
    double score;
} tag_label;

typedef struct tag_shot {
    const char *video, *shot;      /* the JSON's keys (point into the parsed document)      */
    char *key;                     /* "<video>/<shot>" as split files write it (shot_key)  */
    double start_time, end_time;   /* seconds                                               */
    int64_t start_frame, end_frame;
    int nlabels;
    tag_label *labels;             /* ranked, highest score first                           */
} tag_shot;

typedef struct tags {
    int nshots;
    tag_shot *shots;               /* in file order: video after video                      */
    void *doc;                     /* the parsed JSON the strings point into                */
    void **jsonl;                  /* or the --out-jsonl files they point into (NULL-ended) */
} tags;

/* Read one tags file and append its shots (a second file's shots follow the first's; a video
 * in two files is refused).  The file is mcnn-classify's --json (MovieCLIP's format) or one of
 * its --out-jsonl shards, told apart by content.  Returns 0, or -1 with a message naming the
 * file and the place. */
int tags_read(tags *t, const char *path, char *err, size_t errsize);
void tags_free(tags *t);
/* The parts of tags_read: a JSONL shard (tags_jsonl.c) and what the two readers share. */
int tags_is_jsonl(const unsigned char *text, size_t len);
int tags_read_jsonl(tags *t, const char *path, char *err, size_t errsize);
void tags_free_jsonl(tags *t);
int tags_video_seen(const tags *t, int before, const char *video); /* in shots[0 .. before) */
void tags_rank(tag_label *l, int n);  /* highest score first, ties in file order */

/* A shot's name in split files and feature indexes: "<video>/<shot>", with every byte that
 * would break a whitespace-separated line (space, control characters) and '%' written as %XX,
 * and leading '/' and "./" of the video removed (keys are relative, as split paths are).
 * malloc'ed. */
char *shot_key(const char *video, const char *shot);
/* The same escaping of one name, nothing removed (malloc'ed). */
char *name_escape(const char *s);

/* ---- a split file: "<key> <label index> ..." per line ------------------------------------- */
typedef struct split_set {
    int n, K;
    char **keys;
    unsigned char *targets;        /* (n, K) 0 / 1                                          */
    int32_t *first;                /* (n) the line's first label (top-1 of a weak label)    */
    int *order;                    /* (n) the keys' indices, sorted by key (split_find)     */
} split_set;

/* K: the label count (indices must be below it).  Blank and '#' lines skipped; a line without
 * labels, a bad index, a repeated key are refused naming the line.  Returns 0 or -1. */
int split_read(split_set *s, const char *path, int K, char *err, size_t errsize);
void split_free(split_set *s);
/* Index of key in s, or -1 (binary search). */
int split_find(const split_set *s, const char *key);

/* ---- feature collections: what `features` writes ------------------------------------------ */
typedef struct feat_entry {
    char *key;                     /* "<video>/<shot>"                                       */
    int shard;                     /* index into feat_index.shards                          */
    int64_t row;                   /* first frame row in the shard's "features"             */
    int frames;                    /* frames stored (1..max_frames)                         */
} feat_entry;

typedef struct feat_index {
    char *dir;
    int dim, max_frames;
    double fps;
    char kind[64], model[1024];
    int n, cap;
    feat_entry *e;
    int nshards;
    char **shards;                 /* file names inside dir                                 */
    int nvideos;
    char **videos;                 /* videos done (name_escape'd): resuming skips them      */
    int *order;                    /* (n) entries sorted by key, after feat_index_sort      */
} feat_index;

/* DIR/index.tsv (absent: an empty index, when may_be_absent).  Returns 0 or -1. */
int feat_index_read(feat_index *x, const char *dir, int may_be_absent, char *err, size_t errsize);
/* Atomically (temporary file + rename). */
int feat_index_write(const feat_index *x, char *err, size_t errsize);
/* Entry of key, or -1 (after feat_index_sort); the first entry whose key starts with prefix. */
void feat_index_sort(feat_index *x);
int feat_index_find(const feat_index *x, const char *key);
int feat_index_lower_bound(const feat_index *x, const char *prefix);
void feat_index_free(feat_index *x);

/* Samples for a shot model: x (n, K, D), lengths (n), targets (n, L).  A key of the split that
 * is a shot of the index takes its frames; a key that names a video of the index (no shot
 * part) takes the mean feature of each of its shots, in order, as its sequence (video-level
 * labels, for probes).  K = the longest sequence. */
typedef struct shot_samples {
    int n, K, D, L;
    float *x;
    int32_t *lengths;
    float *targets;
    char **keys;                   /* borrowed from the split                               */
} shot_samples;

int shot_samples_load(shot_samples *s, const feat_index *x, const split_set *split, char *err,
                      size_t errsize);
void shot_samples_free(shot_samples *s);

/* The samples of a split file (its keys looked up in x), labels 0..L-1.  Returns 0 or -1
 * (said).  shots_widen gives them room for K >= s->K frames. */
int shots_load_set(shot_samples *s, split_set *split, const feat_index *x, const char *path, int L);
void shots_widen(shot_samples *s, int K);

/* ---- metrics and reports ------------------------------------------------------------------ */
typedef struct eval_report {
    int n, K;
    double map, f1_micro, f1_macro, threshold, kappa_pooled;
    double *ap;                    /* (K), NaN for a class without positives                */
    int64_t *positives;            /* (K) in the truth                                      */
    int ntopk;
    int topk_k[4];
    double topk[4];                /* a shot is a hit when one of its k best labels is true  */
    /* against a human-verified file (human_n = 0 when none was given) */
    int human_n;
    double kappa_human;            /* the model's top-1 against the human label             */
    double agree_human;            /* observed agreement of the same                         */
    int weak_n;
    double kappa_weak;             /* the weak label's top-1 against the human label        */
} eval_report;

/* scores (n, K) probabilities, truth (n, K) 0/1.  human (may be NULL): the human labels of the
 * same samples, matched by key (samples without one are left out of kappa); weak_first (may
 * be NULL): each sample's weak top-1 label, for the weak labels' own kappa. */
int eval_compute(eval_report *r, const float *scores, const unsigned char *truth, int n, int K,
                 double threshold, char *const *keys, const split_set *human,
                 const int32_t *weak_first);
/* Cohen's kappa of two labellings a, b (n each, values 0..K-1), with p_o optionally out. */
double kappa_of(const int32_t *a, const int32_t *b, int n, int K, double *p_o);
/* top-k accuracy of multi-label truth: a hit when one of the k highest scores is a true label */
double topk_multilabel(const float *scores, const unsigned char *truth, int n, int K, int k);
/* JSON and text (labels: K names).  Returns 0 or -1 with a message. */
int eval_write(const eval_report *r, const char *const *labels, const char *json_path,
               const char *text_path, char *err, size_t errsize);
void eval_free(eval_report *r);
/* A shot model's sigmoid scores over samples (batches of max_batch), evaluated against the
 * samples' targets; human may be NULL. */
int shots_eval_samples(mcnn_shot_model *m, const shot_samples *s, int max_batch, double threshold,
                       const split_set *split, const split_set *human, eval_report *r);

/* ---- small shared helpers ----------------------------------------------------------------- */
char *shots_strdup(const char *s);        /* exits on out of memory (apps only)              */
void *shots_xmalloc(size_t n);
void *shots_xcalloc(size_t n, size_t size);
int shots_mkdirs(const char *dir, char *err, size_t errsize);
/* Write text atomically through outfile (path.tmp.pid, fsync, rename). */
int shots_write_text(const char *path, const char *text, size_t len, char *err, size_t errsize);

/* Parse a subcommand's options (specs: an arg_spec table; argv[0] is the subcommand): --help
 * prints usage and the options and exits; no positional argument is taken.  0 or -1 (said). */
int shots_args(const void *specs, int argc, char **argv, const char *usage);

/* The label list: mcnn_read_label_list with the app's message on failure. */
int shots_read_labels(char ***names, int *K, const char *path);

#endif
