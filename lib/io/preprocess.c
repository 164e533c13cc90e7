/* From a decoded image to the float tensor a model eats, as torchvision does it on PIL images:
 *   Resize(int)  the shorter side to `resize` (resize.c: PIL's resampling, bit-exact)
 *   CenterCrop   offsets rounded half to even (Python's round), zero padding when too small
 *   convert      PIL's convert("RGB") / convert("L"), after the crop as in CLIP's _transform
 *   ToTensor     x / 255 in float32
 *   Normalize    (x - mean) / std in float32, one rounding per operation, as torch does
 * and the training variant: RandomResizedCrop (torchvision's sampling with our RNG) and
 * RandomHorizontalFlip.  The presets carry the constants of OpenAI CLIP and torchvision. */
#include "internal.h"
#include "mcnn/preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static mcnn_status check_image(const mcnn_image *img, const char *what)
{
    if (!img) return mcnn_set_error(MCNN_ERR_ARG, "%s: NULL image", what);
    if (!img->pixels || img->width <= 0 || img->height <= 0)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: empty image (%dx%d)", what, img->width,
                              img->height);
    if (img->channels != 1 && img->channels != 3)
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: %d channels (1 or 3 supported)", what,
                              img->channels);
    if ((int64_t)img->width * img->height > MCNN_IMAGE_MAX_PIXELS)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: image %dx%d exceeds %lld pixels", what,
                              img->width, img->height, (long long)MCNN_IMAGE_MAX_PIXELS);
    return MCNN_OK;
}

static mcnn_status check_side(int n, const char *what, const char *name)
{
    if (n <= 0 || n > MCNN_PREPROCESS_MAX_SIDE)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: %s %d outside 1..%d", what, name, n,
                              MCNN_PREPROCESS_MAX_SIDE);
    return MCNN_OK;
}

static mcnn_status new_image(mcnn_image *dst, int w, int h, int c, const char *what)
{
    dst->pixels = malloc((size_t)w * h * c);
    if (!dst->pixels) return mcnn_set_error(MCNN_ERR_NOMEM, "%s: no memory for %dx%d", what, w, h);
    dst->width = w, dst->height = h, dst->channels = c;
    return MCNN_OK;
}

/* ---- geometry -------------------------------------------------------------------------------- */

void mcnn_resize_shorter_size(int *out_width, int *out_height, int width, int height, int size)
{
    /* torchvision 0.14 _compute_resized_output_size: int(size * long / short), a true division
     * in double then truncation; size * long is exact in double for any valid side. */
    int shorter = width <= height ? width : height, longer = width <= height ? height : width;
    int new_long = (int)((double)((int64_t)size * longer) / shorter);
    *out_width = width <= height ? size : new_long;
    *out_height = width <= height ? new_long : size;
}

mcnn_status mcnn_image_resize_shorter(mcnn_image *dst, const mcnn_image *src, int size,
                                      mcnn_resample filter)
{
    if (dst && dst != src) memset(dst, 0, sizeof *dst);
    MCNN_TRY(check_image(src, "resize"));
    MCNN_TRY(check_side(size, "resize", "shorter side"));
    int w, h;
    mcnn_resize_shorter_size(&w, &h, src->width, src->height, size);
    return mcnn_image_resize(dst, src, w, h, filter); /* same size: a copy, as torchvision */
}

