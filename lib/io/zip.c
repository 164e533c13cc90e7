/* Reading a zip archive's directory and entries (PKWARE's APPNOTE.TXT, the parts PyTorch uses).
 *
 *   [local header + data] ... [central directory] [zip64 end record + locator] [end record]
 *
 * The end record, found by scanning back from the end of the file, says where the central
 * directory is; the directory lists every entry with its sizes, CRC-32 and the offset of its
 * local header; the local header (whose name and extra field may differ in length from the
 * directory's copy: PyTorch pads it to align tensor data to 64 bytes) is followed by the data.
 * Sizes and offsets too large for 32 bits are 0xFFFFFFFF, the real values in a zip64 extra
 * field; the entry count and the directory's place likewise in the zip64 end record.
 *
 * Nothing is trusted: the directory and every entry must lie inside the file, entries may not
 * overlap each other or the directory (the trick behind "overlapping" zip bombs), a stored
 * entry's two sizes must agree, a deflated one may not claim more than deflate's maximum
 * ratio, and inflating stops at the declared size. */
#include "io/zip.h"
#include "io/inflate.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END 0x06054b50u
#define SIG_END64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define END_BYTES 22
#define CENTRAL_BYTES 46
#define LOCAL_BYTES 30
#define MAX_COMMENT 65535
/* deflate at best codes a 258-byte match in 2 bits: it cannot expand more than 1032:1 */
#define MAX_DEFLATE_RATIO 1032u
#define MAX_ENTRIES 1000000

static uint32_t u16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t u32(const unsigned char *p) { return u16(p) | u16(p + 2) << 16; }
static uint64_t u64(const unsigned char *p) { return u32(p) | (uint64_t)u32(p + 4) << 32; }

mcnn_status mcnn_file_seek(FILE *f, uint64_t at, const char *path)
{
    if (at > (uint64_t)LONG_MAX)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: offset %llu is beyond what fseek reaches",
                              path, (unsigned long long)at);
    if (fseek(f, (long)at, SEEK_SET) != 0)
        return mcnn_set_error(MCNN_ERR_IO, "%s: cannot seek to byte %llu", path, (unsigned long long)at);
    return MCNN_OK;
}

static mcnn_status read_at(FILE *f, uint64_t at, void *buf, size_t n, const char *path)
{
    MCNN_TRY(mcnn_file_seek(f, at, path));
    if (fread(buf, 1, n, f) != n)
        return mcnn_set_error(MCNN_ERR_IO, "%s: cannot read %zu bytes at byte %llu", path, n,
                              (unsigned long long)at);
    return MCNN_OK;
}

typedef struct dir_place {
    uint64_t count, at, size; /* entries, offset and size of the central directory */
    uint64_t end;             /* where the directory must end (the first end record) */
} dir_place;

/* The zip64 end record, through the locator 20 bytes before the classic end record. */
static mcnn_status read_end64(dir_place *d, FILE *f, uint64_t end_at, const char *path)
{
    unsigned char loc[20], rec[56];
    if (end_at < 20) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip64 fields but no zip64 locator", path);
    MCNN_TRY(read_at(f, end_at - 20, loc, 20, path));
    if (u32(loc) != SIG_LOCATOR64)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip64 fields but no zip64 locator", path);
    uint64_t at = u64(loc + 8);
    if (u32(loc + 4) != 0 || u32(loc + 16) > 1)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: a multi-disk zip archive", path);
    if (at > end_at - 20 || end_at - 20 - at < 56)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: the zip64 end record (at %llu) is not before its locator",
                              path, (unsigned long long)at);
    MCNN_TRY(read_at(f, at, rec, 56, path));
    if (u32(rec) != SIG_END64)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: no zip64 end record at byte %llu", path,
                              (unsigned long long)at);
    if (u32(rec + 16) != 0 || u32(rec + 20) != 0 || u64(rec + 24) != u64(rec + 32))
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: a multi-disk zip archive", path);
    d->count = u64(rec + 32);
    d->size = u64(rec + 40);
    d->at = u64(rec + 48);
    d->end = at;
    return MCNN_OK;
}

