/* CLIP against the official OpenAI code (../shared/ref, computed in float64 by clip/model.py on
 * a tiny randomised configuration): image and text features, logits, MovieCLIP scores and
 * top 5, intermediates, the contrastive loss, every parameter's gradient and one AdamW step;
 * then the same weights under Hugging Face's names, and bad checkpoints. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"

#include <unistd.h>

static mcnn_clip *model;
static mcnn_safetensors *ref, *train_ref;

static const char *tmp_path(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/mcnn_test_clip_%d_%s", (int)getpid(), name);
    return buf;
}

static int have_data(void)
{
    if (model && ref && train_ref) return 1;
    TEST_SKIP("the CLIP reference files are absent from %s", test_shared_path("ref"));
    return 0;
}

static void test_clip_config(void)
{
    if (!have_data()) return;
    const mcnn_clip_config *c = mcnn_clip_get_config(model);
    TEST_ASSERT(c->embed_dim == 64 && c->image_size == 64 && c->patch_size == 16 &&
                c->vision_width == 128 && c->vision_layers == 2 && c->vision_heads == 2 &&
                c->text_width == 64 && c->text_layers == 2 && c->text_heads == 2 &&
                c->context_length == 77 && c->vocab_size == 49408,
                "config read off the shapes and metadata");
}

static void test_clip_image_features(void)
{
    if (!have_data()) return;
    float *image = test_golden(ref, "image", NULL), *want = test_golden(ref, "image_features", NULL);
    float feat[4 * 64];
    TEST_OK(mcnn_clip_encode_image(model, feat, image, 4));
    test_close_rel("image_features", feat, want, 4 * 64, 1e-4);
    float *post = test_golden(ref, "inter.visual.ln_post", NULL);
    test_close_rel("inter.visual.ln_post", mcnn_clip_intermediate(model, "visual.ln_post", NULL),
                   post, 4 * 128, 1e-4);
    float *pre = test_golden(ref, "inter.visual.ln_pre", NULL);
    test_close_rel("inter.visual.ln_pre", mcnn_clip_intermediate(model, "visual.ln_pre", NULL), pre,
                   4 * 17 * 128, 1e-4);
    free(post);
    free(pre);
    free(image);
    free(want);
}

/* The text features for the 179 MovieCLIP prompts, then the MovieCLIP scores
 * softmax(100 · cos) and their top 5. */
static void test_clip_text_features_and_movieclip_scores(void)
{
    if (!have_data()) return;
    enum { L = 179, E = 64 };
    int32_t *text = test_golden_i32(ref, "text", NULL);
    float *want = test_golden(ref, "text_features", NULL);
    float *tf = malloc(L * E * sizeof(float)), *tn = malloc(L * E * sizeof(float));
    float norms[L], img[4 * E], in[4 * E], inorm[4];
    TEST_OK(mcnn_clip_encode_text(model, tf, text, L));
    test_close_rel("text_features", tf, want, L * E, 1e-4);

    float *image = test_golden(ref, "image", NULL);
    TEST_OK(mcnn_clip_encode_image(model, img, image, 4));
    mcnn_l2_normalize_forward(in, inorm, img, 4, E);
    mcnn_l2_normalize_forward(tn, norms, tf, L, E);
    float logits[4 * L], scores[4 * L];
    mcnn_clip_logits_forward(logits, in, tn, logf(mcnn_clip_logit_scale(model)), 4, L, E);
    float *want_logits = test_golden(ref, "logits_per_image", NULL);
    test_close_rel("logits_per_image", logits, want_logits, 4 * L, 1e-4);
    mcnn_clip_logits_forward(logits, in, tn, logf(100.0f), 4, L, E);
    mcnn_softmax_forward(scores, logits, 4, L);
    float *want_scores = test_golden(ref, "movieclip_scores", NULL);
    test_close_rel("movieclip_scores", scores, want_scores, 4 * L, 1e-4);
    int32_t *top5 = test_golden_i32(ref, "movieclip_top5", NULL);
    for (int i = 0; i < 4 && top5; i++) {
        int picked[5];
        for (int k = 0; k < 5; k++) { /* the k-th largest, by selection */
            int best = -1;
            for (int j = 0; j < L; j++) {
                int taken = 0;
                for (int q = 0; q < k; q++) taken |= picked[q] == j;
                if (!taken && (best < 0 || scores[i * L + j] > scores[i * L + best])) best = j;
            }
            picked[k] = best;
            TEST_ASSERT(best == top5[i * 5 + k], "image %d rank %d: label %d, reference %d", i, k,
                        best, top5[i * 5 + k]);
        }
    }
    free(top5);
    free(want_scores);
    free(want_logits);
    free(image);
    free(text);
    free(want);
    free(tf);
    free(tn);
}

