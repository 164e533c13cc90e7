/* Loading a ResNet checkpoint: the configuration is read from the tensor shapes (torchvision and
 * timm share the names), every tensor of the model must be there with its shape, nothing else
 * may be (num_batches_tracked aside), and a different class count starts a new fc. */
#include "internal.h"
#include "checkpoint.h"
#include "resnet_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct load_ctx {
    int skip_fc; /* replaced by a new head */
} load_ctx;

static int map_key(const char *name, char *buf, size_t size, void *vctx)
{
    const load_ctx *ctx = vctx;
    if (ctx->skip_fc && strncmp(name, "fc.", 3) == 0) return 0;
    snprintf(buf, size, "%s", name);
    return 1;
}

/* Read the configuration off the checkpoint's shapes. */
static mcnn_status read_config(mcnn_resnet_config *c, mcnn_safetensors *st)
{
    const char *path = mcnn_safetensors_path(st);
    const mcnn_st_tensor *t;
    memset(c, 0, sizeof *c);
    c->bn_eps = 1e-5f, c->bn_momentum = 0.1f;
    if (!mcnn_safetensors_find(st, "conv1.weight")) {
        if (mcnn_safetensors_find(st, "conv1.0.weight"))
            return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: a deep 3-conv stem ('conv1.0.weight', "
                                  "timm's ResNet-C/D) is not supported", path);
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: not a ResNet checkpoint ('conv1.weight' "
                              "missing)", path);
    }
    MCNN_TRY(mcnn_checkpoint_need(&t, st, "conv1.weight", 4));
    c->stem_width = (int)t->shape[0];
    c->in_channels = (int)t->shape[1];
    if (t->shape[2] == 7 && t->shape[3] == 7) c->stem = MCNN_RESNET_STEM_IMAGENET;
    else if (t->shape[2] == 3 && t->shape[3] == 3) c->stem = MCNN_RESNET_STEM_SMALL;
    else
        return mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: 'conv1.weight' is a %lldx%lld kernel; "
                              "the stems are 7x7 (ImageNet) and 3x3 (small images)", path,
                              (long long)t->shape[2], (long long)t->shape[3]);
    MCNN_TRY(mcnn_checkpoint_count(&c->stages, st, "layer", 1, MCNN_RESNET_MAX_STAGES, "stage"));
    if (c->stages == 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: no residual stages ('layer1.0.conv1.weight' "
                              "missing)", path);
    c->block = mcnn_safetensors_find(st, "layer1.0.conv3.weight") ? MCNN_RESNET_BOTTLENECK
                                                                   : MCNN_RESNET_BASIC;
    for (int s = 0; s < c->stages; s++) {
        char name[64];
        snprintf(name, sizeof name, "layer%d.", s + 1);
        MCNN_TRY(mcnn_checkpoint_count(&c->blocks[s], st, name, 0, MCNN_RESNET_MAX_BLOCKS,
                                       "block"));
        snprintf(name, sizeof name, "layer%d.0.conv1.weight", s + 1);
        MCNN_TRY(mcnn_checkpoint_need(&t, st, name, 4));
        c->widths[s] = (int)t->shape[0];
    }
    if (mcnn_safetensors_find(st, "fc.weight")) { /* none: the caller gives the classes */
        MCNN_TRY(mcnn_checkpoint_need(&t, st, "fc.weight", 2));
        c->num_classes = (int)t->shape[0];
    }
    return MCNN_OK;
}

/* Every tensor of both tables is in the file with its shape, before allocating them. */
static mcnn_status check_file(mcnn_resnet *m, mcnn_safetensors *st, load_ctx *ctx)
{
    MCNN_TRY(mcnn_params_check_file(&m->params, st, map_key, ctx));
    return mcnn_params_check_file(&m->buffers, st, NULL, NULL);
}

/* Mark "<bn>.num_batches_tracked" used for every BN of the model, and take its value (any
 * integer dtype; it is informational, so an unreadable one is simply skipped). */