/* Find the end record: the last signature whose comment reaches exactly the end of the file. */
static mcnn_status find_directory(dir_place *d, FILE *f, uint64_t size, const char *path)
{
    if (size < END_BYTES) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: %llu bytes, too short for a zip archive",
                                                path, (unsigned long long)size);
    size_t tail = size < END_BYTES + MAX_COMMENT ? (size_t)size : END_BYTES + MAX_COMMENT;
    unsigned char *buf = malloc(tail);
    if (!buf) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    mcnn_status s = read_at(f, size - tail, buf, tail, path);
    size_t i = tail - END_BYTES + 1;
    int found = 0;
    while (s == MCNN_OK && i-- > 0)
        if (u32(buf + i) == SIG_END && i + END_BYTES + u16(buf + i + 20) == tail) {
            found = 1;
            break;
        }
    if (s == MCNN_OK && !found)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: no zip end-of-directory record (truncated?)", path);
    if (s != MCNN_OK) {
        free(buf);
        return s;
    }
    const unsigned char *e = buf + i;
    uint64_t end_at = size - tail + i;
    uint32_t disk = u16(e + 4), cd_disk = u16(e + 6), here = u16(e + 8), total = u16(e + 10);
    d->count = total, d->size = u32(e + 12), d->at = u32(e + 16), d->end = end_at;
    free(buf);
    if (total == 0xFFFF || d->size == 0xFFFFFFFFu || d->at == 0xFFFFFFFFu)
        return read_end64(d, f, end_at, path);
    if (disk != 0 || cd_disk != 0 || here != total)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: a multi-disk zip archive", path);
    return MCNN_OK;
}

/* The zip64 extra field (id 1) holds, in this order, those of usize, csize and the header
 * offset whose 32-bit field is 0xFFFFFFFF. */
static int read_zip64_extra(mcnn_zip_entry *e, const unsigned char *x, size_t n)
{
    uint64_t *want[3] = {e->usize == 0xFFFFFFFFu ? &e->usize : NULL,
                         e->csize == 0xFFFFFFFFu ? &e->csize : NULL,
                         e->header_at == 0xFFFFFFFFu ? &e->header_at : NULL};
    for (size_t k = 0; k + 4 <= n;) {
        uint32_t id = u16(x + k), len = u16(x + k + 2);
        if (len > n - k - 4) return 0;
        if (id == 1) {
            size_t at = k + 4;
            for (int j = 0; j < 3; j++)
                if (want[j]) {
                    if (at + 8 > k + 4 + len) return 0;
                    *want[j] = u64(x + at);
                    at += 8;
                }
            return 1;
        }
        k += 4 + len;
    }
    return !want[0] && !want[1] && !want[2];
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const mcnn_zip_entry *const *)a)->name, (*(const mcnn_zip_entry *const *)b)->name);
}

static int cmp_place(const void *a, const void *b)
{
    const mcnn_zip_entry *x = *(const mcnn_zip_entry *const *)a, *y = *(const mcnn_zip_entry *const *)b;
    return x->header_at < y->header_at ? -1 : x->header_at > y->header_at;
}

/* One directory record at p (avail bytes left); names are copied to *names. */
static mcnn_status parse_central(mcnn_zip_entry *e, const unsigned char *p, size_t avail, size_t *used,
                                 char **names, const char *path, int index)
{
    if (avail < CENTRAL_BYTES || u32(p) != SIG_CENTRAL)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip directory record %d is damaged", path, index);
    uint32_t flags = u16(p + 8), nlen = u16(p + 28), xlen = u16(p + 30), clen = u16(p + 32);
    if ((size_t)CENTRAL_BYTES + nlen + xlen + clen > avail)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip directory record %d runs past the directory",
                              path, index);
    memcpy(*names, p + CENTRAL_BYTES, nlen);
    (*names)[nlen] = 0;
    e->name = *names;
    *names += nlen + 1;
    if (strlen(e->name) != nlen)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip entry %d's name holds a NUL byte", path, index);
    if (flags & 0x41)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: zip entry '%s' is encrypted", path, e->name);
    e->method = (int)u16(p + 10);
    if (e->method != 0 && e->method != 8)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: zip entry '%s' uses compression method %d "
                              "(only stored and deflated are read)", path, e->name, e->method);
    e->crc = u32(p + 16);
    e->csize = u32(p + 20);
    e->usize = u32(p + 24);
    e->header_at = u32(p + 42);
    if (u16(p + 34) != 0 && u16(p + 34) != 0xFFFF)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: a multi-disk zip archive", path);
    if (!read_zip64_extra(e, p + CENTRAL_BYTES + nlen, xlen))
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip entry '%s' has a damaged zip64 field", path, e->name);
    *used = CENTRAL_BYTES + nlen + xlen + clen;
    return MCNN_OK;
}

