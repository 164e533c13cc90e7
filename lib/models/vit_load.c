/* Loading a ViT checkpoint: the configuration is read from the tensor shapes, the names may be
 * torchvision's (canonical here) or timm's, and a different image size or class count is
 * honoured by resampling the positional embedding or starting a new head. */
#include "internal.h"
#include "checkpoint.h"
#include "pos_embed.h"
#include "vit_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum vit_names { NAMES_TORCHVISION, NAMES_TORCHVISION_LEGACY_MLP, NAMES_TIMM } vit_names;

typedef struct load_ctx {
    vit_names names;
    int skip_pos, skip_head; /* loaded by hand: resampled, or replaced */
} load_ctx;

/* torchvision name -> timm name.  Returns 0 when the name has no timm counterpart. */
static int timm_name(const char *tv, char *buf, size_t size)
{
    static const struct { const char *tv, *timm; } whole[] = {
        {"conv_proj.weight", "patch_embed.proj.weight"},
        {"conv_proj.bias", "patch_embed.proj.bias"},
        {"class_token", "cls_token"},
        {"encoder.pos_embedding", "pos_embed"},
        {"encoder.ln.weight", "norm.weight"},
        {"encoder.ln.bias", "norm.bias"},
        {"heads.head.weight", "head.weight"},
        {"heads.head.bias", "head.bias"},
    };
    static const struct { const char *tv, *timm; } part[] = {
        {"ln_1.", "norm1."},
        {"ln_2.", "norm2."},
        {"self_attention.in_proj_weight", "attn.qkv.weight"},
        {"self_attention.in_proj_bias", "attn.qkv.bias"},
        {"self_attention.out_proj.", "attn.proj."},
        {"mlp.0.", "mlp.fc1."},
        {"mlp.3.", "mlp.fc2."},
    };
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        if (strcmp(tv, whole[i].tv) == 0) return snprintf(buf, size, "%s", whole[i].timm) > 0;
    int layer, consumed = 0;
    if (sscanf(tv, "encoder.layers.encoder_layer_%d.%n", &layer, &consumed) != 1 || !consumed)
        return 0;
    const char *rest = tv + consumed;
    for (size_t i = 0; i < sizeof part / sizeof part[0]; i++) {
        size_t n = strlen(part[i].tv);
        if (strncmp(rest, part[i].tv, n) == 0) {
            snprintf(buf, size, "blocks.%d.%s%s", layer, part[i].timm, rest + n);
            return 1;
        }
    }
    return 0;
}

static int map_key(const char *name, char *buf, size_t size, void *vctx)
{
    const load_ctx *ctx = vctx;
    if (ctx->skip_pos && strcmp(name, "encoder.pos_embedding") == 0) return 0;
    if (ctx->skip_head && strncmp(name, "heads.head.", 11) == 0) return 0;
    if (ctx->names == NAMES_TIMM) return timm_name(name, buf, size);
    snprintf(buf, size, "%s", name);
    if (ctx->names == NAMES_TORCHVISION_LEGACY_MLP) {
        /* checkpoints saved before torchvision 0.13 call the MLP layers linear_1/linear_2 */
        char *p = strstr(buf, ".mlp.0.");
        if (p) memmove(p + 14, p + 7, strlen(p + 7) + 1), memcpy(p, ".mlp.linear_1.", 14);
        p = strstr(buf, ".mlp.3.");
        if (p) memmove(p + 14, p + 7, strlen(p + 7) + 1), memcpy(p, ".mlp.linear_2.", 14);
    }
    return 1;
}

static const mcnn_st_tensor *find_mapped(mcnn_safetensors *st, const load_ctx *ctx,
                                         const char *name)
{
    char key[160];
    load_ctx plain = *ctx;
    plain.skip_pos = plain.skip_head = 0;
    if (!map_key(name, key, sizeof key, &plain)) return NULL;
    return mcnn_safetensors_find(st, key);
}

/* Read the configuration off the checkpoint's shapes. */
static mcnn_status read_config(mcnn_vit_config *c, mcnn_safetensors *st, const load_ctx *ctx,
                               const mcnn_vit_load_options *opt)
{
    const char *path = mcnn_safetensors_path(st);
    const mcnn_st_tensor *patch = find_mapped(st, ctx, "conv_proj.weight");
    const mcnn_st_tensor *pos = find_mapped(st, ctx, "encoder.pos_embedding");
    const mcnn_st_tensor *fc1 = find_mapped(st, ctx, "encoder.layers.encoder_layer_0.mlp.0.weight");
    const mcnn_st_tensor *head = find_mapped(st, ctx, "heads.head.weight");
    if (!pos || !fc1)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: not a ViT checkpoint (%s missing)", path,
                              pos ? "the first block's MLP" : "the positional embedding");
    if (patch->ndim != 4 || patch->shape[2] != patch->shape[3])
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: patch embedding is not (C, IC, P, P)", path);
    memset(c, 0, sizeof *c);
    c->width = (int)patch->shape[0];
    c->in_channels = (int)patch->shape[1];
    c->patch_size = (int)patch->shape[2];
    c->mlp_dim = (int)fc1->shape[0];
    c->ln_eps = 1e-6f;
    if (pos->ndim != 3 || pos->shape[2] != c->width)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: positional embedding is not (1, T, %d)", path,
                              c->width);
    int grid = 0;
    while ((int64_t)(grid + 1) * (grid + 1) <= pos->shape[1] - 1) grid++;
    if ((int64_t)grid * grid != pos->shape[1] - 1)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: %lld positions are not 1 + a square grid",
                              path, (long long)pos->shape[1]);
    c->image_size = grid * c->patch_size;
    c->layers = mcnn_checkpoint_count_layers(st, ctx->names == NAMES_TIMM
                                                     ? "blocks." : "encoder.layers.encoder_layer_");
    if (c->layers == 0) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: no transformer blocks", path);
    c->num_classes = head && head->ndim == 2 ? (int)head->shape[0] : 0;
    const char *meta_heads = mcnn_safetensors_meta(st, "heads");
    c->heads = meta_heads ? atoi(meta_heads) : opt->heads ? opt->heads
               : c->width % 64 == 0 ? c->width / 64 : 0;
    if (c->heads <= 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: cannot tell the head count of width %d; "
                                               "pass it in the load options", path, c->width);
    return MCNN_OK;
}

