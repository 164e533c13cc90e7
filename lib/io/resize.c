/* Image resizing, bit-exact with PIL's Image.resize on 8-bit images (Pillow 9.4, checked by
 * tests/test_preprocess.c against goldens made with it).
 *
 * Filters (BOX, BILINEAR, HAMMING, BICUBIC, LANCZOS): PIL's ImagingResample.
 *   Output pixel x of a side of in -> out pixels covers the input box whose center is
 *       center = (x + 0.5) * scale,            scale = in / out
 *   and is the weighted mean of the input pixels i within center +- support, where pixel i sits
 *   at i + 0.5 and weighs filter((i + 0.5 - center) / fs), fs = max(scale, 1).  Shrinking
 *   (scale > 1) stretches the filter by the scale, so every input pixel contributes: that is the
 *   antialiasing which makes PIL differ from plain interpolation (torch's interpolate without
 *   antialias).  Growing keeps the filter at its own width.  The weights of each output pixel
 *   are divided by their sum (so a flat image stays flat, also at the borders where the window
 *   is cut), then stored as integers with 22 fractional bits: 8 bits of pixel + 22 + 2 bits of
 *   headroom for lobes above 1 and a sign fit an int32.  A pass is
 *       out = clip((sum pixel * weight + 2^21) >> 22, 0, 255)       (2^21: round to nearest)
 *   The image is resized along x first (only over the rows the y pass will read), stored as
 *   8 bits, then along y.  Every step above (double arithmetic in the same order, the rounding
 *   of the window ends, the 8-bit intermediate) matters for bit equality.
 *
 * NEAREST is not a filter in PIL: it is an affine transform that takes the pixel under each
 * output pixel's center, the x coordinate advanced by repeated addition of the scale (so it is
 * done the same way here: (int)((k + 0.5) * scale) can differ in the last place). */
#include "internal.h"
#include "mcnn/preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PRECISION_BITS 22 /* 32 - 8 (pixel) - 2 (overflow and sign) */
#define PI 3.14159265358979323846

/* ---- the filters: weight at distance x (input pixels, after the downscale stretch) -------- */

static double box_filter(double x)
{
    return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; /* half-open, so a tap is never counted twice */
}

