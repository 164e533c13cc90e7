/* PNG decoder (ISO/IEC 15948, the W3C PNG specification), written from the specification.
 *
 * A PNG is an 8-byte signature and a list of chunks: length (4 bytes, big-endian), type (4
 * letters), data, CRC-32 of type + data.  IHDR comes first (size, bit depth, colour type,
 * interlace); PLTE holds the palette; the IDAT chunks, concatenated, are ONE zlib stream; IEND
 * ends the file.  Chunks whose type starts with a lower-case letter are ancillary (gamma, text,
 * tRNS transparency, ...) and skipped after their CRC is checked; an unknown upper-case
 * (critical) chunk means we cannot decode the image and is an error.
 *
 * The decompressed data is a list of scanlines, each a filter-type byte and the row's bytes.
 * Filters predict each byte from its left neighbour a (the same channel of the previous pixel,
 * bpp bytes back; bytes of less than one pixel use 1), the byte above b and above-left c:
 *   0 None: x        1 Sub: x + a        2 Up: x + b        3 Average: x + floor((a + b) / 2)
 *   4 Paeth: x + whichever of a, b, c is closest to a + b - c (ties: a, then b)
 * all mod 256, with a, b, c = 0 outside the image.
 *
 * Adam7 interlacing sends the image as 7 reduced images (passes), each filtered on its own:
 * pass p holds the pixels (x0 + i*dx, y0 + j*dy) for the x0, y0, dx, dy in adam7[] below.
 * Passes with no pixels (a 1-pixel-wide image has no pass 2) have no bytes at all.
 *
 * What comes out matches PIL's Image.open(f).convert('L') for the gray colour types 0 and 4 and
 * .convert('RGB') for the colour types 2, 3, 6 (checked by tests/test_png.c on files PIL wrote
 * and decoded):
 *   - 1/2/4-bit gray is scaled to 8 bits (x 255, 85, 17);
 *   - 16-bit RGB, RGBA and gray+alpha keep the high byte of each sample;
 *   - 16-bit gray: PIL opens it as 32-bit integers (mode "I") and convert('L') CLIPS them to
 *     0..255 - a value of 1000 becomes 255.  We do the same, so a pipeline built on PIL sees
 *     the same pixels, but beware: a 16-bit gray image using its full range comes out mostly
 *     white in both;
 *   - palettes are expanded to RGB; alpha and tRNS are dropped (no compositing);
 *   - gAMA, cHRM, iCCP and sRGB are ignored (PIL ignores them too).
 *
 * Limits: width and height 1 .. 2^31 - 1 and width * height <= MCNN_IMAGE_MAX_PIXELS, checked
 * before anything is allocated; the zlib output may not exceed what the header implies. */
#include "io/inflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    int x0, y0, dx, dy;
} adam7[7] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};

typedef struct png {
    const char *name;
    uint32_t width, height;
    int depth, ctype, interlace;
    int samples; /* per pixel in the file: 1 gray, 3 RGB, 1 palette index, 2 gray+alpha, 4 RGBA */
    int npal;
    unsigned char palette[256 * 3];
    mcnn_crc32_table crc;
} png;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int is_type(const unsigned char *t, const char *s)
{
    return memcmp(t, s, 4) == 0;
}

static mcnn_status bad(const png *p, const char *what)
{
    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNG: %s", p->name, what);
}

static mcnn_status parse_ihdr(png *p, const unsigned char *d, uint32_t len)
{
    if (len != 13) return bad(p, "IHDR chunk is not 13 bytes long");
    p->width = be32(d);
    p->height = be32(d + 4);
    p->depth = d[8];
    p->ctype = d[9];
    p->interlace = d[12];
    if (p->width == 0 || p->height == 0 || p->width > 0x7fffffffu || p->height > 0x7fffffffu)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNG: invalid size %u x %u", p->name, p->width, p->height);
    if ((uint64_t)p->width * p->height > (uint64_t)MCNN_IMAGE_MAX_PIXELS)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNG: %u x %u pixels is more than the limit of %lld",
                              p->name, p->width, p->height, (long long)MCNN_IMAGE_MAX_PIXELS);
    int d8 = p->depth == 8 || p->depth == 16, ok;
    switch (p->ctype) {
    case 0: ok = p->depth == 1 || p->depth == 2 || p->depth == 4 || d8, p->samples = 1; break;
    case 2: ok = d8, p->samples = 3; break;
    case 3: ok = p->depth == 1 || p->depth == 2 || p->depth == 4 || p->depth == 8, p->samples = 1; break;
    case 4: ok = d8, p->samples = 2; break;
    case 6: ok = d8, p->samples = 4; break;
    default:
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNG: invalid colour type %d", p->name, p->ctype);
    }
    if (!ok)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNG: bit depth %d is invalid for colour type %d", p->name,
                              p->depth, p->ctype);
    if (d[10] != 0) return bad(p, "unknown compression method");
    if (d[11] != 0) return bad(p, "unknown filter method");
    if (p->interlace > 1) return bad(p, "unknown interlace method");
    return MCNN_OK;
}

