/* Binary cross-entropy with logits and a per-class positive weight, mean over all N·C elements.
 *   logits x, targets y (N, C) (y in [0, 1], soft targets allowed);  pos_weight w (C) or NULL.
 *   l = -[w_c·y·log σ(x) + (1-y)·log(1 - σ(x))]
 *     =  w_c·y·softplus(-x) + (1-y)·softplus(x),     softplus(z) = log(1 + e^z)
 *   dl/dx = (1-y)·σ(x) - w_c·y·σ(-x)                 loss = mean of l;  grads / (N·C)
 * Reference: torch.nn.BCEWithLogitsLoss(pos_weight=w), reduction 'mean'.
 * Stable for any |x|: softplus(z) = max(z, 0) + log1p(e^-|z|) never overflows, and σ(x), σ(-x)
 * are each computed from e^-|x| so neither is 1 - (a number close to 1). */
#include "mcnn/ops.h"

#include <math.h>
#include <stdint.h>

enum { CHUNKS = 64 }; /* fixed chunks of rows: the same sum for any thread count */

static double softplus(double z) { return (z > 0 ? z : 0) + log1p(exp(-fabs(z))); }

/* σ(z) for any z: exp only ever of a non-positive number */
static double sigmoid(double z)
{
    double e = exp(-fabs(z));
    return z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

float mcnn_bce_logits_forward(const float *logits, const float *targets,
                              const float *pos_weight, int N, int C)
{
    double part[CHUNKS] = {0};
    #pragma omp parallel for schedule(static)
    for (int k = 0; k < CHUNKS; k++) {
        int n_end = (int)((int64_t)N * (k + 1) / CHUNKS);
        for (int n = (int)((int64_t)N * k / CHUNKS); n < n_end; n++)
            for (int c = 0; c < C; c++) {
                double x = logits[(size_t)n * C + c], y = targets[(size_t)n * C + c];
                double w = pos_weight ? pos_weight[c] : 1.0;
                part[k] += w * y * softplus(-x) + (1.0 - y) * softplus(x);
            }
    }
    double total = 0.0;
    for (int k = 0; k < CHUNKS; k++) total += part[k];
    return (float)(total / ((double)N * C));
}

/* Accumulates (+=) into dlogits:  dlogits += dloss · ((1-y)·σ(x) - w_c·y·σ(-x)) / (N·C). */
void mcnn_bce_logits_backward(float *dlogits, const float *logits, const float *targets,
                              const float *pos_weight, int N, int C, float dloss)
{
    const double scale = dloss / ((double)N * C);
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)n * C + c;
            double x = logits[i], y = targets[i], w = pos_weight ? pos_weight[c] : 1.0;
            dlogits[i] += (float)(scale * ((1.0 - y) * sigmoid(x) - w * y * sigmoid(-x)));
        }
}
