/* Loading a ViT checkpoint: the configuration is read from the tensor shapes, the names may be
 * torchvision's (canonical here) or timm's, and a different image size or class count is
 * honoured by resampling the positional embedding or starting a new head. */
#include "internal.h"
#include "checkpoint.h"
#include "pos_embed.h"
#include "vit_internal.h"
#include "io/json.h"

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

/* A tensor the configuration is read from, by its torchvision name (mapped to the file's). */
static mcnn_status need(const mcnn_st_tensor **t, mcnn_safetensors *st, const load_ctx *ctx,
                        const char *name, int ndim)
{
    char key[160];
    load_ctx plain = *ctx;
    plain.skip_pos = plain.skip_head = 0;
    if (!map_key(name, key, sizeof key, &plain)) snprintf(key, sizeof key, "%s", name);
    return mcnn_checkpoint_need(t, st, key, ndim);
}

/* A head count from the metadata: "heads" (what we write), "num_heads" (torchvision's
 * VisionTransformer argument), or either inside the "config" JSON.  0 when none is there;
 * -1 (error set) when one is there but is no positive integer dividing width. */
static int heads_from_meta(mcnn_safetensors *st, int width)
{
    static const char *const keys[] = {"heads", "num_heads"};
    const char *path = mcnn_safetensors_path(st);
    for (int k = 0; k < 2; k++) {
        const char *v = mcnn_safetensors_meta(st, keys[k]);
        if (!v) continue;
        char *end;
        long h = strtol(v, &end, 10);
        if (end == v || *end || h <= 0 || h > width || width % h) {
            mcnn_set_error(MCNN_ERR_FORMAT, "%s: metadata \"%s\" is '%.40s', not a head count "
                           "dividing the width %d", path, keys[k], v, width);
            return -1;
        }
        return (int)h;
    }
    const char *config = mcnn_safetensors_meta(st, "config");
    mcnn_json_doc doc;
    int heads = 0;
    if (config && mcnn_json_parse(&doc, config, strlen(config)) == MCNN_OK) {
        for (int k = 0; k < 2 && !heads; k++) {
            const mcnn_json *h = mcnn_json_get(doc.root, keys[k]);
            if (!h) continue;
            if (h->type != MCNN_JSON_NUMBER || !h->is_int || h->i <= 0 || h->i > width ||
                width % h->i) {
                mcnn_set_error(MCNN_ERR_FORMAT, "%s: metadata \"config\" has \"%s\" that is "
                               "not a head count dividing the width %d", path, keys[k], width);
                heads = -1;
            } else {
                heads = (int)h->i;
            }
        }
        mcnn_json_free(&doc);
    }
    if (heads == 0) mcnn_clear_error(); /* a config that is no JSON says nothing about heads */
    return heads;
}

/* Heads cannot be read from shapes.  In order: the caller's option, the metadata, and the
 * guess width / 64 (true of ViT-Ti/S/B/L/H). */
static mcnn_status read_heads(int *heads, mcnn_safetensors *st, int width, int option)
{
    if (option > 0) return *heads = option, MCNN_OK;
    *heads = heads_from_meta(st, width);
    if (*heads < 0) return MCNN_ERR_FORMAT;
    if (*heads == 0 && width % 64 == 0) *heads = width / 64;
    if (*heads == 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: cannot tell the head count: the metadata "
                              "has no \"heads\" or \"num_heads\", and width %d is not a "
                              "multiple of 64 (the guess width / 64); pass "
                              "mcnn_vit_load_options.heads", mcnn_safetensors_path(st), width);
    return MCNN_OK;
}

/* Read the configuration off the checkpoint's shapes.  Every size is bounded here and checked
 * against the file (mcnn_params_check_file) before the model is allocated. */
