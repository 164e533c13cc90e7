/* Batches: samples -> normalised float images (B, C, S, S) and their labels or targets.
 *   in-memory images (IDX):  [shift by (dy, dx) in [-pad, pad] + mirror]  -> [resize to S]
 *                            -> x / 255 -> (x - mean) / std
 *   files:  decode -> eval:  resize shorter side, center crop S            (mcnn_preprocess)
 *                     train: RandomResizedCrop to S + mirror               (mcnn_preprocess_train)
 * The shift-and-mirror augmentation is torchvision's RandomCrop(S, padding=pad) followed by
 * RandomHorizontalFlip: cropping the zero-padded image at offset (pad + dy, pad + dx) is the
 * image shifted by (-dy, -dx), so it is done in place of a padded copy. */
#include "internal.h"
#include "mcnn/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mcnn_transform mcnn_transform_default(int size, int channels)
{
    mcnn_transform t;
    memset(&t, 0, sizeof t);
    mcnn_preprocess_config *p = &t.preprocess;
    p->crop = size;
    p->channels = channels;
    if (channels == 1) {
        p->mean[0] = MCNN_FASHION_MNIST_MEAN, p->std[0] = MCNN_FASHION_MNIST_STD;
    } else {
        const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        memcpy(p->mean, mean, sizeof mean);
        memcpy(p->std, std, sizeof std);
    }
    p->resize = (int)((int64_t)size * 256 / 224);
    p->filter = MCNN_RESAMPLE_BILINEAR;
    t.pad = size >= 7 ? (size + 6) / 7 : 1;
    t.augment = mcnn_augment_default(); /* flip 0.5 */
    return t;
}

void mcnn_augment_shift_flip(unsigned char *out, const unsigned char *in, int C, int H, int W,
                             int dy, int dx, int flip)
{
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++) {
            const int sy = y + dy;
            unsigned char *o = out + ((size_t)c * H + y) * W;
            if (sy < 0 || sy >= H) {
                memset(o, 0, (size_t)W);
                continue;
            }
            const unsigned char *row = in + ((size_t)c * H + sy) * W;
            for (int x = 0; x < W; x++) {
                const int sx = (flip ? W - 1 - x : x) + dx; /* mirror the shifted image */
                o[x] = sx >= 0 && sx < W ? row[sx] : 0;
            }
        }
}

/* (x / 255 - mean) / std, as ToTensor then Normalize in float32. */
static void normalise(float *out, const unsigned char *in, size_t n, float mean, float std)
{
    for (size_t i = 0; i < n; i++) out[i] = ((float)in[i] / 255.0f - mean) / std;
}

/* One in-memory sample into out (channels, S, S). */
static mcnn_status memory_sample(float *out, const mcnn_dataset *ds, int j,
                                 const mcnn_transform *t, int augment, mcnn_rng *r,
                                 unsigned char *scratch)
{
    const mcnn_preprocess_config *p = &t->preprocess;
    const int C = ds->channels, H = ds->height, W = ds->width, S = p->crop;
    const size_t plane = (size_t)H * W;
    const unsigned char *px = ds->pixels + (size_t)j * C * plane;
    if (augment) {
        int dy = 0, dx = 0, flip;
        if (t->pad > 0) {
            dy = (int)mcnn_rng_below(r, 2u * t->pad + 1) - t->pad;
            dx = (int)mcnn_rng_below(r, 2u * t->pad + 1) - t->pad;
        }
        flip = mcnn_rng_uniform(r) < t->augment.flip_p;
        mcnn_augment_shift_flip(scratch, px, C, H, W, dy, dx, flip);
        px = scratch;
    }
    if (S == H && S == W && (p->channels == C || C == 1)) {
        for (int c = 0; c < p->channels; c++) /* gray to RGB repeats the plane */
            normalise(out + c * plane, px + (C == 1 ? 0 : c * plane), plane, p->mean[c],
                      p->std[c]);
        return MCNN_OK;
    }
    /* other sizes or channel counts: through the general pipeline (HWC image, PIL resize) */
    mcnn_image img = {.width = W, .height = H, .channels = C, .pixels = malloc((size_t)C * plane)};
    if (!img.pixels) return mcnn_set_error(MCNN_ERR_NOMEM, "out of memory");
    for (int c = 0; c < C; c++)
        for (size_t i = 0; i < plane; i++) img.pixels[i * C + c] = px[c * plane + i];
    mcnn_preprocess_config pc = *p;
    pc.resize = S;
    mcnn_status s = mcnn_preprocess(out, &img, &pc);
    free(img.pixels);
    return s;
}

/* One file sample into out: decode, then the eval or the training pipeline. */
static mcnn_status file_sample(float *out, const mcnn_dataset *ds, int j, const mcnn_transform *t,
                               int augment, mcnn_rng *r)
{
    mcnn_image img;
    mcnn_status s = mcnn_image_load(&img, ds->paths[j]);
    if (s == MCNN_OK) {
        s = augment ? mcnn_preprocess_train(out, &img, &t->preprocess, &t->augment, r)
                    : mcnn_preprocess(out, &img, &t->preprocess);
        mcnn_image_free(&img);
    }
    if (s != MCNN_OK && ds->lines && ds->lines[j] > 0)
        s = mcnn_wrap_error(s, "%s:%d: ", ds->source, ds->lines[j]);
    return s;
}

