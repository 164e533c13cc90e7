/* Hostile and malformed checkpoints (issue 15 item 1, 6, 11) and what the model headers promise
 * (issue 13 item 8).  The judge is the behaviour the issues specify: a bad checkpoint is refused
 * quickly, before anything it describes is allocated, with a message naming the file and the
 * offending tensor or field; a good one keeps loading.  The hostile files are made here from the
 * demo checkpoints (weights/) or from tiny models, with one tensor or metadata field changed. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"
#include "io/inflate.h" /* mcnn_read_file */

#include <time.h>
#include <unistd.h>

#define DEMO_VIT "weights/demo-fashion-vit.safetensors"
#define DEMO_RESNET "weights/demo-fashion-resnet.safetensors"

/* A refused allocation must come back as NULL under ASan too (the "cannot allocate" test asks
 * for 2^62 bytes), as it does in a normal build. */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static const char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 256, "/tmp/mcnn_test_hostile_%d_%s", (int)getpid(), name);
    return p;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- making hostile files ------------------------------------------------------------------ */

/* One change to a checkpoint: a tensor to add (zero-size when numel is 0, else zeros) ... */
typedef struct extra_tensor {
    const char *name;
    int ndim;
    int64_t shape[4];
} extra_tensor;

/* ... and metadata to set (value NULL: remove the key). */
typedef struct meta_edit {
    const char *key, *value;
} meta_edit;

typedef struct edit {
    const char *skip;            /* a tensor to leave out, or NULL */
    const char *rename_from, *rename_to; /* a tensor to rename, or NULL */
    extra_tensor extra[2];
    meta_edit meta[4];
} edit;

static const char *const meta_keys[] = {"arch", "config", "heads", "labels", "preprocess", "resize",
                                        "crop", "mean", "std", "interpolation", "multilabel",
                                        "vision_heads", "num_heads"};
enum { NKEYS = sizeof meta_keys / sizeof meta_keys[0] };

/* Write src with the edit applied to dst: float tensors as F32, integer ones as I32. */
static void rewrite(const char *src, const char *dst, const edit *e)
{
    mcnn_safetensors *st = NULL;
    TEST_OK(mcnn_safetensors_open(&st, src));
    if (!st) return;
    const int n = mcnn_safetensors_count(st);
    mcnn_st_entry *entries = calloc((size_t)n + 2, sizeof *entries);
    void **data = calloc((size_t)n + 2, sizeof *data);
    char(*names)[128] = calloc((size_t)n + 2, 128);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const mcnn_st_tensor *t = mcnn_safetensors_at(st, i);
        if (e->skip && strcmp(t->name, e->skip) == 0) continue;
        const int is_int = t->dtype == MCNN_DTYPE_I64 || t->dtype == MCNN_DTYPE_I32;
        data[k] = malloc((t->numel ? t->numel : 1) * 4);
        TEST_OK(is_int ? mcnn_safetensors_read_i32(st, t, data[k])
                       : mcnn_safetensors_read_f32(st, t, data[k]));
        snprintf(names[k], 128, "%s",
                 e->rename_from && strcmp(t->name, e->rename_from) == 0 ? e->rename_to : t->name);
        entries[k] = (mcnn_st_entry){.name = names[k], .ndim = t->ndim, .data = data[k],
                                     .dtype = is_int ? MCNN_DTYPE_I32 : MCNN_DTYPE_F32};
        memcpy(entries[k].shape, t->shape, sizeof entries[k].shape);
        k++;
    }
    for (int x = 0; x < 2 && e->extra[x].name; x++) {
        const extra_tensor *t = &e->extra[x];
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->shape[d];
        data[k] = calloc(numel ? numel : 1, 4);
        entries[k] = (mcnn_st_entry){.name = t->name, .dtype = MCNN_DTYPE_F32, .ndim = t->ndim,
                                     .data = data[k]};
        memcpy(entries[k].shape, t->shape, sizeof t->shape);
        k++;
    }
    const char *meta[2 * (NKEYS + 4)];
    int m = 0;
    for (int i = 0; i < NKEYS; i++) {
        const char *v = mcnn_safetensors_meta(st, meta_keys[i]);
        for (int j = 0; j < 4 && e->meta[j].key; j++)
            if (strcmp(e->meta[j].key, meta_keys[i]) == 0) v = e->meta[j].value;
        if (v) meta[m++] = meta_keys[i], meta[m++] = v;
    }
    TEST_OK(mcnn_safetensors_write(dst, entries, k, meta, m / 2));
    for (int i = 0; i < k; i++) free(data[i]);
    free(data);
    free(names);
    free(entries);
    mcnn_safetensors_close(st);
}

