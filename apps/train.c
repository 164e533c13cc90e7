/* mcnn-train: train or fine-tune an image classifier (ResNet, ViT) and evaluate it.
 *
 *   mcnn-train [train] --data SOURCE [--val SOURCE | --val-split F] --arch ARCH --out DIR ...
 *   mcnn-train --resume --out DIR                 continue an interrupted run exactly
 *   mcnn-train eval --model FILE --data SOURCE    the metrics of a trained model
 *
 * Flow: options -> data (train, held-out) -> model (new, or --init checkpoint with a new head)
 *   -> trainer -> for each epoch: steps (progress, CSV rows, Ctrl-C) -> evaluation -> checkpoint
 *   -> DIR/model.safetensors.  Everything numeric is the library's (include/mcnn/train.h);
 *   this file parses, prints and handles signals. */
#define _POSIX_C_SOURCE 200809L
#include "common/args.h"
#include "common/check.h"
#include "common/distributed.h"
#include "common/run_folder.h"
#include "mcnn.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- options ------------------------------------------------------------------------------ */
typedef struct options {
    /* data */
    const char *data, *val, *test, *root, *labels, *idx_dir, *reference;
    double val_split;
    int skip_corrupt, limit, val_limit;
    /* model */
    const char *arch, *init, *model;
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

static void default_options(options *o)
{
    memset(o, 0, sizeof *o);
    const mcnn_train_config d = mcnn_train_config_default();
    o->arch = "resnet-small";
    o->idx_dir = MCNN_FASHION_MNIST_DIR;
    o->epochs = d.epochs, o->batch = d.batch, o->accum = d.accum, o->seed = 0;
    o->lr = d.lr, o->wd = d.weight_decay, o->momentum = d.momentum;
    o->warmup = d.warmup_epochs, o->warmup_start = d.warmup_start, o->min_lr = d.min_lr;
    o->step_epochs = d.step_epochs, o->gamma = d.gamma, o->clip = d.clip_norm;
    o->smoothing = d.label_smoothing;
    o->optim = "adamw", o->schedule = "cosine", o->pos_weight = "auto";
    o->pad = -1, o->flip = 0.5, o->crop_scale = 0.08;
    o->threshold = 0.5;
    o->timeout = 600;
    o->eval_batch = 0;
}

static const char usage[] =
    "usage: mcnn-train [train] --data SOURCE [options]   train or fine-tune a classifier\n"
    "       mcnn-train --resume --out DIR                 continue an interrupted run\n"
    "       mcnn-train eval --model FILE --data SOURCE    evaluate a trained classifier\n"
    "\n"
    "SOURCE is one of:\n"
    "  fashion-mnist:train, fashion-mnist:test   the IDX files in --idx-dir (gzipped or not)\n"
    "  idx:IMAGES,LABELS                         any IDX image/label pair\n"
    "  DIR                                       one sub-folder per class (ImageNet style)\n"
    "  FILE                                      a MovieCLIP split: '<path> <label> [<label>...]'\n"
    "                                            a line, with --labels and --root\n";

static const char epilog[] =
    "Output (--out DIR): checkpoint.safetensors (weights, optimizer state, position; written\n"
    "atomically after every epoch and on Ctrl-C), model.safetensors (weights, labels and\n"
    "preprocessing only: for mcnn-classify), log.csv (a row per step and per epoch).\n"
    "DIR and its parents are created; DIR/train.lock keeps a second run out of it.\n"
    "Ctrl-C or SIGTERM stops at the next step with a checkpoint; --resume --out DIR continues\n"
    "from it with the options the run started with (from any folder: its relative paths are\n"
    "read from the folder it started in, and its data must be the same), and repeats the\n"
    "uninterrupted run bit for bit.  With --resume, an option whose value differs from the\n"
    "run's is refused; only --threads, --stop-after, --progress and --quiet may change.\n"
    "A NaN or infinite loss stops the run with an error; the last checkpoint stays intact.\n"
    "\n"
    "Several processes (build/mpi/mcnn-train, `make MPI=1`): mpirun -np N mcnn-train ...\n"
    "trains one model on N ranks, each on batch / N images of every batch (N must divide\n"
    "--batch); rank 0 writes the run folder.  See docs/scale.md.\n"
    "\n"
    "Exit status: 0 trained (or evaluated; or --resume of a finished run: nothing to do),\n"
    "1 failed (a message says why; the last checkpoint stays intact), 2 bad command line,\n"
    "75 stopped cleanly (Ctrl-C, SIGTERM or --stop-after; the checkpoint is saved: continue\n"
    "with --resume).  A run killed outright ends by its signal (the shell shows 128 + N).\n"
    "\n"
    "Examples:\n"
    "  mcnn-train --data fashion-mnist:train --val fashion-mnist:test --arch resnet-small \\\n"
    "             --epochs 10 --out runs/fmnist\n"
    "  mcnn-train --data frames/train.txt --root frames --labels labels.txt --loss bce \\\n"
    "             --arch vit-b16 --init vit_b_16.safetensors --freeze-backbone --out runs/probe\n"
    "  mcnn-train eval --model runs/fmnist/model.safetensors --data fashion-mnist:test\n";

static void make_specs(arg_spec *specs, options *o)
{
    const arg_spec s[] = {
        {ARG_SECTION, .help = "Data"},
        {ARG_STRING, "--data", 'd', &o->data, "SOURCE",
         .help = "training data (eval: the data to score)"},
        {ARG_STRING, "--val", 0, &o->val, "SOURCE",
         .help = "held-out data, evaluated after every epoch"},
        {ARG_DOUBLE, "--val-split", 0, &o->val_split, "F",
         .help = "carve this fraction of the training data as held-out\n(seeded by --seed)",
         .min = 0, .max = 0.99},
        {ARG_STRING, "--test", 0, &o->test, "SOURCE", .help = "evaluated once, after training"},
        {ARG_STRING, "--root", 0, &o->root, "DIR",
         .help = "split files: folder the paths are relative to\n"
                 "(default: the split file's folder)"},
        {ARG_STRING, "--labels", 0, &o->labels, "FILE",
         .help = "split files: the label list, a name a line"},
        {ARG_STRING, "--idx-dir", 0, &o->idx_dir, "DIR",
         .help = "fashion-mnist:*: folder of the IDX files\n(default " MCNN_FASHION_MNIST_DIR ")"},
        {ARG_INT, "--limit", 0, &o->limit, "N",
         .help = "use only the first N training samples (quick runs)", .min = 1,
         .max = 2147483647},
        {ARG_INT, "--val-limit", 0, &o->val_limit, "N",
         .help = "use only the first N held-out/test samples", .min = 1, .max = 2147483647},
        {ARG_FLAG, "--skip-corrupt", 0, &o->skip_corrupt, NULL,
         .help = "skip undecodable images with a warning (default: stop)"},
        {ARG_SECTION, .help = "Model"},
        {ARG_STRING, "--arch", 'a', &o->arch, "ARCH",
         .help = "resnet50, vit-b16, resnet-small or vit-small\n(default resnet-small)"},
        {ARG_STRING, "--init", 0, &o->init, "FILE",
         .help = "fine-tune from this checkpoint (torchvision or timm\n"
                 "names, or a model of ours); the "
         "head is replaced\nwhen the class count differs"},
        {ARG_FLAG, "--freeze-backbone", 0, &o->freeze, NULL,
         .help = "train the head only (a linear probe)"},
        {ARG_INT, "--image-size", 0, &o->image_size, "N",
         .help = "input size (default: 28 for gray IDX data and the\nsmall models, else 224)",
         .min = 1, .max = 4096},
        {ARG_INT, "--channels", 0, &o->channels, "N",
         .help = "input channels (default: 1 for IDX data, else 3)", .min = 1, .max = 3},
        {ARG_INT, "--width", 0, &o->width, "N",
         .help = "small models: resnet-small first-stage width (32),\nvit-small width (128)",
         .min = 1, .max = 4096},
        {ARG_INT, "--depth", 0, &o->depth, "N",
         .help = "small models: blocks per stage (1) / layers (6)", .min = 1, .max = 64},
        {ARG_INT, "--patch", 0, &o->patch, "N",
         .help = "vit-small: patch size (4 for 28 x 28)", .min = 1, .max = 64},
        {ARG_INT, "--heads", 0, &o->heads, "N",
         .help = "vit-small: attention heads (width / 32)", .min = 1, .max = 64},
        {ARG_SECTION, .help = "Training"},
        {ARG_INT, "--epochs", 'e', &o->epochs, "N",
         .help = "epochs (default 10)", .min = 1, .max = 100000},
        {ARG_INT, "--batch", 'b', &o->batch, "N",
         .help = "batch size (default 128)", .min = 1, .max = 1 << 20},
        {ARG_INT, "--accum", 0, &o->accum, "N",
         .help = "batches per optimizer step (gradient accumulation;\ndefault 1)",
         .min = 1, .max = 1 << 20},
        {ARG_INT, "--seed", 0, &o->seed, "N",
         .help = "seed for initialisation, shuffling, augmentation and\n--val-split (default 0)",
         .min = 0,
         .max = 2147483647},
        {ARG_STRING, "--optim", 0, &o->optim, "NAME", .help = "adamw (default), adam or sgd"},
        {ARG_DOUBLE, "--lr", 0, &o->lr, "X",
         .help = "peak learning rate (default 1e-3)", .min = 0, .max = 1e3},
        {ARG_DOUBLE, "--wd", 0, &o->wd, "X",
         .help = "weight decay on conv/linear weights only, never on\nnorms, biases, embeddings "
         "(default 0.05)", .min = 0, .max = 1e3},
        {ARG_DOUBLE, "--momentum", 0, &o->momentum, "X",
         .help = "sgd: momentum (default 0.9)", .min = 0, .max = 1},
        {ARG_FLAG, "--nesterov", 0, &o->nesterov, NULL, .help = "sgd: Nesterov momentum"},
        {ARG_STRING, "--schedule", 0, &o->schedule, "NAME",
         .help = "after warm-up: cosine (default), step or constant"},
        {ARG_DOUBLE, "--warmup", 0, &o->warmup, "EPOCHS",
         .help = "linear warm-up length (default 1; fractions allowed)", .min = 0, .max = 1e6},
        {ARG_DOUBLE, "--warmup-start", 0, &o->warmup_start, "F",
         .help = "warm-up starts at F x lr (default 0.01)", .min = 0, .max = 1},
        {ARG_DOUBLE, "--min-lr", 0, &o->min_lr, "X",
         .help = "cosine: final learning rate (default 0)", .min = 0,
         .max = 1e3},
        {ARG_DOUBLE, "--step-epochs", 0, &o->step_epochs, "N",
         .help = "step: decay every N epochs (default 30)", .min = 0, .max = 1e6},
        {ARG_DOUBLE, "--gamma", 0, &o->gamma, "F",
         .help = "step: decay factor (default 0.1)", .min = 0, .max = 1},
        {ARG_DOUBLE, "--clip", 0, &o->clip, "X",
         .help = "clip the gradient norm to X (default 1; 0: off)", .min = 0, .max = 1e9},
        {ARG_STRING, "--loss", 0, &o->loss, "NAME",
         .help = "ce (cross-entropy; default for single-label data) or\n"
                 "bce (binary cross-entropy with "
         "logits; default for\nmulti-label data)"},
        {ARG_DOUBLE, "--smoothing", 0, &o->smoothing, "X",
         .help = "ce: label smoothing (default 0.1)", .min = 0, .max = 1},
        {ARG_STRING, "--pos-weight", 0, &o->pos_weight, "auto|none|FILE",
         .help = "bce: per-class positive weight: auto = negatives /\n"
                 "positives of the training labels "
         "(default), none, or\nK numbers in a file"},
        {ARG_INT, "--threads", 'j', &o->threads, "N",
         .help = "threads (default: all cores)", .min = 0, .max = 1024},
        {ARG_SECTION, .help = "Augmentation and preprocessing"},
        {ARG_FLAG, "--no-augment", 0, &o->no_augment, NULL,
         .help = "train on the images as they are"},
        {ARG_INT, "--pad", 0, &o->pad, "N",
         .help = "in-memory images: random crop after zero padding by N\n"
                 "(default size / 7: 4 for 28)",
         .min = 0,
         .max = 1024},
        {ARG_DOUBLE, "--flip", 0, &o->flip, "P",
         .help = "probability of a horizontal flip (default 0.5)", .min = 0, .max = 1},
        {ARG_DOUBLE, "--crop-scale", 0, &o->crop_scale, "MIN",
         .help = "image files: RandomResizedCrop area scale (MIN, 1)\n(default 0.08)",
         .min = 0.001, .max = 1},
        {ARG_INT, "--resize", 0, &o->resize, "N",
         .help = "image files, evaluation: shorter side before the\n"
                 "center crop (default size x 256 / "
         "224)", .min = 1, .max = 16384},
        {ARG_FLOAT3, "--mean", 0, o->mean, "R,G,B",
         .help = "normalisation mean (default: the data's)",
         .min = 1, .max = 0, .seen = &o->mean_set},
        {ARG_FLOAT3, "--std", 0, o->std, "R,G,B",
         .help = "normalisation std (default: the data's)", .min = 1, .max = 0,
         .seen = &o->std_set},
        {ARG_SECTION, .help = "Output"},
        {ARG_STRING, "--out", 'o', &o->out, "DIR",
         .help = "run folder (created with its parents; default 'run')"},
        {ARG_FLAG, "--resume", 0, &o->resume, NULL,
         .help = "continue the run in --out from its checkpoint, with\n"
                 "the options it was started with"},
        {ARG_INT, "--stop-after", 0, &o->stop_after, "STEPS",
         .help = "stop as Ctrl-C would after this many steps (tests)", .min = 1, .max = 2147483647},
        {ARG_FLAG, "--progress", 0, &o->progress, NULL,
         .help = "progress on stderr even when it is not a terminal"},
        {ARG_FLAG, "--quiet", 'q', &o->quiet, NULL, .help = "no progress, only results"},
        {ARG_DOUBLE, "--timeout", 0, &o->timeout, "S",
         .help = "several ranks (mpirun): a step waiting S seconds for\n"
                 "the others ends the job (default 600; 0: never)", .min = 0, .max = 1e7},
        {ARG_INT, "--eval-batch", 0, &o->eval_batch, "N",
         .help = "evaluation batch (default: --batch)",
         .min = 1, .max = 1 << 20},
        {ARG_DOUBLE, "--threshold", 0, &o->threshold, "P",
         .help = "multi-label: decision threshold on sigmoid scores for\n"
                 "F1 and kappa (default 0.5)",
         .min = 0,
         .max = 1},
        {ARG_SECTION, .help = "Evaluation (mcnn-train eval)"},
        {ARG_STRING, "--model", 'm', &o->model, "FILE", .help = "the classifier to evaluate"},
        {ARG_STRING, "--reference", 0, &o->reference, "FILE",
         .help = "a second labelling of the same images (a split file,\n"
                 "matched by path): Cohen's kappa "
         "of the predictions\nagainst it"},
        {ARG_FLAG, "--confusion", 0, &o->confusion, NULL,
         .help = "print the confusion matrix (single-label, K <= 50)"},
        {0}};
    memcpy(specs, s, sizeof s);
}
enum { MAX_SPECS = 80 };

/* ---- data --------------------------------------------------------------------------------- */

static void warn_corrupt(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "\n%s: warning: skipping %s\n", app_name, msg);
}

