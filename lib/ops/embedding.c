/* Token and position embeddings: the three ways tokens get their first values.
 *   embedding (torch.nn.Embedding):  y[n] = table[ids[n]]        y (N, C), table (V, C), ids (N)
 *                                    dtable[ids[n]] += dy[n]
 *   positional add (ViT pos_embed, CLIP positional_embedding, broadcast over the batch):
 *                                    y[b,t] = x[b,t] + pos[t]     x, y (B, T, C), pos (T, C)
 *                                    dx += dy,  dpos[t] += Σ_b dy[b,t]
 *   class token (ViT cls_token, CLIP class_embedding), prepended to every sequence:
 *                                    y[b,0] = cls,  y[b,1+p] = x[b,p]   x (B, P, C), y (B, 1+P, C)
 *                                    dcls += Σ_b dy[b,0],  dx[b,p] += dy[b,1+p]
 * Backward accumulates (+=); any gradient may be NULL.  Every sum over the batch or over
 * repeated ids runs in a fixed order (b = 0, 1, ...; n = 0, 1, ...) inside one thread, with
 * threads split over channels or positions, so the result is bitwise the same for any number
 * of threads, with no atomics. */
#include "internal.h"
#include "core/profile.h"

#include <string.h>

#define PAR_MIN 4096

void mcnn_embedding_forward(float *y, const int32_t *ids, const float *table, int N, int C)
{
    MCNN_PROF_SCOPE(MCNN_PROF_EMBED);
    #pragma omp parallel for if ((size_t)N * C > PAR_MIN)
    for (int n = 0; n < N; n++)
        memcpy(y + (size_t)n * C, table + (size_t)ids[n] * C, (size_t)C * sizeof(float));
}

/* Two tokens with the same id add into the same row of dtable, so splitting tokens across
 * threads would race (or, with atomics, add in a thread-dependent order).  Instead each thread
 * owns a strip of channels and walks all tokens in order. */
void mcnn_embedding_backward(float *dtable, const float *dy, const int32_t *ids, int N, int C)
{
    MCNN_PROF_SCOPE(MCNN_PROF_EMBED);
    if (!dtable) return;
    enum { CB = 64 };
    const int nblocks = (C + CB - 1) / CB;
    #pragma omp parallel for if ((size_t)N * C > PAR_MIN)
    for (int blk = 0; blk < nblocks; blk++) {
        const int c0 = blk * CB, cn = C - c0 < CB ? C - c0 : CB;
        for (int n = 0; n < N; n++) {
            const float *dy_n = dy + (size_t)n * C + c0;
            float *dt = dtable + (size_t)ids[n] * C + c0;
            for (int c = 0; c < cn; c++) dt[c] += dy_n[c];
        }
    }
}

void mcnn_add_positional_forward(float *y, const float *x, const float *pos, int B, int T, int C)
{
    MCNN_PROF_SCOPE(MCNN_PROF_EMBED);
    #pragma omp parallel for if ((size_t)B * T * C > PAR_MIN)
    for (int bt = 0; bt < B * T; bt++) {
        const float *x_bt = x + (size_t)bt * C, *pos_t = pos + (size_t)(bt % T) * C;
        float *y_bt = y + (size_t)bt * C;
        for (int c = 0; c < C; c++) y_bt[c] = x_bt[c] + pos_t[c];
    }
}

void mcnn_add_positional_backward(float *dx, float *dpos, const float *dy, int B, int T, int C)
{
    MCNN_PROF_SCOPE(MCNN_PROF_EMBED);
    if (dx) {
        #pragma omp parallel for if ((size_t)B * T * C > PAR_MIN)
        for (int bt = 0; bt < B * T; bt++) {
            const float *dy_bt = dy + (size_t)bt * C;
            float *dx_bt = dx + (size_t)bt * C;
            for (int c = 0; c < C; c++) dx_bt[c] += dy_bt[c];
        }
    }
    if (dpos) { /* split positions: each dpos row is summed over b in order by one thread */
        #pragma omp parallel for if ((size_t)B * T * C > PAR_MIN)
        for (int t = 0; t < T; t++) {
            float *dpos_t = dpos + (size_t)t * C;
            for (int b = 0; b < B; b++) {
                const float *dy_bt = dy + ((size_t)b * T + t) * C;
                for (int c = 0; c < C; c++) dpos_t[c] += dy_bt[c];
            }
        }
    }
}

void mcnn_class_token_forward(float *y, const float *x, const float *cls, int B, int P, int C)
{
    MCNN_PROF_SCOPE(MCNN_PROF_EMBED);
    #pragma omp parallel for if ((size_t)B * P * C > PAR_MIN)
    for (int b = 0; b < B; b++) {
        float *y_b = y + (size_t)b * (P + 1) * C;
        memcpy(y_b, cls, (size_t)C * sizeof(float));                          /* token 0   */
        memcpy(y_b + C, x + (size_t)b * P * C, (size_t)P * C * sizeof(float)); /* tokens 1.. */
    }
}

void mcnn_class_token_backward(float *dx, float *dcls, const float *dy, int B, int P, int C)
{
    MCNN_PROF_SCOPE(MCNN_PROF_EMBED);
    if (dx) {
        #pragma omp parallel for if ((size_t)B * P * C > PAR_MIN)
        for (int b = 0; b < B; b++) {
            const float *dy_b = dy + (size_t)b * (P + 1) * C + C; /* skip the class token */
            float *dx_b = dx + (size_t)b * P * C;
            for (size_t i = 0; i < (size_t)P * C; i++) dx_b[i] += dy_b[i];
        }
    }
    if (dcls) /* C sums of B terms: too little work for threads, and in order */
        for (int b = 0; b < B; b++) {
            const float *dy_b0 = dy + (size_t)b * (P + 1) * C;
            for (int c = 0; c < C; c++) dcls[c] += dy_b0[c];
        }
}
