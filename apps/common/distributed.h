/* Data-parallel training across processes: the few collective operations mcnn-train needs.
 * Two twins implement this header: apps/common/distributed_single.c (one process, no MPI: what
 * a plain `make` links) and apps/mpi/distributed_mpi.c (Open MPI: `make MPI=1`, which builds
 * build/mpi/mcnn-train).  The library never sees MPI: the trainer calls dist_grad_hook through
 * its config (include/mcnn/train.h).
 *
 * Every collective here is called by all ranks at the same point of the run.  A collective that
 * waits longer than the timeout (dist_set_timeout) means a rank has died or hangs: the process
 * says so on stderr and exits 1, and the launcher ends the job.  An MPI error does the same. */
#ifndef MCNN_APPS_DISTRIBUTED_H
#define MCNN_APPS_DISTRIBUTED_H

#include "mcnn.h"

#include <stddef.h>
#include <stdint.h>

/* Join the job (MPI_Init); a no-op alone.  Call first in main. */
void dist_init(int *argc, char ***argv);
/* Leave it (MPI_Finalize); returns status. */
int dist_finalize(int status);
int dist_rank(void);
int dist_size(void);
/* What carries the ranks ("single process", "Open MPI v4.1.4"). */
const char *dist_library(void);
/* Seconds a collective may wait before the job is declared broken (0: forever). */
void dist_set_timeout(double seconds);

/* The trainer's gradient hook: average grad (n floats) and *loss over the ranks, in place. */
mcnn_status dist_grad_hook(void *ctx, float *grad, size_t n, double *loss);
/* Seconds spent in dist_grad_hook so far, and how many calls. */
double dist_grad_seconds(int64_t *calls);

/* Whether any rank's flag is set (a stop request). */
int dist_any(int flag);
/* Average n floats over the ranks in place (batch-norm running statistics). */
void dist_average(float *x, size_t n);
/* Rank 0 receives every rank's n words, rank by rank, in all (size · n words; NULL elsewhere). */
void dist_gather_u64(const uint64_t *mine, int n, uint64_t *all);
/* 0 when every rank hashes the same n bytes; else -1 on every rank, rank 0 having said which
 * rank differs in `what` (a launch where ranks see different data or checkpoints). */
int dist_check_same(const char *what, const void *bytes, size_t n);
/* The others wait, sleeping, until rank 0 arrives (while it evaluates and writes). */
void dist_wait_for_rank0(void);
/* End the whole job now with this exit status (one rank failed). */
void dist_abort(int status);

#endif
