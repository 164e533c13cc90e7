/* Helpers shared by the library's own files; never installed, never seen by users. */
#ifndef MCNN_INTERNAL_H
#define MCNN_INTERNAL_H

#include "mcnn.h"

#include <stdint.h>
#include <stddef.h>

/* Record a detailed message for mcnn_last_error() and return the status, so that error paths
 * read as one line:  return mcnn_set_error(MCNN_ERR_IO, "%s: cannot open", path); */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
mcnn_status mcnn_set_error(mcnn_status s, const char *fmt, ...);

/* Prefix the current message with more context ("model.safetensors: " + old message). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
mcnn_status mcnn_wrap_error(mcnn_status s, const char *fmt, ...);

/* Propagate a failure up the call chain without an if-block at every call. */
#define MCNN_TRY(expr)                                                                      \
    do {                                                                                    \
        mcnn_status try_status_ = (expr);                                                   \
        if (try_status_ != MCNN_OK) return try_status_;                                     \
    } while (0)

/* Internal invariants only (never user input); compiled out unless DEBUG=1. */
#ifdef MCNN_DEBUG
#include <stdio.h>
#include <stdlib.h>
#define MCNN_ASSERT(cond)                                                                   \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: internal invariant failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                                 \
            abort();                                                                        \
        }                                                                                   \
    } while (0)
#else
#define MCNN_ASSERT(cond) ((void)0)
#endif

/* a * b, or 0 with *overflow set; for sizes that come from files. */
static inline size_t mcnn_mul_size(size_t a, size_t b, int *overflow)
{
    if (a != 0 && b > SIZE_MAX / a) {
        *overflow = 1;
        return 0;
    }
    return a * b;
}

/* How many threads should each take a share of a batch of n items through a whole inference
 * forward (one "lane" each, single-threaded ops inside): all of them when each gets an item,
 * else 1 (the ops then split their own work across the threads); 1 inside a parallel region. */
int mcnn_batch_lanes(int n);

/* Run fn over a batch of n items split into `lanes` shares (lanes from mcnn_batch_lanes): share
 * t is items b0 .. b0+count-1, b0 = n·t / lanes, one thread each in one parallel region; with
 * one lane, fn(ctx, 0, 0, n) on the calling thread.  Each item is computed as in the whole
 * batch, so results do not depend on the number of lanes. */
typedef void (*mcnn_lane_fn)(void *ctx, int lane, int b0, int count);
/* What a model's lane function usually needs (as its ctx): the model it reads, the
 * activations it writes, its input. */
typedef struct mcnn_lane_args {
    const void *model;
    void *acts;
    const void *input;
} mcnn_lane_args;
void mcnn_lanes_run(int lanes, int n, mcnn_lane_fn fn, void *ctx);

/* memset(p, 0, n floats), split across the threads when n is large (a ResNet-50 training step
 * zeroes about 1 GB of activation gradients: serially 3% of the step on two threads). */
void mcnn_zero_floats(float *p, size_t n);

/* Give the whole pages inside [p, p + bytes) back to the OS (Linux: madvise MADV_DONTNEED on
 * private anonymous memory, which any large malloc block is); they read as zeros afterwards and
 * cost nothing until written again.  The partial pages at both ends are kept: they may hold
 * neighbouring values.  Returns the bytes given back (0 where the OS offers no such call: the
 * memory then simply stays).  For the fp32 copies of weights an inference-only model no longer
 * reads (docs/precision.md "Memory"). */
size_t mcnn_release_pages(void *p, size_t bytes);

/* mcnn_linear_forward through a weight packed once (mcnn_gemm_packed) when pk is not NULL;
 * else, or when the packed GEMM cannot get its buffers, mcnn_linear_forward on w (fp32: the
 * same bits either way); w NULL (released, inference only) then gives NaN.  lib/ops/linear.c. */
void mcnn_linear_forward_packed(float *y, const float *x, const float *w,
                                const mcnn_packed_b *pk, const float *b, int N, int IN, int OUT);

/* The pair kernel (bf16, k in pairs: vdpbf16ps) a weight was packed for, or NULL (fp32, int8,
 * or a bf16 kernel that widens).  Inference uses it to run attention's products in bf16 too
 * where that is faster than fp32.  lib/kernels/gemm_packed.c. */
struct mcnn_lowp_kernel;
const struct mcnn_lowp_kernel *mcnn_packed_b_pair_kernel(const mcnn_packed_b *p);

/* mcnn_attention_forward (starts NULL: S sequences of T tokens) or _ragged (starts) with its
 * two products, S = Q·Kᵀ/√HS and O = P·V, in bf16 on pair kernel bf16
 * (lib/kernels/gemm_bf16_act.c); bf16 NULL: fp32, those functions' bits.  The softmax stays
 * fp32.  Inference only: the backward reads probs as fp32 products would have made them. */
void mcnn_attention_forward_bf16(float *out, float *probs, const float *qkv, int S, int T,
                                 const int *starts, int C, int NH, int causal,
                                 const struct mcnn_lowp_kernel *bf16);

/* Size, then point.  A carver hands out 64-byte-aligned float arrays from one block; with a
 * NULL base it only counts, so the same code first sizes an arena and then fills it:
 *   mcnn_carver c = {NULL, 0};  plan(&c);  alloc c.used floats;  c = (mcnn_carver){base, 0}; plan(&c); */
typedef struct mcnn_carver {
    float *base;
    size_t used; /* floats */
} mcnn_carver;

static inline float *mcnn_carve(mcnn_carver *c, size_t n)
{
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) & ~(size_t)15;
    return p;
}

#endif
