/* The results of a classification run, written as shots finish:
 *   - a table on stdout, one row per shot;
 *   - MovieCLIP's JSON {video: {shot: {start_frame, end_frame, start_time, end_time,
 *     labels: {label: score}}}}, streamed (the file is complete when the run ends); a shot
 *     whose frames were sampled also has "sampled_frames": [the frames encoded];
 *   - MovieCLIP's weak labels: "<shot> <label index> ..." for shots whose top-1 score reaches
 *     a threshold, followed by those of the next four labels that reach a second threshold;
 *   - per frame embeddings (or logits) and scores, kept in memory and saved as safetensors. */
#ifndef MCNN_APPS_OUTPUT_H
#define MCNN_APPS_OUTPUT_H

#include "outfile.h"
#include "truth.h"

#include <stdint.h>
#include <stdio.h>

typedef struct shot_out {
    const char *video;            /* the input's name: JSON's outer key                   */
    const char *key;              /* the shot's key inside the video                      */
    const char *id;               /* the shot in the table and the weak labels            */
    int64_t start_frame, end_frame; /* inclusive                                          */
    double start_time, end_time;  /* seconds; end = the time the shot's last frame ends   */
    int frames;                   /* frames scored                                        */
    int still;                    /* a still image: frames and times mean nothing          */
    const float *scores;          /* (L) mean of the frames' scores                       */
    const int64_t *sampled;       /* the frames encoded, when sampled (--every, --sample-fps): */
    int nsampled;                 /* JSON's "sampled_frames"; NULL: every frame, no key       */
    int64_t ordinal;              /* the shot's place in its input (the JSONL's "n")          */
    int64_t emb_row;              /* its first frame's row in --embeddings (-1: none); its   */
                                  /* frames are the next `frames` rows                       */
} shot_out;

typedef struct outputs {
    const char *const *labels;
    int L, top;
    int table;                    /* a table on stdout                                     */
    int id_width;                 /* the table's first column, in display columns          */
    int timed;                    /* the table has the frame and time columns              */
    int header_done;              /* the header is printed before the first row only      */
    outfile out;                  /* stdout, for the table                                 */
    outfile json, weak;           /* f == NULL: not asked for                              */
    double weak_top1, weak_rest;  /* 0.4 and 0.1 in MovieCLIP                              */
    const char *precision;        /* "bf16" / "int8": named in each shot of the JSON (set  */
                                  /* after outputs_open); NULL: fp32, MovieCLIP's format   */
    char *json_video;             /* the video whose object is open                        */
    int json_videos, json_shots;  /* written so far (in the open video for shots)          */
    int64_t shots;
    int *order;                   /* (L) scratch for the ranking                           */
    truth_source truth;           /* set after outputs_open: each shot's true class from  */
    int64_t truth_n, truth_top1, truth_topk, truth_unknown; /* its id (a file path)      */
    char truth_missing[256];      /* the first class that matched no label                 */
} outputs;

/* json_path / weak_path: a file (written atomically: outfile.h), "-" for stdout, or NULL.
 * table: a table on stdout; id_width and timed may be changed before the first shot.
 * Returns 0, or -1 with a message. */
int outputs_open(outputs *o, const char *const *labels, int L, int top, int table,
                 const char *json_path, const char *weak_path, double weak_top1,
                 double weak_rest, char *err, size_t errsize);
void outputs_shot(outputs *o, const shot_out *s);
/* Finish the JSON and commit the files; a write error is reported (-1 with a message naming the
 * file and the reason), and so is a true class that matched no label (after the truth summary
 * line).  complete = 0 (a failed run): the files are discarded, the previous ones kept. */
int outputs_close(outputs *o, int complete, char *err, size_t errsize);

/* ', "sampled_frames": [...]' when the shot was sampled (the JSON's and the JSONL's). */
void put_sampled_frames(FILE *f, const shot_out *s);

/* Labels ranked by score, highest first (ties: the earlier label first): order[0..k). */
void rank_labels(int *order, const float *scores, int L, int k);

/* ---- per frame embeddings ------------------------------------------------------------------ */
typedef struct embeddings {
    int dim, L;                   /* embedding (or logit) width; labels                   */
    int64_t n, cap;
    float *vec;                   /* (n, dim)                                              */
    float *scores;                /* (n, L)                                                */
    int64_t *frame, *shot;        /* (n): frame index within its input; shot number        */
    char **names;                 /* (n): the frame's file, or its video                   */
} embeddings;

void embeddings_init(embeddings *e, int dim, int L);
int embeddings_add(embeddings *e, const float *vec, const float *scores, int64_t frame,
                   int64_t shot, const char *name);
/* Save (atomically: mcnn_safetensors_write): tensors "embeddings" or "logits" (n, dim) as kind
 * says, "scores" (n, L), "frame_index" and "shot_index" (n) I64; metadata "names" (JSON array,
 * one per row), "labels", "kind", "model", every string as valid UTF-8 (escape.h).  Returns 0,
 * or -1 with a message. */
int embeddings_save(const embeddings *e, const char *path, const char *tensor_name,
                    const char *kind, const char *model_path, const char *const *labels,
                    char *err, size_t errsize);
void embeddings_free(embeddings *e);

#endif
