/* Images in: decoders written here from the specifications (PPM/PGM, PNG, JPEG), and the
 * gzip/deflate reader that PNG needs (also used for the BPE vocabulary and IDX data sets). */
#ifndef MCNN_IMAGE_H
#define MCNN_IMAGE_H

#include "core.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 8-bit pixels, row-major, interleaved (H, W, channels): channels is 1 (gray) or 3 (RGB).
 * The pixels are what PIL's Image.open(f).convert('L') (gray files) or .convert('RGB') gives:
 * alpha is dropped; palettes are expanded to RGB; 16-bit colour keeps the high byte; other
 * PPM maxvals are scaled (round half to even); 16-bit GRAY (PNG, PGM maxval > 255) is
 * clipped to 255 as PIL does (see docs/images.md).  Free with mcnn_image_free. */
typedef struct mcnn_image {
    int width, height, channels;
    unsigned char *pixels;
} mcnn_image;

/* Images larger than this many pixels are refused as absurd (a corrupt or hostile header
 * could otherwise ask for terabytes). */
#define MCNN_IMAGE_MAX_PIXELS ((int64_t)1 << 28)

/* Decode a file, choosing the decoder by its magic bytes (not its name).  On failure img is
 * left empty and the message names the file and the problem. */
MCNN_API mcnn_status mcnn_image_load(mcnn_image *img, const char *path);
/* Decode bytes already in memory; name is used in error messages. */
MCNN_API mcnn_status mcnn_image_decode(mcnn_image *img, const unsigned char *data, size_t size,
                                       const char *name);
MCNN_API mcnn_status mcnn_image_to_rgb(mcnn_image *img); /* gray -> RGB in place (reallocates) */
MCNN_API void mcnn_image_free(mcnn_image *img);

/* The individual decoders (mcnn_image_decode dispatches to them). */
MCNN_API mcnn_status mcnn_ppm_decode(mcnn_image *img, const unsigned char *data, size_t size,
                                     const char *name);
MCNN_API mcnn_status mcnn_png_decode(mcnn_image *img, const unsigned char *data, size_t size,
                                     const char *name);
/* JPEG: baseline and progressive Huffman, 8-bit, gray or YCbCr/RGB, any integral sampling;
 * pixels equal to PIL's (libjpeg-turbo defaults).  The EXIF orientation tag is ignored, as
 * PIL's Image.open ignores it: pixels come out as stored.  Arithmetic coding, lossless,
 * hierarchical, 12-bit and 4-component (CMYK/YCCK) files give MCNN_ERR_UNSUPPORTED. */
MCNN_API mcnn_status mcnn_jpeg_decode(mcnn_image *img, const unsigned char *data, size_t size,
                                      const char *name);
/* Binary PPM (P6) writer, for tests, tools and the frame-stream tests. */
MCNN_API mcnn_status mcnn_ppm_write(const char *path, const mcnn_image *img);

/* ---- deflate and gzip ------------------------------------------------------------------- */
/* Inflate a raw deflate stream (RFC 1951) or a zlib stream (RFC 1950, checks Adler-32).
 * The whole input must be the stream (trailing bytes are an error); output over 4 GiB is
 * refused.  *out is allocated with malloc (NUL-terminated, not counted); free() it. */
MCNN_API mcnn_status mcnn_inflate(unsigned char **out, size_t *out_size, const unsigned char *in,
                                  size_t in_size, const char *name);
MCNN_API mcnn_status mcnn_zlib_decompress(unsigned char **out, size_t *out_size,
                                          const unsigned char *in, size_t in_size,
                                          const char *name);
/* Read a whole file, gunzipping it (RFC 1952, CRC-32 and length checked, multiple members;
 * zero padding after the last member is accepted, other trailing bytes are not) when it starts
 * with the gzip magic, as-is otherwise.  *out is NUL-terminated for convenience (not counted
 * in *out_size); free() it. */
MCNN_API mcnn_status mcnn_read_file_maybe_gzip(unsigned char **out, size_t *out_size,
                                               const char *path);
/* The same, bounded: a file that holds more than max_bytes ("path: larger than 64 MB") or
 * inflates to more ("path: inflates to more than 64 MB") is refused, MCNN_ERR_FORMAT, before
 * that much memory is taken.  For files whose sensible size is known (a vocabulary, a label
 * list): a 1 MB gzip can hold a gigabyte of zeros.  Without a bound (SIZE_MAX), gzip output is
 * still capped at 4 GiB. */
MCNN_API mcnn_status mcnn_read_file_maybe_gzip_max(unsigned char **out, size_t *out_size,
                                                   const char *path, size_t max_bytes);

/* ---- a stream of frames ------------------------------------------------------------------
 * Binary PPM/PGM (P6/P5) frames read one after another from a FILE*, as written by
 *   ffmpeg -i movie.mp4 -f image2pipe -vcodec ppm -
 * Each frame decodes exactly as the same bytes in a file would (mcnn_ppm_decode).  frames
 * counts the frames read so far; errors name the stream and the frame ("stdin: frame 12 is
 * truncated (...)").  ASCII frames (P3/P2) are refused: their size is not known up front. */
typedef struct mcnn_ppm_stream {
    FILE *f;
    const char *name; /* for messages: "stdin", "movie.mp4 (ffmpeg)" */
    int64_t frames;   /* frames read so far: the index of the next one */
} mcnn_ppm_stream;

MCNN_API void mcnn_ppm_stream_init(mcnn_ppm_stream *s, FILE *f, const char *name);
/* The next frame into img (allocated; free with mcnn_image_free) with *got = 1; or *got = 0 at
 * a clean end of the stream (end of file before any byte of a new frame; whitespace between
 * frames is skipped).  An end inside a frame, a bad magic or header, or a read error is an
 * error (img left empty). */
MCNN_API mcnn_status mcnn_ppm_stream_next(mcnn_ppm_stream *s, mcnn_image *img, int *got);

#ifdef __cplusplus
}
#endif
#endif
