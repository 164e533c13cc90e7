/* ResNet (He et al., 2015) as torchvision's ResNet, v1.5: the stride of a bottleneck sits on its
 * 3×3 conv, and a projection shortcut is downsample.0 (1×1 conv, stride) + downsample.1 (BN).
 *   stem:   conv1 7×7/2 -> bn1 -> relu -> maxpool 3×3/2        (ImageNet)
 *      or   conv1 3×3/1 -> bn1 -> relu                         (small images: CIFAR, MNIST)
 *   stages: layer1..layerS, each blocks[s] residual blocks; stage s > 0 halves the size
 *   head:   global average pool -> fc
 * Batch norm everywhere has eps 1e-5 and momentum 0.1.  The global average pool makes the head
 * independent of the input size, so any H × W works, square or not (the ImageNet stem and four
 * stages divide it by 32: 224 -> 7, 32 -> 1).  Training needs more than one value per channel in
 * every batch norm, i.e. N · h · w > 1 at the last stage, as PyTorch does.
 *
 * Checkpoints use torchvision's names, which timm's resnet18/34/50/101/152 share: conv1, bn1,
 * layerS.N.{conv1,bn1,conv2,bn2[,conv3,bn3][,downsample.0,downsample.1]}, fc.  BN running
 * statistics are buffers: they sit in a second table (mcnn_resnet_buffers) that the optimizer
 * never sees, and are saved with the parameters.  PyTorch's num_batches_tracked is kept as one
 * count for the model: read on load from the first BN's (any integer dtype; a missing or
 * unreadable one counts as 0), increased by every MCNN_RESNET_TRAIN forward, and written on
 * save for every BN, so PyTorch loads our files strictly.  It changes nothing in the maths
 * (momentum is fixed, never 1 / count).  Stage and block indices must run without gaps (at most
 * 8 stages of 1000 blocks), and every tensor is checked against the file before allocating. */
#ifndef MCNN_RESNET_H
#define MCNN_RESNET_H

#include "core.h"
#include "lowp.h"
#include "params.h"
#include "session.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mcnn_resnet_block {
    MCNN_RESNET_BOTTLENECK, /* 1×1 -> 3×3 (stride) -> 1×1, output 4 × width: ResNet-50/101/152 */
    MCNN_RESNET_BASIC       /* 3×3 (stride) -> 3×3, output = width: ResNet-18/34              */
} mcnn_resnet_block;

typedef enum mcnn_resnet_stem {
    MCNN_RESNET_STEM_IMAGENET, /* conv 7×7 stride 2 pad 3, BN, ReLU, max pool 3×3 stride 2 pad 1 */
    MCNN_RESNET_STEM_SMALL     /* conv 3×3 stride 1 pad 1, BN, ReLU: no downsampling          */
} mcnn_resnet_stem;

#define MCNN_RESNET_MAX_STAGES 8

typedef struct mcnn_resnet_config {
    mcnn_resnet_block block;
    mcnn_resnet_stem stem;
    int in_channels;                         /* 3 (RGB), 1 (grayscale)                      */
    int stem_width;                          /* conv1's output channels: 64                 */
    int stages;                              /* 4 for the ImageNet models                   */
    int blocks[MCNN_RESNET_MAX_STAGES];      /* per stage: ResNet-50 3, 4, 6, 3             */
    int widths[MCNN_RESNET_MAX_STAGES];      /* per stage, torchvision's "planes": 64..512;
                                                a bottleneck stage outputs 4 × width        */
    int num_classes;
    float bn_eps, bn_momentum;               /* 1e-5, 0.1                                   */
    int zero_init_residual;                  /* create: last BN gain of each block = 0      */
} mcnn_resnet_config;

/* torchvision's resnet18, 34, 50, 101 and 152 (depth), for num_classes classes; any other depth
 * gives a config with stages = 0, which create refuses. */
MCNN_API mcnn_resnet_config mcnn_resnet_config_standard(int depth, int num_classes);

