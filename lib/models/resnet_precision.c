/* ResNet inference precision: every residual block's convolutions packed once into the model
 * (include/mcnn/resnet.h, docs/precision.md), and released for inference only.  The stem conv
 * and the fc head stay fp32. */
#include "internal.h"
#include "resnet_internal.h"

#include <stdlib.h>

static void free_packed(resblock_params *pk, int nblocks)
{
    for (int b = 0; pk && b < nblocks; b++) {
        mcnn_packed_b_free((mcnn_packed_b *)pk[b].conv1_pk);
        mcnn_packed_b_free((mcnn_packed_b *)pk[b].conv2_pk);
        mcnn_packed_b_free((mcnn_packed_b *)pk[b].conv3_pk);
        mcnn_packed_b_free((mcnn_packed_b *)pk[b].down_pk);
    }
    free(pk);
}

void mcnn_resnet_packed_free(mcnn_resnet *m)
{
    free_packed(m->packed, m->nblocks);
    mcnn_pack_list_free(&m->packing);
    m->packed = NULL;
}

/* One conv's weight (OC, IC, KH, KW) as the matrix (OC, IC·KH·KW), when the block has it. */
static mcnn_status add_conv(mcnn_pack_list *list, float **w, const mcnn_packed_b **slot,
                            const mcnn_conv2d_shape *s)
{
    if (!*w) return MCNN_OK;
    return mcnn_pack_list_add(list, w, s->OC, s->IC * s->KH * s->KW, (mcnn_packed_b **)slot);
}

/* The inference copy of the blocks (*out: w.blocks with empty packed slots) and every conv of
 * theirs in list; the copy's views are what the list releases, so training keeps its own. */
static mcnn_status plan_packing(mcnn_resnet *m, resblock_params **out, mcnn_pack_list *list)
{
    const resblock_kind kind = m->cfg.block == MCNN_RESNET_BOTTLENECK ? RESBLOCK_BOTTLENECK
                                                                      : RESBLOCK_BASIC;
    resblock_params *pk = calloc((size_t)m->nblocks, sizeof *pk);
    *out = NULL;
    if (!pk) return mcnn_set_error(MCNN_ERR_NOMEM, "resnet: packing %d blocks", m->nblocks);
    mcnn_status s = MCNN_OK;
    for (int b = 0; b < m->nblocks && s == MCNN_OK; b++) {
        const resnet_block_info *in = &m->info[b];
        resblock_cfg c; /* the shapes of the weights do not depend on the input's size */
        mcnn_resblock_cfg_init(&c, kind, 1, in->IC, 8, 8, in->width, in->stride, 0.0f, 0.0f);
        pk[b] = m->w.blocks[b];
        s = add_conv(list, &pk[b].conv1_w, &pk[b].conv1_pk, &c.conv1);
        if (s == MCNN_OK) s = add_conv(list, &pk[b].conv2_w, &pk[b].conv2_pk, &c.conv2);
        if (s == MCNN_OK && kind == RESBLOCK_BOTTLENECK)
            s = add_conv(list, &pk[b].conv3_w, &pk[b].conv3_pk, &c.conv3);
        if (s == MCNN_OK && c.downsample)
            s = add_conv(list, &pk[b].down_w, &pk[b].down_pk, &c.down);
    }
    if (s != MCNN_OK) {
        free(pk);
        return s;
    }
    *out = pk;
    return MCNN_OK;
}

mcnn_status mcnn_resnet_set_precision(mcnn_resnet *m, mcnn_precision p)
{
    if (m->inference_only)
        return p == m->precision ? MCNN_OK : mcnn_inference_only_error("resnet_set_precision");
    resblock_params *pk;
    mcnn_pack_list list = {0};
    mcnn_status s = plan_packing(m, &pk, &list);
    if (s == MCNN_OK) s = mcnn_pack_list_pack(&list, p);
    if (s != MCNN_OK) {
        free_packed(pk, m->nblocks);
        mcnn_pack_list_free(&list);
        return s;
    }
    mcnn_resnet_packed_free(m);
    m->packed = pk, m->packing = list, m->precision = p;
    return MCNN_OK;
}

mcnn_status mcnn_resnet_plan_inference_only(mcnn_resnet *m, mcnn_precision p)
{
    mcnn_resnet_packed_free(m);
    MCNN_TRY(plan_packing(m, &m->packed, &m->packing));
    mcnn_pack_list_for_load(&m->packing, p, &m->precision, &m->inference_only);
    return MCNN_OK;
}

mcnn_status mcnn_resnet_release_training_weights(mcnn_resnet *m)
{
    return mcnn_pack_list_release_model(&m->packing, m->packed != NULL, &m->inference_only,
                                        "resnet");
}

mcnn_precision mcnn_resnet_precision(const mcnn_resnet *m)
{
    return m->precision;
}
