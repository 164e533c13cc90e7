/* Image loading: read a file, pick the decoder by the magic bytes at its start (never by the
 * file name), and the small helpers around mcnn_image. */
#include "io/inflate.h"

#include <stdlib.h>
#include <string.h>

mcnn_status mcnn_image_decode(mcnn_image *img, const unsigned char *data, size_t size, const char *name)
{
    if (!img) return mcnn_set_error(MCNN_ERR_ARG, "mcnn_image_decode: NULL image");
    memset(img, 0, sizeof *img);
    if (!name) name = "<memory>";
    if (!data && size) return mcnn_set_error(MCNN_ERR_ARG, "%s: NULL data", name);
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 8 && memcmp(data, png_sig, 8) == 0) return mcnn_png_decode(img, data, size, name);
    if (size >= 2 && data[0] == 'P' && data[1] >= '1' && data[1] <= '6') return mcnn_ppm_decode(img, data, size, name);
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return mcnn_jpeg_decode(img, data, size, name);
    if (size == 0) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: empty file", name);
    return mcnn_set_error(MCNN_ERR_FORMAT,
                          "%s: unrecognised image format (starts with %02x %02x %02x %02x; PNG, PPM/PGM and JPEG are read)",
                          name, data[0], size > 1 ? data[1] : 0, size > 2 ? data[2] : 0, size > 3 ? data[3] : 0);
}

mcnn_status mcnn_image_load(mcnn_image *img, const char *path)
{
    if (!img) return mcnn_set_error(MCNN_ERR_ARG, "mcnn_image_load: NULL image");
    memset(img, 0, sizeof *img);
    if (!path) return mcnn_set_error(MCNN_ERR_ARG, "mcnn_image_load: NULL path");
    unsigned char *data;
    size_t size;
    MCNN_TRY(mcnn_read_file(&data, &size, path));
    mcnn_status st = mcnn_image_decode(img, data, size, path);
    free(data);
    return st;
}

mcnn_status mcnn_image_to_rgb(mcnn_image *img)
{
    if (!img || !img->pixels || img->width <= 0 || img->height <= 0)
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_image_to_rgb: empty image");
    if (img->channels == 3) return MCNN_OK;
    if (img->channels != 1)
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_image_to_rgb: %d channels (1 or 3 expected)", img->channels);
    size_t n = (size_t)img->width * (size_t)img->height;
    unsigned char *rgb = malloc(n * 3);
    if (!rgb) return mcnn_set_error(MCNN_ERR_NOMEM, "mcnn_image_to_rgb: out of memory (%zu bytes)", n * 3);
    for (size_t i = 0; i < n; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = img->pixels[i];
    free(img->pixels);
    img->pixels = rgb;
    img->channels = 3;
    return MCNN_OK;
}

void mcnn_image_free(mcnn_image *img)
{
    if (!img) return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}