typedef mcnn_status (*load_fn)(const char *path);

/* Load and free: the status of each model's loader, with default options. */
#define LOADER(fn, type, load, release)                                                     \
    static mcnn_status fn(const char *path)                                                 \
    {                                                                                       \
        type *m = NULL;                                                                     \
        mcnn_status s = load(&m, path, NULL);                                               \
        release(m);                                                                         \
        return s;                                                                           \
    }
LOADER(load_vit, mcnn_vit, mcnn_vit_load, mcnn_vit_free)
LOADER(load_resnet, mcnn_resnet, mcnn_resnet_load, mcnn_resnet_free)
LOADER(load_clip, mcnn_clip, mcnn_clip_load, mcnn_clip_free)
LOADER(load_classifier, mcnn_classifier, mcnn_classifier_load, mcnn_classifier_free)

/* The load fails within a second, naming the file and every needle (NULL-terminated). */
static void expect_refused_(load_fn load, const char *path, const char *const *needles)
{
    const double t0 = now();
    const mcnn_status s = load(path);
    const double seconds = now() - t0;
    const char *msg = mcnn_last_error();
    if (getenv("MCNN_TEST_VERBOSE")) fprintf(stderr, "  [%.3f s] %s\n", seconds, msg);
    TEST_ASSERT(s != MCNN_OK, "%s: loaded", path);
    TEST_ASSERT(seconds < 1.0, "%s: refused only after %.1f s", path, seconds);
    TEST_ASSERT(s == MCNN_OK || strstr(msg, path), "message '%s' does not name the file", msg);
    for (int i = 0; s != MCNN_OK && needles[i]; i++)
        TEST_ASSERT(strstr(msg, needles[i]), "message '%s' does not say '%s'", msg, needles[i]);
}
#define expect_refused(load, path, ...) \
    expect_refused_(load, path, (const char *const[]){__VA_ARGS__, NULL})

static int have_demo(const char *path)
{
    if (access(path, R_OK) == 0) return 1;
    TEST_SKIP("%s is not there", path);
    return 0;
}

/* ---- ViT ----------------------------------------------------------------------------------- */

/* Audit item 1: one zero-size tensor of block 99999 asked for ~30 GB; block 7999 cost 50 s and
 * 2.4 GB.  Block indices must run from 0 without gaps, below the limit of 1024. */
static void test_vit_layer_index_far_out(void)
{
    if (!have_demo(DEMO_VIT)) return;
    const char *path = tmp_path("vit_far.safetensors");
    rewrite(DEMO_VIT, path, &(edit){.extra = {{"encoder.layers.encoder_layer_99999.ln_1.weight",
                                               1, {0}}}});
    expect_refused(load_vit, path, "'encoder.layers.encoder_layer_99999.ln_1.weight'", "block");
    expect_refused(load_classifier, path, "encoder.layers.encoder_layer_99999.ln_1.weight");
    rewrite(DEMO_VIT, path, &(edit){.extra = {{"encoder.layers.encoder_layer_7999.ln_1.weight",
                                               1, {0}}}});
    expect_refused(load_vit, path, "'encoder.layers.encoder_layer_7999.ln_1.weight'",
                   "0 to 1023");
    /* 1024 is past the limit itself */
    rewrite(DEMO_VIT, path, &(edit){.extra = {{"encoder.layers.encoder_layer_1024.ln_1.weight",
                                               1, {96}}}});
    expect_refused(load_vit, path, "encoder_layer_1024", "0 to 1023");
    remove(path);
}

/* A gap, and a block with only some of its tensors: the missing tensor is named. */
static void test_vit_layers_incomplete(void)
{
    if (!have_demo(DEMO_VIT)) return;
    const char *path = tmp_path("vit_gap.safetensors");
    rewrite(DEMO_VIT, path, &(edit){.extra = {{"encoder.layers.encoder_layer_6.ln_1.weight", 1,
                                               {96}}}});
    expect_refused(load_vit, path, "encoder_layer_6.ln_1.weight", "no tensor of block 4");
    rewrite(DEMO_VIT, path, &(edit){.extra = {{"encoder.layers.encoder_layer_4.ln_1.weight", 1,
                                               {96}}}});
    expect_refused(load_vit, path, "'encoder.layers.encoder_layer_4.ln_1.bias' is missing");
    rewrite(DEMO_VIT, path, &(edit){.skip = "encoder.layers.encoder_layer_2.mlp.3.weight"});
    expect_refused(load_vit, path, "'encoder.layers.encoder_layer_2.mlp.3.weight' is missing");
    /* an index that is no plain number is an unexpected tensor, not a layer */
    rewrite(DEMO_VIT, path, &(edit){.extra = {{"encoder.layers.encoder_layer_01.ln_1.weight", 1,
                                               {96}}}});
    expect_refused(load_vit, path, "unexpected tensor 'encoder.layers.encoder_layer_01.ln_1.weight'");
    remove(path);
}

