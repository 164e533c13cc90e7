/* The trainer's state, shared by trainer.c and train_checkpoint.c. */
#ifndef MCNN_TRAIN_INTERNAL_H
#define MCNN_TRAIN_INTERNAL_H

#include "mcnn.h"
#include "mcnn/train.h"

struct mcnn_trainer {
    mcnn_classifier *model;         /* not owned                                          */
    mcnn_train_config cfg;
    int K, train_count;
    int64_t steps_per_epoch, total_steps;
    mcnn_optim opt;                 /* opt.step: optimizer steps taken                    */
    mcnn_lr_schedule sched;
    float *pos_weight;              /* (K) or NULL                                         */
    /* one micro-batch */
    float *logits, *dlogits, *probs;/* (B, K)                                              */
    float *images, *targets;        /* (B, C, S, S), (B, K)                                */
    int32_t *labels;                /* (B)                                                 */
    int *perm;                      /* (train_count) this epoch's order                    */
    int micro;                      /* micro-batches accumulated towards the next step     */
    double loss_sum;
    float last_loss, last_grad_norm;
    double last_lr;
    /* the position, saved in checkpoints */
    int epoch;                      /* epochs completed                                    */
    int64_t epoch_step;             /* optimizer steps into the current epoch              */
    mcnn_rng rng;                   /* augmentation                                        */
};

#endif
