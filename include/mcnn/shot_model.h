/* Temporal shot models: multi-label classifiers over a shot's per-frame feature sequence
 * (MovieCLIP's shot models, issue 12 item 4; docs/shot-models.md explains them).
 *
 * Input: x (B, K, D), B shots of up to K frames of D features, frame after frame, and lengths
 * (B), 1 <= lengths[b] <= K: frames lengths[b] .. K-1 of shot b are padding.  Padding is never
 * read: the model copies the valid frames first, so whatever a padded frame holds (even NaN)
 * changes nothing.  Output: logits (B, num_classes).
 *
 *   MEAN:        mean over the valid frames, then Linear(D, hidden)-ReLU-Linear(hidden, classes),
 *                or one Linear(D, classes) with hidden = 0 (a linear probe)
 *   LSTM:        torch.nn.LSTM(D, hidden, num_layers=layers, batch_first) over the valid frames,
 *                Linear(hidden, classes) on the last valid hidden state of the top layer
 *   TRANSFORMER: Linear(D, width) per frame, a class token in front, learned positions (K + 1),
 *                `layers` pre-LN blocks (GELU MLP of 4·width) in which each shot attends to its
 *                own valid frames only, a final LayerNorm and Linear(width, classes) on the
 *                class token
 *
 *     mcnn_shot_model *m;
 *     mcnn_shot_config cfg = {.kind = MCNN_SHOT_LSTM, .D = 512, .K = 20, .num_classes = 150};
 *     mcnn_shot_model_create(&m, &cfg, 32);               // up to 32 shots per call
 *     mcnn_shot_trainer tr;  mcnn_shot_trainer_init(&tr, m);   // AdamW, MovieCLIP's settings
 *     for (...) mcnn_shot_train_step(m, &tr, x, lengths, targets, pos_weight, B, &loss);
 *     mcnn_shot_model_save(m, &tr, "shots.safetensors");  // weights, config, optimizer state */
#ifndef MCNN_SHOT_MODEL_H
#define MCNN_SHOT_MODEL_H

#include "core.h"
#include "optim.h"
#include "params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mcnn_shot_kind {
    MCNN_SHOT_MEAN,        /* mean-pool + MLP (or linear) probe */
    MCNN_SHOT_LSTM,        /* LSTM over the frames               */
    MCNN_SHOT_TRANSFORMER  /* temporal transformer, class token  */
} mcnn_shot_kind;

typedef struct mcnn_shot_config {
    mcnn_shot_kind kind;
    int D;            /* features per frame                                              */
    int K;            /* most frames per shot                                            */
    int num_classes;
    int hidden;       /* MEAN: MLP width, 0 = a linear probe; LSTM: hidden size (0: 512,
                         as MovieCLIP's code); TRANSFORMER: width (0: 256)                 */
    int layers;       /* LSTM: 0 = 2; TRANSFORMER: blocks, 0 = 2; MEAN: unused            */
    int heads;        /* TRANSFORMER: 0 = 4                                               */
    uint64_t seed;    /* initialisation                                                  */
} mcnn_shot_config;

typedef struct mcnn_shot_model mcnn_shot_model;

/* A new model, seeded as torch initialises the same layers (uniform ±1/sqrt(fan_in) for linear
 * and LSTM weights, N(0, 0.02) for the class token and positions).  max_batch: the most shots a
 * forward may take; every activation is sized for it here, nothing is allocated in a step.
 * Bad sizes fail with MCNN_ERR_ARG naming the field. */
MCNN_API mcnn_status mcnn_shot_model_create(mcnn_shot_model **out, const mcnn_shot_config *cfg,
                                            int max_batch);
MCNN_API void mcnn_shot_model_free(mcnn_shot_model *m);
/* The configuration with its defaults filled in. */
MCNN_API const mcnn_shot_config *mcnn_shot_model_config(const mcnn_shot_model *m);
MCNN_API const char *mcnn_shot_kind_name(mcnn_shot_kind kind); /* "mean", "lstm", "transformer" */
MCNN_API mcnn_status mcnn_shot_kind_parse(mcnn_shot_kind *kind, const char *name);
/* Values and gradients, one row per tensor (names as the equivalent torch modules'). */
MCNN_API mcnn_params *mcnn_shot_model_params(mcnn_shot_model *m);

/* logits (B, num_classes) from x (B, K, D) and lengths (B); keeps what the backward needs. */
MCNN_API mcnn_status mcnn_shot_model_forward(mcnn_shot_model *m, float *logits, const float *x,
                                             const int32_t *lengths, int B);
/* Accumulates (+=) into the parameter gradients, for the last forward. */
MCNN_API mcnn_status mcnn_shot_model_backward(mcnn_shot_model *m, const float *dlogits);

/* ---- training: BCE with pos_weight, gradient clipping, AdamW and a schedule ---------------- */
typedef struct mcnn_shot_trainer {
    mcnn_optim opt;              /* AdamW: lr 1e-3, weight decay 1e-3 (MovieCLIP's)         */
    mcnn_lr_schedule schedule;   /* base_lr = opt.lr; STEP by default: x0.5 every step_size */
    float clip_norm;             /* max gradient norm, 0 = none                             */
    float last_grad_norm;        /* the norm before clipping, of the last step              */
} mcnn_shot_trainer;

/* AdamW over the model's parameters with weight decay on its weight matrices only, a STEP
 * schedule (gamma 0.5 every step_size = 15000 steps: MovieCLIP halves every 15 epochs, so set
 * step_size to 15 × your steps per epoch) and no clipping.  Change the fields after; free with mcnn_shot_trainer_free. */
MCNN_API mcnn_status mcnn_shot_trainer_init(mcnn_shot_trainer *t, mcnn_shot_model *m);
MCNN_API void mcnn_shot_trainer_free(mcnn_shot_trainer *t);

/* One step: zero the gradients, forward, the mean BCE with logits against targets (B,
 * num_classes) in [0, 1] with pos_weight (num_classes) or NULL, backward, clip, lr from the
 * schedule at t->opt.step, AdamW.  loss (may be NULL) receives the loss; logits (may be NULL)
 * the forward's output (B, num_classes). */
MCNN_API mcnn_status mcnn_shot_train_step(mcnn_shot_model *m, mcnn_shot_trainer *t,
                                          const float *x, const int32_t *lengths,
                                          const float *targets, const float *pos_weight, int B,
                                          float *loss, float *logits);

/* ---- checkpoints -------------------------------------------------------------------------
 * The weights under their names, the configuration as metadata ("shot_model.kind", ".D", ...),
 * and, when t is given, the optimizer state ("optimizer.m.<name>", "optimizer.v.<name>", the
 * step as metadata): loading it back and continuing gives the same bits as never stopping. */
MCNN_API mcnn_status mcnn_shot_model_save(const mcnn_shot_model *m, const mcnn_shot_trainer *t,
                                          const char *path);
/* A model from a checkpoint (config from its metadata, every tensor checked); with t, also a
 * trainer with the saved optimizer state (the file must have it).  The schedule and clip_norm
 * are the caller's to set again, as they were. */
MCNN_API mcnn_status mcnn_shot_model_load(mcnn_shot_model **out, mcnn_shot_trainer *t,
                                          const char *path, int max_batch);

#ifdef __cplusplus
}
#endif
#endif
