/* JPEG entropy decoding (T.81 Annex F.2 sequential, Annex G.2 progressive): bits -> quantised
 * DCT coefficients.
 *
 * Each 8x8 block is coded as a DC difference (from the previous block of the same component)
 * and a zigzag run of AC values.  A coded value is a Huffman symbol followed by extra bits:
 *   DC: symbol s = size category; then s bits give the difference in [-(2^s-1), 2^s-1]
 *   AC: symbol (r << 4) | s = run of r zeros, then a value of category s; 0x00 ends the
 *       block (EOB), 0xF0 is 16 zeros (ZRL)
 * A progressive file sends the same coefficients in several scans (Annex G):
 *   spectral selection:       a scan carries only the band Ss..Se of zigzag positions
 *                             (Ss = 0: DC only, for all components; else AC, one component)
 *   successive approximation: the first scan of a band sends values >> Al ("first"), each
 *                             later scan one more bit ("refinement", Ah = Al + 1)
 *   EOB runs:                 symbol r << 4 with s = 0, r < 15 says the next 2^r + (r bits)
 *                             blocks have nothing more in this band.
 * Restart markers (RST0..7 every `restart_interval` MCUs) byte-align the stream and reset the
 * DC predictions and the EOB run, so a decoder can resynchronise. */
#include "jpeg_internal.h"

#include <string.h>

int mcnn_jpeg_build_huffman(jpeg_huffman *t, const uint8_t counts[16], const uint8_t *vals)
{
    /* Canonical codes (C.2): codes of each length are consecutive, starting at twice one more
     * than the last code of the previous length. */
    int32_t code = 0, k = 0;
    memset(t, 0, sizeof *t);
    for (int len = 1; len <= 16; len++) {
        int n = counts[len - 1];
        /* The last code of this length, code + n - 1, must fit in len bits and may not be all
         * ones (libjpeg's rule too); checked before the codes index the fast table. */
        if (code + n >= ((int32_t)1 << len) || k + n > 256) return -1;
        t->valoff[len] = k - code;
        t->maxcode[len] = n ? code + n - 1 : -1;
        for (int i = 0; i < n; i++, code++, k++) {
            t->vals[k] = vals[k];
            if (len <= JPEG_FAST_BITS) { /* every 9-bit prefix that starts with this code */
                int shift = JPEG_FAST_BITS - len;
                for (int j = code << shift; j < (code + 1) << shift; j++) {
                    t->fast_len[j] = (uint8_t)len;
                    t->fast_sym[j] = vals[k];
                }
            }
        }
        code <<= 1;
    }
    t->maxcode[17] = INT32_MAX;
    t->present = 1;
    return 0;
}

/* ---- the bit reader ------------------------------------------------------------------------ */

/* The next byte of entropy-coded data, or -1 at a marker or at the end of the data. */
static int next_byte(jpeg_bits *b)
{
    if (b->pos >= b->size) return -1;
    int c = b->data[b->pos];
    if (c != 0xFF) {
        b->pos++;
        return c;
    }
    size_t p = b->pos + 1;
    while (p < b->size && b->data[p] == 0xFF) p++; /* fill bytes */
    if (p < b->size && b->data[p] == 0x00) {       /* 0xFF 0x00: a stuffed 0xFF data byte */
        b->pos = p + 1;
        return 0xFF;
    }
    return -1; /* a marker: leave pos on a 0xFF for the marker reader */
}

static void bits_fill(jpeg_bits *b)
{
    while (b->nbits <= 56) {
        int c = b->ended ? -1 : next_byte(b);
        if (c < 0) b->ended = 1, b->pad += 8, c = 0;
        b->acc |= (uint64_t)c << (56 - b->nbits);
        b->nbits += 8;
    }
}

static inline void bits_drop(jpeg_bits *b, int n)
{
    b->acc <<= n;
    b->nbits -= n;
    if (b->nbits < b->pad) b->overrun = 1, b->pad = b->nbits; /* used a fed zero */
}

