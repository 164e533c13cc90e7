/* 2-d convolution (torch.nn.Conv2d: stride, padding, dilation, groups, optional bias) as
 * im2col + GEMM.  G = groups, ICg = IC/G, OCg = OC/G, Kg = ICg·KH·KW, P = OH·OW.
 * For image n and group g, with col_g (Kg, P) the im2col rows of that group and w_g (OCg, Kg)
 * the group's weights viewed as a matrix:
 *   forward   y_g   = w_g · col_g + b                      (OCg, Kg)·(Kg, P)  -> (OCg, P)
 *   backward  dw_g += dy_g · col_gᵀ                         (OCg, P)·(P, Kg)   -> (OCg, Kg)
 *             dcol_g = w_gᵀ · dy_g,  dx += col2im(dcol)      (Kg, OCg)·(OCg, P) -> (Kg, P)
 *             db    += sum of dy over n and P
 * A 1×1 convolution with stride 1 and no padding needs no im2col: x_n (IC, H·W) already is col.
 *
 * Batching.  Images go through in chunks of B = conv_chunk() images.  Large feature maps go one
 * image at a time (B = 1).  A small map gives a GEMM too thin to run well (7×7: 49 columns, a
 * few ragged tiles to split between threads), so B images' columns are put side by side,
 * col (Kg, B·P), and one GEMM does them all; its (OC, B·P) result is then scattered to the
 * images (backward gathers dy the same way).  In ResNet-50 at 7×7 this runs ~1.4x faster.
 *
 * Threads: every GEMM (and im2col / col2im) is itself multithreaded; chunks run one after
 * another.  So the workspace does not depend on the thread count, and dw is accumulated chunk
 * by chunk in a fixed order: the result has the same bits at any thread count.
 * See docs/ops/conv2d.md for the shapes drawn out and the measurements behind these choices. */
#include "im2col.h"
#include "conv2d_lanes.h"
#include "core/profile.h"

#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* A GEMM wants at least this many columns; smaller maps are batched to reach it (measured on
 * ResNet-50's 7×7 and 14×14 layers: 256 gets the gain, more only grows the workspace). */
#define CONV_MIN_COLS 256

static int out_size(int L, int pad, int dil, int K, int stride)
{
    int span = L + 2 * pad - dil * (K - 1) - 1;
    return span < 0 ? 0 : span / stride + 1;
}

int mcnn_conv2d_out_h(const mcnn_conv2d_shape *s)
{
    return out_size(s->H, s->pad_h, s->dil_h, s->KH, s->stride_h);
}

int mcnn_conv2d_out_w(const mcnn_conv2d_shape *s)
{
    return out_size(s->W, s->pad_w, s->dil_w, s->KW, s->stride_w);
}

/* 1×1, stride 1, no padding: the input planes are the columns. */
static int conv_is_pointwise(const mcnn_conv2d_shape *s)
{
    return s->KH == 1 && s->KW == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h == 0 &&
           s->pad_w == 0;
}

/* Images per GEMM: 1 for maps of CONV_MIN_COLS pixels or more. */
static int conv_chunk(const mcnn_conv2d_shape *s)
{
    const int P = mcnn_conv2d_out_h(s) * mcnn_conv2d_out_w(s);
    int B = P > 0 ? (CONV_MIN_COLS + P - 1) / P : 1;
    if (B > s->N) B = s->N;
    return B < 1 ? 1 : B;
}

/* Workspace: the columns of one chunk (IC·KH·KW, B·P), plus, when B > 1, the chunk's output
 * (or dy) in GEMM layout (OC, B·P).  A pointwise conv one image at a time needs nothing. */
size_t mcnn_conv2d_workspace_floats(const mcnn_conv2d_shape *s)
{
    const size_t P = (size_t)mcnn_conv2d_out_h(s) * mcnn_conv2d_out_w(s);
    const int B = conv_chunk(s);
    if (B == 1)
        return conv_is_pointwise(s) ? 0 : (size_t)s->IC * s->KH * s->KW * P;
    return ((size_t)s->IC * s->KH * s->KW + s->OC) * B * P;
}

