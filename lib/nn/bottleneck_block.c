/* ResNet's residual blocks, forward and backward as mirror images.
 * Shapes and the maths are in bottleneck_block.h; docs/walkthrough-resnet.md walks through the
 * bottleneck's backward. */
#include "bottleneck_block.h"
#include "internal.h"
#include "core/profile.h"
#include "../ops/conv2d_lanes.h"
#include "../ops/conv2d_packed.h"

#include <math.h>

#include <string.h>

void mcnn_resblock_cfg_init(resblock_cfg *c, resblock_kind kind, int N, int IC, int H, int W,
                            int width, int stride, float eps, float momentum)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->N = N, c->IC = IC, c->H = H, c->W = W;
    c->width = width;
    c->OC = kind == RESBLOCK_BOTTLENECK ? 4 * width : width;
    c->stride = stride;
    c->eps = eps, c->momentum = momentum;
    c->lanes = 1;
    /* conv(in channels, H, W, out channels, kernel, stride): padding keeps a 3×3 "same" */
#define CONV(IN, H_, W_, OUT, K, S)                                                         \
    ((mcnn_conv2d_shape){.N = N, .IC = (IN), .H = (H_), .W = (W_), .OC = (OUT), .KH = (K),  \
                         .KW = (K), .stride_h = (S), .stride_w = (S), .pad_h = (K) / 2,     \
                         .pad_w = (K) / 2, .dil_h = 1, .dil_w = 1, .groups = 1})
    if (kind == RESBLOCK_BOTTLENECK) {
        c->conv1 = CONV(IC, H, W, width, 1, 1);
        c->conv2 = CONV(width, H, W, width, 3, stride); /* v1.5: the stride is here */
        c->OH = mcnn_conv2d_out_h(&c->conv2), c->OW = mcnn_conv2d_out_w(&c->conv2);
        c->conv3 = CONV(width, c->OH, c->OW, c->OC, 1, 1);
    } else {
        c->conv1 = CONV(IC, H, W, width, 3, stride);
        c->OH = mcnn_conv2d_out_h(&c->conv1), c->OW = mcnn_conv2d_out_w(&c->conv1);
        c->conv2 = CONV(width, c->OH, c->OW, width, 3, 1);
    }
    /* torchvision's _make_layer: a projection when the shape of x and out differ */
    c->downsample = stride != 1 || IC != c->OC;
    if (c->downsample) c->down = CONV(IC, H, W, c->OC, 1, stride);
#undef CONV
}

static size_t max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

static size_t conv_workspace(const mcnn_conv2d_shape *s, int lanes)
{
    return max_size(mcnn_conv2d_lanes_workspace_floats(s, lanes),
                    mcnn_conv2d_packed_workspace_floats(s));
}

size_t mcnn_resblock_workspace_floats(const resblock_cfg *c)
{
    size_t n = max_size(conv_workspace(&c->conv1, c->lanes), conv_workspace(&c->conv2, c->lanes));
    if (c->kind == RESBLOCK_BOTTLENECK) n = max_size(n, conv_workspace(&c->conv3, c->lanes));
    if (c->downsample) n = max_size(n, conv_workspace(&c->down, c->lanes));
    return n;
}

resblock_sizes mcnn_resblock_sizes(const resblock_cfg *c, int grads)
{
    resblock_sizes s = {0};
    const size_t N = c->N, in = (size_t)c->H * c->W, out = (size_t)c->OH * c->OW;
    const size_t nout = N * c->OC * out;
    if (c->kind == RESBLOCK_BOTTLENECK) {
        s.c1 = s.a1 = N * c->width * in;
        s.c2 = s.a2 = N * c->width * out;
        s.c3 = nout;
        if (!grads) s.s1 = s.s2 = c->width, s.s3 = c->OC;
        else s.b1 = s.c1, s.b2 = s.c2, s.b3 = nout;
    } else {
        s.c1 = s.a1 = N * c->width * out;
        s.c2 = nout; /* bn2 writes straight into the block's output */
        if (!grads) s.s1 = s.s2 = c->width;
        else s.b1 = s.c1, s.b2 = nout;
    }
    if (c->downsample) {
        s.cd = s.sc = nout;
        if (!grads) s.sd = c->OC;
    }
    if (grads) s.sum = nout;
    return s;
}