static inline int get_bits(jpeg_bits *b, int n) /* 0 <= n <= 16 */
{
    if (n == 0) return 0;
    if (b->nbits < n) bits_fill(b);
    int v = (int)(b->acc >> (64 - n));
    bits_drop(b, n);
    return v;
}

/* s extra bits -> a signed value of category s (F.2.2.1, EXTEND). */
static inline int receive_extend(jpeg_bits *b, int s)
{
    int v = get_bits(b, s);
    return v < (1 << (s - 1)) ? v - (1 << s) + 1 : v;
}

/* One Huffman symbol, or -1 for a bit pattern that is no code of the table (F.2.2.3). */
static inline int huff_decode(jpeg_bits *b, const jpeg_huffman *t)
{
    if (b->nbits < 16) bits_fill(b);
    int peek = (int)(b->acc >> (64 - JPEG_FAST_BITS));
    int len = t->fast_len[peek];
    if (len) {
        bits_drop(b, len);
        return t->fast_sym[peek];
    }
    int32_t code16 = (int32_t)(b->acc >> 48);
    for (len = JPEG_FAST_BITS + 1; len <= 16; len++) {
        int32_t code = code16 >> (16 - len);
        if (code <= t->maxcode[len]) {
            bits_drop(b, len);
            return t->vals[code + t->valoff[len]];
        }
    }
    return -1;
}

/* ---- one block, for each kind of scan -------------------------------------------------------- */

static mcnn_status bad_code(jpeg_decoder *d, const char *what)
{
    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: corrupt JPEG data in scan %d: %s", d->name,
                          d->scans, what);
}

/* dc_pred accumulates like libjpeg's int; wrap instead of overflowing on hostile data. */
static inline int add_wrap(int a, int b) { return (int)(int32_t)((uint32_t)a + (uint32_t)b); }
static inline int16_t shl16(int v, int n) { return (int16_t)(uint16_t)((uint32_t)v << n); }

static mcnn_status decode_dc(jpeg_decoder *d, jpeg_component *c, int16_t *blk)
{
    int s = huff_decode(&d->bits, &d->dc[c->dc_table]);
    if (s < 0) return bad_code(d, "bad Huffman code");
    if (s > 11) return bad_code(d, "DC difference category above 11");
    c->dc_pred = add_wrap(c->dc_pred, s ? receive_extend(&d->bits, s) : 0);
    blk[0] = shl16(c->dc_pred, d->al);
    return MCNN_OK;
}

/* Sequential: DC difference, then the AC run-lengths up to EOB (F.2.2). */
static mcnn_status decode_block_seq(jpeg_decoder *d, jpeg_component *c, int16_t *blk)
{
    jpeg_bits *b = &d->bits;
    MCNN_TRY(decode_dc(d, c, blk));
    const jpeg_huffman *ac = &d->ac[c->ac_table];
    for (int k = 1; k < 64; k++) {
        int rs = huff_decode(b, ac);
        if (rs < 0) return bad_code(d, "bad Huffman code");
        int r = rs >> 4, s = rs & 15;
        if (s == 0) {
            if (r != 15) break; /* EOB */
            k += 15;            /* ZRL: 16 zeros, the loop adds the last one */
            continue;
        }
        k += r;
        if (k > 63) return bad_code(d, "AC run past the end of the block");
        blk[mcnn_jpeg_zigzag[k]] = (int16_t)receive_extend(b, s);
    }
    return MCNN_OK;
}

/* Progressive DC, first scan: the difference coding of F.2.2.1, value scaled by 2^Al (G.1.2.1). */
static mcnn_status decode_dc_first(jpeg_decoder *d, jpeg_component *c, int16_t *blk)
{
    return decode_dc(d, c, blk);
}

/* Progressive DC refinement: one raw bit per block, bit Al of the DC value (G.1.2.1). */
static mcnn_status decode_dc_refine(jpeg_decoder *d, jpeg_component *c, int16_t *blk)
{
    (void)c;
    if (get_bits(&d->bits, 1)) blk[0] = (int16_t)(blk[0] | (1 << d->al));
    return MCNN_OK;
}

