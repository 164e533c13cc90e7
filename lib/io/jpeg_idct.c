/* Dequantisation and the 8x8 inverse DCT (T.81 A.3.3):
 *
 *   s(y,x) = 1/4 sum_u sum_v C(u) C(v) F(v,u) cos((2x+1)u pi/16) cos((2y+1)v pi/16)
 *   C(0) = 1/sqrt(2), C(k) = 1 otherwise;   F(v,u) = quantised coefficient * table value
 *   sample = clamp(round(s) + 128, 0, 255)
 *
 * mcnn_jpeg_idct_ref evaluates this sum in double precision: the plain twin.
 * mcnn_jpeg_idct_islow is what libjpeg (and so PIL) runs by default, "JDCT_ISLOW": the same
 * transform separated into 8 one-dimensional IDCTs down the columns and 8 along the rows, each
 * done with the Loeffler-Ligtenberg-Moschytz factorisation (12 multiplications), in integers
 * scaled by 2^13 (CONST_BITS), with 2 extra bits (PASS1_BITS) kept between the passes.  To
 * give the same pixels as libjpeg, the rounding points below are libjpeg's, one for one:
 * after the column pass (descale by 2^11) and after the row pass (by 2^18, which also removes
 * the factor 8 = 2*2*2 the two unnormalised 1-D passes leave).  The test checks islow
 * against the reference (IEEE 1180-style accuracy: never more than 1 apart), and the goldens
 * check it against libjpeg (equal). */
#include "jpeg_internal.h"

#include <math.h>
#include <stdlib.h>

#define CONST_BITS 13
#define PASS1_BITS 2
#define FIX(x) ((int64_t)((x) * (1 << CONST_BITS) + 0.5))

/* The rotations of the LL&M flow graph; c_k = cos(k pi / 16). */
#define FIX_0_298631336 FIX(0.298631336) /* sqrt(2) * (-c1+c3+c5-c7) */
#define FIX_0_390180644 FIX(0.390180644) /* sqrt(2) * (c3-c5)        */
#define FIX_0_541196100 FIX(0.541196100) /* sqrt(2) * c6             */
#define FIX_0_765366865 FIX(0.765366865) /* sqrt(2) * (c2-c6)        */
#define FIX_0_899976223 FIX(0.899976223) /* sqrt(2) * (c3-c7)        */
#define FIX_1_175875602 FIX(1.175875602) /* sqrt(2) * c3             */
#define FIX_1_501321110 FIX(1.501321110) /* sqrt(2) * (c1+c3-c5-c7)  */
#define FIX_1_847759065 FIX(1.847759065) /* sqrt(2) * (c2+c6)        */
#define FIX_1_961570560 FIX(1.961570560) /* sqrt(2) * (c3+c5)        */
#define FIX_2_053119869 FIX(2.053119869) /* sqrt(2) * (c1+c3-c5+c7)  */
#define FIX_2_562915447 FIX(2.562915447) /* sqrt(2) * (c1+c3)        */
#define FIX_3_072711026 FIX(3.072711026) /* sqrt(2) * (c1+c3+c5-c7)  */

/* Round x / 2^n to nearest (half up); x may be negative (arithmetic shift, as libjpeg). */
static inline int64_t descale(int64_t x, int n) { return (x + ((int64_t)1 << (n - 1))) >> n; }

/* libjpeg's range limit: the descaled value is taken modulo 1024 as a signed 10-bit number
 * before clamping (its table lookup is indexed by value & 1023), so even garbage coefficients
 * give the same pixels as PIL. */
