/* Convolution through a weight packed once: im2row, mcnn_gemm_packed, a transposing scatter.
 * Shapes and why in conv2d_packed.h. */
#include "conv2d_packed.h"
#include "conv2d_lanes.h"
#include "core/profile.h"

/* Rows per block: about 1 MB of inputs (the block is written, then read once as the GEMM packs
 * it), at least 96 rows so that a wide weight (ResNet-50's last 3×3: K = 4608) is read from
 * the cache for enough pixels, and never more than the batch has. */
#define PACKED_ROWS_FLOATS (256 * 1024)
#define PACKED_MIN_ROWS 96

static long packed_rows(const mcnn_conv2d_shape *s)
{
    const long K = (long)s->IC * s->KH * s->KW;
    const long total = (long)s->N * mcnn_conv2d_out_h(s) * mcnn_conv2d_out_w(s);
    long r = PACKED_ROWS_FLOATS / (K > 0 ? K : 1);
    if (r < PACKED_MIN_ROWS) r = PACKED_MIN_ROWS;
    return r < total ? r : total;
}

size_t mcnn_conv2d_packed_workspace_floats(const mcnn_conv2d_shape *s)
{
    return (size_t)packed_rows(s) * ((size_t)s->IC * s->KH * s->KW + s->OC);
}

/* rows (m, K): row i holds the K inputs of output pixel r0 + i (image r / P, pixel r % P), in
 * the (c, kh, kw) order of the weight, 0 in the padding. */
static void im2row(float *rows, const float *x, const mcnn_conv2d_shape *s, int OH, int OW,
                   long r0, int m)
{
    const int K = s->IC * s->KH * s->KW, P = OH * OW;
    const size_t HW = (size_t)s->H * s->W;
    #pragma omp parallel for if ((long)m * K > 65536)
    for (int i = 0; i < m; i++) {
        const long r = r0 + i;
        const int p = (int)(r % P), ih0 = p / OW * s->stride_h - s->pad_h;
        const int iw0 = p % OW * s->stride_w - s->pad_w;
        const float *xn = x + (size_t)(r / P) * s->IC * HW;
        float *dst = rows + (size_t)i * K;
        for (int c = 0; c < s->IC; c++)
            for (int kh = 0; kh < s->KH; kh++) {
                const int ih = ih0 + kh * s->dil_h;
                const float *xr = xn + c * HW + (size_t)ih * s->W;
                for (int kw = 0; kw < s->KW; kw++) {
                    const int iw = iw0 + kw * s->dil_w;
                    *dst++ = ih >= 0 && ih < s->H && iw >= 0 && iw < s->W ? xr[iw] : 0.0f;
                }
            }
    }
}

/* y[n, oc, p] = out[i, oc] for the pixels r0 .. r0+m-1, a run of pixels of one image at a time. */
static void scatter(float *y, const float *out, int OC, int P, long r0, int m)
{
    #pragma omp parallel for if ((long)m * OC > 65536)
    for (int oc = 0; oc < OC; oc++)
        for (int i = 0; i < m;) {
            const long r = r0 + i;
            const int p = (int)(r % P), len = P - p < m - i ? P - p : m - i;
            float *yd = y + ((size_t)(r / P) * OC + oc) * P + p;
            const float *src = out + (size_t)i * OC + oc;
            for (int t = 0; t < len; t++) yd[t] = src[(size_t)t * OC];
            i += len;
        }
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
    const int OH = mcnn_conv2d_out_h(s), OW = mcnn_conv2d_out_w(s), P = OH * OW, OC = s->OC;
    const int K = s->IC * s->KH * s->KW;
    const long total = (long)s->N * P, R = packed_rows(s);
    float *rows = workspace, *out = workspace + (size_t)R * K; /* (R, K), (R, OC) */
    for (long r0 = 0; r0 < total; r0 += R) {
        const int m = (int)(total - r0 < R ? total - r0 : R);
        im2row(rows, x, s, OH, OW, r0, m);
        if (b) /* the bias is the GEMM's C input, as in mcnn_conv2d_forward */
            for (int i = 0; i < m; i++)
                for (int oc = 0; oc < OC; oc++) out[(size_t)i * OC + oc] = b[oc];
        if (mcnn_gemm_packed(m, rows, K, pk, NULL, b ? 1.0f : 0.0f, out, OC) != MCNN_OK) {
            mcnn_conv2d_forward_lanes(y, x, w, b, s, workspace, lanes); /* out of memory */
            return;
        }
        scatter(y, out, OC, P, r0, m);
    }
}
