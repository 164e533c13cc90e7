/* A classifier checkpoint's preprocessing as the apps apply it: the checkpoint's own settings,
 * except timm's ViT weights (AugReg, weights/download.sh vit-b16), which carry no preprocessing
 * metadata and were trained with bicubic resizing, crop_pct 0.9 and mean = std = 0.5. */
#ifndef MCNN_APPS_CHECKPOINT_PREPROCESS_H
#define MCNN_APPS_CHECKPOINT_PREPROCESS_H

#include "mcnn.h"

/* cls loaded from st (still open); size is the model's input size. */
mcnn_preprocess_config checkpoint_preprocess(const mcnn_classifier *cls, mcnn_safetensors *st,
                                             int size);

#endif