typedef struct mcnn_resnet mcnn_resnet;

/* A new model with torchvision's initialisation (seeded): convs kaiming-normal (fan_out, ReLU
 * gain), BN gains 1 and biases 0, running mean 0 and variance 1, fc as nn.Linear's default
 * U(±1/sqrt(fan_in)) for weight and bias. */
MCNN_API mcnn_status mcnn_resnet_create(mcnn_resnet **out, const mcnn_resnet_config *cfg,
                                        uint64_t seed);

/* Options for loading; zero means "as in the checkpoint". */
typedef struct mcnn_resnet_load_options {
    int num_classes; /* a new fc of this size (fine-tuning), initialised as in create */
    uint64_t seed;   /* for that new fc                                               */
    /* Inference precision (mcnn_resnet_set_precision).  With inference_only = 1 every
     * residual block's conv and the fc are packed in `precision` (FP32 too) as soon as they
     * are read (a new fc, num_classes above: once initialised) and their fp32 copies are
     * never kept (as mcnn_resnet_release_training_weights), so neither the model nor the
     * load's peak ever holds all of them in fp32.  Without inference_only, BF16 or INT8 packs
     * after the load as mcnn_resnet_set_precision does (FP32, 0: the default). */
    mcnn_precision precision;
    int inference_only;
} mcnn_resnet_load_options;

/* The configuration is read off the shapes (block type, stages, blocks, widths, classes, input
 * channels; the stem from conv1's kernel, 7×7 or 3×3).  A missing, extra or wrongly shaped
 * tensor fails with a message naming the file and the tensor. */
MCNN_API mcnn_status mcnn_resnet_load(mcnn_resnet **out, const char *path,
                                      const mcnn_resnet_load_options *opt);
/* Save parameters and buffers with torchvision names, the config in the metadata. */
MCNN_API mcnn_status mcnn_resnet_save(const mcnn_resnet *m, const char *path);
MCNN_API void mcnn_resnet_free(mcnn_resnet *m);

MCNN_API const mcnn_resnet_config *mcnn_resnet_get_config(const mcnn_resnet *m);
/* The trained parameters (with gradients); weight decay is set on conv and fc weights only. */
MCNN_API mcnn_params *mcnn_resnet_params(mcnn_resnet *m);
/* The BN running statistics (no gradients): <bn>.running_mean, <bn>.running_var. */
MCNN_API mcnn_params *mcnn_resnet_buffers(mcnn_resnet *m);
/* Channels of the pooled feature the fc reads: widths[last] (× 4 for bottlenecks). */
MCNN_API int mcnn_resnet_feature_dim(const mcnn_resnet *m);

/* Inference precision (docs/precision.md): every residual block's convolutions (1×1, 3×3 and
 * the projection shortcuts) and the fc head's weight are packed once, by this call, into the
 * read-only model, and every EVAL forward and session uses them: FP32 packed gives the same
 * bits as the default, BF16 and INT8 approximate it.  The stem conv, batch norm, ReLU,
 * pooling, residual adds and the fc's bias stay fp32.  TRAIN and FROZEN_BN forwards (and so
 * mcnn_resnet_backward_head's gradients) ignore the packed copy.  Call it before the
 * first forward (not while sessions run) and again after the weights change (training,
 * loading): it packs the weights as they are now.  Until then the model runs fp32 unpacked
 * (the default; mcnn_resnet_precision reports FP32). */
MCNN_API mcnn_status mcnn_resnet_set_precision(mcnn_resnet *m, mcnn_precision p);
MCNN_API mcnn_precision mcnn_resnet_precision(const mcnn_resnet *m);
/* Inference only, after mcnn_resnet_set_precision: the fp32 copies of the packed convs and fc
 * are released (their memory goes back to the OS), so a BF16 model holds half and an INT8
 * model a quarter of their bytes; the stem, batch norm and the fc's bias stay fp32.  From then
 * on the model runs EVAL forwards only: a TRAIN or FROZEN_BN forward, a backward, save, or
 * set_precision to another precision fail with MCNN_ERR_ARG (the outputs are unchanged, bit
 * for bit).  The
 * released rows of mcnn_resnet_params(m)->data no longer hold the weights.  MCNN_ERR_ARG
 * before any set_precision.  The load option inference_only does the same while loading. */
