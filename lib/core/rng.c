/* xoshiro256** (Blackman & Vigna), seeded with splitmix64 so any 64-bit seed gives a good state. */
#include "internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void mcnn_rng_seed(mcnn_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t mcnn_rng_next(mcnn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float mcnn_rng_uniform(mcnn_rng *r)
{
    return (float)(mcnn_rng_next(r) >> 40) * (1.0f / 16777216.0f); /* 24 bits: exact in float */
}

float mcnn_rng_normal(mcnn_rng *r)
{
    /* Box-Muller; 1 - u keeps the logarithm's argument in (0, 1]. */
    double u1 = 1.0 - (double)(mcnn_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    double u2 = (double)(mcnn_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t mcnn_rng_below(mcnn_rng *r, uint32_t n)
{
    /* Lemire's multiply-shift: uniform without a division in the common case. */
    uint64_t m = (uint64_t)(uint32_t)(mcnn_rng_next(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(mcnn_rng_next(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}
