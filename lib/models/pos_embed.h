/* Resampling a positional embedding's grid for another image size. */
#ifndef MCNN_POS_EMBED_H
#define MCNN_POS_EMBED_H

#include <stddef.h>

/* dst (OH, OW, C) from src (IH, IW, C), tokens in row-major grid order: bicubic (A = -0.75)
 * with align_corners = True, as torch.nn.functional.interpolate(mode="bicubic",
 * align_corners=True), which torchvision's interpolate_embeddings uses. */
void mcnn_pos_embed_resize(float *dst, int OH, int OW, const float *src, int IH, int IW, int C);

#endif
