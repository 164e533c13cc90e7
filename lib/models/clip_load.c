/* Loading a CLIP checkpoint.  The configuration comes from the tensor shapes; the keys may be
 * OpenAI's (canonical here) or Hugging Face CLIPModel's, which split the attention's packed
 * q/k/v projection into three Linear layers and store the two output projections as Linear
 * weights, i.e. transposed. */
#include "internal.h"
#include "checkpoint.h"
#include "clip_internal.h"
#include "../io/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum clip_names { NAMES_OPENAI, NAMES_HF } clip_names;

/* Hugging Face's name for an OpenAI name, for the tensors that only change name.  Returns 0
 * for the three that need reshaping (in_proj, visual.proj, text_projection). */
static int hf_name(const char *name, char *buf, size_t size)
{
    static const char *whole[][2] = {
        {"visual.class_embedding", "vision_model.embeddings.class_embedding"},
        {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
        {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
        {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight"}, /* sic: HF's spelling */
        {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias"},
        {"visual.ln_post.weight", "vision_model.post_layernorm.weight"},
        {"visual.ln_post.bias", "vision_model.post_layernorm.bias"},
        {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
        {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
        {"ln_final.weight", "text_model.final_layer_norm.weight"},
        {"ln_final.bias", "text_model.final_layer_norm.bias"},
        {"logit_scale", "logit_scale"},
    };
    static const char *part[][2] = {
        {"ln_1.", "layer_norm1."}, {"ln_2.", "layer_norm2."},
        {"attn.out_proj.", "self_attn.out_proj."}, {"mlp.c_fc.", "mlp.fc1."},
        {"mlp.c_proj.", "mlp.fc2."},
    };
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        if (strcmp(name, whole[i][0]) == 0) return snprintf(buf, size, "%s", whole[i][1]) > 0;
    const char *tower = strncmp(name, "visual.", 7) == 0 ? "vision_model" : "text_model";
    const char *rest = strncmp(name, "visual.", 7) == 0 ? name + 7 : name;
    int layer, n = 0;
    if (sscanf(rest, "transformer.resblocks.%d.%n", &layer, &n) != 1 || !n) return 0;
    for (size_t i = 0; i < sizeof part / sizeof part[0]; i++) {
        size_t len = strlen(part[i][0]);
        if (strncmp(rest + n, part[i][0], len) == 0)
            return snprintf(buf, size, "%s.encoder.layers.%d.%s%s", tower, layer, part[i][1],
                            rest + n + len) > 0;
    }
    return 0;
}

static int hf_map(const char *name, char *buf, size_t size, void *ctx)
{
    (void)ctx;
    return hf_name(name, buf, size);
}

static void mark_used(mcnn_safetensors *st, unsigned char *used, const char *name)
{
    const mcnn_st_tensor *t = mcnn_safetensors_find(st, name);
    if (t) used[t - mcnn_safetensors_at(st, 0)] = 1;
}

/* in_proj (3W, W) and (3W) from q_proj, k_proj and v_proj, one after the other. */
static mcnn_status load_hf_qkv(mcnn_safetensors *st, float *dst, const char *name, int W,
                               unsigned char *used)
{
    const char *tower = strncmp(name, "visual.", 7) == 0 ? "vision_model" : "text_model";
    const char *rest = strncmp(name, "visual.", 7) == 0 ? name + 7 : name;
    int layer = -1;
    sscanf(rest, "transformer.resblocks.%d.", &layer);
    const int is_bias = strstr(name, "in_proj_bias") != NULL;
    const char *parts[3] = {"q_proj", "k_proj", "v_proj"};
    for (int i = 0; i < 3; i++) {
        char key[160];
        snprintf(key, sizeof key, "%s.encoder.layers.%d.self_attn.%s.%s", tower, layer, parts[i],
                 is_bias ? "bias" : "weight");
        const int64_t shape[2] = {W, W};
        MCNN_TRY(mcnn_safetensors_load_f32(st, key, dst + (size_t)i * W * (is_bias ? 1 : W),
                                           is_bias ? 1 : 2, shape));
        mark_used(st, used, key);
    }
    return MCNN_OK;
}

/* Our projection (W, E), used as x @ proj, is the transpose of HF's Linear weight (E, W). */
static mcnn_status load_hf_projection(mcnn_safetensors *st, float *dst, const char *key, int W,
                                      int E, unsigned char *used)
{
    float *tmp = malloc((size_t)W * E * sizeof(float));
    if (!tmp) return mcnn_set_error(MCNN_ERR_NOMEM, "out of memory");
    const int64_t shape[2] = {E, W};
    mcnn_status s = mcnn_safetensors_load_f32(st, key, tmp, 2, shape);
    if (s == MCNN_OK) {
        for (int e = 0; e < E; e++)
            for (int w = 0; w < W; w++) dst[(size_t)w * E + e] = tmp[(size_t)e * W + w];
        mark_used(st, used, key);
    }
    free(tmp);
    return s;
}

static mcnn_status load_hf(mcnn_clip *m, mcnn_safetensors *st, unsigned char *used)
{
    const mcnn_clip_config *c = &m->cfg;
    MCNN_TRY(mcnn_params_load(&m->params, st, hf_map, NULL, used)); /* the renamed ones */
    for (int i = 0; i < m->params.count; i++) {
        const mcnn_param *row = &m->params.table[i];
        float *dst = m->params.data + row->offset;
        const int vision = strncmp(row->name, "visual.", 7) == 0;
        if (strstr(row->name, ".attn.in_proj_"))
            MCNN_TRY(load_hf_qkv(st, dst, row->name, vision ? c->vision_width : c->text_width, used));
        else if (strcmp(row->name, "visual.proj") == 0)
            MCNN_TRY(load_hf_projection(st, dst, "visual_projection.weight", c->vision_width,
                                        c->embed_dim, used));
        else if (strcmp(row->name, "text_projection") == 0)
            MCNN_TRY(load_hf_projection(st, dst, "text_projection.weight", c->text_width,
                                        c->embed_dim, used));
    }
    return MCNN_OK;
}

/* Tensors a checkpoint may hold that the model does not use: Hugging Face's position_ids (a
 * buffer of 0..T-1), and the three numbers OpenAI's TorchScript archives (ViT-B-32.pt, ...)
 * keep as tensors, which OpenAI's clip.py drops as well. */
static int hf_ignore(const char *name)
{
    size_t n = strlen(name);
    return (n >= 12 && strcmp(name + n - 12, "position_ids") == 0) ||
           strcmp(name, "input_resolution") == 0 || strcmp(name, "context_length") == 0 ||
           strcmp(name, "vocab_size") == 0;
}

/* Heads: the checkpoint's metadata, else the options, else width / 64 as OpenAI builds them. */
static int read_heads(mcnn_safetensors *st, const char *which, int option, int width)
{
    const char *meta = NULL;
    int heads = 0;
    if (strcmp(which, "vision") == 0) {
        meta = mcnn_safetensors_meta(st, "vision_heads");
        if (meta) heads = atoi(meta);
    } else if ((meta = mcnn_safetensors_meta(st, "config"))) {
        mcnn_json_doc doc;
        if (mcnn_json_parse(&doc, meta, strlen(meta)) == MCNN_OK) {
            const mcnn_json *h = mcnn_json_get(doc.root, "transformer_heads");
            if (h && h->type == MCNN_JSON_NUMBER && h->is_int) heads = (int)h->i;
            mcnn_json_free(&doc);
        }
    }
    if (heads <= 0) heads = option;
    if (heads <= 0 && width % 64 == 0) heads = width / 64;
    return heads;
}

static mcnn_status read_config(mcnn_clip_config *c, mcnn_safetensors *st, clip_names names,
                               const mcnn_clip_load_options *opt)
{
    const char *path = mcnn_safetensors_path(st);
    const int hf = names == NAMES_HF;
    const mcnn_st_tensor *conv1 = mcnn_safetensors_find(st, hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight");
    const mcnn_st_tensor *vpos = mcnn_safetensors_find(st, hf ? "vision_model.embeddings.position_embedding.weight" : "visual.positional_embedding");
    const mcnn_st_tensor *tpos = mcnn_safetensors_find(st, hf ? "text_model.embeddings.position_embedding.weight" : "positional_embedding");
    const mcnn_st_tensor *tok = mcnn_safetensors_find(st, hf ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight");
    const mcnn_st_tensor *tproj = mcnn_safetensors_find(st, hf ? "text_projection.weight" : "text_projection");
    const char *missing = !conv1 ? "patch embedding" : !vpos ? "image positional embedding"
                          : !tpos ? "text positional embedding" : !tok ? "token embedding"
                          : !tproj ? "text projection" : NULL;
    if (missing) return mcnn_set_error(MCNN_ERR_FORMAT, "%s: not a CLIP checkpoint (no %s)", path, missing);
    if (conv1->ndim != 4 || conv1->shape[1] != 3 || conv1->shape[2] != conv1->shape[3] ||
        vpos->ndim != 2 || tpos->ndim != 2 || tok->ndim != 2 || tproj->ndim != 2)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: CLIP embeddings have unexpected shapes", path);
    memset(c, 0, sizeof *c);
    c->vision_width = (int)conv1->shape[0];
    c->patch_size = (int)conv1->shape[2];
    int grid = 0;
    while ((int64_t)(grid + 1) * (grid + 1) <= vpos->shape[0] - 1) grid++;
    if ((int64_t)grid * grid != vpos->shape[0] - 1)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: %lld image positions are not 1 + a square grid",
                              path, (long long)vpos->shape[0]);
    c->image_size = grid * c->patch_size;
    c->context_length = (int)tpos->shape[0];
    c->text_width = (int)tpos->shape[1];
    c->vocab_size = (int)tok->shape[0];
    c->embed_dim = (int)(hf ? tproj->shape[0] : tproj->shape[1]);
    c->vision_layers = mcnn_checkpoint_count_layers(st, hf ? "vision_model.encoder.layers."
                                                           : "visual.transformer.resblocks.");
    c->text_layers = mcnn_checkpoint_count_layers(st, hf ? "text_model.encoder.layers."
                                                         : "transformer.resblocks.");
    if (!c->vision_layers || !c->text_layers)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: no %s transformer blocks", path,
                              c->vision_layers ? "text" : "image");
    c->vision_heads = read_heads(st, "vision", opt->vision_heads, c->vision_width);
    c->text_heads = read_heads(st, "text", opt->text_heads, c->text_width);
    if (c->vision_heads <= 0 || c->text_heads <= 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: cannot tell the head counts; pass them in "
                                               "the load options", path);
    return MCNN_OK;
}

mcnn_status mcnn_clip_load(mcnn_clip **out, const char *path, const mcnn_clip_load_options *opt)
{
    static const mcnn_clip_load_options none = {0};
    if (!opt) opt = &none;
    *out = NULL;
    mcnn_safetensors *st;
    MCNN_TRY(mcnn_safetensors_open(&st, path));
    clip_names names = mcnn_safetensors_find(st, "vision_model.embeddings.patch_embedding.weight")
                           ? NAMES_HF : NAMES_OPENAI;
    mcnn_status s = MCNN_OK;
    if (mcnn_safetensors_find(st, "visual.layer1.0.conv1.weight"))
        s = mcnn_set_error(MCNN_ERR_UNSUPPORTED, "%s: CLIP with a ResNet image tower (RN50, ...) "
                           "is not supported; use a ViT CLIP (ViT-B/32, B/16, L/14)", path);
    mcnn_clip_config cfg = {0};
    if (s == MCNN_OK) s = read_config(&cfg, st, names, opt);
    mcnn_clip *m = NULL;
    unsigned char *used = calloc((size_t)mcnn_safetensors_count(st) + 1, 1);
    if (s == MCNN_OK && !used) s = mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    if (s == MCNN_OK) s = mcnn_clip_new(&m, &cfg);
    if (s == MCNN_OK)
        s = names == NAMES_HF ? load_hf(m, st, used)
                              : mcnn_params_load(&m->params, st, NULL, NULL, used);
    if (s == MCNN_OK) s = mcnn_params_check_unused(st, used, hf_ignore);
    free(used);
    mcnn_safetensors_close(st);
    if (s != MCNN_OK) {
        mcnn_clip_free(m);
        return s;
    }
    *out = m;
    return MCNN_OK;
}
