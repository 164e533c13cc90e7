/* mcnn-classify's parts, shared between its files:
 *   classify.c         main: the run's wiring (outputs, inputs -> shards -> the walk), the JSONL header
 *   classify/options.c the command line: option table, --video-list, checks
 *   classify/model.c   the model: weights folder, kind, labels, preprocessing, text embeddings
 *   classify/batch.c   the shot queue and the batcher: frames in, scored shots out, in order
 *   classify/walk.c    the input walk: files, folders and frame streams, frame sampling
 *   classify/shard.c   which inputs this process takes (--shard I/N, or the launcher's rank)
 *   classify/jsonl.c   --out-jsonl: one line per shot as it finishes, and --resume
 *   classify/merge.c   `mcnn-classify merge`: shard files into the JSON and weak labels */
#ifndef MCNN_APPS_CLASSIFY_H
#define MCNN_APPS_CLASSIFY_H

#include "../common/args.h"
#include "../common/inputs.h"
#include "../common/output.h"
#include "../common/progress.h"

#include "mcnn.h"

#include <stdint.h>
#include <stdio.h>

/* The defaults: MovieCLIP's prompt and label list, CLIP ViT-B/32, OpenAI's BPE vocabulary. */
#define MOVIECLIP_PROMPT "a photo of a {label}, a type of background location"
#define DEFAULT_MODEL "clip-vit-b32.safetensors"
#define DEFAULT_VOCAB "bpe_simple_vocab_16e6.txt.gz"
#define DEFAULT_LABELS "MovieCLIP_taxonomy_split.txt"

/* ---- options ----------------------------------------------------------------------------- */
typedef struct options {
    arg_strings inputs, videos, prompts;
    const char *model, *labels, *vocab, *json, *weak, *emb, *interp, *activation, *truth;
    const char *shard, *out_jsonl, *video_list;
    const char *precision;      /* --precision: fp32 (default), bf16, int8 (docs/precision.md) */
    char **listed;              /* --video-list: the videos it names                       */
    int nlisted;
    int top, threads, batch, resize, crop, shot_per_dir, min_shot_len;
    int progress, quiet, no_cache, no_table, resume;
    int every;                  /* --every N: encode one frame in N of a shot (0: all)     */
    double sample_fps;          /* --sample-fps R: R frames per second of a shot (0: all)  */
    double fps, shot_threshold, weak_top1, weak_rest, scale;
    float mean[3], std[3];
    int fps_set, resize_set, crop_set, mean_set, std_set;
} options;

/* ---- the model ---------------------------------------------------------------------------- */
typedef struct label_set {
    char **names;               /* n strings, each malloc'ed (mcnn_free_label_list) */
    const char *const *v;       /* the same, for the const interfaces              */
    int n;
} label_set;

typedef enum model_kind { MODEL_CLIP, MODEL_CLASSIFIER } model_kind;

typedef struct model {
    model_kind kind;
    char *path;
    mcnn_clip *clip;
    mcnn_classifier *cls;      /* a ViT or ResNet, as mcnn-train saves them (classifier.h) */
    label_set labels;
    float *text;               /* CLIP: (L, dim) normalised text embeddings               */
    int dim;                   /* CLIP embedding width, or the classifier's logit count   */
    int channels, size;        /* input (C, size, size)                                   */
    mcnn_preprocess_config pp;
} model;

/* options.c: the command line (prints --help and exits); returns 0, or -1 with a message
 * printed.  options_free also after a failed parse. */
int parse_options(options *o, int argc, char **argv);
void options_free(options *o);
/* --interp's names; -1 for an unknown one. */
int parse_interp(const char *s, mcnn_resample *out);

/* model.c: the checkpoint named by --model (default: the weights folder's CLIP), its labels,
 * preprocessing and, for CLIP, the text embeddings.  Returns 0, or -1 with a message printed;
 * on failure the model may be partly loaded: model_free releases what there is. */
