/* Op benchmark: conv2d and attention forward, ours against the same op built on OpenBLAS, at 1
 * and 2 threads, on the shapes the models run.
 *
 *   build/bench/bench_ops [-r ROUNDS] [-t SECONDS] [conv|attention]
 *
 * The OpenBLAS side is the textbook construction each op would have without libmcnn:
 *   conv2d     im2col of one image, then one cblas_sgemm (OC x OH·OW x IC·KH·KW) per image,
 *              OpenBLAS threading inside the GEMM (darknet's and Caffe's way, and PyTorch's
 *              when it has no MKL-DNN);
 *   attention  per (image, head): cblas_sgemm q·kᵀ, a row softmax (the rows split across the
 *              threads), cblas_sgemm p·v.
 * Our side is mcnn_conv2d_forward / mcnn_attention_forward.  Each row alternates the sides
 * round after round (this machine's speed drifts) and keeps the best; GFLOP/s counts the
 * multiply-adds of the GEMMs as 2 (attention's causal mask not discounted). */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include "mcnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef MCNN_BENCH_OPENBLAS
#include <cblas.h>
#endif

static int rounds = 3;
static double min_seconds = 0.3;

static void pause_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static float *random_floats(size_t n, unsigned seed)
{
    float *p = mcnn_alloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_ops: out of memory (%zu floats)\n", n);
        exit(1);
    }
    mcnn_rng r;
    mcnn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) p[i] = mcnn_rng_uniform(&r) - 0.5f;
    return p;
}

/* Seconds per call of fn(ctx): one warm-up call, then repeated for at least min_seconds. */
static double seconds_per_call(void (*fn)(void *), void *ctx)
{
    fn(ctx);
    double t0 = mcnn_seconds(), dt;
    long reps = 0;
    do {
        fn(ctx);
        reps++;
        dt = mcnn_seconds() - t0;
    } while (dt < min_seconds);
    return dt / reps;
}

/* Best-of-rounds seconds of ours (best[0]) and OpenBLAS's (best[1]), alternating. */
static void compare(void (*ours)(void *), void (*blas)(void *), void *ctx, int threads,
                    double best[2])
{
    best[0] = best[1] = 1e30;
    for (int r = 0; r < rounds; r++) {
        mcnn_set_threads(threads);
        double s = seconds_per_call(ours, ctx);
        if (s < best[0]) best[0] = s;
        pause_ms(100); /* let one side's idle threads go to sleep before the other starts */
#ifdef MCNN_BENCH_OPENBLAS
        openblas_set_num_threads(threads);
        s = seconds_per_call(blas, ctx);
        if (s < best[1]) best[1] = s;
        pause_ms(100);
#else
        (void)blas;
#endif
    }
}

static void print_row(const char *name, int threads, double gflop, const double best[2])
{
    int have_blas = best[1] < 1e29;
    printf("%-28s %3d %9.2f %9.2f %6.2f %8.1f\n", name, threads, 1e3 * best[0],
           have_blas ? 1e3 * best[1] : 0.0, have_blas ? best[0] / best[1] : 0.0,
           gflop / best[0]);
    fflush(stdout);
}

/* ---- conv2d ------------------------------------------------------------------------------ */
typedef struct conv_case {
    mcnn_conv2d_shape s;
    float *x, *w, *b, *y, *workspace, *columns;
} conv_case;

static void conv_ours(void *ctx)
{
    conv_case *c = ctx;
    mcnn_conv2d_forward(c->y, c->x, c->w, c->b, &c->s, c->workspace);
}

#ifdef MCNN_BENCH_OPENBLAS
/* columns (IC·KH·KW, OH·OW) of one image (groups = 1, no dilation) */
static void im2col(float *columns, const float *x, const mcnn_conv2d_shape *s, int OH, int OW)
{
    for (int ic = 0; ic < s->IC; ic++)
        for (int kh = 0; kh < s->KH; kh++)
            for (int kw = 0; kw < s->KW; kw++) {
                float *row = columns + ((size_t)(ic * s->KH + kh) * s->KW + kw) * OH * OW;
                const float *plane = x + (size_t)ic * s->H * s->W;
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * s->stride_h - s->pad_h + kh;
                    for (int ow = 0; ow < OW; ow++) {
                        int iw = ow * s->stride_w - s->pad_w + kw;
                        int inside = ih >= 0 && ih < s->H && iw >= 0 && iw < s->W;
                        row[oh * OW + ow] = inside ? plane[ih * s->W + iw] : 0.0f;
                    }
                }
            }
}