static inline uint8_t range_limit(int64_t x)
{
    int v = (int)(x & 1023);
    if (v >= 512) v -= 1024;
    v += 128;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One 1-D IDCT of in[0], in[step], ..., in[7*step] (already dequantised), LL&M:
 * even part from inputs 0, 2, 4, 6; odd part from 1, 3, 5, 7.  out[i] before descaling. */
static inline void idct_1d(int64_t out[8], int64_t i0, int64_t i1, int64_t i2, int64_t i3,
                           int64_t i4, int64_t i5, int64_t i6, int64_t i7)
{
    /* Even part: the rotator is sqrt(2) c6. */
    int64_t z1 = (i2 + i6) * FIX_0_541196100;
    int64_t tmp2 = z1 + i6 * -FIX_1_847759065;
    int64_t tmp3 = z1 + i2 * FIX_0_765366865;
    int64_t tmp0 = (i0 + i4) * (1 << CONST_BITS);
    int64_t tmp1 = (i0 - i4) * (1 << CONST_BITS);
    int64_t tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3;
    int64_t tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;

    /* Odd part (inputs 7, 5, 3, 1). */
    int64_t t0 = i7, t1 = i5, t2 = i3, t3 = i1;
    int64_t z1o = t0 + t3, z2 = t1 + t2, z3 = t0 + t2, z4 = t1 + t3;
    int64_t z5 = (z3 + z4) * FIX_1_175875602;
    t0 *= FIX_0_298631336;
    t1 *= FIX_2_053119869;
    t2 *= FIX_3_072711026;
    t3 *= FIX_1_501321110;
    z1o *= -FIX_0_899976223;
    z2 *= -FIX_2_562915447;
    z3 = z3 * -FIX_1_961570560 + z5;
    z4 = z4 * -FIX_0_390180644 + z5;
    t0 += z1o + z3;
    t1 += z2 + z4;
    t2 += z2 + z3;
    t3 += z1o + z4;

    out[0] = tmp10 + t3, out[7] = tmp10 - t3;
    out[1] = tmp11 + t2, out[6] = tmp11 - t2;
    out[2] = tmp12 + t1, out[5] = tmp12 - t1;
    out[3] = tmp13 + t0, out[4] = tmp13 - t0;
}

void mcnn_jpeg_idct_islow(uint8_t *out, int stride, const int16_t *coef, const uint16_t *q)
{
    int ws[64]; /* between the passes, scaled by 2^PASS1_BITS (libjpeg keeps an int too) */
    /* Pass 1: columns.  A column whose AC terms are all zero (most of them, after
     * quantisation) is flat: every output is DC * 2^PASS1_BITS, which is exactly what the
     * full computation gives (the shortcut libjpeg takes too). */
    for (int x = 0; x < 8; x++) {
        const int16_t *cc = coef + x;
        if (!(cc[8] | cc[16] | cc[24] | cc[32] | cc[40] | cc[48] | cc[56])) {
            int dc = (int)((int64_t)cc[0] * q[x] * (1 << PASS1_BITS));
            for (int y = 0; y < 8; y++) ws[y * 8 + x] = dc;
            continue;
        }
        int64_t in[8], o[8];
        for (int y = 0; y < 8; y++) in[y] = (int64_t)cc[y * 8] * q[y * 8 + x];
        idct_1d(o, in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7]);
        for (int y = 0; y < 8; y++) ws[y * 8 + x] = (int)descale(o[y], CONST_BITS - PASS1_BITS);
    }
    /* Pass 2: rows, then remove PASS1_BITS and the factor 8, add 128 and clamp.  A row with
     * zero AC terms is flat again: descale(w0 * 2^13, 18) = descale(w0, 5). */
    for (int y = 0; y < 8; y++) {
        const int *w = ws + y * 8;
        uint8_t *orow = out + (size_t)y * stride;
        if (!(w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])) {
            uint8_t v = range_limit(descale(w[0], PASS1_BITS + 3));
            for (int x = 0; x < 8; x++) orow[x] = v;
            continue;
        }
        int64_t o[8];
        idct_1d(o, w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]);
        for (int x = 0; x < 8; x++) orow[x] = range_limit(descale(o[x], CONST_BITS + PASS1_BITS + 3));
    }
}

void mcnn_jpeg_idct_ref(uint8_t *out, int stride, const int16_t *coef, const uint16_t *q)
{
    const double pi = 3.14159265358979323846;
    double cosine[8][8]; /* cosine[x][u] = C(u) cos((2x+1) u pi / 16) */
    for (int x = 0; x < 8; x++)
        for (int u = 0; u < 8; u++)
            cosine[x][u] = (u == 0 ? sqrt(0.5) : 1.0) * cos((2 * x + 1) * u * pi / 16);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            double s = 0;
            for (int v = 0; v < 8; v++)
                for (int u = 0; u < 8; u++)
                    s += cosine[y][v] * cosine[x][u] * coef[v * 8 + u] * q[v * 8 + u];
            double r = floor(s / 4 + 0.5) + 128;
            out[(size_t)y * stride + x] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
        }
}

mcnn_status mcnn_jpeg_idct_component(jpeg_decoder *d, jpeg_component *c)
{
    const int stride = c->bw_used * 8;
    int overflow = 0;
    size_t bytes = mcnn_mul_size((size_t)stride, (size_t)c->bh_used * 8, &overflow);
    c->plane = overflow ? NULL : malloc(bytes);
    if (!c->plane)
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory for a %dx%d JPEG plane", d->name,
                              c->width, c->height);
    #pragma omp parallel for schedule(static) if (c->bh_used > 16)
    for (int by = 0; by < c->bh_used; by++)
        for (int bx = 0; bx < c->bw_used; bx++)
            mcnn_jpeg_idct_islow(c->plane + (size_t)by * 8 * stride + (size_t)bx * 8, stride,
                                 c->coef + ((size_t)by * c->bw + bx) * 64, c->q);
    return MCNN_OK;
}
