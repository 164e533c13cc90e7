/* A gradient checker: compare a hand-written backward with central finite differences.
 *
 * You give a function f of a parameter vector x (n floats) that returns a scalar loss, and the
 * gradient your backward computed at x.  For each checked element i the checker sets
 *   x[i] = x0 + h  and  x[i] = x0 - h   (as floats: the step actually taken is used),
 * calls f twice, forms  numeric = (f(x0 + h) - f(x0 - h)) / (2h)  in double, puts x[i] back,
 * and reports the worst relative error over the elements with where it is:
 *   error(i) = |analytic - numeric| / max(|analytic|, |numeric|, floor)
 * floor stops gradients that are ~0 on both sides from producing huge ratios of rounding noise.
 *
 * A trick from llm.c makes any op a scalar function: L = sum(y · w) for a fixed random w, so
 * dL/dy = w is the upstream gradient you hand your backward.  docs/exercise-gradcheck.md walks
 * through writing an op's backward and checking it with this.
 *
 * f is called 2·(checked elements) times: for a big model set stride to check a sample.  x is
 * modified during the check and restored exactly; f must not keep pointers to it.
 * Thread safety: none needed beyond f's own (the checker keeps no state). */
#ifndef MCNN_GRADCHECK_H
#define MCNN_GRADCHECK_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The loss at the current x (n floats); ctx is passed through untouched. */
typedef double (*mcnn_gradcheck_fn)(const float *x, void *ctx);

typedef struct mcnn_gradcheck_options {
    double step;   /* h; 0: 1e-3 (float inputs: smaller steps drown in rounding)            */
    double floor;  /* smallest denominator of the relative error; 0: 1e-4                   */
    size_t stride; /* check elements 0, stride, 2·stride, ...; 0: every element              */
} mcnn_gradcheck_options;

typedef struct mcnn_gradcheck_report {
    double max_error;  /* the worst relative error, as defined above                         */
    size_t worst;      /* the element where it occurred                                      */
    double analytic;   /* grad[worst]                                                        */
    double numeric;    /* the finite difference at worst                                     */
    size_t checked;    /* how many elements were checked                                     */
} mcnn_gradcheck_report;

/* Check grad (n) against finite differences of f at x (n).  opt may be NULL (the defaults).
 * Fails (MCNN_ERR_ARG) on NULL pointers or n = 0, and (MCNN_ERR_FORMAT) when f returns a NaN
 * or an infinity, naming the element. */
MCNN_API mcnn_status mcnn_gradcheck(mcnn_gradcheck_report *report, mcnn_gradcheck_fn f,
                                    void *ctx, float *x, const float *grad, size_t n,
                                    const mcnn_gradcheck_options *opt);

#ifdef __cplusplus
}
#endif
#endif
