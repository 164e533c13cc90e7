/* CLIP's head: L2 normalise, exp(s)-scaled cosine logits, and the symmetric contrastive loss.
 * Judges: central finite differences of every backward, alone and chained (normalise -> logits
 * -> loss, as CLIP trains), and PyTorch goldens (tests/ref/gen_losses.py: F.normalize, matmul,
 * F.cross_entropy on logits and their transpose, in float64). */
#include "mcnn_test.h"

#define GOLDEN "tests/data/losses.safetensors"

enum { NI = 3, NT = 5, C = 8, NMAX = 8 };
static const float LOGIT_SCALE = 2.6592600f; /* log(1 / 0.07), CLIP's initial value */

/* ---- finite differences of "fake losses" L = Σ out ⊙ w (so dL/dout = w) ---------------------- */
static double dot(const float *a, const float *b, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Central difference of f with respect to x[i], then put x[i] back. */
#define CENTRAL(f, x, i, h, out)                                                            \
    do {                                                                                    \
        float keep_ = (x)[i];                                                               \
        (x)[i] = keep_ + (h); double up_ = (f);                                             \
        (x)[i] = keep_ - (h); double dn_ = (f);                                             \
        (x)[i] = keep_;                                                                     \
        (out) = (up_ - dn_) / (2.0 * (h));                                                  \
    } while (0)

static double normalize_loss(const float *x, const float *w, int N)
{
    float y[NMAX * C], norm[NMAX];
    mcnn_l2_normalize_forward(y, norm, x, N, C);
    return dot(y, w, N * C);
}

static void test_l2_normalize_grads(void)
{
    float x[NI * C], w[NI * C], y[NI * C], norm[NI], dx[NI * C];
    test_fill_random(x, NI * C, 1), test_fill_random(w, NI * C, 2);
    mcnn_l2_normalize_forward(y, norm, x, NI, C);
    for (int n = 0; n < NI; n++)
        TEST_CLOSE("||y|| = 1", sqrt(dot(y + n * C, y + n * C, C)), 1.0, 1e-6, 0);
    for (int i = 0; i < NI * C; i++) dx[i] = 0.5f; /* backward adds */
    mcnn_l2_normalize_backward(dx, w, y, norm, NI, C);
    for (int i = 0; i < NI * C; i++) {
        double fd;
        CENTRAL(normalize_loss(x, w, NI), x, i, 1e-3f, fd);
        TEST_CLOSE("dx", dx[i] - 0.5f, fd, 1e-2, 1e-3);
    }
    /* a row below the 1e-12 clamp: y = x / 1e-12 is linear, so dx = dy / 1e-12 */
    float t[C], ty[C], tn[1], tdx[C] = {0};
    for (int c = 0; c < C; c++) t[c] = (c - 3.5f) * 1e-14f;
    mcnn_l2_normalize_forward(ty, tn, t, 1, C);
    mcnn_l2_normalize_backward(tdx, w, ty, tn, 1, C);
    for (int c = 0; c < C; c++) {
        TEST_CLOSE("tiny row y", ty[c], t[c] / 1e-12, 1e-6, 0);
        TEST_CLOSE("tiny row dx", tdx[c], w[c] / 1e-12, 1e-6, 0);
    }
}

static double logits_loss(const float *img, const float *txt, float s, const float *w)
{
    float logits[NI * NT];
    mcnn_clip_logits_forward(logits, img, txt, s, NI, NT, C);
    return dot(logits, w, NI * NT);
}

static void test_clip_logits_grads(void)
{
    float img[NI * C], txt[NT * C], w[NI * NT], logits[NI * NT];
    float dimg[NI * C] = {0}, dtxt[NT * C] = {0}, ds = 0.25f, s = LOGIT_SCALE;
    test_fill_random(img, NI * C, 3), test_fill_random(txt, NT * C, 4);
    test_fill_random(w, NI * NT, 5);
    mcnn_clip_logits_forward(logits, img, txt, s, NI, NT, C);
    mcnn_clip_logits_backward(dimg, dtxt, &ds, w, logits, img, txt, s, NI, NT, C);
    double fd;
    for (int i = 0; i < NI * C; i++) {
        CENTRAL(logits_loss(img, txt, s, w), img, i, 1e-2f, fd);
        TEST_CLOSE("dimg", dimg[i], fd, 1e-3, 1e-3);
    }
    for (int i = 0; i < NT * C; i++) {
        CENTRAL(logits_loss(img, txt, s, w), txt, i, 1e-2f, fd);
        TEST_CLOSE("dtxt", dtxt[i], fd, 1e-3, 1e-3);
    }
    CENTRAL(logits_loss(img, txt, s, w), &s, 0, 1e-3f, fd);
    TEST_CLOSE("dlogit_scale", ds - 0.25f, fd, 1e-3, 1e-3);
    /* NULL gradients are skipped */
    mcnn_clip_logits_backward(NULL, NULL, NULL, w, logits, img, txt, s, NI, NT, C);
}

static double clip_loss(const float *logits, int N)
{
    float pi[NMAX * NMAX], pt[NMAX * NMAX];
    return mcnn_clip_loss_forward(pi, pt, logits, N);
}

static void test_clip_loss_grads(void)
{
    const int sizes[] = {1, 2, 7};
    for (int k = 0; k < 3; k++) {
        int N = sizes[k];
        float logits[NMAX * NMAX], pi[NMAX * NMAX], pt[NMAX * NMAX], d[NMAX * NMAX];
        test_fill_random(logits, (size_t)N * N, 6 + k);
        for (int i = 0; i < N * N; i++) logits[i] *= 5.0f, d[i] = 1.0f;
        float loss = mcnn_clip_loss_forward(pi, pt, logits, N);
        if (N == 1) TEST_CLOSE("N = 1: loss 0", loss, 0.0, 0, 1e-7);
        mcnn_clip_loss_backward(d, pi, pt, N, 0.5f);
        for (int i = 0; i < N * N; i++) {
            double fd;
            CENTRAL(clip_loss(logits, N), logits, i, 1e-2f, fd);
            TEST_CLOSE("dlogits", d[i] - 1.0f, 0.5 * fd, 1e-3, 5e-5);
        }
    }
}

/* The whole head as CLIP trains it: raw embeddings -> normalise -> logits -> loss. */
enum { NB = 4 };
static float head_forward(const float *img, const float *txt, float s, float *img_n,
                          float *img_norm, float *txt_n, float *txt_norm, float *logits,
                          float *pi, float *pt)
{
    mcnn_l2_normalize_forward(img_n, img_norm, img, NB, C);
    mcnn_l2_normalize_forward(txt_n, txt_norm, txt, NB, C);
    mcnn_clip_logits_forward(logits, img_n, txt_n, s, NB, NB, C);
    return mcnn_clip_loss_forward(pi, pt, logits, NB);
}

static void head_backward(float *dimg, float *dtxt, float *ds, const float *img_n,
                          const float *img_norm, const float *txt_n, const float *txt_norm,
                          const float *logits, const float *pi, const float *pt, float s)
{
    float dlogits[NB * NB] = {0}, dimg_n[NB * C] = {0}, dtxt_n[NB * C] = {0};
    mcnn_clip_loss_backward(dlogits, pi, pt, NB, 1.0f);
    mcnn_clip_logits_backward(dimg_n, dtxt_n, ds, dlogits, logits, img_n, txt_n, s, NB, NB, C);
    mcnn_l2_normalize_backward(dimg, dimg_n, img_n, img_norm, NB, C);
    mcnn_l2_normalize_backward(dtxt, dtxt_n, txt_n, txt_norm, NB, C);
}

static double head_loss(const float *img, const float *txt, float s)
{
    float img_n[NB * C], txt_n[NB * C], in[NB], tn[NB], logits[NB * NB], pi[NB * NB], pt[NB * NB];
    return head_forward(img, txt, s, img_n, in, txt_n, tn, logits, pi, pt);
}

static void test_head_chain_grads(void)
{
    float img[NB * C], txt[NB * C], s = LOGIT_SCALE;
    float img_n[NB * C], txt_n[NB * C], in[NB], tn[NB], logits[NB * NB], pi[NB * NB], pt[NB * NB];
    float dimg[NB * C] = {0}, dtxt[NB * C] = {0}, ds = 0;
    test_fill_random(img, NB * C, 9), test_fill_random(txt, NB * C, 10);
    head_forward(img, txt, s, img_n, in, txt_n, tn, logits, pi, pt);
    head_backward(dimg, dtxt, &ds, img_n, in, txt_n, tn, logits, pi, pt, s);
    double fd;
    for (int i = 0; i < NB * C; i++) {
        CENTRAL(head_loss(img, txt, s), img, i, 1e-3f, fd);
        TEST_CLOSE("dimg", dimg[i], fd, 2e-2, 2e-3);
        CENTRAL(head_loss(img, txt, s), txt, i, 1e-3f, fd);
        TEST_CLOSE("dtxt", dtxt[i], fd, 2e-2, 2e-3);
    }
    CENTRAL(head_loss(img, txt, s), &s, 0, 1e-3f, fd);
    TEST_CLOSE("dlogit_scale", ds, fd, 1e-2, 1e-3);
}

/* ---- PyTorch goldens ----------------------------------------------------------------------- */
static mcnn_safetensors *open_golden(void)
{
    mcnn_safetensors *st = NULL;
    mcnn_status s = mcnn_safetensors_open(&st, GOLDEN);
    TEST_ASSERT(s == MCNN_OK, "%s", mcnn_last_error());
    return s == MCNN_OK ? st : NULL;
}

static void test_head_golden(void)
{
    mcnn_safetensors *st = open_golden();
    if (!st) return;
    const char *names[] = {"head_img", "head_txt", "head_scale", "head_img_n", "head_txt_n",
                           "head_img_norm", "head_txt_norm", "head_logits", "head_dlogits",
                           "head_dimg", "head_dtxt", "head_dscale"};
    float *g[12];
    int ok = 1;
    for (int i = 0; i < 12; i++) ok &= (g[i] = test_golden(st, names[i], NULL)) != NULL;
    if (ok) {
        float img_n[NI * C], txt_n[NT * C], in[NI], tn[NT], logits[NI * NT];
        float dimg_n[NI * C] = {0}, dtxt_n[NT * C] = {0}, dimg[NI * C] = {0}, dtxt[NT * C] = {0};
        float ds = 0;
        mcnn_l2_normalize_forward(img_n, in, g[0], NI, C);
        mcnn_l2_normalize_forward(txt_n, tn, g[1], NT, C);
        mcnn_clip_logits_forward(logits, img_n, txt_n, g[2][0], NI, NT, C);
        test_close_rel("img_n", img_n, g[3], NI * C, 1e-6);
        test_close_rel("txt_n", txt_n, g[4], NT * C, 1e-6);
        test_close_rel("img norm", in, g[5], NI, 1e-6);
        test_close_rel("txt norm", tn, g[6], NT, 1e-6);
        test_close_rel("logits", logits, g[7], NI * NT, 1e-5);
        mcnn_clip_logits_backward(dimg_n, dtxt_n, &ds, g[8], logits, img_n, txt_n, g[2][0], NI,
                                  NT, C);
        mcnn_l2_normalize_backward(dimg, dimg_n, img_n, in, NI, C);
        mcnn_l2_normalize_backward(dtxt, dtxt_n, txt_n, tn, NT, C);
        test_close_rel("dimg", dimg, g[9], NI * C, 1e-5);
        test_close_rel("dtxt", dtxt, g[10], NT * C, 1e-5);
        TEST_CLOSE("dlogit_scale", ds, g[11][0], 1e-5, 0);
    }
    for (int i = 0; i < 12; i++) free(g[i]);
    mcnn_safetensors_close(st);
}

static void golden_clip_loss(mcnn_safetensors *st, const char *name)
{
    char key[64];
    size_t nn = 0;
    snprintf(key, sizeof key, "cl_%s_logits", name);
    float *logits = test_golden(st, key, &nn);
    snprintf(key, sizeof key, "cl_%s_loss", name);
    float *loss = test_golden(st, key, NULL);
    snprintf(key, sizeof key, "cl_%s_dlogits", name);
    float *want = test_golden(st, key, NULL);
    if (logits && loss && want) {
        int N = (int)(sqrt((double)nn) + 0.5);
        float *pi = malloc(nn * sizeof(float)), *pt = malloc(nn * sizeof(float));
        float *d = calloc(nn, sizeof(float));
        TEST_CLOSE(key, mcnn_clip_loss_forward(pi, pt, logits, N), loss[0], 1e-6, 0);
        mcnn_clip_loss_backward(d, pi, pt, N, 1.0f);
        test_close_rel(key, d, want, nn, 1e-6);
        free(pi), free(pt), free(d);
    }
    free(logits), free(loss), free(want);
}

static void test_clip_loss_golden(void)
{
    mcnn_safetensors *st = open_golden();
    if (!st) return;
    golden_clip_loss(st, "small");
    golden_clip_loss(st, "big");

    const char *names[] = {"clipfull_img", "clipfull_txt", "clipfull_scale", "clipfull_loss",
                           "clipfull_dimg", "clipfull_dtxt", "clipfull_dscale"};
    float *g[7];
    int ok = 1;
    for (int i = 0; i < 7; i++) ok &= (g[i] = test_golden(st, names[i], NULL)) != NULL;
    if (ok) {
        float img_n[NB * C], txt_n[NB * C], in[NB], tn[NB], logits[NB * NB], pi[NB * NB],
            pt[NB * NB], dimg[NB * C] = {0}, dtxt[NB * C] = {0}, ds = 0;
        float loss = head_forward(g[0], g[1], g[2][0], img_n, in, txt_n, tn, logits, pi, pt);
        head_backward(dimg, dtxt, &ds, img_n, in, txt_n, tn, logits, pi, pt, g[2][0]);
        TEST_CLOSE("full loss", loss, g[3][0], 1e-5, 0);
        test_close_rel("full dimg", dimg, g[4], NB * C, 1e-5);
        test_close_rel("full dtxt", dtxt, g[5], NB * C, 1e-5);
        TEST_CLOSE("full dlogit_scale", ds, g[6][0], 1e-5, 0);
    }
    for (int i = 0; i < 7; i++) free(g[i]);
    mcnn_safetensors_close(st);
}

int main(void)
{
    TEST_RUN(test_l2_normalize_grads);
    TEST_RUN(test_clip_logits_grads);
    TEST_RUN(test_clip_loss_grads);
    TEST_RUN(test_head_chain_grads);
    TEST_RUN(test_head_golden);
    TEST_RUN(test_clip_loss_golden);
    return test_summary();
}
