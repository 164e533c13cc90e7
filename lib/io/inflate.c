/* Inflate: the deflate decompressor (RFC 1951), and the zlib wrapper around it (RFC 1950).
 *
 * A deflate stream is a sequence of blocks.  Each block is stored (raw bytes), or coded with
 * two prefix codes: one for literal bytes / match lengths / end-of-block (symbols 0..285),
 * one for match distances (0..29).  A match (length, distance) copies `length` bytes from
 * `distance` bytes back in the output, possibly overlapping what it is writing (distance 1,
 * length 100 repeats one byte 100 times).
 *
 * The codes are canonical Huffman codes: only each symbol's code LENGTH is transmitted.
 * Codes are handed out in order of (length, symbol): the first code of length L is
 * (first code of length L-1 + number of codes of length L-1) << 1.  Deflate packs bits
 * least-significant first but writes each Huffman code most-significant bit first, so
 * reading a code means reading its bits one at a time, from the low end of our bit buffer.
 *
 * Decoding, table-driven: a table of 2^FAST_BITS entries indexed by the next FAST_BITS
 * input bits (as they sit in the bit buffer) gives (symbol, length) for every code up to
 * FAST_BITS long - one lookup decodes most symbols.  The rare longer codes take the
 * canonical slow path, which walks the lengths 1..15 comparing the code read so far with the
 * range of codes of that length (count[] and the symbols sorted by code).  Both paths use
 * the same two arrays, so they cannot disagree.
 *
 * Corrupt input: code-length sets that are over-subscribed (more codes than fit) or
 * incomplete (unused code space, except the single-code case RFC 1951 allows for
 * distances), invalid symbols (286, 287, distances 30, 31), a missing end-of-block code,
 * distances reaching before the start of the output, repeat codes without a previous
 * length, and reading past the end of the input are all errors.  Every symbol consumes at
 * least one bit and reading past the end is detected, so corrupt data always terminates. */
#include "io/inflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the growing output buffer --------------------------------------------------------- */

const char *mcnn_size_text(char buf[32], size_t n)
{
    const size_t mb = (size_t)1 << 20;
    if (n >= mb && n % mb == 0) snprintf(buf, 32, "%zu MB", n / mb);
    else snprintf(buf, 32, "%zu bytes", n);
    return buf;
}

mcnn_status mcnn_bytes_reserve(mcnn_bytes *o, size_t more, const char *name)
{
    if (more <= o->cap - o->len) return MCNN_OK;
    if (more > o->max - o->len) {
        char lim[32];
        o->over_max = 1;
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: inflates to more than %s", name,
                              mcnn_size_text(lim, o->max));
    }
    size_t need = o->len + more;
    size_t cap = o->cap < 4096 ? 4096 : o->cap;
    while (cap < need) cap = cap > o->max / 2 ? o->max : cap * 2;
    if (cap > o->max) cap = o->max;
    unsigned char *p = realloc(o->data, cap + 1); /* +1: room for a terminating NUL */
    if (!p) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory (%zu bytes)", name, cap);
    o->data = p;
    o->cap = cap;
    return MCNN_OK;
}

/* ---- bits ------------------------------------------------------------------------------- */

typedef struct bits {
    const unsigned char *in;
    size_t size, pos; /* pos may run past size: missing bytes read as zero, see overrun() */
    uint64_t buf;     /* unread bits, the next one in bit 0 */
    unsigned cnt;     /* how many bits of buf are valid */
} bits;

/* Top the buffer up to 56..63 bits: enough for the longest thing decoded between two
 * refills (length code 15 + 5 extra bits + distance code 15 + 13 extra bits = 48).  Bits of
 * buf above cnt may hold the low bits of in[pos]; OR-ing that byte in again is harmless. */
