/* Core: error messages, the arena's alignment and bounds, the RNG against published values. */
#include "mcnn_test.h"

#include "../lib/internal.h"

static void test_error_message(void)
{
    mcnn_status s = mcnn_set_error(MCNN_ERR_SHAPE, "%s: '%s' is [%d], expected [%d]", "f.st", "w", 3, 4);
    TEST_ASSERT(s == MCNN_ERR_SHAPE, "status passed through");
    TEST_ASSERT(strcmp(mcnn_last_error(), "f.st: 'w' is [3], expected [4]") == 0, "got '%s'",
                mcnn_last_error());
    mcnn_wrap_error(s, "loading %s: ", "model");
    TEST_ASSERT(strcmp(mcnn_last_error(), "loading model: f.st: 'w' is [3], expected [4]") == 0,
                "got '%s'", mcnn_last_error());
    TEST_ASSERT(strcmp(mcnn_strerror(MCNN_ERR_IO), "input/output error") == 0, "strerror");
}

static void test_arena(void)
{
    mcnn_arena a;
    TEST_OK(mcnn_arena_init(&a, mcnn_arena_bytes_for(3) + mcnn_arena_bytes_for(17)));
    float *p = mcnn_arena_floats(&a, 3), *q = mcnn_arena_floats(&a, 17);
    TEST_ASSERT(p && q, "both fit");
    TEST_ASSERT(((uintptr_t)p % 64) == 0 && ((uintptr_t)q % 64) == 0, "64-byte aligned");
    TEST_ASSERT(mcnn_arena_floats(&a, 1) == NULL, "full arena returns NULL");
    mcnn_arena_reset(&a);
    TEST_ASSERT(mcnn_arena_floats(&a, 3) == p, "reset starts again");
    mcnn_arena_free(&a);
    TEST_ASSERT(mcnn_calloc(SIZE_MAX / 2, 4) == NULL, "overflowing calloc refused");
}

/* Reference values of xoshiro256** from its authors' C code, state {1, 2, 3, 4}. */
static void test_rng(void)
{
    mcnn_rng r = {{1, 2, 3, 4}};
    const uint64_t want[4] = {11520ull, 0ull, 1509978240ull, 1215971899390074240ull};
    for (int i = 0; i < 4; i++) {
        uint64_t got = mcnn_rng_next(&r);
        TEST_ASSERT(got == want[i], "xoshiro step %d: got %llu want %llu", i,
                    (unsigned long long)got, (unsigned long long)want[i]);
    }
    mcnn_rng_seed(&r, 42);
    double sum = 0, sumsq = 0;
    int below_ok = 1;
    for (int i = 0; i < 100000; i++) {
        float z = mcnn_rng_normal(&r);
        sum += z, sumsq += (double)z * z;
        if (mcnn_rng_below(&r, 7) >= 7) below_ok = 0;
    }
    TEST_CLOSE("normal mean", sum / 100000, 0.0, 0, 0.02);
    TEST_CLOSE("normal variance", sumsq / 100000, 1.0, 0, 0.02);
    TEST_ASSERT(below_ok, "rng_below stays below n");
}

int main(void)
{
    TEST_RUN(test_error_message);
    TEST_RUN(test_arena);
    TEST_RUN(test_rng);
    return test_summary();
}
