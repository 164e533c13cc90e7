/* Learning rate as a pure function of the step (0 = the first optimizer step).
 *   warm-up, step < W:  lr = base · (f0 + (1 - f0) · step / W)
 *   then s = step - W:
 *     CONSTANT:  base
 *     COSINE:    min + (base - min) · (1 + cos(π · s / (T - W))) / 2,  min once s ≥ T - W
 *     STEP:      base · gamma ^ floor(s / step_size)
 * Reference: torch.optim.lr_scheduler.SequentialLR(LinearLR(start_factor=f0, total_iters=W),
 * CosineAnnealingLR(T_max=T-W, eta_min=min) or StepLR(step_size, gamma), milestones=[W]),
 * reading the lr after `step` calls of scheduler.step().  Unlike CosineAnnealingLR, which
 * climbs back up after T_max, the lr here stays at min after T. */
#include "mcnn/optim.h"

#include <math.h>

double mcnn_lr_schedule_at(const mcnn_lr_schedule *sc, int64_t step)
{
    const double pi = 3.14159265358979323846, base = sc->base_lr;
    const int64_t W = sc->warmup_steps;
    if (step < W) return base * (sc->warmup_start + (1.0 - sc->warmup_start) * step / W);
    int64_t s = step - W;
    if (sc->kind == MCNN_LR_COSINE) {
        int64_t span = sc->total_steps - W;
        if (s >= span) return sc->min_lr;
        return sc->min_lr + (base - sc->min_lr) * (1.0 + cos(pi * s / span)) / 2.0;
    }
    if (sc->kind == MCNN_LR_STEP && sc->step_size > 0)
        return base * pow(sc->gamma, (double)(s / sc->step_size));
    return base;
}
