/* Gradient clipping by the global L2 norm (torch.nn.utils.clip_grad_norm_, norm_type 2):
 *   total = sqrt(Σ g²) over every gradient,  scale = max_norm / (total + 1e-6)
 *   g *= scale  when scale < 1;  returns total (before clipping).
 * torch multiplies by min(scale, 1) unconditionally; skipping the multiply by exactly 1 is the
 * same result.  A NaN total gives scale NaN and an infinite one scale 0, as in torch. */
#include "mcnn/optim.h"

#include <math.h>

enum { CHUNKS = 256 }; /* fixed chunks, summed in order: the same norm for any thread count */

float mcnn_clip_grad_norm(float *grads, size_t n, float max_norm)
{
    double part[CHUNKS] = {0};
    #pragma omp parallel for schedule(static) if (n >= 65536)
    for (int k = 0; k < CHUNKS; k++) {
        size_t end = n * (k + 1) / CHUNKS;
        double ss = 0.0; /* double: millions of squares */
        for (size_t i = n * k / CHUNKS; i < end; i++) ss += (double)grads[i] * grads[i];
        part[k] = ss;
    }
    double ss = 0.0;
    for (int k = 0; k < CHUNKS; k++) ss += part[k];
    double total = sqrt(ss);
    double scale = max_norm / (total + 1e-6);
    if (!(scale >= 1.0)) { /* also NaN */
        const float s = (float)scale;
        #pragma omp parallel for schedule(static) if (n >= 65536)
        for (size_t i = 0; i < n; i++) grads[i] *= s;
    }
    return (float)total;
}
