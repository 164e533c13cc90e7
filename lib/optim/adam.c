/* Adam and AdamW (torch.optim.Adam / AdamW, amsgrad off), for one tensor of n floats, at step t
 * (already counted, so t = 1 on the first step):
 *   AdamW:  p *= 1 - lr·wd                    decoupled decay, applied first
 *   Adam:   g  = g + wd·p                     L2 decay, added to the gradient
 *   m = β1·m + (1-β1)·g,   v = β2·v + (1-β2)·g²
 *   p -= (lr / (1 - β1^t)) · m / (sqrt(v) / sqrt(1 - β2^t) + eps)
 * The last line is torch's operation order: eps is added AFTER dividing sqrt(v) by the bias
 * correction, and the first moment's correction is folded into the step size.  The bias
 * corrections are computed in double, as torch does with Python floats. */
#include "optim_internal.h"

#include <math.h>

void mcnn_adam_update(float *p, const float *g, float *m, float *v, size_t n,
                      const mcnn_optim *opt, double wd)
{
    const double t = (double)opt->step;
    const float step_size = (float)(opt->lr / (1.0 - pow(opt->beta1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(opt->beta2, t));
    const float b1 = (float)opt->beta1, b2 = (float)opt->beta2, eps = (float)opt->eps;
    const float a1 = (float)(1.0 - opt->beta1), a2 = (float)(1.0 - opt->beta2); /* as torch */
    const int decoupled = opt->kind == MCNN_OPTIM_ADAMW;
    const float l2 = decoupled ? 0.0f : (float)wd;                    /* Adam  */
    const float shrink = decoupled ? (float)(1.0 - opt->lr * wd) : 1.0f; /* AdamW */
    #pragma omp parallel for schedule(static) if (n >= MCNN_OPTIM_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        p[i] *= shrink;
        float gi = g[i] + l2 * p[i];
        m[i] = b1 * m[i] + a1 * gi;
        v[i] = b2 * v[i] + a2 * gi * gi;
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}
