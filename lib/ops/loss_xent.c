/* Cross-entropy with label smoothing, mean over the batch.
 *   logits x, probs p (N, C);  targets y (N) in [0, C);  smoothing ε in [0, 1].
 *   target distribution  t_c = (1-ε)·[c == y] + ε/C
 *   loss_n = -Σ_c t_c · log p_c = lse_n - (1-ε)·x_y - (ε/C)·Σ_c x_c,   lse = log Σ_c exp(x_c)
 *   loss   = (1/N) Σ_n loss_n                     dloss/dx_c = (p_c - t_c) / N
 * Reference: torch.nn.functional.cross_entropy(x, y, label_smoothing=ε), reduction 'mean'.
 * The loss is written with lse (never log p), so it stays exact when p underflows to 0. */
#include "mcnn/ops.h"

#include <math.h>
#include <stdint.h>

/* The loss is summed per fixed chunk of rows, then over the chunks in order: the same sum
 * for any thread count (an OpenMP reduction would add in a thread-dependent order). */
enum { CHUNKS = 64 };

float mcnn_cross_entropy_forward(float *probs, const float *logits, const int32_t *targets,
                                 int N, int C, float label_smoothing)
{
    const double eps = label_smoothing;
    double part[CHUNKS] = {0};
    #pragma omp parallel for schedule(static)
    for (int k = 0; k < CHUNKS; k++) {
        int n_end = (int)((int64_t)N * (k + 1) / CHUNKS);
        for (int n = (int)((int64_t)N * k / CHUNKS); n < n_end; n++) {
            const float *x = logits + (size_t)n * C;
            float *p = probs + (size_t)n * C;
            double max = x[0], sum = 0.0, xsum = 0.0;
            for (int c = 1; c < C; c++) max = x[c] > max ? x[c] : max;
            for (int c = 0; c < C; c++) sum += exp((double)x[c] - max), xsum += x[c];
            for (int c = 0; c < C; c++) p[c] = (float)(exp((double)x[c] - max) / sum);
            double lse = max + log(sum);
            part[k] += lse - (1.0 - eps) * x[targets[n]] - eps / C * xsum;
        }
    }
    double total = 0.0;
    for (int k = 0; k < CHUNKS; k++) total += part[k];
    return (float)(total / N);
}

/* Accumulates (+=) into dlogits:  dlogits_c += dloss · (p_c - t_c) / N. */
void mcnn_cross_entropy_backward(float *dlogits, const float *probs, const int32_t *targets,
                                 int N, int C, float label_smoothing, float dloss)
{
    const float scale = dloss / N;
    const float off = label_smoothing / C;               /* t_c for c != y */
    const float on = 1.0f - label_smoothing + off;       /* t_y            */
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *p = probs + (size_t)n * C;
        float *d = dlogits + (size_t)n * C;
        for (int c = 0; c < C; c++) d[c] += scale * (p[c] - (c == targets[n] ? on : off));
    }
}