/* The local header: its name must be the directory's, and its data must end before limit. */
static mcnn_status place_data(mcnn_zip_entry *e, FILE *f, uint64_t limit, const char *path)
{
    unsigned char h[LOCAL_BYTES];
    size_t nlen = strlen(e->name);
    if (e->header_at > limit || limit - e->header_at < LOCAL_BYTES + nlen)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip entry '%s' starts outside the archive (byte %llu)",
                              path, e->name, (unsigned long long)e->header_at);
    MCNN_TRY(read_at(f, e->header_at, h, LOCAL_BYTES, path));
    char *name = malloc(nlen + 1);
    if (!name) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    int same = u32(h) == SIG_LOCAL && u16(h + 26) == nlen &&
               read_at(f, e->header_at + LOCAL_BYTES, name, nlen, path) == MCNN_OK &&
               memcmp(name, e->name, nlen) == 0;
    free(name);
    if (!same)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip entry '%s': no matching local header at byte %llu",
                              path, e->name, (unsigned long long)e->header_at);
    e->data_at = e->header_at + LOCAL_BYTES + nlen + u16(h + 28);
    if (e->data_at > limit || e->csize > limit - e->data_at)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip entry '%s' (%llu bytes at byte %llu) runs past "
                              "the archive's data (which ends at byte %llu): truncated or damaged",
                              path, e->name, (unsigned long long)e->csize, (unsigned long long)e->data_at,
                              (unsigned long long)limit);
    if (e->method == 0 && e->csize != e->usize)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: stored zip entry '%s' has two sizes (%llu and %llu)",
                              path, e->name, (unsigned long long)e->csize, (unsigned long long)e->usize);
    if (e->method == 8 && e->usize / MAX_DEFLATE_RATIO > e->csize)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip entry '%s' claims %llu bytes from %llu: more "
                              "than deflate can expand (a zip bomb?)", path, e->name,
                              (unsigned long long)e->usize, (unsigned long long)e->csize);
    return MCNN_OK;
}

static mcnn_status check_layout(mcnn_zip *z, const char *path)
{
    const mcnn_zip_entry **ord = malloc((size_t)(z->n ? z->n : 1) * sizeof *ord);
    if (!ord) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < z->n; i++) ord[i] = &z->entries[i];
    qsort(ord, (size_t)z->n, sizeof *ord, cmp_place);
    mcnn_status s = MCNN_OK;
    for (int i = 1; i < z->n && s == MCNN_OK; i++)
        if (ord[i]->header_at < ord[i - 1]->data_at + ord[i - 1]->csize)
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip entries '%s' and '%s' overlap", path,
                               ord[i - 1]->name, ord[i]->name);
    for (int i = 0; i < z->n; i++) ord[i] = &z->entries[i];
    qsort(ord, (size_t)z->n, sizeof *ord, cmp_name);
    for (int i = 1; i < z->n && s == MCNN_OK; i++)
        if (strcmp(ord[i]->name, ord[i - 1]->name) == 0)
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip entry '%s' appears twice", path, ord[i]->name);
    z->by_name = ord;
    return s;
}

