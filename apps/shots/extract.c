/* Per-frame features from CLIP, a ViT or a ResNet (any checkpoint mcnn-classify reads). */
#define _XOPEN_SOURCE 700
#include "extract.h"

#include "../common/args.h"
#include "../common/checkpoint_preprocess.h"

#include <stdlib.h>
#include <string.h>

static int is_clip(mcnn_safetensors *st)
{
    const char *arch = mcnn_safetensors_meta(st, "arch");
    return (arch && strstr(arch, "clip")) || mcnn_safetensors_find(st, "visual.conv1.weight") ||
           mcnn_safetensors_find(st, "vision_model.embeddings.patch_embedding.weight");
}

static int lib_fail(void)
{
    app_error("%s", mcnn_last_error());
    return -1;
}

int extractor_load(extractor *e, const char *model_path, const char *output, int batch)
{
    memset(e, 0, sizeof *e);
    e->batch = batch;
    e->logits = strcmp(output, "logits") == 0;
    mcnn_safetensors *st;
    if (mcnn_safetensors_open(&st, model_path) != MCNN_OK) return lib_fail();
    int out_width;
    if (is_clip(st)) {
        mcnn_safetensors_close(st);
        if (e->logits) return app_error("%s: a CLIP model has no logits (--output features)",
                                        model_path), -1;
        if (mcnn_clip_load(&e->clip, model_path, NULL) != MCNN_OK) return lib_fail();
        const mcnn_clip_config *c = mcnn_clip_get_config(e->clip);
        e->dim = out_width = c->embed_dim;
        e->size = c->image_size, e->channels = 3;
        e->pp = mcnn_clip_preprocess_config(e->clip);
        snprintf(e->kind, sizeof e->kind, "clip-image-embedding");
    } else {
        if (mcnn_classifier_load(&e->cls, model_path, NULL) != MCNN_OK) {
            mcnn_safetensors_close(st);
            return lib_fail();
        }
        e->size = mcnn_classifier_image_size(e->cls);
        e->channels = mcnn_classifier_in_channels(e->cls);
        e->pp = checkpoint_preprocess(e->cls, st, e->size);
        mcnn_safetensors_close(st);
        out_width = mcnn_classifier_num_classes(e->cls);
        void *net = mcnn_classifier_model(e->cls);
        if (e->logits) {
            e->dim = out_width;
            snprintf(e->kind, sizeof e->kind, "classifier-logits");
        } else if (mcnn_classifier_arch(e->cls) == MCNN_ARCH_VIT) {
            e->dim = mcnn_vit_get_config(net)->width;
            snprintf(e->kind, sizeof e->kind, "vit-pre-logits");
        } else {
            e->dim = mcnn_resnet_feature_dim(net);
            snprintf(e->kind, sizeof e->kind, "resnet-pooled");
        }
    }
    const size_t px = (size_t)e->channels * e->size * e->size;
    e->images = shots_xmalloc((size_t)batch * px * sizeof(float));
    e->out = shots_xmalloc((size_t)batch * (size_t)(out_width > e->dim ? out_width : e->dim) *
                           sizeof(float));
    return 0;
}

int extractor_run(extractor *e, float *features, const mcnn_image *frames, int n, char *err,
                  size_t errsize)
{
    const size_t px = (size_t)e->channels * e->size * e->size;
    int bad = -1;
    #pragma omp parallel for schedule(dynamic) num_threads(mcnn_get_threads())
    for (int i = 0; i < n; i++)
        if (mcnn_preprocess(e->images + (size_t)i * px, &frames[i], &e->pp) != MCNN_OK) bad = i;
    if (bad >= 0) return fail_with(err, errsize, "frame %d: cannot preprocess", bad);
    if (e->clip) {
        if (mcnn_clip_image_embeddings(e->clip, features, e->images, n) != MCNN_OK)
            return fail_with(err, errsize, "%s", mcnn_last_error());
        return 0;
    }
    if (mcnn_classifier_forward(e->cls, e->out, e->images, n, 0) != MCNN_OK)
        return fail_with(err, errsize, "%s", mcnn_last_error());
    const float *src = e->out;
    if (!e->logits) {
        void *net = mcnn_classifier_model(e->cls);
        src = mcnn_classifier_arch(e->cls) == MCNN_ARCH_VIT ? mcnn_vit_features(net)
                                                             : mcnn_resnet_features(net);
    }
    memcpy(features, src, (size_t)n * e->dim * sizeof(float));
    return 0;
}

void extractor_free(extractor *e)
{
    mcnn_clip_free(e->clip);
    mcnn_classifier_free(e->cls);
    free(e->images), free(e->out);
    memset(e, 0, sizeof *e);
}