/* Pixels in pass `pass` of a w x h image along one axis: ceil((n - start) / step). */
static uint32_t pass_len(uint32_t n, int start, int step)
{
    return n > (uint32_t)start ? (n - (uint32_t)start + (uint32_t)step - 1) / (uint32_t)step : 0;
}

static size_t row_bytes(const png *p, uint32_t w)
{
    return ((size_t)w * (size_t)(p->samples * p->depth) + 7) / 8;
}

/* ---- filters ------------------------------------------------------------------------------ */

static unsigned char paeth(int a, int b, int c)
{
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c); /* |p-a|, |p-b|, |p-c| */
    if (pa <= pb && pa <= pc) return (unsigned char)a;
    return (unsigned char)(pb <= pc ? b : c);
}

/* Undo the filter of one row in place; prev is the previous row, already unfiltered (zeros
 * for the first row of a pass).  bpp: bytes per complete pixel, at least 1. */
static int unfilter(unsigned char *row, const unsigned char *prev, size_t n, size_t bpp, int type)
{
    size_t i;
    switch (type) {
    case 0: break;
    case 1:
        for (i = bpp; i < n; i++) row[i] = (unsigned char)(row[i] + row[i - bpp]);
        break;
    case 2:
        for (i = 0; i < n; i++) row[i] = (unsigned char)(row[i] + prev[i]);
        break;
    case 3:
        for (i = 0; i < bpp && i < n; i++) row[i] = (unsigned char)(row[i] + prev[i] / 2);
        for (; i < n; i++) row[i] = (unsigned char)(row[i] + (row[i - bpp] + prev[i]) / 2);
        break;
    case 4:
        for (i = 0; i < bpp && i < n; i++) row[i] = (unsigned char)(row[i] + prev[i]); /* a = c = 0 */
        for (; i < n; i++) row[i] = (unsigned char)(row[i] + paeth(row[i - bpp], prev[i], prev[i - bpp]));
        break;
    default: return -1;
    }
    return 0;
}

/* ---- samples to output pixels ------------------------------------------------------------- */

/* Sample i of an unfiltered row (depth < 8: packed most significant bits first). */
static inline unsigned sample(const unsigned char *row, size_t i, int depth)
{
    if (depth == 8) return row[i];
    if (depth == 16) return (unsigned)row[2 * i] << 8 | row[2 * i + 1];
    size_t bit = i * (size_t)depth;
    return (row[bit >> 3] >> (8 - depth - (int)(bit & 7))) & ((1u << depth) - 1);
}

/* Write the w pixels of one unfiltered row to out, step bytes apart (the pass's dx times the
 * output channels).  Returns -1 on a palette index past the palette's end. */
static int emit_row(const png *p, const unsigned char *row, uint32_t w, unsigned char *out, size_t step)
{
    const int d = p->depth;
    switch (p->ctype) {
    case 0: {
        static const unsigned scale[5] = {0, 255, 85, 0, 17}; /* 255 / (2^d - 1) */
        for (uint32_t x = 0; x < w; x++, out += step) {
            unsigned v = sample(row, x, d);
            out[0] = (unsigned char)(d < 8 ? v * scale[d] : d == 8 ? v : v > 255 ? 255 : v); /* PIL clips 16-bit */
        }
        break;
    }
    case 4: /* gray + alpha: the gray sample's high byte */
        for (uint32_t x = 0; x < w; x++, out += step) out[0] = row[(size_t)x * 2 * (d / 8)];
        break;
    case 2:
    case 6: { /* RGB(A): the first three samples' high bytes */
        size_t px = (size_t)p->samples * (d / 8), sb = (size_t)d / 8;
        for (uint32_t x = 0; x < w; x++, out += step) {
            const unsigned char *s = row + x * px;
            out[0] = s[0], out[1] = s[sb], out[2] = s[2 * sb];
        }
        break;
    }
    case 3:
        for (uint32_t x = 0; x < w; x++, out += step) {
            unsigned i = sample(row, x, d);
            if ((int)i >= p->npal) return -1;
            memcpy(out, p->palette + 3 * i, 3);
        }
        break;
    }
    return 0;
}