static inline void refill(bits *b)
{
    if (b->pos + 8 <= b->size) { /* fast path: one little-endian 64-bit load */
        const unsigned char *p = b->in + b->pos;
        uint64_t w = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
                     (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
                     (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
        b->buf |= w << b->cnt;            /* bits beyond 64 fall off ...                  */
        b->pos += (63 - b->cnt) >> 3;     /* ... and only the whole bytes that fit count  */
        b->cnt |= 56;
        return;
    }
    while (b->cnt < 56) {
        uint64_t byte = b->pos < b->size ? b->in[b->pos] : 0;
        b->pos++;
        b->buf |= byte << b->cnt;
        b->cnt += 8;
    }
}

static inline uint32_t getbits(bits *b, unsigned n) /* n <= 32, after a refill covering it */
{
    uint32_t v = (uint32_t)(b->buf & (((uint64_t)1 << n) - 1));
    b->buf >>= n;
    b->cnt -= n;
    return v;
}

/* Has decoding consumed any of the zero bytes invented past the end of the input? */
static inline int overrun(const bits *b)
{
    return b->pos > b->size && (b->pos - b->size) * 8 > b->cnt;
}

/* Input bytes consumed so far, a partly used byte counting as used. */
static size_t byte_pos(const bits *b)
{
    return b->pos - b->cnt / 8;
}

/* ---- canonical Huffman codes ------------------------------------------------------------- */

#define MAX_BITS 15
#define FAST_BITS 10
#define FAST_MASK ((1u << FAST_BITS) - 1)

typedef struct huff {
    uint16_t fast[1 << FAST_BITS]; /* (symbol << 4) | code length; 0: longer code or unused */
    uint16_t count[MAX_BITS + 1];  /* number of codes of each length                      */
    uint16_t symbol[288];          /* symbols in canonical code order                     */
} huff;

/* Build the decoder for n code lengths (0 = symbol unused).  Returns 0 on success, -1 for
 * an over-subscribed set, -2 for an incomplete one.  allow_single: accept the incomplete set
 * of one code of length 1 (RFC 1951 3.2.7 allows it for distances; zlib also accepts it for
 * literal/lengths, e.g. a block holding only end-of-block).  An empty set is accepted when
 * allow_single is set: any attempt to decode with it then fails as an invalid code. */
static int huff_build(huff *h, const uint8_t *lengths, int n, int allow_single)
{
    memset(h->count, 0, sizeof h->count);
    for (int s = 0; s < n; s++) h->count[lengths[s]]++;
    h->count[0] = 0;

    int left = 1; /* code space left, in units of the current length */
    for (int len = 1; len <= MAX_BITS; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0) return -1;
    }
    int ncodes = 0;
    for (int len = 1; len <= MAX_BITS; len++) ncodes += h->count[len];
    if (left > 0 && !(allow_single && (ncodes == 0 || (ncodes == 1 && h->count[1] == 1))))
        return -2;

    /* sort the symbols by (length, symbol): offs[len] is where length-len symbols start */
    uint16_t offs[MAX_BITS + 2];
    offs[1] = 0;
    for (int len = 1; len <= MAX_BITS; len++) offs[len + 1] = offs[len] + h->count[len];
    for (int s = 0; s < n; s++)
        if (lengths[s]) h->symbol[offs[lengths[s]]++] = (uint16_t)s;

    /* fill the fast table: code `code` of length len, read LSB-first from the stream, is the
     * bit-reversal of code; every table index whose low len bits equal it decodes to it */
    memset(h->fast, 0, sizeof h->fast);
    unsigned code = 0, k = 0;
    for (int len = 1; len <= FAST_BITS; len++) {
        for (int i = 0; i < h->count[len]; i++, k++, code++) {
            unsigned rev = 0;
            for (int j = 0; j < len; j++) rev |= ((code >> j) & 1u) << (len - 1 - j);
            uint16_t entry = (uint16_t)(h->symbol[k] << 4 | len);
            for (unsigned idx = rev; idx < (1u << FAST_BITS); idx += 1u << len) h->fast[idx] = entry;
        }
        code <<= 1;
    }
    return 0;
}

/* Codes longer than FAST_BITS (and invalid ones): walk the lengths.  `first` is the first
 * code of the current length, `index` the position of its symbol in h->symbol. */
static int decode_slow(bits *b, const huff *h)
{
    int code = 0, first = 0, index = 0;
    uint64_t buf = b->buf;
    for (int len = 1; len <= MAX_BITS; len++) {
        code |= (int)(buf & 1);
        buf >>= 1;
        int count = h->count[len];
        if (code - first < count) {
            b->buf = buf;
            b->cnt -= (unsigned)len;
            return h->symbol[index + (code - first)];
        }
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -1; /* ran out of lengths: unused code space (an incomplete set) */
}

/* Decode one symbol; the caller has refilled (>= 15 bits available). */
static inline int decode(bits *b, const huff *h)
{
    unsigned e = h->fast[b->buf & FAST_MASK];
    if (e) {
        b->buf >>= e & 15;
        b->cnt -= e & 15;
        return (int)(e >> 4);
    }
    return decode_slow(b, h);
}

/* ---- blocks ----------------------------------------------------------------------------- */

static const uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                       33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                       1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

typedef struct inflater {
    bits b;
    mcnn_bytes *o;
    size_t start; /* output length at the start of this stream: distances may not reach past it */
    const char *name;
    huff lit, dist;
} inflater;

static mcnn_status truncated(const inflater *s)
{
    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: deflate data is truncated (%zu bytes)", s->name,
                          s->b.size);
}

static mcnn_status corrupt(const inflater *s, const char *what)
{
    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: corrupt deflate data: %s (near input byte %zu)",
                          s->name, what, byte_pos(&s->b));
}