/* The columns of images n0 .. n0+cnt-1, side by side: col (IC·KH·KW, ld = cnt·P).  One pointwise
 * image is its own columns; otherwise they are built in the workspace. */
static const float *conv_columns(float *ws, const float *x, int n0, int cnt,
                                 const mcnn_conv2d_shape *s, int OH, int OW)
{
    const size_t HW = (size_t)s->H * s->W, P = (size_t)OH * OW;
    if (cnt == 1 && conv_is_pointwise(s)) return x + (size_t)n0 * s->IC * HW;
    for (int j = 0; j < cnt; j++)
        mcnn_im2col(ws + j * P, (int)(cnt * P), x + (size_t)(n0 + j) * s->IC * HW, s, OH, OW);
    return ws;
}

/* Output rows per block when one thread convolves a large map a block at a time: the block's
 * columns stay near 512 KB (half the L2 cache), 64 columns at least (a thinner GEMM runs
 * badly); 0: the whole image at once.  A whole image's columns (ResNet-50's first stage: 576
 * rows x 3136 pixels, 7 MB) go through memory twice, written then read, and two threads doing
 * that at once share the memory bus: blocks that stay in each core's L2 keep the threads apart.
 * Only on a single thread (in a lane, or with one thread): elsewhere the GEMM and im2col split
 * each image across the threads, and many small calls would each cost a parallel region. */
static int conv_row_block(const mcnn_conv2d_shape *s, int OH, int OW)
{
#ifdef _OPENMP
    if (!omp_in_parallel() && omp_get_max_threads() > 1) return 0;
#endif
    const long K = (long)s->IC * s->KH * s->KW, budget = 128 * 1024; /* floats */
    long rows = budget / (K * OW);
    if (rows * OW < 64) rows = (64 + OW - 1) / OW;
    return s->groups == 1 && !conv_is_pointwise(s) && rows < OH ? (int)rows : 0;
}

/* y (OC, P) of one image [+= nothing: C enters with beta] = w · col, one block of output rows
 * at a time; each block's columns are built in ws.  The GEMM computes every element the same
 * way however C is cut, so the bits are those of the whole-image GEMM. */
static void conv_image_by_rows(float *y, const float *x, const float *w, float beta,
                               const mcnn_conv2d_shape *s, int OH, int OW, int rows, float *ws)
{
    const int P = OH * OW, K = s->IC * s->KH * s->KW;
    for (int oh = 0; oh < OH; oh += rows) {
        const int n = (oh + rows < OH ? rows : OH - oh) * OW;
        mcnn_im2col_out_rows(ws, n, x, s, OH, OW, oh, oh + n / OW);
        mcnn_gemm(0, 0, s->OC, n, K, 1.0f, w, K, ws, n, beta, y + (size_t)oh * OW, P);
    }
}

