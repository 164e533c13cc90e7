/* A zip archive reader, enough for PyTorch's checkpoints (torch.save since 1.6 and TorchScript
 * archives are zip files): the central directory, stored and deflated entries, zip64.  Every
 * offset and size is checked against the file before it is used, and entries may not overlap
 * one another or the directory.  Internal to lib/io. */
#ifndef MCNN_IO_ZIP_H
#define MCNN_IO_ZIP_H

#include "internal.h"

#include <stdio.h>

typedef struct mcnn_zip_entry {
    const char *name;     /* NUL-terminated (a name holding a NUL byte is refused) */
    int method;           /* 0 stored, 8 deflated */
    uint32_t crc;         /* CRC-32 of the uncompressed bytes */
    uint64_t csize;       /* bytes in the file */
    uint64_t usize;       /* bytes once inflated (== csize when stored) */
    uint64_t header_at;   /* the local header */
    uint64_t data_at;     /* the first byte of the entry's data */
} mcnn_zip_entry;

typedef struct mcnn_zip {
    int n;
    mcnn_zip_entry *entries;        /* in central-directory order */
    const mcnn_zip_entry **by_name; /* sorted, for mcnn_zip_find */
    char *names;                    /* every name, one block */
} mcnn_zip;

/* Read the directory of the zip file f (size bytes; path names it in errors).  f stays the
 * caller's.  On failure z holds nothing to free. */
mcnn_status mcnn_zip_open(mcnn_zip *z, FILE *f, uint64_t size, const char *path);
void mcnn_zip_close(mcnn_zip *z);

/* The entry of that name, or NULL. */
const mcnn_zip_entry *mcnn_zip_find(const mcnn_zip *z, const char *name);

/* A whole entry, inflated when deflated, its CRC-32 checked, into a malloc'ed buffer with one
 * spare NUL byte after the end.  Refused when its size is above max. */
mcnn_status mcnn_zip_read(unsigned char **out, size_t *out_size, FILE *f, const mcnn_zip_entry *e,
                          size_t max, const char *path);

/* Seek f to byte at (0 <= at, checked against fseek's long). */
mcnn_status mcnn_file_seek(FILE *f, uint64_t at, const char *path);

#endif