static mcnn_status stored_block(inflater *s)
{
    bits *b = &s->b;
    /* skip to a byte boundary, then hand the buffered whole bytes back to the input */
    getbits(b, b->cnt & 7);
    size_t pos = byte_pos(b);
    b->buf = 0;
    b->cnt = 0;
    if (pos > b->size || b->size - pos < 4) return truncated(s);
    unsigned len = b->in[pos] | (unsigned)b->in[pos + 1] << 8;
    unsigned nlen = b->in[pos + 2] | (unsigned)b->in[pos + 3] << 8;
    pos += 4;
    b->pos = pos;
    if (len != (~nlen & 0xffffu)) return corrupt(s, "stored block length does not match its complement");
    if (b->size - pos < len) return truncated(s);
    MCNN_TRY(mcnn_bytes_reserve(s->o, len, s->name));
    memcpy(s->o->data + s->o->len, b->in + pos, len);
    s->o->len += len;
    b->pos = pos + len;
    return MCNN_OK;
}

/* Literals and matches until end-of-block, with the codes in s->lit and s->dist. */
static mcnn_status codes(inflater *s)
{
    bits *b = &s->b;
    mcnn_bytes *o = s->o;
    for (;;) {
        refill(b);
        int sym = decode(b, &s->lit);
        if (sym < 256) {
            if (sym < 0) return overrun(b) ? truncated(s) : corrupt(s, "invalid literal/length code");
            if (overrun(b)) return truncated(s);
            if (o->len == o->cap) MCNN_TRY(mcnn_bytes_reserve(o, 1, s->name));
            o->data[o->len++] = (unsigned char)sym;
            continue;
        }
        if (sym == 256) return overrun(b) ? truncated(s) : MCNN_OK;
        sym -= 257;
        if (sym >= 29) return corrupt(s, "invalid length symbol (286 or 287)");
        size_t length = len_base[sym] + getbits(b, len_extra[sym]);
        int dsym = decode(b, &s->dist);
        if (dsym < 0) return overrun(b) ? truncated(s) : corrupt(s, "invalid distance code");
        if (dsym >= 30) return corrupt(s, "invalid distance symbol (30 or 31)");
        size_t dist = dist_base[dsym] + getbits(b, dist_extra[dsym]);
        if (overrun(b)) return truncated(s);
        if (dist > o->len - s->start) return corrupt(s, "distance reaches before the start of the output");

        MCNN_TRY(mcnn_bytes_reserve(o, length, s->name));
        unsigned char *dst = o->data + o->len;
        const unsigned char *src = dst - dist;
        if (dist >= length) {
            memcpy(dst, src, length);
        } else if (dist == 1) {
            memset(dst, src[0], length);
        } else { /* overlapping: the copy reads bytes it has just written, a repeating pattern */
            for (size_t i = 0; i < length; i++) dst[i] = src[i];
        }
        o->len += length;
    }
}

