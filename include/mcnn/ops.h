/* The kernel tier: every op as a forward / backward pair on raw float arrays.
 *
 * Conventions, the same for every op (see docs/conventions.md):
 * - Shapes are written outermost first, as in PyTorch: (N, C, H, W) images, (B, T, C) tokens.
 *   All arrays are contiguous and row-major.  Weights keep PyTorch's layouts.
 * - Argument order.  Forward: outputs, values saved for backward, inputs, parameters, dims.
 *   Backward: input grads, parameter grads, upstream grad, the forward's inputs, parameters
 *   and saved values, then dims.
 * - Backward ACCUMULATES (+=) into every gradient it is given.  Callers zero gradients once per
 *   step; a tensor read by two ops (a residual) then simply receives both contributions.
 *   Any gradient pointer may be NULL when that gradient is not wanted (a frozen layer, the
 *   image input), and the work for it is skipped.
 * - Nothing here validates shapes or allocates: that is the API tier's job (models, apps).
 * - Results do not depend on the thread count: reductions are split by output element. */
#ifndef MCNN_OPS_H
#define MCNN_OPS_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear: y = x·Wᵀ + b ---------------------------------------------------------------
 * x (N, IN), w (OUT, IN) as torch.nn.Linear, b (OUT) or NULL, y (N, OUT). */
MCNN_API void mcnn_linear_forward(float *y, const float *x, const float *w, const float *b,
                                  int N, int IN, int OUT);
MCNN_API void mcnn_linear_backward(float *dx, float *dw, float *db, const float *dy,
                                   const float *x, const float *w, int N, int IN, int OUT);

/* ---- conv2d (torch.nn.Conv2d): x (N, IC, H, W), w (OC, IC/groups, KH, KW), b (OC) or NULL,
 * y (N, OC, OH, OW) with OH = (H + 2·pad_h - dil_h·(KH-1) - 1) / stride_h + 1.
 * im2col + mcnn_gemm (docs/ops/conv2d.md).  workspace: mcnn_conv2d_workspace_floats() floats,
 * owned by the caller (allocate the maximum over a model's layers once), shared by forward and
 * backward: the im2col columns of one chunk of images.  The size depends on the shape only,
 * never on the thread count; it is 0 (NULL allowed) for a 1×1, stride-1, unpadded conv that
 * runs one image per GEMM (maps of 256+ pixels, or N = 1). */
typedef struct mcnn_conv2d_shape {
    int N, IC, H, W;
    int OC, KH, KW;
    int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
} mcnn_conv2d_shape;

MCNN_API int mcnn_conv2d_out_h(const mcnn_conv2d_shape *s);
MCNN_API int mcnn_conv2d_out_w(const mcnn_conv2d_shape *s);
MCNN_API size_t mcnn_conv2d_workspace_floats(const mcnn_conv2d_shape *s);
MCNN_API void mcnn_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                                  const mcnn_conv2d_shape *s, float *workspace);
MCNN_API void mcnn_conv2d_backward(float *dx, float *dw, float *db, const float *dy,
                                   const float *x, const float *w, const mcnn_conv2d_shape *s,
                                   float *workspace);

/* ---- batch norm 2-d (torch.nn.BatchNorm2d): x, y (N, C, HW), gamma, beta (C).
 * Training: normalise with the batch's mean and biased variance, save mean and rstd (C) for
 * backward, and update running_mean/var (unbiased variance) with momentum:
 *   running = (1 - momentum) · running + momentum · batch     (PyTorch: momentum 0.1, eps 1e-5)
 * running_mean / running_var may be NULL (not tracked).
 * Eval: normalise with the running statistics. */
MCNN_API void mcnn_batchnorm2d_forward_train(float *y, float *mean, float *rstd,
                                             float *running_mean, float *running_var,
                                             const float *x, const float *gamma,
                                             const float *beta, int N, int C, int HW,
                                             float momentum, float eps);
MCNN_API void mcnn_batchnorm2d_forward_eval(float *y, const float *x, const float *gamma,
                                            const float *beta, const float *running_mean,
                                            const float *running_var, int N, int C, int HW,
                                            float eps);
MCNN_API void mcnn_batchnorm2d_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                                        const float *x, const float *gamma, const float *mean,
                                        const float *rstd, int N, int C, int HW);
/* Backward of the eval-mode op (statistics are constants): for fine-tuning with frozen BN. */
MCNN_API void mcnn_batchnorm2d_backward_eval(float *dx, float *dgamma, float *dbeta,
                                             const float *dy, const float *x, const float *gamma,
                                             const float *running_mean,
                                             const float *running_var, int N, int C, int HW,
                                             float eps);

