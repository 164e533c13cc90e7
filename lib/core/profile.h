/* A per-op-family timer for finding where a model's time goes.
 *
 *   MCNN_PROFILE=1 build/bench/bench_models resnet50 16
 *
 * prints one line per model call (forward, backward) to stderr: the wall time of each op family
 * and the rest ("other": GEMM-only steps, copies, the optimizer's caller...).  Off by default;
 * then a timed op costs one load and one branch.
 *
 * An op function opens with MCNN_PROF_SCOPE(family); the time until it returns is added to the
 * family.  Only the outermost timed call on a thread counts (conv's inner ReLU is conv time),
 * and only the master thread's calls are summed, so the figures are wall time even when threads
 * each run their own share of the batch through the ops.  A model function brackets its work
 * with mcnn_prof_run_begin() / mcnn_prof_run_end("name"); nested runs print once.  One
 * profiled model call at a time (the totals are plain globals): while one runs, model calls
 * that other threads make (sessions) are not profiled. */
#ifndef MCNN_PROFILE_H
#define MCNN_PROFILE_H

#include <stdatomic.h>

typedef enum mcnn_prof_family {
    MCNN_PROF_CONV,      /* conv2d: im2col + GEMM + col2im */
    MCNN_PROF_BN,        /* batch norm (with a fused ReLU / residual add) */
    MCNN_PROF_RELU,
    MCNN_PROF_POOL,      /* max / average / global pooling */
    MCNN_PROF_ADD,       /* residual adds */
    MCNN_PROF_LINEAR,    /* linear layers: GEMM + bias */
    MCNN_PROF_ATTENTION, /* Q·Kᵀ, softmax, P·V per head */
    MCNN_PROF_LAYERNORM,
    MCNN_PROF_ACT,       /* GELU, QuickGELU */
    MCNN_PROF_SOFTMAX,   /* softmax / log-softmax / losses */
    MCNN_PROF_EMBED,     /* patchify, embeddings, positions, class token */
    MCNN_PROF_COUNT
} mcnn_prof_family;

/* MCNN_PROFILE is set (read by the first mcnn_prof_run_begin; atomic, as sessions run model
 * calls on several threads at once) */
extern _Atomic int mcnn_prof_enabled;

double mcnn_prof_enter(void);  /* start time; -1 nested; 0 not the runner's thread */
void mcnn_prof_leave(mcnn_prof_family f, double start);  /* add the time since start */
void mcnn_prof_run_begin(void);
void mcnn_prof_run_end(const char *what);                /* print and reset (outermost run) */

#if defined(__GNUC__)
/* The cleanup attribute calls prof_scope_end when the variable goes out of scope, so every
 * return path of the op is timed without touching it. */
typedef struct mcnn_prof_scope { mcnn_prof_family f; double start; } mcnn_prof_scope;
static inline void mcnn_prof_scope_end(mcnn_prof_scope *s)
{
    if (s->start != 0.0) mcnn_prof_leave(s->f, s->start);
}
#define MCNN_PROF_SCOPE(family)                                                              \
    mcnn_prof_scope prof_scope_ __attribute__((cleanup(mcnn_prof_scope_end), unused)) = {    \
        (family), atomic_load_explicit(&mcnn_prof_enabled, memory_order_relaxed)             \
                      ? mcnn_prof_enter() : 0.0}
#else
#define MCNN_PROF_SCOPE(family) ((void)0)
#endif

#endif
