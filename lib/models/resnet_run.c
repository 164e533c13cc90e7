/* ResNet forward and backward.  The forward numbers its steps 1..7, the backward undoes them 7..1.
 *   images (N, IC, H, W)
 *   1 conv1             -> c0 (N, S, H1, W1)    7×7/2 (ImageNet stem) or 3×3/1 (small stem)
 *   2 bn1               -> a0
 *   3 relu, in place    -> a0
 *   4 max pool 3×3/2    -> p0 (N, S, H0, W0)    ImageNet stem only
 *   5 the blocks        -> out[last] (N, F, h, w)
 *   6 global avg pool   -> feat (N, F)
 *   7 fc                -> logits (N, K)   packed (mcnn_resnet_set_precision) in EVAL
 * Memory: one arena per (N, H, W, keep), carved by carve_acts below (size, then point). */
#include "internal.h"
#include "core/profile.h"
#include "../ops/conv2d_lanes.h"
#include "resnet_internal.h"
#include "session_internal.h"

#include <stdlib.h>
#include <string.h>

static size_t max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

static resblock_bn bn_mode(mcnn_resnet_mode mode)
{
    return mode == MCNN_RESNET_TRAIN ? RESBLOCK_BN_BATCH : RESBLOCK_BN_RUNNING;
}

/* Block b's output size in floats. */
static size_t out_floats(const resblock_cfg *c)
{
    return (size_t)c->N * c->OC * c->OH * c->OW;
}

/* The shapes of every layer for input (N, H, W): the stem's, then each block's. */
static void plan_shapes(const mcnn_resnet *m, resnet_acts *a, int N, int H, int W)
{
    const mcnn_resnet_config *c = &m->cfg;
    const int imagenet = c->stem == MCNN_RESNET_STEM_IMAGENET, K = imagenet ? 7 : 3;
    a->stem_conv = (mcnn_conv2d_shape){.N = N, .IC = c->in_channels, .H = H, .W = W,
                                       .OC = c->stem_width, .KH = K, .KW = K,
                                       .stride_h = imagenet ? 2 : 1, .stride_w = imagenet ? 2 : 1,
                                       .pad_h = K / 2, .pad_w = K / 2, .dil_h = 1, .dil_w = 1,
                                       .groups = 1};
    a->H1 = a->H0 = mcnn_conv2d_out_h(&a->stem_conv);
    a->W1 = a->W0 = mcnn_conv2d_out_w(&a->stem_conv);
    if (imagenet) {
        a->pool = (mcnn_pool2d_shape){.N = N, .C = c->stem_width, .H = a->H1, .W = a->W1,
                                      .KH = 3, .KW = 3, .stride_h = 2, .stride_w = 2,
                                      .pad_h = 1, .pad_w = 1};
        a->H0 = mcnn_pool2d_out_h(&a->pool), a->W0 = mcnn_pool2d_out_w(&a->pool);
    }
    int h = a->H0, w = a->W0;
    const resblock_kind kind = c->block == MCNN_RESNET_BOTTLENECK ? RESBLOCK_BOTTLENECK
                                                                  : RESBLOCK_BASIC;
    for (int b = 0; b < m->nblocks; b++) {
        const resnet_block_info *in = &m->info[b];
        mcnn_resblock_cfg_init(&a->cfgs[b], kind, N, in->IC, h, w, in->width, in->stride,
                               c->bn_eps, c->bn_momentum);
        h = a->cfgs[b].OH, w = a->cfgs[b].OW;
    }
}

/* The stem conv and block b at n images instead of all N (a lane's share of the batch). */
static mcnn_conv2d_shape stem_at(const resnet_acts *a, int n)
{
    mcnn_conv2d_shape s = a->stem_conv;
    s.N = n;
    return s;
}

static resblock_cfg block_at(const resnet_acts *a, int b, int n)
{
    const resblock_cfg *c = &a->cfgs[b];
    if (n == c->N) return *c;
    resblock_cfg r;
    mcnn_resblock_cfg_init(&r, c->kind, n, c->IC, c->H, c->W, c->width, c->stride, c->eps,
                           c->momentum);
    return r;
}