/* ---- element-wise activations: x, y (n).  Backward reads the forward's input x
 * (relu reads its output y, so it can run in place). */
MCNN_API void mcnn_relu_forward(float *y, const float *x, size_t n);
MCNN_API void mcnn_relu_backward(float *dx, const float *dy, const float *y, size_t n);
/* torch.nn.GELU(): x·Φ(x) with the exact erf */
MCNN_API void mcnn_gelu_forward(float *y, const float *x, size_t n);
MCNN_API void mcnn_gelu_backward(float *dx, const float *dy, const float *x, size_t n);
/* torch.nn.GELU(approximate='tanh') */
MCNN_API void mcnn_gelu_tanh_forward(float *y, const float *x, size_t n);
MCNN_API void mcnn_gelu_tanh_backward(float *dx, const float *dy, const float *x, size_t n);
/* CLIP's QuickGELU: x·σ(1.702·x) */
MCNN_API void mcnn_quick_gelu_forward(float *y, const float *x, size_t n);
MCNN_API void mcnn_quick_gelu_backward(float *dx, const float *dy, const float *x, size_t n);

/* ---- pooling (torch.nn.MaxPool2d / AvgPool2d, floor mode, count_include_pad=True):
 * x (N, C, H, W), y (N, C, OH, OW), OH = (H + 2·pad_h - KH) / stride_h + 1.
 * Max pool saves, per output, the index (within its H·W plane) of the input it took; padding
 * never wins, ties keep the first max in row-major window order and NaN wins, as PyTorch.
 * argmax may be NULL (inference: no backward): then only the values, several times faster. */
typedef struct mcnn_pool2d_shape {
    int N, C, H, W;
    int KH, KW, stride_h, stride_w, pad_h, pad_w;
} mcnn_pool2d_shape;

MCNN_API int mcnn_pool2d_out_h(const mcnn_pool2d_shape *s);
MCNN_API int mcnn_pool2d_out_w(const mcnn_pool2d_shape *s);
MCNN_API void mcnn_maxpool2d_forward(float *y, int32_t *argmax, const float *x,
                                     const mcnn_pool2d_shape *s);
MCNN_API void mcnn_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax,
                                      const mcnn_pool2d_shape *s);
MCNN_API void mcnn_avgpool2d_forward(float *y, const float *x, const mcnn_pool2d_shape *s);
MCNN_API void mcnn_avgpool2d_backward(float *dx, const float *dy, const mcnn_pool2d_shape *s);
/* Global average pool: x (N, C, HW) -> y (N, C) (torch.nn.AdaptiveAvgPool2d(1) + flatten). */
MCNN_API void mcnn_global_avgpool_forward(float *y, const float *x, int N, int C, int HW);
MCNN_API void mcnn_global_avgpool_backward(float *dx, const float *dy, int N, int C, int HW);

/* ---- residual add: y = a + b, all (n); backward da += dy, db += dy (either may be NULL) -- */
MCNN_API void mcnn_add_forward(float *y, const float *a, const float *b, size_t n);
MCNN_API void mcnn_add_backward(float *da, float *db, const float *dy, size_t n);

/* ---- layer norm over the last axis (torch.nn.LayerNorm): x, y (N, C), gamma, beta (C),
 * mean, rstd (N) saved for backward.  Biased variance, eps inside the square root. */
MCNN_API void mcnn_layernorm_forward(float *y, float *mean, float *rstd, const float *x,
                                     const float *gamma, const float *beta, int N, int C,
                                     float eps);
MCNN_API void mcnn_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                                      const float *x, const float *gamma, const float *mean,
                                      const float *rstd, int N, int C);

/* ---- softmax and log-softmax over the last axis: x, y (N, C).  Backward reads the output. */
MCNN_API void mcnn_softmax_forward(float *y, const float *x, int N, int C);
MCNN_API void mcnn_softmax_backward(float *dx, const float *dy, const float *y, int N, int C);
MCNN_API void mcnn_log_softmax_forward(float *y, const float *x, int N, int C);
MCNN_API void mcnn_log_softmax_backward(float *dx, const float *dy, const float *y, int N,
                                        int C);

