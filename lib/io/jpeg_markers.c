/* JPEG marker segments (T.81 Annex B): the headers and tables around the entropy-coded data.
 *
 * A JPEG file is a sequence of markers, 0xFF followed by a code byte.  Most are followed by a
 * big-endian 16-bit length (which counts itself) and that many bytes minus two:
 *   SOF0/1/2  frame header: precision, height, width, and per component an id, sampling
 *             factors h x v and a quantisation table number             (B.2.2)
 *   DHT       Huffman tables: 16 counts (codes of length 1..16), then the symbols (B.2.4.2)
 *   DQT       quantisation tables: 64 values in zigzag order, 8 or 16 bits each (B.2.4.1)
 *   DRI       restart interval: an RSTn marker every that many MCUs          (B.2.4.4)
 *   SOS       scan header: which components, which tables, and for progressive files the
 *             band Ss..Se of coefficients and the bit positions Ah/Al        (B.2.3)
 *   APP0      JFIF (says the components are YCbCr); APP14 "Adobe" carries a colour transform
 *             flag: 0 = the three components are RGB, not YCbCr.  APP1 (EXIF) is skipped:
 *             its orientation tag is ignored, as PIL's Image.open ignores it.
 * Every length is checked against the data before a byte is read. */
#include "jpeg_internal.h"

#include <stdlib.h>
#include <string.h>

const uint8_t mcnn_jpeg_zigzag[64] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
};

static int be16(const uint8_t *p) { return (p[0] << 8) | p[1]; }

mcnn_status mcnn_jpeg_next_marker(jpeg_decoder *d, int *marker)
{
    size_t p = d->pos;
    for (;;) {
        while (p < d->size && d->data[p] != 0xFF) p++; /* stray bytes: skipped, as libjpeg does */
        while (p < d->size && d->data[p] == 0xFF) p++; /* any number of fill bytes (B.1.1.2)    */
        if (p >= d->size) {
            d->pos = d->size;
            *marker = -1;
            return MCNN_OK;
        }
        if (d->data[p] != 0x00) break; /* 0xFF 0x00 is a stuffed data byte, not a marker */
        p++;
    }
    *marker = d->data[p];
    d->pos = p + 1;
    return MCNN_OK;
}

