/* Bicubic resampling of a positional-embedding grid (PyTorch's upsample_bicubic2d, A = -0.75,
 * align_corners = True: the corner tokens map exactly onto the corner tokens). */
#include "pos_embed.h"

#include <math.h>

/* Keys' cubic convolution weights for the four taps around a point at fraction t. */
static void cubic_weights(double t, double w[4])
{
    const double A = -0.75;
    double x;
    x = t + 1.0; w[0] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    x = t;       w[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    x = 1.0 - t; w[2] = ((A + 2) * x - (A + 3)) * x * x + 1;
    x = 2.0 - t; w[3] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void mcnn_pos_embed_resize(float *dst, int OH, int OW, const float *src, int IH, int IW, int C)
{
    const double sy = OH > 1 ? (double)(IH - 1) / (OH - 1) : 0.0;
    const double sx = OW > 1 ? (double)(IW - 1) / (OW - 1) : 0.0;
    for (int oy = 0; oy < OH; oy++) {
        double fy = oy * sy;
        int y0 = (int)floor(fy);
        double wy[4];
        cubic_weights(fy - y0, wy);
        for (int ox = 0; ox < OW; ox++) {
            double fx = ox * sx;
            int x0 = (int)floor(fx);
            double wx[4];
            cubic_weights(fx - x0, wx);
            float *d = dst + ((size_t)oy * OW + ox) * C;
            for (int c = 0; c < C; c++) {
                double acc = 0.0;
                for (int i = 0; i < 4; i++) {
                    const float *row = src + (size_t)clampi(y0 - 1 + i, 0, IH - 1) * IW * C;
                    double r = 0.0;
                    for (int j = 0; j < 4; j++)
                        r += wx[j] * row[(size_t)clampi(x0 - 1 + j, 0, IW - 1) * C + c];
                    acc += wy[i] * r;
                }
                d[c] = (float)acc;
            }
        }
    }
}
