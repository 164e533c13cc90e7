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

/* Hugging Face's key for part i (q, k, v) of our in_proj row name. */
static void hf_qkv_key(char *key, size_t size, const char *name, int i)
{
    static const char *const parts[3] = {"q_proj", "k_proj", "v_proj"};
    const char *tower = strncmp(name, "visual.", 7) == 0 ? "vision_model" : "text_model";
    const char *rest = strncmp(name, "visual.", 7) == 0 ? name + 7 : name;
    int layer = -1;
    sscanf(rest, "transformer.resblocks.%d.", &layer);
    snprintf(key, size, "%s.encoder.layers.%d.self_attn.%s.%s", tower, layer, parts[i],
             strstr(name, "in_proj_bias") ? "bias" : "weight");
}

/* in_proj (3W, W) and (3W) from q_proj, k_proj and v_proj, one after the other.  dst NULL:
 * only check that the three are there with their shapes. */
static mcnn_status load_hf_qkv(mcnn_safetensors *st, float *dst, const char *name, int W,
                               unsigned char *used)
{
    const int is_bias = strstr(name, "in_proj_bias") != NULL;
    const int64_t shape[2] = {W, W};
    for (int i = 0; i < 3; i++) {
        char key[160];
        hf_qkv_key(key, sizeof key, name, i);
        if (!dst) {
            MCNN_TRY(mcnn_safetensors_expect(st, key, is_bias ? 1 : 2, shape, NULL));
            continue;
        }
        MCNN_TRY(mcnn_safetensors_load_f32(st, key, dst + (size_t)i * W * (is_bias ? 1 : W),
                                           is_bias ? 1 : 2, shape));
        mark_used(st, used, key);
    }
    return MCNN_OK;
}

/* Our projection (W, E), used as x @ proj, is the transpose of HF's Linear weight (E, W).
 * dst NULL: only check that it is there with its shape. */