/* Inference on 2 threads runs each thread's share of the batch through every block (one lane
 * per thread): image features (4 images) and text features (the 179 prompts, an uneven split)
 * have the same bits as on 1 thread. */
static void test_clip_eval_lanes(void)
{
    if (!have_data()) return;
    enum { L = 179, E = 64 };
    int32_t *text = test_golden_i32(ref, "text", NULL);
    float *image = test_golden(ref, "image", NULL);
    float *tf[2] = {malloc(L * E * sizeof(float)), malloc(L * E * sizeof(float))}, img[2][4 * E];
    const int before = mcnn_get_threads();
    for (int t = 0; t < 2; t++) {
        mcnn_set_threads(t + 1);
        TEST_OK(mcnn_clip_encode_text(model, tf[t], text, L));
        TEST_OK(mcnn_clip_encode_image(model, img[t], image, 4));
    }
    mcnn_set_threads(before);
    test_close_array("text features, 1 vs 2 threads", tf[1], tf[0], L * E, 0, 0);
    test_close_array("image features, 1 vs 2 threads", img[1], img[0], 4 * E, 0, 0);
    free(tf[0]);
    free(tf[1]);
    free(text);
    free(image);
}

static void test_clip_train_step(void)
{
    if (!have_data()) return;
    float *image = test_golden(train_ref, "image", NULL);
    int32_t *text = test_golden_i32(train_ref, "text", NULL);
    float loss, logits[16];
    mcnn_params *p = mcnn_clip_params(model);
    mcnn_params_zero_grad(p);
    TEST_OK(mcnn_clip_train_forward(model, &loss, logits, image, text, 4));
    float *want_loss = test_golden(train_ref, "loss", NULL);
    float *want_logits = test_golden(train_ref, "logits_per_image", NULL);
    if (want_loss) TEST_CLOSE("loss", loss, want_loss[0], 1e-5, 0);
    test_close_rel("train logits_per_image", logits, want_logits, 16, 1e-4);
    TEST_OK(mcnn_clip_train_backward(model, 1.0f));
    char key[192];
    for (int i = 0; i < p->count; i++) {
        const mcnn_param *row = &p->table[i];
        snprintf(key, sizeof key, "grad.%s", row->name);
        float *want = test_golden(train_ref, key, NULL);
        if (want) test_close_rel(key, p->grad + row->offset, want, row->numel, 1e-4);
        free(want);
    }
    /* torch 1.13's AdamW decays every parameter (one group); fed the reference gradients,
     * since the key bias's gradient is analytically zero and its stored value is noise. */
    float *saved = malloc(p->total * sizeof(float));
    memcpy(saved, p->data, p->total * sizeof(float));
    for (int i = 0; i < p->count; i++) {
        const mcnn_param *row = &p->table[i];
        snprintf(key, sizeof key, "grad.%s", row->name);
        float *want = test_golden(train_ref, key, NULL);
        if (want) memcpy(p->grad + row->offset, want, row->numel * sizeof(float));
        free(want);
    }
    mcnn_optim opt;
    TEST_OK(mcnn_optim_init(&opt, MCNN_OPTIM_ADAMW, p->total));
    opt.lr = 1e-3, opt.beta1 = 0.9, opt.beta2 = 0.98, opt.eps = 1e-6, opt.weight_decay = 0.2;
    TEST_OK(mcnn_optim_step(&opt, p->data, p->grad, NULL, 0));
    for (int i = 0; i < p->count; i++) {
        const mcnn_param *row = &p->table[i];
        snprintf(key, sizeof key, "adamw.%s", row->name);
        float *want = test_golden(train_ref, key, NULL);
        if (want) test_close_rel(key, p->data + row->offset, want, row->numel, 1e-5);
        free(want);
    }
    memcpy(p->data, saved, p->total * sizeof(float)); /* later tests use the reference weights */
    mcnn_optim_free(&opt);
    free(saved);
    free(want_loss);
    free(want_logits);
    free(image);
    free(text);
}

