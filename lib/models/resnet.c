/* ResNet: configuration, the two tables (parameters, BN buffers) with torchvision names,
 * creation with torchvision's initialisation, and saving.  Loading is in resnet_load.c, the
 * forward and backward passes in resnet_run.c, the blocks in ../nn/bottleneck_block.c. */
#include "internal.h"
#include "resnet_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mcnn_resnet_config mcnn_resnet_config_standard(int depth, int num_classes)
{
    static const struct { int depth, bottleneck, blocks[4]; } table[] = {
        {18, 0, {2, 2, 2, 2}},  {34, 0, {3, 4, 6, 3}},   {50, 1, {3, 4, 6, 3}},
        {101, 1, {3, 4, 23, 3}}, {152, 1, {3, 8, 36, 3}},
    };
    mcnn_resnet_config c = {.stem = MCNN_RESNET_STEM_IMAGENET, .in_channels = 3,
                            .stem_width = 64, .num_classes = num_classes, .bn_eps = 1e-5f,
                            .bn_momentum = 0.1f};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (table[i].depth != depth) continue;
        c.block = table[i].bottleneck ? MCNN_RESNET_BOTTLENECK : MCNN_RESNET_BASIC;
        c.stages = 4;
        for (int s = 0; s < 4; s++) c.blocks[s] = table[i].blocks[s], c.widths[s] = 64 << s;
    }
    return c;
}

static mcnn_status check_config(const mcnn_resnet_config *c)
{
    if (c->block != MCNN_RESNET_BOTTLENECK && c->block != MCNN_RESNET_BASIC)
        return mcnn_set_error(MCNN_ERR_ARG, "resnet: unknown block type %d", (int)c->block);
    if (c->stem != MCNN_RESNET_STEM_IMAGENET && c->stem != MCNN_RESNET_STEM_SMALL)
        return mcnn_set_error(MCNN_ERR_ARG, "resnet: unknown stem %d", (int)c->stem);
    if (c->stages < 1 || c->stages > MCNN_RESNET_MAX_STAGES)
        return mcnn_set_error(MCNN_ERR_ARG, "resnet: %d stages (1 to %d)", c->stages,
                              MCNN_RESNET_MAX_STAGES);
    if (c->in_channels < 1 || c->in_channels > 4096 || c->stem_width < 1 ||
        c->stem_width > 65536 || c->num_classes < 1 || c->num_classes > 1 << 24)
        return mcnn_set_error(MCNN_ERR_ARG, "resnet: %d input channels, stem width %d, %d "
                              "classes: each must be positive (and sane)", c->in_channels,
                              c->stem_width, c->num_classes);
    for (int s = 0; s < c->stages; s++)
        if (c->blocks[s] < 1 || c->blocks[s] > MCNN_RESNET_MAX_BLOCKS || c->widths[s] < 1 ||
            c->widths[s] > 65536)
            return mcnn_set_error(MCNN_ERR_ARG, "resnet: stage %d has %d blocks of width %d",
                                  s + 1, c->blocks[s], c->widths[s]);
    if (!(c->bn_eps > 0) || !(c->bn_momentum >= 0 && c->bn_momentum <= 1))
        return mcnn_set_error(MCNN_ERR_ARG, "resnet: batch norm eps %g must be > 0 and "
                              "momentum %g in [0, 1]", c->bn_eps, c->bn_momentum);
    return MCNN_OK;
}

#define ADD(table, name, decay, ...)                                                        \
    MCNN_TRY(mcnn_params_add(table, name,                                                   \
                             (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),     \
                             (int64_t[]){__VA_ARGS__}, decay))

/* A conv weight (decayed) and the BN after it: gain and bias (not decayed), running stats. */
static mcnn_status add_conv_bn(mcnn_resnet *m, const char *conv, const char *bn, int64_t OC,
                               int64_t IC, int64_t K)
{
    char name[128];
    snprintf(name, sizeof name, "%s.weight", conv);
    ADD(&m->params, name, 1, OC, IC, K, K);
    snprintf(name, sizeof name, "%s.weight", bn);
    ADD(&m->params, name, 0, OC);
    snprintf(name, sizeof name, "%s.bias", bn);
    ADD(&m->params, name, 0, OC);
    snprintf(name, sizeof name, "%s.running_mean", bn);
    ADD(&m->buffers, name, 0, OC);
    snprintf(name, sizeof name, "%s.running_var", bn);
    ADD(&m->buffers, name, 0, OC);
    return MCNN_OK;
}

