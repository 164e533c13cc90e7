/* The Python binding (apps/python/libmcnn.py) against the C API, bit for bit: each test computes
 * its results here, writes them to a folder, and runs apps/python/test_libmcnn.py with Debian's
 * /usr/bin/python3 on this build's libmcnn.so (MCNN_LIB), which computes the same through the
 * binding and compares bytes; its "FAIL" lines become this test's failures.  Also README's
 * Python example, extracted and run.  Skipped, saying why, when python3 is absent. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"
#include "readme_example.h"

#include <strings.h>
#include <unistd.h>

static char dir[256];
static char env[1024]; /* MCNN_LIB=... (and the sanitizer runtime for a SANITIZE build) */
static const char *const samples[] = {"weights/samples/0002-trouser.png",
                                      "weights/samples/0000-ankle-boot.png",
                                      "weights/samples/0013-dress.png"};
#define N_SAMPLES ((int)(sizeof samples / sizeof samples[0]))

static int have_python(void)
{
    if (access("/usr/bin/python3", X_OK) == 0) return 1;
    TEST_SKIP("/usr/bin/python3 is not installed: the Python binding is not tested");
    return 0;
}

static void put_file(const char *name, const void *data, size_t bytes, const char *mode)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, mode);
    TEST_ASSERT(f && fwrite(data, 1, bytes, f) == bytes && fclose(f) == 0, "cannot write %s",
                path);
}

static void put_floats(const char *name, const float *x, size_t n)
{
    put_file(name, x, n * sizeof *x, "wb");
}

/* One line (with its newline) appended to dir/name. */
static void put_line(const char *name, const char *line)
{
    char text[1024];
    snprintf(text, sizeof text, "%s\n", line);
    put_file(name, text, strlen(text), "ab");
}

/* Run the Python half on one section; every "FAIL" line it prints fails this test. */
static void run_python(const char *section)
{
    char cmd[2048], line[1024];
    snprintf(cmd, sizeof cmd, "%s /usr/bin/python3 apps/python/test_libmcnn.py %s %s 2>&1", env,
             section, dir);
    FILE *p = popen(cmd, "r");
    TEST_ASSERT(p, "cannot run %s", cmd);
    if (!p) return;
    int oks = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "ok ", 3) == 0)
            oks++;
        else
            TEST_ASSERT(0, "python: %s", line);
    }
    int status = pclose(p);
    TEST_ASSERT(status == 0 && oks > 0, "python exited with %d after %d checks", status, oks);
}

/* The long way round the binding's mcnn_classifier_preprocess_image: the checkpoint's settings
 * through mcnn_preprocess. */
static mcnn_status preprocess_for(float **x, mcnn_classifier *c, const char *path)
{
    const mcnn_preprocess_config *cfg = mcnn_classifier_get_preprocess(c);
    mcnn_image img = {0};
    int C, H, W;
    mcnn_status s = mcnn_image_load(&img, path);
    if (s == MCNN_OK) s = mcnn_preprocess_shape(&C, &H, &W, img.width, img.height, cfg);
    if (s == MCNN_OK) *x = malloc(sizeof(float) * C * H * W);
    if (s == MCNN_OK) s = mcnn_preprocess(*x, &img, cfg);
    mcnn_image_free(&img);
    return s;
}

/* Logits, softmax and sigmoid scores, features and the first input of one checkpoint. */
/* The logits at int8, loaded inference only (what Classifier(path, precision="int8") asks). */
static void classifier_int8_results(const char *model, const char *base, int K)
{
    const mcnn_classifier_load_options o = {.precision = MCNN_PRECISION_INT8, .inference_only = 1};
    mcnn_classifier *c = NULL;
    TEST_OK(mcnn_classifier_load(&c, model, &o));
    if (!c) return;
    float *logits = malloc(sizeof(float) * K * N_SAMPLES);
    for (int i = 0; i < N_SAMPLES; i++) {
        float *x = NULL;
        TEST_OK(preprocess_for(&x, c, samples[i]));
        TEST_OK(mcnn_classifier_forward(c, logits + (size_t)i * K, x, 1, 0));
        free(x);
    }
    char name[512];
    snprintf(name, sizeof name, "%s.logits_int8", base);
    put_floats(name, logits, (size_t)K * N_SAMPLES);
    free(logits);
    mcnn_classifier_free(c);
}

