/* distributed.h over MPI (Open MPI; `make MPI=1`).
 *
 * Errors: MPI_COMM_WORLD returns its errors (MPI_ERRORS_RETURN) and every call is checked; a
 * failed call prints MPI's message and ends the job with MPI_Abort.  Hangs: Open MPI 4 has no
 * timeout on collectives, so each collective runs under alarm(): when a rank has died without
 * the launcher noticing (a lost host), the others say so and exit instead of waiting forever.
 * mpirun itself ends the job when a rank exits non-zero or is killed. */
#define _POSIX_C_SOURCE 200809L
#include "../common/distributed.h"
#include "../common/args.h"

#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int rank, size = 1;
static unsigned timeout_s = 600;
static char library[MPI_MAX_LIBRARY_VERSION_STRING];
static double grad_seconds;
static int64_t grad_calls;

/* ---- the watchdog ------------------------------------------------------------------------- */

static char alarm_msg[512];
static size_t alarm_len;

static void on_alarm(int sig)
{
    (void)sig;
    if (write(STDERR_FILENO, alarm_msg, alarm_len) < 0) _exit(1);
    _exit(1);
}

/* Arm the watchdog for one collective (the message is formatted here, outside the handler). */
static void arm(const char *what)
{
    if (!timeout_s) return;
    int n = snprintf(alarm_msg, sizeof alarm_msg, "%s: no answer from the other ranks for %u s "
                     "in %s: a rank has died or hangs; stopping (resume with --resume)\n",
                     app_name, timeout_s, what);
    alarm_len = n < 0 ? 0 : (size_t)n < sizeof alarm_msg ? (size_t)n : sizeof alarm_msg - 1;
    alarm(timeout_s);
}

static void disarm(void) { alarm(0); }

/* A failed MPI call ends the job with MPI's words. */
static void check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fprintf(stderr, "%s: %s failed: %.*s (a rank has probably died)\n", app_name, what, len, msg);
    MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1);
}

/* ---- joining ------------------------------------------------------------------------------ */

void dist_init(int *argc, char ***argv)
{
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "%s: MPI_Init failed\n", app_name);
        exit(1);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int len = 0;
    MPI_Get_library_version(library, &len);
    library[strcspn(library, ",\n")] = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
}

int dist_finalize(int status)
{
    /* a rank that fails alone must not wait in MPI_Finalize for the others */
    if (status != 0 && status != 75 && size > 1) dist_abort(status);
    MPI_Finalize();
    return status;
}

int dist_rank(void) { return rank; }
int dist_size(void) { return size; }
const char *dist_library(void) { return library; }
void dist_set_timeout(double seconds) { timeout_s = seconds > 0 ? (unsigned)(seconds + 0.5) : 0; }

void dist_abort(int status)
{
    fflush(stdout), fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
    _exit(status);
}

/* ---- collectives -------------------------------------------------------------------------- */

/* x (n floats) averaged over the ranks: summed in place, in pieces MPI's int counts can hold,
 * then scaled by 1 / size (exact with 2 or 4 ranks). */
static void average_in_place(float *x, size_t n, const char *what)
{
    arm(what);
    for (size_t at = 0; at < n;) {
        const int count = n - at > (1u << 30) ? 1 << 30 : (int)(n - at);
        check(MPI_Allreduce(MPI_IN_PLACE, x + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), what);
        at += (size_t)count;
    }
    disarm();
    const float scale = 1.0f / (float)size;
    for (size_t i = 0; i < n; i++) x[i] *= scale;
}

mcnn_status dist_grad_hook(void *ctx, float *grad, size_t n, double *loss)
{
    (void)ctx;
    if (size == 1) return MCNN_OK;
    const double t0 = MPI_Wtime();
    average_in_place(grad, n, "the gradient allreduce");
    arm("the loss allreduce");
    check(MPI_Allreduce(MPI_IN_PLACE, loss, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
          "the loss allreduce");
    disarm();
    *loss /= size;
    grad_seconds += MPI_Wtime() - t0;
    grad_calls++;
    return MCNN_OK;
}

double dist_grad_seconds(int64_t *calls)
{
    *calls = grad_calls;
    return grad_seconds;
}

int dist_any(int flag)
{
    int any = flag != 0;
    if (size == 1) return any;
    arm("agreeing on a stop");
    check(MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD),
          "agreeing on a stop");
    disarm();
    return any;
}

void dist_average(float *x, size_t n)
{
    if (size > 1 && n > 0) average_in_place(x, n, "averaging the batch-norm statistics");
}

void dist_gather_u64(const uint64_t *mine, int n, uint64_t *all)
{
    arm("gathering the ranks' random streams");
    check(MPI_Gather(mine, n, MPI_UINT64_T, all, n, MPI_UINT64_T, 0, MPI_COMM_WORLD),
          "gathering the ranks' random streams");
    disarm();
}

/* FNV-1a, 64 bits: enough to tell two launches apart. */
static uint64_t hash_bytes(const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

int dist_check_same(const char *what, const void *bytes, size_t n)
{
    if (size == 1) return 0;
    uint64_t mine = hash_bytes(bytes, n), *all = malloc((size_t)size * sizeof *all);
    if (!all) check(MPI_ERR_NO_MEM, "comparing the ranks");
    arm("comparing the ranks");
    check(MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD),
          "comparing the ranks");
    disarm();
    int differs = -1;
    for (int r = 1; r < size && differs < 0; r++)
        if (all[r] != all[0]) differs = r;
    if (differs >= 0 && rank == 0)
        fprintf(stderr, "%s: rank %d and rank 0 do not have the same %s: every rank must start "
                "from the same command, data and checkpoint (a shared --out folder, or a copy of "
                "it on every host)\n", app_name, differs, what);
    /* Every rank fails now and aborts the job; rank 0, the one that said why, must go first:
     * an abort from another rank can kill it before its message reaches mpirun. */
    if (differs >= 0 && rank != 0) nanosleep(&(struct timespec){2, 0}, NULL);
    free(all);
    return differs >= 0 ? -1 : 0;
}

/* A non-blocking barrier polled with sleeps, so that waiting ranks leave the cores to rank 0
 * (MPI_Barrier spins).  No timeout: rank 0 may evaluate for a long time; mpirun still ends
 * the job if a rank dies meanwhile. */
void dist_wait_for_rank0(void)
{
    if (size == 1) return;
    MPI_Request req;
    check(MPI_Ibarrier(MPI_COMM_WORLD, &req), "waiting for rank 0");
    for (int done = 0;;) {
        check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "waiting for rank 0");
        if (done) break;
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
}
