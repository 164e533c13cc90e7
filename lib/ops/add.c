/* Residual add:  y = a + b,  da += dy,  db += dy.   a, b, y, da, db, dy (n)
 * The gradient simply flows to both inputs; NULL skips one (an input that needs none). */
#include "internal.h"
#include "core/profile.h"

void mcnn_add_forward(float *y, const float *a, const float *b, size_t n)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ADD);
    #pragma omp parallel for simd if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void mcnn_add_backward(float *da, float *db, const float *dy, size_t n)
{
    MCNN_PROF_SCOPE(MCNN_PROF_ADD);
    if (da) {
        #pragma omp parallel for simd if (n > 65536)
        for (size_t i = 0; i < n; i++) da[i] += dy[i];
    }
    if (db) {
        #pragma omp parallel for simd if (n > 65536)
        for (size_t i = 0; i < n; i++) db[i] += dy[i];
    }
}
