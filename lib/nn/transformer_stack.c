/* The stack of transformer blocks: carving, the block loop forward and backward.  Shapes and
 * the activation lifetimes are in transformer_stack.h. */
#include "transformer_stack.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

mcnn_status mcnn_stack_acts_init(stack_acts *a, const stack_cfg *cfg)
{
    const size_t L = (size_t)cfg->layers;
    memset(a, 0, sizeof *a);
    a->blocks = calloc(L, sizeof *a->blocks);
    a->out = calloc(L < 2 ? 2 : L, sizeof *a->out);
    if (!a->blocks || !a->out) {
        mcnn_stack_acts_free(a);
        return mcnn_set_error(MCNN_ERR_NOMEM, "transformer: out of memory");
    }
    return MCNN_OK;
}

void mcnn_stack_acts_free(stack_acts *a)
{
    free(a->blocks);
    free(a->out);
    memset(a, 0, sizeof *a);
}

void mcnn_stack_acts_carve(stack_acts *a, mcnn_carver *c, const stack_cfg *cfg, int B, int T,
                           int train)
{
    const size_t BTC = (size_t)B * T * cfg->block.C;
    const int nblocks = train ? cfg->layers : 1, nout = train ? cfg->layers : 2;
    a->train = train;
    for (int l = 0; l < nblocks; l++) mcnn_block_acts_carve(&a->blocks[l], c, &cfg->block, B, T);
    for (int l = 0; l < nout; l++) a->out[l] = mcnn_carve(c, BTC);
    memset(&a->dblock, 0, sizeof a->dblock);
    a->dx_a = a->dx_b = NULL;
    if (train) {
        mcnn_block_acts_carve(&a->dblock, c, &cfg->block, B, T);
        a->dx_a = mcnn_carve(c, BTC);
        a->dx_b = mcnn_carve(c, BTC);
    }
}

const float *mcnn_stack_forward(const stack_acts *a, const block_grads *w, const block_packed *pk,
                                const stack_cfg *cfg, const float *x, int b0, int n, int T)
{
    const size_t offset = (size_t)b0 * T * cfg->block.C;
    const float *in = x;
    for (int l = 0; l < cfg->layers; l++) {
        block_acts acts = mcnn_block_acts_images(&a->blocks[a->train ? l : 0], &cfg->block, T, b0);
        float *out = (a->train ? a->out[l] : a->out[l % 2]) + offset;
        block_params p = mcnn_block_params_view(&w[l]);
        p.pk = pk && !a->train ? &pk[l] : NULL;
        mcnn_block_forward(out, &acts, in, &p, &cfg->block, n, T);
        in = out;
    }
    return in;
}

mcnn_status mcnn_stack_pack_plan(block_packed **out, mcnn_pack_list *list, block_grads *w,
                                 const stack_cfg *cfg)
{
    const int C = cfg->block.C, F = cfg->block.F;
    block_packed *pk = calloc((size_t)cfg->layers, sizeof *pk);
    *out = NULL;
    if (!pk) return mcnn_set_error(MCNN_ERR_NOMEM, "transformer: packing %d blocks", cfg->layers);
    mcnn_status s = MCNN_OK;
    for (int l = 0; l < cfg->layers && s == MCNN_OK; l++) {
        s = mcnn_pack_list_add(list, &w[l].qkv_w, 3 * C, C, &pk[l].qkv);
        if (s == MCNN_OK) s = mcnn_pack_list_add(list, &w[l].proj_w, C, C, &pk[l].proj);
        if (s == MCNN_OK) s = mcnn_pack_list_add(list, &w[l].fc1_w, F, C, &pk[l].fc1);
        if (s == MCNN_OK) s = mcnn_pack_list_add(list, &w[l].fc2_w, C, F, &pk[l].fc2);
    }
    if (s != MCNN_OK) {
        free(pk);
        return s;
    }
    *out = pk;
    return MCNN_OK;
}

void mcnn_stack_pack_free(block_packed *pk, const stack_cfg *cfg)
{
    if (!pk) return;
    for (int l = 0; l < cfg->layers; l++) {
        mcnn_packed_b_free(pk[l].qkv);
        mcnn_packed_b_free(pk[l].proj);
        mcnn_packed_b_free(pk[l].fc1);
        mcnn_packed_b_free(pk[l].fc2);
    }
    free(pk);
}

size_t mcnn_stack_pack_bytes(const block_packed *pk, const stack_cfg *cfg)
{
    size_t n = 0;
    for (int l = 0; pk && l < cfg->layers; l++)
        n += mcnn_packed_b_bytes(pk[l].qkv) + mcnn_packed_b_bytes(pk[l].proj) +
             mcnn_packed_b_bytes(pk[l].fc1) + mcnn_packed_b_bytes(pk[l].fc2);
    return n;
}

const float *mcnn_stack_output(const stack_acts *a, const stack_cfg *cfg, int l)
{
    if (!a->train || !a->out || l < 0 || l >= cfg->layers) return NULL;
    return a->out[l];
}

float *mcnn_stack_dout(stack_acts *a, const stack_cfg *cfg, int B, int T)
{
    memset(a->dx_a, 0, (size_t)B * T * cfg->block.C * sizeof(float));
    return a->dx_a;
}

const float *mcnn_stack_backward(stack_acts *a, const block_grads *g, const block_grads *w,
                                 const stack_cfg *cfg, const float *x, int B, int T)
{
    const size_t BTC = (size_t)B * T * cfg->block.C;
    float *dout = a->dx_a, *dx = a->dx_b;
    for (int l = cfg->layers - 1; l >= 0; l--) {
        const float *in = l ? a->out[l - 1] : x;
        block_params p = mcnn_block_params_view(&w[l]);
        memset(dx, 0, BTC * sizeof(float));
        mcnn_block_backward(dx, &g[l], &a->dblock, dout, in, &a->blocks[l], &p, &cfg->block, B, T);
        float *t = dout;
        dout = dx, dx = t;
    }
    return dout;
}
