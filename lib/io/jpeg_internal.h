/* JPEG decoder internals (ITU-T T.81, JFIF), shared by lib/io/jpeg*.c.  Never installed.
 *
 * The decoder works in four stages, one file each:
 *   jpeg_markers.c  segments: SOF (frame), DHT, DQT, DRI, SOS (scan header), APP0/APP14
 *   jpeg_huffman.c  entropy-coded data -> quantised DCT coefficients, for every scan kind
 *                   (sequential; progressive DC/AC, first and refinement)
 *   jpeg_idct.c     dequantise + 8x8 inverse DCT -> one plane of samples per component
 *   jpeg_color.c    upsample the chroma planes, YCbCr -> RGB, interleave
 * and jpeg.c drives them.  Every coefficient of the image is kept until the last scan has been
 * read (a progressive file refines them scan after scan), so baseline and progressive files
 * share one path: scans fill coefficients, then the IDCT runs once. */
#ifndef MCNN_JPEG_INTERNAL_H
#define MCNN_JPEG_INTERNAL_H

#include "internal.h"

#include <stdint.h>
#include <stddef.h>

#define JPEG_MAX_COMPS 4      /* a frame may have up to 255; we parse 4 to name CMYK clearly */
#define JPEG_FAST_BITS 9      /* Huffman codes this short are decoded with one table lookup */
#define JPEG_MAX_SCANS 500    /* more is refused: see mcnn_jpeg_decode_scan              */

/* zigzag[k]: the natural (row-major) index of the k-th coefficient in zigzag order (Figure A.6) */
extern const uint8_t mcnn_jpeg_zigzag[64];

/* One Huffman table (Annex C), ready for decoding (Annex F.2.2.3).  Codes are canonical: all
 * codes of one length are consecutive integers, so "code <= maxcode[len]" tells whether a code
 * of that length has ended, and vals[code + valoff[len]] is its symbol. */
typedef struct jpeg_huffman {
    int present;
    uint8_t fast_len[1 << JPEG_FAST_BITS]; /* code length for a 9-bit prefix; 0: longer code */
    uint8_t fast_sym[1 << JPEG_FAST_BITS];
    int32_t maxcode[18];                   /* -1 where no code has that length; [17] sentinel */
    int32_t valoff[17];
    uint8_t vals[256];
} jpeg_huffman;

typedef struct jpeg_component {
    int id;                /* as written in the frame header                          */
    int h, v;              /* sampling factors, 1..4                                  */
    int tq;                /* quantisation table selector, 0..3                       */
    int width, height;     /* samples actually in the image: ceil(W*h/hmax), ceil(H*v/vmax) */
    int bw, bh;            /* blocks stored: whole MCUs, mcux*h by mcuy*v             */
    int bw_used, bh_used;  /* blocks that carry samples: ceil(width/8), ceil(height/8) */
    int16_t *coef;         /* (bh, bw, 64) quantised coefficients, natural order      */
    uint16_t q[64];        /* quantisation table, natural order, latched at first scan */
    int q_latched;
    int seen;              /* 1 once a scan has delivered this component's DC values  */
    /* state of the current scan */
    int dc_table, ac_table;
    int dc_pred;           /* last DC value (F.2.1.3.1), reset at every restart       */
    uint8_t *plane;        /* (bh_used*8, bw_used*8) samples after the IDCT           */
} jpeg_component;

/* Reads the entropy-coded segment bit by bit, most significant bit first (F.2.2.5), removing
 * the stuffed zero after every 0xFF.  At a marker (or the end of the data) it stops and feeds
 * zeros, counting them: a decoder that *uses* a fed zero has run past the real data, which is
 * a truncated or corrupt file, and "overrun" records it. */
typedef struct jpeg_bits {
    const uint8_t *data;
    size_t size, pos;
    uint64_t acc;          /* the next nbits bits, left-aligned                       */
    int nbits;
    int pad;               /* how many of the last nbits bits are fed zeros           */
    int ended;             /* reached a marker or the end: only zeros from now on     */
    int overrun;
} jpeg_bits;

typedef struct jpeg_decoder {
    const char *name;
    const uint8_t *data;
    size_t size, pos;

    /* frame (SOF) */
    int frame_seen, progressive;
    int width, height, ncomp;
    jpeg_component comp[JPEG_MAX_COMPS];
    int hmax, vmax;        /* largest sampling factors: an MCU covers 8*hmax x 8*vmax pixels */
    int mcux, mcuy;        /* MCUs per row and per column of an interleaved scan       */

    /* tables and settings, which may change between scans */
    uint16_t qt[4][64];
    int qt_present[4];
    jpeg_huffman dc[4], ac[4];
    int restart_interval;  /* MCUs between RSTn markers, 0: none                       */
    int saw_jfif, saw_adobe, adobe_transform;

    /* the current scan (SOS) */
    int scan_ncomp;
    int scan_comp[JPEG_MAX_COMPS]; /* indices into comp[], in scan order               */
    int ss, se, ah, al;    /* spectral selection, successive approximation (G.1.1)     */
    int eobrun;            /* progressive AC: blocks left in the current run of EOBs   */
    int scans;
    jpeg_bits bits;
} jpeg_decoder;

/* jpeg_markers.c: parse one marker segment whose code (0xC0..0xFE) has just been read.
 * After SOS the scan header is parsed and checked, but the entropy data is left to
 * mcnn_jpeg_decode_scan. */
mcnn_status mcnn_jpeg_read_segment(jpeg_decoder *d, int marker);
/* Advance to the next marker (skipping stray bytes as libjpeg does), return its code. */
mcnn_status mcnn_jpeg_next_marker(jpeg_decoder *d, int *marker);

/* jpeg_huffman.c */
/* Build a decoding table from the DHT counts (codes of length 1..16) and symbols; 0 on
 * success, -1 when the counts describe more codes than fit (a corrupt table). */
int mcnn_jpeg_build_huffman(jpeg_huffman *t, const uint8_t counts[16], const uint8_t *vals);
/* Decode the entropy-coded data of the scan whose header was just read, filling the
 * coefficients of its components; leaves d->pos after the data. */
mcnn_status mcnn_jpeg_decode_scan(jpeg_decoder *d);

/* jpeg_idct.c: out (8x8, row stride `stride`) = clamp(IDCT(coef .* q) + 128).
 * islow is libjpeg's default integer IDCT, bit for bit; ref is the definition (A.3.3) in
 * double precision, the plain twin the tests compare islow with. */
void mcnn_jpeg_idct_islow(uint8_t *out, int stride, const int16_t *coef, const uint16_t *q);
void mcnn_jpeg_idct_ref(uint8_t *out, int stride, const int16_t *coef, const uint16_t *q);
/* Every block that carries samples of component c -> c->plane (allocated here). */
mcnn_status mcnn_jpeg_idct_component(jpeg_decoder *d, jpeg_component *c);

/* jpeg_color.c: the component planes -> interleaved 8-bit gray or RGB pixels (malloc'ed). */
mcnn_status mcnn_jpeg_color_output(jpeg_decoder *d, unsigned char **pixels, int *channels);

#endif
