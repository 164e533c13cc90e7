/* Image preprocessing with exact parity to PIL and torchvision: resize (PIL's antialiased
 * resampling, bit for bit on 8-bit images), center crop, colour conversion, and the float
 * tensor a model eats (ToTensor + Normalize).  Presets give OpenAI CLIP's clip._transform and
 * torchvision's ImageNet eval transform (ResNet-50 / ViT-B/16 IMAGENET1K_V1); a training entry
 * point adds RandomResizedCrop + RandomHorizontalFlip.  docs/preprocess.md explains the maths.
 *
 * Images are mcnn_image (8-bit HWC, 1 or 3 channels, pixels from malloc: free(img.pixels) or
 * mcnn_image_free).  Functions writing an mcnn_image *dst allocate dst->pixels; dst is left
 * empty on failure and must not alias src. */
#ifndef MCNN_PREPROCESS_H
#define MCNN_PREPROCESS_H

#include "core.h"
#include "image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* PIL's resampling filters (Image.Resampling), with their supports in input pixels before
 * downscale widening: nearest (no filter: the pixel under each output center), box 0.5,
 * bilinear (triangle) 1, hamming 1, bicubic (Keys, a = -0.5) 2, lanczos (3 lobes) 3. */
typedef enum mcnn_resample {
    MCNN_RESAMPLE_NEAREST = 0,
    MCNN_RESAMPLE_BOX,
    MCNN_RESAMPLE_BILINEAR,
    MCNN_RESAMPLE_HAMMING,
    MCNN_RESAMPLE_BICUBIC,
    MCNN_RESAMPLE_LANCZOS
} mcnn_resample;

/* Largest width or height any function here produces (a corrupt or hostile size otherwise
 * asks for gigabytes). */
#define MCNN_PREPROCESS_MAX_SIDE 16384

/* PIL's Image.resize((width, height), filter) on the whole image: separable, horizontal pass
 * then vertical, antialiased when shrinking, 22-bit fixed-point weights, each pass rounded and
 * clipped to 8 bits.  Same-size resizes copy. */
MCNN_API mcnn_status mcnn_image_resize(mcnn_image *dst, const mcnn_image *src, int width,
                                       int height, mcnn_resample filter);

/* torchvision.transforms.Resize(size) with an int size (max_size None): the shorter side
 * becomes size, the longer int(size * long / short); the image is returned as is (copied) when
 * it already has that size. */
MCNN_API void mcnn_resize_shorter_size(int *out_width, int *out_height, int width, int height,
                                       int size);
MCNN_API mcnn_status mcnn_image_resize_shorter(mcnn_image *dst, const mcnn_image *src, int size,
                                               mcnn_resample filter);

/* PIL's img.crop((left, top, left + width, top + height)): pixels outside src are 0. */
MCNN_API mcnn_status mcnn_image_crop(mcnn_image *dst, const mcnn_image *src, int left, int top,
                                     int width, int height);
/* torchvision.transforms.CenterCrop((height, width)): offsets round((H - h) / 2) with Python's
 * round (half to even); a crop larger than the image pads it with 0 first, torchvision's way
 * ((h - H) // 2 above, the rest below). */
MCNN_API mcnn_status mcnn_image_center_crop(mcnn_image *dst, const mcnn_image *src, int width,
                                            int height);
/* Mirror left-right (PIL's FLIP_LEFT_RIGHT, torchvision's hflip). */
MCNN_API mcnn_status mcnn_image_hflip(mcnn_image *dst, const mcnn_image *src);

/* PIL's convert("RGB") (gray copied to R, G and B) or convert("L") (ITU-R 601-2 luma in PIL's
 * 16-bit fixed point: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16).  Same channels: a copy. */
MCNN_API mcnn_status mcnn_image_convert(mcnn_image *dst, const mcnn_image *src, int channels);