static void take_num_batches(mcnn_resnet *m, mcnn_safetensors *st, unsigned char *used)
{
    for (int i = 0; i < m->buffers.count; i += 2) { /* pairs: <bn>.running_mean, running_var */
        const char *mean = m->buffers.table[i].name;
        char name[160];
        snprintf(name, sizeof name, "%.*snum_batches_tracked",
                 (int)(strlen(mean) - strlen("running_mean")), mean);
        const mcnn_st_tensor *t = mcnn_safetensors_find(st, name);
        if (!t) continue;
        used[t - mcnn_safetensors_at(st, 0)] = 1;
        int32_t v;
        if (i == 0 && t->numel == 1 && mcnn_safetensors_read_i32(st, t, &v) == MCNN_OK && v >= 0)
            m->num_batches_tracked = v;
    }
    mcnn_clear_error();
}

mcnn_status mcnn_resnet_load(mcnn_resnet **out, const char *path,
                             const mcnn_resnet_load_options *opt)
{
    static const mcnn_resnet_load_options none = {0};
    if (!opt) opt = &none;
    *out = NULL;
    mcnn_safetensors *st;
    MCNN_TRY(mcnn_safetensors_open(&st, path));
    mcnn_resnet_config file_cfg, cfg;
    mcnn_status s = read_config(&file_cfg, st);
    cfg = file_cfg;
    if (opt->num_classes) cfg.num_classes = opt->num_classes;
    if (s == MCNN_OK && cfg.num_classes <= 0)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: no classifier ('fc.weight'); give the number of "
                           "classes", path);
    load_ctx ctx = {.skip_fc = cfg.num_classes != file_cfg.num_classes};

    mcnn_resnet *m = NULL;
    unsigned char *used = calloc((size_t)mcnn_safetensors_count(st) + 1, 1);
    if (s == MCNN_OK && !used) s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    if (s == MCNN_OK && (s = mcnn_resnet_plan(&m, &cfg)) != MCNN_OK)
        s = mcnn_wrap_error(s, "%s: ", path);
    if (s == MCNN_OK) s = check_file(m, st, &ctx);
    if (s == MCNN_OK) s = mcnn_check_load_precision(path, opt->precision);
    if (s == MCNN_OK) s = mcnn_resnet_alloc(m);
    if (s == MCNN_OK && opt->inference_only)
        s = mcnn_resnet_plan_inference_only(m, opt->precision);
    if (s == MCNN_OK)
        s = mcnn_params_load_then(&m->params, st, map_key, &ctx, used,
                                  opt->inference_only ? &m->packing : NULL);
    if (s == MCNN_OK) s = mcnn_params_load(&m->buffers, st, NULL, NULL, used);
    if (s == MCNN_OK && ctx.skip_fc) {
        for (int i = 0; i < 2; i++) { /* the old head is knowingly dropped */
            const mcnn_st_tensor *t = mcnn_safetensors_find(st, i ? "fc.bias" : "fc.weight");
            if (t) used[t - mcnn_safetensors_at(st, 0)] = 1;
        }
        mcnn_rng r;
        mcnn_rng_seed(&r, opt->seed);
        mcnn_resnet_init_fc(m, &r);
        /* inference only: the new fc is packed (and its fp32 copy released) as if read */
        if (opt->inference_only) s = mcnn_pack_list_loaded(&m->packing, m->w.fc_w);
    }
    if (s == MCNN_OK) take_num_batches(m, st, used);
    if (s == MCNN_OK) s = mcnn_params_check_unused(st, used, mcnn_checkpoint_is_training_state);
    if (s == MCNN_OK) s = mcnn_finish_load_precision(path, &m->packing, opt->inference_only);
    if (s == MCNN_OK && !opt->inference_only && opt->precision != MCNN_PRECISION_FP32)
        s = mcnn_resnet_set_precision(m, opt->precision);
    free(used);
    mcnn_safetensors_close(st);
    if (s != MCNN_OK) {
        mcnn_resnet_free(m);
        return s;
    }
    *out = m;
    return MCNN_OK;
}