mcnn_status mcnn_image_crop(mcnn_image *dst, const mcnn_image *src, int left, int top, int width,
                            int height)
{
    if (!dst) return mcnn_set_error(MCNN_ERR_ARG, "crop: NULL destination");
    if (dst == src) return mcnn_set_error(MCNN_ERR_ARG, "crop: dst and src are the same image");
    memset(dst, 0, sizeof *dst);
    MCNN_TRY(check_image(src, "crop"));
    MCNN_TRY(check_side(width, "crop", "width"));
    MCNN_TRY(check_side(height, "crop", "height"));
    const int C = src->channels;
    MCNN_TRY(new_image(dst, width, height, C, "crop"));
    memset(dst->pixels, 0, (size_t)width * height * C); /* outside the source: 0, as PIL */
    /* the part of the box inside the source, in box coordinates: [x0, x1) x [y0, y1) */
    int64_t x0 = left < 0 ? -(int64_t)left : 0, y0 = top < 0 ? -(int64_t)top : 0;
    int64_t x1 = (int64_t)src->width - left, y1 = (int64_t)src->height - top;
    if (x1 > width) x1 = width;
    if (y1 > height) y1 = height;
    for (int64_t y = y0; y < y1; y++)
        if (x1 > x0)
            memcpy(dst->pixels + ((size_t)y * width + (size_t)x0) * C,
                   src->pixels + ((size_t)(y + top) * src->width + (size_t)(x0 + left)) * C,
                   (size_t)(x1 - x0) * C);
    return MCNN_OK;
}

/* Python's round(d / 2.0) for an integer d >= 0: halves go to the even neighbour. */
static int half_round_even(int d)
{
    int h = d / 2;
    return (d % 2) ? h + (h & 1) : h;
}

/* torchvision center_crop's box on one side of n pixels for a crop of k. */
static int center_offset(int n, int k)
{
    if (k > n) return -((k - n) / 2); /* padded by (k - n) // 2 on the left/top, then offset 0 */
    return half_round_even(n - k);
}

mcnn_status mcnn_image_center_crop(mcnn_image *dst, const mcnn_image *src, int width, int height)
{
    if (dst && dst != src) memset(dst, 0, sizeof *dst);
    MCNN_TRY(check_image(src, "center crop"));
    return mcnn_image_crop(dst, src, center_offset(src->width, width),
                           center_offset(src->height, height), width, height);
}

mcnn_status mcnn_image_hflip(mcnn_image *dst, const mcnn_image *src)
{
    if (!dst) return mcnn_set_error(MCNN_ERR_ARG, "hflip: NULL destination");
    if (dst == src) return mcnn_set_error(MCNN_ERR_ARG, "hflip: dst and src are the same image");
    memset(dst, 0, sizeof *dst);
    MCNN_TRY(check_image(src, "hflip"));
    const int W = src->width, C = src->channels;
    MCNN_TRY(new_image(dst, W, src->height, C, "hflip"));
    for (int y = 0; y < src->height; y++)
        for (int x = 0; x < W; x++)
            memcpy(dst->pixels + ((size_t)y * W + x) * C,
                   src->pixels + ((size_t)y * W + (W - 1 - x)) * C, (size_t)C);
    return MCNN_OK;
}

/* ---- colour ------------------------------------------------------------------------------------ */

/* PIL's RGB -> L: 0.299 R + 0.587 G + 0.114 B with the weights in 16-bit fixed point (they sum
 * to 65536) and rounding by + 0x8000.  Checked against PIL 9.4 on all 2^24 colours; the /1000
 * form with rounding differs on 9040 of them, truncating on half of them. */
static inline unsigned char luma(const unsigned char *p)
{
    return (unsigned char)(((uint32_t)p[0] * 19595 + (uint32_t)p[1] * 38470 +
                            (uint32_t)p[2] * 7471 + 0x8000) >> 16);
}

/* Channel c of pixel p (src_c channels) as an image of dst_c channels. */
static inline unsigned char convert_px(const unsigned char *p, int src_c, int dst_c, int c)
{
    if (src_c == dst_c) return p[c];
    return src_c == 1 ? p[0] : luma(p);
}

