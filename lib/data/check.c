/* Checking a data set before training on it, and recognising it again when a run resumes.
 *   mcnn_dataset_check:        class names (non-empty UTF-8, no control characters, no two
 *                              alike) and, for files, every image's header (magic, width,
 *                              height, pixel count): a broken list fails before the first step,
 *                              not after an epoch.  Headers only: a few hundred bytes a file.
 *   mcnn_dataset_fingerprint:  a 64-bit FNV-1a hash of what a run trains on: the count, the
 *                              class names, every label and target, and the pixels (in memory)
 *                              or each file's path and size (on disk). */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"
#include "io/json.h"
#include "mcnn/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- class names -------------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(**(char **const *)a, **(char **const *)b);
}

static mcnn_status check_names(const mcnn_dataset *ds)
{
    const int K = ds->num_classes;
    if (K <= 0 || !ds->class_names)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: no classes", ds->source);
    for (int k = 0; k < K; k++) {
        const char *name = ds->class_names[k];
        const size_t n = strlen(name);
        if (n == 0)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: class %d has an empty name", ds->source, k);
        if (!mcnn_utf8_valid(name, n))
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: class %d's name is not valid UTF-8",
                                  ds->source, k);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
                return mcnn_set_error(MCNN_ERR_FORMAT, "%s: class %d's name has a control "
                                      "character (byte 0x%02x)", ds->source, k,
                                      (unsigned char)name[i]);
    }
    char ***sorted = malloc((size_t)K * sizeof *sorted);
    if (!sorted) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", ds->source);
    for (int k = 0; k < K; k++) sorted[k] = &ds->class_names[k];
    qsort(sorted, (size_t)K, sizeof *sorted, by_name);
    mcnn_status s = MCNN_OK;
    for (int k = 1; k < K && s == MCNN_OK; k++)
        if (strcmp(*sorted[k - 1], *sorted[k]) == 0) {
            int a = (int)(sorted[k - 1] - ds->class_names), b = (int)(sorted[k] - ds->class_names);
            s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: classes %d and %d are both named '%s' (class "
                               "names must differ)", ds->source, a < b ? a : b, a < b ? b : a,
                               *sorted[k]);
        }
    free(sorted);
    return s;
}

/* ---- image headers ------------------------------------------------------------------------ */

static uint32_t be16(const unsigned char *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be32(const unsigned char *p) { return be16(p) << 16 | be16(p + 2); }

static mcnn_status check_size(const char *path, const char *format, uint32_t w, uint32_t h)
{
    if (w == 0 || h == 0 || (int64_t)w * h > MCNN_IMAGE_MAX_PIXELS)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: %s of %u x %u pixels", path, format, w, h);
    return MCNN_OK;
}

/* The (colour type, bit depth) pairs of the PNG specification, table 11.1. */
static int png_depth_ok(unsigned colour, unsigned depth)
{
    switch (colour) {
    case 0: return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3: return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2: case 4: case 6: return depth == 8 || depth == 16;
    default: return 0;
    }
}

static mcnn_status png_header(const char *path, const unsigned char *b, size_t n)
{
    /* signature (8), then the IHDR chunk: length 13, "IHDR", width, height, depth, colour */
    if (n < 26 || be32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4) != 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNG without an IHDR chunk first", path);
    const unsigned depth = b[24], colour = b[25];
    if (!png_depth_ok(colour, depth))
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PNG colour type %u with bit depth %u",
                              path, colour, depth);
    return check_size(path, "PNG", be32(b + 16), be32(b + 20));
}

/* P2/P3/P5/P6: magic, width, height, maxval as whitespace-separated decimals, '#' comments. */
static mcnn_status ppm_header(const char *path, const unsigned char *b, size_t n)
{
    if (b[1] != '2' && b[1] != '3' && b[1] != '5' && b[1] != '6')
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: P%c bitmaps are not read (PPM/PGM "
                              "P2, P3, P5, P6 are)", path, b[1]);
    uint64_t v[3];
    size_t i = 2;
    for (int f = 0; f < 3; f++) {
        for (;;) { /* whitespace and comments */
            if (i == n) return MCNN_OK; /* a header longer than was read: the decoder decides */
            if (b[i] == '#') {
                while (i < n && b[i] != '\n' && b[i] != '\r') i++;
            } else if (b[i] == ' ' || (b[i] >= '\t' && b[i] <= '\r')) {
                i++;
            } else {
                break;
            }
        }
        if (b[i] < '0' || b[i] > '9')
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PPM/PGM header: expected a number at "
                                  "byte %zu", path, i);
        for (v[f] = 0; i < n && b[i] >= '0' && b[i] <= '9' && v[f] < (1u << 31); i++)
            v[f] = v[f] * 10 + (uint64_t)(b[i] - '0');
    }
    if (v[2] == 0 || v[2] > 65535)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: PPM/PGM maxval %llu (1 to 65535)", path,
                              (unsigned long long)v[2]);
    return check_size(path, "PPM/PGM", v[0] > UINT32_MAX ? UINT32_MAX : (uint32_t)v[0],
                      v[1] > UINT32_MAX ? UINT32_MAX : (uint32_t)v[1]);
}