/* SOF0 (baseline), SOF1 (extended sequential, Huffman), SOF2 (progressive, Huffman). */
static mcnn_status parse_sof(jpeg_decoder *d, int marker, const uint8_t *p, int n)
{
    if (d->frame_seen)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG has a second frame header (SOF)", d->name);
    if (n < 6) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG frame header too short", d->name);
    int precision = p[0], height = be16(p + 1), width = be16(p + 3), ncomp = p[5];
    if (precision != 8) {
        if (precision == 12 || precision == 16)
            return mcnn_set_error(MCNN_ERR_UNSUPPORTED,
                                  "%s: %d-bit JPEG samples are not supported (only 8-bit)", d->name,
                                  precision);
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG sample precision %d is invalid", d->name,
                              precision);
    }
    if (ncomp == 0 || n != 6 + 3 * ncomp)
        return mcnn_set_error(MCNN_ERR_FORMAT,
                              "%s: JPEG frame header length %d does not fit %d components",
                              d->name, n + 2, ncomp);
    if (ncomp == 4)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED,
                              "%s: 4-component (CMYK/YCCK) JPEGs are not supported", d->name);
    if (ncomp != 1 && ncomp != 3)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED,
                              "%s: JPEGs with %d components are not supported (only 1 or 3)",
                              d->name, ncomp);
    if (width == 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG width is 0", d->name);
    if (height == 0) /* T.81 allows a DNL marker to give it later; libjpeg refuses it too */
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED,
                              "%s: JPEG height 0 (set by a DNL marker) is not supported", d->name);
    if ((int64_t)width * height > MCNN_IMAGE_MAX_PIXELS)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG of %dx%d pixels exceeds the limit of %lld",
                              d->name, width, height, (long long)MCNN_IMAGE_MAX_PIXELS);

    d->progressive = marker == 0xC2;
    d->width = width, d->height = height, d->ncomp = ncomp;
    d->hmax = d->vmax = 1;
    for (int i = 0; i < ncomp; i++) {
        jpeg_component *c = &d->comp[i];
        const uint8_t *q = p + 6 + 3 * i;
        c->id = q[0], c->h = q[1] >> 4, c->v = q[1] & 15, c->tq = q[2];
        if (c->h < 1 || c->h > 4 || c->v < 1 || c->v > 4)
            return mcnn_set_error(MCNN_ERR_FORMAT,
                                  "%s: JPEG component %d has sampling factors %dx%d (1..4 allowed)",
                                  d->name, c->id, c->h, c->v);
        if (c->tq > 3)
            return mcnn_set_error(MCNN_ERR_FORMAT,
                                  "%s: JPEG component %d uses quantisation table %d (0..3 allowed)",
                                  d->name, c->id, c->tq);
        for (int j = 0; j < i; j++)
            if (d->comp[j].id == c->id)
                return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG component id %d appears twice",
                                      d->name, c->id);
        if (c->h > d->hmax) d->hmax = c->h;
        if (c->v > d->vmax) d->vmax = c->v;
    }
    d->mcux = (width + 8 * d->hmax - 1) / (8 * d->hmax);
    d->mcuy = (height + 8 * d->vmax - 1) / (8 * d->vmax);
    for (int i = 0; i < ncomp; i++) {
        jpeg_component *c = &d->comp[i];
        /* Upsampling by a fraction (hmax 3, h 2) is not defined by libjpeg either. */
        if (d->hmax % c->h || d->vmax % c->v)
            return mcnn_set_error(MCNN_ERR_UNSUPPORTED,
                                  "%s: JPEG sampling factors %dx%d against %dx%d need fractional "
                                  "upsampling, which is not supported",
                                  d->name, c->h, c->v, d->hmax, d->vmax);
        c->width = (int)(((int64_t)width * c->h + d->hmax - 1) / d->hmax);
        c->height = (int)(((int64_t)height * c->v + d->vmax - 1) / d->vmax);
        c->bw = d->mcux * c->h, c->bh = d->mcuy * c->v;
        c->bw_used = (c->width + 7) / 8, c->bh_used = (c->height + 7) / 8;
        int overflow = 0;
        size_t n64 = mcnn_mul_size(mcnn_mul_size((size_t)c->bw, (size_t)c->bh, &overflow), 64,
                                   &overflow);
        c->coef = overflow ? NULL : calloc(n64, sizeof(int16_t));
        if (!c->coef)
            return mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory for %dx%d JPEG coefficients",
                                  d->name, width, height);
    }
    d->frame_seen = 1;
    return MCNN_OK;
}

static mcnn_status parse_dht(jpeg_decoder *d, const uint8_t *p, int n)
{
    while (n > 0) {
        if (n < 17) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG DHT segment truncated", d->name);
        int tc = p[0] >> 4, th = p[0] & 15, total = 0;
        for (int i = 0; i < 16; i++) total += p[1 + i];
        if (tc > 1 || th > 3)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG Huffman table class %d id %d invalid",
                                  d->name, tc, th);
        if (total > 256 || 17 + total > n)
            return mcnn_set_error(MCNN_ERR_FORMAT,
                                  "%s: JPEG Huffman table has %d symbols, segment holds %d",
                                  d->name, total, n - 17);
        jpeg_huffman *t = tc == 0 ? &d->dc[th] : &d->ac[th];
        if (mcnn_jpeg_build_huffman(t, p + 1, p + 17) != 0)
            return mcnn_set_error(MCNN_ERR_FORMAT,
                                  "%s: JPEG Huffman table %s%d has more codes than fit their lengths",
                                  d->name, tc == 0 ? "DC" : "AC", th);
        p += 17 + total, n -= 17 + total;
    }
    return MCNN_OK;
}

