/* Pooling over each (H, W) plane, x (N, C, H, W) -> y (N, C, OH, OW), floor mode:
 *   OH = (H + 2·pad_h - KH) / stride_h + 1
 * and the window of output oh starts at oh·stride_h - pad_h.
 * Max pool (torch.nn.MaxPool2d): padding counts as -inf, so a window takes the max over its
 * in-image part; argmax saves the index ih·W + iw of the input taken.  Ties keep the first max
 * in row-major window order and a NaN wins, as PyTorch's CPU kernel does.
 *   backward: dx[argmax] += dy.
 * Average pool (torch.nn.AvgPool2d, count_include_pad=True): the divisor is the window's size
 * clipped to the padded image (in floor mode always KH·KW), padding counting as zeros.
 *   backward: every in-image input of the window gets dy / divisor.
 * Global average pool (torch.nn.AdaptiveAvgPool2d(1) + flatten): y (N, C) = mean over HW.
 * Planes are independent: threads split the N·C planes, so every gradient element is written
 * by one thread in a fixed order. */
#include "internal.h"
#include "core/profile.h"

#include <math.h>

int mcnn_pool2d_out_h(const mcnn_pool2d_shape *s)
{
    int span = s->H + 2 * s->pad_h - s->KH;
    return span < 0 ? 0 : span / s->stride_h + 1;
}

int mcnn_pool2d_out_w(const mcnn_pool2d_shape *s)
{
    int span = s->W + 2 * s->pad_w - s->KW;
    return span < 0 ? 0 : span / s->stride_w + 1;
}

static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }

/* The outputs o in [0, O) whose input o·stride + off lies in [0, L): the range [*lo, *hi). */
static void in_image(int O, int stride, int off, int L, int *lo, int *hi)
{
    int a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int b = L - 1 - off < 0 ? 0 : (L - 1 - off) / stride + 1;
    *hi = imin(b, O);
    *lo = imin(a, *hi);
}

/* Values only (no argmax): a whole row of outputs at a time.  Each step of the window, in the
 * same row-major order as one window at a time, runs across the row, a loop that vectorises:
 * 5x faster than tracking indices window by window (64 x 112 x 112, 3 x 3 / 2). */
static void maxpool_values(float *y, const float *x, const mcnn_pool2d_shape *s)
{
    const int H = s->H, W = s->W, OH = mcnn_pool2d_out_h(s), OW = mcnn_pool2d_out_w(s);
    const int planes = s->N * s->C;
    #pragma omp parallel for if ((size_t)planes * OH * OW * s->KH * s->KW > 65536)
    for (int pl = 0; pl < planes; pl++) {
        const float *x_p = x + (size_t)pl * H * W;
        for (int oh = 0; oh < OH; oh++) {
            float *y_r = y + ((size_t)pl * OH + oh) * OW;
            const int h0 = oh * s->stride_h - s->pad_h;
            for (int ow = 0; ow < OW; ow++) y_r[ow] = -INFINITY;
            for (int ih = imax(h0, 0); ih < imin(h0 + s->KH, H); ih++)
                for (int kw = 0; kw < s->KW; kw++) {
                    const int off = kw - s->pad_w; /* input column ow·stride + off */
                    int lo, hi;
                    in_image(OW, s->stride_w, off, W, &lo, &hi);
                    const float *x_r = x_p + (size_t)ih * W + off;
                    #pragma omp simd
                    for (int ow = lo; ow < hi; ow++) {
                        const float v = x_r[ow * s->stride_w];
                        y_r[ow] = v > y_r[ow] || v != v ? v : y_r[ow]; /* a NaN wins */
                    }
                }
        }
    }
}

void mcnn_maxpool2d_forward(float *y, int32_t *argmax, const float *x,
                            const mcnn_pool2d_shape *s)
{
    MCNN_PROF_SCOPE(MCNN_PROF_POOL);
    if (!argmax) {
        maxpool_values(y, x, s);
        return;
    }
    const int H = s->H, W = s->W, OH = mcnn_pool2d_out_h(s), OW = mcnn_pool2d_out_w(s);
    const int planes = s->N * s->C;
    #pragma omp parallel for if ((size_t)planes * OH * OW * s->KH * s->KW > 65536)
    for (int pl = 0; pl < planes; pl++) {
        const float *x_p = x + (size_t)pl * H * W;
        float *y_p = y + (size_t)pl * OH * OW;
        int32_t *a_p = argmax + (size_t)pl * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            const int h0 = oh * s->stride_h - s->pad_h;
            const int ih0 = imax(h0, 0), ih1 = imin(h0 + s->KH, H);
            for (int ow = 0; ow < OW; ow++) {
                const int w0 = ow * s->stride_w - s->pad_w;
                const int iw0 = imax(w0, 0), iw1 = imin(w0 + s->KW, W);
                float best = -INFINITY;
                int32_t best_i = ih0 * W + iw0; /* kept if the whole window is -inf */
                for (int ih = ih0; ih < ih1; ih++)
                    for (int iw = iw0; iw < iw1; iw++) {
                        float v = x_p[ih * W + iw];
                        if (v > best || isnan(v)) best = v, best_i = ih * W + iw;
                    }
                y_p[oh * OW + ow] = best;
                a_p[oh * OW + ow] = best_i;
            }
        }
    }
}