mcnn_status mcnn_image_convert(mcnn_image *dst, const mcnn_image *src, int channels)
{
    if (!dst) return mcnn_set_error(MCNN_ERR_ARG, "convert: NULL destination");
    if (dst == src) return mcnn_set_error(MCNN_ERR_ARG, "convert: dst and src are the same image");
    memset(dst, 0, sizeof *dst);
    MCNN_TRY(check_image(src, "convert"));
    if (channels != 1 && channels != 3)
        return mcnn_set_error(MCNN_ERR_ARG, "convert: %d channels asked (1 or 3)", channels);
    MCNN_TRY(new_image(dst, src->width, src->height, channels, "convert"));
    const size_t n = (size_t)src->width * src->height;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < channels; c++)
            dst->pixels[i * channels + c] =
                convert_px(src->pixels + i * src->channels, src->channels, channels, c);
    return MCNN_OK;
}

/* ---- presets ----------------------------------------------------------------------------------- */

/* The constants go through double, as torch.as_tensor(list of Python floats, float32) does:
 * a float literal would round the decimal once, directly, which can differ in the last bit. */
mcnn_preprocess_config mcnn_preprocess_clip(int n_px)
{
    mcnn_preprocess_config c = {.resize = n_px, .crop = n_px, .filter = MCNN_RESAMPLE_BICUBIC,
                                .channels = 3,
                                .mean = {(float)0.48145466, (float)0.4578275, (float)0.40821073},
                                .std = {(float)0.26862954, (float)0.26130258, (float)0.27577711}};
    return c;
}

mcnn_preprocess_config mcnn_preprocess_imagenet(void)
{
    mcnn_preprocess_config c = {.resize = 256, .crop = 224, .filter = MCNN_RESAMPLE_BILINEAR,
                                .channels = 3,
                                .mean = {(float)0.485, (float)0.456, (float)0.406},
                                .std = {(float)0.229, (float)0.224, (float)0.225}};
    return c;
}

mcnn_preprocess_config mcnn_preprocess_gray(int size, float mean, float std)
{
    mcnn_preprocess_config c = {.resize = size, .crop = size, .filter = MCNN_RESAMPLE_BILINEAR,
                                .channels = 1, .mean = {mean, mean, mean},
                                .std = {std, std, std}};
    return c;
}

/* ---- the pipeline ------------------------------------------------------------------------------ */

static mcnn_status check_config(const mcnn_preprocess_config *cfg, const char *what)
{
    if (!cfg) return mcnn_set_error(MCNN_ERR_ARG, "%s: NULL config", what);
    if (cfg->resize < 0 || cfg->resize > MCNN_PREPROCESS_MAX_SIDE)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: resize %d outside 0..%d", what, cfg->resize,
                              MCNN_PREPROCESS_MAX_SIDE);
    if (cfg->crop < 0 || cfg->crop > MCNN_PREPROCESS_MAX_SIDE)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: crop %d outside 0..%d", what, cfg->crop,
                              MCNN_PREPROCESS_MAX_SIDE);
    if (cfg->channels != 1 && cfg->channels != 3)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: %d output channels (1 or 3)", what,
                              cfg->channels);
    if ((int)cfg->filter < MCNN_RESAMPLE_NEAREST || (int)cfg->filter > MCNN_RESAMPLE_LANCZOS)
        return mcnn_set_error(MCNN_ERR_ARG, "%s: unknown filter %d", what, (int)cfg->filter);
    for (int c = 0; c < cfg->channels; c++)
        if (!(cfg->std[c] != 0.0f) || !isfinite(cfg->std[c]) || !isfinite(cfg->mean[c]))
            return mcnn_set_error(MCNN_ERR_ARG, "%s: channel %d has mean %g, std %g", what, c,
                                  (double)cfg->mean[c], (double)cfg->std[c]);
    return MCNN_OK;
}

