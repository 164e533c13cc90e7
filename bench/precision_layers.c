/* Per-layer error of bf16 and int8 inference against fp32 (docs/precision.md "Per layer").
 *
 *   build/bench/precision_layers [IMAGES [VIT_B16.safetensors [RESNET50.safetensors]]]
 *
 * Full-size ViT-B/16 and ResNet-50 (1000 classes; random weights, seed 1, unless a checkpoint
 * is given; "-" skips one) run the same IMAGES random images (default 2, normal, seed 7) at fp32
 * and at each reduced precision, keeping every layer's output, and print per layer:
 *   end-to-end   the model run in bf16 / int8 up to that layer: the errors of every layer
 *                before it are in it (they compound)
 *   alone        the layer fed with the fp32 model's input to it: its own error only
 * as the relative error ||y_p - y_32|| / ||y_32|| of the whole output and the smallest cosine
 * over its rows (a token's C values; a pixel's C channels; an image's features or logits).
 * Then what converting the layers that stay fp32 would cost: the patch embedding / stem conv and
 * the head packed in the same precision (mcnn_packed_b_create, the models' own packed GEMM and
 * packed conv), and the logits' error with them, against today's (ViT: the blocks converted;
 * ResNet: the blocks and the fc, which its set_precision packs too, so that its "+ the head"
 * row is today's).
 * The layers are run here step by step as lib/models/vit_run.c and resnet_run.c run them, with
 * the models' own activation buffers (planned by a training-mode / FROZEN_BN forward, which keeps
 * every output) and their packed matrices.  Hold the CPU lock:
 *   flock /tmp/mcnn-cpu.lock build/bench/precision_layers */
#include "mcnn.h"
#include "../lib/models/resnet_internal.h"
#include "../lib/models/vit_internal.h"
#include "../lib/ops/conv2d_lanes.h"
#include "../lib/ops/conv2d_packed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what)
{
    fprintf(stderr, "precision_layers: %s: %s\n", what, mcnn_last_error());
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "precision_layers: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* A model's outputs, layer by layer: layer i is outer x C x inner floats, whose rows (for the
 * cosine) are the C values at each (outer, inner). */
enum { MAX_LAYERS = 24 };
typedef struct layers {
    int n;
    const char *name[MAX_LAYERS];
    int outer[MAX_LAYERS], C[MAX_LAYERS], inner[MAX_LAYERS];
} layers;

static size_t layer_floats(const layers *s, int i)
{
    return (size_t)s->outer[i] * s->C[i] * s->inner[i];
}

static float **outputs_new(const layers *s)
{
    float **o = xmalloc(sizeof *o * s->n);
    for (int i = 0; i < s->n; i++) o[i] = xmalloc(layer_floats(s, i) * sizeof(float));
    return o;
}

static void outputs_free(float **o, const layers *s)
{
    for (int i = 0; o && i < s->n; i++) free(o[i]);
    free(o);
}

typedef struct error { double rel, min_cos; } error;

static error compare(const float *y, const float *ref, const layers *s, int i)
{
    const int C = s->C[i], inner = s->inner[i];
    double dd = 0, rr = 0, min_cos = 1;
    for (int o = 0; o < s->outer[i]; o++)
        for (int j = 0; j < inner; j++) {
            const size_t base = (size_t)o * C * inner + j;
            double yy = 0, ry = 0, r2 = 0;
            for (int c = 0; c < C; c++) {
                const double a = y[base + (size_t)c * inner], b = ref[base + (size_t)c * inner];
                dd += (a - b) * (a - b), yy += a * a, ry += a * b, r2 += b * b;
            }
            rr += r2;
            const double cs = yy > 0 && r2 > 0 ? ry / sqrt(yy * r2) : (yy == r2 ? 1 : 0);
            if (cs < min_cos) min_cos = cs;
        }
    return (error){rr > 0 ? sqrt(dd / rr) : sqrt(dd), min_cos};
}

/* The weights that stay fp32 in the models, packed here for the "what if" runs. */
typedef struct extra {
    mcnn_packed_b *first, *head; /* patch embedding or stem conv; head or fc (NULL: fp32) */
} extra;

static void extra_free(extra *e)
{
    mcnn_packed_b_free(e->first);
    mcnn_packed_b_free(e->head);
}

