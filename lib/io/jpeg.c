/* The JPEG decoder's driver: baseline and progressive Huffman JPEG (ITU-T T.81, JFIF) to 8-bit
 * gray or RGB, with the pixels libjpeg-turbo's defaults give (islow IDCT, fancy upsampling,
 * its fixed-point YCbCr -> RGB), i.e. what PIL's Image.open(...).convert("RGB") sees.
 *
 *   SOI, then segments (tables, frame header), then per scan: SOS + entropy-coded data,
 *   then EOI.  Scans fill the coefficients; after EOI every component is dequantised and
 *   inverse-transformed once (jpeg_idct.c) and the planes become pixels (jpeg_color.c).
 *
 * Not supported (MCNN_ERR_UNSUPPORTED, with a message saying which): arithmetic coding,
 * lossless and hierarchical JPEG, 12- and 16-bit samples, 4 components (CMYK/YCCK), DNL.
 * The EXIF orientation tag is ignored, as PIL's Image.open ignores it: the pixels come out as
 * stored.  A baseline file that ends after its last scan without EOI is accepted, as libjpeg
 * and PIL accept it; a progressive one is refused as truncated (PIL refuses it too).
 * One libjpeg step is not reproduced: "block smoothing", which estimates low AC coefficients
 * that a progressive script never sent (or never refined) from the neighbouring DC values;
 * no common encoder writes such scripts, and we use the coefficients as sent. */
#include "jpeg_internal.h"

#include <stdlib.h>
#include <string.h>

static mcnn_status decode(jpeg_decoder *d, mcnn_image *img)
{
    if (d->size < 2 || d->data[0] != 0xFF || d->data[1] != 0xD8)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: not a JPEG file (no SOI marker)", d->name);
    d->pos = 2;
    for (;;) {
        int marker;
        MCNN_TRY(mcnn_jpeg_next_marker(d, &marker));
        if (marker < 0) { /* the data ended without EOI */
            int complete = d->frame_seen && !d->progressive;
            for (int i = 0; i < d->ncomp; i++) complete &= d->comp[i].seen;
            if (!complete)
                return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG truncated (no EOI marker after %d scans)",
                                      d->name, d->scans);
            break;
        }
        if (marker == 0xD9) break; /* EOI */
        if (marker == 0xD8)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG has a second SOI marker", d->name);
        if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) continue; /* stray RSTn, TEM */
        MCNN_TRY(mcnn_jpeg_read_segment(d, marker));
        if (marker == 0xDA) MCNN_TRY(mcnn_jpeg_decode_scan(d));
    }
    if (!d->frame_seen)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG has no frame header (SOF)", d->name);
    for (int i = 0; i < d->ncomp; i++)
        if (!d->comp[i].seen)
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: JPEG component %d is in no scan",
                                  d->name, d->comp[i].id);

    for (int i = 0; i < d->ncomp; i++) MCNN_TRY(mcnn_jpeg_idct_component(d, &d->comp[i]));
    int channels = 0;
    MCNN_TRY(mcnn_jpeg_color_output(d, &img->pixels, &channels));
    img->width = d->width, img->height = d->height, img->channels = channels;
    return MCNN_OK;
}

mcnn_status mcnn_jpeg_decode(mcnn_image *img, const unsigned char *data, size_t size,
                             const char *name)
{
    if (!name) name = "<jpeg>";
    if (!img) return mcnn_set_error(MCNN_ERR_ARG, "%s: no image to decode into", name);
    memset(img, 0, sizeof *img);
    if (!data && size) return mcnn_set_error(MCNN_ERR_ARG, "%s: no data", name);
    jpeg_decoder *d = calloc(1, sizeof *d);
    if (!d) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory for the JPEG decoder", name);
    d->name = name, d->data = data, d->size = size;
    mcnn_status st = decode(d, img);
    for (int i = 0; i < JPEG_MAX_COMPS; i++) {
        free(d->comp[i].coef);
        free(d->comp[i].plane);
    }
    free(d);
    if (st != MCNN_OK) {
        free(img->pixels);
        memset(img, 0, sizeof *img);
    }
    return st;
}