int load_model(model *m, const options *o);
void model_free(model *m);

/* ---- the run: shots waiting for their frames' scores, and the batch ----------------------- */
typedef struct shot_acc {
    int64_t number;             /* in output order                                  */
    int64_t ordinal;            /* its place in its input (JSONL's "n"): the image's in
                                   its folder's sorted list, the stream's shot count   */
    char *video, *key, *id;
    int64_t start_frame, end_frame;
    double start_time, end_time;
    int frames, scored, closed;
    int still;                  /* a still image: no frame numbers or times to show */
    double *sum;                /* (L) sum of the frames' scores                     */
    int64_t emb_row;            /* its first row in the embeddings file, -1 before   */
    int64_t *sampled;           /* frames chosen for encoding, when sampling         */
    int nsampled, cap_sampled;
} shot_acc;

typedef struct slot {
    mcnn_image img;
    int64_t frame;
    int64_t shot_number;        /* the shot it belongs to (found again at flush time) */
    const char *name;
} slot;

struct jsonl;

typedef struct run {
    const options *o;
    model *m;
    outputs out;
    embeddings emb;
    progress prog;
    struct jsonl *jsonl;        /* --out-jsonl, or NULL                               */
    const struct shard *shard;  /* this process's share of the inputs                 */
    int input_index;            /* the input being read, in the unsharded list       */
    slot *batch;
    int nb;
    float *images, *feats, *scores; /* (batch, C, S, S), (batch, dim), (batch, L)          */
    char (*slot_err)[512];
    shot_acc *shots;            /* pending: shots[0..nshots) in order; the last may be open */
    int nshots, cap_shots;
    int64_t next_shot, frames_done;
    int nfail;                  /* failures reported (each once, when it happens)    */
    const char *nonfinite_in;   /* the input whose non-finite scores were reported     */
    int64_t nonfinite;          /* frames left out for non-finite scores               */
} run;

/* batch.c */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void failure(run *r, const char *fmt, ...);
char *dup_str(const char *s); /* exits on out of memory */
void shot_begin(run *r, const char *video, const char *key, const char *id, int64_t start_frame,
                double start_time);
void shot_end(run *r, int64_t end_frame, double end_time);
/* The open shot's frame was picked by --every / --sample-fps (said in the outputs). */
void shot_note_sampled(run *r, int64_t frame);
/* A decoded frame joins the open shot and the batch (which takes the pixels). */
void add_frame(run *r, mcnn_image *img, int64_t frame, const char *name);
/* Encode what is in the batch and write every shot that is complete. */
void flush(run *r);
void run_free(run *r);

/* walk.c */
int input_is_still(const options *o, const input *in);
void run_input(run *r, const input *in);
void table_layout(outputs *out, const options *o, const input *ins, int nin);
/* The sampling rule in words for messages and the JSONL header ("every frame", "1 fps"). */
void sampling_describe(const options *o, char *out, size_t size);

/* shard.c: which share of the inputs this process takes. */
typedef struct shard {
    int index, count;           /* 0 <= index < count; count 1: everything               */
    int automatic;              /* from the launcher's environment, not --shard          */
} shard;
/* --shard I/N (text may be NULL), else the launcher's variables; says on stderr when it shards
 * itself.  Returns 0, or -1 with a message printed. */
int shard_choose(shard *s, const char *text);
/* 1 when shard s takes the input named name (a video, an image, a --shot-per-dir folder)... */
int shard_takes(const shard *s, const char *name);
/* ... or the image key (its path inside the folder) of the folder named folder. */
int shard_takes_image(const shard *s, const char *folder, const char *key);
/* merge.c: `mcnn-classify merge ...` (argv[0] is "merge"); returns the exit status. */
int merge_main(int argc, char **argv);

/* "out-{shard}.jsonl" -> "out-3.jsonl"; malloc'ed; exits on out of memory. */
char *shard_path(const char *path, const shard *s);

#endif
