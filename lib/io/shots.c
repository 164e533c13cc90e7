/* Shot-boundary detection, content-based (PySceneDetect's ContentDetector); see mcnn/shots.h.
 *
 * HSV as OpenCV's 8-bit RGB2HSV computes it (the scalar path of imgproc's color_hsv):
 *   V = max, diff = V - min
 *   S = (diff · sdiv[V] + 2^11) >> 12                sdiv[v] = round(255 · 2^12 / v)
 *   h = G - B                 when V == R             (sector 0, degrees / 60 as a fraction)
 *       B - R + 2 · diff      when V == G (and not R)
 *       R - G + 4 · diff      otherwise (V == B)
 *   H = (h · hdiv[diff] + 2^11) >> 12, + 180 if < 0  hdiv[d] = round(180 · 2^12 / (6 d))
 * The tables are what make the result bit-exact: a float formula rounds differently for some
 * colours.  Both tables have entry 0 = 0 (gray pixels: S = H = 0). */
#include "internal.h"
#include "mcnn/shots.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { HSV_SHIFT = 12 };

typedef struct hsv_tables {
    int sdiv[256], hdiv[256];
} hsv_tables;

static void hsv_tables_init(hsv_tables *t)
{
    t->sdiv[0] = t->hdiv[0] = 0;
    for (int i = 1; i < 256; i++) {
        /* OpenCV's saturate_cast<int>(double) rounds half to even: rint */
        t->sdiv[i] = (int)rint((double)(255 << HSV_SHIFT) / (1.0 * i));
        t->hdiv[i] = (int)rint((double)(180 << HSV_SHIFT) / (6.0 * i));
    }
}

void mcnn_rgb_to_hsv(unsigned char *hsv, const unsigned char *rgb, size_t n)
{
    hsv_tables t;
    hsv_tables_init(&t);
    const int round = 1 << (HSV_SHIFT - 1);
    for (size_t i = 0; i < n; i++) {
        const int r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
        int v = r > g ? r : g, vmin = r < g ? r : g;
        v = v > b ? v : b;
        vmin = vmin < b ? vmin : b;
        const int diff = v - vmin;
        int h = v == r ? g - b : v == g ? b - r + 2 * diff : r - g + 4 * diff;
        const int s = (diff * t.sdiv[v] + round) >> HSV_SHIFT;
        h = (h * t.hdiv[diff] + round) >> HSV_SHIFT;
        h += h < 0 ? 180 : 0;
        hsv[3 * i] = (unsigned char)h;
        hsv[3 * i + 1] = (unsigned char)s;
        hsv[3 * i + 2] = (unsigned char)v;
    }
}

double mcnn_hsv_content_score(const unsigned char *a, const unsigned char *b, size_t n,
                              double components[3])
{
    uint64_t sum[3] = {0, 0, 0}; /* exact: at most 255 · 2^28 per channel */
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            int d = (int)a[3 * i + c] - (int)b[3 * i + c];
            sum[c] += (uint64_t)(d < 0 ? -d : d);
        }
    double m[3];
    for (int c = 0; c < 3; c++) m[c] = n ? (double)sum[c] / (double)n : 0.0;
    if (components) memcpy(components, m, sizeof m);
    return (m[0] + m[1] + m[2]) / 3.0;
}

mcnn_status mcnn_shot_detector_init(mcnn_shot_detector *d, double threshold, int min_len)
{
    if (!d) return mcnn_set_error(MCNN_ERR_ARG, "mcnn_shot_detector_init: NULL detector");
    memset(d, 0, sizeof *d);
    if (!(threshold >= 0.0))
        return mcnn_set_error(MCNN_ERR_ARG, "shot detector: threshold %g must be >= 0", threshold);
    if (min_len < 1)
        return mcnn_set_error(MCNN_ERR_ARG, "shot detector: minimum shot length %d must be >= 1",
                              min_len);
    d->threshold = threshold;
    d->min_len = min_len;
    return MCNN_OK;
}

void mcnn_shot_detector_free(mcnn_shot_detector *d)
{
    if (!d) return;
    free(d->prev);
    free(d->cur);
    d->prev = d->cur = NULL;
}

mcnn_status mcnn_shot_detector_push(mcnn_shot_detector *d, const mcnn_image *f, int *cut)
{
    if (!d || !f || !cut || !f->pixels || f->width <= 0 || f->height <= 0 ||
        (f->channels != 1 && f->channels != 3))
        return mcnn_set_error(MCNN_ERR_ARG, "shot detector: empty frame or bad channel count");
    *cut = 0;
    const size_t n = (size_t)f->width * (size_t)f->height;
    const int same_size = d->prev && f->width == d->width && f->height == d->height;
    if (!same_size) { /* (re)size the two HSV buffers */
        unsigned char *p = realloc(d->prev, 3 * n), *c = p ? realloc(d->cur, 3 * n) : NULL;
        if (p) d->prev = p;
        if (c) d->cur = c;
        if (!p || !c) return mcnn_set_error(MCNN_ERR_NOMEM, "shot detector: out of memory");
    }
    if (f->channels == 3) {
        mcnn_rgb_to_hsv(d->cur, f->pixels, n);
    } else { /* gray is R = G = B: hue and saturation 0 */
        for (size_t i = 0; i < n; i++)
            d->cur[3 * i] = d->cur[3 * i + 1] = 0, d->cur[3 * i + 2] = f->pixels[i];
    }
    if (d->frames == 0) {
        d->score = 0.0;
        memset(d->components, 0, sizeof d->components);
    } else if (!same_size) {
        d->score = 255.0;
        for (int c = 0; c < 3; c++) d->components[c] = 255.0;
        *cut = 1;
    } else {
        d->score = mcnn_hsv_content_score(d->cur, d->prev, n, d->components);
        *cut = d->score >= d->threshold && d->frames - d->shot_start >= d->min_len;
    }
    if (*cut) d->shot_start = d->frames;
    unsigned char *t = d->prev; /* the current frame becomes the previous one */
    d->prev = d->cur;
    d->cur = t;
    d->width = f->width;
    d->height = f->height;
    d->frames++;
    return MCNN_OK;
}