/* Carve one lane for n images; keep: every block's activations. */
static void carve_lane(resnet_lane *l, mcnn_carver *cv, const mcnn_resnet *m,
                       const resnet_acts *a, int n, int keep)
{
    const mcnn_resnet_config *c = &m->cfg;
    const int nb = m->nblocks;
    const mcnn_conv2d_shape stem_conv = stem_at(a, n);
    const size_t stem = (size_t)n * c->stem_width * a->H1 * a->W1;
    const size_t pooled = (size_t)n * c->stem_width * a->H0 * a->W0;
    size_t ws = mcnn_conv2d_lanes_workspace_floats(&stem_conv, a->conv_lanes), outmax = 0;
    resblock_sizes fwd = {0};
    for (int b = 0; b < nb; b++) {
        const resblock_cfg cb = block_at(a, b, n);
        ws = max_size(ws, mcnn_resblock_workspace_floats(&cb));
        outmax = max_size(outmax, out_floats(&cb));
        resblock_sizes s = mcnn_resblock_sizes(&cb, 0);
        mcnn_resblock_sizes_max(&fwd, &s);
    }
    l->N = n;
    l->workspace = mcnn_carve(cv, ws);
    /* Without backward, batch norm (element-wise, with constants) runs in place: a = c. */
    l->c0 = mcnn_carve(cv, stem);
    l->a0 = keep ? mcnn_carve(cv, stem) : l->c0;
    l->s0 = (bn_saved){mcnn_carve(cv, c->stem_width), mcnn_carve(cv, c->stem_width)};
    l->p0 = NULL, l->argmax = NULL;
    if (c->stem == MCNN_RESNET_STEM_IMAGENET) {
        l->p0 = mcnn_carve(cv, pooled);
        if (keep) /* for the backward; an eval max pool takes only the values */
            l->argmax = (int32_t *)mcnn_carve(cv, pooled); /* int32 and float: 4 bytes */
    }
    for (int b = 0; b < (keep ? nb : 1); b++) {
        resblock_sizes s = fwd;
        if (keep) {
            const resblock_cfg cb = block_at(a, b, n);
            s = mcnn_resblock_sizes(&cb, 0);
        } else {
            s.a1 = s.a2 = s.sc = 0;
        }
        mcnn_resblock_acts_carve(&l->blocks[b], cv, &s);
        if (!keep) {
            resblock_acts *r = &l->blocks[b];
            r->a1 = r->c1, r->a2 = r->c2, r->sc = r->cd;
        }
    }
    for (int b = 0; b < (keep ? nb : 2); b++)
        l->out[b] = mcnn_carve(cv, keep ? out_floats(&a->cfgs[b]) : outmax);
}

/* Carve every activation; with a counting carver this only sizes them. */
static void carve_acts(resnet_acts *a, mcnn_carver *cv, const mcnn_resnet *m)
{
    const mcnn_resnet_config *c = &m->cfg;
    const int N = a->N, keep = a->keep, nb = m->nblocks;
    a->images = keep ? mcnn_carve(cv, (size_t)N * c->in_channels * a->stem_conv.H * a->stem_conv.W)
                     : NULL;
    for (int t = 0; t < a->nlanes; t++)
        carve_lane(&a->lanes[t], cv, m, a, (N + a->nlanes - 1) / a->nlanes, keep);
    a->feat = mcnn_carve(cv, (size_t)N * m->features);
    memset(&a->dblock, 0, sizeof a->dblock);
    a->dx_a = a->dx_b = a->dfeat = NULL;
    if (keep) {
        resblock_sizes bwd = {0};
        size_t dmax = max_size((size_t)N * c->stem_width * a->H1 * a->W1,
                               (size_t)N * c->stem_width * a->H0 * a->W0);
        for (int b = 0; b < nb; b++) {
            resblock_sizes d = mcnn_resblock_sizes(&a->cfgs[b], 1);
            mcnn_resblock_sizes_max(&bwd, &d);
            dmax = max_size(dmax, out_floats(&a->cfgs[b]));
        }
        mcnn_resblock_acts_carve(&a->dblock, cv, &bwd);
        a->dx_a = mcnn_carve(cv, dmax);
        a->dx_b = mcnn_carve(cv, dmax);
        a->dfeat = mcnn_carve(cv, (size_t)N * m->features);
    }
}