void mcnn_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                         const mcnn_conv2d_shape *s, float *workspace)
{
    MCNN_PROF_SCOPE(MCNN_PROF_CONV);
    const int OH = mcnn_conv2d_out_h(s), OW = mcnn_conv2d_out_w(s), P = OH * OW;
    const int G = s->groups, OCg = s->OC / G, Kg = s->IC / G * s->KH * s->KW, B = conv_chunk(s);
    const int rows = B == 1 ? conv_row_block(s, OH, OW) : 0;
    /* (OC, B·P) after the columns, when B > 1 */
    float *buf = B > 1 ? workspace + (size_t)s->IC * s->KH * s->KW * B * P : NULL;
    for (int n0 = 0; n0 < s->N; n0 += B) {
        const int cnt = s->N - n0 < B ? s->N - n0 : B, ld = cnt * P;
        float *out = cnt == 1 ? y + (size_t)n0 * s->OC * P : buf;          /* (OC, ld)   */
        if (b) { /* the bias enters the GEMM as its C input (beta = 1) */
            #pragma omp parallel for if ((size_t)s->OC * ld > 65536)
            for (int oc = 0; oc < s->OC; oc++)
                for (int p = 0; p < ld; p++) out[(size_t)oc * ld + p] = b[oc];
        }
        if (rows) {
            conv_image_by_rows(out, x + (size_t)n0 * s->IC * s->H * s->W, w, b ? 1.0f : 0.0f, s,
                               OH, OW, rows, workspace);
            continue;
        }
        const float *col = conv_columns(workspace, x, n0, cnt, s, OH, OW); /* (G·Kg, ld) */
        for (int g = 0; g < G; g++) /* out_g (OCg, ld) = w_g (OCg, Kg) · col_g (Kg, ld) [+ b] */
            mcnn_gemm(0, 0, OCg, ld, Kg, 1.0f, w + (size_t)g * OCg * Kg, Kg,
                      col + (size_t)g * Kg * ld, ld, b ? 1.0f : 0.0f, out + (size_t)g * OCg * ld,
                      ld);
        if (cnt > 1) { /* scatter: column block j of out is image n0 + j */
            #pragma omp parallel for if ((size_t)s->OC * ld > 65536)
            for (int oc = 0; oc < s->OC; oc++)
                for (int j = 0; j < cnt; j++)
                    memcpy(y + ((size_t)(n0 + j) * s->OC + oc) * P, out + (size_t)oc * ld + j * P,
                           (size_t)P * sizeof(float));
        }
    }
}

void mcnn_conv2d_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, const mcnn_conv2d_shape *s, float *workspace)
{
    MCNN_PROF_SCOPE(MCNN_PROF_CONV);
    const int OH = mcnn_conv2d_out_h(s), OW = mcnn_conv2d_out_w(s), P = OH * OW;
    const int G = s->groups, OCg = s->OC / G, ICg = s->IC / G, Kg = ICg * s->KH * s->KW;
    const int B = conv_chunk(s);
    const size_t HW = (size_t)s->H * s->W;
    /* (OC, B·P) after the columns, when B > 1 */
    float *buf = B > 1 ? workspace + (size_t)s->IC * s->KH * s->KW * B * P : NULL;

    if (db) { /* one output channel per thread; each sum in double, in a fixed order */
        #pragma omp parallel for if ((size_t)s->N * s->OC * P > 65536)
        for (int oc = 0; oc < s->OC; oc++) {
            double acc = 0.0;
            for (int n = 0; n < s->N; n++) {
                const float *dy_nc = dy + ((size_t)n * s->OC + oc) * P;
                for (int p = 0; p < P; p++) acc += dy_nc[p];
            }
            db[oc] += (float)acc;
        }
    }
    if (!dw && !dx) return;

    for (int n0 = 0; n0 < s->N; n0 += B) {
        const int cnt = s->N - n0 < B ? s->N - n0 : B, ld = cnt * P;
        const float *dyc = dy + (size_t)n0 * s->OC * P; /* (OC, ld): this chunk's dy */
        if (cnt > 1) { /* gather: image n0 + j becomes column block j */
            #pragma omp parallel for if ((size_t)s->OC * ld > 65536)
            for (int oc = 0; oc < s->OC; oc++)
                for (int j = 0; j < cnt; j++)
                    memcpy(buf + (size_t)oc * ld + j * P, dy + ((size_t)(n0 + j) * s->OC + oc) * P,
                           (size_t)P * sizeof(float));
            dyc = buf;
        }
        if (dw) { /* the columns again: forward keeps none */
            const float *col = conv_columns(workspace, x, n0, cnt, s, OH, OW);
            for (int g = 0; g < G; g++) /* dw_g (OCg, Kg) += dy_g (OCg, ld) · col_gᵀ (ld, Kg) */
                mcnn_gemm(0, 1, OCg, Kg, ld, 1.0f, dyc + (size_t)g * OCg * ld, ld,
                          col + (size_t)g * Kg * ld, ld, 1.0f, dw + (size_t)g * OCg * Kg, Kg);
        }
        if (!dx) continue;
        if (cnt == 1 && conv_is_pointwise(s)) { /* dx_g (ICg, HW) += w_gᵀ (ICg, OCg) · dy_g */
            float *dx_n = dx + (size_t)n0 * s->IC * HW;
            for (int g = 0; g < G; g++)
                mcnn_gemm(1, 0, ICg, P, OCg, 1.0f, w + (size_t)g * OCg * Kg, Kg,
                          dyc + (size_t)g * OCg * P, P, 1.0f, dx_n + (size_t)g * ICg * HW, P);
            continue;
        }
        /* dcol_g (Kg, ld) = w_gᵀ (Kg, OCg) · dy_g (OCg, ld), over the columns' workspace */
        for (int g = 0; g < G; g++)
            mcnn_gemm(1, 0, Kg, ld, OCg, 1.0f, w + (size_t)g * OCg * Kg, Kg,
                      dyc + (size_t)g * OCg * ld, ld, 0.0f, workspace + (size_t)g * Kg * ld, ld);
        for (int j = 0; j < cnt; j++)
            mcnn_col2im_add(dx + (size_t)(n0 + j) * s->IC * HW, workspace + (size_t)j * P, ld, s,
                            OH, OW);
    }
}