/* Both tables in torchvision's state_dict order. */
static mcnn_status build_tables(mcnn_resnet *m)
{
    const mcnn_resnet_config *c = &m->cfg;
    const int bottleneck = c->block == MCNN_RESNET_BOTTLENECK;
    char conv[96], bn[96];
    MCNN_TRY(add_conv_bn(m, "conv1", "bn1", c->stem_width, c->in_channels,
                         c->stem == MCNN_RESNET_STEM_IMAGENET ? 7 : 3));
    for (int b = 0; b < m->nblocks; b++) {
        const resnet_block_info *in = &m->info[b];
        const int OC = bottleneck ? 4 * in->width : in->width;
        char prefix[48];
        snprintf(prefix, sizeof prefix, "layer%d.%d", in->stage + 1, in->index);
#define CONV_BN(k, OUT, IN, K)                                                              \
    snprintf(conv, sizeof conv, "%s.conv%d", prefix, k);                                    \
    snprintf(bn, sizeof bn, "%s.bn%d", prefix, k);                                          \
    MCNN_TRY(add_conv_bn(m, conv, bn, OUT, IN, K))
        if (bottleneck) {
            CONV_BN(1, in->width, in->IC, 1);
            CONV_BN(2, in->width, in->width, 3);
            CONV_BN(3, OC, in->width, 1);
        } else {
            CONV_BN(1, in->width, in->IC, 3);
            CONV_BN(2, in->width, in->width, 3);
        }
#undef CONV_BN
        if (in->stride != 1 || in->IC != OC) { /* as resblock_cfg's downsample rule */
            snprintf(conv, sizeof conv, "%s.downsample.0", prefix);
            snprintf(bn, sizeof bn, "%s.downsample.1", prefix);
            MCNN_TRY(add_conv_bn(m, conv, bn, OC, in->IC, 1));
        }
    }
    ADD(&m->params, "fc.weight", 1, c->num_classes, m->features);
    ADD(&m->params, "fc.bias", 0, c->num_classes);
    return MCNN_OK;
}

/* Point the views at the tables; block (values or grads) of params, and the buffers. */
static float *at(const mcnn_params *p, const float *block, const char *fmt, const char *prefix,
                 const char *suffix)
{
    char name[128];
    snprintf(name, sizeof name, fmt, prefix, suffix);
    const mcnn_param *row = mcnn_params_find(p, name);
    return row ? (float *)block + row->offset : NULL;
}

static void bind_views(mcnn_resnet *m, resnet_tensors *v, const float *block)
{
    const mcnn_params *p = &m->params;
    v->conv1_w = at(p, block, "%s%s", "conv1", ".weight");
    v->bn1 = (bn_affine){at(p, block, "%s%s", "bn1", ".weight"), at(p, block, "%s%s", "bn1", ".bias")};
    v->fc_w = at(p, block, "%s%s", "fc", ".weight");
    v->fc_b = at(p, block, "%s%s", "fc", ".bias");
    for (int b = 0; b < m->nblocks; b++) {
        char pre[48];
        snprintf(pre, sizeof pre, "layer%d.%d.", m->info[b].stage + 1, m->info[b].index);
        resblock_params *r = &v->blocks[b];
#define BN(name) ((bn_affine){at(p, block, "%s%s", pre, name ".weight"), at(p, block, "%s%s", pre, name ".bias")})
        r->conv1_w = at(p, block, "%s%s", pre, "conv1.weight");
        r->conv2_w = at(p, block, "%s%s", pre, "conv2.weight");
        r->conv3_w = at(p, block, "%s%s", pre, "conv3.weight");   /* NULL in a basic block */
        r->down_w = at(p, block, "%s%s", pre, "downsample.0.weight"); /* NULL: identity    */
        r->bn1 = BN("bn1"), r->bn2 = BN("bn2"), r->bn3 = BN("bn3"), r->downbn = BN("downsample.1");
#undef BN
    }
}

static void bind_stats(mcnn_resnet *m)
{
    const mcnn_params *p = &m->buffers;
    const float *block = p->data;
#define RUN(pre, name)                                                                      \
    ((bn_running){at(p, block, "%s%s", pre, name ".running_mean"),                          \
                  at(p, block, "%s%s", pre, name ".running_var")})
    m->st.bn1 = RUN("", "bn1");
    for (int b = 0; b < m->nblocks; b++) {
        char pre[48];
        snprintf(pre, sizeof pre, "layer%d.%d.", m->info[b].stage + 1, m->info[b].index);
        resblock_stats *s = &m->st.blocks[b];
        s->bn1 = RUN(pre, "bn1"), s->bn2 = RUN(pre, "bn2"), s->bn3 = RUN(pre, "bn3");
        s->downbn = RUN(pre, "downsample.1");
    }
#undef RUN
}

