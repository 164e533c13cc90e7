/* MCNN_PROFILE: time per op family (see profile.h). */
#include "core/profile.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

_Atomic int mcnn_prof_enabled;

/* One profiled model call at a time: the totals are plain globals, written by the runner, the
 * one thread that took `taken`.  Model calls on other threads meanwhile (sessions) are not
 * profiled. */
static double totals[MCNN_PROF_COUNT], run_start;
static _Atomic int env_read, taken;
static _Thread_local int is_runner, depth, run_depth; /* the runner; nesting of ops, of runs */

static const char *const names[MCNN_PROF_COUNT] = {
    "conv", "bn", "relu", "pool", "add", "linear", "attention", "layernorm", "act", "softmax",
    "embed"};

double mcnn_prof_enter(void)
{
    if (!is_runner) return 0.0;
    return depth++ ? -1.0 : mcnn_seconds();
}

void mcnn_prof_leave(mcnn_prof_family f, double start)
{
    depth--;
    if (start > 0.0) totals[f] += mcnn_seconds() - start;
}

void mcnn_prof_run_begin(void)
{
    if (!atomic_load(&env_read)) {
        const char *env = getenv("MCNN_PROFILE");
        atomic_store(&mcnn_prof_enabled, env && env[0] && env[0] != '0');
        atomic_store(&env_read, 1);
    }
    if (!atomic_load(&mcnn_prof_enabled) || run_depth++) return;
    int free_ = 0;
    if (!atomic_compare_exchange_strong(&taken, &free_, 1)) return;
    is_runner = 1;
    for (int f = 0; f < MCNN_PROF_COUNT; f++) totals[f] = 0.0;
    run_start = mcnn_seconds();
}

void mcnn_prof_run_end(const char *what)
{
    if (!atomic_load(&mcnn_prof_enabled) || --run_depth || !is_runner) return;
    const double total = mcnn_seconds() - run_start;
    double timed = 0.0;
    fprintf(stderr, "mcnn profile %s: %.1f ms =", what, 1e3 * total);
    for (int f = 0; f < MCNN_PROF_COUNT; f++) {
        timed += totals[f];
        if (totals[f] > 0.0) fprintf(stderr, " %s %.1f", names[f], 1e3 * totals[f]);
    }
    fprintf(stderr, " other %.1f\n", 1e3 * (total - timed));
    is_runner = 0;
    atomic_store(&taken, 0);
}