void mcnn_resnet_acts_free(resnet_acts *a)
{
    mcnn_arena_free(&a->arena);
    if (a->lanes)
        for (int t = 0; t < a->nlanes; t++) {
            free(a->lanes[t].blocks);
            free(a->lanes[t].out);
        }
    free(a->lanes);
    free(a->cfgs);
    memset(a, 0, sizeof *a);
}

/* Size the arena for (N, H, W, keep) once.  A plan that keeps everything also serves an eval
 * forward of the same shape, so alternating training and validation does not re-plan. */
static mcnn_status plan(const mcnn_resnet *m, resnet_acts *a, int N, int H, int W, int keep)
{
    const int nlanes = keep ? 1 : mcnn_batch_lanes(N);
    if (a->arena.base && a->N == N && a->H == H && a->W == W &&
        (a->keep ? a->conv_lanes == mcnn_batch_lanes(N) : !keep && a->nlanes == nlanes))
        return MCNN_OK;
    mcnn_resnet_acts_free(a);
    const int nb = m->nblocks;
    a->cfgs = calloc((size_t)nb, sizeof *a->cfgs);
    a->lanes = calloc((size_t)nlanes, sizeof *a->lanes);
    int ok = a->cfgs && a->lanes;
    for (int t = 0; ok && t < nlanes; t++) {
        a->lanes[t].blocks = calloc((size_t)(keep ? nb : 1), sizeof *a->lanes[t].blocks);
        a->lanes[t].out = calloc((size_t)(keep ? nb : 2), sizeof *a->lanes[t].out);
        ok = a->lanes[t].blocks && a->lanes[t].out;
    }
    a->nlanes = nlanes; /* set before any failure, so that free releases every lane */
    if (!ok) {
        mcnn_resnet_acts_free(a);
        return mcnn_set_error(MCNN_ERR_NOMEM, "resnet: out of memory");
    }
    a->N = N, a->H = H, a->W = W, a->keep = keep;
    plan_shapes(m, a, N, H, W);
    /* Training: each conv splits its batch across the threads (lib/ops/conv2d_lanes.h). */
    a->conv_lanes = keep ? mcnn_batch_lanes(N) : 1;
    for (int b = 0; b < nb; b++) a->cfgs[b].lanes = a->conv_lanes;
    mcnn_carver count = {NULL, 0};
    carve_acts(a, &count, m);
    if (mcnn_arena_init(&a->arena, count.used * sizeof(float)) != MCNN_OK) {
        mcnn_resnet_acts_free(a);
        return mcnn_set_error(MCNN_ERR_NOMEM, "resnet: cannot allocate %.1f MB of activations "
                              "for batch %d at %dx%d", count.used * 4.0 / 1e6, N, H, W);
    }
    mcnn_carver fill = {(float *)a->arena.base, 0};
    carve_acts(a, &fill, m);
    return MCNN_OK;
}

