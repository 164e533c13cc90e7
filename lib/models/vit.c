/* ViT: configuration, parameter table (torchvision names), creation with torchvision's
 * initialisation, and saving.  Loading (torchvision and timm names) is in vit_load.c, the
 * forward and backward passes in vit_run.c. */
#include "internal.h"
#include "vit_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mcnn_vit_config mcnn_vit_b16_config(int num_classes)
{
    mcnn_vit_config c = {.image_size = 224, .patch_size = 16, .in_channels = 3, .width = 768,
                         .layers = 12, .heads = 12, .mlp_dim = 3072,
                         .num_classes = num_classes, .ln_eps = 1e-6f};
    return c;
}

static mcnn_status check_config(const mcnn_vit_config *c)
{
    if (c->patch_size <= 0 || c->image_size < c->patch_size || c->image_size % c->patch_size)
        return mcnn_set_error(MCNN_ERR_ARG, "vit: image size %d is not a multiple of patch %d",
                              c->image_size, c->patch_size);
    if (c->width <= 0 || c->heads <= 0 || c->width % c->heads)
        return mcnn_set_error(MCNN_ERR_ARG, "vit: width %d is not divisible by %d heads",
                              c->width, c->heads);
    if (c->layers <= 0 || c->mlp_dim <= 0 || c->num_classes <= 0 || c->in_channels <= 0)
        return mcnn_set_error(MCNN_ERR_ARG, "vit: layers, mlp_dim, classes and channels must "
                                            "be positive");
    if (c->image_size > 4096)
        return mcnn_set_error(MCNN_ERR_ARG, "vit: image size %d is absurd", c->image_size);
    /* sane maxima, so that a configuration read off a file cannot size absurd tables */
    if (c->layers > 1024 || c->width > 65536 || c->mlp_dim > 1 << 18 || c->in_channels > 4096 ||
        c->num_classes > 1 << 24)
        return mcnn_set_error(MCNN_ERR_ARG, "vit: %d layers (at most 1024), width %d (65536), "
                              "MLP %d (262144), %d channels (4096), %d classes (16777216)",
                              c->layers, c->width, c->mlp_dim, c->in_channels, c->num_classes);
    return MCNN_OK;
}

#define ADD(name, decay, ...)                                                               \
    MCNN_TRY(mcnn_params_add(p, name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
                             (int64_t[]){__VA_ARGS__}, decay))

mcnn_status mcnn_vit_build_table(mcnn_params *p, const mcnn_vit_config *cfg)
{
    MCNN_TRY(check_config(cfg));
    const int64_t C = cfg->width, F = cfg->mlp_dim, PS = cfg->patch_size;
    const int64_t G = cfg->image_size / cfg->patch_size, T = 1 + G * G;
    char name[128];
    ADD("conv_proj.weight", 1, C, cfg->in_channels, PS, PS);
    ADD("conv_proj.bias", 0, C);
    ADD("class_token", 0, 1, 1, C);
    ADD("encoder.pos_embedding", 0, 1, T, C);
    for (int l = 0; l < cfg->layers; l++) {
#define LAYER(suffix, decay, ...)                                                           \
    snprintf(name, sizeof name, "encoder.layers.encoder_layer_%d.%s", l, suffix);           \
    ADD(name, decay, __VA_ARGS__)
        LAYER("ln_1.weight", 0, C);
        LAYER("ln_1.bias", 0, C);
        LAYER("self_attention.in_proj_weight", 1, 3 * C, C);
        LAYER("self_attention.in_proj_bias", 0, 3 * C);
        LAYER("self_attention.out_proj.weight", 1, C, C);
        LAYER("self_attention.out_proj.bias", 0, C);
        LAYER("ln_2.weight", 0, C);
        LAYER("ln_2.bias", 0, C);
        LAYER("mlp.0.weight", 1, F, C);
        LAYER("mlp.0.bias", 0, F);
        LAYER("mlp.3.weight", 1, C, F);
        LAYER("mlp.3.bias", 0, C);
#undef LAYER
    }
    ADD("encoder.ln.weight", 0, C);
    ADD("encoder.ln.bias", 0, C);
    ADD("heads.head.weight", 1, cfg->num_classes, C);
    ADD("heads.head.bias", 0, cfg->num_classes);
    return MCNN_OK;
}