mcnn_status mcnn_resnet_plan(mcnn_resnet **out, const mcnn_resnet_config *cfg)
{
    *out = NULL;
    MCNN_TRY(check_config(cfg));
    mcnn_resnet *m = calloc(1, sizeof *m);
    if (!m) return mcnn_set_error(MCNN_ERR_NOMEM, "resnet: out of memory");
    m->cfg = *cfg;
    m->cfg.zero_init_residual = 0; /* a creation option, not part of the model */
    const int expansion = cfg->block == MCNN_RESNET_BOTTLENECK ? 4 : 1;
    for (int s = 0; s < cfg->stages; s++) m->nblocks += cfg->blocks[s];
    m->features = cfg->widths[cfg->stages - 1] * expansion;
    m->info = calloc((size_t)m->nblocks, sizeof *m->info);
    m->w.blocks = calloc((size_t)m->nblocks, sizeof(resblock_params));
    m->g.blocks = calloc((size_t)m->nblocks, sizeof(resblock_params));
    m->st.blocks = calloc((size_t)m->nblocks, sizeof(resblock_stats));
    mcnn_status s = MCNN_OK;
    if (!m->info || !m->w.blocks || !m->g.blocks || !m->st.blocks)
        s = mcnn_set_error(MCNN_ERR_NOMEM, "resnet: out of memory");
    /* torchvision's _make_layer: the first block of a stage takes the stride (1 in stage 1,
     * 2 after) and the previous width; the others keep the stage's output width. */
    int IC = cfg->stem_width;
    for (int st = 0, b = 0; s == MCNN_OK && st < cfg->stages; st++)
        for (int i = 0; i < cfg->blocks[st]; i++, b++) {
            m->info[b] = (resnet_block_info){.stage = st, .index = i, .IC = IC,
                                             .width = cfg->widths[st],
                                             .stride = i == 0 && st > 0 ? 2 : 1};
            IC = cfg->widths[st] * expansion;
        }
    if (s == MCNN_OK) s = build_tables(m);
    if (s != MCNN_OK) {
        mcnn_resnet_free(m);
        return s;
    }
    *out = m;
    return MCNN_OK;
}

mcnn_status mcnn_resnet_alloc(mcnn_resnet *m)
{
    MCNN_TRY(mcnn_params_alloc(&m->params, 1));
    MCNN_TRY(mcnn_params_alloc(&m->buffers, 0));
    bind_views(m, &m->w, m->params.data);
    bind_views(m, &m->g, m->params.grad);
    bind_stats(m);
    return MCNN_OK;
}

mcnn_status mcnn_resnet_new(mcnn_resnet **out, const mcnn_resnet_config *cfg)
{
    MCNN_TRY(mcnn_resnet_plan(out, cfg));
    mcnn_status s = mcnn_resnet_alloc(*out);
    if (s != MCNN_OK) {
        mcnn_resnet_free(*out);
        *out = NULL;
    }
    return s;
}

static void fill_uniform(float *x, size_t n, float a, mcnn_rng *r)
{
    for (size_t i = 0; i < n; i++) x[i] = (2.0f * mcnn_rng_uniform(r) - 1.0f) * a;
}

static void fill_const(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) x[i] = v;
}

/* nn.Linear's default: weight kaiming_uniform(a = sqrt(5)) = U(±1/sqrt(fan_in)), bias the same. */
void mcnn_resnet_init_fc(mcnn_resnet *m, mcnn_rng *r)
{
    const size_t K = m->cfg.num_classes, F = m->features;
    const float bound = 1.0f / sqrtf((float)F);
    fill_uniform(m->w.fc_w, K * F, bound, r);
    fill_uniform(m->w.fc_b, K, bound, r);
}

mcnn_status mcnn_resnet_create(mcnn_resnet **out, const mcnn_resnet_config *cfg, uint64_t seed)
{
    MCNN_TRY(mcnn_resnet_new(out, cfg));
    mcnn_resnet *m = *out;
    mcnn_rng r;
    mcnn_rng_seed(&r, seed);
    /* torchvision: every conv kaiming_normal_(mode="fan_out", nonlinearity="relu"), i.e.
     * N(0, 2 / (OC·KH·KW)); BN gain 1, bias 0; running mean 0, variance 1. */
    for (int i = 0; i < m->params.count; i++) {
        const mcnn_param *row = &m->params.table[i];
        float *x = m->params.data + row->offset;
        if (row->ndim == 4) {
            const float std = sqrtf(2.0f / (float)(row->shape[0] * row->shape[2] * row->shape[3]));
            for (size_t k = 0; k < row->numel; k++) x[k] = std * mcnn_rng_normal(&r);
        } else if (row->ndim == 1 && strcmp(row->name + strlen(row->name) - 7, ".weight") == 0) {
            fill_const(x, row->numel, 1.0f); /* the 1-D weights are the BN gains */
        }
    }
    for (int i = 0; i < m->buffers.count; i++) {
        const mcnn_param *row = &m->buffers.table[i];
        if (strstr(row->name, "running_var"))
            fill_const(m->buffers.data + row->offset, row->numel, 1.0f);
    }
    mcnn_resnet_init_fc(m, &r);
    /* zero_init_residual: the last BN of each residual branch starts at 0, so every block
     * starts as the identity (Goyal et al., 2017). */
    if (cfg->zero_init_residual)
        for (int b = 0; b < m->nblocks; b++) {
            bn_affine last = cfg->block == MCNN_RESNET_BOTTLENECK ? m->w.blocks[b].bn3
                                                                  : m->w.blocks[b].bn2;
            fill_const(last.w, (size_t)(cfg->block == MCNN_RESNET_BOTTLENECK ? 4 : 1) *
                                   m->info[b].width, 0.0f);
        }
    return MCNN_OK;
}