static mcnn_status one_sample(float *out, const mcnn_dataset *ds, int j, const mcnn_transform *t,
                              int augment, uint64_t seed, unsigned char *scratch)
{
    mcnn_rng r;
    mcnn_rng_seed(&r, seed);
    return ds->pixels ? memory_sample(out, ds, j, t, augment, &r, scratch)
                      : file_sample(out, ds, j, t, augment, &r);
}

mcnn_status mcnn_dataset_batch(const mcnn_dataset *ds, const int *indices, int B,
                               const mcnn_transform *t, int augment, mcnn_rng *rng,
                               float *images, int32_t *labels, float *targets)
{
    const int K = ds->num_classes, S = t->preprocess.crop, channels = t->preprocess.channels;
    if (B <= 0 || S <= 0 || S > MCNN_PREPROCESS_MAX_SIDE || (channels != 1 && channels != 3))
        return mcnn_set_error(MCNN_ERR_ARG, "batch: %d samples of %d channels at %d x %d", B,
                              channels, S, S);
    for (int i = 0; i < B; i++)
        if (indices[i] < 0 || indices[i] >= ds->count)
            return mcnn_set_error(MCNN_ERR_ARG, "%s: sample %d of %d does not exist", ds->source,
                                  indices[i], ds->count);
    if (!ds->pixels && !ds->paths)
        return mcnn_set_error(MCNN_ERR_ARG, "batch: the data set is empty");
    const size_t out_img = (size_t)channels * S * S;
    const size_t in_img = ds->pixels ? (size_t)ds->channels * ds->height * ds->width : 0;
    /* One draw per batch seeds every sample's own stream: the same numbers for any threads. */
    const uint64_t base = augment && rng ? mcnn_rng_next(rng) : 0;
    const uint64_t step = 0x9E3779B97F4A7C15ull;
    unsigned char *scratch = in_img ? malloc(in_img * (size_t)B) : NULL;
    mcnn_status *st = malloc((size_t)B * sizeof *st);
    if (!st || (in_img && !scratch)) {
        free(scratch);
        free(st);
        return mcnn_set_error(MCNN_ERR_NOMEM, "batch: out of memory");
    }
    #pragma omp parallel for schedule(dynamic, 1) if (!ds->pixels && B > 1)
    for (int i = 0; i < B; i++)
        st[i] = one_sample(images + i * out_img, ds, indices[i], t, augment, base + step * i,
                           scratch ? scratch + i * in_img : NULL);
    /* Failures again, in order, on this thread (messages are per thread): either the error,
     * or with skip_corrupt the next decodable sample, deterministically. */
    mcnn_status s = MCNN_OK;
    int *used = malloc((size_t)B * sizeof *used);
    if (!used) s = mcnn_set_error(MCNN_ERR_NOMEM, "batch: out of memory");
    for (int i = 0; i < B && s == MCNN_OK; i++) {
        used[i] = indices[i];
        if (st[i] == MCNN_OK) continue;
        int j = indices[i];
        s = one_sample(images + i * out_img, ds, j, t, augment, base + step * i,
                       scratch ? scratch + i * in_img : NULL);
        for (int tries = 0; s != MCNN_OK && ds->skip_corrupt && ds->bad && tries < ds->count;
             tries++) {
            if (!ds->bad[j]) { /* warn once per file */
                ds->bad[j] = 1;
                if (ds->warn) ds->warn(ds->warn_ctx, mcnn_last_error());
            }
            j = (j + 1) % ds->count;
            if (ds->bad[j]) continue;
            s = one_sample(images + i * out_img, ds, j, t, augment, base + step * i,
                           scratch ? scratch + i * in_img : NULL);
        }
        used[i] = j;
    }
    for (int i = 0; i < B && s == MCNN_OK; i++) {
        const int j = used[i];
        if (labels) labels[i] = ds->labels[j];
        if (targets) {
            float *y = targets + (size_t)i * K;
            if (ds->targets)
                for (int k = 0; k < K; k++) y[k] = ds->targets[(size_t)j * K + k];
            else
                for (int k = 0; k < K; k++) y[k] = k == ds->labels[j] ? 1.0f : 0.0f;
        }
    }
    free(used);
    free(scratch);
    free(st);
    return s;
}

mcnn_status mcnn_dataset_skip_corrupt(mcnn_dataset *ds, void (*warn)(void *ctx, const char *msg),
                                      void *ctx)
{
    if (!ds->bad && !(ds->bad = calloc((size_t)ds->count, 1)))
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", ds->source);
    ds->skip_corrupt = 1;
    ds->warn = warn;
    ds->warn_ctx = ctx;
    return MCNN_OK;
}
