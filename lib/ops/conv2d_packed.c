/* Convolution through a weight packed once: the packed GEMM reads im2col's columns as xᵀ and
 * writes channels-first output as yᵀ, so nothing is transposed.  Shapes and why in
 * conv2d_packed.h. */
#include "conv2d_packed.h"
#include "conv2d_lanes.h"
#include "im2col.h"
#include "core/profile.h"
#include "kernels/lowp_internal.h"

#include <math.h>
#include <string.h>

/* Rows (output pixels) per block: about 1 MB of inputs, at least 96 rows so that a wide weight
 * (ResNet-50's last 3×3: K = 4608) is read from the cache for enough pixels.  A block is whole
 * images when one image has fewer pixels than that (small maps are batched, as
 * mcnn_conv2d_forward batches them), else a range of output rows of one image. */
#define PACKED_ROWS_FLOATS (256 * 1024)
#define PACKED_MIN_ROWS 96

typedef struct conv_blocks {
    int P, OW, K;
    int images;      /* per block, when whole images fit (else 1 with rows_per below)      */
    int out_rows;    /* output rows (of OW pixels) per block when an image is cut          */
    long rows;       /* the most pixels a block holds                                      */
} conv_blocks;

static conv_blocks blocks_of(const mcnn_conv2d_shape *s)
{
    conv_blocks b = {mcnn_conv2d_out_h(s) * mcnn_conv2d_out_w(s), mcnn_conv2d_out_w(s),
                     s->IC * s->KH * s->KW, 1, 0, 0};
    long r = PACKED_ROWS_FLOATS / (b.K > 0 ? b.K : 1);
    if (r < PACKED_MIN_ROWS) r = PACKED_MIN_ROWS;
    if (b.P <= r) {
        b.images = (int)(r / (b.P > 0 ? b.P : 1));
        if (b.images > s->N) b.images = s->N;
        b.rows = (long)b.images * b.P;
    } else {
        b.out_rows = (int)(r / b.OW) > 0 ? (int)(r / b.OW) : 1;
        b.rows = (long)b.out_rows * b.OW;
    }
    return b;
}

size_t mcnn_conv2d_packed_workspace_floats(const mcnn_conv2d_shape *s)
{
    const conv_blocks b = blocks_of(s); /* columns (K, R), out (OC, R) */
    return (size_t)b.rows * ((size_t)b.K + s->OC);
}

static int pointwise(const mcnn_conv2d_shape *s)
{
    return s->KH == 1 && s->KW == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h == 0 &&
           s->pad_w == 0;
}

/* The block's columns (K, m) for images n0 .. n0+cnt-1 (whole), or for output rows
 * oh_a .. oh_b-1 of image n0: im2col's.  A pointwise conv's columns are the input planes:
 * one image's are read in place (the return value), several are copied side by side. */
static const float *block_cols(float *col, const float *x, const mcnn_conv2d_shape *s,
                               const conv_blocks *b, int n0, int cnt, int oh_a, int oh_b, int m,
                               int *ldx)
{
    const size_t HW = (size_t)s->H * s->W, in = (size_t)s->IC * HW;
    const int OH = mcnn_conv2d_out_h(s);
    *ldx = m;
    if (pointwise(s) && cnt == 1) {
        *ldx = (int)HW;
        return x + n0 * in + (size_t)oh_a * b->OW;
    }
    if (pointwise(s)) {
        for (int j = 0; j < cnt; j++)
            for (int k = 0; k < b->K; k++)
                memcpy(col + (size_t)k * m + (size_t)j * b->P, x + (n0 + j) * in + k * HW,
                       (size_t)b->P * sizeof(float));
    } else if (b->out_rows) {
        mcnn_im2col_out_rows(col, m, x + n0 * in, s, OH, b->OW, oh_a, oh_b);
    } else {
        for (int j = 0; j < cnt; j++)
            mcnn_im2col(col + (size_t)j * b->P, m, x + (n0 + j) * in, s, OH, b->OW);
    }
    return col;
}

void mcnn_conv2d_forward_packed(float *y, const float *x, const float *w, const mcnn_packed_b *pk,
                                const float *b, const mcnn_conv2d_shape *s, float *workspace,
                                int lanes)
{
    if (!pk || s->groups != 1) {
        mcnn_conv2d_forward_lanes(y, x, w, b, s, workspace, lanes);
        return;
    }
    MCNN_PROF_SCOPE(MCNN_PROF_CONV);
    const conv_blocks bl = blocks_of(s);
    const int OH = mcnn_conv2d_out_h(s), P = bl.P, OC = s->OC;
    float *col = workspace, *out = col + (size_t)bl.rows * bl.K; /* (K, R), (OC, R) */
    for (int n0 = 0; n0 < s->N; n0 += bl.out_rows ? 1 : bl.images) {
        const int cnt = bl.out_rows ? 1 : (s->N - n0 < bl.images ? s->N - n0 : bl.images);
        for (int oh = 0; oh < OH; oh += bl.out_rows ? bl.out_rows : OH) {
            const int oh_b = bl.out_rows && oh + bl.out_rows < OH ? oh + bl.out_rows : OH;
            const int m = bl.out_rows ? (oh_b - oh) * bl.OW : cnt * P;
            int ldx;
            const float *xt = block_cols(col, x, s, &bl, n0, cnt, oh, oh_b, m, &ldx);
            /* one image's outputs go straight to y (OC, P); several, to out (OC, m) first */
            float *yt = cnt == 1 ? y + (size_t)n0 * OC * P + (size_t)oh * bl.OW : out;
            const int ldy = cnt == 1 ? P : m;
            if (b) /* the bias is the GEMM's C input, as in mcnn_conv2d_forward */
                for (int oc = 0; oc < OC; oc++)
                    for (int i = 0; i < m; i++) yt[(size_t)oc * ldy + i] = b[oc];
            if (mcnn_gemm_packed_t(m, xt, ldx, pk, b ? 1.0f : 0.0f, yt, ldy) != MCNN_OK) {
                if (w) mcnn_conv2d_forward_lanes(y, x, w, b, s, workspace, lanes); /* no memory */
                else /* w released (inference only): NaN, never a plausible wrong number */
                    for (size_t i = 0; i < (size_t)s->N * OC * P; i++) y[i] = NAN;
                return;
            }
            if (cnt > 1) /* out (OC, cnt·P) -> y (cnt, OC, P): whole planes */
                for (int j = 0; j < cnt; j++)
                    for (int oc = 0; oc < OC; oc++)
                        memcpy(y + ((size_t)(n0 + j) * OC + oc) * P,
                               out + (size_t)oc * m + (size_t)j * P, (size_t)P * sizeof(float));
        }
    }
}