/* Keep the first n samples. */
static void limit_data(mcnn_dataset *ds, int n)
{
    if (n <= 0 || n >= ds->count) return;
    int *idx = malloc((size_t)n * sizeof *idx);
    if (!idx) {
        app_error("out of memory");
        exit(EXIT_FAILED);
    }
    for (int i = 0; i < n; i++) idx[i] = i;
    mcnn_dataset sub;
    CHECK(mcnn_dataset_subset(&sub, ds, idx, n));
    free(idx);
    mcnn_dataset_free(ds);
    *ds = sub;
}

/* Load a SOURCE (see usage) given to option opt, keep its first `limit` samples (0: all), and
 * check what would otherwise fail mid-run: class names and every image header. */
static void load_source(mcnn_dataset *ds, const char *src, const options *o, const char *opt,
                        int limit)
{
    struct stat sb;
    if (strcmp(src, "fashion-mnist:train") == 0 || strcmp(src, "fashion-mnist") == 0) {
        CHECK(mcnn_dataset_load_fashion_mnist(ds, o->idx_dir, 1));
    } else if (strcmp(src, "fashion-mnist:test") == 0) {
        CHECK(mcnn_dataset_load_fashion_mnist(ds, o->idx_dir, 0));
    } else if (strncmp(src, "idx:", 4) == 0) {
        char buf[2048];
        snprintf(buf, sizeof buf, "%s", src + 4);
        char *comma = strchr(buf, ',');
        if (!comma) {
            app_error("%s %s: expected idx:IMAGES,LABELS", opt, src);
            exit(EXIT_USAGE);
        }
        *comma = 0;
        CHECK(mcnn_dataset_load_idx(ds, buf, comma + 1));
    } else if (stat(src, &sb) != 0) {
        app_error("%s %s: %s (expected a folder of class folders, a split file, "
                  "fashion-mnist:train|test or idx:IMAGES,LABELS)", opt, src, strerror(errno));
        exit(EXIT_USAGE);
    } else if (S_ISDIR(sb.st_mode)) {
        CHECK(mcnn_dataset_load_folder(ds, src));
    } else {
        if (!o->labels) {
            app_error("%s %s: a split file needs --labels FILE (the label list)", opt, src);
            exit(EXIT_USAGE);
        }
        CHECK(mcnn_dataset_load_split(ds, src, o->root, o->labels));
    }
    limit_data(ds, limit);
    if (o->skip_corrupt) CHECK(mcnn_dataset_skip_corrupt(ds, warn_corrupt, NULL));
    CHECK(mcnn_dataset_check(ds));
}

