/* The three GELUs, element-wise on x, y, dx, dy: (n).  Backward reads the forward's input x.
 *
 * exact (torch.nn.GELU(), ViT):
 *   y  = x · Φ(x),              Φ(x) = ½ (1 + erf(x / √2)),  φ(x) = exp(-x²/2) / √(2π)
 *   dx = dy · (Φ(x) + x · φ(x))
 * tanh approximation (torch.nn.GELU(approximate='tanh'), GPT-2):
 *   u  = √(2/π) · (x + 0.044715 x³),   y = ½ x (1 + tanh u)  = x · σ(2u)
 *   dx = dy · (½ (1 + tanh u) + ½ x (1 - tanh² u) · √(2/π) · (1 + 3 · 0.044715 x²))
 * QuickGELU (OpenAI CLIP):
 *   s  = σ(1.702 x),  y = x · s,   dx = dy · (s + 1.702 · x · s · (1 - s))
 *
 * Backward accumulates (+=).  No -ffast-math is assumed anywhere (llm.c's GELU broke under it).
 * See docs/ops/gelu.md for the derivations. */
#include "internal.h"
#include "core/profile.h"
#include "vmath.h"

#include <math.h>

#define INV_SQRT2 0.70710678118654752440f       /* 1/√2: strict C11 has no M_SQRT1_2 */
#define INV_SQRT_2PI 0.39894228040143267794f    /* 1/√(2π) */
#define SQRT_2_OVER_PI 0.79788456080286535588f  /* √(2/π) */
#define GELU_KAPPA 0.044715f
#define QUICK_ALPHA 1.702f

/* element-wise ops are memory-bound: only worth threads on large arrays */
#define PAR_MIN ((size_t)1 << 15)
/* elements per call of a block kernel: the unit the threads share out */
#define BLOCK 4096

/* Φ(x) via erfc: for x << 0, 1 + erf(x/√2) cancels to 0 in float long before Φ underflows,
 * while erfc keeps full relative precision (Φ(-10) ≈ 7.6e-24).  exp and erfc are vmath.h's
 * vectorisable ones (libm's are calls, one element at a time: 17 ns per GELU against 1.5). */
static inline float phi_cdf(float x) { return 0.5f * mcnn_verfcf(-x * INV_SQRT2); }

/* σ(z) = 1 / (1 + e^-z): for z << 0, e^-z overflows to +inf and σ becomes 0, never NaN. */
static inline float sigmoid(float z) { return 1.0f / (1.0f + mcnn_vexpf(-z)); }

/* The six loops, each over one block of n elements, compiled for the vector width of the CPU
 * (MCNN_SIMD_CLONES). */
MCNN_SIMD_CLONES static void gelu_fwd(float *y, const float *x, size_t n)
{
    #pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] = x[i] * phi_cdf(x[i]);
}

MCNN_SIMD_CLONES static void gelu_bwd(float *dx, const float *dy, const float *x, size_t n)
{
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float xi = x[i];
        float pdf = INV_SQRT_2PI * mcnn_vexpf(-0.5f * xi * xi);
        dx[i] += dy[i] * (phi_cdf(xi) + xi * pdf);
    }
}

/* ½ (1 + tanh u) = σ(2u) and ½ (1 - tanh² u) = 2 σ(2u)(1 - σ(2u)): the same function, but for
 * x < -4 the float 1 + tanhf(u) is a difference of numbers ~1 and loses every digit, while
 * σ(2u) = 1 / (1 + e^-2u) keeps full relative precision out to x = -10 and beyond. */
MCNN_SIMD_CLONES static void gelu_tanh_fwd(float *y, const float *x, size_t n)
{
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float xi = x[i];
        float u = SQRT_2_OVER_PI * (xi + GELU_KAPPA * xi * xi * xi);
        y[i] = xi * sigmoid(2.0f * u);
    }
}

MCNN_SIMD_CLONES static void gelu_tanh_bwd(float *dx, const float *dy, const float *x, size_t n)
{
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float xi = x[i];
        float u = SQRT_2_OVER_PI * (xi + GELU_KAPPA * xi * xi * xi);
        float s = sigmoid(2.0f * u);
        float du_dx = SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_KAPPA * xi * xi);
        dx[i] += dy[i] * (s + 2.0f * xi * s * (1.0f - s) * du_dx);
    }
}

MCNN_SIMD_CLONES static void quick_fwd(float *y, const float *x, size_t n)
{
    #pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] = x[i] * sigmoid(QUICK_ALPHA * x[i]);
}

MCNN_SIMD_CLONES static void quick_bwd(float *dx, const float *dy, const float *x, size_t n)
{
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float s = sigmoid(QUICK_ALPHA * x[i]);
        dx[i] += dy[i] * (s + QUICK_ALPHA * x[i] * s * (1.0f - s));
    }
}

/* Run a loop over n elements in blocks, the blocks split across threads. */
static void forward_blocks(void (*f)(float *, const float *, size_t), float *y, const float *x,
                           size_t n)
{
    const size_t nb = (n + BLOCK - 1) / BLOCK;
    #pragma omp parallel for if (n > PAR_MIN)
    for (size_t b = 0; b < nb; b++) {
        const size_t i0 = b * BLOCK;
        f(y + i0, x + i0, n - i0 < BLOCK ? n - i0 : BLOCK);
    }
}

static void backward_blocks(void (*f)(float *, const float *, const float *, size_t), float *dx,
                            const float *dy, const float *x, size_t n)
{
    const size_t nb = (n + BLOCK - 1) / BLOCK;
    #pragma omp parallel for if (n > PAR_MIN)
    for (size_t b = 0; b < nb; b++) {
        const size_t i0 = b * BLOCK;
        f(dx + i0, dy + i0, x + i0, n - i0 < BLOCK ? n - i0 : BLOCK);
    }
}

void mcnn_gelu_forward(float *y, const float *x, size_t n)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ACT);
    forward_blocks(gelu_fwd, y, x, n);
}

void mcnn_gelu_backward(float *dx, const float *dy, const float *x, size_t n)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ACT);
    if (dx) backward_blocks(gelu_bwd, dx, dy, x, n);
}

void mcnn_gelu_tanh_forward(float *y, const float *x, size_t n)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ACT);
    forward_blocks(gelu_tanh_fwd, y, x, n);
}

void mcnn_gelu_tanh_backward(float *dx, const float *dy, const float *x, size_t n)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ACT);
    if (dx) backward_blocks(gelu_tanh_bwd, dx, dy, x, n);
}

void mcnn_quick_gelu_forward(float *y, const float *x, size_t n)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ACT);
    forward_blocks(quick_fwd, y, x, n);
}

void mcnn_quick_gelu_backward(float *dx, const float *dy, const float *x, size_t n)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ACT);
    if (dx) backward_blocks(quick_bwd, dx, dy, x, n);
}

/* x (N, F) += b, then y = act(x), a row at a time: a linear layer's bias and the activation
 * after it in one pass over x (the same operations as the bias then the activation). */
void mcnn_bias_act_forward(float *y, float *x, const float *b, int N, int F, int quick)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ACT);
    #pragma omp parallel for if ((size_t)N * F > PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *x_n = x + (size_t)n * F;
        if (b)
            for (int f = 0; f < F; f++) x_n[f] += b[f];
        (quick ? quick_fwd : gelu_fwd)(y + (size_t)n * F, x_n, (size_t)F);
    }
}