/* ---- chunks -------------------------------------------------------------------------------- */

/* Walk the chunks once: check every CRC and the chunk order, read IHDR and PLTE, and add up
 * the IDAT bytes. */
static mcnn_status read_chunks(png *p, const unsigned char *data, size_t size, size_t *idat_bytes)
{
    size_t pos = 8, idat = 0;
    int seen_ihdr = 0, seen_plte = 0, seen_idat = 0;
    char msg[96];
    for (;;) {
        if (size - pos < 12) {
            snprintf(msg, sizeof msg, "file is truncated at byte %zu (no IEND chunk)", pos);
            return bad(p, msg);
        }
        uint32_t len = be32(data + pos);
        const unsigned char *type = data + pos + 4, *d = data + pos + 8;
        for (int i = 0; i < 4; i++)
            if (!((type[i] >= 'A' && type[i] <= 'Z') || (type[i] >= 'a' && type[i] <= 'z'))) {
                snprintf(msg, sizeof msg, "invalid chunk type at byte %zu", pos);
                return bad(p, msg);
            }
        if (len > 0x7fffffffu || len > size - pos - 12)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNG: chunk '%.4s' at byte %zu: length %u runs past the end of the file",
                                  p->name, type, pos, len);
        uint32_t want = be32(d + len), got = mcnn_crc32(&p->crc, 0, type, (size_t)len + 4);
        if (want != got)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNG: chunk '%.4s' at byte %zu: CRC mismatch (stored %08x, computed %08x)",
                                  p->name, type, pos, want, got);
        if (!seen_ihdr && !is_type(type, "IHDR")) return bad(p, "the first chunk is not IHDR");

        if (is_type(type, "IHDR")) {
            if (seen_ihdr) return bad(p, "more than one IHDR chunk");
            seen_ihdr = 1;
            MCNN_TRY(parse_ihdr(p, d, len));
        } else if (is_type(type, "PLTE")) {
            if (seen_plte) return bad(p, "more than one PLTE chunk");
            if (seen_idat) return bad(p, "PLTE chunk after the image data");
            if (len == 0 || len % 3 != 0 || len > 256 * 3) return bad(p, "PLTE length is not 3, 6, ... 768");
            seen_plte = 1;
            p->npal = (int)(len / 3);
            memcpy(p->palette, d, len);
        } else if (is_type(type, "IDAT")) {
            seen_idat = 1;
            idat += len;
        } else if (is_type(type, "IEND")) {
            break; /* anything after IEND is ignored, as PIL and libpng do */
        } else if (!(type[0] & 0x20)) {
            return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: PNG: unknown critical chunk '%.4s'", p->name, type);
        }
        pos += (size_t)len + 12;
    }
    if (!seen_idat) return bad(p, "no IDAT chunk");
    if (p->ctype == 3 && !seen_plte) return bad(p, "palette image without a PLTE chunk");
    *idat_bytes = idat;
    return MCNN_OK;
}

static void gather_idat(unsigned char *dst, const unsigned char *data)
{
    size_t pos = 8;
    for (;;) {
        uint32_t len = be32(data + pos);
        const unsigned char *type = data + pos + 4;
        if (is_type(type, "IEND")) return;
        if (is_type(type, "IDAT")) {
            memcpy(dst, data + pos + 8, len);
            dst += len;
        }
        pos += (size_t)len + 12;
    }
}

/* ---- the decoder ------------------------------------------------------------------------------ */