static void check_same_classes(const mcnn_dataset *a, const mcnn_dataset *b)
{
    int same = a->num_classes == b->num_classes;
    for (int k = 0; same && k < a->num_classes; k++)
        same = strcmp(a->class_names[k], b->class_names[k]) == 0;
    if (!same) {
        app_error("%s and %s do not have the same classes (%d and %d, or other names)", a->source,
                  b->source, a->num_classes, b->num_classes);
        exit(EXIT_FAILED);
    }
}

/* ---- the run's log ------------------------------------------------------------------------- */

static const char csv_header[] =
    "kind,epoch,step,loss,lr,grad_norm,images_per_s,elapsed_s,val_loss,top1,top5,"
    "mean_class_acc,map,f1_micro,f1_macro,kappa\n";

/* Keep the rows up to a resumed checkpoint: a run killed after its last checkpoint has logged
 * steps the resumed run will do again. */
static void trim_log(const char *path, int64_t step)
{
    FILE *f = fopen(path, "r");
    if (!f) return;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *g = fopen(tmp, "w");
    if (!g) {
        fclose(f);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        char kind[16];
        int epoch;
        long long s;
        if (sscanf(line, "%15[^,],%d,%lld", kind, &epoch, &s) == 3 && s > step) continue;
        fputs(line, g);
    }
    free(line);
    fclose(f);
    if (fclose(g) == 0) rename(tmp, path);
}

static void csv_num(FILE *f, double v)
{
    if (isnan(v)) fputs(",", f);
    else fprintf(f, ",%.6g", v);
}

/* ---- progress ------------------------------------------------------------------------------ */

static volatile sig_atomic_t interrupted;

/* Ctrl-C and SIGTERM (kill, systemd, a batch scheduler): stop at the next step boundary with
 * a checkpoint.  A second signal of the same kind ends the process at once. */
static void on_stop_signal(int sig)
{
    interrupted = 1;
    signal(sig, SIG_DFL);
}

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

typedef struct run {
    const options *o;
    FILE *log;
    int show, tty;
    double start, last_print, window_start;
    int64_t window_images, start_step;
    int stop_after;
} run;