/* Point a vit_tensors at one block (values or gradients) of the table. */
static void bind_views(vit_tensors *v, const mcnn_params *p, const float *block, int layers)
{
#define AT(name) ((float *)block + mcnn_params_find(p, name)->offset)
    char name[128];
    v->patch_w = AT("conv_proj.weight");
    v->patch_b = AT("conv_proj.bias");
    v->cls = AT("class_token");
    v->pos = AT("encoder.pos_embedding");
    v->lnf_w = AT("encoder.ln.weight");
    v->lnf_b = AT("encoder.ln.bias");
    v->head_w = AT("heads.head.weight");
    v->head_b = AT("heads.head.bias");
    for (int l = 0; l < layers; l++) {
        block_grads *b = &v->blocks[l];
#define L(field, suffix)                                                                    \
    snprintf(name, sizeof name, "encoder.layers.encoder_layer_%d.%s", l, suffix);           \
    b->field = AT(name)
        L(ln1_w, "ln_1.weight");
        L(ln1_b, "ln_1.bias");
        L(qkv_w, "self_attention.in_proj_weight");
        L(qkv_b, "self_attention.in_proj_bias");
        L(proj_w, "self_attention.out_proj.weight");
        L(proj_b, "self_attention.out_proj.bias");
        L(ln2_w, "ln_2.weight");
        L(ln2_b, "ln_2.bias");
        L(fc1_w, "mlp.0.weight");
        L(fc1_b, "mlp.0.bias");
        L(fc2_w, "mlp.3.weight");
        L(fc2_b, "mlp.3.bias");
#undef L
    }
#undef AT
}

mcnn_status mcnn_vit_bind(mcnn_vit *m)
{
    const mcnn_vit_config *c = &m->cfg;
    m->P = (c->image_size / c->patch_size) * (c->image_size / c->patch_size);
    m->T = 1 + m->P;
    m->embed = (patch_embed_cfg){c->in_channels, c->image_size, c->patch_size, c->width};
    m->stack = (stack_cfg){.layers = c->layers,
                           .block = {.C = c->width, .NH = c->heads, .F = c->mlp_dim,
                                     .eps = c->ln_eps, .causal = 0, .act = BLOCK_GELU}};
    m->w.blocks = calloc((size_t)c->layers, sizeof(block_grads));
    m->g.blocks = calloc((size_t)c->layers, sizeof(block_grads));
    if (!m->w.blocks || !m->g.blocks) return mcnn_set_error(MCNN_ERR_NOMEM, "vit: out of memory");
    bind_views(&m->w, &m->params, m->params.data, c->layers);
    bind_views(&m->g, &m->params, m->params.grad, c->layers);
    return mcnn_vit_acts_init(&m->acts, m);
}

mcnn_status mcnn_vit_new(mcnn_vit **out, const mcnn_vit_config *cfg)
{
    *out = NULL;
    MCNN_TRY(check_config(cfg));
    mcnn_vit *m = calloc(1, sizeof *m);
    if (!m) return mcnn_set_error(MCNN_ERR_NOMEM, "vit: out of memory");
    m->cfg = *cfg;
    mcnn_status s = mcnn_vit_build_table(&m->params, cfg);
    if (s == MCNN_OK) s = mcnn_params_alloc(&m->params, 1);
    if (s == MCNN_OK) s = mcnn_vit_bind(m);
    if (s != MCNN_OK) {
        mcnn_vit_free(m);
        return s;
    }
    *out = m;
    return MCNN_OK;
}

/* Uniform(-a, a) and truncated normals, for torchvision's initialisation. */
static void fill_uniform(float *x, size_t n, float a, mcnn_rng *r)
{
    for (size_t i = 0; i < n; i++) x[i] = (2.0f * mcnn_rng_uniform(r) - 1.0f) * a;
}

static void fill_normal(float *x, size_t n, float std, float trunc, mcnn_rng *r)
{
    for (size_t i = 0; i < n; i++) {
        float z;
        do z = mcnn_rng_normal(r); while (trunc > 0 && fabsf(z) > trunc);
        x[i] = z * std;
    }
}

static void fill_const(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) x[i] = v;
}

