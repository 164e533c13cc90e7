/* The optimizer's life cycle and its step: walk the parameter table, give each tensor its
 * weight decay (the table's decay flag picks weight_decay or 0, PyTorch's two parameter
 * groups), and apply the rule of sgd.c or adam.c to that tensor's floats. */
#include "internal.h"
#include "optim_internal.h"

#include <string.h>

mcnn_status mcnn_optim_init(mcnn_optim *opt, mcnn_optim_kind kind, size_t n)
{
    memset(opt, 0, sizeof *opt);
    if (kind != MCNN_OPTIM_SGD && kind != MCNN_OPTIM_ADAM && kind != MCNN_OPTIM_ADAMW)
        return mcnn_set_error(MCNN_ERR_ARG, "optim: unknown kind %d", (int)kind);
    opt->kind = kind;
    opt->lr = 1e-3;
    opt->weight_decay = kind == MCNN_OPTIM_ADAMW ? 1e-2 : 0.0;
    opt->beta1 = 0.9, opt->beta2 = 0.999, opt->eps = 1e-8;
    opt->n = n;
    opt->m = mcnn_calloc(n, sizeof(float));
    if (kind != MCNN_OPTIM_SGD) opt->v = mcnn_calloc(n, sizeof(float));
    if (!opt->m || (kind != MCNN_OPTIM_SGD && !opt->v)) {
        mcnn_optim_free(opt);
        return mcnn_set_error(MCNN_ERR_NOMEM, "optim: cannot allocate state for %zu floats", n);
    }
    return MCNN_OK;
}

void mcnn_optim_free(mcnn_optim *opt)
{
    mcnn_free(opt->m);
    mcnn_free(opt->v);
    opt->m = opt->v = NULL;
}

void mcnn_grad_zero(float *grads, size_t n)
{
    memset(grads, 0, n * sizeof(float));
}

/* One tensor: floats [offset, offset + numel) of every array. */
static void update(mcnn_optim *opt, float *params, const float *grads, size_t offset,
                   size_t numel, double wd)
{
    float *p = params + offset, *m = opt->m + offset;
    const float *g = grads + offset;
    if (opt->kind == MCNN_OPTIM_SGD)
        mcnn_sgd_update(p, g, m, numel, opt, wd);
    else
        mcnn_adam_update(p, g, m, opt->v + offset, numel, opt, wd);
}

mcnn_status mcnn_optim_step(mcnn_optim *opt, float *params, const float *grads,
                            const mcnn_param *table, int nparams)
{
    if (opt->kind != MCNN_OPTIM_SGD && opt->kind != MCNN_OPTIM_ADAM &&
        opt->kind != MCNN_OPTIM_ADAMW)
        return mcnn_set_error(MCNN_ERR_ARG, "optim: unknown kind %d", (int)opt->kind);
    if (!opt->m || (opt->kind != MCNN_OPTIM_SGD && !opt->v))
        return mcnn_set_error(MCNN_ERR_ARG, "optim: state not allocated (call mcnn_optim_init)");
    for (int i = 0; table && i < nparams; i++) /* check everything before changing anything */
        if (table[i].offset > opt->n || table[i].numel > opt->n - table[i].offset)
            return mcnn_set_error(MCNN_ERR_ARG,
                                  "optim: parameter '%s' covers floats [%zu, %zu) but the "
                                  "optimizer has %zu", table[i].name, table[i].offset,
                                  table[i].offset + table[i].numel, opt->n);
    opt->step++;
    if (!table) {
        update(opt, params, grads, 0, opt->n, opt->weight_decay);
        return MCNN_OK;
    }
    for (int i = 0; i < nparams; i++)
        update(opt, params, grads, table[i].offset, table[i].numel,
               table[i].decay ? opt->weight_decay : 0.0);
    return MCNN_OK;
}