/* ---- the whole pipeline into a float tensor ------------------------------------------------ */
/* The one type for preprocessing settings: what the presets below give, what a classifier
 * carries (mcnn_classifier_get_preprocess), what a training transform starts from
 * (mcnn_transform.preprocess in data.h) and what the model-bound calls in model_preprocess.h
 * apply.  A model knows its own: prefer mcnn_classifier_preprocess_image() /
 * mcnn_clip_preprocess_image() to building one by hand (docs/preprocess.md). */
typedef struct mcnn_preprocess_config {
    int resize;           /* shorter side after the resize (torchvision Resize(int)); 0: none */
    int crop;             /* center crop to crop x crop; 0: none.  A model's input size       */
    mcnn_resample filter; /* resize filter                                                     */
    int channels;         /* output channels: 3 (convert("RGB")) or 1 (convert("L"))         */
    float mean[3], std[3];/* Normalize, per output channel                                     */
} mcnn_preprocess_config;

/* OpenAI CLIP's clip._transform(n_px): Resize(n_px, BICUBIC), CenterCrop(n_px), RGB, ToTensor,
 * Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)). */
MCNN_API mcnn_preprocess_config mcnn_preprocess_clip(int n_px);
/* torchvision's ResNet50_Weights.IMAGENET1K_V1 and ViT_B_16_Weights.IMAGENET1K_V1 transforms
 * (ImageClassification(crop_size=224), both): Resize(256, BILINEAR), CenterCrop(224), ToTensor,
 * Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)). */
MCNN_API mcnn_preprocess_config mcnn_preprocess_imagenet(void);
/* Small gray inputs (Fashion-MNIST style): Resize(size, BILINEAR), CenterCrop(size) (a 28x28
 * image with size 28 passes untouched; size 0: no resize, no crop), convert("L"),
 * Normalize((mean,), (std,)). */
MCNN_API mcnn_preprocess_config mcnn_preprocess_gray(int size, float mean, float std);

/* Output shape (C, H, W) of mcnn_preprocess for an image of width x height: C = channels;
 * H = W = crop when crop > 0, else the resized (or original) size. */
MCNN_API mcnn_status mcnn_preprocess_shape(int *c, int *h, int *w, int width, int height,
                                           const mcnn_preprocess_config *cfg);

/* resize -> center crop -> convert -> x / 255 -> (x - mean) / std, all in float32 and in
 * torchvision's order, into out (C, H, W) of the size mcnn_preprocess_shape gives. */
MCNN_API mcnn_status mcnn_preprocess(float *out, const mcnn_image *img,
                                     const mcnn_preprocess_config *cfg);

/* ---- training augmentation ----------------------------------------------------------------- */
/* torchvision RandomResizedCrop(size, scale, ratio) + RandomHorizontalFlip(flip_p). */
typedef struct mcnn_augment_config {
    float scale_min, scale_max; /* fraction of the image area: (0.08, 1)           */
    float ratio_min, ratio_max; /* crop width / height, sampled log-uniform: (3/4, 4/3) */
    float flip_p;               /* probability of a left-right mirror: 0.5         */
} mcnn_augment_config;

MCNN_API mcnn_augment_config mcnn_augment_default(void); /* torchvision's defaults, as above */

/* RandomResizedCrop.get_params with our RNG: up to 10 draws of (area fraction, log ratio),
 * the first whose rounded box fits is placed uniformly; otherwise the fallback center crop
 * (the whole image clamped to the ratio range).  Gives the box (left, top, width, height). */
MCNN_API mcnn_status mcnn_random_resized_crop_box(int *left, int *top, int *crop_w, int *crop_h,
                                                  int width, int height,
                                                  const mcnn_augment_config *aug, mcnn_rng *rng);

/* The training pipeline: random box -> crop -> resize to size x size (cfg->filter) -> flip with
 * probability flip_p -> convert -> ToTensor -> Normalize.  size = cfg->crop, or cfg->resize when
 * crop is 0.  out is (C, size, size). */
MCNN_API mcnn_status mcnn_preprocess_train(float *out, const mcnn_image *img,
                                           const mcnn_preprocess_config *cfg,
                                           const mcnn_augment_config *aug, mcnn_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