static double bilinear_filter(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double hamming_filter(double x)
{
    x = fabs(x);
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x = x * PI;
    return sin(x) / x * (0.54f + 0.46f * cos(x)); /* PIL's constants are floats: keep them so */
}

/* Keys' cubic convolution with a = -0.5 (PIL's choice; OpenCV and torch use -0.75), written in
 * the same Horner form as PIL so the doubles agree to the last bit. */
static double bicubic_filter(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x)
{
    if (x == 0.0) return 1.0;
    x = x * PI;
    return sin(x) / x;
}

static double lanczos_filter(double x)
{
    return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; /* 3 lobes */
}

typedef struct filter_def {
    double (*f)(double);
    double support; /* half-width in input pixels before the downscale stretch */
} filter_def;

static const filter_def FILTERS[] = {
    [MCNN_RESAMPLE_BOX] = {box_filter, 0.5},
    [MCNN_RESAMPLE_BILINEAR] = {bilinear_filter, 1.0},
    [MCNN_RESAMPLE_HAMMING] = {hamming_filter, 1.0},
    [MCNN_RESAMPLE_BICUBIC] = {bicubic_filter, 2.0},
    [MCNN_RESAMPLE_LANCZOS] = {lanczos_filter, 3.0},
};

/* ---- the weights of one side: for each output pixel, a window and its fixed-point weights -- */

typedef struct taps {
    int ksize;     /* room per output pixel: the widest possible window              */
    int *first;    /* (out) first input pixel of the window                          */
    int *count;    /* (out) pixels in the window                                     */
    int32_t *w;    /* (out, ksize) weights, PRECISION_BITS fractional bits            */
    double *tmp;   /* (ksize) the weights of one output pixel before rounding        */
} taps;

static void taps_free(taps *t)
{
    free(t->first), free(t->count), free(t->w), free(t->tmp);
    memset(t, 0, sizeof *t);
}

static mcnn_status taps_init(taps *t, int in, int out, const filter_def *fd)
{
    memset(t, 0, sizeof *t);
    /* PIL holds the source box in floats: (float)in is what its scale is computed from. */
    double scale = (double)(float)in / out;
    double fs = scale < 1.0 ? 1.0 : scale;
    double support = fd->support * fs;
    double ksize_d = ceil(support) * 2 + 1;
    if (ksize_d > (double)INT32_MAX / 8)
        return mcnn_set_error(MCNN_ERR_ARG, "resize: %d -> %d pixels needs a filter too wide", in,
                              out);
    t->ksize = (int)ksize_d;
    int overflow = 0;
    size_t wbytes = mcnn_mul_size(mcnn_mul_size((size_t)out, (size_t)t->ksize, &overflow),
                                  sizeof(int32_t), &overflow);
    if (!overflow) {
        t->first = malloc((size_t)out * sizeof(int));
        t->count = malloc((size_t)out * sizeof(int));
        t->w = malloc(wbytes);
        t->tmp = malloc((size_t)t->ksize * sizeof(double));
    }
    if (overflow || !t->first || !t->count || !t->w || !t->tmp) {
        taps_free(t);
        return mcnn_set_error(MCNN_ERR_NOMEM, "resize: no memory for the weights of %d -> %d",
                              in, out);
    }
    const double ss = 1.0 / fs;
    for (int xx = 0; xx < out; xx++) {
        double center = (xx + 0.5) * scale;
        /* The window ends are rounded by truncation of value + 0.5, as PIL does; for the left
         * end a negative value truncates towards 0, which the clamp makes harmless. */
        int xmin = (int)(center - support + 0.5);
        int xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in) xmax = in;
        int n = xmax - xmin;
        double ww = 0.0;
        for (int x = 0; x < n; x++) {
            /* input pixel x + xmin has its center at x + xmin + 0.5: the same operation order
             * as PIL ((i - center) + 0.5, then * ss) keeps the doubles identical */
            double w = fd->f((x + xmin - center + 0.5) * ss);
            t->tmp[x] = w;
            ww += w;
        }
        int32_t *k = t->w + (size_t)xx * t->ksize;
        for (int x = 0; x < n; x++) {
            double w = ww != 0.0 ? t->tmp[x] / ww : t->tmp[x];
            /* to fixed point, rounding half away from zero */
            k[x] = (int32_t)(w < 0 ? -0.5 + w * (1 << PRECISION_BITS)
                                   : 0.5 + w * (1 << PRECISION_BITS));
        }
        t->first[xx] = xmin;
        t->count[xx] = n;
    }
    return MCNN_OK;
}

/* (sum + 2^21) >> 22, clipped to a byte.  The sum is kept in 64 bits: PIL's int32 sum cannot
 * overflow for normalised weights, so the results agree, and ours cannot overflow at all. */
static inline unsigned char clip8(int64_t acc)
{
    if (acc < 0) return 0; /* PIL: floor shift, then a table that maps negatives to 0 */
    acc >>= PRECISION_BITS;
    return (unsigned char)(acc > 255 ? 255 : acc);
}

/* Along x: rows [row0, row0 + rows) of src (W x C) into dst (rows x out_w x C). */
static void pass_x(unsigned char *dst, int out_w, const unsigned char *src, int W, int C,
                   int row0, int rows, const taps *t)
{
    #pragma omp parallel for schedule(static) if ((size_t)rows * out_w * t->ksize * C > 65536)
    for (int yy = 0; yy < rows; yy++) {
        const unsigned char *in = src + (size_t)(yy + row0) * W * C;
        unsigned char *o = dst + (size_t)yy * out_w * C;
        for (int xx = 0; xx < out_w; xx++) {
            const int32_t *k = t->w + (size_t)xx * t->ksize;
            const unsigned char *p = in + (size_t)t->first[xx] * C;
            const int n = t->count[xx];
            if (C == 3) { /* the channels side by side, one walk over the taps */
                int64_t a0 = 1 << (PRECISION_BITS - 1), a1 = a0, a2 = a0;
                for (int x = 0; x < n; x++) {
                    a0 += (int64_t)p[3 * x] * k[x];
                    a1 += (int64_t)p[3 * x + 1] * k[x];
                    a2 += (int64_t)p[3 * x + 2] * k[x];
                }
                o[3 * xx] = clip8(a0), o[3 * xx + 1] = clip8(a1), o[3 * xx + 2] = clip8(a2);
            } else {
                int64_t acc = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < n; x++) acc += (int64_t)p[x] * k[x];
                o[xx] = clip8(acc);
            }
        }
    }
}

