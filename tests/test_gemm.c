/* GEMM: the blocked kernels against mcnn_gemm_ref, the naive double-accumulating twin.
 *
 * Every transpose combination, alpha/beta variants (beta = 0 on a NaN-filled C, which must not
 * be read), leading dimensions wider than the matrices, sizes that are not multiples of any
 * tile (1, 7, 33, ...), K larger than a K block, N larger than an N block; for the picked
 * kernel, the plain one and every numbered variant this CPU runs.  Tall, narrow shapes (300 x 20,
 * 45 x 3) take the transposed route, where the kernel writes C column by column.  Also: the
 * same bits at 1 and 2 threads, and from inside a caller's parallel region; MCNN_GEMM=plain
 * picks the plain kernel.
 *
 * Tolerance: |got - want| <= 1e-5 * (|alpha| * sum_k |a_ik b_kj| + |beta c_ij|), a bound on
 * float rounding for these K (worst case ~K * 6e-8, typically sqrt(K) * 6e-8) that any wrong
 * element, index or padding would exceed by orders of magnitude. */
#define _POSIX_C_SOURCE 200112L /* setenv */
#include "mcnn_test.h"

#include "../lib/kernels/gemm_internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define SENTINEL 12345.0f

typedef struct gemm_case {
    int ta, tb, M, N, K;
    float alpha, beta;
    int pad; /* extra columns in every leading dimension */
} gemm_case;

/* Inputs for one case, C prefilled (NaN when beta == 0), padding set to SENTINEL. */
typedef struct gemm_data {
    float *A, *B, *C, *Cref, *scale;
    int lda, ldb, ldc;
} gemm_data;

static gemm_data make_data(const gemm_case *t, unsigned seed)
{
    gemm_data d;
    int arows = t->ta ? t->K : t->M, acols = t->ta ? t->M : t->K;
    int brows = t->tb ? t->N : t->K, bcols = t->tb ? t->K : t->N;
    d.lda = acols + t->pad, d.ldb = bcols + t->pad, d.ldc = t->N + t->pad;
    size_t na = (size_t)arows * d.lda, nb = (size_t)brows * d.ldb, nc = (size_t)t->M * d.ldc;
    d.A = malloc((na ? na : 1) * sizeof(float));
    d.B = malloc((nb ? nb : 1) * sizeof(float));
    d.C = malloc((nc ? nc : 1) * sizeof(float));
    d.Cref = malloc((nc ? nc : 1) * sizeof(float));
    d.scale = malloc((nc ? nc : 1) * sizeof(float));
    test_fill_random(d.A, na, seed);
    test_fill_random(d.B, nb, seed + 1);
    test_fill_random(d.C, nc, seed + 2);
    for (int i = 0; i < t->M; i++)
        for (int j = 0; j < d.ldc; j++) {
            float *c = &d.C[(size_t)i * d.ldc + j];
            if (j >= t->N) *c = SENTINEL;
            else if (t->beta == 0.0f) *c = NAN;
        }
    memcpy(d.Cref, d.C, nc * sizeof(float));
    /* the error scale of each element */
    for (int i = 0; i < t->M; i++)
        for (int j = 0; j < t->N; j++) {
            double s = 0;
            for (int k = 0; k < t->K; k++) {
                float a = t->ta ? d.A[(size_t)k * d.lda + i] : d.A[(size_t)i * d.lda + k];
                float b = t->tb ? d.B[(size_t)j * d.ldb + k] : d.B[(size_t)k * d.ldb + j];
                s += fabs((double)a * b);
            }
            s *= fabs(t->alpha);
            if (t->beta != 0.0f) s += fabs(t->beta * d.C[(size_t)i * d.ldc + j]);
            d.scale[(size_t)i * d.ldc + j] = (float)s;
        }
    return d;
}

static void free_data(gemm_data *d)
{
    free(d->A), free(d->B), free(d->C), free(d->Cref), free(d->scale);
}

