/* CLIP: parameter table (OpenAI's names), views, creation with OpenAI's initialisation, saving
 * and activation planning.  Loading is in clip_load.c, the towers in clip_vision.c and
 * clip_text.c, the contrastive training step in clip_train.c. */
#include "internal.h"
#include "clip_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mcnn_status check_config(const mcnn_clip_config *c)
{
    if (c->patch_size <= 0 || c->image_size < c->patch_size || c->image_size % c->patch_size ||
        c->image_size > 4096)
        return mcnn_set_error(MCNN_ERR_ARG, "clip: image size %d does not fit patch %d",
                              c->image_size, c->patch_size);
    if (c->vision_heads <= 0 || c->vision_width % c->vision_heads || c->text_heads <= 0 ||
        c->text_width % c->text_heads)
        return mcnn_set_error(MCNN_ERR_ARG, "clip: widths %d/%d do not divide into %d/%d heads",
                              c->vision_width, c->text_width, c->vision_heads, c->text_heads);
    if (c->embed_dim <= 0 || c->vision_layers <= 0 || c->text_layers <= 0 ||
        c->context_length <= 0 || c->vocab_size <= 0)
        return mcnn_set_error(MCNN_ERR_ARG, "clip: sizes must be positive");
    if (!(c->ln_eps >= 0 && c->ln_eps < 1)) /* NaN fails too */
        return mcnn_set_error(MCNN_ERR_ARG, "clip: layer-norm eps %g is not in [0, 1) (0: 1e-5)",
                              (double)c->ln_eps);
    /* sane maxima, so that a configuration read off a file cannot size absurd tables */
    if (c->vision_width > 65536 || c->text_width > 65536 || c->embed_dim > 65536 ||
        c->vision_layers > 1024 || c->text_layers > 1024 || c->context_length > 65536 ||
        c->vocab_size > 1 << 24)
        return mcnn_set_error(MCNN_ERR_ARG, "clip: widths %d/%d and embedding %d (at most "
                              "65536), %d/%d layers (at most 1024), context %d (at most 65536), "
                              "vocabulary %d (at most 16777216)", c->vision_width, c->text_width,
                              c->embed_dim, c->vision_layers, c->text_layers, c->context_length,
                              c->vocab_size);
    return MCNN_OK;
}

#define ADD(name, decay, ...)                                                               \
    MCNN_TRY(mcnn_params_add(p, name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
                             (int64_t[]){__VA_ARGS__}, decay))

/* The resblocks of one tower, OpenAI's names under prefix ("visual.transformer" or
 * "transformer"). */
static mcnn_status add_blocks(mcnn_params *p, const char *prefix, int layers, int64_t W)
{
    char name[128];
    for (int l = 0; l < layers; l++) {
#define BLOCK(suffix, decay, ...)                                                           \
    snprintf(name, sizeof name, "%s.resblocks.%d.%s", prefix, l, suffix);                   \
    ADD(name, decay, __VA_ARGS__)
        BLOCK("attn.in_proj_weight", 1, 3 * W, W);
        BLOCK("attn.in_proj_bias", 0, 3 * W);
        BLOCK("attn.out_proj.weight", 1, W, W);
        BLOCK("attn.out_proj.bias", 0, W);
        BLOCK("ln_1.weight", 0, W);
        BLOCK("ln_1.bias", 0, W);
        BLOCK("mlp.c_fc.weight", 1, 4 * W, W);
        BLOCK("mlp.c_fc.bias", 0, 4 * W);
        BLOCK("mlp.c_proj.weight", 1, W, 4 * W);
        BLOCK("mlp.c_proj.bias", 0, W);
        BLOCK("ln_2.weight", 0, W);
        BLOCK("ln_2.bias", 0, W);
#undef BLOCK
    }
    return MCNN_OK;
}

