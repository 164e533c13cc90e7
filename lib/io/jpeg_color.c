/* From component planes to pixels: chroma upsampling, then YCbCr -> RGB (JFIF 1.02).
 *
 * Upsampling.  A component sampled h x v against the largest factors hmax x vmax has one
 * sample per (hmax/h) x (vmax/v) pixels.  We expand it exactly as libjpeg-turbo (PIL's
 * decoder) does by default ("fancy upsampling"), so that the pixels agree:
 *   2x1 (4:2:2)  triangle filter along x: each output is 3/4 of the nearer input sample and
 *                1/4 of the next one, rounding biases 1 and 2 alternating (an ordered dither)
 *   1x2 (4:4:0)  the same filter along y, bias 1 for the upper and 2 for the lower row
 *   2x2 (4:2:0)  the filter along y, then along x (weights 9/16, 3/16, 3/16, 1/16),
 *                biases 8 and 7 alternating
 *   anything else (3x1, 4x1, ...), and 2x1 / 2x2 when the component is at most 2 samples
 *   wide: each sample is repeated ("box").
 * At the image edges the missing neighbour is the edge sample itself: libjpeg repeats the
 * first and last real row and column of the component, where "real" means the
 * ceil(W * h / hmax) x ceil(H * v / vmax) samples that cover the image, not the padding of
 * the last block.
 *
 * Colour.  JFIF's YCbCr is BT.601 "full range":
 *   R = Y + 1.402 (Cr - 128)
 *   G = Y - 0.34414 (Cb - 128) - 0.71414 (Cr - 128)
 *   B = Y + 1.772 (Cb - 128)
 * done like libjpeg in 16-bit fixed point with tables, rounding each term the same way.
 * A 3-component file is YCbCr unless an Adobe APP14 marker says transform 0 or the component
 * ids spell 'R','G','B' (libjpeg's rules, in its order); then the planes are RGB already. */
#include "jpeg_internal.h"

#include <stdlib.h>
#include <string.h>

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* One row doubled horizontally with the triangle filter: output 2i is 3/4 of sample i and 1/4
 * of sample i-1, output 2i+1 the same with sample i+1, the edge sample standing in for the
 * missing neighbour; (sum + bias) >> shift rounds.  in(i) is a row of samples (4:2:2, shift 2)
 * or of vertical sums already at 4x scale (4:2:0, shift 4).  Only the first W outputs are
 * written. */
#define FANCY_ROW(in, n, W, o, bias_even, bias_odd, shift)                                      \
    do {                                                                                        \
        int prev_ = in(0), here_ = prev_;                                                       \
        for (int i_ = 0; i_ < (n); i_++) {                                                      \
            int next_ = i_ + 1 < (n) ? in(i_ + 1) : here_;                                      \
            if (2 * i_ < (W)) (o)[2 * i_] = (uint8_t)((3 * here_ + prev_ + (bias_even)) >> (shift)); \
            if (2 * i_ + 1 < (W))                                                               \
                (o)[2 * i_ + 1] = (uint8_t)((3 * here_ + next_ + (bias_odd)) >> (shift));       \
            prev_ = here_, here_ = next_;                                                       \
        }                                                                                       \
    } while (0)

/* Component c -> W x H samples in out (row stride W); rh = hmax/h, rv = vmax/v. */
static void upsample(uint8_t *out, const jpeg_component *c, int W, int H, int rh, int rv)
{
    const uint8_t *in = c->plane;
    const size_t stride = (size_t)c->bw_used * 8;
    const int cw = c->width, ch = c->height;
    #pragma omp parallel for schedule(static) if (H > 256)
    for (int y = 0; y < H; y++) {
        uint8_t *o = out + (size_t)y * W;
        /* the nearer input row, and the farther one for the vertical filters */
        const int cy = y / rv, fy = (y & 1) ? imin(cy + 1, ch - 1) : imax(cy - 1, 0);
        const uint8_t *near = in + (size_t)cy * stride, *far = in + (size_t)fy * stride;
        if (rh == 2 && rv == 1 && cw > 2) {
#define SAMPLE(i) near[i]
            FANCY_ROW(SAMPLE, cw, W, o, 1, 2, 2);
#undef SAMPLE
        } else if (rh == 1 && rv == 2) {
            const int bias = (y & 1) ? 2 : 1;
            for (int x = 0; x < W; x++) o[x] = (uint8_t)((3 * near[x] + far[x] + bias) >> 2);
        } else if (rh == 2 && rv == 2 && cw > 2) {
#define COLSUM(i) (3 * near[i] + far[i]) /* the vertical pass, kept at 4x scale */
            FANCY_ROW(COLSUM, cw, W, o, 8, 7, 4);
#undef COLSUM
        } else {
            for (int x = 0; x < W; x++) o[x] = near[x / rh];
        }
    }
}