void mcnn_resnet_free(mcnn_resnet *m)
{
    if (!m) return;
    mcnn_resnet_acts_free(&m->acts);
    mcnn_resnet_packed_free(m);
    free(m->info);
    free(m->w.blocks);
    free(m->g.blocks);
    free(m->st.blocks);
    mcnn_params_free(&m->params);
    mcnn_params_free(&m->buffers);
    free(m);
}

const mcnn_resnet_config *mcnn_resnet_get_config(const mcnn_resnet *m)
{
    return &m->cfg;
}

mcnn_params *mcnn_resnet_params(mcnn_resnet *m)
{
    return &m->params;
}

mcnn_params *mcnn_resnet_buffers(mcnn_resnet *m)
{
    return &m->buffers;
}

int mcnn_resnet_feature_dim(const mcnn_resnet *m)
{
    return m->features;
}

void mcnn_resnet_config_json(char *buf, size_t size, const mcnn_resnet_config *c)
{
    int k = snprintf(buf, size, "{\"arch\":\"resnet\",\"block\":\"%s\",\"stem\":\"%s\","
                     "\"in_channels\":%d,\"stem_width\":%d,\"blocks\":[",
                     c->block == MCNN_RESNET_BOTTLENECK ? "bottleneck" : "basic",
                     c->stem == MCNN_RESNET_STEM_IMAGENET ? "imagenet" : "small", c->in_channels,
                     c->stem_width);
    for (int s = 0; s < c->stages && k < (int)size; s++)
        k += snprintf(buf + k, size - k, "%s%d", s ? "," : "", c->blocks[s]);
    k += snprintf(buf + k, k < (int)size ? size - k : 0, "],\"widths\":[");
    for (int s = 0; s < c->stages && k < (int)size; s++)
        k += snprintf(buf + k, size - k, "%s%d", s ? "," : "", c->widths[s]);
    if (k < (int)size)
        snprintf(buf + k, size - k, "],\"num_classes\":%d,\"bn_eps\":%g,\"bn_momentum\":%g}",
                 c->num_classes, c->bn_eps, c->bn_momentum);
}

mcnn_status mcnn_resnet_save(const mcnn_resnet *m, const char *path)
{
    if (m->inference_only) return mcnn_inference_only_error("resnet_save");
    const int np = m->params.count, nb = m->buffers.count, nbn = nb / 2;
    const int n = np + nb + nbn;
    mcnn_st_entry *entries = calloc((size_t)n, sizeof *entries);
    char *names = malloc((size_t)n * 128);
    if (!entries || !names) {
        free(entries);
        free(names);
        return mcnn_set_error(MCNN_ERR_NOMEM, "%s: out of memory", path);
    }
    int k = mcnn_params_entries(&m->params, 0, "", entries, names);
    k += mcnn_params_entries(&m->buffers, 0, "", entries + k, names + (size_t)k * 128);
    /* PyTorch's BN has a third buffer, num_batches_tracked (an int64 scalar): written so that
     * load_state_dict(strict=True) finds every key.  Buffers come in pairs, mean first. */
    for (int i = 0; i < nb; i += 2) {
        const char *mean_name = m->buffers.table[i].name;
        char *name = names + (size_t)k * 128;
        snprintf(name, 128, "%.*snum_batches_tracked",
                 (int)(strlen(mean_name) - strlen("running_mean")), mean_name);
        entries[k++] = (mcnn_st_entry){.name = name, .dtype = MCNN_DTYPE_I64, .ndim = 0,
                                       .data = &m->num_batches_tracked};
    }
    char config[1024];
    mcnn_resnet_config_json(config, sizeof config, &m->cfg);
    const char *meta[] = {"arch", "resnet", "config", config};
    mcnn_status s = mcnn_safetensors_write(path, entries, k, meta, 2);
    free(entries);
    free(names);
    return s;
}