/* Weight decay as CLIP's training excludes it: gains, biases, embeddings and the scale. */
mcnn_status mcnn_clip_build_table(mcnn_params *p, const mcnn_clip_config *c)
{
    MCNN_TRY(check_config(c));
    const int64_t W = c->vision_width, w = c->text_width, E = c->embed_dim, P = c->patch_size;
    const int64_t G = c->image_size / c->patch_size;
    ADD("visual.class_embedding", 0, W);
    ADD("visual.positional_embedding", 0, 1 + G * G, W);
    ADD("visual.proj", 1, W, E);
    ADD("visual.conv1.weight", 1, W, 3, P, P);
    ADD("visual.ln_pre.weight", 0, W);
    ADD("visual.ln_pre.bias", 0, W);
    MCNN_TRY(add_blocks(p, "visual.transformer", c->vision_layers, W));
    ADD("visual.ln_post.weight", 0, W);
    ADD("visual.ln_post.bias", 0, W);
    ADD("positional_embedding", 0, c->context_length, w);
    ADD("text_projection", 1, w, E);
    MCNN_TRY(mcnn_params_add(p, "logit_scale", 0, NULL, 0));
    ADD("token_embedding.weight", 0, c->vocab_size, w);
    MCNN_TRY(add_blocks(p, "transformer", c->text_layers, w));
    ADD("ln_final.weight", 0, w);
    ADD("ln_final.bias", 0, w);
    return MCNN_OK;
}

static void bind_blocks(block_grads *b, const mcnn_params *p, const float *block,
                        const char *prefix, int layers)
{
    char name[128];
    for (int l = 0; l < layers; l++) {
#define AT(field, suffix)                                                                   \
    snprintf(name, sizeof name, "%s.resblocks.%d.%s", prefix, l, suffix);                   \
    b[l].field = (float *)block + mcnn_params_find(p, name)->offset
        AT(ln1_w, "ln_1.weight");
        AT(ln1_b, "ln_1.bias");
        AT(qkv_w, "attn.in_proj_weight");
        AT(qkv_b, "attn.in_proj_bias");
        AT(proj_w, "attn.out_proj.weight");
        AT(proj_b, "attn.out_proj.bias");
        AT(ln2_w, "ln_2.weight");
        AT(ln2_b, "ln_2.bias");
        AT(fc1_w, "mlp.c_fc.weight");
        AT(fc1_b, "mlp.c_fc.bias");
        AT(fc2_w, "mlp.c_proj.weight");
        AT(fc2_b, "mlp.c_proj.bias");
#undef AT
    }
}

static mcnn_status bind_views(clip_tensors *v, const mcnn_params *p, const float *block,
                              const mcnn_clip_config *c)
{
#define AT(name) ((float *)block + mcnn_params_find(p, name)->offset)
    v->conv1 = AT("visual.conv1.weight");
    v->class_emb = AT("visual.class_embedding");
    v->vpos = AT("visual.positional_embedding");
    v->ln_pre_w = AT("visual.ln_pre.weight");
    v->ln_pre_b = AT("visual.ln_pre.bias");
    v->ln_post_w = AT("visual.ln_post.weight");
    v->ln_post_b = AT("visual.ln_post.bias");
    v->vproj = AT("visual.proj");
    v->tok_emb = AT("token_embedding.weight");
    v->tpos = AT("positional_embedding");
    v->ln_final_w = AT("ln_final.weight");
    v->ln_final_b = AT("ln_final.bias");
    v->tproj = AT("text_projection");
    v->logit_scale = AT("logit_scale");
#undef AT
    v->vblocks = calloc((size_t)c->vision_layers, sizeof(block_grads));
    v->tblocks = calloc((size_t)c->text_layers, sizeof(block_grads));
    if (!v->vblocks || !v->tblocks) return mcnn_set_error(MCNN_ERR_NOMEM, "clip: out of memory");
    bind_blocks(v->vblocks, p, block, "visual.transformer", c->vision_layers);
    bind_blocks(v->tblocks, p, block, "transformer", c->text_layers);
    return MCNN_OK;
}

static void plan_free(clip_plan *plan)
{
    mcnn_arena_free(&plan->arena);
    free(plan->ints);
    memset(plan, 0, sizeof *plan);
}