mcnn_status mcnn_zip_open(mcnn_zip *z, FILE *f, uint64_t size, const char *path)
{
    memset(z, 0, sizeof *z);
    dir_place d = {0, 0, 0, 0};
    MCNN_TRY(find_directory(&d, f, size, path));
    if (d.at > d.end || d.size > d.end - d.at)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: the zip directory (%llu bytes at byte %llu) is not "
                              "inside the archive", path, (unsigned long long)d.size, (unsigned long long)d.at);
    if (d.count > MAX_ENTRIES || d.count > d.size / CENTRAL_BYTES)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: the zip directory claims %llu entries in %llu bytes",
                              path, (unsigned long long)d.count, (unsigned long long)d.size);
    unsigned char *dir = malloc(d.size ? (size_t)d.size : 1);
    z->entries = calloc(d.count ? (size_t)d.count : 1, sizeof *z->entries);
    z->names = malloc((size_t)d.size + 1);
    mcnn_status s = !dir || !z->entries || !z->names
                        ? mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path)
                        : read_at(f, d.at, dir, (size_t)d.size, path);
    char *names = z->names;
    size_t pos = 0;
    for (uint64_t i = 0; i < d.count && s == MCNN_OK; i++) {
        size_t used = 0;
        s = parse_central(&z->entries[i], dir + pos, (size_t)d.size - pos, &used, &names, path, (int)i);
        if (s == MCNN_OK) s = place_data(&z->entries[i], f, d.at, path);
        pos += used;
        z->n++;
    }
    free(dir);
    if (s == MCNN_OK) s = check_layout(z, path);
    if (s != MCNN_OK) mcnn_zip_close(z);
    return s;
}

void mcnn_zip_close(mcnn_zip *z)
{
    free(z->entries);
    free(z->by_name);
    free(z->names);
    memset(z, 0, sizeof *z);
}

const mcnn_zip_entry *mcnn_zip_find(const mcnn_zip *z, const char *name)
{
    int lo = 0, hi = z->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(name, z->by_name[mid]->name);
        if (c == 0) return z->by_name[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

mcnn_status mcnn_zip_read(unsigned char **out, size_t *out_size, FILE *f, const mcnn_zip_entry *e,
                          size_t max, const char *path)
{
    *out = NULL;
    *out_size = 0;
    if (e->usize > max)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip entry '%s' is %llu bytes, over the %zu-byte limit",
                              path, e->name, (unsigned long long)e->usize, max);
    unsigned char *in = malloc((size_t)e->csize + 1);
    if (!in) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory for '%s'", path, e->name);
    mcnn_status s = read_at(f, e->data_at, in, (size_t)e->csize, path);
    mcnn_bytes o = {.max = (size_t)e->usize};
    if (s == MCNN_OK && e->method == 0) {
        o.data = in, o.len = (size_t)e->csize;
        in = NULL;
    } else if (s == MCNN_OK) {
        size_t used;
        if (e->usize) s = mcnn_bytes_reserve(&o, (size_t)e->usize, path);
        else if (!(o.data = malloc(1))) s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
        if (s == MCNN_OK) s = mcnn_inflate_append(&o, in, (size_t)e->csize, &used, e->name);
        if (s == MCNN_OK && o.len != e->usize)
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip entry '%s' inflates to %zu bytes, not the %llu declared",
                               path, e->name, o.len, (unsigned long long)e->usize);
        else if (s == MCNN_ERR_FORMAT)
            s = mcnn_wrap_error(s, "%s: zip entry '%s' (declared %llu bytes): ", path, e->name,
                                (unsigned long long)e->usize);
    }
    free(in);
    if (s == MCNN_OK) {
        mcnn_crc32_table tab;
        mcnn_crc32_init(&tab);
        uint32_t crc = mcnn_crc32(&tab, 0, o.data, o.len);
        if (crc != e->crc)
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: zip entry '%s' is corrupt (CRC-32 %08x, expected %08x)",
                               path, e->name, (unsigned)crc, (unsigned)e->crc);
    }
    if (s != MCNN_OK) {
        free(o.data);
        return s;
    }
    o.data[o.len] = 0; /* stored: the +1 of in; deflated: mcnn_bytes keeps a spare byte */
    *out = o.data;
    *out_size = o.len;
    return MCNN_OK;
}