/* Run one case with kernel k (NULL: mcnn_gemm itself) and judge it against mcnn_gemm_ref. */
static void check_case(const mcnn_gemm_kernel *k, const gemm_case *t, unsigned seed)
{
    gemm_data d = make_data(t, seed);
    if (k)
        mcnn_gemm_with(k, t->ta, t->tb, t->M, t->N, t->K, t->alpha, d.A, d.lda, d.B, d.ldb,
                       t->beta, d.C, d.ldc);
    else
        mcnn_gemm(t->ta, t->tb, t->M, t->N, t->K, t->alpha, d.A, d.lda, d.B, d.ldb, t->beta, d.C,
                  d.ldc);
    mcnn_gemm_ref(t->ta, t->tb, t->M, t->N, t->K, t->alpha, d.A, d.lda, d.B, d.ldb, t->beta,
                  d.Cref, d.ldc);
    int shown = 0;
    for (int i = 0; i < t->M; i++)
        for (int j = 0; j < d.ldc; j++) {
            size_t x = (size_t)i * d.ldc + j;
            int bad = j >= t->N ? d.C[x] != SENTINEL
                                : !(fabs((double)d.C[x] - d.Cref[x]) <= 1e-5 * d.scale[x] + 1e-30);
            if (bad) {
                if (shown++ < 3)
                    fprintf(stderr,
                            "  %s ta=%d tb=%d %dx%dx%d alpha=%g beta=%g pad=%d: C[%d][%d] got "
                            "%.8g want %.8g\n",
                            k ? k->name : mcnn_gemm_kernel_name(), t->ta, t->tb, t->M, t->N,
                            t->K, t->alpha, t->beta, t->pad, i, j, d.C[x],
                            j >= t->N ? SENTINEL : d.Cref[x]);
                test_current_failed++;
            }
        }
    free_data(&d);
}

/* The shapes named in the design (plus N wider than one N block) at every transpose. */
static const int shapes[][3] = {
    {1, 1, 1},   {7, 5, 3},    {33, 7, 1000}, {197, 768, 100}, {13, 1000, 33}, {64, 64, 64},
    {50, 50, 64}, {3, 4500, 5}, {45, 31, 777}, {45, 3, 50}, {300, 20, 600},
};
/* alpha, beta pairs: plain product, scaled, accumulate, general */
static const float alphabeta[][2] = {{1, 0}, {0.5f, 0}, {1, 1}, {-1.5f, 0.25f}};

static void run_suite(const mcnn_gemm_kernel *k)
{
    unsigned seed = 1;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            /* every size in {1, 7, 33}^3, every alpha/beta, tight and padded leading dims */
            static const int sz[] = {1, 7, 33};
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    for (int c = 0; c < 3; c++)
                        for (int ab = 0; ab < 4; ab++) {
                            gemm_case t = {ta, tb, sz[a], sz[b], sz[c], alphabeta[ab][0],
                                           alphabeta[ab][1], (a + b + c + ab) % 2 ? 3 : 0};
                            check_case(k, &t, seed++);
                        }
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                const float *ab = alphabeta[(s + ta + 2 * tb) % 4];
                gemm_case t = {ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], ab[0], ab[1],
                               (int)(s % 3)};
                check_case(k, &t, seed++);
            }
        }
}

static void test_picked_kernel(void)
{
    mcnn_gemm_set_kernel(NULL);
    fprintf(stderr, "  picked kernel: %s\n", mcnn_gemm_kernel_name());
    run_suite(NULL);
}

static void test_plain_kernel(void)
{
    const mcnn_gemm_kernel *plain = mcnn_gemm_pick_micro_kernel(1);
    TEST_ASSERT(strcmp(plain->name, "plain") == 0, "force_plain gave %s", plain->name);
    run_suite(plain);
}