static void classifier_results(const char *model)
{
    mcnn_classifier *c = NULL;
    TEST_OK(mcnn_classifier_load(&c, model, NULL));
    if (!c) return;
    put_line("models", model);
    char name[512];
    const char *base = strrchr(model, '/') + 1;
    int K = mcnn_classifier_num_classes(c);
    for (int k = 0; k < K; k++) {
        snprintf(name, sizeof name, "%s.labels", base);
        put_line(name, mcnn_classifier_label(c, k));
    }
    float *logits = malloc(sizeof(float) * K * N_SAMPLES), *scores = malloc(sizeof(float) * K),
          *sigmoid = malloc(sizeof(float) * K * N_SAMPLES), *features = NULL;
    int D = 0;
    for (int i = 0; i < N_SAMPLES; i++) {
        float *x = NULL, *row = logits + (size_t)i * K;
        TEST_OK(preprocess_for(&x, c, samples[i]));
        TEST_OK(mcnn_classifier_forward(c, row, x, 1, 0));
        void *m = mcnn_classifier_model(c);
        int resnet = mcnn_classifier_arch(c) == MCNN_ARCH_RESNET;
        D = resnet ? mcnn_resnet_feature_dim(m) : mcnn_vit_get_config(m)->width;
        if (!features) features = malloc(sizeof(float) * D * N_SAMPLES);
        memcpy(features + (size_t)i * D, resnet ? mcnn_resnet_features(m) : mcnn_vit_features(m),
               sizeof(float) * D);
        for (int k = 0; k < K; k++) sigmoid[i * K + k] = 1.0f / (1.0f + expf(-row[k]));
        if (i == 0) {
            const mcnn_preprocess_config *p = mcnn_classifier_get_preprocess(c);
            snprintf(name, sizeof name, "%s.input0", base);
            put_floats(name, x, (size_t)p->channels * p->crop * p->crop);
        }
        free(x);
    }
    TEST_ASSERT(!mcnn_classifier_multilabel(c), "the demo checkpoints are single-label");
    snprintf(name, sizeof name, "%s.scores", base);
    for (int i = 0; i < N_SAMPLES; i++) {
        mcnn_softmax_forward(scores, logits + (size_t)i * K, 1, K);
        put_file(name, scores, sizeof(float) * K, "ab");
    }
    snprintf(name, sizeof name, "%s.logits", base);
    put_floats(name, logits, (size_t)K * N_SAMPLES);
    snprintf(name, sizeof name, "%s.sigmoid", base);
    put_floats(name, sigmoid, (size_t)K * N_SAMPLES);
    snprintf(name, sizeof name, "%s.features", base);
    put_floats(name, features, (size_t)D * N_SAMPLES);
    free(logits), free(scores), free(sigmoid), free(features);
    mcnn_classifier_free(c);
    classifier_int8_results(model, base, K);
}

static void test_classifier(void)
{
    if (!have_python()) return;
    const char *models[] = {"weights/demo-fashion-resnet.safetensors",
                            "weights/demo-fashion-vit.safetensors"};
    for (int i = 0; i < N_SAMPLES; i++) put_line("samples", samples[i]);
    for (int m = 0; m < 2; m++)
        if (access(models[m], R_OK) == 0) classifier_results(models[m]);
        else TEST_SKIP("%s is absent", models[m]);
    run_python("classifier");
}