mcnn_status mcnn_jpeg_color_output(jpeg_decoder *d, unsigned char **pixels, int *channels)
{
    const int W = d->width, H = d->height, nc = d->ncomp;
    unsigned char *px = malloc((size_t)W * H * nc);
    uint8_t *tmp[JPEG_MAX_COMPS] = {0};
    const uint8_t *plane[JPEG_MAX_COMPS];
    size_t stride[JPEG_MAX_COMPS];
    mcnn_status st = MCNN_OK;
    if (!px) {
        st = mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory for %dx%d pixels", d->name, W, H);
        goto done;
    }
    for (int i = 0; i < nc; i++) {
        jpeg_component *c = &d->comp[i];
        int rh = d->hmax / c->h, rv = d->vmax / c->v;
        if (rh == 1 && rv == 1) { /* full size: read the IDCT plane in place */
            plane[i] = c->plane, stride[i] = (size_t)c->bw_used * 8;
            continue;
        }
        tmp[i] = malloc((size_t)W * H);
        if (!tmp[i]) {
            st = mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory to upsample %dx%d", d->name, W, H);
            goto done;
        }
        upsample(tmp[i], c, W, H, rh, rv);
        plane[i] = tmp[i], stride[i] = (size_t)W;
    }

    int rgb = 0; /* libjpeg's guess of the colour space of 3 components */
    if (nc == 3) {
        if (d->saw_jfif) rgb = 0;
        else if (d->saw_adobe) rgb = d->adobe_transform == 0;
        else rgb = d->comp[0].id == 'R' && d->comp[1].id == 'G' && d->comp[2].id == 'B';
    }

    /* Tables as libjpeg builds them (jdcolor.c): 16 fractional bits, FIX rounds to nearest,
     * Cr->R and Cb->B rounded to integers, the two G terms summed and then rounded once. */
#define SCALEBITS 16
#define ONE_HALF ((int32_t)1 << (SCALEBITS - 1))
#define FIX16(x) ((int32_t)((x) * (1 << SCALEBITS) + 0.5))
    int cr_r[256], cb_b[256];
    int32_t cr_g[256], cb_g[256];
    for (int i = 0; i < 256; i++) {
        int32_t x = i - 128;
        cr_r[i] = (int)((FIX16(1.40200) * x + ONE_HALF) >> SCALEBITS);
        cb_b[i] = (int)((FIX16(1.77200) * x + ONE_HALF) >> SCALEBITS);
        cr_g[i] = -FIX16(0.71414) * x;
        cb_g[i] = -FIX16(0.34414) * x + ONE_HALF;
    }

    #pragma omp parallel for schedule(static) if (H > 256)
    for (int y = 0; y < H; y++) {
        unsigned char *o = px + (size_t)y * W * nc;
        const uint8_t *p0 = plane[0] + y * stride[0];
        if (nc == 1) {
            memcpy(o, p0, (size_t)W);
            continue;
        }
        const uint8_t *p1 = plane[1] + y * stride[1], *p2 = plane[2] + y * stride[2];
        if (rgb) {
            for (int x = 0; x < W; x++, o += 3) o[0] = p0[x], o[1] = p1[x], o[2] = p2[x];
            continue;
        }
        for (int x = 0; x < W; x++, o += 3) {
            int Y = p0[x], cb = p1[x], cr = p2[x];
            int r = Y + cr_r[cr], g = Y + (int)((cb_g[cb] + cr_g[cr]) >> SCALEBITS),
                b = Y + cb_b[cb];
            o[0] = (unsigned char)(r < 0 ? 0 : r > 255 ? 255 : r);
            o[1] = (unsigned char)(g < 0 ? 0 : g > 255 ? 255 : g);
            o[2] = (unsigned char)(b < 0 ? 0 : b > 255 ? 255 : b);
        }
    }
    *pixels = px, *channels = nc;
    px = NULL;
done:
    for (int i = 0; i < nc; i++) free(tmp[i]);
    free(px);
    return st;
}
