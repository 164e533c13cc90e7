/* mcnn-train's command line: the options, their defaults, the table args_parse reads and
 * --help prints, and what the options make (the trainer's config, the data transform, the
 * command line recorded for --resume). */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <stdlib.h>
#include <string.h>

void default_options(options *o)
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

const char train_usage[] =
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

const char train_epilog[] =
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

/* The data and the model. */
static int data_model_specs(arg_spec *specs, int n, options *o)
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
    };
    memcpy(specs + n, s, sizeof s);
    return n + (int)(sizeof s / sizeof s[0]);
}

/* The optimizer, its schedule and the loss. */
static int training_specs(arg_spec *specs, int n, options *o)
{
    const arg_spec s[] = {
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
    };
    memcpy(specs + n, s, sizeof s);
    return n + (int)(sizeof s / sizeof s[0]);
}

/* Augmentation, output and evaluation. */
static int output_specs(arg_spec *specs, int n, options *o)
{
    const arg_spec s[] = {
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
        {ARG_STRING, "--precision", 0, &o->precision, "P",
         .help = "fp32 (default), bf16 or int8 (docs/precision.md)"},
        {ARG_STRING, "--reference", 0, &o->reference, "FILE",
         .help = "a second labelling of the same images (a split file,\n"
                 "matched by path): Cohen's kappa "
         "of the predictions\nagainst it"},
        {ARG_FLAG, "--confusion", 0, &o->confusion, NULL,
         .help = "print the confusion matrix (single-label, K <= 50)"},
    };
    memcpy(specs + n, s, sizeof s);
    return n + (int)(sizeof s / sizeof s[0]);
}

/* The table in --help's order, sections as above; ARG_END-terminated (MAX_SPECS rows at most). */
void make_specs(arg_spec *specs, options *o)
{
    int n = data_model_specs(specs, 0, o);
    n = training_specs(specs, n, o);
    n = output_specs(specs, n, o);
    specs[n] = (arg_spec){0};
}

mcnn_train_config train_config(const options *o, int multi_label)
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

int check_choices(const options *o)
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
mcnn_transform make_transform(const mcnn_classifier *c, const options *o)
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
char *join_argv(int argc, char **argv)
{
    size_t n = 1;
    for (int i = 1; i < argc; i++) n += strlen(argv[i]) + 1;
    char *s = malloc(n), *p = s;
    if (!s) return NULL;
    *p = 0;
    for (int i = 1; i < argc; i++) p += sprintf(p, "%s%s", i > 1 ? "\n" : "", argv[i]);
    return s;
}