static void fmt_time(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

static int on_step(void *ctx, const mcnn_train_progress *p)
{
    run *r = ctx;
    const double now = mcnn_seconds(), elapsed = now - r->start;
    const double rate = (double)(p->step - r->start_step) * p->images / (elapsed > 0 ? elapsed : 1);
    if (r->log) {
        fprintf(r->log, "step,%d,%lld,%.6g,%.6g,%.6g,%.1f,%.1f,,,,,,,,\n", p->epoch + 1,
                (long long)p->step, p->loss, p->lr, p->grad_norm, rate, elapsed);
        if (p->epoch_step == p->epoch_steps) fflush(r->log);
    }
    if (r->show && (now - r->last_print >= (r->tty ? 0.5 : 10.0) || p->step == p->total_steps)) {
        char eta[32];
        const double left = (double)(p->total_steps - p->step) * p->images;
        fmt_time(eta, sizeof eta, rate > 0 ? left / rate : 0);
        fprintf(stderr, "%sepoch %d/%d  step %lld/%lld  loss %.4f  lr %.3g  %.0f img/s  ETA %s%s",
                r->tty ? "\r" : "", p->epoch + 1, p->epochs, (long long)p->step,
                (long long)p->total_steps, p->loss, p->lr, rate, eta, r->tty ? "\033[K" : "\n");
        r->last_print = now;
    }
    if (r->stop_after && p->step >= r->stop_after) interrupted = 1;
    if (dist_size() > 1) interrupted = dist_any(interrupted); /* every rank stops at one step */
    return interrupted != 0;
}

static void print_eval(const char *what, const mcnn_eval_result *e, double seconds)
{
    if (e->multi_label)
        printf("%s: loss %.4f  mAP %.2f%%  F1 micro %.2f%% macro %.2f%%  kappa %.4f  (%d images, "
               "%.1f s)\n", what, e->loss, 100 * e->map, 100 * e->f1_micro, 100 * e->f1_macro,
               e->kappa, e->count, seconds);
    else {
        /* top-5 says something only with more than 5 classes (with 5 or fewer it is 100%) */
        char top5[32] = "";
        if (e->num_classes > 5) snprintf(top5, sizeof top5, "  top-5 %.2f%%", 100 * e->top5);
        printf("%s: loss %.4f  top-1 %.2f%%%s  mean per-class %.2f%%  kappa %.4f  (%d images, "
               "%.1f s)\n", what, e->loss, 100 * e->top1, top5, 100 * e->mean_class_acc,
               e->kappa, e->count, seconds);
    }
    fflush(stdout);
}

static void print_confusion(const mcnn_eval_result *e, char *const *names)
{
    const int K = e->num_classes;
    if (!e->confusion || K > 50) return;
    printf("confusion matrix (rows: truth, columns: prediction)\n%14s", "");
    for (int p = 0; p < K; p++) printf(" %6d", p);
    printf("\n");
    for (int t = 0; t < K; t++) {
        printf("%2d %-11.11s", t, names[t]);
        for (int p = 0; p < K; p++) printf(" %6lld", (long long)e->confusion[(size_t)t * K + p]);
        printf("\n");
    }
}

/* ---- the run -------------------------------------------------------------------------------- */

static mcnn_train_config train_config(const options *o, int multi_label)
{
    mcnn_train_config c = mcnn_train_config_default();
    c.batch = o->batch, c.accum = o->accum, c.epochs = o->epochs, c.seed = (uint64_t)o->seed;
    c.loss = o->loss ? (strcmp(o->loss, "bce") == 0 ? MCNN_LOSS_BCE : MCNN_LOSS_CE)
                     : multi_label ? MCNN_LOSS_BCE : MCNN_LOSS_CE;
    c.label_smoothing = (float)o->smoothing;
    c.optim = strcmp(o->optim, "sgd") == 0 ? MCNN_OPTIM_SGD
              : strcmp(o->optim, "adam") == 0 ? MCNN_OPTIM_ADAM : MCNN_OPTIM_ADAMW;
    c.lr = o->lr, c.weight_decay = o->wd, c.momentum = o->momentum, c.nesterov = o->nesterov;
    c.schedule = strcmp(o->schedule, "step") == 0 ? MCNN_LR_STEP
                 : strcmp(o->schedule, "constant") == 0 ? MCNN_LR_CONSTANT : MCNN_LR_COSINE;
    c.warmup_epochs = o->warmup, c.warmup_start = o->warmup_start, c.min_lr = o->min_lr;
    c.step_epochs = o->step_epochs, c.gamma = o->gamma;
    c.clip_norm = (float)o->clip;
    c.freeze_backbone = o->freeze;
    return c;
}

static int check_choices(const options *o)
{
    static const char *const optims[] = {"adamw", "adam", "sgd", NULL};
    static const char *const schedules[] = {"cosine", "step", "constant", NULL};
    static const char *const losses[] = {"ce", "bce", NULL};
    static const char *const archs[] = {"resnet50", "vit-b16", "resnet-small", "vit-small", NULL};
    const struct { const char *opt, *given; const char *const *v; } list[] = {
        {"--optim", o->optim, optims}, {"--schedule", o->schedule, schedules},
        {"--loss", o->loss, losses}, {"--arch", o->arch, archs}};
    for (int i = 0; i < 4; i++) {
        if (!list[i].given) continue;
        int ok = 0;
        for (int j = 0; list[i].v[j]; j++) ok |= strcmp(list[i].given, list[i].v[j]) == 0;
        if (!ok) {
            app_error("%s: unknown value '%s'", list[i].opt, list[i].given);
            return -1;
        }
    }
    return 0;
}

/* The transform for a model: its preprocessing plus the augmentation options. */
static mcnn_transform make_transform(const mcnn_classifier *c, const options *o)
{
    const mcnn_preprocess_config *p = mcnn_classifier_get_preprocess(c);
    mcnn_transform t = mcnn_transform_default(p->crop, p->channels);
    t.preprocess = *p;
    if (o->pad >= 0) t.pad = o->pad;
    t.augment.flip_p = (float)o->flip;
    t.augment.scale_min = (float)o->crop_scale;
    if (o->no_augment) t.pad = 0, t.augment.flip_p = 0, t.augment.scale_min =
                       t.augment.scale_max = 1, t.augment.ratio_min = t.augment.ratio_max = 1;
    return t;
}

/* The command line as one metadata string (arguments joined by newlines), so that --resume
 * can rebuild the run from the checkpoint alone. */
static char *join_argv(int argc, char **argv)
{
    size_t n = 1;
    for (int i = 1; i < argc; i++) n += strlen(argv[i]) + 1;
    char *s = malloc(n), *p = s;
    if (!s) return NULL;
    *p = 0;
    for (int i = 1; i < argc; i++) p += sprintf(p, "%s%s", i > 1 ? "\n" : "", argv[i]);
    return s;
}

static int write_csv_eval(FILE *log, int epoch, int64_t step, const mcnn_eval_result *e,
                          double elapsed)
{
    if (!log) return 0;
    fprintf(log, "epoch,%d,%lld,,,,,%.1f", epoch, (long long)step, elapsed);
    csv_num(log, e->loss);
    csv_num(log, e->top1);
    csv_num(log, e->top5);
    csv_num(log, e->mean_class_acc);
    csv_num(log, e->map);
    csv_num(log, e->f1_micro);
    csv_num(log, e->f1_macro);
    csv_num(log, e->kappa);
    fputc('\n', log);
    return fflush(log);
}

/* Each data set's size and fingerprint, a line each ("train 60000 3f2a..."): what a resumed
 * run must find again. */
static void data_record(char *buf, size_t size, const mcnn_dataset *const sets[3])
{
    static const char *const names[3] = {"train", "val", "test"};
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t h;
        if (!sets[i]->count) continue;
        CHECK(mcnn_dataset_fingerprint(sets[i], &h));
        n += (size_t)snprintf(buf + n, size - n, "%s%s %d %016" PRIx64, n ? "\n" : "", names[i],
                              sets[i]->count, h);
    }
}

/* "N samples (fingerprint H)" or "none" for one set of a data record. */
static void describe_set(char *out, size_t size, const char *record, const char *name)
{
    snprintf(out, size, "none");
    for (const char *line = record; line && *line;) {
        char set[16], hash[17];
        int count;
        if (sscanf(line, "%15s %d %16s", set, &count, hash) == 3 && strcmp(set, name) == 0)
            snprintf(out, size, "%d samples (fingerprint %s)", count, hash);
        line = strchr(line, '\n'); /* the next line, or NULL (never NULL + 1) */
        if (line) line++;
    }
}