/* Steps 1..6 for the n images of one lane: images (n, IC, H, W) -> feat (n, F). */
static void forward_lane(const mcnn_resnet *m, const resnet_acts *a, resnet_lane *l, float *feat,
                         const float *images, int n, mcnn_resnet_mode mode)
{
    const mcnn_resnet_config *c = &m->cfg;
    const resnet_tensors *w = &m->w;
    const int S = c->stem_width, F = m->features, kept = a->keep;
    const resblock_bn bn = bn_mode(mode);
    const mcnn_conv2d_shape stem = stem_at(a, n);
    mcnn_pool2d_shape pool = a->pool;
    pool.N = n;

    mcnn_conv2d_forward_lanes(l->c0, images, w->conv1_w, NULL, &stem, l->workspace,         /* 1 */
                              n == a->N ? a->conv_lanes : 1);
    mcnn_resnet_bn_forward(l->a0, l->s0, l->c0, NULL, 1, w->bn1, m->st.bn1, n, S,            /* 2 */
                           a->H1 * a->W1, c->bn_momentum, c->bn_eps, bn);           /* 3: relu */
    const float *x = l->a0;
    if (c->stem == MCNN_RESNET_STEM_IMAGENET) {                                              /* 4 */
        mcnn_maxpool2d_forward(l->p0, l->argmax, l->a0, &pool);
        x = l->p0;
    }
    int OHW = 0;
    for (int b = 0; b < m->nblocks; b++) {                                                   /* 5 */
        const resblock_cfg cb = block_at(a, b, n);
        resblock_acts *acts = kept ? &l->blocks[b] : &l->blocks[0];
        float *out = kept ? l->out[b] : l->out[b % 2];
        /* inference multiplies by the convs packed once, when the precision was set */
        const resblock_params *p = m->packed && mode == MCNN_RESNET_EVAL ? &m->packed->blocks[b]
                                                                         : &w->blocks[b];
        if (c->block == MCNN_RESNET_BOTTLENECK)
            mcnn_bottleneck_forward(out, acts, x, p, &m->st.blocks[b], &cb, bn, l->workspace);
        else
            mcnn_basic_block_forward(out, acts, x, p, &m->st.blocks[b], &cb, bn, l->workspace);
        x = out;
        OHW = cb.OH * cb.OW;
    }
    mcnn_global_avgpool_forward(feat, x, n, F, OHW);                                         /* 6 */
}

typedef struct resnet_lane_job {
    const mcnn_resnet *m;
    resnet_acts *a;
    const float *images;
    mcnn_resnet_mode mode;
} resnet_lane_job;

static void run_lane(void *ctx, int lane, int n0, int n)
{
    const resnet_lane_job *job = ctx;
    const size_t image = (size_t)job->m->cfg.in_channels * job->a->H * job->a->W;
    forward_lane(job->m, job->a, &job->a->lanes[lane], job->a->feat + (size_t)n0 * job->m->features,
                 job->images + n0 * image, n, job->mode);
}

mcnn_status mcnn_resnet_run_forward(const mcnn_resnet *m, resnet_acts *a, float *logits,
                                    const float *images, int N, int H, int W,
                                    mcnn_resnet_mode mode)
{
    if (!images || !logits)
        return mcnn_set_error(MCNN_ERR_ARG, "resnet_forward: a NULL buffer");
    if (N <= 0 || H <= 0 || W <= 0 || N > 1 << 16 || H > 1 << 14 || W > 1 << 14)
        return mcnn_set_error(MCNN_ERR_ARG, "resnet_forward: batch %d of %dx%d images", N, H, W);
    if (mode != MCNN_RESNET_EVAL && mode != MCNN_RESNET_TRAIN && mode != MCNN_RESNET_FROZEN_BN)
        return mcnn_set_error(MCNN_ERR_ARG, "resnet_forward: unknown mode %d", (int)mode);
    MCNN_TRY(plan(m, a, N, H, W, mode != MCNN_RESNET_EVAL));
    const mcnn_resnet_config *c = &m->cfg;
    const resnet_tensors *w = &m->w;
    const resblock_cfg *last = &a->cfgs[m->nblocks - 1];
    if (mode == MCNN_RESNET_TRAIN && (size_t)N * last->OH * last->OW < 2)
        return mcnn_set_error(MCNN_ERR_ARG, "resnet_forward: training batch norm needs more than "
                              "one value per channel, and batch %d at %dx%d leaves %dx%d at the "
                              "last stage", N, H, W, last->OH, last->OW);
    const int F = m->features, K = c->num_classes;
    a->ran = 0;
    a->mode = mode;
    mcnn_prof_run_begin();
    if (a->keep)
        memcpy(a->images, images, (size_t)N * c->in_channels * H * W * sizeof(float));

    /* Eval, at least one image per thread: each thread takes its share of the images through
     * the whole network with single-threaded ops (inside a parallel region the ops' own
     * regions get one thread and GEMM runs serially), so the threads meet once instead of at
     * every op.  Training: one lane, whose convs split the batch across the threads. */
    resnet_lane_job job = {m, a, images, mode};
    mcnn_lanes_run(a->nlanes, N, run_lane, &job);                                            /* 1-6 */
    /* inference: the fc packed with the convs (its fp32 view NULL when released); training,
     * or no precision set: the fp32 weights */
    const resnet_packed *pk = mode == MCNN_RESNET_EVAL ? m->packed : NULL;
    mcnn_linear_forward_packed(logits, a->feat, pk ? pk->fc_w : w->fc_w, pk ? pk->fc : NULL,  /* 7 */
                               w->fc_b, N, F, K);
    a->ran = 1;
    mcnn_prof_run_end("resnet forward");
    return MCNN_OK;
}

