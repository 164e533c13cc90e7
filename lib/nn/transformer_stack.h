/* A stack of L pre-norm transformer blocks (transformer_block.h) under one config: the body
 * that ViT-B/16, the CLIP image tower and the CLIP text tower share.  The model files keep only
 * what differs around it (patch embedding, class token, positions, ln_pre / ln_post / ln_final,
 * projections, end-of-text pooling).
 *   x (B, T, C) -> block 0 -> ... -> block L-1 -> out (B, T, C)
 * Training keeps every block's activations and output for the backward; inference reuses one
 * block's activations and two ping-pong outputs.  Every array is (B, ...), image after image,
 * so a lane (a thread's share of the batch) runs the same arrays from its first image on. */
#ifndef MCNN_TRANSFORMER_STACK_H
#define MCNN_TRANSFORMER_STACK_H

#include "transformer_block.h"
#include "pack_list.h"

typedef struct stack_cfg {
    int layers;
    block_cfg block;     /* width, heads, MLP width, GELU / QuickGELU, causal mask, ln eps */
} stack_cfg;

/* Pointer arrays (allocated once, by mcnn_stack_acts_init) into a carved arena. */
typedef struct stack_acts {
    int train;
    block_acts *blocks;  /* layers when training, else [0] reused                         */
    float **out;         /* (B, T, C) block outputs: layers when training, else 2 reused   */
    /* backward scratch, training only */
    block_acts dblock;   /* the activation gradients of the block being undone            */
    float *dx_a, *dx_b;  /* (B, T, C) ping-pong: the gradient of a block's output / input */
} stack_acts;

mcnn_status mcnn_stack_acts_init(stack_acts *a, const stack_cfg *cfg);
void mcnn_stack_acts_free(stack_acts *a);

/* Size, then point: carve the stack's arrays for (B, T, train) from c (a counting carver
 * only sizes them). */
void mcnn_stack_acts_carve(stack_acts *a, mcnn_carver *c, const stack_cfg *cfg, int B, int T,
                           int train);

/* Images b0 .. b0+n-1 of the batch through every block (one lane: call it from each thread
 * with its share, or once with the whole batch); x is the stack's input at image b0.  Returns
 * the last block's output at image b0.  pk: the blocks' packed weights (mcnn_stack_pack), used
 * by an inference forward; NULL, or a training forward, multiplies by w in fp32. */
const float *mcnn_stack_forward(const stack_acts *a, const block_grads *w, const block_packed *pk,
                                const stack_cfg *cfg, const float *x, int b0, int n, int T);

/* Every block's four matrices as entries of list (pack_list.h: to be packed all at once, as
 * each is loaded, or released), their slots in *out, a new array of cfg->layers, empty until
 * packed: the caller's (mcnn_stack_pack_free).  On failure *out is NULL. */
mcnn_status mcnn_stack_pack_plan(block_packed **out, mcnn_pack_list *list, block_grads *w,
                                 const stack_cfg *cfg);
void mcnn_stack_pack_free(block_packed *pk, const stack_cfg *cfg);
/* Bytes the packed matrices take. */
size_t mcnn_stack_pack_bytes(const block_packed *pk, const stack_cfg *cfg);

/* Block l's output (B, T, C) of the last training forward, else NULL. */
const float *mcnn_stack_output(const stack_acts *a, const stack_cfg *cfg, int l);

/* The backward, for the batch of the last training forward.  First the gradient of the last
 * output: mcnn_stack_dout gives its buffer (B, T, C), zeroed, for the caller to fill; then
 * mcnn_stack_backward accumulates every block's parameter gradients into g and returns the
 * gradient of the stack's input x (B, T, C) (valid until the next backward). */
float *mcnn_stack_dout(stack_acts *a, const stack_cfg *cfg, int B, int T);
const float *mcnn_stack_backward(stack_acts *a, const block_grads *g, const block_grads *w,
                                 const stack_cfg *cfg, const float *x, int B, int T);

#endif
