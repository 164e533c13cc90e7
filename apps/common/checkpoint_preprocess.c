#include "checkpoint_preprocess.h"

mcnn_preprocess_config checkpoint_preprocess(const mcnn_classifier *cls, mcnn_safetensors *st,
                                             int size)
{
    mcnn_preprocess_config pp = *mcnn_classifier_get_preprocess(cls);
    if (mcnn_safetensors_find(st, "patch_embed.proj.weight") &&
        !mcnn_safetensors_meta(st, "preprocess") && !mcnn_safetensors_meta(st, "mean")) {
        pp.filter = MCNN_RESAMPLE_BICUBIC;
        pp.resize = (int)(size / 0.9);
        for (int c = 0; c < 3; c++) pp.mean[c] = 0.5f, pp.std[c] = 0.5f;
    }
    return pp;
}