static mcnn_status decode(png *p, mcnn_image *img, const unsigned char *data, size_t size)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size < 8 || memcmp(data, sig, 8) != 0) return bad(p, "bad signature");
    size_t idat_bytes = 0;
    MCNN_TRY(read_chunks(p, data, size, &idat_bytes));

    /* the exact size of the filtered data, from the header alone */
    const int npass = p->interlace ? 7 : 1;
    uint64_t raw_size = 0;
    for (int k = 0; k < npass; k++) {
        uint32_t pw = p->interlace ? pass_len(p->width, adam7[k].x0, adam7[k].dx) : p->width;
        uint32_t ph = p->interlace ? pass_len(p->height, adam7[k].y0, adam7[k].dy) : p->height;
        if (pw && ph) raw_size += (uint64_t)ph * (1 + row_bytes(p, pw));
    }
    const int oc = (p->ctype == 0 || p->ctype == 4) ? 1 : 3;
    uint64_t out_size = (uint64_t)p->width * p->height * (uint64_t)oc;
    if (raw_size > SIZE_MAX / 2 || out_size > SIZE_MAX / 2) return bad(p, "image too large for this machine");

    unsigned char *idat = malloc(idat_bytes ? idat_bytes : 1);
    if (!idat) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", p->name);
    gather_idat(idat, data);

    /* inflate, refusing more than raw_size; start no bigger than deflate's ~1032:1 ratio
     * allows, so a tiny corrupt file cannot make us allocate gigabytes */
    char what[512];
    snprintf(what, sizeof what, "%s: PNG image data", p->name);
    mcnn_bytes raw = {.max = (size_t)raw_size};
    size_t guess = idat_bytes < SIZE_MAX / 2048 ? idat_bytes * 1032 + 1024 : (size_t)raw_size;
    size_t used;
    mcnn_status st = mcnn_bytes_reserve(&raw, guess < raw_size ? guess : (size_t)raw_size, what);
    if (st == MCNN_OK) st = mcnn_zlib_append(&raw, idat, idat_bytes, &used, what);
    free(idat);
    if (st == MCNN_OK && raw.len != raw_size)
        st = mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNG: image data is truncated (%zu of %llu bytes)", p->name,
                            raw.len, (unsigned long long)raw_size);
    unsigned char *out = NULL, *zero = NULL;
    if (st == MCNN_OK) {
        out = malloc((size_t)out_size);
        zero = calloc(row_bytes(p, p->width) + 1, 1); /* the row above the first row */
        if (!out || !zero) st = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", p->name);
    }

    const size_t bpp = (size_t)(p->samples * p->depth + 7) / 8;
    unsigned char *row = raw.data;
    for (int k = 0; k < npass && st == MCNN_OK; k++) {
        int x0 = 0, y0 = 0, dx = 1, dy = 1;
        if (p->interlace) x0 = adam7[k].x0, y0 = adam7[k].y0, dx = adam7[k].dx, dy = adam7[k].dy;
        uint32_t pw = pass_len(p->width, x0, dx), ph = pass_len(p->height, y0, dy);
        if (!pw || !ph) continue;
        size_t n = row_bytes(p, pw);
        const unsigned char *prev = zero;
        for (uint32_t y = 0; y < ph; y++) {
            if (unfilter(row + 1, prev, n, bpp, row[0]) != 0) {
                st = mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNG: invalid filter type %d in row %u%s", p->name, row[0],
                                    y, p->interlace ? " of an interlace pass" : "");
                break;
            }
            size_t oy = (size_t)y0 + (size_t)y * (size_t)dy;
            unsigned char *o = out + (oy * p->width + (size_t)x0) * (size_t)oc;
            if (emit_row(p, row + 1, pw, o, (size_t)dx * (size_t)oc) != 0) {
                st = mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNG: palette index out of range (%d entries) in row %u",
                                    p->name, p->npal, y);
                break;
            }
            prev = row + 1;
            row += 1 + n;
        }
    }
    free(zero);
    free(raw.data);
    if (st != MCNN_OK) {
        free(out);
        return st;
    }
    img->width = (int)p->width;
    img->height = (int)p->height;
    img->channels = oc;
    img->pixels = out;
    return MCNN_OK;
}

mcnn_status mcnn_png_decode(mcnn_image *img, const unsigned char *data, size_t size, const char *name)
{
    if (!img) return mcnn_set_error(MCNN_ERR_ARG, "mcnn_png_decode: NULL image");
    memset(img, 0, sizeof *img);
    if (!name) name = "<memory>";
    if (!data && size) return mcnn_set_error(MCNN_ERR_ARG, "%s: NULL data", name);
    png *p = malloc(sizeof *p); /* 9 KB of tables: off the stack */
    if (!p) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", name);
    memset(p, 0, sizeof *p);
    p->name = name;
    mcnn_crc32_init(&p->crc);
    mcnn_status st = decode(p, img, data ? data : (const unsigned char *)"", size);
    free(p);
    return st;
}