static mcnn_status read_config(mcnn_vit_config *c, mcnn_safetensors *st, const load_ctx *ctx,
                               const mcnn_vit_load_options *opt)
{
    const char *path = mcnn_safetensors_path(st);
    const mcnn_st_tensor *patch, *pos, *fc1, *head = find_mapped(st, ctx, "heads.head.weight");
    if (!find_mapped(st, ctx, "encoder.pos_embedding") ||
        !find_mapped(st, ctx, "encoder.layers.encoder_layer_0.mlp.0.weight"))
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: not a ViT checkpoint (%s missing)", path,
                              find_mapped(st, ctx, "encoder.pos_embedding")
                                  ? "the first block's MLP" : "the positional embedding");
    MCNN_TRY(need(&patch, st, ctx, "conv_proj.weight", 4));
    MCNN_TRY(need(&pos, st, ctx, "encoder.pos_embedding", 3));
    MCNN_TRY(need(&fc1, st, ctx, "encoder.layers.encoder_layer_0.mlp.0.weight", 2));
    if (patch->shape[2] != patch->shape[3] || patch->shape[2] > MCNN_CHECKPOINT_MAX_IMAGE)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: patch embedding is not (C, IC, P, P) with "
                              "P <= %d", path, MCNN_CHECKPOINT_MAX_IMAGE);
    memset(c, 0, sizeof *c);
    c->width = (int)patch->shape[0];
    c->in_channels = (int)patch->shape[1];
    c->patch_size = (int)patch->shape[2];
    c->mlp_dim = (int)fc1->shape[0];
    c->ln_eps = 1e-6f;
    if (pos->shape[0] != 1 || pos->shape[2] != c->width)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: positional embedding is not (1, T, %d)", path,
                              c->width);
    const int grid = mcnn_checkpoint_grid(pos->shape[1]);
    if (grid < 0 || (int64_t)grid * c->patch_size > MCNN_CHECKPOINT_MAX_IMAGE)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: %lld positions are not 1 + a square grid of "
                              "an image of at most %d pixels", path, (long long)pos->shape[1],
                              MCNN_CHECKPOINT_MAX_IMAGE);
    c->image_size = grid * c->patch_size;
    MCNN_TRY(mcnn_checkpoint_count(&c->layers, st, ctx->names == NAMES_TIMM
                                                   ? "blocks." : "encoder.layers.encoder_layer_",
                                   0, MCNN_CHECKPOINT_MAX_LAYERS, "block"));
    if (c->layers == 0) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: no transformer blocks", path);
    if (head && (head->ndim != 2 || head->shape[0] < 1 || head->shape[0] > MCNN_CHECKPOINT_MAX_DIM))
        return mcnn_set_error(MCNN_ERR_SHAPE, "%s: '%s' is not a (classes, width) head", path,
                              head->name);
    c->num_classes = head ? (int)head->shape[0] : 0;
    return read_heads(&c->heads, st, c->width, opt->heads);
}

/* Every tensor the configuration implies is in the file with its shape, before allocating. */
static mcnn_status check_file(const mcnn_vit_config *cfg, mcnn_safetensors *st, load_ctx *ctx)
{
    mcnn_params table = {0};
    mcnn_status s = mcnn_vit_build_table(&table, cfg);
    if (s != MCNN_OK) s = mcnn_wrap_error(s, "%s: ", mcnn_safetensors_path(st));
    else s = mcnn_params_check_file(&table, st, map_key, ctx);
    mcnn_params_free(&table);
    return s;
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
    if (s == MCNN_OK) s = check_file(&cfg, st, &ctx);

    mcnn_vit *m = NULL;
    unsigned char *used = calloc((size_t)mcnn_safetensors_count(st) + 1, 1);
    float *pos = NULL;
    if (s == MCNN_OK && !used) s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    if (s == MCNN_OK) s = mcnn_check_load_precision(path, opt->precision);
    /* Only a new head needs the initialisation (the rest is read from the file); without it
     * no weight is touched before it is read, which an inference-only load counts on. */
    if (s == MCNN_OK && (s = ctx.skip_head ? mcnn_vit_create(&m, &cfg, 0)
                                           : mcnn_vit_new(&m, &cfg)) != MCNN_OK)
        s = mcnn_wrap_error(s, "%s: ", path);
    if (s == MCNN_OK && opt->inference_only)
        s = mcnn_vit_plan_inference_only(m, opt->precision);
    if (s == MCNN_OK)
        s = mcnn_params_load_then(&m->params, st, map_key, &ctx, used,
                                  opt->inference_only ? &m->packing : NULL);
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
    if (s == MCNN_OK) s = mcnn_finish_load_precision(path, &m->packing, opt->inference_only);
    if (s == MCNN_OK && !opt->inference_only && opt->precision != MCNN_PRECISION_FP32)
        s = mcnn_vit_set_precision(m, opt->precision);
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