/* A resumed run's data against what the run recorded when it started. */
static int check_same_data(const char *recorded, const char *now, const char *ckpt)
{
    if (!recorded || strcmp(recorded, now) == 0) return 0;
    static const char *const names[3] = {"train", "val", "test"};
    for (int i = 0; i < 3; i++) {
        char was[96], is[96];
        describe_set(was, sizeof was, recorded, names[i]);
        describe_set(is, sizeof is, now, names[i]);
        if (strcmp(was, is) != 0) {
            app_error("%s: the %s data is not the run's: %s when it started, %s now (resume "
                      "with the same data: relative paths are read from the folder the run "
                      "started in)", ckpt, i == 0 ? "training" : i == 1 ? "held-out" : "test",
                      was, is);
            return -1;
        }
    }
    return 0;
}

/* ---- several ranks (apps/common/distributed.h) ----------------------------------------------- */

/* A resumed rank's augmentation stream: its own when the run had as many ranks ("train_ranks":
 * the count, then each rank's four words a line); else rank 0 keeps the checkpoint's and the
 * others start new streams derived from (seed, rank, step). */
static void resume_rank_rng(mcnn_trainer *tr, const char *ckpt, uint64_t seed)
{
    const int rank = dist_rank(), ranks = dist_size();
    int recorded = 1;
    uint64_t w[4];
    mcnn_safetensors *st;
    CHECK(mcnn_safetensors_open(&st, ckpt));
    const char *rec = mcnn_safetensors_meta(st, "train_ranks");
    if (rec) recorded = atoi(rec);
    int found = 0;
    if (rec && recorded == ranks) {
        const char *line = rec;
        for (int r = 0; r <= rank && line; r++) line = strchr(line + 1, '\n');
        found = line && sscanf(line, " %16" SCNx64 " %16" SCNx64 " %16" SCNx64 " %16" SCNx64,
                               &w[0], &w[1], &w[2], &w[3]) == 4;
    }
    mcnn_safetensors_close(st);
    if (found) {
        mcnn_trainer_set_rng(tr, w);
    } else if (rank > 0) {
        mcnn_rng r;
        mcnn_rng_seed(&r, seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)rank) ^
                              (0xD1B54A32D192ED03ull * (uint64_t)(mcnn_trainer_step_count(tr) + 1)));
        mcnn_trainer_set_rng(tr, r.s);
    }
    if (rank == 0 && recorded != ranks)
        fprintf(stderr, "%s: the run was on %d rank%s, it continues on %d: the weights, optimizer "
                "and position are the checkpoint's; ranks above 0 augment from new random streams "
                "(docs/scale.md)\n", app_name, recorded, recorded > 1 ? "s" : "", ranks);
}

/* Before rank 0 evaluates or writes: average the batch-norm running statistics, record every
 * rank's augmentation stream in `record` (rank 0), and check that the weights are still the
 * same on every rank.  0, or -1 after saying why. */
static int sync_ranks(mcnn_trainer *tr, mcnn_classifier *model, char *record, size_t size)
{
    const int ranks = dist_size();
    if (ranks == 1) return 0;
    mcnn_params *b = mcnn_classifier_buffers(model);
    if (b) dist_average(b->data, b->total);
    uint64_t mine[4], *all = dist_rank() == 0 ? malloc((size_t)ranks * 4 * sizeof *all) : NULL;
    if (dist_rank() == 0 && !all) {
        app_error("out of memory");
        dist_abort(EXIT_FAILED);
    }
    mcnn_trainer_get_rng(tr, mine);
    dist_gather_u64(mine, 4, all);
    if (all) {
        size_t n = (size_t)snprintf(record, size, "%d", ranks);
        for (int r = 0; r < ranks && n < size; r++)
            n += (size_t)snprintf(record + n, size - n, "\n%016" PRIx64 " %016" PRIx64 " %016"
                                  PRIx64 " %016" PRIx64, all[4 * r], all[4 * r + 1],
                                  all[4 * r + 2], all[4 * r + 3]);
        free(all);
    }
    const mcnn_params *p = mcnn_classifier_params(model);
    return dist_check_same("weights (the ranks have diverged)", p->data,
                           p->total * sizeof(float));
}