MCNN_API mcnn_status mcnn_resnet_release_training_weights(mcnn_resnet *m);

typedef enum mcnn_resnet_mode {
    MCNN_RESNET_EVAL = 0,      /* running statistics; nothing kept, no backward          */
    MCNN_RESNET_TRAIN = 1,     /* batch statistics, running statistics updated, every
                                  activation kept for mcnn_resnet_backward               */
    MCNN_RESNET_FROZEN_BN = 2  /* running statistics, not updated (BN as a fixed affine
                                  map), activations kept: fine-tuning with frozen BN     */
} mcnn_resnet_mode;

/* Threads: an EVAL forward only reads the model; TRAIN also updates its running statistics.
 * For several threads on one model, give each its own session (below, mcnn/session.h).  The
 * calls below that take the model itself use the model's own session: one thread at a time,
 * and not while sessions of the model run if the call trains.
 *
 * logits (N, num_classes) from images (N, in_channels, H, W), normalised.  All activation
 * memory is one arena planned for (N, H, W, kept or not) on the first call and re-planned only
 * when one of them changes; nothing is allocated per call otherwise. */
MCNN_API mcnn_status mcnn_resnet_forward(mcnn_resnet *m, float *logits, const float *images,
                                         int N, int H, int W, mcnn_resnet_mode mode);
/* Accumulates into the parameter gradients (mcnn_resnet_params(m)->grad) from dlogits
 * (N, num_classes), for the last forward (mode TRAIN or FROZEN_BN; its mode decides how the
 * gradient goes through batch norm). */
MCNN_API mcnn_status mcnn_resnet_backward(mcnn_resnet *m, const float *dlogits);
/* The same for the fc alone (a linear probe): valid after a forward in any mode. */
MCNN_API mcnn_status mcnn_resnet_backward_head(mcnn_resnet *m, const float *dlogits);

/* The pooled features (N, feature_dim) of the last forward: what the fc reads.  Owned by the
 * model; valid until its next forward or mcnn_resnet_free (NULL before the first forward). */
MCNN_API const float *mcnn_resnet_features(const mcnn_resnet *m);
/* The output of stage s (0-based) of the last forward in mode TRAIN or FROZEN_BN (NULL
 * otherwise); s = -1 gives the stem's output.  Shape written to *C, *H, *W when not NULL.
 * Same lifetime as mcnn_resnet_features. */
MCNN_API const float *mcnn_resnet_stage_output(const mcnn_resnet *m, int s, int *C, int *H,
                                               int *W);
/* Bytes of the activation arena currently planned (0 before the first forward). */
MCNN_API size_t mcnn_resnet_activation_bytes(const mcnn_resnet *m);

/* ---- sessions: one per thread on a shared model (inference, mode EVAL) -------------------
 * A session for m: its own activations, nothing allocated until the first forward.  m must
 * outlive it and not change while it runs. */
MCNN_API mcnn_status mcnn_resnet_session_create(mcnn_session **out, const mcnn_resnet *m);
/* mcnn_resnet_forward in mode EVAL, into the session: the same bits. */
MCNN_API mcnn_status mcnn_resnet_session_forward(mcnn_session *s, float *logits,
                                                 const float *images, int N, int H, int W);
/* The pooled features (N, feature_dim) of the session's last forward; owned by the session,
 * valid until its next forward or mcnn_session_free.  NULL before the first forward or for a
 * session of another model type. */
MCNN_API const float *mcnn_resnet_session_features(const mcnn_session *s);

#ifdef __cplusplus
}
#endif
#endif
