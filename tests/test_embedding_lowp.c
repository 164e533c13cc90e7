/* An embedding table in bf16 or per-row int8 (lib/nn/embedding_lowp.c, docs/precision.md):
 * every value the lookup gives is, bit for bit, its definition computed apart in double
 * (embedding_lowp_definition.h: bf16 round to nearest even; int8 s = max|row| / 127,
 * q = round(x / s) to even, saturated, q · s).  Hand-picked rows: exact ties (to even, both
 * signs), values just either side of a bf16 tie, the largest floats (to inf), subnormals
 * (whose scale rounds so coarsely that q saturates; bf16's ties between them), zero, inf and
 * NaN rows; then random rows of very different magnitudes looked up in a scrambled order with
 * repeats, through the threaded loop.  The stored bytes are half (bf16) and a quarter plus a scale per
 * row (int8) of fp32; fp32 and bad sizes are refused. */
#include "mcnn_test.h"

#include "../lib/nn/embedding_lowp.h"
#include "embedding_lowp_definition.h"

#include <float.h>
#include <stdint.h>

static float float_of(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* The lookup of every row of table (V, C), in the order ids, against want (V, C). */
static void check_lookup(const mcnn_embedding_lowp *e, const double *want, int C,
                         const int32_t *ids, int N, const char *what)
{
    float *y = malloc((size_t)N * C * sizeof(float));
    mcnn_embedding_lowp_forward(y, ids, e, N);
    size_t bad = 0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            const double w = want[(size_t)ids[n] * C + c], g = y[(size_t)n * C + c];
            const int same = isnan(w) ? isnan(g) : g == w && signbit(g) == signbit(w);
            if (!same && bad++ < 5)
                fprintf(stderr, "  %s: row %d col %d: got %.9g, want %.9g\n", what, ids[n], c,
                        g, w);
        }
    TEST_ASSERT(bad == 0, "%s: %zu of %d x %d values differ from the definition", what, bad, N,
                C);
    free(y);
}

static void check_table(const float *table, int V, int C, const int32_t *ids, int N,
                        const char *what)
{
    double *want = malloc((size_t)V * C * sizeof(double));
    char name[128];
    /* bf16 */
    mcnn_embedding_lowp *e;
    for (size_t i = 0; i < (size_t)V * C; i++) want[i] = bf16_definition(table[i]);
    TEST_OK(mcnn_embedding_lowp_create(&e, MCNN_PRECISION_BF16, table, V, C));
    snprintf(name, sizeof name, "%s, bf16", what);
    if (e) check_lookup(e, want, C, ids, N, name);
    TEST_ASSERT(mcnn_embedding_lowp_bytes(e) == (size_t)V * C * 2, "bf16: %zu bytes",
                mcnn_embedding_lowp_bytes(e));
    mcnn_embedding_lowp_free(e);
    /* int8 */
    for (int v = 0; v < V; v++) int8_definition(table + (size_t)v * C, C, want + (size_t)v * C);
    TEST_OK(mcnn_embedding_lowp_create(&e, MCNN_PRECISION_INT8, table, V, C));
    snprintf(name, sizeof name, "%s, int8", what);
    if (e) check_lookup(e, want, C, ids, N, name);
    TEST_ASSERT(mcnn_embedding_lowp_bytes(e) == (size_t)V * C + (size_t)V * 4,
                "int8: %zu bytes", mcnn_embedding_lowp_bytes(e));
    mcnn_embedding_lowp_free(e);
    free(want);
}

enum { HC = 8 };

