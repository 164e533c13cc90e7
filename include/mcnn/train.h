/* Training and evaluating a classifier (include/mcnn/classifier.h) on a data set
 * (include/mcnn/data.h): the loss, the optimizer with its parameter groups, the learning-rate
 * schedule, gradient clipping and accumulation, epochs over shuffled data, checkpoints that
 * resume exactly, and the evaluation metrics.
 *
 * One optimizer step, as PyTorch code would write it (tests/ref/gen_train.py checks it):
 *     zero grads
 *     for each of `accum` micro-batches:  loss = L(model(x), y);  (loss / accum).backward()
 *     clip_grad_norm_(params, clip)                    (when clip > 0)
 *     lr = schedule(step);  optimizer.step()           (AdamW: no decay on norms and biases)
 * L is cross-entropy with label smoothing (single-label) or BCE with logits and a per-class
 * pos_weight (multi-label).
 *
 * Epochs: the samples are shuffled by a permutation that depends only on (seed, epoch); an
 * epoch is floor(N / (batch · accum)) optimizer steps (the last incomplete group is dropped, so
 * every step sees batch · accum samples).  Augmentation draws from the trainer's RNG.  A
 * checkpoint holds the weights, the optimizer's moments ("optimizer.m.<name>",
 * "optimizer.v.<name>"), the step, the position in the epoch, the RNG state, the config and
 * the labels, so a resumed run repeats the uninterrupted one bit for bit (docs/train.md). */
#ifndef MCNN_TRAIN_H
#define MCNN_TRAIN_H

#include "classifier.h"
#include "core.h"
#include "data.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mcnn_loss_kind { MCNN_LOSS_CE, MCNN_LOSS_BCE } mcnn_loss_kind;

typedef struct mcnn_train_config {
    int batch;               /* micro-batch size                                    */
    int accum;               /* micro-batches per optimizer step (>= 1)             */
    int epochs;
    uint64_t seed;           /* shuffling and augmentation                          */
    mcnn_loss_kind loss;
    float label_smoothing;   /* CE                                                  */
    mcnn_optim_kind optim;
    double lr, weight_decay; /* decay only on table rows with decay = 1             */
    double momentum;         /* SGD                                                 */
    int nesterov;            /* SGD                                                 */
    double beta1, beta2, eps;/* Adam, AdamW                                         */
    mcnn_lr_kind schedule;   /* after warm-up: constant, cosine to min_lr, or step  */
    double warmup_epochs;    /* linear warm-up from warmup_start · lr               */
    double warmup_start;
    double min_lr;           /* cosine                                              */
    double step_epochs;      /* step schedule: decay by gamma every step_epochs      */
    double gamma;
    float clip_norm;         /* 0: no clipping                                      */
    int freeze_backbone;     /* linear probe: only the head trains                  */
    /* Data-parallel training (how a run is spread, not what it trains: not saved).  This
     * process is rank `rank` of `ranks` (0 for both: alone) and trains on its slice of every
     * batch, images [rank · batch / ranks, (rank + 1) · batch / ranks); batch must divide.
     * After the backward of a step's last micro-batch and before clipping, grad_hook averages
     * the n gradients and *loss (the step's summed micro-batch losses) over the ranks, in
     * place; lib/ never calls MPI itself (apps/common/distributed.h does). */
    int rank, ranks;
    mcnn_status (*grad_hook)(void *ctx, float *grad, size_t n, double *loss);
    void *grad_hook_ctx;
} mcnn_train_config;

/* AdamW (lr 1e-3, weight decay 0.05, betas 0.9/0.999, eps 1e-8), batch 128, accum 1, 10 epochs,
 * CE with smoothing 0.1, cosine to 0 after 1 epoch of warm-up from 0.01 · lr, clip 1.0, seed 0. */
MCNN_API mcnn_train_config mcnn_train_config_default(void);

typedef struct mcnn_trainer mcnn_trainer;

/* A trainer for model (not owned; it must outlive the trainer) and train_count training samples
 * (which fixes the steps per epoch and so the schedule's length). */
MCNN_API mcnn_status mcnn_trainer_create(mcnn_trainer **out, mcnn_classifier *model,
                                         const mcnn_train_config *cfg, int train_count);
MCNN_API void mcnn_trainer_free(mcnn_trainer *t);
MCNN_API const mcnn_train_config *mcnn_trainer_config(const mcnn_trainer *t);

/* BCE's pos_weight (K floats, copied); NULL: none (all ones). */
MCNN_API mcnn_status mcnn_trainer_set_pos_weight(mcnn_trainer *t, const float *pos_weight);
/* Read K whitespace-separated numbers from a text file. */
MCNN_API mcnn_status mcnn_read_pos_weight(float *pos_weight, int K, const char *path);