static int cmd_train(options *o, const char *args)
{
    if (check_choices(o)) return EXIT_USAGE;
    if (!o->data) {
        app_error("give the training data with --data SOURCE (see --help)");
        return EXIT_USAGE;
    }
    if (o->val && o->val_split > 0) {
        app_error("--val and --val-split both give held-out data: choose one");
        return EXIT_USAGE;
    }
    const char *out = o->out ? o->out : "run";
    char ckpt[4096], model_path[4096], log_path[4096], cwd[4096];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", out);
    snprintf(log_path, sizeof log_path, "%s/log.csv", out);
    if (!getcwd(cwd, sizeof cwd)) {
        app_error("cannot read the current folder: %s", strerror(errno));
        return EXIT_FAILED;
    }
    const int rank = dist_rank(), ranks = dist_size();
    if (o->batch % ranks) {
        if (rank == 0)
            app_error("--batch %d does not split over %d ranks: give a global batch that %d "
                      "divides (each rank trains on batch / ranks images of every batch)",
                      o->batch, ranks, ranks);
        return EXIT_USAGE;
    }
    dist_set_timeout(o->timeout);
    /* rank 0 alone owns the run folder; the others only read its checkpoint */
    int lock = -1, ready = 1;
    if (rank == 0) {
        ready = run_folder_make(out) == 0 && (lock = run_folder_lock(out, "train.lock")) >= 0;
        if (ready) run_folder_clean_temps(out);
    }
    if (dist_any(!ready)) return EXIT_FAILED;
    if (o->threads) mcnn_set_threads(o->threads);
    /* what the error paths below free (each failure: status = ..., goto done) */
    int status = EXIT_DONE;
    mcnn_dataset full, train, val, test;
    mcnn_classifier *model = NULL;
    mcnn_trainer *tr = NULL;
    FILE *log = NULL;
    memset(&train, 0, sizeof train);
    memset(&val, 0, sizeof val);
    memset(&test, 0, sizeof test);

    /* data: every set loaded and checked before anything trains */
    load_source(&full, o->data, o, "--data", o->limit);
    if (o->val_split > 0) {
        CHECK(mcnn_dataset_split(&train, &val, &full, o->val_split, (uint64_t)o->seed));
        mcnn_dataset_free(&full);
    } else {
        train = full;
    }
    if (o->val) load_source(&val, o->val, o, "--val", o->val_limit), check_same_classes(&train, &val);
    if (o->test)
        load_source(&test, o->test, o, "--test", o->val_limit), check_same_classes(&train, &test);
    const int K = train.num_classes;
    char data[256];
    data_record(data, sizeof data, (const mcnn_dataset *const[3]){&train, &val, &test});
    if (o->resume && check_same_data(o->run_data, data, ckpt)) {
        status = EXIT_FAILED;
        goto done;
    }
    if (dist_check_same("data (sizes and fingerprints)", data, strlen(data)) ||
        dist_check_same("options", args, strlen(args))) {
        status = EXIT_USAGE;
        goto done;
    }

    /* model */
    mcnn_train_config cfg = train_config(o, train.multi_label);
    if (cfg.loss == MCNN_LOSS_CE && train.multi_label) {
        app_error("%s has samples with several labels: use --loss bce", train.source);
        status = EXIT_USAGE;
        goto done;
    }
    if (o->resume) {
        mcnn_classifier_load_options lo = {0};
        CHECK(mcnn_classifier_load(&model, ckpt, &lo));
        CHECK(mcnn_train_config_load(&cfg, ckpt));
    } else if (o->init) {
        mcnn_classifier_load_options lo = {.num_classes = K, .image_size = o->image_size,
                                           .seed = (uint64_t)o->seed};
        CHECK(mcnn_classifier_load(&model, o->init, &lo));
    } else {
        const int gray = train.pixels && train.channels == 1;
        mcnn_classifier_config mc = {.arch = o->arch, .num_classes = K,
                                     .image_size = o->image_size ? o->image_size
                                                   : train.pixels ? train.height : 0,
                                     .in_channels = o->channels ? o->channels : gray ? 1 : 3,
                                     .width = o->width, .depth = o->depth, .patch = o->patch,
                                     .heads = o->heads};
        CHECK(mcnn_classifier_create(&model, &mc, (uint64_t)o->seed));
    }
    if (mcnn_classifier_num_classes(model) != K) {
        app_error("%s: the model has %d classes, the data (%s) %d",
                  o->resume ? ckpt : o->init ? o->init : o->arch,
                  mcnn_classifier_num_classes(model), train.source, K);
        status = EXIT_FAILED;
        goto done;
    }
    if (!o->resume) {
        CHECK(mcnn_classifier_set_labels(model, (const char *const *)train.class_names, K));
        mcnn_preprocess_config pp = *mcnn_classifier_get_preprocess(model);
        if (!o->init && train.pixels && train.channels == 1 && pp.channels == 1)
            pp.mean[0] = MCNN_FASHION_MNIST_MEAN, pp.std[0] = MCNN_FASHION_MNIST_STD;
        if (o->mean_set) memcpy(pp.mean, o->mean, sizeof pp.mean);
        if (o->std_set) memcpy(pp.std, o->std, sizeof pp.std);
        if (o->resize) pp.resize = o->resize;
        mcnn_classifier_set_preprocess(model, &pp);
    }
    const mcnn_transform tf = make_transform(model, o);
    const int eval_batch = o->eval_batch ? o->eval_batch : o->batch;

    /* trainer */
    cfg.rank = rank, cfg.ranks = ranks;
    cfg.grad_hook = ranks > 1 ? dist_grad_hook : NULL;
    CHECK(mcnn_trainer_create(&tr, model, &cfg, train.count));
    if (o->resume) {
        CHECK(mcnn_trainer_resume(tr, ckpt));
        resume_rank_rng(tr, ckpt, cfg.seed);
    } else if (cfg.loss == MCNN_LOSS_BCE && strcmp(o->pos_weight, "none") != 0) {
        float *pw = malloc((size_t)K * sizeof(float));
        if (!pw) {
            app_error("out of memory");
            status = EXIT_FAILED;
            goto done;
        }
        if (strcmp(o->pos_weight, "auto") == 0) mcnn_dataset_pos_weight(&train, pw);
        else CHECK(mcnn_read_pos_weight(pw, K, o->pos_weight));
        CHECK(mcnn_trainer_set_pos_weight(tr, pw));
        free(pw);
    }
    static char rank_record[16384];
    const char *meta[] = {"train_args", args, "train_cwd", cwd, "train_data", data,
                          "train_ranks", rank_record};
    const int n_meta = ranks > 1 ? 4 : 3;

    const mcnn_params *params = mcnn_classifier_params(model);
    const int64_t position = mcnn_trainer_step_count(tr);
    if (dist_check_same("starting weights (--init file or checkpoint)", params->data,
                        params->total * sizeof(float)) ||
        dist_check_same("checkpoint position", &position, sizeof position)) {
        status = EXIT_USAGE;
        goto done;
    }
    size_t nparams = 0;
    for (int i = 0; i < params->count; i++) nparams += params->table[i].numel;
    const mcnn_preprocess_config *pp = mcnn_classifier_get_preprocess(model);
    if (rank == 0)
        fprintf(stderr, "%s: %s, %.2f M parameters, %d classes, %d x %d x %d input; %d "
                "training images%s%s; %lld steps of %d x %d per epoch; %d threads\n", app_name,
                mcnn_classifier_arch_name(model), nparams / 1e6, K, pp->channels, pp->crop,
                pp->crop, train.count, val.count ? ", held-out " : "",
                val.count ? val.source : "", (long long)mcnn_trainer_steps_per_epoch(tr),
                cfg.batch, cfg.accum, mcnn_get_threads());
    if (rank == 0 && ranks > 1)
        fprintf(stderr, "%s: %d ranks (%s), %d images of each batch per rank\n", app_name, ranks,
                dist_library(), cfg.batch / ranks);

    struct stat sb;
    if (o->resume && mcnn_trainer_epoch(tr) >= cfg.epochs && stat(model_path, &sb) == 0) {
        if (rank == 0)
            fprintf(stderr, "%s: the run in %s has finished (%d of %d epochs): nothing to "
                    "resume; its model is %s\n", app_name, out, mcnn_trainer_epoch(tr),
                    cfg.epochs, model_path);
        goto done;
    }

    /* log (rank 0) */
    if (rank == 0 && o->resume) trim_log(log_path, mcnn_trainer_step_count(tr));
    if (rank == 0 && !(log = fopen(log_path, o->resume ? "a" : "w"))) {
        app_error("%s: cannot write: %s", log_path, strerror(errno));
        status = EXIT_FAILED;
        goto done;
    }
    if (log && (!o->resume || ftell(log) == 0)) fputs(csv_header, log);

    run r = {.o = o, .log = log, .tty = isatty(STDERR_FILENO), .start = mcnn_seconds(),
             .start_step = mcnn_trainer_step_count(tr), .stop_after = o->stop_after};
    r.show = !o->quiet && (r.tty || o->progress);
    catch_stop_signals();
    while (mcnn_trainer_epoch(tr) < cfg.epochs) {
        int stopped = 0;
        mcnn_status s = mcnn_trainer_run_epoch(tr, &train, &tf, on_step, &r, &stopped);
        if (r.show && r.tty) fprintf(stderr, "\n");
        if (s != MCNN_OK) {
            app_error("%s", mcnn_last_error());
            if (stat(ckpt, &sb) == 0)
                app_error("the last good checkpoint is %s (resume with --resume --out %s)", ckpt,
                          out);
            status = EXIT_FAILED;
            break;
        }
        if (stopped) {
            if (sync_ranks(tr, model, rank_record, sizeof rank_record)) {
                status = EXIT_FAILED;
                break;
            }
            status = EXIT_STOPPED;
            if (rank > 0) break;
            CHECK(mcnn_trainer_save(tr, ckpt, meta, n_meta));
            fflush(log);
            fprintf(stderr, "%s: stopped at step %lld (epoch %d); checkpoint %s; continue with: "
                    "mcnn-train --resume --out %s\n", app_name,
                    (long long)mcnn_trainer_step_count(tr), mcnn_trainer_epoch(tr) + 1, ckpt, out);
            break;
        }
        const int epoch = mcnn_trainer_epoch(tr);
        if (sync_ranks(tr, model, rank_record, sizeof rank_record)) {
            status = EXIT_FAILED;
            break;
        }
        if (rank > 0) {
            /* rank 0 evaluates and writes meanwhile */
        } else if (val.count) {
            mcnn_eval_result e;
            const double t0 = mcnn_seconds();
            CHECK(mcnn_evaluate(model, &val, &tf, eval_batch, (float)o->threshold, &e));
            char what[64];
            snprintf(what, sizeof what, "epoch %d held-out", epoch);
            print_eval(what, &e, mcnn_seconds() - t0);
            write_csv_eval(log, epoch, mcnn_trainer_step_count(tr), &e, mcnn_seconds() - r.start);
            mcnn_eval_result_free(&e);
        } else {
            printf("epoch %d done (%.1f s)\n", epoch, mcnn_seconds() - r.start);
        }
        if (rank == 0) CHECK(mcnn_trainer_save(tr, ckpt, meta, n_meta));
        dist_wait_for_rank0();
        if (dist_any(interrupted)) {
            if (rank == 0)
                fprintf(stderr, "%s: stopped after epoch %d; checkpoint %s\n", app_name, epoch,
                        ckpt);
            status = EXIT_STOPPED;
            break;
        }
    }
    if (status == 0 && ranks > 1 && rank == 0) {
        int64_t calls;
        const double s = dist_grad_seconds(&calls);
        fprintf(stderr, "%s: gradient allreduce: %.2f ms per step (%lld steps, %.1f%% of the "
                "run)\n", app_name, calls ? 1e3 * s / (double)calls : 0.0, (long long)calls,
                100 * s / (mcnn_seconds() - r.start));
    }
    if (status == 0 && rank == 0) {
        CHECK(mcnn_classifier_save(model, model_path));
        fprintf(stderr, "%s: %s written (%.1f min)\n", app_name, model_path,
                (mcnn_seconds() - r.start) / 60);
        if (test.count) {
            mcnn_eval_result e;
            const double t0 = mcnn_seconds();
            CHECK(mcnn_evaluate(model, &test, &tf, eval_batch, (float)o->threshold, &e));
            print_eval("test", &e, mcnn_seconds() - t0);
            write_csv_eval(log, mcnn_trainer_epoch(tr), mcnn_trainer_step_count(tr), &e,
                           mcnn_seconds() - r.start);
            mcnn_eval_result_free(&e);
        }
    }
    if (status == 0) dist_wait_for_rank0();
done:
    if (log) fclose(log);
    mcnn_trainer_free(tr);
    mcnn_classifier_free(model);
    mcnn_dataset_free(&train);
    mcnn_dataset_free(&val);
    mcnn_dataset_free(&test);
    if (lock >= 0) close(lock);
    return status;
}