mcnn_status mcnn_preprocess_shape(int *c, int *h, int *w, int width, int height,
                                  const mcnn_preprocess_config *cfg)
{
    MCNN_TRY(check_config(cfg, "preprocess"));
    if (width <= 0 || height <= 0)
        return mcnn_set_error(MCNN_ERR_ARG, "preprocess: empty image (%dx%d)", width, height);
    int W = width, H = height;
    if (cfg->resize > 0) mcnn_resize_shorter_size(&W, &H, width, height, cfg->resize);
    if (cfg->crop > 0) W = H = cfg->crop;
    if (W > MCNN_PREPROCESS_MAX_SIDE || H > MCNN_PREPROCESS_MAX_SIDE)
        return mcnn_set_error(MCNN_ERR_ARG, "preprocess: %dx%d resized to %dx%d exceeds %d",
                              width, height, W, H, MCNN_PREPROCESS_MAX_SIDE);
    *c = cfg->channels, *h = H, *w = W;
    return MCNN_OK;
}

/* ToTensor + Normalize (+ a mirror): out (C, H, W) from img (H, W, img->channels). */
static void to_tensor(float *out, const mcnn_image *img, const mcnn_preprocess_config *cfg,
                      int flip)
{
    const int W = img->width, H = img->height, IC = img->channels, C = cfg->channels;
    for (int c = 0; c < C; c++) {
        const float mean = cfg->mean[c], std = cfg->std[c];
        for (int y = 0; y < H; y++) {
            const unsigned char *row = img->pixels + (size_t)y * W * IC;
            float *o = out + ((size_t)c * H + y) * W;
            for (int x = 0; x < W; x++) {
                int xs = flip ? W - 1 - x : x;
                float v = (float)convert_px(row + (size_t)xs * IC, IC, C, c) / 255.0f;
                o[x] = (v - mean) / std; /* torch: sub_ then div_, each rounded to float */
            }
        }
    }
}

mcnn_status mcnn_preprocess(float *out, const mcnn_image *img, const mcnn_preprocess_config *cfg)
{
    if (!out) return mcnn_set_error(MCNN_ERR_ARG, "preprocess: NULL output");
    MCNN_TRY(check_image(img, "preprocess"));
    int C, H, W;
    MCNN_TRY(mcnn_preprocess_shape(&C, &H, &W, img->width, img->height, cfg));
    mcnn_image resized = {0}, cropped = {0};
    const mcnn_image *cur = img;
    mcnn_status st = MCNN_OK;
    if (cfg->resize > 0) {
        int rw, rh;
        mcnn_resize_shorter_size(&rw, &rh, img->width, img->height, cfg->resize);
        if (rw != img->width || rh != img->height) {
            if ((st = mcnn_image_resize(&resized, img, rw, rh, cfg->filter)) != MCNN_OK)
                goto done;
            cur = &resized;
        }
    }
    if (cfg->crop > 0 && (cur->width != cfg->crop || cur->height != cfg->crop)) {
        if ((st = mcnn_image_center_crop(&cropped, cur, cfg->crop, cfg->crop)) != MCNN_OK)
            goto done;
        cur = &cropped;
    }
    to_tensor(out, cur, cfg, 0);
done:
    free(resized.pixels);
    free(cropped.pixels);
    return st;
}

/* ---- training augmentation --------------------------------------------------------------------- */

mcnn_augment_config mcnn_augment_default(void)
{
    mcnn_augment_config a = {0.08f, 1.0f, 3.0f / 4.0f, 4.0f / 3.0f, 0.5f};
    return a;
}

static mcnn_status check_augment(const mcnn_augment_config *a)
{
    if (!a) return mcnn_set_error(MCNN_ERR_ARG, "augment: NULL config");
    if (!(a->scale_min > 0.0f && a->scale_min <= a->scale_max && a->scale_max <= 1.0f))
        return mcnn_set_error(MCNN_ERR_ARG, "augment: scale (%g, %g) not within 0 < min <= max <= 1",
                              (double)a->scale_min, (double)a->scale_max);
    if (!(a->ratio_min > 0.0f && a->ratio_min <= a->ratio_max && isfinite(a->ratio_max)))
        return mcnn_set_error(MCNN_ERR_ARG, "augment: ratio (%g, %g) not within 0 < min <= max",
                              (double)a->ratio_min, (double)a->ratio_max);
    if (!(a->flip_p >= 0.0f && a->flip_p <= 1.0f))
        return mcnn_set_error(MCNN_ERR_ARG, "augment: flip probability %g outside [0, 1]",
                              (double)a->flip_p);
    return MCNN_OK;
}