static mcnn_status parse_dqt(jpeg_decoder *d, const uint8_t *p, int n)
{
    while (n > 0) {
        int pq = p[0] >> 4, tq = p[0] & 15, bytes = pq ? 2 : 1;
        if (pq > 1 || tq > 3)
            return mcnn_set_error(MCNN_ERR_FORMAT,
                                  "%s: JPEG quantisation table precision %d id %d invalid", d->name,
                                  pq, tq);
        if (n < 1 + 64 * bytes)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG DQT segment truncated", d->name);
        for (int k = 0; k < 64; k++) /* stored in zigzag order (Figure A.6) */
            d->qt[tq][mcnn_jpeg_zigzag[k]] =
                (uint16_t)(pq ? be16(p + 1 + 2 * k) : p[1 + k]);
        d->qt_present[tq] = 1;
        p += 1 + 64 * bytes, n -= 1 + 64 * bytes;
    }
    return MCNN_OK;
}

static mcnn_status parse_sos(jpeg_decoder *d, const uint8_t *p, int n)
{
    if (!d->frame_seen)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG scan (SOS) before the frame header",
                              d->name);
    int ns = n >= 1 ? p[0] : 0;
    if (ns < 1 || ns > d->ncomp || n != 4 + 2 * ns)
        return mcnn_set_error(MCNN_ERR_FORMAT,
                              "%s: JPEG scan header with %d components and length %d is invalid",
                              d->name, ns, n + 2);
    int blocks = 0;
    for (int i = 0; i < ns; i++) {
        int id = p[1 + 2 * i], ci = -1;
        for (int j = 0; j < d->ncomp; j++)
            if (d->comp[j].id == id) ci = j;
        if (ci < 0)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG scan names component id %d, not in the frame",
                                  d->name, id);
        for (int j = 0; j < i; j++)
            if (d->scan_comp[j] == ci)
                return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG scan names component id %d twice",
                                      d->name, id);
        jpeg_component *c = &d->comp[ci];
        c->dc_table = p[2 + 2 * i] >> 4, c->ac_table = p[2 + 2 * i] & 15;
        if (c->dc_table > 3 || c->ac_table > 3)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG scan uses Huffman table %d/%d (0..3 allowed)",
                                  d->name, c->dc_table, c->ac_table);
        d->scan_comp[i] = ci;
        blocks += c->h * c->v;
    }
    d->scan_ncomp = ns;
    const uint8_t *q = p + 1 + 2 * ns;
    d->ss = q[0], d->se = q[1], d->ah = q[2] >> 4, d->al = q[2] & 15;
    if (ns > 1 && blocks > 10) /* B.2.3: at most 10 blocks in an interleaved MCU */
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG scan has %d blocks per MCU (at most 10)",
                              d->name, blocks);

    if (!d->progressive) {
        /* A sequential scan codes all 64 coefficients whatever Ss/Se/Ah/Al say; libjpeg only
         * warns about other values, so we ignore them too. */
        d->ss = 0, d->se = 63, d->ah = 0, d->al = 0;
    } else {
        int bad = d->ss == 0 ? d->se != 0 : (d->se < d->ss || d->se > 63 || ns != 1);
        if (d->ah != 0 && d->al != d->ah - 1) bad = 1; /* a refinement adds exactly one bit */
        if (d->al > 13) bad = 1;
        if (bad)
            return mcnn_set_error(MCNN_ERR_FORMAT,
                                  "%s: JPEG progressive scan Ss=%d Se=%d Ah=%d Al=%d with %d "
                                  "components is invalid", d->name, d->ss, d->se, d->ah, d->al, ns);
    }

    for (int i = 0; i < ns; i++) {
        jpeg_component *c = &d->comp[d->scan_comp[i]];
        int need_dc = d->ss == 0 && d->ah == 0, need_ac = d->se > 0;
        if ((need_dc && !d->dc[c->dc_table].present) || (need_ac && !d->ac[c->ac_table].present))
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG scan needs Huffman table %s%d, never defined",
                                  d->name, need_dc && !d->dc[c->dc_table].present ? "DC" : "AC",
                                  need_dc && !d->dc[c->dc_table].present ? c->dc_table : c->ac_table);
        /* The table is copied at the component's first scan, as libjpeg does: a later DQT
         * with the same number does not change coefficients already coded with it. */
        if (!c->q_latched) {
            if (!d->qt_present[c->tq])
                return mcnn_set_error(MCNN_ERR_FORMAT,
                                      "%s: JPEG component %d needs quantisation table %d, never defined",
                                      d->name, c->id, c->tq);
            memcpy(c->q, d->qt[c->tq], sizeof c->q);
            c->q_latched = 1;
        }
    }
    return MCNN_OK;
}

