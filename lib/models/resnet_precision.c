/* ResNet inference precision: every residual block's convolutions and the fc head packed once
 * into the model (include/mcnn/resnet.h, docs/precision.md), and released for inference only.
 * The stem conv stays fp32. */
#include "internal.h"
#include "resnet_internal.h"

#include <stdlib.h>

static void free_packed(resnet_packed *pk, int nblocks)
{
    if (!pk) return;
    for (int b = 0; pk->blocks && b < nblocks; b++) {
        mcnn_packed_b_free((mcnn_packed_b *)pk->blocks[b].conv1_pk);
        mcnn_packed_b_free((mcnn_packed_b *)pk->blocks[b].conv2_pk);
        mcnn_packed_b_free((mcnn_packed_b *)pk->blocks[b].conv3_pk);
        mcnn_packed_b_free((mcnn_packed_b *)pk->blocks[b].down_pk);
    }
    mcnn_packed_b_free(pk->fc);
    free(pk->blocks);
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

/* The inference copy (*out: w.blocks and w.fc_w with empty packed slots) and every conv of
 * the blocks and the fc in list; the copy's views are what the list releases, so training
 * keeps its own. */
static mcnn_status plan_packing(mcnn_resnet *m, resnet_packed **out, mcnn_pack_list *list)
{
    const resblock_kind kind = m->cfg.block == MCNN_RESNET_BOTTLENECK ? RESBLOCK_BOTTLENECK
                                                                      : RESBLOCK_BASIC;
    resnet_packed *pk = calloc(1, sizeof *pk);
    *out = NULL;
    if (pk) pk->blocks = calloc((size_t)m->nblocks, sizeof *pk->blocks);
    if (!pk || !pk->blocks) {
        free(pk);
        return mcnn_set_error(MCNN_ERR_NOMEM, "resnet: packing %d blocks", m->nblocks);
    }
    mcnn_status s = MCNN_OK;
    for (int b = 0; b < m->nblocks && s == MCNN_OK; b++) {
        const resnet_block_info *in = &m->info[b];
        resblock_cfg c; /* the shapes of the weights do not depend on the input's size */
        mcnn_resblock_cfg_init(&c, kind, 1, in->IC, 8, 8, in->width, in->stride, 0.0f, 0.0f);
        resblock_params *r = &pk->blocks[b];
        *r = m->w.blocks[b];
        s = add_conv(list, &r->conv1_w, &r->conv1_pk, &c.conv1);
        if (s == MCNN_OK) s = add_conv(list, &r->conv2_w, &r->conv2_pk, &c.conv2);
        if (s == MCNN_OK && kind == RESBLOCK_BOTTLENECK)
            s = add_conv(list, &r->conv3_w, &r->conv3_pk, &c.conv3);
        if (s == MCNN_OK && c.downsample)
            s = add_conv(list, &r->down_w, &r->down_pk, &c.down);
    }
    /* the fc (K, F): 8 % of ResNet-50's weights, so inference-only memory reaches the issue's
     * targets only with it packed (docs/precision.md "Memory") */
    pk->fc_w = m->w.fc_w;
    if (s == MCNN_OK)
        s = mcnn_pack_list_add(list, &pk->fc_w, m->cfg.num_classes, m->features, &pk->fc);
    if (s != MCNN_OK) {
        free_packed(pk, m->nblocks);
        return s;
    }
    *out = pk;
    return MCNN_OK;
}

mcnn_status mcnn_resnet_set_precision(mcnn_resnet *m, mcnn_precision p)
{
    if (m->inference_only)
        return p == m->precision ? MCNN_OK : mcnn_inference_only_error("resnet_set_precision");
    resnet_packed *pk;
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