static double uniform(mcnn_rng *rng, double lo, double hi)
{
    return lo + (hi - lo) * (double)mcnn_rng_uniform(rng);
}

mcnn_status mcnn_random_resized_crop_box(int *left, int *top, int *crop_w, int *crop_h, int width,
                                         int height, const mcnn_augment_config *aug,
                                         mcnn_rng *rng)
{
    MCNN_TRY(check_augment(aug));
    if (!rng || !left || !top || !crop_w || !crop_h)
        return mcnn_set_error(MCNN_ERR_ARG, "random resized crop: NULL argument");
    if (width <= 0 || height <= 0)
        return mcnn_set_error(MCNN_ERR_ARG, "random resized crop: empty image (%dx%d)", width,
                              height);
    const double area = (double)width * height;
    const double log_r0 = log((double)aug->ratio_min), log_r1 = log((double)aug->ratio_max);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * uniform(rng, aug->scale_min, aug->scale_max);
        double ratio = exp(uniform(rng, log_r0, log_r1)); /* log-uniform: w/h and h/w alike */
        double wd = rint(sqrt(target * ratio)), hd = rint(sqrt(target / ratio)); /* half even */
        if (wd > 0 && wd <= width && hd > 0 && hd <= height) {
            int w = (int)wd, h = (int)hd;
            *top = (int)mcnn_rng_below(rng, (uint32_t)(height - h + 1));
            *left = (int)mcnn_rng_below(rng, (uint32_t)(width - w + 1));
            *crop_w = w, *crop_h = h;
            return MCNN_OK;
        }
    }
    /* Ten misses (a thin image, or a narrow scale range): the largest centered box whose ratio
     * is inside the range. */
    double in_ratio = (double)width / height;
    int w = width, h = height;
    if (in_ratio < aug->ratio_min)
        h = (int)rint(width / (double)aug->ratio_min);
    else if (in_ratio > aug->ratio_max)
        w = (int)rint(height * (double)aug->ratio_max);
    if (w < 1) w = 1; /* only for ratios so extreme that torchvision would crop nothing */
    if (h < 1) h = 1;
    *top = (height - h) / 2, *left = (width - w) / 2;
    *crop_w = w, *crop_h = h;
    return MCNN_OK;
}

mcnn_status mcnn_preprocess_train(float *out, const mcnn_image *img,
                                  const mcnn_preprocess_config *cfg,
                                  const mcnn_augment_config *aug, mcnn_rng *rng)
{
    if (!out || !rng) return mcnn_set_error(MCNN_ERR_ARG, "preprocess train: NULL argument");
    MCNN_TRY(check_image(img, "preprocess train"));
    MCNN_TRY(check_config(cfg, "preprocess train"));
    const int size = cfg->crop > 0 ? cfg->crop : cfg->resize;
    if (size <= 0)
        return mcnn_set_error(MCNN_ERR_ARG, "preprocess train: config has no output size "
                                            "(crop and resize both 0)");
    int left, top, w, h;
    MCNN_TRY(mcnn_random_resized_crop_box(&left, &top, &w, &h, img->width, img->height, aug, rng));
    /* torchvision's RandomHorizontalFlip draws after the crop: flip when rand < p */
    const int flip = mcnn_rng_uniform(rng) < aug->flip_p;
    mcnn_image box = {0}, resized = {0};
    mcnn_status st = mcnn_image_crop(&box, img, left, top, w, h);
    if (st == MCNN_OK) st = mcnn_image_resize(&resized, &box, size, size, cfg->filter);
    if (st == MCNN_OK) to_tensor(out, &resized, cfg, flip);
    free(box.pixels);
    free(resized.pixels);
    return st;
}