static void test_clip(void)
{
    if (!have_python()) return;
    char model[1024], vocab[1024], image[4][1024];
    snprintf(model, sizeof model, "%s", test_shared_path("ref/clip_tiny.safetensors"));
    snprintf(vocab, sizeof vocab, "%s", test_shared_path("data/clip/bpe_simple_vocab_16e6.txt.gz"));
    if (access(model, R_OK) != 0 || access(vocab, R_OK) != 0) {
        TEST_SKIP("the tiny CLIP or the BPE vocabulary is absent from %s", test_shared_path(""));
        return;
    }
    mcnn_clip *m = NULL;
    mcnn_tokenizer *tok = NULL;
    TEST_OK(mcnn_clip_load(&m, model, NULL));
    TEST_OK(mcnn_tokenizer_load(&tok, vocab));
    if (!m || !tok) goto done;
    put_line("clip.model", model);
    put_line("clip.vocab", vocab);
    const mcnn_clip_config *cfg = mcnn_clip_get_config(m);
    const int R = cfg->image_size, E = cfg->embed_dim, T = cfg->context_length;
    float *x = malloc(sizeof(float) * 4 * 3 * R * R), *feat = malloc(sizeof(float) * 4 * E);
    mcnn_preprocess_config pre = mcnn_preprocess_clip(R);
    for (int i = 0; i < 4; i++) {
        mcnn_image img = {0};
        snprintf(image[i], sizeof image[i], "%s",
                 test_shared_path(i == 0 ? "ref/clip_tiny_img0.ppm"
                                  : i == 1 ? "ref/clip_tiny_img1.ppm"
                                  : i == 2 ? "ref/clip_tiny_img2.ppm"
                                           : "ref/clip_tiny_img3.ppm"));
        put_line("clip.images", image[i]);
        TEST_OK(mcnn_image_load(&img, image[i]));
        TEST_OK(mcnn_preprocess(x + (size_t)i * 3 * R * R, &img, &pre));
        mcnn_image_free(&img);
    }
    TEST_OK(mcnn_clip_encode_image(m, feat, x, 4));
    put_floats("clip.image_features", feat, (size_t)4 * E);
    float *img_emb = malloc(sizeof(float) * 4 * E);
    TEST_OK(mcnn_clip_image_embeddings(m, img_emb, x, 4));
    put_floats("clip.image_embeddings", img_emb, (size_t)4 * E);

    const char *texts[] = {"a photo of a cat", "A Diagram &amp; its   caption",
                           "Ünïcödé café, 東京 🙂"};
    int32_t *tokens = calloc((size_t)3 * T, sizeof *tokens);
    for (int i = 0; i < 3; i++) {
        put_line("clip.texts", texts[i]);
        TEST_OK(mcnn_tokenizer_tokenize(tok, texts[i], tokens + (size_t)i * T, T, 0, NULL));
    }
    put_file("clip.tokens", tokens, sizeof *tokens * 3 * T, "wb");
    TEST_OK(mcnn_clip_encode_text(m, feat, tokens, 3));
    put_floats("clip.text_features", feat, (size_t)3 * E);

    const char *labels[] = {"cat", "dog", "beach", "city street at night"};
    const char *templates[] = {"a photo of a {}.", "a blurry photo of a {label}"};
    for (int i = 0; i < 4; i++) put_line("clip.labels", labels[i]);
    for (int i = 0; i < 2; i++) put_line("clip.templates", templates[i]);
    float *txt_emb = malloc(sizeof(float) * 4 * E), scores[16];
    TEST_OK(mcnn_clip_text_embeddings(m, tok, txt_emb, labels, 4, templates, 2));
    put_floats("clip.text_embeddings", txt_emb, (size_t)4 * E);
    mcnn_clip_zeroshot_scores(scores, img_emb, txt_emb, 4, 4, E, 100.0f);
    put_floats("clip.scores", scores, 16);
    free(x), free(feat), free(img_emb), free(tokens), free(txt_emb);
    run_python("clip");
done:
    mcnn_tokenizer_free(tok);
    mcnn_clip_free(m);
}

/* What the C API says for a file that cannot be opened, as "kind\tpath\tstatus\tmessage". */
static void expect_error(const char *kind, const char *path)
{
    mcnn_status s;
    if (strcmp(kind, "classifier") == 0) {
        mcnn_classifier *c = NULL;
        s = mcnn_classifier_load(&c, path, NULL);
        mcnn_classifier_free(c);
    } else if (strcmp(kind, "image") == 0) {
        mcnn_image img = {0};
        s = mcnn_image_load(&img, path);
        mcnn_image_free(&img);
    } else {
        mcnn_tokenizer *t = NULL;
        s = mcnn_tokenizer_load(&t, path);
        mcnn_tokenizer_free(t);
    }
    TEST_ASSERT(s != MCNN_OK, "%s %s loads", kind, path);
    char line[1024];
    snprintf(line, sizeof line, "%s\t%s\t%d\t%s", kind, path, (int)s, mcnn_last_error());
    put_line("errors", line);
}