void mcnn_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax,
                             const mcnn_pool2d_shape *s)
{
    MCNN_PROF_SCOPE(MCNN_PROF_POOL);
    if (!dx) return;
    const int HW = s->H * s->W, OHW = mcnn_pool2d_out_h(s) * mcnn_pool2d_out_w(s);
    const int planes = s->N * s->C;
    #pragma omp parallel for if ((size_t)planes * OHW > 65536)
    for (int pl = 0; pl < planes; pl++) {
        float *dx_p = dx + (size_t)pl * HW;
        const float *dy_p = dy + (size_t)pl * OHW;
        const int32_t *a_p = argmax + (size_t)pl * OHW;
        for (int o = 0; o < OHW; o++) dx_p[a_p[o]] += dy_p[o]; /* overlapping windows add up */
    }
}

/* The window of output o along one axis: in-image range [*i0, *i1) and the divisor's factor. */
static int avg_window(int o, int stride, int pad, int K, int L, int *i0, int *i1)
{
    int start = o * stride - pad;
    int end = imin(start + K, L + pad); /* clipped to the padded image, as PyTorch */
    int count = end - start;
    *i0 = imax(start, 0), *i1 = imin(end, L);
    return count;
}

void mcnn_avgpool2d_forward(float *y, const float *x, const mcnn_pool2d_shape *s)
{
    MCNN_PROF_SCOPE(MCNN_PROF_POOL);
    const int H = s->H, W = s->W, OH = mcnn_pool2d_out_h(s), OW = mcnn_pool2d_out_w(s);
    const int planes = s->N * s->C;
    #pragma omp parallel for if ((size_t)planes * OH * OW * s->KH * s->KW > 65536)
    for (int pl = 0; pl < planes; pl++) {
        const float *x_p = x + (size_t)pl * H * W;
        float *y_p = y + (size_t)pl * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            int ih0, ih1, iw0, iw1;
            int ch = avg_window(oh, s->stride_h, s->pad_h, s->KH, H, &ih0, &ih1);
            for (int ow = 0; ow < OW; ow++) {
                int cw = avg_window(ow, s->stride_w, s->pad_w, s->KW, W, &iw0, &iw1);
                float sum = 0.0f;
                for (int ih = ih0; ih < ih1; ih++)
                    for (int iw = iw0; iw < iw1; iw++) sum += x_p[ih * W + iw];
                y_p[oh * OW + ow] = sum / (float)(ch * cw);
            }
        }
    }
}

void mcnn_avgpool2d_backward(float *dx, const float *dy, const mcnn_pool2d_shape *s)
{
    MCNN_PROF_SCOPE(MCNN_PROF_POOL);
    if (!dx) return;
    const int H = s->H, W = s->W, OH = mcnn_pool2d_out_h(s), OW = mcnn_pool2d_out_w(s);
    const int planes = s->N * s->C;
    #pragma omp parallel for if ((size_t)planes * OH * OW * s->KH * s->KW > 65536)
    for (int pl = 0; pl < planes; pl++) {
        float *dx_p = dx + (size_t)pl * H * W;
        const float *dy_p = dy + (size_t)pl * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            int ih0, ih1, iw0, iw1;
            int ch = avg_window(oh, s->stride_h, s->pad_h, s->KH, H, &ih0, &ih1);
            for (int ow = 0; ow < OW; ow++) {
                int cw = avg_window(ow, s->stride_w, s->pad_w, s->KW, W, &iw0, &iw1);
                float g = dy_p[oh * OW + ow] / (float)(ch * cw);
                for (int ih = ih0; ih < ih1; ih++)
                    for (int iw = iw0; iw < iw1; iw++) dx_p[ih * W + iw] += g;
            }
        }
    }
}

void mcnn_global_avgpool_forward(float *y, const float *x, int N, int C, int HW)
{
    MCNN_PROF_SCOPE(MCNN_PROF_POOL);
    const int planes = N * C;
    #pragma omp parallel for if ((size_t)planes * HW > 65536)
    for (int pl = 0; pl < planes; pl++) {
        const float *x_p = x + (size_t)pl * HW;
        double sum = 0.0; /* double: HW can be large (a 56×56 plane) */
        for (int i = 0; i < HW; i++) sum += x_p[i];
        y[pl] = (float)(sum / HW);
    }
}

void mcnn_global_avgpool_backward(float *dx, const float *dy, int N, int C, int HW)
{
    MCNN_PROF_SCOPE(MCNN_PROF_POOL);
    if (!dx) return;
    const int planes = N * C;
    #pragma omp parallel for if ((size_t)planes * HW > 65536)
    for (int pl = 0; pl < planes; pl++) {
        float *dx_p = dx + (size_t)pl * HW;
        const float g = dy[pl] / (float)HW;
        for (int i = 0; i < HW; i++) dx_p[i] += g;
    }
}