/* Swap the ping-pong gradient buffers and zero the one about to be written (n floats). */
static float *next_grad(float **cur, float **other, size_t n)
{
    float *t = *cur;
    *cur = *other, *other = t;
    mcnn_zero_floats(*cur, n);
    return *cur;
}

mcnn_status mcnn_resnet_forward(mcnn_resnet *m, float *logits, const float *images, int N, int H,
                                int W, mcnn_resnet_mode mode)
{
    if (mode != MCNN_RESNET_EVAL && m->inference_only)
        return mcnn_inference_only_error("resnet_forward (mode TRAIN or FROZEN_BN)");
    MCNN_TRY(mcnn_resnet_run_forward(m, &m->acts, logits, images, N, H, W, mode));
    if (mode == MCNN_RESNET_TRAIN) m->num_batches_tracked++;
    return MCNN_OK;
}

mcnn_status mcnn_resnet_backward(mcnn_resnet *m, const float *dlogits)
{
    resnet_acts *a = &m->acts;
    if (m->inference_only) return mcnn_inference_only_error("resnet_backward");
    if (!a->ran || a->mode == MCNN_RESNET_EVAL)
        return mcnn_set_error(MCNN_ERR_ARG, "resnet_backward: no forward pass in mode TRAIN or "
                              "FROZEN_BN to go back through");
    const mcnn_resnet_config *c = &m->cfg;
    const resnet_tensors *w = &m->w, *g = &m->g;
    const resblock_bn bn = bn_mode(a->mode);
    const int N = a->N, S = c->stem_width, F = m->features, K = c->num_classes;
    const resblock_cfg *last = &a->cfgs[m->nblocks - 1];
    resnet_lane *l = &a->lanes[0]; /* a training plan has one lane, over the whole batch */
    mcnn_prof_run_begin();

    memset(a->dfeat, 0, (size_t)N * F * sizeof(float));
    mcnn_linear_backward(a->dfeat, g->fc_w, g->fc_b, dlogits, a->feat, w->fc_w, N, F, K);  /* 7 */
    /* d holds the gradient of the current layer's output, dfree the other buffer */
    float *d = a->dx_b, *dfree = a->dx_a;
    float *dout = next_grad(&d, &dfree, out_floats(last));
    mcnn_global_avgpool_backward(dout, a->dfeat, N, F, last->OH * last->OW);                 /* 6 */
    for (int b = m->nblocks - 1; b >= 0; b--) {                                              /* 5 */
        const resblock_cfg *cb = &a->cfgs[b];
        const float *x = b ? l->out[b - 1] : c->stem == MCNN_RESNET_STEM_IMAGENET ? l->p0 : l->a0;
        float *dx = next_grad(&d, &dfree, (size_t)cb->N * cb->IC * cb->H * cb->W);
        if (c->block == MCNN_RESNET_BOTTLENECK)
            mcnn_bottleneck_backward(dx, &g->blocks[b], &a->dblock, dout, l->out[b], x,
                                     &l->blocks[b], &w->blocks[b], &m->st.blocks[b], cb, bn,
                                     l->workspace);
        else
            mcnn_basic_block_backward(dx, &g->blocks[b], &a->dblock, dout, l->out[b], x,
                                      &l->blocks[b], &w->blocks[b], &m->st.blocks[b], cb, bn,
                                      l->workspace);
        dout = dx;
    }
    const size_t n0 = (size_t)N * S * a->H1 * a->W1;
    float *da0 = dout;                            /* small stem: the blocks' dx is d a0 */
    if (c->stem == MCNN_RESNET_STEM_IMAGENET) {                                              /* 4 */
        da0 = next_grad(&d, &dfree, n0);
        mcnn_maxpool2d_backward(da0, dout, l->argmax, &a->pool);
    }
    float *db0 = next_grad(&d, &dfree, n0);       /* gradient of bn1's output               */
    mcnn_relu_backward(db0, da0, l->a0, n0);                                                 /* 3 */
    float *dc0 = next_grad(&d, &dfree, n0);
    mcnn_resnet_bn_backward(dc0, g->bn1, db0, l->c0, w->bn1, l->s0, m->st.bn1, N, S,         /* 2 */
                            a->H1 * a->W1, c->bn_eps, bn);
    mcnn_conv2d_backward_lanes(NULL, g->conv1_w, NULL, dc0, a->images, w->conv1_w,           /* 1 */
                               &a->stem_conv, l->workspace, a->conv_lanes);
    mcnn_prof_run_end("resnet backward");
    return MCNN_OK;
}