/* A 7 KB width-8 ViT with block 7999 did not finish in 60 s: binding was quadratic. */
static void test_vit_width8_far_layer(void)
{
    mcnn_vit_config cfg = {.image_size = 8, .patch_size = 4, .in_channels = 1, .width = 8,
                           .layers = 2, .heads = 2, .mlp_dim = 8, .num_classes = 2,
                           .ln_eps = 1e-6f};
    mcnn_vit *m = NULL;
    TEST_OK(mcnn_vit_create(&m, &cfg, 1));
    const char *small = tmp_path("vit8.safetensors"), *path = tmp_path("vit8_far.safetensors");
    TEST_OK(mcnn_vit_save(m, small));
    mcnn_vit_free(m);
    rewrite(small, path, &(edit){.extra = {{"encoder.layers.encoder_layer_7999.ln_1.weight", 1,
                                            {8}}}});
    expect_refused(load_vit, path, "encoder.layers.encoder_layer_7999.ln_1.weight");
    remove(small);
    remove(path);
}

/* Shapes the configuration is read from: zero or absurd sizes are named, never allocated. */
static void test_vit_bad_config_tensors(void)
{
    if (!have_demo(DEMO_VIT)) return;
    const char *path = tmp_path("vit_cfg.safetensors");
    /* a zero-size patch embedding (its width would be taken from it) */
    rewrite(DEMO_VIT, path, &(edit){.skip = "conv_proj.weight",
                                    .extra = {{"conv_proj.weight", 4, {96, 1, 7, 0}}}});
    expect_refused(load_vit, path, "'conv_proj.weight' has a dimension of 0");
    /* a position count that is no square grid */
    rewrite(DEMO_VIT, path, &(edit){.skip = "encoder.pos_embedding",
                                    .extra = {{"encoder.pos_embedding", 3, {1, 18, 96}}}});
    expect_refused(load_vit, path, "18 positions");
    /* positions for an image of 7 * 1000 pixels: bounded before anything is sized by it */
    rewrite(DEMO_VIT, path, &(edit){.skip = "encoder.pos_embedding",
                                    .extra = {{"encoder.pos_embedding", 3, {1, 1000001, 1}}}});
    expect_refused(load_vit, path, "positional embedding");
    /* a head of 2^24 + 1 classes */
    rewrite(DEMO_VIT, path, &(edit){.skip = "heads.head.weight",
                                    .extra = {{"heads.head.weight", 2, {(1 << 24) + 1, 0}}}});
    expect_refused(load_vit, path, "heads.head.weight");
    /* the wrong shape for one block tensor */
    rewrite(DEMO_VIT, path, &(edit){.skip = "encoder.layers.encoder_layer_3.ln_2.bias",
                                    .extra = {{"encoder.layers.encoder_layer_3.ln_2.bias", 1,
                                               {95}}}});
    expect_refused(load_vit, path, "'encoder.layers.encoder_layer_3.ln_2.bias' is [95], "
                                   "expected [96]");
    /* torchvision's old MLP names without a patch embedding crashed (NULL) */
    rewrite(DEMO_VIT, path, &(edit){.skip = "conv_proj.weight",
                                    .rename_from = "encoder.layers.encoder_layer_0.mlp.0.weight",
                                    .rename_to = "encoder.layers.encoder_layer_0.mlp.linear_1.weight"});
    expect_refused(load_vit, path, "'conv_proj.weight' is missing");
    remove(path);
}