void mcnn_resblock_sizes_max(resblock_sizes *acc, const resblock_sizes *s)
{
    size_t *a = (size_t *)acc;
    const size_t *b = (const size_t *)s;
    for (size_t i = 0; i < sizeof *acc / sizeof(size_t); i++) a[i] = max_size(a[i], b[i]);
}

static float *carve(mcnn_carver *c, size_t n)
{
    return n ? mcnn_carve(c, n) : NULL;
}

void mcnn_resblock_acts_carve(resblock_acts *a, mcnn_carver *c, const resblock_sizes *s)
{
    a->c1 = carve(c, s->c1), a->a1 = carve(c, s->a1);
    a->c2 = carve(c, s->c2), a->a2 = carve(c, s->a2);
    a->c3 = carve(c, s->c3);
    a->cd = carve(c, s->cd), a->sc = carve(c, s->sc);
    a->s1 = (bn_saved){carve(c, s->s1), carve(c, s->s1)};
    a->s2 = (bn_saved){carve(c, s->s2), carve(c, s->s2)};
    a->s3 = (bn_saved){carve(c, s->s3), carve(c, s->s3)};
    a->sd = (bn_saved){carve(c, s->sd), carve(c, s->sd)};
    a->b1 = carve(c, s->b1), a->b2 = carve(c, s->b2), a->b3 = carve(c, s->b3);
    a->sum = carve(c, s->sum);
}

/* The activation gradients accumulate too: zero the part of the scratch this block uses. */
static void zero_grads(resblock_acts *d, const resblock_cfg *c)
{
    const resblock_sizes s = mcnn_resblock_sizes(c, 1);
    float *arr[] = {d->c1, d->a1, d->c2, d->a2, d->c3, d->cd, d->sc, d->b1, d->b2, d->b3, d->sum};
    const size_t n[] = {s.c1, s.a1, s.c2, s.a2, s.c3, s.cd, s.sc, s.b1, s.b2, s.b3, s.sum};
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++)
        if (n[i]) mcnn_zero_floats(arr[i], n[i]);
}

/* y = x + res, then max(y, 0) if relu: the two element-wise steps that follow a batch norm,
 * in one pass (same arithmetic as mcnn_add_forward then mcnn_relu_forward). */
static void add_relu(float *y, const float *res, int relu, size_t n)
{
    if (res && relu) {
        #pragma omp parallel for simd if (n > 65536)
        for (size_t i = 0; i < n; i++) {
            const float v = y[i] + res[i];
            y[i] = v < 0.0f ? 0.0f : v;
        }
    } else if (res) {
        mcnn_add_forward(y, y, res, n);
    } else if (relu) {
        mcnn_relu_forward(y, y, n);
    }
}

void mcnn_resnet_bn_forward(float *y, bn_saved saved, const float *x, const float *res, int relu,
                            bn_affine p, bn_running run, int N, int C, int HW, float momentum,
                            float eps, resblock_bn bn)
{
    if (bn == RESBLOCK_BN_BATCH) { /* the statistics need all of x first: a second pass */
        mcnn_batchnorm2d_forward_train(y, saved.mean, saved.rstd, run.mean, run.var, x, p.w, p.b,
                                       N, C, HW, momentum, eps);
        add_relu(y, res, relu, (size_t)N * C * HW);
        return;
    }
    /* Running statistics: a fixed affine map per channel, so the residual and the ReLU join
     * it in one pass.  The arithmetic is mcnn_batchnorm2d_forward_eval's (scale and shift in
     * double, the result rounded once), then mcnn_add_forward's and mcnn_relu_forward's: the
     * same bits as the three ops one after another (test_resnet checks). */
    MCNN_PROF_SCOPE(MCNN_PROF_BN);
    #pragma omp parallel for if ((size_t)N * HW * C > 32768)
    for (int c = 0; c < C; c++) {
        const double scale = p.w[c] / sqrt((double)run.var[c] + eps);
        const double shift = p.b[c] - run.mean[c] * scale;
        for (int n = 0; n < N; n++) {
            const size_t off = ((size_t)n * C + c) * HW;
            const float *x_nc = x + off;
            float *y_nc = y + off;
            if (res) {
                const float *r_nc = res + off;
                for (int i = 0; i < HW; i++) {
                    float v = (float)(x_nc[i] * scale + shift) + r_nc[i];
                    y_nc[i] = relu && v < 0.0f ? 0.0f : v;
                }
            } else {
                for (int i = 0; i < HW; i++) {
                    float v = (float)(x_nc[i] * scale + shift);
                    y_nc[i] = relu && v < 0.0f ? 0.0f : v;
                }
            }
        }
    }
}

