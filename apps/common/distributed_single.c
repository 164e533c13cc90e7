/* The one-process twin of apps/mpi/distributed_mpi.c (see distributed.h): rank 0 of 1, every
 * collective is the identity. */
#include "distributed.h"

#include <stdlib.h>

void dist_init(int *argc, char ***argv) { (void)argc, (void)argv; }
int dist_finalize(int status) { return status; }
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
const char *dist_library(void) { return "single process"; }
void dist_set_timeout(double seconds) { (void)seconds; }

mcnn_status dist_grad_hook(void *ctx, float *grad, size_t n, double *loss)
{
    (void)ctx, (void)grad, (void)n, (void)loss;
    return MCNN_OK;
}

double dist_grad_seconds(int64_t *calls)
{
    *calls = 0;
    return 0;
}

int dist_any(int flag) { return flag; }
void dist_average(float *x, size_t n) { (void)x, (void)n; }

void dist_gather_u64(const uint64_t *mine, int n, uint64_t *all)
{
    for (int i = 0; i < n; i++) all[i] = mine[i];
}

int dist_check_same(const char *what, const void *bytes, size_t n)
{
    (void)what, (void)bytes, (void)n;
    return 0;
}

void dist_wait_for_rank0(void) {}
void dist_abort(int status) { exit(status); }