static void fixed_codes(inflater *s)
{
    uint8_t l[288];
    int i = 0;
    for (; i < 144; i++) l[i] = 8;
    for (; i < 256; i++) l[i] = 9;
    for (; i < 280; i++) l[i] = 7;
    for (; i < 288; i++) l[i] = 8;
    huff_build(&s->lit, l, 288, 0);
    for (i = 0; i < 32; i++) l[i] = 5;
    huff_build(&s->dist, l, 32, 0); /* symbols 30, 31 have codes but are rejected when used */
}

/* A dynamic block's header: the code-length code, then the literal/length and distance
 * code lengths coded with it (RFC 1951 3.2.7). */
static mcnn_status dynamic_codes(inflater *s)
{
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    bits *b = &s->b;
    refill(b);
    int nlit = (int)getbits(b, 5) + 257, ndist = (int)getbits(b, 5) + 1, nclen = (int)getbits(b, 4) + 4;
    if (nlit > 286 || ndist > 30) return corrupt(s, "too many literal/length or distance codes");

    uint8_t lengths[286 + 30];
    memset(lengths, 0, 19);
    for (int i = 0; i < nclen; i++) {
        refill(b);
        lengths[order[i]] = (uint8_t)getbits(b, 3);
    }
    if (overrun(b)) return truncated(s);
    huff clen;
    if (huff_build(&clen, lengths, 19, 0) != 0) return corrupt(s, "invalid code-length code");

    int n = 0;
    while (n < nlit + ndist) {
        refill(b);
        int sym = decode(b, &clen);
        if (sym < 0) return overrun(b) ? truncated(s) : corrupt(s, "invalid code-length symbol");
        if (sym < 16) {
            lengths[n++] = (uint8_t)sym;
            continue;
        }
        int rep, val = 0;
        if (sym == 16) {
            if (n == 0) return corrupt(s, "repeat of a code length with no previous length");
            val = lengths[n - 1];
            rep = 3 + (int)getbits(b, 2);
        } else if (sym == 17) {
            rep = 3 + (int)getbits(b, 3);
        } else {
            rep = 11 + (int)getbits(b, 7);
        }
        if (rep > nlit + ndist - n) return corrupt(s, "code lengths repeat past the end of the table");
        memset(lengths + n, val, (size_t)rep);
        n += rep;
    }
    if (overrun(b)) return truncated(s);
    if (lengths[256] == 0) return corrupt(s, "no code for end-of-block");
    int r = huff_build(&s->lit, lengths, nlit, 1);
    if (r != 0) return corrupt(s, r == -1 ? "over-subscribed literal/length code" : "incomplete literal/length code");
    r = huff_build(&s->dist, lengths + nlit, ndist, 1);
    if (r != 0) return corrupt(s, r == -1 ? "over-subscribed distance code" : "incomplete distance code");
    return MCNN_OK;
}

mcnn_status mcnn_inflate_append(mcnn_bytes *o, const unsigned char *in, size_t in_size,
                                size_t *consumed, const char *name)
{
    inflater *s = malloc(sizeof *s); /* ~5 KB of tables: keep them off small thread stacks */
    if (!s) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", name);
    memset(&s->b, 0, sizeof s->b);
    s->b.in = in;
    s->b.size = in_size;
    s->o = o;
    s->start = o->len;
    s->name = name;

    mcnn_status st = MCNN_OK;
    int final = 0;
    while (!final && st == MCNN_OK) {
        refill(&s->b);
        final = (int)getbits(&s->b, 1);
        unsigned type = getbits(&s->b, 2);
        if (overrun(&s->b)) {
            st = truncated(s);
        } else if (type == 0) {
            st = stored_block(s);
        } else if (type == 1) {
            fixed_codes(s);
            st = codes(s);
        } else if (type == 2) {
            st = dynamic_codes(s);
            if (st == MCNN_OK) st = codes(s);
        } else {
            st = corrupt(s, "invalid block type 3");
        }
    }
    if (st == MCNN_OK && consumed) *consumed = byte_pos(&s->b);
    free(s);
    return st;
}