static void test_hand_picked(void)
{
    const float tiny = float_of(1); /* 2^-149 */
    const float rows[][HC] = {
        /* bf16 ties around 1 (low 16 bits 0x8000): to the even neighbour, down and up; just
         * past and short of a tie; int8: s = 1 exactly, so x.5 are ties (2.5 -> 2, 3.5 -> 4) */
        {float_of(0x3f808000), float_of(0x3f818000), float_of(0x3f808001), float_of(0x3f807fff),
         127.0f, 2.5f, 3.5f, -2.5f},
        {-0.5f, 0.5f, -1.5f, 1.5f, -127.0f, 126.5f, -126.5f, 0.0f},
        /* the largest floats: bf16 rounds them to inf; int8's scale is FLT_MAX / 127 */
        {FLT_MAX, -FLT_MAX, float_of(0x7f7f7fff), float_of(0x7f7f8000), 1.0f, -1e38f, 3e38f,
         float_of(0x7f7f7f00)},
        /* subnormals: s = 190 · 2^-149 / 127 rounds to 2^-149, so 190 · 2^-149 / s = 190
         * saturates to 127; bf16 keeps 2^-133 steps (these round to 0 or 2^-133) */
        {190 * tiny, -190 * tiny, 64 * tiny, tiny, 0.0f, -0.0f, 3 * tiny, -100 * tiny},
        /* bf16 ties between subnormals (2^-134 is half of 2^-133), to even, and around them */
        {float_of(0x00008000), float_of(0x00018000), float_of(0x80028000), float_of(0x00007fff),
         float_of(0x00008001), float_of(0x007fffff), float_of(0x00800000), -0.0f},
        {0, 0, 0, 0, 0, 0, 0, 0},                           /* all zero: zeros */
        {1.0f, INFINITY, 2.0f, 0, 0, 0, 0, 0},              /* inf: int8 NaN row, bf16 inf */
        {1.0f, 2.0f, NAN, -3.0f, 0, 0, 0, 0},               /* NaN: int8 NaN row, bf16 NaN */
        {-0.0f, 1e-3f, -7.77f, 6.5e-5f, 1e5f, -3.14159f, 2.71828f, 1.0f / 3.0f},
    };
    const int V = (int)(sizeof rows / sizeof rows[0]);
    int32_t ids[2 * 16];
    for (int n = 0; n < 2 * V; n++) ids[n] = (n * 5 + 3) % V; /* every row, twice, shuffled */
    check_table(&rows[0][0], V, HC, ids, 2 * V, "hand-picked rows");
    /* the subnormal row really saturated: q = 127 for its largest value, so 127 · 2^-149 */
    mcnn_embedding_lowp *e;
    TEST_OK(mcnn_embedding_lowp_create(&e, MCNN_PRECISION_INT8, &rows[0][0], V, HC));
    if (e) {
        float y[HC];
        const int32_t id = 3;
        mcnn_embedding_lowp_forward(y, &id, e, 1);
        TEST_ASSERT(y[0] == 127 * tiny && y[1] == -127 * tiny, "saturation: %g %g", y[0], y[1]);
        mcnn_embedding_lowp_free(e);
    }
}

static void test_random_rows(void)
{
    enum { V = 300, C = 96, N = 1000 };
    float *table = malloc((size_t)V * C * sizeof(float));
    test_fill_random(table, (size_t)V * C, 11);
    for (int v = 0; v < V; v++) /* rows of very different magnitudes */
        for (int c = 0; c < C; c++) table[(size_t)v * C + c] *= ldexpf(1.0f, v % 40 - 20);
    int32_t ids[N];
    for (int n = 0; n < N; n++) ids[n] = (int32_t)(((uint64_t)n * 7919u + 13u) % V);
    check_table(table, V, C, ids, N, "random rows"); /* N · C > 4096: the threaded loop */
    free(table);
}

static void test_refusals(void)
{
    const float t[4] = {1, 2, 3, 4};
    mcnn_embedding_lowp *e = (mcnn_embedding_lowp *)t;
    TEST_ASSERT(mcnn_embedding_lowp_create(&e, MCNN_PRECISION_FP32, t, 2, 2) == MCNN_ERR_ARG &&
                    !e && strstr(mcnn_last_error(), "fp32"),
                "fp32 refused naming it: %s", mcnn_last_error());
    TEST_ASSERT(mcnn_embedding_lowp_create(&e, MCNN_PRECISION_BF16, t, 0, 2) == MCNN_ERR_ARG &&
                    !e, "0 rows refused");
    mcnn_embedding_lowp_free(NULL);
    TEST_ASSERT(mcnn_embedding_lowp_bytes(NULL) == 0, "no table: 0 bytes");
}

int main(void)
{
    TEST_RUN(test_hand_picked);
    TEST_RUN(test_random_rows);
    TEST_RUN(test_refusals);
    return test_summary();
}