void mcnn_resnet_bn_backward(float *dx, bn_affine g, const float *dy, const float *x,
                             bn_affine p, bn_saved saved, bn_running run, int N, int C, int HW,
                             float eps, resblock_bn bn)
{
    if (bn == RESBLOCK_BN_BATCH)
        mcnn_batchnorm2d_backward(dx, g.w, g.b, dy, x, p.w, saved.mean, saved.rstd, N, C, HW);
    else
        mcnn_batchnorm2d_backward_eval(dx, g.w, g.b, dy, x, p.w, run.mean, run.var, N, C, HW,
                                       eps);
}

/* The convs split their batch across c->lanes threads (lib/ops/conv2d_lanes.h), or multiply by
 * the weight packed once (conv2d_packed.h) when p carries it. */
#define CONV_FORWARD(y, x, conv, shape)                                                     \
    mcnn_conv2d_forward_packed(y, x, p->conv##_w, p->conv##_pk, NULL, shape, ws, c->lanes)
#define CONV_BACKWARD(dx, dw, db, dy, x, w, shape)                                          \
    mcnn_conv2d_backward_lanes(dx, dw, db, dy, x, w, shape, ws, c->lanes)

/* Short names for the two BN calls of every step below.  BN_FORWARD: y = relu?(bn(x) + res?) */
#define BN_FORWARD(y, saved, x, res, relu, par, run, C, HW)                                 \
    mcnn_resnet_bn_forward(y, saved, x, res, relu, par, run, c->N, C, HW, c->momentum, c->eps, bn)
#define BN_BACKWARD(dx, grad, dy, x, par, saved, run, C, HW)                                \
    mcnn_resnet_bn_backward(dx, grad, dy, x, par, saved, run, c->N, C, HW, c->eps, bn)

void mcnn_bottleneck_forward(float *out, resblock_acts *a, const float *x,
                             const resblock_params *p, const resblock_stats *st,
                             const resblock_cfg *c, resblock_bn bn, float *ws)
{
    const int Wd = c->width, OC = c->OC, HW = c->H * c->W, OHW = c->OH * c->OW;
    const float *shortcut = x;
    CONV_FORWARD(a->c1, x, conv1, &c->conv1);                                     /*  1 1×1       */
    BN_FORWARD(a->a1, a->s1, a->c1, NULL, 1, p->bn1, st->bn1, Wd, HW);            /*  2, 3 relu   */
    CONV_FORWARD(a->c2, a->a1, conv2, &c->conv2);                                 /*  4 3×3/s     */
    BN_FORWARD(a->a2, a->s2, a->c2, NULL, 1, p->bn2, st->bn2, Wd, OHW);           /*  5, 6 relu   */
    CONV_FORWARD(a->c3, a->a2, conv3, &c->conv3);                                 /*  7 1×1       */
    if (c->downsample) {
        CONV_FORWARD(a->cd, x, down, &c->down);                                   /*  9 1×1/s     */
        BN_FORWARD(a->sc, a->sd, a->cd, NULL, 0, p->downbn, st->downbn, OC, OHW); /* 10          */
        shortcut = a->sc;
    }
    BN_FORWARD(out, a->s3, a->c3, shortcut, 1, p->bn3, st->bn3, OC, OHW); /* 8, 11 residual, 12 */
}

void mcnn_bottleneck_backward(float *dx, const resblock_params *g, resblock_acts *d,
                              const float *dout, const float *out, const float *x,
                              const resblock_acts *a, const resblock_params *p,
                              const resblock_stats *st, const resblock_cfg *c, resblock_bn bn,
                              float *ws)
{
    const int Wd = c->width, OC = c->OC, HW = c->H * c->W, OHW = c->OH * c->OW;
    const size_t n1 = (size_t)c->N * Wd * HW, n2 = (size_t)c->N * Wd * OHW;
    const size_t n3 = (size_t)c->N * OC * OHW;
    zero_grads(d, c);
    mcnn_relu_backward(d->sum, dout, out, n3);                                    /* 12           */
    mcnn_add_backward(d->b3, c->downsample ? d->sc : dx, d->sum, n3);             /* 11 both ways */
    if (c->downsample) {
        BN_BACKWARD(d->cd, g->downbn, d->sc, a->cd, p->downbn, a->sd, st->downbn, OC, OHW); /* 10 */
        CONV_BACKWARD(dx, g->down_w, NULL, d->cd, x, p->down_w, &c->down);        /*  9           */
    }
    BN_BACKWARD(d->c3, g->bn3, d->b3, a->c3, p->bn3, a->s3, st->bn3, OC, OHW);    /*  8           */
    CONV_BACKWARD(d->a2, g->conv3_w, NULL, d->c3, a->a2, p->conv3_w, &c->conv3);  /*  7           */
    mcnn_relu_backward(d->b2, d->a2, a->a2, n2);                                  /*  6           */
    BN_BACKWARD(d->c2, g->bn2, d->b2, a->c2, p->bn2, a->s2, st->bn2, Wd, OHW);    /*  5           */
    CONV_BACKWARD(d->a1, g->conv2_w, NULL, d->c2, a->a1, p->conv2_w, &c->conv2);  /*  4           */
    mcnn_relu_backward(d->b1, d->a1, a->a1, n1);                                  /*  3           */
    BN_BACKWARD(d->c1, g->bn1, d->b1, a->c1, p->bn1, a->s1, st->bn1, Wd, HW);     /*  2           */
    CONV_BACKWARD(dx, g->conv1_w, NULL, d->c1, x, p->conv1_w, &c->conv1);         /*  1           */
}

void mcnn_basic_block_forward(float *out, resblock_acts *a, const float *x,
                              const resblock_params *p, const resblock_stats *st,
                              const resblock_cfg *c, resblock_bn bn, float *ws)
{
    const int Wd = c->width, OC = c->OC, OHW = c->OH * c->OW;
    const float *shortcut = x;
    CONV_FORWARD(a->c1, x, conv1, &c->conv1);                                     /* 1 3×3/s      */
    BN_FORWARD(a->a1, a->s1, a->c1, NULL, 1, p->bn1, st->bn1, Wd, OHW);           /* 2, 3 relu    */
    CONV_FORWARD(a->c2, a->a1, conv2, &c->conv2);                                 /* 4 3×3        */
    if (c->downsample) {
        CONV_FORWARD(a->cd, x, down, &c->down);                                   /* 6 1×1/s      */
        BN_FORWARD(a->sc, a->sd, a->cd, NULL, 0, p->downbn, st->downbn, OC, OHW); /* 7           */
        shortcut = a->sc;
    }
    BN_FORWARD(out, a->s2, a->c2, shortcut, 1, p->bn2, st->bn2, OC, OHW);   /* 5, 8 residual, 9 */
}

void mcnn_basic_block_backward(float *dx, const resblock_params *g, resblock_acts *d,
                               const float *dout, const float *out, const float *x,
                               const resblock_acts *a, const resblock_params *p,
                               const resblock_stats *st, const resblock_cfg *c, resblock_bn bn,
                               float *ws)
{
    const int Wd = c->width, OC = c->OC, OHW = c->OH * c->OW;
    const size_t n1 = (size_t)c->N * Wd * OHW, n2 = (size_t)c->N * OC * OHW;
    zero_grads(d, c);
    mcnn_relu_backward(d->sum, dout, out, n2);                                    /* 9            */
    mcnn_add_backward(d->b2, c->downsample ? d->sc : dx, d->sum, n2);             /* 8 both ways  */
    if (c->downsample) {
        BN_BACKWARD(d->cd, g->downbn, d->sc, a->cd, p->downbn, a->sd, st->downbn, OC, OHW); /* 7 */
        CONV_BACKWARD(dx, g->down_w, NULL, d->cd, x, p->down_w, &c->down);        /* 6            */
    }
    BN_BACKWARD(d->c2, g->bn2, d->b2, a->c2, p->bn2, a->s2, st->bn2, OC, OHW);    /* 5            */
    CONV_BACKWARD(d->a1, g->conv2_w, NULL, d->c2, a->a1, p->conv2_w, &c->conv2);  /* 4            */
    mcnn_relu_backward(d->b1, d->a1, a->a1, n1);                                  /* 3            */
    BN_BACKWARD(d->c1, g->bn1, d->b1, a->c1, p->bn1, a->s1, st->bn1, Wd, OHW);    /* 2            */
    CONV_BACKWARD(dx, g->conv1_w, NULL, d->c1, x, p->conv1_w, &c->conv1);         /* 1            */
}