mcnn_status mcnn_clip_acts_init(clip_acts *a, const mcnn_clip *m)
{
    memset(a, 0, sizeof *a);
    mcnn_status s = mcnn_stack_acts_init(&a->va.stack, &m->vstack);
    if (s == MCNN_OK) s = mcnn_stack_acts_init(&a->ta.stack, &m->tstack);
    if (s != MCNN_OK) mcnn_clip_acts_free(a);
    return s;
}

void mcnn_clip_acts_free(clip_acts *a)
{
    plan_free(&a->vplan);
    plan_free(&a->tplan);
    mcnn_stack_acts_free(&a->va.stack);
    mcnn_stack_acts_free(&a->ta.stack);
    memset(a, 0, sizeof *a);
}

mcnn_status mcnn_clip_new(mcnn_clip **out, const mcnn_clip_config *cfg)
{
    *out = NULL;
    MCNN_TRY(check_config(cfg));
    mcnn_clip *m = calloc(1, sizeof *m);
    if (!m) return mcnn_set_error(MCNN_ERR_NOMEM, "clip: out of memory");
    m->cfg = *cfg;
    if (m->cfg.ln_eps == 0) m->cfg.ln_eps = CLIP_DEFAULT_LN_EPS;
    m->vP = (cfg->image_size / cfg->patch_size) * (cfg->image_size / cfg->patch_size);
    m->vT = 1 + m->vP;
    m->vembed = (patch_embed_cfg){3, cfg->image_size, cfg->patch_size, cfg->vision_width};
    m->vstack = (stack_cfg){.layers = cfg->vision_layers,
                            .block = {.C = cfg->vision_width, .NH = cfg->vision_heads,
                                      .F = 4 * cfg->vision_width, .eps = m->cfg.ln_eps,
                                      .causal = 0, .act = BLOCK_QUICK_GELU}};
    m->tstack = (stack_cfg){.layers = cfg->text_layers,
                            .block = {.C = cfg->text_width, .NH = cfg->text_heads,
                                      .F = 4 * cfg->text_width, .eps = m->cfg.ln_eps,
                                      .causal = 1, .act = BLOCK_QUICK_GELU}};
    mcnn_status s = mcnn_clip_acts_init(&m->acts, m);
    if (s == MCNN_OK) s = mcnn_clip_build_table(&m->params, cfg);
    if (s == MCNN_OK) s = mcnn_params_alloc(&m->params, 1);
    if (s == MCNN_OK) s = bind_views(&m->w, &m->params, m->params.data, cfg);
    if (s == MCNN_OK) s = bind_views(&m->g, &m->params, m->params.grad, cfg);
    if (s != MCNN_OK) {
        mcnn_clip_free(m);
        return s;
    }
    *out = m;
    return MCNN_OK;
}

static void fill_normal(float *x, size_t n, float std, mcnn_rng *r)
{
    for (size_t i = 0; i < n; i++) x[i] = std * mcnn_rng_normal(r);
}

static void fill_const(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) x[i] = v;
}

/* OpenAI's initialize_parameters for one tower's blocks. */
static void init_blocks(block_grads *b, int layers, int W, mcnn_rng *r)
{
    const float proj_std = powf((float)W, -0.5f) * powf(2.0f * layers, -0.5f);
    const float attn_std = powf((float)W, -0.5f), fc_std = powf(2.0f * W, -0.5f);
    for (int l = 0; l < layers; l++) {
        fill_const(b[l].ln1_w, (size_t)W, 1.0f);
        fill_const(b[l].ln2_w, (size_t)W, 1.0f);
        fill_normal(b[l].qkv_w, 3 * (size_t)W * W, attn_std, r);
        fill_normal(b[l].proj_w, (size_t)W * W, proj_std, r);
        fill_normal(b[l].fc1_w, 4 * (size_t)W * W, fc_std, r);
        fill_normal(b[l].fc2_w, 4 * (size_t)W * W, proj_std, r);
    }
}

