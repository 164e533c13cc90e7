/* Thread count control.  OpenMP is optional: without it everything runs on one thread. */
#include "internal.h"

#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

void mcnn_set_threads(int n)
{
#ifdef _OPENMP
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int mcnn_get_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int mcnn_batch_lanes(int n)
{
#ifdef _OPENMP
    if (omp_in_parallel()) return 1; /* already one lane of a larger split */
#endif
    const int t = mcnn_get_threads();
    return t > 1 && n >= t ? t : 1;
}

void mcnn_lanes_run(int lanes, int n, mcnn_lane_fn fn, void *ctx)
{
    if (lanes <= 1) {
        fn(ctx, 0, 0, n);
        return;
    }
    #pragma omp parallel for num_threads(lanes) schedule(static)
    for (int t = 0; t < lanes; t++) {
        const int b0 = (int)((long)n * t / lanes), b1 = (int)((long)n * (t + 1) / lanes);
        fn(ctx, t, b0, b1 - b0);
    }
}

void mcnn_zero_floats(float *p, size_t n)
{
#ifdef _OPENMP
    const size_t piece = (size_t)1 << 16; /* 256 KB: big enough to run at full speed */
    if (n >= 4 * piece && !omp_in_parallel()) {
        const long pieces = (long)((n + piece - 1) / piece);
        #pragma omp parallel for schedule(static)
        for (long i = 0; i < pieces; i++) {
            size_t start = (size_t)i * piece, len = n - start < piece ? n - start : piece;
            memset(p + start, 0, len * sizeof(float));
        }
        return;
    }
#endif
    memset(p, 0, n * sizeof(float));
}
