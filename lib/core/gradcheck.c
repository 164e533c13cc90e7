/* mcnn_gradcheck: central finite differences against a given gradient (include/mcnn/gradcheck.h). */
#include "internal.h"

#include <math.h>

mcnn_status mcnn_gradcheck(mcnn_gradcheck_report *report, mcnn_gradcheck_fn f, void *ctx,
                           float *x, const float *grad, size_t n,
                           const mcnn_gradcheck_options *opt)
{
    if (!report || !f || !x || !grad || n == 0)
        return mcnn_set_error(MCNN_ERR_ARG, "gradcheck: %s", n == 0 ? "an empty vector"
                                                                    : "a NULL argument");
    const double h = opt && opt->step > 0 ? opt->step : 1e-3;
    const double floor = opt && opt->floor > 0 ? opt->floor : 1e-4;
    const size_t stride = opt && opt->stride > 0 ? opt->stride : 1;
    *report = (mcnn_gradcheck_report){0};
    for (size_t i = 0; i < n; i += stride) {
        const float keep = x[i];
        const float up = (float)(keep + h), down = (float)(keep - h);
        x[i] = up;
        const double f_up = f(x, ctx);
        x[i] = down;
        const double f_down = f(x, ctx);
        x[i] = keep;
        if (!isfinite(f_up) || !isfinite(f_down))
            return mcnn_set_error(MCNN_ERR_FORMAT, "gradcheck: the function is not finite "
                                  "with element %zu moved by ±%g", i, h);
        /* the step the floats actually took, not the h asked for */
        const double numeric = (f_up - f_down) / ((double)up - (double)down);
        const double analytic = grad[i];
        double scale = fmax(fabs(analytic), fabs(numeric));
        if (scale < floor) scale = floor;
        const double error = fabs(analytic - numeric) / scale;
        if (report->checked == 0 || error > report->max_error || isnan(error)) {
            report->max_error = error;
            report->worst = i;
            report->analytic = analytic;
            report->numeric = numeric;
        }
        report->checked++;
    }
    return MCNN_OK;
}