/* The numbered variants the benchmark times: a few shapes each, so any of them can be tuned in. */
static void test_variants(void)
{
    for (const mcnn_gemm_kernel *k = mcnn_gemm_kernels; k->fn; k++) {
        if (!mcnn_gemm_kernel_supported(k)) continue;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                gemm_case t1 = {ta, tb, 33, 77, 400, 1, 0, 1};
                gemm_case t2 = {ta, tb, 7, 5, 3, -1.5f, 0.25f, 0};
                gemm_case t3 = {ta, tb, 150, 70, 20, 1, 1, 2};
                check_case(k, &t1, 100 + ta + 2 * tb);
                check_case(k, &t2, 200 + ta + 2 * tb);
                check_case(k, &t3, 300 + ta + 2 * tb);
            }
    }
}

/* alpha == 0 and K == 0: C = beta * C, and A and B are not read (NaN there must not leak). */
static void test_degenerate(void)
{
    float A[6], B[6], C[4] = {1, 2, 3, 4};
    for (int i = 0; i < 6; i++) A[i] = B[i] = NAN;
    mcnn_gemm(0, 0, 2, 2, 3, 0.0f, A, 3, B, 2, 2.0f, C, 2);
    for (int i = 0; i < 4; i++) TEST_CLOSE("alpha=0 beta=2", C[i], 2.0 * (i + 1), 0, 0);
    for (int i = 0; i < 4; i++) C[i] = NAN;
    mcnn_gemm(1, 1, 2, 2, 0, 1.0f, A, 2, B, 1, 0.0f, C, 2);
    for (int i = 0; i < 4; i++) TEST_CLOSE("K=0 beta=0", C[i], 0.0, 0, 0);
    mcnn_gemm(0, 0, 0, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2); /* M = 0: nothing to do */
}

/* Products cut along M, where the threads share each packed B panel (gemm.c's run_shared_b),
 * against the reference: several K blocks (beta applied by the first only), two N blocks,
 * bands of unequal height, every transpose. */
static void test_shared_b_panels(void)
{
#ifdef _OPENMP
    static const int sb[][3] = {{600, 500, 1100}, {601, 97, 45}, {2100, 2050, 40}};
    int saved = omp_get_max_threads();
    mcnn_gemm_always_parallel(1);
    omp_set_num_threads(2);
    unsigned seed = 500;
    for (size_t s = 0; s < sizeof sb / sizeof sb[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                if (s == 2 && ta + tb) continue; /* the big one once is enough */
                gemm_case t = {ta, tb, sb[s][0], sb[s][1], sb[s][2], -1.5f, 0.25f, (int)s % 2 * 3};
                check_case(NULL, &t, seed++);
            }
    omp_set_num_threads(saved);
    mcnn_gemm_always_parallel(0);
#else
    TEST_SKIP("built without OpenMP");
#endif
}

/* Same bits at 1 and 2 threads, for shapes that split ic, split jr, and stay serial; and the
 * same again when called from inside a caller's parallel region (one GEMM per thread). */
static void test_thread_independence(void)
{
#ifdef _OPENMP
    static const int tshapes[][5] = {
        /* M, N, K, ta, tb */
        {197, 768, 100, 0, 1}, {50, 300, 64, 0, 0}, {300, 40, 500, 1, 0}, {7, 5, 3, 1, 1},
        {64, 3136, 20, 0, 0}, {1000, 40, 30, 0, 1}, /* several pieces per thread */
        {600, 500, 1100, 0, 1}, {601, 97, 45, 1, 0}, /* shared B panels, uneven bands */
    };
    int saved = omp_get_max_threads();
    mcnn_gemm_always_parallel(1); /* not serial because the machine is busy */
    for (size_t s = 0; s < sizeof tshapes / sizeof tshapes[0]; s++) {
        int M = tshapes[s][0], N = tshapes[s][1], K = tshapes[s][2];
        int ta = tshapes[s][3], tb = tshapes[s][4];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C[4];
        test_fill_random(A, (size_t)M * K, 7 + (unsigned)s);
        test_fill_random(B, (size_t)K * N, 8 + (unsigned)s);
        int lda = ta ? M : K, ldb = tb ? K : N;
        for (int v = 0; v < 4; v++) C[v] = malloc(sizeof(float) * M * N);
        omp_set_num_threads(1);
        mcnn_gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C[0], N);
        omp_set_num_threads(2);
        mcnn_gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C[1], N);
#pragma omp parallel num_threads(2)
        { /* each thread its own call, serial inside, own packing buffers */
            int tid = omp_get_thread_num();
            mcnn_gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C[2 + tid], N);
        }
        for (int v = 1; v < 4; v++)
            TEST_ASSERT(memcmp(C[0], C[v], sizeof(float) * M * N) == 0,
                        "%dx%dx%d: run %d differs from the 1-thread result", M, N, K, v);
        for (int v = 0; v < 4; v++) free(C[v]);
        free(A), free(B);
    }
    omp_set_num_threads(saved);
    mcnn_gemm_always_parallel(0);