/* logits (B, K) = feat (B, D) · Wᵀ + b: in fp32 as the models do, or through pk. */
static void head_forward(float *logits, const float *feat, const mcnn_packed_b *pk,
                         const float *W, const float *b, int B, int D, int K)
{
    if (!pk)
        mcnn_linear_forward(logits, feat, W, b, B, D, K);
    else if (mcnn_gemm_packed(B, feat, D, pk, b, 0, logits, K) != MCNN_OK)
        fail("the packed head");
}

/* ---- ViT-B/16: embedding, 12 blocks, ln (class token), head -------------------------------- */
static layers vit_layers(const mcnn_vit *m, int B)
{
    static const char *const blocks[] = {"block 1", "block 2",  "block 3",  "block 4",
                                         "block 5", "block 6",  "block 7",  "block 8",
                                         "block 9", "block 10", "block 11", "block 12"};
    const int T = m->T, C = m->cfg.width, L = m->stack.layers;
    layers s = {0};
    s.name[s.n] = "patch embedding (+ class token, positions)";
    s.outer[s.n] = B * T, s.C[s.n] = C, s.inner[s.n++] = 1;
    for (int l = 0; l < L && l < 12; l++) {
        s.name[s.n] = blocks[l];
        s.outer[s.n] = B * T, s.C[s.n] = C, s.inner[s.n++] = 1;
    }
    s.name[s.n] = "ln (class token)";
    s.outer[s.n] = B, s.C[s.n] = C, s.inner[s.n++] = 1;
    s.name[s.n] = "head (logits)";
    s.outer[s.n] = B, s.C[s.n] = m->cfg.num_classes, s.inner[s.n++] = 1;
    return s;
}

/* vit_run.c's steps 1..7 on all B images, keeping every layer's output in out.  The blocks use
 * the model's packed matrices when packed; feed (or NULL) gives each layer its input instead of
 * the previous layer's output. */
static void vit_run(mcnn_vit *m, const float *images, int B, int packed, const extra *e,
                    float **out, float *const *feed)
{
    vit_acts *a = &m->acts;
    const vit_tensors *w = &m->w;
    const int C = m->cfg.width, T = m->T, P = m->P, L = m->stack.layers, K = m->cfg.num_classes;
    const int PD = m->embed.IC * m->embed.PS * m->embed.PS;
    const patch_embed_params embed = {w->patch_w, w->patch_b, w->cls, w->pos};
    mcnn_patch_embed_forward(&a->embed, &embed, &m->embed, images, 0, B);
    if (e->first) {
        if (mcnn_gemm_packed(B * P, a->embed.patches, PD, e->first, w->patch_b, 0, a->embed.tok,
                             C) != MCNN_OK)
            fail("patch embedding");
        mcnn_class_token_forward(a->embed.x0, a->embed.tok, w->cls, B, P, C);
        mcnn_add_positional_forward(a->embed.x, a->embed.x0, w->pos, B, T, C);
    }
    memcpy(out[0], a->embed.x, (size_t)B * T * C * sizeof(float));
    for (int l = 0; l < L; l++) {
        block_acts acts = mcnn_block_acts_images(&a->stack.blocks[l], &m->stack.block, T, 0);
        block_params p = mcnn_block_params_view(&w->blocks[l]);
        p.pk = packed ? &m->packed[l] : NULL;
        mcnn_block_forward(out[l + 1], &acts, feed ? feed[l] : out[l], &p, &m->stack.block, B, T);
    }
    mcnn_token_pool_forward(&a->pool, feed ? feed[L] : out[L], NULL, w->lnf_w, w->lnf_b,
                            m->cfg.ln_eps, 0, B, T, C);
    memcpy(out[L + 1], a->pool.y, (size_t)B * C * sizeof(float));
    head_forward(out[L + 2], feed ? feed[L + 1] : out[L + 1], e->head, w->head_w, w->head_b, B,
                 C, K);
}