/* Cases that already behaved, kept honest: a truncated file, a missing file, not a ViT. */
static void test_vit_truncated_and_missing(void)
{
    if (!have_demo(DEMO_VIT)) return;
    const char *path = tmp_path("vit_cut.safetensors");
    unsigned char *bytes = NULL;
    size_t n = 0;
    TEST_OK(mcnn_read_file(&bytes, &n, DEMO_VIT));
    FILE *f = fopen(path, "wb");
    if (f && bytes) fwrite(bytes, 1, n / 2, f);
    if (f) fclose(f);
    free(bytes);
    expect_refused(load_vit, path, "exceed");
    expect_refused(load_vit, "/nonexistent/vit.safetensors", "cannot open");
    expect_refused(load_vit, DEMO_RESNET, "not a ViT");
    remove(path);
}

/* ---- ResNet -------------------------------------------------------------------------------- */

static void test_resnet_hostile_counts(void)
{
    if (!have_demo(DEMO_RESNET)) return;
    const char *path = tmp_path("resnet.safetensors");
    rewrite(DEMO_RESNET, path, &(edit){.extra = {{"layer1.99999.conv1.weight", 4, {0, 1, 1, 1}}}});
    expect_refused(load_resnet, path, "'layer1.99999.conv1.weight'", "block");
    rewrite(DEMO_RESNET, path, &(edit){.extra = {{"layer1.5.conv1.weight", 4, {24, 24, 3, 3}}}});
    expect_refused(load_resnet, path, "'layer1.5.conv1.weight' is block 5", "no tensor of block 1");
    rewrite(DEMO_RESNET, path, &(edit){.extra = {{"layer9.0.conv1.weight", 4, {0, 1, 1, 1}}}});
    expect_refused(load_resnet, path, "'layer9.0.conv1.weight' is stage 9", "1 to 8");
    rewrite(DEMO_RESNET, path, &(edit){.extra = {{"layer0.0.conv1.weight", 4, {0, 1, 1, 1}}}});
    expect_refused(load_resnet, path, "'layer0.0.conv1.weight' is stage 0");
    rewrite(DEMO_RESNET, path, &(edit){.extra = {{"layer5.0.conv1.weight", 4, {0, 1, 1, 1}}}});
    expect_refused(load_resnet, path, "layer5.0.conv1.weight", "no tensor of stage 4");
    /* A 256 KB tensor claiming a fourth stage of width 65536 (whose 3x3 convolutions would be
     * 150 GB): refused by the shapes the file holds, before allocating. */
    rewrite(DEMO_RESNET, path, &(edit){.extra = {{"layer4.0.conv1.weight", 4, {65536, 1, 1, 1}}}});
    expect_refused(load_resnet, path, "'layer4.0.conv1.weight' is [65536,1,1,1], expected "
                                      "[65536,96,3,3]");
    rewrite(DEMO_RESNET, path, &(edit){.skip = "layer2.0.bn1.running_var"});
    expect_refused(load_resnet, path, "'layer2.0.bn1.running_var' is missing");
    rewrite(DEMO_RESNET, path, &(edit){.skip = "conv1.weight",
                                       .extra = {{"conv1.weight", 4, {24, 1, 3, 0}}}});
    expect_refused(load_resnet, path, "'conv1.weight' has a dimension of 0");
    remove(path);
}

/* ---- CLIP ---------------------------------------------------------------------------------- */

static const mcnn_clip_config tiny_clip = {.embed_dim = 8, .image_size = 8, .patch_size = 4,
                                           .vision_width = 16, .vision_layers = 2,
                                           .vision_heads = 2, .context_length = 6,
                                           .vocab_size = 20, .text_width = 8, .text_layers = 2,
                                           .text_heads = 2};

static void test_clip_hostile_counts(void)
{
    mcnn_clip *m = NULL;
    TEST_OK(mcnn_clip_create(&m, &tiny_clip, 1));
    const char *good = tmp_path("clip.safetensors"), *path = tmp_path("clip_bad.safetensors");
    if (m) TEST_OK(mcnn_clip_save(m, good));
    mcnn_clip_free(m);
    TEST_OK(load_clip(good));
    rewrite(good, path, &(edit){.extra = {{"transformer.resblocks.99999.ln_1.weight", 1, {0}}}});
    expect_refused(load_clip, path, "'transformer.resblocks.99999.ln_1.weight'", "block");
    rewrite(good, path, &(edit){.extra = {{"visual.transformer.resblocks.7999.ln_1.weight", 1,
                                           {16}}}});
    expect_refused(load_clip, path, "'visual.transformer.resblocks.7999.ln_1.weight'",
                   "0 to 1023");
    rewrite(good, path, &(edit){.extra = {{"visual.transformer.resblocks.9.ln_1.weight", 1,
                                           {16}}}});
    expect_refused(load_clip, path, "'visual.transformer.resblocks.9.ln_1.weight' is block 9",
                   "no tensor of block 2");
    rewrite(good, path, &(edit){.extra = {{"visual.transformer.resblocks.2.ln_1.weight", 1,
                                           {16}}}});
    expect_refused(load_clip, path, "'visual.transformer.resblocks.2.attn.in_proj_weight' is "
                                    "missing");
    rewrite(good, path, &(edit){.skip = "token_embedding.weight",
                                .extra = {{"token_embedding.weight", 2, {1 << 30, 0}}}});
    expect_refused(load_clip, path, "'token_embedding.weight' has a dimension of 1073741824");
    rewrite(good, path, &(edit){.skip = "transformer.resblocks.1.mlp.c_proj.bias"});
    expect_refused(load_clip, path, "'transformer.resblocks.1.mlp.c_proj.bias' is missing");
    remove(good);
    remove(path);
}

