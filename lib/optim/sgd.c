/* SGD with momentum (torch.optim.SGD, dampening 0), for one tensor of n floats:
 *   d   = g + wd·p                  L2 decay, added to the gradient
 *   buf = momentum·buf + d          buf starts at 0, so step 1 gives buf = d as torch's clone
 *   d   = nesterov ? d + momentum·buf : buf        (momentum 0: d unchanged, buf unused)
 *   p  -= lr·d                                                                           */
#include "optim_internal.h"

void mcnn_sgd_update(float *p, const float *g, float *buf, size_t n, const mcnn_optim *opt,
                     double wd)
{
    const float lr = (float)opt->lr, mu = (float)opt->momentum, decay = (float)wd;
    const int nesterov = opt->nesterov;
    #pragma omp parallel for schedule(static) if (n >= MCNN_OPTIM_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float d = g[i] + decay * p[i];
        if (mu != 0.0f) {
            buf[i] = mu * buf[i] + d;
            d = nesterov ? d + mu * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}