static void parse_app(jpeg_decoder *d, int marker, const uint8_t *p, int n)
{
    /* The same tests as libjpeg's examine_app0/examine_app14, so that both guess the same
     * colour space. */
    if (marker == 0xE0 && n >= 14 && memcmp(p, "JFIF", 5) == 0) d->saw_jfif = 1;
    if (marker == 0xEE && n >= 12 && memcmp(p, "Adobe", 5) == 0) {
        d->saw_adobe = 1;
        d->adobe_transform = p[11];
    }
}

mcnn_status mcnn_jpeg_read_segment(jpeg_decoder *d, int marker)
{
    /* Refused by code alone, before trusting a length. */
    if (marker == 0xC3 || marker == 0xC7 || marker == 0xCB || marker == 0xCF)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: lossless JPEG (SOF%d) is not supported",
                              d->name, marker - 0xC0);
    if (marker == 0xC5 || marker == 0xC6 || marker == 0xDE || marker == 0xDF)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED,
                              "%s: hierarchical JPEG (marker 0xFF%02X) is not supported", d->name,
                              marker);
    if (marker == 0xC9 || marker == 0xCA || marker == 0xCD || marker == 0xCE)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED,
                              "%s: arithmetic-coded JPEG (SOF%d) is not supported", d->name,
                              marker - 0xC0);
    if (marker == 0xF7)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: JPEG-LS is not supported", d->name);

    if (d->pos + 2 > d->size)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG truncated in marker 0xFF%02X", d->name,
                              marker);
    int len = be16(d->data + d->pos);
    if (len < 2 || d->pos + (size_t)len > d->size)
        return mcnn_set_error(MCNN_ERR_FORMAT,
                              "%s: JPEG marker 0xFF%02X has length %d, %zu bytes are left",
                              d->name, marker, len, d->size - d->pos);
    const uint8_t *p = d->data + d->pos + 2;
    int n = len - 2;
    d->pos += (size_t)len;

    if (marker == 0xC0 || marker == 0xC1 || marker == 0xC2) return parse_sof(d, marker, p, n);
    if (marker == 0xC4) return parse_dht(d, p, n);
    if (marker == 0xDB) return parse_dqt(d, p, n);
    if (marker == 0xDA) return parse_sos(d, p, n);
    if (marker == 0xDD) {
        if (n != 2)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG DRI segment has length %d, not 4",
                                  d->name, len);
        d->restart_interval = be16(p);
        return MCNN_OK;
    }
    if (marker >= 0xE0 && marker <= 0xEF) {
        parse_app(d, marker, p, n);
        return MCNN_OK;
    }
    /* COM, DNL (we never need it: height 0 is refused), DAC (harmless without an arithmetic
     * frame), JPGn extensions: skipped by their length. */
    if (marker == 0xFE || marker == 0xDC || marker == 0xCC || (marker >= 0xF0 && marker <= 0xFD))
        return MCNN_OK;
    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: unknown JPEG marker 0xFF%02X", d->name, marker);
}