/* ---- eval ------------------------------------------------------------------------------------ */

static int by_path(const void *a, const void *b)
{
    return strcmp(**(char **const *)a, **(char **const *)b);
}

/* Kappa of the predictions against a second labelling (a split file), matched by path. */
static void reference_kappa(const mcnn_eval_result *e, const mcnn_dataset *data, const options *o)
{
    mcnn_dataset ref;
    load_source(&ref, o->reference, o, "--reference", 0);
    check_same_classes(data, &ref);
    const int K = data->num_classes;
    if (!data->paths) {
        app_error("--reference: %s has no file paths to match", data->source);
        exit(2);
    }
    char ***sorted = malloc((size_t)ref.count * sizeof *sorted);
    int64_t *cm = calloc((size_t)K * K, sizeof *cm), bin[4] = {0};
    if (!sorted || !cm) {
        app_error("out of memory");
        exit(1);
    }
    for (int i = 0; i < ref.count; i++) sorted[i] = &ref.paths[i];
    qsort(sorted, (size_t)ref.count, sizeof *sorted, by_path);
    int matched = 0;
    for (int n = 0; n < data->count; n++) {
        char **key = &data->paths[n];
        char ***hit = bsearch(&key, sorted, (size_t)ref.count, sizeof *sorted, by_path);
        if (!hit) continue;
        const int j = (int)(*hit - ref.paths);
        const float *s = e->scores + (size_t)n * K;
        matched++;
        if (!e->multi_label) {
            int best = 0;
            for (int k = 1; k < K; k++) best = s[k] > s[best] ? k : best;
            cm[(size_t)ref.labels[j] * K + best]++;
        } else {
            const float logit_t = logf((float)o->threshold / (1 - (float)o->threshold));
            for (int k = 0; k < K; k++) {
                const int truth = ref.targets ? ref.targets[(size_t)j * K + k] : ref.labels[j] == k;
                bin[truth * 2 + (s[k] > logit_t)]++;
            }
        }
    }
    if (!matched) app_error("--reference: no image of %s is in %s", data->source, ref.source);
    else
        printf("kappa against %s: %.4f (%d images matched)\n", ref.source,
               e->multi_label ? mcnn_cohen_kappa(bin, 2) : mcnn_cohen_kappa(cm, K), matched);
    free(sorted);
    free(cm);
    mcnn_dataset_free(&ref);
}

static int cmd_eval(options *o)
{
    if (!o->model || !o->data) {
        app_error("eval needs --model FILE and --data SOURCE");
        return 2;
    }
    if (o->threads) mcnn_set_threads(o->threads);
    mcnn_classifier *model;
    CHECK(mcnn_classifier_load(&model, o->model, NULL));
    mcnn_dataset data;
    load_source(&data, o->data, o, "--data", o->val_limit ? o->val_limit : o->limit);
    const int K = mcnn_classifier_num_classes(model);
    if (data.num_classes != K) {
        app_error("%s has %d classes, %s %d", data.source, data.num_classes, o->model, K);
        return 1;
    }
    for (int k = 0; k < K; k++)
        if (strcmp(data.class_names[k], mcnn_classifier_label(model, k)) != 0) {
            fprintf(stderr, "%s: warning: class %d is '%s' in the data, '%s' in the model\n",
                    app_name, k, data.class_names[k], mcnn_classifier_label(model, k));
            break;
        }
    o->no_augment = 1;
    const mcnn_transform tf = make_transform(model, o);
    mcnn_eval_result e;
    const double t0 = mcnn_seconds();
    CHECK(mcnn_evaluate(model, &data, &tf, o->eval_batch ? o->eval_batch : o->batch,
                        (float)o->threshold, &e));
    print_eval(data.source, &e, mcnn_seconds() - t0);
    if (o->confusion) print_confusion(&e, data.class_names);
    if (o->reference) reference_kappa(&e, &data, o);
    mcnn_eval_result_free(&e);
    mcnn_dataset_free(&data);
    mcnn_classifier_free(model);
    return 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

/* Options that say how this invocation runs, not what it trains: free to differ on --resume. */
static int leaves_run_unchanged(const char *name)
{
    static const char *const names[] = {"--out", "--resume", "--threads", "--stop-after",
                                        "--progress", "--quiet", "--timeout", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(name, names[i]) == 0) return 1;
    return 0;
}

static int same_value(const arg_spec *a, const arg_spec *b)
{
    switch (a->kind) {
    case ARG_FLAG:
    case ARG_INT: return *(const int *)a->dest == *(const int *)b->dest;
    case ARG_DOUBLE: return *(const double *)a->dest == *(const double *)b->dest;
    case ARG_FLOAT3: return memcmp(a->dest, b->dest, 3 * sizeof(float)) == 0;
    case ARG_STRING: {
        const char *x = *(const char *const *)a->dest, *y = *(const char *const *)b->dest;
        return x == y || (x && y && strcmp(x, y) == 0);
    }
    default: return 1;
    }
}

/* --resume continues a run as it started: an option given now with another value than the
 * run's (both tables come from make_specs, so row i is the same option) is refused by name. */
static int refuse_changes(const arg_spec *now, const arg_spec *run, const char *out)
{
    char names[1024] = "";
    size_t n = 0;
    int count = 0;
    for (int i = 0; now[i].kind != ARG_END; i++) {
        if (now[i].kind == ARG_SECTION || !now[i].seen || !*now[i].seen) continue;
        if (leaves_run_unchanged(now[i].name) || same_value(&now[i], &run[i])) continue;
        if (n < sizeof names)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", count ? ", " : "",
                                  now[i].name);
        count++;
    }
    if (!count) return 0;
    app_error("--resume continues the run in %s with the options it started with: %s would "
              "change it (train differently in a new run with another --out)", out, names);
    return -1;
}