/* ---- the batch split across threads (conv2d_lanes.h) ----------------------------------------
 * Each lane (one thread) takes the images n0 .. n1-1 of its share through the functions above,
 * with its own slice of the workspace; inside the parallel region their GEMMs run serially, so
 * the threads meet once per call instead of at every GEMM and im2col of every image.  The
 * weight gradient sums over all the images, so there the lanes split the columns of dw
 * instead: each walks all the chunks in order, as the backward above does, for its columns
 * (the im2col of its rows) only.  Every element goes through the same arithmetic as above
 * (GEMM's result does not depend on how C is cut), so the results have the same bits for any
 * number of lanes. */

static mcnn_conv2d_shape with_batch(const mcnn_conv2d_shape *s, int n)
{
    mcnn_conv2d_shape r = *s;
    r.N = n;
    return r;
}

/* Never more lanes than threads: a parallel region larger than the last one makes OpenMP
 * start threads that a smaller one retires, taking GEMM's thread-local buffers with them. */
static int clamp_lanes(int lanes)
{
    const int t = mcnn_get_threads();
    return lanes < t ? lanes : t;
}

/* A lane's slice: the whole batch's workspace, which covers both a lane's images and one chunk
 * of dw columns with its gathered dy. */
size_t mcnn_conv2d_lanes_workspace_floats(const mcnn_conv2d_shape *s, int lanes)
{
    return (size_t)(lanes > 1 ? lanes : 1) * mcnn_conv2d_workspace_floats(s);
}

void mcnn_conv2d_forward_lanes(float *y, const float *x, const float *w, const float *b,
                               const mcnn_conv2d_shape *s, float *workspace, int lanes)
{
    lanes = clamp_lanes(lanes);
    if (lanes < 2 || s->N < 2) {
        mcnn_conv2d_forward(y, x, w, b, s, workspace);
        return;
    }
    MCNN_PROF_SCOPE(MCNN_PROF_CONV);
    const size_t ws = mcnn_conv2d_workspace_floats(s), in = (size_t)s->IC * s->H * s->W;
    const size_t out = (size_t)s->OC * mcnn_conv2d_out_h(s) * mcnn_conv2d_out_w(s);
    #pragma omp parallel for num_threads(lanes) schedule(static)
    for (int t = 0; t < lanes; t++) {
        const int n0 = (int)((long)s->N * t / lanes), n1 = (int)((long)s->N * (t + 1) / lanes);
        const mcnn_conv2d_shape sl = with_batch(s, n1 - n0);
        if (n1 > n0) mcnn_conv2d_forward(y + n0 * out, x + n0 * in, w, b, &sl, workspace + t * ws);
    }
}

