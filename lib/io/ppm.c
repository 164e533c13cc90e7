/* PPM / PGM (netpbm) reader and a PPM writer.
 *
 *   P6 (binary RGB), P5 (binary gray), P3 (ASCII RGB), P2 (ASCII gray)
 *   header:  magic, width, height, maxval as decimal tokens separated by whitespace, with
 *            '#' comments running to the end of the line; then (binary formats) exactly one
 *            whitespace byte and the raster: 1 byte per sample when maxval < 256, else 2
 *            bytes big-endian.  ASCII rasters are decimal tokens (comments allowed, as PIL does).
 *
 * Samples are scaled to 8 bits exactly as PIL's Image.open(f).convert('RGB' / 'L') does
 * (PIL 9.4, PpmImagePlugin.py):
 *   - maxval 255: the bytes as they are;
 *   - otherwise v8 = round(v / maxval * 255) in double precision, rounding half to even
 *     (Python's round); a binary sample above maxval clips to 255 (PIL does not check);
 *   - GRAY with maxval > 255: PIL makes a 32-bit image of round(v / maxval * 65535) (v itself
 *     for maxval 65535) and convert('L') CLIPS it to 255 - so any value above 1/256 of the range
 *     comes out white.  We reproduce that on purpose, for fidelity with PIL pipelines.
 * ASCII samples above maxval are errors (PIL refuses them too).  P1/P4 bitmaps are not read. */
#include "io/inflate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const unsigned char *d;
    size_t n, pos;
    const char *name;
} reader;

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Skip whitespace and comments; then read a decimal number up to `max`.  Returns 0 on
 * success, -1 at the end of the data, -2 on something that is not a number, -3 if too big. */
static int number(reader *r, unsigned long *out, unsigned long max)
{
    for (;;) {
        while (r->pos < r->n && is_space(r->d[r->pos])) r->pos++;
        if (r->pos < r->n && r->d[r->pos] == '#') {
            while (r->pos < r->n && r->d[r->pos] != '\n' && r->d[r->pos] != '\r') r->pos++;
            continue;
        }
        break;
    }
    if (r->pos >= r->n) return -1;
    unsigned long v = 0;
    size_t start = r->pos;
    while (r->pos < r->n && r->d[r->pos] >= '0' && r->d[r->pos] <= '9') {
        v = v * 10 + (unsigned long)(r->d[r->pos++] - '0');
        if (v > max) return -3;
    }
    if (r->pos == start) return -2;
    if (r->pos < r->n && !is_space(r->d[r->pos]) && r->d[r->pos] != '#') return -2; /* "12x" */
    *out = v;
    return 0;
}

static mcnn_status header_error(const reader *r, const char *field, int code)
{
    const char *why = code == -1 ? "missing (file truncated)" : code == -3 ? "out of range" : "not a number";
    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNM: %s %s (byte %zu)", r->name, field, why, r->pos);
}

/* PIL's scaling; see the top of the file.  out_max is 255, or 65535 for gray maxval > 255. */
static unsigned char scale(unsigned long v, unsigned long maxval, double out_max)
{
    double x = rint((double)v / (double)maxval * out_max); /* round half to even, like Python */
    if (x > out_max) x = out_max;
    return (unsigned char)(x > 255.0 ? 255.0 : x);
}

mcnn_status mcnn_ppm_decode(mcnn_image *img, const unsigned char *data, size_t size, const char *name)
{
    if (!img) return mcnn_set_error(MCNN_ERR_ARG, "mcnn_ppm_decode: NULL image");
    memset(img, 0, sizeof *img);
    if (!name) name = "<memory>";
    if (!data && size) return mcnn_set_error(MCNN_ERR_ARG, "%s: NULL data", name);
    if (size < 2 || data[0] != 'P' || data[1] < '1' || data[1] > '6')
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: not a PPM/PGM file (bad magic)", name);
    int kind = data[1] - '0';
    if (kind == 1 || kind == 4)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: PBM bitmaps (P%d) are not supported", name, kind);
    if (size > 2 && !is_space(data[2]) && data[2] != '#')
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: not a PPM/PGM file (bad magic)", name);
    const int channels = (kind == 3 || kind == 6) ? 3 : 1, ascii = kind <= 3;
    reader r = {data, size, 2, name};
    unsigned long w, h, maxval;
    int c;
    if ((c = number(&r, &w, 0x7fffffffUL)) != 0) return header_error(&r, "width", c);
    if ((c = number(&r, &h, 0x7fffffffUL)) != 0) return header_error(&r, "height", c);
    if ((c = number(&r, &maxval, 65535)) != 0) return header_error(&r, "maxval", c);
    if (w == 0 || h == 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNM: invalid size %lu x %lu", name, w, h);
    if ((uint64_t)w * h > (uint64_t)MCNN_IMAGE_MAX_PIXELS)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNM: %lu x %lu pixels is more than the limit of %lld", name,
                              w, h, (long long)MCNN_IMAGE_MAX_PIXELS);
    if (maxval == 0) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNM: maxval is 0", name);

    const size_t count = (size_t)w * h * (size_t)channels, bytes = maxval < 256 ? 1 : 2;
    const double out_max = (channels == 1 && maxval > 255) ? 65535.0 : 255.0;
    if (!ascii) {
        if (r.pos >= size || !is_space(data[r.pos]))
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNM: no whitespace after maxval", name);
        r.pos++;
        if ((size - r.pos) / bytes < count)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNM: raster is truncated (%zu of %zu bytes)", name,
                                  size - r.pos, count * bytes);
    }
    unsigned char *px = malloc(count);
    if (!px) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", name);

    if (!ascii && maxval == 255) {
        memcpy(px, data + r.pos, count);
    } else if (!ascii) {
        const unsigned char *s = data + r.pos;
        for (size_t i = 0; i < count; i++) {
            unsigned long v = bytes == 1 ? s[i] : (unsigned long)s[2 * i] << 8 | s[2 * i + 1];
            px[i] = scale(v, maxval, out_max);
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            unsigned long v;
            if ((c = number(&r, &v, maxval)) != 0) {
                free(px);
                if (c == -3)
                    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNM: sample %zu is above maxval %lu", name, i, maxval);
                return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNM: sample %zu of %zu %s", name, i, count,
                                      c == -1 ? "missing (file truncated)" : "is not a number");
            }
            px[i] = maxval == 255 ? (unsigned char)v : scale(v, maxval, out_max);
        }
    }
    img->width = (int)w;
    img->height = (int)h;
    img->channels = channels;
    img->pixels = px;
    return MCNN_OK;
}

mcnn_status mcnn_ppm_write(const char *path, const mcnn_image *img)
{
    if (!path || !img || !img->pixels || img->width <= 0 || img->height <= 0 ||
        (img->channels != 1 && img->channels != 3))
        return mcnn_set_error(MCNN_ERR_ARG, "%s: cannot write an empty image or %d channels as PPM",
                              path ? path : "(null)", img ? img->channels : 0);
    FILE *f = fopen(path, "wb");
    if (!f) return mcnn_set_error(MCNN_ERR_IO, "%s: cannot open for writing", path);
    size_t n = (size_t)img->width * (size_t)img->height * (size_t)img->channels;
    int ok = fprintf(f, "P%c\n%d %d\n255\n", img->channels == 3 ? '6' : '5', img->width, img->height) > 0;
    ok = ok && fwrite(img->pixels, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok) return mcnn_set_error(MCNN_ERR_IO, "%s: write error", path);
    return MCNN_OK;
}
