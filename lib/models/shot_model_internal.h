/* The shot model's layout, shared by its files: shot_model.c (API, training, checkpoints) and
 * one file per kind (shot_model_mean.c, shot_model_lstm.c, shot_model_transformer.c), each
 * exporting a shot_kind_ops table. */
#ifndef MCNN_SHOT_MODEL_INTERNAL_H
#define MCNN_SHOT_MODEL_INTERNAL_H

#include "internal.h"

struct mcnn_shot_model {
    mcnn_shot_config cfg;
    int max_batch;
    mcnn_params params;
    int B;              /* shots in the last forward (0: none yet)                    */
    int32_t *lengths;   /* (max_batch) the last forward's lengths                     */
    float *x;           /* (max_batch, K, D) the valid frames, padding zeroed         */
    float *acts;        /* one block: the kind's activations, carved by its plan      */
    float *logits, *dlogits; /* (max_batch, num_classes) the training step's           */
    /* The kinds' activations (views into acts; each kind uses its own). */
    float *pooled, *hid, *dhid;                 /* MEAN (B, D), (B, hidden) x2          */
    float **y, **gates, **cells, *h_top, *dy[2], *dh_top, *scratch; /* LSTM            */
    float **res, *dres[2], *frames, *proj, *dproj, *cls_in, *cls_ln, *ln_mean, *ln_rstd,
        *dcls; /* TRANSFORMER; block activations in tf_acts                               */
    void *tf_acts;      /* (layers) block_acts, and one more for the gradients            */
    int *tf_starts;     /* (max_batch + 1) where each shot's tokens start (ragged rows)   */
};

/* A model with its table, activations and zeroed values (create and load fill them). */
mcnn_status shot_model_build(mcnn_shot_model **out, const mcnn_shot_config *cfg, int max_batch);

/* Uniform(-bound, bound), as torch's default initialisation of Linear and LSTM weights. */
void shot_init_uniform(mcnn_shot_model *m, mcnn_rng *r, const char *name, float bound);
/* Add a row of ndim dims (decay 1 for weight matrices). */
mcnn_status shot_add(mcnn_shot_model *m, const char *name, int decay, int ndim, int64_t d0,
                     int64_t d1);
/* A Linear(in, out) as "<name>.weight", "<name>.bias". */
mcnn_status shot_add_linear(mcnn_shot_model *m, const char *name, int in, int out);
void shot_init_linear(mcnn_shot_model *m, mcnn_rng *r, const char *name, int in);

/* What a kind provides: its parameter rows, their initial values, its activations (sized with
 * a counting carver, then pointed), its forward on m->x and its backward. */
typedef struct shot_kind_ops {
    mcnn_status (*add)(mcnn_shot_model *m);
    void (*init)(mcnn_shot_model *m, mcnn_rng *r);
    mcnn_status (*plan)(mcnn_shot_model *m, mcnn_carver *c);
    void (*forward)(mcnn_shot_model *m, float *logits);
    void (*backward)(mcnn_shot_model *m, const float *dlogits);
} shot_kind_ops;

extern const shot_kind_ops shot_mean_ops, shot_lstm_ops, shot_tf_ops;
/* The transformer's pointer arrays (NULL-safe). */
void shot_tf_free(mcnn_shot_model *m);

#endif
