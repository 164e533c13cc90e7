/* Small helpers the model loaders share. */
#ifndef MCNN_CHECKPOINT_H
#define MCNN_CHECKPOINT_H

#include "mcnn.h"

/* 1 + the largest N of any tensor named "<prefix>N.<anything>", or 0 when there is none.
 * Counting every key (not probing one name per layer) means one missing tensor is reported
 * as missing rather than as a model with fewer layers. */
int mcnn_checkpoint_count_layers(const mcnn_safetensors *st, const char *prefix);

#endif
