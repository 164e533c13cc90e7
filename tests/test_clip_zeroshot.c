/* CLIP zero-shot: the MovieCLIP text embeddings and scores against the official code
 * (../shared/ref: clip_tiny.safetensors, clip_tiny_ref.safetensors, computed by OpenAI's
 * clip/model.py), prompt ensembling against its definition evaluated here in double from
 * single-template embeddings, and the error paths. */
#include "mcnn_test.h"

#define TEMPLATE "a photo of a {label}, a type of background location"

static mcnn_clip *model;
static mcnn_tokenizer *tok;
static mcnn_safetensors *ref;
static char *labels_text;
static const char *labels[200];
static int L;

static int have_data(void)
{
    if (model && tok && ref && L == 179) return 1;
    TEST_SKIP("the CLIP reference files are absent from %s", test_shared_path(""));
    return 0;
}

static void load_labels(void)
{
    unsigned char *d;
    size_t n;
    if (mcnn_read_file_maybe_gzip(&d, &n, test_shared_path("data/movieclip/taxonomy-179.txt")))
        return;
    labels_text = (char *)d;
    for (char *p = labels_text; *p && L < 200;) {
        char *e = strchr(p, '\n');
        if (e) *e = '\0';
        if (*p) labels[L++] = p;
        if (!e) break;
        p = e + 1;
    }
}

static void test_format_prompt(void)
{
    char buf[64];
    TEST_OK(mcnn_clip_format_prompt(buf, sizeof buf, TEMPLATE, "race track"));
    TEST_ASSERT(!strcmp(buf, "a photo of a race track, a type of background location"), "%s", buf);
    TEST_OK(mcnn_clip_format_prompt(buf, sizeof buf, "a {} and a {label}.", "cat"));
    TEST_ASSERT(!strcmp(buf, "a cat and a cat."), "%s", buf);
    TEST_ASSERT(mcnn_clip_format_prompt(buf, sizeof buf, "no placeholder", "cat") == MCNN_ERR_ARG &&
                strstr(mcnn_last_error(), "placeholder"), "%s", mcnn_last_error());
    TEST_ASSERT(mcnn_clip_format_prompt(buf, 10, "a photo of {}", "cat") == MCNN_ERR_ARG,
                "too long for the buffer");
    TEST_OK(mcnn_clip_format_prompt(buf, 6, "{}", "12345"));      /* exactly fits with its NUL */
    TEST_ASSERT(mcnn_clip_format_prompt(buf, 5, "{}", "12345") == MCNN_ERR_ARG, "one byte short");
}

/* The 179 MovieCLIP prompts: normalised text features, then the scores of the four reference
 * images and their top 5, all as the official code computed them. */
static void test_movieclip_text_embeddings_and_scores(void)
{
    if (!have_data()) return;
    enum { E = 64 };
    const char *tmpl[] = {TEMPLATE};
    float *txt = malloc((size_t)L * E * sizeof(float)), *want = test_golden(ref, "text_features", NULL);
    float *image = test_golden(ref, "image", NULL), *want_scores = test_golden(ref, "movieclip_scores", NULL);
    int32_t *top5 = test_golden_i32(ref, "movieclip_top5", NULL);
    if (!want || !image || !want_scores || !top5) goto done;
    TEST_OK(mcnn_clip_text_embeddings(model, tok, txt, labels, L, tmpl, 1));
    float norm[179];
    mcnn_l2_normalize_forward(want, norm, want, L, E); /* the official features, normalised */
    test_close_rel("text embeddings", txt, want, (size_t)L * E, 1e-4);

    float img[4 * E], scores[4 * 179];
    TEST_OK(mcnn_clip_image_embeddings(model, img, image, 4));
    for (int b = 0; b < 4; b++) {
        double ss = 0;
        for (int e = 0; e < E; e++) ss += (double)img[b * E + e] * img[b * E + e];
        TEST_CLOSE("image embedding norm", sqrt(ss), 1.0, 1e-6, 0);
    }
    mcnn_clip_zeroshot_scores(scores, img, txt, 4, L, E, 100.0f);
    test_close_rel("movieclip_scores", scores, want_scores, 4 * 179, 1e-4);
    for (int b = 0; b < 4; b++) {
        int prev = -1;
        for (int k = 0; k < 5; k++) { /* every label above the k-th must be one of the first k */
            int id = top5[b * 5 + k], above = 0;
            for (int j = 0; j < L; j++) above += scores[b * L + j] > scores[b * L + id];
            TEST_ASSERT(above == k, "image %d: reference rank %d label %d has %d labels above", b,
                        k, id, above);
            TEST_ASSERT(prev < 0 || scores[b * L + prev] >= scores[b * L + id], "order");
            prev = id;
        }
    }
done:
    free(txt), free(want), free(image), free(want_scores), free(top5);
}

