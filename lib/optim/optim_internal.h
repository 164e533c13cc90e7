/* The update rules, one flat loop each over n floats of one parameter tensor: optim.c walks the
 * parameter table and calls them with that tensor's weight decay (0 when its decay flag is 0). */
#ifndef MCNN_OPTIM_INTERNAL_H
#define MCNN_OPTIM_INTERNAL_H

#include "mcnn/optim.h"

/* sgd.c */
void mcnn_sgd_update(float *p, const float *g, float *buf, size_t n, const mcnn_optim *opt,
                     double wd);
/* adam.c: Adam or AdamW after opt->step has been incremented */
void mcnn_adam_update(float *p, const float *g, float *m, float *v, size_t n,
                      const mcnn_optim *opt, double wd);

/* Parallelise a loop over one tensor only when it is big enough to pay for waking threads. */
#define MCNN_OPTIM_PAR_MIN 32768

#endif