/* ---- scaled dot-product attention on a packed q/k/v tensor.
 * qkv (B, T, 3C): [q | k | v] along the last axis, exactly what x·in_proj_weightᵀ + in_proj_bias
 * gives with PyTorch's nn.MultiheadAttention layout; head h uses columns h·HS .. h·HS+HS-1 of
 * each part, HS = C / NH.  out (B, T, C): the heads side by side (what out_proj reads).
 * probs (B, NH, T, T): softmax(q·kᵀ / sqrt(HS)), saved for backward (masked entries are 0).
 * causal: token t attends to tokens <= t only (CLIP's text tower).
 * Backward gives dqkv (B, T, 3C).  workspace: mcnn_attention_workspace_floats() floats owned by
 * the caller, (B, NH, T, T) like probs (a block can pass its d-probs buffer); overwritten. */
MCNN_API size_t mcnn_attention_workspace_floats(int B, int T, int NH);
MCNN_API void mcnn_attention_forward(float *out, float *probs, const float *qkv, int B, int T,
                                     int C, int NH, int causal);
MCNN_API void mcnn_attention_backward(float *dqkv, const float *dout, const float *qkv,
                                      const float *probs, int B, int T, int C, int NH,
                                      int causal, float *workspace);
/* Ragged ("varlen"): S sequences of their own lengths, packed as rows without padding (the
 * batch of shots of different lengths).  starts (S + 1 ascending ints): sequence s is rows
 * starts[s] - starts[0] .. starts[s+1] - starts[0] - 1 of qkv (N, 3C), out (N, C) and dqkv,
 * N = starts[S] - starts[0]; it attends to its own rows only.  probs and workspace hold, sequence
 * after sequence, its NH (T_s, T_s) blocks: mcnn_attention_ragged_floats() floats.  The (B, T)
 * functions above are the case starts[s] = s·T, with the same results. */
MCNN_API size_t mcnn_attention_ragged_floats(int S, const int *starts, int NH);
MCNN_API void mcnn_attention_forward_ragged(float *out, float *probs, const float *qkv, int S,
                                            const int *starts, int C, int NH, int causal);
MCNN_API void mcnn_attention_backward_ragged(float *dqkv, const float *dout, const float *qkv,
                                             const float *probs, int S, const int *starts,
                                             int C, int NH, int causal, float *workspace);

/* ---- token and position embeddings -----------------------------------------------------
 * embedding: y (N, C) = table[ids[n]] for table (V, C) (torch.nn.Embedding). */
MCNN_API void mcnn_embedding_forward(float *y, const int32_t *ids, const float *table, int N,
                                     int C);
MCNN_API void mcnn_embedding_backward(float *dtable, const float *dy, const int32_t *ids, int N,
                                      int C);
/* y (B, T, C) = x (B, T, C) + pos (T, C), broadcast over the batch. */
MCNN_API void mcnn_add_positional_forward(float *y, const float *x, const float *pos, int B,
                                          int T, int C);
MCNN_API void mcnn_add_positional_backward(float *dx, float *dpos, const float *dy, int B,
                                           int T, int C);
/* y (B, 1+P, C): the class token cls (C) followed by the P tokens of x (B, P, C). */
MCNN_API void mcnn_class_token_forward(float *y, const float *x, const float *cls, int B, int P,
                                       int C);
MCNN_API void mcnn_class_token_backward(float *dx, float *dcls, const float *dy, int B, int P,
                                        int C);
/* Patch embedding is a conv with kernel = stride = PS, done as patchify + linear:
 * patches (B, GH·GW, IC·PS·PS) from img (B, IC, H, W), GH = H / PS, in the order PyTorch's conv
 * weight (OC, IC, PS, PS) flattens, so linear with that weight gives the conv's output
 * already as tokens (B, GH·GW, OC). */
MCNN_API void mcnn_patchify_forward(float *patches, const float *img, int B, int IC, int H,
                                    int W, int PS);
MCNN_API void mcnn_patchify_backward(float *dimg, const float *dpatches, int B, int IC, int H,
                                     int W, int PS);

/* ---- losses.  Each forward returns the mean loss; backward is given dloss (1 for the loss
 * itself, or a scale such as 1/accumulation steps) and accumulates into dlogits. ------------
 * Cross-entropy (torch.nn.functional.cross_entropy, mean over the batch, label smoothing ε:
 * target = (1-ε)·onehot + ε/C).  logits, probs (N, C); probs (softmax) saved for backward. */
MCNN_API float mcnn_cross_entropy_forward(float *probs, const float *logits,
                                          const int32_t *targets, int N, int C,
                                          float label_smoothing);
MCNN_API void mcnn_cross_entropy_backward(float *dlogits, const float *probs,
                                          const int32_t *targets, int N, int C,
                                          float label_smoothing, float dloss);