/* ---- the parameter table ------------------------------------------------------------------- */

/* Binding looks every row up by name: 60 000 lookups in a 60 000-row table take milliseconds
 * with the hash index (the linear scan took seconds), and a name added twice is refused. */
static void test_params_find_is_fast(void)
{
    enum { ROWS = 60000 };
    mcnn_params p = {0};
    char name[64];
    for (int i = 0; i < ROWS; i++) {
        snprintf(name, sizeof name, "encoder.layers.encoder_layer_%d.ln_1.weight", i);
        TEST_OK(mcnn_params_add(&p, name, 1, (const int64_t[]){1}, 0));
    }
    const double t0 = now();
    int found = 0;
    for (int i = ROWS - 1; i >= 0; i--) {
        snprintf(name, sizeof name, "encoder.layers.encoder_layer_%d.ln_1.weight", i);
        const mcnn_param *row = mcnn_params_find(&p, name);
        found += row && row == &p.table[i];
    }
    const double seconds = now() - t0;
    TEST_ASSERT(found == ROWS, "found %d of %d rows", found, ROWS);
    TEST_ASSERT(seconds < 1.0, "%d lookups took %.2f s", ROWS, seconds);
    TEST_ASSERT(!mcnn_params_find(&p, "encoder.layers.encoder_layer_60000.ln_1.weight"),
                "a name not in the table is found");
    TEST_ASSERT(mcnn_params_add(&p, "encoder.layers.encoder_layer_7.ln_1.weight", 1,
                                (const int64_t[]){1}, 0) == MCNN_ERR_ARG &&
                    strstr(mcnn_last_error(), "added twice"),
                "a duplicate name is accepted");
    mcnn_params_free(&p);
}

/* The message named 0 floats: mcnn_params_free zeroed the total before it was printed. */
static void test_params_alloc_failure_message(void)
{
    mcnn_params p = {0};
    TEST_OK(mcnn_params_add(&p, "huge", 1, (const int64_t[]){(int64_t)1 << 60}, 0));
    TEST_ASSERT(mcnn_params_alloc(&p, 1) == MCNN_ERR_NOMEM, "2^60 floats allocated");
    TEST_ASSERT(strstr(mcnn_last_error(), "1152921504606846976 floats"),
                "message '%s' does not give the size", mcnn_last_error());
    mcnn_params_free(&p);
    TEST_ASSERT(mcnn_params_add(&p, "overflow", 2, (const int64_t[]){(int64_t)1 << 40,
                                                                    (int64_t)1 << 40}, 0) ==
                    MCNN_ERR_ARG, "a size that overflows is accepted");
    mcnn_params_free(&p);
}

/* ---- the classifier's preprocessing -------------------------------------------------------- */

