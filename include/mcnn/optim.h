/* Optimizers, gradient clipping and learning-rate schedules, with torch.optim's exact rules
 * (PyTorch 1.13; docs/optim.md writes every update out).
 *
 * Memory model: a model's parameters, gradients and optimizer state are each ONE float array
 * of n floats, carved into tensors by the parameter table (mcnn_param: offset, numel, decay).
 * So a step is a few flat loops, and per-group weight decay is the table's decay flag:
 * decay = 1 tensors get opt->weight_decay, decay = 0 tensors (norms, biases) get none --
 * PyTorch's usual two parameter groups.
 *
 *     mcnn_optim opt;
 *     mcnn_optim_init(&opt, MCNN_OPTIM_ADAMW, n);       // torch's defaults, zeroed state
 *     opt.lr = 3e-4, opt.weight_decay = 0.05;
 *     for (step = 0; ...) {
 *         mcnn_grad_zero(grads, n);  ...forward, backward...
 *         mcnn_clip_grad_norm(grads, n, 1.0f);
 *         opt.lr = mcnn_lr_schedule_at(&sched, step);
 *         mcnn_optim_step(&opt, params, grads, table, nparams);
 *     }
 *     mcnn_optim_free(&opt);
 *
 * Checkpoints: the whole optimizer state is opt.step and the arrays opt.m and opt.v (n floats
 * each, laid out like the parameters; v is NULL for SGD).  They map to torch's state_dict as
 * m = 'momentum_buffer' (SGD) or 'exp_avg' (Adam/AdamW), v = 'exp_avg_sq', step = 'step'. */
#ifndef MCNN_OPTIM_H
#define MCNN_OPTIM_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mcnn_optim_kind {
    MCNN_OPTIM_SGD,   /* torch.optim.SGD (dampening 0)                        */
    MCNN_OPTIM_ADAM,  /* torch.optim.Adam: L2 decay added to the gradient      */
    MCNN_OPTIM_ADAMW  /* torch.optim.AdamW: decoupled decay p *= 1 - lr·wd     */
} mcnn_optim_kind;

/* Open struct: set the hyper-parameters after mcnn_optim_init and change lr between steps.
 * They are doubles because PyTorch's are (Python floats): 0.999f would move 1 - β2^t by
 * 1e-5 relative at step 1. */
typedef struct mcnn_optim {
    mcnn_optim_kind kind;
    double lr;
    double weight_decay;     /* for table rows with decay = 1                          */
    double momentum;         /* SGD; 0 = plain SGD                                     */
    int nesterov;            /* SGD; needs momentum > 0                                */
    double beta1, beta2, eps; /* Adam, AdamW                                            */
    int64_t step;            /* steps taken so far (Adam's t after a step)             */
    size_t n;                /* floats in params, grads, m, v                          */
    float *m;                /* (n) SGD momentum buffer / Adam first moment            */
    float *v;                /* (n) Adam second moment; NULL for SGD                   */
} mcnn_optim;

/* Allocate zeroed state for n floats and set torch's defaults: lr 1e-3 (SGD has none in torch:
 * set it), momentum 0, nesterov 0, betas (0.9, 0.999), eps 1e-8, weight_decay 0 (AdamW 1e-2). */
MCNN_API mcnn_status mcnn_optim_init(mcnn_optim *opt, mcnn_optim_kind kind, size_t n);
/* One update of params (n) from grads (n).  table: nparams rows; only the floats they cover
 * are touched, each row decayed by its decay flag.  table NULL: all n floats, all decayed.
 * Fails (MCNN_ERR_ARG) on a row outside the n floats or an unknown kind, before any update. */
MCNN_API mcnn_status mcnn_optim_step(mcnn_optim *opt, float *params, const float *grads,
                                     const mcnn_param *table, int nparams);
MCNN_API void mcnn_optim_free(mcnn_optim *opt);

MCNN_API void mcnn_grad_zero(float *grads, size_t n);

/* torch.nn.utils.clip_grad_norm_(max_norm, norm_type 2) over the whole gradient block:
 *   total = ||grads||₂ (in double), scale = max_norm / (total + 1e-6), grads *= scale if < 1.
 * Returns total, the norm before clipping.  A non-finite total scales by NaN or 0 as torch
 * does; callers can test the return value and skip the step. */
MCNN_API float mcnn_clip_grad_norm(float *grads, size_t n, float max_norm);

/* Learning rate as a pure function of the step (0 = the first optimizer step):
 *   warm-up, step < W:  lr = base · (f0 + (1 - f0) · step / W)
 *   then, with s = step - W:
 *     CONSTANT:  lr = base
 *     COSINE:    lr = min + (base - min) · (1 + cos(π · s / (T - W))) / 2, and min once s ≥ T - W
 *     STEP:      lr = base · gamma ^ floor(s / step_size)
 * Matches SequentialLR(LinearLR(f0, total_iters=W), CosineAnnealingLR(T_max=T-W, eta_min=min)
 * or StepLR(step_size, gamma), milestones=[W]) (LambdaLR when f0 = 0, which LinearLR refuses). */
typedef enum mcnn_lr_kind { MCNN_LR_CONSTANT, MCNN_LR_COSINE, MCNN_LR_STEP } mcnn_lr_kind;

typedef struct mcnn_lr_schedule {
    mcnn_lr_kind kind;
    double base_lr;         /* base: the lr after warm-up                         */
    int64_t warmup_steps;   /* W: 0 for none                                      */
    double warmup_start;    /* f0: the factor at step 0 (0 = from zero)           */
    int64_t total_steps;    /* T (COSINE): min_lr is reached at step T            */
    double min_lr;          /* min (COSINE)                                       */
    int64_t step_size;      /* STEP: decay every step_size steps after warm-up    */
    double gamma;           /* STEP: factor per decay                             */
} mcnn_lr_schedule;

MCNN_API double mcnn_lr_schedule_at(const mcnn_lr_schedule *s, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