/* ---- ResNet-50: stem, 16 blocks, pooled features, fc ----------------------------------------- */
static layers resnet_layers(const mcnn_resnet *m, int B)
{
    static char names[MAX_LAYERS][32];
    const resnet_acts *a = &m->acts;
    layers s = {0};
    s.name[s.n] = "stem (conv, bn, relu, max pool)";
    s.outer[s.n] = B, s.C[s.n] = m->cfg.stem_width, s.inner[s.n++] = a->H0 * a->W0;
    for (int b = 0; b < m->nblocks && s.n < MAX_LAYERS - 2; b++) {
        snprintf(names[b], sizeof names[b], "layer%d.%d", m->info[b].stage + 1,
                 m->info[b].index);
        s.name[s.n] = names[b];
        s.outer[s.n] = B, s.C[s.n] = a->cfgs[b].OC, s.inner[s.n++] = a->cfgs[b].OH * a->cfgs[b].OW;
    }
    s.name[s.n] = "pooled features";
    s.outer[s.n] = B, s.C[s.n] = m->features, s.inner[s.n++] = 1;
    s.name[s.n] = "fc (logits)";
    s.outer[s.n] = B, s.C[s.n] = m->cfg.num_classes, s.inner[s.n++] = 1;
    return s;
}

/* resnet_run.c's steps 1..7 (running batch statistics, as in eval) on the one lane of a
 * FROZEN_BN plan, which keeps every block's activations. */
static void resnet_run(mcnn_resnet *m, const float *images, int B, int packed, const extra *e,
                       float **out, float *const *feed, float *stem_ws)
{
    resnet_acts *a = &m->acts;
    resnet_lane *l = &a->lanes[0];
    const resnet_tensors *w = &m->w;
    const mcnn_resnet_config *c = &m->cfg;
    const int S = c->stem_width, nb = m->nblocks, F = m->features, K = c->num_classes;
    if (e->first)
        mcnn_conv2d_forward_packed(l->c0, images, w->conv1_w, e->first, NULL, &a->stem_conv,
                                   stem_ws, 1);
    else
        mcnn_conv2d_forward_lanes(l->c0, images, w->conv1_w, NULL, &a->stem_conv, stem_ws, 1);
    mcnn_resnet_bn_forward(l->a0, l->s0, l->c0, NULL, 1, w->bn1, m->st.bn1, B, S, a->H1 * a->W1,
                           c->bn_momentum, c->bn_eps, RESBLOCK_BN_RUNNING);
    mcnn_maxpool2d_forward(out[0], l->argmax, l->a0, &a->pool);
    for (int b = 0; b < nb; b++) {
        const resblock_params *p = packed ? &m->packed->blocks[b] : &w->blocks[b];
        mcnn_bottleneck_forward(out[b + 1], &l->blocks[b], feed ? feed[b] : out[b], p,
                                &m->st.blocks[b], &a->cfgs[b], RESBLOCK_BN_RUNNING,
                                l->workspace);
    }
    const resblock_cfg *last = &a->cfgs[nb - 1];
    mcnn_global_avgpool_forward(out[nb + 1], feed ? feed[nb] : out[nb], B, F,
                                last->OH * last->OW);
    /* the model packs its fc with the convs */
    const mcnn_packed_b *fc = e->head ? e->head : packed ? m->packed->fc : NULL;
    head_forward(out[nb + 2], feed ? feed[nb + 1] : out[nb + 1], fc, w->fc_w, w->fc_b, B, F, K);
}

/* ---- the two models behind one interface ------------------------------------------------------ */
typedef struct model {
    const char *name;
    mcnn_vit *vit;
    mcnn_resnet *resnet;
    int B;
    const float *images;
    layers s;
    float *stem_ws;
} model;

static void run(model *md, int packed, const extra *e, float **out, float *const *feed)
{
    if (md->vit)
        vit_run(md->vit, md->images, md->B, packed, e, out, feed);
    else
        resnet_run(md->resnet, md->images, md->B, packed, e, out, feed, md->stem_ws);
}

static void set_precision(model *md, mcnn_precision p)
{
    if ((md->vit ? mcnn_vit_set_precision(md->vit, p) : mcnn_resnet_set_precision(md->resnet, p))
        != MCNN_OK)
        fail("set_precision");
}

/* The embedding / stem and the head packed in precision p. */
static extra extra_pack(const model *md, mcnn_precision p)
{
    extra e = {NULL, NULL};
    mcnn_status s;
    if (md->vit) {
        const mcnn_vit *m = md->vit;
        const int C = m->cfg.width, PD = m->embed.IC * m->embed.PS * m->embed.PS;
        s = mcnn_packed_b_create(&e.first, p, m->w.patch_w, C, PD, PD);
        if (s == MCNN_OK)
            s = mcnn_packed_b_create(&e.head, p, m->w.head_w, m->cfg.num_classes, C, C);
    } else {
        const mcnn_resnet *m = md->resnet;
        const mcnn_conv2d_shape *st = &m->acts.stem_conv;
        const int KS = st->IC * st->KH * st->KW;
        s = mcnn_packed_b_create(&e.first, p, m->w.conv1_w, st->OC, KS, KS);
        if (s == MCNN_OK)
            s = mcnn_packed_b_create(&e.head, p, m->w.fc_w, m->cfg.num_classes, m->features,
                                     m->features);
    }
    if (s != MCNN_OK) fail("packing the embedding / stem and head");
    return e;
}

