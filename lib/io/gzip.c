/* gzip (RFC 1952): one or more members, each a header, a deflate stream and a trailer
 * holding the CRC-32 and the length (mod 2^32) of that member's output.  Concatenated
 * members decompress to the concatenation of their outputs (what `cat a.gz b.gz | zcat`
 * gives).  Zero bytes after the last member are tolerated (tape padding; gzip and Python's
 * gzip module accept them too); anything else after it is an error.
 *
 *   header: 1f 8b | CM=8 | FLG | MTIME(4) | XFL | OS
 *           [FEXTRA: XLEN(2, little-endian) + XLEN bytes] [FNAME: text, NUL] [FCOMMENT: text, NUL]
 *           [FHCRC: low 16 bits of the CRC-32 of the header bytes before it]
 *   trailer: CRC32(4) ISIZE(4), both little-endian */
#define _POSIX_C_SOURCE 200809L /* fstat, fileno */
#include "io/inflate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { FTEXT = 1, FHCRC = 2, FEXTRA = 4, FNAME = 8, FCOMMENT = 16 };

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Parse one member header starting at in[0]; *len receives its size in bytes. */
static mcnn_status member_header(size_t *len, const unsigned char *in, size_t n, int member,
                                 const mcnn_crc32_table *crc, const char *name)
{
    if (n < 10)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: gzip member %d: header is truncated", name, member);
    if (in[0] != 0x1f || in[1] != 0x8b)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: gzip member %d: bad magic %02x %02x", name, member,
                              in[0], in[1]);
    if (in[2] != 8)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: gzip member %d: compression method %d is not deflate",
                              name, member, in[2]);
    unsigned flg = in[3];
    if (flg & 0xe0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: gzip member %d: reserved flag bits set (0x%02x)", name,
                              member, flg);
    size_t pos = 10;
    if (flg & FEXTRA) {
        if (n - pos < 2) goto truncated;
        size_t xlen = in[pos] | (size_t)in[pos + 1] << 8;
        pos += 2;
        if (n - pos < xlen) goto truncated;
        pos += xlen;
    }
    for (unsigned f = FNAME; f <= FCOMMENT; f <<= 1) { /* FNAME then FCOMMENT: NUL-terminated */
        if (!(flg & f)) continue;
        const unsigned char *z = memchr(in + pos, 0, n - pos);
        if (!z) goto truncated;
        pos = (size_t)(z - in) + 1;
    }
    if (flg & FHCRC) {
        if (n - pos < 2) goto truncated;
        unsigned want = in[pos] | (unsigned)in[pos + 1] << 8;
        unsigned got = mcnn_crc32(crc, 0, in, pos) & 0xffff;
        if (got != want)
            return mcnn_set_error(MCNN_ERR_FORMAT,
                                  "%s: gzip member %d: header CRC mismatch (stored %04x, computed %04x)",
                                  name, member, want, got);
        pos += 2;
    }
    *len = pos;
    return MCNN_OK;
truncated:
    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: gzip member %d: header is truncated", name, member);
}

/* Decompress every member of in[0..n) into o. */
static mcnn_status gunzip(mcnn_bytes *o, const unsigned char *in, size_t n, const char *name)
{
    mcnn_crc32_table *crc = malloc(sizeof *crc);
    if (!crc) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", name);
    mcnn_crc32_init(crc);
    mcnn_status st = MCNN_OK;
    size_t pos = 0;
    for (int member = 1;; member++) {
        size_t hlen = 0, used = 0;
        st = member_header(&hlen, in + pos, n - pos, member, crc, name);
        if (st != MCNN_OK) break;
        pos += hlen;
        size_t start = o->len;
        st = mcnn_inflate_append(o, in + pos, n - pos, &used, name);
        if (st != MCNN_OK) {
            if (!o->over_max) mcnn_wrap_error(st, "gzip member %d: ", member);
            break;
        }
        pos += used;
        if (n - pos < 8) {
            st = mcnn_set_error(MCNN_ERR_FORMAT, "%s: gzip member %d: trailer is truncated", name, member);
            break;
        }
        uint32_t want_crc = le32(in + pos), want_size = le32(in + pos + 4);
        uint32_t got_crc = mcnn_crc32(crc, 0, o->data + start, o->len - start);
        pos += 8;
        if (got_crc != want_crc) {
            st = mcnn_set_error(MCNN_ERR_FORMAT, "%s: gzip member %d: CRC-32 mismatch (stored %08x, computed %08x)",
                                name, member, want_crc, got_crc);
            break;
        }
        if (want_size != (uint32_t)(o->len - start)) {
            st = mcnn_set_error(MCNN_ERR_FORMAT, "%s: gzip member %d: length mismatch (stored %u, got %zu)",
                                name, member, want_size, o->len - start);
            break;
        }
        size_t rest = pos;
        while (rest < n && in[rest] == 0) rest++;
        if (rest == n) break; /* the end, or zero padding */
        if (rest != pos || n - pos < 2 || in[pos] != 0x1f || in[pos + 1] != 0x8b) {
            st = mcnn_set_error(MCNN_ERR_FORMAT, "%s: %zu bytes of garbage after gzip member %d", name,
                                n - pos, member);
            break;
        }
    }
    free(crc);
    return st;
}