/* One micro-batch: forward, loss (CE uses labels (B), BCE targets (B, K)), backward scaled by
 * 1/accum; after accum of them, clip and take an optimizer step (*stepped = 1).  A NaN or
 * infinite loss or gradient norm fails before anything is updated, naming the step. */
MCNN_API mcnn_status mcnn_trainer_step(mcnn_trainer *t, const float *images,
                                       const int32_t *labels, const float *targets, int B,
                                       float *loss, int *stepped);
/* Of the last optimizer step: the gradient norm before clipping, and the learning rate. */
MCNN_API float mcnn_trainer_last_grad_norm(const mcnn_trainer *t);
MCNN_API double mcnn_trainer_last_lr(const mcnn_trainer *t);
/* The augmentation RNG's four words (a data-parallel run records every rank's). */
MCNN_API void mcnn_trainer_get_rng(const mcnn_trainer *t, uint64_t state[4]);
MCNN_API void mcnn_trainer_set_rng(mcnn_trainer *t, const uint64_t state[4]);

/* What the callback sees after each optimizer step. */
typedef struct mcnn_train_progress {
    int64_t step, total_steps;   /* optimizer steps done (1 after the first) and planned */
    int epoch, epochs;           /* 0-based epoch in progress                            */
    int64_t epoch_step, epoch_steps;
    float loss;                  /* mean of this step's micro-batch losses               */
    double lr;                   /* the learning rate the step used                      */
    float grad_norm;             /* before clipping                                      */
    int64_t images;              /* images in this step                                  */
} mcnn_train_progress;

/* Return non-zero to stop at this step boundary (e.g. after Ctrl-C). */
typedef int (*mcnn_train_callback)(void *ctx, const mcnn_train_progress *p);

/* Train from the current position to the end of the current epoch (or until cb asks to stop:
 * *stopped = 1).  data must have train_count samples; t's transform augments. */
MCNN_API mcnn_status mcnn_trainer_run_epoch(mcnn_trainer *t, const mcnn_dataset *data,
                                            const mcnn_transform *tf, mcnn_train_callback cb,
                                            void *ctx, int *stopped);
/* The position: epochs completed, and optimizer steps into the current one. */
MCNN_API int mcnn_trainer_epoch(const mcnn_trainer *t);
MCNN_API int64_t mcnn_trainer_step_count(const mcnn_trainer *t);
MCNN_API int64_t mcnn_trainer_steps_per_epoch(const mcnn_trainer *t);

/* A checkpoint: the classifier's file (weights, labels, preprocessing) plus the optimizer state
 * and the position, config and RNG in the metadata ("train_config", "train_state"); meta adds
 * n_meta (key, value) pairs.  Written atomically. */
MCNN_API mcnn_status mcnn_trainer_save(const mcnn_trainer *t, const char *path,
                                       const char *const *meta, int n_meta);
/* Read a checkpoint's training config (to rebuild the trainer of a run being resumed). */
MCNN_API mcnn_status mcnn_train_config_load(mcnn_train_config *cfg, const char *path);
/* Restore the optimizer state, pos_weight, position and RNG from a checkpoint written by
 * mcnn_trainer_save; the weights are loaded with mcnn_classifier_load. */
MCNN_API mcnn_status mcnn_trainer_resume(mcnn_trainer *t, const char *path);

/* ---- evaluation ---------------------------------------------------------------------------- */
typedef struct mcnn_eval_result {
    int count, num_classes, multi_label;
    double loss;              /* mean CE (single-label) or BCE (multi-label), plain      */
    double top1, top5;        /* single-label (top5 NaN when K < 5)                      */
    double mean_class_acc;    /* single-label                                            */
    double kappa;             /* predictions vs the data's labels (multi-label: the
                                 pooled per-class decisions at the threshold)            */
    double map, f1_micro, f1_macro; /* multi-label, at threshold                        */
    int64_t *confusion;       /* (K, K) single-label: row truth, column prediction       */
    float *scores;            /* (N, K) logits, in the data's order                      */
} mcnn_eval_result;

/* Run the model over every sample of data (no augmentation) and compute the metrics;
 * threshold applies to sigmoid probabilities (multi-label). */
MCNN_API mcnn_status mcnn_evaluate(mcnn_classifier *model, const mcnn_dataset *data,
                                   const mcnn_transform *tf, int batch, float threshold,
                                   mcnn_eval_result *out);
MCNN_API void mcnn_eval_result_free(mcnn_eval_result *r);

#ifdef __cplusplus
}
#endif
#endif
