/* The ResNet's private layout: parameter views and the planned activations. */
#ifndef MCNN_RESNET_INTERNAL_H
#define MCNN_RESNET_INTERNAL_H

#include "mcnn.h"
#include "mcnn/resnet.h"
#include "../nn/bottleneck_block.h"
#include "../nn/pack_list.h"

/* Pointers to every parameter by role.  Built twice from the table: once over the values,
 * once over the gradients. */
typedef struct resnet_tensors {
    float *conv1_w;             /* (stem_width, in_channels, 7, 7) or (.., 3, 3)  */
    bn_affine bn1;              /* (stem_width)                                    */
    resblock_params *blocks;    /* one per block, stage after stage                */
    float *fc_w, *fc_b;         /* (K, F), (K)                                     */
} resnet_tensors;

/* The inference copy of the weights packed once (mcnn_resnet_set_precision): the blocks with
 * their convs packed, and the fc.  Its fp32 views are what an inference-only model releases
 * (set to NULL), so that training's own views (w) are never touched. */
typedef struct resnet_packed {
    resblock_params *blocks;    /* nblocks: w.blocks, their *_pk slots filled           */
    float *fc_w;                /* w.fc_w, the fc's fp32 values: NULL once released      */
    mcnn_packed_b *fc;          /* the fc (K, F) packed                                  */
} resnet_packed;

/* Pointers to the BN running statistics (the buffers table). */
typedef struct resnet_stats {
    bn_running bn1;
    resblock_stats *blocks;
} resnet_stats;

/* Where each block sits and its shape-independent sizes. */
typedef struct resnet_block_info {
    int stage, index;           /* layer{stage+1}.{index}                         */
    int IC, width, stride;
} resnet_block_info;

/* What steps 1..6 of the forward need for a share of the batch: its own im2col workspace and
 * activations.  A training plan has one lane over the whole batch that keeps every block's
 * activations; an eval plan has one lane per thread, each over its share of the images, with a
 * reused block scratch and two ping-pong block outputs. */
typedef struct resnet_lane {
    int N;                      /* images the lane is sized for                    */
    float *workspace;           /* im2col columns: the max over every conv         */
    float *c0, *a0;             /* (N, stem_width, H1, W1) conv1 out, relu(bn1)    */
    bn_saved s0;                /* (stem_width)                                    */
    float *p0;                  /* (N, stem_width, H0, W0) max pool (ImageNet stem) */
    int32_t *argmax;            /* (N, stem_width, H0, W0), keep only              */
    resblock_acts *blocks;      /* one per block when keep, else one reused (max sizes) */
    float **out;                /* block outputs: one per block when keep, else 2  */
} resnet_lane;

/* Activations for one (N, H, W, keep): carved from one arena. */
typedef struct resnet_acts {
    int N, H, W, keep;          /* the plan: keep = every block's activations kept */
    int nlanes;                 /* 1 when keep; eval: threads, if N >= threads     */
    int conv_lanes;             /* keep: threads splitting each conv's batch       */
    int ran;                    /* a forward ran in this plan                      */
    mcnn_resnet_mode mode;      /* of the last forward                             */
    mcnn_arena arena;
    resblock_cfg *cfgs;         /* per block, at this input shape (all N images)   */
    mcnn_conv2d_shape stem_conv;
    mcnn_pool2d_shape pool;     /* ImageNet stem only                              */
    int H1, W1;                 /* the stem conv's output size                     */
    int H0, W0;                 /* the stem's output size: block 0's input         */
    float *images;              /* (N, IC, H, W) a copy, for conv1's weight gradient (keep) */
    resnet_lane *lanes;         /* nlanes                                          */
    float *feat;                /* (N, F) global average pool                      */
    /* backward scratch (keep only) */
    resblock_acts dblock;       /* max sizes over the blocks                       */
    float *dx_a, *dx_b;         /* ping-pong: max over block outputs and the stem  */
    float *dfeat;               /* (N, F)                                          */
} resnet_acts;

struct mcnn_resnet {
    mcnn_resnet_config cfg;
    int nblocks;
    int features;               /* F: the last stage's output channels            */
    resnet_block_info *info;    /* nblocks                                         */
    mcnn_params params;         /* with gradients                                  */
    mcnn_params buffers;        /* running statistics, no gradients               */
    resnet_tensors w, g;
    mcnn_precision precision;   /* of the packed weights (mcnn_resnet_set_precision) */
    resnet_packed *packed;      /* the convs and the fc packed, or NULL (fp32)       */
    mcnn_pack_list packing;     /* those matrices: packed's fp32 views and slots     */
    int inference_only;         /* their fp32 copies released (packed's views NULL)  */
    resnet_stats st;
    int64_t num_batches_tracked; /* written on save for PyTorch; counts TRAIN forwards */
    resnet_acts acts;
};

/* Check cfg, build both tables, allocate and bind (no initialisation: all zero). */
mcnn_status mcnn_resnet_new(mcnn_resnet **out, const mcnn_resnet_config *cfg);
#define MCNN_RESNET_MAX_BLOCKS 1000 /* per stage */
/* The two halves of mcnn_resnet_new: check cfg and build both tables (nothing sized by the
 * model yet, so a loader can check the tables against its file first), then allocate and bind. */
mcnn_status mcnn_resnet_plan(mcnn_resnet **out, const mcnn_resnet_config *cfg);
mcnn_status mcnn_resnet_alloc(mcnn_resnet *m);
/* Release the packed weights (resnet_precision.c). */
void mcnn_resnet_packed_free(mcnn_resnet *m);
/* Before an inference-only load: the blocks' convs and the fc planned for packing in p as the
 * load reads them (into &m->packing), their fp32 copies released then.  A new fc (not read:
 * mcnn_resnet_init_fc) is packed by mcnn_pack_list_loaded(&m->packing, m->w.fc_w). */
mcnn_status mcnn_resnet_plan_inference_only(mcnn_resnet *m, mcnn_precision p);
/* Release the planned activations (resnet_run.c). */
void mcnn_resnet_acts_free(resnet_acts *a);
/* The forward into the activations a (resnet_run.c).  In mode TRAIN it updates the model's
 * running statistics (num_batches_tracked is the caller's); otherwise it only reads the model. */
mcnn_status mcnn_resnet_run_forward(const mcnn_resnet *m, resnet_acts *a, float *logits,
                                    const float *images, int N, int H, int W,
                                    mcnn_resnet_mode mode);
/* torchvision's initialisation (used by create and for a new fc). */
void mcnn_resnet_init_fc(mcnn_resnet *m, mcnn_rng *r);
/* The config as JSON, for a checkpoint's metadata: enough to rebuild the model without its
 * shapes (written by mcnn_resnet_save and by mcnn-train's classifier checkpoints). */
void mcnn_resnet_config_json(char *buf, size_t size, const mcnn_resnet_config *c);

#endif