static mcnn_status too_large(const char *path, size_t max)
{
    char lim[32];
    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: larger than %s", path, mcnn_size_text(lim, max));
}

/* The whole file, refused without reading it all when it holds more than max bytes. */
static mcnn_status read_at_most(unsigned char **out, size_t *out_size, const char *path,
                                size_t max)
{
    *out = NULL;
    *out_size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return mcnn_set_error(MCNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* The size is only a first guess, taken from a regular file alone (a directory opens, and
     * seeking one reports an absurd size): the loop below reads until end of file. */
    struct stat sb;
    const int known = fstat(fileno(f), &sb) == 0;
    if (known && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return mcnn_set_error(MCNN_ERR_IO, "%s: is a directory", path);
    }
    if (known && S_ISREG(sb.st_mode) && (unsigned long long)sb.st_size > max) {
        fclose(f);
        return too_large(path, max);
    }
    size_t cap = 1 << 16, len = 0;
    if (known && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
        (unsigned long long)sb.st_size < SIZE_MAX / 2)
        cap = (size_t)sb.st_size + 1;
    unsigned char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, cap);
    }
    for (;;) {
        if (len == cap) {
            if (cap > SIZE_MAX / 2 - 1) break;
            unsigned char *p = realloc(buf, cap * 2 + 1);
            if (!p) {
                free(buf);
                fclose(f);
                return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, cap * 2);
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
        if (len > max) { /* a pipe, or a file that grew */
            free(buf);
            fclose(f);
            return too_large(path, max);
        }
    }
    const int bad = ferror(f), err = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return mcnn_set_error(MCNN_ERR_IO, "%s: read error: %s", path, strerror(err));
    }
    buf[len] = 0;
    *out = buf;
    *out_size = len;
    return MCNN_OK;
}

mcnn_status mcnn_read_file(unsigned char **out, size_t *out_size, const char *path)
{
    return read_at_most(out, out_size, path, SIZE_MAX);
}

mcnn_status mcnn_read_file_maybe_gzip_max(unsigned char **out, size_t *out_size,
                                          const char *path, size_t max_bytes)
{
    *out = NULL;
    *out_size = 0;
    if (!path) return mcnn_set_error(MCNN_ERR_ARG, "mcnn_read_file_maybe_gzip: NULL path");
    unsigned char *raw;
    size_t n;
    MCNN_TRY(read_at_most(&raw, &n, path, max_bytes));
    if (n < 2 || raw[0] != 0x1f || raw[1] != 0x8b) {
        *out = raw;
        *out_size = n;
        return MCNN_OK;
    }
    mcnn_bytes o = {.max = max_bytes < MCNN_INFLATE_DEFAULT_MAX ? max_bytes : MCNN_INFLATE_DEFAULT_MAX};
    /* the last member's ISIZE is usually the whole size (exact for one member under 4 GB),
     * but it is read before anything is checked: trusted only up to 16 times the file (more
     * than text or images compress), so a truncated or hostile file cannot make us reserve
     * deflate's maximum ratio (~1032:1, 1 GB for a 1 MB file) up front; a larger output
     * grows the buffer as it comes */
    size_t guess = n >= 18 ? le32(raw + n - 4) : 0;
    size_t most = n < o.max / 16 ? n * 16 : o.max;
    if (guess > most) guess = most;
    mcnn_status st = mcnn_bytes_reserve(&o, guess ? guess : 1, path);
    if (st == MCNN_OK) st = gunzip(&o, raw, n, path);
    free(raw);
    if (st != MCNN_OK) {
        free(o.data);
        return st;
    }
    o.data[o.len] = 0;
    *out = o.data;
    *out_size = o.len;
    return MCNN_OK;
}

mcnn_status mcnn_read_file_maybe_gzip(unsigned char **out, size_t *out_size, const char *path)
{
    return mcnn_read_file_maybe_gzip_max(out, out_size, path, SIZE_MAX);
}
