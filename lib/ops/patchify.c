/* Patchify: cut an image into non-overlapping PS×PS patches, one row per patch.
 *   img (B, IC, H, W) -> patches (B, GH·GW, IC·PS·PS),  GH = H / PS, GW = W / PS (floor, as a
 *   conv with kernel = stride = PS and no padding drops the leftover rows and columns)
 *   patches[b][gy·GW + gx][(ic·PS + ky)·PS + kx] = img[b][ic][gy·PS + ky][gx·PS + kx]
 * The column order (ic, ky, kx) is exactly how PyTorch's conv weight (OC, IC, PS, PS) flattens
 * to (OC, IC·PS·PS), so
 *   linear(patches, conv.weight.reshape(OC, -1), conv.bias)  ==  conv(img).flatten(2).transpose(1, 2)
 * which is how ViT's and CLIP's patch embedding run here: a copy, then one GEMM.
 * Tokens are numbered row-major over the grid (gy, then gx), as flatten(2) does.
 * Backward is the inverse copy, accumulated: every pixel belongs to at most one patch, so there
 * are no sums and no races; pixels outside the grid get no gradient. */
#include "internal.h"
#include "core/profile.h"

#include <string.h>

void mcnn_patchify_forward(float *patches, const float *img, int B, int IC, int H, int W, int PS)
{
    MCNN_PROF_SCOPE(MCNN_PROF_EMBED);
    const int GH = H / PS, GW = W / PS, K = IC * PS * PS;
    #pragma omp parallel for if ((size_t)B * IC * H * W > 16384)
    for (int bg = 0; bg < B * GH; bg++) {      /* one row of patches per iteration */
        const int b = bg / GH, gy = bg % GH;
        for (int gx = 0; gx < GW; gx++) {
            float *p = patches + ((size_t)b * GH * GW + (size_t)gy * GW + gx) * K;
            for (int ic = 0; ic < IC; ic++)
                for (int ky = 0; ky < PS; ky++) {
                    const float *src = img + (((size_t)b * IC + ic) * H + (size_t)gy * PS + ky) * W
                                     + (size_t)gx * PS;
                    memcpy(p + ((size_t)ic * PS + ky) * PS, src, (size_t)PS * sizeof(float));
                }
        }
    }
}

void mcnn_patchify_backward(float *dimg, const float *dpatches, int B, int IC, int H, int W,
                            int PS)
{
    MCNN_PROF_SCOPE(MCNN_PROF_EMBED);
    if (!dimg) return;
    const int GH = H / PS, GW = W / PS, K = IC * PS * PS;
    #pragma omp parallel for if ((size_t)B * IC * H * W > 16384)
    for (int bg = 0; bg < B * GH; bg++) {
        const int b = bg / GH, gy = bg % GH;
        for (int gx = 0; gx < GW; gx++) {
            const float *p = dpatches + ((size_t)b * GH * GW + (size_t)gy * GW + gx) * K;
            for (int ic = 0; ic < IC; ic++)
                for (int ky = 0; ky < PS; ky++) {
                    float *dst = dimg + (((size_t)b * IC + ic) * H + (size_t)gy * PS + ky) * W
                               + (size_t)gx * PS;
                    const float *src = p + ((size_t)ic * PS + ky) * PS;
                    for (int kx = 0; kx < PS; kx++) dst[kx] += src[kx];
                }
        }
    }
}