mcnn_status mcnn_clip_create(mcnn_clip **out, const mcnn_clip_config *cfg, uint64_t seed)
{
    MCNN_TRY(mcnn_clip_new(out, cfg));
    mcnn_clip *m = *out;
    const mcnn_clip_config *c = cfg;
    const size_t W = c->vision_width, w = c->text_width, E = c->embed_dim;
    mcnn_rng r;
    mcnn_rng_seed(&r, seed);
    const float vscale = powf((float)W, -0.5f);
    fill_normal(m->w.class_emb, W, vscale, &r);
    fill_normal(m->w.vpos, (size_t)m->vT * W, vscale, &r);
    fill_normal(m->w.vproj, W * E, vscale, &r);
    fill_normal(m->w.conv1, W * 3 * c->patch_size * c->patch_size,
                1.0f / sqrtf(3.0f * c->patch_size * c->patch_size), &r);
    fill_const(m->w.ln_pre_w, W, 1.0f);
    fill_const(m->w.ln_post_w, W, 1.0f);
    init_blocks(m->w.vblocks, c->vision_layers, (int)W, &r);
    fill_normal(m->w.tok_emb, (size_t)c->vocab_size * w, 0.02f, &r);
    fill_normal(m->w.tpos, (size_t)c->context_length * w, 0.01f, &r);
    init_blocks(m->w.tblocks, c->text_layers, (int)w, &r);
    fill_const(m->w.ln_final_w, w, 1.0f);
    fill_normal(m->w.tproj, w * E, powf((float)w, -0.5f), &r);
    m->w.logit_scale[0] = logf(1.0f / 0.07f);
    return MCNN_OK;
}

static void drop_packed(mcnn_clip *m)
{
    mcnn_stack_pack_free(m->vpacked, &m->vstack);
    mcnn_stack_pack_free(m->tpacked, &m->tstack);
    mcnn_embedding_lowp_free(m->tok_lowp);
    mcnn_pack_list_free(&m->packing);
    m->vpacked = m->tpacked = NULL;
    m->tok_lowp = NULL;
}

void mcnn_clip_free(mcnn_clip *m)
{
    if (!m) return;
    mcnn_clip_acts_free(&m->acts);
    drop_packed(m);
    plan_free(&m->hplan);
    free(m->w.vblocks);
    free(m->w.tblocks);
    free(m->g.vblocks);
    free(m->g.tblocks);
    mcnn_params_free(&m->params);
    free(m);
}

/* What precision p packs, into list: both towers' block matrices, their slots in new arrays
 * *v and *t, and in bf16 / int8 the token embedding, its slot m->tok_lowp (in fp32 the lookup
 * reads the fp32 table, as before: the same bits). */
static mcnn_status plan_packing(mcnn_clip *m, mcnn_precision p, block_packed **v,
                                block_packed **t, mcnn_pack_list *list)
{
    *t = NULL;
    MCNN_TRY(mcnn_stack_pack_plan(v, list, m->w.vblocks, &m->vstack));
    MCNN_TRY(mcnn_stack_pack_plan(t, list, m->w.tblocks, &m->tstack));
    if (p == MCNN_PRECISION_FP32) return MCNN_OK;
    return mcnn_pack_list_add_table(list, &m->w.tok_emb, m->cfg.vocab_size, m->cfg.text_width,
                                    &m->tok_lowp);
}

mcnn_status mcnn_clip_set_precision(mcnn_clip *m, mcnn_precision p)
{
    if (m->inference_only)
        return p == m->precision ? MCNN_OK : mcnn_inference_only_error("clip_set_precision");
    /* The list fills the model's own token-table slot, so the copy there waits aside
     * meanwhile: a failure leaves the model as it was. */
    mcnn_embedding_lowp *kept = m->tok_lowp;
    m->tok_lowp = NULL;
    block_packed *v, *t;
    mcnn_pack_list list = {0};
    mcnn_status s = plan_packing(m, p, &v, &t, &list);
    if (s == MCNN_OK) s = mcnn_pack_list_pack(&list, p);
    mcnn_embedding_lowp *tok = m->tok_lowp;
    m->tok_lowp = kept;
    if (s != MCNN_OK) {
        mcnn_stack_pack_free(v, &m->vstack);
        mcnn_stack_pack_free(t, &m->tstack);
        mcnn_embedding_lowp_free(tok);
        mcnn_pack_list_free(&list);
        return s;
    }
    drop_packed(m);
    m->vpacked = v, m->tpacked = t, m->tok_lowp = tok, m->packing = list, m->precision = p;
    return MCNN_OK;
}

