/* mcnn-train's parts (apps/train.c is the entry point; each file here does one job):
 *   options.c   the command line: options, defaults, the --help table, what they make
 *   data.c      loading and checking a SOURCE; the data record a resumed run must match
 *   run.c       `mcnn-train train`: a run set up in order (folder, data, model, trainer)
 *   epochs.c    the epochs of a run: steps, evaluation, checkpoints, the final model
 *   progress.c  the per-step callback and the stop signals
 *   log.c       log.csv and the evaluation reports
 *   ranks.c     what several ranks (mpirun) agree on
 *   eval.c      `mcnn-train eval`
 *   resume.c    `--resume`: the run's own options, and refusing changes to them */
#ifndef MCNN_APPS_TRAIN_H
#define MCNN_APPS_TRAIN_H

#include "../common/args.h"
#include "../common/check.h"
#include "../common/distributed.h"
#include "mcnn.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

/* ---- options.c ----------------------------------------------------------------------------- */
typedef struct options {
    /* data */
    const char *data, *val, *test, *root, *labels, *idx_dir, *reference;
    double val_split;
    int skip_corrupt, limit, val_limit;
    /* model */
    const char *arch, *init, *model;
    const char *precision; /* eval --precision: fp32 (default), bf16, int8 */
    int image_size, channels, width, depth, patch, heads, freeze;
    /* training */
    int epochs, batch, accum, seed, threads, nesterov;
    double lr, wd, momentum, warmup, warmup_start, min_lr, step_epochs, gamma, clip, smoothing;
    const char *optim, *schedule, *loss, *pos_weight;
    /* augmentation and preprocessing */
    int no_augment, pad, resize;
    double flip, crop_scale;
    float mean[3], std[3];
    int mean_set, std_set;
    /* output */
    const char *out;
    int resume, progress, quiet, stop_after, eval_batch, confusion;
    double threshold, timeout;
    /* --resume: what the run recorded when it started (checkpoint metadata), or NULL */
    const char *run_data;  /* "train_data": each set's sample count and fingerprint */
} options;

/* Exit codes (documented in --help and docs/train.md). */
enum { EXIT_DONE = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_STOPPED = 75 };
enum { MAX_SPECS = 80 };

extern const char train_usage[], train_epilog[];
void default_options(options *o);
void make_specs(arg_spec *specs, options *o); /* specs: MAX_SPECS rows */
int check_choices(const options *o);          /* -1 after saying which value is unknown */
mcnn_train_config train_config(const options *o, int multi_label);
/* The transform for a model: its preprocessing plus the augmentation options. */
mcnn_transform make_transform(const mcnn_classifier *c, const options *o);
char *join_argv(int argc, char **argv);

/* ---- data.c -------------------------------------------------------------------------------- */
void load_source(mcnn_dataset *ds, const char *src, const options *o, const char *opt,
                 int limit);
void check_same_classes(const mcnn_dataset *a, const mcnn_dataset *b);
void data_record(char *buf, size_t size, const mcnn_dataset *const sets[3]);
int check_same_data(const char *recorded, const char *now, const char *ckpt);

/* ---- log.c --------------------------------------------------------------------------------- */
extern const char train_csv_header[];
void trim_log(const char *path, int64_t step);
int write_csv_eval(FILE *log, int epoch, int64_t step, const mcnn_eval_result *e,
                   double elapsed);
void print_eval(const char *what, const mcnn_eval_result *e, double seconds);
void print_confusion(const mcnn_eval_result *e, char *const *names);

/* ---- progress.c ---------------------------------------------------------------------------- */
extern volatile sig_atomic_t interrupted; /* a stop was asked for (signal or --stop-after) */
void catch_stop_signals(void);

typedef struct run {
    const options *o;
    FILE *log;
    int show, tty;
    double start, last_print, window_start;
    int64_t window_images, start_step;
    int stop_after;
} run;

int on_step(void *ctx, const mcnn_train_progress *p); /* ctx: a run */

/* ---- ranks.c ------------------------------------------------------------------------------- */
void resume_rank_rng(mcnn_trainer *tr, const char *ckpt, uint64_t seed);
int sync_ranks(mcnn_trainer *tr, mcnn_classifier *model, char *record, size_t size);

/* ---- run.c and epochs.c -------------------------------------------------------------------- */
/* One training run: what run.c sets up, in order, and epochs.c trains. */
typedef struct train_job {
    const options *o;
    const char *args, *out;           /* the command line recorded for --resume; the folder */
    char ckpt[4096], model_path[4096], log_path[4096], cwd[4096];
    int rank, ranks, lock;            /* lock: the run folder's, rank 0 (else -1)           */
    mcnn_dataset train, val, test;    /* val and test may be empty (count 0)                */
    char data[256];                   /* each set's size and fingerprint (data_record)      */
    mcnn_train_config cfg;
    mcnn_classifier *model;
    mcnn_trainer *tr;
    mcnn_transform tf;
    int eval_batch;
    char rank_record[16384];          /* "train_ranks": every rank's augmentation stream    */
    const char *meta[8];              /* the checkpoint's metadata pairs ...                */
    int n_meta;                       /* ... and how many                                   */
} train_job;

/* The epochs from the trainer's position to the end, then the model and the test set: an exit
 * status. */
int train_epochs(train_job *j);

/* ---- the commands: run.c, eval.c, resume.c ------------------------------------------------- */
int cmd_train(options *o, const char *args);
int cmd_eval(options *o);
int resume(const options *now, const arg_spec *now_specs);

#endif
