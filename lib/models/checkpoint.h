/* Small helpers the model loaders share. */
#ifndef MCNN_CHECKPOINT_H
#define MCNN_CHECKPOINT_H

#include "mcnn.h"

/* 1 + the largest N of any tensor named "<prefix>N.<anything>", or 0 when there is none.
 * Counting every key (not probing one name per layer) means one missing tensor is reported
 * as missing rather than as a model with fewer layers. */
int mcnn_checkpoint_count_layers(const mcnn_safetensors *st, const char *prefix);

/* 1 when a tensor holds training state rather than model weights (a trainer's checkpoint keeps
 * the optimizer's moments, e.g. "optimizer.m.<param>", next to the weights): the model loaders
 * pass this to mcnn_params_check_unused so such a file still loads as a plain model. */
int mcnn_checkpoint_is_training_state(const char *name);

#endif
