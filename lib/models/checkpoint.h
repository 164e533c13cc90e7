/* Small helpers the model loaders share.  A checkpoint is untrusted: every count and size a
 * loader reads off it passes through these before anything is sized by it. */
#ifndef MCNN_CHECKPOINT_H
#define MCNN_CHECKPOINT_H

#include "mcnn.h"

/* The largest dimension a loader takes from a tensor's shape (widths, classes, vocabularies). */
#define MCNN_CHECKPOINT_MAX_DIM (1 << 24)
/* The most transformer blocks a ViT or CLIP tower may have (the largest released: 48). */
#define MCNN_CHECKPOINT_MAX_LAYERS 1024
/* The largest image side a position grid may describe. */
#define MCNN_CHECKPOINT_MAX_IMAGE 4096

/* How many numbered groups the tensors "<prefix>N.<anything>" form: the indices N must run from
 * first without gaps and stay below first + max.  A gap or an index past the limit fails naming
 * the tensor that implies it ('what' names a group in the message: "block", "stage").  Names
 * with the prefix but no plain decimal index (a sign, a leading zero) are not counted; the
 * loaders reject them later as unexpected tensors.  *count is 0 when no tensor has the prefix. */
mcnn_status mcnn_checkpoint_count(int *count, const mcnn_safetensors *st, const char *prefix,
                                  int first, int max, const char *what);

/* A tensor the configuration is read from: present, with ndim dimensions each in
 * [1, MCNN_CHECKPOINT_MAX_DIM].  The errors name the file and the tensor. */
mcnn_status mcnn_checkpoint_need(const mcnn_st_tensor **t, const mcnn_safetensors *st,
                                 const char *name, int ndim);

/* The side G of a positional embedding of 1 + G·G positions (class token + grid), G no more
 * than MCNN_CHECKPOINT_MAX_IMAGE; -1 for any other count. */
int mcnn_checkpoint_grid(int64_t positions);

/* 1 when a tensor holds training state rather than model weights (a trainer's checkpoint keeps
 * the optimizer's moments, e.g. "optimizer.m.<param>", next to the weights): the model loaders
 * pass this to mcnn_params_check_unused so such a file still loads as a plain model. */
int mcnn_checkpoint_is_training_state(const char *name);

#endif
