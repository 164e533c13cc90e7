/* 2-d convolution (torch.nn.Conv2d: stride, padding, dilation, groups, optional bias) as
 * im2col + GEMM, one image at a time.  G = groups, ICg = IC/G, OCg = OC/G, Kg = ICg·KH·KW,
 * P = OH·OW.  For image n and group g, with col_g (Kg, P) the im2col rows of that group and
 * w_g (OCg, Kg) the group's weights viewed as a matrix:
 *   forward   y_g   = w_g · col_g + b                      (OCg, Kg)·(Kg, P)  -> (OCg, P)
 *   backward  dw_g += dy_g · col_gᵀ                         (OCg, P)·(P, Kg)   -> (OCg, Kg)
 *             dcol_g = w_gᵀ · dy_g,  dx += col2im(dcol)      (Kg, OCg)·(OCg, P) -> (Kg, P)
 *             db    += sum of dy over n and P
 * A 1×1 convolution with stride 1 and no padding needs no im2col: x_n (IC, H·W) already is col.
 *
 * Threads: images run one after another and every GEMM (and im2col/col2im) is itself
 * multithreaded.  So the workspace is one image's columns whatever the thread count, and dw is
 * accumulated image by image in a fixed order: the result does not depend on the thread count.
 * See docs/ops/conv2d.md for the shapes drawn out and the measurements behind this choice. */
#include "im2col.h"

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

size_t mcnn_conv2d_workspace_floats(const mcnn_conv2d_shape *s)
{
    if (conv_is_pointwise(s)) return 0;
    return (size_t)s->IC * s->KH * s->KW * mcnn_conv2d_out_h(s) * mcnn_conv2d_out_w(s);
}

void mcnn_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                         const mcnn_conv2d_shape *s, float *workspace)
{
    const int OH = mcnn_conv2d_out_h(s), OW = mcnn_conv2d_out_w(s), P = OH * OW;
    const int G = s->groups, OCg = s->OC / G, Kg = s->IC / G * s->KH * s->KW;
    const int pointwise = conv_is_pointwise(s);
    for (int n = 0; n < s->N; n++) {
        const float *x_n = x + (size_t)n * s->IC * s->H * s->W; /* (IC, H, W)  */
        float *y_n = y + (size_t)n * s->OC * P;                   /* (OC, OH, OW) */
        const float *col = x_n;                                   /* (G·Kg, P)    */
        if (!pointwise) {
            mcnn_im2col(workspace, x_n, s, OH, OW);
            col = workspace;
        }
        if (b) { /* the bias enters the GEMM as its C input (beta = 1) */
            #pragma omp parallel for if ((size_t)s->OC * P > 65536)
            for (int oc = 0; oc < s->OC; oc++)
                for (int p = 0; p < P; p++) y_n[(size_t)oc * P + p] = b[oc];
        }
        for (int g = 0; g < G; g++) /* y_g (OCg, P) = w_g (OCg, Kg) · col_g (Kg, P) [+ b] */
            mcnn_gemm(0, 0, OCg, P, Kg, 1.0f, w + (size_t)g * OCg * Kg, Kg,
                      col + (size_t)g * Kg * P, P, b ? 1.0f : 0.0f, y_n + (size_t)g * OCg * P, P);
    }
}

void mcnn_conv2d_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, const mcnn_conv2d_shape *s, float *workspace)
{
    const int OH = mcnn_conv2d_out_h(s), OW = mcnn_conv2d_out_w(s), P = OH * OW;
    const int G = s->groups, OCg = s->OC / G, ICg = s->IC / G, Kg = ICg * s->KH * s->KW;
    const size_t HW = (size_t)s->H * s->W;
    const int pointwise = conv_is_pointwise(s);

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

    for (int n = 0; n < s->N; n++) {
        const float *x_n = x + (size_t)n * s->IC * HW; /* (IC, H, W)   */
        const float *dy_n = dy + (size_t)n * s->OC * P; /* (OC, OH, OW) */
        if (dw) {
            const float *col = x_n; /* (G·Kg, P), recomputed: forward keeps no columns */
            if (!pointwise) {
                mcnn_im2col(workspace, x_n, s, OH, OW);
                col = workspace;
            }
            for (int g = 0; g < G; g++) /* dw_g (OCg, Kg) += dy_g (OCg, P) · col_gᵀ (P, Kg) */
                mcnn_gemm(0, 1, OCg, Kg, P, 1.0f, dy_n + (size_t)g * OCg * P, P,
                          col + (size_t)g * Kg * P, P, 1.0f, dw + (size_t)g * OCg * Kg, Kg);
        }
        if (dx) {
            float *dx_n = dx + (size_t)n * s->IC * HW;
            if (pointwise) { /* dx_g (ICg, HW) += w_gᵀ (ICg, OCg) · dy_g (OCg, HW) */
                for (int g = 0; g < G; g++)
                    mcnn_gemm(1, 0, ICg, P, OCg, 1.0f, w + (size_t)g * OCg * Kg, Kg,
                              dy_n + (size_t)g * OCg * P, P, 1.0f, dx_n + (size_t)g * ICg * HW,
                              P);
            } else { /* dcol_g (Kg, P) = w_gᵀ (Kg, OCg) · dy_g (OCg, P), reusing the workspace */
                for (int g = 0; g < G; g++)
                    mcnn_gemm(1, 0, Kg, P, OCg, 1.0f, w + (size_t)g * OCg * Kg, Kg,
                              dy_n + (size_t)g * OCg * P, P, 0.0f, workspace + (size_t)g * Kg * P,
                              P);
                mcnn_col2im_add(dx_n, workspace, s, OH, OW);
            }
        }
    }
}