/* The training forward keeps per-block intermediates; compare the first block of each tower. */
static void test_clip_intermediates(void)
{
    if (!have_data()) return;
    float *image = test_golden(ref, "image", NULL);
    int32_t *text = test_golden_i32(ref, "text", NULL);
    float loss;
    TEST_OK(mcnn_clip_train_forward(model, &loss, NULL, image, text, 4));
    float *vb0 = test_golden(ref, "inter.visual.block0", NULL);
    test_close_rel("inter.visual.block0", mcnn_clip_intermediate(model, "visual.block0", NULL), vb0,
                   4 * 17 * 128, 1e-4);
    int T = 0;
    const float *tb0 = mcnn_clip_intermediate(model, "text.block0", &T);
    float *want = test_golden(ref, "inter.text.block0", NULL); /* (8, 77, 64), first 8 prompts */
    TEST_ASSERT(T > 0 && T <= 77, "positions computed: %d", T);
    for (int n = 0; n < 4 && want && tb0; n++) /* only the positions we computed exist */
        test_close_rel("inter.text.block0", tb0 + (size_t)n * T * 64, want + (size_t)n * 77 * 64,
                       (size_t)T * 64, 1e-4);
    free(want);
    free(vb0);
    free(image);
    free(text);
}

/* Hugging Face CLIPModel names: q/k/v split, projections as Linear weights (transposed). */
static void test_clip_hugging_face_names(void)
{
    if (!have_data()) return;
    mcnn_params *p = mcnn_clip_params(model);
    const mcnn_clip_config *c = mcnn_clip_get_config(model);
    mcnn_st_entry *e = calloc((size_t)p->count * 3 + 2, sizeof *e);
    char(*names)[160] = calloc((size_t)p->count * 3 + 2, 160);
    float *vproj_t = malloc(128 * 64 * sizeof(float)), *tproj_t = malloc(64 * 64 * sizeof(float));
    int64_t position_ids[77];
    for (int i = 0; i < 77; i++) position_ids[i] = i;
    int k = 0;
    for (int i = 0; i < p->count; i++) {
        const mcnn_param *row = &p->table[i];
        const float *data = p->data + row->offset;
        const char *n = row->name;
        int vision = strncmp(n, "visual.", 7) == 0, layer = -1, W = vision ? 128 : 64;
        const char *tower = vision ? "vision_model" : "text_model";
        sscanf(vision ? n + 7 : n, "transformer.resblocks.%d.", &layer);
        const char *tail = strchr(strstr(n, "resblocks.") ? strstr(n, "resblocks.") + 10 : n, '.');
        if (strstr(n, "in_proj_")) {
            int bias = strstr(n, "bias") != NULL;
            for (int q = 0; q < 3; q++) {
                snprintf(names[k], 160, "%s.encoder.layers.%d.self_attn.%c_proj.%s", tower, layer,
                         "qkv"[q], bias ? "bias" : "weight");
                e[k] = (mcnn_st_entry){names[k], MCNN_DTYPE_F32, bias ? 1 : 2, {W, W},
                                       data + (size_t)q * W * (bias ? 1 : W)};
                k++;
            }
            continue;
        }
        if (strcmp(n, "visual.proj") == 0 || strcmp(n, "text_projection") == 0) {
            float *t = vision ? vproj_t : tproj_t;
            for (int a = 0; a < W; a++)
                for (int b = 0; b < 64; b++) t[b * W + a] = data[a * 64 + b];
            snprintf(names[k], 160, "%s", vision ? "visual_projection.weight" : "text_projection.weight");
            e[k] = (mcnn_st_entry){names[k], MCNN_DTYPE_F32, 2, {64, W}, t};
            k++;
            continue;
        }
        static const char *map[][2] = {
            {"visual.class_embedding", "vision_model.embeddings.class_embedding"},
            {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
            {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
            {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight"},
            {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias"},
            {"visual.ln_post.weight", "vision_model.post_layernorm.weight"},
            {"visual.ln_post.bias", "vision_model.post_layernorm.bias"},
            {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
            {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
            {"ln_final.weight", "text_model.final_layer_norm.weight"},
            {"ln_final.bias", "text_model.final_layer_norm.bias"},
            {"logit_scale", "logit_scale"},
            {".ln_1.", ".layer_norm1."}, {".ln_2.", ".layer_norm2."},
            {".attn.out_proj.", ".self_attn.out_proj."}, {".mlp.c_fc.", ".mlp.fc1."},
            {".mlp.c_proj.", ".mlp.fc2."}};
        for (size_t q = 0; q < sizeof map / sizeof map[0]; q++) {
            if (layer < 0 && strcmp(n, map[q][0]) == 0) snprintf(names[k], 160, "%s", map[q][1]);
            if (layer >= 0 && tail && strncmp(tail, map[q][0], strlen(map[q][0])) == 0)
                snprintf(names[k], 160, "%s.encoder.layers.%d%s%s", tower, layer, map[q][1],
                         tail + strlen(map[q][0]));
        }
        TEST_ASSERT(names[k][0], "no HF name for %s", n);
        e[k] = (mcnn_st_entry){names[k], MCNN_DTYPE_F32, row->ndim, {0}, data};
        memcpy(e[k].shape, row->shape, sizeof row->shape);
        k++;
    }
    e[k++] = (mcnn_st_entry){"text_model.embeddings.position_ids", MCNN_DTYPE_I64, 2, {1, 77},
                             position_ids};
    const char *path = tmp_path("hf.safetensors");
    char config[128];
    snprintf(config, sizeof config, "{\"transformer_heads\":%d}", c->text_heads);
    const char *meta[] = {"vision_heads", "2", "config", config};
    TEST_OK(mcnn_safetensors_write(path, e, k, meta, 2));
    mcnn_clip *hf = NULL;
    TEST_OK(mcnn_clip_load(&hf, path, NULL));
    if (hf) {
        float *image = test_golden(ref, "image", NULL), *want = test_golden(ref, "image_features", NULL);
        int32_t *text = test_golden_i32(ref, "text", NULL);
        float *want_t = test_golden(ref, "text_features", NULL), feat[8 * 64];
        TEST_OK(mcnn_clip_encode_image(hf, feat, image, 4));
        test_close_rel("HF image_features", feat, want, 4 * 64, 1e-4);
        TEST_OK(mcnn_clip_encode_text(hf, feat, text, 8));
        test_close_rel("HF text_features", feat, want_t, 8 * 64, 1e-4);
        free(image);
        free(want);
        free(text);
        free(want_t);
    }
    mcnn_clip_free(hf);
    remove(path);
    free(e);
    free(names);
    free(vproj_t);
    free(tproj_t);
}

static void expect_error(const char *path, const char *needle)
{
    mcnn_clip *m = NULL;
    mcnn_status s = mcnn_clip_load(&m, path, NULL);
    TEST_ASSERT(s != MCNN_OK && !m, "%s loaded", path);
    TEST_ASSERT(strstr(mcnn_last_error(), needle) != NULL, "message '%s' lacks '%s'",
                mcnn_last_error(), needle);
}

/* Checkpoints with one tensor missing, wrongly shaped, or one too many. */
static void test_clip_bad_checkpoints(void)
{
    if (!have_data()) return;
    mcnn_params *p = mcnn_clip_params(model);
    mcnn_st_entry *e = calloc((size_t)p->count + 1, sizeof *e);
    char *names = malloc((size_t)p->count * 128);
    int n = mcnn_params_entries(p, 0, "", e, names);
    const char *meta[] = {"vision_heads", "2", "config", "{\"transformer_heads\":2}"};
    const char *path = tmp_path("bad.safetensors");
    int victim = 10;
    mcnn_st_entry keep = e[victim];
    e[victim] = e[n - 1]; /* drop one */
    TEST_OK(mcnn_safetensors_write(path, e, n - 1, meta, 2));
    expect_error(path, keep.name);
    e[victim] = keep;
    e[victim].shape[0] += 1; /* wrong shape */
    TEST_OK(mcnn_safetensors_write(path, e, n, meta, 2));
    expect_error(path, keep.name);
    e[victim] = keep;
    e[n] = (mcnn_st_entry){"visual.extra", MCNN_DTYPE_F32, 1, {4}, p->data}; /* one too many */
    TEST_OK(mcnn_safetensors_write(path, e, n + 1, meta, 2));
    expect_error(path, "visual.extra");
    remove(path);
    expect_error("/nonexistent/clip.safetensors", "/nonexistent/clip.safetensors");
    free(e);
    free(names);
}

/* make test-full: a full ViT-B/32 CLIP with OpenAI's initialisation, saved under OpenAI's
 * names, loaded back (config from the shapes, heads by OpenAI's width/64 rule), encoded. */
static void test_clip_vit_b32_full_size(void)
{
    mcnn_clip_config cfg = {.embed_dim = 512, .image_size = 224, .patch_size = 32,
                            .vision_width = 768, .vision_layers = 12, .vision_heads = 12,
                            .context_length = 77, .vocab_size = 49408, .text_width = 512,
                            .text_layers = 12, .text_heads = 8};
    mcnn_clip *a = NULL, *b = NULL;
    TEST_OK(mcnn_clip_create(&a, &cfg, 3));
    const char *path = tmp_path("b32.safetensors");
    if (a) TEST_OK(mcnn_clip_save(a, path));
    mcnn_clip_free(a);
    TEST_OK(mcnn_clip_load(&b, path, NULL));
    remove(path);
    if (!b) return;
    const mcnn_clip_config *c = mcnn_clip_get_config(b);
    TEST_ASSERT(c->vision_layers == 12 && c->text_layers == 12 && c->vision_heads == 12 &&
                c->text_heads == 8 && c->embed_dim == 512 && c->image_size == 224,
                "ViT-B/32 config read back");
    float *images = malloc(2 * 3 * 224 * 224 * sizeof(float)), feat[2 * 512];
    test_fill_random(images, 2 * 3 * 224 * 224, 9);
    int32_t tokens[2 * 77] = {49406, 320, 1125, 539, 49407};
    memcpy(tokens + 77, tokens, 5 * sizeof(int32_t));
    TEST_OK(mcnn_clip_encode_image(b, feat, images, 2));
    int finite = 1;
    for (int i = 0; i < 2 * 512; i++) finite &= isfinite(feat[i]);
    TEST_OK(mcnn_clip_encode_text(b, feat, tokens, 2));
    for (int i = 0; i < 2 * 512; i++) finite &= isfinite(feat[i]);
    TEST_ASSERT(finite, "finite features");
    test_close_array("identical texts, identical features", feat + 512, feat, 512, 0, 0);
    free(images);
    mcnn_clip_free(b);
}

int main(void)
{
    char path[3][1024];
    snprintf(path[0], sizeof path[0], "%s", test_shared_path("ref/clip_tiny.safetensors"));
    snprintf(path[1], sizeof path[1], "%s", test_shared_path("ref/clip_tiny_ref.safetensors"));
    snprintf(path[2], sizeof path[2], "%s", test_shared_path("ref/clip_tiny_train_ref.safetensors"));
    if (mcnn_clip_load(&model, path[0], NULL) != MCNN_OK) {
        fprintf(stderr, "  %s\n", mcnn_last_error());
        model = NULL;
    }
    if (mcnn_safetensors_open(&ref, path[1]) != MCNN_OK) ref = NULL;
    if (mcnn_safetensors_open(&train_ref, path[2]) != MCNN_OK) train_ref = NULL;
    TEST_RUN(test_clip_config);
    TEST_RUN(test_clip_image_features);
    TEST_RUN(test_clip_text_features_and_movieclip_scores);
    TEST_RUN(test_clip_eval_lanes);
    TEST_RUN(test_clip_train_step);
    TEST_RUN(test_clip_intermediates);
    TEST_RUN(test_clip_hugging_face_names);
    TEST_RUN(test_clip_bad_checkpoints);
    if (getenv("MCNN_TEST_FULL")) TEST_RUN(test_clip_vit_b32_full_size);
    mcnn_clip_free(model);
    if (ref) mcnn_safetensors_close(ref);
    if (train_ref) mcnn_safetensors_close(train_ref);
    return test_summary();
}
