/* im2col / col2im for one image (see im2col.h for the layout).
 * Both loop over the rows (c, kh, kw) of col.  For each row, the output positions whose input
 * pixel lies inside the image form one contiguous range [lo, hi) per axis, so the inner loops
 * are branch-free copies (a memcpy when the stride is 1) and the padding is written as zeros. */
#include "im2col.h"

#include <string.h>

/* The outputs o in [0, O) with 0 <= o·stride + off < L form the range [*lo, *hi). */
static void valid_range(int O, int stride, int off, int L, int *lo, int *hi)
{
    int a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int b = L - 1 - off < 0 ? 0 : (L - 1 - off) / stride + 1;
    if (b > O) b = O;
    if (a > b) a = b;
    *lo = a, *hi = b;
}

/* Row r of col (input plane c, kernel offset (kh, kw)), output rows oh_a .. oh_b-1 only: col_r
 * holds (oh_b - oh_a)·OW entries. */
static void im2col_row(float *col_r, const float *x, const mcnn_conv2d_shape *s, int OH, int OW,
                       int r, int oh_a, int oh_b)
{
    const int H = s->H, W = s->W, KH = s->KH, KW = s->KW;
    const int c = r / (KH * KW), kh = (r / KW) % KH, kw = r % KW;
    const float *x_c = x + (size_t)c * H * W;
    const int hoff = kh * s->dil_h - s->pad_h, woff = kw * s->dil_w - s->pad_w;
    int oh0, oh1, ow0, ow1;
    valid_range(OH, s->stride_h, hoff, H, &oh0, &oh1);
    valid_range(OW, s->stride_w, woff, W, &ow0, &ow1);
    oh0 = oh0 < oh_a ? oh_a : oh0 > oh_b ? oh_b : oh0; /* the valid rows within [oh_a, oh_b) */
    oh1 = oh1 > oh_b ? oh_b : oh1 < oh0 ? oh0 : oh1;
    memset(col_r, 0, (size_t)(oh0 - oh_a) * OW * sizeof(float));          /* top padding    */
    for (int oh = oh0; oh < oh1; oh++) {
        const float *x_row = x_c + (size_t)(oh * s->stride_h + hoff) * W;
        float *out = col_r + (size_t)(oh - oh_a) * OW;
        for (int ow = 0; ow < ow0; ow++) out[ow] = 0.0f;                      /* left padding   */
        if (s->stride_w == 1)
            memcpy(out + ow0, x_row + ow0 + woff, (size_t)(ow1 - ow0) * sizeof(float));
        else
            for (int ow = ow0; ow < ow1; ow++) out[ow] = x_row[ow * s->stride_w + woff];
        for (int ow = ow1; ow < OW; ow++) out[ow] = 0.0f;                     /* right padding  */
    }
    memset(col_r + (size_t)(oh1 - oh_a) * OW, 0, (size_t)(oh_b - oh1) * OW * sizeof(float));
}

void mcnn_im2col(float *col, int ld, const float *x, const mcnn_conv2d_shape *s, int OH, int OW)
{
    const int rows = s->IC * s->KH * s->KW;
    #pragma omp parallel for if ((size_t)rows * OH * OW > 65536)
    for (int r = 0; r < rows; r++) im2col_row(col + (size_t)r * ld, x, s, OH, OW, r, 0, OH);
}

void mcnn_im2col_rows(float *col, int ld, const float *x, const mcnn_conv2d_shape *s, int OH,
                      int OW, int r0, int r1)
{
    for (int r = r0; r < r1; r++) im2col_row(col + (size_t)(r - r0) * ld, x, s, OH, OW, r, 0, OH);
}

void mcnn_im2col_out_rows(float *col, int ld, const float *x, const mcnn_conv2d_shape *s, int OH,
                          int OW, int oh_a, int oh_b)
{
    const int rows = s->IC * s->KH * s->KW;
    for (int r = 0; r < rows; r++) im2col_row(col + (size_t)r * ld, x, s, OH, OW, r, oh_a, oh_b);
}

void mcnn_col2im_add(float *dx, const float *dcol, int ld, const mcnn_conv2d_shape *s, int OH,
                     int OW)
{
    const int H = s->H, W = s->W, KH = s->KH, KW = s->KW;
    /* Split input channels across threads: the rows (c, ., .) only ever write to plane c, so no
     * two threads touch one pixel, and each pixel's sum runs in the same (kh, kw, oh, ow) order
     * whatever the thread count. */
    #pragma omp parallel for if ((size_t)s->IC * KH * KW * OH * OW > 65536)
    for (int c = 0; c < s->IC; c++) {
        float *dx_c = dx + (size_t)c * H * W;
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                const float *dcol_r = dcol + ((size_t)(c * KH + kh) * KW + kw) * ld;
                const int hoff = kh * s->dil_h - s->pad_h, woff = kw * s->dil_w - s->pad_w;
                int oh0, oh1, ow0, ow1;
                valid_range(OH, s->stride_h, hoff, H, &oh0, &oh1);
                valid_range(OW, s->stride_w, woff, W, &ow0, &ow1);
                for (int oh = oh0; oh < oh1; oh++) {
                    float *dx_row = dx_c + (size_t)(oh * s->stride_h + hoff) * W;
                    const float *in = dcol_r + (size_t)oh * OW;
                    for (int ow = ow0; ow < ow1; ow++) dx_row[ow * s->stride_w + woff] += in[ow];
                }
            }
    }
}