/* Along y: src (rows x rowlen bytes, a row being W * C) into dst (out_h x rowlen); the taps'
 * windows are relative to src's first row minus row0.  Whole rows are accumulated at once
 * (acc, rowlen sums per thread) so the inner loop runs along memory; each sum still adds the
 * same terms in the same order as PIL's. */
static mcnn_status pass_y(unsigned char *dst, int out_h, const unsigned char *src, size_t rowlen,
                          int row0, const taps *t)
{
    const int parallel = (size_t)out_h * rowlen * t->ksize > 65536;
    const int nthreads = parallel ? mcnn_get_threads() : 1;
    int64_t *accs = malloc((size_t)nthreads * rowlen * sizeof(int64_t));
    if (!accs)
        return mcnn_set_error(MCNN_ERR_NOMEM, "resize: no memory for %d rows of %zu sums",
                              nthreads, rowlen);
    #pragma omp parallel for schedule(static) num_threads(nthreads) if (parallel)
    for (int yy = 0; yy < out_h; yy++) {
#ifdef _OPENMP
        int64_t *acc = accs + (size_t)omp_get_thread_num() * rowlen;
#else
        int64_t *acc = accs;
#endif
        const int32_t *k = t->w + (size_t)yy * t->ksize;
        const unsigned char *p = src + (size_t)(t->first[yy] - row0) * rowlen;
        const int n = t->count[yy];
        unsigned char *o = dst + (size_t)yy * rowlen;
        for (size_t i = 0; i < rowlen; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < n; y++) {
            const unsigned char *row = p + (size_t)y * rowlen;
            const int64_t ky = k[y];
            for (size_t i = 0; i < rowlen; i++) acc[i] += row[i] * ky;
        }
        for (size_t i = 0; i < rowlen; i++) o[i] = clip8(acc[i]);
    }
    free(accs);
    return MCNN_OK;
}

/* PIL's nearest: an affine scale; the source coordinate of output pixel k is
 * scale/2 + scale + ... (k times), truncated; pixels mapping outside are 0 (never in practice). */
static mcnn_status resize_nearest(unsigned char *dst, const mcnn_image *src, int out_w, int out_h)
{
    const int W = src->width, H = src->height, C = src->channels;
    int *xin = malloc((size_t)out_w * sizeof(int));
    if (!xin) return mcnn_set_error(MCNN_ERR_NOMEM, "resize: no memory for %d columns", out_w);
    const double ax = (double)(float)W / out_w, ay = (double)(float)H / out_h;
    double xo = ax * 0.5;
    for (int x = 0; x < out_w; x++, xo += ax) xin[x] = xo < 0.0 ? -1 : (int)xo;
    double yo = ay * 0.5;
    for (int y = 0; y < out_h; y++, yo += ay) {
        int yi = yo < 0.0 ? -1 : (int)yo;
        unsigned char *o = dst + (size_t)y * out_w * C;
        if (yi < 0 || yi >= H) {
            memset(o, 0, (size_t)out_w * C);
            continue;
        }
        const unsigned char *in = src->pixels + (size_t)yi * W * C;
        for (int x = 0; x < out_w; x++)
            for (int c = 0; c < C; c++)
                o[x * C + c] = (xin[x] >= 0 && xin[x] < W) ? in[(size_t)xin[x] * C + c] : 0;
    }
    free(xin);
    return MCNN_OK;
}