/* A training-mode (ViT) or FROZEN_BN (ResNet) forward plans the model's activations with every
 * layer's kept, which the step-by-step runs use; an eval forward re-plans them without. */
static void plan_keeping_all(model *md)
{
    float *logits = xmalloc((size_t)md->B * 1000 * sizeof(float));
    if ((md->vit ? mcnn_vit_forward(md->vit, logits, md->images, md->B, 1)
                 : mcnn_resnet_forward(md->resnet, logits, md->images, md->B, 224, 224,
                                       MCNN_RESNET_FROZEN_BN)) != MCNN_OK)
        fail("planning forward");
    free(logits);
}

/* The logits of the model's own forward (eval, in the precision set) against last, those of the
 * step-by-step run here: they should agree to rounding (the batch split across threads may
 * sum in another order). */
static double own_forward_check(model *md, const float *last)
{
    const int B = md->B, K = md->s.C[md->s.n - 1];
    float *logits = xmalloc((size_t)B * K * sizeof(float));
    if ((md->vit ? mcnn_vit_forward(md->vit, logits, md->images, B, 0)
                 : mcnn_resnet_forward(md->resnet, logits, md->images, B, 224, 224,
                                       MCNN_RESNET_EVAL)) != MCNN_OK)
        fail("forward");
    plan_keeping_all(md);
    double dd = 0, rr = 0;
    for (size_t i = 0; i < (size_t)B * K; i++)
        dd += (logits[i] - (double)last[i]) * (logits[i] - (double)last[i]),
            rr += (double)last[i] * last[i];
    free(logits);
    return sqrt(dd / (rr > 0 ? rr : 1));
}

static void report(model *md)
{
    const layers *s = &md->s;
    const int last = s->n - 1;
    const extra none = {NULL, NULL};
    float **ref = outputs_new(s), **e2e[2], **alone[2];
    double t0 = mcnn_seconds();
    run(md, 0, &none, ref, NULL);
    double check[3];
    check[0] = own_forward_check(md, ref[last]);
    /* what if: the layers kept fp32 converted as well (logits error; and the layer alone) */
    error what_if[2][4];
    const mcnn_precision precs[2] = {MCNN_PRECISION_BF16, MCNN_PRECISION_INT8};
    for (int k = 0; k < 2; k++) {
        e2e[k] = outputs_new(s), alone[k] = outputs_new(s);
        set_precision(md, precs[k]);
        run(md, 1, &none, e2e[k], NULL);
        check[1 + k] = own_forward_check(md, e2e[k][last]);
        run(md, 1, &none, alone[k], ref);
        extra e = extra_pack(md, precs[k]), first = {e.first, NULL}, head = {NULL, e.head};
        float **tmp = outputs_new(s);
        run(md, 0, &first, tmp, NULL); /* the embedding / stem alone converted */
        what_if[k][0] = compare(tmp[0], ref[0], s, 0);
        run(md, 1, &first, tmp, NULL); /* + the blocks */
        what_if[k][1] = compare(tmp[last], ref[last], s, last);
        run(md, 1, &head, tmp, NULL); /* the blocks + the head */
        what_if[k][2] = compare(tmp[last], ref[last], s, last);
        run(md, 1, &e, tmp, NULL); /* everything */
        what_if[k][3] = compare(tmp[last], ref[last], s, last);
        run(md, 0, &head, tmp, ref); /* the head alone, on fp32 features */
        const error head_alone = compare(tmp[last], ref[last], s, last);
        outputs_free(tmp, s);
        extra_free(&e);
        if (k == 0) printf("\n### %s, %d images\n\n", md->name, md->B);
        printf("%s, converted alone: the first layer rel. error %.2e, min cos %.6f; the head "
               "(on fp32 features) %.2e, %.6f\n", mcnn_precision_name(precs[k]),
               what_if[k][0].rel, what_if[k][0].min_cos, head_alone.rel, head_alone.min_cos);
    }
    printf("check: the model's own forward against the step-by-step logits, rel. difference: "
           "fp32 %.1e, bf16 %.1e, int8 %.1e (%.1f s)\n", check[0], check[1], check[2],
           mcnn_seconds() - t0);
    printf("\n| layer | bf16 end-to-end: rel. error | min cos | bf16 alone: rel. error | "
           "int8 end-to-end: rel. error | min cos | int8 alone: rel. error |\n"
           "|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < s->n; i++) {
        printf("| %s", s->name[i]);
        for (int k = 0; k < 2; k++) {
            const error a = compare(e2e[k][i], ref[i], s, i), b = compare(alone[k][i], ref[i], s, i);
            printf(" | %.2e | %.6f | %.2e", a.rel, a.min_cos, b.rel);
        }
        printf(" |\n");
    }
    printf("\nLogits against fp32 with the layers kept fp32 converted too (rel. error, min cos):\n\n"
           "| converted | bf16 | int8 |\n|---|---|---|\n");
    const char *rows[4] = {"as the model runs (today)", "+ the first layer", "+ the head",
                           "+ both"};
    for (int r = 0; r < 4; r++) {
        printf("| %s", rows[r]);
        for (int k = 0; k < 2; k++) {
            const error x = r == 0 ? compare(e2e[k][last], ref[last], s, last) : what_if[k][r];
            printf(" | %.2e, %.6f", x.rel, x.min_cos);
        }
        printf(" |\n");
    }
    for (int k = 0; k < 2; k++) outputs_free(e2e[k], s), outputs_free(alone[k], s);
    outputs_free(ref, s);
    fflush(stdout);
}

