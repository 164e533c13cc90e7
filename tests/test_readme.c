/* README's example program, compiled against the built library and run, so the README stays
 * true: it must build warning-free and name the right class of a demo sample (the truth is in
 * the sample's file name), and agree with the library called directly. */
#define _POSIX_C_SOURCE 200809L
#include "mcnn_test.h"
#include "readme_example.h"

#include <unistd.h>

static char dir[256];

static void test_readme_example(void)
{
    const char *build = getenv("MCNN_BUILD") ? getenv("MCNN_BUILD") : "build";
    char src[512], exe[512], cmd[2048], out[512];
    snprintf(src, sizeof src, "%s/classify.c", dir);
    snprintf(exe, sizeof exe, "%s/classify", dir);
    TEST_ASSERT(readme_example(src) > 10, "README.md has no ```c example");
    /* The flags README gives, plus those of this build's variant. */
    const char *omp = strstr(build, "noomp") ? "" : "-fopenmp";
    const char *san = strstr(build, "sanitize") ? "-fsanitize=address,undefined" : "";
    /* the compiler that built the library (make exports CC=clang given on its command line):
     * another one's sanitizer runtime would not link */
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    snprintf(cmd, sizeof cmd,
             "%s -std=c11 -O2 -Wall -Wextra -Werror -Iinclude %s %s/libmcnn.a -lm %s %s -o %s 2>&1",
             cc, src, build, omp, san, exe);
    int status = readme_run(cmd, out, sizeof out);
    TEST_ASSERT(status == 0, "the README example does not compile: %s", out);
    if (status != 0) return;

    const char *model = "weights/demo-fashion-resnet.safetensors";
    char made[512];
    if (access(model, R_OK) != 0) { /* no demo checkpoint: a small fresh one */
        mcnn_classifier_config cfg = {.arch = "resnet-small", .num_classes = 10, .in_channels = 1};
        mcnn_classifier *c = NULL;
        TEST_OK(mcnn_classifier_create(&c, &cfg, 1));
        snprintf(made, sizeof made, "%s/model.safetensors", dir);
        if (c) TEST_OK(mcnn_classifier_save(c, made));
        mcnn_classifier_free(c);
        model = made;
    }
    const char *sample = "weights/samples/0002-trouser.png";
    snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", exe, model, sample);
    status = readme_run(cmd, out, sizeof out);
    TEST_ASSERT(status == 0, "the example failed: %s", out);

    /* the same answer from the library called here, the long way: the checkpoint's settings
     * through mcnn_preprocess, the logits' argmax and their softmax */
    mcnn_classifier *c = NULL;
    mcnn_image img = {0};
    TEST_OK(mcnn_classifier_load(&c, model, NULL));
    TEST_OK(mcnn_image_load(&img, sample));
    if (c && img.pixels) {
        const mcnn_preprocess_config *cfg = mcnn_classifier_get_preprocess(c);
        int C, H, W, K = mcnn_classifier_num_classes(c);
        TEST_OK(mcnn_preprocess_shape(&C, &H, &W, img.width, img.height, cfg));
        float *x = malloc(sizeof(float) * C * H * W), *logits = malloc(sizeof(float) * K);
        TEST_OK(mcnn_preprocess(x, &img, cfg));
        TEST_OK(mcnn_classifier_forward(c, logits, x, 1, 0));
        int best = 0;
        for (int k = 1; k < K; k++)
            if (logits[k] > logits[best]) best = k;
        mcnn_softmax_forward(logits, logits, 1, K);
        char want[512];
        snprintf(want, sizeof want, "%s %.3f", mcnn_classifier_label(c, best), logits[best]);
        TEST_ASSERT(strcmp(out, want) == 0, "example says '%s', the library '%s'", out, want);
        readme_top_label(out);
        if (model != made) /* the trained demo model knows trousers */
            TEST_ASSERT(strcmp(out, "trouser") == 0 || strcmp(out, "Trouser") == 0,
                        "the demo model calls a trouser '%s'", out);
        free(x);
        free(logits);
    }
    mcnn_image_free(&img);
    mcnn_classifier_free(c);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    TEST_ASSERT(system(cmd) == 0, "cleanup");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mcnn_test_readme_%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) return 1;
    TEST_RUN(test_readme_example);
    return test_summary();
}