#else
    TEST_SKIP("built without OpenMP");
#endif
}

/* Threads that call mcnn_gemm and then exit free their packing buffers: OpenMP retires the
 * extra threads of a larger team when a smaller one follows.  The judge is the leak checker
 * of SANITIZE=1 builds (it fails the run at exit); here we only check the products. */
static void test_thread_exit(void)
{
#ifdef _OPENMP
    enum { n = 64 };
    static float A[n * n], B[n * n], C[4][n * n], R[n * n];
    test_fill_random(A, n * n, 1);
    test_fill_random(B, n * n, 2);
    mcnn_gemm_ref(0, 0, n, n, n, 1.0f, A, n, B, n, 0.0f, R, n);
    int saved = omp_get_max_threads(), used = 0;
    for (int round = 0; round < 2; round++) { /* twice: the ended threads are gone by then */
        omp_set_num_threads(4);
#pragma omp parallel
        { /* each thread its own (serial) call and its own buffer */
            int t = omp_get_thread_num();
            if (t < 4) mcnn_gemm(0, 0, n, n, n, 1.0f, A, n, B, n, 0.0f, C[t], n);
#pragma omp atomic
            used++;
        }
        omp_set_num_threads(1); /* smaller teams: libgomp ends the surplus threads */
#pragma omp parallel
        {
        }
        omp_set_num_threads(2);
#pragma omp parallel
        {
        }
    }
    omp_set_num_threads(saved);
    used /= 2;
    for (int t = 0; t < used && t < 4; t++)
        test_close_array("a thread's product", C[t], R, n * n, 1e-5, 1e-5);
#else
    TEST_SKIP("built without OpenMP");
#endif
}

/* MCNN_GEMM=plain in the environment, read on first use, forces the plain kernel. */
static void test_env_plain(void)
{
    setenv("MCNN_GEMM", "plain", 1);
    mcnn_gemm_set_kernel(NULL); /* forget the choice: the next use picks again */
    TEST_ASSERT(strcmp(mcnn_gemm_kernel_name(), "plain") == 0, "MCNN_GEMM=plain gave %s",
                mcnn_gemm_kernel_name());
    gemm_case t = {0, 1, 33, 7, 100, 1, 0, 0};
    check_case(NULL, &t, 42);
    unsetenv("MCNN_GEMM");
    mcnn_gemm_set_kernel(NULL);
    TEST_ASSERT(strcmp(mcnn_gemm_kernel_name(), mcnn_gemm_pick_micro_kernel(0)->name) == 0,
                "back to the picked kernel");
}

int main(void)
{
    TEST_RUN(test_thread_exit); /* first: the teams of the later tests hide the leak it shows */
    TEST_RUN(test_env_plain);
    TEST_RUN(test_picked_kernel);
    TEST_RUN(test_plain_kernel);
    TEST_RUN(test_variants);
    TEST_RUN(test_degenerate);
    TEST_RUN(test_shared_b_panels);
    TEST_RUN(test_thread_independence);
    return test_summary();
}