/* Binary cross-entropy with logits (torch.nn.BCEWithLogitsLoss, mean over all N·C elements):
 *   l = -[pw_c · y · log σ(x) + (1 - y) · log(1 - σ(x))],  pos_weight (C) or NULL (all 1). */
MCNN_API float mcnn_bce_logits_forward(const float *logits, const float *targets,
                                       const float *pos_weight, int N, int C);
MCNN_API void mcnn_bce_logits_backward(float *dlogits, const float *logits,
                                       const float *targets, const float *pos_weight, int N,
                                       int C, float dloss);

/* ---- recurrent ----------------------------------------------------------------------------
 * One LSTM layer (torch.nn.LSTM with batch_first=True, gates in torch's order i, f, g, o):
 * x (B, T, I); w_ih (4H, I), w_hh (4H, H); b_ih, b_hh (4H) or NULL; h0, c0 (B, H) or NULL (0);
 * lengths (B) or NULL (all T): a sequence stops after lengths[b] steps, its later outputs are 0
 * and its final state is the one after its last step (torch's pack_padded_sequence).
 * Out: y (B, T, H) the outputs h_t; h_n, c_n (B, H) the final state (either may be NULL);
 * gates (B, T, 4H) and cells (B, T, H) are saved for the backward.  Two layers: the first's y
 * is the second's x. */
MCNN_API void mcnn_lstm_forward(float *y, float *h_n, float *c_n, float *gates, float *cells,
                                const float *x, const float *h0, const float *c0,
                                const int32_t *lengths, const float *w_ih, const float *w_hh,
                                const float *b_ih, const float *b_hh, int B, int T, int I,
                                int H);
/* Backpropagation through time.  dy (B, T, H), dh_n, dc_n (B, H): the gradients reaching the
 * outputs and the final state (any may be NULL).  Accumulates (+=) into dx, dh0, dc0, dw_ih,
 * dw_hh, db_ih, db_hh (any may be NULL).  scratch: mcnn_lstm_backward_scratch(B, T, H) floats. */
MCNN_API size_t mcnn_lstm_backward_scratch(int B, int T, int H);
MCNN_API void mcnn_lstm_backward(float *dx, float *dh0, float *dc0, float *dw_ih, float *dw_hh,
                                 float *db_ih, float *db_hh, float *scratch, const float *dy,
                                 const float *dh_n, const float *dc_n, const float *x,
                                 const float *h0, const float *c0, const int32_t *lengths,
                                 const float *y, const float *gates, const float *cells,
                                 const float *w_ih, const float *w_hh, int B, int T, int I,
                                 int H);

/* ---- CLIP's head: L2-normalise, cosine similarity, logit scale -------------------------
 * y (N, C) = x / max(||x||, 1e-12) (torch.nn.functional.normalize; CLIP's x / x.norm() for any
 * non-zero row), norm (N) = ||x|| saved for backward. */
MCNN_API void mcnn_l2_normalize_forward(float *y, float *norm, const float *x, int N, int C);
MCNN_API void mcnn_l2_normalize_backward(float *dx, const float *dy, const float *y,
                                         const float *norm, int N, int C);
/* logits (NI, NT) = exp(logit_scale) · img (NI, C) · txtᵀ (NT, C), inputs already normalised. */
MCNN_API void mcnn_clip_logits_forward(float *logits, const float *img, const float *txt,
                                       float logit_scale, int NI, int NT, int C);
MCNN_API void mcnn_clip_logits_backward(float *dimg, float *dtxt, float *dlogit_scale,
                                        const float *dlogits, const float *logits,
                                        const float *img, const float *txt, float logit_scale,
                                        int NI, int NT, int C);
/* CLIP's symmetric contrastive loss on square logits (N, N), image i matching text i:
 *   loss = (CE(logits, arange(N)) + CE(logitsᵀ, arange(N))) / 2
 * probs_i (N, N): softmax of each row of logits (image -> texts);
 * probs_t (N, N): softmax of each row of logitsᵀ, i.e. probs_t[j·N + i] is text j's
 * probability of image i.  Both saved for backward, which accumulates dloss-scaled
 *   dlogits[i][j] += dloss · (probs_i[i][j] + probs_t[j][i] - 2·[i == j]) / (2N). */
MCNN_API float mcnn_clip_loss_forward(float *probs_i, float *probs_t, const float *logits,
                                      int N);
MCNN_API void mcnn_clip_loss_backward(float *dlogits, const float *probs_i, const float *probs_t,
                                      int N, float dloss);

#ifdef __cplusplus
}
#endif
#endif