/* ---- Adler-32 and zlib -------------------------------------------------------------------- */

uint32_t mcnn_adler32(uint32_t adler, const unsigned char *p, size_t n)
{
    /* a = 1 + sum of bytes, b = sum of the a's, both mod 65521.  5552 is the most bytes that
     * can be summed before b might overflow 32 bits, so the slow modulo runs once per block. */
    uint32_t a = adler & 0xffff, b = adler >> 16;
    while (n > 0) {
        size_t k = n < 5552 ? n : 5552;
        n -= k;
        while (k--) {
            a += *p++;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    return b << 16 | a;
}

mcnn_status mcnn_zlib_append(mcnn_bytes *o, const unsigned char *in, size_t in_size,
                             size_t *consumed, const char *name)
{
    if (in_size < 2)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zlib stream is truncated (%zu bytes)", name, in_size);
    unsigned cmf = in[0], flg = in[1];
    if ((cmf & 15) != 8 || (cmf >> 4) > 7)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: not a zlib deflate stream (header byte 0x%02x)", name, cmf);
    if ((cmf * 256 + flg) % 31 != 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zlib header check bits are wrong", name);
    if (flg & 0x20)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: zlib preset dictionaries are not supported", name);
    size_t start = o->len, used = 0;
    MCNN_TRY(mcnn_inflate_append(o, in + 2, in_size - 2, &used, name));
    size_t pos = 2 + used;
    if (in_size - pos < 4)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zlib stream is truncated (no Adler-32)", name);
    uint32_t want = (uint32_t)in[pos] << 24 | (uint32_t)in[pos + 1] << 16 | (uint32_t)in[pos + 2] << 8 | in[pos + 3];
    uint32_t got = mcnn_adler32(1, o->data + start, o->len - start);
    if (got != want)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zlib Adler-32 mismatch (stored %08x, computed %08x)",
                              name, want, got);
    if (consumed) *consumed = pos + 4;
    return MCNN_OK;
}

/* ---- the public functions ------------------------------------------------------------------ */

typedef mcnn_status (*stream_fn)(mcnn_bytes *, const unsigned char *, size_t, size_t *, const char *);

static mcnn_status whole(unsigned char **out, size_t *out_size, const unsigned char *in,
                         size_t in_size, const char *name, stream_fn fn, const char *what)
{
    *out = NULL;
    *out_size = 0;
    if (!name) name = what;
    if (!in && in_size) return mcnn_set_error(MCNN_ERR_ARG, "%s: NULL input", name);
    mcnn_bytes o = {.max = MCNN_INFLATE_DEFAULT_MAX};
    /* a first guess at the size (typical ratios are 2-4x); doubling takes it from there */
    size_t guess = in_size < o.max / 4 ? in_size * 4 : o.max;
    size_t used = 0;
    mcnn_status st = mcnn_bytes_reserve(&o, guess ? guess : 1, name); /* data is never NULL */
    if (st == MCNN_OK) st = fn(&o, in ? in : (const unsigned char *)"", in_size, &used, name);
    if (st == MCNN_OK && used != in_size)
        st = mcnn_set_error(MCNN_ERR_FORMAT, "%s: %zu bytes after the end of the %s stream", name,
                            in_size - used, what);
    if (st != MCNN_OK) {
        free(o.data);
        return st;
    }
    o.data[o.len] = 0; /* the reserve keeps one spare byte */
    *out = o.data;
    *out_size = o.len;
    return MCNN_OK;
}

mcnn_status mcnn_inflate(unsigned char **out, size_t *out_size, const unsigned char *in,
                         size_t in_size, const char *name)
{
    return whole(out, out_size, in, in_size, name, mcnn_inflate_append, "deflate");
}

mcnn_status mcnn_zlib_decompress(unsigned char **out, size_t *out_size, const unsigned char *in,
                                 size_t in_size, const char *name)
{
    return whole(out, out_size, in, in_size, name, mcnn_zlib_append, "zlib");
}