static mcnn_status load_hf_projection(mcnn_safetensors *st, float *dst, const char *key, int W,
                                      int E, unsigned char *used)
{
    if (!dst) return mcnn_safetensors_expect(st, key, 2, (const int64_t[]){E, W}, NULL);
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

/* Load p (allocated) from Hugging Face's keys; with p->data NULL, only check that every key
 * is there with its shape. */
static mcnn_status load_hf(mcnn_params *p, const mcnn_clip_config *c,
                           mcnn_safetensors *st, unsigned char *used, mcnn_pack_list *then)
{
    if (p->data) MCNN_TRY(mcnn_params_load_then(p, st, hf_map, NULL, used, then));
    else MCNN_TRY(mcnn_params_check_file(p, st, hf_map, NULL)); /* the renamed ones */
    for (int i = 0; i < p->count; i++) {
        const mcnn_param *row = &p->table[i];
        float *dst = p->data ? p->data + row->offset : NULL;
        const int vision = strncmp(row->name, "visual.", 7) == 0;
        if (strstr(row->name, ".attn.in_proj_")) {
            MCNN_TRY(load_hf_qkv(st, dst, row->name, vision ? c->vision_width : c->text_width, used));
            if (dst && then) MCNN_TRY(mcnn_pack_list_loaded(then, dst));
        }
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

/* Heads: the options, else the checkpoint's metadata, else width / 64 as OpenAI builds them. */
static int read_heads(mcnn_safetensors *st, const char *which, int option, int width)
{
    const char *meta = NULL;
    int heads = 0;
    if (option > 0) return option;
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
    mcnn_clear_error();
    if (heads <= 0 && width % 64 == 0) heads = width / 64;
    return heads;
}

/* Read the configuration off the checkpoint's shapes.  Every size is bounded here and checked
 * against the file (check_file) before the model is allocated. */
static mcnn_status read_config(mcnn_clip_config *c, mcnn_safetensors *st, clip_names names,
                               const mcnn_clip_load_options *opt)
{
    const char *path = mcnn_safetensors_path(st);
    const int hf = names == NAMES_HF;
    const char *keys[5] = {hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight",
                           hf ? "vision_model.embeddings.position_embedding.weight" : "visual.positional_embedding",
                           hf ? "text_model.embeddings.position_embedding.weight" : "positional_embedding",
                           hf ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight",
                           hf ? "text_projection.weight" : "text_projection"};
    static const char *const what[5] = {"patch embedding", "image positional embedding",
                                        "text positional embedding", "token embedding",
                                        "text projection"};
    const mcnn_st_tensor *t[5];
    for (int i = 0; i < 5; i++)
        if (!mcnn_safetensors_find(st, keys[i]))
            return mcnn_set_error(MCNN_ERR_FORMAT, "%s: not a CLIP checkpoint (no %s)", path,
                                  what[i]);
    for (int i = 0; i < 5; i++) MCNN_TRY(mcnn_checkpoint_need(&t[i], st, keys[i], i ? 2 : 4));
    const mcnn_st_tensor *conv1 = t[0], *vpos = t[1], *tpos = t[2], *tok = t[3], *tproj = t[4];
    if (conv1->shape[1] != 3 || conv1->shape[2] != conv1->shape[3] ||
        conv1->shape[2] > MCNN_CHECKPOINT_MAX_IMAGE)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: CLIP embeddings have unexpected shapes", path);
    memset(c, 0, sizeof *c);
    c->vision_width = (int)conv1->shape[0];
    c->patch_size = (int)conv1->shape[2];
    const int grid = mcnn_checkpoint_grid(vpos->shape[0]);
    if (grid < 0 || (int64_t)grid * c->patch_size > MCNN_CHECKPOINT_MAX_IMAGE)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: %lld image positions are not 1 + a square "
                              "grid of an image of at most %d pixels", path,
                              (long long)vpos->shape[0], MCNN_CHECKPOINT_MAX_IMAGE);
    c->image_size = grid * c->patch_size;
    c->context_length = (int)tpos->shape[0];
    c->text_width = (int)tpos->shape[1];
    c->vocab_size = (int)tok->shape[0];
    c->embed_dim = (int)(hf ? tproj->shape[0] : tproj->shape[1]);
    MCNN_TRY(mcnn_checkpoint_count(&c->vision_layers, st, hf ? "vision_model.encoder.layers."
                                                             : "visual.transformer.resblocks.",
                                   0, MCNN_CHECKPOINT_MAX_LAYERS, "block"));
    MCNN_TRY(mcnn_checkpoint_count(&c->text_layers, st, hf ? "text_model.encoder.layers."
                                                           : "transformer.resblocks.",
                                   0, MCNN_CHECKPOINT_MAX_LAYERS, "block"));
    if (!c->vision_layers || !c->text_layers)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: no %s transformer blocks", path,
                              c->vision_layers ? "text" : "image");
    c->vision_heads = read_heads(st, "vision", opt->vision_heads, c->vision_width);
    c->text_heads = read_heads(st, "text", opt->text_heads, c->text_width);
    if (c->vision_heads <= 0 || c->text_heads <= 0)
        return mcnn_set_error(MCNN_ERR_FORMAT, "%s: cannot tell the head counts (widths %d and "
                              "%d, not multiples of 64, and no metadata); pass them in the load "
                              "options", path, c->vision_width, c->text_width);
    return MCNN_OK;
}

/* Every tensor the configuration implies is in the file with its shape, before allocating. */
static mcnn_status check_file(const mcnn_clip_config *cfg, mcnn_safetensors *st,
                              clip_names names)
{
    mcnn_params table = {0};
    mcnn_status s = mcnn_clip_build_table(&table, cfg);
    if (s != MCNN_OK) s = mcnn_wrap_error(s, "%s: ", mcnn_safetensors_path(st));
    else if (names == NAMES_HF) s = load_hf(&table, cfg, st, NULL, NULL);
    else s = mcnn_params_check_file(&table, st, NULL, NULL);
    mcnn_params_free(&table);
    return s;
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
    if (s == MCNN_OK) s = check_file(&cfg, st, names);
    if (s == MCNN_OK) s = mcnn_check_load_precision(path, opt->precision);
    if (s == MCNN_OK && (s = mcnn_clip_new(&m, &cfg)) != MCNN_OK)
        s = mcnn_wrap_error(s, "%s: ", path);
    if (s == MCNN_OK && opt->inference_only)
        s = mcnn_clip_plan_inference_only(m, opt->precision);
    mcnn_pack_list *then = opt->inference_only && m ? &m->packing : NULL;
    if (s == MCNN_OK)
        s = names == NAMES_HF ? load_hf(&m->params, &m->cfg, st, used, then)
                              : mcnn_params_load_then(&m->params, st, NULL, NULL, used, then);
    if (s == MCNN_OK) s = mcnn_params_check_unused(st, used, hf_ignore);
    if (s == MCNN_OK) s = mcnn_finish_load_precision(path, &m->packing, opt->inference_only);
    if (s == MCNN_OK && !opt->inference_only && opt->precision != MCNN_PRECISION_FP32)
        s = mcnn_clip_set_precision(m, opt->precision);
    free(used);
    mcnn_safetensors_close(st);
    if (s != MCNN_OK) {
        mcnn_clip_free(m);
        return s;
    }
    *out = m;
    return MCNN_OK;
}
