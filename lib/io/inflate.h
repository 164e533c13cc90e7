/* Internal pieces of the deflate/zlib/gzip reader, shared by inflate.c, gzip.c, png.c and
 * image.c.  The public entry points are in include/mcnn/image.h. */
#ifndef MCNN_IO_INFLATE_H
#define MCNN_IO_INFLATE_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* The public functions refuse to produce more than this (a 1 KB deflate "bomb" can ask for
 * a megabyte, a 4 MB one for 4 GB). */
#define MCNN_INFLATE_DEFAULT_MAX (SIZE_MAX / 4 < ((size_t)1 << 32) ? SIZE_MAX / 4 : ((size_t)1 << 32))

/* A growing output buffer.  data is malloc'ed; len <= cap <= max always.  Growth doubles
 * (so appending n bytes costs O(n) overall) and stops at max with an error. */
typedef struct mcnn_bytes {
    unsigned char *data;
    size_t len, cap, max;
    int over_max; /* set when a reserve was refused because of max */
} mcnn_bytes;

/* Make room for `more` bytes after len.  Fails with MCNN_ERR_FORMAT when len + more > max
 * ("name: inflates to more than 64 MB", and over_max is set), MCNN_ERR_NOMEM when malloc
 * fails. */
mcnn_status mcnn_bytes_reserve(mcnn_bytes *o, size_t more, const char *name);

/* n bytes for a message: "64 MB" when n is a whole number of MiB, else "1000 bytes".  buf
 * holds 32 bytes; returns buf. */
const char *mcnn_size_text(char buf[32], size_t n);

/* Inflate one raw deflate stream from in[0..in_size) and append its output to o.  Back
 * references may not reach before the output's length at entry (each gzip member is its
 * own stream).  *consumed receives the bytes of input used, up to and including the byte
 * holding the last bit of the final block; what follows is the caller's business. */
mcnn_status mcnn_inflate_append(mcnn_bytes *o, const unsigned char *in, size_t in_size,
                                size_t *consumed, const char *name);

/* A zlib stream (RFC 1950): 2-byte header, deflate data, Adler-32 of the output (checked).
 * Appends to o like mcnn_inflate_append and reports the bytes consumed. */
mcnn_status mcnn_zlib_append(mcnn_bytes *o, const unsigned char *in, size_t in_size,
                             size_t *consumed, const char *name);

/* Adler-32 (RFC 1950 section 8.2): start with adler = 1. */
uint32_t mcnn_adler32(uint32_t adler, const unsigned char *p, size_t n);

/* CRC-32 as used by gzip and PNG (reflected polynomial 0xEDB88320).  The tables are built
 * by mcnn_crc32_init into caller storage (8 KB, a few microseconds): no hidden global state,
 * so nothing races between threads.  Start with crc = 0. */
typedef struct mcnn_crc32_table {
    uint32_t t[8][256];
} mcnn_crc32_table;
void mcnn_crc32_init(mcnn_crc32_table *tab);
uint32_t mcnn_crc32(const mcnn_crc32_table *tab, uint32_t crc, const unsigned char *p, size_t n);

/* Read a whole file into a malloc'ed buffer with one spare byte after the end (set to 0).
 * Errors name the path. */
mcnn_status mcnn_read_file(unsigned char **out, size_t *out_size, const char *path);

#endif