static float *random_images(int B, uint64_t seed)
{
    const size_t n = (size_t)B * 3 * 224 * 224;
    float *x = xmalloc(n * sizeof(float));
    mcnn_rng r;
    mcnn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = mcnn_rng_normal(&r);
    return x;
}

int main(int argc, char **argv)
{
    const int B = argc > 1 ? atoi(argv[1]) : 2;
    if (B < 1 || B > 64) {
        fprintf(stderr, "usage: precision_layers [IMAGES (1..64) [VIT_B16 [RESNET50]]]\n");
        return 2;
    }
    const char *vit_path = argc > 2 ? argv[2] : NULL, *resnet_path = argc > 3 ? argv[3] : NULL;
    float *images = random_images(B, 7);
    printf("precision_layers: %d random images (normal, seed 7); weights: %s, %s\n", B,
           vit_path ? vit_path : "random (seed 1)", resnet_path ? resnet_path : "random (seed 1)");

    if (!vit_path || strcmp(vit_path, "-") != 0) {
        model md = {.name = "ViT-B/16", .B = B, .images = images};
        const mcnn_vit_config cfg = mcnn_vit_b16_config(1000);
        if ((vit_path ? mcnn_vit_load(&md.vit, vit_path, NULL) : mcnn_vit_create(&md.vit, &cfg, 1))
            != MCNN_OK)
            fail("ViT-B/16");
        plan_keeping_all(&md);
        md.s = vit_layers(md.vit, B);
        report(&md);
        mcnn_vit_free(md.vit);
    }
    if (!resnet_path || strcmp(resnet_path, "-") != 0) {
        model md = {.name = "ResNet-50", .B = B, .images = images};
        const mcnn_resnet_config cfg = mcnn_resnet_config_standard(50, 1000);
        if ((resnet_path ? mcnn_resnet_load(&md.resnet, resnet_path, NULL)
                         : mcnn_resnet_create(&md.resnet, &cfg, 1)) != MCNN_OK)
            fail("ResNet-50");
        plan_keeping_all(&md);
        const mcnn_conv2d_shape *st = &md.resnet->acts.stem_conv;
        size_t ws = mcnn_conv2d_packed_workspace_floats(st);
        if (mcnn_conv2d_lanes_workspace_floats(st, 1) > ws)
            ws = mcnn_conv2d_lanes_workspace_floats(st, 1);
        md.stem_ws = xmalloc(ws * sizeof(float));
        md.s = resnet_layers(md.resnet, B);
        report(&md);
        free(md.stem_ws);
        mcnn_resnet_free(md.resnet);
    }
    free(images);
    return 0;
}