mcnn_status mcnn_resnet_backward_head(mcnn_resnet *m, const float *dlogits)
{
    const resnet_acts *a = &m->acts;
    if (m->inference_only) return mcnn_inference_only_error("resnet_backward_head");
    if (!a->ran)
        return mcnn_set_error(MCNN_ERR_ARG, "resnet_backward_head: no forward pass yet");
    mcnn_linear_backward(NULL, m->g.fc_w, m->g.fc_b, dlogits, a->feat, m->w.fc_w, a->N,
                         m->features, m->cfg.num_classes);
    return MCNN_OK;
}

const float *mcnn_resnet_features(const mcnn_resnet *m)
{
    return m->acts.ran ? m->acts.feat : NULL;
}

const float *mcnn_resnet_stage_output(const mcnn_resnet *m, int s, int *C, int *H, int *W)
{
    const resnet_acts *a = &m->acts;
    if (!a->ran || a->mode == MCNN_RESNET_EVAL || s < -1 || s >= m->cfg.stages) return NULL;
    if (s == -1) {
        if (C) *C = m->cfg.stem_width;
        if (H) *H = a->H0;
        if (W) *W = a->W0;
        return m->cfg.stem == MCNN_RESNET_STEM_IMAGENET ? a->lanes[0].p0 : a->lanes[0].a0;
    }
    int b = -1;
    for (int i = 0; i <= s; i++) b += m->cfg.blocks[i]; /* the stage's last block */
    if (C) *C = a->cfgs[b].OC;
    if (H) *H = a->cfgs[b].OH;
    if (W) *W = a->cfgs[b].OW;
    return a->lanes[0].out[b];
}

size_t mcnn_resnet_activation_bytes(const mcnn_resnet *m)
{
    return m->acts.arena.size;
}

/* ---- sessions ------------------------------------------------------------------------------ */
static void release_acts(void *a)
{
    mcnn_resnet_acts_free(a);
}

mcnn_status mcnn_resnet_session_create(mcnn_session **out, const mcnn_resnet *m)
{
    /* zeroed acts are an empty plan: the first forward sizes them */
    return mcnn_session_create(out, SESSION_RESNET, m, sizeof(resnet_acts), NULL, release_acts);
}

mcnn_status mcnn_resnet_session_forward(mcnn_session *s, float *logits, const float *images, int N,
                                        int H, int W)
{
    MCNN_TRY(mcnn_session_check(s, SESSION_RESNET, "resnet_session_forward"));
    return mcnn_resnet_run_forward(s->model, s->acts, logits, images, N, H, W, MCNN_RESNET_EVAL);
}

const float *mcnn_resnet_session_features(const mcnn_session *s)
{
    if (!s || s->kind != SESSION_RESNET) return NULL;
    const resnet_acts *a = s->acts;
    return a->ran ? a->feat : NULL;
}