/* dw[:, k0:k1] += dy · col[k0:k1]ᵀ over every chunk of images, in order (groups == 1). */
static void dw_columns(float *dw, const float *dy, const float *x, const mcnn_conv2d_shape *s,
                       int k0, int k1, float *ws)
{
    const int OH = mcnn_conv2d_out_h(s), OW = mcnn_conv2d_out_w(s), P = OH * OW;
    const int OC = s->OC, Kg = s->IC * s->KH * s->KW, B = conv_chunk(s);
    const size_t HW = (size_t)s->H * s->W;
    for (int n0 = 0; n0 < s->N; n0 += B) {
        const int cnt = s->N - n0 < B ? s->N - n0 : B, ld = cnt * P;
        const float *dyc = dy + (size_t)n0 * OC * P, *col = ws;
        if (cnt > 1) { /* gather, as the backward above: image n0 + j is column block j */
            float *buf = ws + (size_t)(k1 - k0) * ld;
            for (int oc = 0; oc < OC; oc++)
                for (int j = 0; j < cnt; j++)
                    memcpy(buf + (size_t)oc * ld + j * P, dy + ((size_t)(n0 + j) * OC + oc) * P,
                           (size_t)P * sizeof(float));
            dyc = buf;
        }
        if (cnt == 1 && conv_is_pointwise(s))
            col = x + (size_t)n0 * s->IC * HW + (size_t)k0 * HW;
        else
            for (int j = 0; j < cnt; j++)
                mcnn_im2col_rows(ws + j * P, ld, x + (size_t)(n0 + j) * s->IC * HW, s, OH, OW,
                                 k0, k1);
        mcnn_gemm(0, 1, OC, k1 - k0, ld, 1.0f, dyc, ld, col, ld, 1.0f, dw + k0, Kg);
    }
}

void mcnn_conv2d_backward_lanes(float *dx, float *dw, float *db, const float *dy, const float *x,
                                const float *w, const mcnn_conv2d_shape *s, float *workspace,
                                int lanes)
{
    lanes = clamp_lanes(lanes);
    if (lanes < 2 || s->N < 2 || s->groups != 1) {
        mcnn_conv2d_backward(dx, dw, db, dy, x, w, s, workspace);
        return;
    }
    MCNN_PROF_SCOPE(MCNN_PROF_CONV);
    if (db) mcnn_conv2d_backward(NULL, NULL, db, dy, x, w, s, workspace); /* db only */
    const size_t ws = mcnn_conv2d_workspace_floats(s), in = (size_t)s->IC * s->H * s->W;
    const size_t out = (size_t)s->OC * mcnn_conv2d_out_h(s) * mcnn_conv2d_out_w(s);
    const int Kg = s->IC * s->KH * s->KW;
    #pragma omp parallel for num_threads(lanes) schedule(static)
    for (int t = 0; t < lanes; t++) {
        float *ws_t = workspace + t * ws;
        const int n0 = (int)((long)s->N * t / lanes), n1 = (int)((long)s->N * (t + 1) / lanes);
        const mcnn_conv2d_shape sl = with_batch(s, n1 - n0);
        if (dx && n1 > n0) /* this lane's images */
            mcnn_conv2d_backward(dx + n0 * in, NULL, NULL, dy + n0 * out, x + n0 * in, w, &sl,
                                 ws_t);
        const int k0 = (int)((long)Kg * t / lanes), k1 = (int)((long)Kg * (t + 1) / lanes);
        if (dw && k1 > k0) dw_columns(dw, dy, x, s, k0, k1, ws_t); /* this lane's columns */
    }
}
