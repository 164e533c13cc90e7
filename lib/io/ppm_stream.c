/* A stream of binary PPM/PGM frames read one after another from a FILE*: what
 *   ffmpeg -i movie.mp4 -f image2pipe -vcodec ppm -
 * writes (P6 frames back to back, no separator).  Each frame's header is read byte by byte,
 * which tells the size of its raster; the raster is then read in one call and the whole frame
 * is handed to mcnn_ppm_decode, so a frame decodes exactly as the same bytes in a file would.
 *
 * The end of the stream is clean when it comes before the first byte of a frame (whitespace
 * between frames is skipped); anywhere else it is a truncated frame, and an error. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Header bytes kept for mcnn_ppm_decode: magic, three numbers, comments.  A longer header is
 * refused rather than grown without bound (a stream of '#' would otherwise eat memory). */
#define HEADER_MAX 4096

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

void mcnn_ppm_stream_init(mcnn_ppm_stream *s, FILE *f, const char *name)
{
    s->f = f;
    s->name = name ? name : "stream";
    s->frames = 0;
}

typedef struct header {
    char b[HEADER_MAX];
    size_t n;
} header;

static mcnn_status truncated(const mcnn_ppm_stream *s, const char *what)
{
    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: frame %lld is truncated (the stream ends in its %s)",
                          s->name, (long long)s->frames, what);
}

static mcnn_status keep(header *h, int c, const mcnn_ppm_stream *s)
{
    if (h->n >= HEADER_MAX)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: frame %lld: PNM header longer than %d bytes",
                              s->name, (long long)s->frames, HEADER_MAX);
    h->b[h->n++] = (char)c;
    return MCNN_OK;
}

/* One header number: skip whitespace and comments, then digits up to the next whitespace
 * (which is kept too: after maxval it is the single byte before the raster). */
static mcnn_status number(header *h, unsigned long *out, const mcnn_ppm_stream *s,
                          const char *field)
{
    int c;
    for (;;) {
        c = getc(s->f);
        if (c == EOF) return truncated(s, "header");
        if (c == '#') {
            do {
                MCNN_TRY(keep(h, c, s));
                c = getc(s->f);
                if (c == EOF) return truncated(s, "header");
            } while (c != '\n' && c != '\r');
        }
        MCNN_TRY(keep(h, c, s));
        if (!is_space(c)) break;
    }
    unsigned long v = 0;
    int digits = 0;
    while (c >= '0' && c <= '9') {
        v = v * 10 + (unsigned long)(c - '0');
        if (v > 0x7fffffffUL)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: frame %lld: PNM %s out of range",
                                  s->name, (long long)s->frames, field);
        digits++;
        c = getc(s->f);
        if (c == EOF) return truncated(s, "header");
        MCNN_TRY(keep(h, c, s));
    }
    if (!digits || !is_space(c))
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: frame %lld: PNM %s is not a number",
                              s->name, (long long)s->frames, field);
    *out = v;
    return MCNN_OK;
}

mcnn_status mcnn_ppm_stream_next(mcnn_ppm_stream *s, mcnn_image *img, int *got)
{
    if (!s || !s->f || !img || !got)
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_ppm_stream_next: NULL argument");
    memset(img, 0, sizeof *img);
    *got = 0;
    int c;
    do c = getc(s->f); while (c != EOF && is_space(c));
    if (c == EOF) {
        if (ferror(s->f))
            return mcnn_set_error(MCNN_ERR_IO, "%s: read error before frame %lld", s->name,
                                  (long long)s->frames);
        return MCNN_OK; /* a clean end: no byte of a new frame */
    }
    header h = {.n = 0};
    int kind = getc(s->f);
    if (c == 'P' && kind == EOF) return truncated(s, "magic");
    if (c != 'P' || kind < '1' || kind > '6')
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: frame %lld: not a PPM/PGM frame (bad magic "
                              "%02x %02x)", s->name, (long long)s->frames, c & 0xff,
                              kind == EOF ? 0 : kind & 0xff);
    if (kind != '5' && kind != '6')
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: frame %lld: P%c frames cannot be streamed "
                              "(binary P6 or P5 only)", s->name, (long long)s->frames, kind);
    h.b[h.n++] = 'P';
    h.b[h.n++] = (char)kind;
    unsigned long w, ht, maxval;
    MCNN_TRY(number(&h, &w, s, "width"));
    MCNN_TRY(number(&h, &ht, s, "height"));
    MCNN_TRY(number(&h, &maxval, s, "maxval"));
    if (w == 0 || ht == 0 || (uint64_t)w * ht > (uint64_t)MCNN_IMAGE_MAX_PIXELS)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: frame %lld: absurd size %lu x %lu", s->name,
                              (long long)s->frames, w, ht);
    if (maxval == 0 || maxval > 65535)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: frame %lld: maxval %lu outside 1..65535",
                              s->name, (long long)s->frames, maxval);
    const size_t raster = (size_t)w * ht * (kind == '6' ? 3 : 1) * (maxval < 256 ? 1 : 2);
    unsigned char *buf = malloc(h.n + raster);
    if (!buf) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: frame %lld: out of memory", s->name,
                                    (long long)s->frames);
    memcpy(buf, h.b, h.n);
    size_t got_bytes = fread(buf + h.n, 1, raster, s->f);
    if (got_bytes != raster) {
        free(buf);
        if (ferror(s->f))
            return mcnn_set_error(MCNN_ERR_IO, "%s: frame %lld: read error", s->name,
                                  (long long)s->frames);
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: frame %lld is truncated (%zu of %zu raster "
                              "bytes)", s->name, (long long)s->frames, got_bytes, raster);
    }
    char name[256];
    snprintf(name, sizeof name, "%s: frame %lld", s->name, (long long)s->frames);
    mcnn_status st = mcnn_ppm_decode(img, buf, h.n + raster, name);
    free(buf);
    if (st != MCNN_OK) return st;
    s->frames++;
    *got = 1;
    return MCNN_OK;
}
