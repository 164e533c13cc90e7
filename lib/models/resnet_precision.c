/* ResNet inference precision: every residual block's convolutions packed once into the model
 * (include/mcnn/resnet.h, docs/precision.md).  The stem conv and the fc head stay fp32. */
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
    m->packed = NULL;
}

/* One conv's weight (OC, IC, KH, KW) as the matrix (OC, IC·KH·KW); NULL when absent. */
static mcnn_status pack_conv(const mcnn_packed_b **out, mcnn_precision p, const float *w,
                             const mcnn_conv2d_shape *s)
{
    const int K = s->IC * s->KH * s->KW;
    mcnn_packed_b *pk = NULL;
    *out = NULL;
    if (!w) return MCNN_OK;
    MCNN_TRY(mcnn_packed_b_create(&pk, p, w, s->OC, K, K));
    *out = pk;
    return MCNN_OK;
}

mcnn_status mcnn_resnet_set_precision(mcnn_resnet *m, mcnn_precision p)
{
    const resblock_kind kind = m->cfg.block == MCNN_RESNET_BOTTLENECK ? RESBLOCK_BOTTLENECK
                                                                      : RESBLOCK_BASIC;
    resblock_params *pk = calloc((size_t)m->nblocks, sizeof *pk);
    if (!pk) return mcnn_set_error(MCNN_ERR_NOMEM, "resnet: packing %d blocks", m->nblocks);
    mcnn_status s = MCNN_OK;
    for (int b = 0; b < m->nblocks && s == MCNN_OK; b++) {
        const resnet_block_info *in = &m->info[b];
        const resblock_params *w = &m->w.blocks[b];
        resblock_cfg c; /* the shapes of the weights do not depend on the input's size */
        mcnn_resblock_cfg_init(&c, kind, 1, in->IC, 8, 8, in->width, in->stride, 0.0f, 0.0f);
        pk[b] = *w;
        s = pack_conv(&pk[b].conv1_pk, p, w->conv1_w, &c.conv1);
        if (s == MCNN_OK) s = pack_conv(&pk[b].conv2_pk, p, w->conv2_w, &c.conv2);
        if (s == MCNN_OK && kind == RESBLOCK_BOTTLENECK)
            s = pack_conv(&pk[b].conv3_pk, p, w->conv3_w, &c.conv3);
        if (s == MCNN_OK && c.downsample) s = pack_conv(&pk[b].down_pk, p, w->down_w, &c.down);
    }
    if (s != MCNN_OK) {
        free_packed(pk, m->nblocks);
        return s;
    }
    mcnn_resnet_packed_free(m);
    m->packed = pk;
    m->precision = p;
    return MCNN_OK;
}

mcnn_precision mcnn_resnet_precision(const mcnn_resnet *m)
{
    return m->precision;
}
