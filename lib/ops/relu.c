/* ReLU (torch.nn.ReLU):  y = max(x, 0),  dx += dy where y > 0.   x, y, dx, dy (n)
 * Backward reads the output y, not x: the forward may run in place (y == x) and the input
 * need not be kept.  The gradient at exactly 0 is 0, as in PyTorch.  NaN passes through. */
#include "internal.h"
#include "core/profile.h"

void mcnn_relu_forward(float *y, const float *x, size_t n)
{
    MCNN_PROF_SCOPE(MCNN_PROF_RELU);
    #pragma omp parallel for simd if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN < 0 is false */
}

void mcnn_relu_backward(float *dx, const float *dy, const float *y, size_t n)
{
    MCNN_PROF_SCOPE(MCNN_PROF_RELU);
    if (!dx) return;
    #pragma omp parallel for simd if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float d = dy[i]; /* read unconditionally: the loop then vectorises (a blend) */
        dx[i] += y[i] > 0.0f ? d : 0.0f;
    }
}
