/* CLIP's head: normalise both embeddings, take scaled cosine similarities, and the symmetric
 * contrastive loss that trains them (openai/CLIP model.py and its paper's pseudo-code).
 *
 * L2 normalise, x, y (N, C), norm (N):
 *   y = x / r,  r = max(||x||, 1e-12)       dx = (dy - y·<y, dy>) / r     (r = ||x||)
 *                                            dx = dy / 1e-12               (tiny rows: r constant)
 * Logits, img (NI, C), txt (NT, C), logits (NI, NT), s = logit_scale (CLIP stores log 1/0.07):
 *   logits = e^s · img·txtᵀ
 *   dimg = e^s · dlogits·txt,  dtxt = e^s · dlogitsᵀ·img,  ds = Σ dlogits ⊙ logits
 * Contrastive loss on square logits (N, N), targets arange(N):
 *   loss = (CE(logits, arange) + CE(logitsᵀ, arange)) / 2
 *   dlogits[i][j] = (softmax_row(i)[j] + softmax_col(j)[i] - 2·[i == j]) / (2N)
 * Backward accumulates (+=) into every gradient it is given; NULL gradients are skipped. */
#include "mcnn/gemm.h"
#include "mcnn/ops.h"

#include <math.h>
#include <stdint.h>

#define NORM_EPS 1e-12 /* torch.nn.functional.normalize's default */

void mcnn_l2_normalize_forward(float *y, float *norm, const float *x, int N, int C)
{
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * C;
        float *yn = y + (size_t)n * C;
        double ss = 0.0; /* double: C is 512-1024 in CLIP */
        for (int c = 0; c < C; c++) ss += (double)xn[c] * xn[c];
        double r = sqrt(ss);
        norm[n] = (float)r;
        float inv = (float)(1.0 / (r > NORM_EPS ? r : NORM_EPS));
        for (int c = 0; c < C; c++) yn[c] = xn[c] * inv;
    }
}

void mcnn_l2_normalize_backward(float *dx, const float *dy, const float *y, const float *norm,
                                int N, int C)
{
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *yn = y + (size_t)n * C, *dyn = dy + (size_t)n * C;
        float *dxn = dx + (size_t)n * C;
        double ydy = 0.0;
        if (norm[n] > NORM_EPS)
            for (int c = 0; c < C; c++) ydy += (double)yn[c] * dyn[c];
        float inv = (float)(1.0 / (norm[n] > NORM_EPS ? norm[n] : NORM_EPS));
        /* in the forward pass this was y = x / r; r depends on x unless it was clamped */
        for (int c = 0; c < C; c++) dxn[c] += (dyn[c] - yn[c] * (float)ydy) * inv;
    }
}

void mcnn_clip_logits_forward(float *logits, const float *img, const float *txt,
                              float logit_scale, int NI, int NT, int C)
{
    float scale = expf(logit_scale);
    mcnn_gemm(0, 1, NI, NT, C, scale, img, C, txt, C, 0.0f, logits, NT); /* e^s · img·txtᵀ */
}

void mcnn_clip_logits_backward(float *dimg, float *dtxt, float *dlogit_scale,
                               const float *dlogits, const float *logits, const float *img,
                               const float *txt, float logit_scale, int NI, int NT, int C)
{
    float scale = expf(logit_scale);
    if (dimg) mcnn_gemm(0, 0, NI, C, NT, scale, dlogits, NT, txt, C, 1.0f, dimg, C);
    if (dtxt) mcnn_gemm(1, 0, NT, C, NI, scale, dlogits, NT, img, C, 1.0f, dtxt, C);
    if (dlogit_scale) {
        /* d logits / ds = logits: one scalar, summed serially in double (NI·NT is small) */
        double ds = 0.0;
        for (size_t i = 0; i < (size_t)NI * NT; i++) ds += (double)dlogits[i] * logits[i];
        *dlogit_scale += (float)ds;
    }
}

/* Softmax of the C values x[0], x[stride], ... into p (contiguous); returns -log p[target],
 * written as lse - x[target] so it stays exact when p[target] underflows to 0. */
static double softmax_xent(float *p, const float *x, size_t stride, int C, int target)
{
    double max = x[0], sum = 0.0;
    for (int c = 1; c < C; c++) max = x[c * stride] > max ? x[c * stride] : max;
    for (int c = 0; c < C; c++) sum += exp((double)x[c * stride] - max);
    for (int c = 0; c < C; c++) p[c] = (float)(exp((double)x[c * stride] - max) / sum);
    return max + log(sum) - x[target * stride];
}

enum { CHUNKS = 64 }; /* fixed chunks: the loss sum does not depend on the thread count */

float mcnn_clip_loss_forward(float *probs_i, float *probs_t, const float *logits, int N)
{
    double part[CHUNKS] = {0};
    #pragma omp parallel for schedule(static)
    for (int k = 0; k < CHUNKS; k++) {
        int i_end = (int)((int64_t)N * (k + 1) / CHUNKS);
        for (int i = (int)((int64_t)N * k / CHUNKS); i < i_end; i++) {
            /* image i over all texts: row i; text i over all images: column i */
            part[k] += softmax_xent(probs_i + (size_t)i * N, logits + (size_t)i * N, 1, N, i);
            part[k] += softmax_xent(probs_t + (size_t)i * N, logits + i, (size_t)N, N, i);
        }
    }
    double total = 0.0;
    for (int k = 0; k < CHUNKS; k++) total += part[k];
    return (float)(total / (2.0 * N));
}

void mcnn_clip_loss_backward(float *dlogits, const float *probs_i, const float *probs_t, int N,
                             float dloss)
{
    const float scale = dloss / (2.0f * N);
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            float g = probs_i[(size_t)i * N + j] + probs_t[(size_t)j * N + i] - (i == j ? 2.0f : 0.0f);
            dlogits[(size_t)i * N + j] += scale * g;
        }
}
