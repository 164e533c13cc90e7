/* mcnn-shots train / probe: a temporal shot model on exported features (MovieCLIP's recipe by
 * default: a 2-layer LSTM, hidden 512, BCE with pos_weight, AdamW lr 1e-3 weight decay 1e-3,
 * x0.5 every 15 epochs, batch 32), a checkpoint after every epoch, exact resume.
 *
 * RUN (--out) holds: checkpoint.safetensors (model + AdamW state, after every epoch),
 * model.safetensors (at the end), args.txt (the options, checked on --resume), log.csv (one
 * row per epoch), and eval.json / eval.txt when --test is given.
 *
 * An epoch visits the training shots in an order that depends only on (seed, epoch), in
 * batches of --batch (the last one smaller), so a resumed run repeats the uninterrupted one
 * bit for bit (the library's ops do not depend on the thread count). */
#define _XOPEN_SOURCE 700
#include "shots.h"

#include "../common/args.h"
#include "../common/check.h"
#include "../common/outfile.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct train_options {
    const char *features, *splits, *train, *val, *test, *labels, *pos_weight, *out, *arch,
        *schedule, *human;
    int epochs, batch, hidden, layers, heads, seed, step_epochs, warmup_epochs, threads, quiet,
        resume, stop_after;
    double lr, wd, gamma, min_lr, clip, threshold;
    int hidden_set;
} train_options;

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