static void conv_blas(void *ctx)
{
    conv_case *c = ctx;
    const mcnn_conv2d_shape *s = &c->s;
    int OH = mcnn_conv2d_out_h(s), OW = mcnn_conv2d_out_w(s), K = s->IC * s->KH * s->KW;
    for (int n = 0; n < s->N; n++) {
        const float *x = c->x + (size_t)n * s->IC * s->H * s->W;
        float *y = c->y + (size_t)n * s->OC * OH * OW;
        int pointwise = s->KH == 1 && s->KW == 1 && s->stride_h == 1 && s->pad_h == 0;
        if (!pointwise) im2col(c->columns, x, s, OH, OW);
        for (int oc = 0; oc < s->OC; oc++) /* the bias first, then y += w·columns */
            for (int p = 0; p < OH * OW; p++) y[(size_t)oc * OH * OW + p] = c->b[oc];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->OC, OH * OW, K, 1.0f, c->w, K,
                    pointwise ? x : c->columns, OH * OW, 1.0f, y, OH * OW);
    }
}
#else
static void conv_blas(void *ctx) { (void)ctx; }
#endif

static void bench_conv(void)
{
    struct {
        const char *name;
        int N, IC, H, OC, K, stride, pad;
    } cases[] = {
        {"rn50 stem 7x7/2 3->64", 1, 3, 224, 64, 7, 2, 3},
        {"rn50 1x1 64->256 @56", 1, 64, 56, 256, 1, 1, 0},
        {"rn50 3x3 64 @56", 1, 64, 56, 64, 3, 1, 1},
        {"rn50 3x3 256 @14", 1, 256, 14, 256, 3, 1, 1},
        {"rn50 3x3 512 @7", 1, 512, 7, 512, 3, 1, 1},
        {"rn50 3x3 64 @56 b16", 16, 64, 56, 64, 3, 1, 1},
        {"rn50 3x3 256 @14 b16", 16, 256, 14, 256, 3, 1, 1},
        {"rn50 3x3 512 @7 b16", 16, 512, 7, 512, 3, 1, 1},
    };
    printf("\nconv2d forward (ms per call; ours = mcnn_conv2d_forward, openblas = im2col + "
           "cblas_sgemm)\n");
    printf("%-28s %3s %9s %9s %6s %8s\n", "shape", "thr", "ours ms", "blas ms", "ratio",
           "GFLOP/s");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conv_case c = {{cases[i].N, cases[i].IC, cases[i].H, cases[i].H, cases[i].OC, cases[i].K,
                        cases[i].K, cases[i].stride, cases[i].stride, cases[i].pad, cases[i].pad,
                        1, 1, 1},
                       NULL, NULL, NULL, NULL, NULL, NULL};
        const mcnn_conv2d_shape *s = &c.s;
        size_t OHW = (size_t)mcnn_conv2d_out_h(s) * mcnn_conv2d_out_w(s);
        size_t K = (size_t)s->IC * s->KH * s->KW;
        c.x = random_floats((size_t)s->N * s->IC * s->H * s->W, 1);
        c.w = random_floats((size_t)s->OC * K, 2);
        c.b = random_floats((size_t)s->OC, 3);
        c.y = random_floats((size_t)s->N * s->OC * OHW, 4);
        size_t ws = mcnn_conv2d_workspace_floats(s);
        c.workspace = ws ? random_floats(ws, 5) : NULL;
        c.columns = random_floats(K * OHW, 6);
        double gflop = 2.0 * s->N * s->OC * OHW * K * 1e-9;
        for (int t = 1; t <= 2; t++) {
            double best[2];
            compare(conv_ours, conv_blas, &c, t, best);
            print_row(cases[i].name, t, gflop, best);
        }
        mcnn_free(c.x), mcnn_free(c.w), mcnn_free(c.b), mcnn_free(c.y);
        mcnn_free(c.workspace), mcnn_free(c.columns);
    }
}

/* ---- attention --------------------------------------------------------------------------- */
typedef struct attention_case {
    int B, T, C, NH, causal;
    float *qkv, *out, *probs;
} attention_case;

static void attention_ours(void *ctx)
{
    attention_case *a = ctx;
    mcnn_attention_forward(a->out, a->probs, a->qkv, a->B, a->T, a->C, a->NH, a->causal);
}

