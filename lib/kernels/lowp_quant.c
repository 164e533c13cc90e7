/* The quantizers of the reduced-precision GEMM: fp32 -> bf16, and fp32 -> int8 / uint8 with a
 * scale (and a zero point), exactly as defined in lowp_internal.h and docs/precision.md.  Plain
 * C: they run once per weight (at packing) or once per activation element, next to K
 * multiply-adds each. */
#include "lowp_internal.h"

#include <math.h>
#include <string.h>

uint16_t mcnn_bf16_from_float(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)           /* NaN: keep the sign, set the quiet bit */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);                 /* to nearest; a tie goes to the even one */
    return (uint16_t)(u >> 16);                      /* (the largest floats round up to inf)   */
}

void mcnn_bf16_round(const float *x, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = mcnn_bf16_to_float(mcnn_bf16_from_float(x[i]));
}

float mcnn_quant_weight_row(const float *w, int K, int8_t *q, int32_t *qsum)
{
    float amax = 0.0f;
    int finite = 1;
    for (int k = 0; k < K; k++) {
        if (!isfinite(w[k])) finite = 0;
        else if (fabsf(w[k]) > amax) amax = fabsf(w[k]);
    }
    *qsum = 0;
    if (!finite || amax == 0.0f) {
        for (int k = 0; k < K; k++) q[k] = 0;
        return finite ? 0.0f : NAN;
    }
    float s = amax / 127.0f;
    for (int k = 0; k < K; k++) {
        float r = nearbyintf(w[k] / s);             /* |w / s| <= 127 up to rounding of s */
        r = r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
        q[k] = (int8_t)r;
        *qsum += q[k];
    }
    return s;
}

float mcnn_quant_act_row(const float *x, int K, uint8_t *q, int32_t *zero)
{
    float lo = 0.0f, hi = 0.0f;
    int finite = 1;
    for (int k = 0; k < K; k++) {
        if (!isfinite(x[k])) finite = 0;
        else if (x[k] < lo) lo = x[k];
        else if (x[k] > hi) hi = x[k];
    }
    *zero = 0;
    if (!finite || hi == lo) {                      /* lo <= 0 <= hi: equal only when all 0 */
        for (int k = 0; k < K; k++) q[k] = 0;
        return finite ? 1.0f : NAN;
    }
    float s = (hi - lo) / 255.0f;
    float z = nearbyintf(-lo / s);
    z = z > 255.0f ? 255.0f : z;
    *zero = (int32_t)z;
    for (int k = 0; k < K; k++) {
        float r = nearbyintf(x[k] / s) + z;
        r = r > 255.0f ? 255.0f : r < 0.0f ? 0.0f : r;
        q[k] = (uint8_t)r;
    }
    return s;
}
