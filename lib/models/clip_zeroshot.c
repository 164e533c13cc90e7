/* Zero-shot classification with CLIP: text embeddings of a label set (prompt ensembling) and
 * the per-image scores softmax(scale · cos).  See mcnn/clip.h.
 *
 *   t_{l,k} = encode_text(tokenize(template_k(label_l)))        (L·T prompts, in batches)
 *   u_l     = normalise( (1/T) Σ_k t_{l,k} / ||t_{l,k}|| )       (L, E)
 *   s_{b,l} = softmax_l( scale · <img_b, u_l> )                 img_b already normalised
 * The averaging is over unit vectors, as OpenAI's notebook does (class_embeddings /= norm, then
 * mean, then /= norm again), so a template whose raw features happen to be long does not
 * outweigh the others. */
#include "internal.h"
#include "mcnn/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { TEXT_BATCH = 64 }; /* prompts per encode_text call: bounds the text activations */

mcnn_status mcnn_clip_format_prompt(char *dst, size_t size, const char *tmpl, const char *label)
{
    if (!dst || !size || !tmpl || !label)
        return mcnn_set_error(MCNN_ERR_ARG, "mcnn_clip_format_prompt: NULL argument");
    size_t n = 0, lab = strlen(label);
    int placeholders = 0;
    for (const char *p = tmpl; *p;) {
        size_t skip = strncmp(p, "{label}", 7) == 0 ? 7 : strncmp(p, "{}", 2) == 0 ? 2 : 0;
        const char *piece = skip ? label : p;
        size_t len = skip ? lab : 1;
        if (n + len >= size)
            return mcnn_set_error(MCNN_ERR_ARG, "prompt template '%s' with label '%s' is longer "
                                  "than %zu bytes", tmpl, label, size - 1);
        memcpy(dst + n, piece, len);
        n += len;
        p += skip ? skip : 1;
        placeholders += skip != 0;
    }
    dst[n] = '\0';
    if (!placeholders)
        return mcnn_set_error(MCNN_ERR_ARG, "prompt template '%s' has no {label} (or {}) "
                              "placeholder", tmpl);
    return MCNN_OK;
}

mcnn_status mcnn_clip_image_embeddings(mcnn_clip *m, float *out, const float *images, int B)
{
    const int E = mcnn_clip_get_config(m)->embed_dim;
    MCNN_TRY(mcnn_clip_encode_image(m, out, images, B));
    float *norm = malloc((size_t)(B > 0 ? B : 1) * sizeof(float));
    if (!norm) return mcnn_set_error(MCNN_ERR_NOMEM, "CLIP image embeddings: out of memory");
    mcnn_l2_normalize_forward(out, norm, out, B, E); /* row by row: safe in place */
    free(norm);
    return MCNN_OK;
}

mcnn_status mcnn_clip_text_embeddings(mcnn_clip *m, const struct mcnn_tokenizer *tok, float *out,
                                      const char *const *labels, int L,
                                      const char *const *templates, int T)
{
    if (!m || !tok || !out || !labels || !templates || L <= 0 || T <= 0)
        return mcnn_set_error(MCNN_ERR_ARG, "CLIP text embeddings: need a model, a tokenizer, "
                              "at least one label and one template");
    const mcnn_clip_config *c = mcnn_clip_get_config(m);
    const int E = c->embed_dim, ctx = c->context_length;
    const size_t total = (size_t)L * T;
    int32_t *tokens = malloc((size_t)TEXT_BATCH * ctx * sizeof(int32_t));
    float *feat = malloc((size_t)TEXT_BATCH * E * sizeof(float));
    float *norm = malloc(TEXT_BATCH * sizeof(float));
    double *acc = calloc((size_t)L * E, sizeof(double)); /* sums of unit vectors per label */
    char prompt[1024];
    mcnn_status s = MCNN_OK;
    if (!tokens || !feat || !norm || !acc)
        s = mcnn_set_error(MCNN_ERR_NOMEM, "CLIP text embeddings: out of memory");
    /* prompt i is label i / T with template i % T */
    for (size_t start = 0; s == MCNN_OK && start < total; start += TEXT_BATCH) {
        const int n = (int)(total - start < TEXT_BATCH ? total - start : TEXT_BATCH);
        for (int j = 0; s == MCNN_OK && j < n; j++) {
            const size_t i = start + (size_t)j;
            s = mcnn_clip_format_prompt(prompt, sizeof prompt, templates[i % T], labels[i / T]);
            if (s == MCNN_OK) {
                s = mcnn_tokenizer_tokenize(tok, prompt, tokens + (size_t)j * ctx, ctx, 0, NULL);
                if (s != MCNN_OK) s = mcnn_wrap_error(s, "prompt '%s'", prompt);
            }
        }
        if (s == MCNN_OK) s = mcnn_clip_encode_text(m, feat, tokens, n);
        if (s != MCNN_OK) break;
        mcnn_l2_normalize_forward(feat, norm, feat, n, E);
        for (int j = 0; j < n; j++) {
            double *a = acc + (start + (size_t)j) / T * E;
            for (int e = 0; e < E; e++) a[e] += feat[(size_t)j * E + e];
        }
    }
    if (s == MCNN_OK) {
        for (int l = 0; l < L; l++) { /* the mean's direction: the 1/T cancels in the norm */
            const double *a = acc + (size_t)l * E;
            double ss = 0.0;
            for (int e = 0; e < E; e++) ss += a[e] * a[e];
            const double inv = 1.0 / (sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12);
            for (int e = 0; e < E; e++) out[(size_t)l * E + e] = (float)(a[e] * inv);
        }
    }
    free(tokens);
    free(feat);
    free(norm);
    free(acc);
    return s;
}

void mcnn_clip_zeroshot_scores(float *scores, const float *img, const float *txt, int B, int L,
                               int E, float scale)
{
    mcnn_gemm(0, 1, B, L, E, scale, img, E, txt, E, 0.0f, scores, L); /* scale · img·txtᵀ */
    mcnn_softmax_forward(scores, scores, B, L);                        /* in place, per row */
}