/* A path in a static buffer (one of four): the options' file names live as long as the run. */
static const char *split_file(const char *dir, const char *name)
{
    static char buf[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static char *join(const char *dir, const char *name)
{
    char *p = shots_xmalloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int parse(train_options *o, int argc, char **argv, int probe)
{
    *o = (train_options){.arch = probe ? "mean" : "lstm", .schedule = "step", .epochs = probe ? 50 : 30,
                         .batch = 32, .seed = 1, .step_epochs = 15, .lr = 1e-3,
                         .wd = probe ? 0 : 1e-3, .gamma = 0.5, .threshold = 0.5,
                         .pos_weight = "auto"};
    const arg_spec specs[] = {
        {ARG_SECTION, .help = "Data"},
        {ARG_STRING, "--features", 'f', &o->features, "DIR", .help = "written by mcnn-shots features"},
        {ARG_STRING, "--splits", 0, &o->splits, "DIR",
         .help = "written by mcnn-shots split: train.txt, val.txt, test.txt,\n"
                 "labels.txt (each option below overrides its file)"},
        {ARG_STRING, "--train", 0, &o->train, "FILE", .help = "training shots: '<video>/<shot> idx ...'\n"
         "(a key naming a video takes its shots' mean features in order)"},
        {ARG_STRING, "--val", 0, &o->val, "FILE", .help = "evaluated after every epoch (mAP)"},
        {ARG_STRING, "--test", 0, &o->test, "FILE", .help = "evaluated at the end: RUN/eval.json, eval.txt"},
        {ARG_STRING, "--human", 0, &o->human, "FILE", .help = "human-verified labels for --test's kappa"},
        {ARG_STRING, "--labels", 'l', &o->labels, "FILE", .help = "the label list"},
        {ARG_STRING, "--pos-weight", 0, &o->pos_weight, "auto|none|FILE",
         .help = "BCE's pos_weight: negatives/positives of the training labels\n"
                 "(auto), none, or K numbers"},
        {ARG_SECTION, .help = "Model"},
        {ARG_STRING, "--arch", 0, &o->arch, "mean|lstm|transformer",
         .help = probe ? "the probe (default mean: a linear probe with --hidden 0)"
                       : "the shot model (default lstm)"},
        {ARG_INT, "--hidden", 0, &o->hidden, "H",
         .help = "mean: MLP width (0: linear); lstm: hidden (512); transformer:\nwidth (256)",
         .min = 0, .max = 65536, .seen = &o->hidden_set},
        {ARG_INT, "--layers", 0, &o->layers, "N", .help = "lstm / transformer layers (2)",
         .min = 0, .max = 64},
        {ARG_INT, "--heads", 0, &o->heads, "N", .help = "transformer heads (4)", .min = 0, .max = 256},
        {ARG_SECTION, .help = "Training"},
        {ARG_INT, "--epochs", 0, &o->epochs, "N", .help = probe ? "(50)" : "(30)", .min = 1, .max = 1e6},
        {ARG_INT, "--batch", 0, &o->batch, "N", .help = "shots per step (32)", .min = 1, .max = 65536},
        {ARG_DOUBLE, "--lr", 0, &o->lr, "LR", .help = "AdamW's learning rate (1e-3)", .min = 0, .max = 10},
        {ARG_DOUBLE, "--wd", 0, &o->wd, "WD", .help = probe ? "weight decay (0)" : "weight decay (1e-3)",
         .min = 0, .max = 10},
        {ARG_STRING, "--schedule", 0, &o->schedule, "step|cosine",
         .help = "step: x --gamma every --step-epochs (default); cosine to --min-lr"},
        {ARG_INT, "--step-epochs", 0, &o->step_epochs, "N", .help = "(15)", .min = 1, .max = 1e6},
        {ARG_DOUBLE, "--gamma", 0, &o->gamma, "G", .help = "(0.5)", .min = 0, .max = 1},
        {ARG_DOUBLE, "--min-lr", 0, &o->min_lr, "LR", .help = "cosine's end (0)", .min = 0, .max = 10},
        {ARG_INT, "--warmup-epochs", 0, &o->warmup_epochs, "N", .help = "linear warm-up (0)", .min = 0,
         .max = 1e6},
        {ARG_DOUBLE, "--clip", 0, &o->clip, "NORM", .help = "gradient clipping (0: none)", .min = 0,
         .max = 1e9},
        {ARG_DOUBLE, "--threshold", 0, &o->threshold, "T", .help = "F1's decision threshold (0.5)",
         .min = 0, .max = 1},
        {ARG_INT, "--seed", 0, &o->seed, "S", .help = "initialisation and order (1)", .min = 0,
         .max = 2147483647},
        {ARG_SECTION, .help = "Run"},
        {ARG_STRING, "--out", 'o', &o->out, "DIR", .help = "the run folder (created)"},
        {ARG_FLAG, "--resume", 0, &o->resume, NULL,
         .help = "continue RUN from its checkpoint (give the same options)"},
        {ARG_INT, "--stop-after", 0, &o->stop_after, "E", .help = "stop after epoch E, as Ctrl-C would",
         .min = 1, .max = 1e6},
        {ARG_INT, "--threads", 't', &o->threads, "N", .help = "(all cores)", .min = 1, .max = 4096},
        {ARG_FLAG, "--quiet", 'q', &o->quiet, NULL, .help = "no line per epoch"},
        {0}};
    if (shots_args(specs, argc, argv,
                   probe
                  ? "usage: mcnn-shots probe --features DIR --train FILE --labels FILE --out RUN\n\n"
                    "A linear (or --hidden H: MLP) probe on exported features for your own shot- or\n"
                    "video-level labels; evaluated on --test like `eval`.\n"
                  : "usage: mcnn-shots train --features DIR --splits DIR --out RUN [options]\n\n"
                    "A temporal shot model on per-frame features.  Exit status: 0 trained, 1\n"
                    "failed, 2 bad command line, 75 stopped (Ctrl-C, --stop-after): --resume.\n"))
        return -1;
    if (o->splits) { /* the split folder's files, where not given */
        if (!o->train) o->train = split_file(o->splits, "train.txt");
        if (!o->labels) o->labels = split_file(o->splits, "labels.txt");
        const char *v = split_file(o->splits, "val.txt"), *t = split_file(o->splits, "test.txt");
        if (!o->val && exists(v)) o->val = v;
        if (!o->test && exists(t)) o->test = t;
    }
    if (!o->features || !o->train || !o->labels || !o->out)
        return app_error("needs --features, --train (or --splits), --labels and --out (try --help)"), -1;
    mcnn_shot_kind kind;
    if (mcnn_shot_kind_parse(&kind, o->arch) != MCNN_OK)
        return app_error("--arch: '%s' is not mean, lstm or transformer", o->arch), -1;
    if (strcmp(o->schedule, "step") && strcmp(o->schedule, "cosine"))
        return app_error("--schedule: '%s' is neither step nor cosine", o->schedule), -1;
    return 0;
}

/* Every option that shapes the run, as one line: a resumed run must give the same. */
static void options_line(char *buf, size_t n, const train_options *o)
{
    snprintf(buf, n, "features=%s train=%s val=%s labels=%s pos_weight=%s arch=%s hidden=%d "
             "layers=%d heads=%d epochs=%d batch=%d lr=%.17g wd=%.17g schedule=%s step_epochs=%d "
             "gamma=%.17g min_lr=%.17g warmup=%d clip=%.17g seed=%d\n",
             o->features, o->train, o->val ? o->val : "-", o->labels, o->pos_weight, o->arch,
             o->hidden, o->layers, o->heads, o->epochs, o->batch, o->lr, o->wd, o->schedule,
             o->step_epochs, o->gamma, o->min_lr, o->warmup_epochs, o->clip, o->seed);
}

/* Samples of a split file, laid out with K frames of room. */
int shots_load_set(shot_samples *s, split_set *split, const feat_index *x, const char *path,
                    int L)
{
    char err[2048];
    if (split_read(split, path, L, err, sizeof err) || shot_samples_load(s, x, split, err, sizeof err))
        return app_error("%s", err), -1;
    return 0;
}

/* The same samples with room for K frames (K >= s->K). */
void shots_widen(shot_samples *s, int K)
{
    if (s->K == K) return;
    float *x = shots_xcalloc((size_t)s->n * K * s->D, sizeof(float));
    for (int i = 0; i < s->n; i++)
        memcpy(x + (size_t)i * K * s->D, s->x + (size_t)i * s->K * s->D,
               (size_t)s->lengths[i] * s->D * sizeof(float));
    free(s->x);
    s->x = x, s->K = K;
}

/* Sigmoid scores (n, L) of a model over samples, in batches of max_batch. */
static void predict(mcnn_shot_model *m, const shot_samples *s, int max_batch, float *scores)
{
    const int L = s->L;
    for (int i = 0; i < s->n; i += max_batch) {
        const int B = s->n - i < max_batch ? s->n - i : max_batch;
        CHECK(mcnn_shot_model_forward(m, scores + (size_t)i * L, s->x + (size_t)i * s->K * s->D,
                                      s->lengths + i, B));
    }
    for (size_t k = 0; k < (size_t)s->n * L; k++) scores[k] = 1.0f / (1.0f + expf(-scores[k]));
}

int shots_eval_samples(mcnn_shot_model *m, const shot_samples *s, int max_batch, double threshold,
                       const split_set *split, const split_set *human, eval_report *r)
{
    float *scores = shots_xmalloc((size_t)s->n * s->L * sizeof(float));
    predict(m, s, max_batch, scores);
    unsigned char *truth = shots_xmalloc((size_t)s->n * s->L);
    for (size_t k = 0; k < (size_t)s->n * s->L; k++) truth[k] = s->targets[k] > 0.5f;
    eval_compute(r, scores, truth, s->n, s->L, threshold, split->keys, human, split->first);
    free(scores), free(truth);
    return 0;
}

static int train_run(int argc, char **argv, int probe)
{
    train_options o;
    if (parse(&o, argc, argv, probe)) exit(2);
    if (o.threads) mcnn_set_threads(o.threads);
    char err[2048];
    char **labels;
    int L;
    if (shots_read_labels(&labels, &L, o.labels)) exit(1);
    feat_index x;
    if (feat_index_read(&x, o.features, 0, err, sizeof err)) app_error("%s", err), exit(1);
    feat_index_sort(&x);
    split_set tr_split = {0}, va_split = {0};
    shot_samples tr = {0}, va = {0};
    if (shots_load_set(&tr, &tr_split, &x, o.train, L)) exit(1);
    if (o.val && shots_load_set(&va, &va_split, &x, o.val, L)) exit(1);
    int K = x.max_frames; /* room for the longest sequence (a video-level key may hold more) */
    if (tr.K > K) K = tr.K;
    if (va.K > K) K = va.K;
    shots_widen(&tr, K);
    if (o.val) shots_widen(&va, K);

    /* pos_weight */
    float *pw = NULL;
    if (strcmp(o.pos_weight, "none") != 0) {
        pw = shots_xmalloc((size_t)L * sizeof *pw);
        if (strcmp(o.pos_weight, "auto") == 0) {
            for (int k = 0; k < L; k++) {
                int64_t p = 0;
                for (int i = 0; i < tr.n; i++) p += tr.targets[(size_t)i * L + k] > 0.5f;
                pw[k] = p ? (float)((double)(tr.n - p) / (double)p) : 1.0f;
            }
        } else {
            CHECK(mcnn_read_pos_weight(pw, L, o.pos_weight));
        }
    }

    if (shots_mkdirs(o.out, err, sizeof err)) app_error("%s", err), exit(1);
    char *ckpt = join(o.out, "checkpoint.safetensors"), *final = join(o.out, "model.safetensors");
    char *args_path = join(o.out, "args.txt"), *log_path = join(o.out, "log.csv");
    char line[8192];
    options_line(line, sizeof line, &o);
    const int B = o.batch;
    const int64_t spe = (tr.n + B - 1) / B; /* steps per epoch */

    mcnn_shot_model *m = NULL;
    mcnn_shot_trainer t;
    int start_epoch = 0;
    if (o.resume) {
        unsigned char *prev = NULL;
        size_t plen = 0;
        if (!exists(ckpt))
            app_error("--resume: %s has no checkpoint (start it without --resume)", o.out), exit(1);
        if (mcnn_read_file_maybe_gzip(&prev, &plen, args_path) != MCNN_OK ||
            strlen(line) != plen || memcmp(prev, line, plen) != 0) {
            app_error("--resume: the options differ from the run's (%s):\n  was: %.*s  now: %s", args_path,
                      (int)plen, prev ? (const char *)prev : "", line);
            mcnn_free(prev);
            exit(2);
        }
        mcnn_free(prev);
        CHECK(mcnn_shot_model_load(&m, &t, ckpt, B));
        if (mcnn_shot_model_config(m)->K != K)
            app_error("%s: a model of %d frames, the data has %d", ckpt,
                             mcnn_shot_model_config(m)->K, K), exit(1);
        if (t.opt.step % spe != 0)
            app_error("%s: step %lld is not at an epoch's end", ckpt, (long long)t.opt.step), exit(1);
        start_epoch = (int)(t.opt.step / spe);
        if (start_epoch >= o.epochs) {
            fprintf(stderr, "the run in %s has finished (%d of %d epochs): nothing to resume\n",
                    o.out, start_epoch, o.epochs);
            exit(0);
        }
    } else {
        mcnn_shot_kind kind;
        mcnn_shot_kind_parse(&kind, o.arch);
        mcnn_shot_config cfg = {.kind = kind, .D = x.dim, .K = K, .num_classes = L,
                                .hidden = o.hidden, .layers = o.layers, .heads = o.heads,
                                .seed = (uint64_t)o.seed};
        if (probe && kind == MCNN_SHOT_MEAN && !o.hidden_set) cfg.hidden = 0;
        else if (kind == MCNN_SHOT_MEAN && !o.hidden_set) cfg.hidden = 512;
        CHECK(mcnn_shot_model_create(&m, &cfg, B));
        CHECK(mcnn_shot_trainer_init(&t, m));
        if (shots_write_text(args_path, line, strlen(line), err, sizeof err)) app_error("%s", err), exit(1);
        if (shots_write_text(log_path, "epoch,step,loss,lr,val_mAP,seconds\n", 35, err, sizeof err))
            app_error("%s", err), exit(1);
    }
    t.opt.lr = (float)o.lr, t.opt.weight_decay = (float)o.wd;
    t.clip_norm = (float)o.clip;
    t.schedule = (mcnn_lr_schedule){.base_lr = o.lr, .warmup_steps = o.warmup_epochs * spe,
                                    .gamma = o.gamma, .step_size = o.step_epochs * spe,
                                    .total_steps = o.epochs * spe, .min_lr = o.min_lr,
                                    .kind = strcmp(o.schedule, "cosine") ? MCNN_LR_STEP : MCNN_LR_COSINE};
    signal(SIGINT, on_signal), signal(SIGTERM, on_signal);

    const int D = x.dim;
    float *bx = shots_xmalloc((size_t)B * K * D * sizeof(float)), *by = shots_xmalloc((size_t)B * L * sizeof(float));
    int32_t *bl = shots_xmalloc((size_t)B * sizeof *bl);
    int *perm = shots_xmalloc((size_t)tr.n * sizeof *perm);
    float *vscores = o.val ? shots_xmalloc((size_t)va.n * L * sizeof(float)) : NULL;
    int rc = 0;
    for (int epoch = start_epoch; epoch < o.epochs; epoch++) {
        const double t0 = mcnn_seconds();
        /* the order: a function of (seed, epoch) only */
        mcnn_rng rng;
        mcnn_rng_seed(&rng, (uint64_t)o.seed * 1000003u + (uint64_t)epoch);
        for (int i = 0; i < tr.n; i++) perm[i] = i;
        for (int i = tr.n - 1; i > 0; i--) {
            const int j = (int)mcnn_rng_below(&rng, (uint32_t)(i + 1)), v = perm[i];
            perm[i] = perm[j], perm[j] = v;
        }
        double loss_sum = 0;
        for (int i0 = 0; i0 < tr.n; i0 += B) {
            const int nb = tr.n - i0 < B ? tr.n - i0 : B;
            for (int b = 0; b < nb; b++) {
                const int i = perm[i0 + b];
                memcpy(bx + (size_t)b * K * D, tr.x + (size_t)i * K * D, (size_t)K * D * sizeof(float));
                memcpy(by + (size_t)b * L, tr.targets + (size_t)i * L, (size_t)L * sizeof(float));
                bl[b] = tr.lengths[i];
            }
            float loss;
            CHECK(mcnn_shot_train_step(m, &t, bx, bl, by, pw, nb, &loss, NULL));
            if (!isfinite(loss)) {
                app_error("the loss is %g at step %lld (epoch %d): stopped; %s is the last good "
                          "checkpoint", loss, (long long)t.opt.step, epoch + 1, ckpt);
                rc = 1;
                break;
            }
            loss_sum += loss * nb;
        }
        if (rc) break;
        double vmap = NAN;
        if (o.val) {
            predict(m, &va, B, vscores);
            unsigned char *truth = shots_xmalloc((size_t)va.n * L);
            for (size_t k = 0; k < (size_t)va.n * L; k++) truth[k] = va.targets[k] > 0.5f;
            vmap = mcnn_mean_average_precision(vscores, truth, va.n, L, NULL);
            free(truth);
        }
        const double lr = mcnn_lr_schedule_at(&t.schedule, t.opt.step - 1);
        if (!o.quiet)
            fprintf(stderr, "epoch %d/%d  loss %.5f  lr %.3g%s", epoch + 1, o.epochs,
                    loss_sum / tr.n, lr, o.val ? "" : "\n");
        if (!o.quiet && o.val) fprintf(stderr, "  val mAP %.4f\n", vmap);
        CHECK(mcnn_shot_model_save(m, &t, ckpt));
        FILE *lf = fopen(log_path, "a");
        if (lf) {
            fprintf(lf, "%d,%lld,%.9g,%.9g,%.6g,%.3f\n", epoch + 1, (long long)t.opt.step,
                    loss_sum / tr.n, lr, vmap, mcnn_seconds() - t0);
            fclose(lf);
        }
        if (stop_requested || (o.stop_after && epoch + 1 == o.stop_after && epoch + 1 < o.epochs)) {
            fprintf(stderr, "stopped after epoch %d: %s; continue with --resume\n", epoch + 1, ckpt);
            rc = 75;
            break;
        }
    }
    if (rc == 0) {
        CHECK(mcnn_shot_model_save(m, NULL, final));
        if (!o.quiet) fprintf(stderr, "model: %s\n", final);
        if (o.test) { /* the held-out evaluation, as `eval` reports it */
            split_set te_split = {0}, human = {0};
            shot_samples te = {0};
            if (shots_load_set(&te, &te_split, &x, o.test, L)) exit(1);
            if (te.K > K) app_error("%s: a shot of %d frames, the model takes %d", o.test, te.K, K), exit(1);
            shots_widen(&te, K);
            if (o.human && split_read(&human, o.human, L, err, sizeof err)) app_error("%s", err), exit(1);
            eval_report r;
            shots_eval_samples(m, &te, B, o.threshold, &te_split, o.human ? &human : NULL, &r);
            char *ej = join(o.out, "eval.json"), *et = join(o.out, "eval.txt");
            if (eval_write(&r, (const char *const *)labels, ej, et, err, sizeof err) ||
                eval_write(&r, (const char *const *)labels, NULL, "-", err, sizeof err))
                app_error("%s", err), rc = 1;
            free(ej), free(et);
            eval_free(&r);
            shot_samples_free(&te), split_free(&te_split), split_free(&human);
        }
    }
    mcnn_shot_trainer_free(&t);
    mcnn_shot_model_free(m);
    free(bx), free(by), free(bl), free(perm), free(vscores), free(pw);
    shot_samples_free(&tr), shot_samples_free(&va), split_free(&tr_split), split_free(&va_split);
    feat_index_free(&x);
    mcnn_free_label_list(labels, L);
    free(ckpt), free(final), free(args_path), free(log_path);
    return rc;
}

int shots_train_main(int argc, char **argv) { return train_run(argc, argv, 0); }
int shots_probe_main(int argc, char **argv) { return train_run(argc, argv, 1); }