/* Progressive AC, first scan of band Ss..Se: values >> Al, with EOB runs (G.1.2.2). */
static mcnn_status decode_ac_first(jpeg_decoder *d, jpeg_component *c, int16_t *blk)
{
    jpeg_bits *b = &d->bits;
    if (d->eobrun > 0) {
        d->eobrun--;
        return MCNN_OK;
    }
    const jpeg_huffman *ac = &d->ac[c->ac_table];
    for (int k = d->ss; k <= d->se; k++) {
        int rs = huff_decode(b, ac);
        if (rs < 0) return bad_code(d, "bad Huffman code");
        int r = rs >> 4, s = rs & 15;
        if (s == 0) {
            if (r == 15) {
                k += 15;
                continue;
            }
            d->eobrun = (1 << r) + get_bits(b, r) - 1; /* this block is the first of the run */
            break;
        }
        k += r;
        if (k > d->se) return bad_code(d, "AC run past the end of the band");
        blk[mcnn_jpeg_zigzag[k]] = shl16(receive_extend(b, s), d->al);
    }
    return MCNN_OK;
}

/* One correction bit for a coefficient that is already non-zero: it moves away from zero by
 * 2^Al when the bit is set (and that bit is not already set). */
static inline void refine(jpeg_bits *b, int16_t *coef, int p1)
{
    if (get_bits(b, 1) && (*coef & p1) == 0) *coef = (int16_t)(*coef >= 0 ? *coef + p1 : *coef - p1);
}

/* Progressive AC refinement (G.1.2.3).  The symbols code only coefficients that become
 * non-zero now (value +-2^Al, sign in one bit); a run r counts zero coefficients only, and
 * every already non-zero coefficient passed on the way gets one correction bit. */
static mcnn_status decode_ac_refine(jpeg_decoder *d, jpeg_component *c, int16_t *blk)
{
    jpeg_bits *b = &d->bits;
    const int p1 = 1 << d->al;
    int k = d->ss;
    if (d->eobrun == 0) {
        const jpeg_huffman *ac = &d->ac[c->ac_table];
        for (; k <= d->se; k++) {
            int rs = huff_decode(b, ac);
            if (rs < 0) return bad_code(d, "bad Huffman code");
            int r = rs >> 4, s = rs & 15, value = 0;
            if (s != 0) {
                if (s != 1) return bad_code(d, "refinement value of category above 1");
                value = get_bits(b, 1) ? p1 : -p1;
            } else if (r != 15) {
                d->eobrun = (1 << r) + get_bits(b, r); /* includes this block: see below */
                break;
            }
            /* Skip r zero coefficients, refining the non-zero ones passed; stop on the zero
             * that receives `value` (or after the 16th zero of a ZRL). */
            for (; k <= d->se; k++) {
                int16_t *coef = &blk[mcnn_jpeg_zigzag[k]];
                if (*coef != 0) refine(b, coef, p1);
                else if (--r < 0) break;
            }
            if (value) {
                if (k > d->se) return bad_code(d, "refinement run past the end of the band");
                blk[mcnn_jpeg_zigzag[k]] = (int16_t)value;
            }
        }
    }
    if (d->eobrun > 0) { /* in an EOB run: only correction bits for the non-zero coefficients */
        for (; k <= d->se; k++) {
            int16_t *coef = &blk[mcnn_jpeg_zigzag[k]];
            if (*coef != 0) refine(b, coef, p1);
        }
        d->eobrun--;
    }
    return MCNN_OK;
}

/* ---- the scan: MCUs, restart intervals ------------------------------------------------------- */

static void bits_start(jpeg_bits *b, const uint8_t *data, size_t size, size_t pos)
{
    memset(b, 0, sizeof *b);
    b->data = data, b->size = size, b->pos = pos;
}