/* Ensembling: normalise(mean_k(t_k / |t_k|)), with each t_k / |t_k| from a single-template
 * call (checked against the official code above) and the mean computed here in double. */
static void test_prompt_ensembling(void)
{
    if (!have_data()) return;
    enum { E = 64, N = 7 };
    const char *tmpls[] = {TEMPLATE, "a {} in a movie.", "itap of the {}."};
    float single[3][N * E], ens[N * E], twice[N * E];
    for (int k = 0; k < 3; k++)
        TEST_OK(mcnn_clip_text_embeddings(model, tok, single[k], labels + 20, N, tmpls + k, 1));
    TEST_OK(mcnn_clip_text_embeddings(model, tok, ens, labels + 20, N, tmpls, 3));
    float want[N * E];
    for (int l = 0; l < N; l++) {
        double m[E], ss = 0;
        for (int e = 0; e < E; e++) {
            m[e] = ((double)single[0][l * E + e] + single[1][l * E + e] + single[2][l * E + e]) / 3;
            ss += m[e] * m[e];
        }
        for (int e = 0; e < E; e++) want[l * E + e] = (float)(m[e] / sqrt(ss));
    }
    test_close_rel("ensemble of 3 templates", ens, want, N * E, 1e-5);
    const char *same[] = {TEMPLATE, TEMPLATE};
    TEST_OK(mcnn_clip_text_embeddings(model, tok, twice, labels + 20, N, same, 2));
    test_close_rel("a template twice is the template", twice, single[0], N * E, 1e-6);
    /* the ensemble differs from each member (the test would pass vacuously otherwise) */
    double d = 0;
    for (int i = 0; i < N * E; i++) d += fabs(ens[i] - single[0][i]);
    TEST_ASSERT(d > 1e-3, "the ensemble equals its first template");
}

/* More than one batch of prompts (64 per batch): 179 labels x 2 templates = 358 prompts, and
 * 65 labels x 1: the batching must not change the result. */
static void test_batches(void)
{
    if (!have_data()) return;
    enum { E = 64 };
    float a[65 * E], b[65 * E];
    const char *t1[] = {TEMPLATE};
    TEST_OK(mcnn_clip_text_embeddings(model, tok, a, labels, 65, t1, 1));
    for (int i = 0; i < 65; i += 13) /* label by label */
        TEST_OK(mcnn_clip_text_embeddings(model, tok, b + i * E, labels + i, 13, t1, 1));
    test_close_rel("batched vs by parts", a, b, 65 * E, 1e-6);
}

static void test_errors(void)
{
    if (!have_data()) return;
    float out[2 * 64];
    const char *bad[] = {"no placeholder here"};
    TEST_ASSERT(mcnn_clip_text_embeddings(model, tok, out, labels, 2, bad, 1) == MCNN_ERR_ARG &&
                strstr(mcnn_last_error(), "no placeholder here"), "%s", mcnn_last_error());
    static char longlabel[800];
    for (int i = 0; i < 100; i++) memcpy(longlabel + 6 * i, "house ", 6);
    const char *lab[] = {"cat", longlabel}, *t1[] = {TEMPLATE};
    TEST_ASSERT(mcnn_clip_text_embeddings(model, tok, out, lab, 2, t1, 1) == MCNN_ERR_ARG &&
                strstr(mcnn_last_error(), "a photo of a house house"), "too long: %s",
                mcnn_last_error());
    TEST_ASSERT(mcnn_clip_text_embeddings(model, tok, out, lab, 0, t1, 1) == MCNN_ERR_ARG,
                "no labels");
}

int main(void)
{
    if (mcnn_clip_load(&model, test_shared_path("ref/clip_tiny.safetensors"), NULL) != MCNN_OK ||
        mcnn_tokenizer_load(&tok, test_shared_path("data/clip/bpe_simple_vocab_16e6.txt.gz")) != MCNN_OK ||
        mcnn_safetensors_open(&ref, test_shared_path("ref/clip_tiny_ref.safetensors")) != MCNN_OK)
        fprintf(stderr, "  (%s)\n", mcnn_last_error());
    else
        load_labels();
    TEST_RUN(test_format_prompt);
    TEST_RUN(test_movieclip_text_embeddings_and_scores);
    TEST_RUN(test_prompt_ensembling);
    TEST_RUN(test_batches);
    TEST_RUN(test_errors);
    mcnn_clip_free(model);
    mcnn_tokenizer_free(tok);
    if (ref) mcnn_safetensors_close(ref);
    free(labels_text);
    return test_summary();
}