mcnn_status mcnn_vit_load(mcnn_vit **out, const char *path, const mcnn_vit_load_options *opt)
{
    static const mcnn_vit_load_options none = {0};
    if (!opt) opt = &none;
    *out = NULL;
    mcnn_safetensors *st;
    MCNN_TRY(mcnn_safetensors_open(&st, path));
    load_ctx ctx = {.names = NAMES_TORCHVISION};
    if (mcnn_safetensors_find(st, "patch_embed.proj.weight")) ctx.names = NAMES_TIMM;
    else if (mcnn_safetensors_find(st, "encoder.layers.encoder_layer_0.mlp.linear_1.weight"))
        ctx.names = NAMES_TORCHVISION_LEGACY_MLP;
    else if (!mcnn_safetensors_find(st, "conv_proj.weight")) {
        mcnn_safetensors_close(st);
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: not a ViT checkpoint (neither torchvision's "
                              "'conv_proj.weight' nor timm's 'patch_embed.proj.weight')", path);
    }
    mcnn_vit_config file_cfg = {0}, cfg;
    mcnn_status s = read_config(&file_cfg, st, &ctx, opt);
    cfg = file_cfg;
    if (opt->image_size) cfg.image_size = opt->image_size;
    if (opt->num_classes) cfg.num_classes = opt->num_classes;
    if (s == MCNN_OK && cfg.num_classes <= 0)
        s = mcnn_set_error(MCNN_ERR_FORMAT, "%s: no classifier head; give the number of classes",
                           path);
    ctx.skip_pos = cfg.image_size != file_cfg.image_size;
    ctx.skip_head = cfg.num_classes != file_cfg.num_classes;

    mcnn_vit *m = NULL;
    unsigned char *used = calloc((size_t)mcnn_safetensors_count(st) + 1, 1);
    float *pos = NULL;
    if (s == MCNN_OK && !used) s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    if (s == MCNN_OK) s = mcnn_vit_create(&m, &cfg, 0); /* random head if it is replaced */
    if (s == MCNN_OK) s = mcnn_params_load(&m->params, st, map_key, &ctx, used);
    if (s == MCNN_OK && ctx.skip_pos) {
        /* Keep the class position, resample the grid positions to the new size. */
        const mcnn_st_tensor *t = find_mapped(st, &ctx, "encoder.pos_embedding");
        const int G0 = file_cfg.image_size / cfg.patch_size, G = cfg.image_size / cfg.patch_size;
        if (cfg.image_size % cfg.patch_size)
            s = mcnn_set_error(MCNN_ERR_ARG, "%s: image size %d is not a multiple of patch %d",
                               path, cfg.image_size, cfg.patch_size);
        else if (!(pos = malloc(t->numel * sizeof(float))))
            s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
        else if ((s = mcnn_safetensors_read_f32(st, t, pos)) == MCNN_OK) {
            memcpy(m->w.pos, pos, (size_t)cfg.width * sizeof(float));
            mcnn_pos_embed_resize(m->w.pos + cfg.width, G, G, pos + cfg.width, G0, G0, cfg.width);
            used[t - mcnn_safetensors_at(st, 0)] = 1;
        }
    }
    if (s == MCNN_OK && ctx.skip_head) {
        for (int i = 0; i < 2; i++) { /* the old head is knowingly dropped */
            const mcnn_st_tensor *t =
                find_mapped(st, &ctx, i ? "heads.head.bias" : "heads.head.weight");
            if (t) used[t - mcnn_safetensors_at(st, 0)] = 1;
        }
        memset(m->w.head_b, 0, (size_t)cfg.num_classes * sizeof(float));
    }
    if (s == MCNN_OK) s = mcnn_params_check_unused(st, used, mcnn_checkpoint_is_training_state);
    free(pos);
    free(used);
    mcnn_safetensors_close(st);
    if (s != MCNN_OK) {
        mcnn_vit_free(m);
        return s;
    }
    *out = m;
    return MCNN_OK;
}