mcnn_status mcnn_vit_create(mcnn_vit **out, const mcnn_vit_config *cfg, uint64_t seed)
{
    MCNN_TRY(mcnn_vit_new(out, cfg));
    mcnn_vit *m = *out;
    const size_t C = cfg->width, F = cfg->mlp_dim, K = cfg->num_classes;
    const size_t fan_patch = (size_t)cfg->in_channels * cfg->patch_size * cfg->patch_size;
    mcnn_rng r;
    mcnn_rng_seed(&r, seed);
    /* torchvision: conv_proj trunc-normal(std = sqrt(1/fan_in)), bias 0; class token 0;
     * positional embedding normal(0.02); attention in_proj Xavier-uniform, biases 0, out_proj
     * Linear's default U(±1/sqrt(C)); MLP Xavier-uniform with biases N(0, 1e-6); norms 1, 0.
     * The head is zero in torchvision; a small normal breaks the symmetry sooner when
     * training from scratch and changes nothing else. */
    fill_normal(m->w.patch_w, C * fan_patch, sqrtf(1.0f / fan_patch), 2.0f, &r);
    fill_normal(m->w.pos, (size_t)m->T * C, 0.02f, 0.0f, &r);
    for (int l = 0; l < cfg->layers; l++) {
        block_grads *b = &m->w.blocks[l];
        fill_const(b->ln1_w, C, 1.0f);
        fill_const(b->ln2_w, C, 1.0f);
        fill_uniform(b->qkv_w, 3 * C * C, sqrtf(6.0f / (float)(C + 3 * C)), &r);
        fill_uniform(b->proj_w, C * C, 1.0f / sqrtf((float)C), &r);
        fill_uniform(b->fc1_w, F * C, sqrtf(6.0f / (float)(C + F)), &r);
        fill_uniform(b->fc2_w, C * F, sqrtf(6.0f / (float)(C + F)), &r);
        fill_normal(b->fc1_b, F, 1e-6f, 0.0f, &r);
        fill_normal(b->fc2_b, C, 1e-6f, 0.0f, &r);
    }
    fill_const(m->w.lnf_w, C, 1.0f);
    fill_normal(m->w.head_w, K * C, 0.01f, 2.0f, &r);
    return MCNN_OK;
}

static void drop_packed(mcnn_vit *m)
{
    mcnn_stack_pack_free(m->packed, &m->stack);
    mcnn_pack_list_free(&m->packing);
    m->packed = NULL;
}

void mcnn_vit_free(mcnn_vit *m)
{
    if (!m) return;
    mcnn_vit_acts_free(&m->acts);
    drop_packed(m);
    free(m->w.blocks);
    free(m->g.blocks);
    mcnn_params_free(&m->params);
    free(m);
}

mcnn_status mcnn_vit_set_precision(mcnn_vit *m, mcnn_precision p)
{
    if (m->inference_only)
        return p == m->precision ? MCNN_OK : mcnn_inference_only_error("vit_set_precision");
    block_packed *pk;
    mcnn_pack_list list = {0};
    mcnn_status s = mcnn_stack_pack_plan(&pk, &list, m->w.blocks, &m->stack);
    if (s == MCNN_OK) s = mcnn_pack_list_pack(&list, p);
    if (s != MCNN_OK) {
        mcnn_stack_pack_free(pk, &m->stack);
        mcnn_pack_list_free(&list);
        return s;
    }
    drop_packed(m);
    m->packed = pk, m->packing = list, m->precision = p;
    return MCNN_OK;
}

mcnn_status mcnn_vit_plan_inference_only(mcnn_vit *m, mcnn_precision p)
{
    drop_packed(m);
    MCNN_TRY(mcnn_stack_pack_plan(&m->packed, &m->packing, m->w.blocks, &m->stack));
    mcnn_pack_list_for_load(&m->packing, p, &m->precision, &m->inference_only);
    return MCNN_OK;
}

mcnn_status mcnn_vit_release_training_weights(mcnn_vit *m)
{
    return mcnn_pack_list_release_model(&m->packing, m->packed != NULL, &m->inference_only,
                                        "vit");
}

mcnn_precision mcnn_vit_precision(const mcnn_vit *m)
{
    return m->precision;
}

const mcnn_vit_config *mcnn_vit_get_config(const mcnn_vit *m)
{
    return &m->cfg;
}

mcnn_params *mcnn_vit_params(mcnn_vit *m)
{
    return &m->params;
}

mcnn_status mcnn_vit_save(const mcnn_vit *m, const char *path)
{
    if (m->inference_only) return mcnn_inference_only_error("vit_save");
    const mcnn_vit_config *c = &m->cfg;
    char heads[16], config[256];
    snprintf(heads, sizeof heads, "%d", c->heads);
    snprintf(config, sizeof config,
             "{\"arch\":\"vit\",\"image_size\":%d,\"patch_size\":%d,\"width\":%d,\"layers\":%d,"
             "\"heads\":%d,\"mlp_dim\":%d,\"num_classes\":%d,\"ln_eps\":%g}",
             c->image_size, c->patch_size, c->width, c->layers, c->heads, c->mlp_dim,
             c->num_classes, c->ln_eps);
    const char *meta[] = {"arch", "vit", "heads", heads, "config", config};
    const mcnn_params *tables[] = {&m->params};
    return mcnn_params_save(path, tables, 1, meta, 3);
}