static void test_classifier_bad_preprocess(void)
{
    if (!have_demo(DEMO_RESNET)) return;
    static const struct { const char *value, *needle; } cases[] = {
        {"{\"interpolation\":\"cubic\"}", "\"interpolation\""},
        {"{\"interpolation\":3}", "\"interpolation\""},
        {"{\"resize\":0}", "\"resize\""},
        {"{\"resize\":-5}", "\"resize\""},
        {"{\"resize\":28.5}", "\"resize\""},
        {"{\"resize\":100000}", "\"resize\""},
        {"{\"size\":16384}", "\"size\""},
        {"{\"size\":0}", "\"size\""},
        {"{\"size\":\"28\"}", "\"size\""},
        {"{\"channels\":3}", "\"channels\""},
        {"{\"mean\":\"a\"}", "\"mean\""},
        {"{\"mean\":[]}", "\"mean\""},
        {"{\"mean\":[0.1,0.2]}", "\"mean\""},
        {"{\"mean\":[1e39]}", "\"mean\""},
        {"{\"std\":[0]}", "\"std\""},
        {"{\"std\":-0.5}", "\"std\""},
        {"{\"std\":[1e-50]}", "\"std\""},
        {"{\"std\":[null]}", "\"std\""},
        {"[28]", "not a JSON object"},
        {"{\"size\":28", "\"preprocess\""},
    };
    const char *path = tmp_path("pre.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rewrite(DEMO_RESNET, path, &(edit){.meta = {{"preprocess", cases[i].value}}});
        expect_refused(load_classifier, path, "metadata \"preprocess\"", cases[i].needle);
    }
    /* the demo's own block loads as written */
    mcnn_classifier *c = NULL;
    TEST_OK(mcnn_classifier_load(&c, DEMO_RESNET, NULL));
    if (c) {
        const mcnn_preprocess_config *p = mcnn_classifier_get_preprocess(c);
        TEST_ASSERT(p->crop == 28 && p->resize == 28 && p->channels == 1 &&
                        fabsf(p->mean[0] - 0.286f) < 1e-6f && fabsf(p->std[0] - 0.353f) < 1e-6f &&
                        p->filter == MCNN_RESAMPLE_BILINEAR,
                    "demo preprocess %d %d %d %g %g", p->crop, p->resize, p->channels,
                    p->mean[0], p->std[0]);
    }
    mcnn_classifier_free(c);
    /* one mean for every channel, bicubic, a larger resize: accepted */
    rewrite(DEMO_RESNET, path, &(edit){.meta = {{"preprocess", "{\"size\":32,\"resize\":36,"
                                                  "\"mean\":0.5,\"std\":[0.25],"
                                                  "\"interpolation\":\"bicubic\"}"}}});
    TEST_OK(mcnn_classifier_load(&c, path, NULL));
    if (c) {
        const mcnn_preprocess_config *p = mcnn_classifier_get_preprocess(c);
        TEST_ASSERT(p->crop == 32 && p->resize == 36 && p->mean[0] == 0.5f &&
                        p->std[0] == 0.25f && p->filter == MCNN_RESAMPLE_BICUBIC,
                    "preprocess %d %d %g %g %d", p->crop, p->resize, p->mean[0], p->std[0],
                    (int)p->filter);
        TEST_ASSERT(mcnn_classifier_image_size(c) == 32, "ResNet size from the metadata");
    }
    mcnn_classifier_free(c);
    /* an absurd size asked for by the caller */
    mcnn_classifier_load_options opt = {.image_size = 16384};
    TEST_ASSERT(mcnn_classifier_load(&c, DEMO_RESNET, &opt) == MCNN_ERR_ARG && !c &&
                    strstr(mcnn_last_error(), DEMO_RESNET),
                "image size 16384 accepted: %s", mcnn_last_error());
    remove(path);
}

/* ---- a folder where a file is expected (audit item 6) -------------------------------------- */

static void test_directory_as_file(void)
{
    unsigned char *bytes = (unsigned char *)"x";
    size_t n = 7;
    TEST_ASSERT(mcnn_read_file(&bytes, &n, "tests") == MCNN_ERR_IO && !bytes && n == 0,
                "a directory was read");
    TEST_ASSERT(strstr(mcnn_last_error(), "tests: is a directory"), "message '%s'",
                mcnn_last_error());
    TEST_ASSERT(mcnn_read_file_maybe_gzip(&bytes, &n, "tests") == MCNN_ERR_IO &&
                    strstr(mcnn_last_error(), "is a directory"),
                "message '%s'", mcnn_last_error());
    expect_refused(load_classifier, "tests", "directory");
    /* a character device has no size to trust but reads fine */
    TEST_OK(mcnn_read_file(&bytes, &n, "/dev/null"));
    TEST_ASSERT(bytes && n == 0, "/dev/null gave %zu bytes", n);
    free(bytes);
}

/* ---- what the headers promise (issue 13 item 8) -------------------------------------------- */

/* vit.h: an explicit heads option wins over the metadata; the metadata's "heads", "num_heads"
 * (torchvision's argument) or either in "config" come next; width / 64 last, and when it does
 * not divide the error says how heads are decided. */