/* What --resume reads from a run's checkpoint; the options point into args_cut. */
typedef struct run_record {
    char *args_cut, *args, *cwd, *data;
    char **argv;
} run_record;

static void run_record_free(run_record *r)
{
    free(r->args_cut), free(r->args), free(r->cwd), free(r->data), free(r->argv);
    memset(r, 0, sizeof *r);
}

static char *dup_meta(mcnn_safetensors *st, const char *key)
{
    const char *v = mcnn_safetensors_meta(st, key);
    char *copy = v ? malloc(strlen(v) + 1) : NULL;
    if (copy) memcpy(copy, v, strlen(v) + 1);
    return copy;
}

/* Re-parse the options a resumed run started with (stored in its checkpoint) into o and specs,
 * and enter the folder it started in, so that its relative paths mean what they meant (now's
 * --out is absolute by then).  0, or an exit status after printing why. */
static int resume_options(options *o, arg_spec *specs, const options *now, run_record *r)
{
    const char *out = now->out;
    char ckpt[4300];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    mcnn_safetensors *st;
    if (mcnn_safetensors_open(&st, ckpt) != MCNN_OK) {
        app_error("%s", mcnn_last_error());
        return EXIT_FAILED;
    }
    if (!mcnn_safetensors_meta(st, "train_args")) {
        app_error("%s: no \"train_args\" metadata: not a checkpoint of mcnn-train", ckpt);
        mcnn_safetensors_close(st);
        return EXIT_FAILED;
    }
    r->args_cut = dup_meta(st, "train_args"), r->args = dup_meta(st, "train_args");
    r->cwd = dup_meta(st, "train_cwd"), r->data = dup_meta(st, "train_data");
    mcnn_safetensors_close(st);
    r->argv = r->args_cut ? calloc(strlen(r->args_cut) + 2, sizeof *r->argv) : NULL;
    if (!r->args || !r->argv) {
        app_error("out of memory");
        return EXIT_FAILED;
    }
    int ac = 0;
    r->argv[ac++] = (char *)"mcnn-train";
    for (char *p = r->args_cut, *q; p; p = q) {
        q = strchr(p, '\n');
        if (q) *q++ = 0;
        if (*p) r->argv[ac++] = p;
    }
    default_options(o);
    make_specs(specs, o);
    arg_strings pos = {0};
    const int parsed = args_parse(specs, ac, r->argv, &pos);
    args_strings_free(&pos);
    if (parsed != ARGS_OK) {
        app_error("%s: the run's options (\"train_args\") do not parse", ckpt);
        return EXIT_FAILED;
    }
    char here[4096];
    if (r->cwd && getcwd(here, sizeof here) && strcmp(here, r->cwd) != 0) {
        if (chdir(r->cwd) != 0)
            fprintf(stderr, "%s: warning: the run started in %s, which cannot be entered (%s): "
                    "its relative paths are read from here\n", app_name, r->cwd, strerror(errno));
        else if (!now->quiet)
            fprintf(stderr, "%s: the run's relative paths are read from %s, where it started\n",
                    app_name, r->cwd);
    }
    /* this invocation decides where, how fast and how chatty */
    o->out = out;
    o->resume = 1;
    o->threads = now->threads, o->stop_after = now->stop_after;
    o->progress = now->progress, o->quiet = now->quiet;
    o->run_data = r->data;
    return 0;
}

/* Resume the run in now->out (an absolute path is made of it first). */
static int resume(const options *now, const arg_spec *now_specs)
{
    char here[4096], out[4200];
    const char *given = now->out ? now->out : "run";
    if (given[0] == '/' || !getcwd(here, sizeof here)) snprintf(out, sizeof out, "%s", given);
    else snprintf(out, sizeof out, "%s/%s", here, given);
    options o, n = *now;
    n.out = out;
    arg_spec specs[MAX_SPECS];
    run_record r = {0};
    int status = resume_options(&o, specs, &n, &r);
    if (!status && refuse_changes(now_specs, specs, given)) status = EXIT_USAGE;
    if (!status) status = cmd_train(&o, r.args);
    run_record_free(&r);
    return status;
}

static int train_main(int argc, char **argv);

int main(int argc, char **argv)
{
    app_name = "mcnn-train";
    dist_init(&argc, &argv);
    static char name[64];
    if (dist_size() > 1) {
        snprintf(name, sizeof name, "mcnn-train (rank %d)", dist_rank());
        app_name = name;
    }
    return dist_finalize(train_main(argc, argv));
}

static int train_main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    options o;
    arg_spec specs[MAX_SPECS];
    int given[MAX_SPECS] = {0};
    default_options(&o);
    make_specs(specs, &o);
    for (int i = 0; specs[i].kind != ARG_END; i++) /* which options the command line gives */
        if (!specs[i].seen) specs[i].seen = &given[i];
    int first = 1, is_eval = 0;
    if (argc > 1 && strcmp(argv[1], "eval") == 0) first = 2, is_eval = 1;
    else if (argc > 1 && strcmp(argv[1], "train") == 0) first = 2;
    arg_strings pos = {0};
    argv[first - 1] = argv[0];
    const int parsed = args_parse(specs, argc - first + 1, argv + first - 1, &pos);
    if (parsed == ARGS_HELP) args_help(stdout, usage, specs, epilog);
    if (parsed == ARGS_OK && pos.count)
        app_error("unexpected argument '%s' (see --help)", pos.items[0]);
    const int bad = parsed == ARGS_ERROR || (parsed == ARGS_OK && pos.count);
    args_strings_free(&pos);
    if (parsed == ARGS_HELP) return EXIT_DONE;
    if (bad) return EXIT_USAGE;
    if (dist_rank() > 0) o.quiet = 1; /* rank 0 alone reports */
    if (is_eval) return cmd_eval(&o);
    if (o.resume) return resume(&o, specs);
    char *args = join_argv(argc - first + 1, argv + first - 1);
    if (!args) {
        app_error("out of memory");
        return EXIT_FAILED;
    }
    const int status = cmd_train(&o, args);
    free(args);
    return status;
}