static mcnn_status resize_filtered(unsigned char *dst, const mcnn_image *src, int out_w,
                                   int out_h, const filter_def *fd)
{
    const int W = src->width, H = src->height, C = src->channels;
    const int need_x = out_w != W, need_y = out_h != H;
    taps ty = {0}, tx = {0};
    unsigned char *tmp = NULL;
    mcnn_status st = MCNN_OK;
    if (!need_y) { /* one pass along x over every row */
        MCNN_TRY(taps_init(&tx, W, out_w, fd));
        pass_x(dst, out_w, src->pixels, W, C, 0, H, &tx);
        taps_free(&tx);
        return MCNN_OK;
    }
    MCNN_TRY(taps_init(&ty, H, out_h, fd));
    if (!need_x) {
        st = pass_y(dst, out_h, src->pixels, (size_t)W * C, 0, &ty);
        taps_free(&ty);
        return st;
    }
    /* Only the rows some output row reads need the x pass. */
    int row0 = ty.first[0];
    int row1 = ty.first[out_h - 1] + ty.count[out_h - 1];
    if ((st = taps_init(&tx, W, out_w, fd)) != MCNN_OK) goto done;
    tmp = malloc((size_t)(row1 - row0) * out_w * C);
    if (!tmp) {
        st = mcnn_set_error(MCNN_ERR_NOMEM, "resize: no memory for %d x %d intermediate", out_w,
                            row1 - row0);
        goto done;
    }
    pass_x(tmp, out_w, src->pixels, W, C, row0, row1 - row0, &tx);
    st = pass_y(dst, out_h, tmp, (size_t)out_w * C, row0, &ty);
done:
    free(tmp);
    taps_free(&tx);
    taps_free(&ty);
    return st;
}

mcnn_status mcnn_image_resize(mcnn_image *dst, const mcnn_image *src, int width, int height,
                              mcnn_resample filter)
{
    if (!dst || !src) return mcnn_set_error(MCNN_ERR_ARG, "resize: NULL image");
    if (dst == src) return mcnn_set_error(MCNN_ERR_ARG, "resize: dst and src are the same image");
    memset(dst, 0, sizeof *dst);
    if (!src->pixels || src->width <= 0 || src->height <= 0)
        return mcnn_set_error(MCNN_ERR_ARG, "resize: empty source image (%dx%d)", src->width,
                              src->height);
    if (src->channels != 1 && src->channels != 3)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "resize: %d channels (1 or 3 supported)",
                              src->channels);
    if ((int64_t)src->width * src->height > MCNN_IMAGE_MAX_PIXELS)
        return mcnn_set_error(MCNN_ERR_ARG, "resize: source %dx%d exceeds %lld pixels",
                              src->width, src->height, (long long)MCNN_IMAGE_MAX_PIXELS);
    if (width <= 0 || height <= 0 || width > MCNN_PREPROCESS_MAX_SIDE ||
        height > MCNN_PREPROCESS_MAX_SIDE)
        return mcnn_set_error(MCNN_ERR_ARG, "resize: target %dx%d outside 1..%d", width, height,
                              MCNN_PREPROCESS_MAX_SIDE);
    if ((int)filter < MCNN_RESAMPLE_NEAREST || (int)filter > MCNN_RESAMPLE_LANCZOS)
        return mcnn_set_error(MCNN_ERR_ARG, "resize: unknown filter %d", (int)filter);

    const size_t bytes = (size_t)width * height * src->channels;
    unsigned char *px = malloc(bytes);
    if (!px)
        return mcnn_set_error(MCNN_ERR_NOMEM, "resize: no memory for %dx%d", width, height);
    mcnn_status st = MCNN_OK;
    if (width == src->width && height == src->height)
        memcpy(px, src->pixels, bytes); /* PIL copies: no filter runs at scale 1 on both sides */
    else if (filter == MCNN_RESAMPLE_NEAREST)
        st = resize_nearest(px, src, width, height);
    else
        st = resize_filtered(px, src, width, height, &FILTERS[filter]);
    if (st != MCNN_OK) {
        free(px);
        return st;
    }
    dst->width = width, dst->height = height, dst->channels = src->channels, dst->pixels = px;
    return MCNN_OK;
}