static void test_vit_heads_rules(void)
{
    mcnn_vit_config cfg = {.image_size = 8, .patch_size = 4, .in_channels = 1, .width = 24,
                           .layers = 1, .heads = 3, .mlp_dim = 8, .num_classes = 2,
                           .ln_eps = 1e-6f};
    mcnn_vit *m = NULL;
    TEST_OK(mcnn_vit_create(&m, &cfg, 1));
    const char *saved = tmp_path("heads.safetensors"), *path = tmp_path("heads2.safetensors");
    if (m) TEST_OK(mcnn_vit_save(m, saved));
    mcnn_vit_free(m);
    m = NULL;
    mcnn_vit_load_options two = {.heads = 2};
    TEST_OK(mcnn_vit_load(&m, saved, &two));
    TEST_ASSERT(m && mcnn_vit_get_config(m)->heads == 2, "the option lost to metadata \"heads\"");
    mcnn_vit_free(m);
    m = NULL;
    TEST_OK(mcnn_vit_load(&m, saved, NULL));
    TEST_ASSERT(m && mcnn_vit_get_config(m)->heads == 3, "metadata \"heads\" not used");
    mcnn_vit_free(m);
    m = NULL;
    rewrite(saved, path, &(edit){.meta = {{"heads", NULL}, {"config", NULL},
                                          {"num_heads", "6"}}});
    TEST_OK(mcnn_vit_load(&m, path, NULL));
    TEST_ASSERT(m && mcnn_vit_get_config(m)->heads == 6, "metadata \"num_heads\" not used");
    mcnn_vit_free(m);
    m = NULL;
    rewrite(saved, path, &(edit){.meta = {{"heads", NULL},
                                          {"config", "{\"arch\":\"vit\",\"num_heads\":4}"}}});
    TEST_OK(mcnn_vit_load(&m, path, NULL));
    TEST_ASSERT(m && mcnn_vit_get_config(m)->heads == 4, "\"num_heads\" in \"config\" not used");
    mcnn_vit_free(m);
    m = NULL;
    rewrite(saved, path, &(edit){.meta = {{"heads", "5"}}});
    expect_refused(load_vit, path, "metadata \"heads\" is '5'", "width 24");
    rewrite(saved, path, &(edit){.meta = {{"heads", NULL}, {"config", NULL}}});
    expect_refused(load_vit, path, "width 24 is not a multiple of 64", "width / 64",
                   "mcnn_vit_load_options.heads");
    TEST_ASSERT(mcnn_vit_load(&m, path, &(mcnn_vit_load_options){.heads = 5}) != MCNN_OK &&
                    strstr(mcnn_last_error(), path) && strstr(mcnn_last_error(), "5 heads"),
                "5 heads of width 24: '%s'", mcnn_last_error());
    remove(saved);
    remove(path);
}

/* clip.h: the options win over the metadata too. */
static void test_clip_heads_option_wins(void)
{
    mcnn_clip *m = NULL;
    TEST_OK(mcnn_clip_create(&m, &tiny_clip, 1));
    const char *path = tmp_path("clip_heads.safetensors");
    if (m) TEST_OK(mcnn_clip_save(m, path));
    mcnn_clip_free(m);
    m = NULL;
    mcnn_clip_load_options opt = {.vision_heads = 4, .text_heads = 1};
    TEST_OK(mcnn_clip_load(&m, path, &opt));
    TEST_ASSERT(m && mcnn_clip_get_config(m)->vision_heads == 4 &&
                    mcnn_clip_get_config(m)->text_heads == 1,
                "options lost to the metadata");
    mcnn_clip_free(m);
    m = NULL;
    TEST_OK(mcnn_clip_load(&m, path, NULL));
    TEST_ASSERT(m && mcnn_clip_get_config(m)->vision_heads == 2 &&
                    mcnn_clip_get_config(m)->text_heads == 2,
                "metadata heads not used");
    mcnn_clip_free(m);
    remove(path);
}

/* clip.h: "text.ln_final" is the pooled end-of-text rows (N, w) with *T = 0, so that
 * encode_text = rows · text_projection. */