/* JPEG: walk the marker segments (seeking over their bodies) to the frame header. */
static mcnn_status jpeg_header(const char *path, FILE *f)
{
    unsigned char m[2], seg[8];
    if (fseek(f, 2, SEEK_SET) != 0) return mcnn_set_error(MCNN_ERR_IO, "%s: cannot seek", path);
    for (int segments = 0; segments < 100000; segments++) {
        if (fread(m, 1, 2, f) != 2) goto truncated;
        if (m[0] != 0xFF) break;
        while (m[1] == 0xFF) /* fill bytes */
            if (fread(m + 1, 1, 1, f) != 1) goto truncated;
        const int marker = m[1];
        if (marker == 0xD9 || marker == 0xDA)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG without a frame header (SOF) "
                                  "before its %s", path, marker == 0xDA ? "scan" : "end");
        if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) continue; /* no length */
        if (fread(seg, 1, 2, f) != 2) goto truncated;
        const uint32_t len = be16(seg);
        if (len < 2) break;
        const int sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
                        marker != 0xCC;
        if (sof) {
            if (len < 8 || fread(seg, 1, 6, f) != 6) goto truncated;
            return check_size(path, "JPEG", be16(seg + 3), be16(seg + 1));
        }
        if (fseek(f, (long)len - 2, SEEK_CUR) != 0) goto truncated;
    }
    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG with a damaged marker structure", path);
truncated:
    return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG is truncated before its frame header", path);
}

/* The checks the decoder would make first, from the file's first bytes. */
static mcnn_status check_header(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return mcnn_set_error(MCNN_ERR_NOT_FOUND, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return mcnn_set_error(MCNN_ERR_IO, "%s: is a directory, not an image", path);
    FILE *f = fopen(path, "rb");
    if (!f) return mcnn_set_error(MCNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char b[4096];
    const size_t n = fread(b, 1, sizeof b, f);
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    mcnn_status s;
    if (ferror(f)) s = mcnn_set_error(MCNN_ERR_IO, "%s: read error", path);
    else if (n == 0) s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: empty file", path);
    else if (n >= 8 && memcmp(b, png_sig, 8) == 0) s = png_header(path, b, n);
    else if (n >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6') s = ppm_header(path, b, n);
    else if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) s = jpeg_header(path, f);
    else
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: not an image (starts with %02x %02x %02x %02x; "
                           "PNG, PPM/PGM and JPEG are read)", path, b[0], n > 1 ? b[1] : 0,
                           n > 2 ? b[2] : 0, n > 3 ? b[3] : 0);
    fclose(f);
    return s;
}

mcnn_status mcnn_dataset_check(mcnn_dataset *ds)
{
    MCNN_TRY(check_names(ds));
    if (ds->count <= 0) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: no samples", ds->source);
    if (!ds->paths) return MCNN_OK;
    int good = 0;
    for (int i = 0; i < ds->count; i++) {
        mcnn_status s = check_header(ds->paths[i]);
        if (s != MCNN_OK && ds->lines && ds->lines[i] > 0)
            s = mcnn_wrap_error(s, "%s:%d: ", ds->source, ds->lines[i]);
        if (s == MCNN_OK) {
            good++;
        } else if (ds->skip_corrupt && ds->bad) { /* as a batch would: warn once, then skip */
            if (!ds->bad[i] && ds->warn) ds->warn(ds->warn_ctx, mcnn_last_error());
            ds->bad[i] = 1;
        } else {
            return s;
        }
    }
    if (!good)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: none of the %d images is readable",
                              ds->source, ds->count);
    return MCNN_OK;
}

/* ---- fingerprint -------------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Eight bytes a round for the pixels (tens of megabytes for Fashion-MNIST): FNV's mixing
 * applied to 64-bit words, then the tail byte by byte. */
static uint64_t fnv_words(uint64_t h, const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    return fnv(h, p + i, n - i);
}

mcnn_status mcnn_dataset_fingerprint(const mcnn_dataset *ds, uint64_t *out)
{
    const int N = ds->count, K = ds->num_classes;
    uint64_t h = 0xcbf29ce484222325ull;
    const int32_t dims[5] = {N, K, ds->channels, ds->height, ds->width};
    h = fnv(h, dims, sizeof dims);
    for (int k = 0; k < K; k++) h = fnv(h, ds->class_names[k], strlen(ds->class_names[k]) + 1);
    if (ds->labels) h = fnv_words(h, (const unsigned char *)ds->labels, (size_t)N * sizeof(int32_t));
    if (ds->targets) h = fnv_words(h, ds->targets, (size_t)N * K);
    if (ds->pixels)
        h = fnv_words(h, ds->pixels, (size_t)N * ds->channels * ds->height * ds->width);
    for (int i = 0; ds->paths && i < N; i++) {
        struct stat sb;
        if (stat(ds->paths[i], &sb) != 0)
            return mcnn_set_error(MCNN_ERR_NOT_FOUND, "%s: %s", ds->paths[i], strerror(errno));
        const int64_t size = (int64_t)sb.st_size;
        h = fnv(h, ds->paths[i], strlen(ds->paths[i]) + 1);
        h = fnv(h, &size, sizeof size);
    }
    *out = h;
    return MCNN_OK;
}