#ifdef MCNN_BENCH_OPENBLAS
/* row softmax of scores (T, T) in place; under the causal mask row t keeps columns 0..t */
static void softmax_rows(float *scores, int T, int causal)
{
#ifdef _OPENMP
#pragma omp parallel for num_threads(mcnn_get_threads())
#endif
    for (int t = 0; t < T; t++) {
        float *row = scores + (size_t)t * T;
        int n = causal ? t + 1 : T;
        float max = row[0], sum = 0;
        for (int j = 1; j < n; j++) max = row[j] > max ? row[j] : max;
        for (int j = 0; j < n; j++) sum += row[j] = expf(row[j] - max);
        for (int j = 0; j < n; j++) row[j] /= sum;
        for (int j = n; j < T; j++) row[j] = 0;
    }
}

static void attention_blas(void *ctx)
{
    attention_case *a = ctx;
    int T = a->T, C = a->C, HS = C / a->NH;
    float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < a->NH; h++) {
            const float *q = a->qkv + (size_t)b * T * 3 * C + h * HS, *k = q + C, *v = q + 2 * C;
            float *p = a->probs + ((size_t)b * a->NH + h) * T * T;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, q, 3 * C, k,
                        3 * C, 0.0f, p, T);
            softmax_rows(p, T, a->causal);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, p, T, v,
                        3 * C, 0.0f, a->out + (size_t)b * T * C + h * HS, C);
        }
}
#else
static void attention_blas(void *ctx) { (void)ctx; }
#endif

static void bench_attention(void)
{
    struct {
        const char *name;
        int B, T, C, NH, causal;
    } cases[] = {
        {"vit-b16 T197 C768 H12", 1, 197, 768, 12, 0},
        {"vit-b16 b16", 16, 197, 768, 12, 0},
        {"clip-b32 T50 C768 H12", 1, 50, 768, 12, 0},
        {"clip-b32 b16", 16, 50, 768, 12, 0},
        {"clip text T77 C512 H8 causal", 16, 77, 512, 8, 1},
    };
    printf("\nattention forward (ms per call; ours = mcnn_attention_forward, openblas = per head "
           "sgemm, softmax, sgemm)\n");
    printf("%-28s %3s %9s %9s %6s %8s\n", "shape", "thr", "ours ms", "blas ms", "ratio",
           "GFLOP/s");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attention_case a = {cases[i].B, cases[i].T, cases[i].C, cases[i].NH, cases[i].causal,
                            NULL, NULL, NULL};
        a.qkv = random_floats((size_t)a.B * a.T * 3 * a.C, 1);
        a.out = random_floats((size_t)a.B * a.T * a.C, 2);
        a.probs = random_floats((size_t)a.B * a.NH * a.T * a.T, 3);
        double gflop = 4.0 * a.B * a.T * a.T * a.C * 1e-9;
        for (int t = 1; t <= 2; t++) {
            double best[2];
            compare(attention_ours, attention_blas, &a, t, best);
            print_row(cases[i].name, t, gflop, best);
        }
        mcnn_free(a.qkv), mcnn_free(a.out), mcnn_free(a.probs);
    }
}

int main(int argc, char **argv)
{
    int a = 1;
    for (; a + 1 < argc && argv[a][0] == '-'; a += 2) {
        if (strcmp(argv[a], "-r") == 0) rounds = atoi(argv[a + 1]);
        else if (strcmp(argv[a], "-t") == 0) min_seconds = atof(argv[a + 1]);
        else break;
    }
    const char *which = a < argc ? argv[a] : "all";
    if (rounds < 1 || min_seconds <= 0 ||
        (strcmp(which, "all") && strcmp(which, "conv") && strcmp(which, "attention"))) {
        fprintf(stderr, "usage: bench_ops [-r ROUNDS] [-t SECONDS] [conv|attention]\n");
        return 2;
    }
#ifdef MCNN_BENCH_OPENBLAS
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("OpenBLAS %s, core %s (OPENBLAS_CORETYPE=%s); best of %d rounds, alternating\n",
           openblas_get_config(), openblas_get_corename(), core ? core : "unset", rounds);
#else
    printf("built without OpenBLAS (install libopenblas-dev and rebuild): ours only\n");
#endif
    if (strcmp(which, "attention")) bench_conv();
    if (strcmp(which, "conv")) bench_attention();
    return 0;
}