static void test_clip_ln_final_is_pooled(void)
{
    enum { N = 3 };
    mcnn_clip *m = NULL;
    TEST_OK(mcnn_clip_create(&m, &tiny_clip, 2));
    if (!m) return;
    const int w = tiny_clip.text_width, E = tiny_clip.embed_dim;
    const int32_t tokens[N * 6] = {17, 3, 19, 0, 0, 0, 17, 5, 6, 7, 19, 0, 17, 19, 0, 0, 0, 0};
    float feat[N * 8], want[N * 8] = {0};
    TEST_OK(mcnn_clip_encode_text(m, feat, tokens, N));
    int T = -1;
    const float *rows = mcnn_clip_intermediate(m, "text.ln_final", &T);
    const float *proj = mcnn_params_data(mcnn_clip_params(m), "text_projection"); /* (w, E) */
    TEST_ASSERT(rows && T == 0, "text.ln_final: T = %d", T);
    if (rows && proj) {
        for (int n = 0; n < N; n++)
            for (int e = 0; e < E; e++)
                for (int k = 0; k < w; k++) want[n * E + e] += rows[n * w + k] * proj[k * E + e];
        test_close_rel("ln_final rows @ text_projection", feat, want, (size_t)N * E, 1e-5);
    }
    mcnn_clip_free(m);
}

/* resnet.h: num_batches_tracked is read on load (from the first BN), counted up by every
 * training forward and written on save. */
static void test_resnet_num_batches_tracked(void)
{
    mcnn_resnet_config cfg = {.block = MCNN_RESNET_BASIC, .stem = MCNN_RESNET_STEM_SMALL,
                              .in_channels = 1, .stem_width = 4, .stages = 1, .blocks = {1},
                              .widths = {4}, .num_classes = 2, .bn_eps = 1e-5f,
                              .bn_momentum = 0.1f};
    mcnn_resnet *m = NULL, *back = NULL;
    TEST_OK(mcnn_resnet_create(&m, &cfg, 1));
    if (!m) return;
    float x[2 * 8 * 8], logits[4];
    test_fill_random(x, sizeof x / sizeof x[0], 1);
    for (int i = 0; i < 2; i++)
        TEST_OK(mcnn_resnet_forward(m, logits, x, 2, 8, 8, MCNN_RESNET_TRAIN));
    TEST_OK(mcnn_resnet_forward(m, logits, x, 2, 8, 8, MCNN_RESNET_EVAL)); /* not counted */
    const char *a = tmp_path("nbt_a.safetensors"), *b = tmp_path("nbt_b.safetensors");
    TEST_OK(mcnn_resnet_save(m, a));
    TEST_OK(mcnn_resnet_load(&back, a, NULL));
    if (back) {
        TEST_OK(mcnn_resnet_forward(back, logits, x, 2, 8, 8, MCNN_RESNET_TRAIN));
        TEST_OK(mcnn_resnet_save(back, b));
    }
    int32_t saved[2] = {-1, -1};
    for (int i = 0; i < 2; i++) {
        mcnn_safetensors *st = NULL;
        TEST_OK(mcnn_safetensors_open(&st, i ? b : a));
        const mcnn_st_tensor *t = st ? mcnn_safetensors_find(st, "layer1.0.bn2.num_batches_tracked")
                                     : NULL;
        if (t) TEST_OK(mcnn_safetensors_read_i32(st, t, &saved[i]));
        mcnn_safetensors_close(st);
    }
    TEST_ASSERT(saved[0] == 2 && saved[1] == 3, "num_batches_tracked saved %d then %d (want 2, 3)",
                saved[0], saved[1]);
    mcnn_resnet_free(m);
    mcnn_resnet_free(back);
    remove(a);
    remove(b);
}

int main(int argc, char **argv)
{
    /* one test by name (argv[1]), e.g. to watch it fail on older code */
#define RUN(fn)                                                                             \
    do {                                                                                    \
        if (argc < 2 || strcmp(argv[1], #fn) == 0) TEST_RUN(fn);                            \
    } while (0)
    RUN(test_vit_layer_index_far_out);
    RUN(test_vit_layers_incomplete);
    RUN(test_vit_width8_far_layer);
    RUN(test_vit_bad_config_tensors);
    RUN(test_vit_truncated_and_missing);
    RUN(test_resnet_hostile_counts);
    RUN(test_clip_hostile_counts);
    RUN(test_params_find_is_fast);
    RUN(test_params_alloc_failure_message);
    RUN(test_classifier_bad_preprocess);
    RUN(test_directory_as_file);
    RUN(test_vit_heads_rules);
    RUN(test_clip_heads_option_wins);
    RUN(test_clip_ln_final_is_pooled);
    RUN(test_resnet_num_batches_tracked);
    return test_summary();
}
