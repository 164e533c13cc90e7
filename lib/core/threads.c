/* Thread count control.  OpenMP is optional: without it everything runs on one thread. */
#include "internal.h"

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
