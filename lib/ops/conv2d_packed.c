/* Convolution through a weight packed once: im2col's columns transposed to rows, the packed
 * GEMM, its output transposed back.  Shapes and why in conv2d_packed.h. */
#include "conv2d_packed.h"
#include "conv2d_lanes.h"
#include "im2col.h"
#include "core/profile.h"

#include <math.h>

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
    const conv_blocks b = blocks_of(s); /* rows (R, K), their columns (K, R), out (R, OC) */
    return (size_t)b.rows * (2 * (size_t)b.K + s->OC);
}

static int pointwise(const mcnn_conv2d_shape *s)
{
    return s->KH == 1 && s->KW == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h == 0 &&
           s->pad_w == 0;
}

/* dst[j·ldd + i] = src[i·lds + j] for i < rows, j < cols, in 16×16 tiles so that both sides
 * are read and written a cache line at a time. */
static void transpose(float *dst, size_t ldd, const float *src, size_t lds, int rows, int cols)
{
    const int tiles_i = (rows + 15) / 16;
    #pragma omp parallel for if ((long)rows * cols > 65536)
    for (int ti = 0; ti < tiles_i; ti++) {
        const int i0 = ti * 16, i1 = i0 + 16 < rows ? i0 + 16 : rows;
        for (int j0 = 0; j0 < cols; j0 += 16) {
            const int j1 = j0 + 16 < cols ? j0 + 16 : cols;
            for (int j = j0; j < j1; j++)
                for (int i = i0; i < i1; i++) dst[(size_t)j * ldd + i] = src[(size_t)i * lds + j];
        }
    }
}

/* The block's GEMM input rows (m, K) for images n0 .. n0+cnt-1 (whole), or for output rows
 * oh_a .. oh_b-1 of image n0: im2col's columns (K, m), transposed.  A pointwise conv's
 * columns are the input planes themselves. */
static void block_rows(float *rows, float *col, const float *x, const mcnn_conv2d_shape *s,
                       const conv_blocks *b, int n0, int cnt, int oh_a, int oh_b, int m)
{
    const size_t HW = (size_t)s->H * s->W, in = (size_t)s->IC * HW;
    const int OH = mcnn_conv2d_out_h(s);
    if (pointwise(s)) { /* planes (IC, HW): rows of an image are its pixels */
        if (b->out_rows)
            transpose(rows, b->K, x + n0 * in + (size_t)oh_a * b->OW, HW, b->K, m);
        else
            for (int j = 0; j < cnt; j++)
                transpose(rows + (size_t)j * b->P * b->K, b->K, x + (n0 + j) * in, HW, b->K,
                          b->P);
        return;
    }
    if (b->out_rows)
        mcnn_im2col_out_rows(col, m, x + n0 * in, s, OH, b->OW, oh_a, oh_b);
    else
        for (int j = 0; j < cnt; j++)
            mcnn_im2col(col + (size_t)j * b->P, m, x + (n0 + j) * in, s, OH, b->OW);
    transpose(rows, b->K, col, m, b->K, m);
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
    const int OH = mcnn_conv2d_out_h(s), P = bl.P, OC = s->OC, K = bl.K;
    float *rows = workspace, *col = rows + (size_t)bl.rows * K;  /* (R, K), (K, R) */
    float *out = col + (size_t)bl.rows * K;                       /* (R, OC)         */
    for (int n0 = 0; n0 < s->N; n0 += bl.out_rows ? 1 : bl.images) {
        const int cnt = bl.out_rows ? 1 : (s->N - n0 < bl.images ? s->N - n0 : bl.images);
        for (int oh = 0; oh < OH; oh += bl.out_rows ? bl.out_rows : OH) {
            const int oh_b = bl.out_rows && oh + bl.out_rows < OH ? oh + bl.out_rows : OH;
            const int m = bl.out_rows ? (oh_b - oh) * bl.OW : cnt * P;
            block_rows(rows, col, x, s, &bl, n0, cnt, oh, oh_b, m);
            if (b) /* the bias is the GEMM's C input, as in mcnn_conv2d_forward */
                for (int i = 0; i < m; i++)
                    for (int oc = 0; oc < OC; oc++) out[(size_t)i * OC + oc] = b[oc];
            if (mcnn_gemm_packed(m, rows, K, pk, NULL, b ? 1.0f : 0.0f, out, OC) != MCNN_OK) {
                if (w) mcnn_conv2d_forward_lanes(y, x, w, b, s, workspace, lanes); /* no memory */
                else /* w released (inference only): NaN, never a plausible wrong number */
                    for (size_t i = 0; i < (size_t)s->N * OC * P; i++) y[i] = NAN;
                return;
            }
            /* out (m, OC) -> y (n, OC, P): image by image, or the rows' pixels of one */
            for (int j = 0; j < cnt; j++)
                transpose(y + ((size_t)(n0 + j) * OC) * P + (size_t)oh * bl.OW, P,
                          out + (size_t)j * P * OC, OC, bl.out_rows ? m : P, OC);
        }
    }
}