static void test_errors(void)
{
    if (!have_python()) return;
    char missing[512], corrupt[512], png[512];
    snprintf(missing, sizeof missing, "%s/missing.safetensors", dir);
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.safetensors", dir);
    snprintf(png, sizeof png, "%s/corrupt.png", dir);
    put_file("corrupt.safetensors", "\x10\0\0\0\0\0\0\0{\"a\": [1, 2", 18, "wb");
    put_file("corrupt.png", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, "wb");
    expect_error("classifier", missing);
    expect_error("classifier", corrupt);
    expect_error("classifier", samples[0]);
    expect_error("image", missing);
    expect_error("image", png);
    expect_error("tokenizer", corrupt);
    put_line("model", "weights/demo-fashion-resnet.safetensors");
    put_line("image", samples[0]);
    if (access("weights/demo-fashion-resnet.safetensors", R_OK) == 0) run_python("errors");
    else TEST_SKIP("weights/demo-fashion-resnet.safetensors is absent");
}

/* README's "Using the library from Python" example prints the top classes of the trouser
 * sample: its first line must be the C API's top class and score. */
static void test_readme_python(void)
{
    if (!have_python()) return;
    char src[512], cmd[2048], out[512], want[512];
    snprintf(src, sizeof src, "%s/example.py", dir);
    TEST_ASSERT(readme_block("```python", 0, src) > 3, "README.md has no ```python example");
    snprintf(cmd, sizeof cmd, "%s PYTHONPATH=apps/python /usr/bin/python3 %s 2>&1", env, src);
    int status = readme_run(cmd, out, sizeof out);
    TEST_ASSERT(status == 0, "the Python example failed: %s", out);

    mcnn_classifier *c = NULL;
    float *x = NULL, logits[64], scores[64];
    TEST_OK(mcnn_classifier_load(&c, "weights/demo-fashion-resnet.safetensors", NULL));
    if (!c) return;
    int K = mcnn_classifier_num_classes(c), best = 0;
    TEST_ASSERT(K <= 64, "%d classes", K);
    TEST_OK(preprocess_for(&x, c, samples[0]));
    TEST_OK(mcnn_classifier_forward(c, logits, x, 1, 0));
    mcnn_softmax_forward(scores, logits, 1, K);
    for (int k = 1; k < K; k++)
        if (scores[k] > scores[best]) best = k;
    snprintf(want, sizeof want, "%s %.4f", mcnn_classifier_label(c, best), scores[best]);
    TEST_ASSERT(strcmp(out, want) == 0, "the example prints '%s', the C API '%s'", out, want);
    TEST_ASSERT(strncasecmp(out, "trouser ", 8) == 0, "the demo model calls a trouser '%s'", out);
    free(x);
    mcnn_classifier_free(c);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mcnn_test_python_%d", (int)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    if (system(cmd) != 0) return 1;
    const char *build = getenv("MCNN_BUILD") ? getenv("MCNN_BUILD") : "build";
    /* A SANITIZE build's libmcnn.so needs the sanitizer runtimes loaded first; Python's own
     * allocations are not ours to check for leaks. */
    const char *preload = strstr(build, "sanitize")
                              ? "LD_PRELOAD=\"$(cc -print-file-name=libasan.so) "
                                "$(cc -print-file-name=libubsan.so)\" ASAN_OPTIONS=detect_leaks=0"
                              : "";
    snprintf(env, sizeof env, "%s MCNN_LIB=%s/libmcnn.so", preload, build);
    TEST_RUN(test_classifier);
    TEST_RUN(test_clip);
    TEST_RUN(test_errors);
    TEST_RUN(test_readme_python);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return test_summary();
}