static mcnn_status truncated(jpeg_decoder *d)
{
    return mcnn_set_error(MCNN_ERR_FORMAT,
                          "%s: JPEG scan %d: entropy-coded data ends early (truncated or corrupt file)",
                          d->name, d->scans);
}

/* At the end of a restart interval: the RSTn marker must come next (after any bits left in the
 * current byte), numbered n = interval count mod 8. */
static mcnn_status restart(jpeg_decoder *d, int n)
{
    jpeg_bits *b = &d->bits;
    if (b->overrun) return truncated(d);
    d->pos = b->pos;
    int marker;
    MCNN_TRY(mcnn_jpeg_next_marker(d, &marker));
    if (marker != 0xD0 + n) {
        if (marker < 0) return truncated(d);
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG scan %d: expected marker RST%d, found 0xFF%02X",
                              d->name, d->scans, n, marker);
    }
    bits_start(b, d->data, d->size, d->pos);
    for (int i = 0; i < d->scan_ncomp; i++) d->comp[d->scan_comp[i]].dc_pred = 0;
    d->eobrun = 0;
    return MCNN_OK;
}

typedef mcnn_status (*block_fn)(jpeg_decoder *d, jpeg_component *c, int16_t *blk);

mcnn_status mcnn_jpeg_decode_scan(jpeg_decoder *d)
{
    block_fn decode_block;
    if (!d->progressive) decode_block = decode_block_seq;
    else if (d->ss == 0) decode_block = d->ah == 0 ? decode_dc_first : decode_dc_refine;
    else decode_block = d->ah == 0 ? decode_ac_first : decode_ac_refine;

    /* A progressive scan can cover millions of blocks with a few bytes of EOB runs, so a
     * small hostile file with many scans could keep us busy for minutes; real encoders write
     * about 10 (libjpeg-turbo's own fuzzers stop at 500 too). */
    if (++d->scans > JPEG_MAX_SCANS)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG has more than %d scans", d->name,
                              JPEG_MAX_SCANS);
    d->eobrun = 0;
    for (int i = 0; i < d->scan_ncomp; i++) d->comp[d->scan_comp[i]].dc_pred = 0;
    bits_start(&d->bits, d->data, d->size, d->pos);

    /* A scan of one component is not interleaved: its MCU is one block, and it covers only the
     * blocks that hold samples, not the whole-MCU padding (A.2.2).  Several components: the
     * MCU is h x v blocks of each, in scan order (A.2.3). */
    jpeg_component *c0 = &d->comp[d->scan_comp[0]];
    const int single = d->scan_ncomp == 1;
    const int nx = single ? c0->bw_used : d->mcux, ny = single ? c0->bh_used : d->mcuy;
    const int64_t total = (int64_t)nx * ny;
    int left = d->restart_interval, next_rst = 0;
    for (int64_t m = 0; m < total; m++) {
        if (d->restart_interval) {
            if (left == 0) {
                MCNN_TRY(restart(d, next_rst));
                next_rst = (next_rst + 1) & 7, left = d->restart_interval;
            }
            left--;
        }
        const int mx = (int)(m % nx), my = (int)(m / nx);
        if (single) {
            int16_t *blk = c0->coef + ((size_t)my * c0->bw + mx) * 64;
            MCNN_TRY(decode_block(d, c0, blk));
        } else {
            for (int i = 0; i < d->scan_ncomp; i++) {
                jpeg_component *c = &d->comp[d->scan_comp[i]];
                for (int v = 0; v < c->v; v++)
                    for (int h = 0; h < c->h; h++) {
                        size_t bx = (size_t)mx * c->h + h, by = (size_t)my * c->v + v;
                        MCNN_TRY(decode_block(d, c, c->coef + (by * c->bw + bx) * 64));
                    }
            }
        }
        if (d->bits.overrun) return truncated(d);
    }
    if (d->ss == 0 && d->ah == 0)
        for (int i = 0; i < d->scan_ncomp; i++) d->comp[d->scan_comp[i]].seen = 1;
    d->pos = d->bits.pos; /* the marker reader skips what the decoder did not need */
    return MCNN_OK;
}