mcnn_status mcnn_clip_plan_inference_only(mcnn_clip *m, mcnn_precision p)
{
    drop_packed(m);
    MCNN_TRY(plan_packing(m, p, &m->vpacked, &m->tpacked, &m->packing));
    mcnn_pack_list_for_load(&m->packing, p, &m->precision, &m->inference_only);
    return MCNN_OK;
}

mcnn_status mcnn_clip_release_training_weights(mcnn_clip *m)
{
    return mcnn_pack_list_release_model(&m->packing, m->vpacked != NULL, &m->inference_only,
                                        "clip");
}

mcnn_precision mcnn_clip_precision(const mcnn_clip *m)
{
    return m->precision;
}

const mcnn_clip_config *mcnn_clip_get_config(const mcnn_clip *m)
{
    return &m->cfg;
}

mcnn_params *mcnn_clip_params(mcnn_clip *m)
{
    return &m->params;
}

float mcnn_clip_logit_scale(const mcnn_clip *m)
{
    return expf(m->w.logit_scale[0]);
}

void mcnn_clip_project_forward(float *features, const float *y, const float *proj, int N, int W,
                               int E)
{
    mcnn_gemm(0, 0, N, E, W, 1.0f, y, W, proj, E, 0.0f, features, E);
}

void mcnn_clip_project_backward(float *dy, float *dproj, const float *dfeatures, const float *y,
                                const float *proj, int N, int W, int E)
{
    mcnn_gemm(0, 1, N, W, E, 1.0f, dfeatures, E, proj, E, 0.0f, dy, W);
    mcnn_gemm(1, 0, W, E, N, 1.0f, y, W, dfeatures, E, 1.0f, dproj, E);
}

mcnn_status mcnn_clip_plan_reserve(clip_plan *plan, size_t floats, size_t ints, int batch,
                                   int train)
{
    size_t bytes = floats * sizeof(float);
    if (plan->arena.base && plan->batch == batch && plan->train == train &&
        plan->arena.size >= bytes)
        return MCNN_OK;
    mcnn_arena_free(&plan->arena);
    free(plan->ints);
    plan->ints = NULL;
    plan->batch = 0;
    if (mcnn_arena_init(&plan->arena, bytes) != MCNN_OK)
        return mcnn_set_error(MCNN_ERR_NOMEM, "clip: cannot allocate %.1f MB of activations for "
                              "batch %d", bytes / 1e6, batch);
    plan->ints = malloc((ints ? ints : 1) * sizeof(int32_t));
    if (!plan->ints) return mcnn_set_error(MCNN_ERR_NOMEM, "clip: out of memory");
    plan->batch = batch;
    plan->train = train;
    return MCNN_OK;
}

mcnn_status mcnn_clip_save(const mcnn_clip *m, const char *path)
{
    if (m->inference_only) return mcnn_inference_only_error("clip_save");
    const mcnn_clip_config *c = &m->cfg;
    char config[512], vheads[16];
    snprintf(config, sizeof config,
             "{\"embed_dim\":%d,\"image_resolution\":%d,\"vision_layers\":%d,\"vision_width\":%d,"
             "\"vision_patch_size\":%d,\"context_length\":%d,\"vocab_size\":%d,"
             "\"transformer_width\":%d,\"transformer_heads\":%d,\"transformer_layers\":%d}",
             c->embed_dim, c->image_size, c->vision_layers, c->vision_width, c->patch_size,
             c->context_length, c->vocab_size, c->text_width, c->text_heads, c->text_layers);
    snprintf(vheads, sizeof vheads, "%d", c->vision_heads);
    const char *meta[] = {"arch", "openai-clip-vit", "config", config, "vision_heads", vheads};
    const mcnn_params *tables[] = {&m->params};
    return mcnn_params_save(path, tables, 1, meta, 3);
}
